//! The `Session` object of API.md, built from a stored row.

use chrono::{NaiveDateTime, SecondsFormat};
use serde::{Deserialize, Serialize};

use crate::db::models::SessionRow;
use crate::model::{HospitalId, MatchTier, SessionId, SessionStatus, Urgency, UserId};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct MatchView {
    pub tier: MatchTier,
    pub score: i64,
    pub reasons: Vec<String>,
}

impl MatchView {
    /// Reasons are stored as a JSON array of strings; anything else reads as none
    /// (they are explanations for people, never decisions).
    pub fn new(tier: MatchTier, score: i64, reasons: Option<&str>) -> MatchView {
        MatchView {
            tier,
            score,
            reasons: reasons
                .and_then(|r| serde_json::from_str(r).ok())
                .unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct SessionView {
    pub id: SessionId,
    pub hospital_id: HospitalId,
    pub requester_id: UserId,
    pub consultant_id: Option<UserId>,
    pub department: String,
    pub urgency: Urgency,
    pub status: SessionStatus,
    /// Null once retention erased it (`text_erased_at`).
    pub issue_summary: Option<String>,
    pub resolution_notes: Option<String>,
    pub resolved: Option<bool>,
    pub created_at: String,
    pub accepted_at: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub wait_time_seconds: Option<i64>,
    pub duration_seconds: Option<i64>,
    pub rating: Option<i32>,
    pub feedback: Option<String>,
    #[serde(rename = "match")]
    pub match_info: Option<MatchView>,
    pub requested_consultant_id: Option<UserId>,
    pub wait_for_consultant: bool,
    pub video_provider: Option<String>,
    /// When the consultant recorded notes and the resolution (at the end, or after
    /// the requester ended); null while a wrap-up is still owed.
    pub wrapped_up_at: Option<String>,
    /// When retention last erased the free text (summary, notes, feedback); null
    /// while the text is kept. The figures are never erased.
    pub text_erased_at: Option<String>,
}

/// RFC 3339 UTC, as API.md promises.
pub fn rfc3339(at: NaiveDateTime) -> String {
    at.and_utc().to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl SessionView {
    pub fn from_row(row: &SessionRow) -> SessionView {
        let match_info = match (row.match_tier, row.match_score) {
            (Some(tier), Some(score)) => {
                Some(MatchView::new(tier, score, row.match_reasons.as_deref()))
            }
            _ => None,
        };
        SessionView {
            id: row.id,
            hospital_id: row.hospital_id,
            requester_id: row.requester_id,
            consultant_id: row.consultant_id,
            department: row.department.clone(),
            urgency: row.urgency,
            status: row.status,
            // Stored as '' once erased; the timestamp, not the value, says so.
            issue_summary: match row.text_erased_at {
                Some(_) => None,
                None => Some(row.issue_summary.clone()),
            },
            resolution_notes: row.resolution_notes.clone(),
            resolved: row.resolved,
            created_at: rfc3339(row.created_at),
            accepted_at: row.accepted_at.map(rfc3339),
            started_at: row.started_at.map(rfc3339),
            ended_at: row.ended_at.map(rfc3339),
            wait_time_seconds: row.wait_time_seconds,
            duration_seconds: row.duration_seconds,
            rating: row.rating,
            feedback: row.feedback.clone(),
            match_info,
            requested_consultant_id: row.requested_consultant_id,
            wait_for_consultant: row.wait_for_consultant,
            video_provider: row.video_provider.clone(),
            wrapped_up_at: row.wrapped_up_at.map(rfc3339),
            text_erased_at: row.text_erased_at.map(rfc3339),
        }
    }
}
