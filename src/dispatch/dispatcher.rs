//! The Dispatcher: exactly one, supervised. It owns the queue order and the live view
//! of who is available, runs matching whenever either changes, and pushes offers.
//! Everything it decides is made from memory; storage is written by the service
//! layer before it is told (acknowledged state) or by the background writer after
//! (timeline entries), never awaited here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::NaiveDateTime;

use super::matching::{
    self, Candidate, DedicatedRule, MatchChoice, MatchIndex, MatchRequest, MatchWeights, Outcome,
    Proficiency, Relationship, Tier, Urgency,
};
use super::messages::*;
use super::pending::PendingRequest;
use super::queue::{estimate_wait_seconds, HandlingTimes, QueueKey, WaitQueue};
use super::schedule;
use super::view::{rfc3339, MatchView, SessionView};
use crate::db::models::{AssignmentRow, ConsultantStatus, Role, SessionRow, SessionStatus};
use crate::db::{repo, DbResult};
use crate::state::{CallParties, Core};
use crate::ws::frames::ServerEvent;

/// How often queue positions are re-sent at most: a burst of changes (a consultant
/// frees up, three requests arrive) becomes one update per waiting requester.
const POSITION_FLUSH: Duration = Duration::from_millis(200);
/// How many recent call durations feed the wait estimate.
const HANDLING_WINDOW: usize = 50;
/// Wait before retrying a failed state load (database down at start-up).
const RELOAD_RETRY: Duration = Duration::from_secs(1);

struct ConsultantState {
    name: String,
    status: ConsultantStatus,
    idle_since: NaiveDateTime,
    specialties: Vec<(String, Proficiency)>,
    offer: Option<i64>,
    session: Option<i64>,
    missed_in_row: u32,
    auto_accept: bool,
    wrap_up: Option<SpawnHandle>,
}

struct Offer {
    consultant_id: i64,
    seq: u64,
    choice: MatchChoice,
}

struct PendingState {
    row: SessionRow,
    excluded: Vec<i64>,
    offer: Option<Offer>,
    accepting: bool,
    actor: Addr<PendingRequest>,
}

/// Everything loaded from storage when the dispatcher (re)starts.
struct Snapshot {
    hospitals: HashMap<i64, (String, String)>,
    consultants: HashMap<i64, ConsultantState>,
    live: Vec<SessionRow>,
    index: MatchIndex,
    preferences: HashMap<i64, Vec<(i32, i64)>>,
    assignments: Vec<AssignmentRow>,
    durations: Vec<i64>,
}

pub struct Dispatcher {
    core: Arc<Core>,
    ready: bool,
    weights: MatchWeights,
    /// hospital id → (plan, timezone)
    hospitals: HashMap<i64, (String, String)>,
    consultants: HashMap<i64, ConsultantState>,
    requests: HashMap<i64, PendingState>,
    queue: WaitQueue,
    index: MatchIndex,
    preferences: HashMap<i64, Vec<i64>>,
    assignments: Vec<AssignmentRow>,
    handling: HandlingTimes,
    /// Never reset, even across restarts, so a stale timer can never match a new offer.
    offer_seq: u64,
    positions_sent: HashMap<i64, (usize, u64)>,
    position_flush: Option<SpawnHandle>,
}

impl Dispatcher {
    pub fn new(core: Arc<Core>) -> Dispatcher {
        Dispatcher {
            core,
            ready: false,
            weights: MatchWeights::default(),
            hospitals: HashMap::new(),
            consultants: HashMap::new(),
            requests: HashMap::new(),
            queue: WaitQueue::new(),
            index: MatchIndex::new(),
            preferences: HashMap::new(),
            assignments: Vec::new(),
            handling: HandlingTimes::with_window(HANDLING_WINDOW),
            offer_seq: 0,
            positions_sent: HashMap::new(),
            position_flush: None,
        }
    }

    fn now() -> NaiveDateTime {
        repo::now()
    }

    // ----- loading -------------------------------------------------------------

    fn reload(&mut self, ctx: &mut Context<Self>) {
        let db = self.core.db.clone();
        ctx.wait(
            async move { load_snapshot(&db).await }
                .into_actor(self)
                .map(|result, act, ctx| match result {
                    Ok(snapshot) => act.apply_snapshot(snapshot, ctx),
                    Err(e) => {
                        tracing::error!(error = %e, "dispatcher could not load its state; retrying");
                        ctx.run_later(RELOAD_RETRY, |act, ctx| act.reload(ctx));
                    }
                }),
        );
    }

