DROP INDEX auth_tokens_revoked_idx;
DROP INDEX support_sessions_one_live_per_requester;
DROP INDEX support_sessions_one_call_per_consultant;
ALTER TABLE support_sessions DROP COLUMN wrapped_up_at;
DROP TABLE event_stream;
DELETE FROM session_events WHERE session_id IS NULL;
ALTER TABLE session_events ALTER COLUMN session_id SET NOT NULL;
DROP TABLE offers;
