//! `nicehr-support loadgen`: provisions consultants and staff, opens their sockets,
//! drives open-loop arrivals and reports latencies the way a nurse and a consultant
//! would feel them, next to the server's own dispatch histogram and memory.
//!
//! Accounts are written straight into the server's database (one transaction per
//! thousand, one shared argon2 hash, tokens minted directly): signing 5,000 people in
//! through `/api/auth/login` would benchmark argon2. So the generator needs the same
//! `--database-url` as the server; with no `--url` it starts the server itself, in
//! this process, on a free port.

pub mod arrivals;
pub mod chart;
pub mod driver;
pub mod prom;
pub mod ramp;
pub mod stats;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::stream::{self, StreamExt};
use tokio::sync::watch;

use crate::config::{DatabaseArgs, ServeArgs};
use crate::db::repo::provision::{self, BulkAccount, BulkSpec};
use crate::db::{repo, Backend, Db};
use crate::metrics::process_cpu_seconds;
use crate::model::vocab::canonical_department;
use crate::model::{Plan, Proficiency, Role};
use arrivals::{ArrivalProcess, Arrivals};
use driver::{Account, Tracker, TrackerSetup};
use stats::{MemoryReport, Report, StreamReport};

/// Accounts written per provisioning transaction.
const PROVISION_BATCH: usize = 1_000;
/// Name of the server's own dispatch histogram in `/metrics`.
const DISPATCH_HISTOGRAM: &str = "nicehr_dispatch_latency_seconds";
const RSS_GAUGE: &str = "nicehr_process_resident_memory_bytes";
const EVENTS_DELIVERED: &str = "nicehr_events_delivered_total";
const EVENTS_CATCH_UPS: &str = "nicehr_events_catch_ups_total";
const EVENTS_SKIPPED: &str = "nicehr_events_skipped_total";
const EVENTS_LATE: &str = "nicehr_events_late_total";
const CPU_GAUGE: &str = "nicehr_process_cpu_used_seconds";

