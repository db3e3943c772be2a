//! `tidemark snapshot take` against the simulated MongoDB replica set, which
//! answers `readConcern: {level: "snapshot"}` reads at one cluster time: the
//! snapshot's documents equal the set's majority-committed state at the snapshot's
//! cluster time (the ground truth replays the committed oplog up to it), even with
//! writes going on during the scan and across a resume.

mod snapshot_support;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use mongodb::bson::{doc, oid::ObjectId, Bson, Document};
use mongodb::Client;
use snapshot_support::{read, take, tidemark};
use tidemark::snapshot::{PartRange, RowData, SnapshotInfo, SnapshotRow};
use tidemark_testbed::mongo::OpTime;
use tidemark_testbed::{MongoReplicaSet, ReplSetConfig};

async fn replica_set(third: u8) -> MongoReplicaSet {
    let set = MongoReplicaSet::start(ReplSetConfig {
        base_addr: Ipv4Addr::new(127, 0, third, 1),
        port: 0,
        max_await: Duration::from_millis(200),
        ..ReplSetConfig::default()
    })
    .await
    .expect("replica set starts");
    set.wait_for_primary(Duration::from_secs(30))
        .await
        .expect("a primary");
    set
}

async fn client(set: &MongoReplicaSet) -> Client {
    let mut uri = set.uri();
    uri.push_str("&w=majority");
    Client::with_uri_str(uri).await.unwrap()
}

/// `shop.orders` (2500 int `_id`s: three chunks, one index), `shop.people`
/// (ObjectIds), `shop.mixed` (an int and a string `_id`: one chunk).
async fn fill(c: &Client) {
    let shop = c.database("shop");
    let orders: Vec<Document> = (0..2500)
        .map(|i| doc! {"_id": i, "item": format!("x{i}"), "qty": i % 7, "tags": ["a", "b"]})
        .collect();
    shop.collection::<Document>("orders")
        .insert_many(orders)
        .await
        .unwrap();
    let people: Vec<Document> = (0..30)
        .map(|i| doc! {"_id": ObjectId::new(), "name": format!("p{i}"), "n": f64::from(i) + 0.5})
        .collect();
    shop.collection::<Document>("people")
        .insert_many(people)
        .await
        .unwrap();
    shop.collection::<Document>("mixed")
        .insert_many([doc! {"_id": 1}, doc! {"_id": "a", "v": Bson::Null}])
        .await
        .unwrap();
    shop.run_command(
        doc! {"createIndexes": "orders", "indexes": [{"key": {"item": 1}, "name": "item_1"}]},
    )
    .await
    .unwrap();
}

/// The set's committed documents at the snapshot's cluster time, by namespace.
fn truth_at(set: &MongoReplicaSet, info: &SnapshotInfo) -> BTreeMap<String, Vec<Document>> {
    let at = info.cluster_time.expect("read at one cluster time");
    let ts = ((at.ts >> 32) as u32, at.ts as u32);
    let entry = set
        .committed_oplog()
        .into_iter()
        .filter_map(|e| OpTime::from_doc(&e))
        .find(|t| t.ts == ts)
        .expect("the cluster time is a committed optime");
    set.committed_state_at(entry).unwrap()
}

/// Every namespace's documents equal the truth's, as BSON, and keys are
/// `{"_id": …}` in relaxed Extended JSON (what the log's keys hold).
fn assert_documents_equal(rows: &[SnapshotRow], truth: &BTreeMap<String, Vec<Document>>) {
    let mut ours: BTreeMap<String, Vec<Document>> = BTreeMap::new();
    for r in rows {
        let RowData::Mongo { document } = &r.data else {
            panic!("a document")
        };
        let d = Document::from_reader(&document[..]).unwrap();
        let id = d.get("_id").unwrap().clone().into_relaxed_extjson();
        assert_eq!(r.key, serde_json::json!({"_id": id}).to_string());
        ours.entry(r.namespace.clone()).or_default().push(d);
    }
    let by_id = |docs: &[Document]| -> BTreeMap<String, Document> {
        docs.iter()
            .map(|d| (d.get("_id").unwrap().to_string(), d.clone()))
            .collect()
    };
    let truth: BTreeMap<_, _> = truth
        .iter()
        .filter(|(ns, docs)| ns.starts_with("shop.") && !docs.is_empty())
        .collect();
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        truth.keys().copied().collect::<Vec<_>>()
    );
    for (ns, docs) in truth {
        let (a, b) = (by_id(&ours[ns]), by_id(docs));
        // The first difference only: whole collections make unreadable messages.
        let ids: std::collections::BTreeSet<_> = a.keys().chain(b.keys()).collect();
        for id in ids {
            assert_eq!(a.get(id), b.get(id), "{ns} _id {id}: snapshot vs truth");
        }
    }
}

