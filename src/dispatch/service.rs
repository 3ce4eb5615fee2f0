//! The session lifecycle of DESIGN.md §5 as async functions shared by the REST
//! handlers, the WebSocket frames and auto-accept: commit first, then tell the
//! dispatcher, then notify the parties.

use std::time::Instant;

use actix::Addr;
use serde::Serialize;

use super::dispatcher::Dispatcher;
use super::matching::MatchChoice;
use super::messages::*;
use super::view::SessionView;
use crate::db::models::{
    ConsultantStatus, NewSession, Plan, Role, SessionRow, SessionStatus, UrgencyText, User,
    DEPARTMENTS,
};
use crate::db::repo::{self, sessions::Guard};
use crate::error::{ApiError, ApiResult};
use crate::state::Core;
use crate::video::{IceServer, Participant, Room};
use crate::ws::frames::ServerEvent;

pub const MAX_SUMMARY_CHARS: usize = 2000;
pub const MAX_NOTES_CHARS: usize = 5000;
pub const MAX_FEEDBACK_CHARS: usize = 2000;

/// Canonical spelling of a department, case-insensitively.
pub fn canonical_department(text: &str) -> Option<&'static str> {
    DEPARTMENTS
        .iter()
        .copied()
        .find(|d| d.eq_ignore_ascii_case(text.trim()))
}

/// Free text from a person: trimmed, bounded, no control characters but newlines/tabs.
pub fn clean_text(
    field: &str,
    text: &str,
    max_chars: usize,
    required: bool,
) -> ApiResult<Option<String>> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return if required {
            Err(ApiError::invalid(field, "must not be empty"))
        } else {
            Ok(None)
        };
    }
    if trimmed.chars().count() > max_chars {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(Some(trimmed.to_string()))
}

fn refusal(refusal: Refusal, session_id: i64) -> ApiError {
    match refusal {
        Refusal::NotPending => ApiError::Conflict(format!(
            "support session {session_id} is not waiting for a consultant"
        )),
        Refusal::Conflict(message) => ApiError::Conflict(message),
    }
}

fn guard_error(guard: Guard, session_id: i64, action: &str) -> ApiError {
    match guard {
        Guard::Missing => {
            ApiError::NotFound(format!("support session {session_id} does not exist"))
        }
        Guard::WrongState(status) => ApiError::Conflict(format!(
            "cannot {action} support session {session_id}: it is {status}"
        )),
    }
}

fn mailbox(e: actix::MailboxError) -> ApiError {
    ApiError::Unavailable(format!("the dispatcher is restarting, try again ({e})"))
}

pub async fn load_session(core: &Core, session_id: i64) -> ApiResult<SessionRow> {
    repo::sessions::get(&core.db, session_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("support session {session_id} does not exist")))
}

/// Who may see a session at all (DESIGN.md §8): admins, its two parties, and the
/// leadership of its hospital. Everyone else is told it does not exist, so ids from
/// another hospital reveal nothing.
pub fn can_view(user: &User, row: &SessionRow) -> bool {
    match user.role {
        Role::Admin => true,
        Role::HospitalLeadership => {
            user.hospital_id == Some(row.hospital_id) || row.requester_id == user.id
        }
        Role::HospitalStaff => row.requester_id == user.id,
        Role::Consultant => row.consultant_id == Some(user.id),
    }
}

/// Loads a session the user may see; anything else is reported as missing.
pub async fn load_visible(core: &Core, user: &User, session_id: i64) -> ApiResult<SessionRow> {
    let row = load_session(core, session_id).await?;
    if can_view(user, &row) {
        Ok(row)
    } else {
        Err(ApiError::NotFound(format!(
            "support session {session_id} does not exist"
        )))
    }
}

pub fn is_party(user_id: i64, row: &SessionRow) -> bool {
    row.requester_id == user_id || row.consultant_id == Some(user_id)
}

