//! Multi-statement transactions on one flow.
//!
//! A statement sent with `autocommit:false` and acknowledged is not yet a change: it
//! is held under its (lsid, txnNumber) until `commitTransaction` succeeds (all
//! committed at once, at the commit's write concern) or `abortTransaction` comes (all
//! rejected). `UnknownTransactionCommitResult` leaves them in doubt, still held, since
//! the driver retries the commit; whatever is still held when the flow ends stays
//! `in_doubt`.

use crate::decode::records::WireOutcome;
use std::collections::HashMap;

use tidemark_mongo::model::Reply;

use super::outcome::{self, Verdict};
use super::statement::{Stmt, TxnKey, Wc};
use crate::decode::reason::{Reason, WriteReason};
use crate::decode::records::WriteRecord;

/// Statements held at once over all transactions of a flow; beyond it the oldest
/// transaction is given up as `in_doubt` (bounds memory against odd traffic).
const MAX_HELD: usize = 1 << 20;

#[derive(Default)]
struct Held {
    stmts: Vec<Stmt>,
    /// Set when a commit came back with an unknown result.
    doubt: Option<WriteReason>,
    /// Arrival order, for eviction.
    seq: u64,
}

/// The transactions of one flow.
#[derive(Default)]
pub struct Transactions {
    held: HashMap<TxnKey, Held>,
    count: usize,
    seq: u64,
}

impl Transactions {
    /// The first held statement of each open transaction (for the oldest undecided
    /// write's time).
    pub fn first_lines(&self) -> impl Iterator<Item = &WriteRecord> {
        self.held
            .values()
            .filter_map(|h| h.stmts.first().map(|s| &*s.rec))
    }

    /// Every held statement's line, transaction by transaction in the order they
    /// began.
    pub fn held_lines(&self) -> impl Iterator<Item = &WriteRecord> {
        let mut held: Vec<&Held> = self.held.values().collect();
        held.sort_by_key(|h| h.seq);
        held.into_iter()
            .flat_map(|h| h.stmts.iter().map(|s| &*s.rec))
    }

    /// Holds an acknowledged statement until its transaction ends.
    pub fn hold(&mut self, key: TxnKey, stmt: Stmt, out: &mut Vec<Box<WriteRecord>>) {
        if self.count >= MAX_HELD {
            self.evict_oldest(out);
        }
        self.seq += 1;
        let seq = self.seq;
        let h = self.held.entry(key).or_insert_with(|| Held {
            seq,
            ..Held::default()
        });
        h.stmts.push(stmt);
        self.count += 1;
    }

    fn evict_oldest(&mut self, out: &mut Vec<Box<WriteRecord>>) {
        let Some(key) = self
            .held
            .iter()
            .min_by_key(|(_, h)| h.seq)
            .map(|(k, _)| k.clone())
        else {
            return;
        };
        let v = Verdict::new(
            WireOutcome::InDoubt,
            WriteReason::with(Reason::TransactionUndecided, ": too many held statements"),
        );
        self.release(&key, &v, out);
    }

    fn release(&mut self, key: &TxnKey, v: &Verdict, out: &mut Vec<Box<WriteRecord>>) -> u64 {
        let Some(h) = self.held.remove(key) else {
            return 0;
        };
        self.count -= h.stmts.len();
        let n = h.stmts.len() as u64;
        for mut s in h.stmts {
            v.apply(&mut s);
            out.push(s.rec);
        }
        n
    }

    /// Decides a transaction by its `commitTransaction` reply; returns the verdict of
    /// the commit line itself and how many statements it decided.
    pub fn commit(
        &mut self,
        key: &TxnKey,
        wc: &Wc,
        reply: &Reply<'_>,
        out: &mut Vec<Box<WriteRecord>>,
    ) -> (Verdict, u64) {
        if reply.unknown_commit_result() {
            let why = WriteReason::with(
                Reason::UnknownCommitResult,
                format_args!(": {}", outcome::command_failed(reply)),
            );
            let n = match self.held.get_mut(key) {
                Some(h) => {
                    h.doubt = Some(why.clone());
                    h.stmts.len() as u64
                }
                None => 0,
            };
            return (Verdict::new(WireOutcome::InDoubt, why), n);
        }
        if outcome::failed(reply) {
            let why = outcome::command_failed(reply);
            let n = self.release(
                key,
                &Verdict::new(
                    WireOutcome::Rejected,
                    WriteReason::with(
                        Reason::TransactionAborted,
                        format_args!(": commit failed: {why}"),
                    ),
                ),
                out,
            );
            return (Verdict::new(WireOutcome::Rejected, why), n);
        }
        let line = outcome::applied(wc, reply);
        let stmts = match &line.reason {
            None => Verdict::new(WireOutcome::Committed, Reason::TransactionCommitted),
            Some(r) => {
                let mut r = r.clone();
                r.push_str(" (transaction committed)");
                Verdict::new(line.outcome, r)
            }
        };
        let n = self.release(key, &stmts, out);
        (line, n)
    }

    /// An `abortTransaction`: whatever its reply, the transaction's writes are void.
    pub fn abort(&mut self, key: &TxnKey, out: &mut Vec<Box<WriteRecord>>) -> u64 {
        self.release(
            key,
            &Verdict::new(WireOutcome::Rejected, Reason::TransactionAborted),
            out,
        )
    }

    /// A commit that got no reply: its statements are in doubt with it.
    pub fn commit_unanswered(
        &mut self,
        key: &TxnKey,
        why: &WriteReason,
        out: &mut Vec<Box<WriteRecord>>,
    ) -> u64 {
        self.release(key, &Verdict::new(WireOutcome::InDoubt, why.clone()), out)
    }

    /// Number of statements held under `key`.
    pub fn held(&self, key: &TxnKey) -> u64 {
        self.held.get(key).map_or(0, |h| h.stmts.len() as u64)
    }

    /// The flow ended: every transaction still open is undecided.
    pub fn close(&mut self, out: &mut Vec<Box<WriteRecord>>) {
        let mut keys: Vec<(u64, TxnKey)> =
            self.held.iter().map(|(k, h)| (h.seq, k.clone())).collect();
        keys.sort();
        for (_, k) in keys {
            let why = self.held.get(&k).and_then(|h| h.doubt.clone());
            let why = why.unwrap_or_else(|| {
                WriteReason::with(
                    Reason::TransactionUndecided,
                    ": no commitTransaction or abortTransaction seen",
                )
            });
            self.release(&k, &Verdict::new(WireOutcome::InDoubt, why), out);
        }
    }
}
