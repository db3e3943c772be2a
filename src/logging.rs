//! Logging set-up: `tracing` to standard error, filtered by `RUST_LOG` (default `warn`),
//! so standard output stays clean for tables and JSON lines.
//!
//! The drivers `snapshot take` uses (`scylla`, `mongodb`) are silent by default: they
//! log every failed connection attempt, while the command already reports a failure
//! as its one-line error (`RUST_LOG=scylla=warn` brings them back).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls are ignored.
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,scylla=off,mongodb=off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
