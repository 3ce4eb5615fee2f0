//! Dispatch hot paths: `choose` over growing candidate pools, and the wait queue at
//! 10,000 entries. Run: `cargo bench --bench dispatch`.
//!
//! Data is synthetic but shaped like production: six departments, one or two
//! specialties per consultant, ~5% of consultants with history with the requester,
//! ~20% who have served the requester's hospital, a few dedicated rules that do not
//! cover the request, and preferences that are all busy — so `choose` runs all the way
//! to smart match, its slowest path.

use std::hint::black_box;

use chrono::{DateTime, NaiveDateTime};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

// In the server crate: `use nicehr_support::dispatch::{matching::..., queue::...};`
use nicehr_support::dispatch::matching::{
    choose, Candidate, DedicatedRule, MatchIndex, MatchRequest, MatchWeights, Outcome, Proficiency,
    Relationship, Urgency,
};
use nicehr_support::dispatch::queue::{QueueKey, WaitQueue};
use nicehr_support::model::Plan;

const DEPARTMENTS: [&str; 6] = ["ER", "ICU", "Pharmacy", "Radiology", "Lab", "Surgery"];
const STAFF: i64 = 1_000_000;
const HOSPITAL: i64 = 7;

/// splitmix64: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn t(secs: i64) -> NaiveDateTime {
    DateTime::from_timestamp(1_750_000_000 + secs, 0)
        .unwrap()
        .naive_utc()
}

struct Pool {
    specialties: Vec<Vec<(String, Proficiency)>>,
    idle: Vec<NaiveDateTime>,
    data: MatchIndex,
    rules: Vec<DedicatedRule>,
}

impl Pool {
    fn new(n: usize) -> Self {
        let mut rng = Rng(n as u64);
        let mut data = MatchIndex::new();
        let mut specialties = Vec::with_capacity(n);
        let mut idle = Vec::with_capacity(n);
        for id in 1..=n as i64 {
            let count = 1 + rng.below(2) as usize;
            let spec = (0..count)
                .map(|_| {
                    let dept = DEPARTMENTS[rng.below(6) as usize].to_owned();
                    let level = if rng.below(3) == 0 {
                        Proficiency::Expert
                    } else {
                        Proficiency::Standard
                    };
                    (dept, level)
                })
                .collect();
            specialties.push(spec);
            idle.push(t(rng.below(3_600) as i64));
            if rng.below(20) == 0 {
                let sessions = 1 + rng.below(6) as u32;
                let ratings = rng.below(u64::from(sessions) + 1) as u32;
                data.set_relationship(
                    STAFF,
                    id,
                    Relationship {
                        sessions,
                        successful: rng.below(u64::from(sessions) + 1) as u32,
                        rating_sum: ratings * (3 + rng.below(3) as u32),
                        rating_count: ratings,
                    },
                );
            }
            if rng.below(5) == 0 {
                data.mark_served(id, HOSPITAL, 1 + rng.below(500) as i64);
            }
            // Other staff's history, so the index is not just this requester's.
            data.set_relationship(
                2_000_000 + rng.below(1_000) as i64,
                id,
                Relationship {
                    sessions: 1,
                    successful: 1,
                    rating_sum: 5,
                    rating_count: 1,
                },
            );
        }
        // The staff member's favourite is busy (id outside the pool), so the implicit
        // preference is looked up and misses.
        data.set_relationship(
            STAFF,
            -1,
            Relationship {
                sessions: 40,
                successful: 40,
                rating_sum: 200,
                rating_count: 40,
            },
        );
        let rules = (0..20)
            .map(|i| DedicatedRule {
                consultant_id: 1 + i,
                staff_id: None,
                hospital_id: Some(100 + i),
                department: None,
                exclusive: i % 4 == 0,
                active_now: true,
            })
            .collect();
        Pool {
            specialties,
            idle,
            data,
            rules,
        }
    }

