//! Logical sessions: which retryable statements a session already ran (so a
//! retried statement is answered from its record instead of being applied
//! again) and the session's multi-document transaction (its snapshot and
//! writes). Kept in the member's store, as MongoDB keeps
//! `config.transactions` with the data.

use super::store::{Collection, OpTime};
use std::collections::{BTreeMap, HashMap};
use tidemark_mongo::bson::{doc, Bson, Document};

/// What one executed retryable statement returned, replayed on a retry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StmtOutcome {
    pub n: i64,
    pub n_modified: i64,
    /// `_id` of a document an upsert inserted.
    pub upserted: Option<Bson>,
    /// The whole reply, for `findAndModify` (its `value` is part of the result).
    pub reply: Option<Document>,
}

/// What one write of a transaction found before it changed it; the commit
/// checks that the document is still like that outside the transaction
/// (else another write got there first: a write conflict).
#[derive(Debug, Clone)]
pub enum BeforeImage {
    /// The `_id` was free in the transaction's snapshot.
    Insert { ns: String, id: Bson },
    /// The document as the transaction saw it before updating it.
    Update { ns: String, old: Document },
    /// The document as the transaction saw it before deleting it.
    Delete { ns: String, old: Document },
    /// The namespace did not exist in the snapshot.
    Create { ns: String },
}

/// The writes of an open transaction: the `applyOps` entries its commit
/// logs and applies, and what each write found before it.
#[derive(Debug, Clone, Default)]
pub struct TxnOps {
    pub ops: Vec<Document>,
    pub before: Vec<BeforeImage>,
}

/// An open transaction: its writes, and its own copy of the collections
/// (a snapshot taken at `startTransaction`, with the transaction's writes
/// applied), which its reads and writes use.
#[derive(Debug, Clone, Default)]
pub struct Txn {
    pub log: TxnOps,
    pub view: BTreeMap<String, Collection>,
    /// Set on the placeholder left in the session while a command of the
    /// transaction runs (it holds the real state meanwhile).
    pub busy: bool,
    /// A write conflict ended the transaction; it is aborted when handed back.
    pub doomed: bool,
}

/// The transaction of a session's current `txnNumber`.
#[derive(Debug, Clone)]
pub enum TxnState {
    InProgress(Txn),
    Committed,
    Aborted,
}

/// One session's record.
#[derive(Debug, Clone, Default)]
pub struct SessionRecord {
    /// The highest `txnNumber` seen; lower ones are TransactionTooOld.
    pub txn_number: i64,
    /// Executed statements of `txn_number` by `stmtId`.
    pub executed: HashMap<i32, StmtOutcome>,
    /// The optime of the last oplog entry written for `txn_number`
    /// (`prevOpTime` of the next one).
    pub last_optime: Option<OpTime>,
    /// `None` when `txn_number` is a retryable write, not a transaction.
    pub txn: Option<TxnState>,
}

/// Every session a member knows, keyed by [`lsid_key`].
#[derive(Debug, Clone, Default)]
pub struct Sessions {
    pub by_lsid: HashMap<Vec<u8>, SessionRecord>,
}

/// A stable key for an `lsid` document (`{id: UUID, uid?: ...}`): its BSON bytes.
pub fn lsid_key(lsid: &Document) -> Vec<u8> {
    lsid.to_vec().unwrap_or_default()
}

/// The statement id of the `index`-th statement of a write command: from
/// `stmtIds` when the driver sent them, else `stmtId` + index, else index.
pub fn stmt_id(cmd: &Document, index: usize) -> i32 {
    if let Ok(ids) = cmd.get_array("stmtIds") {
        if let Some(Bson::Int32(i)) = ids.get(index) {
            return *i;
        }
    }
    cmd.get_i32("stmtId")
        .unwrap_or(0)
        .wrapping_add(index as i32)
}

/// The session fields of a retryable write entry, chained with `prevOpTime`.
pub fn oplog_session_fields(
    lsid: &Document,
    txn_number: i64,
    stmt_id: i32,
    prev: Option<OpTime>,
) -> Document {
    let prev = prev.unwrap_or(OpTime { t: -1, ts: (0, 0) });
    doc! {
        "lsid": lsid.clone(),
        "txnNumber": txn_number,
        "stmtId": stmt_id,
        "prevOpTime": prev.to_doc(),
    }
}

impl Sessions {
    pub fn get(&self, lsid: &Document) -> Option<&SessionRecord> {
        self.by_lsid.get(&lsid_key(lsid))
    }

    pub fn get_mut(&mut self, lsid: &Document) -> &mut SessionRecord {
        self.by_lsid.entry(lsid_key(lsid)).or_default()
    }

    /// The outcome of `stmt_id` if it already ran under `txn_number`.
    pub fn executed(&self, lsid: &Document, txn_number: i64, stmt_id: i32) -> Option<StmtOutcome> {
        let r = self.get(lsid)?;
        (r.txn_number == txn_number)
            .then(|| r.executed.get(&stmt_id).cloned())
            .flatten()
    }

    /// Records that `stmt_id` ran under `txn_number` with `outcome`, and the
    /// optime of the entry it logged (if any).
    pub fn record(
        &mut self,
        lsid: &Document,
        txn_number: i64,
        stmt_id: i32,
        outcome: StmtOutcome,
        optime: Option<OpTime>,
    ) {
        let r = self.get_mut(lsid);
        if r.txn_number != txn_number {
            *r = SessionRecord {
                txn_number,
                ..Default::default()
            };
        }
        r.executed.insert(stmt_id, outcome);
        if optime.is_some() {
            r.last_optime = optime;
        }
    }

    /// Records a replicated retryable-write entry (`lsid`, `txnNumber`,
    /// `stmtId`), so a member that becomes primary still recognises retries
    /// of statements the old primary ran.
    pub fn record_from_oplog(&mut self, e: &Document, optime: Option<OpTime>) {
        let (Ok(lsid), Ok(txn), Ok(stmt)) = (
            e.get_document("lsid"),
            e.get_i64("txnNumber"),
            e.get_i32("stmtId"),
        ) else {
            return;
        };
        let n_modified = i64::from(e.get_str("op").ok() == Some("u"));
        self.record(
            &lsid.clone(),
            txn,
            stmt,
            StmtOutcome {
                n: 1,
                n_modified,
                ..Default::default()
            },
            optime,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_remembered_per_txn_number() {
        let mut s = Sessions::default();
        let lsid = doc! { "id": 1 };
        assert!(s.executed(&lsid, 1, 0).is_none());
        let out = StmtOutcome {
            n: 1,
            ..Default::default()
        };
        s.record(&lsid, 1, 0, out.clone(), None);
        assert_eq!(s.executed(&lsid, 1, 0), Some(out.clone()));
        assert!(s.executed(&lsid, 1, 1).is_none());
        assert!(s.executed(&lsid, 2, 0).is_none());
        s.record(&lsid, 2, 5, out, None);
        assert!(
            s.executed(&lsid, 1, 0).is_none(),
            "a new txnNumber forgets the old"
        );
        assert!(s.executed(&doc! { "id": 2 }, 2, 5).is_none());
        assert_eq!(stmt_id(&doc! { "stmtIds": [7, 8] }, 1), 8);
        assert_eq!(stmt_id(&doc! {}, 3), 3);
    }
}
