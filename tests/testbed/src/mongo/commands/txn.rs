//! Session arguments and multi-document transactions on the primary.
//!
//! `startTransaction` takes a snapshot of the primary's collections; the
//! transaction's reads and writes run against it (so it reads its own
//! writes and nobody else sees them). The commit checks that every document
//! it wrote is still as the snapshot had it (else WriteConflict, 112, and
//! the transaction aborts), applies its writes to the primary's collections
//! and logs them as one `applyOps` entry on `admin.$cmd` carrying `lsid` and
//! `txnNumber`, as MongoDB does for an unprepared transaction. An abort
//! drops the snapshot and logs nothing.

use crate::mongo::errors::error;
use crate::mongo::state::Shared;
use crate::mongo::storage::oplog;
use crate::mongo::storage::session::{BeforeImage, SessionRecord, Txn, TxnState};
use crate::mongo::storage::store;
use crate::mongo::storage::store::{MemberStore, OpTime};
use tidemark_mongo::bson::{doc, Bson, Document};

/// The session fields of a command.
#[derive(Debug, Clone)]
pub struct SessionArgs {
    pub lsid: Document,
    pub txn_number: Option<i64>,
    /// `autocommit: false`: the command is part of a transaction.
    pub in_txn: bool,
    /// `startTransaction: true`.
    pub start: bool,
}

pub fn session_args(cmd: &Document) -> Option<SessionArgs> {
    let lsid = cmd.get_document("lsid").ok()?.clone();
    Some(SessionArgs {
        lsid,
        txn_number: cmd.get_i64("txnNumber").ok(),
        in_txn: cmd.get_bool("autocommit").ok() == Some(false),
        start: cmd.get_bool("startTransaction").unwrap_or(false),
    })
}

fn no_such_transaction(n: i64) -> Document {
    let mut e = error(
        251,
        "NoSuchTransaction",
        &format!("Transaction with txnNumber {n} has been aborted or was never started."),
    );
    e.insert(
        "errorLabels",
        vec![Bson::String("TransientTransactionError".into())],
    );
    e
}

/// Another command of the same transaction is running (drivers never do
/// this; a raw client may).
fn busy(n: i64) -> Document {
    error(
        50911,
        "ConflictingOperationInProgress",
        &format!("another command of transaction {n} is in progress"),
    )
}

fn too_old(n: i64, current: i64) -> Document {
    error(
        225,
        "TransactionTooOld",
        &format!("Cannot start transaction {n} on session because a newer transaction {current} has already started"),
    )
}

/// The first write of the transaction to each document or namespace that
/// another write changed since the snapshot, if any.
fn conflict(store: &MemberStore, txn: &Txn) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    for b in &txn.log.before {
        let (ns, id, expected) = match b {
            BeforeImage::Create { ns } => {
                if seen.insert((ns.clone(), Vec::new())) && store.collection(ns).is_some() {
                    return Some(format!("{ns} was created by another operation"));
                }
                continue;
            }
            BeforeImage::Insert { ns, id } => (ns, id.clone(), None),
            BeforeImage::Update { ns, old } | BeforeImage::Delete { ns, old } => {
                (ns, old.get("_id").cloned().unwrap_or(Bson::Null), Some(old))
            }
        };
        if !seen.insert((ns.clone(), store::id_key(&id))) {
            continue; // a later write of the same document saw the transaction's own
        }
        let now = store
            .collection(ns)
            .and_then(|c| c.find_id(&id).and_then(|s| c.get(s)));
        if now != expected {
            return Some(format!(
                "document {{_id: {id}}} in {ns} was changed by another operation"
            ));
        }
    }
    None
}

/// WriteConflict when a document the transaction wrote changed outside it
/// since the snapshot; checked after each of its writes (mongod detects the
/// conflict at the write too) and again at commit.
pub fn conflict_reply(store: &MemberStore, txn: &Txn) -> Option<Document> {
    conflict(store, txn).map(|why| write_conflict(&why))
}

