//! Start-up: open storage, seed demo data if asked, start the actors, bind HTTP.
//! `start` is used by `main`; `spawn` runs the same server on its own thread and
//! actix system, for tests and the in-process load generator.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Server, ServerHandle, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{DefaultHeaders, ErrorHandlerResponse, ErrorHandlers};
use actix_web::{web, App, HttpServer};

use crate::auth::origin::OriginPolicy;
use crate::auth::throttle::LoginThrottle;
use crate::config::ServeArgs;
use crate::db::{self, repo, Db, DbError};
use crate::dispatch::auto_accept;
use crate::dispatch::dispatcher::Dispatcher;
use crate::dispatch::messages::StreamEvent;
use crate::dispatch::presence::{PresenceListener, Presences};
use crate::error::{self, ApiError};
use crate::events::Hub;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::sso::Sso;
use crate::state::AppState;
use crate::support::{Core, LiveCalls};
use crate::video::{
    BuiltinProvider, DailyConfig, DailyProvider, IceServer, ProviderKind, VideoProvider,
};
use crate::ws::fanout::FanOut;
use crate::ws::registry::Registry;
use crate::ws::Sockets;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("storage: {0}")]
    Db(#[from] DbError),
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    #[error("configuration: {0}")]
    Config(String),
    #[error("demo data: {0}")]
    Seed(String),
}

/// Pages may only load our own scripts, styles and media, and may not be framed.
/// This is the policy with the built-in video provider; see [`content_security_policy`].
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self' ws: wss:; media-src 'self' blob: mediastream:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// daily-js itself is served from `/static/vendor/`, but in call-object mode it loads
/// Daily's call engine from Daily's CDN (`c.<domain>`, with two fail-over domains,
/// as a plain script because the client sets `avoidEval`, so no `'unsafe-eval'`) and
/// talks HTTPS to Daily's API. Only a Daily deployment opens these holes.
const DAILY_SCRIPT_SOURCES: &str =
    "https://c.daily.co https://c.dailywebrtc.com https://c.dailywebrtc.net";
const DAILY_CONNECT_SOURCES: &str =
    "https://*.daily.co https://*.dailywebrtc.com https://*.dailywebrtc.net";

/// The `Content-Security-Policy` for the video provider that is running.
pub fn content_security_policy(provider: ProviderKind) -> String {
    match provider {
        ProviderKind::Builtin => CONTENT_SECURITY_POLICY.to_string(),
        ProviderKind::Daily => CONTENT_SECURITY_POLICY
            .replace(
                "script-src 'self';",
                &format!("script-src 'self' {DAILY_SCRIPT_SOURCES}; worker-src 'self' blob:;"),
            )
            .replace(
                "connect-src 'self' ws: wss:;",
                &format!("connect-src 'self' ws: wss: {DAILY_CONNECT_SOURCES};"),
            ),
    }
}

/// What `start` needs from the configuration beyond plain values, worked out
/// without touching the database or the network, so `config check` reports every
/// mistake `serve` would stop at.
pub struct Preflight {
    video: Arc<dyn VideoProvider>,
    sweep_every: std::time::Duration,
    extend_every: std::time::Duration,
    retention_every: std::time::Duration,
    tls: Option<rustls::ServerConfig>,
    sso: Arc<Sso>,
}

pub fn preflight(config: &ServeArgs) -> Result<Preflight, StartError> {
    db::Backend::of(&config.db.database_url)?;
    let video = video_provider(config)?;
    check_webhook_secret(config)?;
    let sweep_every = positive("ROOM_SWEEP_SECS", config.room_sweep_interval())?;
    let extend_every = positive("ROOM_EXTEND_SECS", config.room_extend_interval())?;
    let retention_every = positive("RETENTION_SWEEP_SECS", config.retention.sweep_interval())?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
        (None, None) => None,
        _ => {
            return Err(StartError::Config(
                "--tls-cert and --tls-key go together".into(),
            ))
        }
    };
    if config
        .metrics_token
        .as_deref()
        .is_some_and(|t| t.trim().is_empty())
    {
        return Err(StartError::Config(
            "METRICS_TOKEN is empty; unset it to leave /metrics open".into(),
        ));
    }
    let sso = Arc::new(Sso::new(&config.sso).map_err(StartError::Config)?);
    Ok(Preflight {
        video,
        sweep_every,
        extend_every,
        retention_every,
        tls,
        sso,
    })
}

