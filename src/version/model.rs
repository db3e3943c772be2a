//! What a version is once cut: its description and its rows, as the store keeps them
//! (postcard, like the log's envelopes: field order is the format — add fields only at
//! the end).

use serde::{Deserialize, Serialize};

use crate::store::{Cell, Gap, Protocol};

/// A version's description (`version show`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The name given with `--name`, or `v` + the time cut.
    pub name: String,
    /// The moment the version stands for, ns since the epoch.
    pub at: u64,
    /// The store's tidemark when the version was cut (`at` never passes it).
    pub tidemark: u64,
    /// When the version was cut (wall clock), ns since the epoch.
    pub created: u64,
    /// The snapshot the log was joined with, if any.
    pub snapshot: Option<u64>,
    /// Highest log seq the version read (every committed mutation with
    /// `commit_time <= at` and `seq <= last_seq` is in it).
    pub last_seq: u64,
    /// Committed mutations applied.
    pub mutations: u64,
    /// Capture gaps the version was cut across (only with `--allow-gaps`): writes
    /// inside them may be missing.
    pub gaps: Vec<Gap>,
    /// Rows or documents per namespace.
    pub namespaces: Vec<NamespaceCount>,
    /// Rows or documents whose content the log cannot fix exactly.
    pub uncertain: Vec<UncertainItem>,
    /// Every snapshot joined (one per protocol at most; `snapshot` is the first).
    pub snapshots: Vec<u64>,
}

impl VersionInfo {
    /// Rows and documents over all namespaces.
    pub fn rows(&self) -> u64 {
        self.namespaces.iter().map(|n| n.rows).sum()
    }
}

/// Rows (CQL) or documents (MongoDB) of one namespace in a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceCount {
    pub namespace: String,
    pub protocol: Protocol,
    pub rows: u64,
    pub uncertain: u64,
}

/// A row or document the version holds but cannot vouch for, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UncertainItem {
    pub namespace: String,
    /// The key as the log writes it (canonical JSON).
    pub key: String,
    pub why: String,
}

/// One row or document of a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum VersionRow {
    /// The live cells of a CQL row at the version's time: each with its write
    /// timestamp and, for expiring cells, TTL and expiry, so a restore can write them
    /// back `USING TIMESTAMP` with the TTL that remains. Counter columns hold their
    /// total as a big-endian i64 in a `CounterShard` cell. A row that exists only by
    /// its primary key (an INSERT of key columns alone) has no cells.
    Cql { cells: Vec<Cell> },
    /// The document as raw BSON.
    Mongo { document: Vec<u8> },
}

/// What a CQL version deleted at one key, kept beside its rows so a restore writes
/// the deletions as tombstones with their own timestamps: older data already in a
/// target stays shadowed, as it was in the source. Stored under
/// `d \0 name \0 namespace \0 key`; `key` is a row's canonical key for `row` and
/// `cells`, a partition key (the canonical JSON of the partition key columns) for
/// `partition` and `ranges` (the same text when a table has no clustering columns).
/// Only restore reads these; rows, counts, diff and export never see them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionDeletion {
    /// `DELETE FROM t WHERE <full primary key>`: the row's deletion, when one
    /// reached it (a later one covering the partition is in `partition`).
    pub row: Option<crate::store::Deletion>,
    /// Cell tombstones of the row that still shadow something the version's time:
    /// deleted columns (`path: None`, also a whole collection) and deleted elements.
    pub cells: Vec<Cell>,
    /// `DELETE FROM t WHERE <partition key>`.
    pub partition: Option<crate::store::Deletion>,
    /// Clustering range deletions within the partition.
    pub ranges: Vec<crate::store::RangeDeletion>,
}

impl VersionDeletion {
    pub fn is_empty(&self) -> bool {
        self.row.is_none()
            && self.cells.is_empty()
            && self.partition.is_none()
            && self.ranges.is_empty()
    }
}
