//! Prepared statements seen out of order: an EXECUTE whose PREPARE was not captured
//! is reported `unresolved` (raw values, no namespace) and parked per node; when a
//! PREPARE of the same id shows up on any flow to that node (a later connection, or
//! the driver re-preparing after an Unprepared error), the write is reported again,
//! resolved, with the outcome its own response gave.

use super::extract::bound::Bound;
use super::extract::{statement_writes, RequestInfo, StmtCtx, StmtText};
use super::schema::Schema;
use super::shared::{PreparedStmt, Unresolved};
use crate::decode::reason::{Reason, WriteReason};
use crate::decode::records::WireOutcome;
use crate::decode::records::{Record, WriteRecord};

/// The line reported for an unresolved write: its response's outcome goes into the
/// reason, because without the statement nobody can act on it yet.
pub fn unresolved_line(w: &WriteRecord, outcome: WireOutcome, reason: Option<&str>) -> WriteRecord {
    let mut r = w.clone();
    r.outcome = WireOutcome::Unresolved;
    let id = w.statement_id.as_deref().unwrap_or("?");
    r.reason = Some(match reason {
        Some(why) => WriteReason::with(
            Reason::PreparedNotSeen,
            format_args!(" {id} not seen; response: {outcome} ({why})"),
        ),
        None => WriteReason::with(
            Reason::PreparedNotSeen,
            format_args!(" {id} not seen; response: {outcome}"),
        ),
    });
    r
}

/// Reports the resolved form of a parked write, now that its statement is known.
pub fn resolved(u: &Unresolved, stmt: &PreparedStmt, schema: &Schema, out: &mut Vec<Record>) {
    let Ok(parsed) = stmt.text.statement() else {
        return;
    };
    let bound =
        Bound::new(&u.values, &parsed.bind_markers, Some(&stmt.metadata)).with_shared(&stmt.shared);
    let rec = &u.record;
    let req = RequestInfo {
        flow: rec.flow,
        ts: rec.ts,
        stream: rec.request.and_then(|r| i16::try_from(r).ok()).unwrap_or(0),
        consistency: rec.consistency.as_deref().unwrap_or("ONE"),
        serial_consistency: rec.serial_consistency.as_deref(),
    };
    let cx = StmtCtx {
        schema,
        keyspace: stmt.keyspace.as_deref().or(u.keyspace.as_deref()),
        bound: &bound,
        default_timestamp: u.default_timestamp,
        batch_using: &[],
    };
    let mut writes = Vec::new();
    statement_writes(
        parsed,
        StmtText::Shared(stmt.text.shared()),
        &cx,
        &req,
        true,
        None,
        &mut writes,
    );
    for mut w in writes {
        w.batch = rec.batch.clone();
        w.outcome = rec.outcome;
        w.reason = rec.reason.clone();
        w.statement_id = rec.statement_id.clone();
        out.push(Record::Write(w));
    }
}
