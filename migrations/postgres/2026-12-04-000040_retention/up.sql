-- Retention of patient text (issue summaries, resolution notes, feedback).
-- A hospital's own retention in days; NULL means "the server's RETENTION_DAYS".
-- The bound is the server's MAX_RETENTION_DAYS, so a row written by other means
-- cannot hold a policy the API would refuse.
ALTER TABLE hospitals ADD COLUMN retention_days INTEGER
    CHECK (retention_days IS NULL OR retention_days BETWEEN 0 AND 36500);

-- When retention last erased this session's text. The summary column stays NOT
-- NULL (as on SQLite, which cannot relax it in place), so an erased summary is
-- stored as '' and this column is what says so.
ALTER TABLE support_sessions ADD COLUMN text_erased_at TIMESTAMP;
-- The sweep walks each hospital's ended sessions oldest first.
CREATE INDEX support_sessions_hospital_ended_idx ON support_sessions (hospital_id, ended_at);

-- One row per hospital per pass of the retention job: the record that it ran,
-- with what policy, and how many sessions lost their text.
CREATE TABLE retention_runs (
    id BIGSERIAL PRIMARY KEY,
    hospital_id BIGINT NOT NULL REFERENCES hospitals (id) ON DELETE CASCADE,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    retention_days INTEGER NOT NULL,
    cutoff TIMESTAMP NOT NULL,
    sessions_erased BIGINT NOT NULL,
    started_by TEXT NOT NULL CHECK (started_by IN ('schedule', 'command'))
);
CREATE INDEX retention_runs_hospital_idx ON retention_runs (hospital_id, id);