    fn apply_snapshot(&mut self, snapshot: Snapshot, ctx: &mut Context<Self>) {
        self.hospitals = snapshot.hospitals;
        self.consultants = snapshot.consultants;
        self.index = snapshot.index;
        self.assignments = snapshot.assignments;
        self.preferences = snapshot
            .preferences
            .into_iter()
            .map(|(staff, mut ranked)| {
                ranked.sort();
                (staff, ranked.into_iter().map(|(_, id)| id).collect())
            })
            .collect();
        self.handling = HandlingTimes::with_window(HANDLING_WINDOW);
        for d in snapshot.durations.iter().rev() {
            self.handling.push((*d).max(0) as u64);
        }
        for row in snapshot.live {
            match row.status() {
                SessionStatus::Pending => self.enqueue(row, Vec::new(), ctx),
                SessionStatus::Connecting | SessionStatus::Active => {
                    if let Some(consultant_id) = row.consultant_id {
                        if let Some(c) = self.consultants.get_mut(&consultant_id) {
                            c.session = Some(row.id);
                            c.status = ConsultantStatus::Busy;
                        }
                        self.core
                            .calls
                            .entry(row.id)
                            .or_insert_with(|| CallParties {
                                requester_id: row.requester_id,
                                consultant_id,
                                hospital_id: row.hospital_id,
                                joined: Default::default(),
                            });
                    }
                }
                _ => {}
            }
        }
        // Consultants stored as present but with no socket now (the whole server
        // restarted) get one grace period to reconnect before they go offline.
        let grace = self.core.config.presence_grace();
        let absent: Vec<i64> = self
            .consultants
            .iter()
            .filter(|(id, c)| {
                c.session.is_none()
                    && matches!(
                        c.status,
                        ConsultantStatus::Online
                            | ConsultantStatus::Available
                            | ConsultantStatus::Away
                    )
                    && self.core.registry.connections_of(**id) == 0
            })
            .map(|(id, _)| *id)
            .collect();
        for id in absent {
            ctx.run_later(grace, move |act, ctx| {
                if act.core.registry.connections_of(id) == 0
                    && !act.core.presences.contains_key(&id)
                {
                    act.presence_lost(id, ctx);
                }
            });
        }
        self.ready = true;
        self.core.metrics.queue_length.set(self.queue.len() as i64);
        tracing::info!(
            pending = self.requests.len(),
            consultants = self.consultants.len(),
            "dispatcher state loaded"
        );
        self.dispatch_all(Instant::now(), "recovery", ctx);
        self.schedule_positions(ctx);
    }

    // ----- queue ---------------------------------------------------------------

    fn enqueue(&mut self, row: SessionRow, excluded: Vec<i64>, ctx: &mut Context<Self>) {
        let urgency = Urgency::parse(&row.urgency).unwrap_or(Urgency::Normal);
        let key = QueueKey {
            urgency,
            deadline: row.response_deadline,
            created_at: row.created_at,
            session_id: row.id,
        };
        self.queue.insert(key);
        let actor = PendingRequest::new(row.id, ctx.address()).start();
        self.requests.insert(
            row.id,
            PendingState {
                row,
                excluded,
                offer: None,
                accepting: false,
                actor,
            },
        );
        self.core.metrics.queue_length.set(self.queue.len() as i64);
    }

    /// Takes a request out of the live view entirely.
    fn remove_request(&mut self, session_id: i64) -> Option<PendingState> {
        let state = self.requests.remove(&session_id)?;
        self.queue.remove(session_id);
        self.positions_sent.remove(&session_id);
        if let Some(offer) = &state.offer {
            if let Some(c) = self.consultants.get_mut(&offer.consultant_id) {
                if c.offer == Some(session_id) {
                    c.offer = None;
                }
            }
        }
        state.actor.do_send(StopRequest);
        self.core.metrics.queue_length.set(self.queue.len() as i64);
        Some(state)
    }

    /// Consultants who could take a request now (available or busy), for estimates.
    fn serving_capacity(&self) -> usize {
        self.consultants
            .values()
            .filter(|c| {
                matches!(
                    c.status,
                    ConsultantStatus::Available | ConsultantStatus::Busy
                )
            })
            .count()
    }

    fn estimate_for(&self, position: usize) -> u64 {
        estimate_wait_seconds(
            position,
            self.serving_capacity(),
            self.handling.mean_or_default(),
        )
    }

    fn schedule_positions(&mut self, ctx: &mut Context<Self>) {
        if self.position_flush.is_some() {
            return;
        }
        self.position_flush = Some(ctx.run_later(POSITION_FLUSH, |act, _| {
            act.position_flush = None;
            act.send_positions();
        }));
    }

