//! tidemark tapping a sharded MongoDB cluster (the testbed's: 2 shards of 3
//! members, a 3-member config server set, 2 routers, all on one port) while the
//! balancer moves chunks continuously under a workload through the routers
//! (a bulk insert spanning both shards, inserts, updates by shard key and by
//! `_id` alone, deletes, and a retryable write sent twice with the same
//! lsid/txnNumber, as a driver retries it). The capture sees every layer:
//! client→router, router→shard (with StaleConfig retries), the migrations'
//! `_migrateClone`/`_transferMods`, the shards' and config servers' oplog
//! fetches (with `fromMigrate` entries and range-deleter deletes).
//!
//! Checked against the driver's acknowledged writes (independent of tidemark):
//! each acknowledged majority write is in `tidemark log --json` exactly once,
//! committed; nothing else is logged for the collection as a write (no
//! migration copy, no range deletion, no second copy of a routed write).
//! Against the testbed's ground truth (which tidemark never sees): versions cut
//! at 20 random moments during the moves equal the cluster's logical state then
//! (`logical_state_at_wall`: committed oplogs filtered by the chunk map in force),
//! or — for a moment inside the one write in flight — the state just before it
//! (those after a logical snapshot taken through a router during the moves are cut
//! from that snapshot and the log after it, the others from the log alone);
//! the chunk-map history tidemark derives from the logged `config.chunks` writes
//! is the config servers' own (same maps, same order), `status --json` shows the
//! map in force, and the map at each of those moments is the one in force then.

mod live_tap_support;
mod ready_support;
mod require;
mod sharded_support;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use live_tap_support::LiveTap;
use mongodb::bson::{doc, Document};
use mongodb::options::{ClientOptions, CollectionOptions, WriteConcern};
use mongodb::{Client, Collection};
use sharded_support::admin;
use tidemark::store::{Store, StoreOptions};
use tidemark::version::model::VersionRow;
use tidemark::version::stored;
use tidemark_testbed::mongo::sharded::balancer::BalancerMode;
use tidemark_testbed::mongo::sharded::{MongoShardedCluster, ShardedConfig};

const NS: &str = "tap.c";

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// xorshift64: the workload's choices (no rand crate in the dev-dependencies).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// One acknowledged write: its op as the log names it and the `_id` it changed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Acked {
    op: &'static str,
    id: i64,
}

async fn client(addr: std::net::SocketAddr) -> Client {
    let uri = format!("mongodb://{addr}/?serverSelectionTimeoutMS=20000&heartbeatFrequencyMS=500");
    Client::with_options(ClientOptions::parse(&uri).await.expect("uri")).expect("client")
}

fn majority(c: &Client) -> Collection<Document> {
    c.database("tap").collection_with_options(
        "c",
        CollectionOptions::builder()
            .write_concern(WriteConcern::majority())
            .build(),
    )
}

/// Random majority writes until `stop` (bounded by `max_ops`), each noted once
/// the router acknowledged it; `model` is `_id` → present.
async fn writer(
    coll: Collection<Document>,
    mut live: Vec<i64>,
    stop: Arc<AtomicBool>,
    max_ops: usize,
    mut next_id: i64,
    done: Arc<AtomicUsize>,
) -> (Vec<Acked>, Vec<Span>) {
    let mut acked = Vec::new();
    let mut spans = Vec::new();
    let mut rng = Rng(now_ns() | 1);
    for ops in 1..=max_ops {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        done.store(ops, Ordering::Relaxed);
        let (choice, at) = (rng.below(10), rng.below(live.len()));
        let start = now_ms();
        let pick = live[at];
        let mut touched = Some(pick);
        match choice {
            0..=3 => {
                coll.insert_one(doc! { "_id": next_id, "k": next_id, "v": 0 })
                    .await
                    .expect("insert");
                acked.push(Acked {
                    op: "insert",
                    id: next_id,
                });
                touched = Some(next_id);
                live.push(next_id);
                next_id += 1;
            }
            4..=6 => {
                let r = coll
                    .update_one(doc! { "_id": pick, "k": pick }, doc! { "$inc": { "v": 1 } })
                    .await
                    .expect("update by shard key");
                assert_eq!(r.matched_count, 1, "update of {pick}");
                acked.push(Acked {
                    op: "update",
                    id: pick,
                });
            }
            7 => {
                // no shard key: the router looks for the owner
                let r = coll
                    .update_one(doc! { "_id": pick }, doc! { "$inc": { "w": 1 } })
                    .await
                    .expect("update by _id");
                assert_eq!(r.matched_count, 1, "update of _id {pick}");
                acked.push(Acked {
                    op: "update",
                    id: pick,
                });
            }
            _ => {
                if live.len() > 50 {
                    let r = coll
                        .delete_one(doc! { "_id": pick, "k": pick })
                        .await
                        .expect("delete");
                    assert_eq!(r.deleted_count, 1, "delete of {pick}");
                    acked.push(Acked {
                        op: "delete",
                        id: pick,
                    });
                    live.swap_remove(at);
                } else {
                    touched = None;
                }
            }
        }
        spans.push((start, now_ms(), touched));
    }
    (acked, spans)
}

