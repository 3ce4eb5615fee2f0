//! Retention of patient text, on both backends: past a hospital's retention the
//! free text of its ended sessions is erased (and reads back as null everywhere it
//! is shown), the figures stay (analytics and the CSV are unchanged), younger
//! sessions and other hospitals keep theirs, off erases nothing, each pass is
//! recorded, and only admins may see or change the policy.
//!
//! How sessions get old without a fake clock: history is written straight into the
//! database with real past timestamps (`import_sessions`, as the analytics tests
//! do), and the server's clock is the real one. Sessions that end during the test
//! are erased with a retention of 0 days ("erase at the first pass after the end"),
//! which is a real setting. Passes run through the real binary
//! (`nicehr-support retention run`), or through the server's own interval task
//! with a short `RETENTION_SWEEP_SECS`.

mod common;

use std::process::Command;
use std::time::Duration as StdDuration;

use chrono::{Duration, NaiveDateTime, SecondsFormat, Utc};
use common::{assert_error, Backend, Person, TestApp, TestDb};
use nicehr_support::db::repo;
use nicehr_support::db::repo::analytics::HistoricSession;
use nicehr_support::db::repo::retention::RetentionRunRow;
use nicehr_support::db::Db;
use nicehr_support::model::{HospitalId, RetentionTrigger, UserId};
use serde_json::{json, Value};

const SUMMARY: &str = "Patient Jane Roe, MRN 0042: order set will not sign";
const NOTES: &str = "Re-signed the order set for Jane Roe with the attending";
const FEEDBACK: &str = "Saved us with Jane Roe's orders";

backend_tests!(
    old_text_is_erased_and_the_figures_stay,
    off_erases_nothing,
    the_server_default_applies_and_the_job_runs_on_its_own,
    only_admins_see_and_set_retention_and_bad_input_is_refused,
);

/// A server whose own job runs once at start-up (nothing to do yet) and then not
/// again during the test, so every pass here is one the test started.
async fn app(backend: Backend) -> TestApp {
    TestApp::start_with(backend, |c| {
        c.retention.retention_days = None;
        c.retention.retention_sweep_secs = 3600.0;
    })
    .await
}

