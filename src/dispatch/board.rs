//! The dispatcher's view of the floor as a pure state machine: who waits, who is
//! free, which offer is out. It changes in exactly two ways — an event of the
//! stream ([`Board::apply`]) or a decision of its own ([`Board::propose`], reserving
//! consultants while their offers are written) — and answers with [`Effect`]s that
//! the actor carries out (timers, storage). No clock is read and nothing is awaited
//! here, so it is tested and benchmarked without a runtime.
//!
//! Each fact lives once: a consultant's offer is found through the request that
//! holds it (`offered` is that relation's index, written only by `set_offer` and
//! `clear_offer`), and "busy" is the stored status the stream reports.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDateTime;

use super::matching::{
    self, Candidate, DedicatedRule, MatchChoice, MatchIndex, MatchRequest, MatchWeights, Outcome,
    Relationship,
};
use super::queue::{estimate_wait_seconds, HandlingTimes, QueueKey, WaitQueue};
use super::schedule;
use crate::db::models::{AssignmentRow, SessionRow};
use crate::db::repo::Guard;
use crate::model::event::Event;
use crate::model::{
    ConsultantStatus, EventData, HospitalId, OfferId, Proficiency, RescindReason, SessionId,
    SessionStatus, UserId,
};

/// One consultant as the dispatcher sees them.
#[derive(Debug, Clone)]
pub struct Desk {
    pub name: String,
    /// As stored (the stream reports every change, `busy` included).
    pub status: ConsultantStatus,
    /// When they last became available; longest idle wins ties.
    pub idle_since: NaiveDateTime,
    pub specialties: Vec<(String, Proficiency)>,
    pub auto_accept: bool,
    /// The call they are in.
    pub session: Option<SessionId>,
    /// Offers timed out in a row (declines are answers and do not count).
    pub missed_in_row: u32,
    /// Storage refused an offer to them: not offered again until their next event.
    pub refused: bool,
}

/// A consultant's offer of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub consultant: UserId,
    /// None while the offer is being written.
    pub offer_id: Option<OfferId>,
}

/// A consultant who declined or let an offer of this request time out, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Miss {
    pub consultant: UserId,
    pub at: NaiveDateTime,
}

#[derive(Debug, Clone)]
pub struct Waiting {
    pub row: Arc<SessionRow>,
    pub offer: Option<Slot>,
    pub misses: Vec<Miss>,
    /// Storage refused an offer of it: not offered again until its next event.
    pub refused: bool,
}

/// What the actor must do after a change of the board.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    StartTimer {
        session_id: SessionId,
        offer_id: OfferId,
        expires_at: NaiveDateTime,
    },
    StopTimer {
        session_id: SessionId,
    },
    /// Withdraw an offer (store `rescinded`).
    Rescind {
        offer_id: OfferId,
        reason: RescindReason,
    },
    /// Too many offers timed out in a row.
    SetAway {
        consultant: UserId,
    },
    /// A call of this consultant is over: free them after any wrap-up time.
    CallOver {
        consultant: UserId,
    },
    /// The stream named a consultant the board does not know (created after start-up).
    LoadConsultant {
        consultant: UserId,
    },
}

/// An offer the board decided to make; the consultant is reserved for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub session_id: SessionId,
    pub choice: MatchChoice,
    pub auto_accept: bool,
}

impl Proposal {
    pub fn consultant(&self) -> UserId {
        UserId(self.choice.consultant_id)
    }
}

/// A waiting request's place in line, for its requester.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub session_id: SessionId,
    pub requester_id: UserId,
    pub position: usize,
    pub estimated_wait_seconds: u64,
}

#[derive(Debug, Default)]
pub struct Board {
    pub weights: MatchWeights,
    /// Timeouts in a row before a consultant is set away.
    pub max_missed: u32,
    desks: HashMap<UserId, Desk>,
    waiting: HashMap<SessionId, Waiting>,
    queue: WaitQueue,
    /// Consultant → the request whose offer they hold.
    offered: HashMap<UserId, SessionId>,
    index: MatchIndex,
    /// Staff → their explicit preferences, best first (matching's raw ids).
    preferences: HashMap<UserId, Vec<i64>>,
    assignments: Vec<AssignmentRow>,
    /// Hospital → time zone (dedicated assignments' schedules are local).
    timezones: HashMap<HospitalId, String>,
    handling: HandlingTimes,
}