/// When a write was sent and when it was acknowledged (ms since the epoch).
/// A write's send and acknowledgement (ms), and the `_id` it wrote (`None`: the
/// writer skipped a delete and wrote nothing).
type Span = (i64, i64, Option<i64>);

fn now_ms() -> i64 {
    (now_ns() / 1_000_000) as i64
}

/// `_id` → document, for one collection.
type Docs = BTreeMap<String, Document>;

fn by_id(docs: impl IntoIterator<Item = Document>) -> Docs {
    docs.into_iter()
        .map(|d| (format!("{:?}", d.get("_id")), d))
        .collect()
}

/// The cluster's logical state of the collection as of wall-clock `ms`, as the
/// testbed knows it (each shard's committed oplog replayed, kept to what the chunk
/// map in force then gives it): tidemark never sees it.
fn truth_at(cl: &MongoShardedCluster, ms: i64) -> Docs {
    let deadline = Instant::now() + Duration::from_secs(30);
    let state = loop {
        match cl.logical_state_at_wall(ms) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "truth at {ms}: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    by_id(
        state
            .get(NS)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|d| {
                // The testbed's bson is the same crate and version: round-trip the bytes.
                let bytes = d.to_vec().expect("encode");
                Document::from_reader(bytes.as_slice()).expect("decode")
            }),
    )
}

