//! A decoded `write` line → the store's [`Mutation`], and back to the line.
//!
//! The line keeps everything `tidemark log --json` prints, typed (`super::line`),
//! except the values a decoder kept as bytes (MongoDB documents, CQL bound values),
//! which are stored as bytes (`line_values`) and rendered only when printed
//! (`super::line::write_line`); the
//! payload is the protocol's own form: Mongo operations come from the decoder as raw
//! BSON ([`WriteExtras::mongo_op`](crate::decode::records::WriteExtras)); CQL cells
//! carry each value's serialized bytes and CQL type (see [`super::cql_cells`]), or
//! its `SELECT JSON` text where the decoder knew no type.

use std::net::SocketAddr;

use serde_json::Value;

use crate::decode::mongo::share::same_slice;
use crate::decode::reason::{Reason, WriteReason};
use crate::decode::records::{
    BatchPlace, CqlBatchType, RawForm, SentW, SentWriteConcern, WireOutcome, WriteRecord,
};
use crate::store::{
    Acknowledgement, BatchKind, BatchRef, DdlChange, Evidence, InDoubtReason, LineValues, MongoOp,
    MongoOpKind, Mutation, Outcome, Payload, Source, WriteConcern, WriteOp,
};

/// Namespace used when a write's table is not known (an EXECUTE whose PREPARE was
/// never seen): the store needs one, and this one can never clash with a real one.
pub const UNKNOWN_NAMESPACE: &str = "(unknown)";

/// Whether the line is a transaction's control statement (`commitTransaction`,
/// `abortTransaction`): it decides other lines and changes nothing itself.
pub fn is_control(rec: &WriteRecord) -> bool {
    rec.proto == "mongo" && matches!(rec.op.as_str(), "commitTransaction" | "abortTransaction")
}

/// The outcome a decoder gave a line, as the store spells it.
pub fn outcome_of(rec: &WriteRecord) -> Outcome {
    match rec.outcome {
        WireOutcome::Committed => Outcome::Committed,
        WireOutcome::Rejected => Outcome::Rejected,
        WireOutcome::Pending => Outcome::Pending,
        WireOutcome::RolledBack => Outcome::RolledBack,
        WireOutcome::Unresolved => Outcome::InDoubt {
            reason: InDoubtReason::Other(Reason::UnresolvedPrepared.as_str().into()),
        },
        WireOutcome::InDoubt => Outcome::InDoubt {
            reason: in_doubt_reason(rec.reason.as_ref()),
        },
    }
}

/// The store's reason for a decoder's in-doubt reason: by its typed words, never
/// by reading its text; the reasons the store has no variant for keep their text.
pub fn in_doubt_reason(reason: Option<&WriteReason>) -> InDoubtReason {
    let Some(reason) = reason else {
        return InDoubtReason::Other(Reason::Unknown.as_str().into());
    };
    match reason.word() {
        Reason::Timeout => InDoubtReason::Timeout,
        Reason::Batchlog => InDoubtReason::Batchlog,
        Reason::CasUnknown => InDoubtReason::CasUnknown,
        Reason::NoResponse => InDoubtReason::NoResponse,
        Reason::Unacknowledged => InDoubtReason::Unacknowledged,
        Reason::UnknownCommitResult => InDoubtReason::UnknownCommitResult,
        _ => InDoubtReason::Other(reason.to_string()),
    }
}

/// The store's statement kind of a line.
pub fn write_op(rec: &WriteRecord) -> WriteOp {
    match rec.op.as_str() {
        "insert" => WriteOp::Insert,
        "update" | "findAndModify" | "applyOps" => {
            // Read from the bytes when the decoder kept them so: rendering a document
            // to look up one field is the cost lazy values avoid.
            let upsert = rec.extras.upsert
                || match rec.values.as_raw() {
                    Some(raw) if raw.form() == RawForm::BsonDocument => {
                        tidemark_mongo::bson::RawDocument::from_bytes(raw.bytes())
                            .ok()
                            .and_then(|d| d.get_bool("upsert").ok())
                            .unwrap_or(false)
                    }
                    Some(_) => false,
                    None => rec
                        .values
                        .get("upsert")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                };
            if upsert {
                WriteOp::Upsert
            } else {
                WriteOp::Update
            }
        }
        "delete" => WriteOp::Delete,
        "truncate" => WriteOp::Truncate,
        _ => WriteOp::Ddl,
    }
}

/// The canonical key string: the key object as JSON without whitespace, keys in the
/// order the decoder gave them (primary-key order).
pub fn canonical_key(rec: &WriteRecord) -> String {
    rec.key.canonical_text().into_owned()
}

