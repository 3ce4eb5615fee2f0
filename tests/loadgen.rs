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

/// Consultants in the smoke run: enough that most requests find one idle even on a
/// slow debug build sharing two cores with the other tests, so both offer latencies
/// (request → offer and available → offer) get samples.
const SMOKE_CONSULTANTS: u64 = 24;
/// About 50 requests over the 2.5 s of arrivals (warm-up included).
const SMOKE_RATE: u64 = 20;
/// Fewer than half the expected requests would mean the generator stalled.
const SMOKE_MIN_REQUESTS: u64 = 25;

/// The smoke run's flags; the caller's extra flags follow.
fn smoke_args() -> Vec<String> {
    let fixed = [
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
    let mut args = vec![
        "--consultants".to_owned(),
        SMOKE_CONSULTANTS.to_string(),
        "--rate".to_owned(),
        SMOKE_RATE.to_string(),
    ];
    args.extend(fixed.map(str::to_owned));
    args
}

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
        .args(smoke_args())
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
    // Poisson arrivals: about SMOKE_RATE × 2.5 s, not exactly.
    assert!(sent >= SMOKE_MIN_REQUESTS, "requests were sent: {report:#}");
    assert_eq!(report["consultants"].as_u64(), Some(SMOKE_CONSULTANTS));
    assert_eq!(report["rate_per_sec"].as_f64(), Some(SMOKE_RATE as f64));
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
    let count = |figure: &str| lat[figure]["count"].as_u64().unwrap_or(0);
    // Which of the two an offer samples depends on whether its consultant was idle
    // when the request came (timing, not correctness): together they are every
    // measured offer, and each one that has samples must be a sane distribution.
    assert!(
        count("request_to_offer") + count("available_to_offer") > 0,
        "offer latencies recorded: {report:#}"
    );
    for figure in ["accept_to_requester", "request_post"] {
        assert!(count(figure) > 0, "{figure}: {report:#}");
    }
    for figure in [
        "request_to_offer",
        "available_to_offer",
        "accept_to_requester",
        "request_post",
    ] {
        if count(figure) == 0 {
            continue;
        }
        let s = &lat[figure];
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
        Some(SMOKE_CONSULTANTS + staff(report))
    );
    // CPU read from the server's counter: a run of calls costs the server something.
    let cpu = &report["cpu"];
    assert!(
        cpu["server_ms_per_call"]
            .as_f64()
            .is_some_and(|ms| ms > 0.0),
        "server CPU per call read from /metrics: {report:#}"
    );
    assert_eq!(
        cpu["includes_generator"],
        report["memory"]["includes_generator"]
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
    // PostgreSQL counts the statements when pg_stat_statements is preloaded; the
    // generator then reports them, and otherwise says nothing rather than guess.
    let counted = backend == Backend::Postgres && statements_are_counted(&db.url).await;
    if counted {
        let per_call = report["statements"]["per_call"].as_f64();
        assert!(per_call.is_some_and(|n| n > 0.0), "{report:#}");
    } else {
        assert!(report["statements"].is_null(), "{report:#}");
    }
}

/// Whether the server at `url` preloads pg_stat_statements.
async fn statements_are_counted(url: &str) -> bool {
    use diesel::sql_types::Text;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = Text)]
        shared_preload_libraries: String,
    }
    let mut conn = AsyncPgConnection::establish(url).await.expect("connect");
    let setting: Setting = diesel::sql_query("SHOW shared_preload_libraries")
        .get_result(&mut conn)
        .await
        .expect("SHOW");
    setting
        .shared_preload_libraries
        .contains("pg_stat_statements")
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
    assert!(
        stored as u64 >= SMOKE_MIN_REQUESTS,
        "completed sessions stored: {stored}"
    );
}

/// `--ramp-to` runs one step per rate until a step breaks, judges each against the
/// knee's rule and draws the charts. What the figures are depends on the machine; the
/// test checks that the report is consistent with its own rule, not the figures.
#[test]
fn a_ramp_reports_each_step_the_knee_and_its_charts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("ramp.db").display());
    let chart = dir.path().join("ramp.svg");
    let chart_arg = chart.display().to_string();
    let report = loadgen(
        &db,
        &[
            "--ramp-to",
            "40",
            "--ramp-step",
            "20",
            "--chart",
            &chart_arg,
        ],
    );
    let steps = report["steps"].as_array().expect("steps");
    assert!(!steps.is_empty() && steps.len() <= 2, "{report:#}");
    assert_eq!(steps[0]["rate_per_sec"], 20.0);
    for (i, step) in steps.iter().enumerate() {
        let broke = !step["breaks"].is_null();
        // A ramp stops at its first broken step.
        assert!(!broke || i == steps.len() - 1, "{report:#}");
        let p99 = step["p99_ms"].as_f64().expect("p99");
        let errors = step["errors"].as_u64().expect("errors");
        if !broke {
            assert!(p99 <= 50.0 && errors == 0, "a step that holds: {step:#}");
        }
        let distribution = step["distribution"].as_array().expect("distribution");
        assert_eq!(distribution.len(), 10, "{step:#}");
        let ms: Vec<f64> = distribution
            .iter()
            .map(|p| p["ms"].as_f64().unwrap())
            .collect();
        assert!(
            ms.windows(2).all(|w| w[0] <= w[1]),
            "percentiles rise: {ms:?}"
        );
    }
    let holding: Vec<f64> = steps
        .iter()
        .take_while(|s| s["breaks"].is_null())
        .map(|s| s["rate_per_sec"].as_f64().unwrap())
        .collect();
    assert_eq!(report["knee_per_sec"].as_f64(), holding.last().copied());
    let svg = std::fs::read_to_string(&chart).expect("the chart was written");
    assert!(
        svg.starts_with("<svg ") && svg.contains("<polyline"),
        "{svg}"
    );
    assert_eq!(svg.matches("<polyline").count(), 2 + steps.len());
}

/// On PostgreSQL each step of a ramp gets an empty database of its own, dropped after
/// it: a step that inherited the last one's consultants (rows still available, sockets
/// gone) would offer to nobody and time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramp_on_postgres_runs_each_step_on_an_empty_database() {
    if !common::postgres_available().await {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let url = db.url.clone();
    let report = tokio::task::spawn_blocking(move || {
        loadgen(&url, &["--ramp-to", "40", "--ramp-step", "20"])
    })
    .await
    .expect("loadgen thread");
    let steps = report["steps"].as_array().expect("steps");
    assert!(!steps.is_empty(), "{report:#}");
    for step in steps {
        assert_eq!(step["errors"], 0, "{step:#}");
    }
    let name = db
        .url
        .rsplit('/')
        .next()
        .expect("database name")
        .to_string();
    let left = remaining_databases(&name).await;
    assert!(
        left.is_empty(),
        "the steps' databases were not dropped: {left:?}"
    );
}

async fn remaining_databases(prefix: &str) -> Vec<String> {
    use diesel::sql_types::Text;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        datname: String,
    }
    let mut conn = AsyncPgConnection::establish(&common::pg_admin_url())
        .await
        .expect("connect");
    let names: Vec<Name> =
        diesel::sql_query("SELECT datname FROM pg_database WHERE datname LIKE $1 || '_ramp%'")
            .bind::<Text, _>(prefix)
            .load(&mut conn)
            .await
            .expect("list databases");
    names.into_iter().map(|n| n.datname).collect()
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
