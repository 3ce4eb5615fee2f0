//! Issue 18, single sign-on: OpenID Connect (authorization code with PKCE) against a
//! real provider, the npm package `oidc-provider` (tests/oidc/), on both backends.
//! The walk through the provider's pages is HTTP, as a browser does it; the
//! browser itself is in tests/browser.rs.

mod common;

use common::oidc::{self, Idp};
use common::{assert_error, Backend, TestApp, PASSWORD};
use nicehr_support::config::SsoProviderConfig;
use nicehr_support::db::repo;
use nicehr_support::model::HospitalId;
use serde_json::{json, Value};

backend_tests!(
    first_sign_in_makes_the_account_once_and_its_token_works,
    a_providers_people_never_get_into_another_hospital,
    password_sign_in_can_be_turned_off_for_a_hospital,
    bad_callbacks_get_clear_errors,
);

/// Hospital ids are known before the server starts: a fresh database numbers its
/// hospitals from 1.
const HOSPITAL_A: i64 = 1;
const HOSPITAL_B: i64 = 2;

async fn start(backend: Backend, providers: Vec<SsoProviderConfig>) -> TestApp {
    let app = TestApp::start_with(backend, |c| c.sso.providers = providers).await;
    assert_eq!(
        app.create_hospital_direct("Alpha General", "premium").await,
        HOSPITAL_A
    );
    assert_eq!(
        app.create_hospital_direct("Beta Clinic", "premium").await,
        HOSPITAL_B
    );
    app
}

/// Signs `login` in through `provider` and returns the callback's JSON reply.
async fn sign_in(app: &TestApp, provider: &str, login: &str) -> (u16, Value) {
    let browser = oidc::browser();
    let callback = oidc::authorize(&browser, &app.url, provider, login).await;
    callback_json(app, &callback).await
}

async fn callback_json(app: &TestApp, callback: &str) -> (u16, Value) {
    let resp = app
        .http
        .get(callback)
        .header("Accept", "application/json")
        .send()
        .await
        .expect("callback reply");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn first_sign_in_makes_the_account_once_and_its_token_works(backend: Backend) {
    let idp = Idp::start("alpha.test").await;
    let app = start(backend, vec![idp.provider("alpha", Some(HOSPITAL_A))]).await;

    let (status, providers) = app.get(None, "/api/auth/sso/providers").await;
    assert_eq!(status, 200);
    assert_eq!(
        providers,
        json!({"providers": [{"id": "alpha", "display_name": "alpha ID"}]}),
        "ids and names only, never a secret"
    );

    let users_before = repo::users::count(&app.store).await.expect("count");
    let (status, first) = sign_in(&app, "alpha", "alice").await;
    assert_eq!(status, 200, "{first}");
    let token = first["token"].as_str().expect("token");
    let (status, me) = app.get(Some(token), "/api/auth/me").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["email"], "alice@alpha.test");
    assert_eq!(me["name"], "Test alice");
    assert_eq!(me["role"], "hospital_staff", "the default role");
    assert_eq!(me["hospital_id"], HOSPITAL_A);
    // The token is the password sign-in's: it opens the socket too.
    let ws = app.ws(token).await;
    assert_eq!(ws.hello["data"]["user"]["id"], me["id"]);
    ws.close().await;

    let (status, again) = sign_in(&app, "alpha", "alice").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        again["user"]["id"], me["id"],
        "the same account the second time"
    );
    assert_ne!(again["token"], first["token"], "a new token per sign-in");
    assert_eq!(
        repo::users::count(&app.store).await.expect("count"),
        users_before + 1,
        "one account made"
    );
    assert_eq!(
        repo::sso::identity_count(&app.store, &idp.issuer)
            .await
            .expect("count"),
        1
    );

    // Claim-to-role mapping: the "leads" group gives leadership.
    let (status, lead) = sign_in(&app, "alpha", "lead-lee").await;
    assert_eq!(status, 200, "{lead}");
    assert_eq!(lead["user"]["role"], "hospital_leadership");
    assert_eq!(lead["user"]["hospital_id"], HOSPITAL_A);
    let (status, _) = app
        .get(lead["token"].as_str(), "/api/support/analytics")
        .await;
    assert_eq!(status, 200, "leadership may read its hospital's figures");

    // Sign-ins through SSO are audited.
    let alice = me["id"].as_i64().expect("id");
    assert_eq!(
        repo::audit::count_for(&app.store, "user", alice)
            .await
            .expect("audit"),
        2,
        "account created, then signed in"
    );

    // A person the provider has no address for cannot be made an account.
    let (status, body) = sign_in(&app, "alpha", "noemail").await;
    assert_error(status, &body, 403, "forbidden");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("email"),
        "{body}"
    );
}