#[derive(Debug, Clone, Args)]
pub struct LoadgenArgs {
    /// A running server to target (e.g. `http://127.0.0.1:8080`). Without it, a server
    /// is started in this process on a free port.
    #[arg(long)]
    pub url: Option<String>,
    /// The database to provision accounts into: the target server's own. Without
    /// `--url` and without this, a fresh SQLite file in the temp directory.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Consultant WebSockets to open; each accepts every offer it gets.
    #[arg(long, default_value_t = 550)]
    pub consultants: usize,
    /// Staff accounts to ask for help (each has at most one live request). 0 picks
    /// enough for the rate and hold time.
    #[arg(long, default_value_t = 0)]
    pub staff: usize,
    /// Requests per second, open loop. 0 only connects the sockets and holds them
    /// (to measure memory per idle socket).
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// Measured seconds of arrivals.
    #[arg(long, default_value_t = 60.0)]
    pub duration: f64,
    /// Seconds of arrivals before measuring starts (caches, pools, allocator).
    #[arg(long, default_value_t = 3.0)]
    pub warmup: f64,
    /// How long each call is held before the consultant ends it.
    #[arg(long, default_value_t = 1000)]
    pub hold_ms: u64,
    #[arg(long, value_enum, default_value_t = ArrivalProcess::Poisson)]
    pub arrivals: ArrivalProcess,
    /// Seed of the arrival process (runs with the same seed send at the same times).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The department every request names (all generated consultants cover it).
    #[arg(long, default_value = "ER")]
    pub department: String,
    /// Sockets being opened at once while connecting.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// After the last arrival, how long to wait for calls in progress to end.
    #[arg(long, default_value_t = 15.0)]
    pub drain_secs: f64,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// HTTP worker threads of the in-process server (default: one per core).
    #[arg(long)]
    pub http_workers: Option<usize>,
    /// Ramp: run again at `--rate`, `--rate + --ramp-step`, … up to this rate (each
    /// step a fresh run of `--duration` seconds), stop at the first step that breaks,
    /// and report the knee.
    #[arg(long)]
    pub ramp_to: Option<f64>,
    /// The ramp's step in requests per second.
    #[arg(long, default_value_t = 100.0)]
    pub ramp_step: f64,
    /// With `--ramp-to`: write the ramp's charts (latency against rate, and each
    /// step's latency distribution) to this SVG file.
    #[arg(long)]
    pub chart: Option<std::path::PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    #[error("invalid arguments: {0}")]
    Args(String),
    #[error("could not start the in-process server: {0}")]
    Server(String),
    #[error("database: {0}")]
    Db(#[from] crate::db::DbError),
    #[error("{0}")]
    Setup(String),
}

/// Runs the ramp of `--rate` … `--ramp-to`: one whole benchmark per step, stopping
/// after the first step that breaks (the steps above it would only break harder).
pub fn run_ramp(args: LoadgenArgs) -> Result<ramp::RampReport, LoadgenError> {
    let to = args
        .ramp_to
        .ok_or_else(|| LoadgenError::Args("a ramp needs --ramp-to".into()))?;
    let rates = ramp::rates(args.rate, args.ramp_step, to).map_err(LoadgenError::Args)?;
    let mut steps = Vec::with_capacity(rates.len());
    let mut target = String::new();
    let mut backend = String::new();
    // An in-process server on PostgreSQL gets an empty database per step (SQLite
    // steps each get a temp file anyway): a step must not inherit the consultants of
    // the one before, whose rows still say available after their sockets are gone.
    let siblings = match (&args.url, &args.database_url) {
        (None, Some(url)) if Backend::of(url).is_ok_and(|b| b == Backend::Postgres) => {
            Some(url.clone())
        }
        _ => None,
    };
    let admin = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LoadgenError::Setup(format!("tokio runtime: {e}")))?;
    for (index, rate) in rates.into_iter().enumerate() {
        eprintln!("ramp: {rate:.0} req/s");
        let sibling = match &siblings {
            Some(origin) => Some(admin.block_on(crate::db::SiblingDatabase::recreate(
                origin,
                &format!("ramp{index}"),
            ))?),
            None => None,
        };
        let report = run(LoadgenArgs {
            rate,
            database_url: sibling
                .as_ref()
                .map(|s| s.url.clone())
                .or_else(|| args.database_url.clone()),
            ..args.clone()
        });
        if let Some(sibling) = sibling {
            if let Err(e) = admin.block_on(sibling.drop()) {
                eprintln!("warning: the step's database was not dropped: {e}");
            }
        }
        let report = report?;
        target = report.target.clone();
        backend = report.backend.clone();
        let step = ramp::RampStep::from_report(&report);
        let broke = step.breaks.is_some();
        steps.push(step);
        if broke {
            break;
        }
    }
    Ok(ramp::RampReport::new(target, backend, steps))
}

