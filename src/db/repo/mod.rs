//! Repositories: the only code that builds queries. Each function takes the `Db` and
//! runs its body through `db_run!`, so callers never see which backend answered.
//! State changes return what they committed with its events
//! ([`events::Committed`]); the caller publishes the events.

pub mod admin;
pub mod analytics;
pub mod audit;
pub mod consultants;
pub mod events;
pub mod hospitals;
pub mod offers;
pub mod provision;
pub mod retention;
pub mod sessions;
pub mod snapshot;
pub mod sso;
pub mod statements;
pub mod tokens;
mod tx;
pub mod users;

use crate::model::Refusal;

/// "Now" as stored: UTC without an offset, the same on both backends.
pub fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// Why a guarded change did not happen; nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// No such session (or offer).
    Missing,
    /// The session's status does not allow the action (the lifecycle table).
    Refused(Refusal),
    /// The consultant holds no pending offer of this request.
    NotOffered,
    /// The request's offer is held by another consultant.
    OfferedToAnother,
    /// The consultant is in a call, or no longer available for an offer.
    Busy,
    /// Done once already (a rating, a wrap-up).
    AlreadyDone,
    /// The caller is not a party of the session.
    NotAParty,
    /// The requester already has a live session.
    LiveElsewhere,
    /// The dispatch epoch has moved on: a newer dispatcher leads.
    Fenced,
}

pub type Guarded<T> = crate::db::DbResult<Result<T, Guard>>;
