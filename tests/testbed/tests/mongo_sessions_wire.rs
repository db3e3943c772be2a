//! Retryable writes and transactions seen from a raw client built on
//! `tidemark-mongo`: the same `lsid`/`txnNumber`/`stmtId` replayed (also on
//! a new connection, as a driver retries after a lost reply) is answered as
//! the first time and applied once; an older `txnNumber` is
//! TransactionTooOld; a transaction is logged as one `applyOps` entry at
//! commit and not at all when aborted; cursors continue with `getMore`.

mod common;

use common::{start, Client};
use std::net::Ipv4Addr;
use tidemark_testbed::mongo::tidemark_mongo::bson::spec::BinarySubtype;
use tidemark_testbed::mongo::tidemark_mongo::bson::{doc, Binary, Bson, Document};

fn lsid(n: u8) -> Document {
    doc! { "id": Binary { subtype: BinarySubtype::Uuid, bytes: vec![n; 16] } }
}

fn entries_on<'a>(oplog: &'a [Document], ns: &str) -> Vec<&'a Document> {
    oplog
        .iter()
        .filter(|e| e.get_str("ns").ok() == Some(ns))
        .collect()
}

#[tokio::test]
async fn replayed_statements_are_applied_once() {
    let set = start(Ipv4Addr::new(127, 0, 74, 1)).await;
    let primary = set.addresses()[0];
    let insert = doc! {
        "insert": "c", "documents": [{ "_id": 1, "n": 0 }, { "_id": 2, "n": 0 }],
        "lsid": lsid(1), "txnNumber": 5i64, "$db": "t",
    };
    let update = doc! {
        "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "$inc": { "n": 1 } } },
                                  { "q": { "_id": 9 }, "u": { "$set": { "n": 9 } }, "upsert": true }],
        "lsid": lsid(1), "txnNumber": 6i64, "$db": "t",
    };
    let fam = doc! {
        "findAndModify": "c", "query": { "_id": 2 }, "update": { "$inc": { "n": 5 } }, "new": true,
        "lsid": lsid(1), "txnNumber": 7i64, "$db": "t",
    };
    let before = set.oplog(0).len();
    for cmd in [&insert, &update, &fam] {
        let mut c = Client::connect(primary).await;
        let (_, first) = c.command(cmd.clone(), 0, None).await;
        assert_eq!(first.get_f64("ok").ok(), Some(1.0), "{first}");
        let logged = set.oplog(0).len();
        // the reply names the write's own optime, as mongod's does
        let last_ts = set.oplog(0).last().unwrap().get_timestamp("ts").unwrap();
        assert_eq!(first.get_timestamp("operationTime").ok(), Some(last_ts));
        if cmd.contains_key("findAndModify") {
            // `new: true`: a retry needs the document after the update
            let entry = set.oplog(0).last().cloned().unwrap();
            assert_eq!(
                entry.get_str("needsRetryImage").ok(),
                Some("postImage"),
                "{entry}"
            );
        } else {
            let op_time = first.get_document("opTime").expect("opTime");
            assert_eq!(op_time.get_timestamp("ts").ok(), Some(last_ts));
            assert!(first.get_object_id("electionId").is_ok());
        }
        // the driver's retry after a lost reply: a new connection, the same
        // lsid and txnNumber; answered as the first time, applied never
        let mut again = Client::connect(primary).await;
        let (_, r) = again.command(cmd.clone(), 0, None).await;
        for k in ["n", "nModified", "upserted", "value", "lastErrorObject"] {
            assert_eq!(r.get(k), first.get(k), "{k}: {r} vs {first}");
        }
        assert_eq!(set.oplog(0).len(), logged, "a replay reached the oplog");
        // mongod names the statements it answered from the record
        if cmd.contains_key("findAndModify") {
            assert_eq!(r.get_i32("retriedStmtId").ok(), Some(0), "{r}");
        } else {
            assert_eq!(
                r.get_array("retriedStmtIds").map(|a| a.len()).ok(),
                Some(2),
                "{r}"
            );
        }
    }
    // create + 2 inserts, the $inc and the upsert, the findAndModify update
    assert_eq!(set.oplog(0).len() - before, 6);
    assert_eq!(
        set.documents(0, "t.c"),
        vec![
            doc! { "_id": 1, "n": 1 },
            doc! { "_id": 2, "n": 5 },
            doc! { "_id": 9, "n": 9 }
        ]
    );
    // an older txnNumber of the session is refused
    let mut c = Client::connect(primary).await;
    let (_, r) = c.command(insert.clone(), 0, None).await;
    assert_eq!(r.get_i32("code").ok(), Some(225), "{r}");

    // a statement-by-statement retry within one txnNumber: a batch whose
    // second statement failed (duplicate) is retried; the first is not
    // re-applied, the second runs now
    let mut c = Client::connect(primary).await;
    let batch = |docs: Vec<Document>| {
        doc! { "insert": "d", "documents": docs, "ordered": false, "lsid": lsid(2), "txnNumber": 1i64, "$db": "t" }
    };
    let (_, r) = c
        .command(
            doc! { "insert": "d", "documents": [{ "_id": 2 }], "$db": "t" },
            0,
            None,
        )
        .await;
    assert_eq!(r.get_i32("n").ok(), Some(1));
    let (_, r) = c
        .command(batch(vec![doc! { "_id": 1 }, doc! { "_id": 2 }]), 0, None)
        .await;
    assert_eq!(r.get_i32("n").ok(), Some(1));
    assert_eq!(r.get_array("writeErrors").map(|w| w.len()).ok(), Some(1));
    let (_, r) = c
        .command(batch(vec![doc! { "_id": 1 }, doc! { "_id": 3 }]), 0, None)
        .await;
    assert_eq!(r.get_i32("n").ok(), Some(2), "{r}");
    assert!(!r.contains_key("writeErrors"), "{r}");
    let oplog = set.oplog(0);
    let d_inserts: Vec<&Document> = entries_on(&oplog, "t.d")
        .into_iter()
        .filter(|e| e.get_str("op").ok() == Some("i"))
        .collect();
    assert_eq!(d_inserts.len(), 3, "_id 2, then 1 once, then 3");
    let stamped: Vec<(i64, i32)> = d_inserts
        .iter()
        .filter_map(|e| Some((e.get_i64("txnNumber").ok()?, e.get_i32("stmtId").ok()?)))
        .collect();
    assert_eq!(stamped, vec![(1, 0), (1, 1)]);
    // prevOpTime chains the session's entries
    let prev = d_inserts[2].get_document("prevOpTime").unwrap();
    assert_eq!(
        prev.get_timestamp("ts").ok(),
        d_inserts[1].get_timestamp("ts").ok()
    );
    set.stop();
}

