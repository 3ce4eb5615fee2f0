-- SQLite checks a column against a list of three or more constants (`status IN
-- ('a', 'b', 'c')`) by building a temporary b-tree of the list, each time the
-- statement runs: for a CHECK constraint or a partial index's WHERE that is every
-- insert and every status change. Those temporary tables were about an eighth of
-- the server's instructions per call (callgrind, BENCHMARKS.md). The same rules
-- written as `=` and `OR` are checked with plain comparisons. SQLite cannot change a
-- CHECK constraint in place, so the three tables written on every call are rebuilt
-- (ids, rows and id counters kept). Foreign keys are off while migrations run
-- (`db::migrate_sqlite`), so dropping the old table deletes nothing that refers to it.

-- support_sessions
CREATE TABLE support_sessions_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hospital_id BIGINT NOT NULL REFERENCES hospitals (id),
    requester_id BIGINT NOT NULL REFERENCES users (id),
    consultant_id BIGINT REFERENCES users (id),
    department TEXT NOT NULL,
    urgency TEXT NOT NULL CHECK (urgency = 'normal' OR urgency = 'urgent' OR urgency = 'critical'),
    status TEXT NOT NULL CHECK (status = 'pending' OR status = 'connecting' OR status = 'active' OR status = 'completed' OR status = 'cancelled'),
    issue_summary TEXT NOT NULL,
    resolution_notes TEXT,
    resolved BOOLEAN,
    requested_consultant_id BIGINT REFERENCES users (id),
    wait_for_consultant BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    response_deadline TIMESTAMP NOT NULL,
    accepted_at TIMESTAMP,
    started_at TIMESTAMP,
    ended_at TIMESTAMP,
    wait_time_seconds BIGINT,
    duration_seconds BIGINT,
    rating INTEGER CHECK (rating BETWEEN 1 AND 5),
    feedback TEXT,
    match_tier TEXT,
    match_score BIGINT,
    match_reasons TEXT,
    video_provider TEXT,
    room_name TEXT,
    room_url TEXT,
    room_deleted BOOLEAN NOT NULL DEFAULT FALSE,
    cancelled_by BIGINT REFERENCES users (id)
, wrapped_up_at TIMESTAMP, text_erased_at TIMESTAMP);
INSERT INTO support_sessions_new (id, hospital_id, requester_id, consultant_id, department, urgency, status, issue_summary, resolution_notes, resolved, requested_consultant_id, wait_for_consultant, created_at, response_deadline, accepted_at, started_at, ended_at, wait_time_seconds, duration_seconds, rating, feedback, match_tier, match_score, match_reasons, video_provider, room_name, room_url, room_deleted, cancelled_by, wrapped_up_at, text_erased_at)
    SELECT id, hospital_id, requester_id, consultant_id, department, urgency, status, issue_summary, resolution_notes, resolved, requested_consultant_id, wait_for_consultant, created_at, response_deadline, accepted_at, started_at, ended_at, wait_time_seconds, duration_seconds, rating, feedback, match_tier, match_score, match_reasons, video_provider, room_name, room_url, room_deleted, cancelled_by, wrapped_up_at, text_erased_at FROM support_sessions;
-- Keep the id counter where it was (ids of deleted rows are never reused).
UPDATE sqlite_sequence SET seq = (SELECT MAX(seq) FROM sqlite_sequence WHERE name IN ('support_sessions', 'support_sessions_new'))
    WHERE name = 'support_sessions_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'support_sessions_new', seq FROM sqlite_sequence WHERE name = 'support_sessions'
    AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'support_sessions_new');
DROP TABLE support_sessions;
ALTER TABLE support_sessions_new RENAME TO support_sessions;
CREATE INDEX support_sessions_status_idx ON support_sessions (status);
CREATE INDEX support_sessions_hospital_created_idx ON support_sessions (hospital_id, created_at);
CREATE INDEX support_sessions_requester_idx ON support_sessions (requester_id, created_at);
CREATE INDEX support_sessions_consultant_idx ON support_sessions (consultant_id, created_at);
CREATE INDEX support_sessions_created_idx ON support_sessions (created_at);
CREATE INDEX support_sessions_room_name_idx ON support_sessions (room_name);
CREATE UNIQUE INDEX support_sessions_one_call_per_consultant ON support_sessions (consultant_id)
    WHERE status IN ('connecting', 'active');
CREATE UNIQUE INDEX support_sessions_one_live_per_requester ON support_sessions (requester_id)
    WHERE status = 'pending' OR status = 'connecting' OR status = 'active';
CREATE INDEX support_sessions_hospital_ended_idx ON support_sessions (hospital_id, ended_at);

-- consultant_availability
CREATE TABLE consultant_availability_new (
    consultant_id BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'offline' CHECK (status = 'online' OR status = 'available' OR status = 'busy' OR status = 'away' OR status = 'offline'),
    current_session_id BIGINT,
    auto_accept BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at TIMESTAMP NOT NULL
);
INSERT INTO consultant_availability_new (consultant_id, status, current_session_id, auto_accept, updated_at)
    SELECT consultant_id, status, current_session_id, auto_accept, updated_at FROM consultant_availability;
DROP TABLE consultant_availability;
ALTER TABLE consultant_availability_new RENAME TO consultant_availability;

-- offers
CREATE TABLE offers_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id BIGINT NOT NULL REFERENCES support_sessions (id) ON DELETE CASCADE,
    consultant_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    outcome TEXT NOT NULL CHECK (outcome = 'pending' OR outcome = 'accepted' OR outcome = 'declined' OR outcome = 'timed_out' OR outcome = 'rescinded' OR outcome = 'cancelled'),
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
INSERT INTO offers_new (id, session_id, consultant_id, outcome, tier, score, reasons, offered_at, expires_at, resolved_at, epoch)
    SELECT id, session_id, consultant_id, outcome, tier, score, reasons, offered_at, expires_at, resolved_at, epoch FROM offers;
-- Keep the id counter where it was (ids of deleted rows are never reused).
UPDATE sqlite_sequence SET seq = (SELECT MAX(seq) FROM sqlite_sequence WHERE name IN ('offers', 'offers_new'))
    WHERE name = 'offers_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'offers_new', seq FROM sqlite_sequence WHERE name = 'offers'
    AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'offers_new');
DROP TABLE offers;
ALTER TABLE offers_new RENAME TO offers;
CREATE UNIQUE INDEX offers_pending_session_idx ON offers (session_id) WHERE outcome = 'pending';
CREATE UNIQUE INDEX offers_pending_consultant_idx ON offers (consultant_id) WHERE outcome = 'pending';
CREATE INDEX offers_session_idx ON offers (session_id, id);