    /// Sends `queue_position_update` to each requester whose position or estimate changed.
    fn send_positions(&mut self) {
        let capacity = self.serving_capacity();
        let mean = self.handling.mean_or_default();
        let mut updates = Vec::new();
        for (session_id, position) in self.queue.positions() {
            let estimate = estimate_wait_seconds(position, capacity, mean);
            if self.positions_sent.get(&session_id) != Some(&(position, estimate)) {
                updates.push((session_id, position, estimate));
            }
        }
        for (session_id, position, estimate) in updates {
            self.positions_sent.insert(session_id, (position, estimate));
            if let Some(state) = self.requests.get(&session_id) {
                self.core.registry.send_to_user(
                    state.row.requester_id,
                    &ServerEvent::QueuePositionUpdate {
                        session_id,
                        position,
                        estimated_wait_seconds: estimate,
                    },
                );
            }
        }
    }

    // ----- matching ------------------------------------------------------------

    fn rules_now(&self) -> Vec<DedicatedRule> {
        if self.assignments.is_empty() {
            return Vec::new();
        }
        let now = Self::now();
        self.assignments
            .iter()
            .map(|a| {
                let tz = a
                    .hospital_id
                    .and_then(|h| self.hospitals.get(&h))
                    .map(|(_, tz)| tz.as_str())
                    .unwrap_or("UTC");
                DedicatedRule {
                    consultant_id: a.consultant_id,
                    staff_id: a.staff_id,
                    hospital_id: a.hospital_id,
                    department: a.department.clone(),
                    exclusive: a.exclusive,
                    active_now: schedule::active_at(a, now, tz),
                }
            })
            .collect()
    }

    /// Offers every unoffered queued request, in queue order, to the best eligible
    /// available consultant, until requests or consultants run out.
    fn dispatch_all(&mut self, trigger: Instant, label: &'static str, ctx: &mut Context<Self>) {
        if !self.ready || self.queue.is_empty() {
            return;
        }
        let mut free: Vec<i64> = self
            .consultants
            .iter()
            .filter(|(_, c)| {
                c.status == ConsultantStatus::Available && c.offer.is_none() && c.session.is_none()
            })
            .map(|(id, _)| *id)
            .collect();
        if free.is_empty() {
            return;
        }
        free.sort_unstable();
        let rules = self.rules_now();
        let waiting: Vec<i64> = self
            .queue
            .iter()
            .map(|k| k.session_id)
            .filter(|id| {
                self.requests
                    .get(id)
                    .is_some_and(|r| r.offer.is_none() && !r.accepting)
            })
            .collect();
        for session_id in waiting {
            if free.is_empty() {
                break;
            }
            let Some(choice) = self.choose_for(session_id, &free, &rules) else {
                continue;
            };
            free.retain(|id| *id != choice.consultant_id);
            self.make_offer(session_id, choice, trigger, label, ctx);
        }
    }

    fn choose_for(
        &self,
        session_id: i64,
        free: &[i64],
        rules: &[DedicatedRule],
    ) -> Option<MatchChoice> {
        let state = self.requests.get(&session_id)?;
        let row = &state.row;
        let candidates: Vec<Candidate<'_>> = free
            .iter()
            .filter_map(|id| {
                self.consultants.get(id).map(|c| Candidate {
                    id: *id,
                    idle_since: c.idle_since,
                    specialties: &c.specialties,
                })
            })
            .collect();
        let preferred = self
            .preferences
            .get(&row.requester_id)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let request = MatchRequest {
            requester_id: row.requester_id,
            hospital_id: row.hospital_id,
            department: &row.department,
            requested_consultant: row.requested_consultant_id,
            wait_for_requested: row.wait_for_consultant,
            preferred,
            excluded: &state.excluded,
        };
        match matching::choose(&request, &candidates, &self.index, rules, &self.weights) {
            Outcome::Offer(choice) => Some(choice),
            Outcome::WaitForRequested | Outcome::Queue => None,
        }
    }

