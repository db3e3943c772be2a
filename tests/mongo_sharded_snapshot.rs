//! `tidemark snapshot take --per-shard` on the testbed's sharded cluster (issue 17:
//! "a snapshot taken shard by shard during migrations has no key twice and none
//! missing after orphan filtering").
//!
//! Two shards hold a collection sharded on a hashed key, one on a ranged key (split
//! and spread over both) and an unsharded one, some documents without the shard key
//! (routed, and filtered, as null). While a writer changes all three through the
//! router and the balancer moves chunks continuously (clones paced, so migrations
//! are under way during the reads; the range deleter delayed, so donors keep their
//! orphans), the snapshot reads every shard's replica set directly at one cluster
//! time T. Checked against the testbed's ground truth, never the router's reads:
//! the stored documents equal the cluster's logical state at T (each shard's
//! committed oplog up to T, kept to the chunk map in force at T) document by
//! document, no `_id` counted twice (each namespace's kept count is its stored
//! count), orphans were filtered (> 0), and the same reads unfiltered — each shard
//! read by the test itself at T — hold `_id`s on both shards.
//!
//! The second test taps the cluster, takes a per-shard snapshot while chunks move,
//! writes on, and cuts `version create --at T` from the snapshot plus the log: equal
//! to the logical state at T.

mod live_tap_support;
mod ready_support;
mod require;
mod sharded_support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mongodb::bson::{doc, Bson, Document, Timestamp};
use mongodb::options::WriteConcern;
use mongodb::Client;
use sharded_support::{admin, client, coll};
use tidemark::snapshot::RowData;
use tidemark::store::{Store, StoreOptions};
use tidemark_testbed::mongo::sharded::balancer::BalancerMode;
use tidemark_testbed::mongo::sharded::{MongoShardedCluster, ShardedConfig};

const DB: &str = "shop";
const HASHED: &str = "shop.h";
const RANGED: &str = "shop.r";
const PLAIN: &str = "shop.u";
const ALL: [&str; 3] = [HASHED, RANGED, PLAIN];

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `_id` (debug form) → document.
type Docs = BTreeMap<String, Document>;

fn id_of(d: &Document) -> String {
    format!("{:?}", d.get("_id"))
}

/// The testbed's documents (same bson crate and version: bytes round-trip).
fn convert(d: &tidemark_testbed::mongo::tidemark_mongo::bson::Document) -> Document {
    Document::from_reader(d.to_vec().expect("encode").as_slice()).expect("decode")
}

/// Starts a 2-shard cluster (3 members per set) on 127.0.X.1…, shards a hashed and a
/// ranged collection (split at 100/200/300, two chunks moved to shard1), fills all
/// three collections with `n` documents each plus 4 without the shard key.
async fn setup(cl: &MongoShardedCluster, n: i64) -> Client {
    let c = client(&cl.uri()).await;
    admin(&c, doc! {"enableSharding": DB}).await;
    admin(&c, doc! {"shardCollection": HASHED, "key": {"k": "hashed"}}).await;
    admin(&c, doc! {"shardCollection": RANGED, "key": {"k": 1}}).await;
    for at in [100i64, 200, 300] {
        admin(&c, doc! {"split": RANGED, "middle": {"k": at}}).await;
    }
    for at in [150i64, 350] {
        admin(
            &c,
            doc! {"moveChunk": RANGED, "find": {"k": at}, "to": "shard1"},
        )
        .await;
    }
    for ns in ALL {
        let mut docs: Vec<Document> = (0..n)
            .map(|i| doc! {"_id": i, "k": i, "v": 0, "tag": format!("{ns}-{i}")})
            .collect();
        // no shard key: MongoDB routes (and tidemark filters) these as null
        docs.extend((0..4i64).map(|i| doc! {"_id": format!("nokey-{i}"), "v": 0}));
        coll(&c, ns).insert_many(docs).await.expect("insert");
    }
    c
}

/// Writes through the router until `stop`: updates by shard key, inserts, deletes,
/// over the three collections; the number of writes.
async fn writer(c: Client, stop: Arc<AtomicBool>, n: i64, done: Arc<AtomicUsize>) -> usize {
    writer_paced(c, stop, n, done, Duration::ZERO).await.len()
}