fn write_conflict(msg: &str) -> Document {
    let mut e = error(
        112,
        "WriteConflict",
        &format!("Write conflict during commit: {msg}. Please retry your operation or multi-document transaction."),
    );
    e.insert(
        "errorLabels",
        vec![Bson::String("TransientTransactionError".into())],
    );
    e
}

/// Moves `record` to `txn_number`, aborting an open transaction of an
/// older number.
fn advance(store: &mut MemberStore, lsid: &Document, txn_number: i64) {
    let rec = store.sessions.get_mut(lsid);
    if rec.txn_number == txn_number {
        return;
    }
    // an open transaction of the old number is simply dropped (aborted)
    *rec = SessionRecord {
        txn_number,
        ..Default::default()
    };
}

/// A retryable write's `txnNumber`: refuses an old one, moves to a new one.
pub fn check_retryable(
    store: &mut MemberStore,
    lsid: &Document,
    txn_number: i64,
) -> Result<(), Document> {
    let current = store.sessions.get(lsid).map_or(0, |r| r.txn_number);
    if txn_number < current {
        return Err(too_old(txn_number, current));
    }
    advance(store, lsid, txn_number);
    Ok(())
}

/// Starts (taking the snapshot) or continues the transaction a command
/// belongs to and hands it out (the caller gives it back with [`leave`]).
pub fn enter(store: &mut MemberStore, args: &SessionArgs) -> Result<Txn, Document> {
    let Some(n) = args.txn_number else {
        return Err(error(
            72,
            "InvalidOptions",
            "a transaction command needs a txnNumber",
        ));
    };
    let current = store.sessions.get(&args.lsid).map_or(0, |r| r.txn_number);
    if n < current {
        return Err(too_old(n, current));
    }
    if args.start {
        if n == current
            && store
                .sessions
                .get(&args.lsid)
                .is_some_and(|r| r.txn.is_some())
        {
            return Err(error(
                50911,
                "ConflictingOperationInProgress",
                &format!("Cannot start a transaction with a txnNumber {n} that was already used"),
            ));
        }
        advance(store, &args.lsid, n);
        let snapshot = Txn {
            view: store.collections.clone(),
            ..Default::default()
        };
        store.sessions.get_mut(&args.lsid).txn = Some(TxnState::InProgress(snapshot));
    }
    let rec = store.sessions.get_mut(&args.lsid);
    match (&mut rec.txn, rec.txn_number == n) {
        (Some(TxnState::InProgress(t)), true) if t.busy => Err(busy(n)),
        (Some(TxnState::InProgress(t)), true) => Ok(std::mem::replace(
            t,
            Txn {
                busy: true,
                ..Default::default()
            },
        )),
        _ => Err(no_such_transaction(n)),
    }
}

/// Gives a transaction back after a command ran in it.
pub fn leave(store: &mut MemberStore, args: &SessionArgs, txn: Txn) {
    let rec = store.sessions.get_mut(&args.lsid);
    if rec.txn_number != args.txn_number.unwrap_or(-1) {
        return; // a newer txnNumber started meanwhile: this one is gone
    }
    if txn.doomed {
        rec.txn = Some(TxnState::Aborted);
    } else if let Some(TxnState::InProgress(slot)) = &mut rec.txn {
        *slot = txn;
    }
}

