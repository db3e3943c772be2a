//! Putting a version back to use: `export` (files for loaders and analytics),
//! `restore` (a version written back through the real drivers into a cluster of any
//! topology) and `verify` (the target read back and compared with the version); see
//! ARCHITECTURE.md, "Versions and restore".
//!
//! This module owns what both protocols share: the options as the command line gives
//! them, the target URI, the checkpoint that makes a restore resumable, and the
//! report. The protocol halves live in [`cql`] and [`mongo`].

pub mod checkpoint;
pub mod cql;
pub mod export;
pub mod mongo;
pub mod options;
pub mod parquet;
pub mod print;
pub mod verify;

pub use options::{Rename, RestoreOptions, RestoreReport, VerifyOptions, VerifyReport};

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Result;

use crate::snapshot::source::Source;

/// Runs `tidemark restore`. Bad input (URI, flags, a version that does not exist, a
/// target that refuses) is an `Err` before anything is written; a failure midway is a
/// report with `error` set and a checkpoint that `--resume` continues from.
pub fn run(o: &RestoreOptions, stop: Arc<AtomicBool>) -> Result<RestoreReport> {
    o.check()?;
    match Source::parse(&o.to).map_err(|e| retarget(e, "--to"))? {
        Source::Cql { hosts, credentials } => cql::restore(o, hosts, credentials, stop),
        Source::Mongo { uri } => mongo::restore(o, &uri, stop),
    }
}

/// Runs `tidemark verify`: `Ok` with the differences found (none: equal).
pub fn verify(o: &VerifyOptions) -> Result<VerifyReport> {
    o.check()?;
    match Source::parse(&o.against).map_err(|e| retarget(e, "--against"))? {
        Source::Cql { hosts, credentials } => verify::cql::verify(o, hosts, credentials),
        Source::Mongo { uri } => verify::mongo::verify(o, &uri),
    }
}

/// `Source::parse` speaks of `--from`; here the flag has another name.
fn retarget(e: anyhow::Error, flag: &str) -> anyhow::Error {
    anyhow::anyhow!("{}", e.to_string().replace("--from", flag))
}
