-- Full schema of DESIGN.md §3 for PostgreSQL. Timestamps are UTC (TIMESTAMP without zone).
CREATE TABLE hospitals (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    plan TEXT NOT NULL CHECK (plan IN ('basic', 'professional', 'premium', 'enterprise')),
    timezone TEXT NOT NULL DEFAULT 'UTC',
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX hospitals_name_idx ON hospitals (name);

CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'consultant', 'hospital_staff', 'hospital_leadership')),
    hospital_id BIGINT REFERENCES hospitals (id),
    password_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX users_email_idx ON users (email);

CREATE TABLE auth_tokens (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE UNIQUE INDEX auth_tokens_hash_idx ON auth_tokens (token_hash);

CREATE TABLE consultant_availability (
    consultant_id BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'offline' CHECK (status IN ('online', 'available', 'busy', 'away', 'offline')),
    current_session_id BIGINT,
    auto_accept BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE consultant_specialties (
    id BIGSERIAL PRIMARY KEY,
    consultant_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    department TEXT NOT NULL,
    proficiency TEXT NOT NULL CHECK (proficiency IN ('standard', 'expert'))
);
CREATE UNIQUE INDEX consultant_specialties_uniq ON consultant_specialties (consultant_id, department);

CREATE TABLE support_sessions (
    id BIGSERIAL PRIMARY KEY,
    hospital_id BIGINT NOT NULL REFERENCES hospitals (id),
    requester_id BIGINT NOT NULL REFERENCES users (id),
    consultant_id BIGINT REFERENCES users (id),
    department TEXT NOT NULL,
    urgency TEXT NOT NULL CHECK (urgency IN ('normal', 'urgent', 'critical')),
    status TEXT NOT NULL CHECK (status IN ('pending', 'connecting', 'active', 'completed', 'cancelled')),
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
);
CREATE INDEX support_sessions_status_idx ON support_sessions (status);
CREATE INDEX support_sessions_hospital_created_idx ON support_sessions (hospital_id, created_at);
CREATE INDEX support_sessions_requester_idx ON support_sessions (requester_id, created_at);
CREATE INDEX support_sessions_consultant_idx ON support_sessions (consultant_id, created_at);
CREATE INDEX support_sessions_created_idx ON support_sessions (created_at);

CREATE TABLE support_queue (
    session_id BIGINT PRIMARY KEY REFERENCES support_sessions (id) ON DELETE CASCADE,
    urgency TEXT NOT NULL,
    response_deadline TIMESTAMP NOT NULL,
    enqueued_at TIMESTAMP NOT NULL
);

CREATE TABLE staff_consultant_preferences (
    id BIGSERIAL PRIMARY KEY,
    staff_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    consultant_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    preference_rank INTEGER,
    total_sessions INTEGER NOT NULL DEFAULT 0,
    successful_sessions INTEGER NOT NULL DEFAULT 0,
    rating_sum INTEGER NOT NULL DEFAULT 0,
    rating_count INTEGER NOT NULL DEFAULT 0,
    last_session_at TIMESTAMP
);
CREATE UNIQUE INDEX staff_consultant_preferences_uniq ON staff_consultant_preferences (staff_id, consultant_id);

CREATE TABLE dedicated_assignments (
    id BIGSERIAL PRIMARY KEY,
    consultant_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    staff_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    hospital_id BIGINT REFERENCES hospitals (id) ON DELETE CASCADE,
    department TEXT,
    exclusive BOOLEAN NOT NULL DEFAULT FALSE,
    weekdays TEXT,
    start_minute INTEGER,
    end_minute INTEGER,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE consultant_status_log (
    id BIGSERIAL PRIMARY KEY,
    consultant_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP
);
CREATE INDEX consultant_status_log_idx ON consultant_status_log (consultant_id, started_at);

CREATE TABLE session_events (
    id BIGSERIAL PRIMARY KEY,
    session_id BIGINT NOT NULL REFERENCES support_sessions (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    actor_id BIGINT,
    consultant_id BIGINT,
    detail TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX session_events_session_idx ON session_events (session_id, id);

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id BIGINT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id);
