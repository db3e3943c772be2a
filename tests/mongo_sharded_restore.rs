//! A version of a tapped 2-shard MongoDB cluster restored into a 3-shard cluster
//! through its router, and into a plain replica set (issue 17: "restore a 2-shard
//! version into a 3-shard cluster and into a replica set: `verify` equal").
//!
//! The source (the testbed's sharded cluster, tapped on `lo`) holds a collection
//! sharded on a hashed key, one on a ranged key split and moved across both shards
//! with the balancer moving chunks while writes go on, and an unsharded one. The
//! references are the testbed's own: each target's logical state (its shards'
//! documents as its chunk map assigns them) must equal the source's at the
//! version's moment, collection by collection, and `tidemark verify` must say
//! equal. On the 3-shard target the sharded collections are sharded again on the
//! source's key (the hashed one spread over all three shards), and nothing of the
//! source's `config` database — which the tap logs, the chunk map's history comes
//! from it — is written into either target.
//!
//! Needs live capture on `lo` (root or CAP_NET_RAW).

mod live_tap_support;
mod ready_support;
mod require;
mod sharded_support;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use live_tap_support::LiveTap;
use mongodb::bson::{doc, Document};
use sharded_support::{admin, client, coll};
use tidemark_testbed::mongo::sharded::{MongoShardedCluster, ShardedConfig};
use tidemark_testbed::{MongoReplicaSet, ReplSetConfig};

const DB: &str = "shop";
const HASHED: &str = "shop.h";
const RANGED: &str = "shop.r";
const PLAIN: &str = "shop.u";

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A namespace's documents in `state` (the testbed's), by `_id`.
fn state_of(state: &BTreeMap<String, Vec<Document>>, ns: &str) -> BTreeMap<String, Document> {
    state
        .get(ns)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|d| (format!("{:?}", d.get("_id")), d))
        .collect()
}

