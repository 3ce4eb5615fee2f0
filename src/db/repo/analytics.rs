//! Reporting queries: the aggregation behind `GET /api/support/analytics` and the rows
//! of `GET /api/support/history.csv`. Everything is aggregated in the database, one
//! query per figure or fewer, inside one read-only transaction so the figures agree
//! with each other. Definitions: [`crate::analytics`].
//!
//! The two backends differ only where time zones and percentiles are concerned:
//! PostgreSQL buckets by local hour and day itself (`AT TIME ZONE`) and has
//! `percentile_cont`; SQLite has no time-zone database, so it returns UTC
//! quarter-hour slots that [`crate::analytics::local_buckets`] shifts with chrono-tz,
//! and it finds each percentile with one ordered `LIMIT 2 OFFSET k` query.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::dsl::{count_star, min, sql};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Double, Integer, Nullable, Text, Timestamp};
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::db::repo::sessions::HistoryFilter;
use crate::db::schema::{consultant_status_log, hospitals, support_sessions, users};
use crate::db::{Backend, Db, DbError, DbResult};
use crate::model::stats::{interpolate, percentile_position, SLOT_SECONDS};

/// What one report covers; `from`/`to`/`now` are UTC like every stored timestamp.
#[derive(Debug, Clone)]
pub struct Scope {
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
    pub now: NaiveDateTime,
    pub hospital_id: Option<i64>,
    pub department: Option<String>,
    /// IANA zone name, for PostgreSQL's `AT TIME ZONE`.
    pub timezone: String,
}

/// The single-row figures of the window (see the column list in [`TOTALS`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub requests: i64,
    pub waits: i64,
    pub avg_wait: Option<f64>,
    pub avg_duration: Option<f64>,
    pub completed: i64,
    pub resolved: i64,
    pub rating_avg: Option<f64>,
    pub service_met: i64,
    pub service_due: i64,
    pub abandoned: i64,
}

/// Requests and waits of one UTC slot of [`SLOT_SECONDS`] (SQLite).
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// Seconds since the epoch divided by `SLOT_SECONDS`.
    pub slot: i64,
    pub requests: i64,
    pub wait_sum: Option<i64>,
    pub waits: i64,
}

/// Requests and waits of one local day (PostgreSQL).
#[derive(Debug, Clone, PartialEq)]
pub struct LocalDay {
    pub day: NaiveDate,
    pub requests: i64,
    pub wait_sum: Option<i64>,
    pub waits: i64,
}

/// Time buckets for peak hours and wait by day, in whichever form the backend can give.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeBuckets {
    /// Already local: (hour 0..23, requests) and per-day totals.
    Local {
        hours: Vec<(i32, i64)>,
        days: Vec<LocalDay>,
    },
    /// UTC slots still to be shifted into the report's zone.
    UtcSlots(Vec<Slot>),
}

/// A consultant who accepted at least one request in the scope and window.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsultantSessions {
    pub consultant_id: i64,
    pub completed: i64,
    pub rating_avg: Option<f64>,
}

/// Everything the report is computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Raw {
    pub totals: Totals,
    pub wait_p50: Option<f64>,
    pub wait_p90: Option<f64>,
    pub oldest_pending: Option<NaiveDateTime>,
    pub by_department: Vec<(String, i64)>,
    pub by_hospital: Vec<(i64, String, i64)>,
    pub buckets: TimeBuckets,
    pub consultants: Vec<ConsultantSessions>,
    /// (consultant, "available" | "busy", seconds inside the window).
    pub status_time: Vec<(i64, String, f64)>,
    pub names: HashMap<i64, String>,
}

/// The window's single-row figures. `COUNT(CASE WHEN … THEN 1 END)` counts the rows
/// meeting a condition (and is 0, not NULL, on an empty window); `AVG` skips NULLs, so
/// the wait average covers accepted sessions only. The one bind is "now", for requests
/// still pending past their deadline.
const TOTALS: (&str, &str) = (
    "COUNT(*), \
     COUNT(wait_time_seconds), \
     AVG(CAST(wait_time_seconds AS DOUBLE PRECISION)), \
     AVG(CASE WHEN status = 'completed' THEN CAST(duration_seconds AS DOUBLE PRECISION) END), \
     COUNT(CASE WHEN status = 'completed' THEN 1 END), \
     COUNT(CASE WHEN status = 'completed' AND resolved THEN 1 END), \
     AVG(CAST(rating AS DOUBLE PRECISION)), \
     COUNT(CASE WHEN accepted_at IS NOT NULL AND accepted_at <= response_deadline THEN 1 END), \
     COUNT(CASE WHEN accepted_at IS NOT NULL \
                  OR (status = 'pending' AND response_deadline < ",
    ") \
                  OR (status = 'cancelled' AND accepted_at IS NULL AND ended_at > response_deadline) \
                THEN 1 END), \
     COUNT(CASE WHEN status = 'cancelled' AND consultant_id IS NULL THEN 1 END)",
);