/// Runs a whole benchmark and returns its report.
pub fn run(args: LoadgenArgs) -> Result<Report, LoadgenError> {
    validate(&args)?;
    raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| LoadgenError::Setup(format!("tokio runtime: {e}")))?;
    let (database_url, temp_file) = match (&args.database_url, &args.url) {
        (Some(url), _) => (url.clone(), None),
        (None, Some(_)) => (crate::config::DEFAULT_DATABASE_URL.to_string(), None),
        (None, None) => {
            let path = std::env::temp_dir().join(format!(
                "nicehr-loadgen-{}-{}.db",
                std::process::id(),
                chrono::Utc::now().timestamp_millis()
            ));
            (format!("sqlite://{}", path.display()), Some(path))
        }
    };
    let db_args = DatabaseArgs {
        database_url: database_url.clone(),
        ..ServeArgs::defaults().db
    };
    let server = match &args.url {
        Some(_) => None,
        None => {
            let mut config = ServeArgs::defaults();
            config.db = db_args.clone();
            config.bind = ([127, 0, 0, 1], 0).into();
            config.http_workers = args.http_workers;
            // The in-process server measures dispatch, not the per-user limits: a
            // fast run asks from each staff account more often than a nurse would.
            config.support_requests_per_min = u32::MAX;
            config.support_cancels_per_min = u32::MAX;
            // The socket's minimal event mode keeps broadcasts off the measured path.
            Some(crate::server::spawn(config).map_err(|e| LoadgenError::Server(e.to_string()))?)
        }
    };
    let base_url = match (&server, &args.url) {
        (Some(s), _) => s.url(),
        (None, Some(url)) => url.trim_end_matches('/').to_string(),
        (None, None) => return Err(LoadgenError::Args("no target".into())),
    };
    let result = runtime.block_on(drive(&args, &base_url, &db_args, server.is_some()));
    if let Some(server) = server {
        server.stop();
    }
    if let Some(path) = temp_file {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    result
}

fn validate(args: &LoadgenArgs) -> Result<(), LoadgenError> {
    let bad = |m: &str| Err(LoadgenError::Args(m.to_string()));
    if !(args.rate.is_finite() && args.rate >= 0.0) {
        return bad("--rate must be a non-negative number");
    }
    if !(args.duration.is_finite() && args.duration > 0.0) {
        return bad("--duration must be positive");
    }
    if !(args.warmup.is_finite() && args.warmup >= 0.0) {
        return bad("--warmup must be zero or positive");
    }
    if !(args.drain_secs.is_finite() && args.drain_secs >= 0.0) {
        return bad("--drain-secs must be zero or positive");
    }
    if args.consultants == 0 {
        return bad("--consultants must be at least 1");
    }
    if args.connect_concurrency == 0 {
        return bad("--connect-concurrency must be at least 1");
    }
    if args.chart.is_some() && args.ramp_to.is_none() {
        return bad("--chart draws a ramp: give --ramp-to as well");
    }
    if canonical_department(&args.department).is_none() {
        return bad("--department must be one of the server's departments");
    }
    Ok(())
}

/// Staff needed so every arrival finds someone without a live request: the number
/// of requests in the system at once (rate × time in system) with a wide margin.
pub fn staff_needed(rate: f64, hold: Duration) -> usize {
    let in_system = rate * (hold.as_secs_f64() + 2.0);
    (in_system * 2.0).ceil().max(10.0) as usize
}

/// Each socket is a file descriptor on both ends; the default soft limit (often
/// 1,024) would stop a 5,000-socket run long before the server does.
fn raise_open_files_limit() {
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("warning: could not raise the open-files limit: {e}");
    }
}

