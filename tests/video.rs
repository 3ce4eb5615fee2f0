//! Issue 4: video calls through the real server, with Daily settings pointed at the
//! local stand-in and with the built-in WebRTC provider, both backends.

mod common;

use std::future::Future;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::{assert_error, use_daily, Backend, Person, TestApp, WsClient, DAILY_TEST_KEY};
use nicehr_support::config::ServeArgs;
use nicehr_support::db::repo;
use nicehr_support::video::daily::{sign_webhook, uuid_like_user_id};
use nicehr_support::video::{session_id_from_room_name, DailyStandIn};
use serde_json::{json, Value};

backend_tests!(
    daily_call_creates_one_room_tokens_each_party_and_deletes_it,
    daily_down_at_accept_keeps_the_request_queued,
    daily_slow_at_accept_is_unavailable_and_its_stray_room_is_swept,
    daily_rate_limiting_is_retried,
    daily_delete_failure_still_completes_and_the_sweeper_deletes_later,
    daily_rooms_are_extended_while_the_call_lasts,
    leftover_rooms_are_deleted_at_start_up,
    daily_webhooks_mark_joins_and_record_meeting_events,
    builtin_call_hands_out_ice_servers_and_keeps_outsiders_out,
);

/// A request from a nurse, offered to a consultant; `outsider` is a second
/// consultant who has nothing to do with it.
struct Call {
    nurse: Person,
    nurse_ws: WsClient,
    consultant: Person,
    consultant_ws: WsClient,
    outsider: Person,
    outsider_ws: WsClient,
    sid: i64,
}

async fn offered_call(app: &TestApp) -> Call {
    let ward = app.ward("Riverside", "enterprise").await;
    let nurse = app
        .person("nurse@h.org", "hospital_staff", Some(ward.hospital_id))
        .await;
    let nurse_ws = app.ws(&nurse.token).await;
    let (consultant, mut consultant_ws) = app.consultant("alice@c.org", &[("ER", "expert")]).await;
    let (outsider, outsider_ws) = app.consultant("bob@c.org", &[]).await;
    let (sid, _) = app.request_support(&nurse, "ER", "urgent").await;
    consultant_ws.expect_offer(sid).await;
    Call {
        nurse,
        nurse_ws,
        consultant,
        consultant_ws,
        outsider,
        outsider_ws,
        sid,
    }
}

async fn accept(app: &TestApp, who: &Person, sid: i64) -> (u16, Value) {
    app.post(
        Some(&who.token),
        &format!("/api/support/accept/{sid}"),
        json!({}),
    )
    .await
}

async fn join(app: &TestApp, who: &Person, sid: i64) -> (u16, Value) {
    app.post(
        Some(&who.token),
        &format!("/api/support/join/{sid}"),
        json!({}),
    )
    .await
}

/// Ends the call as `who`; only the consultant records an outcome.
async fn end(app: &TestApp, who: &Person, sid: i64) -> (u16, Value) {
    let (_, session) = app
        .get(Some(&who.token), &format!("/api/support/sessions/{sid}"))
        .await;
    let body = if session["session"]["consultant_id"] == who.id {
        json!({"resolved": true})
    } else {
        json!({})
    };
    app.post(Some(&who.token), &format!("/api/support/end/{sid}"), body)
        .await
}

