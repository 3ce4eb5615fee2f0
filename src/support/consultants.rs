//! A consultant's status: the one they choose, and the ones the server sets for them.

use super::Core;
use crate::db::repo::consultants::StatusRule;
use crate::db::repo::{self, Guard};
use crate::error::{ApiError, ApiResult};
use crate::model::{ConsultantStatus, UserId};

/// The statuses a person may choose; `busy` belongs to the server.
pub fn settable(status: ConsultantStatus) -> ApiResult<ConsultantStatus> {
    match status {
        ConsultantStatus::Busy => Err(ApiError::invalid(
            "status",
            "busy is set only by the server, during a call",
        )),
        other => Ok(other),
    }
}

/// A status chosen by the consultant (or an admin for them), stored with its event;
/// the dispatcher applies it when the event reaches it.
pub async fn set_status(
    core: &Core,
    consultant_id: UserId,
    status: ConsultantStatus,
    by: UserId,
) -> ApiResult<ConsultantStatus> {
    let status = settable(status)?;
    let committed = repo::consultants::set_status(
        &core.db,
        consultant_id,
        status,
        StatusRule::NotInCall,
        Some(by),
        repo::now(),
    )
    .await?
    .map_err(|guard| match guard {
        Guard::Missing => ApiError::NotFound(format!("consultant {consultant_id} does not exist")),
        Guard::Busy => {
            ApiError::Conflict("the consultant is in a call; end it before changing status".into())
        }
        _ => ApiError::Conflict("the status cannot be changed now".into()),
    })?;
    core.hub.publish(committed.events, None);
    Ok(status)
}

/// Why the server changes a consultant's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerChange {
    /// Offers missed in a row: `away`.
    MissedOffers,
    /// The last socket closed and the grace period ran out: `offline`.
    PresenceLost,
    /// The first socket of an offline consultant opened: `online`.
    PresenceGained,
    /// The call and its wrap-up time are over: `available` (or `offline` when the
    /// consultant's sockets are gone).
    CallOver { connected: bool },
}

impl ServerChange {
    /// When the change applies: the server sets `online` only for someone offline,
    /// `away` only for someone available, and frees a consultant after a call.
    fn rule(self) -> StatusRule {
        match self {
            ServerChange::PresenceGained => StatusRule::OnlyFrom(ConsultantStatus::Offline),
            ServerChange::MissedOffers => StatusRule::OnlyFrom(ConsultantStatus::Available),
            ServerChange::PresenceLost => StatusRule::NotInCall,
            ServerChange::CallOver { .. } => StatusRule::AfterCall,
        }
    }

    fn status(self) -> ConsultantStatus {
        match self {
            ServerChange::MissedOffers => ConsultantStatus::Away,
            ServerChange::PresenceLost => ConsultantStatus::Offline,
            ServerChange::PresenceGained => ConsultantStatus::Online,
            ServerChange::CallOver { connected: true } => ConsultantStatus::Available,
            ServerChange::CallOver { connected: false } => ConsultantStatus::Offline,
        }
    }
}

/// A status the server sets, stored with its event. `Ok(false)` when it did not
/// apply (the consultant is in a call, or already has that status).
pub async fn server_change(
    core: &Core,
    consultant_id: UserId,
    change: ServerChange,
) -> Result<bool, String> {
    let status = change.status();
    let at = repo::now();
    let stored =
        repo::consultants::set_status(&core.db, consultant_id, status, change.rule(), None, at)
            .await;
    match stored {
        Ok(Ok(committed)) => {
            let changed = !committed.events.is_empty();
            core.hub.publish(committed.events, None);
            Ok(changed)
        }
        Ok(Err(_)) => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}
