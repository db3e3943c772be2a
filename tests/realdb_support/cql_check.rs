//! The CQL comparison of the realdb tests, live and from saved captures: tidemark's
//! log against what the driver saw and against what a read at ALL returned.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{driver_tally, log_tally};

/// The log lines of keyspace `ks`, schema changes left out.
pub fn in_keyspace<'a>(log: &'a [Value], ks: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|l| {
            l["namespace"]
                .as_str()
                .is_some_and(|n| n.starts_with(&format!("{ks}.")))
                && !l["op"].as_str().unwrap_or("").starts_with("create_")
        })
        .collect()
}

/// The log's writes in `ks` against the driver's (`driver`: one `{"ns", "key", "op",
/// "applied"}` per write) and against a read at ALL of the keys the log wrote
/// (`read`: given `{"ns", "key"}` lines, the `cql_workload.py read` lines for them, in
/// order: live from the cluster, or from a capture's truth); returns the number of
/// logged values compared with the cluster's.
pub fn log_matches_driver_and_cluster(
    ks: &str,
    driver: &[Value],
    log: &[Value],
    read: &dyn Fn(&str) -> Vec<Value>,
) -> usize {
    // The log's writes in this keyspace (the other tests' keyspaces share the wire).
    let ours = in_keyspace(log, ks);

    // Every write the driver made, with the outcome the driver saw, and nothing else.
    let want = driver_tally(driver);
    let got = log_tally(ours.iter().copied());
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
        .map(|(l, _)| serde_json::json!({"ns": l["namespace"], "key": l["key"]}).to_string() + "\n")
        .collect();
    let rows = read(&keys);
    assert_eq!(rows.len(), last.len());
    let mut checked_values = 0;
    for (row, (l, values)) in rows.iter().zip(last.values()) {
        let at = format!("{} {}", l["namespace"], l["key"]);
        if l["op"] == "delete" {
            assert!(
                row["row"].is_null(),
                "{at}: deleted, yet read {}",
                row["row"]
            );
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
    checked_values
}
