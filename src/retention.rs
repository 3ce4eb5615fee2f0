//! Retention of patient text. After a hospital's retention (`RETENTION_DAYS`, or the
//! hospital's own), the free text of its ended sessions — issue summary, resolution
//! notes, rating feedback — is erased, while the figures stay: times, durations,
//! rating, resolved, match tier, department. Analytics and the CSV export read only
//! figures, so they report the same before and after.
//!
//! Where patient text lives: only in those three columns of `support_sessions`.
//! The event stream's payloads (`model::EventData`) carry none (the matcher's
//! reasons are built from departments and ranks), the audit log holds ids and
//! action names, and there is no chat or file store. So erasing the row's columns
//! erases everything, and nothing is written to the stream: the sessions concerned
//! ended long ago, nobody is watching them live, and a year's backlog as events
//! would flood every subscriber.
//!
//! Read back, an erased summary is `null` and `text_erased_at` says when
//! (`support::SessionView`). Text written after an erasure (a late rating's
//! feedback) is erased again by the next pass.
//!
//! A pass runs hospital by hospital, in batches of `RETENTION_BATCH_SIZE` sessions,
//! each batch its own transaction, so the single SQLite writer is never held for
//! long. Each hospital with retention on gets a `retention_runs` row per pass (the
//! job's heartbeat, shown by `GET /api/admin/retention`), and an audit entry when it
//! erased anything. Log lines carry ids and counts, never the text.

use std::time::Duration;

use chrono::NaiveDateTime;
use serde::Serialize;

use crate::config::{RetentionArgs, MAX_RETENTION_DAYS};
use crate::db::repo::retention::{
    self as store, HospitalPolicyRow, NewRetentionRun, RetentionRunRow,
};
use crate::db::{repo, Db, DbError, DbResult};
use crate::error::ApiError;
use crate::model::{HospitalId, RetentionRunId, RetentionTrigger, UserId};

/// Which retention applies to a hospital.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicySource {
    /// The hospital's own `retention_days`.
    Hospital,
    /// The server's `RETENTION_DAYS`.
    ServerDefault,
    /// Neither is set: text is kept.
    Off,
}

/// The retention in days that applies, and where it comes from. A hospital's own
/// setting wins over the server's; with neither, retention is off.
pub fn effective(own: Option<u32>, server_default: Option<u32>) -> (Option<u32>, PolicySource) {
    match (own, server_default) {
        (Some(days), _) => (Some(days), PolicySource::Hospital),
        (None, Some(days)) => (Some(days), PolicySource::ServerDefault),
        (None, None) => (None, PolicySource::Off),
    }
}

/// Sessions that ended before this lose their text. `days` is at most
/// `MAX_RETENTION_DAYS`, far inside chrono's range.
pub fn cutoff(now: NaiveDateTime, days: u32) -> NaiveDateTime {
    now - chrono::Duration::days(i64::from(days))
}

/// A retention as an admin sends it: `null` (use the server's default) or a whole
/// number of days from 0 to `MAX_RETENTION_DAYS`.
pub fn validate_days(days: Option<i64>) -> Result<Option<u32>, ApiError> {
    match days {
        None => Ok(None),
        Some(days) => u32::try_from(days)
            .ok()
            .filter(|d| *d <= MAX_RETENTION_DAYS)
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid(
                    "days",
                    format!(
                        "must be a whole number of days from 0 to {MAX_RETENTION_DAYS}, \
                         or null for the server's default"
                    ),
                )
            }),
    }
}

/// A stored day count; the storage CHECK keeps it in range.
fn stored_days(days: i32) -> DbResult<u32> {
    u32::try_from(days)
        .map_err(|_| DbError::Constraint(format!("retention_days {days} is out of range")))
}

/// One hospital's share of one pass, as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RunView {
    pub id: RetentionRunId,
    pub started_at: String,
    pub finished_at: String,
    /// The retention the pass applied.
    pub days: u32,
    /// Sessions that ended before this lost their text.
    pub cutoff: String,
    pub sessions_erased: i64,
    pub started_by: RetentionTrigger,
}

impl RunView {
    fn from_row(row: &RetentionRunRow) -> DbResult<RunView> {
        use crate::support::rfc3339;
        Ok(RunView {
            id: row.id,
            started_at: rfc3339(row.started_at),
            finished_at: rfc3339(row.finished_at),
            days: stored_days(row.retention_days)?,
            cutoff: rfc3339(row.cutoff),
            sessions_erased: row.sessions_erased,
            started_by: row.started_by,
        })
    }
}

