//! Snapshot reads (`readConcern: {level: "snapshot"}`, MongoDB 5.0+) through the
//! real `pymongo` driver's snapshot sessions: the session's reads all see the data
//! of its first read's cluster time, writes made after it stay invisible, and the
//! cluster time the server names holds exactly the set's committed state at that
//! optime (the ground truth replays the committed oplog). A time in the future is
//! refused with InvalidOptions (72), as mongod refuses it. Needs python3 with
//! pymongo (through `require`).

mod py_support;
#[path = "../../require/mod.rs"]
mod require;

use std::net::Ipv4Addr;
use std::time::Duration;
use tidemark_testbed::mongo::OpTime;
use tidemark_testbed::mongo::ReplSetConfig;
use tidemark_testbed::MongoReplicaSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymongo_snapshot_sessions_read_at_one_cluster_time() {
    if !require::python_modules(&["pymongo"]) {
        return;
    }
    let set = MongoReplicaSet::start(ReplSetConfig {
        base_addr: Ipv4Addr::new(127, 0, 121, 1),
        port: 0,
        max_await: Duration::from_millis(500),
        ..ReplSetConfig::default()
    })
    .await
    .expect("start replica set");
    let out =
        py_support::run_script("mongo_snapshot.py", &[set.uri()], Duration::from_secs(120)).await;
    let line = out
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("a JSON line");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let ids = |k: &str| -> Vec<i64> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|d| d["_id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids("first"), (0..10).collect::<Vec<_>>());
    assert_eq!(
        v["first"], v["second"],
        "writes after the first read are invisible"
    );
    assert_eq!(v["second"][0]["v"], 0);
    assert_eq!(v["counted"], 10);
    assert_eq!(ids("now"), [0, 1, 2, 3, 4, 5, 6, 7, 8, 100]);
    assert_eq!(v["now"][0]["v"], -1);
    assert_eq!(v["future_code"], 72);
    // The named cluster time is a committed optime whose state is what was read.
    let at = (
        v["at"][0].as_u64().unwrap() as u32,
        v["at"][1].as_u64().unwrap() as u32,
    );
    let optime = set
        .committed_oplog()
        .iter()
        .filter_map(OpTime::from_doc)
        .find(|t| t.ts == at)
        .expect("atClusterTime is a committed optime");
    let state = set.committed_state_at(optime).unwrap();
    let mut ids_then: Vec<i64> = state["shop.items"]
        .iter()
        .map(|d| {
            d.get("_id")
                .and_then(|b| b.as_i32().map(i64::from).or(b.as_i64()))
                .unwrap()
        })
        .collect();
    ids_then.sort();
    assert_eq!(ids_then, ids("now"), "read after the writes: their state");
}
