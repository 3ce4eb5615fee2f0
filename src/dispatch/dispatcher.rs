//! The Dispatcher: exactly one, supervised. It keeps the [`Board`] (who waits, who
//! is free, which offer is out) from the event stream, decides offers whenever the
//! board changes, and carries out the board's effects: it writes offers, timeouts
//! and the statuses the server sets through [`crate::support`], whose committed
//! events come back to it (and to everyone else) through the stream.
//!
//! It never waits on storage inside a handler: writes run as futures beside the
//! actor, and the board reserves a consultant while their offer is being written.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::NaiveDateTime;
use tokio::sync::oneshot;

use super::board::{Board, Desk, Effect, Loaded, Miss, Place, Proposal};
use super::matching::{MatchWeights, Relationship};
use super::messages::*;
use super::pending::PendingRequest;
use super::presence::Presences;
use crate::db::repo::offers::Resolution;
use crate::db::repo::snapshot::DispatchState;
use crate::db::repo::{self};
use crate::events::Notice;
use crate::model::{ConsultantStatus, EventId, OfferId, SessionId, UserId};
use crate::support::consultants::{server_change, ServerChange};
use crate::support::offers::{make_offer, resolve_offer, OfferFailure, OfferPlan};
use crate::support::{Core, SessionView};

/// How often queue positions are re-sent at most: a burst of changes (a consultant
/// frees up, three requests arrive) becomes one update per waiting requester.
const POSITION_FLUSH: Duration = Duration::from_millis(200);
/// Wait before retrying a failed state load (database down at start-up).
const RELOAD_RETRY: Duration = Duration::from_secs(1);
/// Wait before retrying a write that storage could not take (database down).
const WRITE_RETRY: Duration = Duration::from_secs(1);
/// A refusal from storage normally comes with the event that explains it; should
/// that event never arrive, refused parties are offered again after this long.
const REFUSAL_RETRY: Duration = Duration::from_secs(2);
/// A mailbox big enough for a burst of requests under load.
const MAILBOX: usize = 100_000;

pub struct Dispatcher {
    core: Arc<Core>,
    presences: Arc<Presences>,
    board: Board,
    ready: bool,
    /// Stream events up to this id are already in the loaded board.
    loaded_at: EventId,
    processed: EventId,
    pending: HashMap<SessionId, Addr<PendingRequest>>,
    wrap_ups: HashMap<UserId, SpawnHandle>,
    reoffer_timer: Option<(NaiveDateTime, SpawnHandle)>,
    refusal_timer: Option<SpawnHandle>,
    position_flush: Option<SpawnHandle>,
    places_sent: HashMap<SessionId, (usize, u64)>,
    /// Place queries waiting for the stream to reach their request's event.
    place_queries: Vec<(EventId, SessionId, oneshot::Sender<Option<Place>>)>,
}

impl Dispatcher {
    pub fn new(core: Arc<Core>, presences: Arc<Presences>) -> Dispatcher {
        let board = Board::new(MatchWeights::default(), core.config.max_missed_offers);
        Dispatcher {
            core,
            presences,
            board,
            ready: false,
            loaded_at: EventId(0),
            processed: EventId(0),
            pending: HashMap::new(),
            wrap_ups: HashMap::new(),
            reoffer_timer: None,
            refusal_timer: None,
            position_flush: None,
            places_sent: HashMap::new(),
            place_queries: Vec::new(),
        }
    }

    fn now() -> NaiveDateTime {
        repo::now()
    }

