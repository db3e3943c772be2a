//! `readConcern: {level: "snapshot"}` outside transactions (MongoDB 5.0+): a
//! `find`, `count`, `distinct` or `aggregate` reads the member's data as of one
//! cluster time, `atClusterTime` when the client names it, else the member's
//! majority commit point, which the reply names in `cursor.atClusterTime` (or
//! `atClusterTime` for a non-cursor reply) as mongod does.
//!
//! The member keeps its whole oplog, which is its history: the view at time T is
//! the oplog replayed up to T (`storage::oplog::apply_entry`), the same replay the
//! ground truth's `committed_state_at` uses; the last view is kept for the next
//! read at the same time. A time past the member's last write is
//! refused with `InvalidOptions` as mongod refuses a future cluster time; a time
//! past the commit point waits for it (bounded), then `SnapshotUnavailable`.

use crate::mongo::errors::error;
use crate::mongo::state::Shared;
use crate::mongo::storage::oplog::apply_entry;
use crate::mongo::storage::store::{cluster_time_now, MemberStore, OpTime};
use std::sync::Arc;
use std::time::Duration;
use tidemark_mongo::bson::{doc, Document, Timestamp};

/// How long a read at a time not yet majority-committed waits for the commit point.
const COMMIT_WAIT: Duration = Duration::from_secs(5);

/// The cluster time a snapshot read asks for: `None` when `cmd` is no snapshot
/// read, `Some(None)` for a snapshot read without `atClusterTime`.
pub fn requested(cmd: &Document) -> Option<Option<Timestamp>> {
    let rc = cmd.get_document("readConcern").ok()?;
    if rc.get_str("level").ok()? != "snapshot" {
        return None;
    }
    Some(rc.get_timestamp("atClusterTime").ok())
}

fn key(t: Timestamp) -> (u32, u32) {
    (t.time, t.increment)
}

/// The member's data as of `at` (default: its commit point) and that time.
pub async fn view(
    shared: &Shared,
    member: usize,
    at: Option<Timestamp>,
) -> Result<(Arc<MemberStore>, Timestamp), Document> {
    let m = &shared.members[member];
    let at = match at {
        Some(t) => t,
        None => m.commit_point().timestamp(),
    };
    if key(at) > m.store().last_op_time().ts {
        // The cluster's clock (gossiped `$clusterTime`) may be ahead of this set's
        // last write: a set nobody wrote to lately. mongod then writes a no-op
        // (`makeNoopWriteIfNeeded`, an `appendOplogNote` on the primary) so its
        // oplog reaches the time, and the read waits for it to commit. Only a time
        // beyond the cluster's clock is refused.
        if key(at) > cluster_time_now() {
            return Err(error(
                72,
                "InvalidOptions",
                "atClusterTime value must not be greater than the current clusterTime",
            ));
        }
        if shared.is_primary(member) {
            let term = shared.term_of(member);
            m.store().append_oplog(
                term,
                "n",
                "",
                doc! { "noop write for afterClusterTime read concern": 1 },
                None,
            );
            m.publish_oplog(shared);
        }
        let deadline = tokio::time::Instant::now() + COMMIT_WAIT;
        while key(at) > m.store().last_op_time().ts {
            if tokio::time::Instant::now() >= deadline {
                return Err(error(
                    246,
                    "SnapshotUnavailable",
                    "atClusterTime is not in this member's oplog yet",
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let deadline = tokio::time::Instant::now() + COMMIT_WAIT;
    while key(at) > m.commit_point().ts {
        if tokio::time::Instant::now() >= deadline {
            return Err(error(
                246,
                "SnapshotUnavailable",
                "atClusterTime is not majority-committed yet",
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if let Some((t, v)) = m
        .snapshot_view
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
    {
        if *t == key(at) {
            return Ok((Arc::clone(v), at));
        }
    }
    let oplog = m.store().oplog().to_vec();
    let mut view = MemberStore::default();
    for e in oplog {
        if OpTime::from_doc(&e).is_some_and(|t| t.ts > key(at)) {
            break;
        }
        apply_entry(&mut view, &e).map_err(|x| error(8, "UnknownError", &x))?;
        view.push_replicated(e)
            .map_err(|x| error(8, "UnknownError", &x))?;
    }
    let view = Arc::new(view);
    *m.snapshot_view.lock().unwrap_or_else(|e| e.into_inner()) = Some((key(at), Arc::clone(&view)));
    Ok((view, at))
}

/// Names the read's cluster time in the reply.
pub fn stamp(reply: &mut Document, at: Timestamp) {
    match reply.get_document_mut("cursor") {
        Ok(c) => {
            c.insert("atClusterTime", at);
        }
        Err(_) => {
            reply.insert("atClusterTime", at);
        }
    }
}
