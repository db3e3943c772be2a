//! ARCHITECTURE.md's MongoDB outcome rules, applied to what one reply says.
//!
//! Inspect decides with the reply alone (the commit tracker refines `pending` later
//! with replication evidence):
//! - `ok:1`, no errors, `w:"majority"` → `committed`;
//! - acknowledged at `w:1`/`w:N`/tag/default → `pending` (`awaiting_majority`);
//! - `writeErrors`: the failed indexes are `rejected`; with `ordered:true` the later
//!   statements were never attempted → `rejected` (`not_executed`), the earlier ones
//!   were applied;
//! - `writeConcernError` → applied on the primary, not at `w` → `pending`;
//! - `ok:0` → `rejected` (not attempted), except `UnknownTransactionCommitResult`.
//!
//! Reasons start with a stable token (`awaiting_majority`, `write_error`, ...) and
//! continue with the server's words, so people and programs can both read them.

use crate::decode::records::WireOutcome;
use tidemark_mongo::bson::RawBsonRef;
use tidemark_mongo::model::Reply;

use super::statement::{Stmt, Wc};
use crate::decode::reason::{Reason, WriteReason};
use crate::decode::records::WriteRecord;

/// An outcome and its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: WireOutcome,
    pub reason: Option<WriteReason>,
}

impl Verdict {
    pub fn new(outcome: WireOutcome, reason: impl Into<WriteReason>) -> Verdict {
        Verdict {
            outcome,
            reason: Some(reason.into()),
        }
    }

    pub fn committed() -> Verdict {
        Verdict {
            outcome: WireOutcome::Committed,
            reason: None,
        }
    }

    /// True when the write took effect on the primary (committed or pending).
    pub fn applied(&self) -> bool {
        self.outcome.applied()
    }

    pub fn apply(&self, s: &mut Stmt) {
        self.apply_record(&mut s.rec);
    }

    pub fn apply_record(&self, rec: &mut WriteRecord) {
        rec.outcome = self.outcome;
        rec.reason = self.reason.clone();
    }
}

/// One failed statement: from `writeErrors`, or a `bulkWrite` cursor entry.
#[derive(Debug, Clone)]
struct StmtError {
    index: i64,
    text: WriteReason,
}

fn error_text(
    token: Reason,
    code: Option<i32>,
    code_name: Option<&str>,
    errmsg: Option<&str>,
) -> WriteReason {
    let mut s = token.as_str().to_owned();
    if let Some(c) = code {
        s.push_str(&format!(" {c}"));
    }
    if let Some(n) = code_name {
        s.push(' ');
        s.push_str(n);
    }
    if let Some(m) = errmsg {
        s.push_str(": ");
        s.push_str(m);
    }
    WriteReason::spelled(token, s)
}

/// True when the reply says the command as a whole failed.
pub fn failed(reply: &Reply<'_>) -> bool {
    match reply.ok {
        Some(ok) => !ok,
        // Legacy query failures have `$err` and no `ok`.
        None => reply.errmsg.is_some() && reply.code.is_some(),
    }
}

/// `command_failed <code> <codeName>: <errmsg>`.
pub fn command_failed(reply: &Reply<'_>) -> WriteReason {
    error_text(
        Reason::CommandFailed,
        reply.code,
        reply.code_name,
        reply.errmsg,
    )
}

/// The verdict on a write the server applied, by write concern.
pub fn applied(wc: &Wc, reply: &Reply<'_>) -> Verdict {
    if let Some(e) = &reply.write_concern_error {
        return Verdict::new(
            WireOutcome::Pending,
            error_text(
                Reason::WriteConcernError,
                Some(e.code),
                e.code_name,
                e.errmsg,
            ),
        );
    }
    if reply.wtimeout {
        return Verdict::new(
            WireOutcome::Pending,
            WriteReason::with(Reason::WriteConcernError, ": wtimeout"),
        );
    }
    match wc {
        Wc::Majority => Verdict::committed(),
        other => Verdict::new(
            WireOutcome::Pending,
            WriteReason::with(
                Reason::AwaitingMajority,
                format_args!(": {}", other.describe()),
            ),
        ),
    }
}

fn errors(reply: &Reply<'_>, bulk_write: bool) -> Vec<StmtError> {
    let mut out: Vec<StmtError> = reply
        .write_errors
        .iter()
        .map(|e| StmtError {
            index: e.index,
            text: error_text(Reason::WriteError, Some(e.code), e.code_name, e.errmsg),
        })
        .collect();
    // bulkWrite (8.0) reports each operation as a cursor entry {ok, idx, code, ...}.
    if bulk_write {
        if let Some(batch) = reply.batch() {
            for d in batch.into_iter().filter_map(|v| v.ok()?.as_document()) {
                let ok = d
                    .get("ok")
                    .ok()
                    .flatten()
                    .and_then(tidemark_mongo::model::fields::truthy);
                if ok != Some(false) {
                    continue;
                }
                let num = |k| {
                    d.get(k)
                        .ok()
                        .flatten()
                        .and_then(tidemark_mongo::model::fields::as_i64)
                };
                let text = |k| match d.get(k) {
                    Ok(Some(RawBsonRef::String(s))) => Some(s),
                    _ => None,
                };
                out.push(StmtError {
                    index: num("idx").unwrap_or(-1),
                    text: error_text(
                        Reason::WriteError,
                        num("code").map(|c| c as i32),
                        text("codeName"),
                        text("errmsg"),
                    ),
                });
            }
        }
    }
    out
}