/// The version at `ms`: from the snapshot and the log after it when `snapshot`,
/// else from the log alone.
fn version_at(store_s: &str, name: &str, ms: i64, snapshot: bool) -> (Docs, Vec<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidemark"));
    cmd.args([
        "version", "create", "--store", store_s, "--name", name, "--at",
    ])
    .arg(format!("{:.3}", ms as f64 / 1e3));
    if !snapshot {
        cmd.args(["--snapshot", "none"]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open(
        std::path::Path::new(store_s),
        &StoreOptions::default().read_only(),
    )
    .unwrap();
    let mut docs = Vec::new();
    stored::for_each_row(&store, name, |ns, _, row| {
        if ns == NS {
            let VersionRow::Mongo { document } = row else {
                panic!("a document");
            };
            docs.push(Document::from_reader(document.as_slice()).expect("BSON"));
        }
        Ok(true)
    })
    .unwrap();
    let info = stored::info(&store, name).unwrap().unwrap();
    // From the log alone every document is certain. A snapshot through a router
    // reads each document at some moment of its read (the router offers no read at
    // one cluster time): a `$inc` committed meanwhile leaves that document unknown,
    // and the version says so rather than guess. Those documents are left out of
    // the comparison (each one named, for the reason, and counted).
    let mut unsure = Vec::new();
    for u in &info.uncertain {
        assert!(
            snapshot && u.why.contains("while the snapshot read this document"),
            "{name}: {u:?}"
        );
        let id: serde_json::Value = serde_json::from_str(&u.key).expect("key JSON");
        let id = id["_id"].as_i64().expect("an integer _id");
        unsure.push(format!("{:?}", Some(&mongodb::bson::Bson::Int64(id))));
    }
    let mut docs = by_id(docs);
    for k in &unsure {
        docs.remove(k);
    }
    (docs, unsure)
}

/// The log's lines for namespace `ns`, as JSON.
fn log(store: &std::path::Path, ns: &str) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["log", "--json", "--ns", ns, "--store"])
        .arg(store)
        .output()
        .expect("tidemark log");
    assert!(
        out.status.success(),
        "log: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn a_tapped_sharded_cluster_logs_each_acknowledged_write_once_and_no_migration_copy() {
    if !require::live_capture() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cl = rt
        .block_on(MongoShardedCluster::start(ShardedConfig {
            shards: 2,
            members: 3,
            routers: 2,
            base_addr: Ipv4Addr::new(127, 0, 161, 1),
            range_deleter_delay: Duration::from_millis(200),
            ..ShardedConfig::default()
        }))
        .expect("start the sharded cluster");
    let port = cl.routers[0].addr.port();
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let tap = LiveTap::start("--mongo-port", port, &store_dir);

    let (acked, spans, snapshot_done) = rt.block_on(async {
        let c0 = client(cl.routers[0].addr).await;
        admin(&c0, doc! { "shardCollection": NS, "key": { "k": 1 } }).await;
        for at in (100..400i64).step_by(100) {
            admin(&c0, doc! { "split": NS, "middle": { "k": at } }).await;
        }
        let mut acked = Vec::new();
        // a bulk insert spanning both shards
        let initial: Vec<Document> = (0..400i64)
            .map(|i| doc! { "_id": i, "k": i, "v": 0 })
            .collect();
        majority(&c0)
            .insert_many(initial)
            .await
            .expect("bulk insert");
        acked.extend((0..400).map(|id| Acked { op: "insert", id }));
        cl.set_balancer(
            true,
            Some(BalancerMode::Continuous),
            Some(Duration::from_millis(30)),
        );

        // a retryable write sent twice with the same lsid/txnNumber/stmtId, as a
        // driver retries it after a network error: executed once (sent before the
        // writer starts, so one write at a time is in flight)
        {
            use tidemark_testbed::mongo::sharded::client::WireClient;
            use tidemark_testbed::mongo::tidemark_mongo::bson::spec::BinarySubtype;
            use tidemark_testbed::mongo::tidemark_mongo::bson::{doc as tdoc, Binary};
            let lsid = tdoc! { "id": Binary { subtype: BinarySubtype::Uuid, bytes: vec![9; 16] } };
            let cmd = tdoc! {
                "insert": "c", "$db": "tap",
                "documents": [ { "_id": 500_000i64, "k": 500_000i64, "v": 0 } ],
                "lsid": lsid, "txnNumber": 1i64,
                "writeConcern": { "w": "majority" },
            };
            for attempt in 0..2 {
                let mut wc = WireClient::connect(
                    Ipv4Addr::new(127, 0, 161, 250).into(),
                    cl.routers[0].addr,
                    Duration::from_secs(20),
                )
                .await
                .expect("connect");
                let r = wc.command(cmd.clone()).await.expect("retryable insert");
                assert_eq!(r.get_i32("n").ok(), Some(1), "attempt {attempt}: {r}");
            }
            acked.push(Acked {
                op: "insert",
                id: 500_000,
            });
        }
        let c1 = client(cl.routers[1].addr).await;
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let w = tokio::spawn(writer(
            majority(&c1),
            (0..400).collect(),
            stop.clone(),
            2_000,
            1_000,
            done.clone(),
        ));
        // bounded: until 6 committed moves and 150 writes, at most 40 s
        // a logical snapshot through a router while chunks move and the writer writes
        tokio::time::sleep(Duration::from_millis(500)).await;
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(["snapshot", "take", "--json", "--db", "tap", "--from"])
            .arg(format!("mongodb://{}/", cl.routers[0].addr))
            .arg("--store")
            .arg(&store_dir)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "snapshot through the router: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(r#""cluster":"sharded""#),
            "the snapshot knows it read a sharded cluster: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let snapshot_done = now_ms();
        // Writes go on after the snapshot (versions are cut from it and the log).
        let done_at_snapshot = done.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(40);
        while (cl.migrations().len() < 6
            || done.load(Ordering::Relaxed) < 150.max(done_at_snapshot + 60))
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.store(true, Ordering::Relaxed);
        cl.set_balancer(false, None, None);
        let (more, spans) = tokio::time::timeout(Duration::from_secs(60), w)
            .await
            .expect("writer stops")
            .expect("writer");
        acked.extend(more);
        drop(
            tokio::time::timeout(Duration::from_secs(60), cl.inner().migration_lock.lock())
                .await
                .expect("the last migration finishes"),
        );
        assert!(
            cl.wait_range_deletions(Duration::from_secs(30)).await,
            "range deleter did not run"
        );
        c0.shutdown().await;
        c1.shutdown().await;
        (acked, spans, snapshot_done)
    });
    let moves = cl.migrations();
    let deleted: usize = cl.range_deletions().iter().filter_map(|r| r.deleted).sum();
    eprintln!(
        "{} acknowledged writes, {} moves (cloned {}), {} range-deleted, router counters {:?}",
        acked.len(),
        moves.len(),
        moves.iter().map(|m| m.cloned).sum::<usize>(),
        deleted,
        cl.router_counters()
    );
    assert!(
        moves.len() >= 6,
        "the balancer moved {} chunks",
        moves.len()
    );
    assert!(deleted > 0, "the range deleter removed orphans");
    tap.stop_after(now_ns());

    let lines = log(&store_dir, NS);
    if std::env::var_os("SHARDED_TAP_DUMP").is_some() {
        for l in log(&store_dir, "config.chunks") {
            eprintln!("CHUNKS {l}");
        }
        for l in &lines {
            eprintln!("{l}");
        }
    }
    let mut want: BTreeMap<Acked, usize> = BTreeMap::new();
    for a in &acked {
        *want.entry(a.clone()).or_default() += 1;
    }
    let mut got: BTreeMap<Acked, usize> = BTreeMap::new();
    let mut strays = Vec::new();
    let mut shard_collection = 0;
    for l in &lines {
        let op = match l["op"].as_str() {
            // the client's own DDL, logged under the collection it names
            Some("shardCollection") if l["outcome"] == "committed" => {
                shard_collection += 1;
                continue;
            }
            Some("insert") => "insert",
            Some("update") | Some("replace") => "update",
            Some("delete") => "delete",
            _ => {
                strays.push(l.clone());
                continue;
            }
        };
        let id = l["key"]["_id"].as_i64();
        match (id, l["outcome"].as_str()) {
            (Some(id), Some("committed")) => *got.entry(Acked { op, id }).or_default() += 1,
            _ => strays.push(l.clone()),
        }
    }
    let missing: Vec<_> = want
        .iter()
        .filter(|(a, n)| got.get(a) < Some(n))
        .take(10)
        .collect();
    let extra: Vec<_> = got
        .iter()
        .filter(|(a, n)| want.get(a) < Some(n))
        .take(10)
        .collect();
    eprintln!(
        "log: {} lines, {} strays, {} missing, {} extra",
        lines.len(),
        strays.len(),
        want.iter().filter(|(a, n)| got.get(a) < Some(n)).count(),
        got.iter().filter(|(a, n)| want.get(a) < Some(n)).count()
    );
    assert_eq!(shard_collection, 1, "the collection's shardCollection line");
    assert!(
        strays.is_empty(),
        "not committed writes of a known _id: {:?}",
        &strays[..strays.len().min(5)]
    );
    assert!(
        missing.is_empty(),
        "acknowledged writes not logged once: {missing:?}"
    );
    assert!(extra.is_empty(), "logged more than acknowledged: {extra:?}");
    assert_eq!(got, want);

    // Versions at 20 random times while chunks moved equal the cluster's logical
    // state then. The one write in flight at T (sent before, acknowledged after) was
    // applied on its shard at a wall time between the two, which the capture cannot
    // know: the version may be the state before it (when the write is no later than T
    // in the shard's oplog but only acknowledged after T).
    let (first, last) = (spans[0].0, spans.last().unwrap().1);
    let mut rng = Rng(now_ns() | 1);
    let mut exact = 0;
    let mut moments = Vec::new();
    let mut from_snapshot = 0;
    let mut uncertain = 0;
    // (T at least 2 ms from any send or acknowledgement: the oplog's walls and the
    // version's cut are compared at millisecond precision)
    let clear = |t: i64| {
        spans
            .iter()
            .all(|(s, e, _)| (s - t).abs() > 2 && (e - t).abs() > 2)
    };
    // Half the moments after the mid-run snapshot, so versions cut from it are
    // checked however late a loaded machine finished it.
    assert!(
        snapshot_done < last,
        "the snapshot finished after the last write"
    );
    for i in 0..20 {
        let from = if i < 10 {
            first
        } else {
            snapshot_done.max(first)
        };
        let t = (0..1000)
            .map(|_| from + rng.below((last - from) as usize) as i64)
            .find(|t| clear(*t))
            .expect("a moment clear of every send and acknowledgement");
        moments.push(t);
        let with_snapshot = t > snapshot_done;
        from_snapshot += usize::from(with_snapshot);
        let (got, unsure) = version_at(
            store_dir.to_str().unwrap(),
            &format!("v{i}"),
            t,
            with_snapshot,
        );
        uncertain += unsure.len();
        let without = |mut d: Docs| {
            for k in &unsure {
                d.remove(k);
            }
            d
        };
        let want = without(truth_at(&cl, t));
        if got == want {
            exact += 1;
            continue;
        }
        let in_flight = spans.iter().find(|(s, e, _)| *s <= t && t < *e);
        // Every other document as at T, and the one the write in flight wrote as
        // before it: at its send's millisecond or the one before (the write before
        // it may be acknowledged in that same millisecond, so the truth a
        // millisecond earlier can lack it; a run failed on exactly that).
        let before_in_flight = |(s, _, id): &Span| -> bool {
            let Some(id) = id else { return false };
            let key = format!("{:?}", Some(&mongodb::bson::Bson::Int64(*id)));
            let (mut rest_got, mut rest_want) = (got.clone(), want.clone());
            let doc = rest_got.remove(&key);
            rest_want.remove(&key);
            rest_got == rest_want
                && [s - 1, *s]
                    .into_iter()
                    .any(|at| without(truth_at(&cl, at)).get(&key) == doc.as_ref())
        };
        if in_flight.is_some_and(before_in_flight) {
            continue;
        }
        let before = in_flight.map(|(s, _, _)| without(truth_at(&cl, s - 1)));
        panic!(
            "version at {t} ms ({} documents, from the snapshot: {with_snapshot}) is not the logical state then ({} documents), nor before the write in flight ({in_flight:?}: {:?}); differing: {:?}",
            got.len(),
            want.len(),
            before.as_ref().map(|b| b
                .iter()
                .filter(|(k, d)| got.get(*k) != Some(*d))
                .chain(got.iter().filter(|(k, _)| !b.contains_key(*k)))
                .take(5)
                .collect::<Vec<_>>()),
            got.iter()
                .filter(|(k, d)| want.get(*k) != Some(*d))
                .chain(want.iter().filter(|(k, _)| !got.contains_key(*k)))
                .take(5)
                .collect::<Vec<_>>()
        );
    }
    eprintln!("versions: {exact} of 20 equal the logical state at T, the rest the state before the write in flight; {from_snapshot} cut from the snapshot and the log after it, {uncertain} documents uncertain in them");
    assert!(
        from_snapshot >= 5,
        "only {from_snapshot} versions after the snapshot"
    );

    // The chunk map's history, from the logged config.chunks writes, is the config
    // servers' own: the same maps in the same order, the one in force now in
    // `status --json`, and the one in force at each moment above.
    let store = Store::open(&store_dir, &StoreOptions::default().read_only()).unwrap();
    let history = tidemark::report::chunk_map::history(&store).expect("chunk-map history");
    drop(store);
    let ours: Vec<Vec<Chunk>> = history
        .get(NS)
        .expect("a chunk-map history for the collection")
        .iter()
        .map(|m| m.chunks.iter().map(chunk).collect())
        .collect();
    let truth_history: Vec<_> = cl
        .chunk_map_history()
        .into_iter()
        .filter(|h| h.ns == NS)
        .collect();
    let theirs: Vec<Vec<Chunk>> = truth_history
        .iter()
        .map(|h| table_chunks(&h.table))
        .collect();
    eprintln!(
        "chunk map: {} changes logged, {} on the config servers",
        ours.len(),
        theirs.len()
    );
    assert_eq!(ours, theirs, "the chunk-map history");
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["status", "--json", "--store"])
        .arg(&store_dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    let now: Vec<Chunk> = status["chunk_maps"][NS]["chunks"]
        .as_array()
        .expect("status --json shows the chunk map")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["min"].to_string(),
                c["max"].to_string(),
                c["shard"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let table = cl.inner().config.catalog().tables.get(NS).cloned().unwrap();
    assert_eq!(now, table_chunks(&table), "status: the chunk map in force");
    assert_eq!(status["chunk_maps"][NS]["changes"], theirs.len());
    // every write decided, no gap: nothing holds the tidemark back, and status says so
    assert!(
        status["undecided"].as_array().is_some_and(Vec::is_empty),
        "{status}"
    );
    assert!(status.get("held_by").is_none(), "{status}");
    let mut compared = 0;
    // The 20 moments above and 200 evenly spread over the run.
    let spread = (0..200).map(|i| first + (last - first) * i / 200);
    for t in moments.into_iter().chain(spread) {
        // (a change takes effect at its config oplog entry's wall; tidemark knows it
        // at the write's reply, once a majority has it, which is when the testbed
        // publishes it (`wall_millis`): moments from 20 ms before the entry to 20 ms
        // after the publication are left out. On a loaded machine the majority took
        // 46 ms once, and a moment between the two failed the comparison.)
        if truth_history.iter().any(|h| {
            h.config_wall_millis - 20 <= t && t <= h.wall_millis.max(h.config_wall_millis) + 20
        }) {
            continue;
        }
        compared += 1;
        let ours = tidemark::report::chunk_map::at(&history, NS, t as u64 * 1_000_000)
            .map(|m| m.chunks.iter().map(chunk).collect::<Vec<_>>());
        let theirs = cl.table_at_wall(NS, t).map(|t| table_chunks(&t));
        assert_eq!(ours, theirs, "the chunk map at {t} ms");
    }
    assert!(
        compared >= 20,
        "only {compared} moments clear of a chunk-map change"
    );
}

/// A chunk as `_id`, min, max (JSON text) and shard.
type Chunk = (String, String, String, String);

fn chunk(c: &tidemark::report::chunk_map::Chunk) -> Chunk {
    (
        c.id.clone(),
        c.min.to_string(),
        c.max.to_string(),
        c.shard.clone(),
    )
}

/// The testbed's table as its config.chunks documents say it, by `_id`.
fn table_chunks(t: &tidemark_testbed::mongo::sharded::chunks::RoutingTable) -> Vec<Chunk> {
    use tidemark_testbed::mongo::tidemark_mongo::bson::Bson as TBson;
    let json = |v: Option<&TBson>| {
        v.cloned()
            .expect("field")
            .into_relaxed_extjson()
            .to_string()
    };
    let mut out: Vec<Chunk> = t
        .chunks
        .iter()
        .map(|c| {
            let d = t.chunk_doc(c);
            (
                d.get_str("_id").unwrap().to_string(),
                json(d.get("min")),
                json(d.get("max")),
                d.get_str("shard").unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}
