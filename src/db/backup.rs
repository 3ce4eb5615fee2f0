//! Backups of the embedded SQLite database, and putting one back.
//!
//! The copy is made with `VACUUM INTO` rather than SQLite's online backup API
//! (`sqlite3_backup_*`). Both give a consistent snapshot of a live database: `VACUUM
//! INTO` reads everything inside one read transaction, which under WAL never blocks
//! the server's writer, and the server keeps committing meanwhile. The backup API
//! would need unsafe FFI through libsqlite3-sys (rusqlite is not a dependency), and
//! copied step by step it restarts whenever another process writes, so under
//! steady writes it may never finish; copied in one step it is the same single read
//! transaction as `VACUUM INTO`. `VACUUM INTO` runs through diesel's connection, and
//! writes a compact file with no free pages and no `-wal` beside it.
//!
//! Which process has a database open is told by a lock file beside it
//! (`nicehr.db.lock`): every process that opens the database through [`Db::connect`]
//! holds a shared lock on it for as long as it keeps the database, and `restore`
//! needs the exclusive one. The kernel drops the lock when a process dies, so a
//! crash never leaves the database looking busy.
//!
//! [`Db::connect`]: crate::db::Db::connect

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::sql_types::Text;
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};

use super::{migrate_sqlite, sqlite_path, Backend, DbError, SQLITE_MIGRATIONS};
use crate::config::DatabaseArgs;

/// What to do when the backup file already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    Refuse,
    Replace,
}

/// What to do when another process has the database open during a restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenInUse {
    Refuse,
    Proceed,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "backup and restore work on SQLite only; for PostgreSQL use pg_dump and pg_restore \
         (README, \"Backups\")"
    )]
    NotSqlite,
    #[error("{} does not exist", .0.display())]
    Missing(PathBuf),
    #[error("{} already exists; pass --force to replace it", .0.display())]
    Exists(PathBuf),
    #[error("{} is not a NICEHR database: {reason}", path.display())]
    NotNicehr { path: PathBuf, reason: String },
    #[error(
        "{} is in use by a running server or another nicehr-support command; stop it \
         first (or pass --force, and stop it right after)",
        .0.display()
    )]
    InUse(PathBuf),
    #[error("{} is the configured database itself, not a backup of it", .0.display())]
    SameFile(PathBuf),
    #[error("{} is being restored; try again when the restore has finished", .0.display())]
    Restoring(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub struct BackupReport {
    pub bytes: u64,
    /// The newest migration the copy carries.
    pub schema_version: String,
}

pub struct RestoreReport {
    /// Where the database that was there before now is, if there was one.
    pub replaced: Option<PathBuf>,
    /// Migrations applied to the copy because it predates this binary.
    pub migrated: Vec<String>,
}

/// Writes a consistent copy of the (possibly live) database to `to`.
pub fn backup(
    args: &DatabaseArgs,
    to: &Path,
    overwrite: Overwrite,
) -> Result<BackupReport, BackupError> {
    let source = database_path(args)?;
    if !source.exists() {
        return Err(BackupError::Missing(source));
    }
    if overwrite == Overwrite::Refuse && to.exists() {
        return Err(BackupError::Exists(to.to_path_buf()));
    }
    let mut conn = open(&source, Access::ReadWrite, args.sqlite_busy_timeout_ms)?;
    check_nicehr(&mut conn, &source)?;
    let partial = Scratch::beside(to, "partial")?;
    vacuum_into(&mut conn, partial.path())?;
    drop(conn);
    let mut copy = open(
        partial.path(),
        Access::ReadOnly,
        args.sqlite_busy_timeout_ms,
    )?;
    let versions = check_nicehr(&mut copy, partial.path())?;
    drop(copy);
    sync_file(partial.path())?;
    match overwrite {
        // A hard link fails if `to` appeared meanwhile, where a rename would replace it.
        Overwrite::Refuse => std::fs::hard_link(partial.path(), to).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                BackupError::Exists(to.to_path_buf())
            } else {
                io(to)(e)
            }
        })?,
        Overwrite::Replace => std::fs::rename(partial.path(), to).map_err(io(to))?,
    }
    drop(partial);
    sync_parent(to)?;
    let bytes = std::fs::metadata(to).map_err(io(to))?.len();
    Ok(BackupReport {
        bytes,
        schema_version: versions.last().cloned().unwrap_or_default(),
    })
}