/// Decides every statement of a command from its reply.
pub fn decide(stmts: &mut [Stmt], ordered: bool, wc: &Wc, reply: &Reply<'_>, bulk_write: bool) {
    if failed(reply) {
        let v = Verdict::new(WireOutcome::Rejected, command_failed(reply));
        stmts.iter_mut().for_each(|s| v.apply(s));
        return;
    }
    let errs = errors(reply, bulk_write);
    let first = errs.iter().map(|e| e.index).min();
    let acknowledged = |idx: i64| {
        !errs.iter().any(|e| e.index == idx) && !first.is_some_and(|f| ordered && idx > f)
    };
    let ok =
        short_count(stmts, reply, bulk_write, &acknowledged).unwrap_or_else(|| applied(wc, reply));
    for s in stmts {
        let idx = s.index as i64;
        if let Some(e) = errs.iter().find(|e| e.index == idx) {
            Verdict::new(WireOutcome::Rejected, e.text.clone()).apply(s);
        } else if let Some(f) = first.filter(|&f| ordered && idx > f) {
            Verdict::new(
                WireOutcome::Rejected,
                WriteReason::with(
                    Reason::NotExecuted,
                    format_args!(": ordered batch stopped at the writeError of statement {f}"),
                ),
            )
            .apply(s);
        } else {
            ok.apply(s);
            s.rec.extras.default_write_concern = at_default(wc, &ok);
        }
    }
}

/// An `insert` reply whose `n` is below the statements it acknowledged (no
/// `writeError`, not after an ordered batch's first error) contradicts itself:
/// each statement inserts exactly one document, so some of them did not land and
/// the reply does not say which. Those statements are in doubt, never guessed
/// `pending`: a guessed write waits for an oplog entry that may never come.
fn short_count(
    stmts: &[Stmt],
    reply: &Reply<'_>,
    bulk_write: bool,
    acknowledged: &dyn Fn(i64) -> bool,
) -> Option<Verdict> {
    if bulk_write || stmts.is_empty() || stmts.iter().any(|s| s.rec.op != "insert") {
        return None;
    }
    let n = reply.n?;
    let count = stmts
        .iter()
        .filter(|s| acknowledged(s.index as i64))
        .count() as i64;
    (n < count).then(|| {
        Verdict::new(
            WireOutcome::InDoubt,
            WriteReason::with(
                Reason::CountMismatch,
                format_args!(
                    ": the reply counts n={n} inserted of {count} statements acknowledged without a writeError"
                ),
            ),
        )
    })
}

/// Whether an applied statement's verdict rests on the server's default write
/// concern: no `w` was sent and the reply reports no write concern error, so the
/// default (which the commit tracker learns from the wire) says how far it went.
fn at_default(wc: &Wc, v: &Verdict) -> bool {
    *wc == Wc::Default
        && v.reason
            .as_ref()
            .is_some_and(|r| r.word() == Reason::AwaitingMajority)
}

/// Decides a legacy write (OP_INSERT/OP_UPDATE/OP_DELETE, no reply of its own) by
/// the `getlasterror` reply that followed it on the connection.
pub fn decide_by_gle(stmts: &mut [Stmt], wc: &Wc, reply: &Reply<'_>) {
    let v = if failed(reply) {
        Verdict::new(
            WireOutcome::InDoubt,
            WriteReason::with(
                Reason::GetlasterrorFailed,
                format_args!(": {}", command_failed(reply)),
            ),
        )
    } else if let Some(err) = reply.err {
        let mut text = error_text(Reason::WriteError, reply.code, reply.code_name, Some(err));
        if stmts.len() > 1 {
            // getlasterror names no index: which documents of the batch landed is unknown.
            text.push_str(" (position in the legacy batch unknown)");
            Verdict::new(WireOutcome::InDoubt, text)
        } else {
            Verdict::new(WireOutcome::Rejected, text)
        }
    } else {
        let mut v = applied(wc, reply);
        if let Some(r) = v.reason.as_mut() {
            r.push_str(" (getlasterror)");
        }
        v
    };
    let default = at_default(wc, &v);
    for s in stmts.iter_mut() {
        v.apply(s);
        s.rec.extras.default_write_concern = default;
    }
}
