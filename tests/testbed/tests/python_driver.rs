//! The real Python `cassandra-driver` against a 3-node testbed: peer discovery,
//! schema metadata, prepared INSERTs at QUORUM, reads. Needs python3 with the
//! driver (through `require`). Each test uses its own 127.0.0.x addresses and
//! an ephemeral port, so tests can run in parallel.

#[path = "../../require/mod.rs"]
mod require;

use std::net::Ipv4Addr;
use std::time::Duration;
use tidemark_testbed::{ClusterConfig, CqlCluster};

async fn run(base: Ipv4Addr, protocol: u8) {
    if !require::python_modules(&["cassandra"]) {
        return;
    }
    let cfg = ClusterConfig {
        base_addr: base,
        port: 0,
        ..ClusterConfig::default()
    };
    let cluster = CqlCluster::start(cfg).await.expect("start cluster");
    let addr = cluster.addresses()[0];
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/basic_quorum.py");
    let child = tokio::process::Command::new("python3")
        .args([
            script,
            &addr.ip().to_string(),
            &addr.port().to_string(),
            &protocol.to_string(),
        ])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), child)
        .await
        .expect("driver script timed out")
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // Ground truth: RF 3, QUORUM writes, all nodes alive → every replica has the rows.
    let logical = cluster.logical_state();
    assert_eq!(logical.iter().filter(|c| c.column == "v").count(), 39);
    for node in 0..3 {
        assert!(cluster.replica_dump(node).iter().any(|c| c.table == "t"));
    }
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_driver_default_protocol() {
    run(Ipv4Addr::new(127, 0, 10, 1), 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_driver_protocol_v4() {
    run(Ipv4Addr::new(127, 0, 11, 1), 4).await;
}
