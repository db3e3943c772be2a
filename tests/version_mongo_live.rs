//! Versions of a MongoDB replica set through a failover with a rollback, cut at
//! moments of a live workload, equal the set's committed state at each.
//!
//! The testbed's 3-member replica set runs the real Rust `mongodb` driver's workload
//! (inserts, `$inc`/`$push`/`$set` updates, a delete, a replacement) at
//! `w:"majority"`, while `tidemark tap --interface lo` records it; then the primary is
//! partitioned and acknowledges `w:1` writes a new primary never gets, the set elects
//! another primary, the old one comes back and rolls those writes back, and the
//! workload goes on. After each step the test notes the time and the set's own ground
//! truth then (`committed_state_at` its newest commit point: every majority-committed
//! oplog entry applied), which tidemark never sees. A version cut at each moment must
//! hold exactly those documents — the rolled-back writes never.

mod live_tap_support;
mod ready_support;
mod require;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use live_tap_support::LiveTap;
use mongodb::bson::{doc, Document};
use mongodb::options::{ClientOptions, CollectionOptions, WriteConcern};
use tidemark::store::{Store, StoreOptions};
use tidemark::version::model::VersionRow;
use tidemark::version::stored;
use tidemark_testbed::{MongoReplicaSet, ReplSetConfig};

const WAIT: Duration = Duration::from_secs(90);

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// `_id` → document, for one collection.
type Docs = BTreeMap<String, Document>;

fn by_id(docs: impl IntoIterator<Item = Document>) -> Docs {
    docs.into_iter()
        .map(|d| (format!("{:?}", d.get("_id")), d))
        .collect()
}

/// The set's committed state now, as the testbed knows it.
fn truth(set: &MongoReplicaSet) -> Docs {
    let state = set
        .committed_state_at(set.newest_commit_point())
        .expect("committed state");
    let docs: Vec<Document> = state
        .get("t.c")
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|d| {
            // The testbed's bson is the same crate and version: round-trip the bytes.
            let bytes = d.to_vec().expect("encode");
            Document::from_reader(bytes.as_slice()).expect("decode")
        })
        .collect();
    by_id(docs)
}

