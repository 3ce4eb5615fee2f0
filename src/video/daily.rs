//! Daily.co over its REST API.
//!
//! Daily is reached over the internet and rate-limits hard (about 20 req/s, and
//! 2 req/s for deletes), so every call here has a timeout and a bounded number
//! of retries with jittered exponential backoff; what still fails surfaces as
//! [`VideoError::Unavailable`] so dispatch can answer 503 and keep the request
//! queued instead of losing it.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use rand::Rng;
use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use tracing::{debug, warn};

use super::provider::{
    room_name_for, Participant, ProviderKind, Room, VideoError, VideoProvider, ROOM_PREFIX,
};

pub const DEFAULT_API_URL: &str = "https://api.daily.co/v1";

/// Three, not two: a browser that reloads can leave a ghost participant behind
/// for a few seconds, and with a limit of two the rejoin would be refused as
/// `meeting-full`. Outsiders are kept out by the room being private and tokens
/// being issued only to the session's two parties.
const MAX_PARTICIPANTS: u32 = 3;

/// A name clash is only expected when an earlier attempt whose reply was lost
/// did create the room, so a couple of fresh names are plenty.
const MAX_NAME_ATTEMPTS: u32 = 3;

/// Keeps a large `max_retries` from turning into minutes-long sleeps while a
/// caller (an HTTP request) is waiting.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Daily's largest page for `GET /rooms`.
const LIST_PAGE_SIZE: usize = 100;

/// Bounds the crash sweep even if a misbehaving server keeps returning pages.
const MAX_LIST_PAGES: usize = 100;

/// Keeps `exp` arithmetic far from overflow whatever a config file says.
const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

#[derive(Clone)]
pub struct DailyConfig {
    pub api_key: String,
    /// The `<domain>` of `https://<domain>.daily.co`; only used to build a room
    /// URL if Daily's reply ever lacks one.
    pub domain: String,
    /// Overridable (`DAILY_API_URL`) so tests can point it at the stand-in.
    pub api_url: String,
    pub request_timeout: Duration,
    pub max_retries: u32,
    pub backoff_base: Duration,
    /// How far ahead a room's `exp` is set on create and on every extend.
    pub room_ttl: Duration,
    /// Tokens only gate joining (`eject_at_token_exp` is off), so this bounds
    /// how long a leaked token stays usable, not how long a call may last.
    pub token_ttl: Duration,
}

impl DailyConfig {
    pub fn new(api_key: impl Into<String>, domain: impl Into<String>) -> Self {
        DailyConfig {
            api_key: api_key.into(),
            domain: domain.into(),
            api_url: DEFAULT_API_URL.to_owned(),
            request_timeout: Duration::from_secs(5),
            max_retries: 3,
            backoff_base: Duration::from_millis(200),
            room_ttl: Duration::from_secs(4 * 3600),
            token_ttl: Duration::from_secs(4 * 3600),
        }
    }
}

/// Hand-written so the API key never reaches a log line through `{:?}`.
impl fmt::Debug for DailyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DailyConfig")
            .field("api_key", &"<redacted>")
            .field("domain", &self.domain)
            .field("api_url", &self.api_url)
            .field("request_timeout", &self.request_timeout)
            .field("max_retries", &self.max_retries)
            .field("backoff_base", &self.backoff_base)
            .field("room_ttl", &self.room_ttl)
            .field("token_ttl", &self.token_ttl)
            .finish()
    }
}

#[derive(Debug)]
pub struct DailyProvider {
    config: DailyConfig,
    base: Url,
    http: reqwest::Client,
}

/// What one attempt decided: a final answer, or a transient failure worth
/// another try.
enum Attempt {
    Done(Result<Value, VideoError>),
    Retry(String),
}

