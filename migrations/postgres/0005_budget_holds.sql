-- Budget held by running turns, shared by the replicas on one database: a turn is admitted
-- only while its key's spend plus what running turns (on any replica) hold is under its
-- budget; its hold is deleted once its spend is recorded. A replica that dies leaves its
-- holds until they expire.
CREATE TABLE budget_holds (
    id         TEXT PRIMARY KEY,
    key_id     TEXT NOT NULL,
    usd        DOUBLE PRECISION NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX budget_holds_key ON budget_holds (key_id);
