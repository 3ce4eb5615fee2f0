//! Who gets offered a support request: DESIGN.md §4, steps 0–3.
//!
//! This module is pure (no I/O, no clock, no actix) so the rules can be unit-tested
//! and benchmarked on their own. The dispatcher hands in a snapshot — the consultants
//! that are `available` and not holding an offer, the staff member's history, the
//! dedicated rules — and gets back a decision it can store on the session (tier, score
//! and reasons, so an admin can see why).
//!
//! Speed: `choose` runs on every presence or queue change, over up to ~10,000
//! candidates. It makes one pass over the candidates, allocates nothing per candidate,
//! skips the hospital lookup for candidates already beaten on tier, and builds reason
//! strings only for the winner.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use chrono::NaiveDateTime;

pub use crate::model::MatchTier as Tier;
pub use crate::model::{Proficiency, Urgency};

/// Scoring weights; configurable per deployment, `Default` is DESIGN.md §4's table.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchWeights {
    pub worked_before: i64,
    pub per_successful_session: i64,
    pub high_rating: i64,
    pub expert: i64,
    pub standard: i64,
    pub same_hospital: i64,
    /// The average rating (from this staff member) at or above which `high_rating`
    /// applies, and which makes a consultant the staff's implicit preference.
    pub high_rating_min: f64,
}

impl Default for MatchWeights {
    fn default() -> Self {
        MatchWeights {
            worked_before: 50,
            per_successful_session: 5,
            high_rating: 20,
            expert: 30,
            standard: 15,
            same_hospital: 10,
            high_rating_min: 4.0,
        }
    }
}

/// A consultant who may be offered the request right now.
///
/// The caller has already kept only consultants whose status is `available` and who
/// hold no offer; `choose` itself drops those who missed this request or are reserved
/// for others. Specialties are borrowed so the dispatcher can build this list from its
/// presence view on every run without cloning strings.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub id: i64,
    /// When the consultant last became available; earlier wins ties ("longest idle").
    pub idle_since: NaiveDateTime,
    /// (department, level). Departments compare ASCII-case-insensitively because they
    /// are typed by people on both sides ("ER" vs "er").
    pub specialties: &'a [(String, Proficiency)],
}

impl Candidate<'_> {
    /// Best level in `department`, if the consultant lists it at all.
    #[inline]
    pub fn proficiency_in(&self, department: &str) -> Option<Proficiency> {
        // A plain loop with the length test up front: this runs once per candidate per
        // dispatch, and most listed departments differ from the request's in length.
        let wanted = department.as_bytes();
        let mut best = None;
        for (name, level) in self.specialties {
            let name = name.as_bytes();
            if name.len() == wanted.len() && name.eq_ignore_ascii_case(wanted) {
                best = best.max(Some(*level));
            }
        }
        best
    }
}

/// What one staff member and one consultant have done together, aggregated from
/// completed sessions. Kept as sums so one finished session or one rating updates it
/// in O(1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relationship {
    /// Completed sessions together.
    pub sessions: u32,
    /// Completed sessions marked resolved.
    pub successful: u32,
    pub rating_sum: u32,
    pub rating_count: u32,
}

impl Relationship {
    pub fn avg_rating(&self) -> Option<f64> {
        (self.rating_count > 0).then(|| f64::from(self.rating_sum) / f64::from(self.rating_count))
    }

    pub fn worked_before(&self) -> bool {
        self.sessions > 0
    }

    /// Rated at least `min` on average. One definition shared by the score, the
    /// reasons and the implicit preference, so they can never disagree at the boundary.
    pub fn rated_at_least(&self, min: f64) -> bool {
        self.avg_rating().is_some_and(|avg| avg >= min)
    }
}

/// A dedicated assignment: this consultant goes first to the requests it covers.
///
/// With `exclusive`, the consultant is also *reserved*: they are kept out of steps 1–2
/// for every request none of their active rules covers (see [`reserved_for_others`]).
/// `active_now` is evaluated by the caller (rules may have schedules and time zones);
/// an inactive rule neither covers nor reserves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedicatedRule {
    pub consultant_id: i64,
    pub staff_id: Option<i64>,
    pub hospital_id: Option<i64>,
    pub department: Option<String>,
    pub exclusive: bool,
    pub active_now: bool,
}

impl DedicatedRule {
    /// Every field that is set must match the request; unset fields match anything.
    pub fn covers(&self, req: &MatchRequest<'_>) -> bool {
        self.active_now
            && self.staff_id.is_none_or(|s| s == req.requester_id)
            && self.hospital_id.is_none_or(|h| h == req.hospital_id)
            && self
                .department
                .as_deref()
                .is_none_or(|d| d.eq_ignore_ascii_case(req.department))
    }

    /// Higher wins when several rules cover one request: staff > hospital+department >
    /// hospital (DESIGN.md). A department-only rule (every hospital) and a catch-all
    /// rule are broader than a hospital rule, so they rank below it.
    pub fn specificity(&self) -> u8 {
        match (self.staff_id, self.hospital_id, &self.department) {
            (Some(_), _, _) => 4,
            (None, Some(_), Some(_)) => 3,
            (None, Some(_), None) => 2,
            (None, None, Some(_)) => 1,
            (None, None, None) => 0,
        }
    }

    fn describe(&self, req: &MatchRequest<'_>) -> String {
        let scope = match (self.staff_id, self.hospital_id, &self.department) {
            (Some(_), _, _) => "this staff member".to_owned(),
            (None, Some(_), Some(_)) => format!("this hospital's {} department", req.department),
            (None, Some(_), None) => "this hospital".to_owned(),
            (None, None, Some(_)) => format!("the {} department", req.department),
            (None, None, None) => "all requests".to_owned(),
        };
        let exclusive = if self.exclusive { ", exclusive" } else { "" };
        format!("dedicated assignment to {scope}{exclusive}")
    }
}

/// The request being matched, borrowed from the dispatcher's state.
#[derive(Debug, Clone, Copy)]
pub struct MatchRequest<'a> {
    pub requester_id: i64,
    pub hospital_id: i64,
    pub department: &'a str,
    /// A consultant the requester named (`consultant_id` in the API).
    pub requested_consultant: Option<i64>,
    /// Wait for the named consultant rather than fall through to anyone else.
    pub wait_for_requested: bool,
    /// The staff member's explicit preferences, best first.
    pub preferred: &'a [i64],
    /// Consultants who already missed (declined or timed out on) this request.
    pub excluded: &'a [i64],
}

impl MatchRequest<'_> {
    /// The one consultant this request is restricted to, if any.
    ///
    /// A request that asked to wait for a named consultant is only theirs — until that
    /// consultant misses it: after a decline or timeout, waiting on would deadlock
    /// (they are excluded from this request for good), so the request falls through to
    /// normal matching. The dispatcher should tell the requester when that happens.
    pub fn waits_for(&self) -> Option<i64> {
        match self.requested_consultant {
            Some(id) if self.wait_for_requested && !self.excluded.contains(&id) => Some(id),
            _ => None,
        }
    }
}

/// Read access to the history that scoring needs, implemented by [`MatchIndex`] or by
/// whatever the dispatcher keeps. Called once per candidate, so implementations must
/// be cheap lookups, not queries.
pub trait MatchData {
    fn relationship(&self, staff_id: i64, consultant_id: i64) -> Option<&Relationship>;

