-- Single sign-on (OpenID Connect): who an identity provider's subject is here, the
-- sign-ins under way (state, nonce and PKCE verifier kept server-side until the
-- provider sends the browser back), and the per-hospital switch for passwords.

CREATE TABLE sso_identities (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The configured provider the account came through (its `id` in the file).
    provider TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_sign_in_at TIMESTAMP NOT NULL
);
-- One account per person at a provider; one identity per provider per account.
CREATE UNIQUE INDEX sso_identities_subject_idx ON sso_identities (issuer, subject);
CREATE UNIQUE INDEX sso_identities_user_idx ON sso_identities (user_id, issuer);

CREATE TABLE sso_logins (
    -- The OAuth `state`: random, single use.
    state TEXT PRIMARY KEY NOT NULL,
    provider TEXT NOT NULL,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX sso_logins_expires_idx ON sso_logins (expires_at);

ALTER TABLE hospitals ADD COLUMN password_login BOOLEAN NOT NULL DEFAULT TRUE;
