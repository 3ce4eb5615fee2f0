//! A local server that speaks the part of Daily's REST API we use, errors
//! included, so the provider, the integration tests and the load generator can
//! exercise every Daily failure mode without the internet or an account.
//!
//! It runs on its own thread with its own actix System, so it works the same
//! from `#[tokio::test]`, `#[actix_web::test]` or plain synchronous code.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::header::AUTHORIZATION;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use hmac::{Hmac, Mac};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::{json, Map, Value};
use sha2::Sha256;

use super::provider::is_valid_room_name;

type Reply = (u16, Value);

/// How a property must look; the stand-in refuses what Daily would refuse, so
/// a typo in a property name fails in tests rather than in production.
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Number,
    Integer,
    Str,
}

const ROOM_PROPERTIES: &[(&str, Kind)] = &[
    ("exp", Kind::Number),
    ("nbf", Kind::Number),
    ("max_participants", Kind::Integer),
    ("enable_screenshare", Kind::Bool),
    ("enable_chat", Kind::Bool),
    ("enable_knocking", Kind::Bool),
    ("start_video_off", Kind::Bool),
    ("start_audio_off", Kind::Bool),
    ("eject_at_room_exp", Kind::Bool),
    ("eject_after_elapsed", Kind::Integer),
    ("enable_recording", Kind::Str),
    ("enable_prejoin_ui", Kind::Bool),
    ("lang", Kind::Str),
];

const TOKEN_PROPERTIES: &[(&str, Kind)] = &[
    ("room_name", Kind::Str),
    ("user_id", Kind::Str),
    ("user_name", Kind::Str),
    ("is_owner", Kind::Bool),
    ("exp", Kind::Number),
    ("nbf", Kind::Number),
    ("eject_at_token_exp", Kind::Bool),
    ("eject_after_elapsed", Kind::Integer),
    ("enable_screenshare", Kind::Bool),
    ("start_video_off", Kind::Bool),
    ("start_audio_off", Kind::Bool),
    ("enable_recording", Kind::Str),
    ("lang", Kind::Str),
];

/// Token property → JWT claim, as Daily abbreviates them.
const CLAIM_NAMES: &[(&str, &str)] = &[
    ("room_name", "r"),
    ("user_name", "u"),
    ("user_id", "ud"),
    ("is_owner", "o"),
    ("enable_screenshare", "ss"),
];

/// Daily's limit; longer ids are refused.
const MAX_USER_ID_LEN: usize = 36;
const MAX_PAGE: usize = 100;

struct StoredRoom {
    id: String,
    name: String,
    privacy: String,
    created_at: String,
    config: Map<String, Value>,
}

struct State {
    api_key: String,
    domain: String,
    domain_id: String,
    rooms: Vec<StoredRoom>,
    tokens: Vec<Value>,
    calls: Vec<(String, String)>,
    fail_next: u32,
    fail_status: u16,
    duplicate_next: u32,
    delay: Duration,
    rate_limit: Option<u32>,
    recent: VecDeque<Instant>,
    hipaa: bool,
}

impl State {
    fn new(api_key: &str) -> Self {
        State {
            api_key: api_key.to_owned(),
            domain: "nicehr-standin".to_owned(),
            domain_id: uuid::Uuid::new_v4().to_string(),
            rooms: Vec::new(),
            tokens: Vec::new(),
            calls: Vec::new(),
            fail_next: 0,
            fail_status: 500,
            duplicate_next: 0,
            delay: Duration::ZERO,
            rate_limit: None,
            recent: VecDeque::new(),
            hipaa: false,
        }
    }

