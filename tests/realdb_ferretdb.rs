//! FerretDB (a real MongoDB-wire server we did not write, started by
//! `scripts/ferretdb.sh`) with the real pymongo driver as the client, tapped live on
//! `lo` by `tidemark tap`, and the same kinds of writes through the Rust `mongodb`
//! crate. The references are the driver's results and what the server
//! holds afterwards, never tidemark.
//!
//! FerretDB is a standalone (its `hello` has no `setName`): the writes carry the default
//! write concern and no replication traffic exists. A standalone never rolls back
//! (ARCHITECTURE.md, MongoDB rules), so an acknowledged write is committed on its
//! reply by the `standalone` rule (`src/commit/mongo_rules.rs`), with no deadline or
//! policy involved, and the log's reason names that rule.

mod realdb_support;

use std::sync::OnceLock;

use mongodb::bson::{doc, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection};
use realdb_support::mongo_check::log_matches_driver_and_server;
use realdb_support::{python, server, workload, Tap};
use serde_json::Value;

static FERRET: OnceLock<Result<String, String>> = OnceLock::new();

#[test]
fn pymongo_writes_are_logged_as_the_driver_saw_them() {
    let Some(uri) = server(&FERRET, "ferretdb.sh", &[]) else {
        return;
    };
    let db = "realdb_pymongo";
    // The default deadline (longer than the run): only the standalone rule can
    // decide these writes before the tap stops.
    let tap = Tap::start_with("--mongo-port", 27018, &[]);
    let driver = python(&workload("mongo_workload.py"), &["write", &uri, db], "");
    let log = tap.finish();
    let held = python(&workload("mongo_workload.py"), &["read", &uri, db], "");
    log_matches_driver_and_server(db, &driver, &log, &held);
}

/// The same kinds of writes through the Rust `mongodb` crate (a second, independent
/// driver: its own BSON encoder, its own batching of insertMany), tapped live.
#[test]
fn rust_driver_writes_are_logged_as_the_driver_saw_them() {
    let Some(uri) = server(&FERRET, "ferretdb.sh", &[]) else {
        return;
    };
    let db = "realdb_rust";
    let tap = Tap::start_with("--mongo-port", 27018, &[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let driver = rt.block_on(rust_workload(&uri, db));
    let log = tap.finish();
    let held = python(&workload("mongo_workload.py"), &["read", &uri, db], "");
    log_matches_driver_and_server(db, &driver, &log, &held);
}

/// One document write as the driver saw it, in the shape `mongo_workload.py` prints.
fn seen(ns: &str, id: i64, op: &str, applied: bool) -> Value {
    serde_json::json!({"ns": ns, "key": {"_id": id}, "op": op, "acknowledged": true, "applied": applied})
}

/// The server error code of a single write that failed, if it was a write error.
fn write_error_code(e: &mongodb::error::Error) -> Option<i32> {
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        _ => None,
    }
}

/// The Rust driver's workload in `db`: inserts, an insertMany, updates with `$set`,
/// `$inc` and `$push`, a replacement, deletes, a duplicate insert and an ordered
/// insertMany stopped by a duplicate. Returns what the driver reported for each write.
async fn rust_workload(uri: &str, db: &str) -> Vec<Value> {
    let opts = ClientOptions::parse(uri).await.expect("uri");
    let client = Client::with_options(opts).expect("client");
    let docs: Collection<Document> = client.database(db).collection("docs");
    let ns = format!("{db}.docs");
    let mut out = Vec::new();
    for i in 0..20i64 {
        docs.insert_one(doc! { "_id": i, "n": i, "s": format!("rust-{i}"), "tags": ["r", i.to_string()], "sub": { "x": i as f64 * 0.5 } })
            .await
            .expect("insert");
        out.push(seen(&ns, i, "insert", true));
    }
    let many: Vec<Document> = (100..110i64)
        .map(|i| doc! { "_id": i, "n": i, "s": format!("many-{i}") })
        .collect();
    let r = docs.insert_many(many).await.expect("insert_many");
    assert_eq!(r.inserted_ids.len(), 10);
    for i in 100..110 {
        out.push(seen(&ns, i, "insert", true));
    }
    for i in (0..20i64).step_by(4) {
        let r = docs
            .update_one(
                doc! { "_id": i },
                doc! { "$set": { "s": format!("set-{i}") }, "$inc": { "n": 500 } },
            )
            .await
            .expect("update");
        out.push(seen(&ns, i, "update", r.modified_count == 1));
    }
    let r = docs
        .update_one(doc! { "_id": 1 }, doc! { "$push": { "tags": "pushed" } })
        .await
        .expect("push");
    out.push(seen(&ns, 1, "update", r.modified_count == 1));
    let r = docs
        .replace_one(doc! { "_id": 5 }, doc! { "n": -5, "s": "replaced" })
        .await
        .expect("replace");
    out.push(seen(&ns, 5, "update", r.modified_count == 1));
    for i in [9i64, 105] {
        let r = docs.delete_one(doc! { "_id": i }).await.expect("delete");
        out.push(seen(&ns, i, "delete", r.deleted_count == 1));
    }
    // A duplicate _id: a write error (11000), nothing written.
    match docs.insert_one(doc! { "_id": 2, "s": "duplicate" }).await {
        Ok(_) => out.push(seen(&ns, 2, "insert", true)),
        Err(e) => {
            assert_eq!(write_error_code(&e), Some(11000), "{e}");
            out.push(seen(&ns, 2, "insert", false));
        }
    }
    // An ordered insertMany stopped at a duplicate: those before it landed, the
    // duplicate and those after it did not.
    let batch = [300i64, 301, 3, 302];
    match docs
        .insert_many(batch.iter().map(|&i| doc! { "_id": i, "n": i }))
        .await
    {
        Ok(_) => batch
            .iter()
            .for_each(|&i| out.push(seen(&ns, i, "insert", true))),
        Err(e) => match &*e.kind {
            ErrorKind::InsertMany(m) => {
                let failed: Vec<usize> = m.write_errors.iter().flatten().map(|w| w.index).collect();
                assert_eq!(failed.len(), 1, "{e}");
                for (pos, &i) in batch.iter().enumerate() {
                    out.push(seen(&ns, i, "insert", pos < failed[0]));
                }
            }
            other => panic!("unexpected {other:?}"),
        },
    }
    client.shutdown().await;
    out
}
