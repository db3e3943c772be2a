//! What `restore` and `verify` are asked, and what they answer.

use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::Serialize;

/// `--rename A=B`: `ks.t=ks2.t2`, `ks=ks2` (a whole keyspace), `db.c=db2.c2`, `db=db2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    pub from: String,
    pub to: String,
}

impl Rename {
    /// Parses one `--rename`.
    pub fn parse(s: &str) -> Result<Rename> {
        let Some((from, to)) = s.split_once('=') else {
            bail!("invalid --rename {s:?}: expected FROM=TO (ks.t=ks2.t2, ks=ks2, db.c=db2.c2)");
        };
        let parts = |x: &str| x.split('.').count();
        let ok = |x: &str| !x.is_empty() && x.split('.').all(|p| !p.is_empty());
        if !ok(from) || !ok(to) || parts(from) != parts(to) || parts(from) > 2 {
            bail!("invalid --rename {s:?}: both sides name a keyspace/db or both a table/collection (ks.t=ks2.t2)");
        }
        Ok(Rename {
            from: from.to_string(),
            to: to.to_string(),
        })
    }

    /// The namespace `ns` (`ks.t`, `db.c`) becomes under `renames`: the first rename
    /// that names it whole, else the first that names its keyspace or db.
    pub fn apply(renames: &[Rename], ns: &str) -> String {
        if let Some(r) = renames.iter().find(|r| r.from == ns) {
            return r.to.clone();
        }
        if let Some((space, rest)) = ns.split_once('.') {
            if let Some(r) = renames.iter().find(|r| r.from == space) {
                return format!("{}.{rest}", r.to);
            }
        }
        ns.to_string()
    }
}

/// `tidemark restore`.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub store: PathBuf,
    /// The version's name.
    pub version: String,
    /// `cql://…` or `mongodb://…` (credentials for the driver only: never printed,
    /// logged or stored; the checkpoint keys on the redacted form).
    pub to: String,
    /// `--keyspace` / `--table` (CQL), `--db` / `--collection` (MongoDB) globs, as
    /// `snapshot take` reads them; empty: everything of the target's protocol.
    pub keyspaces: Vec<String>,
    pub tables: Vec<String>,
    pub dbs: Vec<String>,
    pub collections: Vec<String>,
    pub renames: Vec<Rename>,
    /// `--replication`: the replication map for keyspaces restore creates
    /// (`{'class': 'SimpleStrategy', 'replication_factor': 3}` or the short
    /// `SimpleStrategy:3`, `NetworkTopologyStrategy:dc1=3,dc2=2`); default: the one the
    /// schema recorded, else SimpleStrategy with RF min(3, nodes).
    pub replication: Option<String>,
    /// Requests in flight at once.
    pub parallel: usize,
    /// `--rate`: writes (rows or documents) per second at most.
    pub rate: Option<f64>,
    /// `--rate-mb`: payload MB per second at most.
    pub rate_mb: Option<f64>,
    /// CQL consistency level (default QUORUM).
    pub consistency: String,
    /// MongoDB write concern `w` (default `majority`).
    pub write_concern: String,
    /// Write even where the target holds newer data: CQL cells go with the current
    /// time as their timestamp instead of their own, MongoDB replaces whatever is there.
    pub overwrite: bool,
    /// Continue the interrupted restore of this version to this target.
    pub resume: bool,
    /// Print the plan (schema statements, namespaces, rows), write nothing.
    pub dry_run: bool,
    /// JSON lines (progress and the final report) instead of a progress bar.
    pub json: bool,
}

impl RestoreOptions {
    /// Flags that are wrong whatever the target.
    pub fn check(&self) -> Result<()> {
        crate::version::stored::check_name(&self.version)?;
        if self.parallel == 0 || self.parallel > 1024 {
            bail!("invalid --parallel {}: 1 to 1024", self.parallel);
        }
        for (flag, v) in [("--rate", self.rate), ("--rate-mb", self.rate_mb)] {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0) {
                    bail!("invalid {flag} {v}: a positive number");
                }
            }
        }
        if self.resume && self.dry_run {
            bail!("--resume and --dry-run exclude each other");
        }
        Ok(())
    }
}

