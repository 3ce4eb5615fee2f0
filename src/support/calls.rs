//! The call: joining, being in it, relaying signalling, ending it, and what comes
//! after (wrap-up, rating), plus the provider rooms' lifetime.

use serde::Deserialize;

use super::live_calls::Parties;
use super::text::{clean_text, Presence, MAX_FEEDBACK_CHARS, MAX_NOTES_CHARS};
use super::{guard_error, load_visible, not_found, Core, SessionView};
use crate::db::models::User;
use crate::db::repo;
use crate::db::repo::sessions::{Ending, PartyPresence, WrapUp};
use crate::error::{ApiError, ApiResult};
use crate::model::lifecycle::{transition, Action};
use crate::model::{ConsultantStatus, Role, SessionId, UserId};
use crate::video::{IceServer, Participant, Room};

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct JoinReply {
    pub provider: &'static str,
    pub room_name: String,
    pub room_url: Option<String>,
    pub token: Option<String>,
    pub ice_servers: Vec<IceServer>,
    pub session: SessionView,
}

/// A party's (or an admin's) credentials for the call.
pub async fn join(core: &Core, user: &User, session_id: SessionId) -> ApiResult<JoinReply> {
    let row = load_visible(core, user, session_id).await?;
    if user.role != Role::Admin && !row.is_party(user.id) {
        return Err(not_found(session_id));
    }
    transition(row.status, Action::Join)
        .map_err(|refusal| guard_error(repo::Guard::Refused(refusal), session_id))?;
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
        user_id: user.id.0,
        display_name: user.name.clone(),
        is_owner: row.consultant_id == Some(user.id) || user.role == Role::Admin,
    };
    let token = core.video.create_meeting_token(&room, &participant).await?;
    repo::audit::record(
        &core.db,
        Some(user.id),
        "join_call",
        "support_session",
        Some(session_id.0),
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

/// A party's browser is in the call (or Daily says so); when both are, the session
/// becomes `active`.
pub async fn call_joined(core: &Core, user: &User, session_id: SessionId) -> ApiResult<()> {
    let committed = repo::sessions::joined(&core.db, session_id, user.id, repo::now())
        .await?
        .map_err(|guard| party_guard(guard, session_id))?;
    let row = core.publish(committed);
    if row.started_at.is_some() {
        tracing::debug!(session_id = session_id.0, "call active");
    }
    Ok(())
}

pub async fn call_left(core: &Core, user: &User, session_id: SessionId) -> ApiResult<()> {
    let committed = repo::sessions::left(&core.db, session_id, user.id, repo::now())
        .await?
        .map_err(|guard| party_guard(guard, session_id))?;
    core.publish(committed);
    Ok(())
}

/// Call frames about a session the caller is no party of get the same answer as a
/// session that does not exist, whatever its state.
fn party_guard(guard: repo::Guard, session_id: SessionId) -> ApiError {
    match guard {
        repo::Guard::Refused(_) => ApiError::Conflict(format!(
            "no call in progress for support session {session_id}"
        )),
        other => guard_error(other, session_id),
    }
}

/// Every socket of `user_id` has been gone past the grace period while in a call
/// (`Gone`), or one is back (`Back`): the other party is told.
pub async fn party_presence(
    core: &Core,
    session_id: SessionId,
    user_id: UserId,
    presence: PartyPresence,
) -> ApiResult<()> {
    let committed =
        repo::sessions::party_presence(&core.db, session_id, user_id, presence, repo::now())
            .await?
            .map_err(|guard| party_guard(guard, session_id))?;
    core.publish(committed);
    Ok(())
}

/// Who a WebRTC signalling payload from `user` goes to: the other party of a call in
/// progress. Someone who is not a party learns nothing about the session.
pub async fn signal_target(core: &Core, user: &User, session_id: SessionId) -> ApiResult<UserId> {
    if let Some(parties) = core.calls.get(session_id) {
        return parties
            .other_than(user.id)
            .ok_or_else(|| not_found(session_id));
    }
    // Not in the live view: a frame racing the accept's event, or no call.
    match repo::sessions::get(&core.db, session_id).await? {
        Some(row) if row.is_party(user.id) => Parties::of(&row)
            .and_then(|p| p.other_than(user.id))
            .ok_or_else(|| {
                ApiError::Conflict(format!(
                    "no call in progress for support session {session_id}"
                ))
            }),
        _ => Err(not_found(session_id)),
    }
}

/// `POST /api/support/end/:id`'s body. Notes and the resolution are the consultant's
/// (or an admin's); the requester ends with an empty body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndInput {
    pub resolution_notes: Option<String>,
    pub resolved: Option<bool>,
}

