//! Every knob the server has, in one typed struct filled from flags, environment
//! variables (clap reads both) and an optional TOML file, so handlers never carry
//! their own magic numbers.
//!
//! The file is not a second description of the settings: each of its keys is the
//! environment variable of a `ServeArgs` field in lower case, and becomes that clap
//! argument's default before the command line is parsed. Clap then applies its own
//! order (flag, then environment, then default), which gives flag > env > file >
//! built-in default, and a field added to `ServeArgs` later is a file key at once.

use std::any::TypeId;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Args, Command, CommandFactory, FromArgMatches};

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
    /// A consultant who declined or missed a request is asked again after this
    /// long when no other eligible consultant is free.
    #[arg(long, env = "REOFFER_AFTER_SECS", default_value_t = 60.0)]
    pub reoffer_after_secs: f64,
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
    #[command(flatten)]
    pub retention: RetentionArgs,
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
    /// When set, `/metrics` answers only requests carrying `Authorization: Bearer
    /// <token>`: the figures reveal load and staffing to anyone who can reach them.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Identity providers for single sign-on: the file's `[[sso.providers]]`
    /// tables (a list of records has no flag or environment form).
    #[arg(skip)]
    pub sso: SsoConfig,
}

// ---------------------------------------------------------------------------
// Single sign-on: the one part of the configuration that is a list of records.

/// The `[sso]` table of the configuration file.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoConfig {
    #[serde(default)]
    pub providers: Vec<SsoProviderConfig>,
}

/// One OpenID Connect identity provider (`[[sso.providers]]`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoProviderConfig {
    /// In URLs (`/api/auth/sso/<id>/start`): lower-case letters, digits, `-`, `_`.
    pub id: String,
    /// On the sign-in page: "Sign in with <display_name>".
    pub display_name: String,
    /// The issuer; its `/.well-known/openid-configuration` is read on first use.
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// The hospital whose people this provider signs in; none: NICEHR's own staff
    /// (admins, consultants).
    #[serde(default)]
    pub hospital_id: Option<crate::model::HospitalId>,
    /// Scopes asked for besides `openid email profile` (Okta: `groups`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Claim-to-role rules, first match wins.
    #[serde(default)]
    pub roles: Vec<SsoRoleRule>,
    /// The role when no rule matches; none: such people are refused.
    #[serde(default)]
    pub default_role: Option<crate::model::Role>,
}

/// `{claim = "groups", value = "icu-leads", role = "hospital_leadership"}`: a claim
/// that is this string, or a list holding it, gives the role.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoRoleRule {
    pub claim: String,
    pub value: String,
    pub role: crate::model::Role,
}

/// A value that must never reach a log line or `config check`.
#[derive(Clone, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Rules for new passwords, shared by `serve` (admin HTTP API) and `admin` (CLI).
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// Lowest zxcvbn strength score (0–4) a new password must reach.
    #[arg(long, env = "PASSWORD_MIN_SCORE", default_value_t = crate::auth::password::DEFAULT_MIN_SCORE,
          value_parser = clap::value_parser!(u8).range(0..=4))]
    pub password_min_score: u8,
}

/// Longest retention a hospital or the server may set: a century. Past it a
/// "retention" is a typo, not a policy (and the storage CHECK says the same).
pub const MAX_RETENTION_DAYS: u32 = 36_500;
/// How often the retention job looks for text to erase, by default. Retention is
/// counted in days, so an hour late is immaterial and a pass an hour is cheap.
pub const DEFAULT_RETENTION_SWEEP_SECS: f64 = 3600.0;
/// Sessions erased per transaction, by default: small enough that the single
/// SQLite writer is held for milliseconds, large enough that a backlog of a year
/// clears in one pass.
pub const DEFAULT_RETENTION_BATCH_SIZE: u32 = 500;
/// The largest batch accepted.
pub const MAX_RETENTION_BATCH_SIZE: u32 = 10_000;

