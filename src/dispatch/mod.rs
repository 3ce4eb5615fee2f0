//! Dispatch: who gets offered which request, when, and what happens next.
//!
//! Pure logic (`matching`, `queue`, `schedule`, `board`) is separate from the actors
//! (`dispatcher`, `pending`, `presence`), so the decisions are unit-tested and
//! benchmarked without a runtime. Dispatch writes through [`crate::support`] and
//! learns of every change from the event stream; it knows nothing of sockets.

pub mod auto_accept;
pub mod board;
pub mod dispatcher;
pub mod matching;
pub mod messages;
pub mod pending;
pub mod presence;
pub mod queue;
pub mod schedule;
