//! The real Rust `mongodb` driver (3.9.1) against the sharded testbed
//! through its routers: routed CRUD on a range-sharded and a hashed
//! collection, bulk inserts spanning both shards (ordered and unordered,
//! with a duplicate key on each shard: the write-error indexes are the
//! client's), broadcast multi-updates and deletes, findAndModify, sorted
//! reads, retryable writes retried through the router (applied once); and a
//! router with a stale chunk map that gets StaleConfig from a shard,
//! refreshes from the config servers and retries. Everything read back
//! through the router is compared with the cluster's ground truth: the
//! logical state, and each shard's own documents (every document is on
//! the shard the chunk map names, none elsewhere).

use futures_util::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::ErrorKind;
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection};
use std::net::Ipv4Addr;
use std::time::Duration;
use tidemark_testbed::mongo::sharded::{MongoShardedCluster, ShardedConfig};

const T: Duration = Duration::from_secs(120);

/// The testbed's bson as the driver's (both bson 3.1: the bytes round-trip).
fn conv(d: &tidemark_testbed::mongo::tidemark_mongo::bson::Document) -> Document {
    let bytes = d.to_vec().expect("encode");
    Document::from_reader(&mut bytes.as_slice()).expect("decode")
}

async fn cluster(third_octet: u8, routers: usize) -> MongoShardedCluster {
    MongoShardedCluster::start(ShardedConfig {
        shards: 2,
        members: 3,
        routers,
        base_addr: Ipv4Addr::new(127, 0, third_octet, 1),
        range_deleter_delay: Duration::from_millis(300),
        ..ShardedConfig::default()
    })
    .await
    .expect("start the sharded cluster")
}

async fn client(uri: &str) -> Client {
    let uri = format!("{uri}?serverSelectionTimeoutMS=20000&heartbeatFrequencyMS=500");
    Client::with_options(ClientOptions::parse(&uri).await.expect("uri")).expect("client")
}

