//! The non-log records a store keeps so that a restart resumes exactly where it left
//! off: undecided writes, prepared statements, schema, capture checkpoints, gaps and
//! the outcome policy.
//!
//! Like envelopes they are postcard-encoded, so the same rule applies: add fields only
//! at the end (see [`crate::store::envelope`]).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::envelope::Mutation;

/// A write that has been seen but not decided yet (`writes` database).
///
/// Written when a request is seen (or when a `pending` Mongo write waits for the
/// commit point) and removed in the same transaction that appends its decision, so a
/// crash never loses or duplicates a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undecided {
    /// Capture time the request was first seen, in nanoseconds since the epoch.
    pub first_seen: u64,
    /// The mutation as it would be logged, with the outcome known so far
    /// (`pending` or `in_doubt`). A file run parks it slim before its last flush
    /// (`tracker_state` is `crate::commit::SLIM_PARKED`): namespace, key, node,
    /// outcome, note and time only — what `status` lists — with an empty payload and
    /// no line, since its `--resume` replays the capture; such records remain only
    /// in the store of a file run that crashed.
    pub mutation: Mutation,
    /// The commit tracker's own state for the write (pairing keys, replica acks),
    /// opaque to the store and versioned by the tracker.
    #[serde(with = "serde_bytes")]
    pub tracker_state: Vec<u8>,
}

/// A CQL prepared statement as learned from a PREPARE and its RESULT Prepared
/// (`prepared` database). Keyed by statement id then node, because a statement
/// id is the same on every node for the same text and keyspace, and an EXECUTE may
/// arrive on a connection that never saw the PREPARE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedStatement {
    /// The statement text.
    pub query: String,
    /// The keyspace in effect (`USE` or the v5 PREPARE keyspace flag).
    pub keyspace: Option<String>,
    /// The RESULT Prepared metadata (bind variables) as raw protocol bytes.
    #[serde(with = "serde_bytes")]
    pub metadata: Vec<u8>,
    /// v5 `result_metadata_id`, when present.
    #[serde(with = "serde_bytes")]
    pub result_metadata_id: Option<Vec<u8>>,
    /// Native protocol version it was prepared with.
    pub protocol_version: u8,
    /// Capture time of the PREPARE's response, in nanoseconds since the epoch.
    pub seen_at: u64,
}

/// What the tracker knows about a namespace's schema (`schema` database).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceSchema {
    /// Partition key columns, in order (CQL); `["_id"]` for Mongo.
    pub partition_key: Vec<String>,
    /// Clustering columns, in order (CQL).
    pub clustering: Vec<ClusteringColumn>,
    /// All columns with their CQL types (CQL); empty for Mongo.
    pub columns: Vec<Column>,
    /// Replication of the keyspace / replica set size.
    pub replication: Replication,
    /// Capture time this was learned, in nanoseconds since the epoch.
    pub updated_at: u64,
    /// The keyspace's user types the columns may name: (type name, fields with their
    /// CQL type text, in declaration order). Added with the first writer of this table
    /// (`tap`), so no stored record lacks it.
    pub user_types: Vec<(String, Vec<(String, String)>)>,
}

/// A clustering column and its order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusteringColumn {
    /// Column name.
    pub name: String,
    /// `CLUSTERING ORDER BY ... DESC`.
    pub descending: bool,
}

/// A column and its CQL type as CQL spells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// CQL type (`text`, `map<text, int>`, ...).
    pub cql_type: String,
}

/// How a namespace is replicated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replication {
    /// Strategy class (`SimpleStrategy`, `NetworkTopologyStrategy`) or `replset`.
    pub strategy: String,
    /// Replication factor (SimpleStrategy) or replica set voting members.
    pub factor: Option<u32>,
    /// Per data center factors (NetworkTopologyStrategy).
    pub per_dc: Vec<(String, u32)>,
}

/// Where a capture source got to (`flows` database), keyed by a source id such as
/// `pcap:/path/file.pcap` or `proxy:10.0.0.1:9042`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Byte offset (pcap file) or packet/message count the source resumes after.
    pub offset: u64,
    /// The source's own resume state (reassembly, per-flow decoders), opaque here.
    #[serde(with = "serde_bytes")]
    pub state: Vec<u8>,
    /// Capture time of the checkpoint, in nanoseconds since the epoch.
    pub at: u64,
}

/// A hole in the capture (`meta` database): writes whose responses fell into it
/// cannot be decided, and no version can be cut across it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// Flow the bytes were lost on.
    pub flow: u64,
    /// Server side of the flow, when known.
    pub node: Option<SocketAddr>,
    /// Capture time of the last byte before the gap, ns since the epoch.
    pub from: u64,
    /// Capture time of the first byte after the gap, ns since the epoch.
    pub to: u64,
    /// Bytes missing.
    pub bytes: u64,
}

/// Decisions that are settings rather than rules (`meta` database).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// A Mongo `w:1` write with no replication traffic in sight counts as committed
    /// (and `status` says so). Default `true`, as ARCHITECTURE.md prescribes.
    pub mongo_unreplicated_committed: bool,
    /// What an in-doubt write becomes at its resolution deadline: `keep`,
    /// `committed` or `rejected`.
    pub in_doubt: String,
    /// The resolution deadline: capture time (ns) an in-doubt write may wait for a
    /// retry or duplicate to resolve it.
    pub resolve_after_ns: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            mongo_unreplicated_committed: true,
            in_doubt: "keep".to_string(),
            resolve_after_ns: 10_000_000_000,
        }
    }
}
