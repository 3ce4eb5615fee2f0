//! The admin console's REST on both backends: searching and changing accounts and
//! hospitals, deactivation (tokens revoked, sockets closed with 4001, sign-in
//! refused), consultants' specialties and hours whether or not they are online, the
//! audit log with its filters and CSV export, and that only admins get in.

mod common;

use std::time::Duration;

use common::{assert_error, Backend, TestApp, PASSWORD};
use nicehr_support::db::repo;
use nicehr_support::model::UserId;
use reqwest::Method;
use serde_json::{json, Value};

/// An upper bound for a close that should come at once, not a timing assertion.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);

async fn patch(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    app.patch(Some(token), path, body).await
}

async fn audit_actions(app: &TestApp, query: &str) -> Vec<String> {
    let (status, body) = app
        .get(Some(&app.admin_token), &format!("/api/admin/audit?{query}"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn field_error(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> String {
    let (status, reply) = app
        .request(method, Some(&app.admin_token), path, body)
        .await;
    assert_error(status, &reply, 400, "validation_failed");
    reply["fields"]
        .as_object()
        .and_then(|f| f.keys().next().cloned())
        .unwrap_or_else(|| panic!("no field named in {reply}"))
}

async fn users_are_searched_read_and_changed(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.admin_token.clone();
    let north = app.create_hospital_direct("North General", "premium").await;
    let south = app.create_hospital_direct("South General", "basic").await;
    let nora = app
        .create_user_direct(
            "nora@north.org",
            "Nora Nurse",
            "hospital_staff",
            Some(north),
        )
        .await;
    let _lee = app
        .create_user_direct(
            "lee@north.org",
            "Lee Leader",
            "hospital_leadership",
            Some(north),
        )
        .await;
    let sam = app
        .create_user_direct(
            "sam@south.org",
            "Sam 50%_Off",
            "hospital_staff",
            Some(south),
        )
        .await;
    let cody = app
        .create_user_direct("cody@nicehr.com", "Cody Consultant", "consultant", None)
        .await;

    // Search by text (case-insensitive, wildcards are letters), role, hospital, active.
    let ids = |body: &Value| -> Vec<i64> {
        body["users"]
            .as_array()
            .expect("users")
            .iter()
            .map(|u| u["id"].as_i64().expect("id"))
            .collect()
    };
    let (status, body) = app.get(Some(&admin), "/api/admin/users?q=NORA").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), vec![nora]);
    assert_eq!(body["users"][0]["active"], true);
    assert_eq!(body["users"][0]["hospital_id"], north);
    let (_, body) = app.get(Some(&admin), "/api/admin/users?q=%25_").await;
    assert_eq!(ids(&body), vec![sam], "% and _ match themselves");
    let (_, body) = app.get(Some(&admin), "/api/admin/users?q=north.org").await;
    assert_eq!(ids(&body).len(), 2);
    let (_, body) = app
        .get(Some(&admin), "/api/admin/users?role=consultant")
        .await;
    assert_eq!(ids(&body), vec![cody]);
    let (_, body) = app
        .get(
            Some(&admin),
            &format!("/api/admin/users?hospital_id={north}&role=hospital_staff"),
        )
        .await;
    assert_eq!(ids(&body), vec![nora]);

    // Paging: every account exactly once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, body) = app
            .get(Some(&admin), &format!("/api/admin/users?limit=2{cursor}"))
            .await;
        assert_eq!(status, 200, "{body}");
        seen.extend(ids(&body));
        match body["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    let total = repo::users::count(&app.store).await.expect("count");
    assert_eq!(seen.len() as i64, total);
    let mut sorted = seen.clone();
    sorted.dedup();
    assert_eq!(sorted, seen);

    // Bad filters name their parameter.
    for (query, field) in [
        ("role=root", "role"),
        ("active=maybe", "active"),
        ("hospital_id=x", "hospital_id"),
        ("limit=0", "limit"),
        ("limit=9999", "limit"),
        ("cursor=abc", "cursor"),
    ] {
        let got = field_error(
            &app,
            Method::GET,
            &format!("/api/admin/users?{query}"),
            None,
        )
        .await;
        assert_eq!(got, field, "{query}");
    }
    let (status, body) = app.get(Some(&admin), "/api/admin/users?colour=red").await;
    assert_error(status, &body, 400, "bad_request");

    // Read one; unknown ids are 404.
    let (status, body) = app
        .get(Some(&admin), &format!("/api/admin/users/{nora}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"], "nora@north.org");
    assert_eq!(body["role"], "hospital_staff");
    let (status, body) = app.get(Some(&admin), "/api/admin/users/999999").await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = patch(
        &app,
        &admin,
        "/api/admin/users/999999",
        json!({"name": "X"}),
    )
    .await;
    assert_error(status, &body, 404, "not_found");

    // Change name, role and hospital.
    let (status, body) = patch(
        &app,
        &admin,
        &format!("/api/admin/users/{nora}"),
        json!({"name": "Nora N. Nurse", "role": "hospital_leadership", "hospital_id": south}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Nora N. Nurse");
    assert_eq!(body["role"], "hospital_leadership");
    assert_eq!(body["hospital_id"], south);
    // A consultant has no hospital: becoming one drops it.
    let (status, body) = patch(
        &app,
        &admin,
        &format!("/api/admin/users/{sam}"),
        json!({"role": "consultant"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["hospital_id"], Value::Null);
    let (status, body) = app
        .get(
            Some(&admin),
            &format!("/api/consultants/specialties?consultant_id={sam}"),
        )
        .await;
    assert_eq!(status, 200, "a new consultant has a desk: {body}");

    // Validation: each names its field; nothing is stored.
    let path = format!("/api/admin/users/{nora}");
    for (body, field) in [
        (json!({}), "body"),
        (json!({"colour": "red"}), "colour"),
        (json!({"role": "root"}), "role"),
        (json!({"active": "no"}), "active"),
        (json!({"name": "  "}), "name"),
        (json!({"name": "a\u{0}b"}), "name"),
        (json!({"hospital_id": null}), "hospital_id"),
        (json!({"hospital_id": 424242}), "hospital_id"),
        (
            json!({"role": "consultant", "hospital_id": north}),
            "hospital_id",
        ),
        (json!({"password": "password"}), "password"),
        (json!({"password": "nora@north.org"}), "password"),
    ] {
        let got = field_error(&app, Method::PATCH, &path, Some(body.clone())).await;
        assert_eq!(got, field, "{body}");
    }
    let (_, body) = app.get(Some(&admin), &path).await;
    assert_eq!(body["name"], "Nora N. Nurse");
    assert_eq!(body["role"], "hospital_leadership");

    // An admin cannot lock themselves out.
    let (_, me) = app.get(Some(&admin), "/api/auth/me").await;
    let me = me["id"].as_i64().expect("id");
    for body in [json!({"active": false}), json!({"role": "consultant"})] {
        let (status, reply) = patch(&app, &admin, &format!("/api/admin/users/{me}"), body).await;
        assert_error(status, &reply, 409, "conflict");
    }

    // Every change was audited, with the fields but never the name itself.
    let (status, body) = app
        .get(Some(&admin), "/api/admin/audit?action=update_user&limit=10")
        .await;
    assert_eq!(status, 200, "{body}");
    let entries = body["entries"].as_array().expect("entries");
    let about_nora = entries
        .iter()
        .find(|e| e["target_id"] == nora)
        .expect("nora's change is audited");
    assert_eq!(about_nora["user_id"], me);
    assert_eq!(about_nora["user_name"], "Root Admin");
    assert_eq!(about_nora["target_type"], "user");
    assert_eq!(about_nora["detail"]["role"], "hospital_leadership");
    assert_eq!(about_nora["detail"]["hospital_id"], south);
    assert!(!about_nora.to_string().contains("Nora N."), "{about_nora}");
}

async fn only_admins_get_in(backend: Backend) {
    let app = TestApp::start(backend).await;
    let ward = app
        .create_hospital_direct("Permission General", "premium")
        .await;
    let staff = app
        .person("staff@perm.org", "hospital_staff", Some(ward))
        .await;
    let lead = app
        .person("lead@perm.org", "hospital_leadership", Some(ward))
        .await;
    let consultant = app.person("c@nicehr.com", "consultant", None).await;
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/admin/users".into(), None),
        (Method::GET, format!("/api/admin/users/{}", staff.id), None),
        (
            Method::PATCH,
            format!("/api/admin/users/{}", staff.id),
            Some(json!({"name": "Mallory"})),
        ),
        (Method::GET, "/api/admin/hospitals".into(), None),
        (
            Method::PATCH,
            format!("/api/admin/hospitals/{ward}"),
            Some(json!({"plan": "enterprise"})),
        ),
        (
            Method::GET,
            format!("/api/admin/consultants/{}/hours", consultant.id),
            None,
        ),
        (
            Method::PUT,
            format!("/api/admin/consultants/{}/hours", consultant.id),
            Some(json!({"hours": []})),
        ),
        (Method::GET, "/api/admin/audit".into(), None),
        (Method::GET, "/api/admin/audit.csv".into(), None),
    ];
    for (method, path, body) in &routes {
        for person in [&staff, &lead, &consultant] {
            let (status, reply) = app
                .request(method.clone(), Some(&person.token), path, body.clone())
                .await;
            assert_error(status, &reply, 403, "forbidden");
        }
        let (status, reply) = app.request(method.clone(), None, path, body.clone()).await;
        assert_error(status, &reply, 401, "unauthenticated");
    }
    // Nothing was changed by the refused calls.
    let (_, body) = app
        .get(
            Some(&app.admin_token),
            &format!("/api/admin/users/{}", staff.id),
        )
        .await;
    assert_eq!(body["name"], "staff@perm.org");
}

async fn deactivation_signs_out_at_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.admin_token.clone();
    let ward = app
        .create_hospital_direct("Deactivation General", "premium")
        .await;
    let nurse = app
        .person("nurse@deact.org", "hospital_staff", Some(ward))
        .await;
    let second_token = app.login("nurse@deact.org", PASSWORD).await;
    let mut ws = app.ws(&nurse.token).await;
    let mut other_tab = app.ws(&second_token).await;

    let (status, body) = patch(
        &app,
        &admin,
        &format!("/api/admin/users/{}", nurse.id),
        json!({"active": false}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], false);

    for socket in [&mut ws, &mut other_tab] {
        let (close, _) = socket.expect_close(CLOSE_WITHIN).await;
        let (code, reason) = close.expect("a close frame");
        assert_eq!(code, 4001);
        assert!(reason.contains("deactivated"), "{reason}");
    }
    for token in [&nurse.token, &second_token] {
        let (status, body) = app.get(Some(token), "/api/auth/me").await;
        assert_error(status, &body, 401, "unauthenticated");
    }
    let (status, body) = app
        .post(
            None,
            "/api/auth/login",
            json!({"email": "nurse@deact.org", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 403, "forbidden");
    assert!(body["message"]
        .as_str()
        .unwrap_or_default()
        .contains("deactivated"));
    // A wrong password still reads as a wrong password.
    let (status, body) = app
        .post(
            None,
            "/api/auth/login",
            json!({"email": "nurse@deact.org", "password": "not-the-password-at-all"}),
        )
        .await;
    assert_error(status, &body, 401, "unauthenticated");
    let (_, body) = app.get(Some(&admin), "/api/admin/users?active=false").await;
    assert_eq!(body["users"][0]["id"], nurse.id);

    // Reactivated, the account signs in again.
    let (status, body) = patch(
        &app,
        &admin,
        &format!("/api/admin/users/{}", nurse.id),
        json!({"active": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = app.login("nurse@deact.org", PASSWORD).await;
    let (status, _) = app.get(Some(&token), "/api/auth/me").await;
    assert_eq!(status, 200);

    let actions = audit_actions(&app, "limit=20").await;
    assert!(
        actions.contains(&"deactivate_user".to_string()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"reactivate_user".to_string()),
        "{actions:?}"
    );
}

async fn a_deactivated_consultant_leaves_the_desk(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (consultant, mut ws) = app.consultant("desk@nicehr.com", &[("ER", "expert")]).await;
    let (status, body) = patch(
        &app,
        &app.admin_token,
        &format!("/api/admin/users/{}", consultant.id),
        json!({"active": false}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (close, _) = ws.expect_close(CLOSE_WITHIN).await;
    assert_eq!(close.expect("close").0, 4001);
    let availability = repo::consultants::availability_of(&app.store, UserId(consultant.id))
        .await
        .expect("read")
        .expect("row");
    assert_eq!(availability.status.as_str(), "offline");
}

async fn password_reset_follows_the_policy(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.admin_token.clone();
    let nurse = app.person("pw@reset.org", "consultant", None).await;
    let mut ws = app.ws(&nurse.token).await;
    let path = format!("/api/admin/users/{}", nurse.id);
    for weak in ["short", "password1", "pw@reset.org"] {
        let got = field_error(&app, Method::PATCH, &path, Some(json!({"password": weak}))).await;
        assert_eq!(got, "password", "{weak}");
    }
    let (status, _) = app.get(Some(&nurse.token), "/api/auth/me").await;
    assert_eq!(status, 200, "a refused reset changes nothing");

    let (status, body) = patch(
        &app,
        &admin,
        &path,
        json!({"password": "Tr0mbone-Quartz-Lantern"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (close, _) = ws.expect_close(CLOSE_WITHIN).await;
    assert_eq!(close.expect("close").0, 4001);
    let (status, body) = app.get(Some(&nurse.token), "/api/auth/me").await;
    assert_error(status, &body, 401, "unauthenticated");
    let (status, _) = app
        .post(
            None,
            "/api/auth/login",
            json!({"email": "pw@reset.org", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 401, "the old password is gone");
    app.login("pw@reset.org", "Tr0mbone-Quartz-Lantern").await;

    let (_, body) = app
        .get(Some(&admin), "/api/admin/audit?action=reset_password")
        .await;
    let entry = &body["entries"][0];
    assert_eq!(entry["target_id"], nurse.id);
    assert!(!entry.to_string().contains("Quartz"));
}

async fn hospitals_are_changed_and_deactivated(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.admin_token.clone();
    let west = app.create_hospital_direct("West General", "basic").await;
    let _east = app.create_hospital_direct("East General", "basic").await;
    let nurse = app
        .person("nurse@west.org", "hospital_staff", Some(west))
        .await;
    let mut ws = app.ws(&nurse.token).await;
    let path = format!("/api/admin/hospitals/{west}");

    let (status, body) = patch(
        &app,
        &admin,
        &path,
        json!({"plan": "enterprise", "timezone": "America/Chicago", "name": "West Regional"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["plan"], "enterprise");
    assert_eq!(body["includes_video"], true);
    assert_eq!(body["timezone"], "America/Chicago");
    assert_eq!(body["name"], "West Regional");
    assert_eq!(body["active"], true);
    assert_eq!(body["password_login"], true);

    // Password sign-in off (single sign-on only): the nurse's password is refused
    // with a clear 403, and on again it works.
    let (status, body) = patch(&app, &admin, &path, json!({"password_login": false})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["password_login"], false);
    let login = json!({"email": "nurse@west.org", "password": PASSWORD});
    let (status, body) = app.post(None, "/api/auth/login", login.clone()).await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = patch(&app, &admin, &path, json!({"password_login": true})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.post(None, "/api/auth/login", login).await;
    assert_eq!(status, 200, "{body}");

    for (body, field) in [
        (json!({}), "body"),
        (json!({"password_login": "no"}), "password_login"),
        (json!({"plan": "platinum"}), "plan"),
        (json!({"timezone": "Mars/Olympus"}), "timezone"),
        (json!({"name": ""}), "name"),
        (json!({"active": 1}), "active"),
        (json!({"beds": 400}), "beds"),
    ] {
        let got = field_error(&app, Method::PATCH, &path, Some(body.clone())).await;
        assert_eq!(got, field, "{body}");
    }
    let (status, body) = patch(&app, &admin, &path, json!({"name": "East General"})).await;
    assert_error(status, &body, 409, "conflict");
    let (status, body) = patch(
        &app,
        &admin,
        "/api/admin/hospitals/999999",
        json!({"plan": "basic"}),
    )
    .await;
    assert_error(status, &body, 404, "not_found");

    // Deactivated: its people are signed out and cannot sign in; no new accounts.
    let (status, body) = patch(&app, &admin, &path, json!({"active": false})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], false);
    let (close, _) = ws.expect_close(CLOSE_WITHIN).await;
    assert_eq!(close.expect("close").0, 4001);
    let (status, body) = app
        .post(
            None,
            "/api/auth/login",
            json!({"email": "nurse@west.org", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = app
        .post(
            Some(&admin),
            "/api/admin/users",
            json!({"email": "new@west.org", "name": "New", "role": "hospital_staff", "password": PASSWORD, "hospital_id": west}),
        )
        .await;
    assert_error(status, &body, 400, "validation_failed");
    let (_, list) = app.get(Some(&admin), "/api/admin/hospitals").await;
    let shown = list["hospitals"]
        .as_array()
        .expect("hospitals")
        .iter()
        .find(|h| h["id"] == west)
        .cloned()
        .expect("listed");
    assert_eq!(shown["active"], false);

    let (status, _) = patch(&app, &admin, &path, json!({"active": true})).await;
    assert_eq!(status, 200);
    app.login("nurse@west.org", PASSWORD).await;

    let actions = audit_actions(&app, "limit=50").await;
    for action in [
        "update_hospital",
        "deactivate_hospital",
        "reactivate_hospital",
    ] {
        assert!(
            actions.contains(&action.to_string()),
            "{action}: {actions:?}"
        );
    }
    let (_, body) = app
        .get(Some(&admin), "/api/admin/audit?action=update_hospital")
        .await;
    let entries = body["entries"].as_array().expect("entries");
    assert!(
        entries.iter().all(|e| e["target_type"] == "hospital"),
        "{body}"
    );
    // Newest first: the password sign-in switches, then the plan change.
    assert_eq!(entries[0]["detail"]["password_login"], true, "{body}");
    assert_eq!(entries[1]["detail"]["password_login"], false, "{body}");
    assert_eq!(entries[2]["detail"]["plan"], "enterprise", "{body}");
}

async fn consultant_hours_are_stored(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.admin_token.clone();
    let consultant = app
        .create_user_direct("hours@nicehr.com", "Hours Consultant", "consultant", None)
        .await;
    let ward = app.create_hospital_direct("Hours General", "basic").await;
    let staff = app
        .create_user_direct("staff@hours.org", "Staff", "hospital_staff", Some(ward))
        .await;
    let path = format!("/api/admin/consultants/{consultant}/hours");
    let (status, body) = app.get(Some(&admin), &path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["hours"], json!([]));
    assert_eq!(body["time_zone"], "UTC");

    let week = json!({"hours": [
        {"weekday": 3, "start": "13:00", "end": "17:30"},
        {"weekday": 1, "start": "08:00", "end": "12:00"},
        {"weekday": 1, "start": "13:00", "end": "24:00"},
    ]});
    let (status, body) = app.put(Some(&admin), &path, week).await;
    assert_eq!(status, 200, "{body}");
    let expected = json!([
        {"weekday": 1, "start": "08:00", "end": "12:00"},
        {"weekday": 1, "start": "13:00", "end": "24:00"},
        {"weekday": 3, "start": "13:00", "end": "17:30"},
    ]);
    assert_eq!(body["hours"], expected);
    let (_, body) = app.get(Some(&admin), &path).await;
    assert_eq!(body["hours"], expected);

    for (hours, field) in [
        (
            json!([{"weekday": 8, "start": "08:00", "end": "09:00"}]),
            "hours[0].weekday",
        ),
        (
            json!([{"weekday": 1, "start": "8am", "end": "09:00"}]),
            "hours[0].start",
        ),
        (
            json!([{"weekday": 1, "start": "10:00", "end": "09:00"}]),
            "hours[0].end",
        ),
        (
            json!([{"weekday": 2, "start": "08:00", "end": "12:00"}, {"weekday": 2, "start": "11:00", "end": "13:00"}]),
            "hours",
        ),
    ] {
        let got = field_error(&app, Method::PUT, &path, Some(json!({"hours": hours}))).await;
        assert_eq!(got, field, "{hours}");
    }
    let got = field_error(
        &app,
        Method::PUT,
        &path,
        Some(json!({"hours": [{"weekday": 1, "start": "08:00"}]})),
    )
    .await;
    assert_eq!(got, "end");
    let (_, body) = app.get(Some(&admin), &path).await;
    assert_eq!(body["hours"], expected, "refused changes store nothing");

    for id in [staff, 999_999] {
        let (status, body) = app
            .get(Some(&admin), &format!("/api/admin/consultants/{id}/hours"))
            .await;
        assert_error(status, &body, 404, "not_found");
        let (status, body) = app
            .put(
                Some(&admin),
                &format!("/api/admin/consultants/{id}/hours"),
                json!({"hours": []}),
            )
            .await;
        assert_error(status, &body, 404, "not_found");
    }
    let (_, body) = app
        .get(Some(&admin), "/api/admin/audit?action=set_hours")
        .await;
    assert_eq!(body["entries"][0]["target_id"], consultant);
    assert_eq!(body["entries"][0]["detail"]["intervals"], 3);
}

async fn an_offline_consultants_specialties_are_edited(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.admin_token.clone();
    let ward = app
        .create_hospital_direct("Offline General", "premium")
        .await;
    let consultant = app.person("offline@nicehr.com", "consultant", None).await;
    // Never connected: offline.
    let (status, body) = app
        .post(
            Some(&admin),
            "/api/consultants/specialties",
            json!({"consultant_id": consultant.id, "specialties": [{"department": "pharmacy", "proficiency": "expert"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["specialties"][0]["department"], "Pharmacy");
    let (_, body) = app
        .get(
            Some(&admin),
            &format!(
                "/api/consultants/specialties?consultant_id={}",
                consultant.id
            ),
        )
        .await;
    assert_eq!(
        body["specialties"],
        json!([{"department": "Pharmacy", "proficiency": "expert"}])
    );
    let (_, body) = app
        .get(Some(&admin), "/api/admin/audit?action=set_specialties")
        .await;
    assert_eq!(body["entries"][0]["target_id"], consultant.id);

    // When they come online the matcher knows them as a Pharmacy expert (tier C).
    let mut ws = app.ws(&consultant.token).await;
    app.set_status(&consultant, "available").await;
    let nurse = app
        .person("nurse@offline.org", "hospital_staff", Some(ward))
        .await;
    let (session_id, _) = app.request_support(&nurse, "Pharmacy", "normal").await;
    let offer = ws
        .expect_where("support_request_offered", |f| {
            f["data"]["session"]["id"] == session_id
        })
        .await;
    assert_eq!(offer["data"]["match"]["tier"], "C", "{offer}");
}

async fn the_audit_log_filters_and_exports(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = app.admin_token.clone();
    let (_, me) = app.get(Some(&admin), "/api/auth/me").await;
    let me = me["id"].as_i64().expect("id");
    let ward = app.create_hospital_direct("Audit General", "premium").await;
    let nurse = app
        .person("nurse@audit.org", "hospital_staff", Some(ward))
        .await;
    let (session_id, _) = app.request_support(&nurse, "ER", "normal").await;
    // A read of patient data about that session, by the nurse.
    repo::audit::record(
        &app.store,
        Some(UserId(nurse.id)),
        "read_session",
        "support_session",
        Some(session_id),
    )
    .await
    .expect("audit");
    for name in ["One", "Two", "Three"] {
        let (status, body) = patch(
            &app,
            &admin,
            &format!("/api/admin/users/{}", nurse.id),
            json!({"name": format!("Nurse {name}")}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }

    // By session.
    let (status, body) = app
        .get(
            Some(&admin),
            &format!("/api/admin/audit?session_id={session_id}"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let entries = body["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{body}");
    assert_eq!(entries[0]["action"], "read_session");
    assert_eq!(entries[0]["user_id"], nurse.id);
    // By person and action.
    let actions = audit_actions(&app, &format!("user_id={}", nurse.id)).await;
    assert_eq!(actions, vec!["read_session"]);
    let actions = audit_actions(&app, &format!("user_id={me}&action=update_user")).await;
    assert_eq!(actions.len(), 3);
    // By time: nothing before the epoch, nothing in the future, everything between.
    assert!(audit_actions(&app, "to=2000-01-01").await.is_empty());
    assert!(audit_actions(&app, "from=9999-01-01").await.is_empty());
    let all = audit_actions(&app, "from=2000-01-01T00:00:00Z&to=9999-01-01").await;
    assert!(all.len() >= 4, "{all:?}");
    // Paged newest first, each row once.
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, body) = app
            .get(Some(&admin), &format!("/api/admin/audit?limit=2{cursor}"))
            .await;
        assert_eq!(status, 200, "{body}");
        for e in body["entries"].as_array().expect("entries") {
            ids.push(e["id"].as_i64().expect("id"));
        }
        match body["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(sorted, ids);
    assert_eq!(ids.len(), all.len());

    for (query, field) in [
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("from=2026-02-01&to=2026-01-01", "to"),
        ("user_id=me", "user_id"),
        ("session_id=-", "session_id"),
        ("limit=-1", "limit"),
    ] {
        let got = field_error(
            &app,
            Method::GET,
            &format!("/api/admin/audit?{query}"),
            None,
        )
        .await;
        assert_eq!(got, field, "{query}");
    }

    // CSV: same filters, a header, one line per row, no patient text.
    let resp = app
        .http
        .get(format!("{}/api/admin/audit.csv?user_id={me}", app.url))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("csv");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .starts_with("text/csv"));
    assert!(resp
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .contains("attachment"));
    let text = resp.text().await.expect("body");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        headers,
        [
            "id",
            "at",
            "user_id",
            "user_name",
            "action",
            "target_type",
            "target_id",
            "detail"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    let (_, json_page) = app
        .get(
            Some(&admin),
            &format!("/api/admin/audit?user_id={me}&limit=500"),
        )
        .await;
    assert_eq!(
        rows.len(),
        json_page["entries"].as_array().expect("entries").len()
    );
    assert!(rows.iter().all(|r| &r[2] == me.to_string().as_str()));
    assert!(rows.iter().any(|r| &r[4] == "update_user"));
    assert!(
        !text.contains("wristbands"),
        "no patient text in the export"
    );
    let (status, body) = app
        .get(Some(&admin), "/api/admin/audit.csv?from=nonsense")
        .await;
    assert_error(status, &body, 400, "validation_failed");
}

backend_tests!(
    users_are_searched_read_and_changed,
    only_admins_get_in,
    deactivation_signs_out_at_once,
    a_deactivated_consultant_leaves_the_desk,
    password_reset_follows_the_policy,
    hospitals_are_changed_and_deactivated,
    consultant_hours_are_stored,
    an_offline_consultants_specialties_are_edited,
    the_audit_log_filters_and_exports,
);
