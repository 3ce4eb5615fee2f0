//! The events of the stream (DESIGN.md §9): every state change of a session, and of
//! a consultant's status, is one of these, stored in `session_events` in the same
//! transaction as the change. `kind` is its own column (for the timeline and for
//! queries); the variant's fields are the JSON `detail`.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::ids::{EventId, OfferId, SessionId, UserId};
use super::vocab::{ConsultantStatus, MatchTier};

/// Why the server withdrew an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RescindReason {
    /// The consultant stopped being available (away, offline, into a call).
    ConsultantUnavailable,
    /// The video room could not be created when they accepted.
    VideoUnavailable,
    /// Someone else took the request from the queue (an admin, or a consultant
    /// taking it while it was offered to them is an accept, not this).
    TakenElsewhere,
    /// An admin handed the request to a named consultant.
    Reassigned,
}

impl RescindReason {
    /// The `reason` of `support_request_offer_revoked` (API.md).
    pub fn wire(self) -> &'static str {
        match self {
            RescindReason::ConsultantUnavailable | RescindReason::VideoUnavailable => "unavailable",
            RescindReason::TakenElsewhere => "accepted_elsewhere",
            RescindReason::Reassigned => "reassigned",
        }
    }
}

/// What happened, with what the fan-out needs beyond the session row.
///
/// No variant carries free text from people (summaries, notes, feedback): those
/// live only in the session row, which is why retention can erase them there alone
/// (`crate::retention`). The only strings are the matcher's explanations, built
/// from departments and ranks, and the video provider's meeting ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventData {
    Requested,
    Offered {
        offer_id: OfferId,
        expires_at: NaiveDateTime,
        tier: MatchTier,
        score: i64,
        reasons: Vec<String>,
        /// The consultant has auto-accept on: the auto-accept reactor takes it.
        auto_accept: bool,
    },
    Declined {
        offer_id: OfferId,
    },
    OfferTimedOut {
        offer_id: OfferId,
    },
    OfferRescinded {
        offer_id: OfferId,
        reason: RescindReason,
    },
    /// The request was offered to `consultant_id`, who accepted it.
    Accepted {
        offer_id: OfferId,
    },
    /// A consultant (or an admin for one) took it from the queue without an offer.
    Taken,
    Joined,
    Left,
    Started,
    Ended,
    WrappedUp {
        resolved: bool,
    },
    Rated {
        rating: u8,
    },
    Cancelled {
        /// The offer that was out when it was cancelled, if any.
        offer_id: Option<OfferId>,
    },
    /// Every socket of this party has been gone past the grace period during a call.
    PartyLeft {
        user_id: UserId,
    },
    PartyReturned {
        user_id: UserId,
    },
    /// A consultant's status changed (no session).
    ConsultantStatus {
        status: ConsultantStatus,
    },
    /// Reported by the video provider (Daily webhooks); timeline only.
    MeetingStarted {
        meeting_id: Option<String>,
    },
    MeetingEnded {
        meeting_id: Option<String>,
        duration_seconds: Option<i64>,
    },
}

macro_rules! event_kinds {
    ($($variant:ident => $text:literal),+ $(,)?) => {
        /// The `kind` column of `session_events`: one word per [`EventData`] variant.
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize,
            diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub enum EventKind { $(#[serde(rename = $text)] $variant),+ }

        impl EventKind {
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $(EventKind::$variant => $text),+ }
            }
            pub fn parse(text: &str) -> Option<EventKind> {
                match text { $($text => Some(EventKind::$variant),)+ _ => None }
            }
        }

        super::vocab::string_schema!(EventKind, [$($text),+]);

        impl EventData {
            pub fn kind(&self) -> EventKind {
                match self { $(EventData::$variant { .. } => EventKind::$variant),+ }
            }
        }
    };
}

event_kinds! {
    Requested => "requested",
    Offered => "offered",
    Declined => "declined",
    OfferTimedOut => "offer_timed_out",
    OfferRescinded => "offer_rescinded",
    Accepted => "accepted",
    Taken => "taken",
    Joined => "joined",
    Left => "left",
    Started => "started",
    Ended => "ended",
    WrappedUp => "wrapped_up",
    Rated => "rated",
    Cancelled => "cancelled",
    PartyLeft => "party_left",
    PartyReturned => "party_returned",
    ConsultantStatus => "consultant_status",
    MeetingStarted => "meeting_started",
    MeetingEnded => "meeting_ended",
}

super::vocab::text_column!(EventKind, "event kind");

/// One committed event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    pub id: EventId,
    /// None only for consultant status changes.
    pub session_id: Option<SessionId>,
    /// Who did it (None when the server did).
    pub actor_id: Option<UserId>,
    /// The consultant it concerns, if any.
    pub consultant_id: Option<UserId>,
    pub at: NaiveDateTime,
    pub data: EventData,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        self.data.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_column_matches_the_payload_tag() {
        let data = EventData::OfferRescinded {
            offer_id: OfferId(3),
            reason: RescindReason::Reassigned,
        };
        let json = serde_json::to_value(&data).unwrap();
        assert_eq!(json["kind"], data.kind().as_str());
        let back: EventData = serde_json::from_value(json).unwrap();
        assert_eq!(back, data);
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(*kind));
        }
    }
}
