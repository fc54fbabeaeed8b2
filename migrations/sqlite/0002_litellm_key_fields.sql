-- LiteLLM key fields: tags, token and concurrency limits, blocking, budgets that reset.
ALTER TABLE keys ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE keys ADD COLUMN tpm_limit INTEGER;
ALTER TABLE keys ADD COLUMN max_parallel_requests INTEGER;
ALTER TABLE keys ADD COLUMN blocked_at INTEGER;
ALTER TABLE keys ADD COLUMN budget_duration TEXT;
ALTER TABLE keys ADD COLUMN budget_reset_at INTEGER;
CREATE INDEX keys_budget_reset ON keys (budget_reset_at);

-- Spend records: the response id and the request's tags (key tags and metadata.tags).
ALTER TABLE spend ADD COLUMN request_id TEXT;
ALTER TABLE spend ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
CREATE INDEX spend_time ON spend (created_at);

-- One row per tag of a spend record, for spend by tag.
CREATE TABLE spend_tags (
    spend_id INTEGER NOT NULL,
    tag      TEXT NOT NULL,
    PRIMARY KEY (tag, spend_id)
);
