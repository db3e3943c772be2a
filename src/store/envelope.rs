//! The mutation envelope: what the log holds for every decided (or parked) write.
//!
//! One [`Envelope`] is one `write` line of the architecture's JSON vocabulary (typed,
//! see [`line`]) plus the log's own fields (`seq`, `commit_time`, `outcome`, `reason`),
//! so `tidemark log --json` can print a `mutation` line from it alone, and restore can
//! replay it without any other table: CQL cells carry their own write timestamps, TTLs and types, Mongo
//! operations carry the oplog-style document bytes.
//!
//! # Encoding
//!
//! Envelopes are stored with [`postcard`] (see [`crate::store::codec`]): a serde
//! format with a documented, frozen wire specification, varint integers and no field
//! names, maintained and widely used. JSON would be two to four times larger and slower
//! on the hot path; `bincode` stopped being maintained in 2025. Postcard is not
//! self-describing, so **field order is the format**: add fields only at the end of a
//! struct, or variants at the end of an enum, and bump
//! [`crate::store::FORMAT_VERSION`] for anything else.
//!
//! # No credentials
//!
//! There is deliberately no field that could hold a credential: no CQL
//! `AUTH_RESPONSE` token, no SASL or SCRAM payload, no connection string, no user
//! name. Mongo sessions are kept as the bare `lsid.id` UUID (not the `uid` digest of
//! the user). Evidence notes are free text written by the commit tracker, which must not
//! copy authentication messages into them.

mod cql;
pub mod line;
mod mongo;

use std::net::SocketAddr;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

pub use cql::{
    Cell, CellKind, CellOp, ClusteringBound, CqlEvidence, CqlPayload, Deletion, RangeDeletion,
};
pub use line::{LineTree, StoredLine, WriteLine};
pub use mongo::{MongoEvidence, MongoOp, MongoOpKind, OpTime, WriteConcern};

/// A mutation as stored in the log: its sequence number and the mutation itself.
///
/// Postcard encodes a struct as its fields in order, so the stored bytes are the
/// varint `seq` followed by the encoded [`Mutation`]; the store uses that to encode
/// a batch without copying mutations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Position in the log: dense, strictly increasing, assigned in commit order.
    pub seq: u64,
    /// The mutation.
    pub mutation: Mutation,
}

/// A mutation before it has a `seq`: what the commit tracker hands to the store.
///
/// `commit_time` comes first so that time-range queries can decode it without the
/// rest of the envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mutation {
    /// When the write was decided, in nanoseconds since the Unix epoch (capture
    /// time of the deciding response). Never decreases along the log.
    pub commit_time: u64,
    /// Where the write was seen.
    pub source: Source,
    /// `keyspace.table` or `db.collection`.
    pub namespace: String,
    /// The key as a canonical JSON object string (keys in primary-key order, no
    /// whitespace), so that by-key lookups are exact byte comparisons.
    pub key: String,
    /// What kind of statement produced it.
    pub op: WriteOp,
    /// The decision and why.
    pub outcome: Outcome,
    /// What was observed to reach the decision.
    pub evidence: Evidence,
    /// Client-side write timestamp in microseconds (CQL `USING TIMESTAMP` or the
    /// driver's default timestamp); `None` when the protocol has none (Mongo).
    pub write_timestamp: Option<i64>,
    /// Time to live in seconds (CQL `USING TTL`), `None` when not set.
    pub ttl: Option<u32>,
    /// The acknowledgement the client asked for.
    pub ack: Acknowledgement,
    /// The CQL batch this statement was a member of, if any.
    pub batch: Option<BatchRef>,
    /// The protocol's own form of the change.
    pub payload: Payload,
    /// The `write` line this mutation was decided from, typed (format 6; JSON text up
    /// to format 5): `tidemark log --json` renders it as `tidemark inspect --json`
    /// printed it (outcome fields aside), plus the log's own fields — its `values`
    /// rendered from [`Self::line_values`] when those hold them. `None` for mutations
    /// that never had a write line.
    pub line: Option<StoredLine>,
    /// The line's `values` in the protocol's own form when the decoder kept them so
    /// (MongoDB documents and update specifications as BSON, a prepared CQL
    /// statement's bound values with their types): rendered only when the
    /// line is printed (`commit::convert::write_line`), so the tap neither renders a
    /// document to JSON nor stores it twice. Added in format 4.
    pub line_values: Option<LineValues>,
    /// For a schema change (`op` = [`WriteOp::Ddl`]): the statement as the write line
    /// names it and its CQL text, so versions and schema learning read a field instead
    /// of parsing the line. Added in format 4.
    pub ddl: Option<DdlChange>,
}

