//! Shared test harness: a real server on a free port over a fresh database of either
//! backend, and a small HTTP/WebSocket client that talks to it the way a browser does.
#![allow(dead_code)]

pub mod oidc;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use nicehr_support::accounts::{self, NewHospitalInput, NewUserInput};
use nicehr_support::config::ServeArgs;
use nicehr_support::db::Db;
use nicehr_support::server::{self, SpawnedServer};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

pub const PASSWORD: &str = "correct-horse-battery";
pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend from an `async fn(Backend)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Backend::Sqlite).await }) +
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if $crate::common::postgres_available().await {
                    super::$name($crate::common::Backend::Postgres).await
                }
            }) +
        }
    };
}

/// PostgreSQL on 127.0.0.1:5432 is part of the test contract. Locally a missing server
/// skips the PostgreSQL half with a loud note; under `CI=true` it fails.
pub async fn postgres_available() -> bool {
    use diesel_async::AsyncConnection;
    let ok = tokio::time::timeout(
        Duration::from_secs(5),
        diesel_async::AsyncPgConnection::establish(&pg_admin_url()),
    )
    .await
    .map(|r| r.is_ok())
    .unwrap_or(false);
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "PostgreSQL is not reachable at {} and CI=true",
                pg_admin_url()
            );
        }
        eprintln!(
            "NOTE: PostgreSQL unreachable at {}; skipping the PostgreSQL half",
            pg_admin_url()
        );
    }
    ok
}

pub fn pg_admin_url() -> String {
    std::env::var("TEST_PG_ADMIN_URL").unwrap_or_else(|_| PG_ADMIN_URL.to_string())
}

/// A database that exists only for one test.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                TestDb {
                    url,
                    backend,
                    pg_name: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                use diesel_async::{AsyncConnection, SimpleAsyncConnection};
                let name = format!("nicehr_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = diesel_async::AsyncPgConnection::establish(&pg_admin_url())
                    .await
                    .expect("connect to PostgreSQL");
                conn.batch_execute(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create database");
                let base = pg_admin_url();
                let url = format!(
                    "{}/{}",
                    base.rsplit_once('/').map(|(b, _)| b).unwrap_or(&base),
                    name
                );
                TestDb {
                    url,
                    backend,
                    pg_name: Some(name),
                    _dir: None,
                }
            }
        }
    }

    /// Drops the PostgreSQL database out from under the server (for "database down").
    pub async fn kill(&self) {
        if let Some(name) = &self.pg_name {
            drop_pg(name).await;
        }
    }
}

async fn drop_pg(name: &str) {
    use diesel_async::{AsyncConnection, SimpleAsyncConnection};
    if let Ok(mut conn) = diesel_async::AsyncPgConnection::establish(&pg_admin_url()).await {
        let _ = conn
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Drop runs inside the test's runtime; a helper thread gets its own.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(drop_pg(&name));
                }
            })
            .join();
        }
    }
}

/// Configuration for tests: free port, quiet logs, short timers.
pub fn test_config(db: &TestDb) -> ServeArgs {
    test_config_for(&db.url)
}

pub fn test_config_for(url: &str) -> ServeArgs {
    let mut config = ServeArgs::defaults();
    config.db.database_url = url.to_string();
    config.db.db_pool_size = 4;
    config.db.db_timeout_secs = 3.0;
    config.bind = "127.0.0.1:0".parse().expect("address");
    config.http_workers = Some(2);
    config.offer_timeout_secs = 2.0;
    config.presence_grace_secs = 1.0;
    config.log_level = std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into());
    config.static_dir = Some(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static"));
    config
}

pub struct TestApp {
    pub server: Option<SpawnedServer>,
    pub db: TestDb,
    pub config: ServeArgs,
    pub url: String,
    pub ws_url: String,
    pub http: reqwest::Client,
    /// A second handle on the same database, for setting up data directly.
    pub store: Db,
    pub admin_token: String,
}

impl TestApp {
    pub async fn start(backend: Backend) -> TestApp {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut ServeArgs)) -> TestApp {
        let db = TestDb::new(backend).await;
        let mut config = test_config(&db);
        tweak(&mut config);
        Self::start_on(db, config).await
    }

    pub async fn start_on(db: TestDb, config: ServeArgs) -> TestApp {
        nicehr_support::telemetry::init(&config.log_level, config.log_format);
        let server = server::spawn(config.clone()).expect("server starts");
        let store = Db::connect(&config.db).await.expect("store connects");
        let url = server.url();
        let ws_url = server.ws_url();
        let mut app = TestApp {
            server: Some(server),
            db,
            config,
            url,
            ws_url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            store,
            admin_token: String::new(),
        };
        if nicehr_support::db::repo::users::by_email(&app.store, "root@test.local")
            .await
            .ok()
            .flatten()
            .is_none()
        {
            app.create_user_direct("root@test.local", "Root Admin", "admin", None)
                .await;
        }
        app.admin_token = app.login("root@test.local", PASSWORD).await;
        app
    }

    /// Stops the server (as if the process died) and starts a new one on the same database.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.kill();
        }
        let mut config = self.config.clone();
        config.bind = "127.0.0.1:0".parse().expect("address");
        let server = server::spawn(config).expect("server restarts");
        self.url = server.url();
        self.ws_url = server.ws_url();
        self.server = Some(server);
    }

    pub async fn create_user_direct(
        &self,
        email: &str,
        name: &str,
        role: &str,
        hospital_id: Option<i64>,
    ) -> i64 {
        accounts::create_user(
            &self.store,
            NewUserInput {
                email: email.into(),
                name: name.into(),
                role: role.into(),
                password: PASSWORD.into(),
                hospital_id: hospital_id.map(nicehr_support::model::HospitalId),
            },
            &accounts::PasswordPolicy::default(),
        )
        .await
        .expect("create user")
        .id
        .0
    }

    pub async fn create_hospital_direct(&self, name: &str, plan: &str) -> i64 {
        accounts::create_hospital(
            &self.store,
            NewHospitalInput {
                name: name.into(),
                plan: plan.into(),
                timezone: None,
            },
        )
        .await
        .expect("create hospital")
        .id
        .0
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .post(
                None,
                "/api/auth/login",
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(status, 200, "login of {email} failed: {body}");
        body["token"].as_str().expect("token").to_string()
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        token: Option<&str>,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{}", self.url, path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: no reply: {e:?}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn get(&self, token: Option<&str>, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, token, path, None).await
    }

    pub async fn post(&self, token: Option<&str>, path: &str, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::POST, token, path, Some(body))
            .await
    }

    pub async fn patch(&self, token: Option<&str>, path: &str, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::PATCH, token, path, Some(body))
            .await
    }

    pub async fn put(&self, token: Option<&str>, path: &str, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::PUT, token, path, Some(body))
            .await
    }

    pub async fn delete(&self, token: Option<&str>, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::DELETE, token, path, None)
            .await
    }

    pub async fn ws(&self, token: &str) -> WsClient {
        WsClient::connect(&format!("{}?token={}", self.ws_url, token)).await
    }

    /// A socket that resumes after `since` (`/ws?since=`).
    pub async fn ws_since(&self, token: &str, since: i64) -> WsClient {
        WsClient::connect(&format!("{}?token={}&since={since}", self.ws_url, token)).await
    }
}

/// Asserts API.md's error shape and returns the code.
pub fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "status for {body}");
    assert_eq!(body["error"], want_code, "error code in {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message in {body}"
    );
}

pub struct WsClient {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    /// Frames read while waiting for another type, kept for later `expect` calls.
    pub backlog: Vec<Value>,
    /// The server's first frame.
    pub hello: Value,
}

impl WsClient {
    pub async fn connect(url: &str) -> WsClient {
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects");
        let mut client = WsClient {
            stream,
            backlog: Vec::new(),
            hello: Value::Null,
        };
        let hello = client.expect("hello").await;
        assert!(
            hello["data"]["user"]["id"].is_i64(),
            "hello carries the user: {hello}"
        );
        client.hello = hello;
        client
    }

    pub async fn send(&mut self, kind: &str, data: Value) {
        self.send_raw(&json!({"type": kind, "data": data}).to_string())
            .await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.stream
            .send(Message::Text(text.to_string()))
            .await
            .expect("frame sent");
    }

    async fn next_frame(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(remaining, self.stream.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Some(serde_json::from_str(&text).expect("server frames are JSON"))
                }
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) => return None,
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_))) => return None,
                Err(_) => return None,
            }
        }
    }

    /// Waits (up to 10 s) for a frame of this type; other frames are kept in the backlog.
    pub async fn expect(&mut self, kind: &str) -> Value {
        self.expect_within(kind, Duration::from_secs(10)).await
    }

    pub async fn expect_within(&mut self, kind: &str, timeout: Duration) -> Value {
        if let Some(i) = self.backlog.iter().position(|f| f["type"] == kind) {
            return self.backlog.remove(i);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_frame(remaining).await {
                Some(frame) if frame["type"] == kind => return frame,
                Some(frame) => self.backlog.push(frame),
                None => panic!("no {kind} frame within {timeout:?}; saw {:?}", self.backlog),
            }
        }
    }

    /// Waits for a frame of this type matching a predicate.
    pub async fn expect_where(&mut self, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self
            .backlog
            .iter()
            .position(|f| f["type"] == kind && pred(f))
        {
            return self.backlog.remove(i);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_frame(remaining).await {
                Some(frame) if frame["type"] == kind && pred(&frame) => return frame,
                Some(frame) => self.backlog.push(frame),
                None => panic!("no matching {kind} frame; saw {:?}", self.backlog),
            }
        }
    }

    /// Asserts that no frame of this type arrives within `window` (nor waits in the
    /// backlog).
    pub async fn expect_none(&mut self, kind: &str, window: Duration) {
        assert!(
            !self.backlog.iter().any(|f| f["type"] == kind),
            "unexpected {kind} in backlog"
        );
        self.expect_none_where(kind, |_| true, window).await;
    }

    /// Asserts that no frame of this type matching a predicate arrives within `window`.
    /// Frames that arrived before the call (the backlog) are not looked at: they answer
    /// for what happened before the action under test.
    pub async fn expect_none_where(
        &mut self,
        kind: &str,
        pred: impl Fn(&Value) -> bool,
        window: Duration,
    ) {
        let deadline = tokio::time::Instant::now() + window;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if remaining.is_zero() {
                return;
            }
            match self.next_frame(remaining).await {
                Some(frame) if frame["type"] == kind && pred(&frame) => {
                    panic!("unexpected {kind}: {frame}")
                }
                Some(frame) => self.backlog.push(frame),
                None => return,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }

    /// Waits for the server to close the socket; returns its close code and reason,
    /// and every frame that arrived before the close.
    pub async fn expect_close(&mut self, within: Duration) -> (Option<(u16, String)>, Vec<Value>) {
        let deadline = tokio::time::Instant::now() + within;
        let mut frames = Vec::new();
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(remaining, self.stream.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    frames.push(serde_json::from_str(&text).expect("server frames are JSON"))
                }
                Ok(Some(Ok(Message::Close(close)))) => {
                    return (
                        close.map(|c| (u16::from(c.code), c.reason.to_string())),
                        frames,
                    )
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_))) | Ok(None) => return (None, frames),
                Err(_) => panic!("the socket was not closed within {within:?}; saw {frames:?}"),
            }
        }
    }

    /// Every frame that arrives within `window` (after the backlog).
    pub async fn collect(&mut self, window: Duration) -> Vec<Value> {
        let mut frames = std::mem::take(&mut self.backlog);
        let deadline = tokio::time::Instant::now() + window;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if remaining.is_zero() {
                return frames;
            }
            match self.next_frame(remaining).await {
                Some(frame) => frames.push(frame),
                None => return frames,
            }
        }
    }
}

/// A hospital with people in it, for dispatch tests.
pub struct Ward {
    pub hospital_id: i64,
    pub plan: &'static str,
}

impl TestApp {
    pub async fn ward(&self, name: &str, plan: &'static str) -> Ward {
        Ward {
            hospital_id: self.create_hospital_direct(name, plan).await,
            plan,
        }
    }

    /// A user with a token.
    pub async fn person(&self, email: &str, role: &str, hospital_id: Option<i64>) -> Person {
        let id = self
            .create_user_direct(email, email, role, hospital_id)
            .await;
        let token = self.login(email, PASSWORD).await;
        Person { id, token }
    }

    /// A consultant with specialties, connected on a socket and set available.
    pub async fn consultant(
        &self,
        email: &str,
        specialties: &[(&str, &str)],
    ) -> (Person, WsClient) {
        let person = self.person(email, "consultant", None).await;
        let list: Vec<Value> = specialties
            .iter()
            .map(|(d, p)| json!({"department": d, "proficiency": p}))
            .collect();
        let (status, body) = self
            .post(
                Some(&person.token),
                "/api/consultants/specialties",
                json!({"specialties": list}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let mut ws = self.ws(&person.token).await;
        self.set_status(&person, "available").await;
        ws.expect_where("consultant_status_changed", |f| {
            f["data"]["consultant_id"] == person.id && f["data"]["status"] == "available"
        })
        .await;
        (person, ws)
    }

    pub async fn set_status(&self, person: &Person, status: &str) {
        let (code, body) = self
            .post(
                Some(&person.token),
                "/api/consultants/status",
                json!({"status": status}),
            )
            .await;
        assert_eq!(code, 200, "{body}");
    }

    /// POSTs a request and returns (session id, full reply).
    pub async fn request_support(
        &self,
        person: &Person,
        department: &str,
        urgency: &str,
    ) -> (i64, Value) {
        let (status, body) = self
            .post(Some(&person.token), "/api/support/request", json!({"department": department, "urgency": urgency, "issue_summary": "Printer for wristbands jams"}))
            .await;
        assert_eq!(status, 201, "{body}");
        (body["session"]["id"].as_i64().expect("session id"), body)
    }

    /// Waits until the dispatcher has offered this waiting request to someone (as
    /// the admin's queue shows it) and returns who. Dispatch is asynchronous: a
    /// test that needs the offer to exist before its next step waits for it here.
    pub async fn offered_to(&self, session_id: i64) -> i64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let (_, queue) = self
                .get(Some(&self.admin_token), "/api/support/queue")
                .await;
            let holder = queue["queue"].as_array().and_then(|q| {
                q.iter()
                    .find(|e| e["session"]["id"] == session_id)
                    .and_then(|e| e["offered_to"].as_i64())
            });
            if let Some(holder) = holder {
                return holder;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "request {session_id} was never offered: {queue}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub struct Person {
    pub id: i64,
    pub token: String,
}

impl WsClient {
    /// Where this socket joined the stream (the hello's `last_event_id`).
    pub fn joined_at(&self) -> i64 {
        self.hello["data"]["last_event_id"]
            .as_i64()
            .expect("hello carries last_event_id")
    }

    /// Waits for an offer of this session; returns its `match` object.
    pub async fn expect_offer(&mut self, session_id: i64) -> Value {
        let frame = self
            .expect_where("support_request_offered", |f| {
                f["data"]["session"]["id"] == session_id
            })
            .await;
        frame["data"]["match"].clone()
    }
}

/// The API key the tests' Daily stand-ins are started with.
pub const DAILY_TEST_KEY: &str = "test-daily-key";

/// Points the server at a Daily stand-in (started with [`DAILY_TEST_KEY`]), with
/// backoffs and sweeps short enough for tests. The per-attempt timeout stays at a
/// few seconds so a loaded machine does not turn a normal call into a retry; the
/// slow-Daily tests shorten it themselves.
pub fn use_daily(config: &mut ServeArgs, standin: &nicehr_support::video::DailyStandIn) {
    config.daily_api_key = Some(DAILY_TEST_KEY.into());
    config.daily_domain = Some(standin.domain());
    config.daily_api_url = standin.base_url();
    config.daily_timeout_secs = 3.0;
    config.daily_max_retries = 2;
    config.daily_backoff_ms = 20;
    config.room_sweep_secs = 0.2;
}
