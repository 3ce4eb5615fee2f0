//! Rows as stored, and the small closed vocabularies (roles, plans, statuses) that are
//! stored as text so both backends share one schema.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::schema::*;

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(Role {
    Admin => "admin",
    Consultant => "consultant",
    HospitalStaff => "hospital_staff",
    HospitalLeadership => "hospital_leadership",
});

text_enum!(
    /// Hospital subscription tiers; the plan decides live video and response targets.
    Plan {
        Basic => "basic",
        Professional => "professional",
        Premium => "premium",
        Enterprise => "enterprise",
    }
);

impl Plan {
    /// The seed's pricing: live video and screen share are Premium and Enterprise.
    pub fn includes_video(self) -> bool {
        matches!(self, Plan::Premium | Plan::Enterprise)
    }
}

text_enum!(SessionStatus {
    Pending => "pending",
    Connecting => "connecting",
    Active => "active",
    Completed => "completed",
    Cancelled => "cancelled",
});

impl SessionStatus {
    /// A session that still occupies its parties.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            SessionStatus::Pending | SessionStatus::Connecting | SessionStatus::Active
        )
    }
}

text_enum!(ConsultantStatus {
    Online => "online",
    Available => "available",
    Busy => "busy",
    Away => "away",
    Offline => "offline",
});

text_enum!(UrgencyText {
    Normal => "normal",
    Urgent => "urgent",
    Critical => "critical",
});

text_enum!(ProficiencyText {
    Standard => "standard",
    Expert => "expert",
});

/// Departments the product knows; requests and specialties must name one of these.
pub const DEPARTMENTS: &[&str] = &[
    "ER",
    "Pharmacy",
    "Radiology",
    "Laboratory",
    "Nursing",
    "Scheduling",
];

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = hospitals)]
pub struct Hospital {
    pub id: i64,
    pub name: String,
    pub plan: String,
    pub timezone: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = hospitals)]
pub struct NewHospital<'a> {
    pub name: &'a str,
    pub plan: &'a str,
    pub timezone: &'a str,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: String,
    pub hospital_id: Option<i64>,
    pub password_hash: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub role: &'a str,
    pub hospital_id: Option<i64>,
    pub password_hash: &'a str,
    pub created_at: NaiveDateTime,
}

/// The signed-in user as the API shows it (API.md `User`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub hospital_id: Option<i64>,
}

impl User {
    pub fn from_row(row: &UserRow) -> Option<User> {
        Some(User {
            id: row.id,
            email: row.email.clone(),
            name: row.name.clone(),
            role: Role::parse(&row.role)?,
            hospital_id: row.hospital_id,
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = consultant_specialties)]
pub struct SpecialtyRow {
    pub id: i64,
    pub consultant_id: i64,
    pub department: String,
    pub proficiency: String,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = consultant_availability)]
pub struct AvailabilityRow {
    pub consultant_id: i64,
    pub status: String,
    pub current_session_id: Option<i64>,
    pub auto_accept: bool,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = support_sessions)]
pub struct SessionRow {
    pub id: i64,
    pub hospital_id: i64,
    pub requester_id: i64,
    pub consultant_id: Option<i64>,
    pub department: String,
    pub urgency: String,
    pub status: String,
    pub issue_summary: String,
    pub resolution_notes: Option<String>,
    pub resolved: Option<bool>,
    pub requested_consultant_id: Option<i64>,
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
    pub match_tier: Option<String>,
    pub match_score: Option<i64>,
    pub match_reasons: Option<String>,
    pub video_provider: Option<String>,
    pub room_name: Option<String>,
    pub room_url: Option<String>,
    pub room_deleted: bool,
    pub cancelled_by: Option<i64>,
}

impl SessionRow {
    pub fn status(&self) -> SessionStatus {
        SessionStatus::parse(&self.status).unwrap_or(SessionStatus::Cancelled)
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = support_sessions)]
pub struct NewSession<'a> {
    pub hospital_id: i64,
    pub requester_id: i64,
    pub department: &'a str,
    pub urgency: &'a str,
    pub status: &'a str,
    pub issue_summary: &'a str,
    pub requested_consultant_id: Option<i64>,
    pub wait_for_consultant: bool,
    pub created_at: NaiveDateTime,
    pub response_deadline: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = staff_consultant_preferences)]
pub struct RelationshipRow {
    pub id: i64,
    pub staff_id: i64,
    pub consultant_id: i64,
    pub preference_rank: Option<i32>,
    pub total_sessions: i32,
    pub successful_sessions: i32,
    pub rating_sum: i32,
    pub rating_count: i32,
    pub last_session_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = dedicated_assignments)]
pub struct AssignmentRow {
    pub id: i64,
    pub consultant_id: i64,
    pub staff_id: Option<i64>,
    pub hospital_id: Option<i64>,
    pub department: Option<String>,
    pub exclusive: bool,
    pub weekdays: Option<String>,
    pub start_minute: Option<i32>,
    pub end_minute: Option<i32>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = session_events)]
pub struct SessionEventRow {
    pub id: i64,
    pub session_id: i64,
    pub kind: String,
    pub actor_id: Option<i64>,
    pub consultant_id: Option<i64>,
    pub detail: Option<String>,
    pub created_at: NaiveDateTime,
}