async fn a_providers_people_never_get_into_another_hospital(backend: Backend) {
    let idp_a = Idp::start("alpha.test").await;
    let idp_b = Idp::start("beta.test").await;
    let idp_staff = Idp::start("nicehr.test").await;
    let app = start(
        backend,
        vec![
            idp_a.provider("alpha", Some(HOSPITAL_A)),
            idp_b.provider("beta", Some(HOSPITAL_B)),
            idp_staff.provider("nicehr", None),
        ],
    )
    .await;
    // Carol works at Beta and had a password account before Beta's provider came.
    let carol = app
        .create_user_direct(
            "carol@beta.test",
            "Carol",
            "hospital_staff",
            Some(HOSPITAL_B),
        )
        .await;

    // Alpha's provider vouching for a Beta address gets nowhere.
    let (status, body) = sign_in(&app, "alpha", "carol@beta.test").await;
    assert_error(status, &body, 403, "forbidden");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("another hospital"),
        "{body}"
    );
    assert_eq!(
        repo::sso::identity_count(&app.store, &idp_a.issuer)
            .await
            .expect("count"),
        0,
        "nothing was tied"
    );
    // …nor does NICEHR's own provider, which makes consultants and admins.
    let (status, body) = sign_in(&app, "nicehr", "carol@beta.test").await;
    assert_error(status, &body, 403, "forbidden");

    // Through Beta's own provider she gets her existing account.
    let (status, body) = sign_in(&app, "beta", "carol@beta.test").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["id"], carol, "linked to the account she had");
    assert_eq!(body["user"]["hospital_id"], HOSPITAL_B);

    // Alpha's people are made in Alpha only, NICEHR's people in no hospital.
    let (status, body) = sign_in(&app, "alpha", "dan").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["hospital_id"], HOSPITAL_A);
    let (status, body) = sign_in(&app, "nicehr", "erin").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["role"], "consultant");
    assert_eq!(body["user"]["hospital_id"], Value::Null);

    // A callback is bound to the provider its sign-in started with: Beta's state
    // and code at Alpha's callback are refused…
    let browser = oidc::browser();
    let beta_callback = oidc::authorize(&browser, &app.url, "beta", "carol@beta.test").await;
    let crossed = beta_callback.replace("/sso/beta/", "/sso/alpha/");
    let (status, body) = callback_json(&app, &crossed).await;
    assert_error(status, &body, 400, "bad_request");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("another identity provider"),
        "{body}"
    );
    // …and so is Beta's code with Alpha's own state: Alpha's provider never issued it.
    let alpha_callback = oidc::authorize(&oidc::browser(), &app.url, "alpha", "dan").await;
    let beta_callback = oidc::authorize(&browser, &app.url, "beta", "carol@beta.test").await;
    let forged = with_param(&alpha_callback, "code", &param(&beta_callback, "code"));
    let (status, body) = callback_json(&app, &forged).await;
    assert!(status == 400 || status == 401, "{status} {body}");
    assert!(body["message"].is_string(), "{body}");
    // The refused sign-ins left an audit trail on Carol's account.
    assert!(
        repo::audit::count_for(&app.store, "user", carol)
            .await
            .expect("audit")
            >= 3,
        "two refusals and one sign-in"
    );
}

