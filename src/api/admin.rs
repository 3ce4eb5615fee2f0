use actix_web::{web, HttpResponse};

use super::extract::{AuthUser, Body};
use crate::accounts::{self, HospitalView, NewHospitalInput, NewUserInput, PasswordPolicy};
use crate::console::{TARGET_ASSIGNMENT, TARGET_HOSPITAL, TARGET_USER};
use crate::db::models::AssignmentRow;
use crate::db::repo;
use crate::dispatch::messages::{ConsultantLive, QueueEntry, ViewSnapshot};
use crate::error::{ApiError, ApiResult};
use crate::model::vocab::canonical_department;
use crate::model::{AdminAction, EventId, HospitalId, Role, SessionId, UserId};
use crate::state::AppState;
use crate::support::rfc3339;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/hospitals", web::post().to(create_hospital))
        .route("/admin/hospitals", web::get().to(list_hospitals))
        .route("/admin/users", web::post().to(create_user))
        .route("/admin/unlock", web::post().to(unlock));
}

#[utoipa::path(
    post,
    path = "/api/admin/hospitals",
    tag = "admin",
    request_body = NewHospitalInput,
    responses((status = 201, description = "created", body = HospitalView)),
)]
async fn create_hospital(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Body<NewHospitalInput>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin])?;
    let hospital = accounts::create_hospital(&state.db, body.0).await?;
    audit_change(
        &state,
        &user,
        AdminAction::CreateHospital,
        TARGET_HOSPITAL,
        hospital.id.0,
    )
    .await?;
    Ok(HttpResponse::Created().json(hospital))
}

/// Audits an admin's change that has no detail worth keeping beyond its target (the
/// created object, an assignment by id).
async fn audit_change(
    state: &AppState,
    user: &AuthUser,
    action: AdminAction,
    target_type: &str,
    target_id: i64,
) -> ApiResult<()> {
    repo::audit::record(
        &state.db,
        Some(user.id()),
        action.as_str(),
        target_type,
        Some(target_id),
    )
    .await?;
    Ok(())
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct HospitalsReply {
    hospitals: Vec<HospitalView>,
}

#[utoipa::path(
    get,
    path = "/api/admin/hospitals",
    tag = "admin",
    responses((status = 200, description = "every hospital", body = HospitalsReply)),
)]
async fn list_hospitals(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin])?;
    let hospitals: Vec<HospitalView> = repo::hospitals::list(&state.db)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(HospitalsReply { hospitals }))
}

#[utoipa::path(
    post,
    path = "/api/admin/users",
    tag = "admin",
    request_body = NewUserInput,
    responses((status = 201, description = "created", body = crate::db::models::User)),
)]
async fn create_user(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Body<NewUserInput>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin])?;
    let policy = PasswordPolicy::from(&state.config.policy);
    let created = accounts::create_user(&state.db, body.0, &policy).await?;
    audit_change(
        &state,
        &user,
        AdminAction::CreateUser,
        TARGET_USER,
        created.id.0,
    )
    .await?;
    tracing::info!(admin_id = user.id().0, user_id = created.id.0, role = %created.role, "user created");
    Ok(HttpResponse::Created().json(created))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UnlockBody {
    email: String,
}

/// The reply of `POST /api/admin/unlock`.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct UnlockReply {
    email: String,
    /// Whether the account had failed sign-ins to forget.
    unlocked: bool,
}

/// Forgets an account's failed sign-ins from every address, so someone locked out by
/// a colleague's typos or an attacker can sign in at once. Audited.
#[utoipa::path(
    post,
    path = "/api/admin/unlock",
    tag = "admin",
    request_body = UnlockBody,
    responses((status = 200, description = "the sign-in throttle for that address is cleared", body = UnlockReply)),
)]
async fn unlock(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<UnlockBody>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin])?;
    let email = crate::validate::text("email", body.email.trim(), crate::validate::Lines::Single)?
        .to_lowercase();
    let unlocked = state.login_throttle.unlock(&email);
    let target = repo::users::by_email(&state.db, &email)
        .await?
        .map(|u| u.id.0);
    repo::audit::record(&state.db, Some(user.id()), "unlock_login", "user", target).await?;
    tracing::info!(admin_id = user.id().0, user_id = ?target, unlocked, "sign-in unlocked");
    Ok(HttpResponse::Ok().json(UnlockReply { email, unlocked }))
}

pub fn dispatch_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/assignments", web::get().to(list_assignments))
        .route("/admin/assignments", web::post().to(create_assignment))
        .route("/admin/assignments/{id}", web::put().to(update_assignment))
        .route(
            "/admin/assignments/{id}",
            web::delete().to(delete_assignment),
        )
        .route(
            "/admin/dispatcher/restart",
            web::post().to(restart_dispatcher),
        )
        .route("/admin/dispatcher", web::get().to(dispatcher_view));
}