/// Puts the backup `from` in place of the configured database.
pub fn restore(
    args: &DatabaseArgs,
    from: &Path,
    when_in_use: WhenInUse,
) -> Result<RestoreReport, BackupError> {
    let target = database_path(args)?;
    if !from.exists() {
        return Err(BackupError::Missing(from.to_path_buf()));
    }
    if let (Ok(a), Ok(b)) = (from.canonicalize(), target.canonicalize()) {
        if a == b {
            return Err(BackupError::SameFile(a));
        }
    }
    let busy = args.sqlite_busy_timeout_ms;
    let mut backup = open(from, Access::ReadOnly, busy)?;
    let before = check_nicehr(&mut backup, from)?;
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    // Held until the new file is in place, so no server starts on a half-restored
    // directory (it would find no database and create an empty one).
    let _exclusive = match lock_exclusive(&target)? {
        Some(lock) => Some(lock),
        None if when_in_use == WhenInUse::Proceed => None,
        None => return Err(BackupError::InUse(target)),
    };
    let staged = Scratch::beside(&target, "restore")?;
    vacuum_into(&mut backup, staged.path())?;
    drop(backup);
    let staged_path = staged
        .path()
        .to_str()
        .ok_or_else(|| BackupError::Missing(staged.path().to_path_buf()))?
        .to_string();
    migrate_sqlite(&staged_path, busy)?;
    let mut check = open(staged.path(), Access::ReadOnly, busy)?;
    let after = check_nicehr(&mut check, staged.path())?;
    drop(check);
    sync_file(staged.path())?;
    let replaced = set_aside(&target)?;
    std::fs::rename(staged.path(), &target).map_err(io(&target))?;
    drop(staged);
    sync_parent(&target)?;
    Ok(RestoreReport {
        replaced,
        migrated: after.into_iter().filter(|v| !before.contains(v)).collect(),
    })
}

fn database_path(args: &DatabaseArgs) -> Result<PathBuf, BackupError> {
    match Backend::of(&args.database_url)? {
        Backend::Sqlite => Ok(PathBuf::from(sqlite_path(&args.database_url))),
        Backend::Postgres => Err(BackupError::NotSqlite),
    }
}

/// Moves the current database and its write-ahead log out of the way under one new
/// name, so they stay a consistent pair. The `-shm` index is rebuilt from the log,
/// and a stale one beside the restored file would describe the wrong log.
fn set_aside(target: &Path) -> Result<Option<PathBuf>, BackupError> {
    let shm = sidecar(target, "-shm");
    if shm.exists() {
        std::fs::remove_file(&shm).map_err(io(&shm))?;
    }
    if !target.exists() {
        return Ok(None);
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Two restores within one second must not put the second aside over the first.
    let aside = (0u32..)
        .map(|n| match n {
            0 => target.with_file_name(format!("{name}.replaced-{stamp}")),
            n => target.with_file_name(format!("{name}.replaced-{stamp}-{n}")),
        })
        .find(|candidate| !candidate.exists() && !sidecar(candidate, "-wal").exists())
        .unwrap_or_else(|| target.with_file_name(format!("{name}.replaced-{stamp}")));
    std::fs::rename(target, &aside).map_err(io(target))?;
    let wal = sidecar(target, "-wal");
    if wal.exists() {
        let aside_wal = sidecar(&aside, "-wal");
        std::fs::rename(&wal, &aside_wal).map_err(io(&wal))?;
    }
    Ok(Some(aside))
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

fn lock_path(database: &Path) -> PathBuf {
    sidecar(database, ".lock")
}

fn open_lock(database: &Path) -> Result<File, BackupError> {
    let path = lock_path(database);
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path))
}

/// The shared lock every process holds while it has the database open.
pub(crate) fn hold_shared(database: &Path) -> Result<Arc<File>, BackupError> {
    let file = open_lock(database)?;
    match file.try_lock_shared() {
        Ok(()) => Ok(Arc::new(file)),
        Err(TryLockError::WouldBlock) => Err(BackupError::Restoring(database.to_path_buf())),
        Err(TryLockError::Error(e)) => Err(io(&lock_path(database))(e)),
    }
}

/// The exclusive lock, or `None` when someone holds the database.
fn lock_exclusive(database: &Path) -> Result<Option<File>, BackupError> {
    let file = open_lock(database)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(io(&lock_path(database))(e)),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadWrite,
    /// Never writes to the file, not even to recover or checkpoint its log: a backup
    /// being restored must stay as it was.
    ReadOnly,
}

