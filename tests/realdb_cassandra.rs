//! Real Apache Cassandra (3 nodes, RF 3, started by `scripts/cassandra.sh`) with the
//! real Python cassandra-driver as the client, tapped live on `lo` by `tidemark tap`.
//! The references are the driver (what each write's outcome was) and the cluster
//! itself (what a read at ALL returns afterwards), never tidemark.

mod realdb_support;
#[path = "realdb_support/scylla_workload.rs"]
mod scylla_workload;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{OnceLock, RwLock, RwLockReadGuard};

use realdb_support::cql_check::{in_keyspace, log_matches_driver_and_cluster};
use realdb_support::{python, server, workload, Tap};
use serde_json::Value;

static CLUSTER: OnceLock<Result<String, String>> = OnceLock::new();

/// The fault test pauses a node: it runs alone (write lock); the others share.
static EXCLUSIVE: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    EXCLUSIVE.read().unwrap_or_else(|e| e.into_inner())
}

/// Reads `{"ns", "key"}` lines at ALL from the live cluster (`cql_workload.py read`).
fn read_at_all<'a>(ks: &'a str, hosts: &'a str) -> impl Fn(&str) -> Vec<Value> + 'a {
    move |keys| python(&workload("cql_workload.py"), &["read", ks, hosts], keys)
}

/// The 3-node cluster's contact points, started once for this test binary.
fn cluster() -> Option<String> {
    server(&CLUSTER, "cassandra.sh", &["3"])
}

