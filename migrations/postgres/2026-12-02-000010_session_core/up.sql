-- Session core: offers as stored reservations, the event stream open to
-- consultant-status events, wrap-up after either end, and the invariants the
-- dispatcher relies on as unique indexes, so the database refuses what must
-- never happen even if the code is wrong.

CREATE TABLE offers (
    id BIGSERIAL PRIMARY KEY,
    session_id BIGINT NOT NULL REFERENCES support_sessions (id) ON DELETE CASCADE,
    consultant_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    outcome TEXT NOT NULL CHECK (outcome IN ('pending', 'accepted', 'declined', 'timed_out', 'rescinded', 'cancelled')),
    tier TEXT NOT NULL,
    score BIGINT NOT NULL,
    reasons TEXT NOT NULL,
    offered_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    resolved_at TIMESTAMP,
    -- The dispatch epoch that made the offer (several nodes: the leader's fencing
    -- epoch; one node: 0).
    epoch BIGINT NOT NULL DEFAULT 0
);
-- No request offered to two consultants, no consultant holding two offers.
CREATE UNIQUE INDEX offers_pending_session_idx ON offers (session_id) WHERE outcome = 'pending';
CREATE UNIQUE INDEX offers_pending_consultant_idx ON offers (consultant_id) WHERE outcome = 'pending';
CREATE INDEX offers_session_idx ON offers (session_id, id);

-- Consultant-status events belong to no session.
ALTER TABLE session_events ALTER COLUMN session_id DROP NOT NULL;

-- Events from before this migration have no typed payload and are never replayed
-- to a resuming socket: a `since` below the floor gets `resync_required`.
CREATE TABLE event_stream (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    replay_floor BIGINT NOT NULL
);
INSERT INTO event_stream (id, replay_floor) SELECT 1, COALESCE(MAX(id), 0) FROM session_events;

ALTER TABLE support_sessions ADD COLUMN wrapped_up_at TIMESTAMP;
-- A consultant is in at most one call, a requester has at most one live session.
CREATE UNIQUE INDEX support_sessions_one_call_per_consultant ON support_sessions (consultant_id)
    WHERE status IN ('connecting', 'active');
CREATE UNIQUE INDEX support_sessions_one_live_per_requester ON support_sessions (requester_id)
    WHERE status IN ('pending', 'connecting', 'active');

-- The revocation watch asks "which tokens were revoked since …" twice a second.
CREATE INDEX auth_tokens_revoked_idx ON auth_tokens (revoked_at) WHERE revoked_at IS NOT NULL;
