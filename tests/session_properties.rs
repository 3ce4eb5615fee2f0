//! Issue 12's property test: random sequences of requests, declines, timeouts,
//! takes, cancels, accepts, ends and status changes against the real server. After
//! every step, once the system has settled, storage, the dispatcher's view (`GET
//! /api/admin/dispatcher`) and what each consultant's socket was told must agree,
//! and the invariants must hold: no request offered to two consultants, no
//! consultant in two live sessions, no available consultant left idle while a
//! request they may take waits past `REOFFER_AFTER_SECS`, and never a 5xx.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{Backend, Person, TestApp, WsClient};
use nicehr_support::db::repo;
use nicehr_support::model::{ConsultantStatus, SessionStatus};
use proptest::prelude::*;
use serde_json::{json, Value};

const STAFF: usize = 4;
const CONSULTANTS: usize = 3;
const OFFER_TIMEOUT_SECS: f64 = 3.0;
const REOFFER_SECS: f64 = 1.0;
/// How long the system may take to agree with itself after a step.
const SETTLE: Duration = Duration::from_millis(2500);

#[derive(Debug, Clone)]
enum Step {
    Request {
        staff: usize,
        urgency: usize,
    },
    Decline {
        consultant: usize,
    },
    Accept {
        consultant: usize,
    },
    Take {
        consultant: usize,
        nth: usize,
    },
    Cancel {
        staff: usize,
    },
    End {
        nth: usize,
        by_consultant: bool,
    },
    /// Let offers time out (and misses age past the re-offer time).
    Wait,
    Status {
        consultant: usize,
        available: bool,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..STAFF, 0..3usize).prop_map(|(staff, urgency)| Step::Request { staff, urgency }),
        2 => (0..CONSULTANTS).prop_map(|consultant| Step::Decline { consultant }),
        2 => (0..CONSULTANTS).prop_map(|consultant| Step::Accept { consultant }),
        1 => (0..CONSULTANTS, 0..3usize).prop_map(|(consultant, nth)| Step::Take { consultant, nth }),
        1 => (0..STAFF).prop_map(|staff| Step::Cancel { staff }),
        2 => (0..3usize, any::<bool>()).prop_map(|(nth, by_consultant)| Step::End { nth, by_consultant }),
        1 => Just(Step::Wait),
        1 => (0..CONSULTANTS, any::<bool>())
            .prop_map(|(consultant, available)| Step::Status { consultant, available }),
    ]
}

struct World {
    app: TestApp,
    staff: Vec<Person>,
    consultants: Vec<(Person, WsClient)>,
    /// What each consultant's socket says they hold: the offer told and not yet
    /// revoked, accepted or cancelled.
    told: Vec<Option<i64>>,
}