async fn admin(c: &Client, cmd: Document) -> Document {
    c.database("admin")
        .run_command(cmd.clone())
        .await
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

fn error_indexes(e: &mongodb::error::Error) -> Vec<usize> {
    match &*e.kind {
        ErrorKind::InsertMany(ime) => ime.write_errors.iter().flatten().map(|w| w.index).collect(),
        other => panic!("expected a bulk write error, got {other:?}"),
    }
}

/// Every document of `ns` read through the router, sorted by `_id`
/// (the router's own sort), equals the logical ground truth; every shard
/// holds exactly the documents the chunk map gives it (no orphans left).
async fn check_against_truth(c: &Client, cl: &MongoShardedCluster, ns: &str) -> usize {
    let (db, coll) = ns.split_once('.').unwrap();
    let read: Vec<Document> = c
        .database(db)
        .collection::<Document>(coll)
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("cursor");
    let truth: Vec<Document> = cl
        .logical_state()
        .get(ns)
        .map(|v| v.iter().map(conv).collect())
        .unwrap_or_default();
    assert_eq!(
        read, truth,
        "{ns}: the router's read differs from the logical state"
    );
    assert!(
        cl.wait_range_deletions(Duration::from_secs(20)).await,
        "the range deleter did not run within 20 s"
    );
    let table = cl
        .inner()
        .config
        .catalog()
        .tables
        .get(ns)
        .cloned()
        .expect("sharded");
    let mut total = 0;
    for s in cl.shards() {
        let docs = cl.shard_raw_state(&s.id).remove(ns).unwrap_or_default();
        for d in &docs {
            assert_eq!(
                table.owner_of_doc(d),
                Some(s.id.as_str()),
                "{ns}: {d} is on {} but the chunk map names another shard",
                s.id
            );
        }
        total += docs.len();
    }
    assert_eq!(
        total,
        truth.len(),
        "{ns}: shards hold other documents than the logical state"
    );
    total
}

async fn routed_crud(cl: &MongoShardedCluster) {
    // one port for the whole cluster (these addresses are this test's own)
    let port = cl.router_addresses()[0].port();
    let mut addrs = cl.config_servers().addresses();
    addrs.extend(cl.shards().iter().flat_map(|s| s.set.addresses()));
    assert!(
        addrs.iter().all(|a| a.port() == port),
        "{addrs:?} vs {port}"
    );
    let c = client(&cl.uri()).await;
    let hello = admin(&c, doc! { "hello": 1 }).await;
    assert_eq!(hello.get_str("msg").ok(), Some("isdbgrid"), "{hello}");
    assert!(
        !hello.contains_key("setName"),
        "a router names no replica set: {hello}"
    );
    let shards = admin(&c, doc! { "listShards": 1 }).await;
    assert_eq!(
        shards.get_array("shards").map(|s| s.len()).ok(),
        Some(2),
        "{shards}"
    );

    admin(&c, doc! { "enableSharding": "app" }).await;
    admin(
        &c,
        doc! { "shardCollection": "app.ranged", "key": { "k": 1 } },
    )
    .await;
    admin(&c, doc! { "split": "app.ranged", "middle": { "k": 100 } }).await;
    admin(
        &c,
        doc! { "moveChunk": "app.ranged", "find": { "k": 150 }, "to": "shard1" },
    )
    .await;
    admin(
        &c,
        doc! { "shardCollection": "app.hashed", "key": { "k": "hashed" } },
    )
    .await;

    let mut names = c
        .database("app")
        .list_collection_names()
        .await
        .expect("listCollections");
    names.sort();
    assert_eq!(
        names,
        vec!["hashed", "ranged"],
        "shardCollection created the collections"
    );
    let ranged: Collection<Document> = c.database("app").collection("ranged");
    let docs: Vec<Document> = (0..200)
        .map(|i| doc! { "_id": i, "k": i, "v": 0 })
        .collect();
    let r = ranged
        .insert_many(docs)
        .await
        .expect("insert spanning shards");
    assert_eq!(r.inserted_ids.len(), 200);
    let on = |s: &str| {
        cl.shard_raw_state(s)
            .remove("app.ranged")
            .unwrap_or_default()
    };
    assert_eq!(on("shard0").len(), 100, "k < 100 lives on shard0");
    assert_eq!(on("shard1").len(), 100, "k >= 100 lives on shard1");

    // unordered: a duplicate on each shard; indexes are the client's
    let e = ranged
        .insert_many(vec![
            doc! { "_id": 1000, "k": 10 },
            doc! { "_id": 5, "k": 5 },
            doc! { "_id": 1001, "k": 150 },
            doc! { "_id": 150, "k": 150 },
            doc! { "_id": 1002, "k": 20 },
        ])
        .ordered(false)
        .await
        .expect_err("duplicates");
    assert_eq!(error_indexes(&e), vec![1, 3]);
    // ordered: stops at the first error, the statements after it never run
    let e = ranged
        .insert_many(vec![
            doc! { "_id": 2000, "k": 30 },
            doc! { "_id": 2001, "k": 160 },
            doc! { "_id": 7, "k": 7 },
            doc! { "_id": 2002, "k": 40 },
        ])
        .await
        .expect_err("duplicate");
    assert_eq!(error_indexes(&e), vec![2]);
    for (id, present) in [
        (1000, true),
        (1001, true),
        (1002, true),
        (2000, true),
        (2001, true),
        (2002, false),
    ] {
        let found = ranged
            .find_one(doc! { "_id": id })
            .await
            .expect("find")
            .is_some();
        assert_eq!(found, present, "_id {id}");
    }

    // broadcast multi-update, targeted update, broadcast delete
    let r = ranged
        .update_many(doc! {}, doc! { "$inc": { "v": 1 } })
        .await
        .expect("update_many");
    assert_eq!((r.matched_count, r.modified_count), (205, 205));
    let r = ranged
        .update_one(doc! { "k": 150 }, doc! { "$set": { "tag": "x" } })
        .await
        .expect("update_one");
    assert_eq!(r.matched_count, 1);
    let r = ranged
        .update_one(doc! { "k": 555 }, doc! { "$set": { "new": true } })
        .upsert(true)
        .await
        .expect("targeted upsert");
    assert!(r.upserted_id.is_some());
    let r = ranged
        .delete_many(doc! { "k": { "$gte": 190, "$lt": 200 } })
        .await
        .expect("delete_many");
    assert_eq!(r.deleted_count, 10);
    let fam = ranged
        .find_one_and_update(doc! { "k": 42 }, doc! { "$set": { "fam": 1 } })
        .return_document(mongodb::options::ReturnDocument::After)
        .await
        .expect("findAndModify")
        .expect("a document");
    assert_eq!(fam.get_i32("fam").ok(), Some(1));
    let top: Vec<Document> = ranged
        .find(doc! { "k": { "$lt": 1000 } })
        .sort(doc! { "k": -1 })
        .limit(3)
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("cursor");
    let ks: Vec<i32> = top.iter().map(|d| d.get_i32("k").unwrap()).collect();
    assert_eq!(ks, vec![555, 189, 188]);
    let n = ranged.count_documents(doc! {}).await.expect("count");
    assert_eq!(n as usize, check_against_truth(&c, cl, "app.ranged").await);

    // hashed: consecutive keys spread over both shards
    let hashed: Collection<Document> = c.database("app").collection("hashed");
    hashed
        .insert_many((0..100).map(|i| doc! { "_id": i, "k": i }))
        .await
        .expect("hashed insert");
    for s in ["shard0", "shard1"] {
        let n = cl
            .shard_raw_state(s)
            .remove("app.hashed")
            .unwrap_or_default()
            .len();
        assert!(n > 10, "{s} got only {n} of 100 hashed documents");
    }
    let r = hashed
        .delete_one(doc! { "k": 17 })
        .await
        .expect("targeted delete");
    assert_eq!(r.deleted_count, 1);
    assert_eq!(check_against_truth(&c, cl, "app.hashed").await, 99);

    // retryable writes through the router: the same lsid + txnNumber twice
    // is applied once, and the router forwarded the session to the shard
    let mut s = c.start_session().await.expect("session");
    for _ in 0..2 {
        let r = c
            .database("app")
            .run_command(doc! { "insert": "ranged", "documents": [{ "_id": 3000, "k": 3000 }, { "_id": 3001, "k": 1 }], "txnNumber": 1_000_007i64 })
            .session(&mut s)
            .await
            .expect("retryable insert");
        assert_eq!(r.get_i32("n").ok(), Some(2), "{r}");
    }
    for _ in 0..2 {
        let r = c
            .database("app")
            .run_command(doc! { "update": "ranged", "updates": [{ "q": { "k": 3000 }, "u": { "$inc": { "v": 1 } } }], "txnNumber": 1_000_008i64 })
            .session(&mut s)
            .await
            .expect("retryable update");
        assert_eq!(r.get_i32("nModified").ok(), Some(1), "{r}");
    }
    drop(s);
    let d = ranged
        .find_one(doc! { "_id": 3000 })
        .await
        .expect("find")
        .expect("doc");
    assert_eq!(
        d.get_i32("v").ok(),
        Some(1),
        "the retried update applied once: {d}"
    );
    let s1 = &cl.shards()[1];
    let oplog = s1.set.oplog(s1.set.primary().expect("primary"));
    let entries: Vec<_> = oplog
        .iter()
        .filter(|e| e.get_str("ns").ok() == Some("app.ranged"))
        .filter(|e| e.get_document("o").ok().and_then(|o| o.get("_id")) == Some(&Bson::Int32(3000)))
        .collect();
    assert_eq!(
        entries.len(),
        1,
        "one insert of _id 3000 on shard1: {entries:?}"
    );
    assert_eq!(
        entries[0].get_i64("txnNumber").ok(),
        Some(1_000_007),
        "the router forwarded the session"
    );
    check_against_truth(&c, cl, "app.ranged").await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_crud_bulk_and_retryable_writes_match_the_ground_truth() {
    let cl = cluster(150, 1).await;
    tokio::time::timeout(T, routed_crud(&cl))
        .await
        .expect("workload timed out");
}

async fn stale_router(cl: &MongoShardedCluster) {
    let [r0, r1] = [cl.routers[0].addr, cl.routers[1].addr];
    let c0 = client(&format!("mongodb://{r0}/")).await;
    let c1 = client(&format!("mongodb://{r1}/")).await;
    admin(&c0, doc! { "shardCollection": "st.c", "key": { "k": 1 } }).await;
    admin(&c0, doc! { "split": "st.c", "middle": { "k": 0 } }).await;
    let coll1: Collection<Document> = c1.database("st").collection("c");
    // router 1 learns the map (both chunks on shard0)
    coll1
        .insert_one(doc! { "_id": 1, "k": 5 })
        .await
        .expect("insert");
    let (refreshes_before, stale_before) = cl.router_counters()[1];
    // router 0 moves [0, MaxKey) to shard1; router 1 does not know
    admin(
        &c0,
        doc! { "moveChunk": "st.c", "find": { "k": 5 }, "to": "shard1" },
    )
    .await;
    let cached = cl.routers[1]
        .cached_table("st.c")
        .flatten()
        .expect("cached");
    assert_eq!(
        cached.owner(&Bson::Int32(5)),
        Some("shard0"),
        "router 1's map is stale"
    );
    // its write goes to shard0, which answers StaleConfig; router 1 refreshes and retries
    coll1
        .insert_one(doc! { "_id": 2, "k": 6 })
        .await
        .expect("insert through the stale router");
    let (refreshes, stale) = cl.router_counters()[1];
    assert_eq!(stale - stale_before, 1, "one StaleConfig retry");
    assert_eq!(
        refreshes - refreshes_before,
        1,
        "one refresh from the config servers"
    );
    assert!(cl
        .stale_replies()
        .iter()
        .any(|(s, n)| s == "shard0" && *n >= 1));
    let on1: Vec<_> = cl
        .shard_raw_state("shard1")
        .remove("st.c")
        .unwrap_or_default();
    assert!(
        on1.iter().any(|d| d.get("_id") == Some(&Bson::Int32(2))),
        "the retried write landed on the new owner"
    );
    // the shard's own answer to a stale version, seen directly: write batches
    // are refused statement by statement (none runs), other commands whole
    let s0 = &cl.shards()[0];
    let direct = format!(
        "mongodb://{}/?directConnection=true&serverSelectionTimeoutMS=20000",
        s0.set.addresses()[s0.set.primary().unwrap()]
    );
    let d =
        Client::with_options(ClientOptions::parse(&direct).await.expect("uri")).expect("client");
    let old = doc! { "e": cached.epoch, "t": cached.timestamp, "v": mongodb::bson::Timestamp { time: cached.shard_version("shard0").0, increment: 0 } };
    for (ordered, indexes) in [(true, vec![0]), (false, vec![0, 1])] {
        let r = d
            .database("st")
            .run_command(doc! { "insert": "c", "documents": [{ "_id": 90, "k": 90 }, { "_id": 91, "k": 91 }], "ordered": ordered, "shardVersion": old.clone() })
            .await
            .expect("a refused batch is ok: 1");
        let errs = r.get_array("writeErrors").expect("write errors");
        let got: Vec<i32> = errs
            .iter()
            .filter_map(|e| e.as_document()?.get_i32("index").ok())
            .collect();
        assert_eq!(got, indexes, "ordered {ordered}: {r}");
        let e0 = errs[0].as_document().unwrap();
        assert_eq!(e0.get_i32("code").ok(), Some(13388));
        assert_eq!(
            e0.get_document("errInfo").unwrap().get_str("shardId").ok(),
            Some("shard0")
        );
        assert_eq!(r.get_i32("n").ok(), Some(0));
    }
    let e = d
        .database("st")
        .run_command(doc! { "find": "c", "shardVersion": old.clone() })
        .await
        .expect_err("a stale find fails");
    assert!(e.to_string().contains("StaleConfig"), "{e}");
    d.shutdown().await;
    // a stale read: router 1 is fresh now; make router 0 stale instead by moving back through router 1
    admin(
        &c1,
        doc! { "moveChunk": "st.c", "find": { "k": 5 }, "to": "shard0" },
    )
    .await;
    let (_, stale0) = cl.router_counters()[0];
    let got: Vec<Document> = c0
        .database("st")
        .collection::<Document>("c")
        .find(doc! { "k": { "$gte": 0 } })
        .sort(doc! { "_id": 1 })
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("cursor");
    assert_eq!(
        got,
        vec![doc! { "_id": 1, "k": 5 }, doc! { "_id": 2, "k": 6 }],
        "no document twice, none missing"
    );
    assert!(
        cl.router_counters()[0].1 > stale0,
        "router 0's read went stale and was retried"
    );
    check_against_truth(&c0, cl, "st.c").await;
    // the chunk map history has every change, with increasing config optimes
    let h: Vec<_> = cl
        .chunk_map_history()
        .into_iter()
        .filter(|h| h.ns == "st.c")
        .collect();
    let what: Vec<&str> = h.iter().map(|h| h.what.as_str()).collect();
    assert_eq!(
        what,
        vec!["shardCollection", "split", "moveChunk", "moveChunk"]
    );
    assert!(h.windows(2).all(|w| w[0].optime < w[1].optime));
    assert!(
        h.iter().all(|c| c.optime <= cl.config_commit_point()),
        "every change is majority-committed on the config servers"
    );
    c0.shutdown().await;
    c1.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_router_gets_stale_config_refreshes_and_retries() {
    let cl = cluster(151, 2).await;
    tokio::time::timeout(T, stale_router(&cl))
        .await
        .expect("timed out");
}

/// An ordered insert whose first statement goes to a shard that answers
/// StaleConfig and whose second goes to another shard: the router refreshes and
/// re-targets both (it used to re-target only the stale batch and drop the
/// later one, answering `n: 1` for two statements with no error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_ordered_batch_retargets_every_later_statement() {
    let cl = cluster(167, 2).await;
    tokio::time::timeout(T, async {
        let [r0, r1] = [cl.routers[0].addr, cl.routers[1].addr];
        let c0 = client(&format!("mongodb://{r0}/")).await;
        let c1 = client(&format!("mongodb://{r1}/")).await;
        admin(&c0, doc! { "shardCollection": "so.c", "key": { "k": 1 } }).await;
        admin(&c0, doc! { "split": "so.c", "middle": { "k": 0 } }).await;
        admin(
            &c0,
            doc! { "moveChunk": "so.c", "find": { "k": 5 }, "to": "shard1" },
        )
        .await;
        let coll1: Collection<Document> = c1.database("so").collection("c");
        // router 1 learns the map: [MinKey, 0) on shard0, [0, MaxKey) on shard1
        coll1
            .insert_one(doc! { "_id": 1, "k": 5 })
            .await
            .expect("insert");
        // router 0 moves [0, MaxKey) back to shard0; router 1 does not know
        admin(
            &c0,
            doc! { "moveChunk": "so.c", "find": { "k": 5 }, "to": "shard0" },
        )
        .await;
        // k 6: router 1 sends it to shard1 (stale); k -6 to shard0, a second
        // batch. Sent as a command: the Rust driver's insert_many sends the
        // documents a reply's `n` did not count again, hiding a short count.
        let reply = c1
            .database("so")
            .run_command(doc! {
                "insert": "c",
                "documents": [{ "_id": 10, "k": 6 }, { "_id": 11, "k": -6 }],
                "ordered": true,
            })
            .await
            .expect("ordered insert through the stale router");
        assert_eq!(reply.get_i32("n").ok(), Some(2), "{reply}");
        assert!(reply.get("writeErrors").is_none(), "{reply}");
        let ids = |shard: &str| {
            cl.shard_raw_state(shard)
                .remove("so.c")
                .unwrap_or_default()
                .iter()
                .filter_map(|d| d.get_i32("_id").ok())
                .collect::<std::collections::BTreeSet<_>>()
        };
        // (shard1 may still hold _id 1 as an orphan until its range deleter runs)
        let (on0, on1) = (ids("shard0"), ids("shard1"));
        assert!(
            [1, 10, 11].iter().all(|i| on0.contains(i)),
            "every statement landed on shard0: {on0:?}"
        );
        assert!(!on1.contains(&10) && !on1.contains(&11), "{on1:?}");
        let (_, stale) = cl.router_counters()[1];
        assert!(stale >= 1, "the first batch went stale");
    })
    .await
    .expect("timed out");
}

fn entries_for(oplog: &[Document], pred: impl Fn(&Document) -> bool) -> Vec<&Document> {
    oplog.iter().filter(|e| pred(e)).collect()
}

fn applyops_ids(e: &Document) -> Vec<Bson> {
    e.get_document("o")
        .and_then(|o| o.get_array("applyOps"))
        .into_iter()
        .flatten()
        .filter_map(Bson::as_document)
        .filter_map(|op| {
            op.get_document("o2")
                .ok()
                .and_then(|o2| o2.get("_id"))
                .or_else(|| op.get_document("o").ok().and_then(|o| o.get("_id")))
                .cloned()
        })
        .collect()
}

async fn transactions(cl: &MongoShardedCluster) {
    let c = client(&cl.uri()).await;
    admin(&c, doc! { "shardCollection": "tx.c", "key": { "k": 1 } }).await;
    admin(&c, doc! { "split": "tx.c", "middle": { "k": 100 } }).await;
    admin(
        &c,
        doc! { "moveChunk": "tx.c", "find": { "k": 150 }, "to": "shard1" },
    )
    .await;
    let coll: Collection<Document> = c.database("tx").collection("c");
    coll.insert_many((0..200).map(|i| doc! { "_id": i, "k": i }))
        .await
        .expect("insert");

    // a transaction touching both shards: two-phase commit through shard0
    let mut s = c.start_session().await.expect("session");
    s.start_transaction().await.expect("start");
    coll.insert_one(doc! { "_id": 5000, "k": 10 })
        .session(&mut s)
        .await
        .expect("insert on shard0");
    coll.insert_one(doc! { "_id": 5001, "k": 150 })
        .session(&mut s)
        .await
        .expect("insert on shard1");
    coll.update_one(doc! { "k": 42 }, doc! { "$set": { "t": 1 } })
        .session(&mut s)
        .await
        .expect("update on shard0");
    coll.delete_one(doc! { "k": 160 })
        .session(&mut s)
        .await
        .expect("delete on shard1");
    let own = coll
        .count_documents(doc! { "_id": { "$in": [5000, 5001] } })
        .session(&mut s)
        .await
        .expect("read own writes");
    assert_eq!(
        own, 2,
        "the transaction reads its own writes on both shards"
    );
    let outside = coll
        .count_documents(doc! { "_id": { "$in": [5000, 5001] } })
        .await
        .expect("count");
    assert_eq!(outside, 0, "nobody else sees them before the commit");
    s.commit_transaction().await.expect("commit");
    let after: Vec<Document> = coll
        .find(doc! { "_id": { "$in": [5000, 5001, 42, 160] } })
        .sort(doc! { "_id": 1 })
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("cursor");
    assert_eq!(
        after,
        vec![
            doc! { "_id": 42, "k": 42, "t": 1 },
            doc! { "_id": 5000, "k": 10 },
            doc! { "_id": 5001, "k": 150 }
        ]
    );
    // each participant's oplog: a prepared applyOps, then commitTransaction naming it
    for (shard, ids) in [
        ("shard0", vec![Bson::Int32(5000), Bson::Int32(42)]),
        ("shard1", vec![Bson::Int32(5001), Bson::Int32(160)]),
    ] {
        let sh = cl.shards().iter().find(|x| x.id == shard).unwrap();
        let oplog = sh.set.oplog(sh.set.primary().unwrap());
        let prepares = entries_for(&oplog, |e| {
            e.get_document("o")
                .is_ok_and(|o| o.get_bool("prepare").ok() == Some(true))
        });
        assert_eq!(prepares.len(), 1, "{shard}: one prepare entry");
        assert_eq!(
            applyops_ids(prepares[0]),
            ids,
            "{shard}: the prepared writes"
        );
        let commits = entries_for(&oplog, |e| {
            e.get_document("o")
                .is_ok_and(|o| o.contains_key("commitTransaction"))
        });
        assert_eq!(commits.len(), 1, "{shard}: one commitTransaction entry");
        assert_eq!(
            commits[0]
                .get_document("prevOpTime")
                .ok()
                .and_then(|p| p.get_timestamp("ts").ok()),
            prepares[0].get_timestamp("ts").ok(),
            "{shard}: the commit's prevOpTime is the prepare entry"
        );
        assert!(commits[0]
            .get_document("o")
            .unwrap()
            .get_timestamp("commitTimestamp")
            .is_ok());
        assert_eq!(
            prepares[0].get_document("lsid").ok(),
            commits[0].get_document("lsid").ok()
        );
        // the secondaries applied the pair (the prepared writes only at the commit)
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let p = sh.set.primary().unwrap();
        for m in (0..3).filter(|m| *m != p) {
            loop {
                let docs = sh.set.documents(m, "tx.c");
                if docs == sh.set.documents(p, "tx.c") {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{shard} member {m} did not converge"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // and the majority-committed state rebuilt from the oplog has them
        let state = sh
            .set
            .committed_state_at(sh.set.newest_commit_point())
            .expect("committed state");
        assert_eq!(state.get("tx.c"), Some(&sh.set.documents(p, "tx.c")));
    }
    // the coordinator (the first participant) recorded and removed its decision
    let s0 = &cl.shards()[0];
    let coord = entries_for(&s0.set.oplog(s0.set.primary().unwrap()), |e| {
        e.get_str("ns").ok() == Some("config.transaction_coordinators")
    })
    .iter()
    .map(|e| e.get_str("op").unwrap().to_string())
    .collect::<Vec<_>>();
    assert_eq!(coord, vec!["i", "u", "d"]);

    // an aborted two-shard transaction leaves nothing
    s.start_transaction().await.expect("start");
    coll.insert_one(doc! { "_id": 6000, "k": 11 })
        .session(&mut s)
        .await
        .expect("insert");
    coll.insert_one(doc! { "_id": 6001, "k": 151 })
        .session(&mut s)
        .await
        .expect("insert");
    s.abort_transaction().await.expect("abort");
    assert_eq!(
        coll.count_documents(doc! { "_id": { "$gte": 6000 } })
            .await
            .expect("count"),
        0
    );
    for sh in cl.shards() {
        let oplog = sh.set.oplog(sh.set.primary().unwrap());
        let text = format!("{oplog:?}");
        assert!(
            !text.contains("6000") && !text.contains("6001"),
            "{}: an aborted write reached the oplog",
            sh.id
        );
    }
    // a one-shard transaction commits without two-phase commit
    s.start_transaction().await.expect("start");
    coll.insert_one(doc! { "_id": 7000, "k": 12 })
        .session(&mut s)
        .await
        .expect("insert");
    s.commit_transaction().await.expect("commit");
    let oplog0 = s0.set.oplog(s0.set.primary().unwrap());
    let plain = entries_for(&oplog0, |e| {
        e.get_document("o")
            .is_ok_and(|o| o.contains_key("applyOps") && !o.contains_key("prepare"))
    });
    assert_eq!(plain.len(), 1);
    assert_eq!(applyops_ids(plain[0]), vec![Bson::Int32(7000)]);

    // a two-shard transaction committed while its shard0 document's chunk is
    // being cloned to shard1: the catch-up carries the prepared writes, which
    // take effect at the commit entry, not at the prepare entry
    admin(&c, doc! { "split": "tx.c", "middle": { "k": 50 } }).await;
    cl.set_clone_pacing(5, Duration::from_millis(60));
    let c2 = c.clone();
    let mover = tokio::spawn(async move {
        admin(
            &c2,
            doc! { "moveChunk": "tx.c", "find": { "k": 10 }, "to": "shard1" },
        )
        .await
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while s0.hook.donor.lock().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the migration did not start"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    s.start_transaction().await.expect("start");
    coll.update_one(doc! { "k": 10 }, doc! { "$set": { "during": 1 } })
        .session(&mut s)
        .await
        .expect("update on the donor");
    coll.update_one(doc! { "k": 151 }, doc! { "$set": { "during": 1 } })
        .session(&mut s)
        .await
        .expect("update on shard1");
    s.commit_transaction()
        .await
        .expect("commit during the clone");
    assert!(
        s0.hook.donor.lock().unwrap().is_some(),
        "the commit landed during the migration"
    );
    tokio::time::timeout(Duration::from_secs(60), mover)
        .await
        .expect("migration finishes")
        .expect("migration");
    let on1 = cl
        .shard_raw_state("shard1")
        .remove("tx.c")
        .unwrap_or_default();
    let d10 = on1
        .iter()
        .find(|d| d.get("_id") == Some(&Bson::Int32(10)))
        .expect("doc 10 moved");
    assert_eq!(
        d10.get_i32("during").ok(),
        Some(1),
        "the transaction's write reached the recipient: {d10}"
    );
    drop(s);
    check_against_truth(&c, cl, "tx.c").await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_across_two_shards_commits_through_a_coordinator() {
    let cl = cluster(154, 1).await;
    tokio::time::timeout(T, transactions(&cl))
        .await
        .expect("timed out");
}

/// A router's idle connection to a shard member that restarted is closed;
/// the router's next request reconnects instead of failing the client's write.
async fn member_restart(cl: &MongoShardedCluster) {
    // no driver retries: the router itself must not fail the write
    let uri = format!(
        "{}?serverSelectionTimeoutMS=20000&retryWrites=false",
        cl.uri()
    );
    let c = Client::with_options(ClientOptions::parse(&uri).await.expect("uri")).expect("client");
    let coll: Collection<Document> = c.database("rs").collection("c");
    coll.insert_one(doc! { "_id": 1 })
        .await
        .expect("first insert");
    let s0 = &cl.shards()[0];
    s0.set.stop_member(0).expect("stop");
    s0.set.start_member(0).await.expect("start");
    assert_eq!(
        s0.set.wait_for_primary(Duration::from_secs(30)).await,
        Some(0),
        "member 0 is primary again"
    );
    coll.insert_one(doc! { "_id": 2 })
        .await
        .expect("insert after the restart");
    let ids: Vec<Bson> = cl.shard_raw_state("shard0")["rs.c"]
        .iter()
        .map(|d| d["_id"].clone())
        .collect();
    assert_eq!(ids, vec![Bson::Int32(1), Bson::Int32(2)]);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_reconnects_to_a_restarted_shard_member() {
    let cl = MongoShardedCluster::start(ShardedConfig {
        shards: 1,
        members: 1,
        routers: 1,
        base_addr: Ipv4Addr::new(127, 0, 159, 1),
        election_timeout: Duration::from_millis(300),
        heartbeat_interval: Duration::from_millis(100),
        ..ShardedConfig::default()
    })
    .await
    .expect("start the sharded cluster");
    tokio::time::timeout(T, member_restart(&cl))
        .await
        .expect("timed out");
}

/// A stale chunk map under a transaction: the router does not retry the
/// statement; it refreshes and answers StaleConfig labelled
/// TransientTransactionError, and the transaction retried from the start
/// commits.
async fn stale_in_transaction(cl: &MongoShardedCluster) {
    let [r0, r1] = [cl.routers[0].addr, cl.routers[1].addr];
    let c0 = client(&format!("mongodb://{r0}/")).await;
    let c1 = client(&format!("mongodb://{r1}/")).await;
    admin(&c0, doc! { "shardCollection": "stx.c", "key": { "k": 1 } }).await;
    admin(&c0, doc! { "split": "stx.c", "middle": { "k": 0 } }).await;
    let coll1: Collection<Document> = c1.database("stx").collection("c");
    coll1
        .insert_one(doc! { "_id": 1, "k": 5 })
        .await
        .expect("router 1 learns the map");
    admin(
        &c0,
        doc! { "moveChunk": "stx.c", "find": { "k": 5 }, "to": "shard1" },
    )
    .await;
    let mut s = c1.start_session().await.expect("session");
    s.start_transaction().await.expect("start");
    let e = coll1
        .insert_one(doc! { "_id": 2, "k": 6 })
        .session(&mut s)
        .await
        .expect_err("a stale statement in a transaction is not retried");
    assert!(e.contains_label("TransientTransactionError"), "{e}");
    assert!(e.to_string().contains("StaleConfig"), "{e}");
    s.abort_transaction().await.expect("abort");
    // the retried transaction is routed with the refreshed map
    s.start_transaction().await.expect("start again");
    coll1
        .insert_one(doc! { "_id": 2, "k": 6 })
        .session(&mut s)
        .await
        .expect("insert");
    coll1
        .insert_one(doc! { "_id": 3, "k": -6 })
        .session(&mut s)
        .await
        .expect("insert");
    s.commit_transaction().await.expect("commit");
    drop(s);
    let on1: Vec<Bson> = cl.shard_raw_state("shard1")["stx.c"]
        .iter()
        .map(|d| d["_id"].clone())
        .collect();
    assert!(
        on1.contains(&Bson::Int32(2)),
        "the retried insert is on the new owner: {on1:?}"
    );
    check_against_truth(&c1, cl, "stx.c").await;
    c0.shutdown().await;
    c1.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_map_inside_a_transaction_is_a_transient_error() {
    let cl = cluster(160, 2).await;
    tokio::time::timeout(T, stale_in_transaction(&cl))
        .await
        .expect("timed out");
}