/// A write line's `values` kept as bytes (see [`Mutation::line_values`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LineValues {
    /// A BSON document.
    BsonDocument(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A BSON array (its bytes are a document keyed "0", "1", ...).
    BsonArray(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The very bytes of the MongoDB payload's `o` document (an insert's document, an
    /// update's specification): not stored twice.
    PayloadDocument,
    /// A CQL statement's values as the decoder kept them (bound bytes with their
    /// types, or JSON per column; `decode::cql::extract::lazy`). Added in format 5.
    CqlValues(#[serde(with = "serde_bytes")] Vec<u8>),
}

/// A schema change as the write line names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DdlChange {
    /// The line's `op`: `create_table`, `drop_keyspace`, `alter_table`, MongoDB's
    /// `create`, `drop`, `dropDatabase`, ...
    pub op: String,
    /// The CQL statement text, when the line carried it.
    pub cql: Option<String>,
}

impl DdlChange {
    /// Whether the change removes data: DROP TABLE / KEYSPACE, MongoDB `drop` and
    /// `dropDatabase`.
    pub fn drops_data(&self) -> bool {
        matches!(
            self.op.as_str(),
            "drop_table" | "drop_keyspace" | "drop" | "dropDatabase"
        )
    }
}

impl Mutation {
    /// The `reason` people read: the evidence note when there is one (it names the
    /// rule and what was seen), else the outcome's own reason.
    pub fn reason_text(&self) -> Option<&str> {
        if self.evidence.note.is_empty() {
            self.outcome.reason()
        } else {
            Some(&self.evidence.note)
        }
    }

    /// The protocol, derived from the payload so the two can never disagree.
    pub fn protocol(&self) -> Protocol {
        match self.payload {
            Payload::Cql(_) => Protocol::Cql,
            Payload::Mongo(_) => Protocol::Mongo,
        }
    }
}

/// The node and flow a write was seen on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The database node that received the write (`ip:port`).
    pub node: SocketAddr,
    /// The capture flow id ([`crate::capture::FlowId`]'s number).
    pub flow: u64,
}

/// Wire protocol of a mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Cassandra native protocol.
    Cql,
    /// MongoDB wire protocol.
    Mongo,
}

impl Protocol {
    /// The spelling used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Cql => "cql",
            Protocol::Mongo => "mongo",
        }
    }
}

/// The statement kind, as `write` lines spell it in `op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteOp {
    /// CQL INSERT, Mongo insert.
    Insert,
    /// CQL UPDATE, Mongo update (without upsert) and findAndModify update.
    Update,
    /// Mongo update with `upsert: true`.
    Upsert,
    /// CQL DELETE, Mongo delete and findAndModify remove.
    Delete,
    /// CQL TRUNCATE, Mongo drop of a collection's documents.
    Truncate,
    /// Schema change (CREATE/ALTER/DROP, Mongo create/drop/createIndexes ...).
    Ddl,
}

impl WriteOp {
    /// The spelling used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteOp::Insert => "insert",
            WriteOp::Update => "update",
            WriteOp::Upsert => "upsert",
            WriteOp::Delete => "delete",
            WriteOp::Truncate => "truncate",
            WriteOp::Ddl => "ddl",
        }
    }
}

/// The decision on a write (ARCHITECTURE.md, "Outcome rules").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Durable at the requested level: part of every version after `commit_time`.
    Committed,
    /// Not applied (LWT not applied, Unavailable, syntax error, aborted transaction).
    Rejected,
    /// Might or might not have been applied.
    InDoubt {
        /// Which rule left it undecided.
        reason: InDoubtReason,
    },
    /// Acknowledged by a Mongo primary that later lost it in a rollback.
    RolledBack,
    /// Acknowledged but not yet at the commit point (Mongo `w:1`).
    Pending,
}

