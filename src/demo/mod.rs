//! `tidemark demo`: the paper's story end to end, on clusters it starts itself.
//!
//! A 3-node RF 3 Cassandra testbed and a 3-member MongoDB replica set (the project's
//! simulated servers, `tidemark-testbed`, speaking the real protocols) run on
//! loopback under a workload of the real drivers, tapped live on `lo` by a `tidemark
//! tap` child; a snapshot is taken; the workload goes on, a fourth node joins, the
//! MongoDB primary is cut off and rolls back what only it acknowledged; then an
//! operator's fat-finger (`TRUNCATE`, `deleteMany({})`). tidemark cuts a version just
//! before the mistake, shows what the mistake did (`version diff`), restores the
//! version into the 4-node cluster and the replica set after its election, and
//! `verify` proves them equal. Every step is narrated with its time and counts;
//! nothing is left running.

mod clusters;
mod narrate;
mod story;
mod tap_child;
mod workload;

use std::path::PathBuf;

pub use narrate::Narrator;

/// What `tidemark demo` was asked.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// JSON lines (one per step, then a summary) instead of text.
    pub json: bool,
    /// Keep the store here (default: a temporary directory removed at the end).
    pub store: Option<PathBuf>,
}

/// How the demo ended.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DemoReport {
    /// Both restores verified equal to the version.
    pub equal: bool,
    /// Seconds from start to finish.
    pub seconds: f64,
}

/// Runs the demo.
pub fn run(o: &DemoOptions) -> anyhow::Result<DemoReport> {
    story::run(o)
}