#[tokio::test]
async fn transactions_commit_as_one_apply_ops_entry_and_abort_leaves_nothing() {
    let set = start(Ipv4Addr::new(127, 0, 75, 1)).await;
    let mut c = Client::connect(set.addresses()[0]).await;
    let txn = |n: i64, mut cmd: Document, start: bool| {
        cmd.insert("lsid", lsid(3));
        cmd.insert("txnNumber", n);
        cmd.insert("autocommit", false);
        if start {
            cmd.insert("startTransaction", true);
        }
        cmd
    };
    let (_, r) = c
        .command(
            doc! { "insert": "c", "documents": [{ "_id": 0 }], "$db": "t" },
            0,
            None,
        )
        .await;
    assert_eq!(r.get_i32("n").ok(), Some(1));
    let before = set.oplog(0).len();
    // committed: insert, update, delete, read-your-writes
    let (_, r) = c
        .command(
            txn(
                1,
                doc! { "insert": "c", "documents": [{ "_id": 1 }], "$db": "t" },
                true,
            ),
            0,
            None,
        )
        .await;
    assert_eq!(r.get_i32("n").ok(), Some(1), "{r}");
    let (_, r) = c.command(txn(1, doc! { "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "$set": { "x": 1 } } }], "$db": "t" }, false), 0, None).await;
    assert_eq!(r.get_i32("nModified").ok(), Some(1), "{r}");
    let (_, r) = c
        .command(
            txn(
                1,
                doc! { "delete": "c", "deletes": [{ "q": { "_id": 0 }, "limit": 1 }], "$db": "t" },
                false,
            ),
            0,
            None,
        )
        .await;
    assert_eq!(r.get_i32("n").ok(), Some(1), "{r}");
    let (_, r) = c
        .command(txn(1, doc! { "find": "c", "$db": "t" }, false), 0, None)
        .await;
    let batch = r
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap();
    assert_eq!(batch, &vec![Bson::Document(doc! { "_id": 1, "x": 1 })]);
    assert_eq!(
        set.oplog(0).len(),
        before,
        "nothing logged before the commit"
    );
    // isolation: outside the transaction nothing of it is visible yet
    let mut other = Client::connect(set.addresses()[0]).await;
    let (_, r) = other
        .command(doc! { "find": "c", "$db": "t" }, 0, None)
        .await;
    let batch = r
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap();
    assert_eq!(batch, &vec![Bson::Document(doc! { "_id": 0 })]);
    assert_eq!(set.documents(0, "t.c"), vec![doc! { "_id": 0 }]);
    let (_, r) = c
        .command(
            txn(1, doc! { "commitTransaction": 1, "$db": "admin" }, false),
            0,
            None,
        )
        .await;
    assert_eq!(r.get_f64("ok").ok(), Some(1.0), "{r}");
    // a retried commit succeeds again without logging twice
    let (_, r) = c
        .command(
            txn(1, doc! { "commitTransaction": 1, "$db": "admin" }, false),
            0,
            None,
        )
        .await;
    assert_eq!(r.get_f64("ok").ok(), Some(1.0), "{r}");
    let oplog = set.oplog(0);
    assert_eq!(oplog.len(), before + 1);
    assert_eq!(
        r.get_timestamp("operationTime").ok(),
        oplog.last().unwrap().get_timestamp("ts").ok(),
        "a commit's operationTime is its applyOps entry's"
    );
    let entry = oplog.last().unwrap();
    assert_eq!(entry.get_str("ns").ok(), Some("admin.$cmd"));
    assert_eq!(entry.get_i64("txnNumber").ok(), Some(1));
    assert_eq!(entry.get_document("lsid").ok(), Some(&lsid(3)));
    let ops = entry
        .get_document("o")
        .unwrap()
        .get_array("applyOps")
        .unwrap();
    let kinds: Vec<&str> = ops
        .iter()
        .filter_map(|o| o.as_document()?.get_str("op").ok())
        .collect();
    assert_eq!(kinds, vec!["i", "u", "d"]);

    // aborted: its writes are undone and nothing is logged
    let (_, _) = c
        .command(
            txn(
                2,
                doc! { "insert": "c", "documents": [{ "_id": 2 }], "$db": "t" },
                true,
            ),
            0,
            None,
        )
        .await;
    let (_, _) = c
        .command(
            txn(
                2,
                doc! { "delete": "c", "deletes": [{ "q": { "_id": 1 }, "limit": 1 }], "$db": "t" },
                false,
            ),
            0,
            None,
        )
        .await;
    let (_, r) = c
        .command(
            txn(2, doc! { "abortTransaction": 1, "$db": "admin" }, false),
            0,
            None,
        )
        .await;
    assert_eq!(r.get_f64("ok").ok(), Some(1.0), "{r}");
    assert_eq!(set.oplog(0).len(), before + 1);
    assert_eq!(set.documents(0, "t.c"), vec![doc! { "_id": 1, "x": 1 }]);
    // a command of the aborted transaction: NoSuchTransaction, transient
    let (_, r) = c
        .command(txn(2, doc! { "find": "c", "$db": "t" }, false), 0, None)
        .await;
    assert_eq!(r.get_i32("code").ok(), Some(251), "{r}");
    assert_eq!(
        r.get_array("errorLabels").ok(),
        Some(&vec![Bson::String("TransientTransactionError".into())])
    );
    // the secondaries apply the applyOps entry
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while set.documents(1, "t.c") != set.documents(0, "t.c")
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(set.documents(1, "t.c"), vec![doc! { "_id": 1, "x": 1 }]);
    set.stop();
}

#[tokio::test]
async fn cursors_continue_with_get_more_and_close() {
    let set = start(Ipv4Addr::new(127, 0, 76, 1)).await;
    let mut c = Client::connect(set.addresses()[0]).await;
    let docs: Vec<Document> = (0..10).map(|i| doc! { "_id": i, "k": 10 - i }).collect();
    let (_, r) = c
        .command(
            doc! { "insert": "c", "documents": docs, "$db": "t" },
            0,
            None,
        )
        .await;
    assert_eq!(r.get_i32("n").ok(), Some(10));
    let (_, r) = c
        .command(doc! { "find": "c", "sort": { "k": 1 }, "projection": { "_id": 1 }, "batchSize": 4, "$db": "t" }, 0, None)
        .await;
    let cur = r.get_document("cursor").unwrap();
    let id = cur.get_i64("id").unwrap();
    assert_ne!(id, 0);
    let mut seen: Vec<Bson> = cur.get_array("firstBatch").unwrap().clone();
    let (_, r) = c
        .command(
            doc! { "getMore": id, "collection": "c", "batchSize": 4, "$db": "t" },
            0,
            None,
        )
        .await;
    let cur = r.get_document("cursor").unwrap();
    assert_eq!(cur.get_i64("id").ok(), Some(id));
    seen.extend(cur.get_array("nextBatch").unwrap().iter().cloned());
    let (_, r) = c
        .command(
            doc! { "getMore": id, "collection": "c", "$db": "t" },
            0,
            None,
        )
        .await;
    let cur = r.get_document("cursor").unwrap();
    assert_eq!(cur.get_i64("id").ok(), Some(0), "exhausted");
    seen.extend(cur.get_array("nextBatch").unwrap().iter().cloned());
    let ids: Vec<Bson> = (0..10)
        .rev()
        .map(|i| Bson::Document(doc! { "_id": i }))
        .collect();
    assert_eq!(seen, ids);
    // an exhausted cursor is gone; killCursors closes an open one
    let (_, r) = c
        .command(
            doc! { "getMore": id, "collection": "c", "$db": "t" },
            0,
            None,
        )
        .await;
    assert_eq!(r.get_i32("code").ok(), Some(43));
    let (_, r) = c
        .command(doc! { "find": "c", "batchSize": 2, "$db": "t" }, 0, None)
        .await;
    let id = r.get_document("cursor").unwrap().get_i64("id").unwrap();
    let (_, r) = c
        .command(
            doc! { "killCursors": "c", "cursors": [id], "$db": "t" },
            0,
            None,
        )
        .await;
    assert_eq!(
        r.get_array("cursorsKilled").ok(),
        Some(&vec![Bson::Int64(id)])
    );
    let (_, r) = c
        .command(
            doc! { "getMore": id, "collection": "c", "$db": "t" },
            0,
            None,
        )
        .await;
    assert_eq!(r.get_i32("code").ok(), Some(43));
    // every reply carries $clusterTime and operationTime
    assert!(r.get_document("$clusterTime").is_ok() && r.get_timestamp("operationTime").is_ok());
    set.stop();
}

#[tokio::test]
async fn a_conflicting_write_fails_the_commit() {
    let set = start(Ipv4Addr::new(127, 0, 77, 1)).await;
    let mut c = Client::connect(set.addresses()[0]).await;
    let mut other = Client::connect(set.addresses()[0]).await;
    let txn = |n: i64, mut cmd: Document, start: bool| {
        cmd.insert("lsid", lsid(4));
        cmd.insert("txnNumber", n);
        cmd.insert("autocommit", false);
        if start {
            cmd.insert("startTransaction", true);
        }
        cmd
    };
    let (_, r) = other
        .command(
            doc! { "insert": "c", "documents": [{ "_id": 1, "x": 1 }], "$db": "t" },
            0,
            None,
        )
        .await;
    assert_eq!(r.get_i32("n").ok(), Some(1));
    // a write conflict: another write changes a document the transaction
    // wrote; the commit fails with WriteConflict and logs nothing
    let (_, r) = c.command(txn(3, doc! { "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "$set": { "x": 3 } } }], "$db": "t" }, true), 0, None).await;
    assert_eq!(r.get_i32("nModified").ok(), Some(1), "{r}");
    let (_, r) = other.command(doc! { "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "$set": { "x": 4 } } }], "$db": "t" }, 0, None).await;
    assert_eq!(r.get_i32("nModified").ok(), Some(1), "{r}");
    let logged = set.oplog(0).len();
    let (_, r) = c
        .command(
            txn(3, doc! { "commitTransaction": 1, "$db": "admin" }, false),
            0,
            None,
        )
        .await;
    assert_eq!(r.get_i32("code").ok(), Some(112), "{r}");
    assert_eq!(set.oplog(0).len(), logged);
    assert_eq!(set.documents(0, "t.c"), vec![doc! { "_id": 1, "x": 4 }]);
    let (_, r) = other.command(doc! { "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "$set": { "x": 1 } } }], "$db": "t" }, 0, None).await;
    assert_eq!(r.get_i32("nModified").ok(), Some(1), "{r}");
    // the other order: the document changes after the snapshot, then the
    // transaction writes it: WriteConflict at that write, the transaction is over
    let (_, r) = c
        .command(txn(4, doc! { "find": "c", "$db": "t" }, true), 0, None)
        .await;
    assert_eq!(r.get_f64("ok").ok(), Some(1.0), "{r}");
    let (_, r) = other.command(doc! { "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "$set": { "x": 5 } } }], "$db": "t" }, 0, None).await;
    assert_eq!(r.get_i32("nModified").ok(), Some(1), "{r}");
    let (_, r) = c.command(txn(4, doc! { "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "$set": { "x": 6 } } }], "$db": "t" }, false), 0, None).await;
    assert_eq!(r.get_i32("code").ok(), Some(112), "{r}");
    assert_eq!(
        r.get_array("errorLabels").ok(),
        Some(&vec![Bson::String("TransientTransactionError".into())])
    );
    let (_, r) = c
        .command(
            txn(4, doc! { "commitTransaction": 1, "$db": "admin" }, false),
            0,
            None,
        )
        .await;
    assert_eq!(
        r.get_i32("code").ok(),
        Some(251),
        "aborted by the conflict: {r}"
    );
    assert_eq!(set.documents(0, "t.c"), vec![doc! { "_id": 1, "x": 5 }]);
    set.stop();
}
