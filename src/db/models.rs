//! Rows as stored. Every stored vocabulary is a typed enum from [`crate::model`] and
//! every id a newtype, so a row read back is already validated: a word the code does
//! not know fails the read instead of turning into some other value.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::schema::*;
use crate::model::event::Event;
use crate::model::{
    ConsultantStatus, EventData, EventId, EventKind, HospitalId, MatchTier, OfferId, OfferOutcome,
    Plan, Proficiency, Role, SessionId, SessionStatus, Urgency, UserId,
};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = hospitals)]
pub struct Hospital {
    pub id: HospitalId,
    pub name: String,
    pub plan: Plan,
    pub timezone: String,
    pub created_at: NaiveDateTime,
    /// Off: the hospital's people sign in only through its identity provider.
    pub password_login: bool,
    /// False once an admin deactivated it: its people cannot sign in.
    pub active: bool,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = hospitals)]
pub struct NewHospital<'a> {
    pub name: &'a str,
    pub plan: Plan,
    pub timezone: &'a str,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub hospital_id: Option<HospitalId>,
    pub password_hash: String,
    pub created_at: NaiveDateTime,
    /// False once an admin deactivated the account: it cannot sign in and its
    /// tokens were revoked.
    pub active: bool,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub hospital_id: Option<HospitalId>,
    pub password_hash: &'a str,
    pub created_at: NaiveDateTime,
}

/// The signed-in user as the API shows it (API.md `User`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub hospital_id: Option<HospitalId>,
}

impl From<&UserRow> for User {
    fn from(row: &UserRow) -> User {
        User {
            id: row.id,
            email: row.email.clone(),
            name: row.name.clone(),
            role: row.role,
            hospital_id: row.hospital_id,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = consultant_specialties)]
pub struct SpecialtyRow {
    pub id: i64,
    pub consultant_id: UserId,
    pub department: String,
    pub proficiency: Proficiency,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = consultant_availability)]
pub struct AvailabilityRow {
    pub consultant_id: UserId,
    pub status: ConsultantStatus,
    pub current_session_id: Option<SessionId>,
    pub auto_accept: bool,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = support_sessions)]
pub struct SessionRow {
    pub id: SessionId,
    pub hospital_id: HospitalId,
    pub requester_id: UserId,
    pub consultant_id: Option<UserId>,
    pub department: String,
    pub urgency: Urgency,
    pub status: SessionStatus,
    pub issue_summary: String,
    pub resolution_notes: Option<String>,
    pub resolved: Option<bool>,
    pub requested_consultant_id: Option<UserId>,
    pub wait_for_consultant: bool,
    pub created_at: NaiveDateTime,
    pub response_deadline: NaiveDateTime,
    pub accepted_at: Option<NaiveDateTime>,
    pub started_at: Option<NaiveDateTime>,
    pub ended_at: Option<NaiveDateTime>,
    pub wait_time_seconds: Option<i64>,
    pub duration_seconds: Option<i64>,
    pub rating: Option<i32>,
    pub feedback: Option<String>,
    pub match_tier: Option<MatchTier>,
    pub match_score: Option<i64>,
    pub match_reasons: Option<String>,
    pub video_provider: Option<String>,
    pub room_name: Option<String>,
    pub room_url: Option<String>,
    pub room_deleted: bool,
    pub cancelled_by: Option<UserId>,
    pub wrapped_up_at: Option<NaiveDateTime>,
    /// Set when retention erased the free text (the summary is then stored empty).
    pub text_erased_at: Option<NaiveDateTime>,
}

impl SessionRow {
    /// The requester or the consultant.
    pub fn is_party(&self, user_id: UserId) -> bool {
        self.requester_id == user_id || self.consultant_id == Some(user_id)
    }

    /// The two parties (the consultant once there is one).
    pub fn parties(&self) -> impl Iterator<Item = UserId> {
        std::iter::once(self.requester_id).chain(self.consultant_id)
    }

    /// The other party of `user_id`, if `user_id` is one and there are two.
    pub fn other_party(&self, user_id: UserId) -> Option<UserId> {
        if user_id == self.requester_id {
            self.consultant_id
        } else if self.consultant_id == Some(user_id) {
            Some(self.requester_id)
        } else {
            None
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = support_sessions)]
pub struct NewSession<'a> {
    pub hospital_id: HospitalId,
    pub requester_id: UserId,
    pub department: &'a str,
    pub urgency: Urgency,
    pub status: SessionStatus,
    pub issue_summary: &'a str,
    pub requested_consultant_id: Option<UserId>,
    pub wait_for_consultant: bool,
    pub created_at: NaiveDateTime,
    pub response_deadline: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = staff_consultant_preferences)]
pub struct RelationshipRow {
    pub id: i64,
    pub staff_id: UserId,
    pub consultant_id: UserId,
    pub preference_rank: Option<i32>,
    pub total_sessions: i32,
    pub successful_sessions: i32,
    pub rating_sum: i32,
    pub rating_count: i32,
    pub last_session_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = dedicated_assignments)]
pub struct AssignmentRow {
    pub id: i64,
    pub consultant_id: UserId,
    pub staff_id: Option<UserId>,
    pub hospital_id: Option<HospitalId>,
    pub department: Option<String>,
    pub exclusive: bool,
    pub weekdays: Option<String>,
    pub start_minute: Option<i32>,
    pub end_minute: Option<i32>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = session_events)]
pub struct SessionEventRow {
    pub id: EventId,
    pub session_id: Option<SessionId>,
    pub kind: EventKind,
    pub actor_id: Option<UserId>,
    pub consultant_id: Option<UserId>,
    pub detail: Option<String>,
    pub created_at: NaiveDateTime,
}

/// A stored event whose payload does not match its kind (written by something else).
#[derive(Debug, thiserror::Error)]
#[error("event {id}: unreadable {kind:?} payload: {problem}")]
pub struct BadEvent {
    pub id: EventId,
    pub kind: EventKind,
    pub problem: String,
}

impl SessionEventRow {
    /// The typed event; its payload must parse and agree with the kind column.
    pub fn to_event(&self) -> Result<Event, BadEvent> {
        let bad = |problem: String| BadEvent {
            id: self.id,
            kind: self.kind,
            problem,
        };
        let detail = self
            .detail
            .as_deref()
            .ok_or_else(|| bad("no payload".into()))?;
        let data: EventData = serde_json::from_str(detail).map_err(|e| bad(e.to_string()))?;
        if data.kind() != self.kind {
            return Err(bad(format!("payload says {}", data.kind().as_str())));
        }
        Ok(Event {
            id: self.id,
            session_id: self.session_id,
            actor_id: self.actor_id,
            consultant_id: self.consultant_id,
            at: self.created_at,
            data,
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = offers)]
pub struct OfferRow {
    pub id: OfferId,
    pub session_id: SessionId,
    pub consultant_id: UserId,
    pub outcome: OfferOutcome,
    pub tier: MatchTier,
    pub score: i64,
    pub reasons: String,
    pub offered_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub resolved_at: Option<NaiveDateTime>,
    pub epoch: i64,
}
