//! The replica set's control endpoint over real HTTP (the generic
//! `control::ControlServer` with the Mongo routes): partition the primary,
//! wait for the new one, heal, and read the rollback and the committed
//! state back as JSON; bad routes, members and bodies are refused with 4xx.
//! And `tidemark-testbed mongo --control ADDR` serves the same.

mod common;

use common::Client;
use serde_json::{json, Value};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tidemark_testbed::control::ControlServer;
use tidemark_testbed::mongo::server::control::{handler, Refusal};
use tidemark_testbed::mongo::tidemark_mongo::bson::doc;
use tidemark_testbed::{MongoReplicaSet, ReplSetConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One HTTP/1.1 request (`Connection: close`); the JSON answer, or the
/// status and `error` message of a refusal.
async fn http(addr: SocketAddr, method: &str, path: &str, body: Value) -> Result<Value, Refusal> {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut sock = TcpStream::connect(addr).await.expect("connect");
        sock.write_all(req.as_bytes()).await.expect("write");
        let mut out = Vec::new();
        sock.read_to_end(&mut out).await.expect("read");
        out
    };
    let out = tokio::time::timeout(Duration::from_secs(90), exchange)
        .await
        .expect("control answer in time");
    let text = String::from_utf8(out).expect("utf-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let v: Value = serde_json::from_str(body).expect("JSON body");
    if status == 200 {
        Ok(v)
    } else {
        Err(Refusal {
            status,
            message: v["error"].as_str().unwrap_or_default().to_string(),
        })
    }
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
    let server = ControlServer::start(
        "127.0.55.100:0".parse().expect("addr"),
        handler(set.clone()),
    )
    .await
    .expect("control endpoint");
    let ctl = server.local_addr();
    let members = http(ctl, "GET", "/members", Value::Null)
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
    http(ctl, "POST", "/members/0/partition", Value::Null)
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
        let p = http(ctl, "POST", "/wait-primary", json!({ "timeout_ms": 1000 })).await;
        if let Ok(p) = p {
            if p["primary"] != 0 {
                assert_eq!(p["term"], 2);
                break p["primary"].as_u64().expect("index") as usize;
            }
        }
        assert!(Instant::now() < deadline, "no new primary");
    };
    let elections = http(ctl, "GET", "/elections", Value::Null)
        .await
        .expect("elections");
    assert_eq!(elections[0]["member"], new);
    http(ctl, "POST", "/members/0/heal", Value::Null)
        .await
        .expect("heal");
    let rollbacks = loop {
        let r = http(ctl, "GET", "/rollbacks", Value::Null)
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

    let state = http(ctl, "GET", "/committed-state", Value::Null)
        .await
        .expect("state");
    assert_eq!(state["state"]["t.c"], json!([{ "_id": 1 }]));
    let oplog = http(ctl, "GET", &format!("/members/{new}/oplog"), Value::Null)
        .await
        .expect("oplog");
    assert_eq!(
        oplog.as_array().expect("array").last().expect("entry")["t"],
        2
    );
    let truth = http(ctl, "GET", "/truth", Value::Null)
        .await
        .expect("truth");
    assert_eq!(truth["rollbacks"], rollbacks);
    assert!(truth["commit_point_history"]
        .as_array()
        .is_some_and(|h| !h.is_empty()));

    // refusals
    let e = http(ctl, "GET", "/nowhere", Value::Null).await.unwrap_err();
    assert_eq!(e.status, 404);
    let e = http(ctl, "POST", "/members/7/stop", Value::Null)
        .await
        .unwrap_err();
    assert_eq!(e.status, 404);
    let e = http(ctl, "POST", "/committed-state", json!({ "t": "x" }))
        .await
        .unwrap_err();
    assert_eq!(e.status, 400);
    let e = http(
        ctl,
        "POST",
        "/committed-state",
        json!({ "t": 99, "ts": [0, 0] }),
    )
    .await
    .unwrap_err();
    assert_eq!(e.status, 409, "{}", e.message);
    let e = http(
        ctl,
        "POST",
        &format!("/members/{}/stepdown", (new + 1) % 3),
        Value::Null,
    )
    .await
    .unwrap_err();
    assert_eq!(e.status, 409, "only the primary steps down");

    // stop and start through the routes
    http(ctl, "POST", "/members/2/stop", Value::Null)
        .await
        .expect("stop");
    let m = http(ctl, "GET", "/members/2", Value::Null)
        .await
        .expect("member");
    assert_eq!(m["state"], "DOWN");
    http(ctl, "POST", "/members/2/start", Value::Null)
        .await
        .expect("start");
    let m = http(ctl, "GET", "/members/2", Value::Null)
        .await
        .expect("member");
    assert_eq!(m["up"], true);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_the_control_endpoint() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tidemark-testbed"))
        .args([
            "mongo",
            "--base-addr",
            "127.0.57.1",
            "--port",
            "0",
            "--election-timeout-ms",
            "3000",
            "--heartbeat-interval-ms",
            "300",
            "--control",
            "127.0.57.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run tidemark-testbed");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ctl: SocketAddr = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("startup in time")
            .expect("read")
            .expect("the binary printed its control address");
        if let Some(a) = line.strip_prefix("control endpoint: http://") {
            break a.parse().expect("address");
        }
    };
    let members = http(ctl, "GET", "/members", Value::Null)
        .await
        .expect("members");
    assert_eq!(members.as_array().map(Vec::len), Some(3));
    let p = http(ctl, "POST", "/stepdown", json!({ "secs": 60 }))
        .await
        .expect("stepdown");
    assert_eq!(p["stepped_down"], 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = http(ctl, "GET", "/primary", Value::Null)
            .await
            .expect("primary");
        if p["primary"].as_u64().is_some_and(|p| p != 0) {
            assert_eq!(p["term"], 2);
            break;
        }
        assert!(Instant::now() < deadline, "no new primary");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let e = http(ctl, "POST", "/members/x/stop", Value::Null)
        .await
        .unwrap_err();
    assert_eq!(e.status, 404);
    child.kill().await.expect("kill");
}