async fn drive(
    args: &LoadgenArgs,
    base_url: &str,
    db_args: &DatabaseArgs,
    in_process: bool,
) -> Result<Report, LoadgenError> {
    let hold = Duration::from_millis(args.hold_ms);
    let staff_count = match args.staff {
        0 if args.rate == 0.0 => 0,
        0 => staff_needed(args.rate, hold),
        n => n,
    };
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| LoadgenError::Setup(format!("http client: {e}")))?;
    // Fail in a second, not after minutes of connect errors, when the URL is wrong.
    let healthy = http
        .get(format!("{base_url}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    if !healthy {
        return Err(LoadgenError::Setup(format!(
            "no healthy server answers at {base_url}/healthz"
        )));
    }
    let db = Db::connect(db_args).await?;
    let backend = match db.backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgresql",
    };
    eprintln!(
        "provisioning {} consultants and {staff_count} staff in {backend}…",
        args.consultants
    );
    let department = canonical_department(&args.department)
        .unwrap_or("ER")
        .to_string();
    let (consultants, staff) =
        provision_accounts(&db, args.consultants, staff_count, &department).await?;
    // Kept open only where it counts the run's statements (PostgreSQL).
    let statements_db = (db.backend() == Backend::Postgres).then_some(db);

    let ws_url = format!(
        "{}/ws",
        base_url
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1)
    );
    let rss_before = server_rss(&http, base_url).await;

    let warmup = Duration::from_secs_f64(args.warmup);
    let measured = Duration::from_secs_f64(args.duration);
    // The clock for arrivals starts once everyone is connected; until then nothing
    // is measured (the window is re-based below).
    let (stop_tx, stop_rx) = watch::channel(false);
    let placeholder = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let connect_timeout = Duration::from_secs(30);

    eprintln!("opening {} consultant sockets…", consultants.len());
    let consultant_sockets: Vec<_> = stream::iter(consultants.iter().cloned())
        .map(|account| {
            let ws_url = ws_url.clone();
            async move {
                let socket = driver::connect(&ws_url, &account, connect_timeout).await;
                (account, socket)
            }
        })
        .buffer_unordered(args.connect_concurrency)
        .collect()
        .await;
    let staff_sockets: Vec<_> = stream::iter(staff.iter().cloned())
        .map(|account| {
            let ws_url = ws_url.clone();
            async move { driver::connect(&ws_url, &account, connect_timeout).await }
        })
        .buffer_unordered(args.connect_concurrency)
        .collect()
        .await;

    // Sockets are open; now fix the measured window and start the people.
    let start = Instant::now() + Duration::from_millis(500);
    let measure_from = start + warmup;
    let measure_until = measure_from + measured;
    let tracker = Tracker::new(TrackerSetup {
        http: http.clone(),
        base_url: base_url.to_string(),
        department,
        hold,
        measure_from: if args.rate == 0.0 {
            placeholder
        } else {
            measure_from
        },
        measure_until,
        staff: staff.clone(),
    });
    let mut tasks = Vec::new();
    let mut open_sockets = 0usize;
    for (account, socket) in consultant_sockets {
        match socket {
            Ok(socket) => {
                open_sockets += 1;
                tasks.push(tokio::spawn(driver::run_consultant(
                    tracker.clone(),
                    account,
                    socket,
                    stop_rx.clone(),
                )));
            }
            Err(e) => tracker.error(format!("connect: {e}")),
        }
    }
    for socket in staff_sockets {
        match socket {
            Ok(socket) => {
                open_sockets += 1;
                tasks.push(tokio::spawn(driver::run_staff(
                    tracker.clone(),
                    socket,
                    stop_rx.clone(),
                )));
            }
            Err(e) => tracker.error(format!("connect: {e}")),
        }
    }
    wait_until_available(&http, base_url, &staff, &consultants).await;
    let rss_connected = server_rss(&http, base_url).await;

    let mut server_dispatch = BTreeMap::new();
    let mut server_events = None;
    let mut cpu = None;
    let mut statements = None;
    if args.rate > 0.0 {
        let counting_statements = match &statements_db {
            Some(db) => repo::statements::reset(db).await,
            None => false,
        };
        let before = scrape(&http, base_url).await.unwrap_or_default();
        let own_cpu_before = process_cpu_seconds().unwrap_or(0.0);
        eprintln!(
            "{open_sockets} sockets open; sending {:.0} req/s for {:.0} s (+{:.0} s warm-up)…",
            args.rate,
            measured.as_secs_f64(),
            warmup.as_secs_f64()
        );
        let pacer = driver::pace_arrivals(
            tokio::runtime::Handle::current(),
            tracker.clone(),
            start,
            measure_until,
            Arrivals::new(args.arrivals, args.rate, args.seed),
        );
        tokio::time::sleep_until(measure_until.into()).await;
        let _ = tokio::task::spawn_blocking(move || pacer.join()).await;
        let drain_deadline = Instant::now() + Duration::from_secs_f64(args.drain_secs);
        while tracker.in_flight.load(Ordering::Relaxed) > 0 && Instant::now() < drain_deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracker.errors_of(
            "request not finished when the drain time ran out",
            tracker.in_flight.load(Ordering::Relaxed),
        );
        let after = scrape(&http, base_url).await.unwrap_or_default();
        let own_cpu = process_cpu_seconds().unwrap_or(0.0) - own_cpu_before;
        if let (true, Some(db)) = (counting_statements, &statements_db) {
            if let Some(executed) = repo::statements::executed(db).await {
                let most = repo::statements::most_executed(db)
                    .await
                    .into_iter()
                    .map(|s| (s.statement, u64::try_from(s.calls).unwrap_or(0)))
                    .collect();
                let calls = tracker.completed.load(Ordering::Relaxed);
                statements = Some(stats::StatementsReport::new(executed, calls, most));
            }
        }
        server_events = stream_report(&before, &after);
        if let (Some(start), Some(end)) = (
            prom::gauge(&before, CPU_GAUGE),
            prom::gauge(&after, CPU_GAUGE),
        ) {
            cpu = Some(stats::CpuReport::new(
                (end - start).max(0.0),
                own_cpu,
                tracker.completed.load(Ordering::Relaxed),
                in_process,
            ));
        }
        let before = prom::histogram_buckets(&before, DISPATCH_HISTOGRAM, "trigger");
        for (trigger, buckets) in prom::histogram_buckets(&after, DISPATCH_HISTOGRAM, "trigger") {
            let earlier = before.get(&trigger).cloned().unwrap_or_default();
            server_dispatch.insert(trigger, prom::summarise(&prom::delta(&earlier, &buckets)));
        }
    } else {
        eprintln!(
            "{open_sockets} sockets open; holding them for {:.0} s…",
            measured.as_secs_f64()
        );
        tokio::time::sleep(measured).await;
    }
    let rss_end = server_rss(&http, base_url).await;
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }

    let created_in_window = tracker.latencies().request_post.count;
    Ok(Report {
        target: base_url.to_string(),
        backend: backend.to_string(),
        consultants: consultants.len(),
        staff: staff.len(),
        rate_per_sec: args.rate,
        duration_secs: measured.as_secs_f64(),
        hold_ms: args.hold_ms,
        arrivals: args.arrivals.as_str().to_string(),
        requests_sent: tracker.sent.load(Ordering::Relaxed),
        requests_created: tracker.created.load(Ordering::Relaxed),
        offers: tracker.offers.load(Ordering::Relaxed),
        calls_completed: tracker.completed.load(Ordering::Relaxed),
        throughput_per_sec: created_in_window as f64 / tracker.measured_window().as_secs_f64(),
        errors: tracker.errors(),
        latencies: tracker.latencies(),
        server_dispatch,
        server_events,
        cpu,
        statements,
        memory: MemoryReport {
            rss_before_bytes: rss_before,
            rss_connected_bytes: rss_connected,
            rss_end_bytes: rss_end,
            sockets: open_sockets,
            bytes_per_idle_socket: stats::bytes_per_socket(rss_before, rss_connected, open_sockets),
            includes_generator: in_process,
        },
    })
}

