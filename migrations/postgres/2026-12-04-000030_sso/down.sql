ALTER TABLE hospitals DROP COLUMN password_login;
DROP TABLE sso_logins;
DROP TABLE sso_identities;