/// Retention of patient text, shared by `serve` (the interval task) and
/// `retention run` (one pass now), so both erase by the same rules.
#[derive(Debug, Clone, Args)]
pub struct RetentionArgs {
    /// Days after a session ends before its free text (issue summary, resolution
    /// notes, feedback) is erased, for hospitals without a retention of their own.
    /// Unset: kept (retention off). 0: erased by the first pass after the end.
    #[arg(long, env = "RETENTION_DAYS",
          value_parser = clap::value_parser!(u32).range(0..=MAX_RETENTION_DAYS as i64))]
    pub retention_days: Option<u32>,
    /// How often the server's retention job runs a pass (also once at start-up).
    #[arg(long, env = "RETENTION_SWEEP_SECS", default_value_t = DEFAULT_RETENTION_SWEEP_SECS)]
    pub retention_sweep_secs: f64,
    /// Sessions whose text is erased per transaction.
    #[arg(long, env = "RETENTION_BATCH_SIZE", default_value_t = DEFAULT_RETENTION_BATCH_SIZE,
          value_parser = clap::value_parser!(u32).range(1..=MAX_RETENTION_BATCH_SIZE as i64))]
    pub retention_batch_size: u32,
}

impl RetentionArgs {
    pub fn sweep_interval(&self) -> Duration {
        secs(self.retention_sweep_secs)
    }
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
    pub fn reoffer_after(&self) -> Duration {
        secs(self.reoffer_after_secs)
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

// ---------------------------------------------------------------------------
// The configuration file.

/// The environment variable naming the file, for units that cannot pass flags.
pub const CONFIG_ENV: &str = "NICEHR_CONFIG";
/// What `config check` prints in place of a secret.
const REDACTED: &str = "<redacted>";
/// The one table the file may hold: the identity providers.
const SSO_KEY: &str = "sso";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {}: not valid TOML: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error(
        "configuration file {}, line {line}: unknown key `{key}` (keys are the environment \
         variable names in lower case, e.g. `bind_addr`; `nicehr-support config keys` lists them)",
        path.display()
    )]
    UnknownKey {
        path: PathBuf,
        line: usize,
        key: String,
    },
    #[error("configuration file {}, line {line}: `{key}` {problem}", path.display())]
    BadValue {
        path: PathBuf,
        line: usize,
        key: String,
        problem: String,
    },
    /// A bad flag or environment variable, or `--help`: clap prints it itself.
    #[error(transparent)]
    CommandLine(#[from] clap::Error),
}

/// What TOML type a setting takes, read off the clap argument's value parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Integer,
    /// A float setting also takes an integer (`offer_timeout_secs = 20`).
    Number,
    /// Strings, paths, addresses, enums: everything clap parses from text.
    Text,
}

impl Kind {
    fn of(arg: &Arg) -> Kind {
        let parsed = arg.get_value_parser().type_id();
        let integers = [
            TypeId::of::<u8>(),
            TypeId::of::<u16>(),
            TypeId::of::<u32>(),
            TypeId::of::<u64>(),
            TypeId::of::<usize>(),
            TypeId::of::<i8>(),
            TypeId::of::<i16>(),
            TypeId::of::<i32>(),
            TypeId::of::<i64>(),
            TypeId::of::<isize>(),
        ];
        if parsed == TypeId::of::<bool>() {
            Kind::Bool
        } else if integers.iter().any(|id| parsed == *id) {
            Kind::Integer
        } else if parsed == TypeId::of::<f64>() || parsed == TypeId::of::<f32>() {
            Kind::Number
        } else {
            Kind::Text
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Bool => "true or false",
            Kind::Integer => "a whole number",
            Kind::Number => "a number",
            Kind::Text => "a string",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::Bool => "true/false values",
            Kind::Integer => "whole numbers",
            Kind::Number => "numbers",
            Kind::Text => "strings",
        }
    }