pub struct Started {
    pub addr: SocketAddr,
    pub server: Server,
    pub state: web::Data<AppState>,
}

pub async fn start(config: ServeArgs) -> Result<Started, StartError> {
    let Preflight {
        video,
        sweep_every,
        extend_every,
        retention_every,
        tls,
        sso,
    } = preflight(&config)?;
    let config = Arc::new(config);
    tracing::info!(
        database = %db::redact_url(&config.db.database_url),
        "opening storage"
    );
    let db = Db::connect(&config.db).await?;
    crate::db::spawn_checkpointer(&db);
    if config.demo {
        let report = db::seed::seed_demo(&db)
            .await
            .map_err(|e| StartError::Seed(e.to_string()))?;
        report.print();
    }
    let metrics = Arc::new(Metrics::new().map_err(|e| StartError::Config(e.to_string()))?);
    let csp = content_security_policy(video.kind());
    tracing::info!(provider = video.kind().as_str(), "video provider selected");
    // The dispatcher gets a thread of its own: every offer passes through it, and
    // nothing else (housekeeping, HTTP) may sit in front of it. The event hub runs on
    // it too: every offer starts from an event the hub hands the dispatcher and ends
    // in one the hub fans out, and on one thread those two hand-offs are task wake-ups
    // instead of thread switches.
    let dispatch_thread = actix::Arbiter::new();
    let core = match start_core(
        db,
        config.clone(),
        metrics,
        video,
        &dispatch_thread.handle(),
    )
    .await
    {
        Ok(core) => core,
        Err(e) => {
            dispatch_thread.stop();
            return Err(e);
        }
    };
    let registry = Registry::new();
    let presences = Presences::new(core.clone());
    let dispatcher_core = core.clone();
    let dispatcher_presences = presences.clone();
    let dispatcher = actix::Supervisor::start_in_arbiter(&dispatch_thread.handle(), move |_| {
        Dispatcher::new(dispatcher_core, dispatcher_presences)
    });
    presences.attach(PresenceListener {
        gained: dispatcher.clone().recipient(),
        lost: dispatcher.clone().recipient(),
    });
    subscribe(&core, &registry, &presences, &dispatcher);
    crate::ws::revocation::spawn(core.db.clone(), registry.clone());
    start_room_housekeeping(core.clone(), sweep_every, extend_every);
    crate::retention::spawn(core.db.clone(), config.retention.clone(), retention_every);

    let listener = TcpListener::bind(config.bind)?;
    let addr = listener.local_addr()?;
    let origins = OriginPolicy::new(
        config.public_url.as_deref(),
        &config.allowed_origins,
        addr,
        config.tls_cert.is_some(),
    )
    .map_err(|e| StartError::Config(e.to_string()))?;
    tracing::info!(origins = ?origins.describe(), "pages of these origins may open /ws");
    let limits = Arc::new(Limits::new(&config));
    let sockets = web::Data::new(Sockets {
        core: core.clone(),
        registry: registry.clone(),
        presences,
        dispatcher: dispatcher.clone(),
        limits: limits.clone(),
        origins,
    });
    let core_data = web::Data::from(core.clone());
    let state = web::Data::new(AppState {
        core,
        dispatcher,
        registry,
        login_throttle: LoginThrottle::new(config.login_throttle()),
        limits,
        sso,
    });
    let app_state = state.clone();
    let body_limit = config.max_body_bytes;
    let mut http = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .app_data(core_data.clone())
            .app_data(sockets.clone())
            .app_data(error::json_config(body_limit))
            .app_data(error::query_config())
            .app_data(error::path_config())
            .app_data(web::PayloadConfig::new(body_limit))
            .wrap(actix_web::middleware::from_fn(head_as_get))
            .wrap(ErrorHandlers::new().default_handler(json_error_body))
            .wrap(
                DefaultHeaders::new()
                    .add((header::CONTENT_SECURITY_POLICY, csp.clone()))
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                    .add((header::X_FRAME_OPTIONS, "DENY"))
                    .add((header::REFERRER_POLICY, "no-referrer")),
            )
            .wrap(actix_web::middleware::from_fn(
                crate::limits::body::deadline,
            ))
            .wrap(actix_web::middleware::from_fn(observe))
            .configure(crate::api::configure)
            .service(
                actix_files::Files::new("/static", config_static_dir(&app_state)).use_etag(true),
            )
            .default_service(web::to(crate::api::api_not_found))
    })
    // Offers and call events are small WebSocket frames that must leave at once;
    // with Nagle on, a frame sent while an earlier one is unacknowledged waits for
    // the peer's delayed ACK (up to 40 ms on Linux).
    .tcp_nodelay(true)
    .shutdown_timeout(10);
    if let Some(workers) = config.http_workers {
        http = http.workers(workers.max(1));
    }
    let http = match tls {
        Some(tls) => http.listen_rustls_0_23(listener, tls)?,
        None => http.listen(listener)?,
    };
    let server = http.run();
    tracing::info!(%addr, "listening");
    Ok(Started {
        addr,
        server,
        state,
    })
}