/// Everything storage says, for (re)building the board.
#[derive(Debug, Default)]
pub struct Loaded {
    pub desks: HashMap<UserId, Desk>,
    pub live: Vec<SessionRow>,
    /// Pending offers: (session, consultant, offer).
    pub offers: Vec<(SessionId, UserId, OfferId, NaiveDateTime)>,
    pub misses: Vec<(SessionId, Miss)>,
    pub relationships: Vec<(UserId, UserId, Relationship, Option<i32>)>,
    pub served: Vec<(UserId, HospitalId, UserId)>,
    pub assignments: Vec<AssignmentRow>,
    pub timezones: HashMap<HospitalId, String>,
    pub durations: Vec<i64>,
}

impl Board {
    pub fn new(weights: MatchWeights, max_missed: u32) -> Board {
        Board {
            weights,
            max_missed: max_missed.max(1),
            ..Board::default()
        }
    }

    /// Rebuilds from storage; returns the timers the pending offers need.
    pub fn load(&mut self, loaded: Loaded) -> Vec<Effect> {
        self.desks = loaded.desks;
        self.timezones = loaded.timezones;
        self.assignments = loaded.assignments;
        self.index = MatchIndex::new();
        let mut ranked: HashMap<UserId, Vec<(i32, i64)>> = HashMap::new();
        for (staff, consultant, rel, rank) in loaded.relationships {
            self.index.set_relationship(staff.0, consultant.0, rel);
            if let Some(rank) = rank {
                ranked.entry(staff).or_default().push((rank, consultant.0));
            }
        }
        self.preferences = ranked
            .into_iter()
            .map(|(staff, mut list)| {
                list.sort();
                (staff, list.into_iter().map(|(_, id)| id).collect())
            })
            .collect();
        for (consultant, hospital, staff) in loaded.served {
            self.index.mark_served(consultant.0, hospital.0, staff.0);
        }
        self.handling = HandlingTimes::default();
        for d in loaded.durations.iter().rev() {
            self.handling.push((*d).max(0) as u64);
        }
        for row in loaded.live {
            match row.status {
                SessionStatus::Pending => self.enqueue(Arc::new(row)),
                SessionStatus::Connecting | SessionStatus::Active => {
                    if let Some(desk) = row.consultant_id.and_then(|c| self.desks.get_mut(&c)) {
                        desk.session = Some(row.id);
                    }
                }
                SessionStatus::Completed | SessionStatus::Cancelled => {}
            }
        }
        for (session_id, miss) in loaded.misses {
            if let Some(w) = self.waiting.get_mut(&session_id) {
                w.misses.push(miss);
            }
        }
        let mut effects = Vec::new();
        for (session_id, consultant, offer_id, expires_at) in loaded.offers {
            if self.waiting.contains_key(&session_id) {
                self.set_offer(session_id, consultant, Some(offer_id));
                effects.push(Effect::StartTimer {
                    session_id,
                    offer_id,
                    expires_at,
                });
            }
        }
        effects
    }

    // ----- reading ---------------------------------------------------------------

    pub fn desk(&self, id: UserId) -> Option<&Desk> {
        self.desks.get(&id)
    }

    pub fn desks(&self) -> impl Iterator<Item = (UserId, &Desk)> {
        self.desks.iter().map(|(id, d)| (*id, d))
    }

