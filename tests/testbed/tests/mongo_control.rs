//! The replica set's control routes: partition the primary, wait for the
//! new one, heal, and read the rollback and the committed state back as
//! JSON; bad routes, members and bodies are refused with 4xx.

mod common;

use common::Client;
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tidemark_testbed::mongo::control::{handle, Refusal};
use tidemark_testbed::mongo::tidemark_mongo::bson::doc;
use tidemark_testbed::{MongoReplicaSet, ReplSetConfig};

async fn call(
    set: &Arc<MongoReplicaSet>,
    method: &str,
    path: &str,
    body: Value,
) -> Result<Value, Refusal> {
    handle(set.clone(), method, path, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_routes_drive_a_failover_and_report_the_rollback() {
    let set = Arc::new(
        MongoReplicaSet::start(ReplSetConfig {
            base_addr: Ipv4Addr::new(127, 0, 55, 1),
            port: 0,
            max_await: Duration::from_millis(500),
            election_timeout: Duration::from_secs(3),
            heartbeat_interval: Duration::from_millis(300),
            ..ReplSetConfig::default()
        })
        .await
        .expect("start"),
    );
    let members = call(&set, "GET", "/members", Value::Null)
        .await
        .expect("members");
    assert_eq!(members.as_array().map(Vec::len), Some(3));
    assert_eq!(members[0]["state"], "PRIMARY");
    assert_eq!(members[1]["state"], "SECONDARY");

    let mut c = Client::connect(set.addresses()[0]).await;
    c.command(
        doc! { "insert": "c", "documents": [{ "_id": 1 }], "writeConcern": { "w": "majority" }, "$db": "t" },
        0,
        None,
    )
    .await;
    call(&set, "POST", "/members/0/partition", Value::Null)
        .await
        .expect("partition");
    let (_, d) = c
        .command(
            doc! { "insert": "c", "documents": [{ "_id": 2 }], "$db": "t" },
            0,
            None,
        )
        .await;
    assert_eq!(
        d.get_i32("n").ok(),
        Some(1),
        "w:1 on the partitioned primary: {d}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let new = loop {
        let p = call(&set, "POST", "/wait-primary", json!({ "timeout_ms": 1000 })).await;
        if let Ok(p) = p {
            if p["primary"] != 0 {
                assert_eq!(p["term"], 2);
                break p["primary"].as_u64().expect("index") as usize;
            }
        }
        assert!(Instant::now() < deadline, "no new primary");
    };
    let elections = call(&set, "GET", "/elections", Value::Null)
        .await
        .expect("elections");
    assert_eq!(elections[0]["member"], new);
    call(&set, "POST", "/members/0/heal", Value::Null)
        .await
        .expect("heal");
    let rollbacks = loop {
        let r = call(&set, "GET", "/rollbacks", Value::Null)
            .await
            .expect("rollbacks");
        if r.as_array().is_some_and(|a| !a.is_empty()) {
            break r;
        }
        assert!(Instant::now() < deadline, "no rollback");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(rollbacks[0]["member"], 0);
    let undone: Vec<&Value> = rollbacks[0]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["op"] == "i")
        .collect();
    assert_eq!(undone.len(), 1);
    assert_eq!(undone[0]["o"], json!({ "_id": 2 }));
    assert_eq!(rollbacks[0]["documents"][0]["before"], json!({ "_id": 2 }));

    let state = call(&set, "GET", "/committed-state", Value::Null)
        .await
        .expect("state");
    assert_eq!(state["state"]["t.c"], json!([{ "_id": 1 }]));
    let oplog = call(&set, "GET", &format!("/members/{new}/oplog"), Value::Null)
        .await
        .expect("oplog");
    assert_eq!(
        oplog.as_array().expect("array").last().expect("entry")["t"],
        2
    );
    let truth = call(&set, "GET", "/truth", Value::Null)
        .await
        .expect("truth");
    assert_eq!(truth["rollbacks"], rollbacks);
    assert!(truth["commit_point_history"]
        .as_array()
        .is_some_and(|h| !h.is_empty()));

    // refusals
    let e = call(&set, "GET", "/nowhere", Value::Null)
        .await
        .unwrap_err();
    assert_eq!(e.status, 404);
    let e = call(&set, "POST", "/members/7/stop", Value::Null)
        .await
        .unwrap_err();
    assert_eq!(e.status, 404);
    let e = call(&set, "POST", "/committed-state", json!({ "t": "x" }))
        .await
        .unwrap_err();
    assert_eq!(e.status, 400);
    let e = call(
        &set,
        "POST",
        "/committed-state",
        json!({ "t": 99, "ts": [0, 0] }),
    )
    .await
    .unwrap_err();
    assert_eq!(e.status, 409, "{}", e.message);
    let e = call(
        &set,
        "POST",
        &format!("/members/{}/stepdown", (new + 1) % 3),
        Value::Null,
    )
    .await
    .unwrap_err();
    assert_eq!(e.status, 409, "only the primary steps down");

    // stop and start through the routes
    call(&set, "POST", "/members/2/stop", Value::Null)
        .await
        .expect("stop");
    let m = call(&set, "GET", "/members/2", Value::Null)
        .await
        .expect("member");
    assert_eq!(m["state"], "DOWN");
    call(&set, "POST", "/members/2/start", Value::Null)
        .await
        .expect("start");
    let m = call(&set, "GET", "/members/2", Value::Null)
        .await
        .expect("member");
    assert_eq!(m["up"], true);
}
