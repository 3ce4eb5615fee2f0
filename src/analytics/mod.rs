//! Analytics math: the reporting window, time-zone bucketing, percentiles and rates.
//! Pure functions over plain data (no actix, no I/O), so every definition below can be
//! unit tested on its own; the database does the heavy aggregation
//! ([`crate::db::repo::analytics`]) and this module turns its totals into the figures
//! of `GET /api/support/analytics`.
//!
//! # Definitions
//!
//! * **Window**: sessions whose `created_at` lies in `[from, to)`. `from`/`to` are RFC
//!   3339 instants or `YYYY-MM-DD` dates; a date means that whole calendar day in the
//!   report's time zone, at both ends (`from=2026-03-01&to=2026-03-31` is all of March).
//!   Default: the 30 days up to now. At most [`MAX_WINDOW_DAYS`] long.
//! * **Requests**: every session in the window, whatever its status.
//! * **Average wait**: mean `wait_time_seconds` of the accepted sessions (those with a
//!   wait recorded, i.e. a consultant accepted them).
//! * **Wait p50 / p90**: the same waits' 50th and 90th percentiles, interpolated
//!   linearly between the two closest ranks (PostgreSQL's `percentile_cont`).
//! * **Average duration**: mean `duration_seconds` of the completed sessions.
//! * **First-call resolution**: completed sessions ended with `resolved = true`, over
//!   all completed sessions (an unanswered `resolved` counts as not resolved).
//! * **Rating average**: mean of the ratings given (1–5).
//! * **Service level**: requests connected (accepted) by their `response_deadline`
//!   (created_at + the plan's response target), over the requests whose outcome
//!   against the target is known: every accepted request, every request still pending
//!   past its deadline, and every request cancelled unanswered after its deadline.
//!   Requests cancelled before their deadline passed, and pending ones still inside it,
//!   are neither met nor missed and are left out.
//! * **Abandonment rate**: requests cancelled while still waiting (cancelled with no
//!   consultant) over all requests.
//! * **Longest current wait**: now minus the oldest `created_at` of the requests pending
//!   right now in the same hospital/department scope — a live figure, not limited by
//!   the window.
//! * **Utilisation**: busy time over (available + busy) time, from
//!   `consultant_status_log` intervals clipped to the window (an interval still open
//!   counts up to now). Without a hospital or department filter it covers every
//!   consultant with logged time; with one, the consultants who accepted a request in
//!   that scope. A consultant's utilisation is their own across the shared pool: it
//!   reveals no other hospital's sessions, counts or ratings.
//! * **Per consultant**: completed sessions and average rating within the scope and
//!   window, and that consultant's utilisation.
//! * **Peak hours / wait by day**: requests by local hour of day (all 24 hours) and, per
//!   local calendar day of the window, requests and average wait, in the report's time
//!   zone: the `tz` parameter, else the hospital's own zone when the report covers one
//!   hospital, else UTC.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{
    DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use serde::Serialize;

use crate::db::repo::analytics::{Raw, TimeBuckets};
use crate::validate::{in_supported_range, OUT_OF_RANGE};

/// The window when the caller names neither end.
pub const DEFAULT_WINDOW_DAYS: i64 = 30;
/// Longest window accepted: two years, enough for year-over-year, and it bounds the
/// per-day series the reply carries.
pub const MAX_WINDOW_DAYS: i64 = 731;
pub use crate::model::stats::SLOT_SECONDS;

/// The reporting window: `[from, to)` in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Validation problems by query field, as `ApiError::Validation` reports them.
pub type FieldErrors = BTreeMap<String, String>;

/// The first instant of a calendar day in `tz`. Where local midnight does not exist (a
/// DST jump at midnight) the day starts at the first local time that does.
pub fn local_day_start(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let mut local = day.and_time(NaiveTime::MIN);
    for _ in 0..(24 * 4) {
        if let Some(at) = tz.from_local_datetime(&local).earliest() {
            return at.with_timezone(&Utc);
        }
        local += Duration::minutes(15);
    }
    day.and_time(NaiveTime::MIN).and_utc()
}

