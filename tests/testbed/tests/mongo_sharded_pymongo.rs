//! The real `pymongo` driver against the sharded testbed through two routers
//! (`tests/py/mongo_sharded.py`: sharding commands, inserts spanning shards,
//! ordered and unordered bulk writes with a duplicate key on each shard,
//! a mixed bulk, broadcast and targeted updates/deletes, findAndModify, a
//! hashed collection, a transaction touching both shards). What the script
//! read back through a router must equal the cluster's logical ground
//! truth; every document must be on the shard the chunk map names; pymongo's
//! retryable writes reached the shards with their session (`lsid`,
//! `txnNumber`); the transaction left a prepare/commit pair on both shards.
//! Needs python3 with pymongo (through `require`).

mod py_support;
#[path = "../../require/mod.rs"]
mod require;

use serde_json::Value;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;
use tidemark_testbed::mongo::sharded::{MongoShardedCluster, ShardedConfig};
use tidemark_testbed::mongo::tidemark_mongo::bson::{Bson, Document};

fn ext(d: &Document) -> Value {
    Bson::Document(d.clone()).into_canonical_extjson()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymongo_through_the_routers_matches_the_ground_truth() {
    if !require::python_modules(&["pymongo"]) {
        return;
    }
    let cl = MongoShardedCluster::start(ShardedConfig {
        shards: 2,
        members: 3,
        routers: 2,
        base_addr: Ipv4Addr::new(127, 0, 155, 1),
        range_deleter_delay: Duration::from_millis(200),
        ..ShardedConfig::default()
    })
    .await
    .expect("start the sharded cluster");
    let out =
        py_support::run_script("mongo_sharded.py", &[cl.uri()], Duration::from_secs(120)).await;

    let mut read: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in out.lines().filter_map(|l| l.strip_prefix("READ ")) {
        let (ns, json) = line.split_once(' ').expect("READ ns json");
        read.entry(ns.to_string())
            .or_default()
            .push(serde_json::from_str(json).expect("extended JSON"));
    }
    let truth = cl.logical_state();
    for ns in ["py.ranged", "py.hashed"] {
        let expected: Vec<Value> = truth
            .get(ns)
            .map(|v| v.iter().map(ext).collect())
            .unwrap_or_default();
        assert!(!expected.is_empty(), "{ns} is empty");
        assert_eq!(
            read.get(ns),
            Some(&expected),
            "{ns}: pymongo's read differs from the logical state"
        );
    }
    assert_eq!(truth["py.hashed"].len(), 99);
    assert!(
        cl.wait_range_deletions(Duration::from_secs(20)).await,
        "the range deleter did not run within 20 s"
    );
    let catalog = cl.inner().config.catalog().tables.clone();
    for s in cl.shards() {
        let raw = cl.shard_raw_state(&s.id);
        for ns in ["py.ranged", "py.hashed"] {
            let docs = raw.get(ns).cloned().unwrap_or_default();
            assert!(!docs.is_empty(), "{ns} has nothing on {}", s.id);
            for d in docs {
                assert_eq!(
                    catalog[ns].owner_of_doc(&d),
                    Some(s.id.as_str()),
                    "{ns}: {d} on the wrong shard"
                );
            }
        }
        let oplog = s.set.oplog(s.set.primary().expect("primary"));
        let inserts: Vec<&Document> = oplog
            .iter()
            .filter(|e| {
                e.get_str("ns").ok() == Some("py.ranged") && e.get_str("op").ok() == Some("i")
            })
            .collect();
        assert!(
            !inserts.is_empty()
                && inserts
                    .iter()
                    .all(|e| e.contains_key("lsid") && e.get_i64("txnNumber").is_ok()),
            "{}: pymongo's retryable inserts reached the shard with their session",
            s.id
        );
        let prepares = oplog
            .iter()
            .filter(|e| {
                e.get_document("o")
                    .is_ok_and(|o| o.get_bool("prepare").ok() == Some(true))
            })
            .count();
        let commits = oplog
            .iter()
            .filter(|e| {
                e.get_document("o")
                    .is_ok_and(|o| o.contains_key("commitTransaction"))
            })
            .count();
        assert_eq!(
            (prepares, commits),
            (1, 1),
            "{}: one prepared transaction, committed",
            s.id
        );
    }
}
