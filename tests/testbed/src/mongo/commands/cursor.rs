//! Query cursors: a command's first batch goes in its reply, the rest waits
//! on the member for `getMore` (MongoDB's default first batch is 101
//! documents; later batches are bounded by `batchSize` or ~16 MB).
//! `killCursors` closes them; oplog cursors live in [`crate::mongo::repl::source`].

use crate::mongo::errors::error;
use crate::mongo::state::Shared;
use crate::mongo::storage::store::QueryCursor;
use std::collections::VecDeque;
use tidemark_mongo::bson::{doc, Bson, Document};

/// The first batch when the command names no `batchSize`.
pub const DEFAULT_FIRST_BATCH: usize = 101;
/// A batch stops growing at this many bytes of documents.
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024 - 64 * 1024;

/// A non-negative integer argument (`batchSize`, `limit`, `skip`).
pub fn int_arg(cmd: &Document, key: &str) -> Option<i64> {
    match cmd.get(key)? {
        Bson::Int32(i) => Some(*i as i64),
        Bson::Int64(i) => Some(*i),
        Bson::Double(d) => Some(*d as i64),
        _ => None,
    }
}

fn take_batch(rest: &mut VecDeque<Document>, max: Option<usize>) -> Vec<Bson> {
    let max = max.filter(|n| *n > 0).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    let mut bytes = 0;
    while out.len() < max {
        let Some(d) = rest.front() else { break };
        let size = d.to_vec().map(|v| v.len()).unwrap_or(0);
        if !out.is_empty() && bytes + size > MAX_BATCH_BYTES {
            break;
        }
        bytes += size;
        if let Some(d) = rest.pop_front() {
            out.push(Bson::Document(d));
        }
    }
    out
}

/// A cursor reply for `docs`: the first batch, with the rest left on an
/// open cursor unless `single_batch` (then the rest is dropped).
pub fn open(
    shared: &Shared,
    member: usize,
    ns: &str,
    docs: Vec<Document>,
    batch_size: Option<i64>,
    single_batch: bool,
) -> Document {
    let mut rest: VecDeque<Document> = docs.into();
    let first = batch_size.map_or(DEFAULT_FIRST_BATCH, |n| n.max(0) as usize);
    let batch = if batch_size == Some(0) {
        Vec::new()
    } else {
        take_batch(&mut rest, Some(first))
    };
    let mut id = 0i64;
    if !rest.is_empty() && !single_batch {
        id = shared.members[member].next_cursor_id();
        shared.members[member].store().cursors.insert(
            id,
            QueryCursor {
                ns: ns.to_string(),
                rest,
            },
        );
    }
    doc! { "cursor": { "firstBatch": batch, "id": id, "ns": ns }, "ok": 1.0 }
}

/// `getMore` on a query cursor of `db`.
pub fn get_more(shared: &Shared, member: usize, db: &str, cmd: &Document, id: i64) -> Document {
    let coll = cmd.get_str("collection").unwrap_or_default();
    let mut store = shared.members[member].store();
    let Some(c) = store.cursors.get_mut(&id) else {
        return error(43, "CursorNotFound", &format!("cursor id {id} not found"));
    };
    let ns = c.ns.clone();
    if ns != format!("{db}.{coll}") {
        return error(
            13,
            "Unauthorized",
            &format!("Requested getMore on namespace '{db}.{coll}', but cursor belongs to a different namespace {ns}"),
        );
    }
    let max = int_arg(cmd, "batchSize").map(|n| n.max(0) as usize);
    let batch = take_batch(&mut c.rest, max);
    let next_id = if c.rest.is_empty() {
        store.cursors.remove(&id);
        0
    } else {
        id
    };
    doc! { "cursor": { "nextBatch": batch, "id": next_id, "ns": ns }, "ok": 1.0 }
}

/// Closes query cursors among `ids`; returns the ids it did not know.
pub fn kill(shared: &Shared, member: usize, ids: Vec<Bson>) -> (Vec<Bson>, Vec<Bson>) {
    let mut store = shared.members[member].store();
    ids.into_iter()
        .partition(|id| matches!(id, Bson::Int64(i) if store.cursors.remove(i).is_some()))
}