/// [`writer`] with a pause after each write; when each write was sent and
/// acknowledged (ms since the epoch).
async fn writer_paced(
    c: Client,
    stop: Arc<AtomicBool>,
    n: i64,
    done: Arc<AtomicUsize>,
    pause: Duration,
) -> Vec<(i64, i64)> {
    let mut spans = Vec::new();
    let mut i = 0i64;
    let mut next = 100_000i64;
    while !stop.load(Ordering::Relaxed) {
        let sent = now_ms();
        let ns = ALL[(i % 3) as usize];
        let id = (i * 37) % n;
        let col = coll(&c, ns);
        match i % 5 {
            0 => {
                col.insert_one(doc! {"_id": next, "k": next, "v": 0})
                    .await
                    .expect("insert");
                next += 1;
            }
            4 => {
                // deletes only from the top of the range, so updates stay on live ids
                let gone = n - 1 - (i / 5) % (n / 4);
                col.delete_one(doc! {"_id": gone, "k": gone})
                    .await
                    .expect("delete");
            }
            _ => {
                col.update_one(
                    doc! {"_id": id, "k": id},
                    doc! {"$inc": {"v": 1}, "$set": {"w": i}},
                )
                .await
                .expect("update");
            }
        }
        spans.push((sent, now_ms()));
        i += 1;
        done.store(i as usize, Ordering::Relaxed);
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    spans
}

/// Runs `tidemark ARGS`; its status, stdout and stderr.
fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .output()
        .expect("run tidemark");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The last JSON line of a successful `tidemark ARGS`.
fn tidemark_json(args: &[&str]) -> serde_json::Value {
    let (ok, out, err) = run(args);
    assert!(ok, "tidemark {args:?}: {err}");
    let last = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("{}");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// `snapshot take --per-shard --json` of the router; its summary line.
async fn take_per_shard(router: &str, store: &Path) -> serde_json::Value {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "snapshot",
            "take",
            "--per-shard",
            "--json",
            "--db",
            DB,
            "--from",
        ])
        .arg(router)
        .arg("--store")
        .arg(store)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "snapshot take --per-shard: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    if std::env::var_os("SHARDED_SNAPSHOT_DUMP").is_some() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    }
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.contains(r#""type":"summary""#));
    serde_json::from_str(last.expect("a summary line")).expect("summary JSON")
}

/// The snapshot's cluster time, from `snapshot show --json`.
fn cluster_time(store: &Path, id: u64) -> (u32, u32) {
    let shown = tidemark_json(&[
        "snapshot",
        "show",
        &id.to_string(),
        "--store",
        &store.to_string_lossy(),
        "--json",
    ]);
    let ct = &shown["cluster_time"];
    let t = ct["t"]
        .as_u64()
        .unwrap_or_else(|| panic!("cluster_time in {shown}"));
    (t as u32, ct["i"].as_u64().unwrap() as u32)
}

/// The snapshot's stored documents per namespace.
fn stored(store: &Path, id: u64) -> BTreeMap<String, Docs> {
    let s = Store::open(store, &StoreOptions::default().read_only()).unwrap();
    let mut out: BTreeMap<String, Docs> = BTreeMap::new();
    for row in tidemark::snapshot::store::rows(&s, id, None) {
        let row = row.unwrap();
        let RowData::Mongo { document } = row.data else {
            panic!("a document")
        };
        let d = Document::from_reader(document.as_slice()).unwrap();
        let prior = out.entry(row.namespace).or_default().insert(id_of(&d), d);
        assert!(prior.is_none(), "a stored key twice");
    }
    out
}

/// The testbed's logical state at cluster time `at`, per namespace (retried while a
/// shard's commit point is still before it).
fn truth_at(cl: &MongoShardedCluster, at: (u32, u32)) -> BTreeMap<String, Docs> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let state = loop {
        match cl.logical_state_at_time(at) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "truth at {at:?}: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    state
        .into_iter()
        .map(|(ns, docs)| {
            (
                ns,
                docs.iter()
                    .map(|d| (id_of(&convert(d)), convert(d)))
                    .collect(),
            )
        })
        .collect()
}

/// Each shard's documents of `ns` read by the test at `at` (orphans and all), by
/// shard: what the snapshot would hold without the filter.
async fn unfiltered(cl: &MongoShardedCluster, ns: &str, at: (u32, u32)) -> Vec<BTreeSet<String>> {
    let (db, name) = ns.split_once('.').unwrap();
    let mut out = Vec::new();
    for s in cl.shards() {
        let c = client(&s.set.uri()).await;
        let reply = c
            .database(db)
            .run_command(doc! {
                "find": name, "filter": {}, "batchSize": 1_000_000,
                "readConcern": {"level": "snapshot", "atClusterTime": Timestamp { time: at.0, increment: at.1 }},
            })
            .await
            .expect("snapshot read on a shard");
        let cursor = reply.get_document("cursor").unwrap();
        assert_eq!(cursor.get_i64("id").unwrap_or(0), 0, "one batch");
        let ids = cursor
            .get_array("firstBatch")
            .unwrap()
            .iter()
            .filter_map(Bson::as_document)
            .map(id_of)
            .collect();
        out.push(ids);
        c.shutdown().await;
    }
    out
}

fn start(x: u8, shards: usize) -> (tokio::runtime::Runtime, MongoShardedCluster) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cl = rt
        .block_on(MongoShardedCluster::start(ShardedConfig {
            shards,
            members: 3,
            routers: 1,
            base_addr: Ipv4Addr::new(127, 0, x, 1),
            // donors keep their orphans through the snapshot
            range_deleter_delay: Duration::from_secs(120),
            ..ShardedConfig::default()
        }))
        .expect("start the sharded cluster");
    (rt, cl)
}

