//! Chunk migrations of the sharded testbed under a live workload, through
//! the real Rust driver. `moveChunk` of a range while a writer inserts,
//! updates (by shard key and by `_id` alone, which the router sends to every
//! shard in turn) and deletes in that range through another router:
//! afterwards every acknowledged write is in the logical state exactly
//! once; the recipient's oplog (and its secondaries') carries the clone and
//! catch-up as `fromMigrate: true` entries; the donor keeps its orphans
//! until the range deleter runs and has none after, its deletions also
//! `fromMigrate: true`; the writer's router went stale and retried. And the
//! balancer moving random chunks continuously under writes, bounded in
//! time: the truth stays consistent (model = logical state = what the
//! router reads, every document on the shard the chunk map names, every
//! move in the chunk-map history at a majority-committed config optime),
//! and the logical state rebuilt as of 20 random wall-clock times during the
//! moves (`logical_state_at_wall`: committed oplogs, chunk map then) is
//! exactly the writes acknowledged by then, give or take the one in flight —
//! also at the moment moves committed, when the shards' own states hold the
//! moved keys twice (the donor's orphans); each shard's committed oplog
//! replayed up to now is its live data.

mod common;

use futures_util::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection};
use rand::Rng;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tidemark_testbed::mongo::sharded::balancer::BalancerMode;
use tidemark_testbed::mongo::sharded::{MongoShardedCluster, ShardedConfig};

const T: Duration = Duration::from_secs(180);

async fn cluster(third_octet: u8, delay: Duration) -> MongoShardedCluster {
    MongoShardedCluster::start(ShardedConfig {
        shards: 2,
        members: 3,
        routers: 2,
        base_addr: Ipv4Addr::new(127, 0, third_octet, 1),
        range_deleter_delay: delay,
        ..ShardedConfig::default()
    })
    .await
    .expect("start the sharded cluster")
}

async fn client(addr: std::net::SocketAddr) -> Client {
    let uri = format!("mongodb://{addr}/?serverSelectionTimeoutMS=20000&heartbeatFrequencyMS=500");
    Client::with_options(ClientOptions::parse(&uri).await.expect("uri")).expect("client")
}