    /// Has the consultant completed a session with some staff member of `hospital_id`
    /// other than `staff_id`? DESIGN.md awards the hospital bonus for *other* staff,
    /// so a consultant known only to the requester does not get it twice.
    fn served_other_staff(&self, consultant_id: i64, hospital_id: i64, staff_id: i64) -> bool;

    /// Every relationship of one staff member (any order); step 1 needs it to find the
    /// implicit preference among consultants who are not currently available.
    fn for_each_relationship(&self, staff_id: i64, f: &mut dyn FnMut(i64, &Relationship));
}

/// A multiply-rotate hasher for integer ids (the FxHash recipe). Ids come from our own
/// database, not from attackers, so SipHash's flood resistance buys nothing here and
/// would triple the cost of the per-candidate lookups.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // The multiply leaves its entropy in the high bits; hash tables index by the
        // low ones, so rotate (as rustc-hash 2 does) lest ids that are multiples of a
        // power of two share buckets.
        self.0.rotate_left(26)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }
}

/// A `HashMap` keyed by ids, hashed with [`IdHasher`].
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Up to two distinct staff ids a consultant served at one hospital: enough to answer
/// "served someone other than X" for every X, in constant memory.
#[derive(Debug, Clone, Copy)]
struct ServedStaff {
    first: i64,
    second: Option<i64>,
}

/// The in-memory history the dispatcher keeps for scoring: rebuilt from completed
/// sessions at start-up, then updated as sessions end and ratings arrive.
///
/// Relationships are nested by staff member so step 1 can walk one staff member's
/// history without scanning everyone's.
#[derive(Debug, Default, Clone)]
pub struct MatchIndex {
    relationships: IdMap<i64, IdMap<i64, Relationship>>,
    served: IdMap<(i64, i64), ServedStaff>,
}

impl MatchIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Load an aggregate (e.g. from a GROUP BY at start-up), replacing what was there.
    pub fn set_relationship(&mut self, staff_id: i64, consultant_id: i64, rel: Relationship) {
        self.relationships
            .entry(staff_id)
            .or_default()
            .insert(consultant_id, rel);
    }

    /// A session between them completed; `hospital_id` is the requester's hospital.
    pub fn record_session(
        &mut self,
        staff_id: i64,
        consultant_id: i64,
        hospital_id: i64,
        resolved: bool,
    ) {
        let rel = self
            .relationships
            .entry(staff_id)
            .or_default()
            .entry(consultant_id)
            .or_default();
        rel.sessions = rel.sessions.saturating_add(1);
        rel.successful = rel.successful.saturating_add(u32::from(resolved));
        self.mark_served(consultant_id, hospital_id, staff_id);
    }

    /// A session between them was marked resolved after it was counted (a wrap-up
    /// after the requester ended the call).
    pub fn record_success(&mut self, staff_id: i64, consultant_id: i64) {
        let rel = self
            .relationships
            .entry(staff_id)
            .or_default()
            .entry(consultant_id)
            .or_default();
        rel.successful = rel.successful.saturating_add(1);
    }

    /// The requester rated a session with this consultant (1–5, validated upstream).
    pub fn record_rating(&mut self, staff_id: i64, consultant_id: i64, stars: u8) {
        let rel = self
            .relationships
            .entry(staff_id)
            .or_default()
            .entry(consultant_id)
            .or_default();
        rel.rating_sum = rel.rating_sum.saturating_add(u32::from(stars));
        rel.rating_count = rel.rating_count.saturating_add(1);
    }

    /// Note that the consultant served `staff_id` of `hospital_id`, without touching
    /// the relationship (for loading history at start-up).
    pub fn mark_served(&mut self, consultant_id: i64, hospital_id: i64, staff_id: i64) {
        self.served
            .entry((consultant_id, hospital_id))
            .and_modify(|s| {
                if s.first != staff_id && s.second.is_none() {
                    s.second = Some(staff_id);
                }
            })
            .or_insert(ServedStaff {
                first: staff_id,
                second: None,
            });
    }
}

impl MatchData for MatchIndex {
    fn relationship(&self, staff_id: i64, consultant_id: i64) -> Option<&Relationship> {
        self.relationships.get(&staff_id)?.get(&consultant_id)
    }

    fn served_other_staff(&self, consultant_id: i64, hospital_id: i64, staff_id: i64) -> bool {
        // `first` and `second` are distinct, so with two of them one is not `staff_id`.
        self.served
            .get(&(consultant_id, hospital_id))
            .is_some_and(|s| s.first != staff_id || s.second.is_some())
    }

    fn for_each_relationship(&self, staff_id: i64, f: &mut dyn FnMut(i64, &Relationship)) {
        if let Some(map) = self.relationships.get(&staff_id) {
            for (&consultant_id, rel) in map {
                f(consultant_id, rel);
            }
        }
    }
}

/// Why a consultant was offered a request; stored on the session as `match`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchChoice {
    pub consultant_id: i64,
    pub tier: Tier,
    /// Always the §4 formula, whatever the tier, so scores compare across sessions.
    pub score: i64,
    /// Human-readable, for admins and for the consultant's offer card.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Offer(MatchChoice),
    /// The request named a consultant, asked to wait for them, and they are not
    /// available: keep it queued for that consultant only.
    WaitForRequested,
    /// Nobody eligible is available: queue it (step 3).
    Queue,
}

/// True when the consultant is reserved by an exclusive dedicated rule and none of
/// their active rules covers this request; such a consultant must be skipped in
/// steps 1–2 (and by the freed-consultant path) for this request.
///
/// A consultant with two exclusive rules is reserved for the union of both, and one
/// whom an admin also dedicated (non-exclusively) to this requester serves them too:
/// "exclusive" keeps strangers away, not the people they were assigned to.
pub fn reserved_for_others(
    rules: &[DedicatedRule],
    consultant_id: i64,
    req: &MatchRequest<'_>,
) -> bool {
    let mut reserved = false;
    for rule in rules
        .iter()
        .filter(|r| r.consultant_id == consultant_id && r.active_now)
    {
        if rule.covers(req) {
            return false;
        }
        reserved |= rule.exclusive;
    }
    reserved
}

/// May this consultant be offered this request at all? Not if they already missed it,
/// not if they are reserved for others, and not if the request waits for someone else.
pub fn eligible(req: &MatchRequest<'_>, consultant_id: i64, rules: &[DedicatedRule]) -> bool {
    !req.excluded.contains(&consultant_id)
        && req.waits_for().is_none_or(|only| only == consultant_id)
        && !reserved_for_others(rules, consultant_id, req)
}

/// The §4 score of one consultant for one request; the dispatcher uses it to rank a
/// freed consultant's options and to store a score on every offer.
pub fn score<D: MatchData + ?Sized>(
    req: &MatchRequest<'_>,
    candidate: &Candidate<'_>,
    data: &D,
    weights: &MatchWeights,
) -> i64 {
    Facts::gather(req, candidate, data).score(weights)
}