    fn make_offer(
        &mut self,
        session_id: i64,
        choice: MatchChoice,
        trigger: Instant,
        label: &'static str,
        ctx: &mut Context<Self>,
    ) {
        self.offer_seq += 1;
        let seq = self.offer_seq;
        let timeout = self.core.config.offer_timeout();
        let expires_at = Self::now()
            + chrono::Duration::from_std(timeout).unwrap_or_else(|_| chrono::Duration::seconds(20));
        let consultant_id = choice.consultant_id;
        let Some(state) = self.requests.get_mut(&session_id) else {
            return;
        };
        let Some(consultant) = self.consultants.get_mut(&consultant_id) else {
            return;
        };
        consultant.offer = Some(session_id);
        let auto_accept = consultant.auto_accept;
        state.actor.do_send(StartOfferTimer {
            consultant_id,
            offer_seq: seq,
            timeout,
        });
        let match_view = MatchView {
            tier: choice.tier.as_str().to_string(),
            score: choice.score,
            reasons: choice.reasons.clone(),
        };
        let event = ServerEvent::SupportRequestOffered {
            session: SessionView::from_row(&state.row),
            expires_at: rfc3339(expires_at),
            match_info: match_view,
        };
        state.offer = Some(Offer {
            consultant_id,
            seq,
            choice,
        });
        self.core.registry.send_to_user(consultant_id, &event);
        self.core
            .metrics
            .dispatch_latency
            .with_label_values(&[label])
            .observe(trigger.elapsed().as_secs_f64());
        self.core
            .background
            .event(session_id, "offered", None, Some(consultant_id), None);
        if auto_accept {
            let core = self.core.clone();
            let dispatcher = ctx.address();
            actix::spawn(async move {
                if let Err(e) = super::service::accept_as_consultant(
                    &core,
                    &dispatcher,
                    session_id,
                    consultant_id,
                )
                .await
                {
                    tracing::warn!(session_id, consultant_id, error = %e, "auto-accept failed");
                }
            });
        }
    }

    /// Withdraws the current offer of a request, telling the consultant why.
    fn revoke_offer(&mut self, session_id: i64, reason: &'static str) -> Option<i64> {
        let state = self.requests.get_mut(&session_id)?;
        let offer = state.offer.take()?;
        state.actor.do_send(StopOfferTimer);
        if let Some(c) = self.consultants.get_mut(&offer.consultant_id) {
            if c.offer == Some(session_id) {
                c.offer = None;
            }
        }
        self.core.registry.send_to_user(
            offer.consultant_id,
            &ServerEvent::SupportRequestOfferRevoked { session_id, reason },
        );
        Some(offer.consultant_id)
    }

    /// The offered consultant declined or let it time out: move on to the next best.
    /// Only silence counts towards auto-away; a decline is a deliberate answer.
    fn missed(
        &mut self,
        session_id: i64,
        consultant_id: i64,
        timed_out: bool,
        ctx: &mut Context<Self>,
    ) {
        let reason = if timed_out { "timeout" } else { "declined" };
        if timed_out {
            self.revoke_offer(session_id, "timeout");
        } else if let Some(state) = self.requests.get_mut(&session_id) {
            state.offer = None;
            state.actor.do_send(StopOfferTimer);
            if let Some(c) = self.consultants.get_mut(&consultant_id) {
                c.offer = None;
            }
        }
        if let Some(state) = self.requests.get_mut(&session_id) {
            if !state.excluded.contains(&consultant_id) {
                state.excluded.push(consultant_id);
            }
        }
        self.core.background.event(
            session_id,
            if timed_out {
                "offer_timed_out"
            } else {
                "declined"
            },
            Some(consultant_id),
            Some(consultant_id),
            None,
        );
        tracing::info!(session_id, consultant_id, reason, "offer missed");
        let max_missed = self.core.config.max_missed_offers.max(1);
        let mut set_away = false;
        if timed_out {
            if let Some(c) = self.consultants.get_mut(&consultant_id) {
                c.missed_in_row += 1;
                set_away = c.missed_in_row >= max_missed && c.status == ConsultantStatus::Available;
            }
        }
        if set_away {
            tracing::info!(consultant_id, "consultant set away after missed offers");
            self.change_status(consultant_id, ConsultantStatus::Away, true);
        }
        self.dispatch_all(Instant::now(), "rematch", ctx);
    }

    /// Applies a status change in memory, tells everyone, and stores it when the server
    /// (not the consultant) made the change.
    fn change_status(&mut self, consultant_id: i64, status: ConsultantStatus, store: bool) {
        let Some(c) = self.consultants.get_mut(&consultant_id) else {
            return;
        };
        let previous = c.status;
        c.status = status;
        if status == ConsultantStatus::Available && previous != ConsultantStatus::Available {
            c.idle_since = Self::now();
            c.missed_in_row = 0;
        }
        let offered = if status != ConsultantStatus::Available {
            c.offer
        } else {
            None
        };
        if let Some(session_id) = offered {
            self.revoke_offer(session_id, "unavailable");
        }
        if store {
            self.core.background.status(consultant_id, status);
        }
        if previous != status {
            self.core.registry.broadcast(
                &ServerEvent::ConsultantStatusChanged {
                    consultant_id,
                    status: status.as_str(),
                },
                |_| true,
            );
        }
    }

