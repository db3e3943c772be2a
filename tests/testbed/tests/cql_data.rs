//! The real Python `cassandra-driver` (schema metadata on, token-aware routing)
//! against a 3-node testbed running every statement kind (`tests/py/data_workload.py`):
//! INSERT/UPDATE/DELETE at several consistency levels, client timestamps, TTL,
//! collections, UDTs, counters, logged/unlogged/counter batches, LWT, paging,
//! TRUNCATE, ALTER, token() scans. Then what the driver read is compared with the
//! testbed's ground truth (`logical_state`, `replica_dump`). Also: PasswordAuthenticator
//! with a good and a wrong password. Needs python3 with the driver (through `require`).

#[path = "../../require/mod.rs"]
mod require;

use serde_json::Value;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;
use tidemark_testbed::{ClusterConfig, CqlCluster};

async fn run_script(cluster: &CqlCluster, args: &[&str]) -> String {
    let addr = cluster.addresses()[0];
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/data_workload.py");
    let mut cmd_args = vec![
        script.to_string(),
        addr.ip().to_string(),
        addr.port().to_string(),
    ];
    cmd_args.extend(args.iter().map(|s| s.to_string()));
    let child = tokio::process::Command::new("python3")
        .args(&cmd_args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), child)
        .await
        .expect("driver script timed out")
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.lines().any(|l| l == "OK"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

fn line_json(stdout: &str, prefix: &str) -> Value {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix} line in:\n{stdout}"));
    serde_json::from_str(line).expect("json")
}

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex"))
        .collect()
}

fn be_i64(h: &str) -> i64 {
    let b = unhex(h);
    b.iter()
        .fold(if b[0] & 0x80 != 0 { -1 } else { 0 }, |v, x| {
            (v << 8) | i64::from(*x)
        })
}

async fn workload(base: Ipv4Addr, args: &[&str]) {
    if !require::python_modules(&["cassandra"]) {
        return;
    }
    let cfg = ClusterConfig {
        base_addr: base,
        port: 0,
        ..ClusterConfig::default()
    };
    let cluster = CqlCluster::start(cfg).await.expect("start cluster");
    let stdout = run_script(&cluster, args).await;

    // What the driver read of ks.kv: (k, c) -> (v, writetime).
    let read: BTreeMap<(i64, i64), (String, i64)> = line_json(&stdout, "READ_KV ")
        .as_array()
        .expect("array")
        .iter()
        .map(|r| {
            let r = r.as_array().expect("row");
            (
                (r[0].as_i64().expect("k"), r[1].as_i64().expect("c")),
                (
                    r[2].as_str().expect("v").to_string(),
                    r[3].as_i64().expect("wt"),
                ),
            )
        })
        .collect();
    assert!(read.len() > 30, "{read:?}");
    // Ground truth: every replica's cells reconciled, live only.
    let truth: BTreeMap<(i64, i64), (String, i64)> = cluster
        .logical_state()
        .into_iter()
        .filter(|c| c.keyspace == "ks" && c.table == "kv" && c.column == "v")
        .map(|c| {
            (
                (be_i64(&c.partition_key[0]), be_i64(&c.clustering[0])),
                (
                    String::from_utf8(unhex(&c.value)).expect("utf8"),
                    c.timestamp,
                ),
            )
        })
        .collect();
    assert_eq!(read, truth, "driver read vs logical state");
    // RF 3 with every node up: every replica holds every live kv row itself.
    for node in 0..3 {
        let dump = cluster.replica_dump(node);
        for (k, c) in truth.keys() {
            assert!(
                dump.iter().any(|r| r.table == "kv"
                    && r.column == "v"
                    && be_i64(&r.partition_key[0]) == *k
                    && be_i64(&r.clustering[0]) == *c),
                "node {node} lacks kv ({k}, {c})"
            );
        }
        // The range deletion and collection elements are stored as such.
        assert!(dump
            .iter()
            .any(|r| r.table == "rng" && r.column.starts_with("<range deletion")));
        assert!(dump
            .iter()
            .any(|r| r.table == "coll" && r.column.starts_with("s[")));
    }
    // Counters: the driver's totals are the reconciled counter cells.
    let counters = line_json(&stdout, "READ_COUNTERS ");
    for (key, want) in counters.as_object().expect("object") {
        let key_hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
        for (i, col) in ["hits", "misses"].iter().enumerate() {
            let cell = cluster
                .logical_state()
                .into_iter()
                .find(|c| c.table == "cnt" && c.partition_key[0] == key_hex && c.column == *col)
                .unwrap_or_else(|| panic!("no counter cell {key}.{col}"));
            assert_eq!(be_i64(&cell.value), want[i].as_i64().expect("n"));
        }
    }
    // Non-frozen collections: the driver's values are exactly the live element cells
    // (`column[hex cell path]`) of the logical state.
    let coll = line_json(&stdout, "READ_COLL ");
    for (k, want) in coll.as_object().expect("object") {
        let k: i64 = k.parse().expect("key");
        let cells: Vec<_> = cluster
            .logical_state()
            .into_iter()
            .filter(|c| c.table == "coll" && be_i64(&c.partition_key[0]) == k)
            .collect();
        let path = |c: &tidemark_testbed::cql::LogicalCell| {
            c.column
                .split_once('[')
                .map(|(_, p)| unhex(p.trim_end_matches(']')))
                .expect("element cell")
        };
        let mut l: Vec<i64> = cells
            .iter()
            .filter(|c| c.column.starts_with("l["))
            .map(|c| be_i64(&c.value))
            .collect();
        l.sort();
        let s: Vec<String> = cells
            .iter()
            .filter(|c| c.column.starts_with("s["))
            .map(|c| String::from_utf8(path(c)).expect("utf8"))
            .collect();
        let m: BTreeMap<String, i64> = cells
            .iter()
            .filter(|c| c.column.starts_with("m["))
            .map(|c| (String::from_utf8(path(c)).expect("utf8"), be_i64(&c.value)))
            .collect();
        let want_l: Vec<i64> = want["l"]
            .as_array()
            .expect("l")
            .iter()
            .map(|x| x.as_i64().expect("int"))
            .collect();
        let want_s: Vec<String> = want["s"]
            .as_array()
            .expect("s")
            .iter()
            .map(|x| x.as_str().expect("str").to_string())
            .collect();
        let want_m: BTreeMap<String, i64> = want["m"]
            .as_object()
            .expect("m")
            .iter()
            .map(|(a, b)| (a.clone(), b.as_i64().expect("int")))
            .collect();
        assert_eq!((l, s, m), (want_l, want_s, want_m), "coll k={k}");
    }
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_driver_workload_default_protocol() {
    workload(Ipv4Addr::new(127, 0, 20, 1), &["0"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_driver_workload_v4_snappy() {
    workload(Ipv4Addr::new(127, 0, 21, 1), &["4", "snappy"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_driver_password_authenticator() {
    if !require::python_modules(&["cassandra"]) {
        return;
    }
    let cfg = ClusterConfig {
        base_addr: Ipv4Addr::new(127, 0, 22, 1),
        port: 0,
        credentials: Some(("tester".into(), "pa55-word".into())),
        ..ClusterConfig::default()
    };
    let cluster = CqlCluster::start(cfg).await.expect("start cluster");
    run_script(&cluster, &["0", "auth", "tester", "pa55-word"]).await;
    cluster.stop();
}
