//! Retention of patient text as stored: each hospital's policy, erasing the free
//! text of ended sessions in bounded transactions, and the record of each pass.
//! The rules (which policy applies, the cutoff) are `crate::retention`'s.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::db::schema::{audit_log, hospitals, retention_runs, support_sessions};
use crate::db::{Db, DbError, DbResult};
use crate::model::{
    HospitalId, RetentionRunId, RetentionTrigger, SessionId, SessionStatus, UserId,
};

/// What an erased issue summary is stored as: the column is NOT NULL, and requests
/// refuse an empty summary, so `''` is never a person's text. Readers go by
/// `text_erased_at`, not by this.
pub const ERASED_SUMMARY: &str = "";

/// Audit action of a pass that erased text of a hospital's sessions.
pub const AUDIT_ERASED: &str = "retention_erased";
/// Audit action of an admin changing a hospital's retention.
pub const AUDIT_POLICY_SET: &str = "retention_policy_set";

/// A hospital and its own retention (None: the server's default applies).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = hospitals)]
pub struct HospitalPolicyRow {
    pub id: HospitalId,
    pub name: String,
    pub retention_days: Option<i32>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = retention_runs)]
pub struct RetentionRunRow {
    pub id: RetentionRunId,
    pub hospital_id: HospitalId,
    pub started_at: NaiveDateTime,
    pub finished_at: NaiveDateTime,
    pub retention_days: i32,
    pub cutoff: NaiveDateTime,
    pub sessions_erased: i64,
    pub started_by: RetentionTrigger,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = retention_runs)]
pub struct NewRetentionRun {
    pub hospital_id: HospitalId,
    pub started_at: NaiveDateTime,
    pub finished_at: NaiveDateTime,
    pub retention_days: i32,
    pub cutoff: NaiveDateTime,
    pub sessions_erased: i64,
    pub started_by: RetentionTrigger,
}

/// Every hospital with its own retention, in id order.
pub async fn policies(db: &Db) -> DbResult<Vec<HospitalPolicyRow>> {
    db_run!(db, read, |conn| {
        Ok(hospitals::table
            .order(hospitals::id)
            .select(HospitalPolicyRow::as_select())
            .load(conn)
            .await?)
    })
}

/// Sets a hospital's own retention and audits who did it, in one transaction.
/// None when there is no such hospital (nothing written).
pub async fn set_policy(
    db: &Db,
    hospital: HospitalId,
    days: Option<i32>,
    by: UserId,
    at: NaiveDateTime,
) -> DbResult<Option<HospitalPolicyRow>> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let row: Option<HospitalPolicyRow> = diesel::update(hospitals::table.find(hospital))
                .set(hospitals::retention_days.eq(days))
                .returning(HospitalPolicyRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            if row.is_some() {
                diesel::insert_into(audit_log::table)
                    .values((
                        audit_log::user_id.eq(Some(by)),
                        audit_log::action.eq(AUDIT_POLICY_SET),
                        audit_log::target_type.eq("hospital"),
                        audit_log::target_id.eq(Some(hospital.0)),
                        audit_log::created_at.eq(at),
                    ))
                    .execute(conn)
                    .await?;
            }
            Ok(row)
        })
        .await
    })
}

/// Erases the free text of up to `limit` of the hospital's sessions that ended
/// before `cutoff` and still hold some, oldest first, in one transaction; returns
/// how many. Text written after an earlier erasure (a late rating's feedback, a
/// wrap-up's notes) is found again, since the row still holds text. The figures
/// (times, durations, rating, tier, resolved) are not touched.
pub async fn erase_batch(
    db: &Db,
    hospital: HospitalId,
    cutoff: NaiveDateTime,
    limit: i64,
    at: NaiveDateTime,
) -> DbResult<i64> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let ids: Vec<SessionId> = support_sessions::table
                .filter(support_sessions::hospital_id.eq(hospital))
                .filter(support_sessions::status.eq_any(SessionStatus::FINISHED))
                .filter(support_sessions::ended_at.lt(cutoff))
                .filter(
                    support_sessions::text_erased_at
                        .is_null()
                        .or(support_sessions::resolution_notes.is_not_null())
                        .or(support_sessions::feedback.is_not_null()),
                )
                .order((support_sessions::ended_at, support_sessions::id))
                .limit(limit)
                .select(support_sessions::id)
                .load(conn)
                .await?;
            if ids.is_empty() {
                return Ok(0);
            }
            let erased =
                diesel::update(support_sessions::table.filter(support_sessions::id.eq_any(&ids)))
                    .set((
                        support_sessions::issue_summary.eq(ERASED_SUMMARY),
                        support_sessions::resolution_notes.eq(None::<String>),
                        support_sessions::feedback.eq(None::<String>),
                        support_sessions::text_erased_at.eq(Some(at)),
                    ))
                    .execute(conn)
                    .await?;
            Ok(erased as i64)
        })
        .await
    })
}

/// Records one hospital's share of a pass; a pass that erased anything is also an
/// audit entry (by nobody: the server did it), written in the same transaction.
pub async fn record_run(db: &Db, run: &NewRetentionRun) -> DbResult<RetentionRunRow> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let row = diesel::insert_into(retention_runs::table)
                .values(run)
                .returning(RetentionRunRow::as_returning())
                .get_result(conn)
                .await?;
            if run.sessions_erased > 0 {
                diesel::insert_into(audit_log::table)
                    .values((
                        audit_log::user_id.eq(None::<UserId>),
                        audit_log::action.eq(AUDIT_ERASED),
                        audit_log::target_type.eq("hospital"),
                        audit_log::target_id.eq(Some(run.hospital_id.0)),
                        audit_log::created_at.eq(run.finished_at),
                    ))
                    .execute(conn)
                    .await?;
            }
            Ok(row)
        })
        .await
    })
}

/// The hospital's latest run, if it ever had one.
pub async fn last_run(db: &Db, hospital: HospitalId) -> DbResult<Option<RetentionRunRow>> {
    db_run!(db, read, |conn| {
        Ok(retention_runs::table
            .filter(retention_runs::hospital_id.eq(hospital))
            .order(retention_runs::id.desc())
            .select(RetentionRunRow::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// The hospital's latest runs, newest first.
pub async fn runs_of(db: &Db, hospital: HospitalId, limit: i64) -> DbResult<Vec<RetentionRunRow>> {
    db_run!(db, read, |conn| {
        Ok(retention_runs::table
            .filter(retention_runs::hospital_id.eq(hospital))
            .order(retention_runs::id.desc())
            .limit(limit)
            .select(RetentionRunRow::as_select())
            .load(conn)
            .await?)
    })
}
