//! `/ws`: one WsSession actor per connection (several tabs per user are fine), the
//! fan-out that turns stream events into frames, and the watch that closes sockets
//! whose token was revoked.

pub mod fanout;
pub mod fragments;
pub mod frames;
pub mod registry;
pub mod revocation;
pub mod session;

use std::sync::Arc;

use actix::Addr;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::auth;
use crate::auth::origin::OriginPolicy;
use crate::dispatch::dispatcher::Dispatcher;
use crate::dispatch::presence::Presences;
use crate::error::ApiError;
use crate::limits::{Limits, PermitStream};
use crate::model::EventId;
use crate::support::Core;
use registry::Registry;

/// What every socket needs, shared.
pub struct Sockets {
    pub core: Arc<Core>,
    pub registry: Arc<Registry>,
    pub presences: Arc<Presences>,
    pub dispatcher: Addr<Dispatcher>,
    pub limits: Arc<Limits>,
    /// Pages of these origins may open a socket.
    pub origins: OriginPolicy,
}

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

/// The socket's options from its query string: `events=all|minimal` (whether
/// role-wide broadcasts are wanted) and `since=<event_id>` (resume). Other
/// parameters (the token) are read elsewhere.
struct SocketQuery {
    broadcasts: bool,
    since: Option<EventId>,
}

fn socket_query(query: &str) -> Result<SocketQuery, ApiError> {
    let mut options = SocketQuery {
        broadcasts: true,
        since: None,
    };
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "events" => {
                options.broadcasts = match value.as_ref() {
                    "all" => true,
                    "minimal" => false,
                    _ => return Err(ApiError::invalid("events", "must be all or minimal")),
                }
            }
            "since" => {
                let id: i64 = value
                    .parse()
                    .ok()
                    .filter(|id| *id >= 0)
                    .ok_or_else(|| ApiError::invalid("since", "must be an event id"))?;
                options.since = Some(EventId(id));
            }
            _ => {}
        }
    }
    Ok(options)
}

async fn upgrade(
    req: HttpRequest,
    stream: web::Payload,
    sockets: web::Data<Sockets>,
) -> Result<HttpResponse, ApiError> {
    let core = &sockets.core;
    if !origin_allowed(&req, &sockets.origins) {
        return Err(ApiError::Forbidden(
            "this origin may not open the socket".into(),
        ));
    }
    let query = socket_query(req.query_string())?;
    let (token, _) = auth::token_from_request(&req, true)
        .ok_or_else(|| ApiError::Unauthenticated("sign in first: no token was sent".into()))?;
    let signed_in = auth::authenticate(&core.db, &token).await?;
    let permit = sockets.limits.open_socket(signed_in.user.id)?;
    let actor = session::WsSession::new(
        session::Opening {
            user: signed_in.user,
            token_hash: auth::token_hash(&token),
            token_expires_at: signed_in.expires_at,
            broadcasts: query.broadcasts,
            since: query.since,
        },
        sockets.clone().into_inner(),
    );
    actix_web_actors::ws::WsResponseBuilder::new(actor, &req, PermitStream::new(stream, permit))
        .frame_size(session::MAX_FRAME_BYTES)
        .start()
        .map_err(|e| ApiError::BadRequest(format!("websocket handshake failed: {e}")))
}
