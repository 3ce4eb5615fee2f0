//! The API as a document: `/api/openapi.json` is OpenAPI 3.1 and names every route;
//! `/api/docs` renders it from vendored assets; and schemathesis (PyPI), run against
//! the real server on both backends with an admin's token and a little data, finds no
//! 5xx and no reply that the document does not describe (status, content type, body).

mod common;

use std::process::Stdio;
use std::sync::Mutex;

use common::{Backend, TestApp};
use serde_json::{json, Value};

/// The schemathesis release the suite is written against (its checks' names and
/// options); `.ci/run` installs the same one.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// Cases per operation and phase: enough to reach every documented field and
/// status of ~50 operations, small enough for both backends in a few minutes.
const EXAMPLES_PER_OPERATION: &str = "30";
/// The document's promises; checks about what the server should accept (positive
/// and negative data, authorization) are left out: they judge the API's design, not
/// whether the document tells the truth about it.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance";
/// A fixed seed, so a failure seen once is seen again.
const SEED: &str = "20261203";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_names_every_route_and_the_reference_page_renders_it_locally() {
    let app = TestApp::start(Backend::Sqlite).await;
    let doc = app
        .http
        .get(format!("{}/api/openapi.json", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(doc.status(), 200);
    assert!(doc.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: Value = doc.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    // Every route the server registers under /api, plus /healthz and /metrics.
    for (method, path) in [
        ("post", "/api/auth/login"),
        ("get", "/api/auth/sso/{provider}/callback"),
        ("post", "/api/support/request"),
        ("post", "/api/support/end/{id}"),
        ("get", "/api/support/history.csv"),
        ("patch", "/api/admin/users/{id}"),
        ("delete", "/api/admin/assignments/{id}"),
        ("put", "/api/admin/hospitals/{id}/retention"),
        ("post", "/api/webhooks/daily"),
        ("get", "/healthz"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not in the document"
        );
    }
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(operations, 51, "one operation per route");
    // Each documented path is one the server routes (a misspelt one would answer
    // "no route for …", which as a 404 with the error shape would pass schemathesis).
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            if path == "/api/auth/logout" {
                continue; // it would revoke the token the other requests use
            }
            let concrete = path
                .replace("{id}", "1")
                .replace("{provider}", "no-such-provider");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let reply = app
                .http
                .request(method.clone(), format!("{}{concrete}", app.url))
                .bearer_auth(&app.admin_token)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let body = reply.text().await.unwrap_or_default();
            assert!(
                !body.contains("no route for"),
                "{method} {path} is documented but not routed: {body}"
            );
        }
    }
    // The request body of a session request is the handler's own type.
    let schemas = &doc["components"]["schemas"];
    let request_input = &schemas["RequestInput"];
    assert_eq!(request_input["additionalProperties"], false);
    let required: Vec<&str> = request_input["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["department", "issue_summary"]);
    assert_eq!(
        schemas["SessionStatus"]["enum"],
        serde_json::json!(["pending", "connecting", "active", "completed", "cancelled"])
    );

    let page = app
        .http
        .get(format!("{}/api/docs", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("/static/vendor/swagger-ui/swagger-ui-bundle.js"));
    assert!(
        !html.contains("https://"),
        "the reference page loads nothing from outside"
    );
    for asset in [
        "/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "/static/vendor/swagger-ui/swagger-ui.css",
        "/static/js/pages/api-docs.js",
    ] {
        let reply = app
            .http
            .get(format!("{}{asset}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200, "{asset}");
    }
}

/// The schemathesis command, installing the pinned release with pip if it is not
/// there (as the OpenID tests install their provider with npm).
fn schemathesis() -> std::path::PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let found = || {
        std::process::Command::new("schemathesis")
            .arg("--version")
            .stdout(Stdio::piped())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let pinned = SCHEMATHESIS.trim_start_matches("schemathesis==");
    if !found().is_some_and(|v| v.contains(pinned)) {
        let status = std::process::Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", SCHEMATHESIS])
            .status()
            .expect("python3 runs (install Python 3 and pip)");
        assert!(status.success(), "pip install {SCHEMATHESIS} failed");
    }
    assert!(
        found().is_some(),
        "schemathesis is not on PATH after pip install"
    );
    "schemathesis".into()
}

/// The ids schemathesis should use for path parameters, so operations meet real
/// rows (and their replies are checked) rather than only 404s.
struct Seeded {
    finished_session: i64,
    waiting_session: i64,
    hospital: i64,
    consultant: i64,
    staff: i64,
    assignment: i64,
}

/// A hospital, a consultant with specialties, a requester with a finished call, one
/// waiting request and a dedicated assignment.
async fn seed(app: &TestApp) -> Seeded {
    let ward = app.ward("Schema General", "premium").await;
    let (consultant, ws) = app
        .consultant("schema.consultant@test.local", &[("Radiology", "expert")])
        .await;
    let nurse = app
        .person(
            "schema.nurse@test.local",
            "hospital_staff",
            Some(ward.hospital_id),
        )
        .await;
    let (finished_session, _) = app.request_support(&nurse, "Radiology", "urgent").await;
    for (path, body) in [
        // Taking works whether or not the dispatcher has offered it yet.
        (format!("/api/support/take/{finished_session}"), json!({})),
        (
            format!("/api/support/end/{finished_session}"),
            json!({"resolved": true, "resolution_notes": "Reseated the cable"}),
        ),
    ] {
        let (status, reply) = app.post(Some(&consultant.token), &path, body).await;
        assert_eq!(status, 200, "{path}: {reply}");
    }
    let (status, reply) = app
        .post(
            Some(&nurse.token),
            &format!("/api/support/rate/{finished_session}"),
            json!({"rating": 5}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    drop(ws);
    let staff = app
        .person(
            "schema.other@test.local",
            "hospital_staff",
            Some(ward.hospital_id),
        )
        .await;
    let (waiting_session, _) = app.request_support(&staff, "Pharmacy", "normal").await;
    let (status, reply) = app
        .post(
            Some(&app.admin_token),
            "/api/admin/assignments",
            json!({"consultant_id": consultant.id, "hospital_id": ward.hospital_id}),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    Seeded {
        finished_session,
        waiting_session,
        hospital: ward.hospital_id,
        consultant: consultant.id,
        staff: staff.id,
        assignment: reply["id"].as_i64().expect("assignment id"),
    }
}

/// A schemathesis configuration binding each `{id}` to a seeded row. Users: a
/// staff account, never the admin whose token the run uses (a PATCH could
/// deactivate it and turn every later case into a 401).
fn config(seeded: &Seeded) -> String {
    let bind = |regex: &str, id: i64| {
        format!(
            "[[operations]]\ninclude-path-regex = '{regex}'\nparameters = {{ \"path.id\" = {id} }}\n\n"
        )
    };
    [
        bind(
            "^/api/support/(sessions|join|end|wrapup|rate)/",
            seeded.finished_session,
        ),
        bind(
            "^/api/support/(accept|take|decline|cancel)/",
            seeded.waiting_session,
        ),
        bind("^/api/admin/users/", seeded.staff),
        bind("^/api/admin/hospitals/", seeded.hospital),
        bind("^/api/admin/consultants/", seeded.consultant),
        bind("^/api/admin/assignments/", seeded.assignment),
    ]
    .concat()
}

async fn schemathesis_finds_no_5xx_and_no_undocumented_reply(backend: Backend) {
    let app = TestApp::start(backend).await;
    let seeded = seed(&app).await;
    let command = schemathesis();
    let scratch = tempfile::tempdir().expect("scratch directory");
    let config_file = scratch.path().join("schemathesis.toml");
    std::fs::write(&config_file, config(&seeded)).expect("config written");
    let output = tokio::process::Command::new(command)
        .arg("--config-file")
        .arg(&config_file)
        .args([
            "run",
            &format!("{}/api/openapi.json", app.url),
            "--checks",
            CHECKS,
            "--max-examples",
            EXAMPLES_PER_OPERATION,
            "--seed",
            SEED,
            "--phases",
            "examples,coverage,fuzzing",
            "--no-color",
            "--generation-database",
            "none",
            // Signing out would revoke the token every other case runs with.
            "--exclude-path",
            "/api/auth/logout",
            "--header",
            &format!("Authorization: Bearer {}", app.admin_token),
        ])
        .current_dir(scratch.path())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found problems on {backend:?}:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("Tested: 50"),
        "schemathesis did not test every operation on {backend:?}:\n{stdout}"
    );
    // Every case ran signed in: the run's own token survived it.
    let (status, me) = app.get(Some(&app.admin_token), "/api/auth/me").await;
    assert_eq!(
        status, 200,
        "the admin's token was revoked during the run: {me}"
    );
}

backend_tests!(schemathesis_finds_no_5xx_and_no_undocumented_reply);
