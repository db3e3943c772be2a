//! The sync-source side of replication: tailable awaitData `find`/`getMore`
//! on `local.oplog.rs` with `$replData`/`$oplogQueryData` metadata,
//! `replSetUpdatePosition`, and write-concern waits. The commit point is the
//! optime a majority of members have reported durable.

use crate::mongo::errors;
use crate::mongo::errors::error;
use crate::mongo::state::{Shared, WaitOutcome};
use crate::mongo::storage::store::OpTime;
use std::time::Duration;
use tidemark_mongo::bson::{doc, Bson, DateTime, Document};

/// Entries per oplog batch (MongoDB sizes batches in bytes; a count is enough here).
const BATCH: usize = 500;
/// The longest a getMore on the oplog waits for new entries.
const MAX_AWAIT: Duration = Duration::from_secs(5);
/// The longest a write waits for its write concern without `wtimeout`.
const MAX_WRITE_CONCERN_WAIT: Duration = Duration::from_secs(60);

/// `$replData`, as a sync source attaches it to oplog replies.
pub fn repl_data(shared: &Shared, member: usize) -> Document {
    let topo = shared.topology();
    let commit = shared.members[member].commit_point();
    let view = shared.members[member].view().clone();
    doc! {
        "term": view.term,
        "lastOpCommitted": commit.to_doc(),
        "lastCommittedWall": DateTime::now(),
        "lastOpVisible": commit.to_doc(),
        "configVersion": topo.set_version,
        "configTerm": topo.term,
        "replicaSetId": shared.replica_set_id,
        "primaryIndex": view.primary.map_or(-1, |p| p as i32),
        "syncSourceIndex": -1,
        "isPrimary": topo.primary == Some(member),
    }
}

fn oplog_query_data(shared: &Shared, member: usize) -> Document {
    let m = &shared.members[member];
    let primary = m.view().primary;
    doc! {
        "lastOpCommitted": m.commit_point().to_doc(),
        "lastCommittedWall": DateTime::now(),
        "lastOpApplied": m.store().last_op_time().to_doc(),
        "rbid": m.rbid.load(std::sync::atomic::Ordering::SeqCst),
        "primaryIndex": primary.map_or(-1, |p| p as i32),
        "syncSourceIndex": -1,
    }
}

/// Entries from `pos` on (at most a batch), and the position after them.
fn batch(shared: &Shared, member: usize, pos: usize) -> (Vec<Bson>, usize) {
    let store = shared.members[member].store();
    let entries = store.oplog().get(pos..).unwrap_or_default();
    let out: Vec<Bson> = entries
        .iter()
        .take(BATCH)
        .cloned()
        .map(Bson::Document)
        .collect();
    let next = pos + out.len();
    (out, next)
}

fn with_metadata(shared: &Shared, member: usize, mut reply: Document) -> Document {
    reply.insert("$replData", repl_data(shared, member));
    reply.insert("$oplogQueryData", oplog_query_data(shared, member));
    reply.insert("ok", 1.0);
    reply
}

/// `find` on `local.oplog.rs`: entries with `ts` ≥ (or >) the filter's, a
/// cursor left open when `tailable`.
pub fn oplog_find(shared: &Shared, member: usize, cmd: &Document) -> Document {
    let ts_filter = cmd
        .get_document("filter")
        .ok()
        .and_then(|f| f.get_document("ts").ok());
    let (from, strict) = match ts_filter {
        Some(t) => match (t.get_timestamp("$gte"), t.get_timestamp("$gt")) {
            (Ok(ts), _) => ((ts.time, ts.increment), false),
            (_, Ok(ts)) => ((ts.time, ts.increment), true),
            _ => return error(2, "BadValue", "oplog filter supports ts $gte/$gt only"),
        },
        None => ((0, 0), false),
    };
    let pos = {
        let store = shared.members[member].store();
        store.oplog().partition_point(|e| {
            let ts = e
                .get_timestamp("ts")
                .map(|t| (t.time, t.increment))
                .unwrap_or((0, 0));
            if strict {
                ts <= from
            } else {
                ts < from
            }
        })
    };
    let (first, next) = batch(shared, member, pos);
    let tailable = cmd.get_bool("tailable").unwrap_or(false);
    let id = if tailable {
        let id = shared.members[member].next_cursor_id();
        shared.members[member]
            .cursors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, next);
        id
    } else {
        0
    };
    let reply = doc! { "cursor": { "firstBatch": first, "id": id, "ns": "local.oplog.rs" } };
    with_metadata(shared, member, reply)
}

fn ms(cmd: &Document, key: &str) -> Option<u64> {
    match cmd.get(key)? {
        Bson::Int32(i) => Some((*i).max(0) as u64),
        Bson::Int64(i) => Some((*i).max(0) as u64),
        Bson::Double(d) => Some(d.max(0.0) as u64),
        _ => None,
    }
}

