-- Request-rate state shared by the replicas on one database (GCRA): per key, the theoretical
-- arrival time of its next request, in Unix milliseconds.
CREATE TABLE rate_limits (
    key_id TEXT PRIMARY KEY,
    tat_ms BIGINT NOT NULL
);
