//! Free text from people (issue summaries, notes, feedback): trimmed, bounded, and
//! with no control characters but newlines and tabs.

use crate::error::{ApiError, ApiResult};

pub const MAX_SUMMARY_CHARS: usize = 2000;
pub const MAX_NOTES_CHARS: usize = 5000;
pub const MAX_FEEDBACK_CHARS: usize = 2000;

/// Whether empty text is an error or simply no text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Required,
    Optional,
}

pub fn clean_text(
    field: &str,
    text: &str,
    max_chars: usize,
    presence: Presence,
) -> ApiResult<Option<String>> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return match presence {
            Presence::Required => Err(ApiError::invalid(field, "must not be empty")),
            Presence::Optional => Ok(None),
        };
    }
    if trimmed.chars().count() > max_chars {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(Some(trimmed.to_string()))
}
