//! The provider contract, run against Daily (through the local stand-in) and
//! the built-in provider, plus Daily's failure modes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use nicehr_support::video::daily::{sign_webhook, user_id_from_uuid_like, uuid_like_user_id};
use nicehr_support::video::standin::DailyStandIn;
use nicehr_support::video::{
    is_valid_room_name, room_name_for, verify_webhook_signature, BuiltinProvider, DailyConfig,
    DailyProvider, IceServer, Participant, ProviderKind, VideoError, VideoProvider, WebhookEvent,
    WebhookEventKind, ROOM_PREFIX,
};
use serde_json::{json, Value};

const KEY: &str = "test-api-key";

fn config(standin: &DailyStandIn) -> DailyConfig {
    let mut cfg = DailyConfig::new(KEY, "nicehr-standin");
    cfg.api_url = standin.base_url();
    cfg.request_timeout = Duration::from_millis(500);
    cfg.max_retries = 3;
    cfg.backoff_base = Duration::from_millis(20);
    cfg
}

fn daily(standin: &DailyStandIn) -> DailyProvider {
    DailyProvider::new(config(standin)).unwrap()
}

fn consultant() -> Participant {
    Participant {
        user_id: 7,
        display_name: "Dr Consultant".into(),
        is_owner: true,
    }
}

fn staff() -> Participant {
    Participant {
        user_id: 1234,
        display_name: "Nurse Staff".into(),
        is_owner: false,
    }
}

/// What every provider must do, whatever carries the call.
async fn provider_contract<P: VideoProvider + ?Sized>(p: &P) {
    let room = p.create_room(42).await.unwrap();
    assert!(is_valid_room_name(&room.name), "{}", room.name);

    let info = p.room_info(&room.name).await.unwrap().expect("room exists");
    assert_eq!(info.name, room.name);
    assert_eq!(info.url, room.url);

    let owner_token = p.create_meeting_token(&room, &consultant()).await.unwrap();
    let staff_token = p.create_meeting_token(&room, &staff()).await.unwrap();
    match p.kind() {
        ProviderKind::Daily => {
            assert!(room.url.is_some());
            assert!(room.expires_at.is_some());
            let (a, b) = (owner_token.unwrap(), staff_token.unwrap());
            assert_ne!(a, b, "each party gets its own token");
        }
        ProviderKind::Builtin => {
            assert_eq!(room.url, None);
            assert_eq!(owner_token, None);
            assert_eq!(staff_token, None);
        }
    }

    p.extend_room(&room.name).await.unwrap();
    assert!(p.room_info(&room.name).await.unwrap().is_some());

    // A second room for the same session (re-accept) does not collide.
    let other = p.create_room(42).await.unwrap();
    assert_ne!(other.name, room.name);

    p.delete_room(&room.name).await.unwrap();
    assert_eq!(p.room_info(&room.name).await.unwrap(), None);
    p.delete_room(&room.name).await.unwrap();
    assert_eq!(p.room_info("nicehr-never-existed").await.unwrap(), None);

    p.delete_room(&other.name).await.unwrap();
    assert_eq!(p.room_info(&other.name).await.unwrap(), None);
}

#[tokio::test]
async fn contract_daily_against_standin() {
    let standin = DailyStandIn::start(KEY);
    let p = daily(&standin);
    provider_contract(&p).await;
    assert!(standin.rooms().is_empty(), "all rooms deleted");
}

#[tokio::test]
async fn contract_builtin() {
    let p = BuiltinProvider::default();
    provider_contract(&p).await;
}

#[tokio::test]
async fn contract_through_trait_objects() {
    let standin = DailyStandIn::start(KEY);
    let providers: Vec<Arc<dyn VideoProvider>> = vec![
        Arc::new(daily(&standin)),
        Arc::new(BuiltinProvider::default()),
    ];
    for p in &providers {
        provider_contract(p.as_ref()).await;
    }
}

#[tokio::test]
async fn builtin_ice_servers_and_sweep() {
    let p = BuiltinProvider::default();
    assert_eq!(p.kind().as_str(), "builtin");
    assert!(p.ice_servers().is_empty(), "no outside STUN by default");
    let room = p.create_room(1).await.unwrap();
    assert_eq!(room.expires_at, None);
    assert!(p.list_rooms().await.unwrap().is_empty());

    let ice = vec![
        IceServer::stun("stun:stun.example.org:3478"),
        IceServer::turn("turn:turn.example.org:3478", "user", "secret"),
    ];
    let p = BuiltinProvider::new(ice.clone());
    assert_eq!(p.ice_servers(), ice);
}

