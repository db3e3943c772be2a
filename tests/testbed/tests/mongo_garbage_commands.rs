//! Bad input is normal input: every command the testbed knows, sent with
//! wrongly typed or missing arguments and absurd values, gets a reply (an
//! error document or a harmless success), never a panic or a dropped
//! connection; the member keeps serving and the ground truth stays
//! consistent with what was acknowledged.

mod common;

use common::{start, Client};
use std::net::Ipv4Addr;
use tidemark_testbed::mongo::tidemark_mongo::bson::spec::BinarySubtype;
use tidemark_testbed::mongo::tidemark_mongo::bson::{doc, Binary, Bson, Document};

const COMMANDS: &[&str] = &[
    "insert",
    "update",
    "delete",
    "find",
    "getMore",
    "killCursors",
    "count",
    "distinct",
    "aggregate",
    "findAndModify",
    "create",
    "drop",
    "dropDatabase",
    "renameCollection",
    "listCollections",
    "listDatabases",
    "commitTransaction",
    "abortTransaction",
    "saslStart",
    "saslContinue",
    "endSessions",
    "hello",
    "createIndexes",
    "listIndexes",
    "dropIndexes",
];

fn garbage_values() -> Vec<Bson> {
    vec![
        Bson::Null,
        Bson::Int32(-1),
        Bson::Int64(i64::MIN),
        Bson::Double(f64::NAN),
        Bson::String(String::new()),
        Bson::String("$bad.name".into()),
        Bson::Array(vec![Bson::Int32(1), Bson::Document(doc! { "$x": 1 })]),
        Bson::Document(doc! { "$where": "1", "a.$[nope]": { "$bogus": [] } }),
        Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: vec![0xff; 3],
        }),
    ]
}

const FIELDS: &[&str] = &[
    "documents",
    "updates",
    "deletes",
    "filter",
    "sort",
    "projection",
    "limit",
    "skip",
    "batchSize",
    "pipeline",
    "query",
    "update",
    "fields",
    "arrayFilters",
    "key",
    "to",
    "cursors",
    "collection",
    "payload",
    "lsid",
    "txnNumber",
    "autocommit",
    "startTransaction",
    "indexes",
    "index",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_arguments_get_replies_not_crashes() {
    let set = start(Ipv4Addr::new(127, 0, 78, 1)).await;
    let mut c = Client::connect(set.addresses()[0]).await;
    let (_, r) = c
        .command(
            doc! { "insert": "c", "documents": [{ "_id": 1, "arr": [1, 2] }], "$db": "t" },
            0,
            None,
        )
        .await;
    assert_eq!(r.get_i32("n").ok(), Some(1));
    let mut replies = 0;
    for name in COMMANDS {
        for target in garbage_values() {
            // the command's own argument garbled
            let mut cmd = Document::new();
            cmd.insert(*name, target.clone());
            cmd.insert("$db", "t");
            let (_, r) = c.command(cmd, 0, None).await;
            assert!(r.contains_key("ok"), "{name}: {r}");
            replies += 1;
        }
        for field in FIELDS {
            for v in garbage_values() {
                let mut cmd = Document::new();
                cmd.insert(
                    *name,
                    if *name == "getMore" {
                        Bson::Int64(1)
                    } else {
                        Bson::String("c".into())
                    },
                );
                cmd.insert(*field, v);
                cmd.insert(
                    "$db",
                    if *name == "renameCollection" {
                        "admin"
                    } else {
                        "t"
                    },
                );
                let (_, r) = c.command(cmd, 0, None).await;
                assert!(r.contains_key("ok"), "{name} {field}: {r}");
                replies += 1;
            }
        }
    }
    // still serving on the same connection, the document still there
    let (_, r) = c.command(doc! { "ping": 1, "$db": "admin" }, 0, None).await;
    assert_eq!(r.get_f64("ok").ok(), Some(1.0));
    assert!(replies > 1000);
    let docs = set.documents(0, "t.c");
    assert!(docs.iter().all(|d| d.contains_key("_id")));
    // secondaries converge on whatever the primary accepted
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while set.oplog(1) != set.oplog(0) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        set.oplog(1),
        set.oplog(0),
        "a secondary failed to apply an accepted entry"
    );
    set.stop();
}
