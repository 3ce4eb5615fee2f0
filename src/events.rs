//! The event hub: where committed events enter the live system, in stream order.
//!
//! Every state change commits its events (`session_events`) and then hands them here
//! with [`Hub::publish`]. The hub delivers them to its subscribers (the socket fan-out,
//! the dispatcher, the live-call view, auto-accept) strictly in id order, once each,
//! so a subscriber never sees `ended` before `accepted`, and a socket that resumes
//! from the last id it saw misses nothing.
//!
//! Ids are handed out by the database. Two transactions may commit in one order and
//! publish in the other, and on PostgreSQL a transaction can take id 10, commit after
//! id 11, or roll back and never commit 10 at all. So the hub keeps a small reorder
//! buffer: it delivers `n` only after `n - 1`. When the next id has not been published
//! within [`GAP_CATCH_UP`] it reads the stream from the database (an event whose
//! publisher died between commit and publish is found there); an id the database
//! still does not have after [`GAP_GIVE_UP`] belonged to a transaction that rolled
//! back, and is skipped. (A "high-water mark with a stale-gap timeout", as event
//! stores on SQL databases do it.) A late event that turns up after being skipped is
//! delivered late and counted in `nicehr_events_late_total`.
//!
//! Notices ([`Notice`]) are live-only messages (queue positions): not stored, no id,
//! delivered at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::db::models::SessionRow;
use crate::db::{repo, Db};
use crate::metrics::Metrics;
use crate::model::event::Event;
use crate::model::{EventId, SessionId, UserId};

/// How long the hub waits for a missing id before reading the stream from storage.
pub const GAP_CATCH_UP: Duration = Duration::from_millis(25);
/// How long a missing id may stay missing from storage before it is taken to be a
/// rolled-back transaction's and skipped.
pub const GAP_GIVE_UP: Duration = Duration::from_secs(1);
/// Most events read from storage in one catch-up.
const CATCH_UP_BATCH: i64 = 1000;
/// Skipped ids remembered for late delivery; older ones are forgotten.
const MAX_SKIPPED_REMEMBERED: usize = 10_000;

/// A committed event with the session row as the same transaction left it, when the
/// change was to a session (so the fan-out needs no read to build its frames).
#[derive(Debug, Clone)]
pub struct Published {
    pub event: Event,
    pub session: Option<Arc<SessionRow>>,
}

impl Published {
    pub fn id(&self) -> EventId {
        self.event.id
    }
}

/// Live-only news for one user, computed rather than stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    QueuePosition {
        requester_id: UserId,
        session_id: SessionId,
        position: usize,
        estimated_wait_seconds: u64,
    },
}

/// Called by the hub for every event, in order, on the hub's task: keep it short
/// (hand work to an actor or a task).
pub type EventSink = Box<dyn Fn(&Arc<Published>) + Send + Sync>;
pub type NoticeSink = Box<dyn Fn(&Notice) + Send + Sync>;

enum Input {
    Events(Vec<Published>),
    Notice(Notice),
    Subscribe(EventSink),
    SubscribeNotices(NoticeSink),
}

/// The handle every publisher and subscriber holds.
#[derive(Clone)]
pub struct Hub {
    tx: mpsc::UnboundedSender<Input>,
    delivered: Arc<AtomicI64>,
}

impl Hub {
    /// Starts the hub's task on `thread`, delivering from after `last`.
    pub fn start(
        db: Db,
        metrics: Arc<Metrics>,
        last: EventId,
        thread: &actix::ArbiterHandle,
    ) -> Hub {
        let (tx, rx) = mpsc::unbounded_channel();
        let delivered = Arc::new(AtomicI64::new(last.0));
        let runner = Runner {
            db,
            metrics,
            delivered: delivered.clone(),
            waiting: BTreeMap::new(),
            gap_since: None,
            skipped: BTreeSet::new(),
            sinks: Vec::new(),
            notice_sinks: Vec::new(),
        };
        if !thread.spawn(runner.run(rx)) {
            tracing::error!("the event hub's thread has stopped; live updates are not delivered");
        }
        Hub { tx, delivered }
    }

    /// Hands committed events to the hub (in any order; it sorts them out).
    pub fn publish(&self, events: Vec<Event>, session: Option<Arc<SessionRow>>) {
        if events.is_empty() {
            return;
        }
        let published = events
            .into_iter()
            .map(|event| {
                let session = session
                    .as_ref()
                    .filter(|s| event.session_id == Some(s.id))
                    .cloned();
                Published { event, session }
            })
            .collect();
        self.send(Input::Events(published));
    }

    pub fn notify(&self, notice: Notice) {
        self.send(Input::Notice(notice));
    }

    pub fn subscribe(&self, sink: EventSink) {
        self.send(Input::Subscribe(sink));
    }

    pub fn subscribe_notices(&self, sink: NoticeSink) {
        self.send(Input::SubscribeNotices(sink));
    }

    /// The id of the last event delivered to the subscribers. It is advanced just
    /// before an event is delivered, so a socket registered before reading it either
    /// receives an event live or finds it at or below this id in storage.
    pub fn last_delivered(&self) -> EventId {
        EventId(self.delivered.load(Ordering::SeqCst))
    }

    fn send(&self, input: Input) {
        if self.tx.send(input).is_err() {
            tracing::warn!(
                "the event hub has stopped (shutting down?); live updates are not delivered"
            );
        }
    }
}