/// Runs the driver workload in `ks` (protocol version, compression) under a live tap,
/// then checks the log against the driver's outcomes and against reads at ALL.
fn workload_matches_driver_and_cluster(ks: &str, protocol: &str, compression: &str) {
    let _shared = shared();
    let Some(hosts) = cluster() else { return };
    let tap = Tap::start("--cql-port", 9042);
    let driver = python(
        &workload("cql_workload.py"),
        &["write", ks, protocol, compression, &hosts],
        "",
    );
    let log = tap.finish();
    assert!(driver.len() >= 60, "workload made {} writes", driver.len());
    let checked_values =
        log_matches_driver_and_cluster(ks, &driver, &log, &read_at_all(ks, &hosts));
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

/// The Rust `scylla` crate (a second, independent driver: its own prepared-statement
/// metadata handling, its own batch encoding, protocol v4) at RF 3, tapped live: the
/// same checks as the Python workloads.
#[test]
fn scylla_driver_workload_is_logged_as_the_driver_saw_it() {
    let _shared = shared();
    let Some(hosts) = cluster() else { return };
    let ks = "realdb_scylla";
    let tap = Tap::start("--cql-port", 9042);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let driver = rt
        .block_on(scylla_workload::run(ks, &hosts))
        .unwrap_or_else(|e| panic!("scylla workload: {e}"));
    let log = tap.finish();
    assert!(driver.len() >= 40, "workload made {} writes", driver.len());
    let checked_values =
        log_matches_driver_and_cluster(ks, &driver, &log, &read_at_all(ks, &hosts));
    assert!(
        checked_values > 150,
        "only {checked_values} values compared"
    );
}

/// 10,000 prepared INSERTs at QUORUM, 64 in flight, tapped: 0 writes lost (every write
/// the driver saw acknowledged is committed in the log) and 0 wrongly committed (every
/// committed write is in the table read at ALL, with its value; none the driver saw
/// fail is committed).
#[test]
fn ten_thousand_quorum_writes_none_lost_none_wrongly_committed() {
    let _shared = shared();
    let Some(hosts) = cluster() else { return };
    let ks = "realdb_bulk";
    let tap = Tap::start("--cql-port", 9042);
    let driver = python(
        &workload("cql_workload.py"),
        &["bulk", ks, "10000", &hosts],
        "",
    );
    let log = tap.finish();
    let acked: BTreeSet<i64> = driver
        .iter()
        .filter(|d| d["applied"] == true)
        .map(|d| d["key"]["k"].as_i64().unwrap())
        .collect();
    let committed: BTreeMap<i64, &Value> = in_keyspace(&log, ks)
        .into_iter()
        .filter(|l| l["outcome"] == "committed")
        .map(|l| (l["key"]["k"].as_i64().unwrap(), l))
        .collect();
    let held: BTreeMap<i64, Value> = python(
        &workload("cql_workload.py"),
        &["scan", &format!("{ks}.bulk"), &hosts],
        "",
    )
    .into_iter()
    .map(|r| (r["row"]["k"].as_i64().unwrap(), r["row"]["v"].clone()))
    .collect();
    let lost = acked.iter().filter(|k| !committed.contains_key(k)).count();
    let wrongly = committed
        .iter()
        .filter(|(k, l)| held.get(k) != Some(&l["values"]["v"]) || !acked.contains(k))
        .count();
    eprintln!(
        "realdb: bulk: {} writes, {} acknowledged, {} committed in the log, {} rows at ALL; lost {lost}, wrongly committed {wrongly}",
        driver.len(),
        acked.len(),
        committed.len(),
        held.len()
    );
    assert_eq!(driver.len(), 10_000);
    assert_eq!(lost, 0, "acknowledged writes missing from the log");
    assert_eq!(wrongly, 0, "committed writes the cluster does not hold");
    assert_eq!(committed.len(), held.len());
}

/// Node 3 of the RF 3 cluster paused with SIGSTOP under writes at ALL through node 1:
/// Cassandra's own WriteTimeout (received 2 of blockfor 3, write type SIMPLE) →
/// `committed(partial 2/3)` (received 0 would be `in_doubt`); once node 1 marks it down, Unavailable (required 3,
/// alive 2) → `rejected`. After SIGCONT each node, read alone at ONE, holds every write
/// tidemark committed (at least the two that acknowledged) and none it rejected.
#[test]
fn paused_replica_gives_write_timeout_then_unavailable_decided_as_the_nodes_hold() {
    let _alone = EXCLUSIVE.write().unwrap_or_else(|e| e.into_inner());
    let Some(hosts) = cluster() else { return };
    let ks = "realdb_faults";
    let pid3 =
        std::fs::read_to_string(realdb_support::root().join("target/realdb/cassandra/node3/pid"))
            .expect("node 3's pid file");
    let tap = Tap::start("--cql-port", 9042);
    let out = python(
        &workload("cql_workload.py"),
        &["faults", ks, pid3.trim(), &hosts],
        "",
    );
    let log = tap.finish();
    let (writes, nodes): (Vec<&Value>, Vec<&Value>) =
        out.iter().partition(|o| o.get("ns").is_some());
    let logged: BTreeMap<i64, &Value> = in_keyspace(&log, ks)
        .into_iter()
        .map(|l| (l["key"]["k"].as_i64().unwrap(), l))
        .collect();
    assert_eq!(logged.len(), writes.len(), "one log line per write");
    let (mut timeouts, mut unavailable) = (0, 0);
    for w in &writes {
        let k = w["key"]["k"].as_i64().unwrap();
        let l = logged[&k];
        match w.get("error").and_then(Value::as_str) {
            None => assert_eq!(l["outcome"], "committed", "k={k}"),
            Some("WriteTimeout") => {
                timeouts += 1;
                // Cassandra's own numbers, as the driver decoded them: SIMPLE, all
                // three replicas blocked for, the two running ones normally answered.
                assert_eq!(w["write_type"], 0, "SIMPLE");
                assert_eq!(w["blockfor"], 3);
                if w["received"].as_u64().unwrap() >= 1 {
                    assert_eq!(l["outcome"], "committed", "k={k}");
                    let partial = format!("partial {}/{}", w["received"], w["blockfor"]);
                    assert_eq!(l["reason"], partial.as_str(), "k={k}");
                } else {
                    assert_eq!(l["outcome"], "in_doubt", "k={k}");
                }
            }
            Some("Unavailable") => {
                unavailable += 1;
                assert_eq!((&w["required"], &w["alive"]), (&3.into(), &2.into()));
                assert_eq!(l["outcome"], "rejected", "k={k}");
                assert_eq!(l["reason"], "unavailable", "k={k}");
            }
            Some(e) => panic!("k={k}: unexpected {e}: {w}"),
        }
    }
    assert!(
        timeouts >= 1 && unavailable >= 1,
        "{timeouts} timeouts, {unavailable} unavailable"
    );

    // What each node holds, asked alone at ONE.
    let holders = |k: i64| {
        nodes
            .iter()
            .filter(|n| n["keys"].as_array().unwrap().contains(&k.into()))
            .count()
    };
    for w in &writes {
        let k = w["key"]["k"].as_i64().unwrap();
        if logged[&k]["outcome"] == "in_doubt" {
            continue; // no replica acknowledged it: any holding is possible
        }
        if logged[&k]["outcome"] == "committed" {
            // At least the replicas that acknowledged (all three for a success).
            let acked = w["received"].as_u64().map_or(3, |r| r as usize);
            assert!(
                holders(k) >= acked,
                "k={k} committed, held by {}",
                holders(k)
            );
        } else {
            assert_eq!(holders(k), 0, "k={k} rejected, yet held");
        }
    }
    eprintln!(
        "realdb: faults: {} writes, {timeouts} WriteTimeout, {unavailable} Unavailable; keys per node {:?}",
        writes.len(),
        nodes.iter().map(|n| n["keys"].as_array().unwrap().len()).collect::<Vec<_>>()
    );
}