#[test]
fn a_per_shard_snapshot_during_migrations_has_every_key_once() {
    let started = Instant::now();
    let (rt, cl) = start(170, 2);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let n = 600i64;
    let (summary, window, writes) = rt.block_on(async {
        let c = setup(&cl, n).await;
        cl.set_clone_pacing(40, Duration::from_millis(15));
        cl.set_balancer(
            true,
            Some(BalancerMode::Continuous),
            Some(Duration::from_millis(20)),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let w = tokio::spawn(writer(c.clone(), stop.clone(), n, done.clone()));
        // chunks moved before (orphans left behind) and move during the snapshot
        let deadline = Instant::now() + Duration::from_secs(20);
        while (cl.migrations().len() < 4 || done.load(Ordering::Relaxed) < 100)
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let from = now_ms();
        let summary = take_per_shard(&cl.uri(), &store).await;
        let to = now_ms();
        stop.store(true, Ordering::Relaxed);
        cl.set_balancer(false, None, None);
        let writes = w.await.expect("writer");
        c.shutdown().await;
        (summary, (from, to), writes)
    });
    let id = summary["snapshot"].as_u64().expect("snapshot id");
    let at = cluster_time(&store, id);
    let moves = cl.migrations();
    let during = moves
        .iter()
        .filter(|m| m.started_millis <= window.1 && m.committed_millis >= window.0)
        .count();
    eprintln!(
        "snapshot {id} at {at:?} in {} ms: {} rows, orphans filtered {}; {} chunk moves in all, {during} under way during the snapshot; {writes} writes",
        window.1 - window.0,
        summary["rows"],
        summary["orphans_filtered"],
        moves.len()
    );
    assert_eq!(summary["finished"], true, "{summary}");
    assert_eq!(summary["cluster"], "sharded", "{summary}");
    assert!(during >= 1, "no chunk moved during the snapshot: {moves:?}");

    // Equal to the ground truth at T, document by document.
    let truth = truth_at(&cl, at);
    let got = stored(&store, id);
    for ns in ALL {
        let want = truth.get(ns).cloned().unwrap_or_default();
        let have = got.get(ns).cloned().unwrap_or_default();
        let missing: Vec<_> = want
            .keys()
            .filter(|k| !have.contains_key(*k))
            .take(5)
            .collect();
        let extra: Vec<_> = have
            .keys()
            .filter(|k| !want.contains_key(*k))
            .take(5)
            .collect();
        let differ: Vec<_> = want
            .iter()
            .filter(|(k, d)| have.get(*k).is_some_and(|h| h != *d))
            .take(5)
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty() && differ.is_empty(),
            "{ns}: missing {missing:?}, extra {extra:?}, differing {differ:?}"
        );
        assert!(want.len() as i64 > n / 2, "{ns}: {} documents", want.len());
        assert!(
            want.keys().any(|k| k.contains("nokey")),
            "{ns}: documents without the shard key"
        );
    }

    // No key twice: each namespace's kept count (summed over the shards' parts) is
    // what the store holds, one row per `_id`.
    let shown = tidemark_json(&[
        "snapshot",
        "show",
        &id.to_string(),
        "--store",
        &store.to_string_lossy(),
        "--json",
    ]);
    let namespaces = shown["namespaces"].as_array().expect("namespaces");
    for ns in ALL {
        let kept = namespaces
            .iter()
            .find(|x| x["name"] == ns)
            .and_then(|x| x["rows"].as_u64())
            .unwrap_or_else(|| panic!("{ns} in {shown}"));
        assert_eq!(kept as usize, got[ns].len(), "{ns}: kept on two shards");
    }

    // The filter did something, and without it keys would be twice.
    let orphans = &summary["orphans_filtered"];
    let filtered: u64 = ALL.iter().filter_map(|ns| orphans[*ns].as_u64()).sum();
    assert!(filtered > 0, "no orphan filtered: {summary}");
    assert_eq!(orphans[PLAIN], 0, "{summary}");
    let mut twice = 0;
    for ns in [HASHED, RANGED] {
        let per_shard = rt.block_on(unfiltered(&cl, ns, at));
        let raw: usize = per_shard.iter().map(BTreeSet::len).sum();
        assert_eq!(
            raw as u64,
            got[ns].len() as u64 + orphans[ns].as_u64().unwrap(),
            "{ns}: raw documents = kept + orphans filtered"
        );
        twice += per_shard[0].intersection(&per_shard[1]).count();
    }
    eprintln!("unfiltered, {twice} _ids would be on both shards; {filtered} orphans filtered; test took {:?}", started.elapsed());
    assert!(twice > 0, "without the filter no key would be twice");
    cl.stop();
}