    fn reoffer_after(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.core.config.reoffer_after())
            .unwrap_or(chrono::Duration::MAX)
    }

    // ----- loading -------------------------------------------------------------------

    fn reload(&mut self, ctx: &mut Context<Self>) {
        let db = self.core.db.clone();
        ctx.wait(
            async move { repo::snapshot::dispatch_state(&db).await }
                .into_actor(self)
                .map(|result, act, ctx| match result {
                    Ok(state) => act.apply_snapshot(state, ctx),
                    Err(e) => {
                        tracing::error!(error = %e, "dispatcher could not load its state; retrying");
                        ctx.run_later(RELOAD_RETRY, |act, ctx| act.reload(ctx));
                    }
                }),
        );
    }

    fn apply_snapshot(&mut self, state: DispatchState, ctx: &mut Context<Self>) {
        self.loaded_at = state.last_event;
        self.processed = self.processed.max(state.last_event);
        let effects = self.board.load(loaded_from(state));
        self.ready = true;
        tracing::info!(
            waiting = self.board.queue_len(),
            consultants = self.board.desks().count(),
            "dispatcher state loaded"
        );
        self.carry_out(effects, ctx);
        // Consultants stored as present but with no socket now (the whole server
        // restarted) get one grace period to reconnect before they go offline.
        let grace = self.core.config.presence_grace();
        let absent: Vec<UserId> = self
            .board
            .desks()
            .filter(|(id, d)| {
                d.session.is_none()
                    && d.status != ConsultantStatus::Offline
                    && d.status != ConsultantStatus::Busy
                    && !self.presences.is_connected(*id)
            })
            .map(|(id, _)| id)
            .collect();
        for id in absent {
            ctx.run_later(grace, move |act, ctx| {
                if !act.presences.is_connected(id) {
                    act.server_sets(id, ServerChange::PresenceLost, ctx);
                }
            });
        }
        self.answer_place_queries();
        self.dispatch(ctx);
    }

    // ----- the stream ------------------------------------------------------------------

    fn on_event(&mut self, published: Arc<Published>, ctx: &mut Context<Self>) {
        let id = published.id();
        if !self.ready || id <= self.loaded_at {
            // Before the load it will be in the snapshot; at or below it, it is.
            self.processed = self.processed.max(id);
            return;
        }
        let effects = self
            .board
            .apply(&published.event, published.session.as_ref());
        self.processed = self.processed.max(id);
        self.carry_out(effects, ctx);
        self.answer_place_queries();
        self.dispatch(ctx);
    }

    fn carry_out(&mut self, effects: Vec<Effect>, ctx: &mut Context<Self>) {
        for effect in effects {
            match effect {
                Effect::StartTimer {
                    session_id,
                    offer_id,
                    expires_at,
                } => {
                    let after = (expires_at - Self::now()).to_std().unwrap_or_default();
                    let expired = ctx.address().recipient();
                    self.pending
                        .entry(session_id)
                        .or_insert_with(|| PendingRequest::new(session_id, expired).start())
                        .do_send(StartOfferTimer { offer_id, after });
                }
                Effect::StopTimer { session_id } => {
                    if self.board.waiting(session_id).is_some() {
                        if let Some(actor) = self.pending.get(&session_id) {
                            actor.do_send(StopOfferTimer);
                        }
                    } else if let Some(actor) = self.pending.remove(&session_id) {
                        actor.do_send(StopRequest);
                        self.places_sent.remove(&session_id);
                    }
                }
                Effect::Rescind { offer_id, reason } => {
                    self.resolve(offer_id, Resolution::Rescinded(reason), ctx)
                }
                Effect::SetAway { consultant } => {
                    tracing::info!(
                        consultant_id = consultant.0,
                        "consultant set away after missed offers"
                    );
                    self.server_sets(consultant, ServerChange::MissedOffers, ctx);
                }
                Effect::CallOver { consultant } => self.call_over(consultant, ctx),
                Effect::LoadConsultant { consultant } => self.load_consultant(consultant, ctx),
            }
        }
        self.core
            .metrics
            .queue_length
            .set(self.board.queue_len() as i64);
        self.schedule_places(ctx);
    }

    // ----- offers ----------------------------------------------------------------------

    /// Offers what can be offered now, and arranges to look again when a request
    /// becomes offerable to someone who missed it.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        if !self.ready {
            return;
        }
        let now = Self::now();
        let reoffer_after = self.reoffer_after();
        for proposal in self.board.propose(now, reoffer_after) {
            self.write_offer(proposal, ctx);
        }
        match self.board.next_reoffer(now, reoffer_after) {
            Some(due) if self.reoffer_timer.as_ref().is_none_or(|(at, _)| due < *at) => {
                if let Some((_, old)) = self.reoffer_timer.take() {
                    ctx.cancel_future(old);
                }
                let wait = (due - now).to_std().unwrap_or_default();
                let handle = ctx.run_later(wait, |act, ctx| {
                    act.reoffer_timer = None;
                    act.dispatch(ctx);
                });
                self.reoffer_timer = Some((due, handle));
            }
            _ => {}
        }
    }

    fn write_offer(&mut self, proposal: Proposal, ctx: &mut Context<Self>) {
        let timeout = chrono::Duration::from_std(self.core.config.offer_timeout())
            .unwrap_or(chrono::Duration::MAX);
        let plan = OfferPlan {
            session_id: proposal.session_id,
            consultant_id: proposal.consultant(),
            tier: proposal.choice.tier,
            score: proposal.choice.score,
            reasons: proposal.choice.reasons.clone(),
            expires_at: Self::now() + timeout,
            auto_accept: proposal.auto_accept,
            epoch: 0,
        };
        let first = self
            .board
            .waiting(proposal.session_id)
            .map(|w| (w.misses.is_empty(), w.row.created_at));
        let core = self.core.clone();
        ctx.spawn(
            async move {
                let result = make_offer(&core, &plan).await;
                (plan, result)
            }
            .into_actor(self)
            .map(move |(plan, result), act, ctx| match result {
                Ok(offer_id) => {
                    if let Some((true, created)) = first {
                        let latency = (Self::now() - created).to_std().unwrap_or_default();
                        act.core
                            .metrics
                            .dispatch_latency
                            .with_label_values(&["new_request"])
                            .observe(latency.as_secs_f64());
                    }
                    if !act
                        .board
                        .offer_stored(plan.session_id, plan.consultant_id, offer_id)
                    {
                        // The request moved on while the offer was written; the
                        // stream's events settle it (the offer is withdrawn there).
                        tracing::debug!(session_id = plan.session_id.0, "offer stored after the request moved on");
                    }
                }
                Err(OfferFailure::Refused(guard)) => {
                    tracing::debug!(session_id = plan.session_id.0, ?guard, "storage refused an offer");
                    act.board
                        .offer_failed(plan.session_id, plan.consultant_id, Some(guard));
                    act.schedule_refusal_retry(ctx);
                    act.dispatch(ctx);
                }
                Err(OfferFailure::Storage(e)) => {
                    tracing::warn!(session_id = plan.session_id.0, error = %e, "offer not stored; retrying");
                    act.board
                        .offer_failed(plan.session_id, plan.consultant_id, None);
                    ctx.run_later(WRITE_RETRY, |act, ctx| act.dispatch(ctx));
                }
            }),
        );
    }

    fn schedule_refusal_retry(&mut self, ctx: &mut Context<Self>) {
        if self.refusal_timer.is_some() {
            return;
        }
        self.refusal_timer = Some(ctx.run_later(REFUSAL_RETRY, |act, ctx| {
            act.refusal_timer = None;
            if act.board.clear_refusals() {
                act.dispatch(ctx);
            }
        }));
    }

    fn resolve(&mut self, offer_id: OfferId, resolution: Resolution, ctx: &mut Context<Self>) {
        let core = self.core.clone();
        ctx.spawn(
            async move { resolve_offer(&core, offer_id, resolution).await }
                .into_actor(self)
                .map(move |result, _, ctx| {
                    if let Err(e) = result {
                        tracing::warn!(offer_id = offer_id.0, error = %e, "offer not resolved; retrying");
                        ctx.run_later(WRITE_RETRY, move |act, ctx| {
                            act.resolve(offer_id, resolution, ctx)
                        });
                    }
                }),
        );
    }

    // ----- consultants -----------------------------------------------------------------

    fn server_sets(&mut self, consultant: UserId, change: ServerChange, ctx: &mut Context<Self>) {
        let core = self.core.clone();
        ctx.spawn(
            async move { server_change(&core, consultant, change).await }
                .into_actor(self)
                .map(move |result, _, ctx| {
                    if let Err(e) = result {
                        tracing::warn!(consultant_id = consultant.0, error = %e, "status not stored; retrying");
                        ctx.run_later(WRITE_RETRY, move |act, ctx| {
                            act.server_sets(consultant, change, ctx)
                        });
                    }
                }),
        );
    }

    /// After a call (and any wrap-up), the consultant is available again if still
    /// connected, and offline if their sockets are gone.
    fn call_over(&mut self, consultant: UserId, ctx: &mut Context<Self>) {
        let wrap_up = self.core.config.wrap_up();
        if wrap_up.is_zero() {
            // The end's transaction already made them available.
            if !self.presences.is_connected(consultant) {
                self.server_sets(consultant, ServerChange::CallOver { connected: false }, ctx);
            }
            return;
        }
        let handle = ctx.run_later(wrap_up, move |act, ctx| {
            act.wrap_ups.remove(&consultant);
            let connected = act.presences.is_connected(consultant);
            act.server_sets(consultant, ServerChange::CallOver { connected }, ctx);
        });
        if let Some(old) = self.wrap_ups.insert(consultant, handle) {
            ctx.cancel_future(old);
        }
    }

    /// A consultant created after start-up: load them, then dispatch.
    ///
    /// The mailbox waits for the load: a request that follows the consultant's first
    /// event in the stream must find them on the board, or it would be matched as if
    /// they did not exist (a dedicated consultant's request given to someone else).
    fn load_consultant(&mut self, consultant: UserId, ctx: &mut Context<Self>) {
        let db = self.core.db.clone();
        ctx.wait(
            async move {
                let user = repo::users::by_id(&db, consultant).await?;
                let specialties = repo::consultants::specialties_of(&db, consultant).await?;
                let availability = repo::consultants::availability_of(&db, consultant).await?;
                Ok::<_, crate::db::DbError>((user, specialties, availability))
            }
            .into_actor(self)
            .map(move |result, act, ctx| match result {
                Ok((Some(user), specialties, Some(availability))) => {
                    act.board.add_desk(
                        consultant,
                        Desk {
                            name: user.name,
                            status: availability.status,
                            idle_since: availability.updated_at,
                            specialties: specialties
                                .into_iter()
                                .map(|s| (s.department, s.proficiency))
                                .collect(),
                            auto_accept: availability.auto_accept,
                            session: availability.current_session_id,
                            missed_in_row: 0,
                            refused: false,
                        },
                    );
                    act.dispatch(ctx);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(consultant_id = consultant.0, error = %e, "cannot load a consultant; retrying");
                    ctx.run_later(WRITE_RETRY, move |act, ctx| act.load_consultant(consultant, ctx));
                }
            }),
        );
    }

    // ----- places in line ----------------------------------------------------------------

    fn schedule_places(&mut self, ctx: &mut Context<Self>) {
        if self.position_flush.is_some() {
            return;
        }
        self.position_flush = Some(ctx.run_later(POSITION_FLUSH, |act, _| {
            act.position_flush = None;
            act.send_places();
        }));
    }

    /// Tells each waiting requester whose place or estimate changed.
    fn send_places(&mut self) {
        for place in self.board.places() {
            let figures = (place.position, place.estimated_wait_seconds);
            if self.places_sent.get(&place.session_id) == Some(&figures) {
                continue;
            }
            self.places_sent.insert(place.session_id, figures);
            self.core.hub.notify(Notice::QueuePosition {
                requester_id: place.requester_id,
                session_id: place.session_id,
                position: place.position,
                estimated_wait_seconds: place.estimated_wait_seconds,
            });
        }
    }

    fn answer_place_queries(&mut self) {
        if self.place_queries.is_empty() || !self.ready {
            return;
        }
        let processed = self.processed;
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.place_queries)
            .into_iter()
            .partition(|(after, _, _)| *after <= processed);
        self.place_queries = waiting;
        for (_, session_id, reply) in due {
            let _ = reply.send(self.board.place_of(session_id));
        }
    }

    fn queue_entries(&self) -> Vec<QueueEntry> {
        let now = Self::now();
        let places: HashMap<SessionId, Place> = self
            .board
            .places()
            .into_iter()
            .map(|p| (p.session_id, p))
            .collect();
        self.board
            .in_order()
            .map(|(position, w)| QueueEntry {
                session: SessionView::from_row(&w.row),
                position,
                waiting_seconds: (now - w.row.created_at).num_seconds().max(0),
                estimated_wait_seconds: places
                    .get(&w.row.id)
                    .map_or(0, |p| p.estimated_wait_seconds),
                offered_to: w.offer.map(|slot| slot.consultant),
            })
            .collect()
    }

    fn consultants(&self) -> Vec<ConsultantLive> {
        let mut list: Vec<ConsultantLive> = self
            .board
            .desks()
            .map(|(id, d)| ConsultantLive {
                id,
                name: d.name.clone(),
                status: d.status,
                specialties: d.specialties.clone(),
                auto_accept: d.auto_accept,
                offer: self.board.offer_held_by(id),
                session: d.session,
            })
            .collect();
        list.sort_by_key(|c| c.id);
        list
    }
}

