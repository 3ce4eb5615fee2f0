//! # NICEHR Remote Support
//!
//! A hospital nurse presses one button and is on a video call with the best available
//! consultant within seconds; when nobody is free, they wait in a fair, live queue.
//!
//! ## How a request flows
//!
//! 1. `POST /api/support/request` ([`api`]) validates the body and commits the request
//!    with its `requested` event ([`support`], [`db::repo`]) before anything else
//!    happens: nothing acknowledged lives only in memory.
//! 2. The committed event goes to the **event hub** ([`events`]), which hands every
//!    event to its subscribers strictly in stream order: the socket fan-out
//!    ([`ws::fanout`]), the **Dispatcher** ([`dispatch`]), auto-accept, the live-call
//!    view and the presence watch.
//! 3. The Dispatcher keeps its view of the floor (the pure [`dispatch::board`]) from
//!    the stream, runs the pure matcher ([`dispatch::matching`]) and writes the offer —
//!    a stored reservation with its event. The `offered` event reaches the consultant's
//!    sockets through the fan-out, which is the only code that builds frames.
//! 4. A **PendingRequest** actor per offered request holds the offer timer; a decline
//!    or timeout is stored like any change, and the next best consultant is offered.
//! 5. A **UserPresence** actor per connected person runs the grace period after their
//!    last socket closes; a **WsSession** per socket ([`ws`]) parses client frames,
//!    pushes frames, and resumes from `?since=` after a drop.
//! 6. Accept creates the video room ([`video`]) and commits `connecting`; join hands
//!    each party its credentials; end completes the session (and the consultant wraps
//!    up) and teaches the matcher who works well with whom.
//!
//! The session state machine is one table ([`model::lifecycle`]); every stored
//! vocabulary is an enum of [`model`]. Storage is diesel + diesel-async over SQLite
//! (default, embedded) or PostgreSQL; the [`db`] module is the only place that knows
//! which. Patient text past each hospital's retention is erased by [`retention`],
//! which keeps the figures. `docs/ARCHITECTURE.md` tells the whole story.

pub mod accounts;
pub mod analytics;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod console;
pub mod db;
pub mod dispatch;
pub mod error;
pub mod events;
pub mod limits;
pub mod loadgen;
pub mod metrics;
pub mod model;
pub mod retention;
pub mod server;
pub mod sso;
pub mod state;
pub mod support;
pub mod telemetry;
pub mod validate;
pub mod video;
pub mod ws;