#[test]
fn ice_server_json_matches_rtc_ice_server() {
    let json = serde_json::to_value(vec![
        IceServer::stun("stun:a:3478"),
        IceServer::turn("turn:b:3478", "u", "c"),
    ])
    .unwrap();
    assert_eq!(
        json,
        json!([
            {"urls": ["stun:a:3478"]},
            {"urls": ["turn:b:3478"], "username": "u", "credential": "c"}
        ])
    );
    let parsed: IceServer = serde_json::from_value(json!({"urls": "stun:x:1"})).unwrap();
    assert_eq!(parsed, IceServer::stun("stun:x:1"));
}

#[tokio::test]
async fn daily_room_is_private_with_screenshare_and_no_eject() {
    let standin = DailyStandIn::start(KEY);
    let p = daily(&standin);
    let room = p.create_room(9).await.unwrap();
    assert!(room.name.starts_with("nicehr-s9-"), "{}", room.name);
    assert_eq!(
        room.url.as_deref(),
        Some(format!("https://nicehr-standin.daily.co/{}", room.name).as_str())
    );
    let stored = standin.room(&room.name).unwrap();
    assert_eq!(stored["privacy"], "private");
    let cfg = &stored["config"];
    assert_eq!(cfg["enable_screenshare"], true);
    assert_eq!(cfg["eject_at_room_exp"], false);
    let exp = cfg["exp"].as_i64().unwrap();
    let ahead = exp - chrono::Utc::now().timestamp();
    assert!((4 * 3600 - 60..=4 * 3600).contains(&ahead), "{ahead}");
    assert_eq!(room.expires_at.unwrap().timestamp(), exp);
}

#[tokio::test]
async fn extend_pushes_expiry_forward() {
    let standin = DailyStandIn::start(KEY);
    let mut cfg = config(&standin);
    cfg.room_ttl = Duration::from_secs(60);
    let short = DailyProvider::new(cfg.clone()).unwrap();
    let room = short.create_room(3).await.unwrap();
    cfg.room_ttl = Duration::from_secs(3600);
    let long = DailyProvider::new(cfg).unwrap();
    long.extend_room(&room.name).await.unwrap();
    let after = long.room_info(&room.name).await.unwrap().unwrap();
    assert!(after.expires_at.unwrap() > room.expires_at.unwrap() + chrono::Duration::minutes(50));
    assert_eq!(
        long.extend_room("nicehr-gone").await,
        Err(VideoError::NotFound)
    );
}

#[tokio::test]
async fn hipaa_rename_uses_returned_name_and_url() {
    let standin = DailyStandIn::start(KEY);
    standin.hipaa_rename(true);
    let p = daily(&standin);
    let room = p.create_room(5).await.unwrap();
    assert!(!room.name.starts_with(ROOM_PREFIX), "{}", room.name);
    assert_eq!(standin.rooms(), vec![room.name.clone()]);
    assert!(room.url.as_deref().unwrap().ends_with(&room.name));

    p.create_meeting_token(&room, &staff()).await.unwrap();
    let tokens = standin.tokens_issued();
    assert_eq!(tokens[0]["claims"]["r"], room.name.as_str());

    assert!(p.room_info(&room.name).await.unwrap().is_some());
    p.delete_room(&room.name).await.unwrap();
    assert!(standin.rooms().is_empty());
}

