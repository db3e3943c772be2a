//! The real Rust `mongodb` driver (3.9.1) against the testbed replica set
//! with a replica-set URI: discovery, then every data command — inserts
//! with duplicate-key errors in ordered and unordered batches, update
//! operators incl. positional and arrayFilters, replacement and upserts,
//! deletes, findAndModify, queries with sort/projection/getMore, counts,
//! DDL, retried statements, committed and aborted transactions, w:1 and
//! w:"majority" — once without authentication and once with SCRAM-SHA-256.
//! What the driver reads back is compared with the testbed's ground truth.

use futures_util::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, Credential, ReturnDocument, WriteConcern};
use mongodb::{Client, Collection};
use std::net::Ipv4Addr;
use std::time::Duration;
use tidemark_testbed::mongo::scram::ScramUser;
use tidemark_testbed::mongo::ReplSetConfig;
use tidemark_testbed::MongoReplicaSet;

const PASSWORD: &str = "Wire-Secret-7f3a9c";

/// The testbed's documents (its own bson) as the driver's bson values:
/// both are bson 3.1, so the BSON bytes round-trip exactly.
fn truth(set: &MongoReplicaSet, ns: &str) -> Vec<Document> {
    set.documents(0, ns)
        .iter()
        .map(|d| {
            let bytes = d.to_vec().expect("encode");
            Document::from_reader(&mut bytes.as_slice()).expect("decode")
        })
        .collect()
}

fn write_code(e: &mongodb::error::Error) -> Option<i32> {
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(we)) => Some(we.code),
        ErrorKind::InsertMany(ime) => ime.write_errors.as_ref()?.first().map(|we| we.code),
        ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

async fn client(set: &MongoReplicaSet, auth: bool, password: &str) -> Client {
    let uri = format!(
        "{}&serverSelectionTimeoutMS=20000&heartbeatFrequencyMS=500&compressors=zstd",
        set.uri()
    );
    let mut opts = ClientOptions::parse(&uri).await.expect("uri");
    if auth {
        opts.credential = Some(
            Credential::builder()
                .username("tidemark".to_string())
                .password(password.to_string())
                .source("admin".to_string())
                .mechanism(mongodb::options::AuthMechanism::ScramSha256)
                .build(),
        );
    }
    Client::with_options(opts).expect("client")
}