    fn presence_lost(&mut self, consultant_id: i64, ctx: &mut Context<Self>) {
        let Some(c) = self.consultants.get(&consultant_id) else {
            return;
        };
        // A call in progress is never ended by a dropped socket: stay busy.
        if c.session.is_some() || c.status == ConsultantStatus::Offline {
            return;
        }
        self.change_status(consultant_id, ConsultantStatus::Offline, true);
        self.dispatch_all(Instant::now(), "rematch", ctx);
        self.schedule_positions(ctx);
    }

    /// After a call (and any wrap-up), the consultant is available again if they are
    /// still connected, and offline if their sockets are gone.
    fn free_consultant(&mut self, consultant_id: i64, ctx: &mut Context<Self>) {
        let connected = self.core.registry.connections_of(consultant_id) > 0
            || self.core.presences.contains_key(&consultant_id);
        let Some(c) = self.consultants.get_mut(&consultant_id) else {
            return;
        };
        c.session = None;
        c.wrap_up = None;
        if connected {
            // Storage already says available (the end/cancel transaction wrote it).
            self.change_status(consultant_id, ConsultantStatus::Available, false);
        } else {
            self.change_status(consultant_id, ConsultantStatus::Offline, true);
        }
        self.dispatch_all(Instant::now(), "consultant_available", ctx);
        self.schedule_positions(ctx);
    }
}

async fn load_snapshot(db: &crate::db::Db) -> DbResult<Snapshot> {
    let hospitals = repo::hospitals::list(db)
        .await?
        .into_iter()
        .map(|h| (h.id, (h.plan, h.timezone)))
        .collect();
    let consultant_users = repo::users::by_role(db, Role::Consultant.as_str()).await?;
    let availability: HashMap<i64, _> = repo::consultants::availability_all(db)
        .await?
        .into_iter()
        .map(|a| (a.consultant_id, a))
        .collect();
    let mut specialties: HashMap<i64, Vec<(String, Proficiency)>> = HashMap::new();
    for s in repo::consultants::specialties_all(db).await? {
        if let Some(p) = Proficiency::parse(&s.proficiency) {
            specialties
                .entry(s.consultant_id)
                .or_default()
                .push((s.department, p));
        }
    }
    let mut consultants = HashMap::new();
    for user in consultant_users {
        let stored = availability.get(&user.id);
        let status = stored
            .and_then(|a| ConsultantStatus::parse(&a.status))
            .unwrap_or(ConsultantStatus::Offline);
        // `busy` is re-derived from live sessions below; stored busy alone means
        // the server died mid-call bookkeeping, so treat it as available.
        let status = if status == ConsultantStatus::Busy {
            ConsultantStatus::Available
        } else {
            status
        };
        consultants.insert(
            user.id,
            ConsultantState {
                name: user.name,
                status,
                idle_since: stored.map(|a| a.updated_at).unwrap_or_else(repo::now),
                specialties: specialties.remove(&user.id).unwrap_or_default(),
                offer: None,
                session: None,
                missed_in_row: 0,
                auto_accept: stored.is_some_and(|a| a.auto_accept),
                wrap_up: None,
            },
        );
    }
    let mut index = MatchIndex::new();
    let mut preferences: HashMap<i64, Vec<(i32, i64)>> = HashMap::new();
    for r in repo::consultants::relationships_all(db).await? {
        index.set_relationship(
            r.staff_id,
            r.consultant_id,
            Relationship {
                sessions: r.total_sessions.max(0) as u32,
                successful: r.successful_sessions.max(0) as u32,
                rating_sum: r.rating_sum.max(0) as u32,
                rating_count: r.rating_count.max(0) as u32,
            },
        );
        if let Some(rank) = r.preference_rank {
            preferences
                .entry(r.staff_id)
                .or_default()
                .push((rank, r.consultant_id));
        }
    }
    for (consultant, hospital, staff) in repo::sessions::served_triples(db).await? {
        index.mark_served(consultant, hospital, staff);
    }
    Ok(Snapshot {
        hospitals,
        consultants,
        live: repo::sessions::all_live(db).await?,
        index,
        preferences,
        assignments: repo::consultants::assignments_all(db).await?,
        durations: repo::sessions::recent_durations(db, HANDLING_WINDOW as i64).await?,
    })
}

impl Actor for Dispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // A mailbox big enough for a burst of requests under load.
        ctx.set_mailbox_capacity(100_000);
        self.reload(ctx);
    }
}

