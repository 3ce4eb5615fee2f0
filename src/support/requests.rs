//! Asking for help, and taking the request back.

use serde::Deserialize;

use super::text::{clean_text, Presence, MAX_SUMMARY_CHARS};
use super::{guard_error, load_visible, Core, SessionView};
use crate::db::models::{NewSession, User};
use crate::db::{repo, DbError};
use crate::error::{ApiError, ApiResult};
use crate::model::vocab::{canonical_department, DEPARTMENTS};
use crate::model::{EventId, HospitalId, Role, SessionId, SessionStatus, Urgency, UserId};

/// `POST /api/support/request`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestInput {
    #[schema(schema_with = crate::model::vocab::department_schema)]
    pub department: String,
    #[serde(default)]
    pub urgency: Urgency,
    pub issue_summary: String,
    pub consultant_id: Option<UserId>,
    #[serde(default)]
    pub wait_for_consultant: bool,
    pub hospital_id: Option<HospitalId>,
}

/// The stored request and the id of its `requested` event (so the caller can ask the
/// dispatcher for its place once the dispatcher has seen it).
pub struct Requested {
    pub session: SessionView,
    pub event_id: EventId,
}

pub async fn request_support(
    core: &Core,
    user: &User,
    input: RequestInput,
) -> ApiResult<Requested> {
    if !user.role.requests_support() {
        return Err(ApiError::Forbidden(
            "only hospital staff, leadership and admins request support".into(),
        ));
    }
    let department = canonical_department(&input.department).ok_or_else(|| {
        ApiError::invalid(
            "department",
            format!("must be one of {}", DEPARTMENTS.join(", ")),
        )
    })?;
    let summary = clean_text(
        "issue_summary",
        &input.issue_summary,
        MAX_SUMMARY_CHARS,
        Presence::Required,
    )?
    .unwrap_or_default();
    let hospital_id = match (user.role, user.hospital_id, input.hospital_id) {
        (Role::Admin, _, Some(id)) => id,
        (Role::Admin, _, None) => {
            return Err(ApiError::invalid(
                "hospital_id",
                "an admin must say which hospital the request is for",
            ))
        }
        (_, Some(own), None) => own,
        (_, Some(own), Some(asked)) if asked == own => own,
        (_, _, Some(_)) => {
            return Err(ApiError::invalid(
                "hospital_id",
                "you can only request support for your own hospital",
            ))
        }
        (_, None, None) => {
            return Err(ApiError::Forbidden(
                "your account is not attached to a hospital".into(),
            ))
        }
    };
    let hospital = match repo::hospitals::get(&core.db, hospital_id).await {
        Ok(h) => h,
        Err(DbError::NotFound) => {
            return Err(ApiError::invalid(
                "hospital_id",
                format!("hospital {hospital_id} does not exist"),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    if !hospital.plan.includes_video() {
        return Err(ApiError::PlanNotIncluded(format!(
            "the {} plan does not include live video support; Premium and Enterprise do",
            hospital.plan
        )));
    }
    if let Some(consultant_id) = input.consultant_id {
        let is_consultant = repo::users::by_id(&core.db, consultant_id)
            .await?
            .is_some_and(|u| u.role == Role::Consultant);
        if !is_consultant {
            return Err(ApiError::invalid(
                "consultant_id",
                format!("consultant {consultant_id} does not exist"),
            ));
        }
    }
    let now = repo::now();
    let new = NewSession {
        hospital_id,
        requester_id: user.id,
        department,
        urgency: input.urgency,
        status: SessionStatus::Pending,
        issue_summary: &summary,
        requested_consultant_id: input.consultant_id,
        wait_for_consultant: input.wait_for_consultant && input.consultant_id.is_some(),
        created_at: now,
        response_deadline: now + hospital.plan.response_target(),
    };
    let committed = repo::sessions::create_request(&core.db, &new)
        .await?
        .map_err(|_live_elsewhere| {
            ApiError::Conflict("you already have a live support request or call".into())
        })?;
    let event_id = committed.events.last().map(|e| e.id).unwrap_or(EventId(0));
    let row = core.publish(committed);
    tracing::info!(
        session_id = row.id.0,
        hospital_id = hospital_id.0,
        department,
        urgency = %row.urgency,
        "support requested"
    );
    Ok(Requested {
        session: SessionView::from_row(&row),
        event_id,
    })
}

/// The requester (or an admin) withdraws a request, or abandons a call that has not
/// started yet. An offer out for it is withdrawn in the same transaction.
pub async fn cancel(core: &Core, user: &User, session_id: SessionId) -> ApiResult<SessionView> {
    let row = load_visible(core, user, session_id).await?;
    if user.role != Role::Admin && row.requester_id != user.id {
        return Err(ApiError::Forbidden(
            "only the requester or an admin can cancel".into(),
        ));
    }
    let committed = repo::sessions::cancel(&core.db, session_id, user.id, repo::now())
        .await?
        .map_err(|guard| guard_error(guard, session_id))?;
    let row = core.publish(committed);
    tracing::info!(
        session_id = session_id.0,
        by = user.id.0,
        "support request cancelled"
    );
    if let Some(room) = row.room_name.clone() {
        super::calls::delete_room_later(core, session_id, room);
    }
    Ok(SessionView::from_row(&row))
}
