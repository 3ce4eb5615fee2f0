//! Who is connected, reachable from HTTP handlers and actors without a round trip
//! through an actor: connection id → socket, user id → their connections (tabs).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use dashmap::DashMap;

use crate::db::models::Role;
use crate::ws::frames::ServerEvent;

/// An encoded event delivered to one socket, which stamps its own `seq`.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Push(pub Arc<str>);

#[derive(Clone)]
pub struct SocketEntry {
    pub user_id: i64,
    pub role: Role,
    pub recipient: Recipient<Push>,
    /// False for clients that opened `/ws?events=minimal`: they get only what is
    /// addressed to them (offers, their own calls), never role-wide broadcasts. A load
    /// generator holding thousands of consultant sockets would otherwise measure the
    /// fan-out of `support_request_new` to every one of them, not dispatch.
    pub broadcasts: bool,
}

#[derive(Default)]
pub struct Registry {
    next_id: AtomicU64,
    sockets: DashMap<u64, SocketEntry>,
    by_user: DashMap<i64, Vec<u64>>,
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

    pub fn connections_of(&self, user_id: i64) -> usize {
        self.by_user.get(&user_id).map_or(0, |ids| ids.len())
    }

    pub fn socket_count(&self) -> usize {
        self.sockets.len()
    }

    pub fn send_to_user(&self, user_id: i64, event: &ServerEvent) {
        self.push_to_user(user_id, &event.encode());
    }

    pub fn push_to_user(&self, user_id: i64, encoded: &Arc<str>) {
        let ids: Vec<u64> = match self.by_user.get(&user_id) {
            Some(ids) => ids.clone(),
            None => return,
        };
        for id in ids {
            if let Some(entry) = self.sockets.get(&id) {
                entry.recipient.do_send(Push(encoded.clone()));
            }
        }
    }

    pub fn send_to_users(&self, user_ids: &[i64], event: &ServerEvent) {
        let encoded = event.encode();
        for user_id in user_ids {
            self.push_to_user(*user_id, &encoded);
        }
    }

    /// Every socket whose role passes the filter.
    pub fn broadcast(&self, event: &ServerEvent, to: impl Fn(Role) -> bool) {
        let encoded = event.encode();
        for entry in self.listeners.iter() {
            if to(entry.role) {
                entry.recipient.do_send(Push(encoded.clone()));
            }
        }
    }
}