/// `commitTransaction`: checks for write conflicts, applies the writes and
/// logs the `applyOps` entry (none for a read-only transaction); a retried
/// commit of a committed transaction succeeds again.
pub fn commit(shared: &Shared, member: usize, cmd: &Document) -> Document {
    let Some(args) = session_args(cmd) else {
        return error(72, "InvalidOptions", "commitTransaction needs a session");
    };
    let Some(n) = args.txn_number else {
        return error(72, "InvalidOptions", "commitTransaction needs a txnNumber");
    };
    let term = shared.topology().term;
    let mut store = shared.members[member].store();
    let rec = store.sessions.get_mut(&args.lsid);
    if rec.txn_number != n {
        return no_such_transaction(n);
    }
    let txn = match rec.txn.take() {
        Some(TxnState::InProgress(txn)) if txn.busy => {
            rec.txn = Some(TxnState::InProgress(txn));
            return busy(n);
        }
        Some(TxnState::InProgress(txn)) => txn,
        Some(TxnState::Committed) => {
            rec.txn = Some(TxnState::Committed);
            return doc! { "ok": 1.0 };
        }
        other => {
            rec.txn = other;
            return no_such_transaction(n);
        }
    };
    if let Some(why) = conflict(&store, &txn) {
        store.sessions.get_mut(&args.lsid).txn = Some(TxnState::Aborted);
        return write_conflict(&why);
    }
    store.sessions.get_mut(&args.lsid).txn = Some(TxnState::Committed);
    for op in &txn.log.ops {
        if let Err(e) = oplog::apply_entry(&mut store, op) {
            // the conflict check makes this unreachable; say so if it is not
            tracing::error!("transaction write did not apply at commit: {e}");
            return error(
                1,
                "InternalError",
                &format!("transaction commit failed: {e}"),
            );
        }
    }
    if !txn.log.ops.is_empty() {
        let entries: Vec<Bson> = txn.log.ops.into_iter().map(Bson::Document).collect();
        let prev = OpTime { t: -1, ts: (0, 0) };
        let extra = doc! { "lsid": args.lsid.clone(), "txnNumber": n, "prevOpTime": prev.to_doc() };
        let t = store.append_oplog_with(
            term,
            "c",
            "admin.$cmd",
            doc! { "applyOps": entries },
            None,
            extra,
        );
        drop(store);
        shared.members[member].publish_oplog(shared);
        return doc! { "ok": 1.0, "operationTime": t.timestamp() };
    }
    doc! { "ok": 1.0 }
}

/// `abortTransaction`: drops the transaction's snapshot; nothing is logged.
pub fn abort(shared: &Shared, member: usize, cmd: &Document) -> Document {
    let Some(args) = session_args(cmd) else {
        return error(72, "InvalidOptions", "abortTransaction needs a session");
    };
    let Some(n) = args.txn_number else {
        return error(72, "InvalidOptions", "abortTransaction needs a txnNumber");
    };
    let mut store = shared.members[member].store();
    let rec = store.sessions.get_mut(&args.lsid);
    if rec.txn_number != n {
        return no_such_transaction(n);
    }
    match rec.txn.take() {
        Some(TxnState::InProgress(_)) => {
            rec.txn = Some(TxnState::Aborted);
            doc! { "ok": 1.0 }
        }
        Some(TxnState::Committed) => {
            rec.txn = Some(TxnState::Committed);
            error(
                256,
                "TransactionCommitted",
                "Transaction has been committed.",
            )
        }
        other => {
            rec.txn = other;
            no_such_transaction(n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(n: i64, start: bool) -> SessionArgs {
        SessionArgs {
            lsid: doc! { "id": 1 },
            txn_number: Some(n),
            in_txn: true,
            start,
        }
    }

    #[test]
    fn a_transaction_is_used_by_one_command_at_a_time_and_numbers_only_grow() {
        let mut store = MemberStore::default();
        store.create_collection("t.c", None);
        let t = enter(&mut store, &args(1, true)).expect("start");
        assert!(
            t.view.contains_key("t.c"),
            "the snapshot has the collections"
        );
        // a second command of the same transaction while the first runs
        assert_eq!(
            enter(&mut store, &args(1, false))
                .unwrap_err()
                .get_i32("code")
                .ok(),
            Some(50911)
        );
        leave(&mut store, &args(1, false), t);
        assert!(enter(&mut store, &args(1, false)).is_ok());
        // an older number is too old; a command of an unknown one has no transaction
        assert_eq!(
            enter(&mut store, &args(0, true))
                .unwrap_err()
                .get_i32("code")
                .ok(),
            Some(225)
        );
        assert_eq!(
            enter(&mut store, &args(2, false))
                .unwrap_err()
                .get_i32("code")
                .ok(),
            Some(251)
        );
    }
}
