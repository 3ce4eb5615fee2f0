//! `/ws`: one WsSession actor per connection (several tabs per user are fine).

pub mod fragments;
pub mod frames;
pub mod registry;
pub mod session;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::auth;
use crate::auth::origin::OriginPolicy;
use crate::error::ApiError;
use crate::limits::PermitStream;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(upgrade));
}

/// Browsers send `Origin` on WebSocket upgrades and cannot forge it; a page from
/// another site must not ride a signed-in user's cookie into our socket. The allowed
/// origins come from configuration only ([`crate::auth::origin`]).
fn origin_allowed(req: &HttpRequest, policy: &OriginPolicy) -> bool {
    match req.headers().get(actix_web::http::header::ORIGIN) {
        // Non-browser clients (load generators, integrations) send no Origin.
        None => true,
        Some(origin) => origin.to_str().is_ok_and(|o| policy.allows(o)),
    }
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
    if !origin_allowed(&req, &state.origins) {
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
    let permit = state.limits.open_socket(user.id)?;
    let actor = session::WsSession::new(
        user,
        state.core.clone(),
        state.dispatcher.clone(),
        broadcasts,
    );
    actix_web_actors::ws::WsResponseBuilder::new(actor, &req, PermitStream::new(stream, permit))
        .frame_size(session::MAX_FRAME_BYTES)
        .start()
        .map_err(|e| ApiError::BadRequest(format!("websocket handshake failed: {e}")))
}
