//! Issue 8: bad input, database faults, crashes and restarts, access and isolation,
//! and the HIPAA-minded guarantees (audit, no patient data in logs).

mod common;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{assert_error, Backend, TestApp, TestDb, PASSWORD};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{json, Value};

backend_tests!(
    every_endpoint_answers_bad_bodies_with_a_clear_4xx,
    odd_text_is_stored_verbatim_and_returned_safely,
    locked_or_dead_database_gives_503_and_writes_nothing,
    websocket_origin_is_checked,
    reading_a_session_is_audited,
    access_matrix_by_endpoint_and_role,
    // issue 16
    simultaneous_guesses_cannot_outrun_the_throttle,
    password_spraying_from_one_address_is_throttled,
    an_attacker_cannot_lock_a_nurse_out_and_admins_can_unlock,
    hostile_inputs_get_the_same_4xx_on_both_backends,
    weak_passwords_are_refused_with_a_reason,
    request_and_cancel_loops_are_rate_limited,
    sockets_per_user_are_capped,
    a_socket_flooding_frames_is_closed_with_1008,
    ping_without_data_pongs_and_fragments_are_reassembled,
    origin_is_checked_against_configuration_not_client_headers,
    a_trickled_body_is_cut_off,
);

/// (method, path template, a valid-shaped body) for every JSON endpoint.
fn endpoints(session: i64) -> Vec<(&'static str, String, Value)> {
    vec![
        (
            "POST",
            "/api/auth/login".into(),
            json!({"email": "a@b.org", "password": "x"}),
        ),
        (
            "POST",
            "/api/admin/hospitals".into(),
            json!({"name": "H", "plan": "basic"}),
        ),
        (
            "POST",
            "/api/admin/users".into(),
            json!({"email": "a@b.org", "name": "A", "role": "consultant", "password": "violet-harbour-lantern-84"}),
        ),
        (
            "POST",
            "/api/admin/assignments".into(),
            json!({"consultant_id": 1, "hospital_id": 1}),
        ),
        (
            "POST",
            "/api/support/request".into(),
            json!({"department": "ER", "issue_summary": "x"}),
        ),
        (
            "POST",
            format!("/api/support/end/{session}"),
            json!({"resolved": true}),
        ),
        (
            "POST",
            format!("/api/support/rate/{session}"),
            json!({"rating": 5}),
        ),
        (
            "POST",
            "/api/consultants/status".into(),
            json!({"status": "available"}),
        ),
        (
            "POST",
            "/api/consultants/specialties".into(),
            json!({"specialties": []}),
        ),
        (
            "POST",
            "/api/consultants/auto_accept".into(),
            json!({"enabled": true}),
        ),
        (
            "PUT",
            "/api/support/preferences".into(),
            json!({"consultant_ids": []}),
        ),
    ]
}