async fn workload(c: &Client) -> mongodb::error::Result<()> {
    let db = c.database("rs");
    let items: Collection<Document> = db.collection("items");
    items
        .insert_one(doc! { "_id": 1, "name": "a", "qty": 5, "tags": ["x"], "arr": [1, 2, 3] })
        .await?;
    let many: Vec<Document> = (2..40)
        .map(|i| doc! { "_id": i, "qty": i, "grp": i % 4, "sub": { "v": i * 10 } })
        .collect();
    items.insert_many(many).await?;
    let dup = items.insert_one(doc! { "_id": 1 }).await.unwrap_err();
    assert_eq!(write_code(&dup), Some(11000), "{dup}");
    let unordered = items
        .insert_many(vec![
            doc! { "_id": 100 },
            doc! { "_id": 2 },
            doc! { "_id": 101 },
        ])
        .ordered(false)
        .await
        .unwrap_err();
    match &*unordered.kind {
        ErrorKind::InsertMany(e) => {
            let idx: Vec<usize> = e.write_errors.iter().flatten().map(|w| w.index).collect();
            assert_eq!(idx, vec![1]);
        }
        other => panic!("unexpected {other:?}"),
    }
    let ordered = items
        .insert_many(vec![
            doc! { "_id": 102 },
            doc! { "_id": 3 },
            doc! { "_id": 103 },
        ])
        .await
        .unwrap_err();
    match &*ordered.kind {
        ErrorKind::InsertMany(e) => {
            let idx: Vec<usize> = e.write_errors.iter().flatten().map(|w| w.index).collect();
            assert_eq!(idx, vec![1]);
        }
        other => panic!("unexpected {other:?}"),
    }

    // updates
    let r = items
        .update_one(
            doc! { "_id": 1 },
            doc! { "$set": { "sub.w": 1 }, "$inc": { "qty": 2 }, "$push": { "tags": { "$each": ["y", "z"], "$slice": -2 } } },
        )
        .await?;
    assert_eq!((r.matched_count, r.modified_count), (1, 1));
    items
        .update_one(
            doc! { "_id": 1, "arr": 2 },
            doc! { "$set": { "arr.$": 20 }, "$rename": { "name": "label" } },
        )
        .await?;
    items
        .update_one(doc! { "_id": 1 }, doc! { "$inc": { "arr.$[big]": 100 } })
        .array_filters(vec![doc! { "big": { "$gte": 3 } }])
        .await?;
    items
        .update_one(
            doc! { "_id": 1 },
            doc! { "$addToSet": { "tags": "y" }, "$pull": { "tags": "z" } },
        )
        .await?;
    let r = items
        .update_many(
            doc! { "grp": 0 },
            doc! { "$mul": { "qty": 2 }, "$max": { "sub.v": 350 } },
        )
        .await?;
    assert_eq!(r.matched_count, 9);
    items
        .replace_one(doc! { "_id": 2 }, doc! { "replaced": true })
        .await?;
    let r = items
        .update_one(
            doc! { "_id": 500 },
            doc! { "$set": { "u": 1 }, "$setOnInsert": { "fresh": true } },
        )
        .upsert(true)
        .await?;
    assert_eq!(r.upserted_id, Some(Bson::Int32(500)));
    assert_eq!(items.delete_one(doc! { "_id": 3 }).await?.deleted_count, 1);
    assert_eq!(
        items
            .delete_many(doc! { "_id": { "$in": [100, 101, 102] } })
            .await?
            .deleted_count,
        3
    );
    let got = items
        .find_one_and_update(doc! { "grp": 1 }, doc! { "$set": { "top": true } })
        .sort(doc! { "qty": -1 })
        .return_document(ReturnDocument::After)
        .await?
        .expect("a document");
    assert_eq!(got.get_i32("_id").ok(), Some(37));
    assert_eq!(got.get_bool("top").ok(), Some(true));
    let gone = items
        .find_one_and_delete(doc! { "_id": 4 })
        .await?
        .expect("deleted");
    assert_eq!(gone.get_i32("qty").ok(), Some(8));

    // w:1 and w:"majority"
    let w1 = WriteConcern::builder()
        .w(mongodb::options::Acknowledgment::Nodes(1))
        .build();
    items
        .insert_one(doc! { "_id": 600 })
        .write_concern(w1)
        .await?;
    items
        .insert_one(doc! { "_id": 601 })
        .write_concern(WriteConcern::majority())
        .await?;

    // queries, sort, projection, getMore, counts
    let q: Vec<Document> = items
        .find(doc! { "$or": [ { "sub.v": { "$gte": 380 } }, { "_id": { "$in": [5, 6] } } ] })
        .sort(doc! { "_id": -1 })
        .projection(doc! { "sub": 0 })
        .await?
        .try_collect()
        .await?;
    let ids: Vec<i32> = q.iter().filter_map(|d| d.get_i32("_id").ok()).collect();
    assert_eq!(ids, vec![39, 38, 6, 5]);
    assert!(q.iter().all(|d| !d.contains_key("sub")));
    let all: Vec<Document> = items
        .find(doc! {})
        .batch_size(7)
        .await?
        .try_collect()
        .await?;
    let n = items.count_documents(doc! {}).await?;
    assert_eq!(all.len() as u64, n);
    assert_eq!(items.estimated_document_count().await?, n);
    assert_eq!(items.count_documents(doc! { "grp": 3 }).await?, 9);
    let grps = items.distinct("grp", doc! {}).await?;
    assert_eq!(grps.len(), 4);

    // collections and databases
    db.create_collection("made").await?;
    let again = db.create_collection("made").await.unwrap_err();
    assert_eq!(write_code(&again), Some(48));
    db.collection::<Document>("made")
        .insert_one(doc! { "_id": 1 })
        .await?;
    c.database("admin")
        .run_command(doc! { "renameCollection": "rs.made", "to": "rs.renamed" })
        .await?;
    let names = db.list_collection_names().await?;
    assert!(names.contains(&"renamed".to_string()) && !names.contains(&"made".to_string()));
    c.database("rs_scratch")
        .collection::<Document>("t")
        .insert_one(doc! { "_id": 1 })
        .await?;
    assert!(c
        .list_database_names()
        .await?
        .contains(&"rs_scratch".to_string()));
    c.database("rs_scratch").drop().await?;
    assert!(!c
        .list_database_names()
        .await?
        .contains(&"rs_scratch".to_string()));
    db.collection::<Document>("renamed").drop().await?;

    // a unique index is enforced
    let people: Collection<Document> = db.collection("people");
    people.insert_one(doc! { "_id": 1, "email": "a" }).await?;
    let model = mongodb::IndexModel::builder()
        .keys(doc! { "email": 1 })
        .options(
            mongodb::options::IndexOptions::builder()
                .unique(true)
                .build(),
        )
        .build();
    assert_eq!(people.create_index(model).await?.index_name, "email_1");
    let dup = people
        .insert_one(doc! { "_id": 2, "email": "a" })
        .await
        .unwrap_err();
    assert_eq!(write_code(&dup), Some(11000), "{dup}");
    let names = people.list_index_names().await?;
    assert_eq!(names, vec!["_id_".to_string(), "email_1".to_string()]);

    // transactions: a committed one and an aborted one
    let orders: Collection<Document> = db.collection("orders");
    orders.insert_one(doc! { "_id": "pre" }).await?;
    let mut s = c.start_session().await?;
    s.start_transaction()
        .write_concern(WriteConcern::majority())
        .await?;
    orders
        .insert_one(doc! { "_id": "t1" })
        .session(&mut s)
        .await?;
    items
        .update_one(doc! { "_id": 1 }, doc! { "$inc": { "qty": 100 } })
        .session(&mut s)
        .await?;
    orders
        .delete_one(doc! { "_id": "pre" })
        .session(&mut s)
        .await?;
    assert!(orders
        .find_one(doc! { "_id": "t1" })
        .session(&mut s)
        .await?
        .is_some());
    s.commit_transaction().await?;
    s.start_transaction().await?;
    orders
        .insert_one(doc! { "_id": "t2" })
        .session(&mut s)
        .await?;
    orders
        .delete_one(doc! { "_id": "t1" })
        .session(&mut s)
        .await?;
    s.abort_transaction().await?;
    assert!(orders.find_one(doc! { "_id": "t2" }).await?.is_none());
    assert!(orders.find_one(doc! { "_id": "t1" }).await?.is_some());
    Ok(())
}