#[tokio::test]
async fn token_claims_are_scoped_and_owner_only_for_consultant() {
    let standin = DailyStandIn::start(KEY);
    let p = daily(&standin);
    let room = p.create_room(11).await.unwrap();
    let owner = p
        .create_meeting_token(&room, &consultant())
        .await
        .unwrap()
        .unwrap();
    let guest = p
        .create_meeting_token(&room, &staff())
        .await
        .unwrap()
        .unwrap();

    let now = chrono::Utc::now().timestamp();
    for (token, who) in [(&owner, consultant()), (&guest, staff())] {
        let claims = standin
            .verify_token(token)
            .expect("signed with the API key");
        assert_eq!(claims["r"], room.name.as_str());
        assert_eq!(claims["o"], who.is_owner);
        assert_eq!(claims["u"], who.display_name.as_str());
        assert_eq!(claims["ss"], true);
        let exp = claims["exp"].as_i64().unwrap();
        assert!(exp > now && exp <= now + 4 * 3600 + 5, "{exp}");
        let ud = claims["ud"].as_str().unwrap();
        assert!(ud.len() <= 36);
        assert_eq!(ud, uuid_like_user_id(who.user_id));
        assert_eq!(user_id_from_uuid_like(ud), Some(who.user_id));
    }
    let issued = standin.tokens_issued();
    assert_eq!(issued.len(), 2);
    assert_eq!(issued[1]["properties"]["is_owner"], false);
    assert_eq!(issued[1]["properties"]["eject_at_token_exp"], false);

    // GET /meeting-tokens/:token validates it, as Daily does.
    let http = reqwest::Client::new();
    let url = format!("{}/meeting-tokens/{owner}", standin.base_url());
    let v: Value = http
        .get(&url)
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["room_name"], room.name.as_str());
    assert_eq!(v["is_owner"], true);
    let tampered = format!("{}x", &owner[..owner.len() - 1]);
    let resp = http
        .get(format!("{}/meeting-tokens/{tampered}", standin.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[test]
fn uuid_like_ids_round_trip() {
    for id in [0, 1, 7, 1234, i64::MAX, -1, i64::MIN, 1 << 48] {
        let s = uuid_like_user_id(id);
        assert_eq!(s.len(), 36, "{s}");
        assert_eq!(&s[14..15], "4", "version nibble");
        assert_eq!(user_id_from_uuid_like(&s), Some(id), "{s}");
    }
    assert_eq!(user_id_from_uuid_like("not-a-uuid"), None);
    assert_eq!(
        user_id_from_uuid_like("123e4567-e89b-12d3-a456-426614174000"),
        None
    );
}

#[test]
fn room_names_are_daily_safe_and_prefixed() {
    let a = room_name_for(77);
    let b = room_name_for(77);
    assert!(a.starts_with("nicehr-s77-"));
    assert!(is_valid_room_name(&a));
    assert_ne!(a, b);
    assert!(!is_valid_room_name("bad name"));
    assert!(!is_valid_room_name(""));
}

#[tokio::test]
async fn wrong_key_is_rejected_without_retries() {
    let standin = DailyStandIn::start(KEY);
    let mut cfg = config(&standin);
    cfg.api_key = "wrong".into();
    let p = DailyProvider::new(cfg).unwrap();
    match p.create_room(1).await {
        Err(VideoError::Rejected { status, error, .. }) => {
            assert_eq!(status, 401);
            assert_eq!(error, "authentication-error");
        }
        other => panic!("expected Rejected 401, got {other:?}"),
    }
    assert_eq!(standin.calls().len(), 1, "a 401 is never retried");
}

#[tokio::test]
async fn server_errors_then_success_is_retried() {
    let standin = DailyStandIn::start(KEY);
    let p = daily(&standin);
    standin.fail_next(2, 500);
    let room = p.create_room(2).await.unwrap();
    assert_eq!(standin.calls().len(), 3);
    assert_eq!(standin.rooms(), vec![room.name]);
}

#[tokio::test]
async fn server_errors_forever_give_unavailable_after_max_retries() {
    let standin = DailyStandIn::start(KEY);
    let p = daily(&standin);
    standin.fail_next(u32::MAX, 503);
    let err = p.create_room(2).await.unwrap_err();
    assert!(matches!(err, VideoError::Unavailable(_)), "{err:?}");
    assert_eq!(standin.calls().len(), 4, "max_retries + 1 attempts");

    standin.clear_calls();
    assert!(matches!(
        p.delete_room("nicehr-x").await,
        Err(VideoError::Unavailable(_))
    ));
    assert_eq!(standin.calls().len(), 4);
    assert!(standin.rooms().is_empty());
}

#[tokio::test]
async fn rate_limited_calls_are_retried_with_backoff() {
    let standin = DailyStandIn::start(KEY);
    let mut cfg = config(&standin);
    cfg.backoff_base = Duration::from_millis(60);
    let p = DailyProvider::new(cfg).unwrap();
    standin.fail_next(2, 429);
    let started = Instant::now();
    p.create_room(4).await.unwrap();
    // Equal jitter: at least base/2 then base.
    assert!(
        started.elapsed() >= Duration::from_millis(90),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(standin.calls().len(), 3);
}

#[tokio::test]
async fn sustained_rate_limit_is_ridden_out() {
    let standin = DailyStandIn::start(KEY);
    let mut cfg = config(&standin);
    cfg.backoff_base = Duration::from_millis(100);
    cfg.max_retries = 6;
    let p = DailyProvider::new(cfg).unwrap();
    standin.set_rate_limit(2);
    for id in 0..4 {
        p.create_room(id).await.unwrap();
    }
    assert_eq!(standin.rooms().len(), 4);
    assert!(standin.calls().len() > 4, "some calls were throttled");
}

#[tokio::test]
async fn slow_daily_times_out_as_unavailable() {
    let standin = DailyStandIn::start(KEY);
    let mut cfg = config(&standin);
    cfg.request_timeout = Duration::from_millis(100);
    cfg.max_retries = 1;
    let p = DailyProvider::new(cfg).unwrap();
    standin.set_delay(Duration::from_secs(2));
    let started = Instant::now();
    let err = p.create_room(6).await.unwrap_err();
    assert!(
        matches!(err, VideoError::Unavailable(ref m) if m.contains("timeout")),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(standin.calls().len(), 2);
}

#[tokio::test]
async fn unreachable_daily_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = DailyConfig::new(KEY, "x");
    cfg.api_url = format!("http://127.0.0.1:{port}/v1");
    cfg.max_retries = 1;
    cfg.backoff_base = Duration::from_millis(5);
    let p = DailyProvider::new(cfg).unwrap();
    assert!(matches!(
        p.create_room(1).await,
        Err(VideoError::Unavailable(_))
    ));
}

#[test]
fn bad_api_url_is_a_config_error() {
    let mut cfg = DailyConfig::new(KEY, "x");
    cfg.api_url = "not a url".into();
    assert!(DailyProvider::new(cfg).is_err());
}

#[test]
fn config_debug_hides_the_key() {
    let cfg = DailyConfig::new("super-secret-key", "x");
    assert!(!format!("{cfg:?}").contains("super-secret-key"));
}

#[tokio::test]
async fn duplicate_name_retries_with_a_fresh_name() {
    let standin = DailyStandIn::start(KEY);
    let p = daily(&standin);
    standin.duplicate_next(1);
    let room = p.create_room(8).await.unwrap();
    assert_eq!(standin.calls().len(), 2);
    assert_eq!(standin.rooms(), vec![room.name]);

    standin.clear_calls();
    standin.duplicate_next(100);
    match p.create_room(8).await {
        Err(VideoError::Rejected {
            status: 400, info, ..
        }) => {
            assert!(info.contains("already exists"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(standin.calls().len(), 3, "bounded name attempts");
}

#[tokio::test]
async fn list_rooms_returns_only_ours_across_pages() {
    let standin = DailyStandIn::start(KEY);
    let p = daily(&standin);
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/rooms", standin.base_url()))
        .bearer_auth(KEY)
        .json(&json!({"name": "someone-elses-room"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    for id in 0..105 {
        p.create_room(id).await.unwrap();
    }
    let ours = p.list_rooms().await.unwrap();
    assert_eq!(ours.len(), 105);
    assert!(ours.iter().all(|r| r.name.starts_with(ROOM_PREFIX)));
    let gets = standin
        .calls()
        .iter()
        .filter(|(m, path)| m == "GET" && path == "/v1/rooms")
        .count();
    assert_eq!(gets, 2, "two pages of 100");
}

/// The stand-in's error shapes, as Daily documents them.
#[tokio::test]
async fn standin_error_shapes() {
    let standin = DailyStandIn::start(KEY);
    let base = standin.base_url();
    let http = reqwest::Client::new();
    async fn body(r: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = r.send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    let (s, v) = body(http.get(format!("{base}/rooms"))).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("authorization-header-error"))
    );
    let (s, v) = body(
        http.get(format!("{base}/rooms"))
            .header("Authorization", KEY),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("authorization-header-error"))
    );
    let (s, v) = body(http.get(format!("{base}/rooms")).bearer_auth("nope")).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (401, Some("authentication-error"))
    );

    let (s, v) = body(http.get(format!("{base}/rooms/missing")).bearer_auth(KEY)).await;
    assert_eq!((s, v["error"].as_str()), (404, Some("not-found")));
    assert!(v["info"].is_string());
    let (s, _) = body(
        http.delete(format!("{base}/rooms/missing"))
            .bearer_auth(KEY),
    )
    .await;
    assert_eq!(s, 404);

    let (s, v) = body(
        http.post(format!("{base}/rooms"))
            .bearer_auth(KEY)
            .header("Content-Type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (400, Some("json-parsing-error")));

    let (s, v) = body(
        http.post(format!("{base}/rooms"))
            .bearer_auth(KEY)
            .json(&json!({"name": "bad name!"})),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid-request-error"))
    );

    let (s, v) = body(
        http.post(format!("{base}/rooms"))
            .bearer_auth(KEY)
            .json(&json!({"name": "dup", "privacy": "private"})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["name"], "dup");
    assert_eq!(v["api_created"], true);
    assert!(v["id"].is_string() && v["created_at"].is_string());
    let (s, v) = body(
        http.post(format!("{base}/rooms"))
            .bearer_auth(KEY)
            .json(&json!({"name": "dup"})),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid-request-error"))
    );
    assert_eq!(v["info"], "a room named dup already exists");

    let (s, v) = body(
        http.post(format!("{base}/rooms"))
            .bearer_auth(KEY)
            .json(&json!({"properties": {"enable_screenshar": true}})),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid-request-error"))
    );

    let (s, v) = body(
        http.post(format!("{base}/meeting-tokens"))
            .bearer_auth(KEY)
            .json(&json!({"properties": {"room_name": "dup", "user_id": "x".repeat(37)}})),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid-request-error"))
    );

    let (s, v) = body(
        http.get(format!("{base}/rooms/dup/presence"))
            .bearer_auth(KEY),
    )
    .await;
    assert_eq!((s, v["total_count"].as_u64()), (200, Some(0)));
    let (s, v) = body(http.delete(format!("{base}/rooms/dup")).bearer_auth(KEY)).await;
    assert_eq!(s, 200);
    assert_eq!(v, json!({"deleted": true, "name": "dup"}));

    standin.fail_next(1, 429);
    let (s, v) = body(http.get(format!("{base}/rooms")).bearer_auth(KEY)).await;
    assert_eq!((s, v["error"].as_str()), (429, Some("rate-limit-error")));
    standin.fail_next(1, 500);
    let (s, v) = body(http.get(format!("{base}/rooms")).bearer_auth(KEY)).await;
    assert_eq!((s, v["error"].as_str()), (500, Some("server-error")));

    standin.reset();
    assert!(standin.calls().is_empty());
    standin.stop();
    standin.stop();
    assert!(http.get(format!("{base}/rooms")).send().await.is_err());
}

#[test]
fn webhook_signature() {
    let secret = STANDARD.encode(b"webhook-secret-bytes");
    let ts = "1700000000";
    let body = br#"{"version":"1.0.0","type":"participant.joined"}"#;
    let sig = sign_webhook(&secret, ts, body).unwrap();
    assert!(verify_webhook_signature(&secret, ts, body, &sig));

    let other_secret = STANDARD.encode(b"another-secret");
    assert!(!verify_webhook_signature(&other_secret, ts, body, &sig));
    assert!(!verify_webhook_signature(&secret, "1700000001", body, &sig));
    assert!(!verify_webhook_signature(&secret, ts, b"{}", &sig));
    assert!(!verify_webhook_signature(&secret, ts, body, "not base64!"));
    assert!(!verify_webhook_signature("not base64!", ts, body, &sig));
    assert!(!verify_webhook_signature("", ts, body, &sig));
}

#[test]
fn webhook_envelope_parses() {
    let joined: WebhookEvent = serde_json::from_value(json!({
        "version": "1.0.0",
        "type": "participant.joined",
        "id": "ptcpt-join-1",
        "payload": {
            "room": "nicehr-s1-abc",
            "user_id": uuid_like_user_id(7),
            "user_name": "Dr Consultant",
            "session_id": "0c6d5b5c-1234",
            "joined_at": 1708972279.961,
            "owner": true
        },
        "event_ts": 1708972280.1
    }))
    .unwrap();
    assert_eq!(joined.kind(), WebhookEventKind::ParticipantJoined);
    assert_eq!(joined.payload.room.as_deref(), Some("nicehr-s1-abc"));
    assert_eq!(joined.payload.our_user_id(), Some(7));
    assert_eq!(joined.payload.joined_at, Some(1708972279.961));

    let ended: WebhookEvent = serde_json::from_value(json!({
        "type": "meeting.ended",
        "payload": {"room": "r", "start_ts": 1, "end_ts": "2", "duration": 60}
    }))
    .unwrap();
    assert_eq!(ended.kind(), WebhookEventKind::MeetingEnded);
    assert_eq!(ended.payload.end_ts, Some(2.0));
    assert_eq!(ended.payload.duration, Some(60.0));
    assert_eq!(ended.version, None);
}