impl DailyProvider {
    /// Fails only on configuration (an unusable `api_url`), never on the
    /// network: nothing is sent until the first call.
    pub fn new(config: DailyConfig) -> Result<Self, VideoError> {
        let base = Url::parse(config.api_url.trim_end_matches('/')).map_err(|e| {
            VideoError::Unavailable(format!("invalid Daily API URL {:?}: {e}", config.api_url))
        })?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(VideoError::Unavailable(format!(
                "invalid Daily API URL {:?}: expected http(s)://host/path",
                config.api_url
            )));
        }
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            .user_agent(concat!("nicehr-support/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| VideoError::Unavailable(format!("cannot build HTTP client: {e}")))?;
        Ok(DailyProvider { config, base, http })
    }

    pub fn config(&self) -> &DailyConfig {
        &self.config
    }

    /// Segments are percent-encoded, so a hostile room name cannot reach a
    /// different endpoint.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Equal jitter: at least half the exponential delay, so retries really do
    /// slow down under a 429, and randomised above that so several servers
    /// throttled at once do not retry in lockstep.
    fn backoff(&self, retry: u32) -> Duration {
        let full = self
            .config
            .backoff_base
            .saturating_mul(2u32.saturating_pow(retry))
            .min(MAX_BACKOFF);
        let half = full / 2;
        half + half.mul_f64(rand::thread_rng().gen::<f64>())
    }

    /// One logical call: retried on 429, 5xx, timeouts and connection errors,
    /// never on other 4xx (those would fail the same way again).
    async fn call(
        &self,
        op: &'static str,
        room: &str,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Value, VideoError> {
        let attempts = self.config.max_retries.saturating_add(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(self.backoff(attempt - 2)).await;
            }
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(&self.config.api_key);
            if let Some(body) = body {
                req = req.json(body);
            }
            let outcome = match req.send().await {
                Ok(resp) => Self::read(resp).await,
                Err(e) if e.is_builder() => Attempt::Done(Err(VideoError::Unavailable(format!(
                    "cannot build request: {}",
                    e.without_url()
                )))),
                Err(e) => Attempt::Retry(describe(&e)),
            };
            match outcome {
                Attempt::Done(result) => {
                    match &result {
                        Ok(_) => debug!(op, room, attempt, "Daily call succeeded"),
                        Err(err) => debug!(op, room, attempt, %err, "Daily call failed"),
                    }
                    return result;
                }
                Attempt::Retry(reason) => {
                    warn!(op, room, attempt, attempts, %reason, "Daily call failed, may retry");
                    last = reason;
                }
            }
        }
        Err(VideoError::Unavailable(format!(
            "Daily {op} failed after {attempts} attempts: {last}"
        )))
    }

    async fn read(resp: reqwest::Response) -> Attempt {
        let status = resp.status();
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Attempt::Retry(describe(&e)),
        };
        if status.is_success() {
            // A 2xx is not repeated even if its body is garbled: the work (a
            // room, a token) may already be done.
            return Attempt::Done(serde_json::from_slice(&bytes).map_err(|e| {
                VideoError::Unavailable(format!("unreadable reply from Daily ({status}): {e}"))
            }));
        }
        let (error, info) = error_body(&bytes);
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Attempt::Retry(format!("{} {error}", status.as_u16()));
        }
        if status == StatusCode::NOT_FOUND {
            return Attempt::Done(Err(VideoError::NotFound));
        }
        Attempt::Done(Err(VideoError::Rejected {
            status: status.as_u16(),
            error,
            info,
        }))
    }

    async fn create_room_named(&self, name: &str) -> Result<Room, VideoError> {
        let exp = unix_after(self.config.room_ttl);
        let body = json!({
            "name": name,
            "privacy": "private",
            "properties": {
                "exp": exp,
                "enable_screenshare": true,
                "enable_chat": false,
                "max_participants": MAX_PARTICIPANTS,
                // Sessions have no time limit: an expiring room must not cut
                // a call short, it only stops new joins until extended.
                "eject_at_room_exp": false,
                "enable_prejoin_ui": false,
            }
        });
        let reply = self
            .call(
                "create_room",
                name,
                Method::POST,
                self.url(&["rooms"]),
                Some(&body),
            )
            .await?;
        let mut room = self.parse_room(&reply).ok_or_else(|| {
            VideoError::Unavailable("Daily's create-room reply had no room name".into())
        })?;
        if room.expires_at.is_none() {
            room.expires_at = from_unix(exp);
        }
        if room.name != name {
            debug!(requested = name, assigned = %room.name, "Daily renamed the room");
        }
        Ok(room)
    }

    /// Daily's name and URL win over ours (HIPAA domains rename rooms).
    fn parse_room(&self, v: &Value) -> Option<Room> {
        let name = v.get("name")?.as_str()?.to_owned();
        let url = v
            .get("url")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("https://{}.daily.co/{name}", self.config.domain));
        let expires_at = v
            .get("config")
            .and_then(|c| c.get("exp"))
            .and_then(Value::as_f64)
            .and_then(|secs| from_unix(secs as i64));
        Some(Room {
            name,
            url: Some(url),
            expires_at,
        })
    }
}

