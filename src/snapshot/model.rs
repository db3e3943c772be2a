//! What a snapshot is, as stored: its description ([`SnapshotInfo`]: source,
//! cluster, schema per namespace, the parts it was read in with their read windows)
//! and its rows ([`SnapshotRow`]: typed CQL cells or raw BSON documents).
//!
//! Values are postcard-encoded like the log's envelopes (`crate::store::envelope`):
//! **field order is the format**; add fields only at the end of a struct, variants
//! only at the end of an enum.

use serde::{Deserialize, Serialize};

use crate::store::{Cell, OpTime, Protocol};

/// One snapshot: written before the scan starts, rewritten as each part finishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Store-wide number, from 1.
    pub id: u64,
    /// Where it was read from: the `--from` URI without user name or password.
    pub source: String,
    /// CQL `system.local` `cluster_name`; MongoDB replica set name or `standalone`.
    /// A version refuses to join a snapshot with a log of another cluster.
    pub cluster: String,
    /// CQL or MongoDB.
    pub protocol: Protocol,
    /// When the take started, ns since the Unix epoch.
    pub started: u64,
    /// When the last part finished; `None` while running or after an interruption.
    pub finished: Option<u64>,
    /// Every namespace read, by name.
    pub namespaces: Vec<NamespaceInfo>,
    /// Every part (token range of a table, `_id` chunk of a collection).
    pub parts: Vec<PartInfo>,
    /// MongoDB read at one cluster time (`readConcern: snapshot`): that time. The
    /// part read windows then say when the reads ran, not what they saw.
    pub cluster_time: Option<OpTime>,
}

impl SnapshotInfo {
    /// Parts whose rows are all stored.
    pub fn parts_done(&self) -> usize {
        self.parts.iter().filter(|p| p.read_end.is_some()).count()
    }

    /// Rows stored over all parts.
    pub fn rows(&self) -> u64 {
        self.namespaces.iter().map(|n| n.rows).sum()
    }

    /// Per namespace, the orphaned documents a `--per-shard` take left out (empty
    /// for any other snapshot).
    pub fn orphans_filtered(&self) -> std::collections::BTreeMap<String, u64> {
        let mut out = std::collections::BTreeMap::new();
        for p in &self.parts {
            if let PartRange::ShardIdChunk { orphans, .. } = &p.range {
                *out.entry(p.namespace.clone()).or_insert(0) += orphans;
            }
        }
        out
    }

    /// The earliest read start and latest read end over the finished parts.
    pub fn read_window(&self) -> Option<(u64, u64)> {
        let done = self
            .parts
            .iter()
            .filter_map(|p| Some((p.read_start, p.read_end?)));
        done.fold(None, |acc, (s, e)| match acc {
            None => Some((s, e)),
            Some((a, b)) => Some((a.min(s), b.max(e))),
        })
    }
}

/// One table or collection of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceInfo {
    /// `keyspace.table` or `db.collection`.
    pub name: String,
    /// CQL: the `CREATE KEYSPACE`, `CREATE TYPE` and `CREATE TABLE` statements (one
    /// per line, each ending in `;`) a restore can run. MongoDB: `{"options": …,
    /// "indexes": […]}` as relaxed Extended JSON, as `listCollections` and
    /// `listIndexes` return them.
    pub schema: String,
    /// Rows (CQL rows, and one partition row per partition with static values) or
    /// documents stored.
    pub rows: u64,
    /// Bytes of cell values or BSON documents stored.
    pub bytes: u64,
}

/// One unit of reading: a token range of one table or an `_id` chunk of one
/// collection, and when it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartInfo {
    /// The namespace it belongs to.
    pub namespace: String,
    /// What it covers.
    pub range: PartRange,
    /// When its first read was sent (ns since the epoch).
    pub read_start: u64,
    /// When its last page arrived; `None` until its rows are stored (a resume reads
    /// it again, and rows read twice overwrite themselves).
    pub read_end: Option<u64>,
    /// Rows it held.
    pub rows: u64,
}

/// What a part covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartRange {
    /// Partitions with `start < token(pk) <= end` (Murmur3 tokens; the ring's wrap
    /// is split in two parts, so `start < end` always).
    Token(i64, i64),
    /// Documents with `from <= _id < to` in BSON order; `None` is unbounded. The
    /// bounds are raw BSON values (element type byte, then the value bytes).
    IdChunk {
        /// Inclusive lower bound.
        from: Option<Vec<u8>>,
        /// Exclusive upper bound.
        to: Option<Vec<u8>>,
    },
    /// One input file of `snapshot import` (a node's dump, a collection's `.bson`,
    /// an archive): what it held before replicas were deduplicated.
    File {
        /// The file as given.
        path: String,
        /// Its size on disk.
        input_bytes: u64,
        /// Bytes it held of what the snapshot kept: CQL, the live cell values it
        /// had an identical copy of (after reconciling every replica); MongoDB, its
        /// documents.
        value_bytes: u64,
    },
    /// `snapshot take --per-shard`: documents with `from <= _id < to` of one
    /// shard's copy of a collection, read from that shard's replica set at the
    /// snapshot's cluster time and kept only where the chunk map then names this
    /// shard their owner (a part must say which shard it reads, for `--resume`).
    ShardIdChunk {
        /// The shard's id (`config.shards._id`).
        shard: String,
        /// Inclusive lower `_id` bound (raw BSON value), `None` unbounded.
        from: Option<Vec<u8>>,
        /// Exclusive upper `_id` bound, `None` unbounded.
        to: Option<Vec<u8>>,
        /// Documents the shard held in the range that the chunk map gives another
        /// shard (orphans: a migration's leftovers, a chunk still arriving), left
        /// out; set when the part is read.
        orphans: u64,
    },
}

/// One row or document of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRow {
    /// `keyspace.table` or `db.collection`.
    pub namespace: String,
    /// Exactly the log's `Mutation::key` for the same row or document (canonical
    /// JSON, primary-key order; `{"_id":…}` for MongoDB), so a version joins
    /// snapshot rows and logged mutations by (namespace, key).
    pub key: String,
    /// Index into [`SnapshotInfo::parts`]: the read window this row was seen in.
    pub part: u32,
    /// The row's content.
    pub data: RowData,
}

/// A row's content, per protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RowData {
    /// CQL cells as Cassandra holds them.
    Cql {
        /// Regular cells: one per simple or frozen column, one per element of a
        /// non-frozen collection or UDT (`path` set: map key, set element, list
        /// index as a 4-byte int, UDT field index as a 2-byte short). `timestamp`
        /// from `WRITETIME`, `ttl` and `local_deletion_time` from `TTL` (expiry =
        /// read time + remaining TTL, in seconds), kind `Live`, `Expiring` or
        /// `CounterShard` (value = the counter's total), op `Set`.
        cells: Vec<Cell>,
        /// Static cells, only on the partition's own row: its key is the partition
        /// key alone, which is how the log keys a write of static columns (that
        /// row has no regular cells; a partition without static values has none).
        static_cells: Vec<Cell>,
    },
    /// A MongoDB document.
    Mongo {
        /// The document as raw BSON, as the server returned it.
        #[serde(with = "serde_bytes")]
        document: Vec<u8>,
    },
}

impl RowData {
    /// Bytes of values held (cell values, or the document).
    pub fn value_bytes(&self) -> u64 {
        match self {
            RowData::Cql {
                cells,
                static_cells,
            } => cells
                .iter()
                .chain(static_cells)
                .map(|c| c.value.len() as u64)
                .sum(),
            RowData::Mongo { document } => document.len() as u64,
        }
    }
}
