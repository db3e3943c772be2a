//! The join contract between a snapshot and the log: a snapshot row's key is
//! exactly the `key` of the logged mutations of the same row, so a version can
//! join them by (namespace, key). A live `tap` on loopback records a driver's
//! writes to the CQL testbed (prepared and simple statements, WHERE clauses in
//! either column order, a static column, text and composite keys); a snapshot is
//! then taken into the same store while the tap is still appending to it; every
//! committed mutation's key must be a snapshot row's key, and every row of the
//! snapshot must have been written under the capture. The same for MongoDB
//! (`{"_id":…}` keys). Needs live-capture rights (through `require`).

mod ready_support;
mod require;
mod snapshot_support;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ready_support::{Lines, READY_WAIT};
use scylla::client::session_builder::SessionBuilder;
use snapshot_support::{read, take};
use tidemark_testbed::{ClusterConfig, CqlCluster};

fn log_lines(store: &str) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["log", "--store", store, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_keys_are_the_logged_keys() {
    join(131, false).await;
}

/// An UPDATE whose WHERE clause names the key columns out of primary-key order
/// (`WHERE line = 0 AND id = 1`, composite partition keys backwards) is keyed in
/// primary-key order all the same, so it joins its snapshot row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_keys_join_updates_written_out_of_key_order() {
    join(132, true).await;
}

/// Taps a workload (WHERE clauses in key order, or `reversed`), snapshots it into
/// the same store while the tap runs, and compares the keys both ways.
async fn join(third: u8, reversed: bool) {
    if !require::live_capture() {
        return;
    }
    let cluster = CqlCluster::start(ClusterConfig {
        nodes: 1,
        base_addr: Ipv4Addr::new(127, 0, third, 1),
        port: 0,
        spare_nodes: 0,
        ..Default::default()
    })
    .await
    .expect("testbed starts");
    let addr = cluster.addresses()[0];
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store_s = store.to_str().unwrap().to_string();
    let port = addr.port().to_string();
    let mut tap = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "tap",
            "--interface",
            "lo",
            "--cql-port",
            &port,
            "--store",
            &store_s,
            "--group",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = Lines::follow(tap.stderr.take().unwrap());
    assert!(
        err.wait_for("tidemark: capturing on lo"),
        "tap never started: {:?}",
        err.rest()
    );

    // The driver connects under the capture: its schema queries and PREPAREs are seen.
    let s = SessionBuilder::new()
        .known_node(addr.to_string())
        .build()
        .await
        .unwrap();
    let q = |text: String| {
        let s = &s;
        async move {
            s.query_unpaged(text.clone(), ())
                .await
                .unwrap_or_else(|e| panic!("{text}: {e}"));
        }
    };
    q("CREATE KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}".into()).await;
    q("CREATE TABLE shop.orders (id int, line int, item text, note text static, PRIMARY KEY (id, line))".into()).await;
    q("CREATE TABLE shop.kv (k text PRIMARY KEY, v int)".into()).await;
    q("CREATE TABLE shop.pair (a int, b text, c int, v int, PRIMARY KEY ((a, b), c))".into()).await;
    let ins = s
        .prepare("INSERT INTO shop.orders (id, line, item) VALUES (?, ?, ?)")
        .await
        .unwrap();
    let upd = s
        .prepare(if reversed {
            "UPDATE shop.orders SET item = ? WHERE line = ? AND id = ?"
        } else {
            "UPDATE shop.orders SET item = ? WHERE id = ? AND line = ?"
        })
        .await
        .unwrap();
    let mut writes = 0;
    for id in 0..10i32 {
        for line in 0..2i32 {
            s.execute_unpaged(&ins, (id, line, format!("i{id}")))
                .await
                .unwrap();
            writes += 1;
        }
        let (a, b) = if reversed { (1i32, id) } else { (id, 1i32) };
        s.execute_unpaged(&upd, ("changed", a, b)).await.unwrap();
        if reversed {
            q(format!(
                "UPDATE shop.orders SET item = 'x' WHERE line = 0 AND id = {id}"
            ))
            .await;
            q(format!(
                "UPDATE shop.pair SET v = 1 WHERE c = {id} AND b = 'b{id}' AND a = {id}"
            ))
            .await;
        } else {
            q(format!(
                "UPDATE shop.orders SET item = 'x' WHERE id = {id} AND line = 0"
            ))
            .await;
            q(format!(
                "UPDATE shop.pair SET v = 1 WHERE a = {id} AND b = 'b{id}' AND c = {id}"
            ))
            .await;
        }
        q(format!("UPDATE shop.orders SET note = 'n' WHERE id = {id}")).await;
        q(format!(
            "INSERT INTO shop.kv (k, v) VALUES ('k''{id}', {id})"
        ))
        .await;
        writes += 5;
    }
    // The snapshot, into the store the tap is appending to.
    let from = format!("cql://{addr}");
    let summary = take(&from, &store, &["--keyspace", "shop"]).await;
    // 20 order rows and 10 partition rows (the static note), 10 kv, 10 pair.
    let (_, rows) = read(&store, 1);
    let keys: Vec<_> = rows
        .iter()
        .map(|r| format!("{} {}", r.namespace, r.key))
        .collect();
    assert_eq!(summary["rows"], 10 * 2 + 10 + 10 + 10, "{keys:?}");

    // Wait (bounded) until every write is in the log, then stop the tap.
    let deadline = Instant::now() + READY_WAIT;
    let mut logged = Vec::new();
    while Instant::now() < deadline {
        logged = log_lines(&store_s)
            .into_iter()
            .filter(|l| {
                l["namespace"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("shop."))
            })
            .filter(|l| matches!(l["op"].as_str(), Some("insert" | "update")))
            .collect();
        if logged.len() >= writes {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Command::new("kill")
        .args(["-TERM", &tap.id().to_string()])
        .status()
        .unwrap();
    let status = tap.wait().unwrap();
    assert!(status.success(), "tap: {:?}", err.rest());
    assert_eq!(logged.len(), writes, "every write logged");

    let (_, rows) = read(&store, 1);
    let snap: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r.namespace.clone(), r.key.clone()))
        .collect();
    // The keys exactly as stored in the log's envelopes.
    let st = tidemark::store::Store::open(
        &store,
        &tidemark::store::StoreOptions::default().read_only(),
    )
    .unwrap();
    let reader = st.reader().unwrap();
    let log: BTreeSet<(String, String)> = reader
        .query(&tidemark::store::Query::all())
        .unwrap()
        .map(Result::unwrap)
        .map(|e| e.mutation)
        .filter(|m| m.namespace.starts_with("shop.") && m.op != tidemark::store::WriteOp::Ddl)
        .filter(|m| m.outcome == tidemark::store::Outcome::Committed)
        .map(|m| (m.namespace, m.key))
        .collect();
    let missing: Vec<_> = log.difference(&snap).collect();
    assert!(
        missing.is_empty(),
        "logged keys with no snapshot row: {missing:?}"
    );
    let unlogged: Vec<_> = snap.difference(&log).collect();
    assert!(
        unlogged.is_empty(),
        "snapshot rows never logged: {unlogged:?}"
    );
}

