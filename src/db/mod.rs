//! Storage: one pool enum over SQLite and PostgreSQL, and the `db_run!` macro that
//! expands a query body once per backend so nothing above this module names a backend.
//!
//! SQLite gets two pools: a single writer connection and several readers. WAL lets
//! readers run beside the writer, and funnelling writes through one connection means
//! two of our own transactions can never deadlock upgrading their locks.

/// Expands `$body` once per backend with `$conn: &mut impl AsyncConnection`.
/// `read` uses SQLite's reader pool, `write` its single writer; PostgreSQL has one pool.
#[macro_export]
macro_rules! db_run {
    ($db:expr, $mode:ident, |$conn:ident| $body:block) => {
        match $db {
            $crate::db::Db::Sqlite {
                read,
                write,
                lookup,
                ..
            } => {
                let pool = $crate::db::Mode::$mode.pick(read, write, lookup);
                let mut guard = $crate::db::SqliteGuard::new(
                    pool.get().await.map_err($crate::db::DbError::from)?,
                );
                let result = async {
                    let $conn: &mut $crate::db::SqliteConn = guard.conn()?;
                    $body
                }
                .await;
                guard.finish();
                result
            }
            $crate::db::Db::Postgres(pool) => {
                let mut pooled = pool.get().await.map_err($crate::db::DbError::from)?;
                let $conn: &mut diesel_async::AsyncPgConnection = &mut pooled;
                $body
            }
        }
    };
}

/// Which SQLite pool a `db_run!` body needs (PostgreSQL has one pool for all).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Any read, on the blocking pool: it may scan a year of sessions.
    read,
    /// The single writer, inline (see `SqliteExecutor`).
    write,
    /// A point read by key on the request path (a token, a hospital, a session by
    /// id): microseconds of SQLite, so it runs inline like the writer instead of
    /// paying two thread hops. Only for reads that cannot grow with the data.
    lookup,
}

impl Mode {
    pub fn pick<'a, T>(self, read: &'a T, write: &'a T, lookup: &'a T) -> &'a T {
        match self {
            Mode::read => read,
            Mode::write => write,
            Mode::lookup => lookup,
        }
    }
}

pub mod backup;
pub mod models;
pub mod repo;
pub mod schema;
pub mod seed;
pub(crate) mod sql;

use std::time::Duration;