pub struct RequestInput {
    pub department: String,
    pub urgency: Option<String>,
    pub issue_summary: String,
    pub consultant_id: Option<i64>,
    pub wait_for_consultant: Option<bool>,
    pub hospital_id: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct RequestReply {
    pub session: SessionView,
    pub queue_position: Option<usize>,
    pub estimated_wait_seconds: Option<u64>,
}

pub async fn request_support(
    core: &Core,
    dispatcher: &Addr<Dispatcher>,
    user: &User,
    input: RequestInput,
) -> ApiResult<RequestReply> {
    let received = Instant::now();
    if !matches!(
        user.role,
        Role::HospitalStaff | Role::HospitalLeadership | Role::Admin
    ) {
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
    let urgency = match input.urgency.as_deref() {
        None => UrgencyText::Normal,
        Some(text) => UrgencyText::parse(text.trim())
            .ok_or_else(|| ApiError::invalid("urgency", "must be normal, urgent or critical"))?,
    };
    let summary = clean_text(
        "issue_summary",
        &input.issue_summary,
        MAX_SUMMARY_CHARS,
        true,
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
        Err(crate::db::DbError::NotFound) => {
            return Err(ApiError::invalid(
                "hospital_id",
                format!("hospital {hospital_id} does not exist"),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let plan = Plan::parse(&hospital.plan).unwrap_or(Plan::Basic);
    if !plan.includes_video() {
        return Err(ApiError::PlanNotIncluded(format!(
            "the {} plan does not include live video support; Premium and Enterprise do",
            plan.as_str()
        )));
    }
    if let Some(consultant_id) = input.consultant_id {
        let is_consultant = repo::users::by_id(&core.db, consultant_id)
            .await?
            .is_some_and(|u| u.role == Role::Consultant.as_str());
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
        urgency: urgency.as_str(),
        status: SessionStatus::Pending.as_str(),
        issue_summary: &summary,
        requested_consultant_id: input.consultant_id,
        wait_for_consultant: input.wait_for_consultant.unwrap_or(false)
            && input.consultant_id.is_some(),
        created_at: now,
        response_deadline: now + super::queue::plan_response_target(plan.as_str()),
    };
    let row = repo::sessions::create_request(&core.db, &new)
        .await
        .map_err(|e| match e {
            crate::db::DbError::Conflict(_) => {
                ApiError::Conflict("you already have a live support request or call".into())
            }
            other => other.into(),
        })?;
    tracing::info!(
        session_id = row.id,
        hospital_id,
        department,
        urgency = urgency.as_str(),
        "support requested"
    );
    let session = SessionView::from_row(&row);
    // Stored: from here on the request survives anything. If the dispatcher is
    // restarting it will find the request in storage.
    let info = dispatcher
        .send(NewRequest { row, received })
        .await
        .unwrap_or(QueueInfo {
            position: None,
            estimated_wait_seconds: None,
        });
    Ok(RequestReply {
        session,
        queue_position: info.position,
        estimated_wait_seconds: info.estimated_wait_seconds,
    })
}

pub async fn accept(
    core: &Core,
    dispatcher: &Addr<Dispatcher>,
    user: &User,
    session_id: i64,
) -> ApiResult<SessionView> {
    match user.role {
        Role::Consultant => accept_inner(core, dispatcher, session_id, user.id, false).await,
        Role::Admin => accept_inner(core, dispatcher, session_id, user.id, true).await,
        _ => Err(ApiError::Forbidden(
            "only consultants and admins accept requests".into(),
        )),
    }
}

/// Auto-accept takes the same path as a click on Accept.
pub async fn accept_as_consultant(
    core: &Core,
    dispatcher: &Addr<Dispatcher>,
    session_id: i64,
    consultant_id: i64,
) -> ApiResult<SessionView> {
    accept_inner(core, dispatcher, session_id, consultant_id, false).await
}

async fn accept_inner(
    core: &Core,
    dispatcher: &Addr<Dispatcher>,
    session_id: i64,
    consultant_id: i64,
    by_admin: bool,
) -> ApiResult<SessionView> {
    let reserved: Result<MatchChoice, Refusal> = dispatcher
        .send(ReserveAccept {
            session_id,
            consultant_id,
            by_admin,
        })
        .await
        .map_err(mailbox)?;
    let choice = match reserved {
        Ok(choice) => choice,
        Err(Refusal::NotPending) => {
            let row = load_session(core, session_id).await?;
            return Err(ApiError::Conflict(format!(
                "support session {session_id} is {}, not pending",
                row.status
            )));
        }
        Err(r) => return Err(refusal(r, session_id)),
    };
    let room = match core.video.create_room(session_id).await {
        Ok(room) => room,
        Err(e) => {
            dispatcher.do_send(AcceptAborted { session_id });
            return Err(e.into());
        }
    };
    let reasons = serde_json::to_string(&choice.reasons).unwrap_or_else(|_| "[]".into());
    let acceptance = repo::sessions::Acceptance {
        session_id,
        consultant_id,
        at: repo::now(),
        match_tier: choice.tier.as_str(),
        match_score: choice.score,
        match_reasons: reasons,
        provider: core.video.kind().as_str(),
        room_name: &room.name,
        room_url: room.url.as_deref(),
    };
    let stored = repo::sessions::accept(&core.db, &acceptance).await;
    let row = match stored {
        Ok(Ok(row)) => row,
        other => {
            dispatcher.do_send(AcceptAborted { session_id });
            delete_room_later(core, session_id, room.name.clone());
            return Err(match other {
                Ok(Err(guard)) => guard_error(guard, session_id, "accept"),
                Err(e) => e.into(),
                Ok(Ok(_)) => ApiError::Internal("unreachable".into()),
            });
        }
    };
    tracing::info!(
        session_id,
        consultant_id,
        tier = choice.tier.as_str(),
        "request accepted"
    );
    dispatcher.do_send(AcceptCommitted { row: row.clone() });
    let session = SessionView::from_row(&row);
    core.registry.send_to_users(
        &[row.requester_id, consultant_id],
        &ServerEvent::SupportRequestAccepted {
            session: session.clone(),
        },
    );
    Ok(session)
}

pub async fn decline(
    core: &Core,
    dispatcher: &Addr<Dispatcher>,
    user: &User,
    session_id: i64,
) -> ApiResult<()> {
    if user.role != Role::Consultant {
        return Err(ApiError::Forbidden(
            "only the offered consultant can decline".into(),
        ));
    }
    match dispatcher
        .send(Decline {
            session_id,
            consultant_id: user.id,
        })
        .await
        .map_err(mailbox)?
    {
        Ok(()) => Ok(()),
        Err(Refusal::NotPending) => {
            load_session(core, session_id).await?;
            Err(ApiError::Conflict(format!(
                "support session {session_id} is not waiting for you"
            )))
        }
        Err(r) => Err(refusal(r, session_id)),
    }
}

pub async fn cancel(
    core: &Core,
    dispatcher: &Addr<Dispatcher>,
    user: &User,
    session_id: i64,
) -> ApiResult<SessionView> {
    let row = load_visible(core, user, session_id).await?;
    if user.role != Role::Admin && row.requester_id != user.id {
        return Err(ApiError::Forbidden(
            "only the requester or an admin can cancel".into(),
        ));
    }
    let withdrawn = if row.status() == SessionStatus::Pending {
        dispatcher
            .send(WithdrawForCancel { session_id })
            .await
            .map_err(mailbox)?
            .map_err(|r| refusal(r, session_id))?
    } else {
        None
    };
    let stored = repo::sessions::cancel(&core.db, session_id, user.id, repo::now()).await;
    let cancelled = match stored {
        Ok(Ok(row)) => row,
        other => {
            if let Some(withdrawn) = withdrawn {
                dispatcher.do_send(Restore { withdrawn });
            }
            return Err(match other {
                Ok(Err(guard)) => guard_error(guard, session_id, "cancel"),
                Err(e) => e.into(),
                Ok(Ok(_)) => ApiError::Internal("unreachable".into()),
            });
        }
    };
    tracing::info!(session_id, by = user.id, "support request cancelled");
    let event = ServerEvent::SupportRequestCancelled { session_id };
    core.registry.broadcast(&event, |role| {
        matches!(role, Role::Consultant | Role::Admin)
    });
    core.registry.send_to_user(cancelled.requester_id, &event);
    if cancelled.consultant_id.is_some() {
        // It was connecting: free the consultant and drop the room.
        dispatcher.do_send(SessionFinished {
            row: cancelled.clone(),
        });
        if let Some(room) = cancelled.room_name.clone() {
            delete_room_later(core, session_id, room);
        }
    }
    Ok(SessionView::from_row(&cancelled))
}

#[derive(Debug, Serialize)]
pub struct JoinReply {
    pub provider: &'static str,
    pub room_name: String,
    pub room_url: Option<String>,
    pub token: Option<String>,
    pub ice_servers: Vec<IceServer>,
    pub session: SessionView,
}

pub async fn join(core: &Core, user: &User, session_id: i64) -> ApiResult<JoinReply> {
    let row = load_visible(core, user, session_id).await?;
    if user.role != Role::Admin && !is_party(user.id, &row) {
        return Err(ApiError::Forbidden(
            "only the two parties of a call can join it".into(),
        ));
    }
    if !matches!(
        row.status(),
        SessionStatus::Connecting | SessionStatus::Active
    ) {
        return Err(ApiError::Conflict(format!(
            "support session {session_id} is {}, not in a call",
            row.status
        )));
    }
    let room_name = row
        .room_name
        .clone()
        .ok_or_else(|| ApiError::Internal(format!("session {session_id} has no room")))?;
    let room = Room {
        name: room_name.clone(),
        url: row.room_url.clone(),
        expires_at: None,
    };
    let participant = Participant {
        user_id: user.id,
        display_name: user.name.clone(),
        is_owner: row.consultant_id == Some(user.id) || user.role == Role::Admin,
    };
    let token = core.video.create_meeting_token(&room, &participant).await?;
    repo::audit::record(
        &core.db,
        Some(user.id),
        "join_call",
        "support_session",
        Some(session_id),
    )
    .await?;
    Ok(JoinReply {
        provider: core.video.kind().as_str(),
        room_name,
        room_url: row.room_url.clone(),
        token,
        ice_servers: core.video.ice_servers(),
        session: SessionView::from_row(&row),
    })
}

pub async fn end(
    core: &Core,
    dispatcher: &Addr<Dispatcher>,
    user: &User,
    session_id: i64,
    notes: Option<String>,
    resolved: Option<bool>,
) -> ApiResult<SessionView> {
    let row = load_visible(core, user, session_id).await?;
    if user.role != Role::Admin && !is_party(user.id, &row) {
        return Err(ApiError::Forbidden(
            "only the two parties of a call can end it".into(),
        ));
    }
    let notes = match notes {
        Some(text) => clean_text("resolution_notes", &text, MAX_NOTES_CHARS, false)?,
        None => None,
    };
    let ending = repo::sessions::Ending {
        session_id,
        ended_by: user.id,
        at: repo::now(),
        resolution_notes: notes.as_deref(),
        resolved,
    };
    let row = match repo::sessions::end(&core.db, &ending).await? {
        Ok(row) => row,
        Err(guard) => return Err(guard_error(guard, session_id, "end")),
    };
    tracing::info!(
        session_id,
        by = user.id,
        duration = row.duration_seconds,
        "session ended"
    );
    dispatcher.do_send(SessionFinished { row: row.clone() });
    let session = SessionView::from_row(&row);
    let mut parties = vec![row.requester_id];
    parties.extend(row.consultant_id);
    core.registry.send_to_users(
        &parties,
        &ServerEvent::SupportSessionEnded {
            session: session.clone(),
        },
    );
    if let Some(room) = row.room_name.clone() {
        delete_room_later(core, session_id, room);
    }
    Ok(session)
}

pub async fn rate(
    core: &Core,
    dispatcher: &Addr<Dispatcher>,
    user: &User,
    session_id: i64,
    rating: i64,
    feedback: Option<String>,
) -> ApiResult<SessionView> {
    let row = load_visible(core, user, session_id).await?;
    if row.requester_id != user.id {
        return Err(ApiError::Forbidden(
            "only the requester can rate a session".into(),
        ));
    }
    if !(1..=5).contains(&rating) {
        return Err(ApiError::invalid(
            "rating",
            "must be a whole number from 1 to 5",
        ));
    }
    let feedback = match feedback {
        Some(text) => clean_text("feedback", &text, MAX_FEEDBACK_CHARS, false)?,
        None => None,
    };
    let row = match repo::sessions::rate(
        &core.db,
        session_id,
        rating as i32,
        feedback.as_deref(),
        repo::now(),
    )
    .await?
    {
        Ok(row) => row,
        Err(Guard::WrongState(status)) if status == "completed" => {
            return Err(ApiError::Conflict(format!(
                "support session {session_id} is already rated"
            )))
        }
        Err(guard) => return Err(guard_error(guard, session_id, "rate")),
    };
    if let Some(consultant_id) = row.consultant_id {
        dispatcher.do_send(Rated {
            staff_id: row.requester_id,
            consultant_id,
            rating: rating as u8,
        });
    }
    Ok(SessionView::from_row(&row))
}

pub fn parse_settable_status(text: &str) -> ApiResult<ConsultantStatus> {
    match ConsultantStatus::parse(text.trim()) {
        Some(ConsultantStatus::Busy) => Err(ApiError::invalid(
            "status",
            "busy is set only by the server, during a call",
        )),
        Some(status) => Ok(status),
        None => Err(ApiError::invalid(
            "status",
            "must be online, available, away or offline",
        )),
    }
}

/// A consultant's chosen status, stored and then applied by the dispatcher.
pub async fn set_status(
    core: &Core,
    dispatcher: &Addr<Dispatcher>,
    consultant_id: i64,
    status: ConsultantStatus,
) -> ApiResult<ConsultantStatus> {
    let stored = repo::consultants::availability_of(&core.db, consultant_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("consultant {consultant_id} does not exist")))?;
    if stored.current_session_id.is_some() || stored.status == ConsultantStatus::Busy.as_str() {
        return Err(ApiError::Conflict(
            "you are in a call; end it before changing status".into(),
        ));
    }
    repo::consultants::set_status(&core.db, consultant_id, status.as_str(), None).await?;
    dispatcher.do_send(StatusChanged {
        consultant_id,
        status,
    });
    Ok(status)
}

/// A party's browser is in the call; when both are, the session becomes `active`.
pub async fn call_joined(core: &Core, user: &User, session_id: i64) -> ApiResult<()> {
    let parties = parties_of(core, session_id).await?;
    if !parties.is_some_and(|(r, c)| r == user.id || c == user.id) {
        return Err(ApiError::Forbidden(
            "you are not a party of this call".into(),
        ));
    }
    // With Daily the same join is reported twice (the browser's frame and the
    // webhook); the timeline records it once.
    let (newly, both) = match core.calls.get_mut(&session_id) {
        Some(mut call) => {
            let newly = call.joined.insert(user.id);
            let both = call.joined.contains(&call.requester_id)
                && call.joined.contains(&call.consultant_id);
            (newly, both)
        }
        None => (true, false),
    };
    if newly {
        core.background
            .event(session_id, "joined", Some(user.id), None, None);
    }
    if both {
        if let Ok(row) = repo::sessions::mark_started(&core.db, session_id, repo::now()).await? {
            tracing::info!(session_id, "call active");
            let mut parties = vec![row.requester_id];
            parties.extend(row.consultant_id);
            core.registry.send_to_users(
                &parties,
                &ServerEvent::SupportSessionStarted {
                    session: SessionView::from_row(&row),
                },
            );
        }
    }
    Ok(())
}

pub async fn call_left(core: &Core, user: &User, session_id: i64) -> ApiResult<()> {
    if let Some(mut call) = core.calls.get_mut(&session_id) {
        if call.requester_id == user.id || call.consultant_id == user.id {
            call.joined.remove(&user.id);
            drop(call);
            core.background
                .event(session_id, "left", Some(user.id), None, None);
            return Ok(());
        }
    }
    Err(ApiError::Forbidden(
        "you are not a party of this call".into(),
    ))
}

/// Relays a WebRTC signalling payload to the other party only.
pub async fn signal(
    core: &Core,
    user: &User,
    session_id: i64,
    payload: serde_json::Value,
) -> ApiResult<()> {
    let Some((requester, consultant)) = parties_of(core, session_id).await? else {
        return Err(ApiError::Forbidden(
            "no call in progress for that session".into(),
        ));
    };
    let other = if user.id == requester {
        consultant
    } else if user.id == consultant {
        requester
    } else {
        return Err(ApiError::Forbidden(
            "you are not a party of this call".into(),
        ));
    };
    core.registry.send_to_user(
        other,
        &ServerEvent::Signal {
            session_id,
            from: user.id,
            payload,
        },
    );
    Ok(())
}

/// The parties of a connecting or active call, from the cache or (after a restart)
/// from storage.
async fn parties_of(core: &Core, session_id: i64) -> ApiResult<Option<(i64, i64)>> {
    if let Some(call) = core.calls.get(&session_id) {
        return Ok(Some((call.requester_id, call.consultant_id)));
    }
    let Some(row) = repo::sessions::get(&core.db, session_id).await? else {
        return Ok(None);
    };
    match (row.status(), row.consultant_id) {
        (SessionStatus::Connecting | SessionStatus::Active, Some(consultant_id)) => {
            core.calls.insert(
                session_id,
                crate::state::CallParties {
                    requester_id: row.requester_id,
                    consultant_id,
                    hospital_id: row.hospital_id,
                    joined: Default::default(),
                },
            );
            Ok(Some((row.requester_id, consultant_id)))
        }
        _ => Ok(None),
    }
}

/// Rooms are deleted after the reply; a failure is retried by the sweeper, and the
/// session is complete either way.
pub fn delete_room_later(core: &Core, session_id: i64, room_name: String) {
    let video = core.video.clone();
    let background = core.background.clone();
    actix::spawn(async move {
        match video.delete_room(&room_name).await {
            Ok(()) => background.room_deleted(session_id),
            Err(e) => tracing::warn!(session_id, error = %e, "room delete failed; will retry"),
        }
    });
}

/// Deletes rooms left behind (failed deletes, a crash between end and delete).
pub async fn sweep_rooms(core: &Core) {
    let Ok(rooms) = repo::sessions::rooms_to_delete(&core.db).await else {
        return;
    };
    for (session_id, room_name) in rooms {
        match core.video.delete_room(&room_name).await {
            Ok(()) => {
                let _ = repo::sessions::mark_room_deleted(&core.db, session_id).await;
            }
            Err(e) => tracing::warn!(session_id, error = %e, "room sweep: delete failed"),
        }
    }
}