/// The domain's shared state: storage, the event hub (starting after the last
/// stored event) and the live-call view loaded from storage.
async fn start_core(
    db: Db,
    config: Arc<ServeArgs>,
    metrics: Arc<Metrics>,
    video: Arc<dyn VideoProvider>,
    hub_thread: &actix::ArbiterHandle,
) -> Result<Arc<Core>, StartError> {
    let last = repo::events::last_id(&db).await?;
    let hub = Hub::start(db.clone(), metrics.clone(), last, hub_thread);
    let calls = Arc::new(LiveCalls::default());
    calls.load(&repo::sessions::all_live(&db).await?);
    Ok(Arc::new(Core {
        db,
        config,
        metrics,
        video,
        hub,
        calls,
    }))
}

/// Everyone who follows the event stream, in the order they hear each event: the
/// live-call view first (so a signal right after an accept finds its call), then
/// the sockets, the dispatcher, auto-accept and the presence watch.
fn subscribe(
    core: &Arc<Core>,
    registry: &Arc<Registry>,
    presences: &Arc<Presences>,
    dispatcher: &actix::Addr<Dispatcher>,
) {
    let hub = &core.hub;
    let calls = core.calls.clone();
    hub.subscribe(Box::new(move |p| calls.apply(p)));
    let fanout = Arc::new(FanOut::new(registry.clone()));
    let events = fanout.clone();
    hub.subscribe(Box::new(move |p| events.deliver(p)));
    hub.subscribe_notices(Box::new(move |n| fanout.notify(n)));
    let dispatcher = dispatcher.clone();
    hub.subscribe(Box::new(move |p| {
        dispatcher.do_send(StreamEvent(p.clone()))
    }));
    let reactor_core = core.clone();
    hub.subscribe(Box::new(move |p| auto_accept::react(&reactor_core, p)));
    let watch = presences.clone();
    hub.subscribe(Box::new(move |p| watch.watch(p)));
}

