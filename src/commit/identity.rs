//! When two `write` lines are the same mutation (ARCHITECTURE.md, "The same mutation
//! seen again ... merges into one").
//!
//! - **CQL**: same table, key, range, cells (values, deleted columns, collection
//!   operations) and *client-supplied* write timestamp. A driver retry or a
//!   speculative execution resends the same timestamp; two different writes that
//!   happen to carry equal cells do not share one. Writes with server-assigned
//!   timestamps have no identity (two identical `UPDATE`s are two writes: for
//!   counters they add twice), and neither do DDL statements.
//! - **MongoDB**: a retryable write or transaction statement is identified by
//!   `(lsid, txnNumber, stmtId)` — the server applies it once however often it is
//!   sent; otherwise an insert by its namespace and exact document bytes (which
//!   include the `_id` the driver generated), so two taps seeing one insert agree.
//!   Other writes without a session have no identity: the same update sent twice
//!   is two updates.
//!
//! Identities are 128-bit XXH3 digests of those fields.

use twox_hash::XxHash3_128;

use crate::decode::records::{BatchPlace, SessionIds, WriteRecord};
use crate::store::MongoOpKind;

/// A mutation's identity for dedupe.
pub type Identity = u128;

fn field(h: &mut XxHash3_128, bytes: &[u8]) {
    h.write(&(bytes.len() as u64).to_le_bytes());
    h.write(bytes);
}

/// A JSON field, streamed into the digest as its text followed by the text's length
/// (framed from the end, so still one way to read a sequence of fields) — no string
/// is built: rendering each key and value to text was a sixth of a CQL tap's time.
/// Identities live only in memory, so the framing may differ from [`field`]'s.
fn json(h: &mut XxHash3_128, v: Option<&serde_json::Value>) {
    struct Digest<'a> {
        h: &'a mut XxHash3_128,
        len: u64,
    }
    impl std::io::Write for Digest<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.h.write(buf);
            self.len += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    match v {
        Some(v) => {
            let mut d = Digest { h, len: 0 };
            // Writing a `Value` into an infallible writer cannot fail.
            let _ = serde_json::to_writer(&mut d, v);
            let len = d.len;
            h.write(&len.to_le_bytes());
        }
        None => field(h, b"\xff"),
    }
}

/// The identity of a line, or `None` when the line cannot be told apart from a
/// different write with the same content (see the module docs).
pub fn of(rec: &WriteRecord) -> Option<Identity> {
    let mut h = XxHash3_128::with_seed(0);
    field(&mut h, rec.proto.as_bytes());
    if rec.proto == "mongo" {
        let op = rec.extras.mongo_op.as_ref()?;
        if in_transaction(rec) {
            // Statements of one transaction share (lsid, txnNumber) and drivers send
            // no stmtId in transactions: the request and the position in it tell
            // them apart (two taps of one connection agree on both).
            field(&mut h, b"txn");
            field(&mut h, &op.lsid?);
            field(&mut h, &op.txn_number?.to_le_bytes());
            field(&mut h, &rec.request.unwrap_or(-1).to_le_bytes());
            let index = rec.batch.as_ref().and_then(BatchPlace::index);
            field(&mut h, &index.unwrap_or(0).to_le_bytes());
            return Some(h.finish_128());
        }
        return of_mongo_op(op);
    }
    cql(rec, h)
}

/// Whether a MongoDB line is a statement of a multi-document transaction.
pub fn in_transaction(rec: &WriteRecord) -> bool {
    rec.session.as_ref().and_then(SessionIds::autocommit) == Some(false)
}

/// The identity of a MongoDB operation (a client write's, or an oplog entry's: the
/// two agree for retryable writes and inserts, so an entry can be matched to a write
/// that was already logged).
pub fn of_mongo_op(op: &crate::store::MongoOp) -> Option<Identity> {
    let mut h = XxHash3_128::with_seed(0);
    field(&mut h, b"mongo");
    {
        match (op.lsid, op.txn_number, op.stmt_id) {
            (Some(lsid), Some(txn), Some(stmt)) => {
                field(&mut h, b"session");
                field(&mut h, &lsid);
                field(&mut h, &txn.to_le_bytes());
                field(&mut h, &stmt.to_le_bytes());
            }
            // A transaction statement without stmtId: its transaction and content.
            (Some(lsid), Some(txn), None) if !op.o.is_empty() => {
                field(&mut h, b"txn");
                field(&mut h, &lsid);
                field(&mut h, &txn.to_le_bytes());
                field(&mut h, &[op.op as u8]);
                field(&mut h, op.ns.as_bytes());
                field(&mut h, &op.o);
                field(&mut h, op.o2.as_deref().unwrap_or(b""));
            }
            _ if op.op == MongoOpKind::Insert && !op.o.is_empty() => {
                field(&mut h, b"insert");
                field(&mut h, op.ns.as_bytes());
                field(&mut h, &op.o);
            }
            _ => return None,
        }
    }
    Some(h.finish_128())
}