use deadpool::managed::Metrics;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use diesel_async::pooled_connection::deadpool::{Hook, HookError, Object, Pool, PoolError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::{SpawnBlocking, SyncConnectionWrapper};
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use futures_util::FutureExt;

use crate::config::DatabaseArgs;

pub type SqliteConn = SyncConnectionWrapper<diesel::SqliteConnection, SqliteExecutor>;

/// Where a SQLite connection runs its calls.
///
/// Readers use `Detached`: tokio's blocking pool, like diesel-async's own runtime, but
/// a dropped future simply detaches from its call. diesel-async's default blocks in
/// `Drop` until the call finishes, which panics on actix's single-threaded workers
/// whenever a request is abandoned mid-query (a client hanging up, or a sibling
/// extractor failing). The call itself still completes; `SqliteGuard` makes sure the
/// connection is not reused until then. Long reads (analytics over a year) must not
/// hold up the thread that serves other requests, hence the hop.
///
/// The single writer uses `Inline`: the call runs right where it is awaited. A write
/// transaction is a handful of statements of tens of microseconds each; on the
/// blocking pool every statement (and BEGIN and COMMIT) was a thread hop of its own,
/// all taken while holding the one write connection, so under load the hops, not
/// SQLite, set the write throughput. Inline, a transaction holds the writer only as
/// long as SQLite works. The cost: a write that has to wait for a lock held by
/// another process (`busy_timeout`) blocks its thread meanwhile.
pub enum SqliteExecutor {
    Detached,
    Inline,
}

impl SpawnBlocking for SqliteExecutor {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> futures_util::future::BoxFuture<
        'a,
        Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>,
    >
    where
        R: Send + 'static,
    {
        match self {
            SqliteExecutor::Inline => Box::pin(std::future::ready(Ok(task()))),
            SqliteExecutor::Detached => {
                let handle = tokio::task::spawn_blocking(task);
                Box::pin(async move {
                    handle
                        .await
                        .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
                })
            }
        }
    }

    fn get_runtime() -> Self {
        SqliteExecutor::Detached
    }
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Errors of the storage layer. `Unavailable` means "try again later" (503); the
/// others are the caller's to map.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("record not found")]
    NotFound,
    #[error("unique constraint violated: {0}")]
    Conflict(String),
    #[error("constraint violated: {0}")]
    Constraint(String),
    #[error("database error: {0}")]
    Query(String),
    #[error("migration failed: {0}")]
    Migration(String),
}

impl From<diesel::result::Error> for DbError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind as Kind, Error};
        match error {
            Error::NotFound => DbError::NotFound,
            Error::DatabaseError(Kind::UniqueViolation, info) => {
                DbError::Conflict(info.message().to_string())
            }
            Error::DatabaseError(Kind::ForeignKeyViolation | Kind::CheckViolation, info)
            | Error::DatabaseError(Kind::NotNullViolation, info) => {
                DbError::Constraint(info.message().to_string())
            }
            Error::DatabaseError(Kind::ClosedConnection | Kind::UnableToSendCommand, info) => {
                DbError::Unavailable(info.message().to_string())
            }
            Error::DatabaseError(_, info) if is_transient(info.message()) => {
                DbError::Unavailable(info.message().to_string())
            }
            Error::BrokenTransactionManager => {
                DbError::Unavailable("broken transaction manager".into())
            }
            other => {
                let text = other.to_string();
                if is_transient(&text) {
                    DbError::Unavailable(text)
                } else {
                    DbError::Query(text)
                }
            }
        }
    }
}

/// Messages that mean the database is busy or gone rather than that the query is wrong.
fn is_transient(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("database is locked")
        || m.contains("database is busy")
        || m.contains("connection")
        || m.contains("terminating")
        || m.contains("does not exist") && m.contains("database")
        || m.contains("shutting down")
}

impl From<PoolError> for DbError {
    fn from(error: PoolError) -> Self {
        DbError::Unavailable(error.to_string())
    }
}

pub type DbResult<T> = Result<T, DbError>;

#[derive(Clone)]
pub enum Db {
    Sqlite {
        write: Pool<SqliteConn>,
        read: Pool<SqliteConn>,
        lookup: Pool<SqliteConn>,
        /// The shared lock that tells `restore` this process has the file open
        /// (see `backup`); released when the last handle goes.
        in_use: std::sync::Arc<std::fs::File>,
    },
    Postgres(Pool<AsyncPgConnection>),
}

/// Which backend a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Result<Backend, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if url.starts_with("sqlite://") || url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else {
            Err(DbError::Unavailable(format!(
                "unsupported DATABASE_URL scheme (want sqlite:// or postgres://): {}",
                redact_url(url)
            )))
        }
    }
}

pub use crate::config::redact_url;

/// SQLite creates the file on first open, but not the directory it goes in.
fn create_parent_dir(path: &str) -> DbResult<()> {
    match std::path::Path::new(path).parent() {
        Some(parent) if !parent.as_os_str().is_empty() => std::fs::create_dir_all(parent)
            .map_err(|e| DbError::Unavailable(format!("cannot create {}: {e}", parent.display()))),
        _ => Ok(()),
    }
}

fn sqlite_path(url: &str) -> String {
    url.trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .to_string()
}