/// One end of the window. A date is a whole day in `tz`: its start for `from`, the
/// start of the next day for `to` (so the named day is included).
/// Both ends must lie in the range every date parameter is held to
/// ([`crate::validate::EARLIEST`] to [`crate::validate::LATEST`]), so the arithmetic
/// below cannot overflow and PostgreSQL never sees a year it refuses.
fn parse_bound(text: &str, tz: Tz, is_end: bool) -> Result<DateTime<Utc>, &'static str> {
    let text = text.trim();
    let at = if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        at.with_timezone(&Utc)
    } else if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if !in_supported_range(day.and_time(NaiveTime::MIN)) {
            return Err(OUT_OF_RANGE);
        }
        let day = if is_end { day.succ_opt() } else { Some(day) };
        day.map(|d| local_day_start(d, tz)).ok_or(OUT_OF_RANGE)?
    } else {
        return Err("must be an RFC 3339 timestamp or a YYYY-MM-DD date");
    };
    if in_supported_range(at.naive_utc()) {
        Ok(at)
    } else {
        Err(OUT_OF_RANGE)
    }
}

/// Resolves `from`/`to` (either may be missing) into a window, or every problem found.
pub fn resolve_window(
    from: Option<&str>,
    to: Option<&str>,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<Window, FieldErrors> {
    let mut errors = FieldErrors::new();
    let to = match to {
        Some(text) => parse_bound(text, tz, true)
            .map_err(|e| errors.insert("to".into(), e.into()))
            .ok(),
        None => Some(now),
    };
    let from = match from {
        Some(text) => parse_bound(text, tz, false)
            .map_err(|e| errors.insert("from".into(), e.into()))
            .ok(),
        None => to.and_then(|t| {
            let from = t
                .checked_sub_signed(Duration::days(DEFAULT_WINDOW_DAYS))
                .filter(|from| in_supported_range(from.naive_utc()));
            if from.is_none() {
                errors.insert(
                    "to".into(),
                    format!("{OUT_OF_RANGE}, {DEFAULT_WINDOW_DAYS} days after the start"),
                );
            }
            from
        }),
    };
    let (Some(from), Some(to)) = (from, to) else {
        return Err(errors);
    };
    if from >= to {
        errors.insert("from".into(), "must be before `to`".into());
    } else if to - from > Duration::days(MAX_WINDOW_DAYS) {
        errors.insert(
            "to".into(),
            format!("the window may span at most {MAX_WINDOW_DAYS} days"),
        );
    }
    if errors.is_empty() {
        Ok(Window { from, to })
    } else {
        Err(errors)
    }
}

/// Every local calendar day the window touches, in order.
pub fn local_days(window: &Window, tz: Tz) -> Vec<NaiveDate> {
    let first = window.from.with_timezone(&tz).date_naive();
    let last = (window.to - Duration::microseconds(1))
        .with_timezone(&tz)
        .date_naive();
    first.iter_days().take_while(|d| *d <= last).collect()
}

/// `numerator / denominator` as a fraction, or `None` when there is nothing to divide.
pub fn rate(numerator: i64, denominator: i64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

pub use crate::model::stats::{interpolate, percentile_position};

/// Percentile `p` of an already sorted list; the reference the SQL paths are tested
/// against.
pub fn percentile_of_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    let (offset, fraction) = percentile_position(sorted.len() as i64, p)?;
    let lower = *sorted.get(offset as usize)?;
    Some(interpolate(
        lower,
        sorted.get(offset as usize + 1).copied(),
        fraction,
    ))
}

/// Requests and waits of one local day.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct DayTotals {
    pub requests: i64,
    pub wait_sum: i64,
    pub waits: i64,
}

