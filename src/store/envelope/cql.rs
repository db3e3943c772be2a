//! The CQL payload of an envelope: cells and deletions as Cassandra stores them.
//!
//! This is the form the reconcile of ARCHITECTURE.md ("Cells reconcile exactly as
//! Cassandra 4.x does") works on, so every cell keeps its own write timestamp, TTL,
//! local deletion time and kind, even when they all came from one statement: a BATCH
//! or a collection literal can give cells of one row different timestamps.

use std::sync::Arc;

use bytes::Bytes;

use serde::{Deserialize, Serialize};

/// The cells and deletions one CQL statement (or batch member) writes.
///
/// The partition and clustering key are the envelope's `key`; `cells` belong to that
/// row. Deletions are listed separately because they shadow cells rather than being
/// cells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CqlPayload {
    /// Written, expired or deleted cells of the row.
    pub cells: Vec<Cell>,
    /// `DELETE FROM t WHERE <full primary key>`: a row tombstone.
    pub row_deletion: Option<Deletion>,
    /// `DELETE ... WHERE ck > x`: range tombstones within the partition.
    pub range_deletions: Vec<RangeDeletion>,
    /// `DELETE FROM t WHERE <partition key only>`: a partition tombstone.
    pub partition_deletion: Option<Deletion>,
}

/// One cell of a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// Column name as in the schema (shared: every row of a table names the same
    /// columns, and a tap keeps tens of thousands of cells in flight).
    pub column: Arc<str>,
    /// For an element of a non-frozen collection or UDT: the serialized element key
    /// (map key, set element, UDT field index as a 2-byte short, or for `Put`/`Remove`
    /// on a list the index as a 4-byte int: the list timeuuid is the server's, and so
    /// list appends and prepends have no path). `None` for a simple
    /// column. A tombstone with `path: None` on a collection column deletes the whole
    /// collection (Cassandra's complex deletion).
    #[serde(with = "serde_bytes")]
    pub path: Option<Vec<u8>>,
    /// Serialized value in the native protocol's `[bytes]` notation, without the
    /// length; empty for tombstones. A refcounted slice of the frame it came in
    /// (no copy, no allocation per cell); stored as plain bytes.
    pub value: Bytes,
    /// The column's CQL type as CQL spells it (`text`, `map<text, int>`,
    /// `frozen<...>`); for an element cell (`path` set, or a list append/prepend)
    /// the collection's type, from which the path's and the value's types follow.
    /// `json` when the decoder knew no type: `value` is then `SELECT JSON` text.
    /// A collection not spelled `frozen<...>` whose value is one whole cell was
    /// typed by bind metadata alone, which does not say whether it is frozen.
    /// Shared, as `column` is.
    pub cql_type: Arc<str>,
    /// Write timestamp in microseconds.
    pub timestamp: i64,
    /// TTL in seconds, for expiring cells.
    pub ttl: Option<u32>,
    /// Seconds since the epoch when the cell expires (expiring) or was deleted
    /// (tombstone); what the reconcile tie-break compares.
    pub local_deletion_time: Option<i64>,
    /// Live, expiring, tombstone or counter shard.
    pub kind: CellKind,
    /// What the statement did to the column (format 3): a list append or prepend
    /// has no path (the server picks the timeuuid), and restore must replay it as
    /// such, which `kind` and `path` alone cannot say.
    pub op: CellOp,
}

/// The statement's operation behind a cell (see `crate::decode::cql::typed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellOp {
    /// The whole value of a simple or frozen column, or one element of a whole
    /// non-frozen map, set or UDT.
    Set,
    /// A list element appended (no path: the server chose the timeuuid).
    Append,
    /// A list element prepended (no path).
    Prepend,
    /// An element written by key: map key, set element, list index (4-byte int, the
    /// server resolves it to a timeuuid), UDT field (2-byte short).
    Put,
    /// An element deleted by `path`, or (no path) a list value removed wherever it is.
    Remove,
    /// A counter change (`value` is the signed big-endian i64 delta).
    Increment,
    /// The whole column deleted; on a collection at timestamp - 1 it is the
    /// collection deletion of a whole-collection overwrite.
    Tombstone,
}

/// The kind of a cell; decides reconcile tie-breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellKind {
    /// A plain value.
    Live,
    /// A value with a TTL.
    Expiring,
    /// A deletion of the cell.
    Tombstone,
    /// A counter increment (`value` is the big-endian i64 delta).
    CounterShard,
}

/// A row or partition tombstone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    /// Shadows cells with a write timestamp at or below this (microseconds).
    pub timestamp: i64,
    /// Seconds since the epoch when the deletion was made.
    pub local_deletion_time: i64,
}

/// A clustering range tombstone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeDeletion {
    /// Lower end of the range.
    pub start: ClusteringBound,
    /// Upper end of the range.
    pub end: ClusteringBound,
    /// When and at which timestamp.
    pub deletion: Deletion,
}

/// One end of a clustering range: a prefix of clustering values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusteringBound {
    /// Serialized clustering column values, in clustering order; empty means
    /// unbounded on this side.
    pub prefix: Vec<serde_bytes::ByteBuf>,
    /// Whether rows equal to the prefix are inside the range.
    pub inclusive: bool,
}

/// The CQL response that decided a write.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CqlEvidence {
    /// Response as the spec names it: `RESULT Void`, `RESULT Rows`, `ERROR`.
    pub response: String,
    /// Error code for an `ERROR` response (e.g. `0x1100` WriteTimeout).
    pub error_code: Option<u32>,
    /// Write type of a WriteTimeout/WriteFailure (`SIMPLE`, `BATCH_LOG`, `CAS`, ...).
    pub write_type: Option<String>,
    /// Replicas that acknowledged.
    pub received: Option<i32>,
    /// Replicas required by the consistency level.
    pub block_for: Option<i32>,
    /// `[applied]` of a conditional statement.
    pub applied: Option<bool>,
    /// Stream id on the flow (pairing key), for tracing back to the capture.
    pub stream: Option<i16>,
}
