//! `/api/admin/users…`, `/api/admin/hospitals/:id`, `/api/admin/consultants/:id/hours`
//! and `/api/admin/audit…`: the admin console's REST. Admins only. The rules are in
//! [`crate::console`]; what follows a stored change (closing sockets, telling the
//! dispatcher) happens here.

use std::str::FromStr;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::extract::{AuthUser, Body};
use crate::accounts::{HospitalView, PasswordPolicy};
use crate::console::{self, AdminUser, HospitalPatch, HoursItem, UserPatch};
use crate::db::repo;
use crate::db::repo::admin::UserSearch;
use crate::db::repo::audit::{AuditFilter, AuditRow, Entry};
use crate::dispatch::messages::TimezoneChanged;
use crate::error::{ApiError, ApiResult};
use crate::model::{AdminAction, ConsultantStatus, HospitalId, Role, SessionId, UserId};
use crate::state::AppState;
use crate::support::{self, rfc3339};
use crate::validate::{self, Lines};
use crate::ws::registry::Closing;

pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 500;
/// An export is built in one go so a database error is still a JSON error; past this
/// the admin is asked to narrow the filter.
pub const AUDIT_CSV_MAX_ROWS: i64 = 50_000;
/// Longer than any action word; a longer filter is a client bug.
const MAX_ACTION_LEN: usize = 64;
/// Half of the search box: longer text matches nothing a name or email holds.
const MAX_SEARCH_LEN: usize = 200;

const AUDIT_CSV_COLUMNS: [&str; 8] = [
    "id",
    "at",
    "user_id",
    "user_name",
    "action",
    "target_type",
    "target_id",
    "detail",
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/users", web::get().to(search_users))
        .route("/admin/users/{id}", web::get().to(get_user))
        .route("/admin/users/{id}", web::patch().to(patch_user))
        .route("/admin/hospitals/{id}", web::patch().to(patch_hospital))
        .route("/admin/consultants/{id}/hours", web::get().to(get_hours))
        .route("/admin/consultants/{id}/hours", web::put().to(put_hours))
        .route("/admin/audit", web::get().to(audit))
        .route("/admin/audit.csv", web::get().to(audit_csv));
}

/// A query parameter parsed by its type, or a validation error naming it.
fn param<T: FromStr>(field: &str, value: Option<&str>, expected: &str) -> ApiResult<Option<T>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(field, format!("must be {expected}"))),
    }
}

fn page_limit(limit: Option<&str>) -> ApiResult<i64> {
    let limit = param::<i64>("limit", limit, "a whole number")?.unwrap_or(DEFAULT_PAGE);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        ))
    }
}

fn next_cursor(len: usize, limit: i64, last: Option<i64>) -> Option<String> {
    (len as i64 == limit)
        .then(|| last.map(|id| id.to_string()))
        .flatten()
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct UserQuery {
    q: Option<String>,
    role: Option<String>,
    hospital_id: Option<String>,
    active: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct UsersReply {
    users: Vec<AdminUser>,
    next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/admin/users",
    tag = "admin",
    params(UserQuery),
    responses((status = 200, description = "matching accounts", body = UsersReply)),
)]
async fn search_users(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<UserQuery>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin])?;
    let q = query.into_inner();
    let text = match q.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) if t.chars().count() > MAX_SEARCH_LEN => {
            return Err(ApiError::invalid(
                "q",
                format!("must be at most {MAX_SEARCH_LEN} characters"),
            ))
        }
        Some(t) => Some(validate::text("q", t, Lines::Single)?.to_lowercase()),
        None => None,
    };
    let role = param::<Role>(
        "role",
        q.role.as_deref(),
        &format!("one of {}", Role::words()),
    )?;
    let search = UserSearch {
        text,
        role,
        hospital_id: param::<i64>("hospital_id", q.hospital_id.as_deref(), "a hospital id")?
            .map(HospitalId),
        active: param::<bool>("active", q.active.as_deref(), "true or false")?,
        after: param::<i64>("cursor", q.cursor.as_deref(), "a cursor from next_cursor")?
            .map(UserId),
        limit: page_limit(q.limit.as_deref())?,
    };
    let rows = repo::admin::search_users(&state.db, &search).await?;
    let next_cursor = next_cursor(rows.len(), search.limit, rows.last().map(|r| r.id.0));
    Ok(HttpResponse::Ok().json(UsersReply {
        users: rows.iter().map(AdminUser::from).collect(),
        next_cursor,
    }))
}

#[utoipa::path(
    get,
    path = "/api/admin/users/{id}",
    tag = "admin",
    params(("id" = i64, Path, description = "the user")),
    responses((status = 200, description = "the account", body = AdminUser)),
)]
async fn get_user(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin])?;
    let id = UserId(id.into_inner());
    let row = repo::users::by_id(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {id} does not exist")))?;
    Ok(HttpResponse::Ok().json(AdminUser::from(&row)))
}