impl World {
    async fn new(backend: Backend) -> World {
        let app = TestApp::start_with(backend, |c| {
            c.offer_timeout_secs = OFFER_TIMEOUT_SECS;
            c.reoffer_after_secs = REOFFER_SECS;
            c.presence_grace_secs = 30.0;
            c.max_missed_offers = 1000;
        })
        .await;
        let ward = app.ward("Prop", "enterprise").await;
        let mut staff = Vec::new();
        for i in 0..STAFF {
            staff.push(
                app.person(
                    &format!("s{i}@p.test"),
                    "hospital_staff",
                    Some(ward.hospital_id),
                )
                .await,
            );
        }
        let mut consultants = Vec::new();
        for i in 0..CONSULTANTS {
            consultants.push(app.consultant(&format!("c{i}@p.test"), &[]).await);
        }
        World {
            app,
            staff,
            consultants,
            told: vec![None; CONSULTANTS],
        }
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> u16 {
        let (status, reply) = self.app.post(Some(token), path, body).await;
        assert!(status < 500, "{path} answered {status}: {reply}");
        status
    }

    async fn live(&self) -> Vec<nicehr_support::db::models::SessionRow> {
        repo::sessions::all_live(&self.app.store).await.unwrap()
    }

    async fn run(&mut self, step: &Step) {
        match *step {
            Step::Request { staff, urgency } => {
                let urgency = ["normal", "urgent", "critical"][urgency];
                self.post(
                    &self.staff[staff].token.clone(),
                    "/api/support/request",
                    json!({"department": "ER", "urgency": urgency, "issue_summary": "Prop"}),
                )
                .await;
            }
            Step::Decline { consultant } | Step::Accept { consultant } => {
                let Some(sid) = self.told[consultant] else {
                    return;
                };
                let verb = if matches!(step, Step::Decline { .. }) {
                    "decline"
                } else {
                    "accept"
                };
                let token = self.consultants[consultant].0.token.clone();
                self.post(&token, &format!("/api/support/{verb}/{sid}"), json!({}))
                    .await;
            }
            Step::Take { consultant, nth } => {
                let pending: Vec<i64> = self
                    .live()
                    .await
                    .iter()
                    .filter(|s| s.status == SessionStatus::Pending)
                    .map(|s| s.id.0)
                    .collect();
                if let Some(sid) = pending.get(nth % pending.len().max(1)) {
                    let token = self.consultants[consultant].0.token.clone();
                    self.post(&token, &format!("/api/support/take/{sid}"), json!({}))
                        .await;
                }
            }
            Step::Cancel { staff } => {
                let me = self.staff[staff].id;
                let live = self.live().await;
                if let Some(s) = live.iter().find(|s| s.requester_id.0 == me) {
                    let token = self.staff[staff].token.clone();
                    self.post(&token, &format!("/api/support/cancel/{}", s.id), json!({}))
                        .await;
                }
            }
            Step::End { nth, by_consultant } => {
                let calls: Vec<_> = self
                    .live()
                    .await
                    .into_iter()
                    .filter(|s| s.status.in_call())
                    .collect();
                let Some(s) = calls.get(nth % calls.len().max(1)) else {
                    return;
                };
                let token = if by_consultant {
                    let c = s.consultant_id.map(|c| c.0);
                    match self.consultants.iter().find(|(p, _)| Some(p.id) == c) {
                        Some((p, _)) => p.token.clone(),
                        None => self.app.admin_token.clone(),
                    }
                } else {
                    let r = s.requester_id.0;
                    self.staff
                        .iter()
                        .find(|p| p.id == r)
                        .map(|p| p.token.clone())
                        .unwrap_or_else(|| self.app.admin_token.clone())
                };
                let body = if by_consultant {
                    json!({"resolved": true})
                } else {
                    json!({})
                };
                self.post(&token, &format!("/api/support/end/{}", s.id), body)
                    .await;
            }
            Step::Wait => {
                tokio::time::sleep(Duration::from_secs_f64(OFFER_TIMEOUT_SECS + 0.3)).await;
            }
            Step::Status {
                consultant,
                available,
            } => {
                let status = if available { "available" } else { "away" };
                let token = self.consultants[consultant].0.token.clone();
                self.post(&token, "/api/consultants/status", json!({"status": status}))
                    .await;
            }
        }
    }

    /// Reads every socket's frames so far and updates what each was told.
    async fn listen(&mut self) {
        for (i, (_, ws)) in self.consultants.iter_mut().enumerate() {
            for frame in ws.collect(Duration::from_millis(30)).await {
                let data = &frame["data"];
                match frame["type"].as_str().unwrap_or("") {
                    "support_request_offered" => {
                        self.told[i] = data["session"]["id"].as_i64();
                    }
                    "support_request_offer_revoked" | "support_request_cancelled"
                        if self.told[i] == data["session_id"].as_i64() =>
                    {
                        self.told[i] = None;
                    }
                    "support_request_accepted"
                        if self.told[i] == data["session"]["id"].as_i64() =>
                    {
                        self.told[i] = None;
                    }
                    _ => {}
                }
            }
        }
    }

    /// Storage, the dispatcher and the sockets agree, and the invariants hold;
    /// retried until `SETTLE` since timers and writes may be in flight.
    async fn agree(&mut self, history: &[Step]) {
        let started = Instant::now();
        let mut idle_since: Option<Instant> = None;
        loop {
            self.listen().await;
            match self.compare().await {
                Ok(Idle::No) => return,
                Ok(Idle::Waiting) => {
                    // A free consultant and an unoffered request: allowed only until
                    // the re-offer time has passed.
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs_f64(REOFFER_SECS + 2.0) {
                        panic!("an available consultant stayed idle while a request waited; steps {history:?}");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(problem) => {
                    if started.elapsed() > SETTLE {
                        panic!("{problem}\nafter steps {history:?}");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn compare(&self) -> Result<Idle, String> {
        let store = &self.app.store;
        let live = self.live().await;
        let offers = repo::offers::pending_all(store).await.unwrap();
        let availability = repo::consultants::availability_all(store).await.unwrap();
        let last_event = repo::events::last_id(store).await.unwrap().0;
        let (status, view) = self
            .app
            .get(Some(&self.app.admin_token), "/api/admin/dispatcher")
            .await;
        if status != 200 {
            return Err(format!("dispatcher view: {status} {view}"));
        }
        if view["processed_event_id"].as_i64().unwrap_or(0) < last_event {
            return Err(format!(
                "dispatcher behind the stream: {view} < {last_event}"
            ));
        }
        if !view["problem"].is_null() {
            return Err(format!("dispatcher invariant: {}", view["problem"]));
        }
        // Invariants of storage itself.
        let mut in_call: BTreeMap<i64, i64> = BTreeMap::new();
        for s in live.iter().filter(|s| s.status.in_call()) {
            let c = s
                .consultant_id
                .map(|c| c.0)
                .ok_or("a call without a consultant")?;
            if let Some(other) = in_call.insert(c, s.id.0) {
                return Err(format!(
                    "consultant {c} in two live sessions: {other} and {}",
                    s.id
                ));
            }
        }
        let mut offered_sessions = BTreeSet::new();
        let mut holding = BTreeSet::new();
        for o in &offers {
            if !offered_sessions.insert(o.session_id.0) {
                return Err(format!("session {} offered twice", o.session_id));
            }
            if !holding.insert(o.consultant_id.0) {
                return Err(format!("consultant {} holds two offers", o.consultant_id));
            }
        }
        for o in &offers {
            let status = availability
                .iter()
                .find(|a| a.consultant_id == o.consultant_id)
                .map(|a| a.status);
            if status != Some(ConsultantStatus::Available) {
                return Err(format!(
                    "consultant {} holds an offer while {status:?}",
                    o.consultant_id
                ));
            }
        }
        // Storage and the dispatcher agree on the queue and its offers.
        let pending: BTreeSet<i64> = live
            .iter()
            .filter(|s| s.status == SessionStatus::Pending)
            .map(|s| s.id.0)
            .collect();
        let queued: BTreeSet<i64> = view["queue"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|q| q["session_id"].as_i64())
            .collect();
        if pending != queued {
            return Err(format!(
                "pending {pending:?} vs dispatcher queue {queued:?}"
            ));
        }
        let stored_offers: BTreeMap<i64, i64> = offers
            .iter()
            .map(|o| (o.session_id.0, o.consultant_id.0))
            .collect();
        let viewed_offers: BTreeMap<i64, i64> = view["queue"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|q| Some((q["session_id"].as_i64()?, q["offered_to"].as_i64()?)))
            .collect();
        if stored_offers != viewed_offers {
            return Err(format!(
                "offers {stored_offers:?} vs dispatcher {viewed_offers:?}"
            ));
        }
        for c in view["consultants"].as_array().unwrap() {
            let id = c["id"].as_i64().unwrap();
            let stored = availability.iter().find(|a| a.consultant_id.0 == id);
            let stored_status = stored.map(|a| a.status.as_str()).unwrap_or("offline");
            if c["status"] != stored_status {
                return Err(format!(
                    "consultant {id}: stored {stored_status}, dispatcher {}",
                    c["status"]
                ));
            }
            if c["session"].as_i64() != in_call.get(&id).copied() {
                return Err(format!(
                    "consultant {id}: call {:?} vs dispatcher {}",
                    in_call.get(&id),
                    c["session"]
                ));
            }
        }
        // What each socket was told agrees with storage.
        for (i, (p, _)) in self.consultants.iter().enumerate() {
            let held = offers
                .iter()
                .find(|o| o.consultant_id.0 == p.id)
                .map(|o| o.session_id.0);
            if self.told[i] != held {
                return Err(format!(
                    "consultant {} was told {:?}, holds {held:?}",
                    p.id, self.told[i]
                ));
            }
        }
        // Liveness: a free, available consultant with a request nobody is offered.
        let free = availability.iter().any(|a| {
            a.status == ConsultantStatus::Available
                && a.current_session_id.is_none()
                && !holding.contains(&a.consultant_id.0)
        });
        let unoffered = pending.iter().any(|s| !offered_sessions.contains(s));
        Ok(if free && unoffered {
            Idle::Waiting
        } else {
            Idle::No
        })
    }
}

enum Idle {
    No,
    Waiting,
}

async fn run_case(backend: Backend, steps: Vec<Step>) {
    let mut world = World::new(backend).await;
    for (i, step) in steps.iter().enumerate() {
        world.run(step).await;
        world.agree(&steps[..=i]).await;
    }
}

fn check(backend: Backend, steps: Vec<Step>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run_case(backend, steps));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, max_shrink_iters: 4, ..ProptestConfig::default() })]

    #[test]
    fn storage_dispatcher_and_sockets_agree_sqlite(steps in prop::collection::vec(step(), 8..16)) {
        check(Backend::Sqlite, steps);
    }

    #[test]
    fn storage_dispatcher_and_sockets_agree_postgres(steps in prop::collection::vec(step(), 8..16)) {
        let available = tokio::runtime::Runtime::new()
            .expect("a runtime")
            .block_on(common::postgres_available());
        if available {
            check(Backend::Postgres, steps);
        }
    }
}
