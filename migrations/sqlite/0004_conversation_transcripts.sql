-- Conversations kept in the store so any replica can resume them: per session, the CLI session
-- whose transcript is kept and its length; the transcript itself as parts appended turn by turn
-- (each part is whole JSON lines, starting at byte `start` of the CLI's file).
CREATE TABLE transcripts (
    session_id     TEXT PRIMARY KEY,
    cli_session_id TEXT NOT NULL,
    size           BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE TABLE transcript_parts (
    session_id TEXT NOT NULL,
    start      BIGINT NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (session_id, start)
);