impl Supervised for Dispatcher {
    /// After a crash, forget the live view; `started` rebuilds it from storage.
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("dispatcher restarting; rebuilding state from the database");
        for (_, state) in self.requests.drain() {
            state.actor.do_send(StopRequest);
        }
        self.ready = false;
        self.queue = WaitQueue::new();
        self.consultants.clear();
        self.positions_sent.clear();
        self.position_flush = None;
    }
}

impl Handler<IsReady> for Dispatcher {
    type Result = bool;
    fn handle(&mut self, _: IsReady, _: &mut Context<Self>) -> bool {
        self.ready
    }
}

impl Handler<Crash> for Dispatcher {
    type Result = ();
    fn handle(&mut self, _: Crash, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<NewRequest> for Dispatcher {
    type Result = MessageResult<NewRequest>;

    fn handle(&mut self, msg: NewRequest, ctx: &mut Context<Self>) -> Self::Result {
        let session_id = msg.row.id;
        self.enqueue(msg.row, Vec::new(), ctx);
        self.dispatch_all(msg.received, "new_request", ctx);
        let position = self.queue.position(session_id);
        if let Some(state) = self.requests.get(&session_id) {
            let event = ServerEvent::SupportRequestNew {
                session: SessionView::from_row(&state.row),
                position,
            };
            self.core.registry.broadcast(&event, |role| {
                matches!(role, Role::Consultant | Role::Admin)
            });
        }
        self.schedule_positions(ctx);
        MessageResult(QueueInfo {
            position,
            estimated_wait_seconds: position.map(|p| self.estimate_for(p)),
        })
    }
}

impl Handler<ReserveAccept> for Dispatcher {
    type Result = Result<MatchChoice, Refusal>;

    fn handle(&mut self, msg: ReserveAccept, _: &mut Context<Self>) -> Self::Result {
        let Some(state) = self.requests.get(&msg.session_id) else {
            return Err(Refusal::NotPending);
        };
        if state.accepting {
            return Err(Refusal::Conflict(
                "this request is already being accepted".into(),
            ));
        }
        let offered_to = state.offer.as_ref().map(|o| o.consultant_id);
        let choice = match offered_to {
            Some(id) if id == msg.consultant_id => state.offer.as_ref().map(|o| o.choice.clone()),
            _ if msg.by_admin => None,
            Some(_) => {
                return Err(Refusal::Conflict(
                    "this request is offered to another consultant".into(),
                ))
            }
            None => {
                return Err(Refusal::Conflict(
                    "this request has not been offered to you".into(),
                ))
            }
        };
        let choice = match choice {
            Some(choice) => choice,
            None => {
                // An admin taking a request directly: record it as such.
                if offered_to.is_some() {
                    self.revoke_offer(msg.session_id, "accepted_elsewhere");
                }
                MatchChoice {
                    consultant_id: msg.consultant_id,
                    tier: Tier::D,
                    score: 0,
                    reasons: vec!["accepted directly by an admin".into()],
                }
            }
        };
        if let Some(state) = self.requests.get_mut(&msg.session_id) {
            state.accepting = true;
            state.actor.do_send(StopOfferTimer);
        }
        Ok(choice)
    }
}

impl Handler<AcceptCommitted> for Dispatcher {
    type Result = ();

    fn handle(&mut self, msg: AcceptCommitted, ctx: &mut Context<Self>) {
        let row = msg.row;
        self.remove_request(row.id);
        if let Some(consultant_id) = row.consultant_id {
            self.core.calls.insert(
                row.id,
                CallParties {
                    requester_id: row.requester_id,
                    consultant_id,
                    hospital_id: row.hospital_id,
                    joined: Default::default(),
                },
            );
            if let Some(c) = self.consultants.get_mut(&consultant_id) {
                c.session = Some(row.id);
                c.offer = None;
                c.missed_in_row = 0;
            }
            // Storage already says busy (the accept transaction wrote it).
            self.change_status(consultant_id, ConsultantStatus::Busy, false);
        }
        self.schedule_positions(ctx);
    }
}

impl Handler<AcceptAborted> for Dispatcher {
    type Result = ();

    fn handle(&mut self, msg: AcceptAborted, ctx: &mut Context<Self>) {
        if let Some(state) = self.requests.get_mut(&msg.session_id) {
            state.accepting = false;
        }
        self.revoke_offer(msg.session_id, "unavailable");
        self.dispatch_all(Instant::now(), "rematch", ctx);
    }
}

impl Handler<Decline> for Dispatcher {
    type Result = Result<(), Refusal>;

    fn handle(&mut self, msg: Decline, ctx: &mut Context<Self>) -> Self::Result {
        let Some(state) = self.requests.get(&msg.session_id) else {
            return Err(Refusal::NotPending);
        };
        if state.accepting {
            return Err(Refusal::Conflict(
                "this request is already being accepted".into(),
            ));
        }
        if state.offer.as_ref().map(|o| o.consultant_id) != Some(msg.consultant_id) {
            return Err(Refusal::Conflict(
                "this request is not offered to you".into(),
            ));
        }
        self.missed(msg.session_id, msg.consultant_id, false, ctx);
        Ok(())
    }
}

impl Handler<OfferExpired> for Dispatcher {
    type Result = ();

    fn handle(&mut self, msg: OfferExpired, ctx: &mut Context<Self>) {
        let current = self
            .requests
            .get(&msg.session_id)
            .filter(|s| !s.accepting)
            .and_then(|s| s.offer.as_ref())
            .is_some_and(|o| o.seq == msg.offer_seq && o.consultant_id == msg.consultant_id);
        if current {
            self.missed(msg.session_id, msg.consultant_id, true, ctx);
        }
    }
}

impl Handler<WithdrawForCancel> for Dispatcher {
    type Result = Result<Option<Withdrawn>, Refusal>;

    fn handle(&mut self, msg: WithdrawForCancel, ctx: &mut Context<Self>) -> Self::Result {
        match self.requests.get(&msg.session_id) {
            None => Ok(None),
            Some(state) if state.accepting => Err(Refusal::Conflict(
                "a consultant is accepting this request right now".into(),
            )),
            Some(_) => {
                self.revoke_offer(msg.session_id, "cancelled");
                let Some(state) = self.remove_request(msg.session_id) else {
                    return Ok(None);
                };
                self.schedule_positions(ctx);
                Ok(Some(Withdrawn {
                    row: state.row,
                    excluded: state.excluded,
                }))
            }
        }
    }
}

impl Handler<Restore> for Dispatcher {
    type Result = ();

    fn handle(&mut self, msg: Restore, ctx: &mut Context<Self>) {
        if !self.requests.contains_key(&msg.withdrawn.row.id) {
            self.enqueue(msg.withdrawn.row, msg.withdrawn.excluded, ctx);
            self.dispatch_all(Instant::now(), "rematch", ctx);
            self.schedule_positions(ctx);
        }
    }
}

impl Handler<SessionFinished> for Dispatcher {
    type Result = ();

    fn handle(&mut self, msg: SessionFinished, ctx: &mut Context<Self>) {
        let row = msg.row;
        self.core.calls.remove(&row.id);
        let Some(consultant_id) = row.consultant_id else {
            return;
        };
        if row.status() == SessionStatus::Completed {
            self.index.record_session(
                row.requester_id,
                consultant_id,
                row.hospital_id,
                row.resolved.unwrap_or(false),
            );
            if let Some(d) = row.duration_seconds {
                self.handling.push(d.max(0) as u64);
            }
        }
        let still_ours = self
            .consultants
            .get(&consultant_id)
            .is_some_and(|c| c.session == Some(row.id));
        if !still_ours {
            return;
        }
        let wrap_up = self.core.config.wrap_up();
        if wrap_up.is_zero() || row.status() != SessionStatus::Completed {
            self.free_consultant(consultant_id, ctx);
        } else {
            let handle = ctx.run_later(wrap_up, move |act, ctx| {
                act.free_consultant(consultant_id, ctx)
            });
            if let Some(c) = self.consultants.get_mut(&consultant_id) {
                c.wrap_up = Some(handle);
            }
        }
    }
}

impl Handler<Rated> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: Rated, _: &mut Context<Self>) {
        self.index
            .record_rating(msg.staff_id, msg.consultant_id, msg.rating);
    }
}