use crate::events::Published;

/// The board's input from storage's rows.
fn loaded_from(state: DispatchState) -> Loaded {
    let mut specialties: HashMap<UserId, Vec<_>> = HashMap::new();
    for s in state.specialties {
        specialties
            .entry(s.consultant_id)
            .or_default()
            .push((s.department, s.proficiency));
    }
    let availability: HashMap<UserId, _> = state
        .availability
        .into_iter()
        .map(|a| (a.consultant_id, a))
        .collect();
    let desks = state
        .consultants
        .into_iter()
        .map(|user| {
            let stored = availability.get(&user.id);
            let desk = Desk {
                name: user.name,
                status: stored.map_or(ConsultantStatus::Offline, |a| a.status),
                idle_since: stored.map_or_else(repo::now, |a| a.updated_at),
                specialties: specialties.remove(&user.id).unwrap_or_default(),
                auto_accept: stored.is_some_and(|a| a.auto_accept),
                session: None,
                missed_in_row: 0,
                refused: false,
            };
            (user.id, desk)
        })
        .collect();
    Loaded {
        desks,
        live: state.live,
        offers: state
            .pending_offers
            .into_iter()
            .map(|o| (o.session_id, o.consultant_id, o.id, o.expires_at))
            .collect(),
        misses: state
            .misses
            .into_iter()
            .map(|o| {
                (
                    o.session_id,
                    Miss {
                        consultant: o.consultant_id,
                        at: o.resolved_at.unwrap_or(o.offered_at),
                    },
                )
            })
            .collect(),
        relationships: state
            .relationships
            .into_iter()
            .map(|r| {
                (
                    r.staff_id,
                    r.consultant_id,
                    Relationship {
                        sessions: r.total_sessions.max(0) as u32,
                        successful: r.successful_sessions.max(0) as u32,
                        rating_sum: r.rating_sum.max(0) as u32,
                        rating_count: r.rating_count.max(0) as u32,
                    },
                    r.preference_rank,
                )
            })
            .collect(),
        served: state.served,
        assignments: state.assignments,
        timezones: state
            .hospitals
            .into_iter()
            .map(|h| (h.id, h.timezone))
            .collect(),
        durations: state.durations,
    }
}

