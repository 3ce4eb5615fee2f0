//! `/ws`: one WsSession actor per connection (several tabs per user are fine).

pub mod frames;
pub mod registry;
pub mod session;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(upgrade));
}

/// Browsers send `Origin` on WebSocket upgrades and cannot forge it; a page from
/// another site must not ride a signed-in user's cookie into our socket.
fn origin_allowed(req: &HttpRequest, allowed: &[String]) -> bool {
    let Some(origin) = req.headers().get(actix_web::http::header::ORIGIN) else {
        // Non-browser clients (load generators, integrations) send no Origin.
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let host = req.connection_info().host().to_string();
    let same_host = url::Url::parse(origin)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .is_some_and(|h| h == host);
    same_host
        || allowed
            .iter()
            .any(|a| a.trim_end_matches('/') == origin.trim_end_matches('/'))
}

/// `?events=all` (default) or `?events=minimal`; true when role-wide broadcasts
/// (`support_request_new`, `consultant_status_changed`, …) are wanted.
fn events_mode(query: &str) -> Result<bool, &'static str> {
    let asked = url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "events")
        .map(|(_, value)| value.into_owned());
    match asked.as_deref() {
        None | Some("all") => Ok(true),
        Some("minimal") => Ok(false),
        Some(_) => Err("must be all or minimal"),
    }
}

async fn upgrade(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !origin_allowed(&req, &state.config.allowed_origins) {
        return Err(ApiError::Forbidden(
            "this origin may not open the socket".into(),
        ));
    }
    let (token, _) = auth::token_from_request(&req, true)
        .ok_or_else(|| ApiError::Unauthenticated("sign in first: no token was sent".into()))?;
    let user = auth::authenticate(&state, &token).await?;
    let broadcasts = match events_mode(req.query_string()) {
        Ok(broadcasts) => broadcasts,
        Err(message) => return Err(ApiError::invalid("events", message)),
    };
    let actor = session::WsSession::new(
        user,
        state.core.clone(),
        state.dispatcher.clone(),
        broadcasts,
    );
    actix_web_actors::ws::WsResponseBuilder::new(actor, &req, stream)
        .frame_size(64 * 1024)
        .start()
        .map_err(|e| ApiError::BadRequest(format!("websocket handshake failed: {e}")))
}
