//! The support-session domain: every operation of DESIGN.md §5 as an async function
//! shared by the REST handlers, the WebSocket frames, the dispatcher and auto-accept.
//!
//! Each one validates, commits one transaction (its events included), publishes the
//! committed events to the [`Hub`], and returns. It never builds a socket frame and
//! never tells an actor: the fan-out and the dispatcher learn of the change from the
//! event stream, like every other subscriber, on this node or (several nodes) another.

pub mod calls;
pub mod consultants;
pub mod live_calls;
pub mod offers;
pub mod requests;
pub mod rooms;
pub mod text;
pub mod view;

use std::sync::Arc;

use crate::config::ServeArgs;
use crate::db::models::{SessionRow, User};
use crate::db::repo::events::Committed;
use crate::db::repo::{self, Guard};
use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::events::Hub;
use crate::metrics::Metrics;
use crate::model::{Role, SessionId, SessionStatus};
use crate::video::VideoProvider;

pub use live_calls::LiveCalls;
pub use view::{rfc3339, MatchView, SessionView};

/// What the domain needs to do its work; shared by every handler and actor.
pub struct Core {
    pub db: Db,
    pub config: Arc<ServeArgs>,
    pub metrics: Arc<Metrics>,
    pub video: Arc<dyn VideoProvider>,
    pub hub: Hub,
    /// The parties of calls in progress, kept from the event stream.
    pub calls: Arc<LiveCalls>,
}

impl Core {
    /// Publishes what a session change committed and returns the row.
    pub fn publish(&self, committed: Committed<SessionRow>) -> SessionRow {
        let row = committed.value;
        let snapshot = Arc::new(row.clone());
        self.hub.publish(committed.events, Some(snapshot));
        row
    }
}

pub fn not_found(session_id: SessionId) -> ApiError {
    ApiError::NotFound(format!("support session {session_id} does not exist"))
}

/// Who may see a session at all (DESIGN.md §8): admins, its two parties, the
/// leadership of its hospital, and consultants while it waits in the queue (they see
/// the queue). Everyone else is told it does not exist, whatever its state, so ids
/// reveal nothing.
pub fn can_view(user: &User, row: &SessionRow) -> bool {
    match user.role {
        Role::Admin => true,
        Role::HospitalLeadership => {
            user.hospital_id == Some(row.hospital_id) || row.requester_id == user.id
        }
        Role::HospitalStaff => row.requester_id == user.id,
        Role::Consultant => {
            row.consultant_id == Some(user.id) || row.status == SessionStatus::Pending
        }
    }
}

/// Loads a session the user may see; anything else is reported as missing.
pub async fn load_visible(
    core: &Core,
    user: &User,
    session_id: SessionId,
) -> ApiResult<SessionRow> {
    match repo::sessions::get(&core.db, session_id).await? {
        Some(row) if can_view(user, &row) => Ok(row),
        _ => Err(not_found(session_id)),
    }
}

/// The one mapping of a refused guarded change to its client error.
pub fn guard_error(guard: Guard, session_id: SessionId) -> ApiError {
    match guard {
        Guard::Missing => not_found(session_id),
        Guard::Refused(refusal) => {
            ApiError::Conflict(format!("support session {session_id}: {refusal}"))
        }
        Guard::NotOffered => ApiError::Conflict(format!(
            "support session {session_id} is not offered to you"
        )),
        Guard::OfferedToAnother => ApiError::Conflict(format!(
            "support session {session_id} is offered to another consultant"
        )),
        Guard::Busy => ApiError::Conflict("you are already in a call".into()),
        Guard::AlreadyDone => ApiError::Conflict(format!(
            "support session {session_id}: that has already been recorded"
        )),
        Guard::NotAParty => not_found(session_id),
        Guard::LiveElsewhere => {
            ApiError::Conflict("you already have a live support request or call".into())
        }
        Guard::Fenced => ApiError::Unavailable(
            "dispatch is moving to another node; try again in a moment".into(),
        ),
    }
}