/// Runs `tidemark ARGS`, and its `--json` output.
fn tidemark(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .output()
        .expect("run tidemark");
    assert!(
        out.status.success(),
        "tidemark {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("{}");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

/// Restores `version` into `uri`, verifies it there, and returns the restored
/// namespaces the restore reported.
fn restore_and_verify(store: &Path, version: &str, uri: &str) -> Vec<String> {
    let store = store.to_string_lossy();
    let restored = tidemark(&[
        "restore",
        "--store",
        &store,
        "--version",
        version,
        "--to",
        uri,
        "--json",
    ]);
    let verified = tidemark(&[
        "verify",
        "--store",
        &store,
        "--version",
        version,
        "--against",
        uri,
        "--json",
    ]);
    assert_eq!(verified["equal"], serde_json::json!(true), "{verified}");
    let mut names: Vec<String> = restored["namespaces"]
        .as_object()
        .unwrap_or_else(|| panic!("namespaces in {restored}"))
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

#[test]
fn a_two_shard_version_restores_into_three_shards_and_into_a_replica_set() {
    if !require::live_capture() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let source = rt
        .block_on(MongoShardedCluster::start(ShardedConfig {
            shards: 2,
            members: 3,
            routers: 1,
            base_addr: Ipv4Addr::new(127, 0, 175, 1),
            range_deleter_delay: Duration::from_millis(200),
            ..ShardedConfig::default()
        }))
        .expect("start the source cluster");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let tap = LiveTap::start("--mongo-port", source.routers[0].addr.port(), &store);

    rt.block_on(async {
        let c = client(&source.uri()).await;
        admin(&c, doc! {"enableSharding": DB}).await;
        admin(&c, doc! {"shardCollection": HASHED, "key": {"k": "hashed"}}).await;
        admin(&c, doc! {"shardCollection": RANGED, "key": {"k": 1}}).await;
        for at in [100i64, 200] {
            admin(&c, doc! {"split": RANGED, "middle": {"k": at}}).await;
        }
        admin(
            &c,
            doc! {"moveChunk": RANGED, "find": {"k": 150i64}, "to": "shard1"},
        )
        .await;
        for ns in [HASHED, RANGED, PLAIN] {
            let docs: Vec<Document> = (0..300i64)
                .map(|i| doc! {"_id": i, "k": i, "v": 0, "tag": format!("{ns}-{i}")})
                .collect();
            coll(&c, ns).insert_many(docs).await.expect("insert");
        }
        // Chunks move while writes go on.
        source.set_balancer(true, None, Some(Duration::from_millis(100)));
        for i in 0..120i64 {
            let ns = [HASHED, RANGED, PLAIN][(i % 3) as usize];
            let id = (i * 7) % 300;
            coll(&c, ns)
                .update_one(
                    doc! {"_id": id, "k": id},
                    doc! {"$inc": {"v": 1}, "$set": {"w": i}},
                )
                .await
                .expect("update");
            if i % 4 == 0 {
                let gone = 299 - i;
                coll(&c, ns)
                    .delete_one(doc! {"_id": gone, "k": gone})
                    .await
                    .expect("delete");
            }
        }
        source.set_balancer(false, None, None);
        c.shutdown().await;
    });
    assert!(
        !source.migrations().is_empty(),
        "no chunk moved during the writes"
    );
    let at = now_ns();
    tap.stop_after(at);
    let truth = source.logical_state();
    let version = "sharded";
    let created = tidemark(&[
        "version",
        "create",
        "--store",
        &store.to_string_lossy(),
        "--name",
        version,
        "--snapshot",
        "none",
        "--at",
        &format!("{:.6}", at as f64 / 1e9),
        "--json",
    ]);
    // The version holds the config servers' writes too (the chunk map's history).
    let held: Vec<&str> = created["namespaces"]
        .as_array()
        .unwrap_or_else(|| panic!("namespaces in {created}"))
        .iter()
        .filter_map(|n| n["namespace"].as_str())
        .collect();
    assert!(
        held.contains(&"config.chunks") && held.contains(&"config.collections"),
        "{held:?}"
    );
    let user = [HASHED, RANGED, PLAIN].map(str::to_owned).to_vec();

    // Into three shards, through the router.
    let three = rt
        .block_on(MongoShardedCluster::start(ShardedConfig {
            shards: 3,
            members: 1,
            routers: 1,
            base_addr: Ipv4Addr::new(127, 0, 176, 1),
            ..ShardedConfig::default()
        }))
        .expect("start the 3-shard cluster");
    assert_eq!(restore_and_verify(&store, version, &three.uri()), user);
    let restored = three.logical_state();
    for ns in [HASHED, RANGED, PLAIN] {
        let want = state_of(&truth, ns);
        assert!(want.len() > 200, "{ns}: {} documents", want.len());
        assert_eq!(state_of(&restored, ns), want, "{ns} in the 3-shard cluster");
    }
    {
        let cat = three.inner().config.catalog();
        let hashed = &cat.tables.get(HASHED).expect("shop.h sharded").key;
        assert_eq!((hashed.field.as_str(), hashed.hashed), ("k", true));
        let ranged = &cat.tables.get(RANGED).expect("shop.r sharded").key;
        assert_eq!((ranged.field.as_str(), ranged.hashed), ("k", false));
        assert!(!cat.tables.contains_key(PLAIN), "shop.u stays unsharded");
    }
    // The hashed collection's documents are spread over all three shards.
    for s in three.shards() {
        let held = three.shard_raw_state(&s.id);
        assert!(
            held.get(HASHED).is_some_and(|d| !d.is_empty()),
            "{} holds none of {HASHED}",
            s.id
        );
    }
    three.stop();

    // Into a replica set.
    let set = rt
        .block_on(MongoReplicaSet::start(ReplSetConfig {
            members: 1,
            base_addr: Ipv4Addr::new(127, 0, 177, 1),
            port: 0,
            ..ReplSetConfig::default()
        }))
        .expect("start the replica set");
    assert_eq!(restore_and_verify(&store, version, &set.uri()), user);
    let primary = set.primary().expect("a primary");
    let held = set.data(primary);
    for ns in [HASHED, RANGED, PLAIN] {
        assert_eq!(
            state_of(&held, ns),
            state_of(&truth, ns),
            "{ns} in the replica set"
        );
    }
    assert!(
        held.keys().all(|ns| !ns.starts_with("config.")),
        "the source's config database was written: {:?}",
        held.keys().collect::<Vec<_>>()
    );
    set.stop();
    source.stop();
}
