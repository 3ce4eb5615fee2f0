//! The parties of every connecting or active call, so WebRTC signalling (dozens of
//! frames per call) does not read the database per frame.
//!
//! One writer: the event stream ([`LiveCalls::apply`], subscribed to the hub), plus
//! the load at start-up. Readers that miss (a frame racing the accept's event) fall
//! back to storage without writing here, so the view never disagrees with the stream.

use dashmap::DashMap;

use crate::db::models::SessionRow;
use crate::events::Published;
use crate::model::{EventData, SessionId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parties {
    pub requester_id: UserId,
    pub consultant_id: UserId,
}

impl Parties {
    pub fn other_than(&self, user_id: UserId) -> Option<UserId> {
        if user_id == self.requester_id {
            Some(self.consultant_id)
        } else if user_id == self.consultant_id {
            Some(self.requester_id)
        } else {
            None
        }
    }

    pub fn of(row: &SessionRow) -> Option<Parties> {
        if !row.status.in_call() {
            return None;
        }
        row.consultant_id.map(|consultant_id| Parties {
            requester_id: row.requester_id,
            consultant_id,
        })
    }
}

#[derive(Default)]
pub struct LiveCalls {
    calls: DashMap<SessionId, Parties>,
}

impl LiveCalls {
    pub fn load(&self, live: &[SessionRow]) {
        for row in live {
            if let Some(parties) = Parties::of(row) {
                self.calls.insert(row.id, parties);
            }
        }
    }

    pub fn get(&self, session_id: SessionId) -> Option<Parties> {
        self.calls.get(&session_id).map(|p| *p)
    }

    /// The calls this person is a party of (a walk over the calls in progress,
    /// which only presence changes need).
    pub fn sessions_of(&self, user_id: UserId) -> Vec<SessionId> {
        self.calls
            .iter()
            .filter(|c| c.requester_id == user_id || c.consultant_id == user_id)
            .map(|c| *c.key())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Follows the stream: a call exists from its accept (or take) to its end.
    pub fn apply(&self, published: &Published) {
        let Some(session_id) = published.event.session_id else {
            return;
        };
        match &published.event.data {
            EventData::Accepted { .. } | EventData::Taken => {
                if let Some(parties) = published.session.as_deref().and_then(Parties::of) {
                    self.calls.insert(session_id, parties);
                }
            }
            EventData::Ended | EventData::Cancelled { .. } => {
                self.calls.remove(&session_id);
            }
            _ => {}
        }
    }
}
