//! `/api/support/*`: the session lifecycle over REST.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::extract::{AuthUser, Body, OptionalBody};
use crate::db::repo::{self, sessions::HistoryFilter};
use crate::dispatch::board::Place;
use crate::dispatch::messages::{PlaceOf, PlaceOfRequester, QueueSnapshot};
use crate::error::{ApiError, ApiResult};
use crate::model::vocab::canonical_department;
use crate::model::{EventKind, HospitalId, OfferId, Role, SessionId, SessionStatus, UserId};
use crate::state::AppState;
use crate::support::calls::{EndInput, JoinReply, RateInput, WrapUpInput};
use crate::support::requests::RequestInput;
use crate::support::{self, calls, offers, requests, rfc3339, MatchView, SessionView};
use crate::validate;

/// How long a request's reply waits for the dispatcher to place it in line; past
/// this the reply goes out without a position (the socket brings it).
const PLACE_WAIT: Duration = Duration::from_secs(1);

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/support/request", web::post().to(request))
        .route("/support/queue", web::get().to(queue))
        .route("/support/accept/{id}", web::post().to(accept))
        .route("/support/take/{id}", web::post().to(take))
        .route("/support/decline/{id}", web::post().to(decline))
        .route("/support/cancel/{id}", web::post().to(cancel))
        .route("/support/join/{id}", web::post().to(join))
        .route("/support/end/{id}", web::post().to(end))
        .route("/support/wrapup/{id}", web::post().to(wrap_up))
        .route("/support/rate/{id}", web::post().to(rate))
        .route("/support/history", web::get().to(history))
        .route("/support/active", web::get().to(active))
        .route("/support/sessions/{id}", web::get().to(detail));
}

/// The `{id}` of the session routes, for the API document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the document's derive, never built
struct SessionPath {
    /// the session
    id: SessionId,
}

/// A session, the one reply shape of most endpoints.
#[derive(Serialize, utoipa::ToSchema)]
struct SessionReply {
    session: SessionView,
}

fn session_reply(session: SessionView) -> HttpResponse {
    HttpResponse::Ok().json(SessionReply { session })
}

/// Where a waiting request stands (`queue_position` / `estimated_wait_seconds`).
#[derive(Serialize, utoipa::ToSchema)]
struct RequestReply {
    session: SessionView,
    queue_position: Option<usize>,
    estimated_wait_seconds: Option<u64>,
}

#[utoipa::path(
    post,
    path = "/api/support/request",
    tag = "support",
    request_body = RequestInput,
    responses((status = 201, description = "stored and in line", body = RequestReply)),
)]
async fn request(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Body<RequestInput>,
) -> ApiResult<HttpResponse> {
    state.limits.support_request(user.id())?;
    let requested = requests::request_support(&state.core, &user.user, body.0).await?;
    let session_id = requested.session.id;
    let ask = state.dispatcher.send(PlaceOf {
        session_id,
        after: requested.event_id,
    });
    let place: Option<Place> = tokio::time::timeout(PLACE_WAIT, ask)
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
    Ok(HttpResponse::Created().json(RequestReply {
        session: requested.session,
        queue_position: place.map(|p| p.position),
        estimated_wait_seconds: place.map(|p| p.estimated_wait_seconds),
    }))
}

/// An offer as the queue shows it to the consultant who holds it (and to admins),
/// so a reloaded queue page restores the offer card with its countdown and reasons.
#[derive(Serialize, utoipa::ToSchema)]
struct OfferView {
    offer_id: OfferId,
    expires_at: String,
    #[serde(rename = "match")]
    match_info: MatchView,
}

#[derive(Serialize, utoipa::ToSchema)]
struct QueueItem {
    session: SessionView,
    position: usize,
    waiting_seconds: i64,
    estimated_wait_seconds: u64,
    offered_to: Option<UserId>,
    offer: Option<OfferView>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct QueueReply {
    queue: Vec<QueueItem>,
}

#[utoipa::path(
    get,
    path = "/api/support/queue",
    tag = "support",
    responses((status = 200, description = "the waiting requests in the order they are served", body = QueueReply)),
)]
async fn queue(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    user.require(&[Role::Consultant, Role::Admin])?;
    let entries = state
        .dispatcher
        .send(QueueSnapshot)
        .await
        .map_err(|e| ApiError::Unavailable(format!("the dispatcher is restarting ({e})")))?;
    let mut queue = Vec::with_capacity(entries.len());
    for e in entries {
        let own = e.offered_to == Some(user.id()) || user.is(Role::Admin);
        let offer = match (own, e.offered_to) {
            (true, Some(_)) => repo::offers::pending_for(&state.db, e.session.id)
                .await?
                .map(|o| OfferView {
                    offer_id: o.id,
                    expires_at: rfc3339(o.expires_at),
                    match_info: MatchView::new(o.tier, o.score, Some(&o.reasons)),
                }),
            _ => None,
        };
        queue.push(QueueItem {
            session: e.session,
            position: e.position,
            waiting_seconds: e.waiting_seconds,
            estimated_wait_seconds: e.estimated_wait_seconds,
            offered_to: e.offered_to,
            offer,
        });
    }
    Ok(HttpResponse::Ok().json(QueueReply { queue }))
}

