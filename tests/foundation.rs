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

/// SQLite builds a temporary b-tree for a column checked against three or more
/// constants (`status IN ('a', 'b', 'c')`) every time the check runs. The last
/// migration rewrites the CHECK constraints and partial indexes of the tables written
/// on every call as `=`/`OR`; this walks a database with calls in it back to the
/// schema before it (its `down.sql`) and up again (`serve`), and finds every row,
/// every id counter and every rule still there, and no such list left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upgrade_rewrites_in_list_checks_and_keeps_rows_and_ids() {
    use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
    use diesel_migrations::{FileBasedMigrations, MigrationHarness};

    #[derive(QueryableByName, Debug, PartialEq)]
    struct Sql {
        #[diesel(sql_type = diesel::sql_types::Text)]
        sql: String,
    }
    #[derive(QueryableByName, Debug, PartialEq)]
    struct Counter {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        seq: i64,
    }
    /// The tables the migration rebuilds: those written on every call (users and
    /// hospitals keep their lists: they are written when an admin provisions someone).
    const REBUILT: [&str; 3] = ["support_sessions", "consultant_availability", "offers"];
    /// Those tables and their indexes.
    fn schema(conn: &mut SqliteConnection) -> Vec<String> {
        diesel::sql_query(format!(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND tbl_name IN ('{}') \
             ORDER BY name",
            REBUILT.join("', '")
        ))
        .load::<Sql>(conn)
        .expect("schema")
        .into_iter()
        .map(|s| s.sql)
        .collect()
    }
    /// `x IN (a, b, c…)` with three or more items, in those tables' schema.
    fn long_in_lists(schema: &[String]) -> Vec<String> {
        schema
            .iter()
            .flat_map(|sql| sql.match_indices(" IN (").map(move |(at, _)| &sql[at..]))
            .filter_map(|tail| tail.split_once(')').map(|(list, _)| list.to_string()))
            .filter(|list| list.matches(',').count() >= 2)
            .collect()
    }
    fn counters(conn: &mut SqliteConnection) -> Vec<Counter> {
        diesel::sql_query(
            "SELECT name, seq FROM sqlite_sequence \
             WHERE name IN ('support_sessions', 'offers') ORDER BY name",
        )
        .load::<Counter>(conn)
        .expect("counters")
    }
    /// Rows in each of [`REBUILT`].
    fn row_counts(conn: &mut SqliteConnection) -> Vec<i64> {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        REBUILT
            .iter()
            .map(|table| {
                diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
                    .get_result::<N>(conn)
                    .expect("count")
                    .n
            })
            .collect()
    }

    let mut app = TestApp::start(Backend::Sqlite).await;
    let ward = app.ward("Upgrade General", "premium").await;
    let nurse = app
        .person(
            "nurse@upgrade.test",
            "hospital_staff",
            Some(ward.hospital_id),
        )
        .await;
    let (ben, _ben_ws) = app
        .consultant("ben@upgrade.test", &[("ER", "expert")])
        .await;
    // One finished call, then one more request, which is deleted below so that its
    // id is the counter's and no row's.
    let (first, _) = app.request_support(&nurse, "ER", "urgent").await;
    app.offered_to(first).await;
    let (status, body) = app
        .post(
            Some(&ben.token),
            &format!("/api/support/accept/{first}"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .post(
            Some(&nurse.token),
            &format!("/api/support/end/{first}"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (last, _) = app.request_support(&nurse, "ER", "critical").await;
    app.offered_to(last).await;
    if let Some(server) = app.server.take() {
        server.kill();
    }

    let path = app.db.url.trim_start_matches("sqlite://").to_string();
    let mut conn = SqliteConnection::establish(&path).expect("open the file");
    let upgraded = schema(&mut conn);
    assert_eq!(
        long_in_lists(&upgraded),
        Vec::<String>::new(),
        "fresh schema"
    );
    diesel::sql_query("PRAGMA foreign_keys = OFF")
        .execute(&mut conn)
        .expect("foreign keys off, as the server migrates");
    let migrations =
        FileBasedMigrations::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
            .expect("migrations");
    conn.revert_last_migration(migrations).expect("down.sql");
    assert!(
        !long_in_lists(&schema(&mut conn)).is_empty(),
        "down.sql restores the earlier schema"
    );
    for child in ["offers", "session_events", "support_queue"] {
        diesel::sql_query(format!("DELETE FROM {child} WHERE session_id = {last}"))
            .execute(&mut conn)
            .expect("delete the last request's rows");
    }
    diesel::sql_query(format!("DELETE FROM support_sessions WHERE id = {last}"))
        .execute(&mut conn)
        .expect("delete the last request");
    let before_counters = counters(&mut conn);
    let before_rows = row_counts(&mut conn);
    drop(conn);

    app.restart().await;
    let mut conn = SqliteConnection::establish(&path).expect("open the file");
    assert_eq!(
        schema(&mut conn),
        upgraded,
        "up again: the same schema as fresh"
    );
    assert_eq!(counters(&mut conn), before_counters, "id counters kept");
    let after_rows = row_counts(&mut conn);
    assert_eq!(after_rows, before_rows, "rows kept");
    drop(conn);

    // The finished call reads as before, and the next request gets a new id.
    let (status, body) = app
        .get(
            Some(&nurse.token),
            &format!("/api/support/sessions/{first}"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["status"], "completed", "{body}");
    let (next, _) = app.request_support(&nurse, "ER", "normal").await;
    assert!(
        next > last,
        "id {next} reuses a deleted request's id ({last})"
    );
}
