//! The secondary side of replication, over real TCP to the primary like
//! mongod's OplogFetcher and Reporter: a tailable awaitData `find` on
//! `local.oplog.rs` then `getMore`s, each batch applied and appended to the
//! member's oplog, the commit point learned from `$replData`, and
//! `replSetUpdatePosition` sent on a second connection after every batch.
//! When our last entry is missing from the source's oplog, we roll back
//! ([`super::rollback`]) before fetching again.

use super::peer::PeerClient;
use crate::mongo::state::Shared;
use crate::mongo::storage::oplog::apply_entry;
use crate::mongo::storage::store::OpTime;
use std::sync::Arc;
use std::time::Duration;
use tidemark_mongo::bson::{doc, Bson, DateTime, Document};
use tokio::sync::watch;

/// How long a sync request may take before the connection is dropped and
/// the fetcher starts over (longer than the awaitData wait).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// awaitData wait asked of the sync source (MongoDB uses half the election timeout).
const AWAIT_MS: i64 = 5000;

/// Runs member `me`'s replication for as long as it runs: whenever it
/// knows another member as primary and can reach it, fetch from it; start
/// over after errors, cuts, or a change of primary.
pub async fn run(shared: Arc<Shared>, me: usize, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let source = shared.members[me]
            .view()
            .primary
            .filter(|p| *p != me && !shared.is_primary(me) && shared.link_up(me, *p));
        let step = async {
            if let Some(p) = source {
                let mut topo = shared.topology_tx.subscribe();
                let changed = async {
                    loop {
                        if topo.changed().await.is_err()
                            || shared.members[me].view().primary != Some(p)
                            || shared.is_primary(me)
                        {
                            return;
                        }
                    }
                };
                tokio::select! {
                    r = fetch_from(&shared, me, p) => if let Err(e) = r {
                        tracing::debug!(member = me, source = p, "oplog fetcher restarts: {e}");
                    },
                    _ = changed => {
                        tracing::debug!(member = me, source = p, "sync source is no longer primary");
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        tokio::select! {
            _ = step => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// MongoDB's OplogFetcher checks a batch's metadata before applying it: a
/// source that is no longer primary (or is in an older term than ours)
/// must not feed us — its entries may be the ones about to be rolled back.
fn check_source(shared: &Shared, me: usize, reply: &Document) -> Result<(), String> {
    let Ok(rd) = reply.get_document("$replData") else {
        return Ok(());
    };
    if rd.get_bool("isPrimary").ok() == Some(false) {
        return Err("sync source is no longer primary".into());
    }
    let term = rd.get_i64("term").unwrap_or(0);
    if term < shared.term_of(me) {
        return Err(format!("sync source is in an older term {term}"));
    }
    Ok(())
}

/// Learns the commit point from a reply's `$replData`, never beyond our
/// own last applied entry (we only know those entries are on the
/// committed history).
fn learn(shared: &Shared, me: usize, reply: &Document) -> Result<(), String> {
    check_source(shared, me, reply)?;
    if let Some(c) = reply
        .get_document("$replData")
        .ok()
        .and_then(|rd| rd.get_document("lastOpCommitted").ok())
        .and_then(OpTime::from_doc)
    {
        let m = &shared.members[me];
        let last = m.store().last_op_time();
        m.learn_commit_point(c.min(last));
    }
    Ok(())
}

async fn fetch_from(shared: &Arc<Shared>, me: usize, source: usize) -> Result<(), String> {
    let mut fetcher = PeerClient::connect(shared, me, source, "fetcher", REQUEST_TIMEOUT).await?;
    let mut reporter = PeerClient::connect(shared, me, source, "reporter", REQUEST_TIMEOUT).await?;
    let m = &shared.members[me];
    let last = m.store().last_op_time();
    let term = shared.term_of(me);
    let reply = fetcher
        .command(doc! {
            "find": "oplog.rs",
            "filter": { "ts": { "$gte": last.timestamp() } },
            "oplogReplay": true,
            "tailable": true,
            "awaitData": true,
            "maxTimeMS": 60000,
            "batchSize": 13_981_010,
            "term": term,
            "readConcern": { "level": "local", "afterClusterTime": last.timestamp() },
            "$db": "local",
            "$replData": 1,
            "$oplogQueryData": 1,
            "$readPreference": { "mode": "secondaryPreferred" },
        })
        .await?;
    let cursor = reply.get_document("cursor").map_err(|e| e.to_string())?;
    let id = cursor.get_i64("id").map_err(|e| e.to_string())?;
    let first = cursor.get_array("firstBatch").map_err(|e| e.to_string())?;
    check_source(shared, me, &reply)?;
    if diverged(&reply, first, last) {
        // our last entry is not in the source's oplog: roll back to the
        // common point, then fetch again from there
        super::rollback::run(shared, me, source).await?;
        return Err("rolled back; fetching again".into());
    }
    apply_batch(shared, me, first)?;
    learn(shared, me, &reply)?;
    report(shared, me, &mut reporter).await?;
    if id == 0 {
        return Err("sync source closed the oplog cursor".into());
    }
    loop {
        let reply = fetcher
            .command(doc! {
                "getMore": id,
                "collection": "oplog.rs",
                "batchSize": 13_981_010,
                "maxTimeMS": AWAIT_MS,
                "term": term,
                "lastKnownCommittedOpTime": m.commit_point().to_doc(),
                "$db": "local",
            })
            .await?;
        let cursor = reply.get_document("cursor").map_err(|e| e.to_string())?;
        let batch = cursor.get_array("nextBatch").map_err(|e| e.to_string())?;
        check_source(shared, me, &reply)?;
        let applied = apply_batch(shared, me, batch)?;
        learn(shared, me, &reply)?;
        if applied > 0 {
            report(shared, me, &mut reporter).await?;
        }
    }
}

/// MongoDB's OplogFetcher check: the first entry of a `$gte` query must be
/// our own last entry. If it is not there (another entry at that point, or
/// nothing while the source is ahead of us in optime order), our oplog has
/// entries the source never had.
fn diverged(reply: &Document, first: &[Bson], last: OpTime) -> bool {
    if last == OpTime::default() {
        return false;
    }
    match first.first() {
        Some(Bson::Document(e)) => OpTime::from_doc(e) != Some(last),
        Some(_) => false,
        None => reply
            .get_document("$oplogQueryData")
            .ok()
            .and_then(|q| q.get_document("lastOpApplied").ok())
            .and_then(OpTime::from_doc)
            .is_some_and(|source_last| source_last > last),
    }
}

/// Applies the entries after this member's last optime; returns how many.
fn apply_batch(shared: &Shared, me: usize, batch: &[Bson]) -> Result<usize, String> {
    let m = &shared.members[me];
    let mut n = 0;
    {
        let mut store = m.store();
        for e in batch {
            let Bson::Document(e) = e else {
                return Err("oplog batch entry is not a document".into());
            };
            let Some(t) = e.get_timestamp("ts").ok() else {
                return Err("oplog entry without ts".into());
            };
            let t = OpTime {
                t: e.get_i64("t").unwrap_or(0),
                ts: (t.time, t.increment),
            };
            if t <= store.last_op_time() {
                continue; // the $gte query returns the last fetched entry again
            }
            apply_entry(&mut store, e)?;
            store.push_replicated(e.clone())?;
            n += 1;
        }
    }
    if n > 0 {
        m.publish_oplog(shared);
    }
    Ok(n)
}

/// `replSetUpdatePosition` with this member's applied and durable optimes
/// (equal: there is no journal).
async fn report(shared: &Shared, me: usize, reporter: &mut PeerClient) -> Result<(), String> {
    let m = &shared.members[me];
    let (last, wall) = {
        let s = m.store();
        (s.last_op_time(), s.last_write_millis())
    };
    let reply = reporter
        .command(doc! {
            "replSetUpdatePosition": 1,
            "optimes": [{
                "durableOpTime": last.to_doc(),
                "durableWallTime": DateTime::from_millis(wall),
                "appliedOpTime": last.to_doc(),
                "appliedWallTime": DateTime::from_millis(wall),
                "memberId": me as i32,
                "cfgver": shared.topology().set_version,
            }],
            "$replData": repl_data_request(shared, me),
            "$db": "admin",
        })
        .await?;
    learn(shared, me, &reply)?;
    Ok(())
}

/// The `$replData` a secondary attaches to its own requests.
fn repl_data_request(shared: &Shared, me: usize) -> Document {
    let topo = shared.topology();
    let view = shared.members[me].view().clone();
    doc! {
        "term": view.term,
        "lastOpCommitted": shared.members[me].commit_point().to_doc(),
        "configVersion": topo.set_version,
        "replicaSetId": shared.replica_set_id,
        "syncSourceIndex": view.primary.map_or(-1, |p| p as i32),
    }
}
