//! The output records of `tidemark inspect --json`, one JSON object per line, tagged
//! by `"type"`. Field names are the contract of ARCHITECTURE.md's "Command line"
//! section: other tools parse them, so change them only by adding.
//!
//! Decoders add their own variants here (`Message`, `Write`): one struct per record
//! type, one variant in [`Record`].

use compact_str::CompactString;
use serde::Serialize;

mod batch;
mod concern;
mod detail;
mod session;

pub use batch::{BatchPlace, CqlBatchType};
pub use concern::{SentW, SentWriteConcern};
pub use detail::MessageDetail;
pub use session::{Binary, Lsid, SessionIds, GENERIC_SUBTYPE, UUID_SUBTYPE};

use super::detect::Protocol;
pub use super::line_value::{without_raw_values, LineValue, RawForm, RawValue, RenderLater};
use super::reason::WriteReason;
use super::time::serialize_rfc3339;
use crate::capture::{CaptureStats, Timestamp};
use crate::store::envelope::{MongoOp, OpTime};

/// One line of inspect output.
///
/// `Write` is boxed: a write record is about 1.4 KB with every protocol's optional
/// fields, and an unboxed variant made every record that size, so each push and
/// move of any record (messages, flows) copied 1.4 KB (memcpy was 14 % of decode).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Flow(FlowRecord),
    Message(MessageRecord),
    Write(Box<WriteRecord>),
    Error(ErrorRecord),
    Summary(SummaryRecord),
    /// MongoDB replication evidence for the commit tracker. Inspect does not print
    /// these lines (its output vocabulary is fixed by ARCHITECTURE.md); `tap` uses them.
    Replication(ReplicationRecord),
}

/// What the replication traffic of a MongoDB replica set says (ARCHITECTURE.md,
/// MongoDB outcome rules): the majority commit point, members' durable optimes,
/// topology, and the oplog entries secondaries fetch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicationRecord {
    pub flow: u64,
    /// Capture time of the message that said it (printed RFC 3339 UTC with
    /// microseconds).
    #[serde(serialize_with = "serialize_rfc3339")]
    pub ts: Timestamp,
    pub event: ReplicationEvent,
}

/// One fact learned from replication traffic.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReplicationEvent {
    /// A majority commit point a member announced: `$replData.lastOpCommitted` (in
    /// replies to a secondary's `find`/`getMore` on `local.oplog.rs`) or
    /// `lastWrite.majorityOpTime` of a hello reply. `source` names which.
    CommitPoint {
        optime: OpTime,
        source: &'static str,
    },
    /// `replSetUpdatePosition`: each member's durable optime, as a secondary reports
    /// them to its sync source (member id, durable optime).
    MemberPositions { durable: Vec<(i64, OpTime)> },
    /// Topology from a replica-set member's hello reply: set name, the number of
    /// voting members (`hosts` + `passives` + `arbiters`: hello shows no `votes`,
    /// see [`crate::commit::mongo_rules`] for why passives count), the primary, the
    /// current term (`electionId`'s term when it is readable, else the term of
    /// `lastWrite.opTime`), how many of the voters are arbiters (`arbiters`, or the
    /// replier itself when `arbiterOnly`), and `maxWireVersion` (13 = MongoDB 5.0,
    /// where the implicit default write concern became `majority`).
    Topology {
        set_name: Option<String>,
        /// The set's members as the reply names them (`hosts`, `passives`,
        /// `arbiters`: `host:port`), so each member's flows are known to be this
        /// set's before its own hello is seen.
        hosts: Vec<String>,
        members: usize,
        primary: Option<String>,
        term: Option<i64>,
        arbiters: usize,
        max_wire_version: Option<i64>,
    },
    /// A hello reply without `setName` from a mongod that is no replica-set member
    /// (not a router: `msg: "isdbgrid"`; not an uninitiated member:
    /// `isreplicaset: true`): a standalone, which has no other member to roll back
    /// to.
    Standalone { max_wire_version: Option<i64> },
    /// A hello reply with `msg: "isdbgrid"`: the flow's server is a sharded
    /// cluster's router (mongos). Connections it opens to the shards (from its own
    /// address) carry copies of its clients' writes, not writes of their own.
    Router,
    /// The cluster-wide default write concern a `setDefaultRWConcern` or
    /// `getDefaultRWConcern` reply states (`defaultWriteConcern`): `majority` is
    /// whether its `w` is `"majority"`, `None` when the reply has no
    /// `defaultWriteConcern` (no global default is set). `source` is the reply's
    /// `defaultWriteConcernSource` (`global` or `implicit`) when present.
    DefaultWriteConcern {
        majority: Option<bool>,
        source: Option<String>,
    },
    /// One oplog entry a secondary fetched from its sync source: the authoritative
    /// form of a mutation. `wall` is the entry's `wall` date in ms when present.
    OplogEntry {
        optime: OpTime,
        wall: Option<i64>,
        #[serde(skip)]
        op: MongoOp,
    },
}