#[async_trait::async_trait]
impl VideoProvider for DailyProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Daily
    }

    async fn create_room(&self, session_id: i64) -> Result<Room, VideoError> {
        let mut last = None;
        for _ in 0..MAX_NAME_ATTEMPTS {
            let name = room_name_for(session_id);
            match self.create_room_named(&name).await {
                Err(err @ VideoError::Rejected { status: 400, .. }) if is_name_clash(&err) => {
                    warn!(room = %name, "Daily room name already taken, trying a fresh one");
                    last = Some(err);
                }
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| VideoError::Unavailable("no room name attempts".into())))
    }

    async fn delete_room(&self, room_name: &str) -> Result<(), VideoError> {
        let url = self.url(&["rooms", room_name]);
        match self
            .call("delete_room", room_name, Method::DELETE, url, None)
            .await
        {
            Ok(_) | Err(VideoError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A fresh token per join: with `eject_at_token_exp` off the expiry only
    /// gates joining, so a call outlives its token, but a reconnect needs a
    /// new one.
    async fn create_meeting_token(
        &self,
        room: &Room,
        who: &Participant,
    ) -> Result<Option<String>, VideoError> {
        let body = json!({
            "properties": {
                // Without room_name the token would open every room of the domain.
                "room_name": room.name,
                "user_id": uuid_like_user_id(who.user_id),
                "user_name": who.display_name,
                "is_owner": who.is_owner,
                "exp": unix_after(self.config.token_ttl),
                "eject_at_token_exp": false,
                "enable_screenshare": true,
            }
        });
        let url = self.url(&["meeting-tokens"]);
        let reply = self
            .call(
                "create_meeting_token",
                &room.name,
                Method::POST,
                url,
                Some(&body),
            )
            .await?;
        match reply.get("token").and_then(Value::as_str) {
            Some(token) if !token.is_empty() => Ok(Some(token.to_owned())),
            _ => Err(VideoError::Unavailable(
                "Daily's meeting-token reply had no token".into(),
            )),
        }
    }

    async fn room_info(&self, room_name: &str) -> Result<Option<Room>, VideoError> {
        let url = self.url(&["rooms", room_name]);
        match self
            .call("room_info", room_name, Method::GET, url, None)
            .await
        {
            Ok(v) => Ok(self.parse_room(&v)),
            Err(VideoError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list_rooms(&self) -> Result<Vec<Room>, VideoError> {
        let mut ours = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut url = self.url(&["rooms"]);
            {
                let mut query = url.query_pairs_mut();
                query.append_pair("limit", &LIST_PAGE_SIZE.to_string());
                if let Some(id) = &after {
                    query.append_pair("starting_after", id);
                }
            }
            let page = self.call("list_rooms", "-", Method::GET, url, None).await?;
            let data = match page.get("data").and_then(Value::as_array) {
                Some(data) => data,
                None => break,
            };
            ours.extend(
                data.iter()
                    .filter_map(|r| self.parse_room(r))
                    .filter(|r| r.name.starts_with(ROOM_PREFIX)),
            );
            if data.len() < LIST_PAGE_SIZE {
                break;
            }
            after = data
                .last()
                .and_then(|r| r.get("id"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            if after.is_none() {
                break;
            }
        }
        Ok(ours)
    }

    async fn extend_room(&self, room_name: &str) -> Result<(), VideoError> {
        let body = json!({ "properties": { "exp": unix_after(self.config.room_ttl) } });
        let url = self.url(&["rooms", room_name]);
        self.call("extend_room", room_name, Method::POST, url, Some(&body))
            .await
            .map(|_| ())
    }
}

fn is_name_clash(err: &VideoError) -> bool {
    matches!(err, VideoError::Rejected { error, info, .. }
        if error == "invalid-request-error" && info.contains("already exists"))
}

/// `reqwest::Error`'s text without the URL, and with the kind spelled out,
/// because "error sending request" alone does not say timeout vs refused.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Daily's `{"error","info"}`, tolerating anything else a proxy might send.
fn error_body(bytes: &[u8]) -> (String, String) {
    let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let error = field("error");
    let info = field("info");
    if error.is_empty() && info.is_empty() {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
        return ("unknown-error".into(), text);
    }
    (error, info)
}

fn unix_after(ttl: Duration) -> i64 {
    Utc::now().timestamp() + ttl.min(MAX_TTL).as_secs() as i64
}

fn from_unix(secs: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(secs, 0).single()
}

/// Our numeric user id in UUID shape, because Daily's HIPAA logs drop any
/// `user_id` that is not UUID-like. Reversible (see [`user_id_from_uuid_like`])
/// so webhook events can be mapped back to users without a lookup table.
pub fn uuid_like_user_id(user_id: i64) -> String {
    let v = user_id as u64;
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        v >> 48,
        v & 0xffff_ffff_ffff
    )
}

pub fn user_id_from_uuid_like(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split('-').collect();
    let [hi, "0000", "4000", "8000", lo] = parts.as_slice() else {
        return None;
    };
    if hi.len() != 8 || lo.len() != 12 {
        return None;
    }
    let hi = u64::from_str_radix(hi, 16).ok()?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    if hi > 0xffff {
        return None;
    }
    Some(((hi << 48) | lo) as i64)
}

pub const WEBHOOK_TIMESTAMP_HEADER: &str = "X-Webhook-Timestamp";
pub const WEBHOOK_SIGNATURE_HEADER: &str = "X-Webhook-Signature";

/// Checks a Daily webhook: base64(HMAC-SHA256(base64decode(secret),
/// timestamp + "." + body)), compared in constant time.
///
/// An empty or undecodable secret verifies nothing, so a missing setting cannot
/// turn into "accept everything signed with the empty key".
pub fn verify_webhook_signature(
    secret_b64: &str,
    timestamp: &str,
    body: &[u8],
    signature_b64: &str,
) -> bool {
    let Some(mac) = webhook_mac(secret_b64, timestamp, body) else {
        return false;
    };
    let Ok(signature) = STANDARD.decode(signature_b64.trim()) else {
        return false;
    };
    mac.verify_slice(&signature).is_ok()
}

/// The signature Daily would send; for tests and the load generator.
pub fn sign_webhook(secret_b64: &str, timestamp: &str, body: &[u8]) -> Option<String> {
    let mac = webhook_mac(secret_b64, timestamp, body)?;
    Some(STANDARD.encode(mac.finalize().into_bytes()))
}

fn webhook_mac(secret_b64: &str, timestamp: &str, body: &[u8]) -> Option<Hmac<Sha256>> {
    let key = STANDARD.decode(secret_b64.trim()).ok()?;
    if key.is_empty() {
        return None;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// A webhook delivery. Fields are optional and leniently typed because the
/// exact payloads are only partly documented; an odd field should not make us
/// drop the event that says a call ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    #[serde(default, deserialize_with = "lenient_string")]
    pub version: Option<String>,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub id: Option<String>,
    #[serde(default)]
    pub payload: WebhookPayload,
    /// Unix seconds (fractional).
    #[serde(default, deserialize_with = "lenient_f64")]
    pub event_ts: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookPayload {
    #[serde(default, deserialize_with = "lenient_string")]
    pub room: Option<String>,
    /// The UUID-like id we put in the token; see [`user_id_from_uuid_like`].
    #[serde(default, deserialize_with = "lenient_string")]
    pub user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub user_name: Option<String>,
    /// Daily's participant session id, not ours.
    #[serde(default, deserialize_with = "lenient_string")]
    pub session_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub joined_at: Option<f64>,
    /// Seconds.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub duration: Option<f64>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub meeting_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub start_ts: Option<f64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub end_ts: Option<f64>,
}

impl WebhookPayload {
    pub fn our_user_id(&self) -> Option<i64> {
        self.user_id.as_deref().and_then(user_id_from_uuid_like)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookEventKind {
    MeetingStarted,
    MeetingEnded,
    ParticipantJoined,
    ParticipantLeft,
    Other,
}

impl WebhookEvent {
    pub fn kind(&self) -> WebhookEventKind {
        match self.event_type.as_str() {
            "meeting.started" => WebhookEventKind::MeetingStarted,
            "meeting.ended" => WebhookEventKind::MeetingEnded,
            "participant.joined" => WebhookEventKind::ParticipantJoined,
            "participant.left" => WebhookEventKind::ParticipantLeft,
            _ => WebhookEventKind::Other,
        }
    }
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}
