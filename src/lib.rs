//! # NICEHR Remote Support
//!
//! A hospital nurse presses one button and is on a video call with the best available
//! consultant within seconds; when nobody is free, they wait in a fair, live queue.
//!
//! ## How a request flows
//!
//! 1. `POST /api/support/request` ([`api`]) validates the body and commits the request
//!    ([`db::repo`]) before anything else happens: nothing acknowledged lives only in
//!    memory.
//! 2. The handler tells the **Dispatcher** actor ([`dispatch`]), which owns the queue
//!    order and its in-memory view of who is available. It runs the pure matching
//!    function ([`dispatch::matching`]) with no database round trip and pushes an
//!    offer to the chosen consultant's sockets.
//! 3. A **PendingRequest** actor per request holds the offer timer; a decline or timeout
//!    moves the offer to the next best consultant.
//! 4. A **ConsultantPresence** actor per connected consultant tracks their sockets and
//!    runs the grace period before they go offline.
//! 5. A **WsSession** actor per WebSocket ([`ws`]) parses client frames and pushes
//!    server events; registries in `dashmap` let HTTP handlers reach them directly.
//! 6. Accept creates the video room ([`video`]), join hands each party its credentials,
//!    end completes the session and teaches the matcher who works well with whom.
//!
//! Storage is diesel + diesel-async over SQLite (default, embedded) or PostgreSQL; the
//! [`db`] module is the only place that knows which.

pub mod accounts;
pub mod analytics;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod dispatch;
pub mod error;
pub mod limits;
pub mod loadgen;
pub mod metrics;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod validate;
pub mod video;
pub mod ws;