/// A flow, reported when it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowRecord {
    pub flow: u64,
    /// `ip:port`, IPv6 as `[ip]:port`.
    pub client: String,
    pub server: String,
    pub protocol: Protocol,
    pub bytes_c2s: u64,
    pub bytes_s2c: u64,
    /// Gap events over both directions.
    pub gaps: u64,
    /// Bytes given up as gaps over both directions.
    pub gap_bytes: u64,
    /// How the flow ended: `fin`, `reset`, `idle`, `evicted`, `end_of_capture`, `reused`.
    pub state: &'static str,
}

/// Something that could not be decoded. `flow`, `dir` and `offset` (the byte offset
/// in that direction's stream) are absent for errors of the capture itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    pub message: String,
}

/// Flows per detected protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProtocolCounts {
    pub cql: u64,
    pub mongo: u64,
    pub unknown: u64,
}

/// The last line: totals and the capture layer's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SummaryRecord {
    pub flows: u64,
    pub protocols: ProtocolCounts,
    pub bytes_c2s: u64,
    pub bytes_s2c: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub errors: u64,
    pub capture: CaptureStats,
}

/// One decoded protocol message. The common fields come first; the rest belong to
/// one protocol and are left out when absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MessageRecord {
    pub flow: u64,
    /// `c2s` or `s2c`.
    pub dir: &'static str,
    /// Capture time (printed RFC 3339 UTC with microseconds).
    #[serde(serialize_with = "serialize_rfc3339")]
    pub ts: Timestamp,
    /// `cql` or `mongo`.
    pub proto: &'static str,
    /// The opcode name as the spec spells it (`QUERY`, `RESULT`, `OP_MSG`, ...). For a
    /// MongoDB message that came wrapped in OP_COMPRESSED, the inner opcode.
    pub opcode: OpcodeName,
    /// Byte offset of the message in its direction's stream.
    pub offset: u64,
    /// Bytes the message took on the wire.
    pub length: u64,
    // --- CQL ---
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<i16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compressed: Option<bool>,
    // --- MongoDB ---
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_to: Option<i32>,
    /// The command name (first key of the body), for commands and their replies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// `snappy`, `zlib`, `zstd` or `noop` when the message came in OP_COMPRESSED.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compressor: Option<&'static str>,
    /// A short protocol-specific description (result kind, error code, ...), kept
    /// typed for the frequent kinds and rendered when printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<MessageDetail>,
}

/// An opcode's name as its spec spells it. Static: a message line copies no string
/// for it (one heap string per message showed in decode profiles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct OpcodeName(pub &'static str);

impl OpcodeName {
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl std::ops::Deref for OpcodeName {
    type Target = str;
    fn deref(&self) -> &str {
        self.0
    }
}

impl From<&'static str> for OpcodeName {
    fn from(name: &'static str) -> Self {
        OpcodeName(name)
    }
}

