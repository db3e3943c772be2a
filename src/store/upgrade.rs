//! Reading and converting stores of older formats (2 to 5).
//!
//! Format 3 appended `op` to the CQL [`Cell`]; format 4 appended `line_values` and
//! `ddl` to the [`Mutation`]; format 5 a variant of `line_values` (no rewrite); format
//! 6 replaced the write line's JSON text (`write_json`) by the typed line
//! ([`StoredLine`], converted by `legacy_line`). Postcard has no field names, so an
//! older envelope (or
//! undecided write, which holds a mutation) only decodes with the old layout, kept
//! here. A backup tool must never strand old backups: readers decode old formats
//! through these layouts (a repository's segments keep the format they were sealed
//! in), and a writer converts the whole store in one transaction when it opens it, so
//! a crash leaves either the old format or the new one.

use serde::Deserialize;

use super::codec;
use super::envelope::{
    Acknowledgement, BatchRef, Cell, CellKind, CellOp, CqlPayload, DdlChange, Deletion, Envelope,
    Evidence, LineValues, MongoOp, Mutation, Outcome, Payload, RangeDeletion, Source, StoredLine,
    WriteOp,
};
use super::records::Undecided;

/// A format-2 CQL cell: [`Cell`] without `op`.
#[derive(Deserialize)]
struct CellV2 {
    column: String,
    #[serde(with = "serde_bytes")]
    path: Option<Vec<u8>>,
    #[serde(with = "serde_bytes")]
    value: Vec<u8>,
    cql_type: String,
    timestamp: i64,
    ttl: Option<u32>,
    local_deletion_time: Option<i64>,
    kind: CellKind,
}

#[derive(Deserialize)]
struct CqlPayloadV2 {
    cells: Vec<CellV2>,
    row_deletion: Option<Deletion>,
    range_deletions: Vec<RangeDeletion>,
    partition_deletion: Option<Deletion>,
}

#[derive(Deserialize)]
enum PayloadV2 {
    Cql(CqlPayloadV2),
    Mongo(MongoOp),
}

#[derive(Deserialize)]
struct MutationV2 {
    commit_time: u64,
    source: Source,
    namespace: String,
    key: String,
    op: WriteOp,
    outcome: Outcome,
    evidence: Evidence,
    write_timestamp: Option<i64>,
    ttl: Option<u32>,
    ack: Acknowledgement,
    batch: Option<BatchRef>,
    payload: PayloadV2,
    write_json: Option<String>,
}

#[derive(Deserialize)]
struct EnvelopeV2 {
    seq: u64,
    mutation: MutationV2,
}

#[derive(Deserialize)]
struct UndecidedV2 {
    first_seen: u64,
    mutation: MutationV2,
    #[serde(with = "serde_bytes")]
    tracker_state: Vec<u8>,
}

/// A format-3 mutation: [`Mutation`] without `line_values` and `ddl`.
#[derive(Deserialize)]
struct MutationV3 {
    commit_time: u64,
    source: Source,
    namespace: String,
    key: String,
    op: WriteOp,
    outcome: Outcome,
    evidence: Evidence,
    write_timestamp: Option<i64>,
    ttl: Option<u32>,
    ack: Acknowledgement,
    batch: Option<BatchRef>,
    payload: Payload,
    write_json: Option<String>,
}

#[derive(Deserialize)]
struct EnvelopeV3 {
    seq: u64,
    mutation: MutationV3,
}

#[derive(Deserialize)]
struct UndecidedV3 {
    first_seen: u64,
    mutation: MutationV3,
    #[serde(with = "serde_bytes")]
    tracker_state: Vec<u8>,
}

/// A format-4/5 mutation: [`Mutation`] with the write line as JSON text.
#[derive(Deserialize)]
struct MutationV5 {
    commit_time: u64,
    source: Source,
    namespace: String,
    key: String,
    op: WriteOp,
    outcome: Outcome,
    evidence: Evidence,
    write_timestamp: Option<i64>,
    ttl: Option<u32>,
    ack: Acknowledgement,
    batch: Option<BatchRef>,
    payload: Payload,
    write_json: Option<String>,
    line_values: Option<LineValues>,
    ddl: Option<DdlChange>,
}

