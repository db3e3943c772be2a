//! Faults, membership and the control endpoint of the CQL testbed.
//!
//! `python_driver_faults` runs the real Python `cassandra-driver`
//! (`tests/py/cql_faults.py`) against a 3-node testbed while it injects faults over
//! the control endpoint (real HTTP): slow replica → WriteTimeout 2/3 at ALL, two
//! nodes down → Unavailable, hints after restart, a fourth node added and removed.
//! Needs python3 with the driver (through `require`). The other tests
//! speak HTTP to the control endpoint directly and check the cluster's ground truth.

mod py_support;
#[path = "../../require/mod.rs"]
mod require;

use serde_json::{json, Value};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tidemark_testbed::{ClusterConfig, CqlCluster};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(20);

async fn cluster(base: Ipv4Addr) -> CqlCluster {
    let cfg = ClusterConfig {
        base_addr: base,
        port: 0,
        write_timeout: Duration::from_millis(500),
        ..ClusterConfig::default()
    };
    CqlCluster::start(cfg).await.expect("start cluster")
}

/// One HTTP/1.1 request on a fresh connection; (status, JSON body).
async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let body = body.unwrap_or("");
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: testbed\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.expect("connect control");
        s.write_all(raw.as_bytes()).await.expect("send");
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.expect("read");
        out
    };
    let out = tokio::time::timeout(T, exchange)
        .await
        .expect("control answered");
    let text = String::from_utf8(out).expect("utf-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("content-length");
    assert_eq!(len, body.len(), "Content-Length matches the body");
    (status, serde_json::from_str(body).expect("JSON body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_driver_faults() {
    if !require::python_modules(&["cassandra"]) {
        return;
    }
    let cluster = cluster(Ipv4Addr::new(127, 0, 20, 1)).await;
    let control = cluster
        .start_control("127.0.20.100:0".parse().unwrap())
        .await
        .expect("control endpoint");
    let addr = cluster.addresses()[0];
    let stdout = py_support::run_script(
        "cql_faults.py",
        &[
            addr.ip().to_string(),
            addr.port().to_string(),
            format!("http://{}", control.local_addr()),
        ],
        Duration::from_secs(300),
    )
    .await;
    assert!(stdout.contains("WriteTimeout 5 2 3"), "{stdout}");
    assert!(stdout.contains("Unavailable 4 2 1"), "{stdout}");
    // Ground truth after the script: 3 nodes again, no hints left, 10 QUORUM + 2
    // timed-out ALL + 10 ONE + 20 after-add keys.
    assert_eq!(cluster.addresses().len(), 3);
    assert_eq!(cluster.hints_pending(), 0);
    let logical = cluster.logical_state();
    assert_eq!(logical.iter().filter(|c| c.column == "v").count(), 42);
    control.stop();
    cluster.stop();
}

/// The control endpoint over real HTTP: every route, its refusals (4xx with an
/// `error`), and that the effects are real (connections closed, ring changed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_endpoint_over_http() {
    let cluster = cluster(Ipv4Addr::new(127, 0, 24, 1)).await;
    let control = cluster
        .start_control("127.0.24.100:0".parse().unwrap())
        .await
        .expect("control endpoint");
    let c = control.local_addr();

    let (status, nodes) = http(c, "GET", "/nodes", None).await;
    assert_eq!(status, 200);
    let nodes = nodes.as_array().expect("array").clone();
    assert_eq!(nodes.len(), 5, "3 nodes + 2 spare slots");
    assert_eq!(
        nodes.iter().filter(|n| n["joined"] == json!(true)).count(),
        3
    );
    assert_eq!(
        nodes[1]["address"],
        json!(cluster.addresses()[1].to_string())
    );

    // Stopping node 1 closes a connection open to it.
    let mut open = TcpStream::connect(cluster.addresses()[1])
        .await
        .expect("connect node 1");
    let (status, node) = http(c, "POST", "/nodes/1/stop", None).await;
    assert_eq!((status, &node["alive"]), (200, &json!(false)));
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(T, open.read(&mut buf))
        .await
        .expect("connection closed after stop");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    // The listener closes on the node's own task: under load a connect may still
    // land in its backlog for a moment after the stop answered.
    let refused = async {
        while TcpStream::connect(cluster.addresses()[1]).await.is_ok() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(T, refused)
        .await
        .expect("a stopped node refuses connections");
    let (status, err) = http(c, "POST", "/nodes/1/stop", None).await;
    assert_eq!(status, 409, "{err}");
    let (status, node) = http(c, "POST", "/nodes/1/start", None).await;
    assert_eq!((status, &node["alive"]), (200, &json!(true)));
    TcpStream::connect(cluster.addresses()[1])
        .await
        .expect("node 1 listens again");

    // Faults and clocks.
    let (status, node) = http(c, "POST", "/nodes/2/slow", Some(r#"{"delay_ms": 750}"#)).await;
    assert_eq!(status, 200);
    assert_eq!(node["fault"]["delay_ms"], json!(750));
    let (status, node) = http(c, "POST", "/nodes/2/heal", None).await;
    assert_eq!((status, &node["fault"]["delay_ms"]), (200, &json!(0)));
    let (status, node) = http(c, "POST", "/nodes/0/skew", Some(r#"{"micros": -5000}"#)).await;
    assert_eq!((status, &node["clock_skew_micros"]), (200, &json!(-5000)));

    // Membership: add a node (index 3), see it everywhere, remove it again.
    let (status, added) = http(c, "POST", "/nodes/add", None).await;
    assert_eq!(
        (status, &added["index"], &added["joined"]),
        (200, &json!(3), &json!(true))
    );
    assert_eq!(cluster.addresses().len(), 4);
    let (status, dump) = http(c, "GET", "/nodes/3/dump", None).await;
    assert_eq!((status, dump.is_array()), (200, true));
    let (status, node) = http(c, "POST", "/nodes/3/remove", None).await;
    assert_eq!((status, &node["joined"]), (200, &json!(false)));
    assert_eq!(cluster.addresses().len(), 3);
    let (status, state) = http(c, "GET", "/state", None).await;
    assert_eq!(status, 200);
    assert!(state["logical"].is_array() && state["hints_pending"] == json!(0));

    // Refusals.
    for (method, path, body, want) in [
        ("POST", "/nodes/9/stop", None, 404),
        ("POST", "/nodes/x/stop", None, 400),
        ("POST", "/nodes/0/slow", Some(r#"{"delay": 1}"#), 400),
        ("POST", "/nodes/0/slow", Some("{not json"), 400),
        ("POST", "/nodes/0/skew", Some(r#"{"micros": "soon"}"#), 400),
        ("POST", "/nodes/3/stop", None, 409),
        ("GET", "/nowhere", None, 404),
        ("DELETE", "/nodes", None, 404),
    ] {
        let (status, err) = http(c, method, path, body).await;
        assert_eq!(status, want, "{method} {path}: {err}");
        assert!(err["error"].is_string(), "{err}");
    }
    control.stop();
    cluster.stop();
}