async fn check(base: Ipv4Addr, auth: bool) {
    let cfg = ReplSetConfig {
        base_addr: base,
        port: 0,
        max_await: Duration::from_millis(500),
        scram_user: auth.then(|| ScramUser::new("tidemark", PASSWORD)),
        ..ReplSetConfig::default()
    };
    let set = MongoReplicaSet::start(cfg).await.expect("start");
    if auth {
        let bad = client(&set, true, "not-the-password").await;
        let e = bad
            .database("rs")
            .collection::<Document>("items")
            .find_one(doc! {})
            .await;
        let e = e.expect_err("a wrong password must fail");
        assert!(
            matches!(&*e.kind, ErrorKind::Authentication { .. }) || write_code(&e) == Some(18),
            "{e}"
        );
        bad.shutdown().await;
    }
    // retried statements through the driver: the same lsid + txnNumber twice
    // is a retry, applied once (own client: the session's txnNumber moves past
    // what the driver's session pool knows)
    let rc = client(&set, auth, PASSWORD).await;
    let mut s = rc.start_session().await.expect("session");
    let rdb = rc.database("rs");
    for _ in 0..2 {
        let r = rdb
            .run_command(doc! { "insert": "retry", "documents": [{ "_id": 1, "n": 0 }], "txnNumber": 1_000_007i64 })
            .session(&mut s)
            .await
            .expect("insert");
        assert_eq!(r.get_i32("n").ok(), Some(1), "{r}");
    }
    for _ in 0..2 {
        let r = rdb
            .run_command(doc! { "update": "retry", "updates": [{ "q": { "_id": 1 }, "u": { "$inc": { "n": 1 } } }], "txnNumber": 1_000_008i64 })
            .session(&mut s)
            .await
            .expect("update");
        assert_eq!(r.get_i32("nModified").ok(), Some(1), "{r}");
    }
    drop(s);
    rc.shutdown().await;
    assert_eq!(truth(&set, "rs.retry"), vec![doc! { "_id": 1, "n": 1 }]);

    let c = client(&set, auth, PASSWORD).await;
    let work = tokio::time::timeout(Duration::from_secs(120), workload(&c)).await;
    work.expect("workload timed out").expect("workload");

    // discovery: the driver saw the set's primary and both secondaries
    let hello = c
        .database("admin")
        .run_command(doc! { "hello": 1 })
        .await
        .expect("hello");
    assert_eq!(hello.get_array("hosts").map(|h| h.len()).ok(), Some(3));

    // everything the driver reads back is the ground truth
    for ns in ["rs.items", "rs.orders"] {
        let (db, coll) = ns.split_once('.').unwrap();
        let from_driver: Vec<Document> = c
            .database(db)
            .collection::<Document>(coll)
            .find(doc! {})
            .await
            .expect("find")
            .try_collect()
            .await
            .expect("collect");
        assert_eq!(from_driver, truth(&set, ns), "{ns}");
    }
    let items = truth(&set, "rs.items");
    let one = items
        .iter()
        .find(|d| d.get_i32("_id").ok() == Some(1))
        .unwrap();
    assert_eq!(
        one,
        &doc! { "_id": 1, "qty": 107, "tags": ["y"], "arr": [1, 120, 103], "sub": { "w": 1 }, "label": "a" }
    );
    assert!(set.documents(0, "rs_scratch.t").is_empty());
    let oplog = set.oplog(0);
    let on_retry: Vec<&str> = oplog
        .iter()
        .filter(|e| e.get_str("ns").ok() == Some("rs.retry"))
        .filter_map(|e| e.get_str("op").ok())
        .collect();
    assert_eq!(
        on_retry,
        vec!["i", "u"],
        "each retried statement logged once"
    );
    let zstd = tidemark_testbed::mongo::tidemark_mongo::Compressor::Zstd;
    assert!(
        set.shared().members[0].compressed_requests(zstd) > 0,
        "zstd negotiated"
    );
    let apply_ops = oplog
        .iter()
        .filter(|e| {
            e.get_document("o")
                .is_ok_and(|o| o.contains_key("applyOps"))
        })
        .count();
    assert_eq!(apply_ops, 1, "one committed transaction");
    assert!(!oplog.iter().any(|e| e.to_string().contains("\"t2\"")));
    let start = tokio::time::Instant::now();
    while set.oplog(1) != oplog && start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(set.oplog(1), oplog, "secondary converged");
    assert_eq!(set.documents(1, "rs.items"), set.documents(0, "rs.items"));
    c.shutdown().await;
    set.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_driver_every_command_matches_ground_truth() {
    check(Ipv4Addr::new(127, 0, 72, 1), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_driver_with_scram_auth() {
    check(Ipv4Addr::new(127, 0, 73, 1), true).await;
}
