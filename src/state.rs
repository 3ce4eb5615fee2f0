//! What HTTP handlers can reach: the domain's [`Core`], the dispatcher's address
//! (for its live view), the socket registry (a sign-out closes its sockets at once),
//! login throttling and the per-user limits.

use std::ops::Deref;
use std::sync::Arc;

use actix::Addr;

use crate::auth::throttle::LoginThrottle;
use crate::dispatch::dispatcher::Dispatcher;
use crate::limits::Limits;
use crate::sso::Sso;
use crate::support::Core;
use crate::ws::registry::Registry;

pub struct AppState {
    pub core: Arc<Core>,
    pub dispatcher: Addr<Dispatcher>,
    pub registry: Arc<Registry>,
    pub login_throttle: LoginThrottle,
    /// Per-user limits, shared with the sockets.
    pub limits: Arc<Limits>,
    /// The configured identity providers (single sign-on).
    pub sso: Arc<Sso>,
}

impl Deref for AppState {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}
