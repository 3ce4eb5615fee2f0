//! Every knob the server has, in one typed struct filled from flags and environment
//! variables (clap reads both), so handlers never carry their own magic numbers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Default embedded database: a file under `./data/`, created on first start so a
/// newcomer needs no set-up at all.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/nicehr.db";

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `sqlite://PATH` (embedded, default) or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Connections per pool (PostgreSQL pool; SQLite reader pools, one for scans and one
    /// for inline point lookups; SQLite writes use one connection).
    #[arg(long, env = "DB_POOL_SIZE", default_value_t = 8)]
    pub db_pool_size: usize,
    /// How long a request waits for a database connection before answering 503.
    #[arg(long, env = "DB_TIMEOUT_SECS", default_value_t = 5.0)]
    pub db_timeout_secs: f64,
    /// How long SQLite waits on a lock held by another process before giving up.
    #[arg(long, env = "SQLITE_BUSY_TIMEOUT_MS", default_value_t = 5000)]
    pub sqlite_busy_timeout_ms: u64,
}

impl DatabaseArgs {
    pub fn db_timeout(&self) -> Duration {
        secs(self.db_timeout_secs)
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Address to listen on.
    #[arg(long = "bind", env = "BIND_ADDR", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Seed demo hospitals, users and past sessions into an empty database.
    #[arg(long, env = "DEMO", default_value_t = false)]
    pub demo: bool,
    /// Directory holding the browser client.
    #[arg(long, env = "STATIC_DIR")]
    pub static_dir: Option<PathBuf>,
    /// `text` for people, `json` for log collectors.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// tracing filter, e.g. `info` or `nicehr_support=debug,actix_web=info`.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// How long a consultant has to accept an offer before it moves on.
    #[arg(long, env = "OFFER_TIMEOUT_SECS", default_value_t = 20.0)]
    pub offer_timeout_secs: f64,
    /// Offers missed in a row (declined or timed out) before a consultant is set `away`.
    #[arg(long, env = "MAX_MISSED_OFFERS", default_value_t = 2)]
    pub max_missed_offers: u32,
    /// Pause after a call before the consultant is `available` again.
    #[arg(long, env = "WRAP_UP_SECS", default_value_t = 0.0)]
    pub wrap_up_secs: f64,
    /// How long after a consultant's last socket drops before they go `offline`.
    #[arg(long, env = "PRESENCE_GRACE_SECS", default_value_t = 30.0)]
    pub presence_grace_secs: f64,
    /// WebSocket heartbeat: a socket silent this long is considered dead.
    #[arg(long, env = "WS_CLIENT_TIMEOUT_SECS", default_value_t = 30.0)]
    pub ws_client_timeout_secs: f64,

    /// Lifetime of a sign-in token.
    #[arg(long, env = "TOKEN_TTL_SECS", default_value_t = 12 * 3600)]
    pub token_ttl_secs: u64,
    /// Failed sign-ins in a row for one account from one address before each further
    /// failure locks that pair (see `LOGIN_BACKOFF_BASE_SECS`).
    #[arg(long, env = "LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,
    /// How long failures are remembered; the per-account and per-address budgets
    /// refill over it.
    #[arg(long, env = "LOGIN_WINDOW_SECS", default_value_t = 300)]
    pub login_window_secs: u64,
    /// First lock of an account + address past `LOGIN_MAX_FAILURES`; it doubles with
    /// each further failure.
    #[arg(long, env = "LOGIN_BACKOFF_BASE_SECS", default_value_t = 15.0)]
    pub login_backoff_base_secs: f64,
    /// Longest lock of an account + address, so nobody is locked out for long.
    #[arg(long, env = "LOGIN_BACKOFF_MAX_SECS", default_value_t = 300.0)]
    pub login_backoff_max_secs: f64,
    /// Failed sign-ins per account from all addresses within `LOGIN_WINDOW_SECS`.
    #[arg(long, env = "LOGIN_ACCOUNT_MAX_FAILURES", default_value_t = 20)]
    pub login_account_max_failures: u32,
    /// Failed sign-ins per client address over all accounts within `LOGIN_WINDOW_SECS`
    /// (password spraying).
    #[arg(long, env = "LOGIN_ADDRESS_MAX_FAILURES", default_value_t = 20)]
    pub login_address_max_failures: u32,
    /// Behind a reverse proxy: the header in which the proxy names the client
    /// (e.g. `X-Forwarded-For`; its last entry is used). Unset, the peer address is
    /// the client's and no header is believed.
    #[arg(long, env = "TRUSTED_PROXY_HEADER")]
    pub trusted_proxy_header: Option<String>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Largest JSON body accepted; bigger ones get 413.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// A request body must have arrived this long after its head, else 408.
    #[arg(long, env = "BODY_READ_TIMEOUT_SECS", default_value_t = 10.0)]
    pub body_read_timeout_secs: f64,
    /// Support requests one requester may make per minute.
    #[arg(long, env = "SUPPORT_REQUESTS_PER_MIN", default_value_t = 10)]
    pub support_requests_per_min: u32,
    /// Cancels one user may make per minute.
    #[arg(long, env = "SUPPORT_CANCELS_PER_MIN", default_value_t = 10)]
    pub support_cancels_per_min: u32,
    /// WebSockets one user may hold open at once (tabs, devices).
    #[arg(long, env = "WS_MAX_SOCKETS_PER_USER", default_value_t = 10)]
    pub ws_max_sockets_per_user: usize,
    /// Frames per second one socket may send on average…
    #[arg(long, env = "WS_FRAMES_PER_SEC", default_value_t = 30)]
    pub ws_frames_per_sec: u32,
    /// …and at once; past this burst the socket is closed (1008).
    #[arg(long, env = "WS_FRAME_BURST", default_value_t = 120)]
    pub ws_frame_burst: u32,
    /// Mark the session cookie `Secure` (on automatically with TLS).
    #[arg(long, env = "COOKIE_SECURE", default_value_t = false)]
    pub cookie_secure: bool,
    /// The address people open in their browsers (`https://support.hospital.org`);
    /// `/ws` admits pages of this origin only. Unset: the bind address and
    /// localhost on the bind port.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Further origins allowed to open `/ws` (comma separated, scheme included).
    #[arg(long, env = "ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Daily.co API key; with `DAILY_DOMAIN` it selects the Daily provider.
    #[arg(long, env = "DAILY_API_KEY", hide_env_values = true)]
    pub daily_api_key: Option<String>,
    #[arg(long, env = "DAILY_DOMAIN")]
    pub daily_domain: Option<String>,
    #[arg(long, env = "DAILY_API_URL", default_value = "https://api.daily.co/v1")]
    pub daily_api_url: String,
    /// Per-attempt timeout of a Daily REST call; with `DAILY_MAX_RETRIES` it bounds
    /// how long an accept can wait on Daily before answering 503.
    #[arg(long, env = "DAILY_TIMEOUT_SECS", default_value_t = 5.0)]
    pub daily_timeout_secs: f64,
    /// Extra attempts after a timeout, 429 or 5xx (other errors are not retried).
    #[arg(long, env = "DAILY_MAX_RETRIES", default_value_t = 3)]
    pub daily_max_retries: u32,
    /// First backoff between attempts; it doubles (with jitter) on each retry.
    #[arg(long, env = "DAILY_BACKOFF_MS", default_value_t = 200)]
    pub daily_backoff_ms: u64,
    /// How far ahead a Daily room's expiry is set, on create and on every extension.
    #[arg(long, env = "DAILY_ROOM_TTL_SECS", default_value_t = 4 * 3600)]
    pub daily_room_ttl_secs: u64,
    /// How often rooms of connecting and active calls get their expiry pushed
    /// forward; must be well under `DAILY_ROOM_TTL_SECS`.
    #[arg(long, env = "ROOM_EXTEND_SECS", default_value_t = 900.0)]
    pub room_extend_secs: f64,
    /// How often rooms left behind (failed deletes, a crash) are looked for and deleted.
    #[arg(long, env = "ROOM_SWEEP_SECS", default_value_t = 60.0)]
    pub room_sweep_secs: f64,
    /// Shared secret (base64) for `POST /api/webhooks/daily` signatures.
    #[arg(long, env = "DAILY_WEBHOOK_SECRET", hide_env_values = true)]
    pub daily_webhook_secret: Option<String>,
    /// STUN/TURN servers for the built-in WebRTC provider, as a JSON array of
    /// RTCIceServer objects. Empty works on a LAN.
    #[arg(long, env = "ICE_SERVERS", default_value = "[]")]
    pub ice_servers: String,

    /// PEM certificate chain; with `--tls-key` the server speaks HTTPS only.
    #[arg(long, env = "TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, env = "TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Worker threads for HTTP (default: one per core).
    #[arg(long, env = "HTTP_WORKERS")]
    pub http_workers: Option<usize>,
}

/// Rules for new passwords, shared by `serve` (admin HTTP API) and `admin` (CLI).
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// Lowest zxcvbn strength score (0–4) a new password must reach.
    #[arg(long, env = "PASSWORD_MIN_SCORE", default_value_t = crate::auth::password::DEFAULT_MIN_SCORE,
          value_parser = clap::value_parser!(u8).range(0..=4))]
    pub password_min_score: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Fractional seconds from configuration; tests use sub-second timers.
