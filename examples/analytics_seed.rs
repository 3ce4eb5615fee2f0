//! How long `GET /api/support/analytics` takes on a year of data: seeds a database
//! with 100,000 past sessions (three hospitals, twelve consultants, a status log), then
//! starts the real server on it and times the endpoint over HTTP.
//!
//! ```sh
//! cargo run --release --example analytics_seed -- --database-url sqlite:///tmp/nicehr-bench.db
//! psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE nicehr_bench'
//! cargo run --release --example analytics_seed -- --database-url postgres://postgres@127.0.0.1/nicehr_bench
//! ```
//!
//! Seeding happens once: a database that already holds the sessions is only measured.
//! Data is synthetic but deterministic (fixed seed), spread evenly over the past 365
//! days: 80% completed and mostly rated, some cancelled while waiting, a few still
//! pending; and a status log of about 120,000 intervals.

use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use clap::Parser;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use nicehr_support::accounts::{self, NewUserInput};
use nicehr_support::config::ServeArgs;
use nicehr_support::db::repo;
use nicehr_support::db::repo::analytics::{HistoricSession, HistoricStatus};
use nicehr_support::db::schema::{support_sessions, users};
use nicehr_support::db::{Db, DbError};
use nicehr_support::model::vocab::DEPARTMENTS;
use nicehr_support::model::{HospitalId, Plan};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PASSWORD: &str = "bench-quartz-lantern-61";

#[derive(Parser)]
struct Args {
    /// Database to seed and measure (`sqlite://PATH` or `postgres://…`).
    #[arg(long, default_value = "sqlite:///tmp/nicehr-analytics-bench.db")]
    database_url: String,
    /// Past sessions to create.
    #[arg(long, default_value_t = 100_000)]
    sessions: usize,
    /// Timed requests per scenario (after one warm-up).
    #[arg(long, default_value_t = 7)]
    runs: usize,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let mut config = ServeArgs::defaults();
    config.db.database_url = args.database_url.clone();
    config.bind = "127.0.0.1:0".parse()?;
    config.log_level = "warn".into();
    let db = Db::connect(&config.db).await?;

    let existing = session_count(&db).await?;
    if existing >= args.sessions as i64 {
        println!("database already holds {existing} sessions; measuring only");
    } else if existing == 0 {
        let started = Instant::now();
        seed(&db, args.sessions).await?;
        println!(
            "seeded {} sessions in {:.1} s",
            args.sessions,
            started.elapsed().as_secs_f64()
        );
    } else {
        return Err(format!("database holds {existing} sessions; use an empty one").into());
    }

    let server = nicehr_support::server::spawn(config)?;
    let http = reqwest::Client::builder()
        .timeout(StdDuration::from_secs(120))
        .build()?;
    let url = server.url();
    let admin = login(&http, &url, "bench-admin@nicehr.test").await?;
    let leader = login(&http, &url, "bench-leader-0@nicehr.test").await?;
    let today = Utc::now().date_naive();
    let year_ago = today - Duration::days(364);
    let scenarios = [
        (
            "admin, all hospitals, 365 days",
            &admin,
            format!("/api/support/analytics?from={year_ago}&to={today}&tz=America/New_York"),
        ),
        (
            "admin, all hospitals, last 30 days",
            &admin,
            "/api/support/analytics".to_string(),
        ),
        (
            "leadership, own hospital, 365 days",
            &leader,
            format!("/api/support/analytics?from={year_ago}&to={today}"),
        ),
        (
            "leadership, own hospital, ER only, 365 days",
            &leader,
            format!("/api/support/analytics?from={year_ago}&to={today}&department=ER"),
        ),
        (
            "history.csv, leadership, 30 days",
            &leader,
            format!(
                "/api/support/history.csv?from={}",
                today - Duration::days(29)
            ),
        ),
    ];
    println!(
        "{:<46} {:>10} {:>10} {:>10}",
        "scenario", "median", "min", "max"
    );
    for (name, token, path) in scenarios {
        let mut times = Vec::with_capacity(args.runs);
        for run in 0..=args.runs {
            let started = Instant::now();
            let resp = http
                .get(format!("{url}{path}"))
                .bearer_auth(token)
                .send()
                .await?;
            let status = resp.status();
            let body = resp.bytes().await?;
            let elapsed = started.elapsed();
            if !status.is_success() {
                return Err(
                    format!("{name}: HTTP {status}: {}", String::from_utf8_lossy(&body)).into(),
                );
            }
            if run > 0 {
                times.push(elapsed.as_secs_f64() * 1000.0);
            }
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{:<46} {:>8.1}ms {:>8.1}ms {:>8.1}ms",
            name,
            times[times.len() / 2],
            times[0],
            times[times.len() - 1]
        );
    }
    server.stop();
    Ok(())
}