async fn password_sign_in_can_be_turned_off_for_a_hospital(backend: Backend) {
    let idp = Idp::start("alpha.test").await;
    let app = start(backend, vec![idp.provider("alpha", Some(HOSPITAL_A))]).await;
    app.create_user_direct(
        "nina@alpha.test",
        "Nina",
        "hospital_staff",
        Some(HOSPITAL_A),
    )
    .await;
    app.create_user_direct("bo@beta.test", "Bo", "hospital_staff", Some(HOSPITAL_B))
        .await;
    app.login("nina@alpha.test", PASSWORD).await;

    assert!(
        repo::sso::set_password_login(&app.store, HospitalId(HOSPITAL_A), false)
            .await
            .expect("set")
    );
    let (status, body) = app
        .post(
            None,
            "/api/auth/login",
            json!({"email": "nina@alpha.test", "password": PASSWORD}),
        )
        .await;
    assert_error(status, &body, 403, "forbidden");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Sign in with"),
        "{body}"
    );
    // Beta still uses passwords; NICEHR's staff belong to no hospital.
    app.login("bo@beta.test", PASSWORD).await;
    app.login("root@test.local", PASSWORD).await;
    // Nina signs in through Alpha's provider instead, into her own account.
    let (status, body) = sign_in(&app, "alpha", "nina").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["email"], "nina@alpha.test");

    // An account an admin deactivated gets no token through its provider either, nor
    // does a newcomer of a deactivated hospital.
    let nina = body["user"]["id"].as_i64().expect("nina's id");
    let admin = app.admin_token.clone();
    let (status, body) = app
        .patch(
            Some(&admin),
            &format!("/api/admin/users/{nina}"),
            json!({"active": false}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = sign_in(&app, "alpha", "nina").await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = app
        .patch(
            Some(&admin),
            &format!("/api/admin/hospitals/{HOSPITAL_A}"),
            json!({"active": false}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = sign_in(&app, "alpha", "newcomer").await;
    assert_error(status, &body, 403, "forbidden");
}

async fn bad_callbacks_get_clear_errors(backend: Backend) {
    let idp = Idp::start("alpha.test").await;
    let mut strict = idp.provider("strict", Some(HOSPITAL_A));
    strict.default_role = None;
    // A provider that is down (nothing listens on port 9 of loopback).
    let mut down = idp.provider("down", Some(HOSPITAL_A));
    down.issuer_url = "http://127.0.0.1:9".into();
    let app = start(
        backend,
        vec![idp.provider("alpha", Some(HOSPITAL_A)), strict, down],
    )
    .await;
    let callback = |query: &str| format!("{}/api/auth/sso/alpha/callback{query}", app.url);

    let (status, body) = app.get(None, "/api/auth/sso/nope/start").await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app.get(None, "/api/auth/sso/down/start").await;
    assert_error(status, &body, 503, "unavailable");

    let (status, body) = callback_json(&app, &callback("")).await;
    assert_error(status, &body, 400, "bad_request");
    let (status, body) = callback_json(&app, &callback("?state=forged&code=x")).await;
    assert_error(status, &body, 400, "bad_request");
    assert!(body["message"]
        .as_str()
        .unwrap_or_default()
        .contains("start the sign-in again"));
    let (status, body) = callback_json(&app, &callback("?state=%ZZ&code[]=1")).await;
    assert!(status == 400, "{status} {body}");

    // A good state with a code the provider never issued.
    let good = oidc::authorize(&oidc::browser(), &app.url, "alpha", "alice").await;
    let (status, body) = callback_json(&app, &with_param(&good, "code", "not-a-code")).await;
    assert_error(status, &body, 400, "bad_request");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("invalid_grant"),
        "{body}"
    );
    // The state was used up by that attempt: the real code cannot follow it.
    let (status, body) = callback_json(&app, &good).await;
    assert_error(status, &body, 400, "bad_request");

    // A callback replayed after it worked.
    let good = oidc::authorize(&oidc::browser(), &app.url, "alpha", "alice").await;
    let (status, _) = callback_json(&app, &good).await;
    assert_eq!(status, 200);
    let (status, body) = callback_json(&app, &good).await;
    assert_error(status, &body, 400, "bad_request");

    // The provider reports a refusal (the person pressed "cancel").
    let good = oidc::authorize(&oidc::browser(), &app.url, "alpha", "alice").await;
    let state = param(&good, "state");
    let refused = callback(&format!(
        "?state={state}&error=access_denied&error_description=End-User+aborted"
    ));
    let (status, body) = callback_json(&app, &refused).await;
    assert_error(status, &body, 400, "bad_request");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("access_denied"),
        "{body}"
    );

    // Claims that give no role, with no default role.
    let (status, body) = sign_in(&app, "strict", "bea").await;
    assert_error(status, &body, 403, "forbidden");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("grants no role"),
        "{body}"
    );
    let (status, body) = sign_in(&app, "strict", "lead-bea").await;
    assert_eq!(status, 200, "{body}");

    // A browser is shown a page, not JSON.
    let resp = app
        .http
        .get(callback("?state=forged&code=x"))
        .header("Accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("reply");
    assert_eq!(resp.status(), 400);
    assert!(resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html")));
    let page = resp.text().await.unwrap_or_default();
    assert!(
        page.contains("Sign-in failed") && page.contains("This sign-in link is unknown"),
        "{page}"
    );
}

fn param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{url} has no {name}"))
}

fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("url");
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}