/// `getMore` on an oplog cursor: returns new entries, or waits (awaitData)
/// up to `maxTimeMS` for some — returning early when the commit point moved
/// past the caller's `lastKnownCommittedOpTime`, so secondaries learn it.
pub async fn oplog_get_more(shared: &Shared, member: usize, cmd: &Document, id: i64) -> Document {
    let m = &shared.members[member];
    let Some(pos) = m
        .cursors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
        .copied()
    else {
        return error(43, "CursorNotFound", &format!("cursor id {id} not found"));
    };
    let known = cmd
        .get_document("lastKnownCommittedOpTime")
        .ok()
        .and_then(OpTime::from_doc)
        .unwrap_or_default();
    let wait = Duration::from_millis(ms(cmd, "maxTimeMS").unwrap_or(1000)).min(MAX_AWAIT);
    let mut oplog_rx = m.oplog_tx.subscribe();
    let mut progress_rx = shared.progress_tx.subscribe();
    let ready = || m.store().oplog().len() > pos || m.commit_point() > known;
    let _ = tokio::time::timeout(wait, async {
        loop {
            oplog_rx.borrow_and_update();
            progress_rx.borrow_and_update();
            if ready() {
                return;
            }
            tokio::select! {
                r = oplog_rx.changed() => if r.is_err() { return },
                r = progress_rx.changed() => if r.is_err() { return },
            }
        }
    })
    .await;
    let (next_batch, next) = batch(shared, member, pos);
    m.cursors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, next);
    let reply = doc! { "cursor": { "nextBatch": next_batch, "id": id, "ns": "local.oplog.rs" } };
    with_metadata(shared, member, reply)
}

/// `replSetUpdatePosition` from a secondary: its durable optimes advance
/// the commit point.
pub fn update_position(shared: &Shared, member: usize, cmd: &Document) -> Document {
    if !shared.is_primary(member) {
        return errors::not_writable_primary();
    }
    let Ok(optimes) = cmd.get_array("optimes") else {
        return error(9, "FailedToParse", "replSetUpdatePosition needs 'optimes'");
    };
    for o in optimes {
        let Bson::Document(o) = o else { continue };
        let id = match o.get("memberId") {
            Some(Bson::Int32(i)) => *i as i64,
            Some(Bson::Int64(i)) => *i,
            _ => continue,
        };
        let durable = o
            .get_document("durableOpTime")
            .ok()
            .and_then(OpTime::from_doc);
        if let (Ok(i), Some(d)) = (usize::try_from(id), durable) {
            shared.record_progress(i, d);
        }
    }
    let mut reply = doc! { "ok": 1.0 };
    reply.insert("$replData", repl_data(shared, member));
    reply
}

/// How many members `writeConcern.w` asks for (1 when absent or unknown).
fn w_count(shared: &Shared, cmd: &Document) -> (usize, Option<Duration>) {
    let Ok(wc) = cmd.get_document("writeConcern") else {
        return (1, None);
    };
    let w = match wc.get("w") {
        Some(Bson::String(s)) if s == "majority" => shared.majority(),
        Some(Bson::Int32(n)) => (*n).max(0) as usize,
        Some(Bson::Int64(n)) => (*n).max(0) as usize,
        _ => 1,
    };
    let wtimeout = ms(wc, "wtimeout")
        .filter(|t| *t > 0)
        .map(Duration::from_millis);
    (w, wtimeout)
}

/// After a write on the primary: waits for its write concern and adds a
/// `writeConcernError` to `reply` when it times out (or asks for more
/// members than exist, which MongoDB refuses up front).
pub async fn await_write_concern(
    shared: &Shared,
    member: usize,
    cmd: &Document,
    reply: &mut Document,
) {
    let (w, wtimeout) = w_count(shared, cmd);
    if w <= 1 {
        return;
    }
    if w > shared.members.len() {
        reply.insert(
            "writeConcernError",
            doc! { "code": 100, "codeName": "UnsatisfiableWriteConcern", "errmsg": "Not enough data-bearing nodes" },
        );
        return;
    }
    let target = shared.members[member].store().last_op_time();
    let timeout = wtimeout.unwrap_or(MAX_WRITE_CONCERN_WAIT);
    match shared.wait_replicated(member, target, w, timeout).await {
        WaitOutcome::Satisfied => {}
        WaitOutcome::TimedOut => {
            reply.insert(
                "writeConcernError",
                doc! {
                    "code": 64,
                    "codeName": "WriteConcernFailed",
                    "errmsg": "waiting for replication timed out",
                    "errInfo": { "wtimeout": true },
                },
            );
        }
        WaitOutcome::SteppedDown => {
            // MongoDB: the write stays applied locally (and may be rolled
            // back); the wait ends with PrimarySteppedDown
            reply.insert(
                "writeConcernError",
                doc! {
                    "code": 189,
                    "codeName": "PrimarySteppedDown",
                    "errmsg": "Primary stepped down while waiting for replication",
                },
            );
        }
    }
}
