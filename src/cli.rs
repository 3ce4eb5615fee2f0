//! The command line of API.md: `serve`, `migrate`, `admin …`.

use clap::{Parser, Subcommand};

use crate::config::{DatabaseArgs, PolicyArgs, ServeArgs};

#[derive(Debug, Parser)]
#[command(
    name = "nicehr-support",
    version,
    about = "NICEHR Remote Support dispatch server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (migrations run first).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Benchmark dispatch: open consultant and staff sockets, send requests at a fixed
    /// rate, report latencies (see BENCHMARKS.md).
    Loadgen(Box<crate::loadgen::LoadgenArgs>),
    /// Provision hospitals and users.
    Admin {
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        policy: PolicyArgs,
        #[command(subcommand)]
        action: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a hospital; prints its id.
    CreateHospital {
        #[arg(long)]
        name: String,
        #[arg(long)]
        plan: String,
        #[arg(long)]
        timezone: Option<String>,
    },
    /// Create a user; prints their id.
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        hospital_id: Option<i64>,
    },
    /// Set a user's password (signs them out everywhere).
    SetPassword {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
    },
}
