DROP TABLE retention_runs;
DROP INDEX support_sessions_hospital_ended_idx;
ALTER TABLE support_sessions DROP COLUMN text_erased_at;
ALTER TABLE hospitals DROP COLUMN retention_days;
