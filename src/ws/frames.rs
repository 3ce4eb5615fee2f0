//! The WebSocket protocol of API.md as serde enums: `{"type": …, "data": …}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use std::sync::Arc;

use crate::db::models::User;
use crate::model::{ConsultantStatus, EventId, OfferId, SessionId, UserId};
use crate::support::{MatchView, SessionView};

/// Frames a client may send. Unknown types and malformed data are answered with an
/// `error` frame; the socket stays open.
#[derive(Debug, Deserialize)]
#[serde(
    tag = "type",
    content = "data",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum ClientFrame {
    Ping(#[serde(default)] Empty),
    Presence(PresenceData),
    Accept(SessionRef),
    Decline(SessionRef),
    Signal(SignalData),
    CallJoined(SessionRef),
    CallLeft(SessionRef),
}

impl ClientFrame {
    /// Parses a text frame. `data` must be a JSON object (or absent for `ping`): serde
    /// alone would also take a positional array like `[7]` for `{"session_id": 7}`.
    ///
    /// A frame without `data` is read as `data: {}`, so `{"type":"ping"}` is a ping
    /// and a frame of another type is told which field of `data` it lacks.
    pub fn parse(text: &str) -> Result<ClientFrame, String> {
        let mut value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        match value.get("data") {
            Some(Value::Object(_)) => {}
            None if value.is_object() => {
                value["data"] = Value::Object(serde_json::Map::new());
            }
            None => return Err("a frame is a JSON object {\"type\", \"data\"}".into()),
            Some(_) => return Err("`data` must be a JSON object".into()),
        }
        serde_json::from_value(value).map_err(|e| e.to_string())
    }
}

/// `ping` may carry `{}` or nothing at all.
#[derive(Debug, Default, Deserialize)]
pub struct Empty {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceData {
    pub status: ConsultantStatus,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRef {
    pub session_id: SessionId,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalData {
    pub session_id: SessionId,
    pub payload: Value,
}

/// Frames the server pushes. Serialised once and shared by every socket that
/// receives it; each socket adds its own `seq`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum ServerEvent {
    Hello {
        user: User,
        /// Where this socket joins the stream: resume from here (or from the
        /// `event_id` of the last frame that carried one) after a drop.
        last_event_id: EventId,
    },
    Pong {},
    /// Everything after `from` up to `to` that this socket may see has been sent;
    /// live frames follow.
    Resumed {
        from: EventId,
        to: EventId,
    },
    /// `since` is older than the stream keeps: refetch state over REST, then carry
    /// on from `last_event_id`.
    ResyncRequired {
        since: EventId,
        last_event_id: EventId,
        reason: &'static str,
    },
    SupportRequestNew {
        session: SessionView,
        position: Option<usize>,
    },
    SupportRequestOffered {
        session: SessionView,
        offer_id: OfferId,
        expires_at: String,
        #[serde(rename = "match")]
        match_info: MatchView,
    },
    SupportRequestOfferRevoked {
        session_id: SessionId,
        reason: &'static str,
    },
    SupportRequestAccepted {
        session: SessionView,
    },
    SupportSessionStarted {
        session: SessionView,
    },
    SupportSessionEnded {
        session: SessionView,
    },
    /// The consultant recorded notes and the resolution.
    SupportSessionWrappedUp {
        session: SessionView,
    },
    SupportRequestCancelled {
        session_id: SessionId,
    },
    /// Every socket of the other party has been gone past the grace period.
    SupportPartyLeft {
        session_id: SessionId,
        user_id: UserId,
    },
    SupportPartyReturned {
        session_id: SessionId,
        user_id: UserId,
    },
    ConsultantStatusChanged {
        consultant_id: UserId,
        status: ConsultantStatus,
    },
    QueuePositionUpdate {
        session_id: SessionId,
        position: usize,
        estimated_wait_seconds: u64,
    },
    Signal {
        session_id: SessionId,
        from: UserId,
        payload: Value,
    },
    Error {
        error: &'static str,
        message: String,
    },
}

impl ServerEvent {
    /// The frame as JSON text without `seq`, to be stamped per connection.
    pub fn encode(&self) -> Arc<str> {
        self.encode_text().into()
    }

    /// The frame of a stream event: `event_id` beside `type` and `data`.
    pub fn encode_for(&self, event_id: EventId) -> Arc<str> {
        let body = self.encode_text();
        let rest = body.strip_prefix('{').unwrap_or(&body);
        format!("{{\"event_id\":{},{rest}", event_id.0).into()
    }

    fn encode_text(&self) -> String {
        match serde_json::to_string(self) {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(error = %e, "could not encode a server event");
                r#"{"type":"error","data":{"error":"internal","message":"event encoding failed"}}"#
                    .into()
            }
        }
    }
}

/// Adds `"seq": n` to an encoded frame without re-serialising it: every encoded event
/// is a JSON object, so the stamp goes right after its opening brace.
pub fn stamp(encoded: &str, seq: u64) -> String {
    let body = encoded.strip_prefix('{').unwrap_or(encoded);
    let mut out = String::with_capacity(encoded.len() + 16);
    out.push_str("{\"seq\":");
    out.push_str(itoa_u64(seq).as_str());
    out.push(',');
    out.push_str(body);
    out
}

fn itoa_u64(n: u64) -> String {
    n.to_string()
}