    fn reset(&mut self) {
        let api_key = std::mem::take(&mut self.api_key);
        let domain_id = std::mem::take(&mut self.domain_id);
        *self = State::new(&api_key);
        self.domain_id = domain_id;
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // The state stays consistent across a panicking handler: every mutation
    // is a single push/remove.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

struct Running {
    handle: ServerHandle,
    thread: JoinHandle<()>,
}

pub struct DailyStandIn {
    state: Arc<Mutex<State>>,
    addr: SocketAddr,
    running: Mutex<Option<Running>>,
}

impl DailyStandIn {
    /// # Panics
    /// If no loopback port can be bound: a test fixture has nothing better to
    /// do then. Use [`DailyStandIn::try_start`] to handle it.
    pub fn start(api_key: &str) -> DailyStandIn {
        DailyStandIn::try_start(api_key)
            .unwrap_or_else(|e| panic!("cannot start the Daily stand-in: {e}"))
    }

    /// Returns once the server is listening, so the first request cannot race
    /// the bind.
    pub fn try_start(api_key: &str) -> io::Result<DailyStandIn> {
        let state = Arc::new(Mutex::new(State::new(api_key)));
        let (tx, rx) = std::sync::mpsc::channel::<io::Result<(SocketAddr, ServerHandle)>>();
        let data = web::Data::from(Arc::clone(&state));
        let thread = std::thread::Builder::new()
            .name("daily-standin".into())
            .spawn(move || {
                let system = actix_web::rt::System::new();
                system.block_on(async move {
                    let bound = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .app_data(web::PayloadConfig::new(1 << 20))
                            .default_service(web::to(dispatch))
                    })
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(0)
                    .bind(("127.0.0.1", 0));
                    let server = match bound {
                        Ok(server) => server,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    let Some(addr) = server.addrs().first().copied() else {
                        let _ = tx.send(Err(io::Error::other("no address bound")));
                        return;
                    };
                    let server = server.run();
                    let _ = tx.send(Ok((addr, server.handle())));
                    let _ = server.await;
                });
            })?;
        let (addr, handle) = rx
            .recv()
            .map_err(|_| io::Error::other("stand-in thread died before listening"))??;
        Ok(DailyStandIn {
            state,
            addr,
            running: Mutex::new(Some(Running { handle, thread })),
        })
    }

    /// What `DailyConfig::api_url` should be set to.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `<domain>` in the room URLs it hands out.
    pub fn domain(&self) -> String {
        lock(&self.state).domain.clone()
    }

    /// Idempotent; also done on drop.
    pub fn stop(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(Running { handle, thread }) = running {
            // The stop command is sent when `stop` is called; the returned
            // future only waits for completion, which joining the thread
            // does too.
            let _completion = handle.stop(false);
            let _ = thread.join();
        }
    }

    /// The next `n` requests (any endpoint, before authentication) answer
    /// `status`, with a `rate-limit-error` body for 429 and `server-error`
    /// otherwise.
    pub fn fail_next(&self, n: u32, status: u16) {
        let mut st = lock(&self.state);
        st.fail_next = n;
        st.fail_status = status;
    }

    /// The next `n` room creations answer "a room named X already exists",
    /// since the provider's random names never collide on their own.
    pub fn duplicate_next(&self, n: u32) {
        lock(&self.state).duplicate_next = n;
    }

    /// Every reply is held back this long after the request has been carried
    /// out, like a slow Daily: a caller that times out may still have created
    /// the room, which is what crash cleanup has to cope with.
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.state).delay = delay;
    }

    /// Requests beyond `max_per_second` in any one-second window answer 429
    /// `rate-limit-error`; `None` lifts the limit (the default).
    pub fn set_rate_limit(&self, max_per_second: impl Into<Option<u32>>) {
        let mut st = lock(&self.state);
        st.rate_limit = max_per_second.into();
        st.recent.clear();
    }

    /// Like a HIPAA domain: requested room names are ignored and random ones
    /// assigned.
    pub fn hipaa_rename(&self, on: bool) {
        lock(&self.state).hipaa = on;
    }

    /// Names of the rooms that exist, oldest first.
    pub fn rooms(&self) -> Vec<String> {
        lock(&self.state)
            .rooms
            .iter()
            .map(|r| r.name.clone())
            .collect()
    }

    /// The room object `GET /rooms/:name` would return.
    pub fn room(&self, name: &str) -> Option<Value> {
        let st = lock(&self.state);
        st.rooms
            .iter()
            .find(|r| r.name == name)
            .map(|r| room_json(&st.domain, r))
    }

    /// One entry per token issued: `{"token", "claims", "properties"}`.
    pub fn tokens_issued(&self) -> Vec<Value> {
        lock(&self.state).tokens.clone()
    }

    /// The claims of a token signed with this stand-in's key, or `None` if the
    /// signature does not check out.
    pub fn verify_token(&self, token: &str) -> Option<Value> {
        let key = lock(&self.state).api_key.clone();
        verify_jwt(key.as_bytes(), token)
    }

    /// `(method, path)` of every request received, rejected ones included.
    pub fn calls(&self) -> Vec<(String, String)> {
        lock(&self.state).calls.clone()
    }

    pub fn clear_calls(&self) {
        lock(&self.state).calls.clear();
    }

    /// Back to an empty, fault-free server with the same key and address.
    pub fn reset(&self) {
        lock(&self.state).reset();
    }
}

