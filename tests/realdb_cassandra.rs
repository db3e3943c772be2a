//! Real Apache Cassandra (3 nodes, RF 3, started by `scripts/cassandra.sh`) with the
//! real Python cassandra-driver as the client, tapped live on `lo` by `tidemark tap`.
//! The references are the driver (what each write's outcome was) and the cluster
//! itself (what a read at ALL returns afterwards), never tidemark.

mod realdb_support;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use realdb_support::{count, python, server, workload, Tally, Tap};
use serde_json::Value;

static CLUSTER: OnceLock<Result<String, String>> = OnceLock::new();

/// The 3-node cluster's contact points, started once for this test binary.
fn cluster() -> Option<String> {
    server(&CLUSTER, "cassandra.sh", &["3"])
}

/// Runs the driver workload in `ks` (protocol version, compression) under a live tap,
/// then checks the log against the driver's outcomes and against reads at ALL.
fn workload_matches_driver_and_cluster(ks: &str, protocol: &str, compression: &str) {
    let Some(hosts) = cluster() else { return };
    let tap = Tap::start("--cql-port", 9042);
    let driver = python(
        &workload("cql_workload.py"),
        &["write", ks, protocol, compression, &hosts],
        "",
    );
    let log = tap.finish();

    // The log's writes in this keyspace (the other test's keyspace shares the wire).
    let ours: Vec<&Value> = log
        .iter()
        .filter(|l| {
            l["namespace"]
                .as_str()
                .is_some_and(|n| n.starts_with(&format!("{ks}.")))
                && !l["op"].as_str().unwrap_or("").starts_with("create_")
        })
        .collect();

    // Every write the driver made, with the outcome the driver saw, and nothing else.
    let mut want = Tally::new();
    for d in &driver {
        let outcome = if d["applied"] == true {
            "committed"
        } else {
            "rejected"
        };
        count(
            &mut want,
            d["ns"].as_str().unwrap(),
            &d["key"],
            d["op"].as_str().unwrap(),
            outcome,
        );
    }
    let mut got = Tally::new();
    for l in &ours {
        count(
            &mut got,
            l["namespace"].as_str().unwrap(),
            &l["key"],
            l["op"].as_str().unwrap(),
            l["outcome"].as_str().unwrap(),
        );
    }
    assert!(driver.len() >= 60, "workload made {} writes", driver.len());
    assert_eq!(got, want, "tidemark's log differs from what the driver saw");
    // The rejected LWT says why.
    assert!(ours
        .iter()
        .any(|l| l["outcome"] == "rejected" && l["reason"] == "not_applied"));

    // Every committed write is readable at ALL: the last committed write of each key
    // decides what the cluster must hold (absent after a delete; otherwise each value
    // tidemark logged, as SELECT JSON renders it, unless a later write changed it).
    let mut last: BTreeMap<(String, String), (Value, BTreeMap<String, Value>)> = BTreeMap::new();
    for l in ours.iter().filter(|l| l["outcome"] == "committed") {
        let k = (
            l["namespace"].as_str().unwrap().to_string(),
            l["key"].to_string(),
        );
        let entry = last
            .entry(k)
            .or_insert_with(|| ((*l).clone(), BTreeMap::new()));
        if l["op"] == "delete" {
            entry.1.clear();
        }
        if let Some(vals) = l["values"].as_object() {
            for (c, v) in vals {
                entry.1.insert(c.clone(), v.clone());
            }
        }
        entry.0 = (*l).clone();
    }
    let keys: String = last
        .values()
        .map(|(l, _)| {
            serde_json::json!({"ns": l["namespace"], "key": l["key"]}).to_string() + "\n"
        })
        .collect();
    let rows = python(&workload("cql_workload.py"), &["read", ks, &hosts], &keys);
    assert_eq!(rows.len(), last.len());
    let mut checked_values = 0;
    for (row, (l, values)) in rows.iter().zip(last.values()) {
        let at = format!("{} {}", l["namespace"], l["key"]);
        if l["op"] == "delete" {
            assert!(row["row"].is_null(), "{at}: deleted, yet read {}", row["row"]);
            continue;
        }
        let r = &row["row"];
        assert!(r.is_object(), "{at}: committed but not readable at ALL");
        for (c, v) in values {
            assert_eq!(&r[c], v, "{at}: column {c}");
            checked_values += 1;
        }
        // Counter increments and collection appends carry no `values`: the
        // cluster's row must show what the logged operations did.
        for op in l["collection_ops"].as_array().into_iter().flatten() {
            let c = op["column"].as_str().unwrap();
            match op["op"].as_str().unwrap() {
                "increment" => assert_eq!(r[c], op["value"], "{at}: counter {c}"),
                "append" => assert_eq!(r[c], op["value"], "{at}: list {c}"),
                _ => assert!(!r[c].is_null(), "{at}: {c} empty"),
            }
        }
    }
    eprintln!(
        "realdb: {ks}: {} driver writes, {} logged, {} keys read at ALL, {checked_values} values compared",
        driver.len(),
        ours.len(),
        rows.len()
    );
    assert!(
        checked_values > 300,
        "only {checked_values} values compared"
    );
}

#[test]
fn python_driver_v4_lz4_workload_is_logged_as_the_driver_saw_it() {
    workload_matches_driver_and_cluster("realdb_v4", "4", "lz4");
}

#[test]
fn python_driver_v5_workload_is_logged_as_the_driver_saw_it() {
    workload_matches_driver_and_cluster("realdb_v5", "5", "none");
}
