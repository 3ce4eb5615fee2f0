//! One actor per connected consultant: it notices the first socket opening and runs
//! the grace period after the last one closes, so a page reload or a flaky Wi-Fi
//! network does not flip the consultant offline (and never ends a call).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use dashmap::DashMap;

use super::dispatcher::Dispatcher;
use super::messages::{PresenceGained, PresenceLost};
use crate::ws::registry::Registry;

#[derive(Message)]
#[rtype(result = "()")]
pub struct SocketOpened;

#[derive(Message)]
#[rtype(result = "()")]
pub struct SocketClosed;

pub type PresenceMap = DashMap<i64, Addr<ConsultantPresence>>;

pub struct ConsultantPresence {
    consultant_id: i64,
    dispatcher: Addr<Dispatcher>,
    registry: Arc<Registry>,
    presences: Arc<PresenceMap>,
    grace: Duration,
    grace_timer: Option<SpawnHandle>,
}

impl ConsultantPresence {
    /// The consultant's presence actor, started (and announced to the dispatcher) if
    /// this is their first socket.
    pub fn for_consultant(
        consultant_id: i64,
        dispatcher: &Addr<Dispatcher>,
        registry: &Arc<Registry>,
        presences: &Arc<PresenceMap>,
        grace: Duration,
    ) -> Addr<ConsultantPresence> {
        presences
            .entry(consultant_id)
            .or_insert_with(|| {
                ConsultantPresence {
                    consultant_id,
                    dispatcher: dispatcher.clone(),
                    registry: registry.clone(),
                    presences: presences.clone(),
                    grace,
                    grace_timer: None,
                }
                .start()
            })
            .clone()
    }
}

impl Actor for ConsultantPresence {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        self.dispatcher.do_send(PresenceGained {
            consultant_id: self.consultant_id,
        });
    }
}

impl Handler<SocketOpened> for ConsultantPresence {
    type Result = ();

    fn handle(&mut self, _: SocketOpened, ctx: &mut Context<Self>) {
        if let Some(timer) = self.grace_timer.take() {
            ctx.cancel_future(timer);
        }
    }
}

impl Handler<SocketClosed> for ConsultantPresence {
    type Result = ();

    fn handle(&mut self, _: SocketClosed, ctx: &mut Context<Self>) {
        if self.registry.connections_of(self.consultant_id) > 0 || self.grace_timer.is_some() {
            return;
        }
        self.grace_timer = Some(ctx.run_later(self.grace, |act, ctx| {
            act.grace_timer = None;
            if act.registry.connections_of(act.consultant_id) > 0 {
                return;
            }
            act.presences.remove(&act.consultant_id);
            act.dispatcher.do_send(PresenceLost {
                consultant_id: act.consultant_id,
            });
            ctx.stop();
        }));
    }
}