/// Daily when both `DAILY_API_KEY` and `DAILY_DOMAIN` are set; built-in WebRTC otherwise.
fn video_provider(config: &ServeArgs) -> Result<Arc<dyn VideoProvider>, StartError> {
    match (&config.daily_api_key, &config.daily_domain) {
        (Some(key), Some(domain)) if !key.is_empty() && !domain.is_empty() => {
            let mut daily = DailyConfig::new(key.clone(), domain.clone());
            daily.api_url = config.daily_api_url.clone();
            daily.request_timeout = positive("DAILY_TIMEOUT_SECS", config.daily_timeout())?;
            daily.max_retries = config.daily_max_retries;
            daily.backoff_base = std::time::Duration::from_millis(config.daily_backoff_ms);
            daily.room_ttl = std::time::Duration::from_secs(config.daily_room_ttl_secs);
            // A room whose expiry passes between two extensions refuses anyone who
            // reconnects, so the extension must come round well before that.
            if config.room_extend_interval() >= daily.room_ttl / 2 {
                return Err(StartError::Config(format!(
                    "ROOM_EXTEND_SECS ({}) must be less than half of DAILY_ROOM_TTL_SECS ({})",
                    config.room_extend_secs, config.daily_room_ttl_secs
                )));
            }
            let provider =
                DailyProvider::new(daily).map_err(|e| StartError::Config(e.to_string()))?;
            Ok(Arc::new(provider))
        }
        _ => {
            let ice: Vec<IceServer> = serde_json::from_str(&config.ice_servers).map_err(|e| {
                StartError::Config(format!(
                    "ICE_SERVERS must be a JSON array of RTCIceServer objects: {e}"
                ))
            })?;
            Ok(Arc::new(BuiltinProvider::new(ice)))
        }
    }
}

/// Two loops, each running once at start-up and then periodically: one deletes
/// rooms whose delete failed or never ran and rooms a crash left behind, the
/// other keeps the rooms of live calls from expiring. Each pass finishes before
/// the next starts, so a slow provider cannot pile up overlapping passes.
fn start_room_housekeeping(
    core: Arc<Core>,
    sweep_every: std::time::Duration,
    extend_every: std::time::Duration,
) {
    let sweep_core = core.clone();
    actix::spawn(async move {
        let mut interval = tokio::time::interval(sweep_every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            crate::support::calls::sweep_rooms(&sweep_core).await;
            crate::support::rooms::sweep_leftover_rooms(&sweep_core).await;
        }
    });
    actix::spawn(async move {
        let mut interval = tokio::time::interval(extend_every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            crate::support::rooms::extend_live_rooms(&core).await;
        }
    });
}

/// A secret that does not decode would make every webhook fail its signature
/// check, which looks like an attack rather than a typo; refuse it at start-up.
fn check_webhook_secret(config: &ServeArgs) -> Result<(), StartError> {
    use base64::Engine;
    match config.daily_webhook_secret.as_deref().map(str::trim) {
        None | Some("") => Ok(()),
        Some(secret) => match base64::engine::general_purpose::STANDARD.decode(secret) {
            Ok(key) if !key.is_empty() => Ok(()),
            _ => Err(StartError::Config(
                "DAILY_WEBHOOK_SECRET must be the base64 secret Daily gave for the webhook".into(),
            )),
        },
    }
}

/// Timers of zero would spin (and `tokio::time::interval` refuses them).
fn positive(name: &str, value: std::time::Duration) -> Result<std::time::Duration, StartError> {
    if value.is_zero() {
        return Err(StartError::Config(format!("{name} must be greater than 0")));
    }
    Ok(value)
}

fn config_static_dir(state: &AppState) -> std::path::PathBuf {
    state.config.resolved_static_dir()
}

fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<rustls::ServerConfig, StartError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| StartError::Config(format!("cannot read {}: {e}", path.display())))
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StartError::Config(format!("bad certificate: {e}")))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| StartError::Config(format!("bad key: {e}")))?
        .ok_or_else(|| StartError::Config("no private key in --tls-key".into()))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| StartError::Config(format!("certificate and key do not match: {e}")))
}

