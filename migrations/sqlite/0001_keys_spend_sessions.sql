-- API keys: only the SHA-256 of a key is stored (its hex is the key's id, "token").
CREATE TABLE keys (
    id          TEXT PRIMARY KEY,
    key_prefix  TEXT NOT NULL,
    key_alias   TEXT,
    models      TEXT NOT NULL DEFAULT '[]',
    metadata    TEXT NOT NULL DEFAULT '{}',
    max_budget  REAL,
    rpm_limit   INTEGER,
    spend       REAL NOT NULL DEFAULT 0,
    expires_at  INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    source      TEXT NOT NULL,
    -- a Claude OAuth token sealed with the server's secret (nonce || ciphertext)
    oauth_token BLOB
);
CREATE INDEX keys_alias ON keys (key_alias);

-- One row per turn.
CREATE TABLE spend (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id        TEXT NOT NULL,
    session_id    TEXT,
    model         TEXT NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd      REAL NOT NULL,
    duration_ms   INTEGER NOT NULL,
    status        TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX spend_key_time ON spend (key_id, created_at);

-- Conversations and the key that owns them.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    owner        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    turns        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_owner ON sessions (owner, last_used_at);