fn cql(rec: &WriteRecord, mut h: XxHash3_128) -> Option<Identity> {
    let timestamp = rec.timestamp?;
    if !matches!(rec.op.as_str(), "insert" | "update" | "delete") {
        return None;
    }
    // A client timestamp that is the driver's default one is still the client's.
    field(&mut h, rec.op.as_bytes());
    field(
        &mut h,
        rec.namespace
            .as_deref()
            .or(rec.table.as_deref())
            .unwrap_or("")
            .as_bytes(),
    );
    json(&mut h, Some(&rec.key));
    json(&mut h, rec.range.as_ref());
    // Values the decoder kept as bytes (a prepared statement's bound values with
    // their types) are digested as those bytes: finer than their JSON (a varint with
    // a leading zero byte is another cell to Cassandra), and nothing is rendered.
    match rec.values.kept() {
        Some((_, bytes)) => field(&mut h, bytes),
        None => json(&mut h, Some(&rec.values)),
    }
    json(&mut h, rec.collection_ops.as_ref());
    field(
        &mut h,
        rec.columns_deleted
            .as_ref()
            .map(|c| c.join("\u{0}"))
            .unwrap_or_default()
            .as_bytes(),
    );
    field(&mut h, &timestamp.to_le_bytes());
    field(&mut h, &rec.ttl.unwrap_or(-1).to_le_bytes());
    Some(h.finish_128())
}

/// The identity of a stored mutation, for merging the logs of several sources (the
/// repository): the same rules as [`of`] on the fields a mutation keeps. CQL: the
/// table, key, operation, cells and deletions exactly as stored, and the
/// client-supplied write timestamp and TTL (none: no identity). MongoDB: as
/// [`of_mongo_op`]. DDL and truncations have none.
pub fn of_mutation(m: &crate::store::Mutation) -> Option<Identity> {
    use crate::store::{Payload, WriteOp};
    match &m.payload {
        Payload::Mongo(op) => of_mongo_op(op),
        Payload::Cql(p) => {
            let ts = m.write_timestamp?;
            if !matches!(m.op, WriteOp::Insert | WriteOp::Update | WriteOp::Delete) {
                return None;
            }
            let mut h = XxHash3_128::with_seed(0);
            field(&mut h, b"cql-mutation");
            field(&mut h, m.op.as_str().as_bytes());
            field(&mut h, m.namespace.as_bytes());
            field(&mut h, m.key.as_bytes());
            field(&mut h, &crate::store::codec::encode(p).ok()?);
            field(&mut h, &ts.to_le_bytes());
            field(&mut h, &m.ttl.map_or(-1, i64::from).to_le_bytes());
            Some(h.finish_128())
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::MongoOp;

    fn cql(ts: Option<i64>, v: i64) -> WriteRecord {
        WriteRecord {
            proto: "cql",
            op: "update".into(),
            namespace: Some("ks.t".into()),
            key: json!({"id": 1}).into(),
            values: json!({"v": v}).into(),
            timestamp: ts,
            ..WriteRecord::default()
        }
    }

    #[test]
    fn cql_identity_needs_a_client_timestamp_and_covers_the_cells() {
        assert_eq!(of(&cql(None, 1)), None);
        assert_eq!(of(&cql(Some(5), 1)), of(&cql(Some(5), 1)));
        assert_ne!(of(&cql(Some(5), 1)), of(&cql(Some(6), 1)));
        assert_ne!(of(&cql(Some(5), 1)), of(&cql(Some(5), 2)));
        let mut other_flow = cql(Some(5), 1);
        other_flow.flow = 99;
        other_flow.consistency = Some("ALL".into());
        assert_eq!(
            of(&other_flow),
            of(&cql(Some(5), 1)),
            "coordinator and CL are not identity"
        );
    }

    fn mongo(op: MongoOpKind, o: &[u8], session: Option<([u8; 16], i64, i32)>) -> WriteRecord {
        let mut rec = WriteRecord {
            proto: "mongo",
            ..WriteRecord::default()
        };
        rec.extras.mongo_op = Some(MongoOp {
            op,
            ns: "db.c".into(),
            o: o.to_vec().into(),
            o2: None,
            optime: None,
            lsid: session.map(|s| s.0),
            txn_number: session.map(|s| s.1),
            stmt_id: session.map(|s| s.2),
        });
        rec
    }

    #[test]
    fn mongo_identity_is_the_retryable_write_id_or_the_inserted_document() {
        let s = Some(([1; 16], 4, 0));
        assert_eq!(
            of(&mongo(MongoOpKind::Update, b"a", s)),
            of(&mongo(MongoOpKind::Update, b"b", s))
        );
        assert_ne!(
            of(&mongo(MongoOpKind::Update, b"a", s)),
            of(&mongo(MongoOpKind::Update, b"a", Some(([1; 16], 5, 0))))
        );
        assert_eq!(of(&mongo(MongoOpKind::Update, b"a", None)), None);
        assert_eq!(
            of(&mongo(MongoOpKind::Insert, b"doc", None)),
            of(&mongo(MongoOpKind::Insert, b"doc", None))
        );
    }
}