/// The staff member's implicit preference: most successful sessions among those whose
/// average rating from them is at least `high_rating_min`, whether or not available.
///
/// At least one successful session is required — "most successful" of none is no
/// preference. Ties go to the higher average, then more sessions, then the lower id, so
/// the answer does not depend on hash-map order.
pub fn implicit_preference<D: MatchData + ?Sized>(
    staff_id: i64,
    data: &D,
    weights: &MatchWeights,
) -> Option<i64> {
    let mut best: Option<(i64, Relationship, f64)> = None;
    data.for_each_relationship(staff_id, &mut |id, rel| {
        let Some(avg) = rel.avg_rating() else { return };
        if rel.successful == 0 || !rel.rated_at_least(weights.high_rating_min) {
            return;
        }
        let better = match &best {
            None => true,
            Some((best_id, best_rel, best_avg)) => rel
                .successful
                .cmp(&best_rel.successful)
                .then(avg.total_cmp(best_avg))
                .then(rel.sessions.cmp(&best_rel.sessions))
                .then(best_id.cmp(&id))
                .is_gt(),
        };
        if better {
            best = Some((id, *rel, avg));
        }
    });
    best.map(|(id, _, _)| id)
}

/// Run DESIGN.md §4 steps 0–3 for one request over the available consultants.
///
/// Order: 0 the most specific dedicated assignment whose consultant is available;
/// 1 the consultant the request named (or `WaitForRequested` if it asked to wait),
/// then the first available explicit preference, then the implicit preference;
/// 2 smart match by tier A–D, score, longest idle, lowest id; 3 `Queue`.
///
/// A request that waits for a named consultant considers only that consultant in every
/// step (see [`MatchRequest::waits_for`]), so `choose` and [`eligible`] always agree.
pub fn choose<D: MatchData + ?Sized>(
    req: &MatchRequest<'_>,
    candidates: &[Candidate<'_>],
    data: &D,
    rules: &[DedicatedRule],
    weights: &MatchWeights,
) -> Outcome {
    let screen = Screen::new(req, rules);

    // Steps 0–1 ask about a handful of named consultants; find them all in one pass
    // rather than one scan of `candidates` per name.
    let mut dedicated: Vec<&DedicatedRule> = rules.iter().filter(|r| r.covers(req)).collect();
    dedicated.sort_by(|a, b| {
        b.specificity()
            .cmp(&a.specificity())
            .then(a.consultant_id.cmp(&b.consultant_id))
    });
    let implicit = implicit_preference(req.requester_id, data, weights);
    let mut named: Vec<i64> = dedicated.iter().map(|r| r.consultant_id).collect();
    named.extend(req.requested_consultant);
    named.extend_from_slice(req.preferred);
    named.extend(implicit);
    let named = IdSet::new(named);
    let mut found: Vec<Option<usize>> = vec![None; named.len()];
    if !named.is_empty() {
        for (i, c) in candidates.iter().enumerate() {
            if let Some(slot) = named.index_of(c.id) {
                if found[slot].is_none() && screen.allows(c.id) {
                    found[slot] = Some(i);
                }
            }
        }
    }
    let available = |id: i64| named.index_of(id).and_then(|slot| found[slot]);
    let offer = |index: usize, tier: Tier, why: String| {
        let candidate = &candidates[index];
        let facts = Facts::gather(req, candidate, data);
        let mut reasons = vec![why];
        facts.explain(req, weights, &mut reasons);
        Outcome::Offer(MatchChoice {
            consultant_id: candidate.id,
            tier,
            score: facts.score(weights),
            reasons,
        })
    };

    // Step 0.
    for rule in &dedicated {
        if let Some(i) = available(rule.consultant_id) {
            return offer(i, Tier::Dedicated, rule.describe(req));
        }
    }

    // Step 1: the named consultant, then explicit, then implicit preference.
    if let Some(id) = req.requested_consultant {
        if let Some(i) = available(id) {
            return offer(i, Tier::Requested, "requested by name".to_owned());
        }
        if screen.only.is_some() {
            return Outcome::WaitForRequested;
        }
    }
    for (rank, &id) in req.preferred.iter().enumerate() {
        if let Some(i) = available(id) {
            let why = if rank == 0 {
                "preferred consultant".to_owned()
            } else {
                format!("preferred consultant (choice #{})", rank + 1)
            };
            return offer(i, Tier::Preferred, why);
        }
    }
    if let Some(i) = implicit.and_then(available) {
        let why = "preferred consultant (most successful sessions with this staff member)";
        return offer(i, Tier::Preferred, why.to_owned());
    }

    // Step 2: smart match.
    match smart_match(req, candidates, data, weights, &screen) {
        Some(win) => {
            let candidate = &candidates[win.index];
            let mut reasons = Vec::new();
            win.facts.explain(req, weights, &mut reasons);
            if win.tier == Tier::D {
                reasons
                    .push("next available consultant (no shared history or specialty)".to_owned());
            }
            if win.peers > 1 {
                reasons.push(if win.idle_tie {
                    format!(
                        "lowest id among {} equally ranked consultants idle equally long",
                        win.peers
                    )
                } else {
                    format!("longest idle of {} equally ranked consultants", win.peers)
                });
            }
            Outcome::Offer(MatchChoice {
                consultant_id: candidate.id,
                tier: win.tier,
                score: win.score,
                reasons,
            })
        }
        // Step 3.
        None => Outcome::Queue,
    }
}

/// Describe an offer of this request to one specific consultant — the path where a
/// consultant frees up and takes the first queued request they are eligible for.
///
/// `None` when the consultant is not [`eligible`]. The tier is the first that applies:
/// Dedicated (an active rule of theirs covers the request), Requested, Preferred
/// (explicit list or implicit preference), else the smart tier A–D.
pub fn evaluate<D: MatchData + ?Sized>(
    req: &MatchRequest<'_>,
    candidate: &Candidate<'_>,
    data: &D,
    rules: &[DedicatedRule],
    weights: &MatchWeights,
) -> Option<MatchChoice> {
    if !eligible(req, candidate.id, rules) {
        return None;
    }
    let facts = Facts::gather(req, candidate, data);
    let mut reasons = Vec::new();
    let rule = rules
        .iter()
        .filter(|r| r.consultant_id == candidate.id && r.covers(req))
        .max_by_key(|r| r.specificity());
    let tier = if let Some(rule) = rule {
        reasons.push(rule.describe(req));
        Tier::Dedicated
    } else if req.requested_consultant == Some(candidate.id) {
        reasons.push("requested by name".to_owned());
        Tier::Requested
    } else if let Some(rank) = req.preferred.iter().position(|&p| p == candidate.id) {
        reasons.push(if rank == 0 {
            "preferred consultant".to_owned()
        } else {
            format!("preferred consultant (choice #{})", rank + 1)
        });
        Tier::Preferred
    } else if implicit_preference(req.requester_id, data, weights) == Some(candidate.id) {
        reasons.push(
            "preferred consultant (most successful sessions with this staff member)".to_owned(),
        );
        Tier::Preferred
    } else {
        facts.tier()
    };
    facts.explain(req, weights, &mut reasons);
    if tier == Tier::D {
        reasons.push("next available consultant (no shared history or specialty)".to_owned());
    }
    Some(MatchChoice {
        consultant_id: candidate.id,
        tier,
        score: facts.score(weights),
        reasons,
    })
}

/// The per-request filters, computed once so the per-candidate check is a couple of
/// comparisons instead of a walk over every rule.
struct Screen<'r> {
    excluded: &'r [i64],
    /// Consultants reserved for others (usually none).
    reserved: IdSet,
    only: Option<i64>,
}