type TotalsRow = (
    i64,
    i64,
    Option<f64>,
    Option<f64>,
    i64,
    i64,
    Option<f64>,
    i64,
    i64,
    i64,
);
type TotalsSql = (
    BigInt,
    BigInt,
    Nullable<Double>,
    Nullable<Double>,
    BigInt,
    BigInt,
    Nullable<Double>,
    BigInt,
    BigInt,
    BigInt,
);

/// `$query` limited to the scope's window, hospital and department, boxed for the
/// connection's backend.
macro_rules! in_window {
    ($query:expr, $s:expr) => {{
        let mut q = $query
            .filter(support_sessions::created_at.ge($s.from))
            .filter(support_sessions::created_at.lt($s.to))
            .into_boxed();
        if let Some(hospital) = $s.hospital_id {
            q = q.filter(support_sessions::hospital_id.eq(hospital));
        }
        if let Some(department) = &$s.department {
            q = q.filter(support_sessions::department.eq(department.as_str()));
        }
        q
    }};
}

/// Gathers every figure of one report.
pub async fn gather(db: &Db, s: &Scope) -> DbResult<Raw> {
    let postgres = db.backend() == Backend::Postgres;
    // Time in the status log that overlaps the window; an open interval runs to now.
    let log_to = s.to.min(s.now);
    db_run!(db, read, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            if postgres {
                // One snapshot for every query below (SQLite's read transaction already is).
                diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(conn)
                    .await?;
            }

            let row: TotalsRow = in_window!(support_sessions::table, s)
                .select(
                    sql::<TotalsSql>(TOTALS.0)
                        .bind::<Timestamp, _>(s.now)
                        .sql(TOTALS.1),
                )
                .get_result(conn)
                .await?;
            let totals = Totals {
                requests: row.0,
                waits: row.1,
                avg_wait: row.2,
                avg_duration: row.3,
                completed: row.4,
                resolved: row.5,
                rating_avg: row.6,
                service_met: row.7,
                service_due: row.8,
                abandoned: row.9,
            };

            let (wait_p50, wait_p90) = if postgres {
                in_window!(support_sessions::table, s)
                    .select(sql::<(Nullable<Double>, Nullable<Double>)>(
                        "percentile_cont(0.5) WITHIN GROUP (ORDER BY wait_time_seconds), \
                         percentile_cont(0.9) WITHIN GROUP (ORDER BY wait_time_seconds)",
                    ))
                    .get_result(conn)
                    .await?
            } else {
                let mut found = [None, None];
                for (slot, p) in found.iter_mut().zip([0.5, 0.9]) {
                    let Some((offset, fraction)) = percentile_position(totals.waits, p) else {
                        continue;
                    };
                    let pair: Vec<Option<i64>> = in_window!(support_sessions::table, s)
                        .filter(support_sessions::wait_time_seconds.is_not_null())
                        .select(support_sessions::wait_time_seconds)
                        .order(support_sessions::wait_time_seconds.asc())
                        .limit(2)
                        .offset(offset)
                        .load(conn)
                        .await?;
                    let mut values = pair.into_iter().flatten().map(|v| v as f64);
                    if let Some(lower) = values.next() {
                        *slot = Some(interpolate(lower, values.next(), fraction));
                    }
                }
                (found[0], found[1])
            };

            // Live: the oldest request waiting now, whatever the window.
            let mut pending = support_sessions::table
                .filter(support_sessions::status.eq("pending"))
                .into_boxed();
            if let Some(hospital) = s.hospital_id {
                pending = pending.filter(support_sessions::hospital_id.eq(hospital));
            }
            if let Some(department) = &s.department {
                pending = pending.filter(support_sessions::department.eq(department.as_str()));
            }
            let oldest_pending: Option<NaiveDateTime> = pending
                .select(min(support_sessions::created_at))
                .get_result(conn)
                .await?;

            let by_department: Vec<(String, i64)> = in_window!(
                support_sessions::table
                    .group_by(support_sessions::department)
                    .select((support_sessions::department, count_star())),
                s
            )
            .load(conn)
            .await?;

            let by_hospital: Vec<(i64, String, i64)> = in_window!(
                support_sessions::table
                    .inner_join(hospitals::table)
                    .group_by((hospitals::id, hospitals::name))
                    .select((hospitals::id, hospitals::name, count_star())),
                s
            )
            .load(conn)
            .await?;

            let buckets = if postgres {
                let local = "(created_at AT TIME ZONE 'UTC') AT TIME ZONE ";
                let hours: Vec<(i32, i64)> = in_window!(
                    support_sessions::table
                        .group_by(sql::<Integer>("1"))
                        .select(
                            sql::<(Integer, BigInt)>(&format!("CAST(EXTRACT(HOUR FROM {local}"))
                                .bind::<Text, _>(s.timezone.as_str())
                                .sql(") AS INTEGER), COUNT(*)"),
                        ),
                    s
                )
                .load(conn)
                .await?;
                let days: Vec<(NaiveDate, i64, Option<i64>, i64)> = in_window!(
                    support_sessions::table.group_by(sql::<Date>("1")).select(
                        sql::<(Date, BigInt, Nullable<BigInt>, BigInt)>(&format!("CAST({local}"))
                            .bind::<Text, _>(s.timezone.as_str())
                            .sql(
                                " AS DATE), COUNT(*), CAST(SUM(wait_time_seconds) AS BIGINT), \
                                 COUNT(wait_time_seconds)",
                            ),
                    ),
                    s
                )
                .load(conn)
                .await?;
                TimeBuckets::Local {
                    hours,
                    days: days
                        .into_iter()
                        .map(|(day, requests, wait_sum, waits)| LocalDay {
                            day,
                            requests,
                            wait_sum,
                            waits,
                        })
                        .collect(),
                }
            } else {
                let slots: Vec<(i64, i64, Option<i64>, i64)> = in_window!(
                    support_sessions::table
                        .group_by(sql::<BigInt>("1"))
                        .select(sql::<(BigInt, BigInt, Nullable<BigInt>, BigInt)>(&format!(
                            "unixepoch(created_at) / {SLOT_SECONDS}, COUNT(*), \
                             SUM(wait_time_seconds), COUNT(wait_time_seconds)"
                        ))),
                    s
                )
                .load(conn)
                .await?;
                TimeBuckets::UtcSlots(
                    slots
                        .into_iter()
                        .map(|(slot, requests, wait_sum, waits)| Slot {
                            slot,
                            requests,
                            wait_sum,
                            waits,
                        })
                        .collect(),
                )
            };

            let consultants: Vec<(Option<i64>, i64, Option<f64>)> = in_window!(
                support_sessions::table
                    .filter(support_sessions::consultant_id.is_not_null())
                    .group_by(support_sessions::consultant_id)
                    .select((
                        support_sessions::consultant_id,
                        sql::<(BigInt, Nullable<Double>)>(
                            "COUNT(CASE WHEN status = 'completed' THEN 1 END), \
                             AVG(CAST(rating AS DOUBLE PRECISION))",
                        ),
                    )),
                s
            )
            .load::<(Option<i64>, (i64, Option<f64>))>(conn)
            .await?
            .into_iter()
            .map(|(id, (completed, rating))| (id, completed, rating))
            .collect();
            let consultants: Vec<ConsultantSessions> = consultants
                .into_iter()
                .filter_map(|(id, completed, rating_avg)| {
                    id.map(|consultant_id| ConsultantSessions {
                        consultant_id,
                        completed,
                        rating_avg,
                    })
                })
                .collect();

            let status_time: Vec<(i64, String, f64)> = if log_to > s.from {
                // Seconds of each interval inside [from, log_to), summed per status.
                let overlap = if postgres {
                    sql::<Double>("CAST(SUM(EXTRACT(EPOCH FROM (LEAST(COALESCE(ended_at, ")
                        .bind::<Timestamp, _>(log_to)
                        .sql("), ")
                        .bind::<Timestamp, _>(log_to)
                        .sql(") - GREATEST(started_at, ")
                        .bind::<Timestamp, _>(s.from)
                        .sql(")))) AS DOUBLE PRECISION)")
                } else {
                    sql::<Double>("SUM(unixepoch(MIN(COALESCE(ended_at, ")
                        .bind::<Timestamp, _>(log_to)
                        .sql("), ")
                        .bind::<Timestamp, _>(log_to)
                        .sql("), 'subsec') - unixepoch(MAX(started_at, ")
                        .bind::<Timestamp, _>(s.from)
                        .sql("), 'subsec'))")
                };
                consultant_status_log::table
                    .filter(consultant_status_log::status.eq_any(["available", "busy"]))
                    .filter(consultant_status_log::started_at.lt(log_to))
                    .filter(
                        consultant_status_log::ended_at
                            .is_null()
                            .or(consultant_status_log::ended_at.gt(s.from)),
                    )
                    .group_by((
                        consultant_status_log::consultant_id,
                        consultant_status_log::status,
                    ))
                    .select((
                        consultant_status_log::consultant_id,
                        consultant_status_log::status,
                        overlap,
                    ))
                    .load(conn)
                    .await?
            } else {
                Vec::new()
            };

            let mut ids: Vec<i64> = consultants.iter().map(|c| c.consultant_id).collect();
            ids.extend(status_time.iter().map(|(id, _, _)| *id));
            ids.sort_unstable();
            ids.dedup();
            let names: HashMap<i64, String> = users::table
                .filter(users::id.eq_any(&ids))
                .select((users::id, users::name))
                .load::<(i64, String)>(conn)
                .await?
                .into_iter()
                .collect();

            Ok(Raw {
                totals,
                wait_p50,
                wait_p90,
                oldest_pending,
                by_department,
                by_hospital,
                buckets,
                consultants,
                status_time,
                names,
            })
        })
        .await
    })
}