    /// The text clap would parse, if the TOML value has this kind's type.
    fn text_of(self, value: &toml::Value) -> Option<String> {
        match (self, value) {
            (Kind::Bool, toml::Value::Boolean(b)) => Some(b.to_string()),
            (Kind::Integer | Kind::Number, toml::Value::Integer(i)) => Some(i.to_string()),
            (Kind::Number, toml::Value::Float(f)) => Some(f.to_string()),
            (Kind::Text, toml::Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// The TOML value of a parsed setting, for `config check`.
    fn value_of(self, text: &str) -> toml::Value {
        let parsed = match self {
            Kind::Bool => text.parse().ok().map(toml::Value::Boolean),
            Kind::Integer => text.parse().ok().map(toml::Value::Integer),
            Kind::Number => text.parse().ok().map(toml::Value::Float),
            Kind::Text => None,
        };
        parsed.unwrap_or_else(|| toml::Value::String(text.to_string()))
    }
}

/// A setting as the file knows it: its key and the clap argument behind it.
struct Setting {
    key: String,
    arg: Arg,
}

impl Setting {
    fn is_list(&self) -> bool {
        self.arg.get_value_delimiter().is_some()
            || matches!(self.arg.get_action(), ArgAction::Append)
    }

    /// Values of arguments that hide their environment value are secrets: neither
    /// `--help` nor `config check` shows them.
    fn is_secret(&self) -> bool {
        self.arg.is_hide_env_values_set()
    }
}

/// The key of an argument: its environment variable in lower case (the names the
/// README's configuration table already uses), else its id.
fn key_of(arg: &Arg) -> String {
    match arg.get_env().and_then(|env| env.to_str()) {
        Some(env) => env.to_ascii_lowercase(),
        None => arg.get_id().as_str().to_string(),
    }
}

/// Every setting of `serve`, straight from the `ServeArgs` definition.
fn settings() -> Vec<Setting> {
    ServeArgs::augment_args(Command::new("serve"))
        .get_arguments()
        .map(|arg| Setting {
            key: key_of(arg),
            arg: arg.clone(),
        })
        .collect()
}

/// The keys a configuration file may hold, with each one's help line.
pub fn keys() -> Vec<(String, String)> {
    settings()
        .into_iter()
        .map(|s| {
            let help = s.arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            (s.key, help)
        })
        .collect()
}

/// A read and checked configuration file: each key's value as clap's text.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    values: BTreeMap<String, Vec<String>>,
    /// The `[sso]` table, which is records rather than settings.
    pub sso: SsoConfig,
}

impl ConfigFile {
    pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        ConfigFile::parse(path, &text)
    }

    /// Checks every key and value now, whether or not a flag or variable overrides
    /// it later: a typo in the file should not wait for the day the override goes.
    pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
        type Spanned<T> = toml::Spanned<T>;
        let table: BTreeMap<Spanned<String>, Spanned<toml::Value>> =
            toml::from_str(text).map_err(|e| ConfigError::Syntax {
                path: path.to_path_buf(),
                message: e.to_string().trim_end().to_string(),
            })?;
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let settings = settings();
        let mut values = BTreeMap::new();
        let mut sso = SsoConfig::default();
        for (key, value) in table {
            let line = line_of(key.span().start);
            let bad = |problem: String| ConfigError::BadValue {
                path: path.to_path_buf(),
                line,
                key: key.get_ref().clone(),
                problem,
            };
            if key.get_ref() == SSO_KEY {
                sso = value
                    .get_ref()
                    .clone()
                    .try_into::<SsoConfig>()
                    .map_err(|e| bad(format!("is not a valid SSO section: {}", e.message())))?;
                continue;
            }
            let Some(setting) = settings.iter().find(|s| &s.key == key.get_ref()) else {
                return Err(ConfigError::UnknownKey {
                    path: path.to_path_buf(),
                    line,
                    key: key.into_inner(),
                });
            };
            let kind = Kind::of(&setting.arg);
            let texts = match value.get_ref() {
                toml::Value::Table(_) => {
                    return Err(bad(
                        "is a table; the file is flat, one `key = value` per setting".into(),
                    ))
                }
                toml::Value::Array(items) if setting.is_list() => items
                    .iter()
                    .map(|item| kind.text_of(item))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad(format!("must be a list of {}", kind.plural())))?,
                other => vec![kind.text_of(other).ok_or_else(|| {
                    bad(format!("must be {}, not {}", kind.name(), other.type_str()))
                })?],
            };
            check_value(setting, &texts).map_err(bad)?;
            values.insert(key.into_inner(), texts);
        }
        Ok(ConfigFile {
            path: path.to_path_buf(),
            values,
            sso,
        })
    }

    pub fn contains(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// Makes each value the default of its argument, in `cmd` and every subcommand
    /// below it (`serve`, `config check`, and the commands that only need the
    /// database settings).
    pub fn apply(&self, cmd: Command) -> Command {
        let matching: Vec<(clap::Id, Vec<String>, bool)> = cmd
            .get_arguments()
            .filter_map(|arg| {
                let values = self.values.get(&key_of(arg))?;
                Some((
                    arg.get_id().clone(),
                    values.clone(),
                    arg.is_hide_env_values_set(),
                ))
            })
            .collect();
        let mut cmd = matching.into_iter().fold(cmd, |cmd, (id, values, secret)| {
            cmd.mut_arg(id, |arg| {
                arg.default_values(values).hide_default_value(secret)
            })
        });
        let subcommands: Vec<String> = cmd
            .get_subcommands()
            .map(|sub| sub.get_name().to_string())
            .collect();
        for name in subcommands {
            cmd = cmd.mut_subcommand(name, |sub| self.apply(sub));
        }
        cmd
    }
}

