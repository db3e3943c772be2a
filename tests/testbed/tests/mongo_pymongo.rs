//! The real `pymongo` driver against a 3-member testbed replica set: SDAM
//! discovery through a replica-set URI, CRUD with duplicate-key and batch
//! write errors, `w:"majority"`, NotWritablePrimary from a secondary; once
//! uncompressed and once each with zlib, snappy and zstd. The ground truth
//! (primary's data and oplog) is then checked against what the script
//! wrote, and the secondaries must converge on the primary's oplog and data
//! through replication. Needs python3 with pymongo (through `require`). Each test uses its own 127.0.0.x
//! addresses and an ephemeral port, so tests can run in parallel.

mod py_support;
#[path = "../../require/mod.rs"]
mod require;

use std::net::Ipv4Addr;
use std::time::Duration;
use tidemark_testbed::mongo::tidemark_mongo::Compressor;
use tidemark_testbed::mongo::ReplSetConfig;
use tidemark_testbed::MongoReplicaSet;

async fn run(base: Ipv4Addr, compressors: &str) {
    if !require::python_modules(&["pymongo"]) {
        return;
    }
    let cfg = ReplSetConfig {
        base_addr: base,
        port: 0,
        max_await: Duration::from_millis(500),
        ..ReplSetConfig::default()
    };
    let set = MongoReplicaSet::start(cfg)
        .await
        .expect("start replica set");
    py_support::run_script(
        "mongo_basic.py",
        &[set.uri(), compressors.to_string()],
        Duration::from_secs(120),
    )
    .await;

    // pymongo silently drops a compressor whose Python module is missing, so the
    // compression check needs that module (a skip of the check, or a CI failure).
    let expected = match compressors {
        "zlib" => Some(Compressor::Zlib),
        "snappy" if require::python_modules(&["snappy"]) => Some(Compressor::Snappy),
        "zstd" if require::python_modules(&["zstandard"]) => Some(Compressor::Zstd),
        "" | "snappy" | "zstd" => None,
        other => panic!("no compressor {other}"),
    };
    if let Some(c) = expected {
        let n = set.shared().members[0].compressed_requests(c);
        assert!(n > 0, "no {c:?}-compressed request reached the primary");
    }

    // Ground truth: the primary holds exactly what the script left behind.
    let docs = set.documents(0, "shop.items");
    let ids: Vec<String> = docs
        .iter()
        .filter_map(|d| d.get("_id"))
        .map(|id| id.to_string())
        .collect();
    assert_eq!(docs.len(), 13, "{ids:?}");
    // Replication: the secondaries converge on the primary's oplog and data,
    // and the commit point reaches the primary's last optime.
    let last = set.last_applied(0);
    let converged = || {
        (1..3).all(|m| set.oplog(m) == set.oplog(0) && set.documents(m, "shop.items") == docs)
            && set.commit_point(0) == last
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !converged() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(converged(), "secondaries did not converge on the primary");
    let oplog = set.oplog(0);
    let count = |op: &str| {
        oplog
            .iter()
            .filter(|e| {
                e.get_str("op").ok() == Some(op) && e.get_str("ns").ok() == Some("shop.items")
            })
            .count()
    };
    // 1 + 10 + auto + 2 (unordered) + 1 (ordered) + 1 upsert + 1 w:majority inserts
    assert_eq!(count("i"), 17);
    // $set/$inc on 1, $unset on 10 and 11, replacement of 2
    assert_eq!(count("u"), 4);
    // 3, then 100, 101, 200
    assert_eq!(count("d"), 4);
    let ts: Vec<_> = oplog
        .iter()
        .filter_map(|e| e.get_timestamp("ts").ok())
        .collect();
    assert_eq!(ts.len(), oplog.len());
    assert!(
        ts.windows(2).all(|w| w[0] < w[1]),
        "oplog timestamps increase"
    );
    set.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymongo_replica_set_uncompressed() {
    run(Ipv4Addr::new(127, 0, 20, 1), "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymongo_replica_set_zlib() {
    run(Ipv4Addr::new(127, 0, 21, 1), "zlib").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymongo_replica_set_snappy() {
    run(Ipv4Addr::new(127, 0, 22, 1), "snappy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymongo_replica_set_zstd() {
    run(Ipv4Addr::new(127, 0, 23, 1), "zstd").await;
}