#[utoipa::path(
    patch,
    path = "/api/admin/users/{id}",
    tag = "admin",
    params(("id" = i64, Path, description = "the user")),
    request_body = UserPatch,
    responses((status = 200, description = "changed (and audited)", body = AdminUser)),
)]
async fn patch_user(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: Body<UserPatch>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin])?;
    let id = UserId(id.into_inner());
    let patch = body.0;
    let deactivating = patch.active == Some(false);
    let policy = PasswordPolicy::from(&state.config.policy);
    let updated = console::update_user(&state.db, user.id(), id, patch, &policy).await?;
    if updated.signed_out {
        let reason = if deactivating {
            "your account was deactivated"
        } else {
            "an administrator changed your account; sign in again"
        };
        // This node's sockets close now; other nodes' through the revocation watch.
        state.registry.close_user(id, Closing::SignedOut(reason));
    }
    if updated.consultant_withdrawn {
        withdraw_consultant(&state, id, user.id()).await;
    }
    tracing::info!(
        admin_id = user.id().0,
        user_id = id.0,
        signed_out = updated.signed_out,
        "user changed by an admin"
    );
    Ok(HttpResponse::Ok().json(AdminUser::from(&updated.row)))
}

/// A consultant who can no longer take calls goes offline now, so the dispatcher
/// stops offering to them (in a call they stay busy until it ends; the call's end
/// frees them as usual and their closed sockets take them offline).
async fn withdraw_consultant(state: &AppState, id: UserId, by: UserId) {
    match support::consultants::set_status(&state.core, id, ConsultantStatus::Offline, by).await {
        Ok(_) => {}
        // In a call (409): the call's end frees them and their closed sockets take
        // them offline.
        Err(ApiError::Conflict(_)) => {}
        Err(e) => tracing::warn!(user_id = id.0, error = %e, "consultant not set offline"),
    }
}

#[utoipa::path(
    patch,
    path = "/api/admin/hospitals/{id}",
    tag = "admin",
    params(("id" = i64, Path, description = "the hospital")),
    request_body = HospitalPatch,
    responses((status = 200, description = "changed (and audited)", body = HospitalView)),
)]
async fn patch_hospital(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: Body<HospitalPatch>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin])?;
    let id = HospitalId(id.into_inner());
    let updated = console::update_hospital(&state.db, user.id(), id, body.0).await?;
    for person in &updated.signed_out {
        state.registry.close_user(
            *person,
            Closing::SignedOut("your hospital's account was deactivated"),
        );
    }
    if updated.timezone_changed {
        state.dispatcher.do_send(TimezoneChanged {
            hospital_id: id,
            timezone: updated.hospital.timezone.clone(),
        });
    }
    tracing::info!(
        admin_id = user.id().0,
        hospital_id = id.0,
        "hospital changed by an admin"
    );
    let hospital: HospitalView = updated.hospital;
    Ok(HttpResponse::Ok().json(hospital))
}

#[derive(Serialize, utoipa::ToSchema)]
struct HoursReply {
    consultant_id: UserId,
    /// Always `UTC`: see [`crate::console`].
    time_zone: &'static str,
    hours: Vec<HoursItem>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct HoursBody {
    hours: Vec<HoursItem>,
}

const HOURS_TIME_ZONE: &str = "UTC";

#[utoipa::path(
    get,
    path = "/api/admin/consultants/{id}/hours",
    tag = "admin",
    params(("id" = i64, Path, description = "the consultant")),
    responses((status = 200, description = "the consultant's working hours", body = HoursReply)),
)]
async fn get_hours(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin])?;
    let consultant = console::consultant(&state.db, UserId(id.into_inner())).await?;
    let rows = repo::admin::hours_of(&state.db, consultant.id).await?;
    Ok(HttpResponse::Ok().json(HoursReply {
        consultant_id: consultant.id,
        time_zone: HOURS_TIME_ZONE,
        hours: console::hours_items(&rows),
    }))
}