#[derive(Deserialize)]
struct EnvelopeV5 {
    seq: u64,
    mutation: MutationV5,
}

#[derive(Deserialize)]
struct UndecidedV5 {
    first_seen: u64,
    mutation: MutationV5,
    #[serde(with = "serde_bytes")]
    tracker_state: Vec<u8>,
}

impl From<MutationV5> for Mutation {
    fn from(m: MutationV5) -> Mutation {
        let line: Option<StoredLine> = m
            .write_json
            .as_deref()
            .map(|text| super::legacy_line::typed_line(text, &m.key));
        Mutation {
            commit_time: m.commit_time,
            source: m.source,
            namespace: m.namespace,
            key: m.key,
            op: m.op,
            outcome: m.outcome,
            evidence: m.evidence,
            write_timestamp: m.write_timestamp,
            ttl: m.ttl,
            ack: m.ack,
            batch: m.batch,
            payload: m.payload,
            line,
            line_values: m.line_values,
            ddl: m.ddl,
        }
    }
}

/// The schema change a format-3 line names: its `op` and `cql` fields.
fn ddl_of_line(op: WriteOp, write_json: Option<&str>) -> Option<DdlChange> {
    if op != WriteOp::Ddl {
        return None;
    }
    let line: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(write_json?).ok()?;
    let text = |k: &str| line.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    Some(DdlChange {
        op: text("op")?,
        cql: text("cql"),
    })
}

impl From<MutationV3> for MutationV5 {
    fn from(m: MutationV3) -> MutationV5 {
        MutationV5 {
            ddl: ddl_of_line(m.op, m.write_json.as_deref()),
            commit_time: m.commit_time,
            source: m.source,
            namespace: m.namespace,
            key: m.key,
            op: m.op,
            outcome: m.outcome,
            evidence: m.evidence,
            write_timestamp: m.write_timestamp,
            ttl: m.ttl,
            ack: m.ack,
            batch: m.batch,
            payload: m.payload,
            write_json: m.write_json,
            line_values: None,
        }
    }
}

impl From<CellV2> for Cell {
    fn from(c: CellV2) -> Cell {
        // Format 2 wrote only whole-column cells: values and tombstones.
        let op = match c.kind {
            CellKind::Tombstone => CellOp::Tombstone,
            CellKind::CounterShard => CellOp::Increment,
            CellKind::Live | CellKind::Expiring => CellOp::Set,
        };
        Cell {
            column: c.column.into(),
            path: c.path,
            value: c.value.into(),
            cql_type: c.cql_type.into(),
            timestamp: c.timestamp,
            ttl: c.ttl,
            local_deletion_time: c.local_deletion_time,
            kind: c.kind,
            op,
        }
    }
}

impl From<MutationV2> for MutationV3 {
    fn from(m: MutationV2) -> MutationV3 {
        let payload = match m.payload {
            PayloadV2::Mongo(op) => Payload::Mongo(op),
            PayloadV2::Cql(p) => Payload::Cql(CqlPayload {
                cells: p.cells.into_iter().map(Cell::from).collect(),
                row_deletion: p.row_deletion,
                range_deletions: p.range_deletions,
                partition_deletion: p.partition_deletion,
            }),
        };
        MutationV3 {
            commit_time: m.commit_time,
            source: m.source,
            namespace: m.namespace,
            key: m.key,
            op: m.op,
            outcome: m.outcome,
            evidence: m.evidence,
            write_timestamp: m.write_timestamp,
            ttl: m.ttl,
            ack: m.ack,
            batch: m.batch,
            payload,
            write_json: m.write_json,
        }
    }
}

