//! What an operator's tooling sees: `HEAD` for uptime monitors, a `/metrics` that can
//! require a token, and a content security policy that fits the video provider.

mod common;

use common::{Backend, TestApp};
use nicehr_support::video::DailyStandIn;

backend_tests!(head_answers_like_get_without_a_body);

/// The pages of the browser client, `/healthz`, a static file and an unknown path:
/// HEAD gets GET's status and headers (length included) and no body.
async fn head_answers_like_get_without_a_body(backend: Backend) {
    let app = TestApp::start(backend).await;
    for path in [
        "/healthz",
        "/",
        "/login",
        "/support/request",
        "/support/queue",
        "/support/call/1",
        "/support/history",
        "/support/settings",
        "/support/analytics",
        "/static/css/app.css",
        "/static/vendor/daily-js.js",
        "/no/such/page",
        "/api/no-such-route",
    ] {
        let get = app
            .http
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .expect("GET");
        let get_status = get.status();
        let get_type = get.headers().get("content-type").cloned();
        let get_body = get.bytes().await.expect("GET body");
        let head = app
            .http
            .head(format!("{}{path}", app.url))
            .send()
            .await
            .expect("HEAD");
        assert_eq!(head.status(), get_status, "HEAD {path}");
        assert_eq!(
            head.headers().get("content-type").cloned(),
            get_type,
            "HEAD {path}"
        );
        let length = head
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        assert_eq!(length, Some(get_body.len()), "HEAD {path}: GET's length");
        assert!(
            head.headers().contains_key("content-security-policy"),
            "HEAD {path}: the same security headers"
        );
        let body = head.bytes().await.expect("HEAD body");
        assert!(body.is_empty(), "HEAD {path} sent a body of {}", body.len());
    }
    // HEAD of a write-only route is not a way around its method.
    let head = app
        .http
        .head(format!("{}/api/auth/logout", app.url))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_token_guards_metrics_when_set() {
    let open = TestApp::start(Backend::Sqlite).await;
    let reply = open
        .http
        .get(format!("{}/metrics", open.url))
        .send()
        .await
        .expect("metrics");
    assert_eq!(reply.status().as_u16(), 200, "no token configured: open");

    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.metrics_token = Some("scrape-9f2c".into());
    })
    .await;
    let url = format!("{}/metrics", app.url);
    for (what, request) in [
        ("no token", app.http.get(&url)),
        ("wrong token", app.http.get(&url).bearer_auth("scrape-9f2d")),
        (
            "a user's sign-in token",
            app.http.get(&url).bearer_auth(&app.admin_token),
        ),
        (
            "the token as a cookie",
            app.http
                .get(&url)
                .header("cookie", "nicehr_token=scrape-9f2c"),
        ),
    ] {
        let reply = request.send().await.expect("metrics");
        assert_eq!(reply.status().as_u16(), 401, "{what}");
        let body: serde_json::Value = reply.json().await.expect("JSON error");
        assert_eq!(body["error"], "unauthenticated", "{what}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or("")
                .contains("METRICS_TOKEN"),
            "{what}: {body}"
        );
    }
    let reply = app
        .http
        .get(&url)
        .bearer_auth("scrape-9f2c")
        .send()
        .await
        .expect("metrics");
    assert_eq!(reply.status().as_u16(), 200);
    let text = reply.text().await.expect("text");
    assert!(text.contains("nicehr_http_requests_total"), "{text}");
}

fn csp_of(reply: &reqwest::Response) -> String {
    reply
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Built-in video: scripts from our origin only. Daily: also Daily's call engine,
/// which daily-js loads in call-object mode, and still no `unsafe-eval`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_security_policy_follows_the_video_provider() {
    let builtin = TestApp::start(Backend::Sqlite).await;
    let reply = builtin
        .http
        .get(format!("{}/support/call/1", builtin.url))
        .send()
        .await
        .expect("page");
    let policy = csp_of(&reply);
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert!(!policy.contains("daily"), "{policy}");

    let standin = DailyStandIn::start("ops-test-key");
    let daily = TestApp::start_with(Backend::Sqlite, |c| {
        c.daily_api_key = Some("ops-test-key".into());
        c.daily_domain = Some(standin.domain());
        c.daily_api_url = standin.base_url();
    })
    .await;
    let reply = daily
        .http
        .get(format!("{}/support/call/1", daily.url))
        .send()
        .await
        .expect("page");
    let policy = csp_of(&reply);
    assert!(
        policy.contains("script-src 'self' https://c.daily.co"),
        "{policy}"
    );
    assert!(policy.contains("https://*.daily.co"), "{policy}");
    assert!(!policy.contains("unsafe-eval"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    let vendored = daily
        .http
        .get(format!("{}/static/vendor/daily-js.js", daily.url))
        .send()
        .await
        .expect("daily-js");
    assert_eq!(
        vendored.status().as_u16(),
        200,
        "daily-js ships with the client"
    );
}
