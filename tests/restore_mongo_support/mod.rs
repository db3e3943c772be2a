//! The source both restore test binaries restore from: a tapped 3-member testbed
//! replica set runs a workload through the real `mongodb` driver (an index, inserts,
//! `$inc`/`$push`/`$set` updates, documents of many BSON types, a few thousand bulk
//! documents), then a failover in
//! which the cut-off primary acknowledges `w:1` writes that are rolled back; a version
//! is cut after it. The references are the set's own committed state at the end
//! (the testbed's ground truth, which tidemark never sees) and the rolled-back `_id`s.
//! Needs `live_tap_support`, `ready_support` and `require` beside it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mongodb::bson::{doc, Bson, Document};
use mongodb::options::{ClientOptions, CollectionOptions, ReadConcern, WriteConcern};
use mongodb::{Client, IndexModel};
use tidemark_testbed::{MongoReplicaSet, ReplSetConfig};

use crate::live_tap_support::LiveTap;

/// `_id` (debug spelling) → document.
pub type Docs = BTreeMap<String, Document>;

/// The version's name.
pub const VERSION: &str = "v1";
/// Documents in `t.bulk`.
pub const BULK: i32 = 3000;

const WAIT: Duration = Duration::from_secs(90);

/// A store holding version [`VERSION`] of the source set, and what the set held.
pub struct Source {
    pub dir: tempfile::TempDir,
    pub store: PathBuf,
    /// `t.c`, `t.d`, `t.bulk` as the set committed them.
    pub truth: BTreeMap<String, Docs>,
    /// `_id`s of `t.c` the failover rolled back.
    pub rolled_back: Vec<String>,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

pub fn id_of(d: &Document) -> String {
    format!("{:?}", d.get("_id"))
}

pub fn by_id(docs: impl IntoIterator<Item = Document>) -> Docs {
    docs.into_iter().map(|d| (id_of(&d), d)).collect()
}

fn truth(set: &MongoReplicaSet) -> BTreeMap<String, Docs> {
    let state = set
        .committed_state_at(set.newest_commit_point())
        .expect("committed state");
    ["t.c", "t.d", "t.bulk"]
        .iter()
        .map(|ns| {
            let docs = state
                .get(*ns)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|d| {
                    let bytes = d.to_vec().expect("encode");
                    Document::from_reader(bytes.as_slice()).expect("decode")
                });
            (ns.to_string(), by_id(docs))
        })
        .collect()
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Builds the source on a set at 127.0.`third`.1-3 (the set is stopped after).
pub fn build(rt: &tokio::runtime::Runtime, third: u8) -> Source {
    let set = rt
        .block_on(MongoReplicaSet::start(ReplSetConfig {
            base_addr: Ipv4Addr::new(127, 0, third, 1),
            port: 0,
            max_await: Duration::from_secs(1),
            election_timeout: Duration::from_secs(3),
            heartbeat_interval: Duration::from_millis(300),
            ..ReplSetConfig::default()
        }))
        .expect("start set");
    let port = set.addresses()[0].port();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let tap = LiveTap::start("--mongo-port", port, &store);
    let (end, rolled_back) = rt.block_on(workload(&set));
    tap.stop_after(end);
    let truth = truth(&set);
    set.stop();
    let out = tidemark(&[
        "version",
        "create",
        "--store",
        store.to_str().unwrap(),
        "--name",
        VERSION,
        "--at",
        &format!("{}", end as f64 / 1e9),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in &rolled_back {
        assert!(
            !truth["t.c"].contains_key(id),
            "{id} rolled back yet in the truth"
        );
    }
    Source {
        dir,
        store,
        truth,
        rolled_back,
    }
}

/// The workload; returns the moment after it and the rolled-back `_id`s.
async fn workload(set: &MongoReplicaSet) -> (u64, Vec<String>) {
    let opts = ClientOptions::parse(format!("{}&serverSelectionTimeoutMS=60000", set.uri()))
        .await
        .expect("uri");
    let client = Client::with_options(opts).expect("client");
    let db = client.database("t");
    let coll = |name: &str, w: WriteConcern| {
        db.collection_with_options::<Document>(
            name,
            CollectionOptions::builder().write_concern(w).build(),
        )
    };
    let (c, w1) = (
        coll("c", WriteConcern::majority()),
        coll("c", WriteConcern::nodes(1)),
    );
    c.create_index(IndexModel::builder().keys(doc! {"n": 1}).build())
        .await
        .expect("index");
    for i in 1..=5 {
        c.insert_one(doc! {"_id": i, "n": i, "tags": ["a"]})
            .await
            .expect("insert");
    }
    c.update_one(
        doc! {"_id": 1},
        doc! {"$inc": {"n": 10}, "$push": {"tags": "b"}},
    )
    .await
    .expect("update");
    c.update_one(doc! {"_id": 2}, doc! {"$set": {"s": "two", "sub.x": 1.5}})
        .await
        .expect("update");
    c.delete_one(doc! {"_id": 3}).await.expect("delete");
    let d: Vec<Document> = (0..20)
        .map(|i| {
            doc! {
                "_id": format!("d{i:02}"), "v": i, "nested": {"z": i64::from(i), "a": [1, 2.5]},
                "when": mongodb::bson::DateTime::from_millis(1_700_000_000_000 + i64::from(i)),
                "oid": mongodb::bson::oid::ObjectId::from_bytes([i as u8; 12]),
                "bin": mongodb::bson::Binary { subtype: mongodb::bson::spec::BinarySubtype::Generic, bytes: vec![0, i as u8, 255] },
                "none": Bson::Null, "yes": i % 2 == 0, "big": 1i64 << 40,
            }
        })
        .collect();
    coll("d", WriteConcern::majority())
        .insert_many(d)
        .await
        .expect("d");
    let pad = "x".repeat(150);
    for chunk in (0..BULK).collect::<Vec<_>>().chunks(1000) {
        let docs: Vec<Document> = chunk
            .iter()
            .map(|&i| doc! {"_id": i, "pad": &pad, "k": i % 10})
            .collect();
        coll("bulk", WriteConcern::majority())
            .insert_many(docs)
            .await
            .expect("bulk");
    }
    // The primary, cut off, acknowledges w:1 writes nobody else gets.
    let old = set.primary().expect("primary");
    set.partition(old).expect("partition");
    for i in 10..=12 {
        w1.insert_one(doc! {"_id": i, "n": i})
            .await
            .expect("w:1 insert");
    }
    w1.update_one(doc! {"_id": 1}, doc! {"$inc": {"n": 1000}})
        .await
        .expect("w:1 update");
    until("a new primary", || set.primary().is_some_and(|p| p != old)).await;
    set.heal(old).expect("heal");
    for i in 20..=22 {
        let deadline = Instant::now() + WAIT;
        loop {
            match c.insert_one(doc! {"_id": i, "n": i}).await {
                Ok(_) => break,
                Err(e) => {
                    assert!(Instant::now() < deadline, "insert {i}: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    until("the old primary to roll back", || {
        !set.rollbacks().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let end = now_ns();
    let rolled_back: Vec<String> = (10..=12)
        .map(|i| format!("{:?}", Some(&Bson::Int32(i))))
        .collect();
    client.shutdown().await;
    (end, rolled_back)
}

/// Runs the tidemark binary.
pub fn tidemark(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .output()
        .expect("run tidemark")
}

pub fn store_arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every document of `db.coll`, read through the driver at majority.
pub async fn read_all(client: &Client, db: &str, coll: &str) -> Docs {
    use futures_util::TryStreamExt;
    let c = client.database(db).collection::<Document>(coll);
    let docs: Vec<Document> = c
        .find(doc! {})
        .read_concern(ReadConcern::majority())
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("read");
    by_id(docs)
}

/// The names of `db.coll`'s indexes.
pub async fn index_names(client: &Client, db: &str, coll: &str) -> Vec<String> {
    let mut names = client
        .database(db)
        .collection::<Document>(coll)
        .list_index_names()
        .await
        .expect("indexes");
    names.sort();
    names
}

/// The last JSON line of a command's stdout with `"type": ty`.
pub fn json_line(out: &Output, ty: &str) -> serde_json::Value {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == ty)
        .unwrap_or_else(|| panic!("no {ty} line in {}", String::from_utf8_lossy(&out.stdout)))
}
