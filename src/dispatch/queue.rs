//! The waiting room: the order in which queued requests are served (DESIGN.md §4,
//! "Queue order") and the wait estimates shown to the people in it.
//!
//! Pure data structures, owned by the dispatcher actor; no clock is read here, so the
//! caller passes every timestamp in.

use std::collections::{BTreeSet, VecDeque};

use chrono::NaiveDateTime;

use super::matching::{IdMap, Urgency};
use crate::model::Plan;

/// A queued request's place in line.
///
/// Ordered by urgency class (critical first), then earliest response deadline, then
/// oldest request, then lowest session id — the last only so that two requests never
/// compare equal and the order is the same after a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueueKey {
    pub urgency: Urgency,
    pub deadline: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub session_id: i64,
}

impl QueueKey {
    /// Derives the deadline from the hospital's plan, so a request rebuilt from the
    /// database after a restart gets exactly the key it had before.
    pub fn new(session_id: i64, urgency: Urgency, created_at: NaiveDateTime, plan: Plan) -> Self {
        QueueKey {
            urgency,
            deadline: created_at + plan.response_target(),
            created_at,
            session_id,
        }
    }
}

impl Ord for QueueKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other
            .urgency
            .cmp(&self.urgency)
            .then(self.deadline.cmp(&other.deadline))
            .then(self.created_at.cmp(&other.created_at))
            .then(self.session_id.cmp(&other.session_id))
    }
}

impl PartialOrd for QueueKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The queue of requests waiting for a consultant, in serving order.
///
/// A sorted set gives ordered iteration and O(log n) insert and pop; the id map gives
/// O(log n) removal by session id (cancel, accept, offer taken) without a scan.
#[derive(Debug, Clone, Default)]
pub struct WaitQueue {
    order: BTreeSet<QueueKey>,
    keys: IdMap<i64, QueueKey>,
}

impl WaitQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queue a request. A session already queued is re-keyed (e.g. its urgency was
    /// raised) rather than queued twice; its previous key is returned.
    pub fn insert(&mut self, key: QueueKey) -> Option<QueueKey> {
        let previous = self.keys.insert(key.session_id, key);
        if let Some(old) = previous {
            self.order.remove(&old);
        }
        self.order.insert(key);
        previous
    }

    /// Take a request out of the queue (accepted, cancelled, or matched).
    pub fn remove(&mut self, session_id: i64) -> Option<QueueKey> {
        let key = self.keys.remove(&session_id)?;
        self.order.remove(&key);
        Some(key)
    }

    pub fn contains(&self, session_id: i64) -> bool {
        self.keys.contains_key(&session_id)
    }

    pub fn get(&self, session_id: i64) -> Option<&QueueKey> {
        self.keys.get(&session_id)
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Serving order, first to be served first.
    pub fn iter(&self) -> std::collections::btree_set::Iter<'_, QueueKey> {
        self.order.iter()
    }

    pub fn first(&self) -> Option<&QueueKey> {
        self.order.first()
    }

    pub fn pop_first(&mut self) -> Option<QueueKey> {
        let key = self.order.pop_first()?;
        self.keys.remove(&key.session_id);
        Some(key)
    }

    /// 1-based place in line.
    ///
    /// O(n): a B-tree does not count its elements below a key. At the scale we expect
    /// (thousands at most) that is microseconds; when every position changes (someone
    /// left the line) use [`WaitQueue::positions`] for all of them in one pass.
    pub fn position(&self, session_id: i64) -> Option<usize> {
        let key = self.keys.get(&session_id)?;
        Some(self.order.range(..*key).count() + 1)
    }

    /// Every queued session with its 1-based position, in serving order, in one pass:
    /// what the dispatcher needs to broadcast `queue_position_update`s.
    pub fn positions(&self) -> impl Iterator<Item = (i64, usize)> + '_ {
        self.order
            .iter()
            .enumerate()
            .map(|(i, key)| (key.session_id, i + 1))
    }

    /// The first queued session (in serving order) that `eligible` accepts — a freed
    /// consultant takes the first request they may serve, not merely the first one.
    pub fn first_eligible(&self, mut eligible: impl FnMut(i64) -> bool) -> Option<i64> {
        self.order
            .iter()
            .map(|key| key.session_id)
            .find(|&id| eligible(id))
    }
}

impl<'a> IntoIterator for &'a WaitQueue {
    type Item = &'a QueueKey;
    type IntoIter = std::collections::btree_set::Iter<'a, QueueKey>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Mean handling time assumed until sessions have completed: 10 minutes.
pub const DEFAULT_HANDLE_SECONDS: f64 = 600.0;

/// How many recent sessions the handling-time mean covers.
pub const HANDLING_WINDOW: usize = 50;

/// A rolling window of recent handling times (session duration plus wrap-up, in
/// seconds), so wait estimates follow today's load rather than all-time history.
#[derive(Debug, Clone)]
pub struct HandlingTimes {
    window: VecDeque<u64>,
    capacity: usize,
    /// Kept alongside the window so `mean` is O(1); integers, so it never drifts.
    sum: u64,
}

impl Default for HandlingTimes {
    fn default() -> Self {
        Self::with_window(HANDLING_WINDOW)
    }
}

impl HandlingTimes {
    /// A window of the last `capacity` sessions (at least 1).
    pub fn with_window(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        HandlingTimes {
            window: VecDeque::with_capacity(capacity),
            capacity,
            sum: 0,
        }
    }

