//! Single sign-on routes: the providers for the sign-in page, the start (a
//! redirect to the provider) and the callback (the provider's redirect back).
//!
//! The callback is a page the browser lands on, so its answers are pages: on
//! success one that puts the token where the client keeps it (sessionStorage, as
//! the password sign-in does) and goes on to the role's page; on failure one that
//! says what went wrong. A client that does not ask for HTML gets `{"token",
//! "user"}` or the usual error shape instead.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

use crate::db::models::User;
use crate::db::repo;
use crate::error::ApiError;
use crate::sso::{Callback, ProviderView, SsoError};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/sso/providers", web::get().to(providers))
        .route("/auth/sso/{provider}/start", web::get().to(start))
        .route("/auth/sso/{provider}/callback", web::get().to(callback));
}

#[derive(Serialize, utoipa::ToSchema)]
struct ProvidersReply {
    providers: Vec<ProviderView>,
}

/// Open to everyone: the sign-in page shows a button per provider.
#[utoipa::path(
    get,
    path = "/api/auth/sso/providers",
    tag = "auth",
    security(()),
    responses((status = 200, description = "the configured identity providers", body = ProvidersReply)),
)]
async fn providers(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(ProvidersReply {
        providers: state.sso.list(),
    })
}

#[utoipa::path(
    get,
    path = "/api/auth/sso/{provider}/start",
    tag = "auth",
    params(("provider" = String, Path, description = "the provider's id from the configuration")),
    security(()),
    responses((status = 302, description = "to the identity provider", headers(("Location" = String, description = "the provider's authorization URL"))), (status = "4XX", description = "refused (JSON unless the browser asked for HTML)", content((crate::error::ErrorBody = "application/json"), (String = "text/html")))),
)]
async fn start(
    state: web::Data<AppState>,
    req: HttpRequest,
    provider: web::Path<String>,
) -> HttpResponse {
    let provider = provider.into_inner();
    let redirect_uri = redirect_uri(&state, &req, &provider);
    match state.sso.begin(&state.db, &provider, &redirect_uri).await {
        Ok(url) => HttpResponse::Found()
            .insert_header((header::LOCATION, url.as_str()))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Err(e) => {
            tracing::info!(provider = %provider, reason = %e, "single sign-on not started");
            failure(&req, e.into())
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/auth/sso/{provider}/callback",
    tag = "auth",
    params(("provider" = String, Path, description = "the provider's id"), ("code" = Option<String>, Query, description = "from the identity provider"), ("state" = Option<String>, Query, description = "from the identity provider"), ("error" = Option<String>, Query, description = "the provider refused")),
    security(()),
    responses((status = 200, description = "signed in (JSON unless the browser asked for HTML)", content((SignedInReply = "application/json"), (String = "text/html"))), (status = "4XX", description = "refused (JSON unless the browser asked for HTML)", content((crate::error::ErrorBody = "application/json"), (String = "text/html")))),
)]
async fn callback(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let provider = req
        .match_info()
        .get("provider")
        .unwrap_or_default()
        .to_string();
    match sign_in(&state, &req, &provider).await {
        Ok((token, cookie, user)) => {
            tracing::info!(user_id = user.id.0, role = %user.role, provider = %provider, "signed in through single sign-on");
            let mut reply = if wants_json(&req) {
                HttpResponse::Ok().json(SignedInReply { token, user })
            } else {
                HttpResponse::Ok()
                    .content_type("text/html; charset=utf-8")
                    .body(signed_in_page(&token, &user))
            };
            let _ = reply.add_cookie(&cookie);
            no_store(reply)
        }
        Err(e) => {
            tracing::info!(provider = %provider, reason = %e, "single sign-on refused");
            failure(&req, e)
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct SignedInReply {
    token: String,
    user: User,
}

async fn sign_in(
    state: &AppState,
    req: &HttpRequest,
    provider: &str,
) -> Result<(String, actix_web::cookie::Cookie<'static>, User), ApiError> {
    let callback = web::Query::<Callback>::from_query(req.query_string())
        .map_err(|e| ApiError::BadRequest(format!("the callback's query is malformed: {e}")))?
        .into_inner();
    let config = state.sso.config(provider)?;
    let verified = state.sso.finish(&state.db, provider, callback).await?;
    let (row, arrival) = match crate::sso::accounts::resolve(&state.db, config, &verified).await {
        Ok(found) => found,
        Err(SsoError::WrongHospital { user_id }) => {
            repo::audit::record(
                &state.db,
                Some(user_id),
                "sso_sign_in_refused",
                "user",
                Some(user_id.0),
            )
            .await?;
            return Err(SsoError::WrongHospital { user_id }.into());
        }
        Err(e) => return Err(e.into()),
    };
    let user = User::from(&row);
    repo::audit::record(
        &state.db,
        Some(user.id),
        arrival.action(),
        "user",
        Some(user.id.0),
    )
    .await?;
    let (token, cookie) = super::auth::issue_token(state, &user).await?;
    Ok((token, cookie, user))
}

/// Where the provider sends the browser back: under `PUBLIC_URL` when it is set
/// (register exactly this with the provider), else under the address this request
/// came to. The start stores it, so the exchange names the same one.
fn redirect_uri(state: &AppState, req: &HttpRequest, provider: &str) -> String {
    let base = match &state.config.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    };
    format!("{base}/api/auth/sso/{provider}/callback")
}

/// A browser (it asks for HTML) gets pages; any other client JSON.
fn wants_json(req: &HttpRequest) -> bool {
    !req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

fn failure(req: &HttpRequest, error: ApiError) -> HttpResponse {
    if wants_json(req) {
        return no_store(error.error_response());
    }
    let status = error.status_code();
    let message = match &error {
        ApiError::Internal(_) => "something went wrong on the server".to_string(),
        other => other.to_string(),
    };
    if let ApiError::Internal(detail) = &error {
        tracing::error!(detail = %detail, "internal error in single sign-on");
    }
    no_store(
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(failure_page(&message)),
    )
}

fn no_store(mut reply: HttpResponse) -> HttpResponse {
    reply.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    reply
}

/// The page that hands the token to the client: `static/js/pages/sso.js` reads it
/// from the body's data attributes (the policy allows no inline script), stores it
/// and goes to the role's page.
fn signed_in_page(token: &str, user: &User) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Signing in · NICEHR Remote Support</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/static/css/app.css">
  <script type="module" src="/static/js/pages/sso.js"></script>
</head>
<body class="page-login" data-token="{token}" data-role="{role}">
  <main id="main" class="container container-narrow">
    <section class="card login-card">
      <h1>Signing in…</h1>
      <p class="muted">Signed in as {name}.</p>
    </section>
  </main>
</body>
</html>
"#,
        token = escape(token),
        role = escape(user.role.as_str()),
        name = escape(&user.name),
    )
}

fn failure_page(message: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Sign-in failed · NICEHR Remote Support</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/static/css/app.css">
</head>
<body class="page-login">
  <main id="main" class="container container-narrow">
    <section class="card login-card" aria-labelledby="sso-failed">
      <h1 id="sso-failed">Sign-in failed</h1>
      <p id="sso-error" class="message message-error" role="alert">{message}</p>
      <p><a class="btn btn-primary" href="/login">Back to sign in</a></p>
    </section>
  </main>
</body>
</html>
"#,
        message = escape(&sentence(message)),
    )
}

/// An error message as a sentence on a page: capital first letter.
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Text for an HTML element or a quoted attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTTP side of a refused sign-in, in one place.
impl From<SsoError> for ApiError {
    fn from(e: SsoError) -> ApiError {
        let message = e.to_string();
        match e {
            SsoError::UnknownProvider(_) => ApiError::NotFound(message),
            SsoError::UnknownState
            | SsoError::Expired
            | SsoError::WrongProvider
            | SsoError::MissingCode
            | SsoError::ProviderRefused(_) => ApiError::BadRequest(message),
            SsoError::BadIdToken(_) => ApiError::Unauthenticated(message),
            SsoError::NoEmail
            | SsoError::NoRole(_)
            | SsoError::WrongHospital { .. }
            | SsoError::NoSuchHospital(_)
            | SsoError::Deactivated => ApiError::Forbidden(message),
            SsoError::Unreachable { .. } => ApiError::Unavailable(message),
            SsoError::Race => ApiError::Conflict(message),
            SsoError::Db(db) => db.into(),
            SsoError::Internal(detail) => ApiError::Internal(detail),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_leaves_no_markup() {
        assert_eq!(
            super::escape(r#"<b a="1">'&'</b>"#),
            "&lt;b a=&quot;1&quot;&gt;&#39;&amp;&#39;&lt;/b&gt;"
        );
    }
}