impl Outcome {
    /// The kind without its reason, for queries and indexes.
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Outcome::Committed => OutcomeKind::Committed,
            Outcome::Rejected => OutcomeKind::Rejected,
            Outcome::InDoubt { .. } => OutcomeKind::InDoubt,
            Outcome::RolledBack => OutcomeKind::RolledBack,
            Outcome::Pending => OutcomeKind::Pending,
        }
    }

    /// The `reason` field of a `mutation` line, if any.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::InDoubt { reason } => Some(reason.as_str()),
            _ => None,
        }
    }
}

/// [`Outcome`] without data: what `--outcome` filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// See [`Outcome::Committed`].
    Committed,
    /// See [`Outcome::Rejected`].
    Rejected,
    /// See [`Outcome::InDoubt`].
    InDoubt,
    /// See [`Outcome::RolledBack`].
    RolledBack,
    /// See [`Outcome::Pending`].
    Pending,
}

impl OutcomeKind {
    /// The spelling used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Committed => "committed",
            OutcomeKind::Rejected => "rejected",
            OutcomeKind::InDoubt => "in_doubt",
            OutcomeKind::RolledBack => "rolled_back",
            OutcomeKind::Pending => "pending",
        }
    }
}

/// Why a write is in doubt; one variant per rule that can say so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InDoubtReason {
    /// WriteTimeout/WriteFailure with nothing received, or an unlogged batch member.
    Timeout,
    /// The batchlog write itself timed out (`BATCH_LOG`).
    Batchlog,
    /// LWT outcome unknown (`CAS` timeout, `CAS_WRITE_UNKNOWN`).
    CasUnknown,
    /// The flow closed, or a capture gap hid the response.
    NoResponse,
    /// Mongo `w:0` / `moreToCome`, with no replication traffic to confirm it.
    Unacknowledged,
    /// Mongo `UnknownTransactionCommitResult`.
    UnknownCommitResult,
    /// A rule not listed above; the text names it.
    Other(String),
}

impl InDoubtReason {
    /// The spelling used in the `reason` field.
    pub fn as_str(&self) -> &str {
        match self {
            InDoubtReason::Timeout => "timeout",
            InDoubtReason::Batchlog => "batchlog",
            InDoubtReason::CasUnknown => "cas_unknown",
            InDoubtReason::NoResponse => "no_response",
            InDoubtReason::Unacknowledged => "unacknowledged",
            InDoubtReason::UnknownCommitResult => "unknown_commit_result",
            InDoubtReason::Other(text) => text,
        }
    }
}

/// What the tracker saw that led to the outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Human-readable summary, e.g. `"WriteTimeout SIMPLE received 1/2"`.
    pub note: String,
    /// Structured facts from the protocol.
    pub detail: EvidenceDetail,
}

/// Structured evidence, per protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceDetail {
    /// Nothing structured (e.g. decided from an oplog entry).
    #[default]
    None,
    /// The CQL response that decided it.
    Cql(CqlEvidence),
    /// The Mongo reply and replication state that decided it.
    Mongo(MongoEvidence),
}

/// The durability the client asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Acknowledgement {
    /// Not known (e.g. learned from an oplog entry).
    #[default]
    Unknown,
    /// CQL consistency level as the spec spells it (`QUORUM`, `LOCAL_ONE`, ...),
    /// plus the serial consistency of an LWT.
    Consistency {
        /// Consistency level name (inline: every level's name fits, and a heap
        /// string per CQL mutation was made by the decoder's thread and freed by
        /// the committer's; serialized as the `str` it is).
        level: CompactString,
        /// Serial consistency level name, for conditional statements.
        serial: Option<CompactString>,
    },
    /// Mongo write concern.
    WriteConcern(WriteConcern),
}

/// The CQL batch a statement belonged to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRef {
    /// Identifies the batch within the capture (same id on every member).
    pub id: u64,
    /// `logged`, `unlogged` or `counter`.
    pub kind: BatchKind,
    /// Position of the statement in the batch, from 0.
    pub index: u32,
}

/// CQL batch type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchKind {
    /// Written to the batchlog first.
    Logged,
    /// No batchlog.
    Unlogged,
    /// Counter batch.
    Counter,
}

/// The protocol's own form of the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// Cells and deletions, as Cassandra would store them.
    Cql(CqlPayload),
    /// An oplog-style operation.
    Mongo(MongoOp),
}