impl<'r> Screen<'r> {
    fn new(req: &MatchRequest<'r>, rules: &[DedicatedRule]) -> Self {
        let mut reserved: Vec<i64> = rules
            .iter()
            .filter(|r| r.exclusive && r.active_now)
            .map(|r| r.consultant_id)
            .collect();
        if !reserved.is_empty() {
            reserved.sort_unstable();
            reserved.dedup();
            let mut covered: Vec<i64> = rules
                .iter()
                .filter(|r| r.covers(req))
                .map(|r| r.consultant_id)
                .collect();
            covered.sort_unstable();
            reserved.retain(|id| covered.binary_search(id).is_err());
        }
        Screen {
            excluded: req.excluded,
            reserved: IdSet::new(reserved),
            only: req.waits_for(),
        }
    }

    #[inline]
    fn allows(&self, id: i64) -> bool {
        self.only.is_none_or(|only| only == id)
            && !self.excluded.contains(&id)
            && !self.reserved.contains(id)
    }
}

/// A set of ids asked "is this candidate one of you?" once per candidate. A range check
/// rejects most ids outright, and a small set is scanned linearly, which beats a
/// binary search's unpredictable branches at these sizes.
struct IdSet(Vec<i64>);

impl IdSet {
    fn new(mut ids: Vec<i64>) -> Self {
        ids.sort_unstable();
        ids.dedup();
        IdSet(ids)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The id's slot in sorted order.
    #[inline]
    fn index_of(&self, id: i64) -> Option<usize> {
        match (self.0.first(), self.0.last()) {
            (Some(&lo), Some(&hi)) if (lo..=hi).contains(&id) => {
                if self.0.len() <= 16 {
                    self.0.iter().position(|&x| x == id)
                } else {
                    self.0.binary_search(&id).ok()
                }
            }
            _ => None,
        }
    }

    #[inline]
    fn contains(&self, id: i64) -> bool {
        self.index_of(id).is_some()
    }
}

/// What scoring knows about one consultant for one request.
#[derive(Debug, Clone, Copy)]
struct Facts {
    rel: Relationship,
    proficiency: Option<Proficiency>,
    served_other: bool,
}

impl Facts {
    fn gather<D: MatchData + ?Sized>(
        req: &MatchRequest<'_>,
        candidate: &Candidate<'_>,
        data: &D,
    ) -> Self {
        Facts {
            rel: data
                .relationship(req.requester_id, candidate.id)
                .copied()
                .unwrap_or_default(),
            proficiency: candidate.proficiency_in(req.department),
            served_other: data.served_other_staff(candidate.id, req.hospital_id, req.requester_id),
        }
    }

    fn tier(&self) -> Tier {
        Tier::smart(self.rel.worked_before(), self.proficiency.is_some())
    }

    fn score(&self, w: &MatchWeights) -> i64 {
        partial_score(&self.rel, self.proficiency, w)
            + if self.served_other {
                w.same_hospital
            } else {
                0
            }
    }

