//! `tidemark inspect`: decode captures and report what was seen.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// What `tidemark inspect` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct InspectOptions {
    pub files: Vec<PathBuf>,
    pub interface: Option<String>,
    pub duration: Option<Duration>,
    pub json: bool,
    pub cql_ports: Vec<u16>,
    pub mongo_ports: Vec<u16>,
}

/// Runs an inspection and returns the process exit code.
pub fn run(_options: InspectOptions) -> anyhow::Result<ExitCode> {
    anyhow::bail!("inspect is being built")
}