    pub fn waiting(&self, session_id: SessionId) -> Option<&Waiting> {
        self.waiting.get(&session_id)
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// The pending offer of a request, once stored.
    pub fn current_offer(&self, session_id: SessionId) -> Option<(UserId, OfferId)> {
        let slot = self.waiting.get(&session_id)?.offer?;
        slot.offer_id.map(|id| (slot.consultant, id))
    }

    /// The request a consultant holds an offer of.
    pub fn offer_held_by(&self, consultant: UserId) -> Option<SessionId> {
        self.offered.get(&consultant).copied()
    }

    /// Free for an offer: available, in no call, holding no offer.
    pub fn is_free(&self, id: UserId) -> bool {
        self.desks
            .get(&id)
            .is_some_and(|desk| self.desk_is_free(id, desk))
    }

    fn desk_is_free(&self, id: UserId, desk: &Desk) -> bool {
        desk.status == ConsultantStatus::Available
            && desk.session.is_none()
            && !desk.refused
            && !self.offered.contains_key(&id)
    }

    /// Consultants who could take a request soon (available or busy), for estimates.
    fn serving_capacity(&self) -> usize {
        self.desks
            .values()
            .filter(|d| {
                matches!(
                    d.status,
                    ConsultantStatus::Available | ConsultantStatus::Busy
                )
            })
            .count()
    }

    /// Every waiting request's place in line, in serving order.
    pub fn places(&self) -> Vec<Place> {
        let capacity = self.serving_capacity();
        let mean = self.handling.mean_or_default();
        self.queue
            .positions()
            .filter_map(|(id, position)| {
                let w = self.waiting.get(&SessionId(id))?;
                Some(Place {
                    session_id: SessionId(id),
                    requester_id: w.row.requester_id,
                    position,
                    estimated_wait_seconds: estimate_wait_seconds(position, capacity, mean),
                })
            })
            .collect()
    }

    pub fn place_of(&self, session_id: SessionId) -> Option<Place> {
        let w = self.waiting.get(&session_id)?;
        let position = self.queue.position(session_id.0)?;
        Some(Place {
            session_id,
            requester_id: w.row.requester_id,
            position,
            estimated_wait_seconds: estimate_wait_seconds(
                position,
                self.serving_capacity(),
                self.handling.mean_or_default(),
            ),
        })
    }

    /// Waiting requests in serving order.
    pub fn in_order(&self) -> impl Iterator<Item = (usize, &Waiting)> {
        self.queue
            .positions()
            .filter_map(|(id, position)| self.waiting.get(&SessionId(id)).map(|w| (position, w)))
    }

    // ----- changing from the stream ------------------------------------------------

    /// Follows one committed event. `session` is the row as the event's transaction
    /// left it, when there is one.
    pub fn apply(&mut self, event: &Event, session: Option<&Arc<SessionRow>>) -> Vec<Effect> {
        let mut effects = Vec::new();
        let consultant = event.consultant_id;
        if let Some(c) = consultant {
            if !self.desks.contains_key(&c) {
                effects.push(Effect::LoadConsultant { consultant: c });
            } else if let Some(desk) = self.desks.get_mut(&c) {
                desk.refused = false;
            }
        }
        let Some(session_id) = event.session_id else {
            if let (EventData::ConsultantStatus { status }, Some(c)) = (&event.data, consultant) {
                self.status_changed(c, *status, event.at, &mut effects);
            }
            return effects;
        };
        if let Some(w) = self.waiting.get_mut(&session_id) {
            w.refused = false;
        }
        match &event.data {
            EventData::Requested => {
                if let Some(row) = session.filter(|r| r.status == SessionStatus::Pending) {
                    if !self.waiting.contains_key(&session_id) {
                        self.enqueue(row.clone());
                    }
                }
            }
            EventData::Offered {
                offer_id,
                expires_at,
                ..
            } => {
                if let (Some(c), true) = (consultant, self.waiting.contains_key(&session_id)) {
                    let current = self.waiting.get(&session_id).and_then(|w| w.offer);
                    if current.is_none_or(|slot| slot.consultant == c) {
                        self.set_offer(session_id, c, Some(*offer_id));
                        effects.push(Effect::StartTimer {
                            session_id,
                            offer_id: *offer_id,
                            expires_at: *expires_at,
                        });
                    }
                }
            }
            EventData::Declined { offer_id } | EventData::OfferTimedOut { offer_id } => {
                let timed_out = matches!(event.data, EventData::OfferTimedOut { .. });
                if let Some(c) = consultant {
                    self.clear_offer_if(session_id, c, *offer_id, &mut effects);
                    if let Some(w) = self.waiting.get_mut(&session_id) {
                        w.misses.push(Miss {
                            consultant: c,
                            at: event.at,
                        });
                    }
                    if timed_out {
                        if let Some(desk) = self.desks.get_mut(&c) {
                            desk.missed_in_row += 1;
                            if desk.missed_in_row >= self.max_missed
                                && desk.status == ConsultantStatus::Available
                            {
                                effects.push(Effect::SetAway { consultant: c });
                            }
                        }
                    }
                }
            }
            EventData::OfferRescinded { offer_id, .. } => {
                if let Some(c) = consultant {
                    self.clear_offer_if(session_id, c, *offer_id, &mut effects);
                }
            }
            EventData::Accepted { .. } | EventData::Taken => {
                self.remove(session_id, &mut effects);
                if let Some(desk) = consultant.and_then(|c| self.desks.get_mut(&c)) {
                    desk.session = Some(session_id);
                    desk.missed_in_row = 0;
                }
            }
            EventData::Cancelled { .. } => {
                self.remove(session_id, &mut effects);
                if let Some(c) = session.and_then(|r| r.consultant_id) {
                    self.leave_call(c, session_id);
                }
            }
            EventData::Ended => {
                if let Some(row) = session {
                    if let Some(c) = row.consultant_id {
                        self.index.record_session(
                            row.requester_id.0,
                            c.0,
                            row.hospital_id.0,
                            false,
                        );
                        if self.leave_call(c, session_id) {
                            effects.push(Effect::CallOver { consultant: c });
                        }
                    }
                    if let Some(d) = row.duration_seconds {
                        self.handling.push(d.max(0) as u64);
                    }
                }
            }
            EventData::WrappedUp { resolved: true } => {
                if let Some(row) = session {
                    if let Some(c) = row.consultant_id {
                        self.index.record_success(row.requester_id.0, c.0);
                    }
                }
            }
            EventData::Rated { rating } => {
                if let Some(row) = session {
                    if let Some(c) = row.consultant_id {
                        self.index.record_rating(row.requester_id.0, c.0, *rating);
                    }
                }
            }
            _ => {}
        }
        effects
    }

    fn status_changed(
        &mut self,
        consultant: UserId,
        status: ConsultantStatus,
        at: NaiveDateTime,
        effects: &mut Vec<Effect>,
    ) {
        let Some(desk) = self.desks.get_mut(&consultant) else {
            return;
        };
        let previous = desk.status;
        desk.status = status;
        if status == ConsultantStatus::Available && previous != ConsultantStatus::Available {
            desk.idle_since = at;
            desk.missed_in_row = 0;
        }
        if status != ConsultantStatus::Available {
            let held = self.offered.get(&consultant).copied();
            if let Some((_, offer_id)) = held.and_then(|s| self.current_offer(s)) {
                effects.push(Effect::Rescind {
                    offer_id,
                    reason: RescindReason::ConsultantUnavailable,
                });
            }
        }
    }

    /// The consultant is no longer in this call; true if it was theirs.
    fn leave_call(&mut self, consultant: UserId, session_id: SessionId) -> bool {
        match self.desks.get_mut(&consultant) {
            Some(desk) if desk.session == Some(session_id) => {
                desk.session = None;
                true
            }
            _ => false,
        }
    }

    fn enqueue(&mut self, row: Arc<SessionRow>) {
        self.queue.insert(QueueKey {
            urgency: row.urgency,
            deadline: row.response_deadline,
            created_at: row.created_at,
            session_id: row.id.0,
        });
        self.waiting.insert(
            row.id,
            Waiting {
                row,
                offer: None,
                misses: Vec::new(),
                refused: false,
            },
        );
    }

    fn remove(&mut self, session_id: SessionId, effects: &mut Vec<Effect>) {
        if let Some(w) = self.waiting.remove(&session_id) {
            if let Some(slot) = w.offer {
                self.offered.remove(&slot.consultant);
            }
            effects.push(Effect::StopTimer { session_id });
        }
        self.queue.remove(session_id.0);
    }

    fn set_offer(&mut self, session_id: SessionId, consultant: UserId, offer_id: Option<OfferId>) {
        let Some(w) = self.waiting.get_mut(&session_id) else {
            return;
        };
        if let Some(old) = w.offer.filter(|slot| slot.consultant != consultant) {
            self.offered.remove(&old.consultant);
        }
        if let Some(other) = self.offered.insert(consultant, session_id) {
            if other != session_id {
                if let Some(ow) = self.waiting.get_mut(&other) {
                    ow.offer = None;
                }
            }
        }
        if let Some(w) = self.waiting.get_mut(&session_id) {
            w.offer = Some(Slot {
                consultant,
                offer_id,
            });
        }
    }

    fn clear_offer(&mut self, session_id: SessionId) {
        if let Some(slot) = self
            .waiting
            .get_mut(&session_id)
            .and_then(|w| w.offer.take())
        {
            if self.offered.get(&slot.consultant) == Some(&session_id) {
                self.offered.remove(&slot.consultant);
            }
        }
    }

    /// Clears the request's offer if it is this one (or this consultant's, unstored).
    fn clear_offer_if(
        &mut self,
        session_id: SessionId,
        consultant: UserId,
        offer_id: OfferId,
        effects: &mut Vec<Effect>,
    ) {
        let matches = self
            .waiting
            .get(&session_id)
            .and_then(|w| w.offer)
            .is_some_and(|slot| {
                slot.consultant == consultant && slot.offer_id.is_none_or(|id| id == offer_id)
            });
        if matches {
            self.clear_offer(session_id);
            effects.push(Effect::StopTimer { session_id });
        }
    }

    // ----- changing by decision ------------------------------------------------------

    /// Offers every unoffered waiting request, in queue order, to the best eligible
    /// free consultant, until requests or consultants run out. Each proposal reserves
    /// its consultant until [`Board::offer_stored`] or [`Board::offer_failed`].
    ///
    /// Consultants who missed a request are skipped while another eligible one is
    /// free, and asked again `reoffer_after` after their miss when none is.
    pub fn propose(
        &mut self,
        now: NaiveDateTime,
        reoffer_after: chrono::Duration,
    ) -> Vec<Proposal> {
        // The board changes on every event of the stream, and most of the time no
        // request is waiting: look at the queue before walking every desk.
        let order: Vec<SessionId> = self
            .queue
            .iter()
            .map(|k| SessionId(k.session_id))
            .filter(|id| {
                self.waiting
                    .get(id)
                    .is_some_and(|w| w.offer.is_none() && !w.refused)
            })
            .collect();
        if order.is_empty() {
            return Vec::new();
        }
        let mut free: Vec<UserId> = self
            .desks
            .iter()
            .filter(|(id, desk)| self.desk_is_free(**id, desk))
            .map(|(id, _)| *id)
            .collect();
        if free.is_empty() {
            return Vec::new();
        }
        free.sort_unstable();
        let rules = self.rules_at(now);
        let mut proposals = Vec::new();
        for session_id in order {
            if free.is_empty() {
                break;
            }
            let Some(choice) = self.choose(session_id, &free, &rules, now, reoffer_after) else {
                continue;
            };
            let consultant = UserId(choice.consultant_id);
            free.retain(|id| *id != consultant);
            self.set_offer(session_id, consultant, None);
            let auto_accept = self.desks.get(&consultant).is_some_and(|d| d.auto_accept);
            proposals.push(Proposal {
                session_id,
                choice,
                auto_accept,
            });
        }
        proposals
    }

    fn choose(
        &self,
        session_id: SessionId,
        free: &[UserId],
        rules: &[DedicatedRule],
        now: NaiveDateTime,
        reoffer_after: chrono::Duration,
    ) -> Option<MatchChoice> {
        let w = self.waiting.get(&session_id)?;
        let candidates: Vec<Candidate<'_>> = free
            .iter()
            .filter_map(|id| {
                self.desks.get(id).map(|d| Candidate {
                    id: id.0,
                    idle_since: d.idle_since,
                    specialties: &d.specialties,
                })
            })
            .collect();
        let preferred = self
            .preferences
            .get(&w.row.requester_id)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let all_misses: Vec<i64> = w.misses.iter().map(|m| m.consultant.0).collect();
        let attempt = |excluded: &[i64]| {
            let request = MatchRequest {
                requester_id: w.row.requester_id.0,
                hospital_id: w.row.hospital_id.0,
                department: &w.row.department,
                requested_consultant: w.row.requested_consultant_id.map(|c| c.0),
                wait_for_requested: w.row.wait_for_consultant,
                preferred,
                excluded,
            };
            match matching::choose(&request, &candidates, &self.index, rules, &self.weights) {
                Outcome::Offer(choice) => Some(choice),
                Outcome::WaitForRequested | Outcome::Queue => None,
            }
        };
        if let Some(choice) = attempt(&all_misses) {
            return Some(choice);
        }
        // Nobody else: those whose miss is old enough are asked again.
        let recent: Vec<i64> = w
            .misses
            .iter()
            .filter(|m| now - m.at < reoffer_after)
            .map(|m| m.consultant.0)
            .collect();
        if recent.len() == all_misses.len() {
            return None;
        }
        let mut choice = attempt(&recent)?;
        choice
            .reasons
            .push("asked again: no other eligible consultant is free".to_owned());
        Some(choice)
    }

    /// When a request that waits only because its free consultants missed it becomes
    /// offerable to them again.
    pub fn next_reoffer(
        &self,
        now: NaiveDateTime,
        reoffer_after: chrono::Duration,
    ) -> Option<NaiveDateTime> {
        self.waiting
            .values()
            .filter(|w| w.offer.is_none())
            .flat_map(|w| w.misses.iter())
            .filter(|m| self.is_free(m.consultant))
            .map(|m| m.at + reoffer_after)
            .filter(|due| *due > now)
            .min()
    }

    /// The offer was written; `None` when the board has moved on meanwhile.
    pub fn offer_stored(
        &mut self,
        session_id: SessionId,
        consultant: UserId,
        offer_id: OfferId,
    ) -> bool {
        let reserved = self
            .waiting
            .get(&session_id)
            .and_then(|w| w.offer)
            .is_some_and(|slot| slot.consultant == consultant);
        if reserved {
            self.set_offer(session_id, consultant, Some(offer_id));
        }
        reserved
    }

    /// The offer could not be written. A refusal means storage knows better than the
    /// board: the refused party waits for its next event (which explains it).
    pub fn offer_failed(
        &mut self,
        session_id: SessionId,
        consultant: UserId,
        guard: Option<Guard>,
    ) {
        let reserved = self
            .waiting
            .get(&session_id)
            .and_then(|w| w.offer)
            .is_some_and(|slot| slot.consultant == consultant && slot.offer_id.is_none());
        if reserved {
            self.clear_offer(session_id);
        }
        match guard {
            Some(Guard::Busy) => {
                if let Some(desk) = self.desks.get_mut(&consultant) {
                    desk.refused = true;
                }
            }
            Some(_) => {
                if let Some(w) = self.waiting.get_mut(&session_id) {
                    w.refused = true;
                }
            }
            None => {}
        }
    }

    /// Lifts every refusal (a safety net should an explaining event never come).
    pub fn clear_refusals(&mut self) -> bool {
        let mut any = false;
        for desk in self.desks.values_mut().filter(|d| d.refused) {
            desk.refused = false;
            any = true;
        }
        for w in self.waiting.values_mut().filter(|w| w.refused) {
            w.refused = false;
            any = true;
        }
        any
    }

    // ----- settings that do not come from the stream --------------------------------

    pub fn add_desk(&mut self, id: UserId, desk: Desk) {
        self.desks.entry(id).or_insert(desk);
    }

    pub fn set_specialties(&mut self, id: UserId, specialties: Vec<(String, Proficiency)>) {
        if let Some(desk) = self.desks.get_mut(&id) {
            desk.specialties = specialties;
        }
    }

    pub fn set_timezone(&mut self, hospital: HospitalId, timezone: String) {
        self.timezones.insert(hospital, timezone);
    }

    pub fn set_auto_accept(&mut self, id: UserId, enabled: bool) {
        if let Some(desk) = self.desks.get_mut(&id) {
            desk.auto_accept = enabled;
        }
    }

    pub fn set_preferences(&mut self, staff: UserId, ordered: &[UserId]) {
        self.preferences
            .insert(staff, ordered.iter().map(|id| id.0).collect());
    }

    pub fn set_assignments(&mut self, assignments: Vec<AssignmentRow>) {
        self.assignments = assignments;
    }

    fn rules_at(&self, now: NaiveDateTime) -> Vec<DedicatedRule> {
        self.assignments
            .iter()
            .map(|a| {
                let tz = a
                    .hospital_id
                    .and_then(|h| self.timezones.get(&h))
                    .map(String::as_str)
                    .unwrap_or("UTC");
                DedicatedRule {
                    consultant_id: a.consultant_id.0,
                    staff_id: a.staff_id.map(|s| s.0),
                    hospital_id: a.hospital_id.map(|h| h.0),
                    department: a.department.clone(),
                    exclusive: a.exclusive,
                    active_now: schedule::active_at(a, now, tz),
                }
            })
            .collect()
    }

    /// The invariants the rest of the system relies on, for tests: an offer index
    /// that agrees with the requests, no consultant holding two offers, nobody
    /// offered a request while in a call.
    pub fn check(&self) -> Result<(), String> {
        for (consultant, session) in &self.offered {
            let slot = self.waiting.get(session).and_then(|w| w.offer);
            if slot.map(|s| s.consultant) != Some(*consultant) {
                return Err(format!(
                    "index says {consultant} holds {session}; the request disagrees"
                ));
            }
        }
        let offers = self.waiting.values().filter(|w| w.offer.is_some()).count();
        if offers != self.offered.len() {
            return Err(format!(
                "{offers} offers out but {} indexed",
                self.offered.len()
            ));
        }
        if self.queue.len() != self.waiting.len() {
            return Err("queue and waiting requests differ".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventId, HospitalId, MatchTier, Urgency};

    fn t(secs: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0)
            .expect("a timestamp")
            .naive_utc()
    }

    fn desk(status: ConsultantStatus) -> Desk {
        Desk {
            name: "c".into(),
            status,
            idle_since: t(0),
            specialties: vec![("ER".into(), Proficiency::Expert)],
            auto_accept: false,
            session: None,
            missed_in_row: 0,
            refused: false,
        }
    }

    fn row(id: i64, requester: i64) -> Arc<SessionRow> {
        Arc::new(SessionRow {
            id: SessionId(id),
            hospital_id: HospitalId(1),
            requester_id: UserId(requester),
            consultant_id: None,
            department: "ER".into(),
            urgency: Urgency::Normal,
            status: SessionStatus::Pending,
            issue_summary: String::new(),
            resolution_notes: None,
            resolved: None,
            requested_consultant_id: None,
            wait_for_consultant: false,
            created_at: t(id),
            response_deadline: t(id + 900),
            accepted_at: None,
            started_at: None,
            ended_at: None,
            wait_time_seconds: None,
            duration_seconds: None,
            rating: None,
            feedback: None,
            match_tier: None,
            match_score: None,
            match_reasons: None,
            video_provider: None,
            room_name: None,
            room_url: None,
            room_deleted: false,
            cancelled_by: None,
            wrapped_up_at: None,
            text_erased_at: None,
        })
    }

    fn event(session: Option<i64>, consultant: Option<i64>, at: i64, data: EventData) -> Event {
        Event {
            id: EventId(at),
            session_id: session.map(SessionId),
            actor_id: None,
            consultant_id: consultant.map(UserId),
            at: t(at),
            data,
        }
    }

    fn board_with(desks: &[(i64, ConsultantStatus)]) -> Board {
        let mut b = Board::new(MatchWeights::default(), 2);
        for (id, status) in desks {
            b.add_desk(UserId(*id), desk(*status));
        }
        b
    }

    const REOFFER: chrono::Duration = chrono::Duration::seconds(60);

    fn request(b: &mut Board, id: i64) {
        let r = row(id, 100 + id);
        b.apply(&event(Some(id), None, id, EventData::Requested), Some(&r));
    }

    fn offer_stored(b: &mut Board, p: &Proposal, offer: i64) {
        assert!(b.offer_stored(p.session_id, p.consultant(), OfferId(offer)));
    }

    #[test]
    fn one_offer_per_request_and_per_consultant() {
        let mut b = board_with(&[
            (1, ConsultantStatus::Available),
            (2, ConsultantStatus::Available),
        ]);
        for id in [10, 11, 12] {
            request(&mut b, id);
        }
        let proposals = b.propose(t(20), REOFFER);
        assert_eq!(proposals.len(), 2, "two consultants, two offers");
        let mut consultants: Vec<_> = proposals.iter().map(|p| p.consultant()).collect();
        consultants.sort();
        assert_eq!(consultants, [UserId(1), UserId(2)]);
        assert!(b.propose(t(20), REOFFER).is_empty(), "both reserved");
        b.check().unwrap();
    }

    #[test]
    fn a_declined_request_goes_to_another_and_comes_back_after_the_reoffer_time() {
        let mut b = board_with(&[(1, ConsultantStatus::Available)]);
        request(&mut b, 10);
        let p = b.propose(t(20), REOFFER).remove(0);
        offer_stored(&mut b, &p, 5);
        b.apply(
            &event(
                Some(10),
                Some(1),
                25,
                EventData::Declined {
                    offer_id: OfferId(5),
                },
            ),
            None,
        );
        // Ben is the only consultant: skipped until the reoffer time has passed.
        assert!(b.propose(t(30), REOFFER).is_empty());
        assert_eq!(b.next_reoffer(t(30), REOFFER), Some(t(85)));
        let again = b.propose(t(85), REOFFER);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].consultant(), UserId(1));
        assert!(again[0]
            .choice
            .reasons
            .iter()
            .any(|r| r.contains("asked again")));
        b.check().unwrap();
    }

