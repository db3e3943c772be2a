//! The saved real-server captures (`captures/realdb.md`, made by
//! `captures/tools/record_realdb.sh`), tapped from the pcap with no server and no JVM,
//! held against their truth files exactly as the live realdb tests hold a live tap
//! against the driver and the server: the truth is what the driver saw and what the
//! server held afterwards, never tidemark's output.

mod realdb_support;

use realdb_support::cql_check::log_matches_driver_and_cluster;
use realdb_support::mongo_check::log_matches_driver_and_server;
use realdb_support::{root, tap_pcap};
use serde_json::Value;

/// A capture's truth file.
fn truth(name: &str) -> Value {
    let p = root().join("captures").join(format!("{name}.truth.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

/// pymongo against FerretDB (a standalone on port 27018).
#[test]
fn ferretdb_pymongo_capture_is_logged_as_the_driver_saw_it_and_the_server_held_it() {
    let t = truth("ferretdb_pymongo");
    let log = tap_pcap(
        &root().join("captures/ferretdb_pymongo.pcap"),
        &["--mongo-port", "27018"],
    );
    log_matches_driver_and_server(
        t["database"].as_str().unwrap(),
        t["writes"].as_array().unwrap(),
        &log,
        t["held"].as_array().unwrap(),
    );
}

/// Python cassandra-driver, protocol v4 with lz4, against 3-node Cassandra 5.0.9 at RF 3:
/// the live test's checks, the read at ALL taken from the truth's `held`.
#[test]
fn cassandra5_v4_lz4_capture_is_logged_as_the_driver_saw_it_and_the_cluster_held_it() {
    let t = truth("cassandra5_v4_lz4");
    let log = tap_pcap(&root().join("captures/cassandra5_v4_lz4.pcap"), &[]);
    let held = t["held"].as_array().unwrap();
    let read = |keys: &str| -> Vec<Value> {
        keys.lines()
            .map(|l| {
                let k: Value = serde_json::from_str(l).unwrap();
                held.iter()
                    .find(|h| h["ns"] == k["ns"] && h["key"] == k["key"])
                    .unwrap_or_else(|| panic!("the truth read no row for {k}"))
                    .clone()
            })
            .collect()
    };
    let driver = t["writes"].as_array().unwrap();
    assert!(driver.len() >= 60, "{} writes", driver.len());
    let checked =
        log_matches_driver_and_cluster(t["keyspace"].as_str().unwrap(), driver, &log, &read);
    assert!(checked > 300, "only {checked} values compared");
}
