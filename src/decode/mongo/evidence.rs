//! The typed facts of a `write` line that the commit tracker needs and the JSON line
//! does not carry ([`WriteExtras`](crate::decode::records::WriteExtras)): the change
//! as an oplog-style [`MongoOp`] with the request's raw BSON bytes (never a JSON round
//! trip, which would lose numeric types), and the reply's optime and error code.
//!
//! Session identity is copied from `lsid.id` only (the 16 UUID bytes): `lsid.uid` is a
//! digest of the user's name and is never taken.

use bytes::Bytes;
use tidemark_mongo::bson::oid::ObjectId;
use tidemark_mongo::bson::raw::CStr;
use tidemark_mongo::bson::{RawBsonRef, RawDocument, RawDocumentBuf, Timestamp};
use tidemark_mongo::model::fields::as_i64;
use tidemark_mongo::model::{Reply, SessionInfo, StatementOp, UpdateSpec, WriteStatement};
use tidemark_mongo::repl::{self, OpType, OplogEntry};

use super::share::Owners;
use crate::store::envelope::{MongoOp, MongoOpKind, OpTime};

/// An oplog timestamp as one integer: seconds high, increment low.
pub fn ts_u64(ts: Timestamp) -> u64 {
    (u64::from(ts.time) << 32) | u64::from(ts.increment)
}

/// A protocol optime in the store's form.
pub fn optime(o: repl::OpTime) -> OpTime {
    OpTime {
        ts: ts_u64(o.ts),
        t: o.t,
    }
}

/// The term an `electionId` encodes: protocol version 1 makes it `7fffffff` followed
/// by the term as 8 bytes big endian. Other ObjectIds (protocol version 0) say nothing.
pub fn election_term(id: &ObjectId) -> Option<i64> {
    let b = id.bytes();
    if b[..4] != [0x7f, 0xff, 0xff, 0xff] {
        return None;
    }
    let mut term = [0u8; 8];
    term.copy_from_slice(&b[4..]);
    Some(i64::from_be_bytes(term))
}

/// The write's optime from its reply: `opTime` when present (it has the term), else
/// `operationTime`; the term from `opTime.t`, else `electionId`, else -1 (unknown).
pub fn reply_optime(reply: &Reply<'_>) -> Option<OpTime> {
    let ts = reply.op_time.map(|o| o.ts).or(reply.operation_time)?;
    let term = reply
        .op_time
        .map(|o| o.t)
        .filter(|&t| t >= 0)
        .or_else(|| reply.election_id.as_ref().and_then(election_term))
        .unwrap_or(repl::OpTime::UNINITIALIZED_TERM);
    Some(OpTime {
        ts: ts_u64(ts),
        t: term,
    })
}

/// The error code that concerns statement `index`: its write error, else the write
/// concern error, else the code of a failed command (`ok:0`).
pub fn error_code(reply: &Reply<'_>, index: usize) -> Option<i32> {
    let idx = index as i64;
    if let Some(e) = reply.write_errors.iter().find(|e| e.index == idx) {
        return Some(e.code);
    }
    if let Some(e) = &reply.write_concern_error {
        return Some(e.code);
    }
    // A failed command, or a getlasterror reporting the previous write's error.
    if super::outcome::failed(reply) || reply.err.is_some() {
        return reply.code;
    }
    None
}

fn lsid(bytes: Option<&[u8]>) -> Option<[u8; 16]> {
    bytes.and_then(|b| <[u8; 16]>::try_from(b).ok())
}

/// `stmtId` of statement `index` as drivers number retryable writes: `stmtIds[index]`
/// when the command lists them, else the command's `stmtId` (0 when absent) plus
/// `index`. Implicit ids only for retryable writes: statements of a multi-statement
/// transaction are not retried one by one, and their ids are the server's.
fn stmt_id(s: &SessionInfo<'_>, index: usize) -> Option<i32> {
    if let Some(ids) = s.stmt_ids {
        return ids
            .into_iter()
            .nth(index)
            .and_then(Result::ok)
            .and_then(as_i64)
            .and_then(|v| i32::try_from(v).ok());
    }
    if s.stmt_id.is_none() && !s.is_retryable_write() {
        return None;
    }
    let first = s.stmt_id.unwrap_or(0);
    i32::try_from(index).ok().and_then(|i| first.checked_add(i))
}

fn empty_doc() -> Bytes {
    RawDocumentBuf::new().into_bytes().into()
}

/// An update specification as the oplog `o`: the modifiers or replacement document
/// as sent, a pipeline wrapped as `{"$pipeline": [...]}`.
fn update_doc(u: &UpdateSpec<'_>, owners: &Owners<'_>) -> Bytes {
    match u {
        UpdateSpec::Modifiers(d) | UpdateSpec::Replacement(d) => owners.share(d.as_bytes()),
        UpdateSpec::Pipeline(a) => {
            let mut d = RawDocumentBuf::new();
            if let Ok(key) = <&CStr>::try_from("$pipeline") {
                d.append(key, RawBsonRef::Array(a));
            }
            d.into_bytes().into()
        }
    }
}