struct Runner {
    db: Db,
    metrics: Arc<Metrics>,
    delivered: Arc<AtomicI64>,
    /// Published but not deliverable yet: an earlier id is missing.
    waiting: BTreeMap<EventId, Published>,
    /// When the current gap (the missing id right after `delivered`) was noticed.
    gap_since: Option<Instant>,
    /// Ids given up on (most recent [`MAX_SKIPPED_REMEMBERED`]): one that turns up
    /// after all is delivered late instead of being taken for a duplicate.
    skipped: BTreeSet<EventId>,
    sinks: Vec<EventSink>,
    notice_sinks: Vec<NoticeSink>,
}

impl Runner {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Input>) {
        loop {
            let input = match self.gap_since {
                None => rx.recv().await,
                Some(since) => {
                    let age = since.elapsed();
                    let wait = if age < GAP_CATCH_UP {
                        GAP_CATCH_UP - age
                    } else {
                        GAP_CATCH_UP
                    };
                    match tokio::time::timeout(wait, rx.recv()).await {
                        Ok(input) => input,
                        Err(_) => {
                            self.catch_up().await;
                            continue;
                        }
                    }
                }
            };
            let Some(input) = input else { return };
            match input {
                Input::Events(events) => {
                    for published in events {
                        self.accept(published);
                    }
                    self.drain();
                }
                Input::Notice(notice) => {
                    for sink in &self.notice_sinks {
                        sink(&notice);
                    }
                }
                Input::Subscribe(sink) => self.sinks.push(sink),
                Input::SubscribeNotices(sink) => self.notice_sinks.push(sink),
            }
        }
    }

    fn last(&self) -> EventId {
        EventId(self.delivered.load(Ordering::SeqCst))
    }

    fn accept(&mut self, published: Published) {
        let id = published.id();
        if id <= self.last() {
            // Either a duplicate (catch-up read it first) or a late commit whose id
            // was given up on: the latter is delivered, late, rather than lost.
            if self.skipped.remove(&id) {
                self.metrics.events_late.inc();
                tracing::warn!(event_id = id.0, "event delivered out of order");
                self.deliver(Arc::new(published));
            }
            return;
        }
        self.waiting.insert(id, published);
    }

    /// Delivers every event that is next in line.
    fn drain(&mut self) {
        loop {
            let next = EventId(self.last().0 + 1);
            match self.waiting.first_key_value() {
                Some((id, _)) if *id == next => {
                    if let Some((_, published)) = self.waiting.pop_first() {
                        self.advance(published);
                    }
                }
                Some(_) => {
                    if self.gap_since.is_none() {
                        self.gap_since = Some(Instant::now());
                    }
                    return;
                }
                None => {
                    self.gap_since = None;
                    return;
                }
            }
        }
    }

    fn advance(&mut self, published: Published) {
        // Before delivering: see `Hub::last_delivered`.
        self.delivered.store(published.id().0, Ordering::SeqCst);
        self.gap_since = None;
        self.deliver(Arc::new(published));
    }

    fn deliver(&self, published: Arc<Published>) {
        self.metrics.events_delivered.inc();
        for sink in &self.sinks {
            sink(&published);
        }
    }

    /// The next id has not been published for a while: read what storage has.
    ///
    /// Only the hole is read, up to the first event already waiting: under load a
    /// publisher that is a little late is the usual cause, and reading every event
    /// after the hole (a thousand rows, and their sessions) on each such delay cost
    /// more than the delay and made the next one likelier.
    async fn catch_up(&mut self) {
        let after = self.last();
        let upto = self.waiting.keys().next().map(|first| EventId(first.0 - 1));
        let rows = match repo::events::range(&self.db, after, upto, CATCH_UP_BATCH).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "event catch-up read failed; retrying");
                return;
            }
        };
        let mut sessions: HashMap<SessionId, Arc<SessionRow>> = HashMap::new();
        let wanted: Vec<SessionId> = rows
            .iter()
            .filter(|r| !self.waiting.contains_key(&r.id))
            .filter_map(|r| r.session_id)
            .collect();
        if !wanted.is_empty() {
            match repo::events::sessions_of(&self.db, &wanted).await {
                Ok(found) => {
                    sessions.extend(found.into_iter().map(|s| (s.id, Arc::new(s))));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event catch-up read failed; retrying");
                    return;
                }
            }
        }
        let mut found_any = false;
        for row in rows {
            if self.waiting.contains_key(&row.id) {
                continue;
            }
            match row.to_event() {
                Ok(event) => {
                    found_any = true;
                    let session = event.session_id.and_then(|id| sessions.get(&id).cloned());
                    self.waiting.insert(row.id, Published { event, session });
                }
                Err(e) => tracing::error!(error = %e, "unreadable event skipped"),
            }
        }
        if found_any {
            self.metrics.events_caught_up.inc();
        }
        let next = EventId(self.last().0 + 1);
        let gap_is_old = self
            .gap_since
            .is_some_and(|since| since.elapsed() >= GAP_GIVE_UP);
        if !self.waiting.contains_key(&next) && gap_is_old {
            if let Some(first) = self.waiting.keys().next().copied() {
                tracing::warn!(
                    from = next.0,
                    to = first.0 - 1,
                    "event ids never committed; skipping them"
                );
                self.metrics
                    .events_skipped
                    .inc_by((first.0 - next.0) as u64);
                for id in next.0..first.0 {
                    self.skipped.insert(EventId(id));
                }
                while self.skipped.len() > MAX_SKIPPED_REMEMBERED {
                    self.skipped.pop_first();
                }
                self.delivered.store(first.0 - 1, Ordering::SeqCst);
            }
        }
        self.drain();
    }
}