impl Handler<StatusChanged> for Dispatcher {
    type Result = ();

    fn handle(&mut self, msg: StatusChanged, ctx: &mut Context<Self>) {
        if !self.consultants.contains_key(&msg.consultant_id) {
            // A consultant created after start-up: load them, then apply.
            let db = self.core.db.clone();
            let id = msg.consultant_id;
            ctx.wait(
                async move {
                    let user = repo::users::by_id(&db, id).await?;
                    let specialties = repo::consultants::specialties_of(&db, id).await?;
                    let availability = repo::consultants::availability_of(&db, id).await?;
                    Ok::<_, crate::db::DbError>((user, specialties, availability))
                }
                .into_actor(self)
                .map(move |result, act, ctx| {
                    if let Ok((Some(user), specialties, availability)) = result {
                        act.consultants.insert(
                            id,
                            ConsultantState {
                                name: user.name,
                                status: ConsultantStatus::Offline,
                                idle_since: Dispatcher::now(),
                                specialties: specialties
                                    .into_iter()
                                    .filter_map(|s| {
                                        Proficiency::parse(&s.proficiency)
                                            .map(|p| (s.department, p))
                                    })
                                    .collect(),
                                offer: None,
                                session: None,
                                missed_in_row: 0,
                                auto_accept: availability.is_some_and(|a| a.auto_accept),
                                wrap_up: None,
                            },
                        );
                        act.change_status(id, msg.status, false);
                        act.dispatch_all(Instant::now(), "consultant_available", ctx);
                        act.schedule_positions(ctx);
                    }
                }),
            );
            return;
        }
        if self
            .consultants
            .get(&msg.consultant_id)
            .is_some_and(|c| c.session.is_some())
        {
            return;
        }
        self.change_status(msg.consultant_id, msg.status, false);
        self.dispatch_all(Instant::now(), "consultant_available", ctx);
        self.schedule_positions(ctx);
    }
}

