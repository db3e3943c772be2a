//! Faults, membership and the control endpoint of the CQL testbed.
//!
//! `python_driver_faults` runs the real Python `cassandra-driver`
//! (`tests/py/cql_faults.py`) against a 3-node testbed while it injects faults over
//! the control endpoint (real HTTP): slow replica → WriteTimeout 2/3 at ALL, two
//! nodes down → Unavailable, hints after restart, a fourth node added and removed.
//! Skips (with a message) when python3 or the driver is missing. The other tests
//! speak HTTP to the control endpoint directly and check the cluster's ground truth.

use serde_json::{json, Value};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;
use tidemark_testbed::{ClusterConfig, CqlCluster};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(20);

fn driver_available() -> bool {
    Command::new("python3")
        .args(["-c", "import cassandra"])
        .output()
        .is_ok_and(|o| o.status.success())
}

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
    if !driver_available() {
        eprintln!("SKIPPED: python3 with cassandra-driver not available");
        return;
    }
    let cluster = cluster(Ipv4Addr::new(127, 0, 20, 1)).await;
    let control = cluster
        .start_control("127.0.20.100:0".parse().unwrap())
        .await
        .expect("control endpoint");
    let addr = cluster.addresses()[0];
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/cql_faults.py");
    let child = tokio::process::Command::new("python3")
        .args([
            script,
            &addr.ip().to_string(),
            &addr.port().to_string(),
            &format!("http://{}", control.local_addr()),
        ])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), child)
        .await
        .expect("driver script timed out")
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
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
