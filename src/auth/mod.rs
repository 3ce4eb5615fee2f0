//! Accounts: argon2id password hashes, opaque random tokens stored only as SHA-256
//! hashes, throttling of failed logins, the password policy and the WebSocket origin
//! check. (The request extractor is `api::extract`.)

pub mod origin;
pub mod password;
pub mod throttle;

use actix_web::{web, HttpRequest};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::db::models::User;
use crate::db::{repo, Db};
use crate::error::ApiError;

/// Name of the HttpOnly cookie that carries the same token as the Bearer header.
pub const COOKIE_NAME: &str = "nicehr_token";
/// Cookie-authenticated writes must carry this header: a cross-site form cannot set
/// it, so a forged request from another origin is refused (CSRF).
pub const CSRF_HEADER: &str = "x-requested-with";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("password hashing failed: {0}")]
    Hash(String),
}

pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    match PasswordHash::new(stored_hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A dummy hash so a login for an unknown email costs the same as a wrong password,
/// and response time does not reveal which emails exist.
pub fn dummy_verify(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = DUMMY.get_or_init(|| hash_password("not-a-real-password").unwrap_or_default());
    let _ = verify_password(password, hash);
}

/// A new opaque token (256 random bits) for the client.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database keeps instead of the token: a leaked table grants nothing.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Where the request's token came from; cookies need the CSRF check on writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Header,
    Cookie,
    Query,
}

pub fn token_from_request(req: &HttpRequest, allow_query: bool) -> Option<(String, TokenSource)> {
    if let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        if let Ok(text) = value.to_str() {
            if let Some(token) = text.strip_prefix("Bearer ") {
                let token = token.trim();
                if !token.is_empty() {
                    return Some((token.to_string(), TokenSource::Header));
                }
            }
        }
    }
    if allow_query {
        if let Ok(query) =
            web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        {
            if let Some(token) = query.get("token") {
                if !token.is_empty() {
                    return Some((token.clone(), TokenSource::Query));
                }
            }
        }
    }
    req.cookie(COOKIE_NAME)
        .map(|c| c.value().to_string())
        .filter(|t| !t.is_empty())
        .map(|t| (t, TokenSource::Cookie))
}

/// A token that is live, and whose it is.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub expires_at: chrono::NaiveDateTime,
}

/// Resolves a token to its user, or `Unauthenticated`.
pub async fn authenticate(db: &Db, token: &str) -> Result<SignedIn, ApiError> {
    let (row, expires_at) = repo::tokens::user_for(db, &token_hash(token), repo::now())
        .await?
        .ok_or_else(|| {
            ApiError::Unauthenticated(
                "sign in again: the token is invalid, expired or revoked".into(),
            )
        })?;
    Ok(SignedIn {
        user: User::from(&row),
        expires_at,
    })
}
