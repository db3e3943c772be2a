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

mod live_tap_support;
mod ready_support;
mod require;

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

async fn admin(c: &Client, cmd: Document) -> Document {
    c.database("admin")
        .run_command(cmd.clone())
        .await
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
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
) -> Vec<Acked> {
    let mut acked = Vec::new();
    let mut rng = Rng(now_ns() | 1);
    for ops in 1..=max_ops {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        done.store(ops, Ordering::Relaxed);
        let (choice, at) = (rng.below(10), rng.below(live.len()));
        let pick = live[at];
        match choice {
            0..=3 => {
                coll.insert_one(doc! { "_id": next_id, "k": next_id, "v": 0 })
                    .await
                    .expect("insert");
                acked.push(Acked {
                    op: "insert",
                    id: next_id,
                });
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
                }
            }
        }
    }
    acked
}

/// The log's lines for the collection, as JSON.
fn log(store: &std::path::Path) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["log", "--json", "--ns", NS, "--store"])
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

    let acked = rt.block_on(async {
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
        // a retryable write sent twice with the same lsid/txnNumber/stmtId, as a
        // driver retries it after a network error: executed once
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
        // bounded: until 6 committed moves and 150 writes, at most 40 s
        let deadline = Instant::now() + Duration::from_secs(40);
        while (cl.migrations().len() < 6 || done.load(Ordering::Relaxed) < 150)
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.store(true, Ordering::Relaxed);
        cl.set_balancer(false, None, None);
        acked.extend(
            tokio::time::timeout(Duration::from_secs(60), w)
                .await
                .expect("writer stops")
                .expect("writer"),
        );
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
        acked
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

    let lines = log(&store_dir);
    if std::env::var_os("SHARDED_TAP_DUMP").is_some() {
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
    for l in &lines {
        let op = match l["op"].as_str() {
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
}
