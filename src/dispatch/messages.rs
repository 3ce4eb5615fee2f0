//! The protocol between actors, in one place (the actix chat example's habit): what
//! the event hub, handlers and the per-request and per-user actors tell the
//! Dispatcher, and what it answers.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::board::Place;
use crate::db::models::AssignmentRow;
use crate::events::Published;
use crate::model::{
    ConsultantStatus, EventId, HospitalId, OfferId, Proficiency, SessionId, UserId,
};
use crate::support::SessionView;

/// A committed event, in stream order (from the hub).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StreamEvent(pub Arc<Published>);

/// The offer timer of a pending request ran out.
#[derive(Message)]
#[rtype(result = "()")]
pub struct OfferExpired {
    pub session_id: SessionId,
    pub offer_id: OfferId,
}

/// The consultant opened their first socket.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PresenceGained {
    pub consultant_id: UserId,
}

/// The consultant's last socket closed and the grace period ran out.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PresenceLost {
    pub consultant_id: UserId,
}

/// An admin changed a hospital's time zone: dedicated assignments' weekly windows
/// are read in it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TimezoneChanged {
    pub hospital_id: HospitalId,
    pub timezone: String,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct SpecialtiesChanged {
    pub consultant_id: UserId,
    pub specialties: Vec<(String, Proficiency)>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct PreferencesChanged {
    pub staff_id: UserId,
    pub ordered: Vec<UserId>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct AssignmentsChanged {
    pub assignments: Vec<AssignmentRow>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct AutoAcceptChanged {
    pub consultant_id: UserId,
    pub enabled: bool,
}

/// One waiting request as the queue shows it.
pub struct QueueEntry {
    pub session: SessionView,
    pub position: usize,
    pub waiting_seconds: i64,
    pub estimated_wait_seconds: u64,
    pub offered_to: Option<UserId>,
}

#[derive(Message)]
#[rtype(result = "Vec<QueueEntry>")]
pub struct QueueSnapshot;

/// What the dispatcher believes about one consultant.
#[derive(Debug, Clone)]
pub struct ConsultantLive {
    pub id: UserId,
    pub name: String,
    pub status: ConsultantStatus,
    pub specialties: Vec<(String, Proficiency)>,
    pub auto_accept: bool,
    pub offer: Option<SessionId>,
    pub session: Option<SessionId>,
}

#[derive(Message)]
#[rtype(result = "Vec<ConsultantLive>")]
pub struct ConsultantsSnapshot;

/// A waiting request's place, once the dispatcher has seen the stream up to
/// `after` (the request's own `requested` event), so a reply right after the
/// request is stored already knows it.
#[derive(Message)]
#[rtype(result = "Option<Place>")]
pub struct PlaceOf {
    pub session_id: SessionId,
    pub after: EventId,
}

/// The place of this requester's waiting request, if any (a socket that opens
/// hears its place at once).
#[derive(Message)]
#[rtype(result = "Option<Place>")]
pub struct PlaceOfRequester {
    pub requester_id: UserId,
}

/// The dispatcher's whole view and whether its invariants hold, for operators and
/// the property test.
#[derive(Message)]
#[rtype(result = "DispatcherView")]
pub struct ViewSnapshot;

pub struct DispatcherView {
    pub ready: bool,
    pub processed: EventId,
    pub queue: Vec<QueueEntry>,
    pub consultants: Vec<ConsultantLive>,
    pub invariants: Result<(), String>,
}

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
    pub offer_id: OfferId,
    pub after: Duration,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct StopOfferTimer;

#[derive(Message)]
#[rtype(result = "()")]
pub struct StopRequest;
