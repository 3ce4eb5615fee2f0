use std::process::ExitCode;

use nicehr_support::accounts::{self, NewHospitalInput, NewUserInput, PasswordPolicy};
use nicehr_support::cli::{AdminCommand, Cli, Command, ConfigCommand, RetentionCommand, Switch};
use nicehr_support::config::{self, ConfigError};
use nicehr_support::db::backup::{self, Overwrite, WhenInUse};
use nicehr_support::db::{self, Db};
use nicehr_support::{server, telemetry};

/// mimalloc instead of glibc's allocator: under load the server allocates small,
/// short-lived buffers (frames, JSON, rows) on many threads, where glibc spent ~15%
/// of all CPU in `malloc`/`free` (measured, BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let (cli, matches, file) =
        match config::parse_with_file::<Cli>(std::env::args_os().collect(), Cli::config_file) {
            Ok(parsed) => parsed,
            // clap's own errors (and --help, --version) print and exit as usual.
            Err(ConfigError::CommandLine(e)) => e.exit(),
            Err(e) => return fail(&e.to_string()),
        };
    let sso = file.as_ref().map(|f| f.sso.clone()).unwrap_or_default();
    match cli.command {
        Command::Serve(mut args) => {
            args.sso = sso;
            telemetry::init(&args.log_level, args.log_format);
            // Every WebSocket is a file descriptor; the usual soft limit of 1,024
            // would cap a hospital group's consultants long before memory does.
            if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
                tracing::warn!(error = %e, "could not raise the open-files limit");
            }
            let system = actix_web::rt::System::new();
            let result = system.block_on(async move {
                let started = server::start(*args).await?;
                println!("NICEHR Remote Support listening on http://{}", started.addr);
                started.server.await?;
                tracing::info!("shut down cleanly");
                Ok::<(), server::StartError>(())
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e.to_string()),
            }
        }
        Command::Loadgen(args) => {
            telemetry::init("warn", nicehr_support::config::LogFormat::Text);
            let format = if args.json {
                ReportFormat::Json
            } else {
                ReportFormat::Table
            };
            if args.ramp_to.is_none() {
                return match nicehr_support::loadgen::run(*args) {
                    Ok(report) => print_report(&report, format, |r| r.render()),
                    Err(e) => fail(&e.to_string()),
                };
            }
            let chart = args.chart.clone();
            match nicehr_support::loadgen::run_ramp(*args) {
                Ok(report) => {
                    if let Some(path) = chart {
                        let svg = nicehr_support::loadgen::chart::render(&report);
                        if let Err(e) = std::fs::write(&path, svg) {
                            return fail(&format!("chart {}: {e}", path.display()));
                        }
                    }
                    print_report(&report, format, |r| r.render())
                }
                Err(e) => fail(&e.to_string()),
            }
        }
        Command::Migrate(db_args) => {
            telemetry::init("warn", nicehr_support::config::LogFormat::Text);
            match runtime().and_then(|rt| {
                rt.block_on(db::migrate(&db_args))
                    .map_err(|e| e.to_string())
            }) {
                Ok(()) => {
                    println!("migrations applied");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Config {
            action: ConfigCommand::Check(mut args),
        } => {
            args.sso = sso;
            let serve_matches = matches
                .subcommand_matches("config")
                .and_then(|m| m.subcommand_matches("check"))
                .unwrap_or(&matches);
            print!("{}", config::describe(serve_matches, file.as_ref()));
            match server::preflight(&args) {
                Ok(_) => {
                    println!("# configuration is valid");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            }
        }
        Command::Config {
            action: ConfigCommand::Keys,
        } => {
            for (key, help) in config::keys() {
                println!("{key:<28} {help}");
            }
            ExitCode::SUCCESS
        }
        Command::Backup {
            db: db_args,
            to,
            force,
        } => {
            let overwrite = if force {
                Overwrite::Replace
            } else {
                Overwrite::Refuse
            };
            match backup::backup(&db_args, &to, overwrite) {
                Ok(report) => {
                    println!(
                        "backed up {} to {} ({} bytes, schema {})",
                        db::redact_url(&db_args.database_url),
                        to.display(),
                        report.bytes,
                        report.schema_version
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            }
        }
        Command::Restore {
            db: db_args,
            from,
            force,
        } => {
            let when_in_use = if force {
                WhenInUse::Proceed
            } else {
                WhenInUse::Refuse
            };
            match backup::restore(&db_args, &from, when_in_use) {
                Ok(report) => {
                    println!(
                        "restored {} into {}",
                        from.display(),
                        db::redact_url(&db_args.database_url)
                    );
                    if let Some(replaced) = report.replaced {
                        println!("the previous database was kept as {}", replaced.display());
                    }
                    if !report.migrated.is_empty() {
                        println!("migrations applied: {}", report.migrated.join(", "));
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            }
        }
        Command::Retention {
            db: db_args,
            retention,
            action: RetentionCommand::Run,
        } => {
            telemetry::init("warn", nicehr_support::config::LogFormat::Text);
            let result = runtime().and_then(|rt| {
                rt.block_on(async move {
                    let db = Db::connect(&db_args).await.map_err(|e| e.to_string())?;
                    nicehr_support::retention::run_pass(
                        &db,
                        &retention,
                        nicehr_support::model::RetentionTrigger::Command,
                    )
                    .await
                    .map_err(|e| e.to_string())
                })
            });
            match result {
                Ok(report) => {
                    print!("{}", report.render());
                    if report.failures() == 0 {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => fail(&e),
            }
        }
        Command::Admin {
            db: db_args,
            policy,
            action,
        } => {
            let policy = PasswordPolicy::from(&policy);
            telemetry::init("warn", nicehr_support::config::LogFormat::Text);
            let result = runtime().and_then(|rt| {
                rt.block_on(async move {
                    let db = Db::connect(&db_args).await.map_err(|e| e.to_string())?;
                    admin(&db, action, &policy).await
                })
            });
            match result {
                Ok(output) => {
                    println!("{output}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
    }
}

async fn admin(db: &Db, action: AdminCommand, policy: &PasswordPolicy) -> Result<String, String> {
    let describe = |e: nicehr_support::error::ApiError| e.to_string();
    match action {
        AdminCommand::CreateHospital {
            name,
            plan,
            timezone,
        } => {
            let hospital = accounts::create_hospital(
                db,
                NewHospitalInput {
                    name,
                    plan,
                    timezone,
                },
            )
            .await
            .map_err(describe)?;
            Ok(hospital.id.to_string())
        }
        AdminCommand::CreateUser {
            email,
            name,
            role,
            password,
            hospital_id,
        } => {
            let user = accounts::create_user(
                db,
                NewUserInput {
                    email,
                    name,
                    role,
                    password,
                    hospital_id: hospital_id.map(nicehr_support::model::HospitalId),
                },
                policy,
            )
            .await
            .map_err(describe)?;
            Ok(user.id.to_string())
        }
        AdminCommand::SetPassword { email, password } => {
            accounts::set_password(db, &email, password, policy)
                .await
                .map_err(describe)?;
            Ok("password updated".into())
        }
        AdminCommand::PasswordSignIn {
            hospital_id,
            setting,
        } => {
            let allowed = setting == Switch::On;
            let hospital = nicehr_support::model::HospitalId(hospital_id);
            match db::repo::sso::set_password_login(db, hospital, allowed).await {
                Ok(true) => Ok(format!(
                    "password sign-in {} for hospital {hospital_id}",
                    if allowed { "on" } else { "off" }
                )),
                Ok(false) => Err(format!("hospital {hospital_id} does not exist")),
                Err(e) => Err(e.to_string()),
            }
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// How `loadgen` prints its report (`--json` or the table).
enum ReportFormat {
    Json,
    Table,
}

fn print_report<R: serde::Serialize>(
    report: &R,
    format: ReportFormat,
    table: impl FnOnce(&R) -> String,
) -> ExitCode {
    match format {
        ReportFormat::Json => match serde_json::to_string_pretty(report) {
            Ok(text) => println!("{text}"),
            Err(e) => return fail(&format!("report: {e}")),
        },
        ReportFormat::Table => print!("{}", table(report)),
    }
    ExitCode::SUCCESS
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}
