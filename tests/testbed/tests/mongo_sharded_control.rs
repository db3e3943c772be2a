//! `tidemark-testbed mongo-sharded` as a process: it prints its routers and
//! control endpoint; a raw wire client drives a router (sharding commands,
//! inserts) and the control routes move and split chunks, toggle the
//! balancer, and answer with ground truth (chunks, history, migrations, the
//! logical state now and as of a wall-clock time, a shard's raw state, each
//! replica set's own routes). Bad input — bad routes, shards, bodies on the
//! control endpoint; malformed sharding and CRUD commands on the router;
//! bad command-line arguments — gets a clear refusal, never a hang or a
//! dead connection.

mod common;

use common::Client;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use tidemark_testbed::mongo::server::control::Refusal;
use tidemark_testbed::mongo::tidemark_mongo::bson::{doc, Bson, Document};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

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
    let out = tokio::time::timeout(Duration::from_secs(60), exchange)
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

async fn cmd(c: &mut Client, d: Document) -> Document {
    c.command(d, 0, None).await.1
}

fn ok(d: &Document) -> bool {
    d.get_f64("ok").ok() == Some(1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_routers_and_the_control_endpoint() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tidemark-testbed"))
        .args([
            "mongo-sharded",
            "--shards",
            "2",
            "--members",
            "1",
            "--routers",
            "1",
            "--base-addr",
            "127.0.156.1",
            "--port",
            "0",
            "--control",
            "127.0.156.99:0",
            "--range-deleter-delay-ms",
            "100",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run tidemark-testbed");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut router, mut ctl): (Option<SocketAddr>, Option<SocketAddr>) = (None, None);
    while router.is_none() || ctl.is_none() {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("startup in time")
            .expect("read")
            .expect("the binary printed its router and control addresses");
        if let Some(a) = line.strip_prefix("router listening on ") {
            router = Some(a.parse().expect("router address"));
        }
        if let Some(a) = line.strip_prefix("control endpoint: http://") {
            ctl = Some(a.parse().expect("control address"));
        }
    }
    let (router, ctl) = (router.unwrap(), ctl.unwrap());
    let mut c = Client::connect(router).await;
    let hello = cmd(&mut c, doc! { "hello": 1, "$db": "admin" }).await;
    assert_eq!(hello.get_str("msg").ok(), Some("isdbgrid"), "{hello}");
    assert!(ok(&cmd(
        &mut c,
        doc! { "shardCollection": "cc.c", "key": { "k": 1 }, "$db": "admin" }
    )
    .await));
    let docs: Vec<Bson> = (0..100)
        .map(|i| Bson::Document(doc! { "_id": i, "k": i }))
        .collect();
    let r = cmd(
        &mut c,
        doc! { "insert": "c", "documents": docs, "$db": "cc" },
    )
    .await;
    assert_eq!(r.get_i32("n").ok(), Some(100), "{r}");

    // bad input on the router: refused, and the connection stays usable
    for (bad, code) in [
        (doc! { "split": "cc.c", "$db": "admin" }, None),
        (
            doc! { "split": "nope.x", "middle": { "k": 1 }, "$db": "admin" },
            None,
        ),
        (
            doc! { "moveChunk": "cc.c", "find": { "k": 1 }, "to": "shard9", "$db": "admin" },
            None,
        ),
        (doc! { "moveChunk": "cc.c", "$db": "admin" }, None),
        (
            doc! { "shardCollection": "cc.d", "key": { "a": 1, "b": 1 }, "$db": "admin" },
            None,
        ),
        (
            doc! { "shardCollection": "cc.c", "key": { "k": 1 }, "$db": "admin" },
            None,
        ),
        (doc! { "insert": "c", "$db": "cc" }, Some(9)),
        (
            doc! { "insert": "", "documents": [], "$db": "cc" },
            Some(73),
        ),
        (doc! { "find": 5, "$db": "cc" }, Some(73)),
        (
            doc! { "getMore": 12345i64, "collection": "c", "$db": "cc" },
            Some(43),
        ),
        (
            doc! { "update": "c", "updates": [{ "q": {}, "u": { "$set": { "x": 1 } }, "upsert": true }], "$db": "cc" },
            None,
        ),
        (doc! { "frobnicate": 1, "$db": "cc" }, Some(59)),
    ] {
        let r = cmd(&mut c, bad.clone()).await;
        let refused = !ok(&r) || r.contains_key("writeErrors");
        assert!(refused, "{bad} was accepted: {r}");
        if let Some(code) = code {
            assert_eq!(r.get_i32("code").ok(), Some(code), "{bad}: {r}");
        }
    }
    assert!(ok(&cmd(&mut c, doc! { "ping": 1, "$db": "admin" }).await));

    // chunk operations and ground truth over the control endpoint
    http(ctl, "POST", "/split", json!({ "ns": "cc.c", "middle": 50 }))
        .await
        .expect("split");
    let m = http(
        ctl,
        "POST",
        "/move-chunk",
        json!({ "ns": "cc.c", "find": { "k": 60 }, "to": "shard1" }),
    )
    .await
    .expect("move");
    assert_eq!(
        (m["from"].as_str(), m["cloned"].as_u64()),
        (Some("shard0"), Some(50))
    );
    let chunks = http(ctl, "GET", "/chunks", Value::Null)
        .await
        .expect("chunks");
    let owners: Vec<&str> = chunks[0]["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["shard"].as_str().unwrap())
        .collect();
    assert_eq!(owners, vec!["shard0", "shard1"]);
    let history = http(ctl, "GET", "/chunk-map-history", Value::Null)
        .await
        .expect("history");
    let what: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["what"].as_str().unwrap())
        .collect();
    assert_eq!(what, vec!["shardCollection", "split", "moveChunk"]);
    let migrations = http(ctl, "GET", "/migrations", Value::Null)
        .await
        .expect("migrations");
    assert_eq!(migrations.as_array().map(Vec::len), Some(1));
    let raw1 = http(ctl, "GET", "/shards/shard1/raw-state", Value::Null)
        .await
        .expect("raw");
    assert_eq!(raw1["cc.c"].as_array().map(Vec::len), Some(50));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let state = http(ctl, "POST", "/logical-state", json!({ "wall_ms": now }))
        .await
        .expect("state at now");
    assert_eq!(state["cc.c"].as_array().map(Vec::len), Some(100));
    let current = http(ctl, "GET", "/logical-state", Value::Null)
        .await
        .expect("state");
    assert_eq!(current, state);
    let p = http(ctl, "GET", "/shards/shard0/rs/primary", Value::Null)
        .await
        .expect("a set's own route");
    assert_eq!(p["primary"], 0);
    let b = http(
        ctl,
        "POST",
        "/balancer",
        json!({ "enabled": true, "mode": "even", "interval_ms": 50 }),
    )
    .await
    .expect("balancer");
    assert_eq!(b["mode"], "even");
    let truth = http(ctl, "GET", "/truth", Value::Null)
        .await
        .expect("truth");
    for k in [
        "shards",
        "routers",
        "chunks",
        "chunk_map_history",
        "logical_state",
        "raw_state",
        "migrations",
        "range_deletions",
    ] {
        assert!(truth.get(k).is_some(), "truth lacks {k}");
    }
    for (method, path, body, status) in [
        ("GET", "/nope", Value::Null, 404),
        ("GET", "/shards/shard9/raw-state", Value::Null, 404),
        ("POST", "/balancer", json!({ "mode": "sideways" }), 400),
        (
            "POST",
            "/move-chunk",
            json!({ "ns": "nope.x", "find": { "k": 1 }, "to": "shard1" }),
            404,
        ),
        (
            "POST",
            "/move-chunk",
            json!({ "ns": "cc.c", "find": { "k": 1 }, "to": "shard0" }),
            409,
        ),
        ("POST", "/split", json!({ "ns": "cc.c" }), 400),
        ("POST", "/logical-state", json!({ "when": 1 }), 400),
        ("POST", "/range-deleter", json!({}), 400),
        ("GET", "/shards/shard0/rs/members/7", Value::Null, 404),
    ] {
        let e = http(ctl, method, path, body.clone()).await.expect_err(path);
        assert_eq!(e.status, status, "{method} {path} {body}: {}", e.message);
        assert!(!e.message.is_empty());
    }
    child.kill().await.expect("kill");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_exit_non_zero_with_a_reason() {
    for args in [
        vec![
            "mongo-sharded",
            "--shards",
            "0",
            "--port",
            "0",
            "--base-addr",
            "127.0.157.1",
        ],
        vec![
            "mongo-sharded",
            "--routers",
            "0",
            "--port",
            "0",
            "--base-addr",
            "127.0.157.1",
        ],
        vec!["mongo-sharded", "--shards", "two"],
    ] {
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new(env!("CARGO_BIN_EXE_tidemark-testbed"))
                .args(&args)
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("exits in time")
        .expect("run");
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("shards") || err.contains("routers"),
            "{args:?}: {err}"
        );
    }
}
