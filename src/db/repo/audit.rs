use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::{audit_log, users};
use crate::db::{Db, DbResult};
use crate::model::UserId;

/// Records who read or changed what. Only ids and an action name: never the patient
/// data itself.
pub async fn record(
    db: &Db,
    user_id: Option<UserId>,
    action: &str,
    target_type: &str,
    target_id: Option<i64>,
) -> DbResult<()> {
    record_entry(
        db,
        &Entry {
            by: user_id,
            action,
            target_type,
            target_id,
            detail: None,
            at: super::now(),
        },
    )
    .await
}

/// One audit row to write: who, what, on what, when, and (for changes) which fields.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub by: Option<UserId>,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: Option<i64>,
    /// JSON naming the changed fields and their new non-personal values (roles,
    /// plans, flags, ids); never patient text, never a password.
    pub detail: Option<String>,
    pub at: NaiveDateTime,
}

/// Inserts an audit row inside the caller's transaction, so a change and its audit
/// row commit together or not at all.
macro_rules! insert_audit {
    ($conn:expr, $entry:expr) => {{
        use $crate::db::schema::audit_log;
        let entry: &$crate::db::repo::audit::Entry = $entry;
        diesel::insert_into(audit_log::table)
            .values((
                audit_log::user_id.eq(entry.by),
                audit_log::action.eq(entry.action),
                audit_log::target_type.eq(entry.target_type),
                audit_log::target_id.eq(entry.target_id),
                audit_log::detail.eq(entry.detail.as_deref()),
                audit_log::created_at.eq(entry.at),
            ))
            .execute($conn)
            .await?;
    }};
}
pub(crate) use insert_audit;

pub async fn record_entry(db: &Db, entry: &Entry<'_>) -> DbResult<()> {
    db_run!(db, write, |conn| {
        insert_audit!(conn, entry);
        Ok(())
    })
}

pub async fn count_for(db: &Db, target_type: &str, target_id: i64) -> DbResult<i64> {
    db_run!(db, read, |conn| {
        Ok(audit_log::table
            .filter(audit_log::target_type.eq(target_type))
            .filter(audit_log::target_id.eq(target_id))
            .count()
            .get_result(conn)
            .await?)
    })
}

/// An audit row as read back, with the name of the person who acted.
#[derive(Debug, Clone, Queryable)]
pub struct AuditRow {
    pub id: i64,
    pub user_id: Option<UserId>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<i64>,
    pub created_at: NaiveDateTime,
    pub detail: Option<String>,
    pub user_name: Option<String>,
}

/// Which audit rows to read: newest first, before the cursor.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub user_id: Option<UserId>,
    pub action: Option<String>,
    /// Rows about this target (`support_session` for a session id).
    pub target: Option<(String, i64)>,
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
    /// Only rows with a smaller id (the previous page's `next_cursor`).
    pub before: Option<i64>,
    pub limit: i64,
}

pub async fn search(db: &Db, f: &AuditFilter) -> DbResult<Vec<AuditRow>> {
    db_run!(db, read, |conn| {
        let mut query = audit_log::table
            .left_join(users::table.on(users::id.nullable().eq(audit_log::user_id)))
            .select((
                audit_log::id,
                audit_log::user_id,
                audit_log::action,
                audit_log::target_type,
                audit_log::target_id,
                audit_log::created_at,
                audit_log::detail,
                users::name.nullable(),
            ))
            .into_boxed();
        if let Some(user_id) = f.user_id {
            query = query.filter(audit_log::user_id.eq(user_id));
        }
        if let Some(action) = &f.action {
            query = query.filter(audit_log::action.eq(action.as_str()));
        }
        if let Some((target_type, target_id)) = &f.target {
            query = query
                .filter(audit_log::target_type.eq(target_type.as_str()))
                .filter(audit_log::target_id.eq(*target_id));
        }
        if let Some(from) = f.from {
            query = query.filter(audit_log::created_at.ge(from));
        }
        if let Some(to) = f.to {
            query = query.filter(audit_log::created_at.lt(to));
        }
        if let Some(before) = f.before {
            query = query.filter(audit_log::id.lt(before));
        }
        Ok(query
            .order(audit_log::id.desc())
            .limit(f.limit)
            .load(conn)
            .await?)
    })
}