#[utoipa::path(
    post,
    path = "/api/support/accept/{id}",
    tag = "support",
    params(SessionPath),
    responses((status = 200, description = "accepted: the call is being set up", body = SessionReply)),
)]
async fn accept(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<SessionId>,
) -> ApiResult<HttpResponse> {
    Ok(session_reply(
        offers::accept(&state.core, &user.user, id.into_inner()).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/api/support/take/{id}",
    tag = "support",
    params(SessionPath),
    responses((status = 200, description = "taken from the queue", body = SessionReply)),
)]
async fn take(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<SessionId>,
) -> ApiResult<HttpResponse> {
    Ok(session_reply(
        offers::take(&state.core, &user.user, id.into_inner()).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/api/support/decline/{id}",
    tag = "support",
    params(SessionPath),
    responses((status = 200, description = "declined; the request goes to someone else", body = crate::api::Empty)),
)]
async fn decline(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<SessionId>,
) -> ApiResult<HttpResponse> {
    offers::decline(&state.core, &user.user, id.into_inner()).await?;
    Ok(crate::api::empty_ok())
}

#[utoipa::path(
    post,
    path = "/api/support/cancel/{id}",
    tag = "support",
    params(SessionPath),
    responses((status = 200, description = "cancelled", body = SessionReply)),
)]
async fn cancel(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<SessionId>,
) -> ApiResult<HttpResponse> {
    state.limits.cancel(user.id())?;
    Ok(session_reply(
        requests::cancel(&state.core, &user.user, id.into_inner()).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/api/support/join/{id}",
    tag = "support",
    params(SessionPath),
    responses((status = 200, description = "what the browser needs to join the call", body = JoinReply)),
)]
async fn join(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<SessionId>,
) -> ApiResult<web::Json<JoinReply>> {
    Ok(web::Json(
        calls::join(&state.core, &user.user, id.into_inner()).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/api/support/end/{id}",
    tag = "support",
    params(SessionPath),
    request_body(content = Option<EndInput>, description = "optional: the consultant may record the outcome at once"),
    responses((status = 200, description = "ended", body = SessionReply)),
)]
async fn end(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<SessionId>,
    body: OptionalBody<EndInput>,
) -> ApiResult<HttpResponse> {
    Ok(session_reply(
        calls::end(&state.core, &user.user, id.into_inner(), body.0).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/api/support/wrapup/{id}",
    tag = "support",
    params(SessionPath),
    request_body = WrapUpInput,
    responses((status = 200, description = "notes and resolution recorded", body = SessionReply)),
)]
async fn wrap_up(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<SessionId>,
    body: Body<WrapUpInput>,
) -> ApiResult<HttpResponse> {
    Ok(session_reply(
        calls::wrap_up(&state.core, &user.user, id.into_inner(), body.0).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/api/support/rate/{id}",
    tag = "support",
    params(SessionPath),
    request_body = RateInput,
    responses((status = 200, description = "rated", body = SessionReply)),
)]
async fn rate(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<SessionId>,
    body: Body<RateInput>,
) -> ApiResult<HttpResponse> {
    Ok(session_reply(
        calls::rate(&state.core, &user.user, id.into_inner(), body.0).await?,
    ))
}

pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 500;

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub status: Option<String>,
    pub department: Option<String>,
    pub hospital_id: Option<HospitalId>,
    pub consultant_id: Option<UserId>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Time zone for analytics (ignored by history).
    pub tz: Option<String>,
}

/// Turns query filters into a repository filter with the caller's scope applied
/// (DESIGN.md §8): admins see all, leadership their hospital, others their own.
pub fn scoped_filter(user: &AuthUser, q: &HistoryQuery) -> ApiResult<HistoryFilter> {
    let mut f = HistoryFilter {
        limit: q.limit.unwrap_or(DEFAULT_PAGE),
        ..Default::default()
    };
    if !(1..=MAX_PAGE).contains(&f.limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        ));
    }
    if let Some(from) = &q.from {
        f.from = Some(validate::instant("from", from)?);
    }
    if let Some(to) = &q.to {
        f.to = Some(validate::instant("to", to)?);
    }
    if let Some(status) = &q.status {
        f.status = Some(SessionStatus::parse(status).ok_or_else(|| {
            ApiError::invalid(
                "status",
                format!("must be one of {}", SessionStatus::words()),
            )
        })?);
    }
    if let Some(department) = &q.department {
        f.department = Some(
            canonical_department(department)
                .ok_or_else(|| ApiError::invalid("department", "unknown department"))?
                .to_string(),
        );
    }
    if let Some(cursor) = &q.cursor {
        f.before_id = Some(SessionId(cursor.parse().map_err(|_| {
            ApiError::invalid("cursor", "must be the next_cursor of a previous page")
        })?));
    }
    f.consultant_id = q.consultant_id;
    match user.role() {
        Role::Admin => f.hospital_id = q.hospital_id,
        Role::HospitalLeadership => {
            let own = user.user.hospital_id;
            if q.hospital_id.is_some() && q.hospital_id != own {
                return Err(ApiError::Forbidden(
                    "leadership sees its own hospital only".into(),
                ));
            }
            f.hospital_id = own.or(Some(HospitalId(-1)));
        }
        Role::Consultant => {
            f.party = Some(user.id());
            f.hospital_id = q.hospital_id;
        }
        Role::HospitalStaff => {
            f.requester_id = Some(user.id());
            f.hospital_id = q.hospital_id;
        }
    }
    Ok(f)
}

/// A history row names both parties (extra fields beside API.md's `Session`), so a list
/// of past calls reads as people rather than ids.
#[derive(Serialize, utoipa::ToSchema)]
struct HistoryItem {
    #[serde(flatten)]
    session: SessionView,
    requester_name: Option<String>,
    consultant_name: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct HistoryReply {
    sessions: Vec<HistoryItem>,
    next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/support/history",
    tag = "support",
    params(HistoryQuery),
    responses((status = 200, description = "one page of past sessions, newest first", body = HistoryReply)),
)]
async fn history(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<HistoryQuery>,
) -> ApiResult<HttpResponse> {
    let filter = scoped_filter(&user, &query)?;
    let rows = repo::sessions::history(&state.db, &filter).await?;
    let next_cursor = (rows.len() as i64 == filter.limit)
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    repo::audit::record(
        &state.db,
        Some(user.id()),
        "list_sessions",
        "support_session",
        None,
    )
    .await?;
    let mut ids: Vec<UserId> = rows.iter().flat_map(|r| r.parties()).collect();
    ids.sort_unstable();
    ids.dedup();
    let names: HashMap<UserId, String> = repo::users::by_ids(&state.db, &ids)
        .await?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect();
    let sessions = rows
        .iter()
        .map(|r| HistoryItem {
            session: SessionView::from_row(r),
            requester_name: names.get(&r.requester_id).cloned(),
            consultant_name: r.consultant_id.and_then(|id| names.get(&id).cloned()),
        })
        .collect();
    Ok(HttpResponse::Ok().json(HistoryReply {
        sessions,
        next_cursor,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct ActiveReply {
    session: Option<SessionView>,
    queue_position: Option<usize>,
    estimated_wait_seconds: Option<u64>,
}

/// The caller's live session; a waiting requester also gets their place in line, so
/// a reloaded waiting room shows it at once.
#[utoipa::path(
    get,
    path = "/api/support/active",
    tag = "support",
    responses((status = 200, description = "the caller's live session, if any", body = ActiveReply)),
)]
async fn active(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let row = repo::sessions::live_for_user(&state.db, user.id()).await?;
    let mut place = None;
    if row
        .as_ref()
        .is_some_and(|r| r.status == SessionStatus::Pending && r.requester_id == user.id())
    {
        place = state
            .dispatcher
            .send(PlaceOfRequester {
                requester_id: user.id(),
            })
            .await
            .ok()
            .flatten();
    }
    Ok(HttpResponse::Ok().json(ActiveReply {
        session: row.as_ref().map(SessionView::from_row),
        queue_position: place.map(|p| p.position),
        estimated_wait_seconds: place.map(|p| p.estimated_wait_seconds),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct TimelineEntry {
    kind: EventKind,
    actor_id: Option<UserId>,
    consultant_id: Option<UserId>,
    at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct DetailReply {
    session: SessionView,
    events: Vec<TimelineEntry>,
}

/// One session with its timeline; every read is audited.
#[utoipa::path(
    get,
    path = "/api/support/sessions/{id}",
    tag = "support",
    params(SessionPath),
    responses((status = 200, description = "the session and its timeline", body = DetailReply)),
)]
async fn detail(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<SessionId>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let row = support::load_visible(&state.core, &user.user, id).await?;
    repo::audit::record(
        &state.db,
        Some(user.id()),
        "read_session",
        "support_session",
        Some(id.0),
    )
    .await?;
    let events = repo::events::of_session(&state.db, id)
        .await?
        .into_iter()
        .map(|e| TimelineEntry {
            kind: e.kind,
            actor_id: e.actor_id,
            consultant_id: e.consultant_id,
            at: rfc3339(e.created_at),
        })
        .collect();
    Ok(HttpResponse::Ok().json(DetailReply {
        session: SessionView::from_row(&row),
        events,
    }))
}
