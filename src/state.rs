//! What HTTP handlers can reach: the domain's [`Core`], the dispatcher's address
//! (for its live view), the socket registry (a sign-out closes its sockets at once)
//! and login throttling.

use std::ops::Deref;
use std::sync::Arc;

use actix::Addr;

use crate::auth::throttle::LoginThrottle;
use crate::dispatch::dispatcher::Dispatcher;
use crate::support::Core;
use crate::ws::registry::Registry;

pub struct AppState {
    pub core: Arc<Core>,
    pub dispatcher: Addr<Dispatcher>,
    pub registry: Arc<Registry>,
    pub login_throttle: LoginThrottle,
}

impl Deref for AppState {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}