/// Runs clap's own parser for this one argument on the value, without flags or
/// environment, so the file is checked exactly as the command line would be.
fn check_value(setting: &Setting, texts: &[String]) -> Result<(), String> {
    let arg = setting
        .arg
        .clone()
        .env(None)
        .required(false)
        .default_values(texts.to_vec());
    Command::new("check")
        .no_binary_name(true)
        .arg(arg)
        .try_get_matches_from(Vec::<String>::new())
        .map(|_| ())
        .map_err(|e| {
            let value = texts.join(", ");
            format!("has an invalid value \"{value}\": {}", clap_reason(&e))
        })
}

/// The reason in a clap error, without its "error: … for '--flag'" framing (the
/// file names keys, not flags).
fn clap_reason(error: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    if let Some(source) = std::error::Error::source(error) {
        return source.to_string();
    }
    if let Some(ContextValue::Strings(valid)) = error.get(ContextKind::ValidValue) {
        return format!("expected one of {}", valid.join(", "));
    }
    let text = error.to_string();
    text.lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string()
}

/// Parses a command line with the configuration file under it: a first pass finds
/// which file (`--config` or `NICEHR_CONFIG`), a second parses again with the
/// file's values as defaults. `file_of` says which file a parsed command line names.
pub fn parse_with_file<T>(
    argv: Vec<OsString>,
    file_of: impl Fn(&T) -> Option<&Path>,
) -> Result<(T, ArgMatches, Option<ConfigFile>), ConfigError>
where
    T: CommandFactory + FromArgMatches,
{
    let matches = T::command().try_get_matches_from(&argv)?;
    let first = T::from_arg_matches(&matches)?;
    let Some(path) = file_of(&first).map(Path::to_path_buf) else {
        return Ok((first, matches, None));
    };
    let file = ConfigFile::read(&path)?;
    let matches = file.apply(T::command()).try_get_matches_from(&argv)?;
    let parsed = T::from_arg_matches(&matches)?;
    Ok((parsed, matches, Some(file)))
}

/// What a server started with these matches would run with, as a TOML file (so it
/// can be copied into one), each line saying where the value came from. Secrets
/// are redacted, and so is the password of any URL.
pub fn describe(matches: &ArgMatches, file: Option<&ConfigFile>) -> String {
    let mut out = String::from("# effective configuration (flag > environment > file > default)\n");
    match file {
        Some(file) => out.push_str(&format!("# file: {}\n", file.path.display())),
        None => out.push_str("# file: none (pass --config FILE or set NICEHR_CONFIG)\n"),
    }
    for setting in settings() {
        let id = setting.arg.get_id().as_str();
        let Some(raw) = matches.get_raw(id) else {
            out.push_str(&format!("# {} is not set\n", setting.key));
            continue;
        };
        let kind = Kind::of(&setting.arg);
        let values: Vec<toml::Value> = raw
            .map(|text| {
                let text = text.to_string_lossy();
                if setting.is_secret() {
                    toml::Value::String(REDACTED.into())
                } else {
                    kind.value_of(&redact_url(&text))
                }
            })
            .collect();
        let value = if setting.is_list() {
            toml::Value::Array(values)
        } else {
            values
                .into_iter()
                .next()
                .unwrap_or(toml::Value::String(String::new()))
        };
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) => "flag".to_string(),
            Some(ValueSource::EnvVariable) => format!(
                "environment ({})",
                setting
                    .arg
                    .get_env()
                    .map(|e| e.to_string_lossy())
                    .unwrap_or_default()
            ),
            Some(ValueSource::DefaultValue) if file.is_some_and(|f| f.contains(&setting.key)) => {
                "file".to_string()
            }
            _ => "default".to_string(),
        };
        out.push_str(&format!("{} = {value}  # {source}\n", setting.key));
    }
    for provider in file.map(|f| f.sso.providers.as_slice()).unwrap_or_default() {
        let hospital = provider
            .hospital_id
            .map_or("NICEHR staff".to_string(), |h| format!("hospital {h}"));
        out.push_str(&format!(
            "# sso provider {:?} ({}): issuer {}, client {}, {hospital}, {} role rule(s)\n",
            provider.id,
            provider.display_name,
            provider.issuer_url,
            provider.client_id,
            provider.roles.len()
        ));
    }
    out
}