    fn explain(&self, req: &MatchRequest<'_>, w: &MatchWeights, out: &mut Vec<String>) {
        let rel = &self.rel;
        if rel.worked_before() {
            let s = if rel.sessions == 1 { "" } else { "s" };
            out.push(format!(
                "worked with this staff member before ({} session{s})",
                rel.sessions
            ));
        }
        if rel.successful > 0 {
            let s = if rel.successful == 1 { "" } else { "s" };
            out.push(format!("{} successful session{s} together", rel.successful));
        }
        if let Some(avg) = rel
            .avg_rating()
            .filter(|_| rel.rated_at_least(w.high_rating_min))
        {
            out.push(format!("average rating {avg:.1} from this staff member"));
        }
        match self.proficiency {
            Some(Proficiency::Expert) => {
                out.push(format!("department expert ({})", req.department))
            }
            Some(Proficiency::Standard) => out.push(format!(
                "department specialist, standard ({})",
                req.department
            )),
            None => {}
        }
        if self.served_other {
            out.push("has served other staff at this hospital".to_owned());
        }
    }
}

/// The score without the hospital bonus, which needs a second lookup; smart match
/// computes this first and skips that lookup for candidates already out on tier.
#[inline]
fn partial_score(rel: &Relationship, proficiency: Option<Proficiency>, w: &MatchWeights) -> i64 {
    let mut s = 0;
    if rel.worked_before() {
        s += w.worked_before;
    }
    s += w.per_successful_session * i64::from(rel.successful);
    if rel.rated_at_least(w.high_rating_min) {
        s += w.high_rating;
    }
    s += match proficiency {
        Some(Proficiency::Expert) => w.expert,
        Some(Proficiency::Standard) => w.standard,
        None => 0,
    };
    s
}

struct Winner {
    index: usize,
    tier: Tier,
    score: i64,
    facts: Facts,
    /// How many candidates shared the winner's tier and score.
    peers: usize,
    /// Whether one of those peers was also idle exactly as long (the id decided).
    idle_tie: bool,
}

fn smart_match<D: MatchData + ?Sized>(
    req: &MatchRequest<'_>,
    candidates: &[Candidate<'_>],
    data: &D,
    weights: &MatchWeights,
    screen: &Screen<'_>,
) -> Option<Winner> {
    let mut best: Option<Winner> = None;
    for (index, c) in candidates.iter().enumerate() {
        if !screen.allows(c.id) {
            continue;
        }
        // Each lookup below is skipped once the candidate provably cannot beat the
        // current best: without the department a candidate can reach tier B at most.
        let proficiency = c.proficiency_in(req.department);
        let ceiling = if proficiency.is_some() {
            Tier::A
        } else {
            Tier::B
        };
        if best
            .as_ref()
            .is_some_and(|b| ceiling.smart_rank() > b.tier.smart_rank())
        {
            continue;
        }
        let rel = data
            .relationship(req.requester_id, c.id)
            .copied()
            .unwrap_or_default();
        let tier = Tier::smart(rel.worked_before(), proficiency.is_some());
        let partial = partial_score(&rel, proficiency, weights);
        if best.as_ref().is_some_and(|b| {
            let rank = tier.smart_rank().cmp(&b.tier.smart_rank());
            rank.is_gt()
                || (rank.is_eq()
                    && weights.same_hospital >= 0
                    && partial + weights.same_hospital < b.score)
        }) {
            continue;
        }
        let served_other = data.served_other_staff(c.id, req.hospital_id, req.requester_id);
        let score = partial
            + if served_other {
                weights.same_hospital
            } else {
                0
            };
        let facts = Facts {
            rel,
            proficiency,
            served_other,
        };
        let fresh = |peers, idle_tie| Winner {
            index,
            tier,
            score,
            facts,
            peers,
            idle_tie,
        };
        match &mut best {
            None => best = Some(fresh(1, false)),
            Some(b) => {
                let class = tier
                    .smart_rank()
                    .cmp(&b.tier.smart_rank())
                    .then(b.score.cmp(&score));
                if class.is_lt() {
                    best = Some(fresh(1, false));
                } else if class.is_eq() {
                    let held = &candidates[b.index];
                    let peers = b.peers + 1;
                    match c.idle_since.cmp(&held.idle_since) {
                        std::cmp::Ordering::Less => best = Some(fresh(peers, false)),
                        std::cmp::Ordering::Equal => {
                            let replace = c.id < held.id;
                            if replace {
                                best = Some(fresh(peers, true));
                            } else {
                                b.peers = peers;
                                b.idle_tie = true;
                            }
                        }
                        std::cmp::Ordering::Greater => b.peers = peers,
                    }
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDateTime};

    const STAFF: i64 = 100;
    const HOSPITAL: i64 = 1;

    fn t(secs: i64) -> NaiveDateTime {
        DateTime::from_timestamp(1_750_000_000 + secs, 0)
            .unwrap()
            .naive_utc()
    }

    fn spec(dept: &str, p: Proficiency) -> Vec<(String, Proficiency)> {
        vec![(dept.to_owned(), p)]
    }

    fn req<'a>(dept: &'a str) -> MatchRequest<'a> {
        MatchRequest {
            requester_id: STAFF,
            hospital_id: HOSPITAL,
            department: dept,
            requested_consultant: None,
            wait_for_requested: false,
            preferred: &[],
            excluded: &[],
        }
    }

    fn rel(sessions: u32, successful: u32, ratings: &[u32]) -> Relationship {
        Relationship {
            sessions,
            successful,
            rating_sum: ratings.iter().sum(),
            rating_count: ratings.len() as u32,
        }
    }

    fn rule(consultant_id: i64) -> DedicatedRule {
        DedicatedRule {
            consultant_id,
            staff_id: None,
            hospital_id: None,
            department: None,
            exclusive: false,
            active_now: true,
        }
    }

    fn offer(o: Outcome) -> MatchChoice {
        match o {
            Outcome::Offer(c) => c,
            other => panic!("expected an offer, got {other:?}"),
        }
    }

    fn run(
        r: &MatchRequest<'_>,
        cands: &[Candidate<'_>],
        data: &MatchIndex,
        rules: &[DedicatedRule],
    ) -> Outcome {
        choose(r, cands, data, rules, &MatchWeights::default())
    }

    /// Consultants 1..=6 idle since t(id), with a fixed mix of ER/ICU specialties.
    struct World {
        specs: Vec<Vec<(String, Proficiency)>>,
        data: MatchIndex,
    }

    impl World {
        fn new() -> Self {
            use Proficiency::*;
            World {
                specs: vec![
                    spec("ER", Expert),                                      // 1
                    spec("ER", Standard),                                    // 2
                    spec("ICU", Expert),                                     // 3
                    vec![],                                                  // 4
                    spec("er", Expert), // 5 (case differs on purpose)
                    vec![("ICU".into(), Standard), ("ER".into(), Standard)], // 6
                ],
                data: MatchIndex::new(),
            }
        }

        fn all(&self) -> Vec<Candidate<'_>> {
            self.some(&[1, 2, 3, 4, 5, 6])
        }

        fn some(&self, ids: &[i64]) -> Vec<Candidate<'_>> {
            ids.iter()
                .map(|&id| Candidate {
                    id,
                    idle_since: t(id * 10),
                    specialties: &self.specs[(id - 1) as usize],
                })
                .collect()
        }
    }

    #[test]
    fn default_weights_are_the_design_table() {
        let w = MatchWeights::default();
        assert_eq!(
            (
                w.worked_before,
                w.per_successful_session,
                w.high_rating,
                w.expert,
                w.standard,
                w.same_hospital
            ),
            (50, 5, 20, 30, 15, 10)
        );
        assert_eq!(w.high_rating_min, 4.0);
    }

    #[test]
    fn score_adds_every_factor() {
        let mut w = World::new();
        // 3 sessions, 2 resolved, ratings 5 and 4 (avg 4.5); expert in ER; served staff 7.
        w.data.set_relationship(STAFF, 1, rel(3, 2, &[5, 4]));
        w.data.mark_served(1, HOSPITAL, 7);
        let cands = w.all();
        let weights = MatchWeights::default();
        // 50 + 2*5 + 20 + 30 + 10
        assert_eq!(score(&req("ER"), &cands[0], &w.data, &weights), 120);
        // Standard in ER only: 15.
        assert_eq!(score(&req("ER"), &cands[1], &w.data, &weights), 15);
        // Nothing: 0.
        assert_eq!(score(&req("ER"), &cands[3], &w.data, &weights), 0);
        // Consultant 6 lists ICU and ER at standard: 15 in either.
        assert_eq!(score(&req("ICU"), &cands[5], &w.data, &weights), 15);
    }

    #[test]
    fn rating_bonus_needs_average_at_least_four() {
        let mut w = World::new();
        w.data.set_relationship(STAFF, 4, rel(2, 0, &[4, 3])); // 3.5
        w.data.set_relationship(STAFF, 3, rel(2, 0, &[4, 4])); // exactly 4.0
        let cands = w.all();
        let weights = MatchWeights::default();
        assert_eq!(score(&req("ER"), &cands[3], &w.data, &weights), 50);
        assert_eq!(score(&req("ER"), &cands[2], &w.data, &weights), 70);
    }

    #[test]
    fn hospital_bonus_is_for_other_staff_only() {
        let mut data = MatchIndex::new();
        data.record_session(STAFF, 9, HOSPITAL, true);
        assert!(!data.served_other_staff(9, HOSPITAL, STAFF));
        assert!(data.served_other_staff(9, HOSPITAL, 555));
        assert!(!data.served_other_staff(9, 2, 555));
        data.record_session(STAFF, 9, HOSPITAL, false);
        assert!(!data.served_other_staff(9, HOSPITAL, STAFF));
        data.record_session(8, 9, HOSPITAL, true);
        assert!(data.served_other_staff(9, HOSPITAL, STAFF));
        assert!(data.served_other_staff(9, HOSPITAL, 8));
        data.record_rating(STAFF, 9, 5);
        assert_eq!(data.relationship(STAFF, 9), Some(&rel(2, 1, &[5])));
    }

    #[test]
    fn smart_tier_a_beats_higher_scoring_tier_b() {
        let mut w = World::new();
        // 4: worked before, many successes, no ER specialty -> B, 50 + 10*5 = 100.
        w.data.set_relationship(STAFF, 4, rel(10, 10, &[3])); // avg 3: no bonus, no implicit pref
                                                              // 2: worked once, standard ER -> A, 50 + 15 = 65.
        w.data.set_relationship(STAFF, 2, rel(1, 0, &[]));
        let c = offer(run(&req("ER"), &w.all(), &w.data, &[]));
        assert_eq!((c.consultant_id, c.tier, c.score), (2, Tier::A, 65));
        assert_eq!(
            c.reasons,
            [
                "worked with this staff member before (1 session)",
                "department specialist, standard (ER)"
            ]
        );
        // Without 2, B wins over the C experts: 50 + 50 = 100.
        let c = offer(run(&req("ER"), &w.some(&[1, 3, 4, 5]), &w.data, &[]));
        assert_eq!((c.consultant_id, c.tier, c.score), (4, Tier::B, 100));
    }

    #[test]
    fn smart_tier_c_then_d() {
        let w = World::new();
        // ER: 1 and 5 are experts (30), 2 and 6 standard (15): C, expert wins, 1 idles longer.
        let c = offer(run(&req("ER"), &w.all(), &w.data, &[]));
        assert_eq!((c.consultant_id, c.tier, c.score), (1, Tier::C, 30));
        assert!(c.reasons.contains(&"department expert (ER)".to_owned()));
        assert!(c
            .reasons
            .contains(&"longest idle of 2 equally ranked consultants".to_owned()));
        // Radiology: nobody specialises -> D, longest idle (1).
        let c = offer(run(&req("Radiology"), &w.all(), &w.data, &[]));
        assert_eq!((c.consultant_id, c.tier, c.score), (1, Tier::D, 0));
        // D prefers the hospital bonus.
        let mut w = World::new();
        w.data.mark_served(4, HOSPITAL, 42);
        let c = offer(run(&req("Radiology"), &w.all(), &w.data, &[]));
        assert_eq!((c.consultant_id, c.tier, c.score), (4, Tier::D, 10));
        assert_eq!(
            c.reasons,
            [
                "has served other staff at this hospital",
                "next available consultant (no shared history or specialty)"
            ]
        );
    }

    #[test]
    fn ties_go_to_longest_idle_then_lowest_id() {
        let specs = spec("ER", Proficiency::Expert);
        let data = MatchIndex::new();
        let mk = |id, idle| Candidate {
            id,
            idle_since: t(idle),
            specialties: &specs,
        };
        let cands = [mk(30, 50), mk(20, 10), mk(10, 40), mk(15, 10)];
        let c = offer(run(&req("ER"), &cands, &data, &[]));
        assert_eq!(c.consultant_id, 15);
        assert!(c.reasons.last().unwrap().starts_with("lowest id among 4"));
        let cands = [mk(30, 50), mk(20, 9), mk(10, 40), mk(15, 10)];
        let c = offer(run(&req("ER"), &cands, &data, &[]));
        assert_eq!(c.consultant_id, 20);
        assert_eq!(
            c.reasons.last().unwrap(),
            "longest idle of 4 equally ranked consultants"
        );
    }

    #[test]
    fn excluded_consultants_are_skipped_and_empty_means_queue() {
        let w = World::new();
        let excluded = [1, 5];
        let r = MatchRequest {
            excluded: &excluded,
            ..req("ER")
        };
        // Experts 1 and 5 missed it: standard 2 (idle longer than 6) wins.
        let c = offer(run(&r, &w.all(), &w.data, &[]));
        assert_eq!((c.consultant_id, c.tier, c.score), (2, Tier::C, 15));
        let r = MatchRequest {
            excluded: &[1, 2, 3, 4, 5, 6],
            ..req("ER")
        };
        assert_eq!(run(&r, &w.all(), &w.data, &[]), Outcome::Queue);
        assert_eq!(run(&req("ER"), &[], &w.data, &[]), Outcome::Queue);
    }

    #[test]
    fn dedicated_most_specific_then_lowest_id() {
        let w = World::new();
        let rules = vec![
            DedicatedRule {
                hospital_id: Some(HOSPITAL),
                ..rule(2)
            },
            DedicatedRule {
                hospital_id: Some(HOSPITAL),
                department: Some("er".into()),
                ..rule(4)
            },
            DedicatedRule {
                hospital_id: Some(HOSPITAL),
                department: Some("ER".into()),
                ..rule(3)
            },
            DedicatedRule {
                staff_id: Some(STAFF),
                ..rule(6)
            },
            DedicatedRule {
                staff_id: Some(STAFF),
                active_now: false,
                ..rule(1)
            },
            DedicatedRule {
                staff_id: Some(999),
                ..rule(5)
            },
        ];
        let c = offer(run(&req("ER"), &w.all(), &w.data, &rules));
        // 6: staff rule; score 15 (standard ER), never mind that expert 1 would score more.
        assert_eq!((c.consultant_id, c.tier, c.score), (6, Tier::Dedicated, 15));
        assert_eq!(c.reasons[0], "dedicated assignment to this staff member");
        // 6 unavailable: hospital+department rules, lowest id (3) though it is ICU.
        let c = offer(run(&req("ER"), &w.some(&[1, 2, 3, 4, 5]), &w.data, &rules));
        assert_eq!((c.consultant_id, c.tier, c.score), (3, Tier::Dedicated, 0));
        assert_eq!(
            c.reasons[0],
            "dedicated assignment to this hospital's ER department"
        );
        // 3 missed it: 4.
        let r = MatchRequest {
            excluded: &[3],
            ..req("ER")
        };
        let c = offer(run(&r, &w.some(&[1, 2, 3, 4, 5]), &w.data, &rules));
        assert_eq!((c.consultant_id, c.tier), (4, Tier::Dedicated));
        // ICU request: department rules do not cover; the hospital rule (2) does.
        let c = offer(run(&req("ICU"), &w.some(&[1, 2, 3, 4, 5]), &w.data, &rules));
        assert_eq!((c.consultant_id, c.tier), (2, Tier::Dedicated));
        // Another hospital: only the (inactive) staff rule could cover; smart match.
        let r = MatchRequest {
            hospital_id: 2,
            ..req("ICU")
        };
        let c = offer(run(&r, &w.some(&[1, 2, 3, 4, 5]), &w.data, &rules));
        assert_eq!((c.consultant_id, c.tier), (3, Tier::C));
    }

    #[test]
    fn rule_coverage_and_specificity() {
        let er = req("ER");
        let staff = DedicatedRule {
            staff_id: Some(STAFF),
            ..rule(1)
        };
        let staff_elsewhere = DedicatedRule {
            hospital_id: Some(2),
            ..staff.clone()
        };
        let hosp_dept = DedicatedRule {
            hospital_id: Some(HOSPITAL),
            department: Some("ER".into()),
            ..rule(1)
        };
        let hosp = DedicatedRule {
            hospital_id: Some(HOSPITAL),
            ..rule(1)
        };
        let dept = DedicatedRule {
            department: Some("Er".into()),
            ..rule(1)
        };
        let any = rule(1);
        for r in [&staff, &hosp_dept, &hosp, &dept, &any] {
            assert!(r.covers(&er), "{r:?}");
        }
        // Every set field must match: right staff member, wrong hospital.
        assert!(!staff_elsewhere.covers(&er));
        assert!(!hosp_dept.covers(&req("ICU")));
        let spec: Vec<u8> = [&staff, &hosp_dept, &hosp, &dept, &any]
            .iter()
            .map(|r| r.specificity())
            .collect();
        assert_eq!(spec, [4, 3, 2, 1, 0]);

        // A department-wide rule loses to a hospital rule; both beat smart match.
        let w = World::new();
        let rules = [
            DedicatedRule {
                department: Some("ER".into()),
                ..rule(2)
            },
            DedicatedRule {
                hospital_id: Some(HOSPITAL),
                ..rule(4)
            },
        ];
        let c = offer(run(&er, &w.all(), &w.data, &rules));
        assert_eq!((c.consultant_id, c.tier), (4, Tier::Dedicated));
        let c = offer(run(&er, &w.some(&[1, 2, 3]), &w.data, &rules));
        assert_eq!(c.consultant_id, 2);
        assert_eq!(c.reasons[0], "dedicated assignment to the ER department");
    }

    #[test]
    fn many_exclusive_rules() {
        // More than the small-set threshold: 20 consultants reserved for hospital 2.
        let specs = spec("ER", Proficiency::Expert);
        let rules: Vec<DedicatedRule> = (1..=20)
            .map(|id| DedicatedRule {
                hospital_id: Some(2),
                exclusive: true,
                ..rule(id)
            })
            .collect();
        let cands: Vec<Candidate<'_>> = (1..=21)
            .map(|id| Candidate {
                id,
                idle_since: t(100 - id),
                specialties: &specs,
            })
            .collect();
        let data = MatchIndex::new();
        let c = offer(run(&req("ER"), &cands, &data, &rules));
        assert_eq!(c.consultant_id, 21);
        let r = MatchRequest {
            hospital_id: 2,
            ..req("ER")
        };
        let c = offer(run(&r, &cands, &data, &rules));
        // Hospital 2: all twenty are dedicated to it; the lowest id wins step 0.
        assert_eq!((c.consultant_id, c.tier), (1, Tier::Dedicated));
        let r = MatchRequest {
            excluded: &[21],
            ..req("ER")
        };
        assert_eq!(run(&r, &cands, &data, &rules), Outcome::Queue);
    }

    #[test]
    fn named_consultant_reserved_for_others_keeps_the_request_waiting() {
        // The reservation may lapse (rules have schedules), so the wait stands.
        let w = World::new();
        let rules = [DedicatedRule {
            hospital_id: Some(2),
            exclusive: true,
            ..rule(1)
        }];
        let r = MatchRequest {
            requested_consultant: Some(1),
            wait_for_requested: true,
            ..req("ER")
        };
        assert_eq!(
            run(&r, &w.all(), &w.data, &rules),
            Outcome::WaitForRequested
        );
    }

    #[test]
    fn weights_are_configurable() {
        let mut w = World::new();
        w.data.mark_served(2, HOSPITAL, 9);
        let weights = MatchWeights {
            expert: 15,
            same_hospital: 40,
            ..MatchWeights::default()
        };
        // Standard 2 with the hospital bonus (15 + 40) now beats expert 1 (15).
        let c = offer(choose(&req("ER"), &w.all(), &w.data, &[], &weights));
        assert_eq!((c.consultant_id, c.tier, c.score), (2, Tier::C, 55));
    }

    #[test]
    fn dedicated_beats_requested_and_preferred() {
        let w = World::new();
        let rules = [DedicatedRule {
            hospital_id: Some(HOSPITAL),
            ..rule(4)
        }];
        let r = MatchRequest {
            requested_consultant: Some(1),
            preferred: &[2],
            ..req("ER")
        };
        let c = offer(run(&r, &w.all(), &w.data, &rules));
        assert_eq!((c.consultant_id, c.tier), (4, Tier::Dedicated));
    }

    #[test]
    fn exclusive_rules_reserve_the_consultant() {
        let w = World::new();
        // 1 (the best ER expert) is reserved for hospital 2; 5 for staff 777 but also
        // dedicated (non-exclusively) to our staff member's hospital ICU department.
        let rules = vec![
            DedicatedRule {
                hospital_id: Some(2),
                exclusive: true,
                ..rule(1)
            },
            DedicatedRule {
                staff_id: Some(777),
                exclusive: true,
                ..rule(5)
            },
            DedicatedRule {
                hospital_id: Some(HOSPITAL),
                department: Some("ICU".into()),
                ..rule(5)
            },
            // 2's exclusive rule is not active now: no reservation.
            DedicatedRule {
                hospital_id: Some(2),
                exclusive: true,
                active_now: false,
                ..rule(2)
            },
        ];
        let er = req("ER");
        assert!(reserved_for_others(&rules, 1, &er));
        assert!(reserved_for_others(&rules, 5, &er));
        assert!(!reserved_for_others(&rules, 2, &er));
        assert!(!reserved_for_others(&rules, 6, &er));
        assert!(!eligible(&er, 1, &rules));
        let c = offer(run(&er, &w.all(), &w.data, &rules));
        assert_eq!((c.consultant_id, c.tier), (2, Tier::C));

        // ICU: 5's own rule covers it, so 5 is not reserved — and is dedicated.
        let icu = req("ICU");
        assert!(!reserved_for_others(&rules, 5, &icu));
        let c = offer(run(&icu, &w.all(), &w.data, &rules));
        assert_eq!((c.consultant_id, c.tier), (5, Tier::Dedicated));

        // Reserved consultants are not offered even when named or preferred.
        let r = MatchRequest {
            requested_consultant: Some(1),
            preferred: &[5],
            ..req("ER")
        };
        let c = offer(run(&r, &w.all(), &w.data, &rules));
        assert_eq!((c.consultant_id, c.tier), (2, Tier::C));

        // Hospital 2's requests do get 1, as a dedicated offer.
        let r = MatchRequest {
            hospital_id: 2,
            ..req("ER")
        };
        let c = offer(run(&r, &w.all(), &w.data, &rules));
        assert_eq!((c.consultant_id, c.tier), (1, Tier::Dedicated));
        assert_eq!(
            c.reasons[0],
            "dedicated assignment to this hospital, exclusive"
        );
    }

    #[test]
    fn requested_consultant() {
        let w = World::new();
        let r = MatchRequest {
            requested_consultant: Some(4),
            preferred: &[2],
            ..req("ER")
        };
        let c = offer(run(&r, &w.all(), &w.data, &[]));
        assert_eq!((c.consultant_id, c.tier, c.score), (4, Tier::Requested, 0));
        assert_eq!(c.reasons, ["requested by name"]);

        // Not available, no wait: the explicit preference next.
        let c = offer(run(&r, &w.some(&[1, 2, 3]), &w.data, &[]));
        assert_eq!((c.consultant_id, c.tier), (2, Tier::Preferred));

        // Not available, wait: nobody else, not even the available dedicated consultant.
        let rules = [DedicatedRule {
            staff_id: Some(STAFF),
            ..rule(3)
        }];
        let waiting = MatchRequest {
            wait_for_requested: true,
            ..r
        };
        assert_eq!(
            run(&waiting, &w.some(&[1, 2, 3]), &w.data, &rules),
            Outcome::WaitForRequested
        );
        assert!(!eligible(&waiting, 3, &rules));
        assert!(eligible(&waiting, 4, &rules));

        // Wait, and they are available: offered.
        let c = offer(run(&waiting, &w.all(), &w.data, &rules));
        assert_eq!((c.consultant_id, c.tier), (4, Tier::Requested));

        // Wait, but they already missed it: the wait is void and matching falls through.
        let missed = MatchRequest {
            excluded: &[4],
            ..waiting
        };
        assert_eq!(missed.waits_for(), None);
        let c = offer(run(&missed, &w.some(&[1, 2, 3]), &w.data, &rules));
        assert_eq!((c.consultant_id, c.tier), (3, Tier::Dedicated));

        // The named consultant is also dedicated to this staff member: labelled dedicated.
        let rules = [DedicatedRule {
            staff_id: Some(STAFF),
            ..rule(4)
        }];
        let c = offer(run(&waiting, &w.all(), &w.data, &rules));
        assert_eq!((c.consultant_id, c.tier), (4, Tier::Dedicated));
    }

    #[test]
    fn explicit_preferences_in_order() {
        let mut w = World::new();
        // Implicit preference (3) exists but explicit ones come first.
        w.data.set_relationship(STAFF, 3, rel(4, 4, &[5, 5]));
        let r = MatchRequest {
            preferred: &[9, 6, 4],
            ..req("ER")
        };
        let c = offer(run(&r, &w.all(), &w.data, &[]));
        assert_eq!((c.consultant_id, c.tier, c.score), (6, Tier::Preferred, 15));
        assert_eq!(c.reasons[0], "preferred consultant (choice #2)");
        let r = MatchRequest {
            preferred: &[4, 6],
            excluded: &[4],
            ..req("ER")
        };
        let c = offer(run(&r, &w.all(), &w.data, &[]));
        assert_eq!(c.consultant_id, 6);
        // None of the explicit ones available: implicit preference.
        let r = MatchRequest {
            preferred: &[9],
            ..req("ER")
        };
        let c = offer(run(&r, &w.all(), &w.data, &[]));
        // 50 + 4*5 + 20 + 0 (ICU expert, ER request)
        assert_eq!((c.consultant_id, c.tier, c.score), (3, Tier::Preferred, 90));
        assert_eq!(
            c.reasons,
            [
                "preferred consultant (most successful sessions with this staff member)",
                "worked with this staff member before (4 sessions)",
                "4 successful sessions together",
                "average rating 5.0 from this staff member"
            ]
        );
    }

    #[test]
    fn implicit_preference_rules() {
        let mut data = MatchIndex::new();
        let w = MatchWeights::default();
        assert_eq!(implicit_preference(STAFF, &data, &w), None);
        data.set_relationship(STAFF, 1, rel(9, 9, &[3, 3])); // most successes, avg 3
        data.set_relationship(STAFF, 2, rel(5, 4, &[4])); // avg 4.0
        data.set_relationship(STAFF, 3, rel(6, 4, &[5])); // same successes, higher avg
        data.set_relationship(STAFF, 4, rel(3, 0, &[5])); // no success
        data.set_relationship(STAFF, 5, rel(7, 5, &[])); // unrated
        assert_eq!(implicit_preference(STAFF, &data, &w), Some(3));
        data.set_relationship(STAFF, 6, rel(8, 4, &[5])); // same again, more sessions
        assert_eq!(implicit_preference(STAFF, &data, &w), Some(6));
        data.set_relationship(STAFF, 0, rel(8, 4, &[5])); // full tie: lowest id
        assert_eq!(implicit_preference(STAFF, &data, &w), Some(0));
        assert_eq!(implicit_preference(STAFF + 1, &data, &w), None);
    }

    #[test]
    fn unavailable_implicit_preference_falls_to_smart_match() {
        let mut w = World::new();
        w.data.set_relationship(STAFF, 4, rel(5, 5, &[5])); // implicit pref, not available
        w.data.set_relationship(STAFF, 3, rel(2, 2, &[5])); // second best, available
        let c = offer(run(&req("ER"), &w.some(&[1, 2, 3]), &w.data, &[]));
        // Smart match: 3 is tier B (ICU only) with 50 + 10 + 20 = 80.
        assert_eq!((c.consultant_id, c.tier, c.score), (3, Tier::B, 80));
    }

    #[test]
    fn evaluate_labels_a_single_consultant() {
        let mut w = World::new();
        w.data.set_relationship(STAFF, 3, rel(4, 4, &[5]));
        let cands = w.all();
        let weights = MatchWeights::default();
        let rules = [
            DedicatedRule {
                staff_id: Some(STAFF),
                ..rule(6)
            },
            DedicatedRule {
                hospital_id: Some(2),
                exclusive: true,
                ..rule(5)
            },
        ];
        let r = MatchRequest {
            requested_consultant: Some(2),
            preferred: &[1],
            ..req("ER")
        };
        let tier = |i: usize| evaluate(&r, &cands[i], &w.data, &rules, &weights).map(|c| c.tier);
        assert_eq!(tier(5), Some(Tier::Dedicated));
        assert_eq!(tier(1), Some(Tier::Requested));
        assert_eq!(tier(0), Some(Tier::Preferred));
        assert_eq!(tier(2), Some(Tier::Preferred)); // implicit
        assert_eq!(tier(3), Some(Tier::D));
        assert_eq!(tier(4), None); // reserved for hospital 2
        let c = evaluate(&req("ICU"), &cands[2], &w.data, &[], &weights).unwrap();
        assert_eq!((c.tier, c.score), (Tier::Preferred, 50 + 20 + 20 + 30));
        let waiting = MatchRequest {
            wait_for_requested: true,
            ..r
        };
        assert!(evaluate(&waiting, &cands[0], &w.data, &rules, &weights).is_none());
    }

    /// splitmix64, so the randomised test needs no dependency and is reproducible.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % n
        }
    }