/// The same contract for MongoDB: a tapped driver's inserts (int, string and
/// ObjectId `_id`s) and updates by `_id`, then a snapshot into the same store
/// while the tap runs; every committed mutation's key is a document's key and back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_snapshot_keys_are_the_logged_keys() {
    use mongodb::bson::{doc, oid::ObjectId, Document};
    if !require::live_capture() {
        return;
    }
    let set = tidemark_testbed::MongoReplicaSet::start(tidemark_testbed::ReplSetConfig {
        base_addr: Ipv4Addr::new(127, 0, 133, 1),
        port: 0,
        max_await: Duration::from_millis(200),
        ..Default::default()
    })
    .await
    .expect("replica set starts");
    set.wait_for_primary(Duration::from_secs(30))
        .await
        .expect("a primary");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store_s = store.to_str().unwrap().to_string();
    let port = set.addresses()[0].port().to_string();
    let mut tap = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "tap",
            "--interface",
            "lo",
            "--mongo-port",
            &port,
            "--store",
            &store_s,
            "--group",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = Lines::follow(tap.stderr.take().unwrap());
    assert!(
        err.wait_for("tidemark: capturing on lo"),
        "tap never started: {:?}",
        err.rest()
    );
    let c = mongodb::Client::with_uri_str(format!("{}&w=majority", set.uri()))
        .await
        .unwrap();
    let coll = c.database("shop").collection::<Document>("items");
    let mut writes = 0;
    for i in 0..10i32 {
        coll.insert_one(doc! {"_id": i, "v": i}).await.unwrap();
        coll.insert_one(doc! {"_id": format!("s{i}"), "v": i})
            .await
            .unwrap();
        coll.insert_one(doc! {"_id": ObjectId::new(), "v": i})
            .await
            .unwrap();
        coll.update_one(doc! {"_id": i}, doc! {"$set": {"w": 1}})
            .await
            .unwrap();
        writes += 4;
    }
    let summary = take(&set.uri(), &store, &["--db", "shop"]).await;
    assert_eq!(summary["rows"], 30);

    let deadline = Instant::now() + READY_WAIT;
    let count = || {
        log_lines(&store_s)
            .into_iter()
            .filter(|l| l["namespace"] == "shop.items")
            .filter(|l| l["outcome"] == "committed")
            .count()
    };
    while count() < writes && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    Command::new("kill")
        .args(["-TERM", &tap.id().to_string()])
        .status()
        .unwrap();
    assert!(tap.wait().unwrap().success(), "tap: {:?}", err.rest());

    let (_, rows) = read(&store, 1);
    let snap: BTreeSet<String> = rows.iter().map(|r| r.key.clone()).collect();
    let st = tidemark::store::Store::open(
        &store,
        &tidemark::store::StoreOptions::default().read_only(),
    )
    .unwrap();
    let log: BTreeSet<String> = st
        .reader()
        .unwrap()
        .query(&tidemark::store::Query::all())
        .unwrap()
        .map(Result::unwrap)
        .map(|e| e.mutation)
        .filter(|m| m.namespace == "shop.items" && m.outcome == tidemark::store::Outcome::Committed)
        .map(|m| m.key)
        .collect();
    assert_eq!(log.len(), 30, "{log:?}");
    assert_eq!(log, snap);
}
