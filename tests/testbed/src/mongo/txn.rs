//! Session arguments and multi-document transactions on the primary.
//!
//! A transaction's writes are applied to the primary's collections as they
//! run (so the transaction reads its own writes) but logged nowhere; the
//! commit logs them as one `applyOps` entry on `admin.$cmd` carrying `lsid`
//! and `txnNumber`, as MongoDB does for an unprepared transaction; an abort
//! undoes them and logs nothing. Unlike MongoDB, other sessions can see a
//! transaction's writes before it commits (no snapshot isolation).

use super::commands::error;
use super::session::{SessionRecord, TxnOps, TxnState, Undo};
use super::set::Shared;
use super::store::{MemberStore, OpTime};
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

fn too_old(n: i64, current: i64) -> Document {
    error(
        225,
        "TransactionTooOld",
        &format!("Cannot start transaction {n} on session because a newer transaction {current} has already started"),
    )
}

/// Takes back every write of an aborted transaction, newest first.
fn undo_all(store: &mut MemberStore, ops: TxnOps) {
    for u in ops.undo.into_iter().rev() {
        match u {
            Undo::Insert { ns, id } => {
                let c = store.collection_mut(&ns);
                if let Some(seq) = c.find_id(&id) {
                    c.remove(seq);
                }
            }
            Undo::Update { ns, old } => {
                let c = store.collection_mut(&ns);
                if let Some(seq) = old.get("_id").and_then(|id| c.find_id(id)) {
                    c.replace(seq, old);
                }
            }
            Undo::Delete { ns, old } => {
                let _ = store.collection_mut(&ns).insert(old);
            }
            Undo::Create { ns } => {
                store.collections.remove(&ns);
            }
        }
    }
}

/// Moves `record` to `txn_number`, aborting an open transaction of an
/// older number.
fn advance(store: &mut MemberStore, lsid: &Document, txn_number: i64) {
    let rec = store.sessions.get_mut(lsid);
    if rec.txn_number == txn_number {
        return;
    }
    let old = std::mem::replace(
        rec,
        SessionRecord {
            txn_number,
            ..Default::default()
        },
    );
    if let Some(TxnState::InProgress(ops)) = old.txn {
        undo_all(store, ops);
    }
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

/// Starts or continues the transaction a command belongs to and hands out
/// its writes (the caller gives them back with [`leave`]).
pub fn enter(store: &mut MemberStore, args: &SessionArgs) -> Result<TxnOps, Document> {
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
        store.sessions.get_mut(&args.lsid).txn = Some(TxnState::InProgress(TxnOps::default()));
    }
    let rec = store.sessions.get_mut(&args.lsid);
    match (&mut rec.txn, rec.txn_number == n) {
        (Some(TxnState::InProgress(ops)), true) => Ok(std::mem::take(ops)),
        _ => Err(no_such_transaction(n)),
    }
}

/// Gives a transaction's writes back after a command ran in it.
pub fn leave(store: &mut MemberStore, args: &SessionArgs, ops: TxnOps) {
    let rec = store.sessions.get_mut(&args.lsid);
    if let Some(TxnState::InProgress(slot)) = &mut rec.txn {
        *slot = ops;
    }
}

/// `commitTransaction`: logs the `applyOps` entry (none for a read-only
/// transaction); a retried commit of a committed transaction succeeds again.
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
    let ops = match rec.txn.take() {
        Some(TxnState::InProgress(ops)) => ops,
        Some(TxnState::Committed) => {
            rec.txn = Some(TxnState::Committed);
            return doc! { "ok": 1.0 };
        }
        other => {
            rec.txn = other;
            return no_such_transaction(n);
        }
    };
    rec.txn = Some(TxnState::Committed);
    if !ops.ops.is_empty() {
        let entries: Vec<Bson> = ops.ops.into_iter().map(Bson::Document).collect();
        let prev = OpTime { t: -1, ts: (0, 0) };
        let extra = doc! { "lsid": args.lsid.clone(), "txnNumber": n, "prevOpTime": prev.to_doc() };
        store.append_oplog_with(
            term,
            "c",
            "admin.$cmd",
            doc! { "applyOps": entries },
            None,
            extra,
        );
    }
    drop(store);
    shared.members[member].publish_oplog(shared);
    doc! { "ok": 1.0 }
}

/// `abortTransaction`: undoes the transaction's writes; nothing is logged.
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
        Some(TxnState::InProgress(ops)) => {
            rec.txn = Some(TxnState::Aborted);
            undo_all(&mut store, ops);
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
