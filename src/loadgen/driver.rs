//! The simulated people: consultants who accept every offer on their socket, hold the
//! call and end it; staff who ask for help at open-loop times and wait to be told a
//! consultant accepted. Everything they observe goes into one `Tracker`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::stats::{Latencies, LatencyRecorder};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A generated account and the token it signs in with.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: i64,
    pub token: String,
}

#[derive(Default)]
struct Recorders {
    request_to_offer: LatencyRecorder,
    available_to_offer: LatencyRecorder,
    accept_to_requester: LatencyRecorder,
    request_post: LatencyRecorder,
    generator_lag: LatencyRecorder,
}

/// Shared by every simulated person for one run.
pub struct Tracker {
    http: reqwest::Client,
    base_url: String,
    department: String,
    hold: Duration,
    /// Samples are kept only for events inside `[measure_from, measure_until)`:
    /// warm-up and drain are excluded.
    measure_from: Instant,
    measure_until: Instant,
    recorders: Mutex<Recorders>,
    errors: Mutex<BTreeMap<String, u64>>,
    /// Requester id → intended send time of their live request (one each at most).
    intended: Mutex<HashMap<i64, Instant>>,
    /// Session id → when its consultant sent `accept`.
    accept_sent: Mutex<HashMap<i64, Instant>>,
    staff: Vec<Account>,
    staff_index: HashMap<i64, usize>,
    /// Staff with no live request, free to ask again, longest idle first: each asks
    /// as seldom as the pool allows, which keeps a run under the server's per-user
    /// request limit (`SUPPORT_REQUESTS_PER_MIN`) as a real ward would be.
    free_staff: Mutex<VecDeque<usize>>,
    pub sent: AtomicU64,
    pub created: AtomicU64,
    pub offers: AtomicU64,
    pub completed: AtomicU64,
    /// Requests sent and not yet ended (or failed).
    pub in_flight: AtomicU64,
}

/// A poisoned lock only means another task panicked mid-update of a counter map;
/// the numbers are still worth reporting.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub struct TrackerSetup {
    pub http: reqwest::Client,
    pub base_url: String,
    pub department: String,
    pub hold: Duration,
    pub measure_from: Instant,
    pub measure_until: Instant,
    pub staff: Vec<Account>,
}

impl Tracker {
    pub fn new(setup: TrackerSetup) -> Arc<Tracker> {
        let staff_index = setup
            .staff
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id, i))
            .collect();
        let free_staff = (0..setup.staff.len()).collect();
        Arc::new(Tracker {
            http: setup.http,
            base_url: setup.base_url,
            department: setup.department,
            hold: setup.hold,
            measure_from: setup.measure_from,
            measure_until: setup.measure_until,
            recorders: Mutex::new(Recorders::default()),
            errors: Mutex::new(BTreeMap::new()),
            intended: Mutex::new(HashMap::new()),
            accept_sent: Mutex::new(HashMap::new()),
            staff: setup.staff,
            staff_index,
            free_staff: Mutex::new(free_staff),
            sent: AtomicU64::new(0),
            created: AtomicU64::new(0),
            offers: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
        })
    }

    fn measured(&self, at: Instant) -> bool {
        at >= self.measure_from && at < self.measure_until
    }

    pub fn error(&self, kind: impl Into<String>) {
        self.errors_of(kind, 1);
    }

    pub fn errors_of(&self, kind: impl Into<String>, count: u64) {
        if count > 0 {
            *lock(&self.errors).entry(kind.into()).or_default() += count;
        }
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        lock(&self.errors).clone()
    }

    pub fn latencies(&self) -> Latencies {
        let r = lock(&self.recorders);
        Latencies {
            request_to_offer: r.request_to_offer.summary(),
            available_to_offer: r.available_to_offer.summary(),
            accept_to_requester: r.accept_to_requester.summary(),
            request_post: r.request_post.summary(),
            generator_lag: r.generator_lag.summary(),
            request_to_offer_distribution: r.request_to_offer.distribution(),
        }
    }

    /// Created requests whose intended send time fell in the measured window.
    pub fn measured_window(&self) -> Duration {
        self.measure_until
            .saturating_duration_since(self.measure_from)
    }

    fn release_staff(&self, requester_id: i64) {
        lock(&self.intended).remove(&requester_id);
        if let Some(index) = self.staff_index.get(&requester_id) {
            lock(&self.free_staff).push_back(*index);
        }
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// One open-loop arrival, due at `due`: a free staff member asks for help.
    pub async fn send_request(self: Arc<Self>, due: Instant) {
        let Some(index) = lock(&self.free_staff).pop_front() else {
            self.error("no free staff account at send time (raise --staff)");
            return;
        };
        let account = &self.staff[index];
        let started = Instant::now();
        if self.measured(due) {
            lock(&self.recorders)
                .generator_lag
                .record(started.saturating_duration_since(due));
        }
        lock(&self.intended).insert(account.id, due);
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let reply = self
            .http
            .post(format!("{}/api/support/request", self.base_url))
            .bearer_auth(&account.token)
            .json(&json!({
                "department": self.department,
                "urgency": "normal",
                "issue_summary": "load test request",
            }))
            .send()
            .await;
        let finished = Instant::now();
        match reply {
            Ok(response) if response.status().as_u16() == 201 => {
                self.created.fetch_add(1, Ordering::Relaxed);
                if self.measured(due) {
                    lock(&self.recorders)
                        .request_post
                        .record(finished.saturating_duration_since(due));
                }
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let code = error_code(response).await;
                self.error(format!("POST /api/support/request: {status} {code}"));
                self.release_staff(account.id);
            }
            Err(e) => {
                self.error(format!(
                    "POST /api/support/request: {}",
                    transport_error(&e)
                ));
                self.release_staff(account.id);
            }
        }
    }

    /// Holds the call, then ends it as the consultant. `freed` is set just before
    /// the End is sent: that is when the consultant becomes available again.
    async fn hold_and_end(
        self: Arc<Self>,
        consultant: Arc<Account>,
        freed: Arc<Mutex<Option<Instant>>>,
        session_id: i64,
        requester_id: i64,
    ) {
        tokio::time::sleep(self.hold).await;
        *lock(&freed) = Some(Instant::now());
        let reply = self
            .http
            .post(format!("{}/api/support/end/{session_id}", self.base_url))
            .bearer_auth(&consultant.token)
            .json(&json!({"resolved": true}))
            .send()
            .await;
        match reply {
            Ok(response) if response.status().is_success() => {
                self.completed.fetch_add(1, Ordering::Relaxed);
                self.release_staff(requester_id);
            }
            // The call may still be live on the server: that requester cannot ask
            // again, so they stay out of the pool (and the request stays in flight).
            Ok(response) => {
                let status = response.status().as_u16();
                let code = error_code(response).await;
                self.error(format!("POST /api/support/end: {status} {code}"));
            }
            Err(e) => self.error(format!("POST /api/support/end: {}", transport_error(&e))),
        }
    }
}