/// Creates one hospital (enterprise plan, so video is included), the consultants
/// (all covering `department`) and the staff, each with a fresh token.
async fn provision_accounts(
    db: &Db,
    consultants: usize,
    staff: usize,
    department: &str,
) -> Result<(Vec<Account>, Vec<Account>), LoadgenError> {
    let run = format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%d%H%M%S"),
        std::process::id()
    );
    let hospital =
        repo::hospitals::create(db, &format!("Loadgen {run}"), Plan::Enterprise, "UTC").await?;
    // One hash for everyone: the password is random and never printed, so these
    // accounts can only be used through the tokens minted here.
    let password = crate::auth::new_token();
    let password_hash =
        crate::auth::hash_password(&password).map_err(|e| LoadgenError::Setup(e.to_string()))?;
    let expires = repo::now() + chrono::Duration::hours(12);
    let specialties = vec![(department.to_string(), Proficiency::Standard)];
    let mut made = Vec::new();
    for (role, count, hospital_id) in [
        (Role::Consultant, consultants, None),
        (Role::HospitalStaff, staff, Some(hospital.id)),
    ] {
        let spec = BulkSpec {
            role,
            hospital_id,
            password_hash: &password_hash,
            specialties: &specialties,
            token_expires_at: expires,
        };
        let mut accounts = Vec::with_capacity(count);
        let mut next = 0usize;
        while next < count {
            let batch_end = (next + PROVISION_BATCH).min(count);
            let tokens: Vec<String> = (next..batch_end)
                .map(|_| crate::auth::new_token())
                .collect();
            let rows: Vec<BulkAccount> = (next..batch_end)
                .zip(&tokens)
                .map(|(i, token)| BulkAccount {
                    email: format!("loadgen-{run}-{role}-{i}@loadgen.invalid"),
                    name: format!("Loadgen {role} {i}"),
                    token_hash: crate::auth::token_hash(token),
                })
                .collect();
            let ids = provision::bulk_accounts(db, &spec, &rows).await?;
            accounts.extend(
                ids.into_iter()
                    .zip(tokens)
                    .map(|(id, token)| Account { id: id.0, token }),
            );
            next = batch_end;
        }
        made.push(accounts);
    }
    let staff = made.pop().unwrap_or_default();
    let consultants = made.pop().unwrap_or_default();
    Ok((consultants, staff))
}