pub fn secs(value: f64) -> Duration {
    Duration::from_secs_f64(value.max(0.0))
}

impl ServeArgs {
    /// A configuration with every default, for tests and the load generator.
    pub fn defaults() -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: ServeArgs,
        }
        // Parsing an empty command line cannot fail: every field has a default.
        match Wrapper::try_parse_from(["nicehr-support"]) {
            Ok(w) => w.args,
            Err(e) => panic!("default configuration is invalid: {e}"),
        }
    }

    pub fn offer_timeout(&self) -> Duration {
        secs(self.offer_timeout_secs)
    }
    pub fn wrap_up(&self) -> Duration {
        secs(self.wrap_up_secs)
    }
    pub fn presence_grace(&self) -> Duration {
        secs(self.presence_grace_secs)
    }
    pub fn ws_client_timeout(&self) -> Duration {
        secs(self.ws_client_timeout_secs)
    }
    pub fn daily_timeout(&self) -> Duration {
        secs(self.daily_timeout_secs)
    }
    pub fn room_extend_interval(&self) -> Duration {
        secs(self.room_extend_secs)
    }
    pub fn room_sweep_interval(&self) -> Duration {
        secs(self.room_sweep_secs)
    }
    pub fn body_read_timeout(&self) -> Duration {
        secs(self.body_read_timeout_secs)
    }
    pub fn login_throttle(&self) -> crate::auth::throttle::ThrottleConfig {
        crate::auth::throttle::ThrottleConfig {
            max_failures: self.login_max_failures,
            window: Duration::from_secs(self.login_window_secs),
            backoff_base: secs(self.login_backoff_base_secs),
            backoff_max: secs(self.login_backoff_max_secs),
            account_max_failures: self.login_account_max_failures,
            address_max_failures: self.login_address_max_failures,
        }
    }
    pub fn token_ttl(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.token_ttl_secs as i64)
    }

    /// Where the browser client lives: the flag, else `./static` when run from the
    /// repository, else the directory this binary was built from.
    pub fn resolved_static_dir(&self) -> PathBuf {
        if let Some(dir) = &self.static_dir {
            return dir.clone();
        }
        let local = PathBuf::from("static");
        if local.is_dir() {
            return local;
        }
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static")
    }
}
