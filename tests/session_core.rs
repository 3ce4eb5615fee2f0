//! Issue 12, the session core, through the real server on both backends: the six
//! symptoms it fixes, the event stream (event ids, resume, resync), and take.

mod common;

use std::time::Duration;

use common::{assert_error, Backend, Person, TestApp};
use serde_json::{json, Value};

backend_tests!(
    a_declined_request_is_offered_again_when_nobody_else_is_free,
    a_declined_request_can_be_taken_from_the_queue,
    take_respects_an_offer_held_by_someone_else,
    one_consultant_taking_two_requests_at_once_gets_one,
    the_consultant_wraps_up_after_the_requester_ends,
    a_reloaded_queue_gets_its_offer_with_deadline_and_reasons,
    the_consultant_is_told_when_the_requester_is_gone,
    end_bodies_parse_completely_or_nothing_happens,
    revoked_tokens_close_their_sockets_within_a_second,
    a_socket_resumes_with_every_missed_event_in_order,
    a_resume_from_before_the_kept_stream_asks_for_a_resync,
);

const GRACE_SECS: f64 = 1.0;
const REOFFER_SECS: f64 = 1.0;

async fn app(backend: Backend) -> TestApp {
    TestApp::start_with(backend, |c| {
        c.presence_grace_secs = GRACE_SECS;
        c.reoffer_after_secs = REOFFER_SECS;
        c.offer_timeout_secs = 30.0;
    })
    .await
}

async fn nurse(app: &TestApp, email: &str) -> Person {
    let ward = app.ward(&format!("Ward of {email}"), "premium").await;
    app.person(email, "hospital_staff", Some(ward.hospital_id))
        .await
}

async fn post(app: &TestApp, who: &Person, path: &str, body: Value) -> (u16, Value) {
    app.post(Some(&who.token), path, body).await
}

