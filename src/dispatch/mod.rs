//! Dispatch: who gets offered which request, when, and what happens next.
//!
//! Pure logic (`matching`, `queue`, `schedule`) is separate from the actors
//! (`dispatcher`, `pending`, `presence`) and from the lifecycle (`service`), so the
//! decisions are unit-tested and benchmarked without a runtime.

pub mod background;
pub mod dispatcher;
pub mod matching;
pub mod messages;
pub mod pending;
pub mod presence;
pub mod queue;
pub mod rooms;
pub mod schedule;
pub mod service;
pub mod view;