async fn error_code(response: reqwest::Response) -> String {
    match response.json::<Value>().await {
        Ok(body) => body["error"]
            .as_str()
            .unwrap_or("(no error code)")
            .to_string(),
        Err(_) => "(body is not JSON)".to_string(),
    }
}

/// A transport failure, without the URL (which carries nothing secret, but is noise).
fn transport_error(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    }
}

/// Opens `/ws?events=minimal` for one account and waits for `hello`.
pub async fn connect(ws_url: &str, account: &Account, timeout: Duration) -> Result<Socket, String> {
    let url = format!("{ws_url}?events=minimal&token={}", account.token);
    // Nagle off: an `accept` frame must not wait for the ACK of the previous frame.
    let connecting = tokio_tungstenite::connect_async_with_config(url, None, true);
    let (mut socket, _) = tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| "websocket connect timed out".to_string())?
        .map_err(|e| format!("websocket connect failed: {e}"))?;
    let hello = tokio::time::timeout(timeout, async {
        while let Some(frame) = socket.next().await {
            if let Ok(Message::Text(text)) = frame {
                if frame_type(&text).as_deref() == Some("hello") {
                    return true;
                }
            }
        }
        false
    })
    .await;
    match hello {
        Ok(true) => Ok(socket),
        _ => Err("no hello frame from the server".to_string()),
    }
}

fn frame_type(text: &str) -> Option<String> {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_string))
}

/// The next text frame, or `None` when the run is over or the socket is gone (the
/// latter counted as an error unless the run is stopping).
async fn next_text(
    tracker: &Tracker,
    socket: &mut Socket,
    stop: &mut watch::Receiver<bool>,
    who: &str,
) -> Option<String> {
    loop {
        let frame = tokio::select! {
            _ = stop.changed() => return None,
            frame = socket.next() => frame,
        };
        match frame {
            Some(Ok(Message::Text(text))) => return Some(text),
            Some(Ok(Message::Close(_))) | None => {
                if !*stop.borrow() {
                    tracker.error(format!("{who} socket closed by the server"));
                }
                return None;
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) => {
                tracker.error(format!("{who} socket: protocol error"));
                return None;
            }
        }
    }
}

