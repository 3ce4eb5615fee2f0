//! The stored vocabularies, one enum each. Each maps to a text column once (the
//! `vocabulary!` macro: serde for the wire, diesel `ToSql`/`FromSql` for both
//! backends); reading a value the code does not know is a deserialisation error,
//! never quietly another value.

use diesel::sql_types::Text;
use serde::{Deserialize, Serialize};

/// A text that is not one of a vocabulary's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {vocabulary} {value:?}")]
pub struct UnknownWord {
    pub vocabulary: &'static str,
    pub value: String,
}

/// Display, FromStr and the diesel text-column mapping of a vocabulary enum that
/// has `as_str` and `parse`.
macro_rules! text_column {
    ($name:ident, $what:literal) => {
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::model::vocab::UnknownWord;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text).ok_or_else(|| $crate::model::vocab::UnknownWord {
                    vocabulary: $what,
                    value: text.to_owned(),
                })
            }
        }

        impl ::diesel::serialize::ToSql<::diesel::sql_types::Text, ::diesel::sqlite::Sqlite>
            for $name
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut ::diesel::serialize::Output<'b, '_, ::diesel::sqlite::Sqlite>,
            ) -> ::diesel::serialize::Result {
                out.set_value(self.as_str());
                Ok(::diesel::serialize::IsNull::No)
            }
        }

        impl ::diesel::serialize::ToSql<::diesel::sql_types::Text, ::diesel::pg::Pg> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut ::diesel::serialize::Output<'b, '_, ::diesel::pg::Pg>,
            ) -> ::diesel::serialize::Result {
                <str as ::diesel::serialize::ToSql<::diesel::sql_types::Text, ::diesel::pg::Pg>>::to_sql(
                    self.as_str(),
                    &mut out.reborrow(),
                )
            }
        }

        impl<DB> ::diesel::deserialize::FromSql<::diesel::sql_types::Text, DB> for $name
        where
            DB: ::diesel::backend::Backend,
            String: ::diesel::deserialize::FromSql<::diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> ::diesel::deserialize::Result<Self> {
                let text = <String as ::diesel::deserialize::FromSql<
                    ::diesel::sql_types::Text,
                    DB,
                >>::from_sql(bytes)?;
                Ok(text.parse::<$name>()?)
            }
        }
    };
}
pub(crate) use text_column;