impl PartialEq<&str> for OpcodeName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::fmt::Display for OpcodeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// One write statement as seen on the wire, with its outcome as the response left
/// it (the commit tracker refines outcomes later). See ARCHITECTURE.md, "Command line".
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WriteRecord {
    pub flow: u64,
    /// Capture time of the request as an integer, so the tracker orders and times
    /// writes without reading text back (printed RFC 3339 UTC with microseconds).
    #[serde(serialize_with = "serialize_rfc3339")]
    pub ts: Timestamp,
    /// `cql` or `mongo`.
    pub proto: &'static str,
    /// `keyspace.table` or `db.collection`; `null` when not known (an unresolved
    /// EXECUTE whose PREPARE was never seen).
    pub namespace: Option<String>,
    /// `insert`, `update`, `delete`, `truncate`, `findAndModify`, DDL names, ...
    /// Inline up to 24 bytes, as are the consistency levels below: every one of
    /// these words fits, and a heap string each per write showed in allocation
    /// profiles (serialized as the `str` they are).
    pub op: CompactString,
    /// Primary-key columns fixed by equality; MongoDB `{"_id": ...}` or the filter.
    /// A prepared CQL INSERT's key columns stay bound bytes until the key is read
    /// (see `decode::cql::extract::lazy`); never with a kept form, so the store's
    /// line always holds the key itself.
    pub key: LineValue,
    /// Clustering range (CQL) when the statement names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<serde_json::Value>,
    /// Cell values (CQL, as `SELECT JSON` renders them) or the document / update
    /// specification (MongoDB, Extended JSON v2 relaxed).
    pub values: LineValue,
    /// Write timestamp in microseconds, when the client supplied one.
    pub timestamp: Option<i64>,
    /// `using`, `default` (the query's default timestamp), `server` (assigned by the
    /// coordinator), or `paxos_ballot` (CQL LWT: the Paxos ballot is the timestamp).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_source: Option<&'static str>,
    pub ttl: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency: Option<CompactString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_consistency: Option<CompactString>,
    /// MongoDB: the write concern as the command (or a `getlasterror`) sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_concern: Option<SentWriteConcern>,
    /// LWT condition (`IF NOT EXISTS`, `IF EXISTS`, or the conditions), CQL only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<serde_json::Value>,
    /// For a member of a CQL BATCH: `{"id": "flow:stream", "type":
    /// "logged|unlogged|counter", "index", "size"}`; for a MongoDB multi-statement
    /// command, its position likewise (typed: [`BatchPlace`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchPlace>,
    /// Session and transaction identity (MongoDB lsid, txnNumber, stmtId, autocommit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionIds>,
    /// CQL stream id or MongoDB requestId of the request that carried the write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<i64>,
    /// `committed`, `rejected`, `in_doubt`, `pending`, or `unresolved` (a prepared
    /// statement whose PREPARE was not seen).
    pub outcome: WireOutcome,
    /// Why the outcome is what it is: typed leading words, printed as text.
    pub reason: Option<WriteReason>,
    // --- CQL additions ---
    /// The table as written when its keyspace is not known (`namespace` is then null).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Where `key` came from: `schema` (learned from `system_schema` or CREATE TABLE
    /// seen in the capture), `where` (UPDATE/DELETE equalities), `bind_metadata`
    /// (partition key only, from a Prepared result), or `unknown` (`key` is null and
    /// every INSERT column is in `values`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_source: Option<&'static str>,
    /// `DELETE a, b FROM ...`: whole columns deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns_deleted: Option<Vec<String>>,
    /// Non-assignment changes: `{"column", "op", "value"/"key"}` with op `append`,
    /// `prepend`, `add`, `remove`, `put_all`, `put`, `set_index`, `remove_key`,
    /// `remove_keys`, `remove_index`, `set_field`, `remove_field`, `increment`,
    /// `decrement`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection_ops: Option<serde_json::Value>,
    /// CQL lightweight transaction kind: `if_not_exists`, `if_exists` or `if`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lwt: Option<&'static str>,
    /// Whether the statement was prepared (EXECUTE, or a prepared BATCH member).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prepared: Option<bool>,
    /// The statement text, when known (never for role/user statements, which can
    /// carry passwords). Shared with the prepared statement it came from: an
    /// EXECUTE copies no text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cql: Option<std::sync::Arc<str>>,
    /// The default timestamp the client put in the request (µs), whether or not it
    /// is the write timestamp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_timestamp: Option<i64>,
    /// Prepared statement id (hex) of an EXECUTE or prepared BATCH member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement_id: Option<String>,
    // --- MongoDB additions ---
    /// For a `commitTransaction`/`abortTransaction` line: how many held statements
    /// of the transaction it decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statements: Option<u64>,
    /// Typed facts for the commit tracker that are not part of the JSON line.
    #[serde(skip)]
    pub extras: WriteExtras,
}

impl WriteRecord {
    /// `batch` as the line prints it (tests and tools; nothing on the hot path).
    pub fn batch_json(&self) -> Option<serde_json::Value> {
        self.batch
            .as_ref()
            .and_then(|b| serde_json::to_value(b).ok())
    }