/// Writes until `child` exits: updates, deletes and inserts, majority-acknowledged.
async fn write_until_exit(c: &Client, child: &mut tokio::process::Child) -> i32 {
    let orders = c.database("shop").collection::<Document>("orders");
    let mut round = 0i32;
    loop {
        let i = (round * 37) % 2500;
        orders
            .update_one(doc! {"_id": i}, doc! {"$inc": {"qty": 100}})
            .await
            .unwrap();
        orders
            .delete_one(doc! {"_id": 2499 - (round % 300)})
            .await
            .unwrap();
        orders
            .insert_one(doc! {"_id": 10_000 + round, "item": "new"})
            .await
            .unwrap();
        round += 1;
        if child.try_wait().unwrap().is_some() {
            return round;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_snapshot_at_one_cluster_time_under_writes() {
    let set = replica_set(111).await;
    let c = client(&set).await;
    fill(&c).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "snapshot",
            "take",
            "--from",
            &set.uri(),
            "--store",
            store.to_str().unwrap(),
            "--parallel",
            "2",
        ])
        .spawn()
        .unwrap();
    let rounds = write_until_exit(&c, &mut child).await;
    assert!(child.wait().await.unwrap().success());
    let (infos, rows) = read(&store, 1);
    let info = &infos[0];
    assert_eq!(info.cluster, "rs0");
    assert!(info.finished.is_some());
    let orders: Vec<_> = info
        .parts
        .iter()
        .filter(|p| p.namespace == "shop.orders")
        .collect();
    assert!(orders.len() >= 3, "chunked by _id: {}", orders.len());
    let mixed: Vec<_> = info
        .parts
        .iter()
        .filter(|p| p.namespace == "shop.mixed")
        .collect();
    assert_eq!(mixed.len(), 1);
    assert_eq!(
        mixed[0].range,
        PartRange::IdChunk {
            from: None,
            to: None
        }
    );
    let schema = &info
        .namespaces
        .iter()
        .find(|n| n.name == "shop.orders")
        .unwrap()
        .schema;
    let schema: serde_json::Value = serde_json::from_str(schema).unwrap();
    let names: Vec<_> = schema["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].clone())
        .collect();
    assert_eq!(names, ["_id_", "item_1"]);
    assert_documents_equal(&rows, &truth_at(&set, info));
    eprintln!("{rounds} write rounds during the scan");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_resume_reads_at_the_same_cluster_time() {
    let set = replica_set(112).await;
    let c = client(&set).await;
    fill(&c).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let uri = set.uri();
    let first = take(&uri, &store, &["--max-parts", "2", "--parallel", "1"]).await;
    assert_eq!(first["finished"], false);
    // Changes between the runs are after the cluster time: not in the snapshot.
    let orders = c.database("shop").collection::<Document>("orders");
    orders
        .delete_many(doc! {"_id": {"$gte": 2000}})
        .await
        .unwrap();
    orders.insert_one(doc! {"_id": 99_999}).await.unwrap();
    let summary = take(&uri, &store, &["--resume"]).await;
    assert_eq!(summary["finished"], true);
    let (infos, rows) = read(&store, 1);
    assert_eq!(infos.len(), 1);
    assert_eq!(rows.len(), 2500 + 30 + 2);
    assert_documents_equal(&rows, &truth_at(&set, &infos[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_bad_input_exits_2() {
    let set = replica_set(113).await;
    let c = client(&set).await;
    fill(&c).await;
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("store");
    let st = st.to_str().unwrap();
    for (args, message) in [
        (vec!["--db", "nosuch"], "unknown database \"nosuch\""),
        (vec!["--collection", "shop.nosuch"], "unknown collection"),
    ] {
        let uri = set.uri();
        let mut all = vec!["snapshot", "take", "--from", &uri, "--store", st];
        all.extend(args);
        let out = tidemark(&all).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.starts_with("tidemark: ") && err.contains(message) && err.lines().count() == 1,
            "{err}"
        );
    }
    let out = tidemark(&[
        "snapshot",
        "take",
        "--from",
        "mongodb://u:pw-SECRET@127.0.0.1:1/?serverSelectionTimeoutMS=300",
        "--store",
        st,
    ])
    .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot connect") && !err.contains("pw-SECRET") && err.lines().count() == 1,
        "{err}"
    );
}

/// `--majority-reads`: no cluster time, each chunk with its own read window, and
/// (nothing written meanwhile) the documents the primary holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_majority_reads_record_a_window_per_chunk() {
    let set = replica_set(114).await;
    let c = client(&set).await;
    fill(&c).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let summary = take(&set.uri(), &store, &["--majority-reads"]).await;
    assert_eq!(summary["finished"], true);
    let (infos, rows) = read(&store, 1);
    let info = &infos[0];
    assert_eq!(info.cluster_time, None);
    for p in &info.parts {
        let end = p.read_end.expect("finished");
        assert!(info.started <= p.read_start && p.read_start <= end);
    }
    let primary = set.primary().unwrap();
    assert_documents_equal(&rows, &set.data(primary));
}