impl Db {
    /// Opens the pools and runs pending migrations. SQLite's file (and its directory)
    /// is created on first start.
    pub async fn connect(args: &DatabaseArgs) -> DbResult<Db> {
        let url = args.database_url.clone();
        let db = match Backend::of(&url)? {
            Backend::Sqlite => {
                let path = sqlite_path(&url);
                create_parent_dir(&path)?;
                // Before the file is opened (or created): a restore may be putting it there.
                let in_use = backup::hold_shared(std::path::Path::new(&path))
                    .map_err(|e| DbError::Unavailable(e.to_string()))?;
                let busy = args.sqlite_busy_timeout_ms;
                // Migrations first, on a plain connection, so the pools open a ready file.
                let migrate_path = path.clone();
                tokio::task::spawn_blocking(move || migrate_sqlite(&migrate_path, busy))
                    .await
                    .map_err(|e| DbError::Migration(e.to_string()))??;
                let size = args.db_pool_size.max(1);
                let timeout = args.db_timeout();
                let write = sqlite_pool(&path, 1, busy, timeout, PoolRole::Writer)?;
                let read = sqlite_pool(&path, size, busy, timeout, PoolRole::Reader)?;
                let lookup = sqlite_pool(&path, size, busy, timeout, PoolRole::Lookup)?;
                Db::Sqlite {
                    write,
                    read,
                    lookup,
                    in_use,
                }
            }
            Backend::Postgres => {
                migrate_postgres(&url).await?;
                let mut config = ManagerConfig::<AsyncPgConnection>::default();
                config.recycling_method = RecyclingMethod::Fast;
                let manager =
                    AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
                let pool = Pool::builder(manager)
                    .pre_recycle(verify_if_idle())
                    .max_size(args.db_pool_size.max(1))
                    .wait_timeout(Some(args.db_timeout()))
                    .create_timeout(Some(args.db_timeout()))
                    .recycle_timeout(Some(args.db_timeout()))
                    .runtime(deadpool::Runtime::Tokio1)
                    .build()
                    .map_err(|e| DbError::Unavailable(e.to_string()))?;
                Db::Postgres(pool)
            }
        };
        Ok(db)
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite { .. } => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Can we store work right now? PostgreSQL: a round trip. SQLite: take and drop the
    /// write lock, since a locked file still answers reads but cannot accept requests.
    pub async fn ping(&self) -> DbResult<()> {
        use diesel_async::SimpleAsyncConnection;
        match self {
            Db::Sqlite { write, .. } => {
                let mut conn = write.get().await?;
                conn.batch_execute("BEGIN IMMEDIATE; ROLLBACK;").await?;
            }
            Db::Postgres(pool) => {
                let mut conn = pool.get().await?;
                conn.batch_execute("SELECT 1").await?;
            }
        }
        Ok(())
    }
}

/// Runs migrations from an embedded set; used by `serve` and `migrate`.
pub async fn migrate(args: &DatabaseArgs) -> DbResult<()> {
    let url = args.database_url.clone();
    match Backend::of(&url)? {
        Backend::Sqlite => {
            let busy = args.sqlite_busy_timeout_ms;
            let path = sqlite_path(&url);
            create_parent_dir(&path)?;
            tokio::task::spawn_blocking(move || migrate_sqlite(&path, busy))
                .await
                .map_err(|e| DbError::Migration(e.to_string()))?
        }
        Backend::Postgres => migrate_postgres(&url).await,
    }
}

/// How often the write-ahead log is copied back into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);
/// Every this many checkpoints, one on the writer connection (see below).
const CHECKPOINTS_PER_REWIND: u32 = 8;

/// Copies the write-ahead log into the database file off the write path.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses 1,000 pages,
/// fsync included, and every write queued behind the single writer waits for it:
/// tens of milliseconds of stall every few seconds under load. Here a PASSIVE
/// checkpoint on a reader connection does the copying beside the writer, never
/// blocking it. A passive checkpoint racing a steady stream of commits never quite
/// catches up, though, and SQLite only rewinds the log after a complete one: at 500
/// requests a second the WAL grew by ~90 MB/s for as long as the load lasted. So
/// every couple of seconds, right after a reader has done the bulk of the copying, a
/// PASSIVE checkpoint runs on the writer connection itself: with no commit racing it,
/// it finishes the remainder (milliseconds; writers wait in the pool's async queue)
/// and the next write rewinds the log. The file then stays at its high-water mark,
/// a couple of seconds of peak writes: truncating it (`journal_size_limit`) made each
/// rewind a 70 ms stall. Measured, see BENCHMARKS.md. (A RESTART checkpoint from a
/// reader would rewind too, but it takes the write lock and then sleeps in SQLite's
/// busy handler waiting for readers; under load that stalled writes for seconds.)
///
/// Only the server runs it (one checkpointer per database file: a second process's
/// writer-side checkpoint would hold the file's write lock against the server). The
/// task lives as long as the runtime it was started on. PostgreSQL: nothing to do.
pub fn spawn_checkpointer(db: &Db) {
    let Db::Sqlite { read, write, .. } = db else {
        return;
    };
    let (read, write) = (read.clone(), write.clone());
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(CHECKPOINT_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tick: u32 = 0;
        loop {
            interval.tick().await;
            tick = tick.wrapping_add(1);
            checkpoint(&read).await;
            if tick.is_multiple_of(CHECKPOINTS_PER_REWIND) {
                checkpoint(&write).await;
            }
        }
    });
}

