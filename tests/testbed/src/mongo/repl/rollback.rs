//! Rollback: a member whose oplog has entries its new sync source never
//! had (typically a former primary that acknowledged w:1 writes while cut
//! off) undoes them, as MongoDB does.
//!
//! Like mongod, it first finds the common point — the newest entry both
//! oplogs share — by reading the sync source's oplog over the wire (from
//! its own commit point on: committed entries are never rolled back). Then
//! it returns its data to the common point. MongoDB (4.0+) does that by
//! recovering to its stable (majority-committed) checkpoint and replaying
//! its oplog up to the common point; the testbed rebuilds the member's data
//! by replaying its oplog from the start up to the common point, which ends
//! in the same state. What was undone is recorded (see
//! [`crate::mongo::storage::truth::Rollback`]): the entries, and each touched document as
//! it was before, as MongoDB writes them to its rollback files.

use super::peer::PeerClient;
use crate::mongo::state::Shared;
use crate::mongo::storage::oplog::apply_entry;
use crate::mongo::storage::store;
use crate::mongo::storage::store::{MemberStore, OpTime};
use crate::mongo::storage::truth::{now_millis, Rollback};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tidemark_mongo::bson::{doc, Bson, Document};

const TIMEOUT: Duration = Duration::from_secs(15);
/// Bounds the getMore loop reading the source's oplog.
const MAX_BATCHES: usize = 100_000;

/// Reads the source's oplog optimes from `from` on.
async fn remote_optimes(
    shared: &Arc<Shared>,
    me: usize,
    source: usize,
    from: OpTime,
) -> Result<BTreeSet<OpTime>, String> {
    let mut c = PeerClient::connect(shared, me, source, "rollback", TIMEOUT).await?;
    let reply = c
        .command(doc! {
            "find": "oplog.rs",
            "filter": { "ts": { "$gte": from.timestamp() } },
            "tailable": true,
            "awaitData": true,
            "$db": "local",
            "$readPreference": { "mode": "secondaryPreferred" },
        })
        .await?;
    let mut out = BTreeSet::new();
    let add = |out: &mut BTreeSet<OpTime>, batch: &[Bson]| {
        for e in batch {
            if let Some(t) = e.as_document().and_then(OpTime::from_doc) {
                out.insert(t);
            }
        }
        batch.len()
    };
    let cursor = reply.get_document("cursor").map_err(|e| e.to_string())?;
    let id = cursor.get_i64("id").map_err(|e| e.to_string())?;
    add(
        &mut out,
        cursor.get_array("firstBatch").map_err(|e| e.to_string())?,
    );
    if id != 0 {
        for _ in 0..MAX_BATCHES {
            let r = c
                .command(doc! { "getMore": id, "collection": "oplog.rs", "maxTimeMS": 1, "$db": "local" })
                .await?;
            let batch = r
                .get_document("cursor")
                .and_then(|c| c.get_array("nextBatch"))
                .map_err(|e| e.to_string())?;
            if add(&mut out, batch) == 0 {
                break;
            }
        }
        let _ = c
            .command(doc! { "killCursors": "oplog.rs", "cursors": [id], "$db": "local" })
            .await;
    }
    Ok(out)
}

/// The `(ns, _id)` an oplog entry touches, if it is a document operation.
fn touched(e: &Document) -> Option<(String, Bson)> {
    let ns = e.get_str("ns").ok()?.to_string();
    let id = match e.get_str("op").ok()? {
        "i" | "d" => e.get_document("o").ok()?.get("_id")?.clone(),
        "u" => e.get_document("o2").ok()?.get("_id")?.clone(),
        _ => return None,
    };
    Some((ns, id))
}

/// Rolls member `me` back to its common point with `source`.
pub async fn run(shared: &Arc<Shared>, me: usize, source: usize) -> Result<(), String> {
    let m = &shared.members[me];
    let commit = m.commit_point();
    let remote = remote_optimes(shared, me, source, commit).await?;
    let record = {
        let mut store = m.store();
        let oplog = store.oplog();
        let keep = oplog
            .iter()
            .rposition(|e| OpTime::from_doc(e).is_some_and(|t| t <= commit || remote.contains(&t)))
            .map_or(0, |k| k + 1);
        let common_point = keep
            .checked_sub(1)
            .and_then(|k| OpTime::from_doc(&oplog[k]))
            .unwrap_or_default();
        let entries = oplog[keep..].to_vec();
        let mut documents: Vec<(String, Bson, Option<Document>)> = Vec::new();
        for (ns, id) in entries.iter().filter_map(touched) {
            let key = store::id_key(&id);
            if documents
                .iter()
                .any(|(n, i, _)| *n == ns && store::id_key(i) == key)
            {
                continue;
            }
            let before = store
                .collection(&ns)
                .and_then(|c| c.find_id(&id).and_then(|s| c.get(s)))
                .cloned();
            documents.push((ns, id, before));
        }
        let mut rebuilt = MemberStore::default();
        for e in &oplog[..keep] {
            apply_entry(&mut rebuilt, e)?;
            rebuilt.push_replicated(e.clone())?;
        }
        *store = rebuilt;
        let rbid = m.rbid.fetch_add(1, Ordering::SeqCst) + 1;
        Rollback {
            wall_millis: now_millis(),
            member: me,
            sync_source: source,
            common_point,
            entries,
            documents,
            rbid,
        }
    };
    m.cursors.lock().unwrap_or_else(|e| e.into_inner()).clear();
    m.oplog_tx.send_replace(record.common_point);
    let mut truth = shared.truth();
    truth.event(
        me,
        format!(
            "rolled back {} entries after {:?} (sync source {source})",
            record.entries.len(),
            record.common_point
        ),
    );
    truth.rollbacks.push(record);
    Ok(())
}
