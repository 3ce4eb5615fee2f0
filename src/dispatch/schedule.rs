//! When a dedicated assignment is in force: all day, or weekly windows in the
//! hospital's own time zone (a night-shift desk in Chicago means Chicago nights).

use chrono::{Datelike, NaiveDateTime, Timelike};
use chrono_tz::Tz;

use crate::db::models::AssignmentRow;

/// Parses "1,2,5" (ISO weekdays, Monday = 1) into a bit set; `None` when malformed.
pub fn parse_weekdays(text: &str) -> Option<u8> {
    let mut mask = 0u8;
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let day: u8 = part.parse().ok()?;
        if !(1..=7).contains(&day) {
            return None;
        }
        mask |= 1 << (day - 1);
    }
    (mask != 0).then_some(mask)
}

/// Is the assignment active at `now_utc`, read in `timezone`? A window whose end is
/// before its start runs overnight (22:00–06:00).
pub fn active_at(assignment: &AssignmentRow, now_utc: NaiveDateTime, timezone: &str) -> bool {
    let tz: Tz = timezone.parse().unwrap_or(Tz::UTC);
    let local = now_utc.and_utc().with_timezone(&tz);
    if let Some(days) = assignment.weekdays.as_deref() {
        match parse_weekdays(days) {
            Some(mask) => {
                let today = local.weekday().number_from_monday() as u8;
                if mask & (1 << (today - 1)) == 0 {
                    return false;
                }
            }
            None => return false,
        }
    }
    match (assignment.start_minute, assignment.end_minute) {
        (Some(start), Some(end)) => {
            let minute = (local.hour() * 60 + local.minute()) as i32;
            if start <= end {
                (start..end).contains(&minute)
            } else {
                minute >= start || minute < end
            }
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(weekdays: Option<&str>, start: Option<i32>, end: Option<i32>) -> AssignmentRow {
        AssignmentRow {
            id: 1,
            consultant_id: crate::model::UserId(1),
            staff_id: None,
            hospital_id: Some(crate::model::HospitalId(1)),
            department: None,
            exclusive: false,
            weekdays: weekdays.map(str::to_string),
            start_minute: start,
            end_minute: end,
            created_at: NaiveDateTime::default(),
        }
    }

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn all_day_rules_are_always_active() {
        assert!(active_at(
            &rule(None, None, None),
            at("2026-11-30 03:00"),
            "UTC"
        ));
    }

    #[test]
    fn weekly_windows_use_the_hospital_time_zone() {
        // Monday 2026-11-30 15:00 UTC is 09:00 in Chicago (UTC-6).
        let weekday_mornings = rule(Some("1,2,3,4,5"), Some(8 * 60), Some(12 * 60));
        assert!(active_at(
            &weekday_mornings,
            at("2026-11-30 15:00"),
            "America/Chicago"
        ));
        assert!(!active_at(&weekday_mornings, at("2026-11-30 15:00"), "UTC"));
        // Saturday.
        assert!(!active_at(
            &weekday_mornings,
            at("2026-12-05 15:00"),
            "America/Chicago"
        ));
    }

    #[test]
    fn overnight_windows_wrap_midnight() {
        let nights = rule(None, Some(22 * 60), Some(6 * 60));
        assert!(active_at(&nights, at("2026-11-30 23:30"), "UTC"));
        assert!(active_at(&nights, at("2026-11-30 05:59"), "UTC"));
        assert!(!active_at(&nights, at("2026-11-30 06:00"), "UTC"));
    }

    #[test]
    fn malformed_weekdays_are_never_active() {
        assert_eq!(parse_weekdays("1,9"), None);
        assert_eq!(parse_weekdays("mon"), None);
        assert!(!active_at(
            &rule(Some("x"), None, None),
            at("2026-11-30 12:00"),
            "UTC"
        ));
    }
}