async fn checkpoint(pool: &Pool<SqliteConn>) {
    use diesel_async::SimpleAsyncConnection;
    let Ok(object) = pool.get().await else {
        return;
    };
    let mut guard = SqliteGuard::new(object);
    if let Ok(conn) = guard.conn() {
        if let Err(e) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE)").await {
            tracing::debug!(error = %e, "WAL checkpoint skipped");
        }
    }
    guard.finish();
}

/// Sets SQLite's process-wide options, once, before the first connection opens (SQLite
/// takes them only before it initialises itself).
///
/// - No memory statistics: with them, every allocation SQLite makes (tens of
///   thousands a second under load) takes a global mutex to count it, and nothing
///   here reads the counts.
/// - Multi-thread mode instead of serialized: serialized takes each connection's
///   mutex on every API call in case two threads share it. Ours never do at once:
///   a connection belongs to one pool slot, and diesel-async's wrapper runs one call
///   at a time on it.
///
/// Together they were about a twentieth of the server's instructions per call
/// (callgrind, see BENCHMARKS.md). If SQLite was already initialised (another part of
/// the process opened a database first, as a test may), the defaults stay, which is
/// correct, only slower.
fn configure_sqlite_library() {
    static CONFIGURED: std::sync::Once = std::sync::Once::new();
    CONFIGURED.call_once(|| {
        use libsqlite3_sys::{
            sqlite3_config, SQLITE_CONFIG_MEMSTATUS, SQLITE_CONFIG_MULTITHREAD, SQLITE_OK,
        };
        // SAFETY: `sqlite3_config` is only valid before `sqlite3_initialize` and with
        // the argument types its option documents (an int for MEMSTATUS, none for
        // MULTITHREAD); called too late it returns SQLITE_MISUSE and changes nothing.
        let results = unsafe {
            [
                sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int),
                sqlite3_config(SQLITE_CONFIG_MULTITHREAD),
            ]
        };
        if results.iter().any(|&rc| rc != SQLITE_OK) {
            tracing::debug!(
                ?results,
                "SQLite was initialised before it could be configured; its defaults stay"
            );
        }
    });
}

fn sqlite_pragmas(busy_timeout_ms: u64) -> String {
    format!(
        "PRAGMA busy_timeout = {busy_timeout_ms}; PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
    )
}