async fn session_status(app: &TestApp, sid: i64) -> String {
    let (status, body) = app
        .get(
            Some(&app.admin_token),
            &format!("/api/support/sessions/{sid}"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["session"]["status"].as_str().unwrap().to_string()
}

async fn event_kinds(app: &TestApp, sid: i64) -> Vec<String> {
    let (_, body) = app
        .get(
            Some(&app.admin_token),
            &format!("/api/support/sessions/{sid}"),
        )
        .await;
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn room_deleted(app: &TestApp, sid: i64) -> bool {
    repo::sessions::get(&app.store, nicehr_support::model::SessionId(sid))
        .await
        .unwrap()
        .unwrap()
        .room_deleted
}

/// Polls until `check` holds, for up to 10 s.
async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn count_calls(standin: &DailyStandIn, method: &str, path: &str) -> usize {
    standin
        .calls()
        .iter()
        .filter(|(m, p)| m == method && p == path)
        .count()
}

/// The room object's `exp`, as the stand-in holds it.
fn room_exp(standin: &DailyStandIn, name: &str) -> i64 {
    standin.room(name).expect("room exists")["config"]["exp"]
        .as_i64()
        .expect("exp")
}

async fn daily_call_creates_one_room_tokens_each_party_and_deletes_it(backend: Backend) {
    let standin = DailyStandIn::start(DAILY_TEST_KEY);
    // Like a HIPAA domain: the room gets a name we did not ask for.
    standin.hipaa_rename(true);
    let app = TestApp::start_with(backend, |c| use_daily(c, &standin)).await;
    let mut call = offered_call(&app).await;
    let sid = call.sid;

    let (status, body) = accept(&app, &call.consultant, sid).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["status"], "connecting");
    let rooms = standin.rooms();
    assert_eq!(rooms.len(), 1, "exactly one room: {rooms:?}");
    assert_eq!(count_calls(&standin, "POST", "/v1/rooms"), 1);
    let room = rooms[0].clone();
    assert!(
        !room.starts_with("nicehr-"),
        "renamed by the domain: {room}"
    );
    let stored = standin.room(&room).unwrap();
    assert_eq!(stored["privacy"], "private");
    assert_eq!(stored["config"]["enable_screenshare"], true);
    assert_eq!(stored["config"]["eject_at_room_exp"], false);

    // Each party gets its own token, scoped to the room Daily returned.
    let (status, nurse_join) = join(&app, &call.nurse, sid).await;
    assert_eq!(status, 200, "{nurse_join}");
    assert_eq!(nurse_join["provider"], "daily");
    assert_eq!(nurse_join["room_name"], room.as_str());
    assert_eq!(nurse_join["room_url"], stored["url"]);
    assert_eq!(nurse_join["ice_servers"], json!([]));
    let (status, consultant_join) = join(&app, &call.consultant, sid).await;
    assert_eq!(status, 200, "{consultant_join}");
    assert_eq!(consultant_join["room_name"], room.as_str());
    let nurse_token = nurse_join["token"].as_str().expect("nurse token");
    let consultant_token = consultant_join["token"].as_str().expect("consultant token");
    assert_ne!(nurse_token, consultant_token);
    let now = chrono::Utc::now().timestamp();
    for (token, person, owner) in [
        (nurse_token, &call.nurse, false),
        (consultant_token, &call.consultant, true),
    ] {
        let claims = standin
            .verify_token(token)
            .expect("signed with the API key");
        assert_eq!(claims["r"], room.as_str(), "{claims}");
        assert_eq!(claims["o"], owner, "{claims}");
        assert_eq!(claims["ud"], uuid_like_user_id(person.id), "{claims}");
        assert!(
            claims["exp"].as_i64().is_some_and(|exp| exp > now),
            "{claims}"
        );
    }
    assert_eq!(standin.tokens_issued().len(), 2);

    // A third user can neither join nor signal into the call, and gets no token.
    let (status, body) = join(&app, &call.outsider, sid).await;
    assert!(status == 403 || status == 404, "{status} {body}");
    assert_eq!(standin.tokens_issued().len(), 2);
    call.outsider_ws
        .send(
            "signal",
            json!({"session_id": sid, "payload": {"kind": "ice"}}),
        )
        .await;
    // An outsider learns nothing about the session: it "does not exist" for them.
    let err = call.outsider_ws.expect("error").await;
    assert_eq!(err["data"]["error"], "not_found");
    call.nurse_ws
        .expect_none("signal", Duration::from_millis(200))
        .await;

    call.nurse_ws
        .send("call_joined", json!({"session_id": sid}))
        .await;
    call.consultant_ws
        .send("call_joined", json!({"session_id": sid}))
        .await;
    call.nurse_ws.expect("support_session_started").await;

    // End deletes the room, and the session remembers that it is gone.
    let (status, body) = end(&app, &call.consultant, sid).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["status"], "completed");
    eventually("the room is deleted", || async {
        standin.rooms().is_empty()
    })
    .await;
    eventually("the session's room is marked deleted", || {
        room_deleted(&app, sid)
    })
    .await;
    assert!(count_calls(&standin, "DELETE", &format!("/v1/rooms/{room}")) >= 1);
}

async fn daily_down_at_accept_keeps_the_request_queued(backend: Backend) {
    let standin = DailyStandIn::start(DAILY_TEST_KEY);
    let app = TestApp::start_with(backend, |c| use_daily(c, &standin)).await;
    let mut call = offered_call(&app).await;
    let sid = call.sid;

    // More 500s than the attempts an accept makes.
    standin.fail_next(1000, 500);
    let (status, body) = accept(&app, &call.consultant, sid).await;
    assert_error(status, &body, 503, "unavailable");
    assert!(standin.rooms().is_empty());

    // Nothing lost: still pending, still queued, and offered again.
    assert_eq!(session_status(&app, sid).await, "pending");
    let (status, queue) = app
        .get(Some(&call.consultant.token), "/api/support/queue")
        .await;
    assert_eq!(status, 200, "{queue}");
    assert!(
        queue["queue"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["session"]["id"] == sid),
        "{queue}"
    );
    let revoked = call
        .consultant_ws
        .expect_where("support_request_offer_revoked", |f| {
            f["data"]["session_id"] == sid
        })
        .await;
    assert_eq!(revoked["data"]["reason"], "unavailable");
    call.consultant_ws.expect_offer(sid).await;
    call.nurse_ws
        .expect_none("support_request_accepted", Duration::from_millis(100))
        .await;

    // Daily is back: the same request is accepted.
    standin.fail_next(0, 500);
    let (status, body) = accept(&app, &call.consultant, sid).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["status"], "connecting");
    assert_eq!(standin.rooms().len(), 1);
    call.nurse_ws.expect("support_request_accepted").await;
}