/// One row of the CSV export: what a spreadsheet needs, and deliberately none of the
/// free text (issue summary, resolution notes, feedback) that may hold patient data.
#[derive(Debug, Clone, Queryable)]
pub struct ExportRow {
    pub id: i64,
    pub created_at: NaiveDateTime,
    pub hospital_id: i64,
    pub hospital_name: String,
    pub department: String,
    pub urgency: String,
    pub status: String,
    pub requester_id: i64,
    pub consultant_id: Option<i64>,
    pub accepted_at: Option<NaiveDateTime>,
    pub started_at: Option<NaiveDateTime>,
    pub ended_at: Option<NaiveDateTime>,
    pub wait_time_seconds: Option<i64>,
    pub duration_seconds: Option<i64>,
    pub resolved: Option<bool>,
    pub rating: Option<i32>,
    pub match_tier: Option<String>,
}

/// Rows for the CSV export with the history filters (scope already applied), newest
/// first, at most `f.limit` of them.
pub async fn export(db: &Db, f: &HistoryFilter) -> DbResult<Vec<ExportRow>> {
    db_run!(db, read, |conn| {
        let query = support_sessions::table
            .inner_join(hospitals::table)
            .select((
                support_sessions::id,
                support_sessions::created_at,
                support_sessions::hospital_id,
                hospitals::name,
                support_sessions::department,
                support_sessions::urgency,
                support_sessions::status,
                support_sessions::requester_id,
                support_sessions::consultant_id,
                support_sessions::accepted_at,
                support_sessions::started_at,
                support_sessions::ended_at,
                support_sessions::wait_time_seconds,
                support_sessions::duration_seconds,
                support_sessions::resolved,
                support_sessions::rating,
                support_sessions::match_tier,
            ))
            .into_boxed();
        let query = crate::db::repo::sessions::filter_sessions!(query, f);
        Ok(query
            .order(support_sessions::id.desc())
            .limit(f.limit)
            .load::<ExportRow>(conn)
            .await?)
    })
}