/// `nicehr-support retention [ARGS] run` against the test's database.
fn retention_run(url: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_nicehr-support"))
        .arg("retention")
        .args(args)
        .arg("run")
        .env("DATABASE_URL", url)
        .env_remove("RETENTION_DAYS")
        .env_remove("NICEHR_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "retention run: {stdout} {stderr}");
    for text in [SUMMARY, NOTES, FEEDBACK] {
        assert!(
            !stdout.contains(text) && !stderr.contains(text),
            "patient text in output"
        );
    }
    stdout
}

fn days_ago(days: i64) -> NaiveDateTime {
    Utc::now().naive_utc() - Duration::days(days)
}

/// A completed, rated session that ended `ended_days_ago` days ago.
fn past(hospital: i64, requester: i64, consultant: i64, ended_days_ago: i64) -> HistoricSession {
    let ended = days_ago(ended_days_ago);
    let created = ended - Duration::seconds(960);
    HistoricSession {
        hospital_id: hospital,
        requester_id: requester,
        consultant_id: Some(consultant),
        department: "ER".into(),
        urgency: "urgent".into(),
        status: "completed".into(),
        issue_summary: SUMMARY.into(),
        resolved: Some(true),
        created_at: created,
        response_deadline: created + Duration::seconds(900),
        accepted_at: Some(created + Duration::seconds(60)),
        started_at: Some(created + Duration::seconds(60)),
        ended_at: Some(ended),
        wait_time_seconds: Some(60),
        duration_seconds: Some(900),
        rating: Some(4),
        feedback: Some(FEEDBACK.into()),
        match_tier: Some("B".into()),
        cancelled_by: None,
    }
}

async fn import(store: &Db, rows: &[HistoricSession]) -> Vec<i64> {
    repo::analytics::import_sessions(store, rows)
        .await
        .expect("history imported")
}

async fn session(app: &TestApp, id: i64) -> Value {
    let (status, body) = app
        .get(
            Some(&app.admin_token),
            &format!("/api/support/sessions/{id}"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["session"].clone()
}

/// The figures of a session: everything retention must leave alone.
fn figures(s: &Value) -> Value {
    let mut s = s.clone();
    if let Some(map) = s.as_object_mut() {
        for key in [
            "issue_summary",
            "resolution_notes",
            "feedback",
            "text_erased_at",
        ] {
            map.remove(key);
        }
    }
    s
}

fn assert_erased(s: &Value) {
    assert_eq!(s["issue_summary"], Value::Null, "{s}");
    assert_eq!(s["resolution_notes"], Value::Null, "{s}");
    assert_eq!(s["feedback"], Value::Null, "{s}");
    assert!(s["text_erased_at"].is_string(), "{s}");
}

fn assert_kept(s: &Value, summary: &str) {
    assert_eq!(s["issue_summary"], summary, "{s}");
    assert_eq!(s["text_erased_at"], Value::Null, "{s}");
}

/// Analytics with the figures that move with the clock (utilisation up to now,
/// the current wait) left out.
async fn analytics(app: &TestApp, hospital: i64, from: &str, to: &str) -> Value {
    let (status, mut body) = app
        .get(
            Some(&app.admin_token),
            &format!("/api/support/analytics?from={from}&to={to}&tz=UTC&hospital_id={hospital}"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    strip(&mut body, &["utilization", "longest_current_wait_seconds"]);
    body
}

fn strip(value: &mut Value, keys: &[&str]) {
    match value {
        Value::Object(map) => {
            for key in keys {
                map.remove(*key);
            }
            for v in map.values_mut() {
                strip(v, keys);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| strip(v, keys)),
        _ => {}
    }
}

async fn csv(app: &TestApp, hospital: i64) -> String {
    let resp = app
        .http
        .get(format!(
            "{}/api/support/history.csv?hospital_id={hospital}",
            app.url
        ))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("csv");
    assert_eq!(resp.status().as_u16(), 200);
    resp.text().await.expect("csv body")
}

async fn history(app: &TestApp, hospital: i64) -> Vec<Value> {
    let (status, body) = app
        .get(
            Some(&app.admin_token),
            &format!("/api/support/history?hospital_id={hospital}&limit=100"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["sessions"].as_array().cloned().unwrap_or_default()
}

async fn put_days(app: &TestApp, token: &str, hospital: i64, body: Value) -> (u16, Value) {
    app.put(
        Some(token),
        &format!("/api/admin/hospitals/{hospital}/retention"),
        body,
    )
    .await
}

async fn overview(app: &TestApp) -> Value {
    let (status, body) = app
        .get(Some(&app.admin_token), "/api/admin/retention")
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn policy_of(overview: &Value, hospital: i64) -> Value {
    overview["hospitals"]
        .as_array()
        .and_then(|list| list.iter().find(|h| h["hospital_id"] == hospital))
        .cloned()
        .unwrap_or_else(|| panic!("hospital {hospital} in {overview}"))
}

/// A call from request to end, through the server, with notes; rated (with
/// feedback) when `rate` is set. Returns the session id.
async fn live_call(
    app: &TestApp,
    nurse: &Person,
    consultant: &Person,
    ws: &mut common::WsClient,
    summary: &str,
    rate: bool,
) -> i64 {
    let (status, body) = app
        .post(
            Some(&nurse.token),
            "/api/support/request",
            json!({"department": "ER", "urgency": "urgent", "issue_summary": summary}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let sid = body["session"]["id"].as_i64().expect("session id");
    ws.expect_offer(sid).await;
    let (status, body) = app
        .post(
            Some(&consultant.token),
            &format!("/api/support/accept/{sid}"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .post(
            Some(&consultant.token),
            &format!("/api/support/end/{sid}"),
            json!({"resolution_notes": NOTES, "resolved": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    if rate {
        rate_call(app, nurse, sid).await;
    }
    sid
}

async fn rate_call(app: &TestApp, nurse: &Person, sid: i64) {
    let (status, body) = app
        .post(
            Some(&nurse.token),
            &format!("/api/support/rate/{sid}"),
            json!({"rating": 5, "feedback": FEEDBACK}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

fn stamp(at: NaiveDateTime) -> String {
    at.and_utc().to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn old_text_is_erased_and_the_figures_stay(backend: Backend) {
    let app = app(backend).await;
    let a = app.create_hospital_direct("Alpha General", "premium").await;
    let b = app.create_hospital_direct("Beta Clinic", "premium").await;
    let nurse_a = app.person("nurse@a.test", "hospital_staff", Some(a)).await;
    let nurse_b = app.person("nurse@b.test", "hospital_staff", Some(b)).await;
    let (consultant, mut ws) = app.consultant("c@nicehr.test", &[("ER", "expert")]).await;

    // A: one session 40 days past its end, one 5 days; B: one 40 days.
    let ids = import(
        &app.store,
        &[
            past(a, nurse_a.id, consultant.id, 40),
            past(a, nurse_a.id, consultant.id, 5),
            past(b, nurse_b.id, consultant.id, 40),
        ],
    )
    .await;
    let (a_old, a_young, b_old) = (ids[0], ids[1], ids[2]);
    // And one call of today, through the server, with notes and feedback.
    let a_today = live_call(&app, &nurse_a, &consultant, &mut ws, SUMMARY, true).await;

    let (from, to) = (stamp(days_ago(60)), stamp(days_ago(-1)));
    let before_a = analytics(&app, a, &from, &to).await;
    let before_b = analytics(&app, b, &from, &to).await;
    let csv_a = csv(&app, a).await;
    let mut before = Vec::new();
    for id in [a_old, a_young, a_today, b_old] {
        before.push(session(&app, id).await);
    }
    assert_eq!(before[2]["resolution_notes"], NOTES);
    assert_eq!(before[2]["feedback"], FEEDBACK);

    let audited_before = repo::audit::count_for(&app.store, "hospital", a)
        .await
        .expect("audit");
    // A keeps text for 30 days; B has no retention (the server's default is off).
    let (status, body) = put_days(&app, &app.admin_token, a, json!({"days": 30})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["days"], 30);
    assert_eq!(body["effective_days"], 30);
    assert_eq!(body["source"], "hospital");

    let printed = retention_run(&app.db.url, &[]);
    assert!(
        printed.contains(&format!("hospital {a}: 1 session(s) erased")),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("hospital {b}: retention off")),
        "{printed}"
    );

    // The policy change and the erasure are audited (reading analytics is too, so
    // count before the next read).
    let audited = repo::audit::count_for(&app.store, "hospital", a)
        .await
        .expect("audit");
    assert_eq!(audited - audited_before, 2);

    let old = session(&app, a_old).await;
    assert_erased(&old);
    assert_eq!(figures(&old), figures(&before[0]), "figures stay");
    assert_eq!(old["rating"], 4);
    assert_eq!(old["duration_seconds"], 900);
    assert_eq!(old["resolved"], true);
    for (id, was) in [
        (a_young, &before[1]),
        (a_today, &before[2]),
        (b_old, &before[3]),
    ] {
        let now = session(&app, id).await;
        assert_eq!(
            &now, was,
            "younger sessions and other hospitals keep their text"
        );
    }
    // History shows the erasure the same way; the figures did not move.
    let listed = history(&app, a).await;
    let row = listed
        .iter()
        .find(|s| s["id"] == a_old)
        .expect("in history");
    assert_erased(row);
    assert_eq!(analytics(&app, a, &from, &to).await, before_a);
    assert_eq!(analytics(&app, b, &from, &to).await, before_b);
    assert_eq!(csv(&app, a).await, csv_a, "the export holds figures only");

    // The run is recorded.
    let view = overview(&app).await;
    let run = &policy_of(&view, a)["last_run"];
    assert_eq!(run["sessions_erased"], 1, "{view}");
    assert_eq!(run["days"], 30);
    assert_eq!(run["started_by"], "command");
    assert_eq!(policy_of(&view, b)["last_run"], Value::Null, "{view}");
    assert_eq!(policy_of(&view, b)["source"], "off");

    // A second pass finds nothing more to do, and says so.
    let printed = retention_run(&app.db.url, &[]);
    assert!(
        printed.contains(&format!("hospital {a}: 0 session(s) erased")),
        "{printed}"
    );

    // 0 days: text goes at the first pass after the end, today's call included.
    let (status, body) = put_days(&app, &app.admin_token, a, json!({"days": 0})).await;
    assert_eq!(status, 200, "{body}");
    // A call that ends but is not rated yet.
    let unrated = live_call(&app, &nurse_a, &consultant, &mut ws, SUMMARY, false).await;
    retention_run(&app.db.url, &[]);
    for (id, was) in [(a_young, &before[1]), (a_today, &before[2])] {
        let now = session(&app, id).await;
        assert_erased(&now);
        assert_eq!(figures(&now), figures(was));
    }
    assert_erased(&session(&app, unrated).await);
    assert_eq!(session(&app, b_old).await, before[3], "B is untouched");

    // Feedback given after the erasure is kept until the next pass, which erases it
    // and leaves the rating.
    rate_call(&app, &nurse_a, unrated).await;
    let rated = session(&app, unrated).await;
    assert_eq!(rated["feedback"], FEEDBACK);
    assert_eq!(rated["issue_summary"], Value::Null);
    retention_run(&app.db.url, &[]);
    let rated = session(&app, unrated).await;
    assert_erased(&rated);
    assert_eq!(rated["rating"], 5);
    assert_eq!(analytics(&app, b, &from, &to).await, before_b);

    // A live session is never touched, whatever the retention.
    let (status, body) = app
        .post(
            Some(&nurse_a.token),
            "/api/support/request",
            json!({"department": "ER", "issue_summary": SUMMARY}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let live = body["session"]["id"].as_i64().expect("id");
    retention_run(&app.db.url, &[]);
    assert_kept(&session(&app, live).await, SUMMARY);
}

async fn off_erases_nothing(backend: Backend) {
    let app = app(backend).await;
    let a = app.create_hospital_direct("Alpha General", "premium").await;
    let nurse = app
        .create_user_direct("n@a.test", "N", "hospital_staff", Some(a))
        .await;
    let consultant = app
        .create_user_direct("c@n.test", "C", "consultant", None)
        .await;
    let ids = import(
        &app.store,
        &[
            past(a, nurse, consultant, 4000),
            past(a, nurse, consultant, 1),
        ],
    )
    .await;
    let before = [session(&app, ids[0]).await, session(&app, ids[1]).await];

    let printed = retention_run(&app.db.url, &[]);
    assert!(printed.contains("retention off"), "{printed}");
    // A retention set and taken back is off again.
    let (status, _) = put_days(&app, &app.admin_token, a, json!({"days": 1})).await;
    assert_eq!(status, 200);
    let (status, body) = put_days(&app, &app.admin_token, a, json!({"days": null})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["days"], Value::Null);
    assert_eq!(body["effective_days"], Value::Null);
    assert_eq!(body["source"], "off");
    let printed = retention_run(&app.db.url, &[]);
    assert!(
        printed.contains("0 session(s) erased in total"),
        "{printed}"
    );

    for (id, was) in ids.iter().zip(&before) {
        let now = session(&app, *id).await;
        assert_kept(&now, SUMMARY);
        assert_eq!(&now, was);
    }
    let view = overview(&app).await;
    assert_eq!(view["default_days"], Value::Null);
    assert_eq!(policy_of(&view, a)["last_run"], Value::Null, "{view}");
}

/// `RETENTION_DAYS` on the server applies to hospitals without their own, and the
/// server's job erases on its own: at start-up, and again each
/// `RETENTION_SWEEP_SECS`.
async fn the_server_default_applies_and_the_job_runs_on_its_own(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut config = common::test_config(&db);
    config.retention.retention_days = Some(30);
    config.retention.retention_sweep_secs = 0.3;
    config.retention.retention_batch_size = 2;
    // The history is there before the server starts.
    let store = Db::connect(&config.db).await.expect("store");
    let a = repo::hospitals::create(&store, "Alpha", nicehr_support::model::Plan::Premium, "UTC")
        .await
        .expect("hospital")
        .id;
    let b = repo::hospitals::create(&store, "Beta", nicehr_support::model::Plan::Premium, "UTC")
        .await
        .expect("hospital")
        .id;
    let users = |email: &'static str, role: &'static str, hospital: Option<HospitalId>| {
        let store = store.clone();
        async move {
            nicehr_support::accounts::create_user(
                &store,
                nicehr_support::accounts::NewUserInput {
                    email: email.into(),
                    name: email.into(),
                    role: role.into(),
                    password: common::PASSWORD.into(),
                    hospital_id: hospital,
                },
                &nicehr_support::accounts::PasswordPolicy::default(),
            )
            .await
            .expect("user")
            .id
            .0
        }
    };
    let nurse_a = users("n@a.test", "hospital_staff", Some(a)).await;
    let nurse_b = users("n@b.test", "hospital_staff", Some(b)).await;
    let consultant = users("c@n.test", "consultant", None).await;
    // A keeps text for a year of its own; B follows the server (30 days).
    repo::retention::set_policy(&store, a, Some(365), UserId(consultant), repo::now())
        .await
        .expect("policy");
    let mut old_b = Vec::new();
    for _ in 0..5 {
        old_b.push(past(b.0, nurse_b, consultant, 40));
    }
    let old_b = import(&store, &old_b).await;
    let old_a = import(&store, &[past(a.0, nurse_a, consultant, 40)]).await[0];

    let app = TestApp::start_on(db, config).await;
    for id in &old_b {
        wait_until_erased(&app, *id).await;
    }
    assert_kept(&session(&app, old_a).await, SUMMARY);
    // The start-up pass found all five (in batches of two) and recorded it once.
    let runs = runs_of(&app, b).await;
    assert!(
        runs.iter().any(|r| r.sessions_erased == 5
            && r.retention_days == 30
            && r.started_by == RetentionTrigger::Schedule),
        "{runs:?}"
    );
    let view = overview(&app).await;
    assert_eq!(view["default_days"], 30);
    assert_eq!(policy_of(&view, b.0)["last_run"]["started_by"], "schedule");
    let pa = policy_of(&view, a.0);
    assert_eq!(pa["days"], 365);
    assert_eq!(pa["effective_days"], 365);
    assert_eq!(pa["source"], "hospital");
    let pb = policy_of(&view, b.0);
    assert_eq!(pb["days"], Value::Null);
    assert_eq!(pb["effective_days"], 30);
    assert_eq!(pb["source"], "server_default");

    // Later history is found by a later pass, without anyone asking.
    let later = import(&app.store, &[past(b.0, nurse_b, consultant, 31)]).await[0];
    wait_until_erased(&app, later).await;
    let erased: i64 = runs_of(&app, b)
        .await
        .iter()
        .map(|r| r.sessions_erased)
        .sum();
    assert_eq!(erased, 6, "each session counted once");
    // Taking A's own retention away puts it on the server's 30 days.
    let (status, body) = put_days(&app, &app.admin_token, a.0, json!({"days": null})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["source"], "server_default");
    wait_until_erased(&app, old_a).await;
}

async fn runs_of(app: &TestApp, hospital: HospitalId) -> Vec<RetentionRunRow> {
    repo::retention::runs_of(&app.store, hospital, 1000)
        .await
        .expect("runs")
}

/// Polls the session until the job has erased its text (no timing is asserted:
/// the job is waited for, generously).
async fn wait_until_erased(app: &TestApp, id: i64) {
    for _ in 0..600 {
        if !session(app, id).await["text_erased_at"].is_null() {
            assert_erased(&session(app, id).await);
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!(
        "the retention job never erased session {id}: {}",
        overview(app).await
    );
}

async fn only_admins_see_and_set_retention_and_bad_input_is_refused(backend: Backend) {
    let app = app(backend).await;
    let a = app.create_hospital_direct("Alpha General", "premium").await;
    let staff = app.person("n@a.test", "hospital_staff", Some(a)).await;
    let leader = app.person("l@a.test", "hospital_leadership", Some(a)).await;
    let consultant = app.person("c@n.test", "consultant", None).await;
    for token in [&staff.token, &leader.token, &consultant.token] {
        let (status, body) = app.get(Some(token), "/api/admin/retention").await;
        assert_error(status, &body, 403, "forbidden");
        let (status, body) = put_days(&app, token, a, json!({"days": 1})).await;
        assert_error(status, &body, 403, "forbidden");
    }
    let (status, body) = app.get(None, "/api/admin/retention").await;
    assert_error(status, &body, 401, "unauthenticated");

    let (status, _) = put_days(&app, &app.admin_token, a, json!({"days": 90})).await;
    assert_eq!(status, 200);
    let bad = [
        json!({"days": -1}),
        json!({"days": 36501}),
        json!({"days": 9_007_199_254_740_993_i64}),
        json!({"days": 1e300}),
        json!({"days": 1.5}),
        json!({"days": "30"}),
        json!({"days": true}),
        json!({"days": [30]}),
        json!({}),
        json!({"days": 30, "hours": 2}),
        json!([30]),
        json!(30),
    ];
    for body in bad {
        let (status, reply) = put_days(&app, &app.admin_token, a, body.clone()).await;
        assert_error(status, &reply, 400, "validation_failed");
        let message = reply["message"].as_str().unwrap_or_default();
        assert!(
            reply["fields"].is_object() && !message.is_empty(),
            "{body} → {reply}"
        );
    }
    // A huge number beyond any integer type, as raw JSON.
    let resp = app
        .http
        .put(format!("{}/api/admin/hospitals/{a}/retention", app.url))
        .bearer_auth(&app.admin_token)
        .header("Content-Type", "application/json")
        .body(r#"{"days": 123456789012345678901234567890}"#)
        .send()
        .await
        .expect("reply");
    assert_eq!(resp.status().as_u16(), 400);
    let (status, reply) = put_days(&app, &app.admin_token, 999_999, json!({"days": 1})).await;
    assert_error(status, &reply, 404, "not_found");
    let (status, reply) = app
        .put(
            Some(&app.admin_token),
            "/api/admin/hospitals/abc/retention",
            json!({"days": 1}),
        )
        .await;
    assert_eq!(status, 404, "{reply}");

    // Nothing the refused requests sent was stored.
    let view = overview(&app).await;
    assert_eq!(policy_of(&view, a)["days"], 90, "{view}");
    assert_eq!(view["max_days"], 36500);
    let audited = repo::audit::count_for(&app.store, "hospital", a)
        .await
        .expect("audit");
    assert_eq!(audited, 1, "only the accepted change is audited");
}