impl Actor for Dispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        self.reload(ctx);
    }
}

impl Supervised for Dispatcher {
    /// After a crash, forget the live view; `started` rebuilds it from storage.
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("dispatcher restarting; rebuilding state from the database");
        for (_, actor) in self.pending.drain() {
            actor.do_send(StopRequest);
        }
        self.board = Board::new(MatchWeights::default(), self.core.config.max_missed_offers);
        self.ready = false;
        self.wrap_ups.clear();
        self.reoffer_timer = None;
        self.refusal_timer = None;
        self.position_flush = None;
        self.places_sent.clear();
    }
}

impl Handler<StreamEvent> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: StreamEvent, ctx: &mut Context<Self>) {
        self.on_event(msg.0, ctx);
    }
}

impl Handler<OfferExpired> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: OfferExpired, ctx: &mut Context<Self>) {
        let current = self
            .board
            .current_offer(msg.session_id)
            .is_some_and(|(_, id)| id == msg.offer_id);
        if current {
            self.resolve(msg.offer_id, Resolution::TimedOut, ctx);
        }
    }
}

impl Handler<PresenceGained> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: PresenceGained, ctx: &mut Context<Self>) {
        let offline = self
            .board
            .desk(msg.consultant_id)
            .is_some_and(|d| d.status == ConsultantStatus::Offline && d.session.is_none());
        if offline {
            self.server_sets(msg.consultant_id, ServerChange::PresenceGained, ctx);
        }
    }
}