    #[test]
    fn someone_else_free_is_asked_before_the_one_who_declined() {
        let mut b = board_with(&[(1, ConsultantStatus::Available)]);
        request(&mut b, 10);
        let p = b.propose(t(20), REOFFER).remove(0);
        offer_stored(&mut b, &p, 5);
        b.apply(
            &event(
                Some(10),
                Some(1),
                25,
                EventData::Declined {
                    offer_id: OfferId(5),
                },
            ),
            None,
        );
        b.add_desk(UserId(2), desk(ConsultantStatus::Available));
        let next = b.propose(t(200), REOFFER);
        assert_eq!(next[0].consultant(), UserId(2));
    }

    #[test]
    fn timeouts_in_a_row_set_away_and_going_away_rescinds_the_offer() {
        let mut b = board_with(&[(1, ConsultantStatus::Available)]);
        request(&mut b, 10);
        request(&mut b, 11);
        let p = b.propose(t(20), REOFFER).remove(0);
        offer_stored(&mut b, &p, 5);
        let fx = b.apply(
            &event(
                Some(p.session_id.0),
                Some(1),
                40,
                EventData::OfferTimedOut {
                    offer_id: OfferId(5),
                },
            ),
            None,
        );
        assert!(!fx.contains(&Effect::SetAway {
            consultant: UserId(1)
        }));
        let p = b.propose(t(41), REOFFER).remove(0);
        offer_stored(&mut b, &p, 6);
        let fx = b.apply(
            &event(
                Some(p.session_id.0),
                Some(1),
                61,
                EventData::OfferTimedOut {
                    offer_id: OfferId(6),
                },
            ),
            None,
        );
        assert!(fx.contains(&Effect::SetAway {
            consultant: UserId(1)
        }));

        // An offer held while the consultant goes away is withdrawn.
        let mut b = board_with(&[(1, ConsultantStatus::Available)]);
        request(&mut b, 10);
        let p = b.propose(t(20), REOFFER).remove(0);
        offer_stored(&mut b, &p, 7);
        let fx = b.apply(
            &event(
                None,
                Some(1),
                22,
                EventData::ConsultantStatus {
                    status: ConsultantStatus::Away,
                },
            ),
            None,
        );
        assert_eq!(
            fx,
            vec![Effect::Rescind {
                offer_id: OfferId(7),
                reason: RescindReason::ConsultantUnavailable
            }]
        );
    }

