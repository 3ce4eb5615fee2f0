//! Issue 2: storage on both backends, accounts, errors, health, demo data.

mod common;

use std::time::Duration;

use common::{assert_error, Backend, TestApp, PASSWORD};
use nicehr_support::db::repo;
use serde_json::json;

backend_tests!(
    migrations_apply_from_empty_and_server_is_healthy,
    demo_seeding_is_idempotent_and_demo_users_sign_in,
    login_logout_and_me,
    wrong_password_and_unknown_email_are_refused_alike,
    failed_logins_are_throttled,
    expired_and_revoked_tokens_are_refused,
    cookie_auth_works_and_writes_need_the_csrf_header,
    every_error_class_has_the_json_shape,
    admin_creates_hospitals_and_users_over_http,
    healthz_reports_a_dead_database,
    metrics_are_exposed,
    pages_are_served_with_security_headers,
);

async fn migrations_apply_from_empty_and_server_is_healthy(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (status, body) = app.get(None, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["database"], "ok");
    // Every table of DESIGN.md §3 exists and is empty but for the test's admin.
    assert_eq!(repo::hospitals::count(&app.store).await.unwrap(), 0);
    assert_eq!(repo::users::count(&app.store).await.unwrap(), 1);
    // Running migrations again is a no-op.
    nicehr_support::db::migrate(&app.config.db).await.unwrap();
}