async fn login(http: &reqwest::Client, url: &str, email: &str) -> Result<String, BoxError> {
    let reply: serde_json::Value = http
        .post(format!("{url}/api/auth/login"))
        .json(&serde_json::json!({"email": email, "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    reply["token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("login of {email} failed: {reply}").into())
}

async fn session_count(db: &Db) -> Result<i64, DbError> {
    nicehr_support::db_run!(db, read, |conn| {
        Ok(support_sessions::table.count().get_result(conn).await?)
    })
}

async fn user_id(db: &Db, email: &str) -> Result<Option<i64>, DbError> {
    nicehr_support::db_run!(db, read, |conn| {
        Ok(users::table
            .filter(users::email.eq(email))
            .select(users::id)
            .first(conn)
            .await
            .optional()?)
    })
}

async fn person(db: &Db, email: &str, role: &str, hospital: Option<i64>) -> Result<i64, BoxError> {
    if let Some(id) = user_id(db, email).await? {
        return Ok(id);
    }
    let user = accounts::create_user(
        db,
        NewUserInput {
            email: email.into(),
            name: email.split('@').next().unwrap_or(email).into(),
            role: role.into(),
            password: PASSWORD.into(),
            hospital_id: hospital.map(HospitalId),
        },
        &accounts::PasswordPolicy::default(),
    )
    .await
    .map_err(|e| format!("create {email}: {e}"))?;
    Ok(user.id.0)
}

async fn seed(db: &Db, count: usize) -> Result<(), BoxError> {
    let mut rng = StdRng::seed_from_u64(7);
    let now = Utc::now().naive_utc();
    let plans = [
        (
            "Bench Enterprise",
            Plan::Enterprise,
            "America/New_York",
            900,
        ),
        ("Bench Premium", Plan::Premium, "America/Chicago", 3600),
        ("Bench Professional", Plan::Professional, "UTC", 14_400),
    ];
    let mut hospitals = Vec::new();
    let mut staff: Vec<Vec<i64>> = Vec::new();
    for (i, (name, plan, tz, target)) in plans.iter().enumerate() {
        let id = repo::hospitals::create(db, name, *plan, tz).await?.id.0;
        person(
            db,
            &format!("bench-leader-{i}@nicehr.test"),
            "hospital_leadership",
            Some(id),
        )
        .await?;
        let mut people = Vec::new();
        for s in 0..20 {
            people.push(
                person(
                    db,
                    &format!("bench-staff-{i}-{s}@nicehr.test"),
                    "hospital_staff",
                    Some(id),
                )
                .await?,
            );
        }
        hospitals.push((id, *target));
        staff.push(people);
    }
    person(db, "bench-admin@nicehr.test", "admin", None).await?;
    let mut consultants = Vec::new();
    for c in 0..12 {
        consultants.push(
            person(
                db,
                &format!("bench-consultant-{c}@nicehr.test"),
                "consultant",
                None,
            )
            .await?,
        );
    }

    let year = 365 * 24 * 3600;
    let mut rows = Vec::with_capacity(count);
    for _ in 0..count {
        let h = rng.gen_range(0..hospitals.len());
        let (hospital, target) = hospitals[h];
        let created = now - Duration::seconds(rng.gen_range(3600..year));
        let roll: u32 = rng.gen_range(0..100);
        let wait = rng.gen_range(5..1800i64) * rng.gen_range(1..4i64);
        let duration = rng.gen_range(60..3600i64);
        let consultant = consultants[rng.gen_range(0..consultants.len())];
        let (status, accepted, cancelled_after) = match roll {
            0..=79 => ("completed", true, None),
            80..=89 => ("cancelled", false, Some(rng.gen_range(10..3600i64))),
            90..=93 => ("cancelled", true, Some(wait + 20)),
            94 => ("pending", false, None),
            _ => ("completed", true, None),
        };
        let completed = status == "completed";
        let accepted_at = accepted.then(|| created + Duration::seconds(wait));
        let started_at = accepted_at.filter(|_| completed);
        let ended_at = match (cancelled_after, started_at) {
            (Some(after), _) => Some(created + Duration::seconds(after)),
            (None, Some(s)) => Some(s + Duration::seconds(duration)),
            _ => None,
        };
        rows.push(HistoricSession {
            hospital_id: hospital,
            requester_id: staff[h][rng.gen_range(0..staff[h].len())],
            consultant_id: accepted.then_some(consultant),
            department: DEPARTMENTS[rng.gen_range(0..DEPARTMENTS.len())].into(),
            urgency: ["normal", "urgent", "critical"][rng.gen_range(0..3)].into(),
            status: status.into(),
            issue_summary: "Synthetic benchmark session".into(),
            resolved: completed.then(|| rng.gen_bool(0.8)),
            created_at: created,
            response_deadline: created + Duration::seconds(target),
            accepted_at,
            started_at,
            ended_at,
            wait_time_seconds: accepted.then_some(wait),
            duration_seconds: completed.then_some(duration),
            rating: (completed && rng.gen_bool(0.7)).then(|| rng.gen_range(1..=5)),
            feedback: None,
            match_tier: accepted.then(|| "D".to_string()),
            cancelled_by: None,
        });
    }
    rows.sort_by_key(|r| r.created_at);
    for chunk in rows.chunks(10_000) {
        repo::analytics::import_sessions(db, chunk).await?;
    }

    // A working day per consultant, as the live server logs it: 08:00–17:00 UTC in
    // 20-minute turns of available and busy (about 100,000 intervals), offline at night.
    let mut log = Vec::new();
    for day in 0..366 {
        let Some(midnight) = (now - Duration::days(day)).date().and_hms_opt(0, 0, 0) else {
            continue;
        };
        for &c in &consultants {
            let mut at = midnight + Duration::hours(8);
            for turn in 0..27 {
                let status = if turn % 3 == 1 { "busy" } else { "available" };
                log.push(HistoricStatus {
                    consultant_id: c,
                    status: status.into(),
                    started_at: at,
                    ended_at: Some(at + Duration::minutes(20)),
                });
                at += Duration::minutes(20);
            }
            log.push(HistoricStatus {
                consultant_id: c,
                status: "offline".into(),
                started_at: at,
                ended_at: Some(midnight + Duration::hours(32)),
            });
        }
    }
    repo::analytics::import_status_log(db, &log).await?;
    Ok(())
}