/// Requests per local hour of day and per local day, from either backend's buckets.
pub fn local_buckets(buckets: &TimeBuckets, tz: Tz) -> ([i64; 24], BTreeMap<NaiveDate, DayTotals>) {
    let mut hours = [0i64; 24];
    let mut days: BTreeMap<NaiveDate, DayTotals> = BTreeMap::new();
    match buckets {
        TimeBuckets::Local {
            hours: by_hour,
            days: by_day,
        } => {
            for &(hour, count) in by_hour {
                if let Some(cell) = usize::try_from(hour).ok().and_then(|h| hours.get_mut(h)) {
                    *cell += count;
                }
            }
            for day in by_day {
                let totals = days.entry(day.day).or_default();
                totals.requests += day.requests;
                totals.wait_sum += day.wait_sum.unwrap_or(0);
                totals.waits += day.waits;
            }
        }
        TimeBuckets::UtcSlots(slots) => {
            for slot in slots {
                let Some(start) = DateTime::from_timestamp(slot.slot * SLOT_SECONDS, 0) else {
                    continue;
                };
                let local = start.with_timezone(&tz);
                hours[local.hour() as usize] += slot.requests;
                let totals = days.entry(local.date_naive()).or_default();
                totals.requests += slot.requests;
                totals.wait_sum += slot.wait_sum.unwrap_or(0);
                totals.waits += slot.waits;
            }
        }
    }
    (hours, days)
}

