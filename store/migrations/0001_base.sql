-- v1: the configuration the admin panel manages, usage per day, and the
-- revision replicas watch. {{id}} and {{blob}} are the dialect's words for
-- an auto-numbered primary key and bytes (dialect.go); everything else is
-- SQL that SQLite and PostgreSQL both accept. Times are unix microseconds.

CREATE TABLE store_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL
);
INSERT INTO store_state (id, revision) VALUES (1, 0);

CREATE TABLE providers (
    id          {{id}},
    name        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    base_url    TEXT NOT NULL,
    preset      TEXT NOT NULL,
    weight      BIGINT NOT NULL,
    models      TEXT NOT NULL, -- JSON array; null means none of its own
    headers     TEXT NOT NULL, -- JSON object or null
    transport   TEXT NOT NULL,
    responses   TEXT NOT NULL,
    api_version TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- A key is an env:NAME reference (env) or a literal sealed with
-- AES-256-GCM (sealed), never both. last4 is for display only.
CREATE TABLE provider_keys (
    id          {{id}},
    provider_id BIGINT NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    position    BIGINT NOT NULL,
    name        TEXT NOT NULL,
    env         TEXT NOT NULL,
    sealed      {{blob}},
    last4       TEXT NOT NULL
);
CREATE INDEX provider_keys_provider ON provider_keys (provider_id, position);

CREATE TABLE models (
    id                {{id}},
    name              TEXT NOT NULL UNIQUE,
    targets           TEXT NOT NULL, -- JSON
    strategy          TEXT NOT NULL,
    display_name      TEXT NOT NULL,
    description       TEXT NOT NULL,
    context_window    BIGINT NOT NULL,
    max_input_tokens  BIGINT NOT NULL,
    max_output_tokens BIGINT NOT NULL,
    pricing           TEXT NOT NULL, -- JSON or null
    flags             TEXT NOT NULL, -- JSON
    metadata          TEXT NOT NULL, -- JSON
    updated_at        BIGINT NOT NULL
);

-- Only the SHA-256 digest of a client key's secret is kept.
CREATE TABLE client_keys (
    id           {{id}},
    name         TEXT NOT NULL,
    digest       TEXT NOT NULL UNIQUE,
    models       TEXT NOT NULL, -- JSON; null means all, [] none
    presets      TEXT NOT NULL, -- JSON, as models
    rpm          BIGINT NOT NULL,
    tpm          BIGINT NOT NULL,
    max_parallel BIGINT NOT NULL,
    budget       TEXT NOT NULL, -- JSON or null
    expires_at   BIGINT NOT NULL, -- 0: never
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT           -- NULL: active
);

CREATE TABLE usage_daily (
    day                TEXT NOT NULL, -- YYYY-MM-DD, UTC
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
    PRIMARY KEY (day, client, model, provider, key_name, currency)
);
