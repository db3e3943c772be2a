//! Verify of a version's MongoDB collections against a deployment (`_id` chunks).

use anyhow::{bail, Result};

use crate::restore::{VerifyOptions, VerifyReport};

/// Compares the MongoDB namespaces of `o.version` with the deployment at `uri`.
pub fn verify(o: &VerifyOptions, uri: &str) -> Result<VerifyReport> {
    let _ = (o, uri);
    bail!("verify against mongodb:// is not built yet")
}