async fn every_endpoint_answers_bad_bodies_with_a_clear_4xx(backend: Backend) {
    let app = TestApp::start(backend).await;
    let ward = app.ward("H", "enterprise").await;
    let staff = app
        .person("s@h.org", "hospital_staff", Some(ward.hospital_id))
        .await;
    let consultant = app.person("c@c.org", "consultant", None).await;
    let bad_bodies: Vec<String> = vec![
        "{".into(),
        "[]".into(),
        "null".into(),
        "\"just a string\"".into(),
        "{\"department\": 5}".into(),
        "{\"rating\": \"five\", \"status\": [], \"email\": {}}".into(),
        "{\"unknown_field\": true}".into(),
        format!("{{\"name\": \"{}\"}}", "x".repeat(10_000)),
        "{\"rating\": 99999999999999999999999}".into(),
        "{\"consultant_id\": -1, \"hospital_id\": -7}".into(),
        "{\"email\": \"\\u0000\", \"password\": \"\\ud800\"}".into(),
    ];
    let tokens = [&app.admin_token, &staff.token, &consultant.token];
    let sessions_before = stored_sessions(&app).await;
    for (method, path, _) in endpoints(999_999) {
        for token in tokens {
            for body in &bad_bodies {
                let m = if method == "PUT" {
                    reqwest::Method::PUT
                } else {
                    reqwest::Method::POST
                };
                let resp = app
                    .http
                    .request(m, format!("{}{}", app.url, path))
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("server answers");
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                assert!(
                    (400..500).contains(&status),
                    "{method} {path} with {body:.60}: {status} {text:.200}"
                );
                let parsed: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|_| panic!("JSON error body for {path}: {text}"));
                assert!(
                    parsed["error"].is_string() && parsed["message"].is_string(),
                    "{path}: {parsed}"
                );
            }
        }
    }
    // Negative and unknown ids in paths.
    for path in [
        "/api/support/accept/-1",
        "/api/support/cancel/0",
        "/api/support/join/999999",
        "/api/support/end/abc",
    ] {
        let (status, body) = app.post(Some(&app.admin_token), path, json!({})).await;
        assert!((400..500).contains(&status), "{path}: {status} {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    let sessions_after = stored_sessions(&app).await;
    assert_eq!(sessions_before, sessions_after, "no partial rows");
    assert_eq!(app.get(None, "/healthz").await.0, 200, "still up");
}

async fn odd_text_is_stored_verbatim_and_returned_safely(backend: Backend) {
    let app = TestApp::start(backend).await;
    let ward = app.ward("H", "enterprise").await;
    let staff = app
        .person("s@h.org", "hospital_staff", Some(ward.hospital_id))
        .await;
    let nasty = "Robert'); DROP TABLE support_sessions;-- <script>alert(1)</script> \u{202e}ÄÖÜ 🩺 \"quoted\"\nline";
    let (status, body) = app
        .post(
            Some(&staff.token),
            "/api/support/request",
            json!({"department": "ER", "issue_summary": nasty}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, history) = app.get(Some(&staff.token), "/api/support/history").await;
    assert_eq!(history["sessions"][0]["issue_summary"], nasty);
    // Control characters are refused rather than stored.
    let (status, body) = app
        .post(Some(&app.admin_token), "/api/support/request", json!({"department": "ER", "issue_summary": "bell\u{7}", "hospital_id": ward.hospital_id}))
        .await;
    assert_error(status, &body, 400, "validation_failed");
}

async fn locked_or_dead_database_gives_503_and_writes_nothing(backend: Backend) {
    match backend {
        Backend::Sqlite => {
            let app = TestApp::start_with(backend, |c| {
                c.db.sqlite_busy_timeout_ms = 300;
                c.db.db_timeout_secs = 2.0;
            })
            .await;
            let ward = app.ward("H", "enterprise").await;
            let staff = app
                .person("s@h.org", "hospital_staff", Some(ward.hospital_id))
                .await;
            let path = app.db.url.trim_start_matches("sqlite://").to_string();
            let locker = std::thread::spawn(move || {
                use diesel::connection::SimpleConnection;
                use diesel::Connection;
                let mut conn = diesel::SqliteConnection::establish(&path).unwrap();
                conn.batch_execute("BEGIN EXCLUSIVE").unwrap();
                std::thread::sleep(Duration::from_millis(1500));
                conn.batch_execute("ROLLBACK").unwrap();
            });
            tokio::time::sleep(Duration::from_millis(100)).await;
            let (status, body) = app
                .post(
                    Some(&staff.token),
                    "/api/support/request",
                    json!({"department": "ER", "issue_summary": "locked"}),
                )
                .await;
            assert_error(status, &body, 503, "unavailable");
            locker.join().unwrap();
            // Recovers by itself, and the refused request left nothing behind.
            let (status, body) = app
                .post(
                    Some(&staff.token),
                    "/api/support/request",
                    json!({"department": "ER", "issue_summary": "after"}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            let (_, history) = app.get(Some(&staff.token), "/api/support/history").await;
            let summaries: Vec<&str> = history["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["issue_summary"].as_str().unwrap())
                .collect();
            assert_eq!(summaries, vec!["after"]);
        }
        Backend::Postgres => {
            // The server reaches PostgreSQL through a proxy the test can cut, as if the
            // database host went away mid-run.
            let db = TestDb::new(backend).await;
            let proxy = Proxy::start("127.0.0.1:5432").await;
            let mut config = common::test_config(&db);
            config.db.database_url = db.url.replace("127.0.0.1:5432", &proxy.addr);
            config.db.db_timeout_secs = 1.0;
            let app = TestApp::start_on(db, config).await;
            let ward = app.ward("H", "enterprise").await;
            let staff = app
                .person("s@h.org", "hospital_staff", Some(ward.hospital_id))
                .await;
            proxy.cut().await;
            let (status, body) = app
                .post(
                    Some(&staff.token),
                    "/api/support/request",
                    json!({"department": "ER", "issue_summary": "down"}),
                )
                .await;
            assert!(status == 503 || status == 401, "{status} {body}");
            assert!(
                body["error"] == "unavailable" || body["error"] == "unauthenticated",
                "{body}"
            );
            let (status, body) = app.get(None, "/healthz").await;
            assert_error(status, &body, 503, "unavailable");
            proxy.set_up(true);
            // The pool recovers by itself once the database is reachable again.
            let mut recovered = false;
            for _ in 0..50 {
                if app.get(None, "/healthz").await.0 == 200 {
                    recovered = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(recovered, "healthz recovers");
            let (status, body) = app
                .post(
                    Some(&staff.token),
                    "/api/support/request",
                    json!({"department": "ER", "issue_summary": "back"}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            let (_, history) = app.get(Some(&staff.token), "/api/support/history").await;
            assert_eq!(
                history["sessions"].as_array().unwrap().len(),
                1,
                "{history}"
            );
        }
    }
}

async fn websocket_origin_is_checked(backend: Backend) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = TestApp::start(backend).await;
    let url = format!("{}?token={}", app.ws_url, app.admin_token);
    let mut evil = url.clone().into_client_request().unwrap();
    evil.headers_mut()
        .insert("Origin", "https://evil.example".parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(evil).await.is_err(),
        "a foreign origin is refused"
    );
    let mut own = url.into_client_request().unwrap();
    own.headers_mut().insert("Origin", app.url.parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(own).await.is_ok(),
        "the server's own origin is allowed"
    );
}

async fn reading_a_session_is_audited(backend: Backend) {
    let app = TestApp::start(backend).await;
    let ward = app.ward("H", "enterprise").await;
    let staff = app
        .person("s@h.org", "hospital_staff", Some(ward.hospital_id))
        .await;
    let (sid, _) = app.request_support(&staff, "ER", "normal").await;
    let before = nicehr_support::db::repo::audit::count_for(&app.store, "support_session", sid)
        .await
        .unwrap();
    app.get(Some(&staff.token), &format!("/api/support/sessions/{sid}"))
        .await;
    app.get(
        Some(&app.admin_token),
        &format!("/api/support/sessions/{sid}"),
    )
    .await;
    let after = nicehr_support::db::repo::audit::count_for(&app.store, "support_session", sid)
        .await
        .unwrap();
    assert_eq!(after, before + 2);
}

/// A TCP proxy that can refuse and cut connections on demand.
struct Proxy {
    addr: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Connections currently forwarded: `cut` waits for this to reach zero, so a
    /// busy machine cannot leave an old connection working after the cut.
    live: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Proxy {
    async fn start(upstream: &'static str) -> Proxy {
        use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
        use std::sync::Arc;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let up = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(AtomicU64::new(0));
        let live = Arc::new(AtomicUsize::new(0));
        let (up2, gen2, live2) = (up.clone(), generation.clone(), live.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let my_gen = gen2.load(Ordering::SeqCst);
                let gen3 = gen2.clone();
                let live3 = live2.clone();
                live3.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    struct Gone(Arc<AtomicUsize>);
                    impl Drop for Gone {
                        fn drop(&mut self) {
                            self.0.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                    let _gone = Gone(live3);
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                    let watch = async {
                        while gen3.load(Ordering::SeqCst) == my_gen {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! { _ = copy => {}, _ = watch => {} }
                });
            }
        });
        Proxy {
            addr,
            up,
            generation,
            live,
        }
    }

    /// Down, and returns only once every forwarded connection is closed.
    async fn cut(&self) {
        use std::sync::atomic::Ordering;
        self.set_up(false);
        for _ in 0..250 {
            if self.live.load(Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the proxy could not close its connections within 5 s");
    }

    /// Down: existing connections are cut and new ones refused.
    fn set_up(&self, up: bool) {
        use std::sync::atomic::Ordering;
        self.up.store(up, Ordering::SeqCst);
        if !up {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }
}

// ---- whole-process tests: the real binary, killed with SIGKILL ----------------------

struct ServerProcess {
    child: Child,
    url: String,
    log: std::path::PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_binary(database_url: &str, log: &std::path::Path, level: &str) -> ServerProcess {
    let port = free_port();
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_nicehr-support"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", database_url)
        .env("LOG_LEVEL", level)
        .env_remove("RUST_LOG")
        .env("STATIC_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/static"))
        .stdout(Stdio::from(log_file.try_clone().unwrap()))
        .stderr(Stdio::from(log_file))
        .spawn()
        .expect("binary starts");
    ServerProcess {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log: log.to_path_buf(),
    }
}

async fn wait_healthy(url: &str) {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{url}/healthz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server at {url} never became healthy");
}

async fn provision(db: &nicehr_support::db::Db, staff: usize) -> (i64, Vec<String>) {
    use nicehr_support::accounts::{self, NewHospitalInput, NewUserInput};
    let hospital = accounts::create_hospital(
        db,
        NewHospitalInput {
            name: "Crash General".into(),
            plan: "enterprise".into(),
            timezone: None,
        },
    )
    .await
    .unwrap()
    .id;
    let mut emails = Vec::new();
    for i in 0..staff {
        let email = format!("s{i}@crash.org");
        accounts::create_user(
            db,
            NewUserInput {
                email: email.clone(),
                name: email.clone(),
                role: "hospital_staff".into(),
                password: PASSWORD.into(),
                hospital_id: Some(hospital),
            },
            &accounts::PasswordPolicy::default(),
        )
        .await
        .unwrap();
        emails.push(email);
    }
    accounts::create_user(
        db,
        NewUserInput {
            email: "root@crash.org".into(),
            name: "Root".into(),
            role: "admin".into(),
            password: PASSWORD.into(),
            hospital_id: None,
        },
        &accounts::PasswordPolicy::default(),
    )
    .await
    .unwrap();
    accounts::create_user(
        db,
        NewUserInput {
            email: "c@crash.org".into(),
            name: "C".into(),
            role: "consultant".into(),
            password: PASSWORD.into(),
            hospital_id: None,
        },
        &accounts::PasswordPolicy::default(),
    )
    .await
    .unwrap();
    (hospital.0, emails)
}

async fn login(client: &reqwest::Client, url: &str, email: &str) -> String {
    let r: Value = client
        .post(format!("{url}/api/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["token"].as_str().unwrap().to_string()
}

async fn sigkill_under_load_loses_nothing_acknowledged(backend: Backend) {
    let db = TestDb::new(backend).await;
    let args = nicehr_support::config::DatabaseArgs {
        database_url: db.url.clone(),
        db_pool_size: 2,
        db_timeout_secs: 5.0,
        sqlite_busy_timeout_ms: 5000,
    };
    let store = nicehr_support::db::Db::connect(&args).await.unwrap();
    let (_, emails) = provision(&store, 30).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let mut server = start_binary(&db.url, &log, "warn");
    wait_healthy(&server.url).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let consultant = login(&client, &server.url, "c@crash.org").await;
    client
        .post(format!("{}/api/consultants/status", server.url))
        .bearer_auth(&consultant)
        .json(&json!({"status": "available"}))
        .send()
        .await
        .unwrap();
    let mut tokens = Vec::new();
    for email in &emails {
        tokens.push(login(&client, &server.url, email).await);
    }
    // Fire requests from every staff member at once, accept some, and kill the
    // process while replies are still in flight.
    let url = server.url.clone();
    let mut tasks = Vec::new();
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for (i, token) in tokens.iter().enumerate() {
        let (client, url, token, acked) =
            (client.clone(), url.clone(), token.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis((i as u64 % 10) * 15)).await;
            let resp = client
                .post(format!("{url}/api/support/request"))
                .bearer_auth(&token)
                .json(&json!({"department": "ER", "urgency": "urgent", "issue_summary": format!("request {i}")}))
                .send()
                .await
                .ok()?;
            if resp.status().as_u16() != 201 {
                return None;
            }
            let body: Value = resp.json().await.ok()?;
            acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            body["session"]["id"].as_i64()
        }));
    }
    let accepter = {
        let (client, url, consultant) = (client.clone(), url.clone(), consultant.clone());
        tokio::spawn(async move {
            let mut accepted = Vec::new();
            for _ in 0..20 {
                let queue: Value = match client
                    .get(format!("{url}/api/support/queue"))
                    .bearer_auth(&consultant)
                    .send()
                    .await
                {
                    Ok(r) => r.json().await.unwrap_or(Value::Null),
                    Err(_) => break,
                };
                if let Some(entry) = queue["queue"]
                    .as_array()
                    .and_then(|q| q.iter().find(|e| e["offered_to"].is_i64()))
                {
                    let sid = entry["session"]["id"].as_i64().unwrap_or_default();
                    if let Ok(r) = client
                        .post(format!("{url}/api/support/accept/{sid}"))
                        .bearer_auth(&consultant)
                        .send()
                        .await
                    {
                        if r.status().as_u16() == 200 {
                            accepted.push(sid);
                            let _ = client
                                .post(format!("{url}/api/support/end/{sid}"))
                                .bearer_auth(&consultant)
                                .json(&json!({}))
                                .send()
                                .await;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            accepted
        })
    };
    // Kill as soon as a few requests are acknowledged, while the rest are in flight
    // (waiting on the count, not a fixed delay, keeps this right on a slow machine).
    for _ in 0..400 {
        if acked.load(std::sync::atomic::Ordering::SeqCst) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().expect("SIGKILL");
    let _ = server.child.wait();
    let mut acknowledged = HashSet::new();
    for task in tasks {
        if let Ok(Some(id)) = task.await {
            acknowledged.insert(id);
        }
    }
    let _ = accepter.await;

    let mut server = start_binary(&db.url, &log, "warn");
    wait_healthy(&server.url).await;
    let admin = login(&client, &server.url, "root@crash.org").await;
    let history: Value = client
        .get(format!("{}/api/support/history?limit=500", server.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sessions = history["sessions"].as_array().unwrap();
    let stored: HashSet<i64> = sessions.iter().map(|s| s["id"].as_i64().unwrap()).collect();
    for id in &acknowledged {
        assert!(
            stored.contains(id),
            "acknowledged request {id} survived the crash"
        );
    }
    let queue: Value = client
        .get(format!("{}/api/support/queue", server.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let queued: HashSet<i64> = queue["queue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["session"]["id"].as_i64().unwrap())
        .collect();
    for s in sessions {
        let id = s["id"].as_i64().unwrap();
        match s["status"].as_str().unwrap() {
            "pending" => {
                assert!(queued.contains(&id), "pending {id} is back in the queue");
                assert!(s["consultant_id"].is_null() && s["accepted_at"].is_null());
            }
            "connecting" | "active" => assert!(
                s["consultant_id"].is_i64() && s["accepted_at"].is_string(),
                "{s}"
            ),
            "completed" => assert!(
                s["ended_at"].is_string()
                    && s["duration_seconds"].is_i64()
                    && s["consultant_id"].is_i64(),
                "{s}"
            ),
            "cancelled" => assert!(s["ended_at"].is_string(), "{s}"),
            other => panic!("impossible status {other}"),
        }
    }
    assert!(
        !acknowledged.is_empty(),
        "some requests were acknowledged before the kill"
    );
    let _ = server.child.kill();
    let _ = server.child.wait();
    let _ = &server.log;
}

async fn no_patient_data_reaches_the_logs(backend: Backend) {
    let db = TestDb::new(backend).await;
    let args = nicehr_support::config::DatabaseArgs {
        database_url: db.url.clone(),
        db_pool_size: 2,
        db_timeout_secs: 5.0,
        sqlite_busy_timeout_ms: 5000,
    };
    let store = nicehr_support::db::Db::connect(&args).await.unwrap();
    provision(&store, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let mut server = start_binary(&db.url, &log, "debug");
    wait_healthy(&server.url).await;
    let client = reqwest::Client::new();
    let url = server.url.clone();
    let nurse = login(&client, &url, "s0@crash.org").await;
    let consultant = login(&client, &url, "c@crash.org").await;
    client
        .post(format!("{url}/api/consultants/status"))
        .bearer_auth(&consultant)
        .json(&json!({"status": "available"}))
        .send()
        .await
        .unwrap();
    let summary = "SECRET-SUMMARY patient Jane Roe MRN 00123";
    let notes = "SECRET-NOTES dosage changed";
    let feedback = "SECRET-FEEDBACK thanks";
    let r: Value = client
        .post(format!("{url}/api/support/request"))
        .bearer_auth(&nurse)
        .json(&json!({"department": "ER", "issue_summary": summary}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sid = r["session"]["id"].as_i64().unwrap();
    for _ in 0..50 {
        let a = client
            .post(format!("{url}/api/support/accept/{sid}"))
            .bearer_auth(&consultant)
            .send()
            .await
            .unwrap();
        if a.status().is_success() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
        .post(format!("{url}/api/support/end/{sid}"))
        .bearer_auth(&consultant)
        .json(&json!({"resolution_notes": notes, "resolved": true}))
        .send()
        .await
        .unwrap();
    client
        .post(format!("{url}/api/support/rate/{sid}"))
        .bearer_auth(&nurse)
        .json(&json!({"rating": 5, "feedback": feedback}))
        .send()
        .await
        .unwrap();
    client
        .get(format!("{url}/api/support/history"))
        .bearer_auth(&nurse)
        .send()
        .await
        .unwrap();
    // Bad input that echoes text back must not be logged either.
    client
        .post(format!("{url}/api/support/request"))
        .bearer_auth(&nurse)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"issue_summary\": \"{summary}\", \"bogus\": 1}}"
        ))
        .send()
        .await
        .unwrap();
    let _ = server.child.kill();
    let _ = server.child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("support requested"),
        "the log was captured: {text:.500}"
    );
    for secret in [
        "SECRET-SUMMARY",
        "SECRET-NOTES",
        "SECRET-FEEDBACK",
        "Jane Roe",
    ] {
        assert!(!text.contains(secret), "{secret} leaked into the log");
    }
}

mod process_sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigkill_under_load_loses_nothing_acknowledged() {
        super::sigkill_under_load_loses_nothing_acknowledged(super::Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_patient_data_reaches_the_logs() {
        super::no_patient_data_reaches_the_logs(super::Backend::Sqlite).await
    }
}

mod process_postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigkill_under_load_loses_nothing_acknowledged() {
        if crate::common::postgres_available().await {
            super::sigkill_under_load_loses_nothing_acknowledged(super::Backend::Postgres).await
        }
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_patient_data_reaches_the_logs() {
        if crate::common::postgres_available().await {
            super::no_patient_data_reaches_the_logs(super::Backend::Postgres).await
        }
    }
}

// ---- property tests: frame and body parsing never panics and never accepts junk -----

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, .. ProptestConfig::default() })]

    /// Any text at all: parsing either yields a frame or an error, never a panic.
    #[test]
    fn client_frame_parsing_never_panics(text in ".{0,300}") {
        let _ = nicehr_support::ws::frames::ClientFrame::parse(&text);
    }

    /// Structured junk under known frame types is refused unless it is well-formed.
    #[test]
    fn frames_with_junk_data_are_refused(kind in prop::sample::select(vec!["accept", "decline", "presence", "signal", "call_joined", "call_left"]), data in arbitrary_json()) {
        let text = json!({"type": kind, "data": data}).to_string();
        if let Ok(frame) = nicehr_support::ws::frames::ClientFrame::parse(&text) {
            // Only a well-formed payload may parse: it must carry the field its type needs.
            let has = |field: &str| data.is_object() && data.get(field).is_some();
            let ok = match frame {
                nicehr_support::ws::frames::ClientFrame::Presence(_) => has("status"),
                nicehr_support::ws::frames::ClientFrame::Ping(_) => true,
                _ => has("session_id"),
            };
            prop_assert!(ok, "{text}");
        }
    }
}

/// Random bodies against the real server: always a 4xx or a 201, never a 5xx or a dead
/// server, and exactly one stored row per 201.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_request_bodies_never_break_the_server() {
    let app = TestApp::start(Backend::Sqlite).await;
    let ward = app.ward("H", "enterprise").await;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 150,
        ..ProptestConfig::default()
    });
    let mut bodies = Vec::new();
    let strategy = prop::collection::btree_map(
        prop::sample::select(vec![
            "department",
            "urgency",
            "issue_summary",
            "consultant_id",
            "wait_for_consultant",
            "hospital_id",
            "x",
        ]),
        arbitrary_json(),
        0..6,
    );
    for _ in 0..150 {
        let tree = strategy.new_tree(&mut runner).unwrap();
        bodies.push(Value::Object(
            tree.current()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        ));
    }
    let mut created = 0;
    for (i, mut body) in bodies.into_iter().enumerate() {
        // A fresh requester each time: one live request per person.
        let staff = app
            .person(
                &format!("p{i}@h.org"),
                "hospital_staff",
                Some(ward.hospital_id),
            )
            .await;
        if i % 3 == 0 {
            body["department"] = json!("ER");
        }
        let (status, resp) = app
            .post(Some(&staff.token), "/api/support/request", body.clone())
            .await;
        assert!(
            status == 201 || (400..500).contains(&status),
            "{body} → {status} {resp}"
        );
        if status == 201 {
            created += 1;
        } else {
            assert!(resp["error"].is_string(), "{resp}");
        }
    }
    let (_, history) = app
        .get(Some(&app.admin_token), "/api/support/history?limit=500")
        .await;
    assert_eq!(history["sessions"].as_array().unwrap().len(), created);
    assert_eq!(app.get(None, "/healthz").await.0, 200);
}

/// Every JSON endpoint gets its valid-shaped body with random values swapped in and
/// random fields added: always a success or a 4xx in the error shape, never a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_bodies_to_every_endpoint_never_get_a_5xx() {
    const CASES_PER_ENDPOINT: usize = 60;
    let app = TestApp::start(Backend::Sqlite).await;
    let ward = app.ward("H", "enterprise").await;
    let staff = app
        .person("s@h.org", "hospital_staff", Some(ward.hospital_id))
        .await;
    let (sid, _) = app.request_support(&staff, "ER", "normal").await;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let swap = (
        prop::collection::vec(prop::option::weighted(0.4, arbitrary_json()), 8),
        prop::option::weighted(0.2, ("[a-z_]{1,10}", arbitrary_json())),
    );
    for (method, path, shape) in endpoints(sid) {
        let m = if method == "PUT" {
            reqwest::Method::PUT
        } else {
            reqwest::Method::POST
        };
        for _ in 0..CASES_PER_ENDPOINT {
            let (values, extra) = swap.new_tree(&mut runner).unwrap().current();
            let mut body = shape.clone();
            if let Some(object) = body.as_object_mut() {
                for ((_, value), new) in object.iter_mut().zip(values) {
                    if let Some(new) = new {
                        *value = new;
                    }
                }
                if let Some((key, value)) = extra {
                    object.insert(key, value);
                }
            }
            for token in [&app.admin_token, &staff.token] {
                let (status, reply) = app
                    .request(m.clone(), Some(token), &path, Some(body.clone()))
                    .await;
                assert!(status < 500, "{method} {path} {body} → {status} {reply}");
                if status >= 400 {
                    assert!(
                        reply["error"].is_string() && reply["message"].is_string(),
                        "{path}: {reply}"
                    );
                }
            }
        }
    }
    assert_eq!(app.get(None, "/healthz").await.0, 200);
}

/// DESIGN.md §8 row by row: for each endpoint, which roles are refused with 403.
/// "Allowed" means anything but 401/403 (the call may still be a 404 or 409).
async fn access_matrix_by_endpoint_and_role(backend: Backend) {
    let app = TestApp::start(backend).await;
    let ward = app.ward("H", "enterprise").await;
    let staff = app
        .person("s@h.org", "hospital_staff", Some(ward.hospital_id))
        .await;
    let leader = app
        .person("l@h.org", "hospital_leadership", Some(ward.hospital_id))
        .await;
    let consultant = app.person("c@c.org", "consultant", None).await;
    let admin = app.admin_token.clone();
    let roles = [
        ("admin", &admin),
        ("consultant", &consultant.token),
        ("hospital_staff", &staff.token),
        ("hospital_leadership", &leader.token),
    ];
    // (method, path, body, roles allowed)
    let table: Vec<(&str, &str, Value, &[&str])> = vec![
        (
            "GET",
            "/api/support/queue",
            Value::Null,
            &["admin", "consultant"],
        ),
        (
            "POST",
            "/api/support/accept/999999",
            json!({}),
            &["admin", "consultant"],
        ),
        (
            "POST",
            "/api/support/decline/999999",
            json!({}),
            &["consultant"],
        ),
        (
            "POST",
            "/api/consultants/status",
            json!({"status": "available"}),
            &["admin", "consultant"],
        ),
        (
            "POST",
            "/api/consultants/specialties",
            json!({"specialties": []}),
            &["admin", "consultant"],
        ),
        (
            "POST",
            "/api/consultants/auto_accept",
            json!({"enabled": false}),
            &["admin", "consultant"],
        ),
        (
            "GET",
            "/api/consultants/available",
            Value::Null,
            &[
                "admin",
                "consultant",
                "hospital_staff",
                "hospital_leadership",
            ],
        ),
        (
            "GET",
            "/api/support/history",
            Value::Null,
            &[
                "admin",
                "consultant",
                "hospital_staff",
                "hospital_leadership",
            ],
        ),
        (
            "GET",
            "/api/support/active",
            Value::Null,
            &[
                "admin",
                "consultant",
                "hospital_staff",
                "hospital_leadership",
            ],
        ),
        (
            "GET",
            "/api/support/preferences",
            Value::Null,
            &["hospital_staff", "hospital_leadership"],
        ),
        (
            "PUT",
            "/api/support/preferences",
            json!({"consultant_ids": []}),
            &["hospital_staff", "hospital_leadership"],
        ),
        (
            "POST",
            "/api/admin/hospitals",
            json!({"name": "X", "plan": "gold"}),
            &["admin"],
        ),
        ("GET", "/api/admin/hospitals", Value::Null, &["admin"]),
        (
            "POST",
            "/api/admin/users",
            json!({"email": "bad", "name": "X", "role": "admin", "password": "x"}),
            &["admin"],
        ),
        ("GET", "/api/admin/users", Value::Null, &["admin"]),
        ("GET", "/api/admin/assignments", Value::Null, &["admin"]),
        (
            "POST",
            "/api/admin/assignments",
            json!({"consultant_id": 0}),
            &["admin"],
        ),
    ];
    for (method, path, body, allowed) in &table {
        for (role, token) in &roles {
            let m = match *method {
                "GET" => reqwest::Method::GET,
                "PUT" => reqwest::Method::PUT,
                _ => reqwest::Method::POST,
            };
            let body = if body.is_null() {
                None
            } else {
                Some(body.clone())
            };
            let (status, resp) = app.request(m, Some(token), path, body).await;
            if allowed.contains(role) {
                assert!(
                    status != 401 && status != 403,
                    "{role} may {method} {path}: {status} {resp}"
                );
            } else {
                assert_error(status, &resp, 403, "forbidden");
            }
        }
    }
    // Request support: staff, leadership, admin yes; consultant no.
    let (status, _) = app
        .post(
            Some(&consultant.token),
            "/api/support/request",
            json!({"department": "ER", "issue_summary": "x"}),
        )
        .await;
    assert_eq!(status, 403);
    for token in [&staff.token, &leader.token] {
        let (status, body) = app
            .post(
                Some(token),
                "/api/support/request",
                json!({"department": "ER", "issue_summary": "x"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

/// `--tls-cert/--tls-key`: the server speaks HTTPS only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let db = TestDb::new(Backend::Sqlite).await;
    let mut config = common::test_config(&db);
    config.tls_cert = Some(cert_path);
    config.tls_key = Some(key_path);
    let server = nicehr_support::server::spawn(config).unwrap();
    let port = server.addr.port();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", server.addr)
        .build()
        .unwrap();
    let resp = client
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // Plain HTTP on the same port gets no HTTP answer.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    // A key that does not match is refused at start-up, with a clear message.
    let other = rcgen::generate_simple_self_signed(vec!["x".to_string()]).unwrap();
    let mismatched = dir.path().join("other-key.pem");
    std::fs::write(&mismatched, other.key_pair.serialize_pem()).unwrap();
    let db2 = TestDb::new(Backend::Sqlite).await;
    let mut config = common::test_config(&db2);
    config.tls_cert = Some(dir.path().join("cert.pem"));
    config.tls_key = Some(mismatched);
    let err = nicehr_support::server::spawn(config)
        .err()
        .expect("mismatched key refused");
    assert!(err.to_string().contains("do not match"), "{err}");
}

/// How many sessions storage holds (up to 1,000), read behind the server's back.
async fn stored_sessions(app: &TestApp) -> usize {
    nicehr_support::db::repo::sessions::history(
        &app.store,
        &nicehr_support::db::repo::sessions::HistoryFilter {
            limit: 1000,
            ..Default::default()
        },
    )
    .await
    .expect("history reads")
    .len()
}

// ---- issue 16: hardening -----------------------------------------------------------

async fn login_status(
    app: &TestApp,
    email: &str,
    password: &str,
    from: Option<&str>,
) -> (u16, Value, Option<u64>) {
    let mut req = app
        .http
        .post(format!("{}/api/auth/login", app.url))
        .json(&json!({"email": email, "password": password}));
    if let Some(address) = from {
        req = req.header("X-Forwarded-For", address);
    }
    let resp = req.send().await.expect("login answers");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body, retry)
}

/// 40 wrong passwords and the right one at the same instant: no more than
/// `LOGIN_MAX_FAILURES` of them are even checked, so the right one cannot slip in
/// after the limit.
async fn simultaneous_guesses_cannot_outrun_the_throttle(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.login_max_failures = 5).await;
    app.create_user_direct("nurse@h.org", "Nora Nurse", "consultant", None)
        .await;
    let mut tasks = Vec::new();
    for i in 0..41 {
        let (http, url) = (app.http.clone(), app.url.clone());
        let password = if i == 20 {
            PASSWORD.to_string()
        } else {
            format!("wrong-{i}")
        };
        tasks.push(tokio::spawn(async move {
            let resp = http
                .post(format!("{url}/api/auth/login"))
                .json(&json!({"email": "nurse@h.org", "password": password}))
                .send()
                .await
                .expect("answers");
            (
                resp.status().as_u16(),
                resp.headers().contains_key("retry-after"),
            )
        }));
    }
    let mut checked = 0;
    for task in tasks {
        let (status, has_retry) = task.await.unwrap();
        match status {
            429 => assert!(has_retry, "429 carries Retry-After"),
            200 | 401 => checked += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        checked <= 5,
        "{checked} attempts were checked; the limit is 5"
    );
}

/// 60 wrong guesses spread over 30 accounts (two each, under any per-account limit)
/// from one address are throttled by address; a spoofed `X-Forwarded-For` does not
/// help when no proxy header is trusted.
async fn password_spraying_from_one_address_is_throttled(backend: Backend) {
    let app = TestApp::start(backend).await;
    for i in 0..30 {
        app.create_user_direct(&format!("n{i}@h.org"), "N", "consultant", None)
            .await;
    }
    let (mut wrong, mut throttled) = (0, 0);
    for i in 0..60 {
        let spoof = format!("203.0.113.{}", i % 250);
        let (status, body, retry) = login_status(
            &app,
            &format!("n{}@h.org", i % 30),
            "Summer2026!",
            Some(&spoof),
        )
        .await;
        match status {
            401 => wrong += 1,
            429 => {
                throttled += 1;
                assert!(retry.is_some_and(|r| r >= 1), "{body}");
                assert!(
                    body["message"].as_str().unwrap().contains("address"),
                    "{body}"
                );
            }
            other => panic!("unexpected {other} {body}"),
        }
    }
    assert!(throttled > 0, "spraying was throttled");
    assert!(
        wrong <= 20,
        "at most LOGIN_ADDRESS_MAX_FAILURES guesses checked: {wrong}"
    );
}

/// The backoff keys on account + address: an attacker who knows a nurse's email locks
/// only their own address, for at most the cap, and an admin can clear it.
async fn an_attacker_cannot_lock_a_nurse_out_and_admins_can_unlock(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.login_max_failures = 2;
        c.login_backoff_base_secs = 1.0;
        c.login_backoff_max_secs = 2.0;
        c.trusted_proxy_header = Some("X-Forwarded-For".into());
    })
    .await;
    app.create_user_direct("nurse@h.org", "Nora Nurse", "consultant", None)
        .await;
    let attacker = Some("198.51.100.200, 203.0.113.66");
    let nurse = Some("203.0.113.7");
    for _ in 0..2 {
        assert_eq!(
            login_status(&app, "nurse@h.org", "guess", attacker).await.0,
            401
        );
    }
    let mut waits = Vec::new();
    for _ in 0..3 {
        let (status, body, retry) = login_status(&app, "nurse@h.org", "guess", attacker).await;
        assert_error(status, &body, 429, "rate_limited");
        let retry = retry.expect("Retry-After");
        waits.push(retry);
        // The nurse at her own workstation is not locked out meanwhile.
        let (status, body, _) = login_status(&app, "nurse@h.org", PASSWORD, nurse).await;
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(Duration::from_millis(retry * 1000 + 100)).await;
        assert_eq!(
            login_status(&app, "nurse@h.org", "guess", attacker).await.0,
            401
        );
    }
    assert_eq!(
        waits,
        vec![1, 2, 2],
        "the lock doubles up to LOGIN_BACKOFF_MAX_SECS"
    );
    assert_eq!(
        login_status(&app, "nurse@h.org", "guess", attacker).await.0,
        429
    );
    // Only an admin may unlock; after it the attacker's address is merely told "wrong".
    let staff = app.person("s@h.org", "consultant", None).await;
    let (status, body) = app
        .post(
            Some(&staff.token),
            "/api/admin/unlock",
            json!({"email": "nurse@h.org"}),
        )
        .await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = app
        .post(
            Some(&app.admin_token),
            "/api/admin/unlock",
            json!({"email": "Nurse@H.org"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["unlocked"], true);
    assert_eq!(
        login_status(&app, "nurse@h.org", "guess", attacker).await.0,
        401
    );
}

/// The same hostile inputs to both backends get the same 4xx: NUL characters where
/// text would reach the database, dates before 4713 BC (PostgreSQL's first year) and
/// after 9999, and the date that used to panic the analytics window.
async fn hostile_inputs_get_the_same_4xx_on_both_backends(backend: Backend) {
    let app = TestApp::start(backend).await;
    let ward = app.ward("H", "enterprise").await;
    let leader = app
        .person("l@h.org", "hospital_leadership", Some(ward.hospital_id))
        .await;
    let admin = app.admin_token.clone();
    let gets: Vec<(&str, &str, u16, &str)> = vec![
        (
            &admin,
            "/api/support/analytics?to=-262143-01-01",
            400,
            "validation_failed",
        ),
        (
            &leader.token,
            "/api/support/analytics?to=-262143-01-01",
            400,
            "validation_failed",
        ),
        (
            &admin,
            "/api/support/analytics?from=-4714-11-24&to=2026-01-01",
            400,
            "validation_failed",
        ),
        (
            &admin,
            "/api/support/analytics?from=2026-01-01&to=%2B10000-01-01",
            400,
            "validation_failed",
        ),
        (
            &admin,
            "/api/support/analytics?to=0001-01-01",
            400,
            "validation_failed",
        ),
        (
            &admin,
            "/api/support/analytics?tz=%00",
            400,
            "validation_failed",
        ),
        (
            &admin,
            "/api/support/analytics?department=ER%00",
            400,
            "validation_failed",
        ),
        (
            &admin,
            "/api/support/history?from=-4714-11-24",
            400,
            "validation_failed",
        ),
        (
            &admin,
            "/api/support/history?to=-262143-01-01",
            400,
            "validation_failed",
        ),
        (
            &admin,
            "/api/support/history?from=%2B99999-01-01",
            400,
            "validation_failed",
        ),
        (
            &admin,
            "/api/support/history?status=%00",
            400,
            "validation_failed",
        ),
        (
            &admin,
            "/api/support/history?department=%00",
            400,
            "validation_failed",
        ),
        (
            &admin,
            "/api/support/history?cursor=1%00",
            400,
            "validation_failed",
        ),
        (
            &admin,
            "/api/support/history.csv?from=-4714-11-24",
            400,
            "validation_failed",
        ),
        (
            &leader.token,
            "/api/support/history.csv?to=-262143-01-01",
            400,
            "validation_failed",
        ),
        (
            &admin,
            "/api/support/history.csv?from=2026-01-01%00",
            400,
            "validation_failed",
        ),
        (
            &admin,
            "/api/admin/users?role=%00",
            400,
            "validation_failed",
        ),
        (
            &admin,
            "/api/admin/users?role=wizard",
            400,
            "validation_failed",
        ),
    ];
    for (token, path, want_status, want_code) in gets {
        let (status, body) = app.get(Some(token), path).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (want_status, Some(want_code)),
            "{path}: {body}"
        );
    }
    let posts: Vec<(Option<&str>, &str, Value)> = vec![
        (
            None,
            "/api/auth/login",
            json!({"email": "\u{0}", "password": "x"}),
        ),
        (
            None,
            "/api/auth/login",
            json!({"email": "root@test.local\u{0}", "password": PASSWORD}),
        ),
        (
            Some(&admin),
            "/api/admin/unlock",
            json!({"email": "a\u{0}@b.org"}),
        ),
        (
            Some(&admin),
            "/api/admin/hospitals",
            json!({"name": "H\u{0}", "plan": "basic"}),
        ),
        (
            Some(&admin),
            "/api/admin/hospitals",
            json!({"name": "H2", "plan": "basic", "timezone": "UTC\u{0}"}),
        ),
        (
            Some(&admin),
            "/api/admin/users",
            json!({"email": "x\u{0}@h.org", "name": "X", "role": "consultant", "password": PASSWORD}),
        ),
        (
            Some(&admin),
            "/api/admin/users",
            json!({"email": "x@h.org", "name": "X\u{0}", "role": "consultant", "password": PASSWORD}),
        ),
        (
            Some(&admin),
            "/api/admin/users",
            json!({"email": "x@h.org", "name": "X", "role": "consultant\u{0}", "password": PASSWORD}),
        ),
        (
            Some(&leader.token),
            "/api/support/request",
            json!({"department": "ER", "issue_summary": "printer\u{0}jam"}),
        ),
        (
            Some(&leader.token),
            "/api/support/request",
            json!({"department": "ER\u{0}", "issue_summary": "printer"}),
        ),
        (
            Some(&leader.token),
            "/api/support/request",
            json!({"department": "ER", "urgency": "urgent\u{0}", "issue_summary": "printer"}),
        ),
    ];
    for (token, path, body) in posts {
        let (status, reply) = app.post(token, path, body.clone()).await;
        assert_error(status, &reply, 400, "validation_failed");
        assert!(reply["fields"].is_object(), "{path} {body}: {reply}");
    }
    assert_eq!(stored_sessions(&app).await, 0, "nothing was stored");
    assert_eq!(app.get(None, "/healthz").await.0, 200);
}

async fn weak_passwords_are_refused_with_a_reason(backend: Backend) {
    let app = TestApp::start(backend).await;
    for (password, reason) in [
        ("        ", "only spaces"),
        ("password", "too easy to guess"),
        ("12345678", "too easy to guess"),
        ("nora.nurse@h.org", "email"),
        ("short", "at least 8"),
    ] {
        let (status, body) = app
            .post(
                Some(&app.admin_token),
                "/api/admin/users",
                json!({"email": "nora.nurse@h.org", "name": "Nora Nurse", "role": "consultant", "password": password}),
            )
            .await;
        assert_error(status, &body, 400, "validation_failed");
        let why = body["fields"]["password"].as_str().unwrap_or_default();
        assert!(why.contains(reason), "{password:?}: {body}");
    }
    let (status, body) = app
        .post(
            Some(&app.admin_token),
            "/api/admin/users",
            json!({"email": "nora.nurse@h.org", "name": "Nora Nurse", "role": "consultant", "password": "tangerine-okapi-ledger"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn request_and_cancel_loops_are_rate_limited(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.support_requests_per_min = 3;
        c.support_cancels_per_min = 2;
    })
    .await;
    let ward = app.ward("H", "enterprise").await;
    let staff = app
        .person("s@h.org", "hospital_staff", Some(ward.hospital_id))
        .await;
    for cycle in 0..3 {
        let (sid, _) = app.request_support(&staff, "ER", "normal").await;
        let (status, body) = app
            .post(
                Some(&staff.token),
                &format!("/api/support/cancel/{sid}"),
                json!({}),
            )
            .await;
        if cycle < 2 {
            assert_eq!(status, 200, "{body}");
        } else {
            assert_error(status, &body, 429, "rate_limited");
        }
    }
    let resp = app
        .http
        .post(format!("{}/api/support/request", app.url))
        .bearer_auth(&staff.token)
        .json(&json!({"department": "ER", "issue_summary": "again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Another requester is not affected.
    let other = app
        .person("o@h.org", "hospital_staff", Some(ward.hospital_id))
        .await;
    app.request_support(&other, "ER", "normal").await;
}

type RawWs =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn raw_ws(
    app: &TestApp,
    token: &str,
) -> Result<RawWs, tokio_tungstenite::tungstenite::Error> {
    tokio_tungstenite::connect_async(format!("{}?token={token}", app.ws_url))
        .await
        .map(|(ws, _)| ws)
}

/// The next text frame of a type, skipping others; `None` if the socket closes first.
async fn next_of(ws: &mut RawWs, kind: &str) -> Option<Value> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["type"] == kind {
                    return Some(frame);
                }
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => return None,
            Ok(Some(Ok(_))) => {}
        }
    }
}

async fn sockets_per_user_are_capped(backend: Backend) {
    use futures_util::SinkExt;
    let app = TestApp::start_with(backend, |c| c.ws_max_sockets_per_user = 3).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(
            raw_ws(&app, &app.admin_token)
                .await
                .expect("within the limit"),
        );
    }
    match raw_ws(&app, &app.admin_token).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 429);
            assert!(resp.headers().contains_key("retry-after"));
        }
        Err(other) => panic!("refused, but not with 429: {other}"),
        Ok(_) => panic!("a fourth socket was admitted"),
    }
    // Another user has their own allowance.
    let other = app.person("c@c.org", "consultant", None).await;
    raw_ws(&app, &other.token)
        .await
        .expect("another user connects");
    // Closing one frees its place (the server notices the close shortly after).
    let mut first = open.remove(0);
    first.close(None).await.ok();
    drop(first);
    let mut reopened = false;
    for _ in 0..50 {
        if raw_ws(&app, &app.admin_token).await.is_ok() {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened, "a closed socket gives its place back");
    for mut ws in open {
        let _ = ws
            .send(tokio_tungstenite::tungstenite::Message::Text(
                "{\"type\":\"ping\",\"data\":{}}".into(),
            ))
            .await;
    }
}

async fn a_socket_flooding_frames_is_closed_with_1008(backend: Backend) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::Message;
    let app = TestApp::start_with(backend, |c| {
        c.ws_frames_per_sec = 10;
        c.ws_frame_burst = 20;
    })
    .await;
    // A client within the limit is served as before.
    let mut calm = raw_ws(&app, &app.admin_token).await.unwrap();
    for _ in 0..5 {
        calm.send(Message::Text("{\"type\":\"ping\",\"data\":{}}".into()))
            .await
            .unwrap();
        assert!(next_of(&mut calm, "pong").await.is_some());
    }
    let mut flood = raw_ws(&app, &app.admin_token).await.unwrap();
    for _ in 0..300 {
        if flood
            .send(Message::Text("{\"type\":\"ping\",\"data\":{}}".into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let mut close = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, flood.next()).await {
        match msg {
            Ok(Message::Close(frame)) => {
                close = frame;
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let close = close.expect("the server closed the flooding socket with a reason");
    assert_eq!(close.code, CloseCode::Policy);
    assert!(
        close.reason.contains("frames per second"),
        "{}",
        close.reason
    );
    // The calm socket is untouched.
    calm.send(Message::Text("{\"type\":\"ping\"}".into()))
        .await
        .unwrap();
    assert!(next_of(&mut calm, "pong").await.is_some());
}

async fn ping_without_data_pongs_and_fragments_are_reassembled(backend: Backend) {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::Message;
    let app = TestApp::start(backend).await;
    let mut ws = raw_ws(&app, &app.admin_token).await.unwrap();
    ws.send(Message::Text("{\"type\":\"ping\"}".into()))
        .await
        .unwrap();
    assert!(
        next_of(&mut ws, "pong").await.is_some(),
        "ping without data answers pong"
    );
    let fragment = |text: &[u8], opcode: Data, last: bool| {
        Message::Frame(Frame::message(text.to_vec(), OpCode::Data(opcode), last))
    };
    // A ping split in three fragments, one of them inside nothing but whitespace.
    ws.send(fragment(b"{\"type\":", Data::Text, false))
        .await
        .unwrap();
    ws.send(fragment(b"   ", Data::Continue, false))
        .await
        .unwrap();
    ws.send(fragment(b"\"ping\"}", Data::Continue, true))
        .await
        .unwrap();
    assert!(
        next_of(&mut ws, "pong").await.is_some(),
        "fragments are reassembled"
    );
    // A fragmented message over the frame limit gets an error frame; the socket stays.
    let big = vec![b' '; 40 * 1024];
    ws.send(fragment(b"{\"type\":\"ping\",", Data::Text, false))
        .await
        .unwrap();
    ws.send(fragment(&big, Data::Continue, false))
        .await
        .unwrap();
    ws.send(fragment(&big, Data::Continue, false))
        .await
        .unwrap();
    ws.send(fragment(b"\"data\":{}}", Data::Continue, true))
        .await
        .unwrap();
    let error = next_of(&mut ws, "error").await.expect("an error frame");
    assert_eq!(error["data"]["error"], "payload_too_large", "{error}");
    ws.send(Message::Text("{\"type\":\"ping\"}".into()))
        .await
        .unwrap();
    assert!(next_of(&mut ws, "pong").await.is_some(), "still open");
}

async fn origin_is_checked_against_configuration_not_client_headers(backend: Backend) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = TestApp::start(backend).await;
    let url = format!("{}?token={}", app.ws_url, app.admin_token);
    let port = app.url.rsplit(':').next().unwrap().to_string();
    let attempt = |headers: Vec<(&'static str, String)>| {
        let mut req = url.clone().into_client_request().unwrap();
        for (name, value) in headers {
            req.headers_mut().insert(name, value.parse().unwrap());
        }
        tokio_tungstenite::connect_async(req)
    };
    // An attacker's page reaching us under their own name says so in Host; that does
    // not make its origin ours.
    for headers in [
        vec![
            ("Origin", "http://evil.example".to_string()),
            ("Host", "evil.example".to_string()),
        ],
        vec![
            ("Origin", "http://evil.example".to_string()),
            ("X-Forwarded-Host", "evil.example".to_string()),
        ],
        vec![
            ("Origin", "http://evil.example".to_string()),
            ("Forwarded", "host=evil.example".to_string()),
        ],
        vec![("Origin", format!("https://127.0.0.1:{port}"))],
    ] {
        assert!(
            attempt(headers.clone()).await.is_err(),
            "refused: {headers:?}"
        );
    }
    for origin in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ] {
        assert!(
            attempt(vec![("Origin", origin.clone())]).await.is_ok(),
            "{origin}"
        );
    }
    // With PUBLIC_URL the configured origin is the one allowed, scheme and all.
    let app = TestApp::start_with(backend, |c| {
        c.public_url = Some("https://support.example.org".into());
        c.allowed_origins = vec!["https://wall.example.org".into()];
    })
    .await;
    let url = format!("{}?token={}", app.ws_url, app.admin_token);
    for (origin, allowed) in [
        ("https://support.example.org", true),
        ("https://wall.example.org", true),
        ("http://support.example.org", false),
        ("https://support.example.org:8443", false),
        ("http://127.0.0.1", false),
    ] {
        let mut req = url.clone().into_client_request().unwrap();
        req.headers_mut().insert("Origin", origin.parse().unwrap());
        assert_eq!(
            tokio_tungstenite::connect_async(req).await.is_ok(),
            allowed,
            "{origin}"
        );
    }
}

/// A body sent a byte at a time is cut off at `BODY_READ_TIMEOUT_SECS` with a 408 and
/// a closed connection, instead of holding the connection for as long as it trickles.
async fn a_trickled_body_is_cut_off(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::start_with(backend, |c| c.body_read_timeout_secs = 1.0).await;
    let addr = app.url.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let body = json!({"email": "root@test.local", "password": PASSWORD}).to_string();
    conn.write_all(
        format!(
            "POST /api/auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    let mut bytes = body.as_bytes().iter();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(8) {
        if let Some(byte) = bytes.next() {
            if conn.write_all(&[*byte]).await.is_err() {
                break;
            }
        }
        match tokio::time::timeout(Duration::from_millis(250), conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => reply.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&reply);
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "a 408 within the deadline: {text:?}"
    );
    assert!(text.contains("request_timeout"), "{text}");
    assert!(closed, "the connection is closed");
    assert!(started.elapsed() < Duration::from_secs(8));
    // An ordinary body is unaffected.
    app.login("root@test.local", PASSWORD).await;
}

/// The pool does not ask `SELECT 1` on every checkout; connections the database
/// closes (a restart, an operator ending sessions) must still never reach a request:
/// they are known to be closed and replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_database_closed_are_replaced_postgres() {
    use diesel_async::{AsyncConnection, RunQueryDsl};
    if !common::postgres_available().await {
        return;
    }
    let app = TestApp::start(Backend::Postgres).await;
    let ward = app.ward("H", "enterprise").await;
    let staff = app
        .person("s@h.org", "hospital_staff", Some(ward.hospital_id))
        .await;
    // Fill the pool with connections in use recently.
    for _ in 0..10 {
        let (status, body) = app.get(Some(&staff.token), "/api/support/history").await;
        assert_eq!(status, 200, "{body}");
    }
    let database = app.db.url.rsplit('/').next().unwrap().to_string();
    let mut admin = diesel_async::AsyncPgConnection::establish(&common::pg_admin_url())
        .await
        .expect("connect to PostgreSQL");
    #[derive(diesel::QueryableByName)]
    struct Ended {
        #[diesel(sql_type = diesel::sql_types::Bigint)]
        n: i64,
    }
    let ended: Ended = diesel::sql_query(
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind::<diesel::sql_types::Text, _>(&database)
    .get_result(&mut admin)
    .await
    .expect("terminate the server's sessions");
    assert!(ended.n > 0, "the server had connections to end");
    // The termination notice reaches each connection's task at once; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..10 {
        let (status, body) = app.get(Some(&staff.token), "/api/support/history").await;
        assert_eq!(
            status, 200,
            "request {i} after the database ended the pool's sessions: {body}"
        );
    }
    let (status, body) = app
        .post(
            Some(&staff.token),
            "/api/support/request",
            json!({"department": "ER", "issue_summary": "after the restart"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}
