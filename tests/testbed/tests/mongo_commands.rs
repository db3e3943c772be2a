//! The real `pymongo` driver runs every data command the testbed has
//! (`tests/py/mongo_commands.py`: inserts, every update operator incl.
//! positional and arrayFilters, deletes, findAndModify, ordered/unordered
//! bulk writes, queries with sort/projection/getMore, count, DDL, retried
//! statements, committed and aborted transactions, w:1 and w:"majority"),
//! once without and once with SCRAM-SHA-256 authentication. What it read
//! back is then compared with the testbed's ground truth (the primary's
//! documents), the secondaries must converge on it, and the oplog must carry
//! what MongoDB's does: `ui`, `lsid`/`txnNumber`/`stmtId` on retryable
//! writes, one `applyOps` entry for the committed transaction and nothing
//! of the aborted one, each retried statement logged once. Needs python3 with
//! pymongo (through `require`).

#[path = "../../require/mod.rs"]
mod require;

use bson::Bson as JsonBson;
use std::net::Ipv4Addr;
use std::time::Duration;
use tidemark_testbed::mongo::scram::ScramUser;
use tidemark_testbed::mongo::tidemark_mongo::bson::{Bson, Document};
use tidemark_testbed::mongo::ReplSetConfig;
use tidemark_testbed::MongoReplicaSet;

const PASSWORD: &str = "Wire-Secret-7f3a9c";

/// Runs the workload; returns the `STATE` the script read back at the end.
async fn run_script(set: &MongoReplicaSet, user: &str) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/mongo_commands.py");
    let child = tokio::process::Command::new("python3")
        .args([script, &set.uri(), user])
        .env("TESTBED_SCRAM_PASSWORD", PASSWORD)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), child)
        .await
        .expect("driver script timed out")
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.lines().any(|l| l == "OK"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let state = stdout
        .lines()
        .find_map(|l| l.strip_prefix("STATE "))
        .expect("STATE line");
    serde_json::from_str(state).expect("STATE is JSON")
}

fn ops_on<'a>(oplog: &'a [Document], op: &str, ns: &str) -> Vec<&'a Document> {
    oplog
        .iter()
        .filter(|e| e.get_str("op").ok() == Some(op) && e.get_str("ns").ok() == Some(ns))
        .collect()
}