/// Counts of one namespace, or of the whole restore.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Rows or documents written (their writes acknowledged at the consistency level
    /// or write concern asked).
    pub written: u64,
    /// Deletions written as tombstones (CQL).
    pub deletions: u64,
    /// Rows or documents the target already held newer (MongoDB without
    /// `--overwrite`; CQL leaves that to the timestamps and counts nothing here).
    pub skipped: u64,
    /// Rows or documents that failed after the retries.
    pub failed: u64,
    /// Payload bytes written.
    pub bytes: u64,
}

/// What a restore did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreReport {
    pub version: String,
    /// The target, redacted.
    pub target: String,
    /// Per namespace as written to (after renames).
    pub namespaces: Vec<(String, Counts)>,
    pub total: Counts,
    /// Schema statements run (or, with `--dry-run`, that would run).
    pub schema: Vec<String>,
    /// The first errors (at most 10), one line each.
    pub errors: Vec<String>,
    /// Set when the restore stopped before the end (error or signal): `--resume`
    /// continues it.
    pub error: Option<String>,
    pub dry_run: bool,
    pub resumed: bool,
    pub seconds: f64,
}

/// `tidemark verify`.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub store: PathBuf,
    pub version: String,
    /// `cql://…` or `mongodb://…`.
    pub against: String,
    pub keyspaces: Vec<String>,
    pub tables: Vec<String>,
    pub dbs: Vec<String>,
    pub collections: Vec<String>,
    /// The renames the restore used: the version's `ks.t` is compared with the
    /// target's renamed table.
    pub renames: Vec<Rename>,
    /// CQL consistency of the reads (default QUORUM).
    pub consistency: String,
    pub parallel: usize,
    /// Differences listed at most (all are counted).
    pub max_differences: usize,
    pub json: bool,
    /// `--timestamps`: compare write timestamps of simple cells too (off by default:
    /// a restore with `--overwrite` writes cells at the current time, equal data).
    pub timestamps: bool,
}

impl VerifyOptions {
    pub fn check(&self) -> Result<()> {
        crate::version::stored::check_name(&self.version)?;
        if self.parallel == 0 || self.parallel > 1024 {
            bail!("invalid --parallel {}: 1 to 1024", self.parallel);
        }
        Ok(())
    }
}

/// One row or document that differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// Namespace as in the version.
    pub namespace: String,
    /// The key, canonical JSON as the log writes it.
    pub key: String,
    /// `missing` (in the version, not in the target), `extra` (in the target only),
    /// `different` (both, unequal).
    pub kind: String,
    /// What differs, one line (columns or fields with both values).
    pub detail: String,
}

/// What verify found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub version: String,
    pub target: String,
    /// Rows or documents compared (the version's).
    pub rows: u64,
    /// Ranges (token ranges, `_id` chunks) compared by hash, and of those unequal.
    pub ranges: u64,
    pub ranges_unequal: u64,
    /// Differences counted over all ranges.
    pub different: u64,
    /// The first `max_differences` of them.
    pub differences: Vec<Difference>,
    pub seconds: f64,
}

impl VerifyReport {
    pub fn equal(&self) -> bool {
        self.different == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_apply_whole_names_before_keyspaces() {
        let r = [
            Rename::parse("ks.t=ks2.t2").unwrap(),
            Rename::parse("ks=other").unwrap(),
        ];
        assert_eq!(Rename::apply(&r, "ks.t"), "ks2.t2");
        assert_eq!(Rename::apply(&r, "ks.u"), "other.u");
        assert_eq!(Rename::apply(&r, "x.t"), "x.t");
    }

    #[test]
    fn bad_renames_are_refused() {
        for bad in ["ks", "ks.t=ks2", "=x", "a.b.c=d.e.f", "ks.=ks.t", "a=b=c.d"] {
            assert!(Rename::parse(bad).is_err(), "{bad}");
        }
    }
}