    /// `session` as the line prints it.
    pub fn session_json(&self) -> Option<serde_json::Value> {
        self.session
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok())
    }

    /// `write_concern` as the line prints it.
    pub fn write_concern_json(&self) -> Option<serde_json::Value> {
        self.write_concern
            .as_ref()
            .and_then(|w| serde_json::to_value(w).ok())
    }
}

/// What the commit tracker needs beyond the JSON line: the protocol's own form of
/// the change (no JSON round trip) and the reply's facts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteExtras {
    /// MongoDB: the change as an oplog-style operation with raw BSON documents (the
    /// inserted document, the update specification with the filter in `o2`, the
    /// delete filter), session fields filled when the request carried them.
    pub mongo_op: Option<MongoOp>,
    /// MongoDB: the reply's `operationTime` (the write's optime; term unknown is -1,
    /// filled from `$clusterTime`-free replies as the last known term), when present.
    pub optime: Option<OpTime>,
    /// MongoDB: the error code of the write error or write concern error, if any.
    pub error_code: Option<i32>,
    /// MongoDB: acknowledged, without errors, under the server's default write
    /// concern (no `w` sent), so what that default is (cluster-wide, or implicit
    /// by version and arbiters) decides whether the acknowledgement was a majority's.
    pub default_write_concern: bool,
    /// MongoDB: the reply says this update/delete/findAndModify changed no document
    /// (`n: 0`, `nModified: 0`, `lastErrorObject.n: 0`, nothing upserted). Such a
    /// write wrote no oplog entry, so it has no optime of its own (the reply's
    /// `operationTime` is someone else's) and nothing of it can be rolled back; its
    /// `mongo_op` is then a no-op.
    pub changed_nothing: bool,
    /// MongoDB: an update or findAndModify with `upsert: true` (the statement's flag,
    /// which its `values` — the update specification — do not carry): creates the
    /// document when none matches. Inside a transaction the statement keeps this
    /// client form, so a version must know it is an upsert.
    pub upsert: bool,
    /// MongoDB: the command carries `shardVersion` or `databaseVersion`, which only a
    /// sharded cluster's router (or a shard routing on its behalf) sends: it is the
    /// router's copy of a client's write to a shard, not a client write of its own.
    /// Known from the command itself, so it holds on a connection whose router hello
    /// the capture never saw (a tap started after the routers connected).
    pub routed: bool,
    /// CQL INSERT/UPDATE/DELETE: key, cells and deletions as wire bytes plus their
    /// CQL type (what the store keeps; the JSON fields cannot carry Cassandra's
    /// byte-order tie-break). `None` for other statements and unresolved EXECUTEs.
    /// Shared with an INSERT's lazy `values`, which render from its cells.
    pub cql: Option<std::sync::Arc<crate::decode::cql::typed::TypedWrite>>,
}

/// A write's outcome as its response left it (the commit tracker refines it from
/// there): a value, so nothing downstream matches on words; printed as the word the
/// JSON contract spells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WireOutcome {
    Committed,
    Rejected,
    /// Not decided by the response (or no response yet): the line's `reason` says why.
    #[default]
    InDoubt,
    /// MongoDB: acknowledged below the majority; waits for the commit point.
    Pending,
    RolledBack,
    /// CQL: an EXECUTE whose PREPARE was never seen; the response's outcome is in
    /// the reason.
    Unresolved,
}

impl WireOutcome {
    /// The word the JSON lines print.
    pub fn as_str(self) -> &'static str {
        match self {
            WireOutcome::Committed => "committed",
            WireOutcome::Rejected => "rejected",
            WireOutcome::InDoubt => "in_doubt",
            WireOutcome::Pending => "pending",
            WireOutcome::RolledBack => "rolled_back",
            WireOutcome::Unresolved => "unresolved",
        }
    }

    /// Whether the write was applied on the server that answered (committed, or
    /// acknowledged and waiting for the majority).
    pub fn applied(self) -> bool {
        matches!(self, WireOutcome::Committed | WireOutcome::Pending)
    }
}

impl std::fmt::Display for WireOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with the printed word, so a test or a report can say `"committed"`.
impl PartialEq<&str> for WireOutcome {
    fn eq(&self, word: &&str) -> bool {
        self.as_str() == *word
    }
}
