-- v2: the audit log (who changed what, and when; never a secret), an index
-- that answers Spent (budgets restored at start) from the index alone, and
-- client key names unique among active keys in the database itself, not
-- only in the code that writes them.

CREATE TABLE audit (
    id     {{id}},
    at     BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);

CREATE INDEX usage_daily_spent ON usage_daily (client, currency, day, cost_nanos);

CREATE UNIQUE INDEX client_keys_active_name ON client_keys (name) WHERE revoked_at IS NULL;