#[test]
fn bad_input_is_refused_with_a_clear_error() {
    // a replica set is no sharded cluster
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let set = rt
        .block_on(tidemark_testbed::MongoReplicaSet::start(
            tidemark_testbed::ReplSetConfig {
                members: 1,
                base_addr: Ipv4Addr::new(127, 0, 172, 1),
                port: 0,
                ..tidemark_testbed::ReplSetConfig::default()
            },
        ))
        .expect("start a replica set");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (ok, _, err) = run(&[
        "snapshot",
        "take",
        "--per-shard",
        "--from",
        &set.uri(),
        "--store",
        &store.to_string_lossy(),
    ]);
    assert!(!ok && err.contains("router"), "{err}");
    eprint!("replica set: {err}");
    set.stop();

    // a shard that cannot be reached
    let (rt2, cl) = start(173, 2);
    rt2.block_on(async {
        let c = setup(&cl, 50).await;
        c.shutdown().await;
    });
    // a chunk map with an overlap (a stray config.chunks document)
    let config_uri = cl.config_servers().uri();
    rt2.block_on(async {
        let c = client(&config_uri).await;
        c.database("config")
            .collection::<Document>("chunks")
            .insert_one(doc! {
                "_id": "stray", "ns": RANGED, "min": {"k": 50i64}, "max": {"k": 120i64},
                "shard": "shard1", "lastmod": Timestamp { time: 1, increment: 0 },
                "lastmodEpoch": mongodb::bson::oid::ObjectId::new(),
            })
            .with_options(
                mongodb::options::InsertOneOptions::builder()
                    .write_concern(WriteConcern::majority())
                    .build(),
            )
            .await
            .expect("insert a stray chunk");
        c.shutdown().await;
    });
    let (ok, _, err) = run(&[
        "snapshot",
        "take",
        "--per-shard",
        "--from",
        &cl.uri(),
        "--store",
        &store.to_string_lossy(),
    ]);
    assert!(
        !ok && err.contains(RANGED) && err.contains("overlap"),
        "{err}"
    );
    eprint!("overlap: {err}");
    let take = |what: &str, want: &[&str]| {
        let (ok, _, err) = run(&[
            "snapshot",
            "take",
            "--per-shard",
            "--from",
            &cl.uri(),
            "--store",
            &store.to_string_lossy(),
        ]);
        assert!(!ok && want.iter().all(|w| err.contains(w)), "{what}: {err}");
        eprint!("{what}: {err}");
    };
    // a hole: the stray gone, and the chunk starting at 200 with it
    rt2.block_on(async {
        let c = client(&config_uri).await;
        let chunks = c.database("config").collection::<Document>("chunks");
        for filter in [
            doc! {"_id": "stray"},
            doc! {"ns": RANGED, "min": {"k": 200i64}},
        ] {
            let r = chunks
                .delete_one(filter.clone())
                .with_options(
                    mongodb::options::DeleteOptions::builder()
                        .write_concern(WriteConcern::majority())
                        .build(),
                )
                .await
                .expect("delete a chunk");
            assert_eq!(r.deleted_count, 1, "{filter}");
        }
        c.shutdown().await;
    });
    take("hole", &[RANGED, "hole"]);
    // a key pattern tidemark does not understand
    rt2.block_on(async {
        let c = client(&config_uri).await;
        c.database("config")
            .collection::<Document>("collections")
            .update_one(
                doc! {"_id": HASHED},
                doc! {"$set": {"key": {"k": "2dsphere"}}},
            )
            .with_options(
                mongodb::options::UpdateOptions::builder()
                    .write_concern(WriteConcern::majority())
                    .build(),
            )
            .await
            .expect("change a key pattern");
        c.shutdown().await;
    });
    take("key pattern", &[HASHED, "does not understand"]);
    let down = &cl.shards()[1].set;
    for i in 0..down.shared().members.len() {
        tidemark_testbed::mongo::server::lifecycle::halt(down.shared(), i);
    }
    let (ok, _, err) = run(&[
        "snapshot",
        "take",
        "--per-shard",
        "--from",
        &format!("{}?serverSelectionTimeoutMS=2000", cl.uri()),
        "--store",
        &store.to_string_lossy(),
    ]);
    assert!(
        !ok && err.contains("shard1") && err.contains("cannot be reached"),
        "{err}"
    );
    eprint!("shard down: {err}");
    // none of these left a snapshot behind
    let (ok, listed, err) = run(&[
        "snapshot",
        "list",
        "--json",
        "--store",
        &store.to_string_lossy(),
    ]);
    assert!(ok && listed.trim().is_empty(), "{listed}{err}");
    cl.stop();
    drop(rt);
}