    /// The pruned single pass must pick exactly what sorting everyone would.
    #[test]
    fn smart_match_agrees_with_brute_force() {
        let depts = ["ER", "ICU", "Lab"];
        let weights = MatchWeights::default();
        let mut smart_offers = 0;
        for seed in 0..300 {
            let mut rng = Rng(seed);
            let n = 1 + rng.below(40) as usize;
            let specs: Vec<Vec<(String, Proficiency)>> = (0..n)
                .map(|_| {
                    (0..rng.below(3))
                        .map(|_| {
                            let level = if rng.below(2) == 0 {
                                Proficiency::Expert
                            } else {
                                Proficiency::Standard
                            };
                            (depts[rng.below(3) as usize].to_owned(), level)
                        })
                        .collect()
                })
                .collect();
            let mut data = MatchIndex::new();
            let cands: Vec<Candidate<'_>> = specs
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let id = i as i64 * 3 + 1;
                    if rng.below(3) == 0 {
                        let sessions = rng.below(4) as u32;
                        let ratings: Vec<u32> =
                            (0..rng.below(3)).map(|_| 1 + rng.below(5) as u32).collect();
                        data.set_relationship(STAFF, id, rel(sessions, sessions / 2, &ratings));
                    }
                    if rng.below(3) == 0 {
                        data.mark_served(id, HOSPITAL, 1 + rng.below(2) as i64 * STAFF);
                    }
                    Candidate {
                        id,
                        idle_since: t(rng.below(4) as i64),
                        specialties: s,
                    }
                })
                .collect();
            let excluded: Vec<i64> = cands
                .iter()
                .map(|c| c.id)
                .filter(|_| rng.below(6) == 0)
                .collect();
            let r = MatchRequest {
                excluded: &excluded,
                ..req(depts[rng.below(3) as usize])
            };
            let expected = cands
                .iter()
                .filter(|c| !excluded.contains(&c.id))
                .map(|c| {
                    let facts = Facts::gather(&r, c, &data);
                    (
                        facts.tier().smart_rank(),
                        -facts.score(&weights),
                        c.idle_since,
                        c.id,
                    )
                })
                .min();
            let got = choose(&r, &cands, &data, &[], &weights);
            // Step 1's implicit preference comes first when it is available.
            let implicit = implicit_preference(STAFF, &data, &weights)
                .filter(|id| !excluded.contains(id) && cands.iter().any(|c| c.id == *id));
            let expected = match implicit {
                Some(id) => Some((Tier::Preferred, id)),
                None => expected.map(|(rank, _, _, id)| (Tier::ALL[3 + rank as usize], id)),
            };
            match (expected, got) {
                (None, Outcome::Queue) => {}
                (Some((tier, id)), Outcome::Offer(c)) => {
                    assert_eq!((c.tier, c.consultant_id), (tier, id), "seed {seed}");
                    smart_offers += usize::from(tier != Tier::Preferred);
                    let cand = cands.iter().find(|x| x.id == id).unwrap();
                    assert_eq!(c.score, score(&r, cand, &data, &weights), "seed {seed}");
                }
                (e, g) => panic!("seed {seed}: expected {e:?}, got {g:?}"),
            }
        }
        // Most seeds must exercise smart match, not step 1.
        assert!(smart_offers > 150, "only {smart_offers} smart offers");
    }

    #[test]
    fn duplicate_candidates_are_harmless() {
        let w = World::new();
        let mut cands = w.some(&[4, 4, 2]);
        cands.push(cands[0]);
        let r = MatchRequest {
            requested_consultant: Some(4),
            ..req("ER")
        };
        assert_eq!(offer(run(&r, &cands, &w.data, &[])).consultant_id, 4);
        assert_eq!(
            offer(run(&req("ER"), &cands, &w.data, &[])).consultant_id,
            2
        );
    }
}