/// The URL without its password, safe for logs and `config check`; anything that
/// is not a URL with a password is returned as it is.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn file(text: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse(Path::new("test.toml"), text)
    }

    fn parse(file: &ConfigFile, argv: &[&str]) -> (ServeArgs, ArgMatches) {
        let matches = file
            .apply(Wrapper::command())
            .try_get_matches_from(std::iter::once("nicehr-support").chain(argv.iter().copied()))
            .expect("parses");
        let wrapper = Wrapper::from_arg_matches(&matches).expect("typed");
        (wrapper.args, matches)
    }

    #[test]
    fn every_setting_has_its_own_key_named_after_its_environment_variable() {
        let all = settings();
        assert!(all.len() > 30, "all of ServeArgs, flattened parts included");
        let mut keys: Vec<&str> = all.iter().map(|s| s.key.as_str()).collect();
        for setting in &all {
            assert!(
                setting.arg.get_env().is_some(),
                "{} has no environment variable",
                setting.key
            );
        }
        keys.sort();
        let before = keys.len();
        keys.dedup();
        assert_eq!(before, keys.len(), "keys are unique");
        assert!(keys.contains(&"bind_addr") && keys.contains(&"database_url"));
    }

    #[test]
    fn file_values_are_defaults_that_flags_override() {
        let f = file(
            "room_sweep_secs = 12\nhttp_workers = 3\nwrap_up_secs = 1.5\n\
             allowed_origins = [\"https://a.test\", \"https://b.test\"]\n\
             log_format = \"json\"\ncookie_secure = true\n",
        )
        .expect("valid");
        let (args, matches) = parse(&f, &[]);
        assert_eq!(args.room_sweep_secs, 12.0);
        assert_eq!(args.http_workers, Some(3));
        assert_eq!(args.wrap_up_secs, 1.5);
        assert_eq!(args.allowed_origins, ["https://a.test", "https://b.test"]);
        assert_eq!(args.log_format, LogFormat::Json);
        assert!(args.cookie_secure);
        assert_eq!(
            matches.value_source("room_sweep_secs"),
            Some(ValueSource::DefaultValue)
        );
        let (args, matches) = parse(&f, &["--room-sweep-secs", "99", "--http-workers", "1"]);
        assert_eq!(args.room_sweep_secs, 99.0);
        assert_eq!(args.http_workers, Some(1));
        assert_eq!(
            matches.value_source("room_sweep_secs"),
            Some(ValueSource::CommandLine)
        );
        // Untouched settings keep their built-in defaults.
        assert_eq!(
            args.max_missed_offers,
            ServeArgs::defaults().max_missed_offers
        );
    }

    #[test]
    fn mistakes_name_the_key_and_its_line() {
        let cases = [
            (
                "# a comment\nofer_timeout_secs = 3\n",
                "line 2: unknown key `ofer_timeout_secs`",
            ),
            (
                "room_sweep_secs = \"soon\"\n",
                "`room_sweep_secs` must be a number, not string",
            ),
            (
                "http_workers = 2.5\n",
                "`http_workers` must be a whole number, not float",
            ),
            (
                "cookie_secure = \"yes\"\n",
                "`cookie_secure` must be true or false",
            ),
            (
                "bind_addr = 8080\n",
                "`bind_addr` must be a string, not integer",
            ),
            (
                "bind_addr = \"localhost\"\n",
                "`bind_addr` has an invalid value \"localhost\"",
            ),
            ("log_format = \"xml\"\n", "expected one of text, json"),
            (
                "http_workers = -1\n",
                "`http_workers` has an invalid value \"-1\"",
            ),
            (
                "[serve]\nbind_addr = \"127.0.0.1:1\"\n",
                "unknown key `serve`",
            ),
            (
                "tls_cert = [\"a\"]\n",
                "`tls_cert` must be a string, not array",
            ),
            (
                "allowed_origins = [1]\n",
                "`allowed_origins` must be a list of strings",
            ),
            ("bind_addr = \n", "not valid TOML"),
        ];
        for (text, expected) in cases {
            let error = file(text).expect_err(text).to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
            assert!(error.contains("test.toml"), "{error}");
        }
    }

    #[test]
    fn describe_redacts_secrets_and_url_passwords() {
        let f = file(
            "daily_api_key = \"sk-live-123\"\nmetrics_token = \"scrape-me\"\n\
             database_url = \"postgres://nicehr:hunter2@db.internal/nicehr\"\n",
        )
        .expect("valid");
        let (_, matches) = parse(&f, &["--wrap-up-secs", "4"]);
        let text = describe(&matches, Some(&f));
        assert!(
            !text.contains("sk-live-123") && !text.contains("scrape-me"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("daily_api_key = \"<redacted>\"  # file"),
            "{text}"
        );
        assert!(
            text.contains("postgres://nicehr:***@db.internal/nicehr"),
            "{text}"
        );
        assert!(text.contains("wrap_up_secs = 4.0  # flag"), "{text}");
        assert!(text.contains("# tls_cert is not set"), "{text}");
        // What it prints is itself a valid configuration file.
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.contains("<redacted>"))
            .map(|l| format!("{l}\n"))
            .collect();
        file(&body).expect("the description parses as a configuration file");
    }

    /// The packaged `/etc/nicehr-support/config.toml` is valid as shipped, and so is
    /// every commented example line in it once uncommented.
    #[test]
    fn the_packaged_configuration_and_its_examples_are_valid() {
        let shipped = include_str!("packaging/config.toml");
        let f = file(shipped).expect("the shipped file");
        assert!(f.contains("database_url") && f.contains("static_dir"));
        let uncommented: Vec<&str> = shipped
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| {
                l.split_once(" = ")
                    .is_some_and(|(key, _)| key.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            })
            .collect();
        assert!(uncommented.len() > 10, "{uncommented:?}");
        for line in uncommented {
            file(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }

    #[test]
    fn sso_providers_are_tables_at_the_end_of_the_file() {
        let f = file(
            "bind_addr = \"127.0.0.1:9\"\n\
             [[sso.providers]]\n\
             id = \"entra\"\ndisplay_name = \"Alpha (Microsoft)\"\n\
             issuer_url = \"https://login.example.test/t/v2.0\"\n\
             client_id = \"abc\"\nclient_secret = \"very-secret\"\nhospital_id = 3\n\
             default_role = \"hospital_staff\"\n\
             roles = [{ claim = \"roles\", value = \"Lead\", role = \"hospital_leadership\" }]\n",
        )
        .expect("valid");
        assert_eq!(f.sso.providers.len(), 1);
        let p = &f.sso.providers[0];
        assert_eq!(p.hospital_id, Some(crate::model::HospitalId(3)));
        assert_eq!(p.roles[0].role, crate::model::Role::HospitalLeadership);
        assert!(!format!("{p:?}").contains("very-secret"), "Debug redacts");
        let (_, matches) = parse(&f, &[]);
        let text = describe(&matches, Some(&f));
        assert!(text.contains("# sso provider \"entra\""), "{text}");
        assert!(!text.contains("very-secret"), "{text}");

        let error = file("[[sso.providers]]\nid = \"x\"\nrole = \"boss\"\n")
            .expect_err("a bad provider")
            .to_string();
        assert!(
            error.contains("line 1") && error.contains("`sso` is not a valid SSO section"),
            "{error}"
        );
    }

    #[test]
    fn secrets_from_the_file_stay_out_of_help() {
        let f =
            file("daily_api_key = \"sk-live-123\"\nbind_addr = \"127.0.0.1:9\"\n").expect("valid");
        let help = f.apply(Wrapper::command()).render_long_help().to_string();
        assert!(!help.contains("sk-live-123"), "{help}");
        assert!(
            help.contains("127.0.0.1:9"),
            "other file values show as defaults"
        );
    }
}
