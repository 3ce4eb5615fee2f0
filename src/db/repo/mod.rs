//! Repositories: the only code that builds queries. Each function takes the `Db` and
//! runs its body through `db_run!`, so callers never see which backend answered.

pub mod analytics;
pub mod audit;
pub mod consultants;
pub mod hospitals;
pub mod provision;
pub mod sessions;
pub mod tokens;
pub mod users;

/// "Now" as stored: UTC without an offset, the same on both backends.
pub fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}