/// A hospital's retention as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct HospitalRetention {
    pub hospital_id: HospitalId,
    pub name: String,
    /// The hospital's own setting; null when the server's default applies.
    pub days: Option<u32>,
    /// What the job applies; null when retention is off.
    pub effective_days: Option<u32>,
    pub source: PolicySource,
    pub last_run: Option<RunView>,
}

/// `GET /api/admin/retention`.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Overview {
    /// The server's `RETENTION_DAYS`; null when off.
    pub default_days: Option<u32>,
    /// How often the server's job runs a pass.
    pub sweep_secs: f64,
    pub max_days: u32,
    pub hospitals: Vec<HospitalRetention>,
}

async fn describe(
    db: &Db,
    args: &RetentionArgs,
    row: &HospitalPolicyRow,
) -> DbResult<HospitalRetention> {
    let own = row.retention_days.map(stored_days).transpose()?;
    let (effective_days, source) = effective(own, args.retention_days);
    let last_run = match store::last_run(db, row.id).await? {
        Some(run) => Some(RunView::from_row(&run)?),
        None => None,
    };
    Ok(HospitalRetention {
        hospital_id: row.id,
        name: row.name.clone(),
        days: own,
        effective_days,
        source,
        last_run,
    })
}

/// Every hospital's policy and last run.
pub async fn overview(db: &Db, args: &RetentionArgs) -> DbResult<Overview> {
    let mut hospitals = Vec::new();
    for row in store::policies(db).await? {
        hospitals.push(describe(db, args, &row).await?);
    }
    Ok(Overview {
        default_days: args.retention_days,
        sweep_secs: args.retention_sweep_secs,
        max_days: MAX_RETENTION_DAYS,
        hospitals,
    })
}

/// Sets (or, with None, clears) a hospital's own retention; audited. The next pass
/// applies it.
pub async fn set_policy(
    db: &Db,
    args: &RetentionArgs,
    hospital: HospitalId,
    days: Option<u32>,
    by: UserId,
) -> Result<HospitalRetention, ApiError> {
    // Bounded by MAX_RETENTION_DAYS, so it fits.
    let stored = days.map(|d| d.min(MAX_RETENTION_DAYS) as i32);
    let row = store::set_policy(db, hospital, stored, by, repo::now())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no hospital {hospital}")))?;
    tracing::info!(
        admin_id = by.0,
        hospital_id = hospital.0,
        days = ?days,
        "retention policy set"
    );
    Ok(describe(db, args, &row).await?)
}

/// One hospital's outcome in a pass.
#[derive(Debug, Clone, PartialEq)]
pub enum HospitalOutcome {
    /// Retention is off for it: nothing looked at, nothing recorded.
    Off,
    Ran(RunView),
    /// Storage failed part-way; `erased` sessions were done before (and recorded).
    Failed {
        erased: i64,
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct HospitalPass {
    pub hospital_id: HospitalId,
    pub outcome: HospitalOutcome,
}

/// What one pass did, hospital by hospital.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassReport {
    pub hospitals: Vec<HospitalPass>,
}

impl PassReport {
    pub fn sessions_erased(&self) -> i64 {
        self.hospitals
            .iter()
            .map(|h| match &h.outcome {
                HospitalOutcome::Off => 0,
                HospitalOutcome::Ran(run) => run.sessions_erased,
                HospitalOutcome::Failed { erased, .. } => *erased,
            })
            .sum()
    }

    pub fn failures(&self) -> usize {
        self.hospitals
            .iter()
            .filter(|h| matches!(h.outcome, HospitalOutcome::Failed { .. }))
            .count()
    }

    /// For the command line: one line per hospital, ids and counts only.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for h in &self.hospitals {
            let line = match &h.outcome {
                HospitalOutcome::Off => format!("hospital {}: retention off\n", h.hospital_id),
                HospitalOutcome::Ran(run) => format!(
                    "hospital {}: {} session(s) erased (retention {} day(s), ended before {})\n",
                    h.hospital_id, run.sessions_erased, run.days, run.cutoff
                ),
                HospitalOutcome::Failed { erased, error } => format!(
                    "hospital {}: FAILED after {erased} session(s): {error}\n",
                    h.hospital_id
                ),
            };
            out.push_str(&line);
        }
        out.push_str(&format!(
            "{} session(s) erased in total\n",
            self.sessions_erased()
        ));
        out
    }
}