#[test]
fn a_version_from_a_per_shard_snapshot_and_the_log_is_the_logical_state() {
    if !require::live_capture() {
        return;
    }
    let started = Instant::now();
    let (rt, cl) = start(171, 2);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let tap = live_tap_support::LiveTap::start("--mongo-port", cl.routers[0].addr.port(), &store);
    let n = 300i64;
    let (summary, snapshot_done, spans) = rt.block_on(async {
        let c = setup(&cl, n).await;
        cl.set_clone_pacing(40, Duration::from_millis(10));
        cl.set_balancer(
            true,
            Some(BalancerMode::Continuous),
            Some(Duration::from_millis(30)),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        // a pause after each write: moments with no write in flight
        let w = tokio::spawn(writer_paced(
            c.clone(),
            stop.clone(),
            n,
            done.clone(),
            Duration::from_millis(8),
        ));
        let deadline = Instant::now() + Duration::from_secs(20);
        while cl.migrations().len() < 3 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let summary = take_per_shard(&cl.uri(), &store).await;
        let snapshot_done = now_ms();
        // writes and moves go on after the snapshot: the version takes them from the log
        let after = done.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(20);
        while done.load(Ordering::Relaxed) < after + 60 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.store(true, Ordering::Relaxed);
        cl.set_balancer(false, None, None);
        let spans = w.await.expect("writer");
        drop(
            tokio::time::timeout(Duration::from_secs(60), cl.inner().migration_lock.lock())
                .await
                .expect("the last migration finishes"),
        );
        c.shutdown().await;
        (summary, snapshot_done, spans)
    });
    let id = summary["snapshot"].as_u64().expect("snapshot id");
    let end_ms = now_ms() + 20;
    std::thread::sleep(Duration::from_millis(40));
    tap.stop_after(end_ms as u64 * 1_000_000);
    // Moments after the snapshot while writes and moves went on, each in the middle
    // of a pause between two writes (no write in flight), and one after the last.
    let gaps: Vec<i64> = spans
        .windows(2)
        .filter(|w| w[0].1 > snapshot_done && w[1].0 - w[0].1 >= 6)
        .map(|w| (w[0].1 + w[1].0) / 2)
        .collect();
    let step = (gaps.len() / 4).max(1);
    let mut moments: Vec<i64> = gaps.iter().step_by(step).take(4).copied().collect();
    assert!(
        moments.len() >= 3,
        "{} pauses after the snapshot",
        gaps.len()
    );
    moments.push(end_ms);
    let mut created = serde_json::Value::Null;
    for (i, at_ms) in moments.iter().copied().enumerate() {
        let name = format!("v{i}");
        let (c, have) = version_at(&store, id, &name, at_ms);
        created = c;
        let truth = truth_at_wall(&cl, at_ms);
        for ns in ALL {
            let want: Docs = truth
                .get(ns)
                .map(|d| d.iter().map(|d| (id_of(&convert(d)), convert(d))).collect())
                .unwrap_or_default();
            let have = have.get(ns).cloned().unwrap_or_default();
            let differ: Vec<_> = want
                .iter()
                .filter(|(k, d)| have.get(*k) != Some(*d))
                .chain(have.iter().filter(|(k, _)| !want.contains_key(*k)))
                .take(5)
                .collect();
            assert!(
                differ.is_empty(),
                "{ns} at {at_ms}: version differs from the truth: {differ:?}"
            );
            assert!(want.len() as i64 > n / 2, "{ns}: {} documents", want.len());
        }
    }
    eprintln!(
        "{} versions after snapshot {id} ({} rows, orphans filtered {}) from it and the log: equal to the logical state; {} writes, {} chunk moves; last: {created}; test took {:?}",
        moments.len(),
        summary["rows"],
        summary["orphans_filtered"],
        spans.len(),
        cl.migrations().len(),
        started.elapsed()
    );
    cl.stop();
}

/// The testbed's logical state at wall-clock `ms` (retried while not yet known).
fn truth_at_wall(
    cl: &MongoShardedCluster,
    ms: i64,
) -> BTreeMap<String, Vec<tidemark_testbed::mongo::tidemark_mongo::bson::Document>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match cl.logical_state_at_wall(ms) {
            Ok(t) => return t,
            Err(e) => {
                assert!(Instant::now() < deadline, "truth at {ms}: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// `version create --snapshot ID --at MS` named `name`: its JSON line and its
/// documents per namespace (none of them uncertain).
fn version_at(
    store: &Path,
    id: u64,
    name: &str,
    at_ms: i64,
) -> (serde_json::Value, BTreeMap<String, Docs>) {
    let created = tidemark_json(&[
        "version",
        "create",
        "--store",
        &store.to_string_lossy(),
        "--name",
        name,
        "--snapshot",
        &id.to_string(),
        "--at",
        &format!("{:.3}", at_ms as f64 / 1e3),
        "--json",
    ]);
    let s = Store::open(store, &StoreOptions::default().read_only()).unwrap();
    let mut got: BTreeMap<String, Docs> = BTreeMap::new();
    tidemark::version::stored::for_each_row(&s, name, |ns, _, row| {
        if let tidemark::version::model::VersionRow::Mongo { document } = row {
            let d = Document::from_reader(document.as_slice()).expect("BSON");
            got.entry(ns.to_string()).or_default().insert(id_of(&d), d);
        }
        Ok(true)
    })
    .unwrap();
    let info = tidemark::version::stored::info(&s, name).unwrap().unwrap();
    assert!(
        info.uncertain.is_empty(),
        "{name}: uncertain: {:?}",
        info.uncertain
    );
    (created, got)
}

#[test]
fn without_snapshot_reads_a_stable_chunk_map_gives_the_same_filtered_snapshot() {
    let (rt, cl) = start(174, 2);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    rt.block_on(async {
        let c = setup(&cl, 200).await;
        // moves after the inserts leave orphans (the range deleter waits)
        admin(
            &c,
            doc! {"moveChunk": HASHED, "find": {"k": 1i64}, "to": "shard0"},
        )
        .await;
        admin(
            &c,
            doc! {"moveChunk": RANGED, "find": {"k": 50i64}, "to": "shard1"},
        )
        .await;
        c.shutdown().await;
    });
    let (ok, out, err) = run(&[
        "snapshot",
        "take",
        "--per-shard",
        "--majority-reads",
        "--json",
        "--from",
        &cl.uri(),
        "--store",
        &store.to_string_lossy(),
    ]);
    assert!(ok, "{err}");
    let summary: serde_json::Value =
        serde_json::from_str(out.lines().last().unwrap()).expect("summary");
    assert_eq!(summary["finished"], true, "{summary}");
    assert!(
        summary["cluster_time"].is_null(),
        "majority reads: {summary}"
    );
    let orphans = &summary["orphans_filtered"];
    assert!(
        orphans[HASHED].as_u64() > Some(0) && orphans[RANGED].as_u64() > Some(0),
        "{summary}"
    );
    let id = summary["snapshot"].as_u64().unwrap();
    let got = stored(&store, id);
    let truth = cl.logical_state();
    for ns in ALL {
        let want: Docs = truth[ns]
            .iter()
            .map(|d| (id_of(&convert(d)), convert(d)))
            .collect();
        assert_eq!(got[ns], want, "{ns}");
    }
    eprintln!("majority reads, stable chunk map: {summary}");
    let (ok, text, _) = run(&["snapshot", "show", "1", "--store", &store.to_string_lossy()]);
    assert!(
        ok && text.contains("shop.h")
            && text.contains(&format!("{} orphans filtered", orphans[HASHED])),
        "{text}"
    );

    // Interrupted and resumed (the flag need not be repeated): at one cluster time,
    // the parts read stand; with majority reads, every part is read again.
    for majority in [false, true] {
        let store = dir.path().join(format!("store-{majority}"));
        let mut first = vec![
            "snapshot",
            "take",
            "--per-shard",
            "--json",
            "--max-parts",
            "2",
            "--parallel",
            "1",
            "--from",
        ];
        let uri = cl.uri();
        let store_s = store.to_string_lossy().into_owned();
        first.extend([uri.as_str(), "--store", store_s.as_str()]);
        if majority {
            first.push("--majority-reads");
        }
        let (ok, out, err) = run(&first);
        assert!(ok, "{err}");
        assert!(out.contains(r#""finished":false"#), "{out}");
        let mut again = vec!["snapshot", "take", "--resume", "--json", "--from"];
        again.extend([uri.as_str(), "--store", store_s.as_str()]);
        if majority {
            again.push("--majority-reads");
        }
        let (ok, out, err) = run(&again);
        assert!(ok, "{err}");
        let resumed: serde_json::Value =
            serde_json::from_str(out.lines().last().unwrap()).expect("summary");
        assert_eq!(resumed["finished"], true, "{resumed}");
        assert_eq!(resumed["orphans_filtered"], summary["orphans_filtered"]);
        let parts = resumed["parts"].as_u64().unwrap() as usize;
        let read_now = out
            .lines()
            .filter(|l| l.contains(r#""type":"progress""#))
            .count();
        let want = if majority { parts } else { parts - 2 };
        assert_eq!(
            read_now, want,
            "parts read on resume (majority reads: {majority})"
        );
        let again = stored(&store, resumed["snapshot"].as_u64().unwrap());
        assert_eq!(again, got, "resumed (majority reads: {majority})");
    }
    cl.stop();
}

/// tidemark's `hash64` and the testbed's, written apart and each checked against
/// MongoDB's vectors, agree on 3000 generated values (numbers of each type, strings,
/// ObjectIds, dates, nested documents and arrays, null): the chunk a hashed key
/// lands in is the same to both.
#[test]
fn tidemark_and_testbed_hash_shard_keys_alike() {
    use tidemark_testbed::mongo::tidemark_mongo::bson::Bson as TBson;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    fn value(r: &mut dyn FnMut() -> u64, depth: u32) -> Bson {
        match r() % if depth > 2 { 8 } else { 10 } {
            0 => Bson::Int32(r() as i32),
            1 => Bson::Int64(r() as i64 >> (r() % 64)),
            2 => Bson::Double(f64::from_bits(r()) % 1e12),
            3 => Bson::String(format!("k-{}", r() % 100_000)),
            4 => Bson::ObjectId(mongodb::bson::oid::ObjectId::from_bytes(
                r().to_le_bytes()[..].repeat(2)[..12].try_into().unwrap(),
            )),
            5 => Bson::Boolean(r().is_multiple_of(2)),
            6 => Bson::DateTime(mongodb::bson::DateTime::from_millis(r() as i64 >> 20)),
            7 => Bson::Null,
            8 => Bson::Array((0..r() % 4).map(|_| value(r, depth + 1)).collect()),
            _ => Bson::Document(
                (0..r() % 4)
                    .map(|i| (format!("f{i}"), value(r, depth + 1)))
                    .collect(),
            ),
        }
    }
    let mut compared = 0;
    for _ in 0..3000 {
        let v = value(&mut next, 0);
        if matches!(&v, Bson::Double(d) if d.is_nan()) {
            continue;
        }
        let ours = tidemark::snapshot::take::shard_key::hash::hash64(&v).expect("hash");
        let d = doc! {"v": v.clone()};
        let t = tidemark_testbed::mongo::tidemark_mongo::bson::Document::from_reader(
            d.to_vec().unwrap().as_slice(),
        )
        .unwrap();
        let theirs =
            tidemark_testbed::mongo::sharded::hash::hash64(t.get("v").unwrap_or(&TBson::Null));
        assert_eq!(ours, theirs, "{v:?}");
        compared += 1;
    }
    assert!(compared > 2900);
}

/// Without snapshot reads, a chunk move committed while the shards are read fails
/// the take (the chunk map read before and after differs) rather than keep a key
/// twice or none; a take the moves left alone equals the logical state, which no
/// write changes here. Repeated until a move has hit a take (bounded).
#[test]
fn without_snapshot_reads_a_move_during_the_take_fails_it() {
    let (rt, cl) = start(178, 2);
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let c = setup(&cl, 1500).await;
        c.shutdown().await;
    });
    let truth = cl.logical_state();
    cl.set_clone_pacing(1000, Duration::ZERO);
    cl.set_balancer(
        true,
        Some(BalancerMode::Continuous),
        Some(Duration::from_millis(5)),
    );
    let (mut failed, mut equal) = (0, 0);
    for attempt in 0..20 {
        let store = dir.path().join(format!("store-{attempt}"));
        let (ok, out, err) = run(&[
            "snapshot",
            "take",
            "--per-shard",
            "--majority-reads",
            "--parallel",
            "1",
            "--json",
            "--from",
            &cl.uri(),
            "--store",
            &store.to_string_lossy(),
        ]);
        if ok {
            let summary: serde_json::Value =
                serde_json::from_str(out.lines().last().unwrap()).expect("summary");
            let got = stored(&store, summary["snapshot"].as_u64().unwrap());
            for ns in ALL {
                let want: Docs = truth[ns]
                    .iter()
                    .map(|d| (id_of(&convert(d)), convert(d)))
                    .collect();
                assert_eq!(got[ns], want, "attempt {attempt}: {ns}");
            }
            equal += 1;
        } else {
            assert!(err.contains("changed while the shards were read"), "{err}");
            assert!(out.contains(r#""finished":false"#), "{out}");
            failed += 1;
            if failed == 1 {
                eprint!("{err}");
            }
            if failed >= 2 {
                break;
            }
        }
    }
    cl.set_balancer(false, None, None);
    eprintln!(
        "{failed} takes failed by a move, {equal} equal the logical state; {} moves",
        cl.migrations().len()
    );
    assert!(failed >= 1, "no move hit a take in 20 attempts");
    cl.stop();
}
