//! The load generator, run the way a load tester runs it: the real binary, a few
//! seconds, in-process and against a running server, on both backends. This is the
//! smoke run CI keeps so the tool never rots; timing targets live in BENCHMARKS.md,
//! not here (shared machines are noisy), so the assertions are about correctness:
//! every request offered, accepted, notified and ended, no errors, figures present.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{assert_error, Backend, TestApp, TestDb};
use serde_json::{json, Value};

backend_tests!(
    in_process_run_serves_every_request,
    run_against_a_running_server,
    minimal_sockets_get_their_offers_but_no_broadcasts,
);

const SMOKE_ARGS: &[&str] = &[
    "--consultants",
    "12",
    "--rate",
    "40",
    "--duration",
    "2",
    "--warmup",
    "0.5",
    "--hold-ms",
    "150",
    "--drain-secs",
    "20",
    "--json",
];

/// A wrong `--url` fails at once with a message that names it, not after minutes of
/// connection errors; a nonsensical flag is refused before anything starts.
#[test]
fn an_unreachable_server_is_reported_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("lg.db").display());
    let output = Command::new(env!("CARGO_BIN_EXE_nicehr-support"))
        .args([
            "loadgen",
            "--url",
            "http://127.0.0.1:9",
            "--database-url",
            &db,
        ])
        .args(["--consultants", "2", "--rate", "1", "--duration", "1"])
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no healthy server answers at http://127.0.0.1:9/healthz"),
        "{stderr}"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_nicehr-support"))
        .args(["loadgen", "--database-url", &db, "--duration", "0"])
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--duration must be positive"), "{stderr}");
}

fn loadgen(database_url: &str, extra: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_nicehr-support"))
        .arg("loadgen")
        .args(["--database-url", database_url])
        .args(SMOKE_ARGS)
        .args(extra)
        .env_remove("DATABASE_URL")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "loadgen failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("--json prints one JSON report ({e}):\n{stdout}\n{stderr}"))
}

/// What every smoke run must show, whichever way the server was started.
fn assert_sound(report: &Value) {
    assert_eq!(report["errors"], json!({}), "no errors: {report:#}");
    let sent = report["requests_sent"].as_u64().unwrap_or(0);
    // 2.5 s of arrivals at 40/s: about 100 requests (Poisson, so not exactly).
    assert!(sent >= 50, "requests were sent: {report:#}");
    assert_eq!(
        report["requests_created"].as_u64(),
        Some(sent),
        "{report:#}"
    );
    assert_eq!(report["offers"].as_u64(), Some(sent), "each offered once");
    assert_eq!(
        report["calls_completed"].as_u64(),
        Some(sent),
        "each call held and ended: {report:#}"
    );
    let lat = &report["latencies"];
    let offered = lat["request_to_offer"]["count"].as_u64().unwrap_or(0)
        + lat["available_to_offer"]["count"].as_u64().unwrap_or(0);
    assert!(offered > 0, "offer latencies recorded: {report:#}");
    for figure in ["request_to_offer", "accept_to_requester", "request_post"] {
        let s = &lat[figure];
        assert!(s["count"].as_u64().unwrap_or(0) > 0, "{figure}: {report:#}");
        let (p50, p99, max) = (
            s["p50_ms"].as_f64().unwrap_or(-1.0),
            s["p99_ms"].as_f64().unwrap_or(-1.0),
            s["max_ms"].as_f64().unwrap_or(-1.0),
        );
        assert!(
            0.0 < p50 && p50 <= p99 && p99 <= max,
            "{figure} percentiles ordered: {report:#}"
        );
    }
    // The server's own histogram saw the same dispatches.
    let inside = report["server_dispatch"]["new_request"]["count"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        inside > 0,
        "server dispatch histogram read back: {report:#}"
    );
    assert!(
        report["memory"]["rss_end_bytes"].as_u64().unwrap_or(0) > 1_000_000,
        "server memory read from /metrics: {report:#}"
    );
    assert_eq!(
        report["memory"]["sockets"].as_u64(),
        Some(12 + staff(report))
    );
}

fn staff(report: &Value) -> u64 {
    report["staff"].as_u64().unwrap_or(0)
}

async fn in_process_run_serves_every_request(backend: Backend) {
    let db = TestDb::new(backend).await;
    let url = db.url.clone();
    let report = tokio::task::spawn_blocking(move || loadgen(&url, &[]))
        .await
        .expect("loadgen thread");
    assert_sound(&report);
    assert_eq!(report["memory"]["includes_generator"], true);
    let expected = if backend == Backend::Sqlite {
        "sqlite"
    } else {
        "postgresql"
    };
    assert_eq!(report["backend"], expected);
}

async fn run_against_a_running_server(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (url, db) = (app.url.clone(), app.db.url.clone());
    let report = tokio::task::spawn_blocking(move || loadgen(&db, &["--url", &url]))
        .await
        .expect("loadgen thread");
    assert_sound(&report);
    assert_eq!(report["target"], app.url);
    assert_eq!(report["memory"]["includes_generator"], false);
    // The sessions really are in the server's storage, ended.
    let (status, body) = app
        .get(
            Some(&app.admin_token),
            "/api/support/history?status=completed&limit=100",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let stored = body["sessions"].as_array().map_or(0, Vec::len);
    assert!(stored >= 50, "completed sessions stored: {stored}");
}

/// `/ws?events=minimal` drops role-wide broadcasts but never what is addressed to
/// the socket's user; anything else than `all`/`minimal` is refused.
async fn minimal_sockets_get_their_offers_but_no_broadcasts(backend: Backend) {
    let app = TestApp::start(backend).await;
    let ward = app.ward("General", "enterprise").await;
    let (consultant, mut full) = app.consultant("c@test.local", &[("ER", "expert")]).await;
    let mut minimal = common::WsClient::connect(&format!(
        "{}?events=minimal&token={}",
        app.ws_url, consultant.token
    ))
    .await;
    let nurse = app
        .person("n@test.local", "hospital_staff", Some(ward.hospital_id))
        .await;
    let (session_id, _) = app.request_support(&nurse, "ER", "normal").await;
    full.expect("support_request_new").await;
    full.expect_offer(session_id).await;
    minimal.expect_offer(session_id).await;
    minimal
        .expect_none("support_request_new", Duration::from_millis(300))
        .await;
    // Accepting makes the consultant busy: a broadcast the minimal socket skips.
    let (status, body) = app
        .post(
            Some(&consultant.token),
            &format!("/api/support/accept/{session_id}"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    full.expect_where("consultant_status_changed", |f| {
        f["data"]["status"] == "busy"
    })
    .await;
    minimal.expect("support_request_accepted").await;
    minimal
        .expect_none("consultant_status_changed", Duration::from_millis(300))
        .await;

    let response = app
        .http
        .get(format!(
            "{}/ws?events=everything&token={}",
            app.url, consultant.token
        ))
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .expect("reply");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_error(status, &body, 400, "validation_failed");
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.contains("events")));
}
