-- The admin console: accounts and hospitals can be deactivated (kept for history,
-- refused at sign-in), audit rows say what changed, and consultants have weekly
-- working hours (UTC).

ALTER TABLE users ADD COLUMN active BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE hospitals ADD COLUMN active BOOLEAN NOT NULL DEFAULT TRUE;

-- Which fields an admin change touched (JSON; ids, vocabulary words and flags only,
-- never patient text).
ALTER TABLE audit_log ADD COLUMN detail TEXT;
CREATE INDEX audit_log_created_idx ON audit_log (created_at, id);
CREATE INDEX audit_log_user_idx ON audit_log (user_id, id);

-- One row per working interval: ISO weekday (Monday = 1) and minutes after midnight,
-- both in UTC; an interval that crosses midnight is two rows.
CREATE TABLE consultant_hours (
    id BIGSERIAL PRIMARY KEY,
    consultant_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    weekday INTEGER NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    start_minute INTEGER NOT NULL CHECK (start_minute BETWEEN 0 AND 1439),
    end_minute INTEGER NOT NULL CHECK (end_minute BETWEEN 1 AND 1440),
    CHECK (start_minute < end_minute)
);
CREATE INDEX consultant_hours_consultant_idx ON consultant_hours (consultant_id, weekday, start_minute);
