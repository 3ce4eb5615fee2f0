use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::extract::{AuthUser, Body};
use crate::auth::throttle::client_address;
use crate::auth::{self, COOKIE_NAME};
use crate::db::models::User;
use crate::db::repo;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::validate::{self, Lines};
use crate::ws::registry::Closing;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/login", web::post().to(login))
        .route("/auth/logout", web::post().to(logout))
        .route("/auth/me", web::get().to(me));
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
}

/// Signs in. The attempt is counted (and refused when over a limit) before the
/// password is looked at; see [`crate::auth::throttle`].
#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "auth",
    request_body = LoginBody,
    security(()),
    responses((status = 200, description = "signed in: a bearer token, also set as a cookie", body = LoginReply)),
)]
async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Body<LoginBody>,
) -> ApiResult<HttpResponse> {
    let LoginBody { email, password } = body.0;
    let email = validate::text("email", email.trim(), Lines::Single)?.to_lowercase();
    if email.is_empty() || password.is_empty() || email.len() > 254 || password.len() > 1024 {
        return Err(ApiError::invalid(
            "email",
            "email and password are required",
        ));
    }
    let address = client_address(
        req.peer_addr().map(|a| a.ip()),
        state
            .config
            .trusted_proxy_header
            .as_deref()
            .and_then(|name| req.headers().get(name))
            .and_then(|v| v.to_str().ok()),
    );
    let attempt = state
        .login_throttle
        .begin(&email, address, Instant::now())
        .map_err(|refused| ApiError::RateLimited {
            message: refused.limit.message().into(),
            retry_after_secs: refused.retry_after_secs(),
        })?;
    let row = repo::users::by_email(&state.db, &email).await?;
    if let Some(hospital) = row.as_ref().and_then(|r| r.hospital_id) {
        if !repo::sso::password_login_allowed(&state.db, hospital).await? {
            // Said before the password is checked: these accounts may have none
            // anybody knows, and "wrong password" would send them hunting for one.
            return Err(ApiError::Forbidden(
                "password sign-in is turned off for your hospital: use its \"Sign in with …\" \
                 button on the sign-in page"
                    .into(),
            ));
        }
    }
    let verified = match &row {
        Some(row) => {
            let (password, hash) = (password.clone(), row.password_hash.clone());
            tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
                .await
                .unwrap_or(false)
        }
        None => {
            let password = password.clone();
            let _ = tokio::task::spawn_blocking(move || auth::dummy_verify(&password)).await;
            false
        }
    };
    let row = match (row, verified) {
        (Some(row), true) => {
            attempt.succeeded(Instant::now());
            row
        }
        _ => {
            tracing::info!("failed sign-in");
            attempt.failed(Instant::now());
            return Err(ApiError::Unauthenticated("wrong email or password".into()));
        }
    };
    if !account_open(&state, &row).await? {
        return Err(ApiError::Forbidden(
            "this account is deactivated; ask your administrator".into(),
        ));
    }
    let user = User::from(&row);
    let (token, cookie) = issue_token(&state, &user).await?;
    tracing::info!(user_id = user.id.0, role = %user.role, "signed in");
    Ok(HttpResponse::Ok()
        .cookie(cookie)
        .json(LoginReply { token, user }))
}

/// A new sign-in token for the user, stored (as its hash) with its expiry, and the
/// HttpOnly cookie that carries it. Password and single sign-on issue the same.
pub(crate) async fn issue_token(
    state: &AppState,
    user: &User,
) -> ApiResult<(String, Cookie<'static>)> {
    let token = auth::new_token();
    let ttl = state.config.token_ttl();
    repo::tokens::insert(
        &state.db,
        user.id,
        &auth::token_hash(&token),
        repo::now() + ttl,
    )
    .await?;
    let cookie = Cookie::build(COOKIE_NAME, token.clone())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config.cookie_secure || state.config.tls_cert.is_some())
        .max_age(CookieDuration::seconds(ttl.num_seconds()))
        .finish();
    Ok((token, cookie))
}

/// A deactivated account, or one of a deactivated hospital, cannot sign in. Asked
/// only after the password matched, so it tells nothing to someone guessing.
async fn account_open(state: &AppState, row: &crate::db::models::UserRow) -> ApiResult<bool> {
    if !row.active {
        return Ok(false);
    }
    match row.hospital_id {
        Some(id) => Ok(repo::hospitals::get(&state.db, id).await?.active),
        None => Ok(true),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct LoginReply {
    token: String,
    user: User,
}

#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "auth",
    responses((status = 200, description = "the token is revoked", body = crate::api::Empty)),
)]
async fn logout(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    repo::tokens::revoke(&state.db, &user.token_hash).await?;
    // This node's sockets of the token close now; other paths wait for the watch.
    state
        .registry
        .close_token(&user.token_hash, Closing::SignedOut("you signed out"));
    let mut expired = Cookie::build(COOKIE_NAME, "")
        .path("/")
        .http_only(true)
        .finish();
    expired.make_removal();
    Ok(HttpResponse::Ok()
        .cookie(expired)
        .json(crate::api::Empty {}))
}

#[utoipa::path(
    get,
    path = "/api/auth/me",
    tag = "auth",
    responses((status = 200, description = "the signed-in account", body = crate::db::models::User)),
)]
async fn me(user: AuthUser) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(&user.user))
}
