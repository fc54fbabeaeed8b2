-- Responses API responses, shared by replicas: `previous_response_id` and GET/DELETE work on
-- any replica. `history` is the conversation's messages up to and including the response's
-- answer (JSON); `response_latest` names each conversation's newest response (only it
-- continues the conversation in place).
CREATE TABLE responses (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    session_id TEXT NOT NULL,
    history    TEXT NOT NULL,
    object     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX responses_created ON responses (created_at);
CREATE TABLE response_latest (
    session_id  TEXT PRIMARY KEY,
    response_id TEXT NOT NULL
);
