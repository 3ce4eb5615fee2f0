//! `/api/support/*`: the session lifecycle over REST.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::AuthUser;
use crate::db::models::{Role, SessionStatus};
use crate::db::repo::{self, sessions::HistoryFilter};
use crate::dispatch::messages::{PositionOf, QueueSnapshot};
use crate::dispatch::service::{self, RequestInput};
use crate::dispatch::view::SessionView;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::validate;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/support/request", web::post().to(request))
        .route("/support/queue", web::get().to(queue))
        .route("/support/accept/{id}", web::post().to(accept))
        .route("/support/decline/{id}", web::post().to(decline))
        .route("/support/cancel/{id}", web::post().to(cancel))
        .route("/support/join/{id}", web::post().to(join))
        .route("/support/end/{id}", web::post().to(end))
        .route("/support/rate/{id}", web::post().to(rate))
        .route("/support/history", web::get().to(history))
        .route("/support/active", web::get().to(active))
        .route("/support/sessions/{id}", web::get().to(detail));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    department: String,
    urgency: Option<String>,
    issue_summary: String,
    consultant_id: Option<i64>,
    wait_for_consultant: Option<bool>,
    hospital_id: Option<i64>,
}

async fn request(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<RequestBody>,
) -> ApiResult<HttpResponse> {
    state.limits.support_request(user.id())?;
    let b = body.into_inner();
    let reply = service::request_support(
        &state.core,
        &state.dispatcher,
        &user.user,
        RequestInput {
            department: b.department,
            urgency: b.urgency,
            issue_summary: b.issue_summary,
            consultant_id: b.consultant_id,
            wait_for_consultant: b.wait_for_consultant,
            hospital_id: b.hospital_id,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(reply))
}

async fn queue(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    user.require(&[Role::Consultant, Role::Admin])?;
    let entries = state
        .dispatcher
        .send(QueueSnapshot)
        .await
        .map_err(|e| ApiError::Unavailable(format!("the dispatcher is restarting ({e})")))?;
    let queue: Vec<_> = entries
        .into_iter()
        .map(|e| {
            json!({
                "session": e.session,
                "position": e.position,
                "waiting_seconds": e.waiting_seconds,
                "estimated_wait_seconds": e.estimated_wait_seconds,
                "offered_to": e.offered_to,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "queue": queue })))
}

async fn accept(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let session =
        service::accept(&state.core, &state.dispatcher, &user.user, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "session": session })))
}

async fn decline(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    service::decline(&state.core, &state.dispatcher, &user.user, id.into_inner()).await?;
    Ok(crate::api::empty_ok())
}

async fn cancel(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    state.limits.cancel(user.id())?;
    let session =
        service::cancel(&state.core, &state.dispatcher, &user.user, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "session": session })))
}

async fn join(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let reply = service::join(&state.core, &user.user, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(reply))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EndBody {
    resolution_notes: Option<String>,
    resolved: Option<bool>,
}

async fn end(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: Option<web::Json<EndBody>>,
) -> ApiResult<HttpResponse> {
    let body = body.map(|b| b.into_inner()).unwrap_or_default();
    let session = service::end(
        &state.core,
        &state.dispatcher,
        &user.user,
        id.into_inner(),
        body.resolution_notes,
        body.resolved,
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "session": session })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateBody {
    rating: i64,
    feedback: Option<String>,
}

async fn rate(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<RateBody>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let session = service::rate(
        &state.core,
        &state.dispatcher,
        &user.user,
        id.into_inner(),
        b.rating,
        b.feedback,
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "session": session })))
}

pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 500;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub status: Option<String>,
    pub department: Option<String>,
    pub hospital_id: Option<i64>,
    pub consultant_id: Option<i64>,
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
        f.status = Some(
            SessionStatus::parse(status)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "status",
                        "must be pending, connecting, active, completed or cancelled",
                    )
                })?
                .as_str()
                .to_string(),
        );
    }
    if let Some(department) = &q.department {
        f.department = Some(
            service::canonical_department(department)
                .ok_or_else(|| ApiError::invalid("department", "unknown department"))?
                .to_string(),
        );
    }
    if let Some(cursor) = &q.cursor {
        f.before_id = Some(cursor.parse().map_err(|_| {
            ApiError::invalid("cursor", "must be the next_cursor of a previous page")
        })?);
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
            f.hospital_id = own.or(Some(-1));
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
    let mut ids: Vec<i64> = rows
        .iter()
        .flat_map(|r| [Some(r.requester_id), r.consultant_id])
        .flatten()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let names: HashMap<i64, String> = repo::users::by_ids(&state.db, &ids)
        .await?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect();
    let sessions: Vec<HistoryItem> = rows
        .iter()
        .map(|r| HistoryItem {
            session: SessionView::from_row(r),
            requester_name: names.get(&r.requester_id).cloned(),
            consultant_name: r.consultant_id.and_then(|id| names.get(&id).cloned()),
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "sessions": sessions, "next_cursor": next_cursor })))
}

/// A history row names both parties (extra fields beside API.md's `Session`), so a list
/// of past calls reads as people rather than ids.
#[derive(Serialize)]
struct HistoryItem {
    #[serde(flatten)]
    session: SessionView,
    requester_name: Option<String>,
    consultant_name: Option<String>,
}

/// The caller's live session; a waiting requester also gets their place in line, so
/// a reloaded waiting room shows it at once.
async fn active(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let row = repo::sessions::live_for_user(&state.db, user.id()).await?;
    let mut info = None;
    if let Some(row) = row
        .as_ref()
        .filter(|r| r.status() == SessionStatus::Pending)
    {
        info = state
            .dispatcher
            .send(PositionOf { session_id: row.id })
            .await
            .ok()
            .flatten();
    }
    Ok(HttpResponse::Ok().json(json!({
        "session": row.as_ref().map(SessionView::from_row),
        "queue_position": info.and_then(|i| i.position),
        "estimated_wait_seconds": info.and_then(|i| i.estimated_wait_seconds),
    })))
}

/// One session with its timeline; every read is audited.
async fn detail(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let row = service::load_visible(&state.core, &user.user, id).await?;
    repo::audit::record(
        &state.db,
        Some(user.id()),
        "read_session",
        "support_session",
        Some(id),
    )
    .await?;
    let events = repo::sessions::events(&state.db, id).await?;
    let timeline: Vec<_> = events
        .iter()
        .map(|e| {
            json!({
                "kind": e.kind,
                "actor_id": e.actor_id,
                "consultant_id": e.consultant_id,
                "at": crate::dispatch::view::rfc3339(e.created_at),
            })
        })
        .collect();
    Ok(HttpResponse::Ok()
        .json(json!({ "session": SessionView::from_row(&row), "events": timeline })))
}