impl Drop for DailyStandIn {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn dispatch(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let ((status, reply), delay) = {
        let mut st = lock(&state);
        st.calls
            .push((req.method().as_str().to_owned(), req.path().to_owned()));
        (handle(&mut st, &req, &body), st.delay)
    };
    if !delay.is_zero() {
        actix_web::rt::time::sleep(delay).await;
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(reply)
}

fn error(status: u16, error: &str, info: impl Into<String>) -> Reply {
    (status, json!({ "error": error, "info": info.into() }))
}

fn handle(st: &mut State, req: &HttpRequest, body: &[u8]) -> Reply {
    if let Some(limit) = st.rate_limit {
        let now = Instant::now();
        while st
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            st.recent.pop_front();
        }
        if st.recent.len() >= limit as usize {
            return error(
                429,
                "rate-limit-error",
                "Too many requests, please slow down",
            );
        }
        st.recent.push_back(now);
    }
    if st.fail_next > 0 {
        st.fail_next -= 1;
        let status = st.fail_status;
        return if status == 429 {
            error(
                status,
                "rate-limit-error",
                "Too many requests, please slow down",
            )
        } else {
            error(status, "server-error", "Internal server error (injected)")
        };
    }
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match header.map(|h| h.strip_prefix("Bearer ")) {
        None => {
            return error(
                400,
                "authorization-header-error",
                "Missing Authorization header",
            )
        }
        Some(None) => {
            return error(
                400,
                "authorization-header-error",
                "Authorization header must be 'Bearer <api key>'",
            )
        }
        Some(Some(key)) if key.trim() != st.api_key => {
            return error(401, "authentication-error", "Invalid API key")
        }
        Some(Some(_)) => {}
    }

    let Some(rest) = req.path().strip_prefix("/v1/") else {
        return error(404, "not-found", "Unknown endpoint");
    };
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (req.method().as_str(), segments.as_slice()) {
        ("POST", ["rooms"]) => create_room(st, body),
        ("GET", ["rooms"]) => list_rooms(st, req.query_string()),
        ("GET", ["rooms", name]) => match find(st, name) {
            Some(i) => (200, room_json(&st.domain, &st.rooms[i])),
            None => room_not_found(name),
        },
        ("POST", ["rooms", name]) => update_room(st, name, body),
        ("DELETE", ["rooms", name]) => match find(st, name) {
            Some(i) => {
                st.rooms.remove(i);
                (200, json!({ "deleted": true, "name": name }))
            }
            None => room_not_found(name),
        },
        ("GET", ["rooms", name, "presence"]) => match find(st, name) {
            Some(_) => (200, json!({ "total_count": 0, "data": [] })),
            None => room_not_found(name),
        },
        ("POST", ["meeting-tokens"]) => create_token(st, body),
        ("GET", ["meeting-tokens", token]) => check_token(st, token),
        _ => error(404, "not-found", "Unknown endpoint"),
    }
}

fn find(st: &State, name: &str) -> Option<usize> {
    st.rooms.iter().position(|r| r.name == name)
}

fn room_not_found(name: &str) -> Reply {
    error(404, "not-found", format!("The room {name} does not exist"))
}

fn room_json(domain: &str, r: &StoredRoom) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "api_created": true,
        "privacy": r.privacy,
        "url": format!("https://{domain}.daily.co/{}", r.name),
        "created_at": r.created_at,
        "config": r.config,
    })
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(error(
            400,
            "json-parsing-error",
            "The request body must be a JSON object",
        )),
        Err(e) => Err(error(
            400,
            "json-parsing-error",
            format!("Malformed JSON in request body: {e}"),
        )),
    }
}