/// A dedicated assignment as admins write it: all-day when no window is given,
/// otherwise weekly (ISO weekdays, Monday = 1) between two local times.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AssignmentBody {
    consultant_id: UserId,
    staff_id: Option<UserId>,
    hospital_id: Option<HospitalId>,
    department: Option<String>,
    #[serde(default)]
    exclusive: bool,
    weekdays: Option<Vec<u8>>,
    start_time: Option<String>,
    end_time: Option<String>,
}

fn parse_minute(field: &str, text: &str) -> Result<i32, ApiError> {
    let parsed = chrono::NaiveTime::parse_from_str(text.trim(), "%H:%M")
        .map_err(|_| ApiError::invalid(field, "must be a time like 08:30"))?;
    use chrono::Timelike;
    Ok((parsed.hour() * 60 + parsed.minute()) as i32)
}

async fn validate_assignment(
    state: &AppState,
    body: AssignmentBody,
) -> ApiResult<repo::consultants::NewAssignment> {
    use ApiError;
    let consultant = repo::users::by_id(&state.db, body.consultant_id).await?;
    if consultant.is_none_or(|u| u.role != Role::Consultant) {
        return Err(ApiError::invalid("consultant_id", "must be a consultant"));
    }
    if let Some(staff_id) = body.staff_id {
        let staff = repo::users::by_id(&state.db, staff_id).await?;
        if !staff.is_some_and(|u| matches!(u.role, Role::HospitalStaff | Role::HospitalLeadership))
        {
            return Err(ApiError::invalid(
                "staff_id",
                "must be a hospital staff member",
            ));
        }
    }
    if let Some(hospital_id) = body.hospital_id {
        if let Err(crate::db::DbError::NotFound) =
            repo::hospitals::get(&state.db, hospital_id).await
        {
            return Err(ApiError::invalid("hospital_id", "hospital does not exist"));
        }
    }
    if body.staff_id.is_none() && body.hospital_id.is_none() && body.department.is_none() {
        return Err(ApiError::invalid(
            "staff_id",
            "an assignment covers a staff member, a hospital or a department",
        ));
    }
    let department = match &body.department {
        Some(d) => Some(
            canonical_department(d)
                .ok_or_else(|| ApiError::invalid("department", "unknown department"))?
                .to_string(),
        ),
        None => None,
    };
    let weekdays = match &body.weekdays {
        Some(days) if days.is_empty() || days.iter().any(|d| !(1..=7).contains(d)) => {
            return Err(ApiError::invalid(
                "weekdays",
                "ISO weekdays 1 (Monday) to 7 (Sunday)",
            ))
        }
        Some(days) => Some(days.iter().map(u8::to_string).collect::<Vec<_>>().join(",")),
        None => None,
    };
    let (start_minute, end_minute) = match (&body.start_time, &body.end_time) {
        (Some(s), Some(e)) => (
            Some(parse_minute("start_time", s)?),
            Some(parse_minute("end_time", e)?),
        ),
        (None, None) => (None, None),
        _ => {
            return Err(ApiError::invalid(
                "end_time",
                "give both start_time and end_time, or neither",
            ))
        }
    };
    Ok(repo::consultants::NewAssignment {
        consultant_id: body.consultant_id,
        staff_id: body.staff_id,
        hospital_id: body.hospital_id,
        department,
        exclusive: body.exclusive,
        weekdays,
        start_minute,
        end_minute,
    })
}

async fn refresh_assignments(state: &AppState) -> ApiResult<()> {
    let assignments = repo::consultants::assignments_all(&state.db).await?;
    state
        .dispatcher
        .do_send(crate::dispatch::messages::AssignmentsChanged { assignments });
    Ok(())
}

/// A dedicated assignment as API.md shows it: the stored row with its timestamp in
/// RFC 3339 UTC like every other.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct AssignmentView {
    id: i64,
    consultant_id: UserId,
    staff_id: Option<UserId>,
    hospital_id: Option<HospitalId>,
    department: Option<String>,
    exclusive: bool,
    /// ISO weekdays (1 = Monday) as stored: digits separated by commas.
    weekdays: Option<String>,
    start_minute: Option<i32>,
    end_minute: Option<i32>,
    created_at: String,
}