    /// Record one completed session: its `duration_seconds` plus the wrap-up time
    /// during which the consultant was still not available.
    pub fn push(&mut self, seconds: u64) {
        if self.window.len() == self.capacity {
            if let Some(old) = self.window.pop_front() {
                self.sum -= old;
            }
        }
        self.window.push_back(seconds);
        self.sum = self.sum.saturating_add(seconds);
    }

    pub fn len(&self) -> usize {
        self.window.len()
    }

    pub fn is_empty(&self) -> bool {
        self.window.is_empty()
    }

    pub fn mean(&self) -> Option<f64> {
        (!self.window.is_empty()).then(|| self.sum as f64 / self.window.len() as f64)
    }

    /// The mean, or [`DEFAULT_HANDLE_SECONDS`] before any session has completed.
    pub fn mean_or_default(&self) -> f64 {
        self.mean().unwrap_or(DEFAULT_HANDLE_SECONDS)
    }
}

/// Estimated seconds until the request at 1-based `position` is offered to someone.
///
/// `wait = ceil(position × h / c)` where `c` is the number of consultants who could
/// serve the queue (available or busy; clamped to at least 1) and `h` the mean handling
/// time (pass [`HandlingTimes::mean_or_default`]; a non-finite or non-positive value
/// falls back to [`DEFAULT_HANDLE_SECONDS`]).
///
/// Why: consultants are at random points in their sessions, so completions arrive about
/// every `h / c` seconds on average (the usual M/M/c reasoning behind contact-centre
/// estimates), and the request at position `p` needs `p` of them. This is a mean, not a
/// promise: it rises with `p`, falls as `c` grows, and never under-counts the queue
/// ahead. With nobody online at all the true wait is unbounded; clamping `c` to 1 gives
/// a finite number, and the UI should say "no consultants online" beside it.
/// Position 0 (not queued) is 0.
pub fn estimate_wait_seconds(
    position: usize,
    eligible_consultants: usize,
    mean_handle_seconds: f64,
) -> u64 {
    if position == 0 {
        return 0;
    }
    let h = if mean_handle_seconds.is_finite() && mean_handle_seconds > 0.0 {
        mean_handle_seconds
    } else {
        DEFAULT_HANDLE_SECONDS
    };
    let c = eligible_consultants.max(1) as f64;
    // `as` saturates for huge values, which is the right answer for an estimate.
    (position as f64 * h / c).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn t(secs: i64) -> NaiveDateTime {
        DateTime::from_timestamp(1_750_000_000 + secs, 0)
            .unwrap()
            .naive_utc()
    }

    fn ids(q: &WaitQueue) -> Vec<i64> {
        q.iter().map(|k| k.session_id).collect()
    }

    /// A queue with mixed urgencies, plans and ages; expected serving order in the doc.
    fn mixed() -> WaitQueue {
        let mut q = WaitQueue::new();
        // id, urgency, created (s), plan  -> deadline (s)
        let rows = [
            (1, Urgency::Normal, 0, Plan::Enterprise),       // 900
            (2, Urgency::Normal, 100, Plan::Basic),          // 86_500
            (3, Urgency::Urgent, 500, Plan::Professional),   // 14_900
            (4, Urgency::Critical, 2_000, Plan::Basic),      // 88_400
            (5, Urgency::Critical, 1_000, Plan::Enterprise), // 1_900
            (6, Urgency::Normal, 50, Plan::Premium),         // 3_650
            (7, Urgency::Urgent, 400, Plan::Professional),   // 14_800
            (8, Urgency::Normal, 0, Plan::Enterprise),       // 900, same as 1
            (9, Urgency::Normal, -10, Plan::Basic),          // 86_390
        ];
        for (id, urgency, created, plan) in rows {
            assert_eq!(q.insert(QueueKey::new(id, urgency, t(created), plan)), None);
        }
        q
    }

    // Critical: 5 (deadline 1_900) then 4 (88_400). Urgent: 7 (14_800) then 3 (14_900).
    // Normal: 1 and 8 (900, same age: lower id), 6 (3_650), 9 (86_390), 2 (86_500).
    const MIXED_ORDER: [i64; 9] = [5, 4, 7, 3, 1, 8, 6, 9, 2];

    #[test]
    fn plan_targets() {
        use chrono::Duration;
        assert_eq!(Plan::Enterprise.response_target(), Duration::minutes(15));
        assert_eq!(Plan::Premium.response_target(), Duration::hours(1));
        assert_eq!(Plan::Professional.response_target(), Duration::hours(4));
        assert_eq!(Plan::Basic.response_target(), Duration::hours(24));
        let k = QueueKey::new(1, Urgency::Normal, t(0), Plan::Premium);
        assert_eq!(k.deadline, t(3_600));
    }

    #[test]
    fn order_is_urgency_then_deadline_then_age_then_id() {
        let q = mixed();
        assert_eq!(ids(&q), MIXED_ORDER);
        assert_eq!(q.len(), 9);
        // Oldest first when deadlines tie.
        let mut q = WaitQueue::new();
        q.insert(QueueKey {
            urgency: Urgency::Normal,
            deadline: t(10),
            created_at: t(5),
            session_id: 1,
        });
        q.insert(QueueKey {
            urgency: Urgency::Normal,
            deadline: t(10),
            created_at: t(3),
            session_id: 2,
        });
        assert_eq!(ids(&q), [2, 1]);
    }

    #[test]
    fn positions_and_removal() {
        let mut q = mixed();
        let expected: Vec<(i64, usize)> = MIXED_ORDER.iter().copied().zip(1..).collect();
        assert_eq!(q.positions().collect::<Vec<_>>(), expected);
        for &(id, pos) in &expected {
            assert_eq!(q.position(id), Some(pos));
        }
        assert_eq!(q.position(42), None);

        assert_eq!(q.remove(7).map(|k| k.urgency), Some(Urgency::Urgent));
        assert_eq!(q.remove(7), None);
        assert!(!q.contains(7) && q.contains(3));
        assert_eq!(q.position(3), Some(3));
        assert_eq!(q.position(2), Some(8));
        assert_eq!(q.len(), 8);

        assert_eq!(q.pop_first().map(|k| k.session_id), Some(5));
        assert!(!q.contains(5));
        assert_eq!(q.first().map(|k| k.session_id), Some(4));
        assert_eq!(ids(&q), [4, 3, 1, 8, 6, 9, 2]);
        while q.pop_first().is_some() {}
        assert!(q.is_empty() && q.get(4).is_none());
        assert_eq!(q.pop_first(), None);
    }

    #[test]
    fn reinsert_rekeys_instead_of_duplicating() {
        let mut q = mixed();
        let old = *q.get(2).unwrap();
        let raised = QueueKey {
            urgency: Urgency::Critical,
            ..old
        };
        assert_eq!(q.insert(raised), Some(old));
        assert_eq!(q.len(), 9);
        // Critical now, and its deadline (86_500) is before 4's (88_400).
        assert_eq!(ids(&q), [5, 2, 4, 7, 3, 1, 8, 6, 9]);
        assert_eq!(q.position(2), Some(2));
    }

    #[test]
    fn first_eligible_skips_ineligible_in_order() {
        let q = mixed();
        let mut asked = Vec::new();
        let got = q.first_eligible(|id| {
            asked.push(id);
            id % 2 == 0 && id != 4
        });
        assert_eq!(got, Some(8));
        assert_eq!(asked, [5, 4, 7, 3, 1, 8]);
        assert_eq!(q.first_eligible(|_| false), None);
        assert_eq!(WaitQueue::new().first_eligible(|_| true), None);
    }

    #[test]
    fn handling_window_rolls() {
        let mut h = HandlingTimes::with_window(3);
        assert_eq!(h.mean(), None);
        assert_eq!(h.mean_or_default(), 600.0);
        h.push(100);
        h.push(200);
        assert_eq!(h.mean(), Some(150.0));
        h.push(300);
        h.push(700); // drops 100
        assert_eq!((h.len(), h.mean()), (3, Some(400.0)));
        assert_eq!(HandlingTimes::default().capacity, 50);
        let mut h = HandlingTimes::default();
        for s in 1..=60 {
            h.push(s);
        }
        assert_eq!(h.mean(), Some((11..=60).sum::<u64>() as f64 / 50.0));
    }

    #[test]
    fn estimates() {
        assert_eq!(estimate_wait_seconds(0, 3, 600.0), 0);
        assert_eq!(estimate_wait_seconds(1, 1, 600.0), 600);
        assert_eq!(estimate_wait_seconds(1, 4, 600.0), 150);
        assert_eq!(estimate_wait_seconds(5, 4, 600.0), 750);
        assert_eq!(estimate_wait_seconds(2, 3, 100.0), 67); // 66.7 rounded up
        assert_eq!(estimate_wait_seconds(3, 0, 100.0), 300); // nobody online: as if one
        assert_eq!(estimate_wait_seconds(1, 1, f64::NAN), 600);
        assert_eq!(estimate_wait_seconds(1, 1, -5.0), 600);
        // Monotone in position, non-increasing in consultants.
        for c in 1..20 {
            for p in 1..50 {
                assert!(
                    estimate_wait_seconds(p + 1, c, 437.0) >= estimate_wait_seconds(p, c, 437.0)
                );
                assert!(
                    estimate_wait_seconds(p, c + 1, 437.0) <= estimate_wait_seconds(p, c, 437.0)
                );
            }
        }
    }
}
