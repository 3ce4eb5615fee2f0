//! Peer-to-peer WebRTC between the two browsers, signalled over the server's
//! own WebSocket: the default, because it needs no third-party account.

use std::collections::HashSet;
use std::sync::Mutex;

use super::provider::{
    room_name_for, IceServer, Participant, ProviderKind, Room, VideoError, VideoProvider,
};

/// The "room" is only a name the server uses to pair the two parties'
/// signalling; the media never touches this server.
#[derive(Debug, Default)]
pub struct BuiltinProvider {
    ice_servers: Vec<IceServer>,
    rooms: Mutex<HashSet<String>>,
}

impl BuiltinProvider {
    /// An empty ICE list is a working default: host candidates are enough on
    /// loopback and on a hospital LAN, and this machine has no outside network
    /// to reach a public STUN server anyway.
    pub fn new(ice_servers: Vec<IceServer>) -> Self {
        BuiltinProvider {
            ice_servers,
            rooms: Mutex::new(HashSet::new()),
        }
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A panic while holding this lock cannot leave the set half-updated.
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl VideoProvider for BuiltinProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Builtin
    }

    async fn create_room(&self, session_id: i64) -> Result<Room, VideoError> {
        let mut rooms = self.rooms();
        let name = loop {
            let candidate = room_name_for(session_id);
            if rooms.insert(candidate.clone()) {
                break candidate;
            }
        };
        Ok(Room {
            name,
            url: None,
            expires_at: None,
        })
    }

    async fn delete_room(&self, room_name: &str) -> Result<(), VideoError> {
        self.rooms().remove(room_name);
        Ok(())
    }

    async fn create_meeting_token(
        &self,
        _room: &Room,
        _who: &Participant,
    ) -> Result<Option<String>, VideoError> {
        Ok(None)
    }

    async fn room_info(&self, room_name: &str) -> Result<Option<Room>, VideoError> {
        Ok(self.rooms().contains(room_name).then(|| Room {
            name: room_name.to_owned(),
            url: None,
            expires_at: None,
        }))
    }

    /// Nothing can be left over: the rooms die with the process.
    async fn list_rooms(&self) -> Result<Vec<Room>, VideoError> {
        Ok(Vec::new())
    }

    async fn extend_room(&self, _room_name: &str) -> Result<(), VideoError> {
        Ok(())
    }

    fn ice_servers(&self) -> Vec<IceServer> {
        self.ice_servers.clone()
    }
}