async fn check(base: Ipv4Addr, user: Option<&str>) {
    if !require::python_modules(&["pymongo"]) {
        return;
    }
    let cfg = ReplSetConfig {
        base_addr: base,
        port: 0,
        max_await: Duration::from_millis(500),
        scram_user: user.map(|u| ScramUser::new(u, PASSWORD)),
        ..ReplSetConfig::default()
    };
    let set = MongoReplicaSet::start(cfg).await.expect("start");
    let state = run_script(&set, user.unwrap_or("")).await;

    // 1. what pymongo read back is exactly the primary's ground truth
    let state = state.as_object().expect("object");
    let expected_ns = [
        "shop.fresh",
        "shop.items",
        "shop.orders",
        "shop.people",
        "shop.renamed",
        "shop.retry",
    ];
    let mut names: Vec<&str> = state.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, expected_ns);
    for (ns, docs) in state {
        let from_driver: Vec<Document> = docs
            .as_array()
            .expect("array")
            .iter()
            .map(
                |d| match JsonBson::try_from(d.clone()).expect("extended JSON") {
                    JsonBson::Document(d) => d,
                    other => panic!("not a document: {other}"),
                },
            )
            .collect();
        assert_eq!(set.documents(0, ns), from_driver, "{ns}");
    }
    assert!(set.documents(0, "scratch.tmp").is_empty());
    assert!(set.documents(0, "shop.made").is_empty());

    // 2. the secondaries converge on the primary's oplog and data
    let last = set.last_applied(0);
    let converged = || {
        (1..3).all(|m| {
            set.oplog(m) == set.oplog(0)
                && expected_ns
                    .iter()
                    .all(|ns| set.documents(m, ns) == set.documents(0, ns))
        }) && set.commit_point(0) == last
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !converged() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(converged(), "secondaries did not converge on the primary");

    // 3. the oplog carries what MongoDB's does
    let oplog = set.oplog(0);
    let items_ui = set.shared().members[0]
        .store()
        .uuid("shop.items")
        .expect("items exists");
    for e in ["i", "u", "d"]
        .iter()
        .flat_map(|op| ops_on(&oplog, op, "shop.items"))
    {
        assert_eq!(e.get("ui"), Some(&Bson::Binary(items_ui.clone())), "{e}");
        // a retryable write's entries carry the whole session stamp
        if e.contains_key("lsid") {
            assert!(e.get_i64("txnNumber").is_ok(), "{e}");
            assert!(e.get_i32("stmtId").is_ok(), "{e}");
            assert!(e.get_document("prevOpTime").is_ok(), "{e}");
        }
    }
    // pymongo's single-document writes are retryable (multi ones, and bulk
    // writes containing them, are not and carry no session)
    let first = ops_on(&oplog, "i", "shop.items")[0];
    assert_eq!(
        first.get_document("o").unwrap().get_i32("_id").ok(),
        Some(1)
    );
    assert!(first.get_document("lsid").is_ok() && first.get_i32("stmtId").ok() == Some(0));
    let batch = ops_on(&oplog, "i", "shop.items");
    let stmt_ids: Vec<i32> = batch[1..29]
        .iter()
        .map(|e| e.get_i32("stmtId").expect("insert_many is retryable"))
        .collect();
    assert_eq!(
        stmt_ids,
        (0..28).collect::<Vec<_>>(),
        "insert_many statement ids"
    );
    let multi = ops_on(&oplog, "u", "shop.items")
        .into_iter()
        .filter(|e| {
            e.get_document("o2")
                .is_ok_and(|o2| o2.get_i32("_id").ok() == Some(7))
        })
        .count();
    assert_eq!(multi, 1);
    for e in ops_on(&oplog, "u", "shop.items") {
        let o = e.get_document("o").expect("o");
        // operator updates are $v:2 diffs; replacements (_id 2 and 9) whole documents
        assert!(
            o.get_i32("$v").ok() == Some(2) || o.contains_key("_id"),
            "{e}"
        );
    }
    // the retried statements: one insert and one update on shop.retry
    let retry_i = ops_on(&oplog, "i", "shop.retry");
    let retry_u = ops_on(&oplog, "u", "shop.retry");
    assert_eq!((retry_i.len(), retry_u.len()), (1, 1));
    assert_eq!(retry_i[0].get_i64("txnNumber").ok(), Some(1_000_007));
    assert_eq!(retry_u[0].get_i64("txnNumber").ok(), Some(1_000_008));
    assert_eq!(retry_u[0].get_i32("stmtId").ok(), Some(0));
    // one applyOps entry: the committed transaction; the aborted one left nothing
    let apply_ops: Vec<&Document> = oplog
        .iter()
        .filter(|e| {
            e.get_document("o")
                .is_ok_and(|o| o.contains_key("applyOps"))
        })
        .collect();
    assert_eq!(apply_ops.len(), 1);
    let txn = apply_ops[0];
    assert_eq!(txn.get_str("ns").ok(), Some("admin.$cmd"));
    assert!(txn.get_document("lsid").is_ok() && txn.get_i64("txnNumber").is_ok());
    let inner = txn
        .get_document("o")
        .unwrap()
        .get_array("applyOps")
        .unwrap();
    let kinds: Vec<(&str, &str)> = inner
        .iter()
        .filter_map(|e| e.as_document())
        .map(|e| (e.get_str("op").unwrap(), e.get_str("ns").unwrap()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("i", "shop.orders"),
            ("u", "shop.items"),
            ("d", "shop.orders")
        ]
    );
    assert!(inner
        .iter()
        .filter_map(|e| e.as_document())
        .all(|e| e.get("ui").is_some()));
    let text: String = oplog.iter().map(|e| e.to_string()).collect();
    assert!(
        !text.contains("\"t2\""),
        "the aborted transaction left entries"
    );
    assert!(!text.contains("aborted"), "the aborted update was logged");
    // DDL: create, rename (same ui), drop, dropDatabase
    let cmds: Vec<&Document> = oplog
        .iter()
        .filter(|e| e.get_str("op").ok() == Some("c"))
        .filter_map(|e| e.get_document("o").ok())
        .collect();
    let has = |k: &str, v: &str| cmds.iter().any(|o| o.get_str(k).ok() == Some(v));
    assert!(has("create", "made") && has("drop", "gone") && has("renameCollection", "shop.made"));
    assert!(cmds.iter().any(|o| o.contains_key("dropDatabase")));
    // index builds: two-phase on a collection with documents, one entry on an empty one
    assert!(has("commitIndexBuild", "people") && has("startIndexBuild", "people"));
    assert!(has("createIndexes", "fresh") && has("dropIndexes", "people"));
    // and the secondaries built the unique index too
    let secondary = set.shared().members[1].store();
    let people = secondary.collection("shop.people").expect("people");
    let names: Vec<&str> = people
        .indexes
        .specs()
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, vec!["email_1"]);
    drop(secondary);
    let ts: Vec<_> = oplog
        .iter()
        .filter_map(|e| e.get_timestamp("ts").ok())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]));
    set.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymongo_every_command_matches_ground_truth() {
    check(Ipv4Addr::new(127, 0, 70, 1), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymongo_every_command_with_scram_auth() {
    check(Ipv4Addr::new(127, 0, 71, 1), Some("tidemark")).await;
}
