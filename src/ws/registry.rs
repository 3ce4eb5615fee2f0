//! Who is connected, reachable from the fan-out, handlers and watchers without a
//! round trip through an actor: connection id → socket, user id → their connections
//! (tabs).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use dashmap::DashMap;

use crate::model::{EventId, Role, UserId};
use crate::ws::frames::ServerEvent;

/// Why the server closes a socket (a WebSocket close code with a reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// The token was revoked or expired, or the account deactivated: 4001.
    SignedOut(&'static str),
}

impl Closing {
    pub const SIGNED_OUT_CODE: u16 = 4001;

    pub fn code(self) -> u16 {
        match self {
            Closing::SignedOut(_) => Self::SIGNED_OUT_CODE,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Closing::SignedOut(reason) => reason,
        }
    }
}

/// What is delivered to one socket.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub enum Outbound {
    /// An encoded frame (the socket stamps its own `seq`), with the id of the stream
    /// event it comes from, if any.
    Frame {
        encoded: Arc<str>,
        event_id: Option<EventId>,
    },
    Close(Closing),
}

#[derive(Clone)]
pub struct SocketEntry {
    pub user_id: UserId,
    pub role: Role,
    /// SHA-256 of the token the socket authenticated with, so a revocation can
    /// find its sockets.
    pub token_hash: String,
    pub recipient: Recipient<Outbound>,
    /// False for clients that opened `/ws?events=minimal`: they get only what is
    /// addressed to them (offers, their own calls), never role-wide broadcasts. A load
    /// generator holding thousands of consultant sockets would otherwise measure the
    /// fan-out of `support_request_new` to every one of them, not dispatch.
    pub broadcasts: bool,
}

/// Which roles a broadcast goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listeners {
    /// Consultants and admins: the queue's audience.
    Desk,
    Everyone,
}

impl Listeners {
    pub fn includes(self, role: Role) -> bool {
        match self {
            Listeners::Desk => role.answers_requests(),
            Listeners::Everyone => true,
        }
    }
}

#[derive(Default)]
pub struct Registry {
    next_id: AtomicU64,
    sockets: DashMap<u64, SocketEntry>,
    by_user: DashMap<UserId, Vec<u64>>,
    /// The subset of `sockets` that wants role-wide broadcasts: a broadcast walks
    /// only these, so thousands of minimal sockets cost it nothing.
    listeners: DashMap<u64, SocketEntry>,
}

impl Registry {
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    pub fn register(&self, entry: SocketEntry) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.by_user.entry(entry.user_id).or_default().push(id);
        if entry.broadcasts {
            self.listeners.insert(id, entry.clone());
        }
        self.sockets.insert(id, entry);
        id
    }

    /// Returns how many sockets the user still has open.
    pub fn unregister(&self, id: u64) -> usize {
        let Some((_, entry)) = self.sockets.remove(&id) else {
            return 0;
        };
        self.listeners.remove(&id);
        let mut remaining = 0;
        if let Some(mut ids) = self.by_user.get_mut(&entry.user_id) {
            ids.retain(|other| *other != id);
            remaining = ids.len();
        }
        if remaining == 0 {
            self.by_user
                .remove_if(&entry.user_id, |_, ids| ids.is_empty());
        }
        remaining
    }

    pub fn connections_of(&self, user_id: UserId) -> usize {
        self.by_user.get(&user_id).map_or(0, |ids| ids.len())
    }

    pub fn socket_count(&self) -> usize {
        self.sockets.len()
    }

    pub fn send_to_user(&self, user_id: UserId, event: &ServerEvent) {
        self.deliver_to_user(
            user_id,
            &Outbound::Frame {
                encoded: event.encode(),
                event_id: None,
            },
        );
    }

    pub fn deliver_to_user(&self, user_id: UserId, outbound: &Outbound) {
        let ids: Vec<u64> = match self.by_user.get(&user_id) {
            Some(ids) => ids.clone(),
            None => return,
        };
        for id in ids {
            if let Some(entry) = self.sockets.get(&id) {
                entry.recipient.do_send(outbound.clone());
            }
        }
    }

    /// Every listening socket whose role is in `to`, except the users in `skip`
    /// (who got the frame addressed to them already).
    pub fn broadcast(&self, outbound: &Outbound, to: Listeners, skip: &[UserId]) {
        for entry in self.listeners.iter() {
            if to.includes(entry.role) && !skip.contains(&entry.user_id) {
                entry.recipient.do_send(outbound.clone());
            }
        }
    }

    /// Closes every socket of a user (an admin deactivated or changed the account:
    /// every token of theirs was revoked with it).
    pub fn close_user(&self, user_id: UserId, closing: Closing) -> usize {
        let ids: Vec<u64> = match self.by_user.get(&user_id) {
            Some(ids) => ids.clone(),
            None => return 0,
        };
        let mut closed = 0;
        for id in ids {
            if let Some(entry) = self.sockets.get(&id) {
                entry.recipient.do_send(Outbound::Close(closing));
                closed += 1;
            }
        }
        closed
    }

    /// Closes every socket that authenticated with this token.
    pub fn close_token(&self, token_hash: &str, closing: Closing) -> usize {
        let mut closed = 0;
        for entry in self.sockets.iter().filter(|e| e.token_hash == token_hash) {
            entry.recipient.do_send(Outbound::Close(closing));
            closed += 1;
        }
        closed
    }
}