fn open(
    path: &Path,
    access: Access,
    busy_timeout_ms: u64,
) -> Result<SqliteConnection, BackupError> {
    let mode = match access {
        Access::ReadWrite => "rw",
        Access::ReadOnly => "ro",
    };
    let uri = format!("file:{}?mode={mode}", uri_path(path));
    let mut conn = SqliteConnection::establish(&uri).map_err(|e| BackupError::NotNicehr {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    conn.batch_execute(&format!("PRAGMA busy_timeout = {busy_timeout_ms};"))
        .map_err(DbError::from)?;
    Ok(conn)
}

/// A path as SQLite's URI filenames want it: `%`, `?` and `#` escaped.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

#[derive(QueryableByName)]
struct QuickCheck {
    #[diesel(sql_type = Text)]
    quick_check: String,
}

#[derive(QueryableByName)]
struct AppliedMigration {
    #[diesel(sql_type = Text)]
    version: String,
}

/// The file is a sound SQLite database whose migrations are ours: the first one at
/// least, and none this binary does not know (a backup from a newer version).
/// Returns the applied versions, oldest first.
fn check_nicehr(conn: &mut SqliteConnection, path: &Path) -> Result<Vec<String>, BackupError> {
    let not_ours = |reason: String| BackupError::NotNicehr {
        path: path.to_path_buf(),
        reason,
    };
    let check: Vec<QuickCheck> = diesel::sql_query("PRAGMA quick_check")
        .load(conn)
        .map_err(|e| not_ours(e.to_string()))?;
    if check.len() != 1 || check[0].quick_check != "ok" {
        let problems: Vec<&str> = check
            .iter()
            .map(|c| c.quick_check.as_str())
            .take(3)
            .collect();
        return Err(not_ours(format!("it is damaged ({})", problems.join("; "))));
    }
    let applied: Vec<AppliedMigration> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations ORDER BY version")
            .load(conn)
            .map_err(|_| not_ours("it has no migration history".into()))?;
    let applied: Vec<String> = applied.into_iter().map(|m| m.version).collect();
    let known: Vec<String> =
        MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE_MIGRATIONS)
            .map_err(|e| DbError::Migration(e.to_string()))?
            .iter()
            .map(|m| m.name().version().to_string())
            .collect();
    if let Some(unknown) = applied.iter().find(|v| !known.contains(v)) {
        return Err(not_ours(format!(
            "migration {unknown} is unknown to this nicehr-support (is the backup from a newer version?)"
        )));
    }
    match known.first() {
        Some(first) if applied.contains(first) => Ok(applied),
        _ => Err(not_ours("the NICEHR schema was never applied to it".into())),
    }
}

fn vacuum_into(conn: &mut SqliteConnection, to: &Path) -> Result<(), BackupError> {
    let target = to
        .to_str()
        .ok_or_else(|| BackupError::Missing(to.to_path_buf()))?
        .to_string();
    diesel::sql_query("VACUUM INTO ?")
        .bind::<Text, _>(target)
        .execute(conn)
        .map_err(DbError::from)?;
    Ok(())
}

fn sync_file(path: &Path) -> Result<(), BackupError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))
}

/// A rename is only durable once the directory holding it is written out.
fn sync_parent(path: &Path) -> Result<(), BackupError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    sync_file(&parent)
}

/// A file being written next to its destination (same file system, so the final
/// rename is atomic), removed again if anything fails before it is moved.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn beside(destination: &Path, purpose: &str) -> Result<Scratch, BackupError> {
        let name = destination
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| BackupError::Missing(destination.to_path_buf()))?;
        let path = destination.with_file_name(format!(".{name}.{purpose}-{}", std::process::id()));
        let scratch = Scratch { path };
        scratch.remove();
        Ok(scratch)
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(sidecar(&self.path, suffix));
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_paths_escape_what_sqlite_would_read_as_query_or_fragment() {
        assert_eq!(uri_path(Path::new("/a b/c.db")), "/a b/c.db");
        assert_eq!(uri_path(Path::new("/x?y#z%.db")), "/x%3fy%23z%25.db");
    }

    #[test]
    fn sidecars_sit_beside_the_database() {
        assert_eq!(
            sidecar(Path::new("/var/lib/n/nicehr.db"), "-wal"),
            PathBuf::from("/var/lib/n/nicehr.db-wal")
        );
        assert_eq!(
            lock_path(Path::new("data/nicehr.db")),
            PathBuf::from("data/nicehr.db.lock")
        );
    }
}
