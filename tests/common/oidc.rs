//! A real OpenID Connect provider for the tests: the npm package `oidc-provider`
//! running `tests/oidc/provider.mjs` on a free port, and a client that walks its
//! sign-in pages the way a person does (login form, consent given).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;

use nicehr_support::config::{Secret, SsoProviderConfig, SsoRoleRule};
use nicehr_support::model::{HospitalId, Role};
use tokio::io::{AsyncBufReadExt, BufReader};

pub const CLIENT_ID: &str = "nicehr";
pub const CLIENT_SECRET: &str = "nicehr-test-secret";

fn oidc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// `npm ci` into tests/oidc/node_modules once, if it is not there yet.
fn ensure_installed() {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = oidc_dir();
    if dir
        .join("node_modules/oidc-provider/package.json")
        .is_file()
    {
        return;
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .expect("npm runs (install Node.js and npm)");
    assert!(status.success(), "npm ci in tests/oidc failed");
}

/// One running identity provider; it exits when this is dropped (its stdin closes,
/// and the child is killed).
pub struct Idp {
    pub issuer: String,
    _child: tokio::process::Child,
}

impl Idp {
    /// Starts a provider whose people have addresses `<login>@<domain>`.
    pub async fn start(domain: &str) -> Idp {
        ensure_installed();
        let mut child = tokio::process::Command::new("node")
            .arg(oidc_dir().join("provider.mjs"))
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_EMAIL_DOMAIN", domain)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("OIDC_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true)
            .spawn()
            .expect("node starts tests/oidc/provider.mjs");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        reader
            .read_line(&mut line)
            .await
            .expect("the provider prints its issuer");
        // Whatever it prints later is read and dropped: a closed pipe would kill it.
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut reader, &mut tokio::io::sink()).await;
        });
        let parsed: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("provider said {line:?}: {e}"));
        let issuer = parsed["issuer"].as_str().expect("issuer").to_string();
        Idp {
            issuer,
            _child: child,
        }
    }

    /// A NICEHR provider entry for this identity provider.
    pub fn provider(&self, id: &str, hospital: Option<i64>) -> SsoProviderConfig {
        let hospital_role = hospital.is_some();
        SsoProviderConfig {
            id: id.into(),
            display_name: format!("{id} ID"),
            issuer_url: self.issuer.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: Secret(CLIENT_SECRET.into()),
            hospital_id: hospital.map(HospitalId),
            scopes: vec!["groups".into()],
            roles: vec![SsoRoleRule {
                claim: "groups".into(),
                value: "leads".into(),
                role: if hospital_role {
                    Role::HospitalLeadership
                } else {
                    Role::Admin
                },
            }],
            default_role: Some(if hospital_role {
                Role::HospitalStaff
            } else {
                Role::Consultant
            }),
        }
    }
}

/// A browser-like client for the provider's pages: keeps cookies, follows no
/// redirect by itself (the walk stops at NICEHR's callback).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Walks from NICEHR's start URL through the provider's login (as `login`, any
/// password) to the callback URL the provider sends the browser back to, which is
/// returned unvisited.
pub async fn authorize(
    client: &reqwest::Client,
    app_url: &str,
    provider: &str,
    login: &str,
) -> String {
    let mut url = format!("{app_url}/api/auth/sso/{provider}/start");
    for _ in 0..20 {
        if url.starts_with(app_url) && url.contains("/callback") {
            return url;
        }
        let resp = client.get(&url).send().await.expect("reply");
        let status = resp.status();
        if status.is_redirection() {
            url = next(&url, &resp);
            continue;
        }
        let body = resp.text().await.unwrap_or_default();
        assert_eq!(status, 200, "{url}: {body}");
        let prompt = if body.contains(r#"name="prompt" value="login""#) {
            "login"
        } else if body.contains(r#"name="prompt" value="consent""#) {
            "consent"
        } else {
            panic!("{url}: neither a login nor a consent page: {body}");
        };
        let action = body
            .split("action=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the form's action")
            .replace("&amp;", "&");
        let target = url::Url::parse(&url)
            .and_then(|base| base.join(&action))
            .expect("action URL");
        let form: Vec<(&str, &str)> = match prompt {
            "login" => vec![("prompt", "login"), ("login", login), ("password", "any")],
            _ => vec![("prompt", "consent")],
        };
        let resp = client
            .post(target.as_str())
            .form(&form)
            .send()
            .await
            .expect("reply");
        assert!(
            resp.status().is_redirection(),
            "{target}: {}",
            resp.status()
        );
        url = next(target.as_str(), &resp);
    }
    panic!("no callback after 20 steps (last at {url})");
}

fn next(from: &str, resp: &reqwest::Response) -> String {
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{from}: a redirect without Location"));
    url::Url::parse(from)
        .and_then(|base| base.join(location))
        .expect("Location URL")
        .to_string()
}