impl Handler<PresenceLost> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: PresenceLost, ctx: &mut Context<Self>) {
        // A call in progress is never ended by a dropped socket: stay busy.
        let present = self.board.desk(msg.consultant_id).is_some_and(|d| {
            d.session.is_none()
                && d.status != ConsultantStatus::Offline
                && d.status != ConsultantStatus::Busy
        });
        if present {
            self.server_sets(msg.consultant_id, ServerChange::PresenceLost, ctx);
        }
    }
}

impl Handler<SpecialtiesChanged> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: SpecialtiesChanged, ctx: &mut Context<Self>) {
        self.board
            .set_specialties(msg.consultant_id, msg.specialties);
        self.dispatch(ctx);
    }
}

impl Handler<TimezoneChanged> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: TimezoneChanged, ctx: &mut Context<Self>) {
        self.board.set_timezone(msg.hospital_id, msg.timezone);
        self.dispatch(ctx);
    }
}

impl Handler<PreferencesChanged> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: PreferencesChanged, _: &mut Context<Self>) {
        self.board.set_preferences(msg.staff_id, &msg.ordered);
    }
}

impl Handler<AssignmentsChanged> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: AssignmentsChanged, ctx: &mut Context<Self>) {
        self.board.set_assignments(msg.assignments);
        self.dispatch(ctx);
    }
}

