//! The provider interface and the types every provider shares.

use std::fmt;

use chrono::{DateTime, Utc};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize};

/// Every room we create starts with this, so rooms left over after a crash can
/// be told apart from rooms other applications keep on the same Daily domain.
pub const ROOM_PREFIX: &str = "nicehr-";

/// Which provider is running; the `join` reply tells the browser which client
/// code (daily-js or plain WebRTC) to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Daily,
    Builtin,
}

impl ProviderKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ProviderKind::Daily => "daily",
            ProviderKind::Builtin => "builtin",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A call room as the provider knows it.
///
/// `name` and `url` are always the provider's own values: HIPAA Daily domains
/// replace the name we ask for, so storing our requested name would point at
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Room {
    pub name: String,
    /// `None` for the built-in provider, whose room lives in this server.
    pub url: Option<String>,
    /// When new joins stop being accepted; `None` when the room never expires.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Someone who is about to join a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub user_id: i64,
    pub display_name: String,
    /// The consultant owns the call (can eject, end it for everyone).
    pub is_owner: bool,
}

/// Why a provider call failed, split by what the caller should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VideoError {
    /// Transient: timeouts, connection errors, 5xx or 429 that outlasted the
    /// retries. Callers answer 503 `unavailable` and keep the request queued.
    #[error("video provider unavailable: {0}")]
    Unavailable(String),
    /// The provider understood and refused (a 4xx other than 404/429); retrying
    /// the same request will not help, so it points at configuration or a bug.
    #[error("video provider rejected the request ({status} {error}): {info}")]
    Rejected {
        status: u16,
        error: String,
        info: String,
    },
    #[error("video room not found")]
    NotFound,
}

/// The operations dispatch needs from a video backend.
#[async_trait::async_trait]
pub trait VideoProvider: Send + Sync + 'static {
    fn kind(&self) -> ProviderKind;

    /// Creates the room a session's call happens in; called on accept, so an
    /// error here must leave the request queued.
    async fn create_room(&self, session_id: i64) -> Result<Room, VideoError>;

    /// Idempotent: a room that is already gone counts as deleted, so a delete
    /// retried after a lost reply or a crash does not fail the session's end.
    async fn delete_room(&self, room_name: &str) -> Result<(), VideoError>;

    /// A per-person credential for the room, or `None` when the provider needs
    /// none (the built-in one authorises over the server's own WebSocket).
    async fn create_meeting_token(
        &self,
        room: &Room,
        who: &Participant,
    ) -> Result<Option<String>, VideoError>;

    /// `Ok(None)` when the room does not exist.
    async fn room_info(&self, room_name: &str) -> Result<Option<Room>, VideoError>;

    /// Rooms carrying [`ROOM_PREFIX`], for cleaning up leftovers after a crash.
    ///
    /// HIPAA domains rename rooms, so there the sweep must use the room names
    /// stored with sessions instead; such rooms still stop admitting joins at
    /// their expiry.
    async fn list_rooms(&self) -> Result<Vec<Room>, VideoError>;

    /// Push a live room's expiry forward: sessions have no time limit, and a
    /// room past its expiry refuses anyone who reconnects.
    async fn extend_room(&self, room_name: &str) -> Result<(), VideoError>;

    /// STUN/TURN servers the browsers need for a peer-to-peer call; empty when
    /// the provider carries the media itself.
    fn ice_servers(&self) -> Vec<IceServer> {
        Vec::new()
    }
}

/// A room name for a session: `nicehr-s{id}-{random}`.
///
/// The random part keeps a session that is re-accepted (or a retried create
/// after a lost reply) from colliding with a room that still exists.
pub fn room_name_for(session_id: i64) -> String {
    let suffix: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(8)
        .map(|b| char::from(b).to_ascii_lowercase())
        .collect();
    format!("{ROOM_PREFIX}s{session_id}-{suffix}")
}

/// The session a name from [`room_name_for`] was made for; `None` for any other
/// name (renamed by a HIPAA domain, or not ours).
pub fn session_id_from_room_name(name: &str) -> Option<i64> {
    let rest = name.strip_prefix(ROOM_PREFIX)?.strip_prefix('s')?;
    let (id, suffix) = rest.split_once('-')?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) || suffix.is_empty() {
        return None;
    }
    id.parse().ok()
}

/// Daily (and the stand-in) accept only these characters in room names.
pub fn is_valid_room_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One STUN/TURN server, shaped like the browser's `RTCIceServer` so it can be
/// handed to `new RTCPeerConnection({iceServers})` unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IceServer {
    /// Accepts a single string as well, as browsers do, so configuration files
    /// can write `urls = "stun:host:3478"`.
    #[serde(deserialize_with = "one_or_many")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl IceServer {
    pub fn stun(url: impl Into<String>) -> Self {
        IceServer {
            urls: vec![url.into()],
            username: None,
            credential: None,
        }
    }

    pub fn turn(
        url: impl Into<String>,
        username: impl Into<String>,
        credential: impl Into<String>,
    ) -> Self {
        IceServer {
            urls: vec![url.into()],
            username: Some(username.into()),
            credential: Some(credential.into()),
        }
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize, utoipa::ToSchema)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_lead_back_to_their_session() {
        for id in [1, 42, i64::MAX] {
            assert_eq!(session_id_from_room_name(&room_name_for(id)), Some(id));
        }
        for name in [
            "nicehr-s-abc",
            "nicehr-s12",
            "nicehr-s12-",
            "nicehr-sx1-abc",
            "nicehr-s+1-abc",
            "nicehr-s99999999999999999999-abc",
            "other-s12-abc",
            "AbCdEfGh123",
        ] {
            assert_eq!(session_id_from_room_name(name), None, "{name}");
        }
    }
}
