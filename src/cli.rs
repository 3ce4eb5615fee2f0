//! The command line of API.md: `serve`, `migrate`, `admin …`, plus the operators'
//! `config`, `backup`, `restore` and `retention run`.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::config::{DatabaseArgs, PolicyArgs, RetentionArgs, ServeArgs, CONFIG_ENV};

#[derive(Debug, Parser)]
#[command(
    name = "nicehr-support",
    version,
    about = "NICEHR Remote Support dispatch server"
)]
pub struct Cli {
    /// TOML configuration file; its keys are the environment variable names in lower
    /// case (`bind_addr`, `database_url`, …; `config keys` lists them). Flags and
    /// environment variables win over it.
    #[arg(long = "config", env = CONFIG_ENV, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
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
    /// Retention of patient text (README, "Retention").
    Retention {
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        retention: RetentionArgs,
        #[command(subcommand)]
        action: RetentionCommand,
    },
    /// Check a configuration file, or list the keys one may hold.
    Config {
        #[command(subcommand)]
        action: ConfigCommand,
    },
    /// Copy a live SQLite database into a new file, consistently, while the server
    /// runs (PostgreSQL: use pg_dump, see README).
    Backup {
        #[command(flatten)]
        db: DatabaseArgs,
        /// The file to write; it must not exist yet unless `--force` is given.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Put a backup in place of the SQLite database. Refuses while a server (or any
    /// other nicehr-support command) has the database open; the replaced database
    /// is kept beside it.
    Restore {
        #[command(flatten)]
        db: DatabaseArgs,
        /// A file written by `backup`.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Restore even though a process has the database open. That process keeps
        /// working on the replaced file: stop it right after.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration (file, environment and flags) and print what
    /// `serve` would run with, secrets redacted. Exit status 1 on any error.
    Check(Box<ServeArgs>),
    /// List the keys a configuration file may hold.
    Keys,
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Run one pass now, as the server's job does: erase the text of sessions past
    /// their hospital's retention, record the run. Exit status 1 if a hospital failed.
    Run,
}

impl Cli {
    /// The configuration file the command line names, if any.
    pub fn config_file(&self) -> Option<&Path> {
        self.config.as_deref()
    }
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
    /// Turn password sign-in on or off for a hospital's people (off: only its
    /// identity provider signs them in; README, "Single sign-on").
    PasswordSignIn {
        #[arg(long)]
        hospital_id: i64,
        #[arg(value_enum)]
        setting: Switch,
    },
}

/// `on` or `off`, for settings a command switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}