/// The offered consultant says no.
async fn decline(app: &TestApp, consultant: &Person, sid: i64) {
    let (status, body) = post(
        app,
        consultant,
        &format!("/api/support/decline/{sid}"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

async fn session(app: &TestApp, sid: i64) -> Value {
    let (status, body) = app
        .get(
            Some(&app.admin_token),
            &format!("/api/support/sessions/{sid}"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["session"].clone()
}

/// Symptom 1: Ben, the only consultant, declines; he is asked again after
/// `REOFFER_AFTER_SECS` instead of the request waiting with nobody asked.
async fn a_declined_request_is_offered_again_when_nobody_else_is_free(backend: Backend) {
    let app = app(backend).await;
    let radtech = nurse(&app, "radtech@lakeside.test").await;
    let (ben, mut ben_ws) = app.consultant("ben@nicehr.test", &[]).await;
    let (sid, _) = app.request_support(&radtech, "Radiology", "critical").await;
    ben_ws.expect_offer(sid).await;
    decline(&app, &ben, sid).await;
    let revoked = ben_ws
        .expect_where("support_request_offer_revoked", |f| {
            f["data"]["session_id"] == sid
        })
        .await;
    assert_eq!(revoked["data"]["reason"], "declined");
    // Asked again, once the re-offer time has passed, with the reason saying why.
    let again = ben_ws
        .expect_where("support_request_offered", |f| {
            f["data"]["session"]["id"] == sid
        })
        .await;
    assert!(
        again["data"]["match"]["reasons"]
            .as_array()
            .is_some_and(|r| r
                .iter()
                .any(|x| x.as_str().unwrap_or("").contains("asked again"))),
        "{again}"
    );
    let (status, body) = post(&app, &ben, &format!("/api/support/accept/{sid}"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["status"], "connecting");
}

/// Symptom 1, the other way out: a consultant takes the waiting request.
async fn a_declined_request_can_be_taken_from_the_queue(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.reoffer_after_secs = 600.0).await;
    let radtech = nurse(&app, "radtech@lakeside.test").await;
    let (ben, mut ben_ws) = app.consultant("ben@nicehr.test", &[]).await;
    let mut radtech_ws = app.ws(&radtech.token).await;
    let (sid, _) = app.request_support(&radtech, "Radiology", "critical").await;
    ben_ws.expect_offer(sid).await;
    post(
        &app,
        &ben,
        &format!("/api/support/decline/{sid}"),
        json!({}),
    )
    .await;
    ben_ws
        .expect_none("support_request_offered", Duration::from_millis(500))
        .await;
    let (_, queue) = app.get(Some(&ben.token), "/api/support/queue").await;
    assert_eq!(queue["queue"][0]["session"]["id"], sid);
    assert_eq!(queue["queue"][0]["offered_to"], Value::Null);
    let (status, body) = post(&app, &ben, &format!("/api/support/take/{sid}"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["status"], "connecting");
    assert_eq!(body["session"]["consultant_id"], ben.id);
    assert_eq!(body["session"]["match"]["tier"], "taken");
    let accepted = radtech_ws.expect("support_request_accepted").await;
    assert_eq!(accepted["data"]["session"]["id"], sid);
    // Taken means taken: a second take is a conflict.
    let (status, body) = post(&app, &ben, &format!("/api/support/take/{sid}"), json!({})).await;
    assert_error(status, &body, 409, "conflict");
}

async fn take_respects_an_offer_held_by_someone_else(backend: Backend) {
    let app = app(backend).await;
    let staff = nurse(&app, "n@h.test").await;
    let (_alice, mut alice_ws) = app
        .consultant("alice@nicehr.test", &[("ER", "expert")])
        .await;
    let (bob, _bob_ws) = app.consultant("bob@nicehr.test", &[]).await;
    let (sid, _) = app.request_support(&staff, "ER", "normal").await;
    alice_ws.expect_offer(sid).await;
    let (status, body) = post(&app, &bob, &format!("/api/support/take/{sid}"), json!({})).await;
    assert_error(status, &body, 409, "conflict");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("another consultant"),
        "{body}"
    );
    // The admin may: Alice's offer is withdrawn.
    let (status, body) = app
        .post(
            Some(&app.admin_token),
            &format!("/api/support/take/{sid}"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let revoked = alice_ws.expect("support_request_offer_revoked").await;
    assert_eq!(revoked["data"]["reason"], "accepted_elsewhere");
    // Staff may not take at all.
    let (status, body) = post(&app, &staff, &format!("/api/support/take/{sid}"), json!({})).await;
    assert_error(status, &body, 403, "forbidden");
}

/// Two takes by one consultant at the same moment (two tabs, a double click on two
/// queue rows): one wins, the other is told they are busy, and they are in one call.
/// On PostgreSQL both transactions run at once; each used to count the consultant's
/// calls before the other had committed, and the loser was refused by the unique index
/// behind it, with a message naming the index rather than saying why.
async fn one_consultant_taking_two_requests_at_once_gets_one(backend: Backend) {
    const ROUNDS: usize = 5;
    let app = TestApp::start_with(backend, |c| c.reoffer_after_secs = 600.0).await;
    for round in 0..ROUNDS {
        let email = format!("ben{round}@nicehr.test");
        let (ben, mut ben_ws) = app.consultant(&email, &[]).await;
        let mut waiting = Vec::new();
        let mut requesters = Vec::new();
        for nurse_no in 0..2 {
            let staff = nurse(&app, &format!("n{round}-{nurse_no}@h.test")).await;
            let (sid, _) = app.request_support(&staff, "Radiology", "normal").await;
            ben_ws.expect_offer(sid).await;
            decline(&app, &ben, sid).await;
            waiting.push(sid);
            requesters.push(staff);
        }
        let paths: Vec<String> = waiting
            .iter()
            .map(|sid| format!("/api/support/take/{sid}"))
            .collect();
        let (first, second) = tokio::join!(
            post(&app, &ben, &paths[0], json!({})),
            post(&app, &ben, &paths[1], json!({})),
        );
        let won = [first.0, second.0]
            .iter()
            .filter(|status| **status == 200)
            .count();
        assert_eq!(won, 1, "round {round}: {first:?} {second:?}");
        let lost = if first.0 == 200 { &second } else { &first };
        assert_error(lost.0, &lost.1, 409, "conflict");
        let message = lost.1["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("already in a call"),
            "round {round}: {message}"
        );
        let live: Vec<_> = nicehr_support::db::repo::sessions::all_live(&app.store)
            .await
            .unwrap()
            .into_iter()
            .filter(|s| s.consultant_id.map(|c| c.0) == Some(ben.id))
            .collect();
        assert_eq!(live.len(), 1, "round {round}: {live:?}");
        // Out of the way for the next round: the call ends, the other request is
        // withdrawn, Ben leaves.
        let sid = live[0].id.0;
        let (status, body) = post(&app, &ben, &format!("/api/support/end/{sid}"), json!({})).await;
        assert_eq!(status, 200, "{body}");
        let other = usize::from(waiting[0] == sid);
        let (status, body) = post(
            &app,
            &requesters[other],
            &format!("/api/support/cancel/{}", waiting[other]),
            json!({}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = post(
            &app,
            &ben,
            "/api/consultants/status",
            json!({"status": "away"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
}

/// Symptom 2: the requester ends; the consultant records notes and "resolved"
/// afterwards, once, and it counts as resolved.
async fn the_consultant_wraps_up_after_the_requester_ends(backend: Backend) {
    let app = app(backend).await;
    let staff = nurse(&app, "n@h.test").await;
    let (c, mut c_ws) = app.consultant("c@nicehr.test", &[]).await;
    let (sid, _) = app.request_support(&staff, "ER", "normal").await;
    c_ws.expect_offer(sid).await;
    post(&app, &c, &format!("/api/support/accept/{sid}"), json!({})).await;
    // The requester does not record an outcome.
    let (status, body) = post(
        &app,
        &staff,
        &format!("/api/support/end/{sid}"),
        json!({"resolved": true}),
    )
    .await;
    assert_error(status, &body, 400, "validation_failed");
    let (status, body) = post(&app, &staff, &format!("/api/support/end/{sid}"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["resolved"], Value::Null);
    let ended = c_ws.expect("support_session_ended").await;
    assert_eq!(ended["data"]["session"]["wrapped_up_at"], Value::Null);
    assert!(
        ended["event_id"].is_i64(),
        "frames from events carry their id: {ended}"
    );
    // Only the consultant (or an admin) wraps up.
    let (status, body) = post(
        &app,
        &staff,
        &format!("/api/support/wrapup/{sid}"),
        json!({"resolved": true}),
    )
    .await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = post(
        &app,
        &c,
        &format!("/api/support/wrapup/{sid}"),
        json!({"resolved": "yes"}),
    )
    .await;
    assert_error(status, &body, 400, "validation_failed");
    assert!(body["fields"]["resolved"].is_string(), "{body}");
    let (status, body) = post(
        &app,
        &c,
        &format!("/api/support/wrapup/{sid}"),
        json!({"resolution_notes": "Reset the label printer queue", "resolved": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["resolved"], true);
    assert_eq!(
        body["session"]["resolution_notes"],
        "Reset the label printer queue"
    );
    assert!(body["session"]["wrapped_up_at"].is_string());
    let (status, body) = post(
        &app,
        &c,
        &format!("/api/support/wrapup/{sid}"),
        json!({"resolved": false}),
    )
    .await;
    assert_error(status, &body, 409, "conflict");
    assert_eq!(
        session(&app, sid).await["resolved"],
        true,
        "the first wrap-up stands"
    );
    // First-call resolution counts it.
    let (status, report) = app
        .get(Some(&app.admin_token), "/api/support/analytics")
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["first_call_resolution_rate"], 1.0, "{report}");
    // A wrap-up before the end is refused by the lifecycle table.
    let (sid2, _) = app.request_support(&staff, "ER", "normal").await;
    c_ws.expect_offer(sid2).await;
    post(&app, &c, &format!("/api/support/accept/{sid2}"), json!({})).await;
    let (status, body) = post(
        &app,
        &c,
        &format!("/api/support/wrapup/{sid2}"),
        json!({"resolved": true}),
    )
    .await;
    assert_error(status, &body, 409, "conflict");
    assert!(
        body["message"].as_str().unwrap().contains("connecting"),
        "{body}"
    );
}

/// Symptom 3: after a reload the queue still has the offer's deadline and reasons.
async fn a_reloaded_queue_gets_its_offer_with_deadline_and_reasons(backend: Backend) {
    let app = app(backend).await;
    let staff = nurse(&app, "n@h.test").await;
    let (alice, mut alice_ws) = app
        .consultant("alice@nicehr.test", &[("ER", "expert")])
        .await;
    let (bob, _bob_ws) = app
        .consultant("bob@nicehr.test", &[("Pharmacy", "expert")])
        .await;
    let before = alice_ws.joined_at();
    let (sid, _) = app.request_support(&staff, "ER", "normal").await;
    let offered = alice_ws
        .expect_where("support_request_offered", |f| {
            f["data"]["session"]["id"] == sid
        })
        .await;
    drop(alice_ws);
    let (_, queue) = app.get(Some(&alice.token), "/api/support/queue").await;
    let item = &queue["queue"][0];
    assert_eq!(item["offered_to"], alice.id);
    assert_eq!(item["offer"]["expires_at"], offered["data"]["expires_at"]);
    assert_eq!(item["offer"]["match"], offered["data"]["match"]);
    assert!(item["offer"]["match"]["reasons"]
        .as_array()
        .is_some_and(|r| !r.is_empty()));
    // Someone else's offer shows who holds it, not its details.
    let (_, queue) = app.get(Some(&bob.token), "/api/support/queue").await;
    assert_eq!(queue["queue"][0]["offered_to"], alice.id);
    assert_eq!(queue["queue"][0]["offer"], Value::Null);
    // A socket resuming from before the offer gets the offer frame itself back.
    let mut resumed = app.ws_since(&alice.token, before).await;
    let again = resumed
        .expect_where("support_request_offered", |f| {
            f["data"]["session"]["id"] == sid
        })
        .await;
    assert_eq!(again["event_id"], offered["event_id"]);
    assert_eq!(again["data"]["expires_at"], offered["data"]["expires_at"]);
    resumed.expect("resumed").await;
}

/// Symptom 4: the consultant accepts a request whose requester closed the tab, and
/// is told the requester is gone; when the requester comes back, told that too.
async fn the_consultant_is_told_when_the_requester_is_gone(backend: Backend) {
    let app = app(backend).await;
    let staff = nurse(&app, "n@h.test").await;
    let (c, mut c_ws) = app.consultant("c@nicehr.test", &[]).await;
    let staff_ws = app.ws(&staff.token).await;
    let (sid, _) = app.request_support(&staff, "ER", "normal").await;
    c_ws.expect_offer(sid).await;
    staff_ws.close().await;
    tokio::time::sleep(Duration::from_secs_f64(GRACE_SECS + 0.5)).await;
    post(&app, &c, &format!("/api/support/accept/{sid}"), json!({})).await;
    let left = c_ws
        .expect_where("support_party_left", |f| f["data"]["session_id"] == sid)
        .await;
    assert_eq!(left["data"]["user_id"], staff.id);
    assert!(left["event_id"].is_i64());
    let mut staff_ws = app.ws(&staff.token).await;
    let back = c_ws
        .expect_where("support_party_returned", |f| f["data"]["session_id"] == sid)
        .await;
    assert_eq!(back["data"]["user_id"], staff.id);
    // A short drop (within the grace) tells nobody anything.
    drop(staff_ws);
    staff_ws = app.ws(&staff.token).await;
    c_ws.expect_none(
        "support_party_left",
        Duration::from_secs_f64(GRACE_SECS + 0.5),
    )
    .await;
    staff_ws.close().await;
}

/// Symptom 5: a bad end body is 400 naming the field, and the call goes on.
async fn end_bodies_parse_completely_or_nothing_happens(backend: Backend) {
    let app = app(backend).await;
    let staff = nurse(&app, "n@h.test").await;
    let (c, mut c_ws) = app.consultant("c@nicehr.test", &[]).await;
    let (sid, _) = app.request_support(&staff, "ER", "normal").await;
    c_ws.expect_offer(sid).await;
    post(&app, &c, &format!("/api/support/accept/{sid}"), json!({})).await;
    let url = format!("{}/api/support/end/{sid}", app.url);
    let long_notes = "n".repeat(5001);
    let cases: Vec<(String, &str)> = vec![
        (json!({"resolved": "yes"}).to_string(), "resolved"),
        (
            json!({"resolution_notes": 5, "resolved": true}).to_string(),
            "resolution_notes",
        ),
        (
            json!({"resolved": true, "mood": "great"}).to_string(),
            "mood",
        ),
        ("{\"resolved\": tru".to_string(), "body"),
        (
            json!({"resolution_notes": long_notes, "resolved": true}).to_string(),
            "resolution_notes",
        ),
    ];
    for (body, field) in cases {
        let resp = app
            .http
            .post(&url)
            .bearer_auth(&c.token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let reply: Value = resp.json().await.unwrap();
        assert_error(status, &reply, 400, "validation_failed");
        assert!(reply["fields"][field].is_string(), "{body} → {reply}");
        assert_eq!(
            session(&app, sid).await["status"],
            "connecting",
            "{body} ended the call"
        );
    }
    let (status, body) = post(
        &app,
        &c,
        &format!("/api/support/end/{sid}"),
        json!({"resolution_notes": "Driver reinstalled", "resolved": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["resolution_notes"], "Driver reinstalled");
    assert_eq!(body["session"]["resolved"], true);
    // No body at all is an end without an outcome, not an error.
    let (sid2, _) = app.request_support(&staff, "ER", "normal").await;
    c_ws.expect_offer(sid2).await;
    post(&app, &c, &format!("/api/support/accept/{sid2}"), json!({})).await;
    let resp = app
        .http
        .post(format!("{}/api/support/end/{sid2}", app.url))
        .bearer_auth(&staff.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

/// Symptom 6: logout, a password change (from another process: straight into
/// storage, as `admin set-password` does) and expiry close the token's sockets
/// with 4001, within a second, and nothing more is delivered.
async fn revoked_tokens_close_their_sockets_within_a_second(backend: Backend) {
    let app = app(backend).await;
    let staff = nurse(&app, "n@h.test").await;
    let (c, mut c_ws) = app.consultant("c@nicehr.test", &[]).await;
    let (status, _) = post(&app, &c, "/api/auth/logout", json!({})).await;
    assert_eq!(status, 200);
    let (closed, frames) = c_ws.expect_close(Duration::from_secs(1)).await;
    assert_eq!(closed.map(|(code, _)| code), Some(4001), "{frames:?}");

    // Another process revokes: the watch finds it.
    let c_token = app.login("c@nicehr.test", common::PASSWORD).await;
    let mut c_ws = app.ws(&c_token).await;
    nicehr_support::db::repo::tokens::revoke_all(&app.store, nicehr_support::model::UserId(c.id))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let (closed, _) = c_ws.expect_close(Duration::from_millis(1500)).await;
    assert_eq!(closed.map(|(code, _)| code), Some(4001));
    assert!(started.elapsed() < Duration::from_millis(1500));
    // A request now reaches nobody on that token: its sockets are gone, and the
    // token is refused at the door.
    let (sid, _) = app.request_support(&staff, "ER", "normal").await;
    let (_, queue) = app.get(Some(&app.admin_token), "/api/support/queue").await;
    assert_eq!(queue["queue"][0]["session"]["id"], sid);
    let refused = tokio_tungstenite::connect_async(format!("{}?token={c_token}", app.ws_url)).await;
    assert!(refused.is_err(), "a revoked token opens no socket");

    // Expiry: a token minted to expire in a moment closes its socket when it does.
    let token = nicehr_support::auth::new_token();
    nicehr_support::db::repo::tokens::insert(
        &app.store,
        nicehr_support::model::UserId(staff.id),
        &nicehr_support::auth::token_hash(&token),
        nicehr_support::db::repo::now() + chrono::Duration::milliseconds(1200),
    )
    .await
    .unwrap();
    let mut expiring = app.ws(&token).await;
    let (closed, _) = expiring.expect_close(Duration::from_secs(3)).await;
    assert_eq!(closed.map(|(code, _)| code), Some(4001));
}

/// Every frame a dropped socket missed comes back, in stream order, then `resumed`.
async fn a_socket_resumes_with_every_missed_event_in_order(backend: Backend) {
    let app = app(backend).await;
    let staff = nurse(&app, "n@h.test").await;
    let (c, c_ws) = app.consultant("c@nicehr.test", &[]).await;
    let cursor = c_ws.joined_at();
    c_ws.close().await;
    // While the consultant is away (within the grace period they stay available):
    let (sid, _) = app.request_support(&staff, "ER", "normal").await;
    // The offer is part of what the socket missed: cancel only once it exists.
    assert_eq!(app.offered_to(sid).await, c.id);
    let (status, body) = post(
        &app,
        &staff,
        &format!("/api/support/cancel/{sid}"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (sid2, _) = app.request_support(&staff, "ER", "urgent").await;
    let mut ws = app.ws_since(&c.token, cursor).await;
    let mut frames = Vec::new();
    loop {
        let frame = ws.collect(Duration::from_millis(300)).await;
        let done = frame.iter().any(|f| f["type"] == "resumed");
        frames.extend(frame);
        if done {
            break;
        }
        assert!(frames.len() < 100, "no resumed frame: {frames:?}");
    }
    // The replay, then `resumed`, then live frames: together, nothing is missing
    // (the second offer may be written just after the socket resumed).
    frames.extend(ws.collect(Duration::from_millis(500)).await);
    let end = frames.iter().position(|f| f["type"] == "resumed").unwrap();
    let kinds: Vec<&str> = frames.iter().map(|f| f["type"].as_str().unwrap()).collect();
    let at = |kind: &str, id: i64| {
        frames
            .iter()
            .position(|f| {
                f["type"] == kind
                    && (f["data"]["session"]["id"] == id || f["data"]["session_id"] == id)
            })
            .unwrap_or_else(|| panic!("no {kind} of {id} in {kinds:?}"))
    };
    let order = [
        at("support_request_new", sid),
        at("support_request_offered", sid),
        at("support_request_offer_revoked", sid),
        at("support_request_cancelled", sid),
        at("support_request_new", sid2),
        at("support_request_offered", sid2),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{kinds:?}");
    let ids: Vec<i64> = frames
        .iter()
        .filter_map(|f| f["event_id"].as_i64())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] <= w[1]),
        "in stream order: {ids:?}"
    );
    assert!(ids.iter().all(|id| *id > cursor));
    let resumed = frames[end].clone();
    assert_eq!(resumed["data"]["from"], cursor);
    let to = resumed["data"]["to"].as_i64().unwrap();
    assert!(frames[..end]
        .iter()
        .all(|f| f["event_id"].as_i64().is_some_and(|id| id <= to)));
    assert!(frames[end + 1..]
        .iter()
        .filter_map(|f| f["event_id"].as_i64())
        .all(|id| id > to));
    // Live frames follow, and nothing replayed is sent twice.
    let (status, body) = post(&app, &c, &format!("/api/support/accept/{sid2}"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let accepted = ws.expect("support_request_accepted").await;
    assert!(accepted["event_id"].as_i64().unwrap() > resumed["data"]["to"].as_i64().unwrap());
    let rest = ws.collect(Duration::from_millis(300)).await;
    assert!(
        !rest.iter().any(|f| f["type"] == "support_request_offered"),
        "a replayed offer came again live: {rest:?}"
    );
    // Staff see only their own: a resume from 0 gives the nurse no offers.
    let mut nurse_ws = app.ws_since(&staff.token, 0).await;
    let seen = nurse_ws.collect(Duration::from_millis(500)).await;
    assert!(seen.iter().any(|f| f["type"] == "resumed"), "{seen:?}");
    assert!(
        !seen
            .iter()
            .any(|f| f["type"] == "support_request_offered" || f["type"] == "support_request_new"),
        "{seen:?}"
    );
}

async fn a_resume_from_before_the_kept_stream_asks_for_a_resync(backend: Backend) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use nicehr_support::db::schema::event_stream;
    let app = app(backend).await;
    let staff = nurse(&app, "n@h.test").await;
    let (_c, c_ws) = app.consultant("c@nicehr.test", &[]).await;
    let last = c_ws.joined_at();
    // Storage keeps the stream from here on (as after the migration that typed it).
    let floor = last + 1;
    match &app.store {
        nicehr_support::db::Db::Sqlite { write, .. } => {
            let mut conn = write.get().await.unwrap();
            diesel::update(event_stream::table)
                .set(event_stream::replay_floor.eq(floor))
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        nicehr_support::db::Db::Postgres(pool) => {
            let mut conn = pool.get().await.unwrap();
            diesel::update(event_stream::table)
                .set(event_stream::replay_floor.eq(floor))
                .execute(&mut *conn)
                .await
                .unwrap();
        }
    }
    let mut ws = app.ws_since(&staff.token, last).await;
    let resync = ws.expect("resync_required").await;
    assert_eq!(resync["data"]["since"], last);
    assert!(resync["data"]["last_event_id"].is_i64());
    // Negative or non-numeric `since` is refused at the door.
    for bad in ["-1", "abc"] {
        let resp = app
            .http
            .get(format!("{}/ws?token={}&since={bad}", app.url, staff.token))
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_error(status, &body, 400, "validation_failed");
        assert!(body["fields"]["since"].is_string());
    }
    let _ = c_ws;
}
