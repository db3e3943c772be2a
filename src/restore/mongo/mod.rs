//! Restore of a version's MongoDB collections through the `mongodb` driver.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Result};

use super::{RestoreOptions, RestoreReport};

/// Restores the MongoDB namespaces of `o.version` into the deployment at `uri`.
pub fn restore(o: &RestoreOptions, uri: &str, stop: Arc<AtomicBool>) -> Result<RestoreReport> {
    let _ = (o, uri, stop);
    bail!("restore to mongodb:// is not built yet")
}