fn kind(op: OpType) -> Option<MongoOpKind> {
    Some(match op {
        OpType::Insert => MongoOpKind::Insert,
        OpType::Update => MongoOpKind::Update,
        OpType::Delete => MongoOpKind::Delete,
        OpType::Command => MongoOpKind::Command,
        OpType::Noop => MongoOpKind::Noop,
        // The pre-4.0 database declaration changes no data.
        OpType::Db => return None,
    })
}

/// An oplog entry (fetched from `local.oplog.rs`, or an `applyOps` member) as a
/// [`MongoOp`]; `None` for `db` declarations. Its documents are slices of `owners`
/// when they lie in one.
pub fn oplog_op(e: &OplogEntry<'_>, owners: &Owners<'_>) -> Option<MongoOp> {
    let stmt_id = match e.stmt_id {
        Some(RawBsonRef::Array(a)) => a.into_iter().next().and_then(Result::ok),
        other => other,
    }
    .and_then(as_i64)
    .and_then(|v| i32::try_from(v).ok());
    let lsid = match e.lsid.map(|l| l.get("id")) {
        Some(Ok(Some(RawBsonRef::Binary(b)))) => lsid(Some(b.bytes)),
        _ => None,
    };
    Some(MongoOp {
        op: kind(e.op)?,
        ns: e.ns.to_owned(),
        o: owners.share(e.o.as_bytes()),
        o2: e.o2.map(|d| owners.share(d.as_bytes())),
        optime: e.op_time().map(optime),
        lsid,
        txn_number: e.txn_number,
        stmt_id,
    })
}

/// The oplog-style operation of one write statement, session fields from its command;
/// its documents are slices of `owners` (the request's buffers) when they lie in one.
pub fn statement_op(
    st: &WriteStatement<'_>,
    s: &SessionInfo<'_>,
    owners: &Owners<'_>,
) -> Option<MongoOp> {
    let share = |d: &RawDocument| owners.share(d.as_bytes());
    let (op, o, o2) = match &st.op {
        StatementOp::Insert { document } => (MongoOpKind::Insert, share(document), None),
        StatementOp::Update(u) => (
            MongoOpKind::Update,
            update_doc(&u.u, owners),
            Some(share(u.q)),
        ),
        StatementOp::Delete(d) => (MongoOpKind::Delete, share(d.q), None),
        StatementOp::FindAndModify(f) => {
            let filter = f.query.map_or_else(empty_doc, share);
            match (&f.update, f.remove) {
                (Some(u), false) => (MongoOpKind::Update, update_doc(u, owners), Some(filter)),
                _ => (MongoOpKind::Delete, filter, None),
            }
        }
        StatementOp::Oplog(e) => {
            let mut op = oplog_op(e, owners)?;
            op.lsid = op.lsid.or_else(|| lsid(s.lsid));
            op.txn_number = op.txn_number.or(s.txn_number);
            op.stmt_id = op.stmt_id.or_else(|| stmt_id(s, st.index));
            return Some(op);
        }
    };
    Some(MongoOp {
        op,
        ns: super::statement::ns_text(&st.ns),
        o,
        o2,
        optime: None,
        lsid: lsid(s.lsid),
        txn_number: s.txn_number,
        stmt_id: stmt_id(s, st.index),
    })
}

/// A command (DDL, transaction control) as an oplog `c` operation on `ns`
/// (`db.$cmd`): the command document minus the generic arguments `generic`.
pub fn command_op(
    ns: String,
    body: &RawDocument,
    s: &SessionInfo<'_>,
    generic: &[&str],
) -> MongoOp {
    let mut o = RawDocumentBuf::new();
    for (k, v) in body.iter().map_while(Result::ok) {
        if !generic.contains(&k.as_str()) {
            o.append(k, v);
        }
    }
    MongoOp {
        op: MongoOpKind::Command,
        ns,
        o: o.into_bytes().into(),
        o2: None,
        optime: None,
        lsid: lsid(s.lsid),
        txn_number: s.txn_number,
        stmt_id: s.stmt_id,
    }
}

/// Whether the reply to an `update`, `delete` or `findAndModify` command (`op`, the
/// statements' op) says the command changed no document: a delete that removed
/// none (`n: 0`), an update that modified and upserted none (`nModified: 0`), a
/// findAndModify whose `lastErrorObject.n` is 0. For a command of several
/// statements the counts are totals, so 0 holds for each of them. MongoDB writes
/// no oplog entry for such a write.
pub fn changed_nothing(reply: &Reply<'_>, op: &str) -> bool {
    if super::outcome::failed(reply) || !reply.write_errors.is_empty() || !reply.upserted.is_empty()
    {
        return false;
    }
    match op {
        "delete" => reply.n == Some(0),
        "update" => reply.n_modified.or(reply.n) == Some(0),
        "findAndModify" => reply
            .last_error_object
            .as_ref()
            .is_some_and(|l| l.n == Some(0) && l.upserted.is_none()),
        _ => false,
    }
}