async fn admin(c: &Client, cmd: Document) -> Document {
    c.database("admin")
        .run_command(cmd.clone())
        .await
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

/// One acknowledged write: wall-clock ms when it was sent and acknowledged,
/// and the model after it (the first step: the model the writer started from).
type Step = (i64, i64, BTreeMap<i64, Document>);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Random acknowledged writes until `stop` (at most `max_ops`), each one
/// mirrored in the returned model (`_id` → document) once the router
/// acknowledged it. Every write must succeed: a migration is invisible to clients.
async fn writer(
    coll: Collection<Document>,
    mut model: BTreeMap<i64, Document>,
    stop: Arc<AtomicBool>,
    max_ops: usize,
    mut next_id: i64,
    done: Arc<AtomicUsize>,
) -> (BTreeMap<i64, Document>, usize, Vec<Step>) {
    let mut ops = 0;
    // the state before the first write, as a step that ended when the writer started
    let mut steps = vec![(now_ms(), now_ms(), model.clone())];
    while ops < max_ops && !stop.load(Ordering::Relaxed) {
        ops += 1;
        done.store(ops, Ordering::Relaxed);
        let start = now_ms();
        let (choice, pick) = {
            let mut rng = rand::rng();
            let keys: Vec<i64> = model.keys().copied().collect();
            (
                rng.random_range(0..10),
                keys[rng.random_range(0..keys.len())],
            )
        };
        match choice {
            0..=3 => {
                let d = doc! { "_id": next_id, "k": next_id, "v": 0 };
                coll.insert_one(d.clone()).await.expect("insert");
                model.insert(next_id, d);
                next_id += 1;
            }
            4..=6 => {
                let r = coll
                    .update_one(doc! { "k": pick }, doc! { "$inc": { "v": 1 } })
                    .await
                    .expect("update by shard key");
                assert_eq!(r.matched_count, 1, "update of k {pick}");
                let d = model.get_mut(&pick).expect("model");
                let v = d.get_i32("v").unwrap_or(0);
                d.insert("v", v + 1);
            }
            7 => {
                // no shard key: the router tries the shards in turn; an orphan must not match
                let r = coll
                    .update_one(doc! { "_id": pick }, doc! { "$inc": { "w": 1 } })
                    .await
                    .expect("update by _id");
                assert_eq!(r.matched_count, 1, "update of _id {pick}");
                let d = model.get_mut(&pick).expect("model");
                let w = d.get_i32("w").unwrap_or(0);
                d.insert("w", w + 1);
            }
            _ => {
                if model.len() > 10 {
                    let r = coll.delete_one(doc! { "k": pick }).await.expect("delete");
                    assert_eq!(r.deleted_count, 1, "delete of k {pick}");
                    model.remove(&pick);
                }
            }
        }
        steps.push((start, now_ms(), model.clone()));
    }
    (model, ops, steps)
}

fn assert_model_is_truth(cl: &MongoShardedCluster, ns: &str, model: &BTreeMap<i64, Document>) {
    let truth = cl.logical_state().remove(ns).unwrap_or_default();
    let ids: Vec<i64> = truth
        .iter()
        .map(|d| {
            d.get_i64("_id")
                .or_else(|_| d.get_i32("_id").map(i64::from))
                .expect("_id")
        })
        .collect();
    let mut dedup = ids.clone();
    dedup.dedup();
    assert_eq!(
        ids.len(),
        dedup.len(),
        "{ns}: a document is in the logical state twice"
    );
    let expected: Vec<Document> = model.values().cloned().collect();
    if truth != expected {
        let missing: Vec<_> = model.keys().filter(|k| !ids.contains(k)).take(10).collect();
        let extra: Vec<_> = ids
            .iter()
            .filter(|k| !model.contains_key(k))
            .take(10)
            .collect();
        let differ: Vec<_> = truth
            .iter()
            .filter(|d| !expected.contains(d))
            .take(5)
            .collect();
        panic!("{ns}: logical state differs from the acknowledged writes: missing {missing:?}, extra {extra:?}, differing {differ:?}");
    }
}

async fn read_all(c: &Client, ns: &str) -> Vec<Document> {
    let (db, coll) = ns.split_once('.').unwrap();
    c.database(db)
        .collection::<Document>(coll)
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("cursor")
}

fn from_migrate<'a>(oplog: &'a [Document], ns: &str, op: &str) -> Vec<&'a Document> {
    oplog
        .iter()
        .filter(|e| {
            e.get_str("ns").ok() == Some(ns)
                && e.get_str("op").ok() == Some(op)
                && e.get_bool("fromMigrate").ok() == Some(true)
        })
        .collect()
}