async fn daily_slow_at_accept_is_unavailable_and_its_stray_room_is_swept(backend: Backend) {
    let standin = DailyStandIn::start(DAILY_TEST_KEY);
    let app = TestApp::start_with(backend, |c| {
        use_daily(c, &standin);
        c.daily_timeout_secs = 0.4;
        c.daily_max_retries = 1;
        // The re-offer must outlast the pause below.
        c.offer_timeout_secs = 30.0;
    })
    .await;
    let mut call = offered_call(&app).await;
    let sid = call.sid;

    standin.set_delay(Duration::from_millis(1500));
    let (status, body) = accept(&app, &call.consultant, sid).await;
    assert_error(status, &body, 503, "unavailable");
    assert_eq!(session_status(&app, sid).await, "pending");
    // The slow Daily did create the room; we never heard back.
    let strays = standin.rooms();
    assert!(!strays.is_empty());
    assert!(strays
        .iter()
        .all(|r| session_id_from_room_name(r) == Some(sid)));

    // While the request is pending its room is kept: an accept may be creating it.
    standin.set_delay(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(standin.rooms(), strays);

    call.consultant_ws.expect_offer(sid).await;
    let (status, body) = accept(&app, &call.consultant, sid).await;
    assert_eq!(status, 200, "{body}");
    let (_, joined) = join(&app, &call.nurse, sid).await;
    let live = joined["room_name"].as_str().unwrap().to_string();
    assert!(!strays.contains(&live));
    eventually("only the call's own room is left", || async {
        standin.rooms() == vec![live.clone()]
    })
    .await;
}

async fn daily_rate_limiting_is_retried(backend: Backend) {
    let standin = DailyStandIn::start(DAILY_TEST_KEY);
    let app = TestApp::start_with(backend, |c| {
        use_daily(c, &standin);
        // Only the start-up sweep, so no sweep uses up the injected 429s.
        c.room_sweep_secs = 3600.0;
        // Enough backoff to outlast a one-second rate-limit window.
        c.daily_max_retries = 3;
        c.daily_backoff_ms = 400;
    })
    .await;
    let call = offered_call(&app).await;
    let sid = call.sid;

    standin.fail_next(2, 429);
    let (status, body) = accept(&app, &call.consultant, sid).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(count_calls(&standin, "POST", "/v1/rooms"), 3);
    assert_eq!(standin.rooms().len(), 1);

    // One request per second: the second join is throttled, backs off and succeeds.
    standin.set_rate_limit(1);
    let (a, b) = tokio::join!(
        join(&app, &call.nurse, sid),
        join(&app, &call.consultant, sid)
    );
    assert_eq!(a.0, 200, "{}", a.1);
    assert_eq!(b.0, 200, "{}", b.1);
    assert!(a.1["token"].is_string() && b.1["token"].is_string());
    assert!(count_calls(&standin, "POST", "/v1/meeting-tokens") > 2);
    assert_eq!(standin.tokens_issued().len(), 2);
}

async fn daily_delete_failure_still_completes_and_the_sweeper_deletes_later(backend: Backend) {
    let standin = DailyStandIn::start(DAILY_TEST_KEY);
    let app = TestApp::start_with(backend, |c| use_daily(c, &standin)).await;
    let call = offered_call(&app).await;
    let sid = call.sid;
    assert_eq!(accept(&app, &call.consultant, sid).await.0, 200);
    let room = standin.rooms()[0].clone();

    standin.fail_next(100_000, 503);
    let (status, body) = end(&app, &call.nurse, sid).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["status"], "completed");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(standin.rooms(), vec![room.clone()]);
    assert!(!room_deleted(&app, sid).await);

    standin.fail_next(0, 503);
    eventually("the sweeper deletes the room", || async {
        standin.rooms().is_empty()
    })
    .await;
    eventually("the session's room is marked deleted", || {
        room_deleted(&app, sid)
    })
    .await;
}