/// Decodes a stored envelope of a store in `format`.
pub fn decode_envelope(format: u32, bytes: &[u8]) -> Result<Envelope, String> {
    match format {
        2 => {
            let e: EnvelopeV2 = codec::decode(bytes)?;
            Ok(Envelope {
                seq: e.seq,
                mutation: MutationV5::from(MutationV3::from(e.mutation)).into(),
            })
        }
        3 => {
            let e: EnvelopeV3 = codec::decode(bytes)?;
            Ok(Envelope {
                seq: e.seq,
                mutation: MutationV5::from(e.mutation).into(),
            })
        }
        4 | 5 => {
            let e: EnvelopeV5 = codec::decode(bytes)?;
            Ok(Envelope {
                seq: e.seq,
                mutation: e.mutation.into(),
            })
        }
        _ => codec::decode_envelope(bytes),
    }
}

/// Decodes a stored undecided write of a store in `format`.
pub fn decode_undecided(format: u32, bytes: &[u8]) -> Result<Undecided, String> {
    match format {
        2 => {
            let u: UndecidedV2 = codec::decode(bytes)?;
            Ok(Undecided {
                first_seen: u.first_seen,
                mutation: MutationV5::from(MutationV3::from(u.mutation)).into(),
                tracker_state: u.tracker_state,
            })
        }
        3 => {
            let u: UndecidedV3 = codec::decode(bytes)?;
            Ok(Undecided {
                first_seen: u.first_seen,
                mutation: MutationV5::from(u.mutation).into(),
                tracker_state: u.tracker_state,
            })
        }
        4 | 5 => {
            let u: UndecidedV5 = codec::decode(bytes)?;
            Ok(Undecided {
                first_seen: u.first_seen,
                mutation: u.mutation.into(),
                tracker_state: u.tracker_state,
            })
        }
        _ => codec::decode(bytes),
    }
}

/// Entries converted per round, so memory stays bounded on a large log.
const CHUNK: usize = 4096;

/// Rewrites every envelope and undecided write of a store in the older `format` in
/// the current layout, in `txn` (the caller commits it together with the new format
/// version). Returns how many values were rewritten.
pub fn rewrite_older(
    format: u32,
    dbs: &super::dbs::Dbs,
    txn: &mut heed::RwTxn<'_>,
) -> Result<u64, UpgradeError> {
    if format >= super::meta::SAME_LAYOUT_SINCE {
        return Ok(0);
    }
    let mut done = 0u64;
    let mut from = 0u64;
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        for item in dbs.log.range(txn, &(from..))? {
            let (seq, bytes) = item?;
            let env = decode_envelope(format, bytes).map_err(|e| UpgradeError::Decode(seq, e))?;
            let out = codec::encode_envelope_into(env.seq, &env.mutation, Vec::new())
                .map_err(|e| UpgradeError::Decode(seq, e))?;
            chunk.push((seq, out));
            if chunk.len() == CHUNK {
                break;
            }
        }
        let Some(&(last, _)) = chunk.last() else {
            break;
        };
        for (seq, bytes) in &chunk {
            dbs.log.put(txn, seq, bytes)?;
        }
        done += chunk.len() as u64;
        from = last + 1;
    }
    let mut writes = Vec::new();
    for item in dbs.writes.iter(txn)? {
        let (id, bytes) = item?;
        let u = decode_undecided(format, bytes).map_err(|e| UpgradeError::Decode(0, e))?;
        let out = codec::encode(&u).map_err(|e| UpgradeError::Decode(0, e))?;
        writes.push((id.to_vec(), out));
    }
    for (id, bytes) in &writes {
        dbs.writes.put(txn, id, bytes)?;
    }
    Ok(done + writes.len() as u64)
}

/// Why a conversion failed.
#[derive(Debug)]
pub enum UpgradeError {
    Lmdb(heed::Error),
    /// A value that does not decode in its format (log seq, or 0 for `writes`).
    Decode(u64, String),
}

impl From<heed::Error> for UpgradeError {
    fn from(e: heed::Error) -> Self {
        UpgradeError::Lmdb(e)
    }
}
