//! The protocol between actors, in one place (the actix chat example's habit): what
//! handlers ask the Dispatcher, and what the per-request and per-consultant actors
//! report to it.

use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::db::models::{AssignmentRow, ConsultantStatus, SessionRow};
use crate::dispatch::matching::{MatchChoice, Proficiency};
use crate::dispatch::view::SessionView;

/// Why the dispatcher refused; the service layer maps it to 404/409.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The dispatcher has no pending request by that id.
    NotPending,
    Conflict(String),
}

/// Where a new request stands right after it was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueInfo {
    pub position: Option<usize>,
    pub estimated_wait_seconds: Option<u64>,
}

/// A request was committed; match it now.
#[derive(Message)]
#[rtype(result = "QueueInfo")]
pub struct NewRequest {
    pub row: SessionRow,
    /// When the handler received it, so dispatch latency covers the whole path.
    pub received: Instant,
}

/// First half of an accept: reserve the request for this consultant (exclusive) so no
/// timeout, cancel or second accept can interleave while the room is created and the
/// acceptance committed.
#[derive(Message)]
#[rtype(result = "Result<MatchChoice, Refusal>")]
pub struct ReserveAccept {
    pub session_id: i64,
    pub consultant_id: i64,
    pub by_admin: bool,
}

/// The acceptance is committed: the request leaves the queue, the consultant is busy.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AcceptCommitted {
    pub row: SessionRow,
}

/// The acceptance failed (video down, database down): the request is pending again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AcceptAborted {
    pub session_id: i64,
}

#[derive(Message)]
#[rtype(result = "Result<(), Refusal>")]
pub struct Decline {
    pub session_id: i64,
    pub consultant_id: i64,
}

/// Takes a pending request out of the live view before its cancellation is stored.
/// Returns the request's state so it can be put back if the store fails.
#[derive(Message)]
#[rtype(result = "Result<Option<Withdrawn>, Refusal>")]
pub struct WithdrawForCancel {
    pub session_id: i64,
}

pub struct Withdrawn {
    pub row: SessionRow,
    pub excluded: Vec<i64>,
}

/// Puts a withdrawn request back (its cancellation could not be stored).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Restore {
    pub withdrawn: Withdrawn,
}

/// A connecting or active session finished (completed or cancelled): its consultant
/// frees up after any wrap-up, and a completed one teaches the matcher.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionFinished {
    pub row: SessionRow,
}

/// A rating was stored.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Rated {
    pub staff_id: i64,
    pub consultant_id: i64,
    pub rating: u8,
}

/// A consultant's chosen status was stored.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StatusChanged {
    pub consultant_id: i64,
    pub status: ConsultantStatus,
}

/// The consultant opened their first socket.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PresenceGained {
    pub consultant_id: i64,
}

/// The consultant's last socket closed and the grace period ran out.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PresenceLost {
    pub consultant_id: i64,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct SpecialtiesChanged {
    pub consultant_id: i64,
    pub specialties: Vec<(String, Proficiency)>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct PreferencesChanged {
    pub staff_id: i64,
    pub ordered: Vec<i64>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct AssignmentsChanged {
    pub assignments: Vec<AssignmentRow>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct AutoAcceptChanged {
    pub consultant_id: i64,
    pub enabled: bool,
}

/// The offer timer of a pending request ran out.
#[derive(Message)]
#[rtype(result = "()")]
pub struct OfferExpired {
    pub session_id: i64,
    pub consultant_id: i64,
    pub offer_seq: u64,
}

pub struct QueueEntry {
    pub session: SessionView,
    pub position: usize,
    pub waiting_seconds: i64,
    pub estimated_wait_seconds: u64,
    pub offered_to: Option<i64>,
}

#[derive(Message)]
#[rtype(result = "Vec<QueueEntry>")]
pub struct QueueSnapshot;

/// What the dispatcher believes about one consultant (for `/api/consultants/available`).
#[derive(Debug, Clone)]
pub struct ConsultantLive {
    pub id: i64,
    pub name: String,
    pub status: ConsultantStatus,
    pub specialties: Vec<(String, Proficiency)>,
    pub auto_accept: bool,
    pub offer: Option<i64>,
    pub session: Option<i64>,
}

#[derive(Message)]
#[rtype(result = "Vec<ConsultantLive>")]
pub struct ConsultantsSnapshot;

/// Stops the dispatcher as a crash would; its supervisor restarts it and it rebuilds
/// from the database. Used by operators (`POST /api/admin/dispatcher/restart`) and tests.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Crash;

/// Resolves once the dispatcher has (re)loaded its state; for tests and readiness.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct IsReady;

/// Messages to one PendingRequest actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StartOfferTimer {
    pub consultant_id: i64,
    pub offer_seq: u64,
    pub timeout: Duration,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct StopOfferTimer;

#[derive(Message)]
#[rtype(result = "()")]
pub struct StopRequest;

/// A waiting request's place in line, for a requester whose page reloaded.
#[derive(Message)]
#[rtype(result = "Option<QueueInfo>")]
pub struct PositionOf {
    pub session_id: i64,
}