    #[test]
    fn accept_takes_the_request_out_and_the_consultant_into_the_call() {
        let mut b = board_with(&[(1, ConsultantStatus::Available)]);
        request(&mut b, 10);
        let p = b.propose(t(20), REOFFER).remove(0);
        offer_stored(&mut b, &p, 5);
        let mut accepted = (*row(10, 110)).clone();
        accepted.status = SessionStatus::Connecting;
        accepted.consultant_id = Some(UserId(1));
        accepted.match_tier = Some(MatchTier::C);
        let fx = b.apply(
            &event(
                Some(10),
                Some(1),
                30,
                EventData::Accepted {
                    offer_id: OfferId(5),
                },
            ),
            Some(&Arc::new(accepted.clone())),
        );
        assert!(fx.contains(&Effect::StopTimer {
            session_id: SessionId(10)
        }));
        assert_eq!(b.queue_len(), 0);
        assert_eq!(
            b.desk(UserId(1)).and_then(|d| d.session),
            Some(SessionId(10))
        );
        assert!(!b.is_free(UserId(1)));
        accepted.status = SessionStatus::Completed;
        accepted.duration_seconds = Some(120);
        let fx = b.apply(
            &event(Some(10), Some(1), 150, EventData::Ended),
            Some(&Arc::new(accepted)),
        );
        assert_eq!(
            fx,
            vec![Effect::CallOver {
                consultant: UserId(1)
            }]
        );
        b.check().unwrap();
    }

    #[test]
    fn a_refused_offer_waits_for_the_next_event() {
        let mut b = board_with(&[(1, ConsultantStatus::Available)]);
        request(&mut b, 10);
        let p = b.propose(t(20), REOFFER).remove(0);
        b.offer_failed(p.session_id, p.consultant(), Some(Guard::Busy));
        assert!(
            b.propose(t(21), REOFFER).is_empty(),
            "not retried in a loop"
        );
        b.apply(
            &event(
                None,
                Some(1),
                22,
                EventData::ConsultantStatus {
                    status: ConsultantStatus::Available,
                },
            ),
            None,
        );
        assert_eq!(b.propose(t(23), REOFFER).len(), 1);
    }
}
