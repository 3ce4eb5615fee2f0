DROP INDEX auth_tokens_revoked_idx;
DROP INDEX support_sessions_one_live_per_requester;
DROP INDEX support_sessions_one_call_per_consultant;
ALTER TABLE support_sessions DROP COLUMN wrapped_up_at;
DROP TABLE event_stream;
DELETE FROM session_events WHERE session_id IS NULL;
CREATE TABLE session_events_old (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id BIGINT NOT NULL REFERENCES support_sessions (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    actor_id BIGINT,
    consultant_id BIGINT,
    detail TEXT,
    created_at TIMESTAMP NOT NULL
);
INSERT INTO session_events_old SELECT * FROM session_events;
DROP TABLE session_events;
ALTER TABLE session_events_old RENAME TO session_events;
CREATE INDEX session_events_session_idx ON session_events (session_id, id);
DROP TABLE offers;
