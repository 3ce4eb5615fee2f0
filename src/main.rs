use std::process::ExitCode;

use clap::Parser;

use nicehr_support::accounts::{self, NewHospitalInput, NewUserInput, PasswordPolicy};
use nicehr_support::cli::{AdminCommand, Cli, Command};
use nicehr_support::db::{self, Db};
use nicehr_support::{server, telemetry};

/// mimalloc instead of glibc's allocator: under load the server allocates small,
/// short-lived buffers (frames, JSON, rows) on many threads, where glibc spent ~15%
/// of all CPU in `malloc`/`free` (measured, BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
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
            let json = args.json;
            match nicehr_support::loadgen::run(*args) {
                Ok(report) => {
                    if json {
                        match serde_json::to_string_pretty(&report) {
                            Ok(text) => println!("{text}"),
                            Err(e) => return fail(&format!("report: {e}")),
                        }
                    } else {
                        print!("{}", report.render());
                    }
                    ExitCode::SUCCESS
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
                    hospital_id,
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
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}
