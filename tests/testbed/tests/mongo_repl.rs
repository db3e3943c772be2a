//! Replication seen from outside: `w:"majority"` is acknowledged only once
//! the commit point covers the write, impossible write concerns are refused,
//! and what the primary serves from `local.oplog.rs` (tailable find and
//! awaitData getMore with `$replData`/`$oplogQueryData`) decodes with
//! `tidemark-mongo`'s replication models into exactly the oplog and commit
//! point the testbed records as ground truth.

mod common;

use common::{start, Client};
use std::net::Ipv4Addr;
use tidemark_testbed::mongo::tidemark_mongo::bson::{doc, Document, RawDocumentBuf};
use tidemark_testbed::mongo::tidemark_mongo::repl::{CursorReply, OplogEntry, ReplData};
use tidemark_testbed::mongo::OpTime;

fn optime(o: tidemark_testbed::mongo::tidemark_mongo::repl::OpTime) -> OpTime {
    OpTime {
        t: o.t,
        ts: (o.ts.time, o.ts.increment),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn majority_writes_wait_for_the_commit_point() {
    let set = start(Ipv4Addr::new(127, 0, 40, 1)).await;
    let mut c = Client::connect(set.addresses()[0]).await;
    for i in 0..5 {
        let (_, d) = c
            .command(
                doc! { "insert": "c", "documents": [{ "_id": i }], "writeConcern": { "w": "majority", "wtimeout": 10000 }, "$db": "t" },
                0,
                None,
            )
            .await;
        assert_eq!(d.get_i32("n").ok(), Some(1), "{d}");
        assert!(!d.contains_key("writeConcernError"), "{d}");
        // acknowledged ⇒ committed: the primary's commit point covers it
        assert!(set.commit_point(0) >= set.last_applied(0), "write {i}");
    }
    let (_, d) = c
        .command(
            doc! { "insert": "c", "documents": [{ "_id": 99 }], "writeConcern": { "w": 3 }, "$db": "t" },
            0,
            None,
        )
        .await;
    assert!(!d.contains_key("writeConcernError"), "{d}");
    let progress = set.shared().progress();
    assert!(
        progress.iter().all(|p| Some(*p) >= set.last_applied(0)),
        "w:3 → all members durable"
    );
    let (_, d) = c
        .command(
            doc! { "insert": "c", "documents": [{ "_id": 100 }], "writeConcern": { "w": 4 }, "$db": "t" },
            0,
            None,
        )
        .await;
    let wce = d
        .get_document("writeConcernError")
        .expect("w:4 on 3 members");
    assert_eq!(wce.get_i32("code").ok(), Some(100));
    set.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oplog_served_decodes_into_the_ground_truth() {
    let set = start(Ipv4Addr::new(127, 0, 41, 1)).await;
    let mut c = Client::connect(set.addresses()[0]).await;
    let (_, d) = c
        .command(
            doc! {
                "insert": "c",
                "documents": [{ "_id": 1, "a": 1 }, { "_id": 2 }],
                "writeConcern": { "w": "majority" },
                "$db": "t",
            },
            0,
            None,
        )
        .await;
    assert_eq!(d.get_i32("n").ok(), Some(2));
    c.command(
        doc! { "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "$inc": { "a": 1 } } }], "writeConcern": { "w": "majority" }, "$db": "t" },
        0,
        None,
    )
    .await;

    // a fetcher's view: tailable find from the beginning
    let (_, reply) = c
        .command(
            doc! { "find": "oplog.rs", "filter": { "ts": { "$gte": tidemark_testbed::mongo::tidemark_mongo::bson::Timestamp { time: 0, increment: 0 } } }, "tailable": true, "awaitData": true, "$db": "local" },
            0,
            None,
        )
        .await;
    let raw = RawDocumentBuf::try_from(&reply).expect("raw");
    let cursor =
        CursorReply::parse(raw.get_document("cursor").expect("cursor")).expect("cursor decodes");
    assert!(cursor.is_oplog());
    assert_ne!(cursor.id, 0, "tailable cursor stays open");
    let entries = cursor.oplog_entries().expect("entries decode");
    let truth = set.oplog(0);
    assert_eq!(entries.len(), truth.len());
    for (e, t) in entries.iter().zip(&truth) {
        assert_eq!(Document::try_from(e.raw).expect("doc"), *t);
        assert_eq!(e.op_time().map(optime), OpTime::from_doc(t));
    }
    let ops: Vec<&str> = entries.iter().map(|e| e.op.as_str()).collect();
    assert_eq!(ops, ["c", "i", "i", "u"]);
    let upd = OplogEntry::parse(entries[3].raw).expect("update entry");
    assert_eq!(upd.o2.and_then(|o| o.get_i32("_id").ok()), Some(1));

    let rd = ReplData::parse(raw.get_document("$replData").expect("$replData")).expect("decodes");
    assert_eq!(rd.term, Some(1));
    let committed = rd.last_op_committed.map(optime);
    assert_eq!(
        committed,
        set.last_applied(0),
        "w:majority acknowledged ⇒ committed"
    );
    assert_eq!(committed, set.commit_point(0));

    // an awaitData getMore with nothing new returns (empty) within its maxTimeMS
    let (_, more) = c
        .command(
            doc! { "getMore": cursor.id, "collection": "oplog.rs", "maxTimeMS": 50, "lastKnownCommittedOpTime": set.commit_point(0).unwrap_or_default().to_doc(), "$db": "local" },
            0,
            None,
        )
        .await;
    let next = more
        .get_document("cursor")
        .and_then(|c| c.get_array("nextBatch"))
        .expect("nextBatch");
    assert!(next.is_empty(), "{more}");
    set.stop();
}
