-- API keys: only the SHA-256 of a key is stored (its hex is the key's id, "token").
CREATE TABLE keys (
    id          TEXT PRIMARY KEY,
    key_prefix  TEXT NOT NULL,
    key_alias   TEXT,
    models      TEXT NOT NULL DEFAULT '[]',
    metadata    TEXT NOT NULL DEFAULT '{}',
    max_budget  DOUBLE PRECISION,
    rpm_limit   BIGINT,
    spend       DOUBLE PRECISION NOT NULL DEFAULT 0,
    expires_at  BIGINT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    source      TEXT NOT NULL,
    -- a Claude OAuth token sealed with the server's secret (nonce || ciphertext)
    oauth_token BYTEA
);
CREATE INDEX keys_alias ON keys (key_alias);

-- One row per turn.
CREATE TABLE spend (
    id            BIGSERIAL PRIMARY KEY,
    key_id        TEXT NOT NULL,
    session_id    TEXT,
    model         TEXT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_usd      DOUBLE PRECISION NOT NULL,
    duration_ms   BIGINT NOT NULL,
    status        TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX spend_key_time ON spend (key_id, created_at);

-- Conversations and the key that owns them.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    owner        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    turns        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sessions_owner ON sessions (owner, last_used_at);
