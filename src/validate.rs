//! The checks every piece of client text and every date passes before it reaches date
//! arithmetic or the database, shared by the HTTP handlers and the admin CLI.
//!
//! Why one place: the two backends disagree about hostile input. PostgreSQL refuses a
//! NUL character in text and timestamps before 4713 BC with a query error, which would
//! surface as `500 internal`, while SQLite stores or compares them happily. Refusing
//! such input here gives the same `400 validation_failed` on both, naming the field.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::error::{ApiError, ApiResult};

/// Which control characters a text field may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// Names, emails, filters: no control characters at all.
    Single,
    /// Free text from a person (notes, summaries): newlines and tabs, nothing else.
    Multi,
}

/// The earliest instant any date parameter may name: RFC 3339 years have four digits,
/// and both backends store and compare every instant from here to [`LATEST`].
pub const EARLIEST: NaiveDateTime = match NaiveDate::from_ymd_opt(1, 1, 1) {
    Some(day) => day.and_time(chrono::NaiveTime::MIN),
    None => NaiveDateTime::MIN,
};
/// The last instant any date parameter may name (see [`EARLIEST`]).
pub const LATEST: NaiveDateTime = match NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(day) => match day.and_hms_micro_opt(23, 59, 59, 999_999) {
        Some(at) => at,
        None => NaiveDateTime::MAX,
    },
    None => NaiveDateTime::MAX,
};

/// What a date outside [`EARLIEST`]..=[`LATEST`] is told.
pub const OUT_OF_RANGE: &str = "must be between 0001-01-01 and 9999-12-31";

/// Whether an instant lies in the range every date parameter is held to.
pub fn in_supported_range(at: NaiveDateTime) -> bool {
    (EARLIEST..=LATEST).contains(&at)
}

/// Refuses text with control characters (a NUL above all). Returns the text as given.
pub fn text<'a>(field: &str, value: &'a str, lines: Lines) -> ApiResult<&'a str> {
    let allowed = |c: char| lines == Lines::Multi && matches!(c, '\n' | '\r' | '\t');
    if value.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value)
}

/// An RFC 3339 timestamp, or a `YYYY-MM-DD` date meaning its midnight UTC, within the
/// supported range.
pub fn instant(field: &str, value: &str) -> ApiResult<NaiveDateTime> {
    let value = text(field, value.trim(), Lines::Single)?;
    let parsed = if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        Some(at.with_timezone(&Utc).naive_utc())
    } else {
        NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .ok()
            .map(|day| day.and_time(chrono::NaiveTime::MIN))
    };
    match parsed {
        Some(at) if in_supported_range(at) => Ok(at),
        Some(_) => Err(ApiError::invalid(field, OUT_OF_RANGE)),
        None => Err(ApiError::invalid(
            field,
            "must be an RFC 3339 timestamp or a YYYY-MM-DD date",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn field_of(error: ApiError) -> String {
        match error {
            ApiError::Validation { fields, .. } => fields.into_keys().collect(),
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn nul_and_control_characters_are_refused_by_name() {
        assert_eq!(
            field_of(text("email", "a\u{0}b", Lines::Single).unwrap_err()),
            "email"
        );
        assert!(text("notes", "a\u{0}b", Lines::Multi).is_err());
        assert!(text("notes", "bell\u{7}", Lines::Multi).is_err());
        assert!(text("name", "two\nlines", Lines::Single).is_err());
        assert_eq!(
            text("notes", "two\nlines\tok", Lines::Multi).unwrap(),
            "two\nlines\tok"
        );
        assert_eq!(text("name", "Zoë 🩺", Lines::Single).unwrap(), "Zoë 🩺");
    }

    #[test]
    fn dates_outside_four_digit_years_are_refused() {
        for bad in [
            "-262143-01-01",
            "-4714-11-24",
            "0000-12-31",
            "+10000-01-01",
            "+262142-12-31",
        ] {
            let error = instant("to", bad).unwrap_err();
            assert!(error.to_string().contains("0001-01-01"), "{bad}: {error}");
        }
        assert_eq!(
            instant("from", "0001-01-01").unwrap(),
            EARLIEST,
            "the first day itself is fine"
        );
        assert!(instant("to", "9999-12-31T23:59:59Z").is_ok());
        assert!(instant("to", "2026-11-30").is_ok());
        assert!(instant("to", "2026-11-30T10:00:00+02:00").is_ok());
        assert!(instant("to", "yesterday").is_err());
        assert!(instant("to", "2026-11-30\u{0}").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, .. ProptestConfig::default() })]

        /// Any text: a date in range or a validation error, never a panic.
        #[test]
        fn instant_parsing_is_total(value in ".{0,40}") {
            match instant("from", &value) {
                Ok(at) => prop_assert!(in_supported_range(at)),
                Err(e) => prop_assert_eq!(e.code(), "validation_failed"),
            }
        }

        /// Dates of any signed year, the form the panic came from.
        #[test]
        fn dates_of_any_year_parse_or_are_refused(year in -300_000i32..300_000, month in 0u32..14, day in 0u32..33) {
            let value = format!("{year:04}-{month:02}-{day:02}");
            if let Ok(at) = instant("to", &value) {
                prop_assert!((1..=9999).contains(&year), "{value} → {at}");
            }
        }

        #[test]
        fn accepted_text_holds_no_control_character(value in "\\PC{0,20}[\\x00-\\x1f\\x7f]?\\PC{0,20}") {
            if let Ok(kept) = text("f", &value, Lines::Single) {
                prop_assert!(!kept.chars().any(char::is_control));
            }
        }
    }
}