/// Counts and times every request by its route pattern (never the raw path or query,
/// which could carry identifiers we do not want in metrics labels), and logs one line.
async fn observe(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().to_string();
    let response = next.call(req).await?;
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    if let Some(state) = state {
        state
            .metrics
            .http_requests
            .with_label_values(&[&route, &method, &status.to_string()])
            .inc();
        state
            .metrics
            .http_latency
            .with_label_values(&[&route, &method])
            .observe(elapsed.as_secs_f64());
    }
    tracing::debug!(%method, %route, status, micros = elapsed.as_micros() as u64, "request");
    Ok(response)
}

/// HEAD is GET without the body (RFC 9110 §9.3.2), and uptime monitors probe with
/// it. Routes are declared for GET, so a HEAD request is routed as one; actix's
/// HTTP/1 and HTTP/2 layers remember the request was HEAD and send the reply's
/// headers, `Content-Length` included, without its body.
async fn head_as_get(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == actix_web::http::Method::HEAD {
        req.head_mut().method = actix_web::http::Method::GET;
    }
    next.call(req).await
}

/// Any error reply that is not already our JSON shape (actix's own 404/405, a missing
/// static file) is rewritten into it, so clients parse one format.
fn json_error_body<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    // JSON errors are already in shape; HTML errors are pages made for a browser
    // on purpose (a single sign-on that failed after the provider's redirect).
    let is_shaped = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if is_shaped {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let path = res.request().path().to_string();
    let error = match status.as_u16() {
        404 => ApiError::NotFound(format!("no route for {path}")),
        405 => ApiError::MethodNotAllowed(format!(
            "{} is not allowed on {path}",
            res.request().method()
        )),
        413 => ApiError::PayloadTooLarge("the body is too large".into()),
        415 => {
            ApiError::UnsupportedMediaType("send JSON with Content-Type: application/json".into())
        }
        400..=499 => ApiError::BadRequest(format!("request rejected ({status})")),
        _ => ApiError::Internal(format!("status {status} on {path}")),
    };
    let (req, old) = res.into_parts();
    let mut new_response = actix_web::ResponseError::error_response(&error);
    *new_response.status_mut() = status;
    for (name, value) in old.headers() {
        if name == header::ALLOW || name == header::RETRY_AFTER {
            new_response
                .headers_mut()
                .insert(name.clone(), value.clone());
        }
    }
    new_response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let res: ServiceResponse<EitherBody<B, BoxBody>> =
        ServiceResponse::new(req, new_response).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

/// A server on its own thread and actix system. Dropping it stops the server.
pub struct SpawnedServer {
    pub addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SpawnedServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the thread.
    pub fn stop(mut self) {
        self.shutdown(true);
    }

    /// Stops at once, as close to a crash as a thread can get: no graceful drain.
    pub fn kill(mut self) {
        self.shutdown(false);
    }

    fn shutdown(&mut self, graceful: bool) {
        drop(self.handle.stop(graceful));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shutdown(false);
        }
    }
}

pub fn spawn(config: ServeArgs) -> Result<SpawnedServer, StartError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("nicehr-server".into())
        .spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                match start(config).await {
                    Ok(started) => {
                        let handle = started.server.handle();
                        let _ = tx.send(Ok((started.addr, handle)));
                        let _ = started.server.await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
                // The dispatcher runs on an arbiter thread of its own, which outlives
                // the HTTP server unless the system stops it: a stopped server must
                // leave no actor behind writing to its database.
                actix_web::rt::System::current().stop();
            });
            // Carries out the stop: every arbiter of this system is told to exit.
            let _ = system.run();
        })?;
    let (addr, handle) = rx
        .recv()
        .map_err(|_| StartError::Config("server thread died during start-up".into()))??;
    Ok(SpawnedServer {
        addr,
        handle,
        thread: Some(thread),
    })
}
