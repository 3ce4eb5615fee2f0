//! One actor per person with a socket open: it counts their sockets and runs the
//! grace period after the last one closes, so a page reload or flaky Wi-Fi neither
//! flips a consultant offline nor tells the other party of a call that they left.
//!
//! When the grace period runs out, a consultant's presence is lost to the
//! dispatcher, and each call the person is a party of records `party_left` (the
//! other party's page says so); when one of their sockets opens again, `party_returned`.
//! A party who is already gone when their call is accepted (the requester closed the
//! tab while waiting) is noticed by [`Presences::watch`], one grace period after the
//! accept.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix::prelude::*;
use dashmap::{DashMap, DashSet};

use super::messages::{PresenceGained, PresenceLost};
use crate::db::repo::sessions::PartyPresence;
use crate::events::Published;
use crate::model::{EventData, Role, SessionId, UserId};
use crate::support::{calls, Core};

/// The last socket closed: start the grace period.
#[derive(Message)]
#[rtype(result = "()")]
struct LastSocketClosed;

/// A socket opened again within the grace period.
#[derive(Message)]
#[rtype(result = "()")]
struct SocketBack;

/// Sockets are counted under the map's entry lock, so an opening socket and an
/// expiring grace period cannot miss each other.
struct Entry {
    sockets: usize,
    actor: Addr<UserPresence>,
}

/// Who hears that a consultant's first socket opened or their grace ran out.
pub struct PresenceListener {
    pub gained: Recipient<PresenceGained>,
    pub lost: Recipient<PresenceLost>,
}

/// Who is connected, shared by the socket actors, the dispatcher and the watch.
pub struct Presences {
    actors: DashMap<UserId, Entry>,
    /// Calls whose other party was told this person left, until they are back.
    gone: DashSet<(SessionId, UserId)>,
    core: Arc<Core>,
    /// The dispatcher, known only as who hears of consultants coming and going;
    /// set once it has started (it needs these presences itself).
    dispatcher: OnceLock<PresenceListener>,
    grace: Duration,
}

impl Presences {
    pub fn new(core: Arc<Core>) -> Arc<Presences> {
        Arc::new(Presences {
            actors: DashMap::new(),
            gone: DashSet::new(),
            grace: core.config.presence_grace(),
            core,
            dispatcher: OnceLock::new(),
        })
    }

    /// Connects the dispatcher; before this no socket can have opened.
    pub fn attach(&self, listener: PresenceListener) {
        let _ = self.dispatcher.set(listener);
    }

    fn gained(&self, consultant_id: UserId) {
        if let Some(listener) = self.dispatcher.get() {
            listener.gained.do_send(PresenceGained { consultant_id });
        }
    }

    fn lost(&self, consultant_id: UserId) {
        if let Some(listener) = self.dispatcher.get() {
            listener.lost.do_send(PresenceLost { consultant_id });
        }
    }

    /// Connected now, or within the grace period of their last socket.
    pub fn is_connected(&self, user_id: UserId) -> bool {
        self.actors.contains_key(&user_id)
    }

    pub fn socket_opened(self: &Arc<Self>, user_id: UserId, role: Role) {
        let mut entry = self.actors.entry(user_id).or_insert_with(|| Entry {
            sockets: 0,
            actor: UserPresence {
                user_id,
                role,
                presences: self.clone(),
                grace_timer: None,
            }
            .start(),
        });
        entry.sockets += 1;
        if entry.sockets == 1 {
            entry.actor.do_send(SocketBack);
        }
    }

    pub fn socket_closed(&self, user_id: UserId) {
        if let Some(mut entry) = self.actors.get_mut(&user_id) {
            entry.sockets = entry.sockets.saturating_sub(1);
            if entry.sockets == 0 {
                entry.actor.do_send(LastSocketClosed);
            }
        }
    }

    /// Follows the stream: a party absent when their call is accepted is reported
    /// gone one grace period later if they have not connected by then.
    pub fn watch(self: &Arc<Self>, published: &Published) {
        if !matches!(
            published.event.data,
            EventData::Accepted { .. } | EventData::Taken
        ) {
            return;
        }
        let Some(row) = published.session.as_deref() else {
            return;
        };
        let session_id = row.id;
        for party in row.parties() {
            if self.is_connected(party) {
                continue;
            }
            let presences = self.clone();
            actix::spawn(async move {
                tokio::time::sleep(presences.grace).await;
                let still_in_call = presences.core.calls.get(session_id).is_some();
                if still_in_call && !presences.is_connected(party) {
                    presences
                        .report(session_id, party, PartyPresence::Gone)
                        .await;
                }
            });
        }
    }

    async fn report(&self, session_id: SessionId, user_id: UserId, presence: PartyPresence) {
        let key = (session_id, user_id);
        let changed = match presence {
            PartyPresence::Gone => self.gone.insert(key),
            PartyPresence::Back => self.gone.remove(&key).is_some(),
        };
        if !changed {
            return;
        }
        if let Err(e) = calls::party_presence(&self.core, session_id, user_id, presence).await {
            tracing::debug!(session_id = session_id.0, error = %e, "party presence not recorded");
        }
    }

    fn calls_of(&self, user_id: UserId) -> Vec<SessionId> {
        self.core.calls.sessions_of(user_id)
    }
}

struct UserPresence {
    user_id: UserId,
    role: Role,
    presences: Arc<Presences>,
    grace_timer: Option<SpawnHandle>,
}

impl Actor for UserPresence {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        if self.role == Role::Consultant {
            self.presences.gained(self.user_id);
        }
        // Back within a call they were reported gone from.
        let presences = self.presences.clone();
        let user_id = self.user_id;
        actix::spawn(async move {
            for session_id in presences.calls_of(user_id) {
                presences
                    .report(session_id, user_id, PartyPresence::Back)
                    .await;
            }
        });
    }
}

impl Handler<SocketBack> for UserPresence {
    type Result = ();

    fn handle(&mut self, _: SocketBack, ctx: &mut Context<Self>) {
        if let Some(timer) = self.grace_timer.take() {
            ctx.cancel_future(timer);
        }
    }
}

impl Handler<LastSocketClosed> for UserPresence {
    type Result = ();

    fn handle(&mut self, _: LastSocketClosed, ctx: &mut Context<Self>) {
        if self.grace_timer.is_some() {
            return;
        }
        let grace = self.presences.grace;
        self.grace_timer = Some(ctx.run_later(grace, |act, ctx| {
            act.grace_timer = None;
            let gone = act
                .presences
                .actors
                .remove_if(&act.user_id, |_, entry| entry.sockets == 0)
                .is_some();
            if !gone {
                return;
            }
            if act.role == Role::Consultant {
                act.presences.lost(act.user_id);
            }
            let presences = act.presences.clone();
            let user_id = act.user_id;
            actix::spawn(async move {
                for session_id in presences.calls_of(user_id) {
                    presences
                        .report(session_id, user_id, PartyPresence::Gone)
                        .await;
                }
            });
            ctx.stop();
        }));
    }
}
