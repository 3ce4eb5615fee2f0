//! Logging with `tracing`. Patient data (issue summaries, notes, feedback) is never
//! passed to a log macro anywhere in the crate; the test suite captures all output of a
//! full session to prove it.

use std::io::IsTerminal;

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

/// Installs the global subscriber once; later calls (tests start many servers) are
/// harmless no-ops.
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a person at a terminal: in journald, a file or a log
    // collector they are noise that breaks searching.
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