async fn demo_seeding_is_idempotent_and_demo_users_sign_in(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.demo = true).await;
    let hospitals = repo::hospitals::count(&app.store).await.unwrap();
    let users = repo::users::count(&app.store).await.unwrap();
    assert_eq!(hospitals, 3);
    assert!(
        users >= 1 + 1 + 8 + 3 + 12,
        "demo has admin, consultants, leaders, staff: {users}"
    );
    let report = nicehr_support::db::seed::seed_demo(&app.store)
        .await
        .unwrap();
    assert!(!report.created);
    assert_eq!(repo::hospitals::count(&app.store).await.unwrap(), hospitals);
    assert_eq!(repo::users::count(&app.store).await.unwrap(), users);

    let token = app
        .login(
            "nurse.er@riverside.demo",
            nicehr_support::db::seed::DEMO_PASSWORD,
        )
        .await;
    let (status, me) = app.get(Some(&token), "/api/auth/me").await;
    assert_eq!(status, 200);
    assert_eq!(me["role"], "hospital_staff");
    let (_, hospitals) = app
        .get(Some(&app.admin_token), "/api/admin/hospitals")
        .await;
    let plans: Vec<&str> = hospitals["hospitals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["plan"].as_str().unwrap())
        .collect();
    assert!(
        plans.contains(&"professional"),
        "one hospital's plan excludes live video: {plans:?}"
    );
    let no_video = hospitals["hospitals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["includes_video"] == false)
        .count();
    assert_eq!(no_video, 1);
}

async fn login_logout_and_me(backend: Backend) {
    let app = TestApp::start(backend).await;
    let hospital = app.create_hospital_direct("General", "premium").await;
    let id = app
        .create_user_direct(
            "Nurse@Example.org",
            "Nurse Joy",
            "hospital_staff",
            Some(hospital),
        )
        .await;
    // Emails are case-insensitive.
    let (status, body) = app
        .post(
            None,
            "/api/auth/login",
            json!({"email": "nurse@example.org", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    assert_eq!(
        body["user"],
        json!({"id": id, "email": "nurse@example.org", "name": "Nurse Joy", "role": "hospital_staff", "hospital_id": hospital})
    );
    let (status, me) = app.get(Some(&token), "/api/auth/me").await;
    assert_eq!(status, 200);
    assert_eq!(me["id"], id);

    let (status, _) = app.post(Some(&token), "/api/auth/logout", json!({})).await;
    assert_eq!(status, 200);
    let (status, body) = app.get(Some(&token), "/api/auth/me").await;
    assert_error(status, &body, 401, "unauthenticated");
}

async fn wrong_password_and_unknown_email_are_refused_alike(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.create_user_direct("c@example.org", "C", "consultant", None)
        .await;
    let (s1, b1) = app
        .post(
            None,
            "/api/auth/login",
            json!({"email": "c@example.org", "password": "wrong-password"}),
        )
        .await;
    let (s2, b2) = app
        .post(
            None,
            "/api/auth/login",
            json!({"email": "nobody@example.org", "password": "wrong-password"}),
        )
        .await;
    assert_error(s1, &b1, 401, "unauthenticated");
    assert_error(s2, &b2, 401, "unauthenticated");
    assert_eq!(b1["message"], b2["message"], "no hint which emails exist");
    let (status, body) = app
        .post(None, "/api/auth/login", json!({"email": "c@example.org"}))
        .await;
    assert_error(status, &body, 400, "validation_failed");
    assert!(
        body["fields"]["password"].is_string(),
        "names the field: {body}"
    );
}

async fn failed_logins_are_throttled(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.login_max_failures = 3;
        c.login_window_secs = 600;
    })
    .await;
    app.create_user_direct("t@example.org", "T", "consultant", None)
        .await;
    for _ in 0..3 {
        let (status, _) = app
            .post(
                None,
                "/api/auth/login",
                json!({"email": "t@example.org", "password": "nope-nope"}),
            )
            .await;
        assert_eq!(status, 401);
    }
    let resp = app
        .http
        .post(format!("{}/api/auth/login", app.url))
        .json(&json!({"email": "t@example.org", "password": "nope-nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    // While locked even the right password is refused, so guessing gains nothing.
    let (status, body) = app
        .post(
            None,
            "/api/auth/login",
            json!({"email": "t@example.org", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 429, "rate_limited");
    // Another account is unaffected.
    app.login("root@test.local", PASSWORD).await;
}

async fn expired_and_revoked_tokens_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let id = app
        .create_user_direct("e@example.org", "E", "consultant", None)
        .await;
    let token = nicehr_support::auth::new_token();
    let hash = nicehr_support::auth::token_hash(&token);
    repo::tokens::insert(
        &app.store,
        nicehr_support::model::UserId(id),
        &hash,
        repo::now() - chrono::Duration::seconds(1),
    )
    .await
    .unwrap();
    let (status, body) = app.get(Some(&token), "/api/auth/me").await;
    assert_error(status, &body, 401, "unauthenticated");

    let live = app.login("e@example.org", PASSWORD).await;
    assert_eq!(app.get(Some(&live), "/api/auth/me").await.0, 200);
    repo::tokens::revoke(&app.store, &nicehr_support::auth::token_hash(&live))
        .await
        .unwrap();
    assert_eq!(app.get(Some(&live), "/api/auth/me").await.0, 401);
    let (status, body) = app.get(Some("garbage-token"), "/api/auth/me").await;
    assert_error(status, &body, 401, "unauthenticated");
    let (status, body) = app.get(None, "/api/auth/me").await;
    assert_error(status, &body, 401, "unauthenticated");
}

async fn cookie_auth_works_and_writes_need_the_csrf_header(backend: Backend) {
    let app = TestApp::start(backend).await;
    let resp = app
        .http
        .post(format!("{}/api/auth/login", app.url))
        .json(&json!({"email": "root@test.local", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    let me = app
        .http
        .get(format!("{}/api/auth/me", app.url))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status().as_u16(), 200);
    let forged = app
        .http
        .post(format!("{}/api/admin/hospitals", app.url))
        .header("cookie", &pair)
        .json(&json!({"name": "Forged", "plan": "basic"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    let real = app
        .http
        .post(format!("{}/api/admin/hospitals", app.url))
        .header("cookie", &pair)
        .header("X-Requested-With", "nicehr")
        .json(&json!({"name": "Real", "plan": "basic"}))
        .send()
        .await
        .unwrap();
    assert_eq!(real.status().as_u16(), 201);
    assert_eq!(
        repo::hospitals::count(&app.store).await.unwrap(),
        1,
        "the forged write stored nothing"
    );
}

async fn every_error_class_has_the_json_shape(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.max_body_bytes = 1024).await;
    let admin = app.admin_token.clone();
    let (status, body) = app.get(Some(&admin), "/api/no/such/route").await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app.get(None, "/definitely-not-a-page").await;
    assert_error(status, &body, 404, "not_found");

    let send = |content_type: &'static str, body: String| {
        app.http
            .post(format!("{}/api/admin/hospitals", app.url))
            .bearer_auth(&admin)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let resp = send("application/json", "{\"name\": ".into())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_error(status, &body, 400, "validation_failed");
    assert!(body["fields"]["body"].is_string(), "{body}");
    let resp = send("text/plain", "{}".into()).await.unwrap();
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 415, "{body}");
    assert!(body["error"].is_string() && body["message"].is_string());
    let resp = send(
        "application/json",
        format!(
            "{{\"name\": \"{}\", \"plan\": \"basic\"}}",
            "x".repeat(4096)
        ),
    )
    .await
    .unwrap();
    let status = resp.status().as_u16();
    assert_error(
        status,
        &resp.json().await.unwrap(),
        413,
        "payload_too_large",
    );
    let resp = send(
        "application/json",
        "{\"name\": 5, \"plan\": \"basic\"}".into(),
    )
    .await
    .unwrap();
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_error(status, &body, 400, "validation_failed");
    assert!(body["fields"]["name"].is_string(), "{body}");
    let resp = send(
        "application/json",
        "{\"name\": \"X\", \"plan\": \"basic\", \"extra\": 1}".into(),
    )
    .await
    .unwrap();
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_error(status, &body, 400, "validation_failed");
    assert!(body["fields"]["extra"].is_string(), "{body}");

    let (status, body) = app
        .post(
            Some(&admin),
            "/api/admin/hospitals",
            json!({"name": "X", "plan": "gold"}),
        )
        .await;
    assert_error(status, &body, 400, "validation_failed");
    assert!(body["fields"]["plan"].is_string(), "{body}");

    let (status, body) = app
        .post(
            None,
            "/api/admin/hospitals",
            json!({"name": "X", "plan": "basic"}),
        )
        .await;
    assert_error(status, &body, 401, "unauthenticated");
    let hospital = app.create_hospital_direct("H", "premium").await;
    app.create_user_direct("staff@example.org", "S", "hospital_staff", Some(hospital))
        .await;
    let staff = app.login("staff@example.org", PASSWORD).await;
    let (status, body) = app
        .post(
            Some(&staff),
            "/api/admin/hospitals",
            json!({"name": "X", "plan": "basic"}),
        )
        .await;
    assert_error(status, &body, 403, "forbidden");

    let (status, body) = app
        .request(
            reqwest::Method::DELETE,
            Some(&admin),
            "/api/auth/login",
            None,
        )
        .await;
    assert!(status == 405 || status == 404, "{status} {body}");
    assert!(body["error"].is_string() && body["message"].is_string());
    assert_eq!(
        repo::hospitals::count(&app.store).await.unwrap(),
        1,
        "no bad request stored anything"
    );
}

async fn admin_creates_hospitals_and_users_over_http(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.admin_token.clone();
    let (status, hospital) = app
        .post(
            Some(&admin),
            "/api/admin/hospitals",
            json!({"name": "North", "plan": "enterprise", "timezone": "Europe/London"}),
        )
        .await;
    assert_eq!(status, 201, "{hospital}");
    assert_eq!(hospital["plan"], "enterprise");
    let hid = hospital["id"].as_i64().unwrap();
    let (status, body) = app
        .post(
            Some(&admin),
            "/api/admin/hospitals",
            json!({"name": "North", "plan": "basic"}),
        )
        .await;
    assert_error(status, &body, 409, "conflict");
    let (status, body) = app
        .post(
            Some(&admin),
            "/api/admin/hospitals",
            json!({"name": "South", "plan": "basic", "timezone": "Mars/Olympus"}),
        )
        .await;
    assert_error(status, &body, 400, "validation_failed");

    let (status, user) = app
        .post(Some(&admin), "/api/admin/users", json!({"email": "n@north.org", "name": "N", "role": "hospital_staff", "password": "violet-harbour-lantern-84", "hospital_id": hid}))
        .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["hospital_id"], hid);
    let (status, body) = app
        .post(Some(&admin), "/api/admin/users", json!({"email": "n@north.org", "name": "N2", "role": "hospital_staff", "password": "violet-harbour-lantern-84", "hospital_id": hid}))
        .await;
    assert_error(status, &body, 409, "conflict");
    for (bad, field) in [
        (
            json!({"email": "x@north.org", "name": "X", "role": "wizard", "password": "violet-harbour-lantern-84"}),
            "role",
        ),
        (
            json!({"email": "not-an-email", "name": "X", "role": "consultant", "password": "violet-harbour-lantern-84"}),
            "email",
        ),
        (
            json!({"email": "y@north.org", "name": "Y", "role": "consultant", "password": "short"}),
            "password",
        ),
        (
            json!({"email": "z@north.org", "name": "Z", "role": "hospital_staff", "password": "violet-harbour-lantern-84", "hospital_id": 9999}),
            "hospital_id",
        ),
        (
            json!({"email": "w@north.org", "name": "W", "role": "hospital_staff", "password": "violet-harbour-lantern-84"}),
            "hospital_id",
        ),
    ] {
        let (status, body) = app.post(Some(&admin), "/api/admin/users", bad).await;
        assert_error(status, &body, 400, "validation_failed");
        assert!(body["fields"][field].is_string(), "{field} named in {body}");
    }
    app.login("n@north.org", "violet-harbour-lantern-84").await;
}

async fn healthz_reports_a_dead_database(backend: Backend) {
    let app = TestApp::start_with(backend, |c| {
        c.db.sqlite_busy_timeout_ms = 200;
        c.db.db_timeout_secs = 1.0;
    })
    .await;
    assert_eq!(app.get(None, "/healthz").await.0, 200);
    match backend {
        Backend::Sqlite => {
            use diesel::connection::SimpleConnection;
            use diesel::Connection;
            let path = app.db.url.trim_start_matches("sqlite://").to_string();
            let mut locker = diesel::SqliteConnection::establish(&path).unwrap();
            locker.batch_execute("BEGIN EXCLUSIVE").unwrap();
            let (status, body) = app.get(None, "/healthz").await;
            assert_error(status, &body, 503, "unavailable");
            locker.batch_execute("ROLLBACK").unwrap();
            // It recovers by itself once the lock is gone.
            let (status, body) = app.get(None, "/healthz").await;
            assert_eq!(status, 200, "{body}");
        }
        Backend::Postgres => {
            app.db.kill().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let (status, body) = app.get(None, "/healthz").await;
            assert_error(status, &body, 503, "unavailable");
        }
    }
}

async fn metrics_are_exposed(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.get(None, "/healthz").await;
    let text = app
        .http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "nicehr_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("nicehr_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

async fn pages_are_served_with_security_headers(backend: Backend) {
    let app = TestApp::start(backend).await;
    let resp = app
        .http
        .get(format!("{}/login", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let headers = resp.headers().clone();
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let html = resp.text().await.unwrap();
    assert!(html.contains("<form"), "login page has a form");
}