impl Handler<PresenceGained> for Dispatcher {
    type Result = ();

    fn handle(&mut self, msg: PresenceGained, _: &mut Context<Self>) {
        let offline = self
            .consultants
            .get(&msg.consultant_id)
            .is_some_and(|c| c.status == ConsultantStatus::Offline && c.session.is_none());
        if offline {
            self.change_status(msg.consultant_id, ConsultantStatus::Online, true);
        }
    }
}

impl Handler<PresenceLost> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: PresenceLost, ctx: &mut Context<Self>) {
        self.presence_lost(msg.consultant_id, ctx);
    }
}

impl Handler<SpecialtiesChanged> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: SpecialtiesChanged, ctx: &mut Context<Self>) {
        if let Some(c) = self.consultants.get_mut(&msg.consultant_id) {
            c.specialties = msg.specialties;
        }
        self.dispatch_all(Instant::now(), "rematch", ctx);
    }
}

impl Handler<PreferencesChanged> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: PreferencesChanged, _: &mut Context<Self>) {
        self.preferences.insert(msg.staff_id, msg.ordered);
    }
}

impl Handler<AssignmentsChanged> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: AssignmentsChanged, ctx: &mut Context<Self>) {
        self.assignments = msg.assignments;
        self.dispatch_all(Instant::now(), "rematch", ctx);
    }
}

impl Handler<AutoAcceptChanged> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: AutoAcceptChanged, _: &mut Context<Self>) {
        if let Some(c) = self.consultants.get_mut(&msg.consultant_id) {
            c.auto_accept = msg.enabled;
        }
    }
}

impl Handler<QueueSnapshot> for Dispatcher {
    type Result = MessageResult<QueueSnapshot>;

    fn handle(&mut self, _: QueueSnapshot, _: &mut Context<Self>) -> Self::Result {
        let now = Self::now();
        let capacity = self.serving_capacity();
        let mean = self.handling.mean_or_default();
        let entries = self
            .queue
            .positions()
            .filter_map(|(session_id, position)| {
                let state = self.requests.get(&session_id)?;
                Some(QueueEntry {
                    session: SessionView::from_row(&state.row),
                    position,
                    waiting_seconds: (now - state.row.created_at).num_seconds().max(0),
                    estimated_wait_seconds: estimate_wait_seconds(position, capacity, mean),
                    offered_to: state.offer.as_ref().map(|o| o.consultant_id),
                })
            })
            .collect();
        MessageResult(entries)
    }
}

impl Handler<ConsultantsSnapshot> for Dispatcher {
    type Result = MessageResult<ConsultantsSnapshot>;

    fn handle(&mut self, _: ConsultantsSnapshot, _: &mut Context<Self>) -> Self::Result {
        let mut list: Vec<ConsultantLive> = self
            .consultants
            .iter()
            .map(|(id, c)| ConsultantLive {
                id: *id,
                name: c.name.clone(),
                status: c.status,
                specialties: c.specialties.clone(),
                auto_accept: c.auto_accept,
                offer: c.offer,
                session: c.session,
            })
            .collect();
        list.sort_by_key(|c| c.id);
        MessageResult(list)
    }
}

impl Handler<PositionOf> for Dispatcher {
    type Result = Option<QueueInfo>;

    fn handle(&mut self, msg: PositionOf, _: &mut Context<Self>) -> Option<QueueInfo> {
        let position = self.queue.position(msg.session_id)?;
        Some(QueueInfo {
            position: Some(position),
            estimated_wait_seconds: Some(self.estimate_for(position)),
        })
    }
}