#[utoipa::path(
    put,
    path = "/api/admin/consultants/{id}/hours",
    tag = "admin",
    params(("id" = i64, Path, description = "the consultant")),
    request_body = HoursBody,
    responses((status = 200, description = "stored", body = HoursReply)),
)]
async fn put_hours(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: Body<HoursBody>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin])?;
    let rows = console::check_hours(&body.0.hours)?;
    let consultant = console::consultant(&state.db, UserId(id.into_inner())).await?;
    let detail = serde_json::json!({ "intervals": rows.len() }).to_string();
    let entry = Entry {
        by: Some(user.id()),
        action: AdminAction::SetHours.as_str(),
        target_type: console::TARGET_USER,
        target_id: Some(consultant.id.0),
        detail: Some(detail),
        at: repo::now(),
    };
    repo::admin::replace_hours(&state.db, consultant.id, &rows, &entry).await?;
    Ok(HttpResponse::Ok().json(HoursReply {
        consultant_id: consultant.id,
        time_zone: HOURS_TIME_ZONE,
        hours: console::hours_items(&rows),
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    user_id: Option<String>,
    action: Option<String>,
    session_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn audit_filter(q: &AuditQuery) -> ApiResult<AuditFilter> {
    let action = match q.action.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        Some(a) if a.len() > MAX_ACTION_LEN => {
            return Err(ApiError::invalid(
                "action",
                format!("must be at most {MAX_ACTION_LEN} characters"),
            ))
        }
        Some(a) => Some(validate::text("action", a, Lines::Single)?.to_string()),
        None => None,
    };
    let from = q
        .from
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .map(|t| validate::instant("from", t))
        .transpose()?;
    let to =
        q.to.as_deref()
            .filter(|t| !t.trim().is_empty())
            .map(|t| validate::instant("to", t))
            .transpose()?;
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(ApiError::invalid("to", "must not be before from"));
        }
    }
    Ok(AuditFilter {
        user_id: param::<i64>("user_id", q.user_id.as_deref(), "a user id")?.map(UserId),
        action,
        target: param::<i64>("session_id", q.session_id.as_deref(), "a session id")?
            .map(|s| (console::TARGET_SESSION.to_string(), SessionId(s).0)),
        from,
        to,
        before: param::<i64>("cursor", q.cursor.as_deref(), "a cursor from next_cursor")?,
        limit: page_limit(q.limit.as_deref())?,
    })
}

/// An audit row on the wire.
#[derive(Serialize, utoipa::ToSchema)]
struct AuditItem {
    id: i64,
    at: String,
    user_id: Option<UserId>,
    user_name: Option<String>,
    action: String,
    target_type: String,
    target_id: Option<i64>,
    /// What an admin change touched (field names, roles, plans, flags).
    detail: Option<serde_json::Value>,
}

impl From<AuditRow> for AuditItem {
    fn from(r: AuditRow) -> Self {
        AuditItem {
            id: r.id,
            at: rfc3339(r.created_at),
            user_id: r.user_id,
            user_name: r.user_name,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            detail: r
                .detail
                .map(|d| serde_json::from_str(&d).unwrap_or(serde_json::Value::String(d))),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct AuditReply {
    entries: Vec<AuditItem>,
    next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/admin/audit",
    tag = "admin",
    params(AuditQuery),
    responses((status = 200, description = "one page of the audit log, newest first", body = AuditReply)),
)]
async fn audit(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin])?;
    let filter = audit_filter(&query)?;
    let rows = repo::audit::search(&state.db, &filter).await?;
    let next_cursor = next_cursor(rows.len(), filter.limit, rows.last().map(|r| r.id));
    Ok(HttpResponse::Ok().json(AuditReply {
        entries: rows.into_iter().map(AuditItem::from).collect(),
        next_cursor,
    }))
}

/// The same filter as `GET /api/admin/audit`, without paging, as a spreadsheet. The
/// log holds ids, action words and field names, never patient text.
#[utoipa::path(
    get,
    path = "/api/admin/audit.csv",
    tag = "admin",
    params(AuditQuery),
    responses((status = 200, description = "the audit log as CSV", body = String, content_type = "text/csv")),
)]
async fn audit_csv(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin])?;
    let mut q = query.into_inner();
    q.limit = None;
    q.cursor = None;
    let mut filter = audit_filter(&q)?;
    filter.limit = AUDIT_CSV_MAX_ROWS + 1;
    let rows = repo::audit::search(&state.db, &filter).await?;
    if rows.len() as i64 > AUDIT_CSV_MAX_ROWS {
        return Err(ApiError::invalid(
            "from",
            format!("more than {AUDIT_CSV_MAX_ROWS} rows match; narrow the dates or filters"),
        ));
    }
    let body = audit_to_csv(&rows).map_err(|e| ApiError::Internal(format!("CSV encoding: {e}")))?;
    let filename = format!("audit-{}.csv", chrono::Utc::now().format("%Y%m%d-%H%M%S"));
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

fn audit_to_csv(rows: &[AuditRow]) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 96 + 128));
    out.write_record(AUDIT_CSV_COLUMNS)?;
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in rows {
        out.write_record([
            r.id.to_string(),
            rfc3339(r.created_at),
            opt(r.user_id.map(i64::from)),
            super::analytics::defuse_formula(r.user_name.as_deref().unwrap_or_default()),
            super::analytics::defuse_formula(&r.action),
            r.target_type.clone(),
            opt(r.target_id),
            r.detail.clone().unwrap_or_default(),
        ])?;
    }
    out.into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))
}