/// A consultant's socket: goes available, accepts every offer, holds, ends.
pub async fn run_consultant(
    tracker: Arc<Tracker>,
    account: Account,
    mut socket: Socket,
    mut stop: watch::Receiver<bool>,
) {
    let account = Arc::new(account);
    let freed: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let presence = json!({"type": "presence", "data": {"status": "available"}}).to_string();
    if socket.send(Message::Text(presence)).await.is_err() {
        tracker.error("consultant socket: presence frame not sent");
        return;
    }
    while let Some(text) = next_text(&tracker, &mut socket, &mut stop, "consultant").await {
        let received = Instant::now();
        let Ok(frame) = serde_json::from_str::<Value>(&text) else {
            tracker.error("consultant socket: frame is not JSON");
            continue;
        };
        let data = &frame["data"];
        match frame["type"].as_str().unwrap_or_default() {
            "support_request_offered" => {
                let (Some(session_id), Some(requester_id)) = (
                    data["session"]["id"].as_i64(),
                    data["session"]["requester_id"].as_i64(),
                ) else {
                    tracker.error("offer frame without session id or requester id");
                    continue;
                };
                tracker.offers.fetch_add(1, Ordering::Relaxed);
                let intended = lock(&tracker.intended).get(&requester_id).copied();
                let freed_at = lock(&freed).take();
                record_offer(&tracker, received, intended, freed_at);
                lock(&tracker.accept_sent).insert(session_id, Instant::now());
                let accept = json!({"type": "accept", "data": {"session_id": session_id}});
                if socket
                    .send(Message::Text(accept.to_string()))
                    .await
                    .is_err()
                {
                    tracker.error("consultant socket: accept frame not sent");
                    return;
                }
            }
            "support_request_accepted" => {
                let (Some(session_id), Some(requester_id)) = (
                    data["session"]["id"].as_i64(),
                    data["session"]["requester_id"].as_i64(),
                ) else {
                    continue;
                };
                tokio::spawn(tracker.clone().hold_and_end(
                    account.clone(),
                    freed.clone(),
                    session_id,
                    requester_id,
                ));
            }
            "support_request_offer_revoked" => {
                let reason = data["reason"].as_str().unwrap_or("unknown");
                tracker.error(format!("offer revoked: {reason}"));
            }
            "error" => {
                let code = data["error"].as_str().unwrap_or("unknown");
                tracker.error(format!("consultant socket error frame: {code}"));
            }
            _ => {}
        }
    }
    let _ = socket.close(None).await;
}

/// Which latency an offer is a sample of. An offer for a request sent before this
/// consultant was freed went to a request that was waiting (or in flight) when the
/// consultant became available: consultant available → offer. Otherwise the
/// consultant was already idle and the request itself triggered it: request → offer.
fn record_offer(
    tracker: &Tracker,
    received: Instant,
    intended: Option<Instant>,
    freed_at: Option<Instant>,
) {
    let mut recorders = lock(&tracker.recorders);
    match (intended, freed_at) {
        (Some(sent), Some(freed)) if freed > sent => {
            if tracker.measured(freed) {
                recorders
                    .available_to_offer
                    .record(received.saturating_duration_since(freed));
            }
        }
        (Some(sent), _) => {
            if tracker.measured(sent) {
                recorders
                    .request_to_offer
                    .record(received.saturating_duration_since(sent));
            }
        }
        (None, _) => {
            drop(recorders);
            tracker.error("offer for a request this generator did not send");
        }
    }
}

/// A staff member's socket: only listens for `support_request_accepted`.
pub async fn run_staff(tracker: Arc<Tracker>, mut socket: Socket, mut stop: watch::Receiver<bool>) {
    while let Some(text) = next_text(&tracker, &mut socket, &mut stop, "staff").await {
        let received = Instant::now();
        let Ok(frame) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        match frame["type"].as_str().unwrap_or_default() {
            "support_request_accepted" => {
                let Some(session_id) = frame["data"]["session"]["id"].as_i64() else {
                    continue;
                };
                let sent = lock(&tracker.accept_sent).remove(&session_id);
                match sent {
                    Some(sent) if tracker.measured(sent) => lock(&tracker.recorders)
                        .accept_to_requester
                        .record(received.saturating_duration_since(sent)),
                    Some(_) => {}
                    None => tracker.error("accepted frame for an accept this generator never sent"),
                }
            }
            "error" => {
                let code = frame["data"]["error"].as_str().unwrap_or("unknown");
                tracker.error(format!("staff socket error frame: {code}"));
            }
            _ => {}
        }
    }
    let _ = socket.close(None).await;
}

/// Paces arrivals on a dedicated OS thread: `std::thread::sleep` wakes within tens
/// of microseconds, where the async timer rounds up to the next millisecond and
/// would add that to every measured latency.
pub fn pace_arrivals(
    runtime: tokio::runtime::Handle,
    tracker: Arc<Tracker>,
    start: Instant,
    until: Instant,
    offsets: impl Iterator<Item = Duration> + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for offset in offsets {
            let due = start + offset;
            if due >= until {
                break;
            }
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            runtime.spawn(tracker.clone().send_request(due));
        }
    })
}