#[derive(diesel::QueryableByName)]
struct DanglingReferences {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Foreign keys are off while migrations run: SQLite changes a table's constraints
/// only by rebuilding it (create, copy, drop, rename), and with them on, dropping the
/// old table would cascade into every row that refers to it. (`PRAGMA foreign_keys`
/// cannot change inside the transaction each migration runs in, hence here.) Every
/// reference is checked once they have run, before anything else opens the file.
fn migrate_sqlite(path: &str, busy_timeout_ms: u64) -> DbResult<()> {
    use diesel::RunQueryDsl;
    configure_sqlite_library();
    let mut conn = diesel::SqliteConnection::establish(path)
        .map_err(|e| DbError::Unavailable(e.to_string()))?;
    conn.batch_execute(&sqlite_pragmas(busy_timeout_ms))?;
    conn.batch_execute("PRAGMA foreign_keys = OFF")?;
    conn.run_pending_migrations(SQLITE_MIGRATIONS)
        .map_err(|e| DbError::Migration(e.to_string()))?;
    let broken: i64 = diesel::sql_query("SELECT COUNT(*) AS n FROM pragma_foreign_key_check")
        .get_result::<DanglingReferences>(&mut conn)?
        .n;
    if broken > 0 {
        return Err(DbError::Migration(format!(
            "{broken} rows refer to rows that do not exist (PRAGMA foreign_key_check)"
        )));
    }
    conn.batch_execute("PRAGMA foreign_keys = ON")?;
    Ok(())
}

/// diesel's migration harness is synchronous; `AsyncConnectionWrapper` needs a
/// multi-threaded runtime, which the actix system (single-threaded) is not, so the
/// migration gets a thread and runtime of its own.
async fn migrate_postgres(url: &str) -> DbResult<()> {
    let url = url.to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let result = (|| -> DbResult<()> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .map_err(|e| DbError::Migration(e.to_string()))?;
            runtime.block_on(async {
                use diesel_async::AsyncConnection;
                let conn = AsyncPgConnection::establish(&url)
                    .await
                    .map_err(|e| DbError::Unavailable(e.to_string()))?;
                let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
                harness
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map_err(|e| DbError::Migration(e.to_string()))?;
                Ok(())
            })
        })();
        let _ = tx.send(result);
    });
    rx.await
        .map_err(|_| DbError::Migration("migration thread died".into()))?
}

#[derive(Clone, Copy)]
enum PoolRole {
    Writer,
    Reader,
    Lookup,
}

fn sqlite_pool(
    path: &str,
    size: usize,
    busy_timeout_ms: u64,
    timeout: Duration,
    role: PoolRole,
) -> DbResult<Pool<SqliteConn>> {
    let writer = matches!(role, PoolRole::Writer);
    let mut config = ManagerConfig::<SqliteConn>::default();
    // A file does not hang up: a connection is only unusable when it says so
    // (`is_broken`, which the fast check still asks), so the default `SELECT 1` on
    // every checkout (a thread hop each on the reader pool) would buy nothing.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url: &str| {
        let url = url.to_string();
        async move {
            // Opening a file and setting pragmas takes microseconds; done on the
            // blocking pool anyway since it may wait on the busy timeout.
            let conn = tokio::task::spawn_blocking(move || {
                let mut conn = diesel::SqliteConnection::establish(&url)?;
                conn.batch_execute(&sqlite_pragmas(busy_timeout_ms))
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                if writer {
                    // Checkpoints belong to `spawn_checkpointer`, not to whichever
                    // commit happens to cross the threshold.
                    conn.batch_execute("PRAGMA wal_autocheckpoint = 0")
                        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                }
                Ok::<_, diesel::ConnectionError>(conn)
            })
            .await
            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))??;
            let executor = match role {
                PoolRole::Writer | PoolRole::Lookup => SqliteExecutor::Inline,
                PoolRole::Reader => SqliteExecutor::Detached,
            };
            Ok(SyncConnectionWrapper::with_runtime(conn, executor))
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(path, config);
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| DbError::Unavailable(e.to_string()))
}

/// A PostgreSQL connection idle this long is asked `SELECT 1` before it is handed
/// out again (see [`verify_if_idle`]).
const VERIFY_IDLE_AFTER: Duration = Duration::from_secs(30);