/// A finished (or deliberately unfinished) session written as history, for tests,
/// benchmarks and imports of past data. The live server never calls this: its
/// sessions go through the lifecycle in [`super::sessions`].
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = support_sessions)]
pub struct HistoricSession {
    pub hospital_id: i64,
    pub requester_id: i64,
    pub consultant_id: Option<i64>,
    pub department: String,
    pub urgency: String,
    pub status: String,
    pub issue_summary: String,
    pub resolved: Option<bool>,
    pub created_at: NaiveDateTime,
    pub response_deadline: NaiveDateTime,
    pub accepted_at: Option<NaiveDateTime>,
    pub started_at: Option<NaiveDateTime>,
    pub ended_at: Option<NaiveDateTime>,
    pub wait_time_seconds: Option<i64>,
    pub duration_seconds: Option<i64>,
    pub rating: Option<i32>,
    pub feedback: Option<String>,
    pub match_tier: Option<String>,
    pub cancelled_by: Option<i64>,
}

/// A consultant status-log interval written as history (see [`HistoricSession`]).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = consultant_status_log)]
pub struct HistoricStatus {
    pub consultant_id: i64,
    pub status: String,
    pub started_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
}

/// Inserts past sessions inside one transaction; returns their ids in order. Row by
/// row: diesel-async cannot batch-insert on SQLite, and one transaction keeps even
/// 100,000 rows to seconds.
pub async fn import_sessions(db: &Db, rows: &[HistoricSession]) -> DbResult<Vec<i64>> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let mut ids = Vec::with_capacity(rows.len());
            for row in rows {
                let id: i64 = diesel::insert_into(support_sessions::table)
                    .values(row)
                    .returning(support_sessions::id)
                    .get_result(conn)
                    .await?;
                ids.push(id);
            }
            Ok(ids)
        })
        .await
    })
}

/// Inserts past status-log intervals inside one transaction (see [`import_sessions`]).
pub async fn import_status_log(db: &Db, rows: &[HistoricStatus]) -> DbResult<()> {
    db_run!(db, write, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            for row in rows {
                diesel::insert_into(consultant_status_log::table)
                    .values(row)
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
        .await
    })
}