/// The event hub's counters over the run; `None` when the server did not report them.
fn stream_report(before: &str, after: &str) -> Option<StreamReport> {
    let grown = |name: &str| -> Option<u64> {
        let end = prom::gauge(after, name)?;
        let start = prom::gauge(before, name).unwrap_or(0.0);
        Some((end - start).max(0.0) as u64)
    };
    Some(StreamReport {
        delivered: grown(EVENTS_DELIVERED)?,
        catch_ups: grown(EVENTS_CATCH_UPS)?,
        skipped: grown(EVENTS_SKIPPED)?,
        late: grown(EVENTS_LATE)?,
    })
}

/// The server's resident memory, from its own `/metrics`.
async fn server_rss(http: &reqwest::Client, base_url: &str) -> Option<u64> {
    let text = scrape(http, base_url).await?;
    prom::gauge(&text, RSS_GAUGE).map(|bytes| bytes as u64)
}

async fn scrape(http: &reqwest::Client, base_url: &str) -> Option<String> {
    let response = http.get(format!("{base_url}/metrics")).send().await.ok()?;
    response.text().await.ok()
}

/// Waits (up to a minute) until the server lists every generated consultant as
/// available, so the first measured requests do not race the presence updates.
async fn wait_until_available(
    http: &reqwest::Client,
    base_url: &str,
    staff: &[Account],
    consultants: &[Account],
) {
    let Some(viewer) = staff.first().or(consultants.first()) else {
        return;
    };
    let ours: std::collections::HashSet<i64> = consultants.iter().map(|c| c.id).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut available = 0;
    while Instant::now() < deadline {
        let listed = http
            .get(format!("{base_url}/api/consultants/available"))
            .bearer_auth(&viewer.token)
            .send()
            .await;
        if let Ok(response) = listed {
            if let Ok(body) = response.json::<serde_json::Value>().await {
                available = body["consultants"]
                    .as_array()
                    .map(|list| {
                        list.iter()
                            .filter(|c| {
                                c["status"] == "available"
                                    && c["id"].as_i64().is_some_and(|id| ours.contains(&id))
                            })
                            .count()
                    })
                    .unwrap_or(0);
                if available >= ours.len() {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "warning: only {available} of {} consultants became available",
        ours.len()
    );
}