fn only_keys(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), Reply> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(error(
            400,
            "invalid-request-error",
            format!("{k} is not a valid parameter"),
        )),
        None => Ok(()),
    }
}

fn properties(
    obj: &Map<String, Value>,
    table: &[(&str, Kind)],
) -> Result<Map<String, Value>, Reply> {
    let props = match obj.get("properties") {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(error(
                400,
                "invalid-request-error",
                "properties must be an object",
            ))
        }
    };
    for (key, value) in props {
        let Some((_, kind)) = table.iter().find(|(name, _)| *name == key.as_str()) else {
            return Err(error(
                400,
                "invalid-request-error",
                format!("properties.{key} is not a valid property"),
            ));
        };
        let ok = value.is_null()
            || match kind {
                Kind::Bool => value.is_boolean(),
                Kind::Number => value.is_number(),
                Kind::Integer => value.is_i64() || value.is_u64(),
                Kind::Str => value.is_string(),
            };
        if !ok {
            return Err(error(
                400,
                "invalid-request-error",
                format!("properties.{key} has the wrong type"),
            ));
        }
    }
    Ok(props.clone())
}

fn random_name() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

fn create_room(st: &mut State, body: &[u8]) -> Reply {
    let obj = match parse_object(body) {
        Ok(o) => o,
        Err(reply) => return reply,
    };
    if let Err(reply) = only_keys(&obj, &["name", "privacy", "properties"]) {
        return reply;
    }
    let privacy = match obj.get("privacy") {
        None | Some(Value::Null) => "public".to_owned(),
        Some(Value::String(p)) if p == "public" || p == "private" => p.clone(),
        Some(_) => {
            return error(
                400,
                "invalid-request-error",
                "privacy must be 'public' or 'private'",
            )
        }
    };
    let config = match properties(&obj, ROOM_PROPERTIES) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    let requested = match obj.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) if is_valid_room_name(n) => Some(n.clone()),
        Some(_) => {
            return error(
                400,
                "invalid-request-error",
                "name may only contain letters, numbers, '-' and '_'",
            )
        }
    };
    let name = match requested {
        Some(n) if !st.hipaa => n,
        _ => random_name(),
    };
    let clash = st.duplicate_next > 0 || find(st, &name).is_some();
    st.duplicate_next = st.duplicate_next.saturating_sub(1);
    if clash {
        return error(
            400,
            "invalid-request-error",
            format!("a room named {name} already exists"),
        );
    }
    let room = StoredRoom {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        privacy,
        created_at: Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        config: config.into_iter().filter(|(_, v)| !v.is_null()).collect(),
    };
    let reply = room_json(&st.domain, &room);
    st.rooms.push(room);
    (200, reply)
}

fn update_room(st: &mut State, name: &str, body: &[u8]) -> Reply {
    let Some(i) = find(st, name) else {
        return room_not_found(name);
    };
    let obj = match parse_object(body) {
        Ok(o) => o,
        Err(reply) => return reply,
    };
    if let Err(reply) = only_keys(&obj, &["privacy", "properties"]) {
        return reply;
    }
    let privacy = match obj.get("privacy") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if p == "public" || p == "private" => Some(p.clone()),
        Some(_) => {
            return error(
                400,
                "invalid-request-error",
                "privacy must be 'public' or 'private'",
            )
        }
    };
    let changes = match properties(&obj, ROOM_PROPERTIES) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    let room = &mut st.rooms[i];
    if let Some(p) = privacy {
        room.privacy = p;
    }
    for (key, value) in changes {
        // Daily resets a property to its default when it is set to null.
        if value.is_null() {
            room.config.remove(&key);
        } else {
            room.config.insert(key, value);
        }
    }
    (200, room_json(&st.domain, &st.rooms[i]))
}