async fn daily_rooms_are_extended_while_the_call_lasts(backend: Backend) {
    let standin = DailyStandIn::start(DAILY_TEST_KEY);
    let app = TestApp::start_with(backend, |c| {
        use_daily(c, &standin);
        c.room_extend_secs = 0.3;
    })
    .await;
    let call = offered_call(&app).await;
    let sid = call.sid;
    assert_eq!(accept(&app, &call.consultant, sid).await.0, 200);
    let room = standin.rooms()[0].clone();
    let first = room_exp(&standin, &room);
    assert!(first > chrono::Utc::now().timestamp());

    eventually("the room's expiry moves forward", || async {
        room_exp(&standin, &room) > first
    })
    .await;
    assert!(count_calls(&standin, "POST", &format!("/v1/rooms/{room}")) >= 1);

    // Once the call is over its room is no longer extended (it is deleted).
    assert_eq!(end(&app, &call.consultant, sid).await.0, 200);
    eventually("the room is deleted", || async {
        standin.rooms().is_empty()
    })
    .await;
    // Let a pass that read the call before it ended finish.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let extended = count_calls(&standin, "POST", &format!("/v1/rooms/{room}"));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        count_calls(&standin, "POST", &format!("/v1/rooms/{room}")),
        extended
    );
}

/// Creates a room in the stand-in directly, as another process (or an earlier
/// run of ours) would have.
async fn create_room_directly(standin: &DailyStandIn, name: &str) {
    let resp = reqwest::Client::new()
        .post(format!("{}/rooms", standin.base_url()))
        .bearer_auth(DAILY_TEST_KEY)
        .json(&json!({"name": name, "privacy": "private"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn leftover_rooms_are_deleted_at_start_up(backend: Backend) {
    let standin = DailyStandIn::start(DAILY_TEST_KEY);
    create_room_directly(&standin, "nicehr-s999-crashed").await;
    create_room_directly(&standin, "nicehr-stray").await;
    create_room_directly(&standin, "other-app-room").await;
    // Only the start-up pass runs in this test.
    let app = TestApp::start_with(backend, |c| {
        use_daily(c, &standin);
        c.room_sweep_secs = 3600.0;
    })
    .await;
    eventually("our leftover rooms are deleted", || async {
        standin.rooms() == vec!["other-app-room".to_string()]
    })
    .await;

    // A crash after a create whose reply was lost: the session is in a call with
    // another room. On restart the lost room goes and the call's room stays.
    let mut app = app;
    let call = offered_call(&app).await;
    let sid = call.sid;
    assert_eq!(accept(&app, &call.consultant, sid).await.0, 200);
    let (_, joined) = join(&app, &call.nurse, sid).await;
    let live = joined["room_name"].as_str().unwrap().to_string();
    let lost = format!("nicehr-s{sid}-lostreply");
    create_room_directly(&standin, &lost).await;
    app.restart().await;
    eventually("the lost room is deleted", || async {
        !standin.rooms().contains(&lost)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut left = standin.rooms();
    left.sort();
    assert_eq!(left, vec![live, "other-app-room".to_string()]);
    assert_eq!(join(&app, &call.consultant, sid).await.0, 200);
}

/// Posts a webhook body as Daily would: signed with `secret` (when given) at
/// `timestamp`.
async fn webhook(app: &TestApp, secret: Option<&str>, timestamp: i64, body: &str) -> (u16, Value) {
    let mut req = app
        .http
        .post(format!("{}/api/webhooks/daily", app.url))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(secret) = secret {
        let ts = timestamp.to_string();
        let signature = sign_webhook(secret, &ts, body.as_bytes()).unwrap();
        req = req
            .header("X-Webhook-Timestamp", ts)
            .header("X-Webhook-Signature", signature);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn participant_joined(room: &str, user_id: i64) -> String {
    json!({
        "version": "1.0.0",
        "type": "participant.joined",
        "id": uuid::Uuid::new_v4().to_string(),
        "event_ts": chrono::Utc::now().timestamp(),
        "payload": {
            "room": room,
            "user_id": uuid_like_user_id(user_id),
            "user_name": "someone",
            "session_id": uuid::Uuid::new_v4().to_string(),
            "joined_at": chrono::Utc::now().timestamp(),
        }
    })
    .to_string()
}

async fn daily_webhooks_mark_joins_and_record_meeting_events(backend: Backend) {
    let standin = DailyStandIn::start(DAILY_TEST_KEY);
    let secret = STANDARD.encode(b"a webhook secret of thirty-two b");
    let app = TestApp::start_with(backend, |c| {
        use_daily(c, &standin);
        c.daily_webhook_secret = Some(secret.clone());
    })
    .await;
    let mut call = offered_call(&app).await;
    let sid = call.sid;
    assert_eq!(accept(&app, &call.consultant, sid).await.0, 200);
    let room = standin.rooms()[0].clone();
    let now = chrono::Utc::now().timestamp();
    let nurse_joined = participant_joined(&room, call.nurse.id);

    // Unsigned, signed with another secret, stale, or tampered with: refused.
    let (status, body) = webhook(&app, None, now, &nurse_joined).await;
    assert_error(status, &body, 401, "unauthenticated");
    let other = STANDARD.encode(b"somebody else's secret");
    let (status, body) = webhook(&app, Some(&other), now, &nurse_joined).await;
    assert_error(status, &body, 401, "unauthenticated");
    let (status, body) = webhook(&app, Some(&secret), now - 600, &nurse_joined).await;
    assert_error(status, &body, 401, "unauthenticated");
    let ts = now.to_string();
    let signature = sign_webhook(&secret, &ts, nurse_joined.as_bytes()).unwrap();
    let tampered = participant_joined(&room, call.outsider.id);
    let resp = app
        .http
        .post(format!("{}/api/webhooks/daily", app.url))
        .header("X-Webhook-Timestamp", ts)
        .header("X-Webhook-Signature", signature)
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(session_status(&app, sid).await, "connecting");
    assert!(!event_kinds(&app, sid).await.contains(&"joined".to_string()));

    // Signed but unusable: answered 200 so Daily does not retry, and ignored.
    for body in [
        participant_joined("no-such-room", call.nurse.id),
        participant_joined(&room, call.outsider.id),
        json!({"test": "test"}).to_string(),
        json!({"type": "recording.started", "payload": {"room": room}}).to_string(),
    ] {
        let (status, reply) = webhook(&app, Some(&secret), now, &body).await;
        assert_eq!(status, 200, "{body}: {reply}");
        assert_eq!(reply["handled"], false, "{body}");
    }
    let (status, body) = webhook(&app, Some(&secret), now, "{not json").await;
    assert_error(status, &body, 400, "bad_request");
    // A NUL in the room name never reaches the database (PostgreSQL refuses it).
    let (status, body) = webhook(
        &app,
        Some(&secret),
        now,
        &participant_joined("nicehr-\u{0}", call.nurse.id),
    )
    .await;
    assert_error(status, &body, 400, "validation_failed");

    // Both parties reported in the room by Daily: the call is active, with no
    // call_joined frame from either browser. A repeated delivery changes nothing.
    for _ in 0..2 {
        let (status, reply) = webhook(&app, Some(&secret), now, &nurse_joined).await;
        assert_eq!((status, &reply["handled"]), (200, &json!(true)), "{reply}");
    }
    call.nurse_ws
        .expect_none("support_session_started", Duration::from_millis(200))
        .await;
    let consultant_joined = participant_joined(&room, call.consultant.id);
    let (status, reply) = webhook(&app, Some(&secret), now, &consultant_joined).await;
    assert_eq!((status, &reply["handled"]), (200, &json!(true)), "{reply}");
    let started = call.nurse_ws.expect("support_session_started").await;
    assert_eq!(started["data"]["session"]["status"], "active");

    // meeting.ended is recorded; the session is not ended for it.
    let ended = json!({
        "version": "1.0.0",
        "type": "meeting.ended",
        "id": "evt-1",
        "event_ts": now,
        "payload": {"room": room, "meeting_id": "m-1", "start_ts": now - 60, "end_ts": now, "duration": 60}
    })
    .to_string();
    let (status, reply) = webhook(&app, Some(&secret), now, &ended).await;
    assert_eq!((status, &reply["handled"]), (200, &json!(true)), "{reply}");
    eventually("the timeline has both joins", || async {
        event_kinds(&app, sid)
            .await
            .iter()
            .filter(|k| *k == "joined")
            .count()
            == 2
    })
    .await;
    let kinds = event_kinds(&app, sid).await;
    assert!(kinds.contains(&"meeting_ended".to_string()), "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| *k == "joined").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(session_status(&app, sid).await, "active");
}

async fn builtin_call_hands_out_ice_servers_and_keeps_outsiders_out(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.ice_servers = r#"[{"urls": "stun:stun.h.org:3478"},
            {"urls": ["turn:turn.h.org:3478", "turns:turn.h.org:5349"],
             "username": "nicehr", "credential": "s3cret"}]"#
            .into();
    })
    .await;
    let mut call = offered_call(&app).await;
    let sid = call.sid;
    assert_eq!(accept(&app, &call.consultant, sid).await.0, 200);

    let want_ice = json!([
        {"urls": ["stun:stun.h.org:3478"]},
        {"urls": ["turn:turn.h.org:3478", "turns:turn.h.org:5349"],
         "username": "nicehr", "credential": "s3cret"}
    ]);
    let (status, nurse_join) = join(&app, &call.nurse, sid).await;
    assert_eq!(status, 200, "{nurse_join}");
    let (status, consultant_join) = join(&app, &call.consultant, sid).await;
    assert_eq!(status, 200, "{consultant_join}");
    for reply in [&nurse_join, &consultant_join] {
        assert_eq!(reply["provider"], "builtin");
        assert_eq!(reply["ice_servers"], want_ice);
        assert!(
            reply["room_url"].is_null() && reply["token"].is_null(),
            "{reply}"
        );
        assert!(reply["room_name"].is_string());
    }
    assert_eq!(nurse_join["room_name"], consultant_join["room_name"]);

    // The outsider can neither join nor signal; signals reach only the other party.
    let (status, body) = join(&app, &call.outsider, sid).await;
    assert!(status == 403 || status == 404, "{status} {body}");
    call.outsider_ws
        .send(
            "signal",
            json!({"session_id": sid, "payload": {"kind": "offer"}}),
        )
        .await;
    assert_eq!(
        call.outsider_ws.expect("error").await["data"]["error"],
        "not_found"
    );
    call.consultant_ws
        .send(
            "signal",
            json!({"session_id": sid, "payload": {"kind": "answer", "sdp": "v=0"}}),
        )
        .await;
    let sig = call.nurse_ws.expect("signal").await;
    assert_eq!(sig["data"]["from"], call.consultant.id);
    assert_eq!(sig["data"]["payload"]["sdp"], "v=0");
    call.outsider_ws
        .expect_none("signal", Duration::from_millis(300))
        .await;
    call.consultant_ws
        .expect_none("signal", Duration::from_millis(10))
        .await;

    // Without DAILY_WEBHOOK_SECRET there is no webhook endpoint.
    let (status, body) = webhook(
        &app,
        Some(&STANDARD.encode(b"any secret")),
        chrono::Utc::now().timestamp(),
        "{}",
    )
    .await;
    assert_error(status, &body, 404, "not_found");
}

/// Settings that could only fail later (a timer of zero, extensions slower than
/// the rooms expire, a secret that verifies nothing) stop the server at start.
#[tokio::test]
async fn bad_video_settings_refuse_to_start() {
    let standin = DailyStandIn::start(DAILY_TEST_KEY);
    type Tweak = fn(&mut ServeArgs);
    let cases: [(&str, Tweak); 6] = [
        ("ROOM_SWEEP_SECS", |c| c.room_sweep_secs = 0.0),
        ("ROOM_EXTEND_SECS", |c| c.room_extend_secs = 0.0),
        ("DAILY_TIMEOUT_SECS", |c| c.daily_timeout_secs = 0.0),
        ("ROOM_EXTEND_SECS", |c| {
            c.daily_room_ttl_secs = 600;
            c.room_extend_secs = 300.0;
        }),
        ("DAILY_WEBHOOK_SECRET", |c| {
            c.daily_webhook_secret = Some("not base64!".into())
        }),
        ("ICE_SERVERS", |c| c.ice_servers = "stun:x".into()),
    ];
    for (knob, tweak) in cases {
        let db = common::TestDb::new(Backend::Sqlite).await;
        let mut config = common::test_config(&db);
        if knob != "ICE_SERVERS" {
            use_daily(&mut config, &standin);
        }
        tweak(&mut config);
        match nicehr_support::server::spawn(config) {
            Ok(_) => panic!("started with a bad {knob}"),
            Err(e) => assert!(e.to_string().contains(knob), "{knob}: {e}"),
        }
    }
}