/// The reply of `GET /api/support/analytics` (field names are the browser's contract).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Analytics {
    pub from: String,
    pub to: String,
    /// First and last local day of the window, both inclusive (for display).
    pub first_day: Option<NaiveDate>,
    pub last_day: Option<NaiveDate>,
    pub timezone: String,
    pub hospital_id: Option<i64>,
    pub department: Option<String>,
    pub total_requests: i64,
    pub avg_wait_seconds: Option<f64>,
    pub avg_duration_seconds: Option<f64>,
    pub first_call_resolution_rate: Option<f64>,
    pub utilization: Option<f64>,
    pub rating_avg: Option<f64>,
    pub service_level: Option<f64>,
    pub abandonment_rate: Option<f64>,
    pub wait_p50_seconds: Option<f64>,
    pub wait_p90_seconds: Option<f64>,
    pub longest_current_wait_seconds: Option<i64>,
    pub requests_by_department: Vec<DepartmentCount>,
    pub requests_by_hospital: Vec<HospitalCount>,
    pub peak_hours: Vec<HourCount>,
    pub wait_by_day: Vec<DayWait>,
    pub consultants: Vec<ConsultantFigures>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DepartmentCount {
    pub department: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct HospitalCount {
    pub hospital_id: i64,
    pub hospital_name: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct HourCount {
    pub hour: u32,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DayWait {
    pub day: NaiveDate,
    pub avg_wait_seconds: Option<f64>,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ConsultantFigures {
    pub consultant_id: i64,
    pub name: String,
    /// Completed sessions in the scope and window.
    pub sessions: i64,
    pub rating_avg: Option<f64>,
    pub utilization: Option<f64>,
}

/// What the report covers, besides the window.
#[derive(Debug, Clone)]
pub struct ReportScope {
    pub hospital_id: Option<i64>,
    pub department: Option<String>,
    pub tz: Tz,
}

impl ReportScope {
    /// A hospital or department filter narrows the consultants to those who served it.
    fn is_filtered(&self) -> bool {
        self.hospital_id.is_some() || self.department.is_some()
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Turns the database's totals into the reply.
pub fn build(raw: &Raw, window: &Window, scope: &ReportScope, now: NaiveDateTime) -> Analytics {
    let t = &raw.totals;
    let (hours, days) = local_buckets(&raw.buckets, scope.tz);
    let day_list = local_days(window, scope.tz);

    let mut by_department: Vec<DepartmentCount> = raw
        .by_department
        .iter()
        .map(|(department, count)| DepartmentCount {
            department: department.clone(),
            count: *count,
        })
        .collect();
    by_department.sort_by(|a, b| b.count.cmp(&a.count).then(a.department.cmp(&b.department)));
    let mut by_hospital: Vec<HospitalCount> = raw
        .by_hospital
        .iter()
        .map(|(id, name, count)| HospitalCount {
            hospital_id: *id,
            hospital_name: name.clone(),
            count: *count,
        })
        .collect();
    by_hospital.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.hospital_id.cmp(&b.hospital_id))
    });

    // Seconds available and busy per consultant, from the clipped status-log totals.
    let mut time: HashMap<i64, (f64, f64)> = HashMap::new();
    for (consultant, status, seconds) in &raw.status_time {
        let entry = time.entry(*consultant).or_default();
        match status.as_str() {
            "available" => entry.0 += seconds,
            "busy" => entry.1 += seconds,
            _ => {}
        }
    }
    let mut ids: Vec<i64> = raw.consultants.iter().map(|c| c.consultant_id).collect();
    if !scope.is_filtered() {
        ids.extend(time.keys().copied());
    }
    let mut seen = HashSet::new();
    ids.retain(|id| seen.insert(*id));
    let sessions: HashMap<i64, _> = raw
        .consultants
        .iter()
        .map(|c| (c.consultant_id, c))
        .collect();
    let (mut available_total, mut busy_total) = (0.0, 0.0);
    let mut consultants: Vec<ConsultantFigures> = ids
        .into_iter()
        .map(|id| {
            let (available, busy) = time.get(&id).copied().unwrap_or_default();
            available_total += available;
            busy_total += busy;
            let served = sessions.get(&id);
            ConsultantFigures {
                consultant_id: id,
                name: raw.names.get(&id).cloned().unwrap_or_default(),
                sessions: served.map_or(0, |c| c.completed),
                rating_avg: served.and_then(|c| c.rating_avg),
                utilization: (available + busy > 0.0).then(|| busy / (available + busy)),
            }
        })
        .collect();
    consultants.sort_by(|a, b| {
        b.sessions
            .cmp(&a.sessions)
            .then(a.name.cmp(&b.name))
            .then(a.consultant_id.cmp(&b.consultant_id))
    });

    Analytics {
        from: rfc3339(window.from),
        to: rfc3339(window.to),
        first_day: day_list.first().copied(),
        last_day: day_list.last().copied(),
        timezone: scope.tz.name().to_string(),
        hospital_id: scope.hospital_id,
        department: scope.department.clone(),
        total_requests: t.requests,
        avg_wait_seconds: t.avg_wait,
        avg_duration_seconds: t.avg_duration,
        first_call_resolution_rate: rate(t.resolved, t.completed),
        utilization: (available_total + busy_total > 0.0)
            .then(|| busy_total / (available_total + busy_total)),
        rating_avg: t.rating_avg,
        service_level: rate(t.service_met, t.service_due),
        abandonment_rate: rate(t.abandoned, t.requests),
        wait_p50_seconds: raw.wait_p50,
        wait_p90_seconds: raw.wait_p90,
        longest_current_wait_seconds: raw
            .oldest_pending
            .map(|oldest| (now - oldest).num_seconds().max(0)),
        requests_by_department: by_department,
        requests_by_hospital: by_hospital,
        peak_hours: (0u32..24)
            .map(|hour| HourCount {
                hour,
                count: hours[hour as usize],
            })
            .collect(),
        wait_by_day: day_list
            .iter()
            .map(|day| {
                let totals = days.get(day).copied().unwrap_or_default();
                DayWait {
                    day: *day,
                    avg_wait_seconds: (totals.waits > 0)
                        .then(|| totals.wait_sum as f64 / totals.waits as f64),
                    count: totals.requests,
                }
            })
            .collect(),
        consultants,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::repo::analytics::Slot;
    use proptest::prelude::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn dates_are_whole_local_days_at_both_ends() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let w = resolve_window(
            Some("2026-03-01"),
            Some("2026-03-31"),
            tz,
            utc("2026-06-01T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(w.from, utc("2026-03-01T05:00:00Z"));
        // DST began on 8 March: midnight of 1 April is 04:00 UTC.
        assert_eq!(w.to, utc("2026-04-01T04:00:00Z"));
        let days = local_days(&w, tz);
        assert_eq!(days.len(), 31);
        assert_eq!(days[0], NaiveDate::from_ymd_opt(2026, 3, 1).unwrap());
        assert_eq!(days[30], NaiveDate::from_ymd_opt(2026, 3, 31).unwrap());
    }

    #[test]
    fn one_day_window_and_instants() {
        let tz: Tz = "Asia/Kolkata".parse().unwrap();
        let w = resolve_window(
            Some("2026-01-10"),
            Some("2026-01-10"),
            tz,
            utc("2026-06-01T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(w.from, utc("2026-01-09T18:30:00Z"));
        assert_eq!(w.to, utc("2026-01-10T18:30:00Z"));
        assert_eq!(local_days(&w, tz).len(), 1);
        let w = resolve_window(
            Some("2026-01-10T08:00:00+02:00"),
            Some("2026-01-10T09:00:00Z"),
            Tz::UTC,
            Utc::now(),
        )
        .unwrap();
        assert_eq!(w.from, utc("2026-01-10T06:00:00Z"));
        assert_eq!(w.to, utc("2026-01-10T09:00:00Z"));
    }

    #[test]
    fn default_window_is_thirty_days_to_now() {
        let now = utc("2026-06-01T12:00:00Z");
        let w = resolve_window(None, None, Tz::UTC, now).unwrap();
        assert_eq!(w.to, now);
        assert_eq!(w.from, utc("2026-05-02T12:00:00Z"));
        let w = resolve_window(None, Some("2026-02-28"), Tz::UTC, now).unwrap();
        assert_eq!(w.from, utc("2026-01-30T00:00:00Z"));
    }

    #[test]
    fn bad_windows_name_their_fields() {
        let now = Utc::now();
        let e = resolve_window(Some("yesterday"), Some("2026-13-01"), Tz::UTC, now).unwrap_err();
        assert!(e.contains_key("from") && e.contains_key("to"), "{e:?}");
        let e = resolve_window(Some("2026-03-02"), Some("2026-03-01"), Tz::UTC, now).unwrap_err();
        assert!(e.contains_key("from"), "{e:?}");
        let e = resolve_window(Some("2020-01-01"), Some("2026-01-01"), Tz::UTC, now).unwrap_err();
        assert!(e.contains_key("to"), "{e:?}");
    }

    #[test]
    fn midnight_gap_starts_at_first_real_time() {
        // Santiago moved clocks from 00:00 to 01:00 on 2022-09-11.
        let tz: Tz = "America/Santiago".parse().unwrap();
        let start = local_day_start(NaiveDate::from_ymd_opt(2022, 9, 11).unwrap(), tz);
        assert_eq!(start, utc("2022-09-11T04:00:00Z"));
    }

    #[test]
    fn percentile_matches_percentile_cont() {
        // PostgreSQL: percentile_cont(0.5/0.9) of 10,20,30,40 = 25 and 37.
        let v = [10.0, 20.0, 30.0, 40.0];
        assert_eq!(percentile_of_sorted(&v, 0.5), Some(25.0));
        assert_eq!(percentile_of_sorted(&v, 0.9), Some(37.0));
        assert_eq!(percentile_of_sorted(&[7.0], 0.9), Some(7.0));
        assert_eq!(percentile_of_sorted(&[], 0.5), None);
        assert_eq!(percentile_position(5, 0.5), Some((2, 0.0)));
        assert_eq!(percentile_position(0, 0.5), None);
    }

    proptest! {
        #[test]
        fn percentile_lies_between_neighbours(mut values in proptest::collection::vec(0u32..100_000, 1..200), p in 0.0f64..=1.0) {
            values.sort_unstable();
            let sorted: Vec<f64> = values.iter().map(|v| *v as f64).collect();
            let got = percentile_of_sorted(&sorted, p).unwrap();
            prop_assert!(got >= sorted[0] && got <= sorted[sorted.len() - 1]);
            // At least a fraction p of the values are at or below it.
            let at_or_below = sorted.iter().filter(|v| **v <= got).count();
            prop_assert!(at_or_below as f64 >= p * (sorted.len() - 1) as f64);
        }
    }

    #[test]
    fn utc_slots_shift_into_half_hour_zones() {
        // 2026-01-10 18:15Z and 18:45Z are 23:45 on the 10th and 00:15 on the 11th in Kolkata.
        let tz: Tz = "Asia/Kolkata".parse().unwrap();
        let slot = |at: &str| utc(at).timestamp() / SLOT_SECONDS;
        let buckets = TimeBuckets::UtcSlots(vec![
            Slot {
                slot: slot("2026-01-10T18:15:00Z"),
                requests: 2,
                wait_sum: Some(60),
                waits: 1,
            },
            Slot {
                slot: slot("2026-01-10T18:45:00Z"),
                requests: 3,
                wait_sum: Some(30),
                waits: 3,
            },
        ]);
        let (hours, days) = local_buckets(&buckets, tz);
        assert_eq!(hours[23], 2);
        assert_eq!(hours[0], 3);
        let d10 = NaiveDate::from_ymd_opt(2026, 1, 10).unwrap();
        let d11 = d10.succ_opt().unwrap();
        assert_eq!(
            days[&d10],
            DayTotals {
                requests: 2,
                wait_sum: 60,
                waits: 1
            }
        );
        assert_eq!(
            days[&d11],
            DayTotals {
                requests: 3,
                wait_sum: 30,
                waits: 3
            }
        );
    }

    #[test]
    fn extreme_dates_are_refused_not_panicked_on() {
        let now = utc("2026-11-30T12:00:00Z");
        for bad in [
            "-262143-01-01",
            "-4714-01-01",
            "0000-06-01",
            "+262142-12-31",
            "9999-12-31",
        ] {
            let errors = resolve_window(None, Some(bad), Tz::UTC, now).unwrap_err();
            assert!(errors["to"].contains("0001-01-01"), "{bad}: {errors:?}");
        }
        let errors = resolve_window(Some("-262143-01-01"), None, Tz::UTC, now).unwrap_err();
        assert!(errors.contains_key("from"));
        // The first supported day works as an end, but its default start would not.
        let errors = resolve_window(None, Some("0001-01-01"), Tz::UTC, now).unwrap_err();
        assert!(errors.contains_key("to"), "{errors:?}");
        assert!(resolve_window(Some("0001-01-01"), Some("0001-01-31"), Tz::UTC, now).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, .. ProptestConfig::default() })]

        /// Dates of any year in any zone: a window within the supported range, or field
        /// errors; never a panic (the date arithmetic used to overflow).
        #[test]
        fn any_window_parameters_resolve_or_are_refused(
            from_year in -262_000i32..262_000, to_year in -262_000i32..262_000,
            month in 1u32..13, day in 1u32..29, give_from in any::<bool>(),
            tz in prop::sample::select(vec![Tz::UTC, Tz::Pacific__Kiritimati, Tz::Pacific__Pago_Pago, Tz::America__New_York]),
        ) {
            let from = format!("{from_year:04}-{month:02}-{day:02}");
            let to = format!("{to_year:04}-{month:02}-{day:02}");
            let now = utc("2026-11-30T12:00:00Z");
            if let Ok(window) = resolve_window(give_from.then_some(from.as_str()), Some(&to), tz, now) {
                prop_assert!(in_supported_range(window.from.naive_utc()));
                prop_assert!(in_supported_range(window.to.naive_utc()));
                prop_assert!(window.from < window.to);
                let _ = local_days(&window, tz);
            }
        }
    }

    #[test]
    fn rates_are_fractions_or_none() {
        assert_eq!(rate(1, 4), Some(0.25));
        assert_eq!(rate(0, 0), None);
    }
}