/// The values a decoder kept as bytes, as the store keeps them: the payload's own
/// `o` document when they are the same bytes (stored once). A decoder hands both
/// over as one slice of the request (`decode::mongo::share`): then they are the
/// same bytes by their address, without comparing a document's worth of them.
pub fn line_values(rec: &WriteRecord, payload: &Payload) -> Option<LineValues> {
    let (form, bytes) = rec.values.kept()?;
    if let Payload::Mongo(op) = payload {
        if form == RawForm::BsonDocument && (same_slice(&op.o, bytes) || op.o == bytes) {
            return Some(LineValues::PayloadDocument);
        }
    }
    Some(match form {
        RawForm::BsonDocument => LineValues::BsonDocument(bytes.to_vec()),
        RawForm::BsonArray => LineValues::BsonArray(bytes.to_vec()),
        RawForm::CqlValues => LineValues::CqlValues(bytes.to_vec()),
    })
}

fn ack(rec: &WriteRecord) -> Acknowledgement {
    if let Some(level) = &rec.consistency {
        return Acknowledgement::Consistency {
            level: level.clone(),
            serial: rec.serial_consistency.clone(),
        };
    }
    match &rec.write_concern {
        Some(SentWriteConcern::Fields { w, j, wtimeout }) => {
            Acknowledgement::WriteConcern(WriteConcern {
                w: w.as_ref().map(SentW::text),
                j: *j,
                wtimeout_ms: wtimeout.and_then(|t| u64::try_from(t).ok()),
            })
        }
        Some(SentWriteConcern::Json(Value::Object(wc))) => {
            Acknowledgement::WriteConcern(WriteConcern {
                w: wc.get("w").map(|w| match w {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }),
                j: wc.get("j").and_then(Value::as_bool),
                wtimeout_ms: wc.get("wtimeout").and_then(Value::as_u64),
            })
        }
        _ if rec.proto == "mongo" => Acknowledgement::WriteConcern(WriteConcern::default()),
        _ => Acknowledgement::Unknown,
    }
}

fn batch(rec: &WriteRecord) -> Option<BatchRef> {
    let (id, kind, index) = match rec.batch.as_ref()? {
        BatchPlace::Cql {
            flow,
            stream,
            kind,
            index,
            ..
        } => (batch_id(*flow, *stream), *kind, *index),
        BatchPlace::Mongo { .. } => return None,
        BatchPlace::Json(b) => {
            let kind = CqlBatchType::parse(b.get("type")?.as_str()?)?;
            // A line read back as JSON names its batch `flow:stream`.
            let id = match b.get("id")? {
                Value::String(s) => {
                    let (flow, stream) = s.split_once(':')?;
                    batch_id(flow.parse().ok()?, stream.parse().ok()?)
                }
                Value::Number(n) => n.as_u64()?,
                _ => return None,
            };
            (id, kind, b.get("index")?.as_u64()?)
        }
    };
    Some(BatchRef {
        id,
        kind: match kind {
            CqlBatchType::Logged => BatchKind::Logged,
            CqlBatchType::Unlogged => BatchKind::Unlogged,
            CqlBatchType::Counter => BatchKind::Counter,
        },
        index: index as u32,
    })
}

/// The store's number for the CQL batch of `flow` and `stream`.
fn batch_id(flow: u64, stream: i16) -> u64 {
    flow << 16 | u64::from(stream as u16)
}

/// The Mongo operation of a line: the decoder's raw-BSON form, or (for lines without
/// it, e.g. legacy forms) a no-op naming the namespace, with the JSON line kept.
fn mongo_payload(rec: &WriteRecord, taken: Option<MongoOp>) -> MongoOp {
    if let Some(mut op) = taken.or_else(|| rec.extras.mongo_op.clone()) {
        if op.optime.is_none() {
            op.optime = rec.extras.optime;
        }
        return op;
    }
    MongoOp {
        op: match rec.op.as_str() {
            "insert" => MongoOpKind::Insert,
            "update" | "findAndModify" => MongoOpKind::Update,
            "delete" => MongoOpKind::Delete,
            _ => MongoOpKind::Command,
        },
        ns: rec.namespace.clone().unwrap_or_default(),
        o: bytes::Bytes::new(),
        o2: None,
        optime: rec.extras.optime,
        lsid: None,
        txn_number: None,
        stmt_id: None,
    }
}

/// The namespace a line's mutation is stored under.
pub fn namespace(rec: &WriteRecord) -> String {
    rec.namespace
        .clone()
        .or_else(|| rec.table.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| UNKNOWN_NAMESPACE.to_string())
}

/// Builds the mutation of `rec` as decided at `commit_time` with `outcome`.
pub fn mutation(
    rec: &WriteRecord,
    node: SocketAddr,
    request_time_ns: u64,
    commit_time: u64,
    outcome: Outcome,
    note: String,
) -> Mutation {
    build(rec, None, node, request_time_ns, commit_time, outcome, note)
}

/// [`mutation`] of a line the caller is done with: its MongoDB operation moves into
/// the payload instead of being copied (an inserted document is most of the bytes
/// of a mutation, and copying it was a sixth of deciding one).
pub fn mutation_of_owned(
    mut rec: Box<WriteRecord>,
    node: SocketAddr,
    request_time_ns: u64,
    commit_time: u64,
    outcome: Outcome,
    note: String,
) -> Mutation {
    let op = rec.extras.mongo_op.take();
    build(&rec, op, node, request_time_ns, commit_time, outcome, note)
}