/// The OpenAPI schema of a vocabulary: a string, one of its words. Written out because
/// utoipa's derive does not see a `serde(rename)` whose literal comes from a macro.
macro_rules! string_schema {
    ($name:ident, [$($text:literal),+]) => {
        impl ::utoipa::PartialSchema for $name {
            fn schema() -> ::utoipa::openapi::RefOr<::utoipa::openapi::schema::Schema> {
                ::utoipa::openapi::ObjectBuilder::new()
                    .schema_type(::utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl ::utoipa::ToSchema for $name {
            fn name() -> ::std::borrow::Cow<'static, str> {
                ::std::borrow::Cow::Borrowed(stringify!($name))
            }
        }
    };
}
pub(crate) use string_schema;

macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident ($what:literal) { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize,
            diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
        )]
        #[diesel(sql_type = Text)]
        pub enum $name { $($(#[$vmeta])* #[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The one spelling used on the wire and in storage.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Exact spelling only.
            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            /// Every word, for error messages ("must be one of …").
            pub fn words() -> String {
                Self::ALL.iter().map(|w| w.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        text_column!($name, $what);
        string_schema!($name, [$($text),+]);
    };
}

vocabulary!(Role("role") {
    Admin => "admin",
    Consultant => "consultant",
    HospitalStaff => "hospital_staff",
    HospitalLeadership => "hospital_leadership",
});

impl Role {
    /// Roles that ask for help (and wait in the queue).
    pub fn requests_support(self) -> bool {
        matches!(
            self,
            Role::HospitalStaff | Role::HospitalLeadership | Role::Admin
        )
    }

    /// Roles that answer requests (see the queue, accept, take).
    pub fn answers_requests(self) -> bool {
        matches!(self, Role::Consultant | Role::Admin)
    }
}

vocabulary!(
    /// Hospital subscription tiers; the plan decides live video and response targets.
    Plan("plan") {
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

    /// How soon the plan promises a response; a request's deadline is its creation
    /// plus this. DESIGN.md gives Enterprise, Premium and Professional; Basic has no
    /// live support, so "next business day" (24 h) is used for its queue order.
    pub fn response_target(self) -> chrono::Duration {
        match self {
            Plan::Enterprise => chrono::Duration::minutes(15),
            Plan::Premium => chrono::Duration::hours(1),
            Plan::Professional => chrono::Duration::hours(4),
            Plan::Basic => chrono::Duration::hours(24),
        }
    }
}

vocabulary!(
    /// DESIGN.md §5: `pending → connecting → active → completed`, or `cancelled`.
    /// The allowed moves are in [`crate::model::lifecycle`].
    SessionStatus("session status") {
        Pending => "pending",
        Connecting => "connecting",
        Active => "active",
        Completed => "completed",
        Cancelled => "cancelled",
    }
);

impl SessionStatus {
    /// A session that still occupies its parties.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            SessionStatus::Pending | SessionStatus::Connecting | SessionStatus::Active
        )
    }

    /// A call exists (accepted, not finished).
    pub fn in_call(self) -> bool {
        matches!(self, SessionStatus::Connecting | SessionStatus::Active)
    }

    pub const LIVE: [SessionStatus; 3] = [
        SessionStatus::Pending,
        SessionStatus::Connecting,
        SessionStatus::Active,
    ];
    pub const IN_CALL: [SessionStatus; 2] = [SessionStatus::Connecting, SessionStatus::Active];
    pub const FINISHED: [SessionStatus; 2] = [SessionStatus::Completed, SessionStatus::Cancelled];
}

vocabulary!(
    /// What a consultant is doing. `busy` is only ever set by the server, while the
    /// consultant is a party of a connecting or active session.
    ConsultantStatus("consultant status") {
        Online => "online",
        Available => "available",
        Busy => "busy",
        Away => "away",
        Offline => "offline",
    }
);

vocabulary!(
    /// How urgent a request is. Declared from least to most urgent, so `Ord` says
    /// "more urgent is greater"; the queue sorts on it descending.
    #[derive(PartialOrd, Ord, Default)]
    Urgency("urgency") {
        /// The API's default when a request names no urgency.
        #[default]
        Normal => "normal",
        Urgent => "urgent",
        Critical => "critical",
    }
);

vocabulary!(
    /// A consultant's level in a department; `Ord` runs Standard < Expert so a
    /// department listed twice counts at the better level.
    #[derive(PartialOrd, Ord)]
    Proficiency("proficiency") {
        Standard => "standard",
        Expert => "expert",
    }
);

vocabulary!(
    /// Which rule produced an offer; stored on the session (`match.tier`).
    ///
    /// Deliberately not `Ord`: the order of consideration is Dedicated, Requested,
    /// Preferred, A, B, C, D, which is not the order the wire contract lists.
    MatchTier("match tier") {
        Dedicated => "dedicated",
        Preferred => "preferred",
        Requested => "requested",
        A => "A",
        B => "B",
        C => "C",
        D => "D",
        /// A consultant or admin took the request from the queue.
        Taken => "taken",
    }
);

impl MatchTier {
    /// The smart-match tier for what we know of a consultant (DESIGN.md §4 step 2).
    pub fn smart(worked_before: bool, specialises: bool) -> MatchTier {
        match (worked_before, specialises) {
            (true, true) => MatchTier::A,
            (true, false) => MatchTier::B,
            (false, true) => MatchTier::C,
            (false, false) => MatchTier::D,
        }
    }

    /// Lower is better among A–D; the special tiers never compete on rank.
    pub fn smart_rank(self) -> u8 {
        match self {
            MatchTier::A => 0,
            MatchTier::B => 1,
            MatchTier::C => 2,
            _ => 3,
        }
    }
}

vocabulary!(
    /// How an offer (a reservation of one request for one consultant) ended.
    OfferOutcome("offer outcome") {
        /// Out now: the consultant may accept or decline until it expires.
        Pending => "pending",
        Accepted => "accepted",
        Declined => "declined",
        TimedOut => "timed_out",
        /// Withdrawn by the server: the consultant became unavailable, an admin
        /// reassigned the request, another consultant took it, or the video room
        /// could not be created.
        Rescinded => "rescinded",
        /// The requester cancelled the request while it was offered.
        Cancelled => "cancelled",
    }
);

impl OfferOutcome {
    /// The consultant missed the request: skipped while someone else is eligible.
    pub fn is_miss(self) -> bool {
        matches!(self, OfferOutcome::Declined | OfferOutcome::TimedOut)
    }
}

vocabulary!(
    /// What started a pass of the retention job (`retention_runs.started_by`).
    RetentionTrigger("retention trigger") {
        /// The server's own interval task (`RETENTION_SWEEP_SECS`).
        Schedule => "schedule",
        /// An operator's `nicehr-support retention run`.
        Command => "command",
    }
);

vocabulary!(
    /// What an admin changed, as the audit log's `action` names it. The log also holds
    /// other words (reads of patient data, sign-in unlocks); these are the console's.
    AdminAction("admin action") {
        CreateHospital => "create_hospital",
        UpdateHospital => "update_hospital",
        DeactivateHospital => "deactivate_hospital",
        ReactivateHospital => "reactivate_hospital",
        CreateUser => "create_user",
        UpdateUser => "update_user",
        DeactivateUser => "deactivate_user",
        ReactivateUser => "reactivate_user",
        ResetPassword => "reset_password",
        SetSpecialties => "set_specialties",
        SetHours => "set_hours",
        CreateAssignment => "create_assignment",
        UpdateAssignment => "update_assignment",
        DeleteAssignment => "delete_assignment",
    }
);

/// Departments the product knows; requests and specialties must name one of these.
/// Not a closed enum: the list is the product's, not the protocol's, and grows.
pub const DEPARTMENTS: &[&str] = &[
    "ER",
    "Pharmacy",
    "Radiology",
    "Laboratory",
    "Nursing",
    "Scheduling",
];

/// The OpenAPI schema of a department field: one of [`DEPARTMENTS`] (the server also
/// takes other capitalisations of them).
pub fn department_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(DEPARTMENTS.iter().copied()))
        .build()
}

/// The canonical spelling of a department, matched case-insensitively.
pub fn canonical_department(text: &str) -> Option<&'static str> {
    DEPARTMENTS
        .iter()
        .copied()
        .find(|d| d.eq_ignore_ascii_case(text.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_round_trips_and_unknown_words_are_errors() {
        for s in SessionStatus::ALL {
            assert_eq!(SessionStatus::parse(s.as_str()), Some(*s));
        }
        for t in MatchTier::ALL {
            assert_eq!(t.as_str().parse::<MatchTier>(), Ok(*t));
        }
        let err = "Pending".parse::<SessionStatus>().unwrap_err();
        assert_eq!(err.vocabulary, "session status");
        assert!(
            "a".parse::<MatchTier>().is_err(),
            "tiers are case-sensitive"
        );
        assert!(Urgency::Critical > Urgency::Urgent && Urgency::Urgent > Urgency::Normal);
        assert_eq!(Urgency::default(), Urgency::Normal);
    }

    #[test]
    fn serde_uses_the_stored_spelling() {
        let json = serde_json::to_string(&OfferOutcome::TimedOut).unwrap();
        assert_eq!(json, "\"timed_out\"");
        assert!(serde_json::from_str::<Role>("\"root\"").is_err());
    }
}