/// The pool's check before it hands out a PostgreSQL connection again: a round trip
/// only for one that sat idle past [`VERIFY_IDLE_AFTER`]. A connection in steady use
/// needs none: one the server closed (a restart, a failover) is already known to be
/// closed (`is_broken`, asked by the fast recycle check), and the next query would
/// find out anyway; what the round trip catches is a peer that vanished without a
/// word while nobody used the connection. Checking on every checkout was a round trip
/// per checkout, several per call.
fn verify_if_idle() -> Hook<AsyncPgConnection> {
    Hook::async_fn(|conn: &mut AsyncPgConnection, metrics: &Metrics| {
        let idle = metrics.last_used() >= VERIFY_IDLE_AFTER;
        Box::pin(async move {
            if idle {
                use diesel_async::SimpleAsyncConnection;
                conn.batch_execute("SELECT 1").await.map_err(|e| {
                    HookError::Backend(diesel_async::pooled_connection::PoolError::QueryError(e))
                })?;
            }
            Ok(())
        })
    })
}

/// A pooled SQLite connection that is never handed back to the pool while a call on
/// it may still be running. If the query future is dropped part-way (the client went
/// away), the call finishes on the blocking pool on its own, and reusing the
/// connection meanwhile would race it; so an unfinished guard takes the connection out
/// of the pool instead, and the pool opens a fresh one when needed.
pub struct SqliteGuard {
    object: Option<Object<SqliteConn>>,
    finished: bool,
}

impl SqliteGuard {
    pub fn new(object: Object<SqliteConn>) -> SqliteGuard {
        SqliteGuard {
            object: Some(object),
            finished: false,
        }
    }

    pub fn conn(&mut self) -> Result<&mut SqliteConn, DbError> {
        match self.object.as_mut() {
            Some(object) => Ok(object),
            None => Err(DbError::Unavailable("connection already released".into())),
        }
    }

    /// The body ran to completion (successfully or not): the connection is idle.
    pub fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for SqliteGuard {
    fn drop(&mut self) {
        if !self.finished {
            if let Some(object) = self.object.take() {
                drop(Object::take(object));
            }
        }
    }
}

/// A pooled connection of either backend, for code that must hold one across calls.
pub type SqlitePooled = Object<SqliteConn>;
pub type PgPooled = Object<AsyncPgConnection>;

/// A database beside the one a PostgreSQL URL names, for runs that each need an empty
/// one (the load generator's ramp: a step's server must not inherit the last step's
/// consultants, whose sockets are gone but whose rows still say available).
pub struct SiblingDatabase {
    /// The URL of the sibling itself.
    pub url: String,
    /// The URL it was made from, whose server drops it again.
    origin: String,
    name: String,
}

impl SiblingDatabase {
    /// `<name>_<suffix>` on the same server, dropped first if a run left it behind.
    pub async fn recreate(origin: &str, suffix: &str) -> DbResult<SiblingDatabase> {
        use diesel_async::SimpleAsyncConnection;
        let mut url = url::Url::parse(origin)
            .map_err(|e| DbError::Unavailable(format!("database URL: {e}")))?;
        let base = url.path().trim_start_matches('/').to_string();
        let name = format!("{base}_{suffix}");
        // Quoted as an identifier below; anything that would need escaping is refused.
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(DbError::Unavailable(format!(
                "cannot derive a database name from {base:?}"
            )));
        }
        let mut conn = Self::connect_to(origin).await?;
        // Two round trips: PostgreSQL runs a multi-statement query as one transaction,
        // and neither statement may run inside one.
        conn.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await?;
        conn.batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        url.set_path(&format!("/{name}"));
        Ok(SiblingDatabase {
            url: url.to_string(),
            origin: origin.to_string(),
            name,
        })
    }

    async fn connect_to(origin: &str) -> DbResult<AsyncPgConnection> {
        use diesel_async::AsyncConnection;
        AsyncPgConnection::establish(origin)
            .await
            .map_err(|e| DbError::Unavailable(e.to_string()))
    }

    pub async fn drop(self) -> DbResult<()> {
        use diesel_async::SimpleAsyncConnection;
        let mut conn = Self::connect_to(&self.origin).await?;
        conn.batch_execute(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ))
        .await?;
        Ok(())
    }
}
