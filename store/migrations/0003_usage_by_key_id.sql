-- v3: usage kept by the client key's id (the first 12 hex digits of its
-- secret's digest: access.Key.ID) beside its name, so that a budget follows
-- the key and not the name — a renamed key keeps what it spent, and a new
-- key given a revoked key's name starts from nothing. Rows written before
-- have no id (''): a budget reads them by name, as it did.

CREATE TABLE usage_daily_v3 (
    day                TEXT NOT NULL, -- YYYY-MM-DD, UTC
    client_id          TEXT NOT NULL, -- '' for rows written before v3, and for callers without a key
    client             TEXT NOT NULL,
    model              TEXT NOT NULL,
    provider           TEXT NOT NULL,
    key_name           TEXT NOT NULL,
    currency           TEXT NOT NULL,
    requests           BIGINT NOT NULL,
    input_tokens       BIGINT NOT NULL,
    cached_tokens      BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    output_tokens      BIGINT NOT NULL,
    reasoning_tokens   BIGINT NOT NULL,
    cost_nanos         BIGINT NOT NULL,
    PRIMARY KEY (day, client_id, client, model, provider, key_name, currency)
);

INSERT INTO usage_daily_v3 (day, client_id, client, model, provider, key_name, currency, requests, input_tokens,
    cached_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost_nanos)
SELECT day, '', client, model, provider, key_name, currency, requests, input_tokens,
    cached_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost_nanos
FROM usage_daily;

DROP TABLE usage_daily;

ALTER TABLE usage_daily_v3 RENAME TO usage_daily;

CREATE INDEX usage_daily_spent ON usage_daily (client_id, client, currency, day, cost_nanos);
