//! The real Rust `mongodb` driver (3.9.1) through a failover: w:1 inserts
//! acknowledged by a partitioned primary, a new primary elected, the old
//! one healed and rolled back, the driver carrying on against the new
//! primary. The acknowledged inserts missing afterwards are exactly the
//! rolled-back ones; no w:"majority" insert is lost.

use mongodb::bson::{doc, Document};
use mongodb::options::{ClientOptions, CollectionOptions, WriteConcern};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use tidemark_testbed::{MongoReplicaSet, ReplSetConfig};

const WAIT: Duration = Duration::from_secs(90);

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_driver_failover_loses_exactly_the_rolled_back_w1_writes() {
    let set = MongoReplicaSet::start(ReplSetConfig {
        base_addr: Ipv4Addr::new(127, 0, 56, 1),
        port: 0,
        max_await: Duration::from_secs(5),
        election_timeout: Duration::from_secs(3),
        heartbeat_interval: Duration::from_millis(300),
        ..ReplSetConfig::default()
    })
    .await
    .expect("start");
    let mut opts = ClientOptions::parse(format!("{}&serverSelectionTimeoutMS=60000", set.uri()))
        .await
        .expect("uri");
    opts.app_name = Some("tidemark-testbed-failover".into());
    let client = mongodb::Client::with_options(opts).expect("client");
    let db = client.database("t");
    let coll = |w: WriteConcern| {
        db.collection_with_options::<Document>(
            "c",
            CollectionOptions::builder().write_concern(w).build(),
        )
    };
    let (majority, w1) = (coll(WriteConcern::majority()), coll(WriteConcern::nodes(1)));
    let mut acked: Vec<(i32, bool)> = Vec::new(); // (_id, w:majority)
    for i in 1..=3 {
        majority
            .insert_one(doc! { "_id": i })
            .await
            .expect("majority insert");
        acked.push((i, true));
    }
    let old = set.primary().expect("primary");
    set.partition(old).expect("partition");
    for i in 10..=12 {
        w1.insert_one(doc! { "_id": i })
            .await
            .expect("w:1 insert on the partitioned primary");
        acked.push((i, false));
    }
    until("a new primary", || set.primary().is_some_and(|p| p != old)).await;
    let new = set.primary().expect("primary");
    set.heal(old).expect("heal");
    for i in 20..=24 {
        let deadline = Instant::now() + WAIT;
        loop {
            match majority.insert_one(doc! { "_id": i }).await {
                Ok(_) => break,
                Err(e) => {
                    assert!(Instant::now() < deadline, "insert {i} never succeeded: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        acked.push((i, true));
    }
    until("the old primary to roll back and catch up", || {
        !set.rollbacks().is_empty() && set.oplog(old) == set.oplog(new)
    })
    .await;
    let final_ids: BTreeSet<i32> = set
        .documents(new, "t.c")
        .iter()
        .filter_map(|d| d.get_i32("_id").ok())
        .collect();
    let lost: BTreeSet<i32> = acked
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !final_ids.contains(id))
        .collect();
    let rolled_back: BTreeSet<i32> = set
        .rollbacks()
        .iter()
        .flat_map(|r| r.entries.clone())
        .filter(|e| e.get_str("op").ok() == Some("i"))
        .filter_map(|e| e.get_document("o").ok()?.get_i32("_id").ok())
        .collect();
    assert_eq!(lost, rolled_back, "lost acknowledged writes = rolled back");
    assert!(
        set.rollbacks().iter().all(|r| r.member == old),
        "only the old primary had entries the majority never had"
    );
    assert!(lost.is_superset(&BTreeSet::from([10, 11, 12])), "{lost:?}");
    for (id, maj) in &acked {
        if *maj {
            assert!(final_ids.contains(id), "w:majority insert {id} survives");
        }
    }
    // through the driver, from the new primary: a kept write is there, a lost one is not
    let kept = majority.find_one(doc! { "_id": 24 }).await.expect("find");
    assert_eq!(kept, Some(doc! { "_id": 24 }));
    let gone = majority.find_one(doc! { "_id": 10 }).await.expect("find");
    assert_eq!(gone, None);
    client.shutdown().await;
    set.stop();
}