fn version_docs(store: &Store, name: &str) -> Docs {
    let mut docs = Vec::new();
    stored::for_each_row(store, name, |ns, _, row| {
        assert_eq!(ns, "t.c");
        let VersionRow::Mongo { document } = row else {
            panic!("a document");
        };
        docs.push(Document::from_reader(document.as_slice()).expect("BSON"));
        Ok(true)
    })
    .unwrap();
    by_id(docs)
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn versions_through_a_failover_equal_the_committed_state_and_never_hold_rolled_back_writes() {
    if !require::live_capture() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let set = rt
        .block_on(MongoReplicaSet::start(ReplSetConfig {
            base_addr: Ipv4Addr::new(127, 0, 59, 1),
            port: 0,
            max_await: Duration::from_secs(1),
            election_timeout: Duration::from_secs(3),
            heartbeat_interval: Duration::from_millis(300),
            ..ReplSetConfig::default()
        }))
        .expect("start set");
    let port = set.addresses()[0].port();
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let store_s = store_dir.to_str().unwrap().to_string();
    let tap = LiveTap::start("--mongo-port", port, &store_dir);

    let (moments, rolled_back) = rt.block_on(async {
        let opts = ClientOptions::parse(format!("{}&serverSelectionTimeoutMS=60000", set.uri()))
            .await
            .expect("uri");
        let client = mongodb::Client::with_options(opts).expect("client");
        let db = client.database("t");
        let coll = |w: WriteConcern| {
            db.collection_with_options::<Document>(
                "c",
                CollectionOptions::builder().write_concern(w).build(),
            )
        };
        let (majority, w1) = (coll(WriteConcern::majority()), coll(WriteConcern::nodes(1)));
        let mut moments: Vec<(u64, Docs)> = Vec::new();
        let note = |moments: &mut Vec<(u64, Docs)>| {
            let t = now_ns();
            moments.push((t, truth(&set)));
        };

        for i in 1..=5 {
            majority
                .insert_one(doc! { "_id": i, "n": i, "tags": ["a"] })
                .await
                .expect("insert");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        note(&mut moments);
        majority
            .update_one(
                doc! { "_id": 1 },
                doc! { "$inc": { "n": 10 }, "$push": { "tags": "b" } },
            )
            .await
            .expect("update");
        majority
            .update_one(
                doc! { "_id": 2 },
                doc! { "$set": { "s": "two", "sub.x": 1.5 } },
            )
            .await
            .expect("update");
        tokio::time::sleep(Duration::from_millis(50)).await;
        note(&mut moments);
        majority
            .delete_one(doc! { "_id": 3 })
            .await
            .expect("delete");
        majority
            .replace_one(doc! { "_id": 4 }, doc! { "replaced": true })
            .await
            .expect("replace");
        tokio::time::sleep(Duration::from_millis(50)).await;
        note(&mut moments);

        // The primary, cut off, acknowledges w:1 writes nobody else gets.
        let old = set.primary().expect("primary");
        set.partition(old).expect("partition");
        for i in 10..=12 {
            w1.insert_one(doc! { "_id": i, "n": i })
                .await
                .expect("w:1 insert");
        }
        w1.update_one(doc! { "_id": 1 }, doc! { "$inc": { "n": 1000 } })
            .await
            .expect("w:1 update");
        tokio::time::sleep(Duration::from_millis(50)).await;
        note(&mut moments);
        until("a new primary", || set.primary().is_some_and(|p| p != old)).await;
        set.heal(old).expect("heal");
        for i in 20..=22 {
            let deadline = Instant::now() + WAIT;
            loop {
                match majority.insert_one(doc! { "_id": i, "n": i }).await {
                    Ok(_) => break,
                    Err(e) => {
                        assert!(Instant::now() < deadline, "insert {i}: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }
        majority
            .update_one(doc! { "_id": 5 }, doc! { "$inc": { "n": 100 } })
            .await
            .expect("update after");
        until("the old primary to roll back", || {
            !set.rollbacks().is_empty()
        })
        .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        note(&mut moments);
        majority
            .update_one(doc! { "_id": 20 }, doc! { "$set": { "late": true } })
            .await
            .expect("late update");
        tokio::time::sleep(Duration::from_millis(50)).await;
        note(&mut moments);
        let rolled_back: Vec<Document> = set
            .rollbacks()
            .iter()
            .flat_map(|r| r.entries.clone())
            .collect();
        client.shutdown().await;
        (moments, rolled_back)
    });
    assert!(
        rolled_back.len() >= 3,
        "the failover rolled writes back: {rolled_back:?}"
    );
    let last = moments.last().unwrap().0;
    tap.stop_after(last);

    for (i, (t, _)) in moments.iter().enumerate() {
        let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args([
                "version",
                "create",
                "--store",
                &store_s,
                "--name",
                &format!("m{i}"),
                "--at",
            ])
            .arg(format!("{}", *t as f64 / 1e9))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let store = Store::open(&store_dir, &StoreOptions::default().read_only()).unwrap();
    for (i, (_, want)) in moments.iter().enumerate() {
        let got = version_docs(&store, &format!("m{i}"));
        assert_eq!(&got, want, "moment {i}");
        let info = stored::info(&store, &format!("m{i}")).unwrap().unwrap();
        assert!(
            info.uncertain.is_empty(),
            "moment {i}: {:?}",
            info.uncertain
        );
    }
    // The w:1 writes the old primary acknowledged are in no version.
    for i in 10..=12 {
        let key = format!("{:?}", Some(&mongodb::bson::Bson::Int32(i)));
        assert!(
            moments
                .iter()
                .enumerate()
                .all(|(m, _)| !version_docs(&store, &format!("m{m}")).contains_key(&key)),
            "{i}"
        );
    }
}