/// Erases one hospital's text, batch by batch, until a batch comes back short.
/// On a failure, returns what was erased before it with the error.
async fn erase_hospital(
    db: &Db,
    hospital: HospitalId,
    cutoff: NaiveDateTime,
    batch: u32,
) -> Result<i64, (i64, DbError)> {
    let mut erased = 0;
    loop {
        match store::erase_batch(db, hospital, cutoff, i64::from(batch), repo::now()).await {
            Ok(n) => {
                erased += n;
                if n < i64::from(batch) {
                    return Ok(erased);
                }
                // Let the requests queued behind the writer in between.
                tokio::task::yield_now().await;
            }
            Err(e) => return Err((erased, e)),
        }
    }
}

/// One pass over every hospital. A hospital whose erasure fails is reported and
/// the others still run; only failing to list the hospitals fails the pass.
pub async fn run_pass(
    db: &Db,
    args: &RetentionArgs,
    trigger: RetentionTrigger,
) -> DbResult<PassReport> {
    let mut report = PassReport::default();
    for row in store::policies(db).await? {
        let own = row.retention_days.map(stored_days).transpose()?;
        let Some(days) = effective(own, args.retention_days).0 else {
            report.hospitals.push(HospitalPass {
                hospital_id: row.id,
                outcome: HospitalOutcome::Off,
            });
            continue;
        };
        let started_at = repo::now();
        let cut = cutoff(started_at, days);
        let (erased, failure) =
            match erase_hospital(db, row.id, cut, args.retention_batch_size).await {
                Ok(n) => (n, None),
                Err((n, e)) => (n, Some(e)),
            };
        let recorded = store::record_run(
            db,
            &NewRetentionRun {
                hospital_id: row.id,
                started_at,
                finished_at: repo::now(),
                retention_days: days as i32,
                cutoff: cut,
                sessions_erased: erased,
                started_by: trigger,
            },
        )
        .await;
        let outcome = match (failure, recorded) {
            (None, Ok(run)) => {
                if erased > 0 {
                    tracing::info!(
                        hospital_id = row.id.0,
                        sessions = erased,
                        days,
                        "retention erased session text"
                    );
                }
                HospitalOutcome::Ran(RunView::from_row(&run)?)
            }
            (Some(e), _) | (None, Err(e)) => {
                tracing::warn!(
                    hospital_id = row.id.0,
                    sessions = erased,
                    error = %e,
                    "retention pass failed for a hospital"
                );
                HospitalOutcome::Failed {
                    erased,
                    error: e.to_string(),
                }
            }
        };
        report.hospitals.push(HospitalPass {
            hospital_id: row.id,
            outcome,
        });
    }
    Ok(report)
}

/// The server's retention job: a pass at start-up, then every `interval`. Each pass
/// finishes before the next starts. It lives as long as the runtime it was started on.
pub fn spawn(db: Db, args: RetentionArgs, interval: Duration) {
    actix::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match run_pass(&db, &args, RetentionTrigger::Schedule).await {
                Ok(report) => tracing::debug!(
                    sessions = report.sessions_erased(),
                    failures = report.failures(),
                    "retention pass done"
                ),
                Err(e) => tracing::warn!(error = %e, "retention pass could not start"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hospitals_own_retention_wins_and_neither_means_off() {
        assert_eq!(
            effective(Some(7), Some(30)),
            (Some(7), PolicySource::Hospital)
        );
        assert_eq!(effective(Some(0), None), (Some(0), PolicySource::Hospital));
        assert_eq!(
            effective(None, Some(30)),
            (Some(30), PolicySource::ServerDefault)
        );
        assert_eq!(effective(None, None), (None, PolicySource::Off));
    }

    #[test]
    fn the_cutoff_is_whole_days_before_now() {
        let now = chrono::NaiveDate::from_ymd_opt(2026, 3, 10)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .unwrap();
        assert_eq!(cutoff(now, 0), now);
        assert_eq!(
            cutoff(now, 30),
            chrono::NaiveDate::from_ymd_opt(2026, 2, 8)
                .and_then(|d| d.and_hms_opt(12, 0, 0))
                .unwrap()
        );
        // The longest retention is still a real date.
        assert!(cutoff(now, MAX_RETENTION_DAYS) < now);
    }

    #[test]
    fn days_are_null_or_whole_days_within_a_century() {
        assert_eq!(validate_days(None).unwrap(), None);
        assert_eq!(validate_days(Some(0)).unwrap(), Some(0));
        assert_eq!(
            validate_days(Some(i64::from(MAX_RETENTION_DAYS))).unwrap(),
            Some(MAX_RETENTION_DAYS)
        );
        for bad in [-1, i64::from(MAX_RETENTION_DAYS) + 1, i64::MAX, i64::MIN] {
            match validate_days(Some(bad)) {
                Err(ApiError::Validation { fields, .. }) => assert!(fields.contains_key("days")),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