pub async fn end(
    core: &Core,
    user: &User,
    session_id: SessionId,
    input: EndInput,
) -> ApiResult<SessionView> {
    let row = load_visible(core, user, session_id).await?;
    if user.role != Role::Admin && !row.is_party(user.id) {
        return Err(not_found(session_id));
    }
    let notes = match input.resolution_notes.as_deref() {
        Some(text) => clean_text(
            "resolution_notes",
            text,
            MAX_NOTES_CHARS,
            Presence::Optional,
        )?,
        None => None,
    };
    let records_outcome = user.role == Role::Admin || row.consultant_id == Some(user.id);
    let wrap_up = match (input.resolved, notes.as_deref()) {
        (Some(_), _) | (None, Some(_)) if !records_outcome => {
            return Err(ApiError::invalid(
                "resolved",
                "only the consultant records notes and whether the issue was resolved",
            ))
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid(
                "resolved",
                "say whether the issue was resolved when you add notes",
            ))
        }
        (Some(resolved), notes) => Some(WrapUp {
            resolution_notes: notes,
            resolved,
        }),
        (None, None) => None,
    };
    let consultant_after = if core.config.wrap_up().is_zero() {
        ConsultantStatus::Available
    } else {
        ConsultantStatus::Busy
    };
    let ending = Ending {
        session_id,
        ended_by: user.id,
        at: repo::now(),
        wrap_up,
        consultant_after,
    };
    let committed = repo::sessions::end(&core.db, &ending)
        .await?
        .map_err(|guard| guard_error(guard, session_id))?;
    let row = core.publish(committed);
    tracing::info!(
        session_id = session_id.0,
        by = user.id.0,
        duration = row.duration_seconds,
        "session ended"
    );
    if let Some(room) = row.room_name.clone() {
        delete_room_later(core, session_id, room);
    }
    Ok(SessionView::from_row(&row))
}

/// `POST /api/support/wrapup/:id`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WrapUpInput {
    pub resolution_notes: Option<String>,
    pub resolved: bool,
}

/// The consultant's notes and resolution for a call that ended without them (the
/// requester ended it, or the consultant left the form for later); once.
pub async fn wrap_up(
    core: &Core,
    user: &User,
    session_id: SessionId,
    input: WrapUpInput,
) -> ApiResult<SessionView> {
    let row = load_visible(core, user, session_id).await?;
    if user.role != Role::Admin && row.consultant_id != Some(user.id) {
        return Err(ApiError::Forbidden(
            "only the session's consultant or an admin wraps it up".into(),
        ));
    }
    let notes = match input.resolution_notes.as_deref() {
        Some(text) => clean_text(
            "resolution_notes",
            text,
            MAX_NOTES_CHARS,
            Presence::Optional,
        )?,
        None => None,
    };
    let committed = repo::sessions::wrap_up(
        &core.db,
        session_id,
        user.id,
        WrapUp {
            resolution_notes: notes.as_deref(),
            resolved: input.resolved,
        },
        repo::now(),
    )
    .await?
    .map_err(|guard| guard_error(guard, session_id))?;
    Ok(SessionView::from_row(&core.publish(committed)))
}

/// `POST /api/support/rate/:id`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateInput {
    /// 1 to 5.
    #[schema(minimum = 1, maximum = 5)]
    pub rating: i64,
    pub feedback: Option<String>,
}

pub async fn rate(
    core: &Core,
    user: &User,
    session_id: SessionId,
    input: RateInput,
) -> ApiResult<SessionView> {
    let row = load_visible(core, user, session_id).await?;
    if row.requester_id != user.id {
        return Err(ApiError::Forbidden(
            "only the requester can rate a session".into(),
        ));
    }
    let rating = u8::try_from(input.rating)
        .ok()
        .filter(|r| (1..=5).contains(r))
        .ok_or_else(|| ApiError::invalid("rating", "must be a whole number from 1 to 5"))?;
    let feedback = match input.feedback.as_deref() {
        Some(text) => clean_text("feedback", text, MAX_FEEDBACK_CHARS, Presence::Optional)?,
        None => None,
    };
    let committed = repo::sessions::rate(
        &core.db,
        session_id,
        rating,
        feedback.as_deref(),
        repo::now(),
    )
    .await?
    .map_err(|guard| match guard {
        repo::Guard::AlreadyDone => {
            ApiError::Conflict(format!("support session {session_id} is already rated"))
        }
        other => guard_error(other, session_id),
    })?;
    Ok(SessionView::from_row(&core.publish(committed)))
}

/// Rooms are deleted after the reply; a failure is retried by the sweeper, and the
/// session is complete either way.
pub fn delete_room_later(core: &Core, session_id: SessionId, room_name: String) {
    let video = core.video.clone();
    let db = core.db.clone();
    actix::spawn(async move {
        match video.delete_room(&room_name).await {
            Ok(()) => {
                if let Err(e) = repo::sessions::mark_room_deleted(&db, session_id).await {
                    tracing::warn!(session_id = session_id.0, error = %e, "room deleted but not marked; the sweeper will");
                }
            }
            Err(e) => {
                tracing::warn!(session_id = session_id.0, error = %e, "room delete failed; will retry")
            }
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
                if let Err(e) = repo::sessions::mark_room_deleted(&core.db, session_id).await {
                    tracing::warn!(session_id = session_id.0, error = %e, "room sweep: cannot mark deleted");
                }
            }
            Err(e) => {
                tracing::warn!(session_id = session_id.0, error = %e, "room sweep: delete failed")
            }
        }
    }
}
