//! What every handler and actor can reach. `Core` is shared by the HTTP handlers and
//! the dispatcher; `AppState` adds the dispatcher's address, login throttling, the
//! per-user limits and the WebSocket origin policy.

use std::collections::HashSet;
use std::ops::Deref;
use std::sync::Arc;

use actix::Addr;
use dashmap::DashMap;

use crate::auth::origin::OriginPolicy;
use crate::auth::throttle::LoginThrottle;
use crate::config::ServeArgs;
use crate::db::Db;
use crate::dispatch::background::BackgroundWriter;
use crate::dispatch::dispatcher::Dispatcher;
use crate::dispatch::presence::PresenceMap;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::video::VideoProvider;
use crate::ws::registry::Registry;

/// The two parties of a connecting or active call, cached so WebRTC signalling (dozens
/// of frames per call) does not read the database per frame.
#[derive(Debug, Clone)]
pub struct CallParties {
    pub requester_id: i64,
    pub consultant_id: i64,
    pub hospital_id: i64,
    /// Parties whose browsers reported `call_joined`.
    pub joined: HashSet<i64>,
}

pub struct Core {
    pub db: Db,
    pub config: Arc<ServeArgs>,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<Registry>,
    pub presences: Arc<PresenceMap>,
    pub calls: DashMap<i64, CallParties>,
    pub video: Arc<dyn VideoProvider>,
    pub background: BackgroundWriter,
}

pub struct AppState {
    pub core: Arc<Core>,
    pub dispatcher: Addr<Dispatcher>,
    pub login_throttle: LoginThrottle,
    pub limits: Limits,
    pub origins: OriginPolicy,
}

impl Deref for AppState {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}
