//! PostgreSQL's own count of the statements it ran (`pg_stat_statements`), for the
//! load generator's "statements per call". Only PostgreSQL keeps one, and only when
//! the module is preloaded (`shared_preload_libraries`, which needs a restart); then
//! the extension is created in this database if it is not there. Anything else
//! answers `None`: the figure is a diagnosis, never a reason to fail a run.

use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::QueryableByName;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};

use crate::db::Db;

#[derive(QueryableByName)]
struct Total {
    #[diesel(sql_type = Nullable<BigInt>)]
    calls: Option<i64>,
}

/// The most executed statements, at most this many.
pub const TOP_STATEMENTS: i64 = 15;
/// Statement text is cut here: enough to recognise it (parameters are `$n`, so no
/// values, and no patient text, appear).
const STATEMENT_CHARS: i32 = 120;

/// One normalised statement and how often it ran.
#[derive(Debug, Clone, QueryableByName)]
pub struct StatementCount {
    #[diesel(sql_type = Text)]
    pub statement: String,
    #[diesel(sql_type = BigInt)]
    pub calls: i64,
}

/// Makes the counter usable and zeroes it for this database; `false` when it
/// cannot be (SQLite, the module not preloaded, no privilege).
pub async fn reset(db: &Db) -> bool {
    let Db::Postgres(pool) = db else {
        return false;
    };
    let Ok(mut conn) = pool.get().await else {
        return false;
    };
    conn.batch_execute(
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; \
         SELECT pg_stat_statements_reset(0, \
             (SELECT oid FROM pg_database WHERE datname = current_database()), 0);",
    )
    .await
    .is_ok()
}

/// Statements executed in this database since [`reset`] (every execution counts,
/// prepared or not); `None` when there is no counter.
pub async fn executed(db: &Db) -> Option<u64> {
    let Db::Postgres(pool) = db else {
        return None;
    };
    let mut conn = pool.get().await.ok()?;
    let total: Total = diesel::sql_query(
        "SELECT sum(calls)::bigint AS calls FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .get_result(&mut conn)
    .await
    .ok()?;
    total.calls.and_then(|c| u64::try_from(c).ok())
}

/// The [`TOP_STATEMENTS`] most executed statements since [`reset`], most first.
pub async fn most_executed(db: &Db) -> Vec<StatementCount> {
    let Db::Postgres(pool) = db else {
        return Vec::new();
    };
    let Ok(mut conn) = pool.get().await else {
        return Vec::new();
    };
    diesel::sql_query(format!(
        "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), {STATEMENT_CHARS}) AS statement, \
                calls::bigint AS calls \
         FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND query NOT LIKE '%pg_stat_statements%' \
         ORDER BY calls DESC LIMIT {TOP_STATEMENTS}"
    ))
    .load(&mut conn)
    .await
    .unwrap_or_default()
}
