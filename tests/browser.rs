//! Issue 5: the browser client in `static/`, driven in real headless Chromium against
//! the real server.
//!
//! Each person gets their own Chromium process (own profile directory, so cookies and
//! storage are as separate as two PCs), driven over W3C WebDriver by ChromeDriver through
//! `fantoccini`. Debian ships `chromium-driver` built from the same source as `chromium`,
//! so the protocol always matches the browser. Fake camera/microphone devices produce real
//! video; with `--use-fake-ui-for-media-stream` Chromium also answers `getDisplayMedia`
//! with a fake 800×600 screen, so screen sharing is exercised end to end.
//!
//! Every page is screenshotted into `target/screenshots/` for a person to look at. When a
//! wait times out, the failing browser's screenshot, URL, visible text and console log are
//! put in the panic message and in `target/screenshots/FAILED-<browser>.{png,txt}`.
//!
//! Locally, a machine without Chromium skips these tests with a note; under `CI=true`
//! a missing browser is a failure (`.ci/run` installs it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use common::{Backend, TestApp, PASSWORD};
use fantoccini::{Client, ClientBuilder, Locator};
use nicehr_support::db::repo::{self, analytics::HistoricSession};
use serde_json::{json, Value};

// The browser tests prove the client, not storage (every storage path they touch is
// covered on both backends by the HTTP suites). To stay well under a minute they split
// the backends: the two-browser call runs on SQLite, the waiting room on PostgreSQL,
// so a real browser is served from each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_between_two_browsers_sqlite() {
    call_between_two_browsers(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_room_survives_reload_and_refused_camera_is_explained_postgres() {
    if common::postgres_available().await {
        waiting_room_survives_reload_and_refused_camera_is_explained(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_survives_reload_a_gone_requester_is_shown_and_the_consultant_wraps_up_sqlite() {
    session_core_at_the_desk(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_survives_reload_a_gone_requester_is_shown_and_the_consultant_wraps_up_postgres() {
    if common::postgres_available().await {
        session_core_at_the_desk(Backend::Postgres).await;
    }
}

/// A Daily deployment finds daily-js where video.js looks for it, and the page's
/// policy lets it run and lets it fetch Daily's call engine: the library shipped in
/// `static/vendor/` loads, and asking it to load the engine (which fails here, with
/// no route to Daily, after trying Daily's fail-over domains) raises no
/// content-security-policy violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendored_daily_js_runs_under_the_daily_policy_sqlite() {
    let Some(tools) = Tools::find("vendored_daily_js_runs_under_the_daily_policy") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let standin = nicehr_support::video::DailyStandIn::start("browser-daily-key");
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.daily_api_key = Some("browser-daily-key".into());
        c.daily_domain = Some(standin.domain());
        c.daily_api_url = standin.base_url();
    })
    .await;
    let driver = ChromeDriver::start(&tools).await;
    let browser = Browser::launch(&driver, &tools, "daily", Media::Fake).await;
    browser.goto(&app, "/login").await;
    browser.wait_visible("#login-submit").await;
    browser
        .js("window.__violations = [];
             document.addEventListener('securitypolicyviolation',
               (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
             const s = document.createElement('script');
             s.src = '/static/vendor/daily-js.js';
             document.head.append(s);
             return true;")
        .await;
    browser
        .wait_for(
            "daily-js to define window.Daily",
            "return !!window.Daily && typeof window.Daily.createCallObject === 'function'",
        )
        .await;
    browser
        .js("window.__engine = 'loading';
             const co = window.Daily.createCallObject({ dailyConfig: { avoidEval: true } });
             co.load().then(() => { window.__engine = 'loaded'; },
                            (e) => { window.__engine = `failed: ${e && e.message ? e.message : e}`; });
             return true;")
        .await;
    // Its error reports to Sentry are blocked on purpose: nothing about a hospital's
    // calls goes to a third party the deployment did not choose.
    let outcome = browser
        .wait_for(
            "daily-js to give up on loading the engine",
            "return window.__engine !== 'loading'
                ? { engine: window.__engine,
                    violations: window.__violations.filter((v) => !v.includes('sentry.io')) }
                : null",
        )
        .await;
    assert_eq!(
        outcome["violations"],
        json!([]),
        "the policy blocked something daily-js needs: {outcome}"
    );
    assert!(
        outcome["engine"]
            .as_str()
            .is_some_and(|e| e.contains("call-machine")),
        "the engine was fetched from Daily (and failed only for want of a network): {outcome}"
    );
    browser.close().await;
}

/// The API reference: the vendored Swagger UI renders the server's own document
/// under the server's content-security policy (nothing from a CDN, no inline code),
/// listing every operation, and "Try it out" runs as the signed-in browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_reference_renders_every_operation_under_the_policy_sqlite() {
    let Some(tools) = Tools::find("the_api_reference_renders_every_operation") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = start_app(Backend::Sqlite).await;
    let driver = ChromeDriver::start(&tools).await;
    let browser = Browser::launch(&driver, &tools, "api-docs", Media::Fake).await;
    browser
        .sign_in(&app, "root@test.local", "/support/queue")
        .await;
    browser.goto(&app, "/api/docs").await;
    let operations = browser
        .wait_for(
            "Swagger UI to list the operations",
            "const n = document.querySelectorAll('.opblock').length; return n >= 51 ? n : null",
        )
        .await;
    assert_eq!(operations, json!(51), "one block per documented operation");
    let title = browser
        .js("return document.querySelector('.info .title')?.textContent ?? ''")
        .await;
    assert!(
        title
            .as_str()
            .is_some_and(|t| t.contains("NICEHR Remote Support")),
        "{title}"
    );
    // GET /api/auth/me: open it, "Try it out", "Execute"; the reply names the admin.
    browser.click("#operations-auth-me .opblock-summary").await;
    browser
        .wait_usable("#operations-auth-me .try-out__btn")
        .await;
    browser.click("#operations-auth-me .try-out__btn").await;
    browser.wait_usable("#operations-auth-me .execute").await;
    browser.click("#operations-auth-me .execute").await;
    let reply = browser
        .wait_for(
            "the executed request's reply",
            "const body = document.querySelector('#operations-auth-me .live-responses-table .response-col_description pre');
             return body && body.textContent.includes('root@test.local') ? body.textContent : null",
        )
        .await;
    let me: Value = serde_json::from_str(reply.as_str().unwrap_or_default()).expect("JSON");
    assert_eq!(me["role"], "admin", "{me}");
    let log = browser.console_log().await;
    assert!(
        !log.contains("Content Security Policy"),
        "the policy blocked part of the reference page:\n{log}"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_console_signs_out_a_deactivated_user_and_edits_an_offline_consultant_sqlite() {
    admin_console(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_console_signs_out_a_deactivated_user_and_edits_an_offline_consultant_postgres() {
    if common::postgres_available().await {
        admin_console(Backend::Postgres).await;
    }
}

/// Issue 18's console: (1) an admin deactivates a nurse whose page is open in another
/// browser, and that page is signed out at once; (2) the admin gives a consultant who
/// has never been online a specialty, and it is stored.
async fn admin_console(backend: Backend) {
    let Some(tools) = Tools::find("admin_console") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::start(backend).await;
    let hospital = app
        .create_hospital_direct("Console General", "premium")
        .await;
    let nurse_id = app
        .create_user_direct(
            "nina@console.test",
            "Nina Park",
            "hospital_staff",
            Some(hospital),
        )
        .await;
    let consultant_id = app
        .create_user_direct("olu@nicehr.test", "Olu Offline", "consultant", None)
        .await;

    let driver = ChromeDriver::start(&tools).await;
    let nurse = Browser::launch(&driver, &tools, "console-nurse", Media::Fake).await;
    nurse
        .sign_in(&app, "nina@console.test", "/support/request")
        .await;
    nurse
        .wait_for(
            "the nurse's live connection",
            "return document.querySelector('#ws-status').dataset.status === 'connected'",
        )
        .await;

    let admin = Browser::launch(&driver, &tools, "console-admin", Media::Fake).await;
    admin
        .sign_in(&app, "root@test.local", "/support/queue")
        .await;
    admin
        .wait_for(
            "the admin's navigation to link the console",
            "return !!document.querySelector('#nav-links a[href=\"/admin\"]')",
        )
        .await;
    admin.click("#nav-links a[href=\"/admin\"]").await;
    admin.wait_for_path("/admin").await;
    admin.wait_visible("#users-table tbody tr").await;
    admin.screenshot("admin-console").await;

    // (1) Find the nurse, deactivate her.
    admin.type_into("#user-q", "nina").await;
    admin.click("#user-search button[type=submit]").await;
    let row = format!("#users-table tr[data-user-id=\"{nurse_id}\"]");
    admin
        .wait_for(
            "the search to find only the nurse",
            "return document.querySelectorAll('#users-table tbody tr').length === 1",
        )
        .await;
    admin.click(&format!("{row} .user-edit")).await;
    admin.wait_visible("#user-edit").await;
    admin.js("window.confirm = () => true; return true;").await;
    admin.click("#edit-toggle-active").await;
    admin
        .wait_for(
            "the console to confirm the deactivation",
            "return document.querySelector('#user-edit-message').textContent.includes('Deactivated')",
        )
        .await;
    nurse.wait_for_path("/login").await;
    let (status, body) = app
        .get(
            Some(&app.admin_token),
            &format!("/api/admin/users/{nurse_id}"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], false);
    nurse.close().await;

    // (2) The offline consultant's specialties.
    admin
        .select("#consultant-picker", &consultant_id.to_string())
        .await;
    admin
        .wait_for(
            "the consultant's specialties and hours to load",
            &format!("return document.querySelector('#consultant-picker').dataset.loaded === '{consultant_id}'"),
        )
        .await;
    admin.click("#add-specialty").await;
    admin
        .select(
            "#specialties-list li:last-child .spec-department",
            "Pharmacy",
        )
        .await;
    admin
        .select(
            "#specialties-list li:last-child .spec-proficiency",
            "expert",
        )
        .await;
    admin.click("#save-specialties").await;
    admin
        .wait_for(
            "the specialties to be saved",
            "return document.querySelector('#specialties-message').textContent.includes('saved')",
        )
        .await;
    admin.screenshot("admin-console-specialties").await;
    let (status, body) = app
        .get(
            Some(&app.admin_token),
            &format!("/api/consultants/specialties?consultant_id={consultant_id}"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["specialties"],
        json!([{"department": "Pharmacy", "proficiency": "expert"}])
    );
    let availability = repo::consultants::availability_of(
        &app.store,
        nicehr_support::model::UserId(consultant_id),
    )
    .await
    .expect("read")
    .expect("row");
    assert_eq!(
        availability.status.as_str(),
        "offline",
        "edited while offline"
    );
    admin.close().await;
}

/// How long any one thing may take to appear. Generous: two browsers encoding video on a
/// busy 2-core machine can be slow, and a wait that succeeds returns at once.
const WAIT: Duration = Duration::from_secs(45);
const POLL: Duration = Duration::from_millis(150);
/// A laptop screen; the request page is also shot at tablet width.
const WINDOW: (u32, u32) = (1366, 900);
const TABLET: (u32, u32) = (820, 1180);

/// Browser tests share the 2 CPU cores with each other badly (each runs two video
/// encoders), so they take turns. A tokio mutex has no poisoning: a failed test does not
/// fail the next one.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Issue 18: "Sign in with …" on the login page goes through a real OpenID provider
/// (tests/oidc/) and lands on the role's page; a Beta address through Alpha's
/// provider is shown why it cannot get in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_sign_on_lands_on_the_roles_page_and_refuses_another_hospital_sqlite() {
    let Some(tools) = Tools::find("single_sign_on_lands_on_the_roles_page") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let idp = common::oidc::Idp::start("alpha.test").await;
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.sso.providers = vec![idp.provider("alpha", Some(1))];
    })
    .await;
    assert_eq!(
        app.create_hospital_direct("Alpha General", "premium").await,
        1
    );
    let beta = app.create_hospital_direct("Beta Clinic", "premium").await;
    app.create_user_direct("carol@beta.test", "Carol", "hospital_staff", Some(beta))
        .await;
    let driver = ChromeDriver::start(&tools).await;
    let browser = Browser::launch(&driver, &tools, "sso", Media::Fake).await;

    browser.goto(&app, "/login").await;
    browser.wait_visible("a.btn-sso[data-provider=alpha]").await;
    let label = browser
        .js("return document.querySelector('a.btn-sso').textContent")
        .await;
    assert_eq!(label, json!("Sign in with alpha ID"));
    browser.screenshot("sso-login").await;
    browser.click("a.btn-sso[data-provider=alpha]").await;
    browser.wait_for_path_prefix("/interaction/").await;
    browser.type_into("input[name=login]", "lead-lena").await;
    browser.type_into("input[name=password]", "any").await;
    browser.click("button[type=submit]").await;
    // Leadership's page is the request page; the token is kept for the tab.
    browser.wait_for_path("/support/request").await;
    let me = browser
        .wait_for(
            "the signed-in user",
            "return fetch('/api/auth/me', { headers: { Authorization: `Bearer ${sessionStorage.getItem('nicehr.token')}` } })
               .then((r) => r.ok ? r.json() : null)",
        )
        .await;
    assert_eq!(me["email"], "lead-lena@alpha.test");
    assert_eq!(me["role"], "hospital_leadership");
    browser.screenshot("sso-landed").await;

    browser.close().await;

    // A Beta person (in a browser of her own) tries Alpha's button: a page says why not.
    let browser = Browser::launch(&driver, &tools, "sso-beta", Media::Fake).await;
    browser.goto(&app, "/login").await;
    browser.click("a.btn-sso[data-provider=alpha]").await;
    browser.wait_for_path_prefix("/interaction/").await;
    browser
        .type_into("input[name=login]", "carol@beta.test")
        .await;
    browser.type_into("input[name=password]", "any").await;
    browser.click("button[type=submit]").await;
    browser.wait_visible("#sso-error").await;
    let text = browser
        .js("return document.querySelector('#sso-error').textContent")
        .await;
    assert!(
        text.as_str()
            .unwrap_or_default()
            .contains("another hospital"),
        "{text}"
    );
    let token = browser
        .js("return sessionStorage.getItem('nicehr.token')")
        .await;
    assert_eq!(token, Value::Null, "no token for her");
    browser.screenshot("sso-refused").await;
    browser.close().await;
}

// ---- the scenarios -------------------------------------------------------------------

/// The session core's symptoms 2–4 at a consultant's desk. A request arrives and its
/// offer card shows a countdown and the reasons; the page reloads and the card comes
/// back with both. The requester (who asked over REST and has no page open) is gone
/// when the consultant accepts: the call page says so. The requester then ends the
/// call, and the consultant's page asks for the notes and the resolution.
async fn session_core_at_the_desk(backend: Backend) {
    let Some(tools) = Tools::find("session_core_at_the_desk") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::start_with(backend, |config| {
        config.offer_timeout_secs = 120.0;
        config.presence_grace_secs = 2.0;
    })
    .await;
    let hospital = app.create_hospital_direct("Lakeside", "premium").await;
    app.create_user_direct(
        "radtech@lakeside.test",
        "Sam Rivera",
        "hospital_staff",
        Some(hospital),
    )
    .await;
    let nurse_token = app.login("radtech@lakeside.test", PASSWORD).await;
    app.create_user_direct("ben.okafor@nicehr.test", "Ben Okafor", "consultant", None)
        .await;
    let ben_token = app.login("ben.okafor@nicehr.test", PASSWORD).await;
    let (code, body) = app
        .post(
            Some(&ben_token),
            "/api/consultants/specialties",
            json!({"specialties": [{"department": "Radiology", "proficiency": "expert"}]}),
        )
        .await;
    assert_eq!(code, 200, "{body}");

    let driver = ChromeDriver::start(&tools).await;
    let ben = Browser::launch(&driver, &tools, "desk", Media::Fake).await;
    ben.sign_in(&app, "ben.okafor@nicehr.test", "/support/queue")
        .await;
    ben.wait_for(
        "my status to load",
        "return document.querySelector('#status-hint').textContent !== ''",
    )
    .await;
    ben.select("#status-select", "available").await;
    ben.wait_for(
        "the live connection",
        "return document.querySelector('#ws-status').dataset.status === 'connected'",
    )
    .await;

    let (code, body) = app
        .post(
            Some(&nurse_token),
            "/api/support/request",
            json!({"department": "Radiology", "urgency": "critical", "issue_summary": "PACS viewer will not open studies"}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let sid = body["session"]["id"].as_i64().expect("a session id");

    let card_is_whole = "const c = document.querySelector('#offer-countdown'); \
        const reasons = document.querySelectorAll('#offer-card .reasons li').length; \
        return c && /^\\d+ s$/.test(c.textContent.trim()) && reasons > 0";
    ben.wait_for("the offer card with a countdown and reasons", card_is_whole)
        .await;
    ben.screenshot("20-offer-card").await;
    // Symptom 3: a reload keeps the countdown and the reasons.
    ben.refresh().await;
    ben.wait_for("the offer card again after the reload", card_is_whole)
        .await;
    ben.screenshot("21-offer-card-after-reload").await;

    // Symptom 4: the requester has no page open (their grace has long passed once the
    // call is accepted): the call page tells the consultant.
    ben.click("#offer-accept").await;
    ben.wait_for_path(&format!("/support/call/{sid}")).await;
    ben.wait_for(
        "the notice that the requester is gone",
        "return !document.querySelector('#party-notice').hidden",
    )
    .await;
    ben.screenshot("22-requester-gone").await;
    ben.click("#party-wait").await;

    // Symptom 2: the requester ends; the consultant records the outcome.
    let (code, body) = app
        .post(
            Some(&nurse_token),
            &format!("/api/support/end/{sid}"),
            json!({}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    ben.wait_for(
        "the wrap-up form",
        "return !document.querySelector('#wrapup-form').hidden",
    )
    .await;
    ben.screenshot("23-wrap-up").await;
    ben.type_into(
        "#wrapup-notes",
        "Cleared the viewer cache; studies open again.",
    )
    .await;
    ben.click("#wrapup-yes").await;
    ben.click("#wrapup-submit").await;
    ben.wait_for_path("/support/queue").await;
    let (_, detail) = app
        .get(
            Some(&app.admin_token),
            &format!("/api/support/sessions/{sid}"),
        )
        .await;
    assert_eq!(detail["session"]["resolved"], true, "{detail}");
    assert_eq!(
        detail["session"]["resolution_notes"],
        "Cleared the viewer cache; studies open again."
    );
    ben.close().await;
}

/// A nurse signs in and asks for help; a consultant in another browser accepts the offer;
/// both sides decode each other's video; the consultant shares the screen and the nurse
/// receives the extra track, then it stops; the consultant ends the call with notes; the
/// nurse rates it and sees it in history. Settings are shot on the way out; then the
/// hospital's leadership opens analytics, whose four charts must draw and show this
/// hospital's true figures and nothing of another hospital's.
async fn call_between_two_browsers(backend: Backend) {
    let Some(tools) = Tools::find("call_between_two_browsers") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = start_app(backend).await;
    let hospital = app
        .create_hospital_direct("Riverside General", "enterprise")
        .await;
    let nurse_id = app
        .create_user_direct(
            "nurse.er@riverside.test",
            "Priya Shah",
            "hospital_staff",
            Some(hospital),
        )
        .await;
    let leader_email = "leader@riverside.test";
    app.create_user_direct(
        leader_email,
        "Lena Ortiz",
        "hospital_leadership",
        Some(hospital),
    )
    .await;
    let consultant_id = app
        .create_user_direct("alice.chen@nicehr.test", "Alice Chen", "consultant", None)
        .await;
    let consultant_token = app.login("alice.chen@nicehr.test", PASSWORD).await;
    let (code, body) = app
        .post(
            Some(&consultant_token),
            "/api/consultants/specialties",
            json!({"specialties": [
                {"department": "ER", "proficiency": "expert"},
                {"department": "Nursing", "proficiency": "standard"},
            ]}),
        )
        .await;
    assert_eq!(code, 200, "{body}");

    let driver = ChromeDriver::start(&tools).await;
    let (nurse, consultant) = tokio::join!(
        Browser::launch(&driver, &tools, "nurse", Media::Fake),
        Browser::launch(&driver, &tools, "consultant", Media::Fake),
    );

    // The consultant signs in, lands on the queue and makes themself available.
    consultant
        .sign_in(&app, "alice.chen@nicehr.test", "/support/queue")
        .await;
    consultant.wait_visible("#queue-table").await;
    consultant
        .wait_for(
            "my status to load",
            "return document.querySelector('#status-hint').textContent !== ''",
        )
        .await;
    consultant.select("#status-select", "available").await;
    consultant
        .wait_for(
            "the status badge to say available",
            "return document.querySelector('#status-badge').dataset.status === 'available'",
        )
        .await;
    consultant
        .wait_for(
            "the live connection",
            "return document.querySelector('#ws-status').dataset.status === 'connected'",
        )
        .await;

    // The nurse signs in and fills in the request.
    nurse.goto(&app, "/login").await;
    nurse.wait_visible("#login-submit").await;
    nurse.type_into("#email", "nurse.er@riverside.test").await;
    nurse.screenshot("01-login").await;
    nurse.type_into("#password", PASSWORD).await;
    nurse.click("#login-submit").await;
    nurse.wait_for_path("/support/request").await;
    nurse.wait_visible("#request-form").await;
    nurse
        .wait_for(
            "the live connection",
            "return document.querySelector('#ws-status').dataset.status === 'connected'",
        )
        .await;
    nurse.select("#department", "ER").await;
    nurse.click("#urgency-urgent").await;
    nurse
        .type_into(
            "#issue-summary",
            "Wristband printer in bay 3 prints blank labels after the update.",
        )
        .await;
    nurse.screenshot("02-request").await;
    nurse.set_viewport(TABLET).await;
    nurse.screenshot("02-request-tablet").await;
    nurse.set_viewport(WINDOW).await;
    nurse.click("#request-submit").await;

    // The consultant is offered the request and accepts it.
    consultant.wait_visible("#offer-card").await;
    consultant
        .wait_for(
            "the offer to show the department and countdown",
            "const c = document.querySelector('#offer-card'); \
             return c.textContent.includes('ER') && /\\d+ s/.test(document.querySelector('#offer-countdown').textContent)",
        )
        .await;
    consultant
        .wait_for(
            "the live queue to list the request as offered to me",
            "const r = document.querySelector('#queue-table tbody tr[data-session-id]'); \
             return !!r && r.classList.contains('is-offered') && r.textContent.includes('You')",
        )
        .await;
    consultant.screenshot("04-queue-offer").await;
    consultant.click("#offer-accept").await;

    let call_path = consultant.wait_for_path_prefix("/support/call/").await;
    let session_id: i64 = call_path
        .trim_start_matches("/support/call/")
        .parse()
        .expect("session id in the call URL");
    let nurse_path = nurse.wait_for_path_prefix("/support/call/").await;
    assert_eq!(nurse_path, call_path, "both sides are on the same call");

    // Media flows both ways: each side decodes the other's camera.
    for side in [&nurse, &consultant] {
        side.wait_for(
            "the call to become active",
            "return document.querySelector('#call-status').dataset.state === 'active'",
        )
        .await;
        side.play_if_blocked().await;
        side.wait_for(
            "decoded remote video (framesDecoded > 0) while sending its own camera",
            &stats_when(
                "s.framesDecoded > 0 && s.inboundVideoTracks === 1 && s.outboundVideoTracks === 1",
            ),
        )
        .await;
    }
    consultant.wait_visible("#remote-video").await;
    nurse.screenshot("05-call-nurse").await;
    consultant.screenshot("05-call-consultant").await;

    // The consultant shares the screen: the nurse receives a second video track.
    consultant.click("#btn-share").await;
    consultant
        .wait_for(
            "the share button to offer stopping",
            "return document.querySelector('#btn-share').getAttribute('aria-pressed') === 'true'",
        )
        .await;
    nurse
        .wait_for(
            "the screen-share track (inboundVideoTracks = 2)",
            &stats_when("s.inboundVideoTracks === 2"),
        )
        .await;
    nurse.wait_visible("#remote-screen").await;
    nurse
        .wait_for(
            "the shared screen to play",
            "const v = document.querySelector('#remote-screen'); return v.readyState >= 2 && v.videoWidth > 0",
        )
        .await;
    nurse.screenshot("06-call-nurse-screen-share").await;
    consultant.screenshot("06-call-consultant-sharing").await;

    // Stop sharing: the extra track goes away, the camera stays.
    consultant.click("#btn-share").await;
    nurse
        .wait_for(
            "the screen-share track to end (inboundVideoTracks = 1)",
            &stats_when("s.inboundVideoTracks === 1"),
        )
        .await;
    nurse
        .wait_for(
            "the shared-screen tile to close",
            "return document.querySelector('#screen-tile').hidden",
        )
        .await;

    // The consultant ends the call with notes; they go back to the queue.
    consultant.click("#btn-end").await;
    consultant.wait_visible("#end-dialog").await;
    consultant
        .type_into(
            "#resolution-notes",
            "Reinstalled the label printer driver; test print OK.",
        )
        .await;
    consultant.click("#resolved-yes").await;
    consultant.screenshot("07-end-dialog").await;
    consultant.click("#end-confirm").await;
    consultant.wait_for_path("/support/queue").await;

    // The nurse is asked for a rating, gives it, and lands on history.
    nurse.wait_visible("#rating-dialog").await;
    nurse.click("input[name=rating][value='5']").await;
    nurse
        .type_into("#feedback", "Quick and clear, thank you.")
        .await;
    nurse.screenshot("08-rating").await;
    nurse.click("#rating-submit").await;
    nurse.wait_for_path("/support/history").await;
    let row = format!("#history-table tr[data-session-id='{session_id}']");
    nurse.wait_visible(&row).await;
    let text = nurse
        .wait_for(
            "the history row to show the finished, rated call",
            &format!(
                "const r = document.querySelector(\"{row}\"); \
                 return r && r.textContent.includes('Completed') && r.textContent.includes('★★★★★') \
                   && r.textContent.includes('Yes') && r.textContent.includes('Alice Chen') && r.textContent"
            ),
        )
        .await;
    assert!(
        text.as_str().is_some_and(|t| t.contains("ER")),
        "row shows the department: {text}"
    );
    nurse.screenshot("09-history").await;

    // The server agrees with what the pages showed.
    let nurse_token = app.login("nurse.er@riverside.test", PASSWORD).await;
    let (code, body) = app
        .get(Some(&nurse_token), "/api/support/history?status=completed")
        .await;
    assert_eq!(code, 200, "{body}");
    let sessions = body["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 1, "{body}");
    let s = &sessions[0];
    assert_eq!(s["id"], session_id);
    assert_eq!(s["requester_id"], nurse_id);
    assert_eq!(s["consultant_id"], consultant_id);
    assert_eq!(s["requester_name"], "Priya Shah");
    assert_eq!(s["consultant_name"], "Alice Chen");
    assert_eq!(s["department"], "ER");
    assert_eq!(s["urgency"], "urgent");
    assert_eq!(s["rating"], 5);
    assert_eq!(s["feedback"], "Quick and clear, thank you.");
    assert_eq!(s["resolved"], true);
    assert_eq!(
        s["resolution_notes"],
        "Reinstalled the label printer driver; test print OK."
    );
    assert!(s["started_at"].is_string(), "both joined the call: {s}");
    let call_created = DateTime::parse_from_rfc3339(s["created_at"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("created_at is RFC 3339 ({e}): {s}"))
        .with_timezone(&Utc);
    let call_wait = s["wait_time_seconds"]
        .as_i64()
        .unwrap_or_else(|| panic!("an accepted call has a wait: {s}"));

    // The consultant's settings show what they chose.
    consultant.goto(&app, "/support/settings").await;
    consultant
        .wait_for(
            "the specialties to load",
            "return document.querySelectorAll('#specialties-list .spec-row').length === 2",
        )
        .await;
    consultant
        .wait_for(
            "the status badge",
            "return document.querySelector('#status-badge').dataset.status === 'available'",
        )
        .await;
    consultant.screenshot("10-settings").await;

    // Analytics data besides the call above: an earlier call of Riverside's (yesterday,
    // so the wait line joins two days), and a request at another hospital that
    // Riverside's leadership must never see.
    let other = app
        .create_hospital_direct("Lakeview Clinic", "premium")
        .await;
    let other_nurse = app
        .create_user_direct(
            "nurse@lakeview.test",
            "Sam Reyes",
            "hospital_staff",
            Some(other),
        )
        .await;
    let earlier = call_created - chrono::Duration::days(1);
    let earlier_wait = 125; // "2 min 5 s"
    let at = |t: DateTime<Utc>, secs: i64| (t + chrono::Duration::seconds(secs)).naive_utc();
    let history = [
        HistoricSession {
            hospital_id: hospital,
            requester_id: nurse_id,
            consultant_id: Some(consultant_id),
            department: "Pharmacy".into(),
            urgency: "normal".into(),
            status: "completed".into(),
            issue_summary: "Cabinet count mismatch".into(),
            resolved: Some(true),
            created_at: at(earlier, 0),
            response_deadline: at(earlier, 900),
            accepted_at: Some(at(earlier, earlier_wait)),
            started_at: Some(at(earlier, earlier_wait)),
            ended_at: Some(at(earlier, earlier_wait + 300)),
            wait_time_seconds: Some(earlier_wait),
            duration_seconds: Some(300),
            rating: Some(4),
            feedback: None,
            match_tier: Some("A".into()),
            cancelled_by: None,
        },
        HistoricSession {
            hospital_id: other,
            requester_id: other_nurse,
            consultant_id: None,
            department: "Laboratory".into(),
            urgency: "normal".into(),
            status: "cancelled".into(),
            issue_summary: "Analyser offline".into(),
            resolved: None,
            created_at: at(call_created, -600),
            response_deadline: at(call_created, 3000),
            accepted_at: None,
            started_at: None,
            ended_at: Some(at(call_created, -300)),
            wait_time_seconds: None,
            duration_seconds: None,
            rating: None,
            feedback: None,
            match_tier: None,
            cancelled_by: Some(other_nurse),
        },
    ];
    repo::analytics::import_sessions(&app.store, &history)
        .await
        .expect("history imported");

    // Sign out, and in again as hospital leadership for analytics.
    nurse.click("#logout").await;
    nurse.wait_for_path("/login").await;
    nurse.wait_visible("#login-submit").await;
    nurse.type_into("#email", leader_email).await;
    nurse.type_into("#password", PASSWORD).await;
    nurse.click("#login-submit").await;
    nurse.wait_for_path("/support/request").await;
    nurse.goto(&app, "/support/analytics").await;
    let shown = nurse
        .wait_for(
            "each analytics chart to draw an <svg> with marks",
            ANALYTICS_CHARTS_DRAWN,
        )
        .await;
    nurse.screenshot("11-analytics").await;
    nurse
        .js("document.querySelector('.chart-grid').scrollIntoView({block: 'start'})")
        .await;
    nurse.screenshot("11-analytics-charts").await;

    // What the page shows is what the test made: Riverside's two calls (in the
    // browser's time zone), nothing of Lakeview's.
    let tz: chrono_tz::Tz = nurse
        .js("return Intl.DateTimeFormat().resolvedOptions().timeZone")
        .await
        .as_str()
        .and_then(|z| z.parse().ok())
        .expect("the browser's time zone");
    let mut hours = vec![0; 24];
    let mut days = Vec::new();
    for (created, wait) in [(earlier, earlier_wait), (call_created, call_wait)] {
        let local = created.with_timezone(&tz);
        hours[local.hour() as usize] += 1;
        days.push(json!([
            local.date_naive().to_string(),
            1,
            fmt_duration(wait as f64)
        ]));
    }
    let want = json!({
        "total": "2",
        "avgWait": fmt_duration((call_wait + earlier_wait) as f64 / 2.0),
        "rating": "4.5 / 5",
        "fcr": "100%",
        "longestWait": "—",
        "department": [["ER", "1"], ["Pharmacy", "1"]],
        "hospital": [["Riverside General", "2"]],
        "hours": hours,
        "days": days,
        "dots": 2,
    });
    let mut got = shown.clone();
    got.as_object_mut().map(|o| o.remove("text"));
    assert_eq!(
        got, want,
        "analytics page figures (page text: {})",
        shown["text"]
    );
    let text = shown["text"].as_str().unwrap_or_default();
    for other_hospital in ["Lakeview", "Laboratory"] {
        assert!(
            !text.contains(other_hospital),
            "leadership of Riverside sees nothing of Lakeview: {text}"
        );
    }

    nurse.close().await;
    consultant.close().await;
}

/// A nurse waits in the queue (nobody is available), reloads, and still sees her place.
/// Her browser refuses camera and microphone: when a consultant accepts, the call page
/// explains what happened instead of failing silently.
async fn waiting_room_survives_reload_and_refused_camera_is_explained(backend: Backend) {
    let Some(tools) = Tools::find("waiting_room_survives_reload_and_refused_camera_is_explained")
    else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = start_app(backend).await;
    let hospital = app
        .create_hospital_direct("Lakeside Medical", "premium")
        .await;
    app.create_user_direct(
        "pharmacist@lakeside.test",
        "Tom Becker",
        "hospital_staff",
        Some(hospital),
    )
    .await;
    let nurse_token = app.login("pharmacist@lakeside.test", PASSWORD).await;

    let driver = ChromeDriver::start(&tools).await;
    let nurse = Browser::launch(&driver, &tools, "pharmacist", Media::Refused).await;
    nurse
        .sign_in(&app, "pharmacist@lakeside.test", "/support/request")
        .await;
    nurse
        .wait_for(
            "the live connection",
            "return document.querySelector('#ws-status').dataset.status === 'connected'",
        )
        .await;
    nurse.select("#department", "Pharmacy").await;
    nurse
        .type_into(
            "#issue-summary",
            "Dispensing cabinet will not sync the formulary.",
        )
        .await;
    nurse.click("#request-submit").await;

    // Nobody is available: first in line.
    nurse.wait_visible("#waiting-room").await;
    nurse
        .wait_for(
            "queue position 1",
            "return document.querySelector('#queue-position').textContent.trim() === '1'",
        )
        .await;
    nurse
        .wait_for(
            "an estimated wait",
            "return document.querySelector('#estimated-wait').textContent.trim() !== '—'",
        )
        .await;
    nurse.screenshot("03-waiting-room").await;
    let (code, before) = app.get(Some(&nurse_token), "/api/support/active").await;
    assert_eq!(code, 200, "{before}");
    let session_id = before["session"]["id"].as_i64().expect("a pending session");
    assert_eq!(before["session"]["status"], "pending");

    // Reload: the same request, the same place, no new request.
    nurse.refresh().await;
    nurse.wait_visible("#waiting-room").await;
    nurse
        .wait_for(
            "queue position 1 after the reload",
            "return document.querySelector('#queue-position').textContent.trim() === '1' \
               && document.querySelector('#request-panel').hidden",
        )
        .await;
    nurse.screenshot("03-waiting-room-after-reload").await;
    let (_, after) = app.get(Some(&nurse_token), "/api/support/active").await;
    assert_eq!(after["session"]["id"], session_id, "still the same request");
    let (_, pending) = app
        .get(Some(&nurse_token), "/api/support/history?status=pending")
        .await;
    assert_eq!(
        pending["sessions"].as_array().map(Vec::len),
        Some(1),
        "{pending}"
    );

    // A consultant comes online (over the API) and accepts; the page moves to the call.
    let (consultant, mut ws) = app
        .consultant("ben.okafor@nicehr.test", &[("Pharmacy", "expert")])
        .await;
    ws.expect_offer(session_id).await;
    let (code, body) = app
        .post(
            Some(&consultant.token),
            &format!("/api/support/accept/{session_id}"),
            json!({}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    nurse
        .wait_for_path(&format!("/support/call/{session_id}"))
        .await;

    // The browser refused the camera: a clear message, and the call still goes on.
    nurse.wait_visible("#media-error").await;
    let message = nurse
        .wait_for(
            "the media error text",
            "return document.querySelector('#media-error').textContent",
        )
        .await;
    let message = message.as_str().unwrap_or_default();
    assert!(
        message.contains("refused") && message.contains("browser settings"),
        "explains the refusal and the fix: {message}"
    );
    assert!(
        nurse
            .js("return !document.querySelector('#btn-end').disabled")
            .await
            .as_bool()
            .unwrap_or(false),
        "the call can still be ended"
    );
    nurse.screenshot("12-call-camera-refused").await;

    let (code, body) = app
        .post(
            Some(&consultant.token),
            &format!("/api/support/end/{session_id}"),
            json!({"resolved": false}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    nurse.wait_visible("#rating-dialog").await;
    ws.close().await;
    nurse.close().await;
}

/// Waits until each analytics chart has replaced its "Loading…" with an `<svg>` holding
/// marks a person can see (bars, lit hour cells, a line and its dots, each with a
/// non-empty box), then returns what the page shows: KPIs, the bar rows (label and
/// value as drawn), the 24 hour cells' counts, the days with requests and their
/// average wait (from the chart's own tooltips), and the text of all four charts.
const ANALYTICS_CHARTS_DRAWN: &str = r#"
const svg = (id) => document.querySelector(`#${id}-wrap > svg#${id}`);
const ids = ['chart-department', 'chart-hospital', 'chart-peak-hours', 'chart-wait-by-day'];
if (!ids.every(svg)) return null;
const drawn = (root, sel) => [...root.querySelectorAll(sel)].filter((e) => {
  const b = e.getBBox();
  return b.width > 0 && b.height > 0;
}).length;
const [dep, hosp, peak, day] = ids.map(svg);
if (!drawn(dep, 'rect.chart-bar') || !drawn(hosp, 'rect.chart-bar')
    || !drawn(peak, 'rect.heat:not(.heat-0)') || !drawn(day, 'rect.chart-bar-muted')
    || !drawn(day, 'path.chart-line') || !drawn(day, 'circle.chart-dot')) return null;
const kpi = (id) => document.getElementById(id).textContent.trim();
const rows = (root) => [...root.querySelectorAll('g.chart-row')].map((g) => [
  g.querySelector('text.chart-label').textContent,
  g.querySelector('text.chart-value').textContent,
]).sort((a, b) => a[0].localeCompare(b[0]));
const hours = [...peak.querySelectorAll('rect.heat')].map((r) => {
  const m = /: (\d+) requests?$/.exec(r.parentNode.querySelector('title').textContent);
  return m ? Number(m[1]) : -1;
});
const days = [...day.querySelectorAll('rect.chart-bar-muted > title')]
  .map((t) => /^(\S+): (\d+) requests, average wait (.*)$/.exec(t.textContent))
  .filter((m) => m && Number(m[2]) > 0)
  .map((m) => [m[1], Number(m[2]), m[3]]);
return {
  total: kpi('kpi-total-requests'),
  avgWait: kpi('kpi-avg-wait'),
  rating: kpi('kpi-rating-avg'),
  fcr: kpi('kpi-first-call-resolution-rate'),
  longestWait: kpi('kpi-longest-current-wait'),
  department: rows(dep),
  hospital: rows(hosp),
  hours,
  days,
  dots: drawn(day, 'circle.chart-dot'),
  text: ids.map((id) => svg(id).textContent).join(' | '),
};
"#;

/// `fmtDuration` of static/js/ui.js: 45 → "45 s", 125 → "2 min 5 s", 3720 → "1 h 2 min".
fn fmt_duration(seconds: f64) -> String {
    let sec = seconds.max(0.0).round() as i64;
    let (m, s) = (sec / 60, sec % 60);
    match (sec, m, s) {
        (sec, _, _) if sec < 60 => format!("{sec} s"),
        (_, m, 0) if m < 60 => format!("{m} min"),
        (_, m, s) if m < 60 => format!("{m} min {s} s"),
        (_, m, _) if m % 60 == 0 => format!("{} h", m / 60),
        (_, m, _) => format!("{} h {} min", m / 60, m % 60),
    }
}

// ---- harness -------------------------------------------------------------------------

/// The real server with timers a person can keep up with: the offer stays open long
/// enough for a slow browser to show it, and page navigations never look like a
/// consultant going offline.
async fn start_app(backend: Backend) -> TestApp {
    TestApp::start_with(backend, |config| {
        config.offer_timeout_secs = 60.0;
        config.presence_grace_secs = 15.0;
    })
    .await
}

/// Wraps a condition on `window.__stats()` (WebRTC `getStats()` summarised by video.js)
/// as a script that returns the stats once the condition holds.
fn stats_when(condition: &str) -> String {
    format!(
        "if (!window.__stats) return null; \
         return window.__stats().then((s) => ({condition}) ? s : null);"
    )
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("screenshots")
}

struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

impl Tools {
    /// Chromium and ChromeDriver from `CHROMIUM`/`CHROMEDRIVER` or the `PATH`. Missing
    /// locally: skip with a note. Missing under `CI=true`: fail.
    fn find(test: &str) -> Option<Tools> {
        let chromium = from_env_or_path("CHROMIUM", &["chromium", "chromium-browser"]);
        let chromedriver = from_env_or_path("CHROMEDRIVER", &["chromedriver"]);
        match (chromium, chromedriver) {
            (Some(chromium), Some(chromedriver)) => Some(Tools {
                chromium,
                chromedriver,
            }),
            _ => {
                let why = "Chromium and ChromeDriver were not found (Debian packages `chromium` \
                           and `chromium-driver`, or set CHROMIUM and CHROMEDRIVER)";
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("{test}: {why}, and CI=true");
                }
                // Straight to stderr: the test harness would swallow eprintln! of a pass.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "NOTE: skipping browser test {test}: {why}"
                );
                None
            }
        }
    }
}

fn from_env_or_path(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let dirs = std::env::var_os("PATH")?;
    std::env::split_paths(&dirs)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|path| path.is_file())
}

/// One ChromeDriver process, in its own process group with every browser it starts, so
/// the whole tree is gone when the test ends however it ends.
struct ChromeDriver {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl ChromeDriver {
    async fn start(tools: &Tools) -> ChromeDriver {
        use std::os::unix::process::CommandExt;
        let http = reqwest::Client::new();
        for _attempt in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut child = Command::new(&tools.chromedriver)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("chromedriver starts");
            let url = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break; // lost the port race; try another
                }
                let ready = http
                    .get(format!("{url}/status"))
                    .send()
                    .await
                    .ok()
                    .map(|r| r.json::<Value>());
                if let Some(body) = ready {
                    if body.await.is_ok_and(|b| b["value"]["ready"] == true) {
                        return ChromeDriver { child, url, http };
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            kill_group(&mut child);
        }
        panic!("chromedriver did not become ready");
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: killpg only sends a signal; the group is the one this child leads
        // (spawned with process_group(0)), so nothing else is touched.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
    }
    let _ = child.wait();
}

#[derive(Clone, Copy, PartialEq)]
enum Media {
    /// Fake camera, microphone and screen, permission granted without a prompt.
    Fake,
    /// The same fake devices, but every permission prompt is refused.
    Refused,
}

/// One person's browser.
struct Browser {
    name: &'static str,
    client: Client,
    session_id: String,
    driver_url: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn launch(
        driver: &ChromeDriver,
        tools: &Tools,
        name: &'static str,
        media: Media,
    ) -> Browser {
        for stale in ["png", "txt"] {
            let _ = std::fs::remove_file(screenshot_dir().join(format!("FAILED-{name}.{stale}")));
        }
        let profile = tempfile::tempdir().expect("profile directory");
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={},{}", WINDOW.0, WINDOW.1),
            "--use-fake-device-for-media-stream=fps=10".into(),
        ];
        match media {
            Media::Fake => args.push("--use-fake-ui-for-media-stream".into()),
            Media::Refused => args.push("--deny-permission-prompts".into()),
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": tools.chromium,
                "args": args,
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let capabilities = match capabilities {
            Value::Object(map) => map,
            _ => unreachable!("a JSON object literal"),
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| panic!("{name}: Chromium did not start: {e}"));
        let session_id = client
            .session_id()
            .await
            .ok()
            .flatten()
            .expect("a WebDriver session id");
        let browser = Browser {
            name,
            client,
            session_id,
            driver_url: driver.url.clone(),
            http: driver.http.clone(),
            _profile: profile,
        };
        browser.set_viewport(WINDOW).await;
        browser
    }

    async fn goto(&self, app: &TestApp, path: &str) {
        let url = format!("{}{}", app.url, path);
        if let Err(e) = self.client.goto(&url).await {
            self.fail(&format!("could not open {url}: {e}")).await;
        }
    }

    async fn refresh(&self) {
        if let Err(e) = self.client.refresh().await {
            self.fail(&format!("reload failed: {e}")).await;
        }
    }

    async fn sign_in(&self, app: &TestApp, email: &str, lands_on: &str) {
        self.goto(app, "/login").await;
        self.wait_visible("#login-submit").await;
        self.type_into("#email", email).await;
        self.type_into("#password", PASSWORD).await;
        self.click("#login-submit").await;
        self.wait_for_path(lands_on).await;
    }

    /// Sizes the window so the page itself (the viewport, what a screenshot shows) is
    /// `width` × `height`: the window includes some browser chrome even when headless.
    async fn set_viewport(&self, (width, height): (u32, u32)) {
        let mut window = (width, height);
        for _ in 0..3 {
            if let Err(e) = self.client.set_window_size(window.0, window.1).await {
                self.fail(&format!("could not resize the window: {e}"))
                    .await;
            }
            let inner = self
                .js("return [window.innerWidth, window.innerHeight]")
                .await;
            let (w, h) = (
                inner[0].as_i64().unwrap_or(0),
                inner[1].as_i64().unwrap_or(0),
            );
            if (w, h) == (i64::from(width), i64::from(height)) {
                return;
            }
            let grow = |window: u32, want: u32, got: i64| {
                u32::try_from(i64::from(window) + i64::from(want) - got).unwrap_or(window)
            };
            window = (grow(window.0, width, w), grow(window.1, height, h));
        }
    }

    /// Runs a script (a function body) once.
    async fn js(&self, script: &str) -> Value {
        match self.client.execute(script, vec![]).await {
            Ok(v) => v,
            Err(e) => self.fail(&format!("script failed: {e}\n{script}")).await,
        }
    }

    /// Polls a script until it returns something truthy, and returns that.
    async fn wait_for(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let last = match self.client.execute(script, vec![]).await {
                Ok(v) if truthy(&v) => return v,
                Ok(v) => format!("last result: {v}"),
                // A navigation in progress has no document to run in yet.
                Err(e) => format!("last error: {e}"),
            };
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "timed out after {WAIT:?} waiting for {what} ({last})"
                ))
                .await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn wait_visible(&self, css: &str) {
        self.wait_for(
            &format!("{css} to be visible"),
            &format!(
                "const e = document.querySelector({}); return !!e && e.checkVisibility()",
                json!(css)
            ),
        )
        .await;
    }

    async fn wait_usable(&self, css: &str) {
        self.wait_for(
            &format!("{css} to be visible and enabled"),
            &format!(
                "const e = document.querySelector({}); return !!e && e.checkVisibility() && !e.disabled",
                json!(css)
            ),
        )
        .await;
    }

    async fn wait_for_path(&self, path: &str) {
        self.wait_for(
            &format!("the page {path}"),
            &format!(
                "return location.pathname === {} && document.readyState === 'complete'",
                json!(path)
            ),
        )
        .await;
    }

    async fn wait_for_path_prefix(&self, prefix: &str) -> String {
        let path = self
            .wait_for(
                &format!("a page under {prefix}"),
                &format!(
                    "return location.pathname.startsWith({}) && document.readyState === 'complete' \
                       && location.pathname",
                    json!(prefix)
                ),
            )
            .await;
        path.as_str().unwrap_or_default().to_string()
    }

    /// Waits until the control is visible and enabled (pages enable controls once they
    /// can act on them), then clicks it like a person.
    async fn click(&self, css: &str) {
        self.wait_usable(css).await;
        let result = match self.client.find(Locator::Css(css)).await {
            Ok(el) => el.click().await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            self.fail(&format!("could not click {css}: {e}")).await;
        }
    }

    async fn type_into(&self, css: &str, text: &str) {
        self.wait_usable(css).await;
        let result = async {
            let el = self.client.find(Locator::Css(css)).await?;
            el.clear().await?;
            el.send_keys(text).await
        }
        .await;
        if let Err(e) = result {
            self.fail(&format!("could not type into {css}: {e}")).await;
        }
    }

    async fn select(&self, css: &str, value: &str) {
        self.wait_usable(css).await;
        let result = async {
            let el = self.client.find(Locator::Css(css)).await?;
            el.select_by_value(value).await
        }
        .await;
        if let Err(e) = result {
            self.fail(&format!("could not choose {value} in {css}: {e}"))
                .await;
        }
    }

    /// A browser may refuse to autoplay the remote audio; a person presses the button the
    /// page offers for that, and so do we.
    async fn play_if_blocked(&self) {
        let blocked = self
            .js("const b = document.querySelector('#btn-play'); return !!b && !b.hidden")
            .await;
        if blocked == Value::Bool(true) {
            self.click("#btn-play").await;
        }
    }

    async fn screenshot(&self, name: &str) {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        // Let a just-changed page paint (fonts, video frames) before the shot.
        let _ = self
            .client
            .execute_async(
                "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
                vec![],
            )
            .await;
        match self.client.screenshot().await {
            Ok(png) => {
                std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written")
            }
            Err(e) => self.fail(&format!("screenshot {name} failed: {e}")).await,
        }
    }

    /// Panics with everything a person needs to see why: where the page was, what it
    /// showed, what the console said, and a screenshot.
    async fn fail(&self, problem: &str) -> ! {
        let url = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_else(|e| format!("(unknown: {e})"));
        let text = self
            .client
            .execute(
                "return document.body ? document.body.innerText : ''",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let shot = screenshot_dir().join(format!("FAILED-{}.png", self.name));
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::create_dir_all(screenshot_dir());
            let _ = std::fs::write(&shot, png);
        }
        let console = self.console_log().await;
        let report = format!(
            "[{}] {problem}\n  at {url}\n  screenshot: {}\n  page text:\n{}\n  console:\n{}",
            self.name,
            shot.display(),
            indent(&text.chars().take(2000).collect::<String>()),
            indent(&console),
        );
        let _ = std::fs::write(
            screenshot_dir().join(format!("FAILED-{}.txt", self.name)),
            &report,
        );
        panic!("{report}");
    }

    /// The browser console since the last call (ChromeDriver's log endpoint).
    async fn console_log(&self) -> String {
        let url = format!("{}/session/{}/se/log", self.driver_url, self.session_id);
        let reply = self
            .http
            .post(url)
            .json(&json!({"type": "browser"}))
            .send()
            .await;
        let Ok(reply) = reply else {
            return "(console log unavailable)".into();
        };
        let body: Value = reply.json().await.unwrap_or(Value::Null);
        body["value"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {}",
                            e["level"].as_str().unwrap_or("?"),
                            e["message"].as_str().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_else(|| "(empty)".into())
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