impl From<AssignmentRow> for AssignmentView {
    fn from(row: AssignmentRow) -> AssignmentView {
        AssignmentView {
            id: row.id,
            consultant_id: row.consultant_id,
            staff_id: row.staff_id,
            hospital_id: row.hospital_id,
            department: row.department,
            exclusive: row.exclusive,
            weekdays: row.weekdays,
            start_minute: row.start_minute,
            end_minute: row.end_minute,
            created_at: rfc3339(row.created_at),
        }
    }
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct AssignmentsReply {
    assignments: Vec<AssignmentView>,
}

#[utoipa::path(
    get,
    path = "/api/admin/assignments",
    tag = "admin",
    responses((status = 200, description = "dedicated consultants of hospitals", body = AssignmentsReply)),
)]
async fn list_assignments(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin])?;
    let rows = repo::consultants::assignments_all(&state.db).await?;
    Ok(HttpResponse::Ok().json(AssignmentsReply {
        assignments: rows.into_iter().map(AssignmentView::from).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/api/admin/assignments",
    tag = "admin",
    request_body = AssignmentBody,
    responses((status = 201, description = "created", body = AssignmentView)),
)]
async fn create_assignment(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Body<AssignmentBody>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin])?;
    let new = validate_assignment(&state, body.0).await?;
    let row = repo::consultants::create_assignment(&state.db, &new).await?;
    audit_change(
        &state,
        &user,
        AdminAction::CreateAssignment,
        TARGET_ASSIGNMENT,
        row.id,
    )
    .await?;
    refresh_assignments(&state).await?;
    Ok(HttpResponse::Created().json(AssignmentView::from(row)))
}

#[utoipa::path(
    put,
    path = "/api/admin/assignments/{id}",
    tag = "admin",
    params(("id" = i64, Path, description = "the assignment")),
    request_body = AssignmentBody,
    responses((status = 200, description = "changed", body = AssignmentView)),
)]
async fn update_assignment(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: Body<AssignmentBody>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin])?;
    let id = id.into_inner();
    let new = validate_assignment(&state, body.0).await?;
    let row = repo::consultants::update_assignment(&state.db, id, &new)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("assignment {id} does not exist")))?;
    audit_change(
        &state,
        &user,
        AdminAction::UpdateAssignment,
        TARGET_ASSIGNMENT,
        id,
    )
    .await?;
    refresh_assignments(&state).await?;
    Ok(HttpResponse::Ok().json(AssignmentView::from(row)))
}

#[utoipa::path(
    delete,
    path = "/api/admin/assignments/{id}",
    tag = "admin",
    params(("id" = i64, Path, description = "the assignment")),
    responses((status = 200, description = "removed", body = crate::api::Empty)),
)]
async fn delete_assignment(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin])?;
    let id = id.into_inner();
    if !repo::consultants::delete_assignment(&state.db, id).await? {
        return Err(ApiError::NotFound(format!(
            "assignment {id} does not exist"
        )));
    }
    audit_change(
        &state,
        &user,
        AdminAction::DeleteAssignment,
        TARGET_ASSIGNMENT,
        id,
    )
    .await?;
    refresh_assignments(&state).await?;
    Ok(crate::api::empty_ok())
}

/// Operators can make the dispatcher rebuild its view from the database, exactly as
/// after a crash.
#[utoipa::path(
    post,
    path = "/api/admin/dispatcher/restart",
    tag = "admin",
    responses((status = 200, description = "the dispatcher rebuilt its state from storage", body = crate::api::Empty)),
)]
async fn restart_dispatcher(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin])?;
    tracing::warn!(admin_id = user.id().0, "dispatcher restart requested");
    state.dispatcher.do_send(crate::dispatch::messages::Crash);
    Ok(crate::api::empty_ok())
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct QueueItemView {
    session_id: SessionId,
    requester_id: UserId,
    position: usize,
    offered_to: Option<UserId>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct DeskView {
    id: UserId,
    status: crate::model::ConsultantStatus,
    offer: Option<SessionId>,
    session: Option<SessionId>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct DispatcherReply {
    ready: bool,
    processed_event_id: EventId,
    queue: Vec<QueueItemView>,
    consultants: Vec<DeskView>,
    /// `null` when the dispatcher's invariants hold, else what is wrong.
    problem: Option<String>,
}

/// The dispatcher's view, for operators checking it against storage (and for the
/// property test, which does exactly that after every step).
#[utoipa::path(
    get,
    path = "/api/admin/dispatcher",
    tag = "admin",
    responses((status = 200, description = "the dispatcher's view, to check against storage", body = DispatcherReply)),
)]
async fn dispatcher_view(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    user.require(&[Role::Admin])?;
    let view = state
        .dispatcher
        .send(ViewSnapshot)
        .await
        .map_err(|e| ApiError::Unavailable(format!("the dispatcher is restarting ({e})")))?;
    let queue = view
        .queue
        .into_iter()
        .map(|e: QueueEntry| QueueItemView {
            session_id: e.session.id,
            requester_id: e.session.requester_id,
            position: e.position,
            offered_to: e.offered_to,
        })
        .collect();
    let consultants = view
        .consultants
        .into_iter()
        .map(|c: ConsultantLive| DeskView {
            id: c.id,
            status: c.status,
            offer: c.offer,
            session: c.session,
        })
        .collect();
    Ok(HttpResponse::Ok().json(DispatcherReply {
        ready: view.ready,
        processed_event_id: view.processed,
        queue,
        consultants,
        problem: view.invariants.err(),
    }))
}