fn list_rooms(st: &State, query: &str) -> Reply {
    let params = match web::Query::<HashMap<String, String>>::from_query(query) {
        Ok(q) => q.into_inner(),
        Err(e) => return error(400, "invalid-request-error", format!("bad query: {e}")),
    };
    let limit = match params.get("limit").map(|l| l.parse::<usize>()) {
        None => MAX_PAGE,
        Some(Ok(l)) if (1..=MAX_PAGE).contains(&l) => l,
        Some(_) => {
            return error(
                400,
                "invalid-request-error",
                "limit must be between 1 and 100",
            )
        }
    };
    // Newest first, as Daily lists them.
    let newest_first: Vec<&StoredRoom> = st.rooms.iter().rev().collect();
    let start = match params.get("starting_after") {
        Some(id) => match newest_first.iter().position(|r| &r.id == id) {
            Some(i) => i + 1,
            None => newest_first.len(),
        },
        None => 0,
    };
    let data: Vec<Value> = newest_first
        .iter()
        .skip(start)
        .take(limit)
        .map(|r| room_json(&st.domain, r))
        .collect();
    (200, json!({ "total_count": st.rooms.len(), "data": data }))
}

fn create_token(st: &mut State, body: &[u8]) -> Reply {
    let obj = match parse_object(body) {
        Ok(o) => o,
        Err(reply) => return reply,
    };
    if let Err(reply) = only_keys(&obj, &["properties"]) {
        return reply;
    }
    let props = match properties(&obj, TOKEN_PROPERTIES) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    if props
        .get("user_id")
        .and_then(Value::as_str)
        .is_some_and(|id| id.chars().count() > MAX_USER_ID_LEN)
    {
        return error(
            400,
            "invalid-request-error",
            format!("properties.user_id must be at most {MAX_USER_ID_LEN} characters"),
        );
    }
    let mut claims = Map::new();
    for (key, value) in &props {
        if value.is_null() {
            continue;
        }
        let claim = CLAIM_NAMES
            .iter()
            .find(|(prop, _)| *prop == key.as_str())
            .map_or(key.as_str(), |(_, claim)| *claim);
        claims.insert(claim.to_owned(), value.clone());
    }
    claims.insert("d".into(), json!(st.domain_id));
    claims.insert("iat".into(), json!(Utc::now().timestamp()));
    let claims = Value::Object(claims);
    let token = sign_jwt(st.api_key.as_bytes(), &claims);
    st.tokens.push(json!({
        "token": token,
        "claims": claims,
        "properties": props,
    }));
    (200, json!({ "token": token }))
}

fn check_token(st: &State, token: &str) -> Reply {
    let Some(claims) = verify_jwt(st.api_key.as_bytes(), token) else {
        return error(400, "invalid-request-error", "token is not valid");
    };
    let exp = claims.get("exp").and_then(Value::as_f64);
    if exp.is_some_and(|exp| exp < Utc::now().timestamp() as f64) {
        return error(400, "invalid-request-error", "token has expired");
    }
    let mut props = Map::new();
    if let Value::Object(claims) = claims {
        for (claim, value) in claims {
            if claim == "d" || claim == "iat" {
                continue;
            }
            let prop = CLAIM_NAMES
                .iter()
                .find(|(_, c)| *c == claim.as_str())
                .map_or(claim.as_str(), |(prop, _)| *prop);
            props.insert(prop.to_owned(), value);
        }
    }
    (200, Value::Object(props))
}

fn hs256(key: &[u8], input: &str) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(input.as_bytes());
    Some(mac)
}

fn sign_jwt(key: &[u8], claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let signature = hs256(key, &input)
        .map(|mac| URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
        .unwrap_or_default();
    format!("{input}.{signature}")
}

fn verify_jwt(key: &[u8], token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header_json: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header_json.get("alg").and_then(Value::as_str) != Some("HS256") {
        return None;
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    hs256(key, &format!("{header}.{payload}"))?
        .verify_slice(&signature)
        .ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi << 4) | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