impl Handler<AutoAcceptChanged> for Dispatcher {
    type Result = ();
    fn handle(&mut self, msg: AutoAcceptChanged, _: &mut Context<Self>) {
        self.board.set_auto_accept(msg.consultant_id, msg.enabled);
    }
}

impl Handler<QueueSnapshot> for Dispatcher {
    type Result = MessageResult<QueueSnapshot>;
    fn handle(&mut self, _: QueueSnapshot, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.queue_entries())
    }
}

impl Handler<ConsultantsSnapshot> for Dispatcher {
    type Result = MessageResult<ConsultantsSnapshot>;
    fn handle(&mut self, _: ConsultantsSnapshot, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.consultants())
    }
}

impl Handler<ViewSnapshot> for Dispatcher {
    type Result = MessageResult<ViewSnapshot>;
    fn handle(&mut self, _: ViewSnapshot, _: &mut Context<Self>) -> Self::Result {
        MessageResult(DispatcherView {
            ready: self.ready,
            processed: self.processed,
            queue: self.queue_entries(),
            consultants: self.consultants(),
            invariants: self.board.check(),
        })
    }
}

impl Handler<PlaceOf> for Dispatcher {
    type Result = ResponseFuture<Option<Place>>;
    fn handle(&mut self, msg: PlaceOf, _: &mut Context<Self>) -> Self::Result {
        if self.ready && msg.after <= self.processed {
            let place = self.board.place_of(msg.session_id);
            return Box::pin(async move { place });
        }
        let (tx, rx) = oneshot::channel();
        self.place_queries.push((msg.after, msg.session_id, tx));
        Box::pin(async move { rx.await.ok().flatten() })
    }
}

impl Handler<PlaceOfRequester> for Dispatcher {
    type Result = Option<Place>;
    fn handle(&mut self, msg: PlaceOfRequester, _: &mut Context<Self>) -> Option<Place> {
        self.board
            .places()
            .into_iter()
            .find(|p| p.requester_id == msg.requester_id)
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