/// [`mutation`], with the line's MongoDB operation already taken out of it
/// (`mongo_op`), or `None` to copy it from the line.
fn build(
    rec: &WriteRecord,
    mongo_op: Option<MongoOp>,
    node: SocketAddr,
    request_time_ns: u64,
    commit_time: u64,
    outcome: Outcome,
    note: String,
) -> Mutation {
    let namespace = namespace(rec);
    let payload = if rec.proto == "mongo" {
        Payload::Mongo(mongo_payload(rec, mongo_op))
    } else {
        Payload::Cql(super::cql_cells::cql_payload(rec, request_time_ns))
    };
    let op = write_op(rec);
    Mutation {
        line_values: line_values(rec, &payload),
        ddl: (op == WriteOp::Ddl).then(|| DdlChange {
            op: rec.op.to_string(),
            cql: rec.cql.as_deref().map(str::to_string),
        }),
        commit_time,
        source: Source {
            node,
            flow: rec.flow,
        },
        namespace,
        key: canonical_key(rec),
        op,
        outcome,
        evidence: Evidence {
            note,
            ..Evidence::default()
        },
        write_timestamp: rec.timestamp,
        ttl: rec.ttl.and_then(|t| u32::try_from(t).ok()),
        ack: ack(rec),
        batch: batch(rec),
        payload,
        line: Some(super::line::stored_line(rec)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_map_by_their_words() {
        let of = |r: WriteReason| in_doubt_reason(Some(&r));
        assert_eq!(
            of(WriteReason::with(
                Reason::Timeout,
                ": WriteTimeout SIMPLE 0/2"
            )),
            InDoubtReason::Timeout
        );
        assert_eq!(of(Reason::CasUnknown.into()), InDoubtReason::CasUnknown);
        assert_eq!(
            of(WriteReason::with(
                Reason::NoResponse,
                ": the flow ended before the reply"
            )),
            InDoubtReason::NoResponse
        );
        assert_eq!(
            of(WriteReason::with(Reason::ServerError, ": boom")),
            InDoubtReason::Other("server_error: boom".into())
        );
        // Text that merely looks like other words changes nothing: the words are
        // what the decoder named.
        assert_eq!(
            of(WriteReason::with(Reason::Partial, " timeout 1/2")),
            InDoubtReason::Other("partial timeout 1/2".into())
        );
        assert_eq!(
            in_doubt_reason(None),
            InDoubtReason::Other("unknown".into())
        );
    }

    #[test]
    fn the_stored_line_is_the_inspect_line() {
        let rec = WriteRecord {
            proto: "cql",
            op: "insert".into(),
            key: serde_json::json!({"id": 1}).into(),
            values: serde_json::json!({"v": "x"}).into(),
            outcome: WireOutcome::Committed,
            ..WriteRecord::default()
        };
        let inspect = serde_json::to_string(&crate::decode::records::Record::Write(Box::new(
            rec.clone(),
        )))
        .unwrap();
        assert_eq!(super::super::line::line_json(&rec), inspect);
    }

    #[test]
    fn batch_ids_become_numbers_and_keep_their_kind() {
        let rec = WriteRecord {
            batch: Some(
                serde_json::json!({"id": "7:12", "type": "unlogged", "index": 2, "size": 3}).into(),
            ),
            ..WriteRecord::default()
        };
        let b = batch(&rec).unwrap();
        assert_eq!(
            (b.id, b.kind, b.index),
            ((7 << 16) | 12, BatchKind::Unlogged, 2)
        );
    }

    #[test]
    fn typed_batches_and_write_concerns_convert_as_their_json_did() {
        use crate::decode::records::{BatchPlace, CqlBatchType, SentW, SentWriteConcern};
        let typed = WriteRecord {
            proto: "mongo",
            batch: Some(BatchPlace::Cql {
                flow: 7,
                stream: -12,
                kind: CqlBatchType::Logged,
                index: 2,
                size: 3,
            }),
            write_concern: Some(SentWriteConcern::Fields {
                w: Some(SentW::Members(2)),
                j: Some(false),
                wtimeout: Some(-5),
            }),
            ..WriteRecord::default()
        };
        let as_json = WriteRecord {
            batch: typed.batch_json().map(Into::into),
            write_concern: typed.write_concern_json().map(Into::into),
            ..typed.clone()
        };
        let (a, b) = (batch(&typed).unwrap(), batch(&as_json).unwrap());
        assert_eq!((a.id, a.kind, a.index), (b.id, b.kind, b.index));
        assert_eq!(ack(&typed), ack(&as_json));
        let majority = WriteRecord {
            write_concern: Some(SentWriteConcern::Fields {
                w: Some(SentW::Majority),
                j: None,
                wtimeout: Some(10),
            }),
            ..typed.clone()
        };
        let majority_json = WriteRecord {
            write_concern: majority.write_concern_json().map(Into::into),
            ..typed
        };
        assert_eq!(ack(&majority), ack(&majority_json));
    }
}