async fn move_under_writes(cl: &MongoShardedCluster) {
    let ns = "mig.c";
    let c0 = client(cl.routers[0].addr).await;
    let c1 = client(cl.routers[1].addr).await;
    admin(&c0, doc! { "shardCollection": ns, "key": { "k": 1 } }).await;
    admin(&c0, doc! { "split": ns, "middle": { "k": 500i64 } }).await;
    let coll: Collection<Document> = c1.database("mig").collection("c");
    let initial: Vec<Document> = (0..1000i64)
        .map(|i| doc! { "_id": i, "k": i, "v": 0 })
        .collect();
    coll.insert_many(initial.clone())
        .await
        .expect("initial insert");
    let model: BTreeMap<i64, Document> = initial
        .into_iter()
        .map(|d| (d.get_i64("_id").unwrap(), d))
        .collect();
    let moved_before: Vec<Document> = cl
        .shard_raw_state("shard0")
        .remove(ns)
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d.get_i64("k").unwrap() >= 500)
        .collect();
    assert_eq!(moved_before.len(), 500);
    // a slow clone: 50 documents per batch, 40 ms apart, so the writer's
    // changes must be caught up by _transferMods
    cl.set_clone_pacing(50, Duration::from_millis(40));
    let stop = Arc::new(AtomicBool::new(false));
    let w = tokio::spawn(writer(
        coll.clone(),
        model,
        stop.clone(),
        5_000,
        1_000_000,
        Default::default(),
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, stale_before) = cl.router_counters()[1];
    admin(
        &c0,
        doc! { "moveChunk": ns, "find": { "k": 600i64 }, "to": "shard1" },
    )
    .await;
    // orphans right after the commit: the donor still has the moved range
    let orphans = cl.orphans(ns);
    assert!(
        !orphans.is_empty(),
        "the donor keeps its orphans until the range deleter runs"
    );
    assert!(
        orphans
            .iter()
            .all(|(s, d)| s == "shard0" && d.get_i64("k").unwrap() >= 500),
        "orphans are the donor's copies of the moved range"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (model, ops, _) = tokio::time::timeout(Duration::from_secs(60), w)
        .await
        .expect("writer stops")
        .expect("writer");
    assert!(ops > 20, "the writer ran ({ops} ops)");
    assert!(
        cl.router_counters()[1].1 > stale_before,
        "the writer's router got StaleConfig and retried"
    );

    let uuid = |i: usize| {
        let s = &cl.shards()[i];
        s.set.shared().members[s.set.primary().unwrap()]
            .store()
            .uuid(ns)
    };
    assert!(
        uuid(1).is_some() && uuid(1) == uuid(0),
        "the recipient's collection has the donor's UUID"
    );
    let m = cl.migrations();
    eprintln!(
        "moveChunk: {ops} writer ops, cloned {}, transferred {}, {} ms, router counters {:?}",
        m[0].cloned,
        m[0].transferred,
        m[0].committed_millis - m[0].started_millis,
        cl.router_counters()
    );
    assert_eq!(m.len(), 1);
    assert_eq!((m[0].from.as_str(), m[0].to.as_str()), ("shard0", "shard1"));
    assert!(
        m[0].cloned >= 450,
        "the clone copied the chunk: {}",
        m[0].cloned
    );
    assert!(
        m[0].transferred > 0,
        "writes during the clone were caught up by _transferMods"
    );
    // the recipient's oplog: every document of the chunk as of the start arrived as a fromMigrate insert
    let s1 = &cl.shards()[1];
    let p1 = s1.set.primary().expect("shard1 primary");
    let oplog1 = s1.set.oplog(p1);
    let inserts = from_migrate(&oplog1, ns, "i");
    assert!(
        inserts.len() >= m[0].cloned,
        "{} fromMigrate inserts for {} cloned",
        inserts.len(),
        m[0].cloned
    );
    for d in &moved_before {
        let id = d.get("_id");
        let cloned = inserts
            .iter()
            .any(|e| e.get_document("o").ok().and_then(|o| o.get("_id")) == id);
        let deleted_meanwhile = !model.contains_key(&d.get_i64("_id").unwrap());
        assert!(
            cloned || deleted_meanwhile,
            "{d} reached the recipient without a fromMigrate insert"
        );
    }
    // ... and its secondaries replicated them as they are (a tap on replication sees the flag)
    let sec = (0..3).find(|i| *i != p1).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while from_migrate(&s1.set.oplog(sec), ns, "i").len() < inserts.len() {
        assert!(
            Instant::now() < deadline,
            "the secondary did not replicate the migration within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // the range deleter: orphans gone, each deletion fromMigrate on the donor
    assert!(
        cl.wait_range_deletions(Duration::from_secs(30)).await,
        "range deleter did not run"
    );
    assert!(
        cl.orphans(ns).is_empty(),
        "orphans left after the range deleter"
    );
    let rd = cl.range_deletions();
    let deleted = rd[0].deleted.expect("done");
    assert!(
        deleted >= 450,
        "the range deleter removed the donor's copies: {deleted}"
    );
    let s0 = &cl.shards()[0];
    let oplog0 = s0.set.oplog(s0.set.primary().expect("shard0 primary"));
    assert_eq!(
        from_migrate(&oplog0, ns, "d").len(),
        deleted,
        "every range deletion is a fromMigrate delete"
    );
    assert!(
        from_migrate(&oplog0, ns, "i").is_empty() && from_migrate(&oplog0, ns, "u").is_empty(),
        "the donor logs no migration inserts"
    );

    assert_model_is_truth(cl, ns, &model);
    let read = read_all(&c0, ns).await;
    assert_eq!(
        read,
        model.values().cloned().collect::<Vec<_>>(),
        "what the router reads is the acknowledged writes"
    );
    c0.shutdown().await;
    c1.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_chunk_under_a_live_writer_loses_and_duplicates_nothing() {
    let cl = cluster(152, Duration::from_millis(1500)).await;
    tokio::time::timeout(T, move_under_writes(&cl))
        .await
        .expect("timed out");
}

async fn balancer_under_writes(cl: &MongoShardedCluster) {
    let ns = "bal.c";
    let c0 = client(cl.routers[0].addr).await;
    admin(&c0, doc! { "shardCollection": ns, "key": { "k": 1 } }).await;
    for at in (125..1000i64).step_by(125) {
        admin(&c0, doc! { "split": ns, "middle": { "k": at } }).await;
    }
    let coll: Collection<Document> = c0.database("bal").collection("c");
    let initial: Vec<Document> = (0..1000i64)
        .map(|i| doc! { "_id": i, "k": i, "v": 0 })
        .collect();
    coll.insert_many(initial.clone())
        .await
        .expect("initial insert");
    let model: BTreeMap<i64, Document> = initial
        .into_iter()
        .map(|d| (d.get_i64("_id").unwrap(), d))
        .collect();
    cl.set_balancer(
        true,
        Some(BalancerMode::Continuous),
        Some(Duration::from_millis(30)),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let c1 = client(cl.routers[1].addr).await;
    let done = Arc::new(AtomicUsize::new(0));
    let w = tokio::spawn(writer(
        c1.database("bal").collection("c"),
        model,
        stop.clone(),
        3_000,
        2_000,
        done.clone(),
    ));
    // bounded: until 6 committed moves and 150 writes, at most 30 s
    let deadline = Instant::now() + Duration::from_secs(30);
    while (cl.migrations().len() < 6 || done.load(Ordering::Relaxed) < 150)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    cl.set_balancer(false, None, None);
    let (model, ops, steps) = tokio::time::timeout(Duration::from_secs(60), w)
        .await
        .expect("writer stops")
        .expect("writer");
    // no migration in flight any more
    drop(
        tokio::time::timeout(Duration::from_secs(60), cl.inner().migration_lock.lock())
            .await
            .expect("the last migration finishes"),
    );
    let moves = cl.migrations();
    eprintln!(
        "balancer: {} moves, {ops} writer ops, router counters {:?}",
        moves.len(),
        cl.router_counters()
    );
    assert!(
        moves.len() >= 6,
        "the balancer moved {} chunks in 30 s",
        moves.len()
    );
    assert!(ops >= 150, "the writer ran only {ops} ops in 30 s");
    assert_model_is_truth(cl, ns, &model);
    assert_eq!(
        read_all(&c0, ns).await,
        model.values().cloned().collect::<Vec<_>>()
    );
    assert!(
        cl.wait_range_deletions(Duration::from_secs(30)).await,
        "range deleter did not run"
    );
    assert!(cl.orphans(ns).is_empty());
    let table = cl.inner().config.catalog().tables.get(ns).cloned().unwrap();
    for s in cl.shards() {
        for d in cl.shard_raw_state(&s.id).remove(ns).unwrap_or_default() {
            assert_eq!(
                table.owner_of_doc(&d),
                Some(s.id.as_str()),
                "{d} on the wrong shard"
            );
        }
    }
    let history = cl.chunk_map_history();
    for m in &moves {
        assert!(
            history
                .iter()
                .any(|h| h.what == "moveChunk" && h.optime == m.commit_optime),
            "move {m:?} is in the history"
        );
        assert!(m.commit_optime <= cl.config_commit_point());
    }
    // the logical state at 20 random wall-clock times while chunks moved is
    // exactly the acknowledged writes up to then (the one write in flight at
    // that moment may or may not be in): no key twice, none missing
    let deadline = Instant::now() + Duration::from_secs(20);
    while cl.logical_state_at_wall(steps.last().unwrap().1).is_err() {
        assert!(
            Instant::now() < deadline,
            "the shards' commit points did not reach the writer's last write"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (first, last) = (steps[0].0, steps.last().unwrap().1);
    let check_at = |w: i64| {
        let state: Vec<Document> = cl
            .logical_state_at_wall(w)
            .expect("state at w")
            .remove(ns)
            .unwrap_or_default();
        let k = steps.iter().rposition(|s| s.1 <= w);
        let mut candidates: Vec<&BTreeMap<i64, Document>> = Vec::new();
        if let Some(k) = k {
            candidates.push(&steps[k].2);
        }
        let next = k.map_or(0, |k| k + 1);
        if let Some(s) = steps.get(next).filter(|s| s.0 <= w) {
            candidates.push(&s.2);
        }
        assert!(
            candidates.iter().any(|m| m.values().cloned().collect::<Vec<_>>() == state),
            "the logical state at {w} ms ({} documents) is none of the {} models acknowledged around then",
            state.len(),
            candidates.len()
        );
    };
    for _ in 0..20 {
        check_at(rand::rng().random_range(first..=last));
    }
    // the moment each move committed: the moved documents are on both shards
    // (the donor's orphans), and once filtered by the chunk map then, every
    // key is there once and the state is the acknowledged writes
    let mut with_twins = 0;
    // (at most 8 of them: each check replays every shard's oplog)
    for m in moves
        .iter()
        .filter(|m| m.cloned > 0 && m.committed_millis >= first && m.committed_millis <= last)
        .take(8)
    {
        let w = m.committed_millis;
        let mut seen = std::collections::HashMap::new();
        for s in cl.shards() {
            for d in cl
                .shard_state_at_wall(&s.id, w)
                .expect("raw state at w")
                .remove(ns)
                .unwrap_or_default()
            {
                *seen.entry(d.get_i64("_id").unwrap()).or_insert(0) += 1;
            }
        }
        if seen.values().any(|n| *n > 1) {
            with_twins += 1;
        }
        check_at(w);
    }
    assert!(
        with_twins > 0,
        "no move left a key on two shards at its commit"
    );
    // replaying each shard's committed oplog up to now gives its live documents
    for s in cl.shards() {
        let mut live = cl.shard_raw_state(&s.id);
        live.retain(|ns, docs| !ns.starts_with("config.") && !docs.is_empty());
        let mut replayed = cl.shard_state_at_wall(&s.id, now_ms()).expect("state now");
        for docs in live.values_mut().chain(replayed.values_mut()) {
            docs.sort_by_key(|d| d.get_i64("_id").unwrap_or_default());
        }
        assert_eq!(
            replayed, live,
            "{}: the committed oplog replayed is not the live data",
            s.id
        );
    }
    // the last history entry is the chunk map in force
    assert_eq!(
        history.iter().rev().find(|h| h.ns == ns).map(|h| &h.table),
        Some(&table)
    );
    let doc0 = model.values().next().unwrap();
    let last = history.last().unwrap().optime;
    assert_eq!(
        cl.owner_at(ns, doc0, last).as_deref(),
        table.owner_of_doc(doc0)
    );
    let _ = Bson::Null;
    c0.shutdown().await;
    c1.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_balancer_moves_chunks_continuously_under_writes_and_truth_stays_consistent() {
    let cl = cluster(153, Duration::from_millis(200)).await;
    tokio::time::timeout(T, balancer_under_writes(&cl))
        .await
        .expect("timed out");
}

/// The donor side of the catch-up, driven by hand over the wire as a
/// recipient would: a transaction prepared on the donor after the migration
/// started is not there yet (reported deleted); once committed, the next
/// `_transferMods` reloads its document (the writes take effect at the
/// commit entry, whose `prevOpTime` names the prepare entry).
async fn transfer_mods_after_prepare(cl: &MongoShardedCluster) {
    use tidemark_testbed::mongo::tidemark_mongo::bson::spec::BinarySubtype;
    use tidemark_testbed::mongo::tidemark_mongo::bson::{doc as tdoc, Binary, Bson as TBson};
    let c = client(cl.routers[0].addr).await;
    admin(&c, doc! { "shardCollection": "pm.c", "key": { "k": 1 } }).await;
    c.database("pm")
        .collection::<Document>("c")
        .insert_many((0..10).map(|i| doc! { "_id": i, "k": i }))
        .await
        .expect("insert");
    let s0 = &cl.shards()[0];
    let p = s0.set.primary().expect("primary");
    let table = cl.inner().config.catalog().tables["pm.c"].clone();
    s0.hook
        .start_donating(s0.set.shared(), p, &table, &TBson::MinKey, &TBson::MaxKey);
    let mut w = common::Client::connect(s0.set.addresses()[p]).await;
    let lsid = tdoc! { "id": Binary { subtype: BinarySubtype::Uuid, bytes: vec![7; 16] } };
    let session = tdoc! { "lsid": lsid.clone(), "txnNumber": 1i64, "autocommit": false };
    let run = |d: tidemark_testbed::mongo::tidemark_mongo::bson::Document| {
        let mut d = d;
        d.extend(session.clone());
        d
    };
    let r = w
        .command(run(tdoc! { "insert": "c", "documents": [{ "_id": 100, "k": 100 }], "startTransaction": true, "$db": "pm" }), 0, None)
        .await
        .1;
    assert_eq!(r.get_i32("n").ok(), Some(1), "{r}");
    let r = w
        .command(
            run(tdoc! { "prepareTransaction": 1, "$db": "admin" }),
            0,
            None,
        )
        .await
        .1;
    let ts = r
        .get_timestamp("prepareTimestamp")
        .unwrap_or_else(|_| panic!("{r}"));
    let mods = w
        .command(tdoc! { "_transferMods": "pm.c", "$db": "admin" }, 0, None)
        .await
        .1;
    assert_eq!(
        mods.get_array("reload").map(Vec::len).ok(),
        Some(0),
        "prepared, not visible: {mods}"
    );
    let r = w
        .command(
            run(tdoc! { "commitTransaction": 1, "commitTimestamp": ts, "$db": "admin" }),
            0,
            None,
        )
        .await
        .1;
    assert_eq!(r.get_f64("ok").ok(), Some(1.0), "{r}");
    let mods = w
        .command(tdoc! { "_transferMods": "pm.c", "$db": "admin" }, 0, None)
        .await
        .1;
    let reload = mods.get_array("reload").cloned().unwrap_or_default();
    assert_eq!(
        reload,
        vec![TBson::Document(tdoc! { "_id": 100, "k": 100 })],
        "the committed transaction's document is reloaded: {mods}"
    );
    s0.hook.stop_donating();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_mods_carries_a_prepared_transaction_at_its_commit() {
    let cl = cluster(158, Duration::from_millis(200)).await;
    tokio::time::timeout(T, transfer_mods_after_prepare(&cl))
        .await
        .expect("timed out");
}

/// A write through the router to a namespace where a transaction is
/// prepared on the shard waits for its decision (MongoDB's prepare
/// conflict), so it sees the committed transaction: the prepared insert is
/// not visible before the commit, yet the update matches it.
async fn write_waits_for_prepared(cl: &MongoShardedCluster) {
    use tidemark_testbed::mongo::tidemark_mongo::bson::spec::BinarySubtype;
    use tidemark_testbed::mongo::tidemark_mongo::bson::{doc as tdoc, Binary};
    let c = client(cl.routers[0].addr).await;
    admin(&c, doc! { "shardCollection": "pw.c", "key": { "k": 1 } }).await;
    let coll: Collection<Document> = c.database("pw").collection("c");
    coll.insert_one(doc! { "_id": 1, "k": 1 })
        .await
        .expect("insert");
    let s0 = &cl.shards()[0];
    let mut w = common::Client::connect(s0.set.addresses()[s0.set.primary().unwrap()]).await;
    let lsid = tdoc! { "id": Binary { subtype: BinarySubtype::Uuid, bytes: vec![9; 16] } };
    let with_session = |mut d: tidemark_testbed::mongo::tidemark_mongo::bson::Document| {
        d.extend(tdoc! { "lsid": lsid.clone(), "txnNumber": 1i64, "autocommit": false });
        d
    };
    let r = w
        .command(with_session(tdoc! { "insert": "c", "documents": [{ "_id": 100, "k": 100 }], "startTransaction": true, "$db": "pw" }), 0, None)
        .await
        .1;
    assert_eq!(r.get_i32("n").ok(), Some(1), "{r}");
    let r = w
        .command(
            with_session(tdoc! { "prepareTransaction": 1, "$db": "admin" }),
            0,
            None,
        )
        .await
        .1;
    let ts = r
        .get_timestamp("prepareTimestamp")
        .unwrap_or_else(|_| panic!("{r}"));
    let c2 = coll.clone();
    let update = tokio::spawn(async move {
        c2.update_one(doc! { "k": 100 }, doc! { "$set": { "u": 1 } })
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = w
        .command(
            with_session(tdoc! { "commitTransaction": 1, "commitTimestamp": ts, "$db": "admin" }),
            0,
            None,
        )
        .await
        .1;
    assert_eq!(r.get_f64("ok").ok(), Some(1.0), "{r}");
    let r = tokio::time::timeout(Duration::from_secs(30), update)
        .await
        .expect("the update finishes after the decision")
        .expect("task")
        .expect("update");
    assert_eq!(
        r.matched_count, 1,
        "the update waited for the prepared insert's commit"
    );
    let d = coll
        .find_one(doc! { "_id": 100 })
        .await
        .expect("find")
        .expect("doc");
    assert_eq!(d.get_i32("u").ok(), Some(1), "{d}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waits_for_a_prepared_transaction() {
    let cl = cluster(161, Duration::from_millis(200)).await;
    tokio::time::timeout(T, write_waits_for_prepared(&cl))
        .await
        .expect("timed out");
}
