DROP TABLE consultant_hours;
DROP INDEX audit_log_user_idx;
DROP INDEX audit_log_created_idx;
ALTER TABLE audit_log DROP COLUMN detail;
ALTER TABLE hospitals DROP COLUMN active;
ALTER TABLE users DROP COLUMN active;