    fn candidates(&self) -> Vec<Candidate<'_>> {
        self.specialties
            .iter()
            .zip(&self.idle)
            .enumerate()
            .map(|(i, (spec, &idle_since))| Candidate {
                id: i as i64 + 1,
                idle_since,
                specialties: spec,
            })
            .collect()
    }
}

fn bench_choose(c: &mut Criterion) {
    let weights = MatchWeights::default();
    let preferred = [-2, -3];
    let excluded = [3, 5, 8];
    let req = MatchRequest {
        requester_id: STAFF,
        hospital_id: HOSPITAL,
        department: "Radiology",
        requested_consultant: Some(-4),
        wait_for_requested: false,
        preferred: &preferred,
        excluded: &excluded,
    };
    let mut group = c.benchmark_group("choose");
    for n in [10usize, 100, 1_000, 10_000] {
        let pool = Pool::new(n);
        let candidates = pool.candidates();
        assert!(matches!(
            choose(&req, &candidates, &pool.data, &pool.rules, &weights),
            Outcome::Offer(_)
        ));
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &candidates, |b, cands| {
            b.iter(|| {
                choose(
                    black_box(&req),
                    black_box(cands),
                    &pool.data,
                    &pool.rules,
                    &weights,
                )
            })
        });
    }
    group.finish();
}

const QUEUE_LEN: i64 = 10_000;
const PLANS: [Plan; 4] = [
    Plan::Enterprise,
    Plan::Premium,
    Plan::Professional,
    Plan::Basic,
];

fn key(rng: &mut Rng, session_id: i64) -> QueueKey {
    let urgency = Urgency::ALL[rng.below(3) as usize];
    let plan = PLANS[rng.below(4) as usize];
    QueueKey::new(session_id, urgency, t(rng.below(7_200) as i64), plan)
}

fn full_queue() -> (WaitQueue, Vec<QueueKey>) {
    let mut rng = Rng(42);
    let keys: Vec<QueueKey> = (1..=QUEUE_LEN).map(|id| key(&mut rng, id)).collect();
    let mut q = WaitQueue::new();
    for k in &keys {
        q.insert(*k);
    }
    (q, keys)
}

fn bench_queue(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue_10k");
    let (mut q, keys) = full_queue();

    group.bench_function("fill_from_empty", |b| {
        b.iter(|| {
            let mut q = WaitQueue::new();
            for k in &keys {
                q.insert(*k);
            }
            q
        })
    });

    // Steady state at 10,000: each op is paired with its inverse so the size holds.
    let mut rng = Rng(7);
    let mut next_id = QUEUE_LEN + 1;
    group.bench_function("insert_then_remove", |b| {
        b.iter(|| {
            let k = key(&mut rng, next_id);
            next_id += 1;
            q.insert(black_box(k));
            q.remove(black_box(k.session_id))
        })
    });
    let mut i = 0usize;
    group.bench_function("remove_then_reinsert", |b| {
        b.iter(|| {
            let k = keys[i % keys.len()];
            i += 7_919;
            let removed = q.remove(black_box(k.session_id));
            q.insert(k);
            removed
        })
    });
    group.bench_function("pop_first_then_reinsert", |b| {
        b.iter(|| {
            let k = q.pop_first().unwrap();
            q.insert(black_box(k));
        })
    });
    group.bench_function("positions_all", |b| {
        b.iter(|| q.positions().map(|(id, pos)| id ^ pos as i64).sum::<i64>())
    });
    let last = q.iter().next_back().unwrap().session_id;
    group.bench_function("position_of_last", |b| {
        b.iter(|| q.position(black_box(last)))
    });
    group.bench_function("first_eligible_last", |b| {
        b.iter(|| q.first_eligible(|id| id == black_box(last)))
    });
    group.finish();
}

criterion_group!(benches, bench_choose, bench_queue);
criterion_main!(benches);
