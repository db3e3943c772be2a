//! The project's own CQL captures (real Python cassandra-driver, see captures/cql.md):
//! `tidemark inspect` must count the same messages per direction and opcode as the
//! truth file and produce the truth's write lines, field by field.
//!
//! Conventions that differ between the truth and the `write` line, and how they are
//! compared (each is listed in captures/cql.md or ARCHITECTURE.md):
//! * `batch.id`: the truth numbers batches 1, 2, ...; tidemark names them
//!   `flow:stream`. Type, index and size are compared; members of one truth batch
//!   must share one tidemark id.
//! * `timestamp_source`: the truth says `client` for the query's default timestamp,
//!   the `write` line says `default` (records.rs); the two are mapped.
//! * Varint and decimal values a JSON double cannot hold exactly are bare numbers in
//!   the truth and strings of the same digits in tidemark (tidemark-cql's `to_json`
//!   never rounds); the truth is read with such numbers turned into strings.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use tidemark::decode::registry::default_registry;
use tidemark::inspect::{inspect, InspectOptions};

mod inspect_support;
mod truth_json;
use inspect_support::{inspect_records, json_options, own_capture as capture};

/// Every record of `inspect --json` on `file`, as JSON.
fn run(file: &Path) -> Vec<Value> {
    inspect_records(&json_options(file))
}

fn truth(name: &str) -> Value {
    let path = capture(&format!("{name}.truth.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    truth_json::parse_exact(&text)
}

fn counts(records: &[Value]) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut m: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for r in records.iter().filter(|r| r["type"] == "message") {
        let dir = r["dir"].as_str().unwrap().to_string();
        *m.entry(dir)
            .or_default()
            .entry(r["opcode"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    m
}

fn truth_counts(t: &Value) -> BTreeMap<String, BTreeMap<String, u64>> {
    serde_json::from_value(t["messages_by_opcode"].clone()).expect("counts")
}

/// `null`, missing and (for lists) `[]` are the same absence.
fn field<'a>(v: &'a Value, k: &str) -> &'a Value {
    v.get(k).unwrap_or(&Value::Null)
}

fn compare_writes(name: &str, records: &[Value], t: &Value) {
    let ours: Vec<&Value> = records.iter().filter(|r| r["type"] == "write").collect();
    let want = t["writes"].as_array().expect("writes");
    assert_eq!(ours.len(), want.len(), "{name}: number of writes");
    let mut batch_ids: BTreeMap<i64, String> = BTreeMap::new();
    for (i, (o, w)) in ours.iter().zip(want).enumerate() {
        let ctx = format!("{name} write {i} ({})", w["cql"]);
        for k in [
            "namespace",
            "op",
            "key",
            "values",
            "timestamp",
            "ttl",
            "consistency",
            "serial_consistency",
        ] {
            assert_eq!(field(o, k), field(w, k), "{ctx}: {k}");
        }
        assert_eq!(field(o, "range"), field(w, "range"), "{ctx}: range");
        assert_eq!(o["outcome"], w["outcome_as_responded"], "{ctx}: outcome");
        assert_eq!(field(o, "reason"), field(w, "reason"), "{ctx}: reason");
        assert_eq!(
            o["columns_deleted"], w["columns_deleted"],
            "{ctx}: columns_deleted"
        );
        assert_eq!(
            o["collection_ops"], w["collection_ops"],
            "{ctx}: collection_ops"
        );
        assert_eq!(o["prepared"], w["prepared"], "{ctx}: prepared");
        assert_eq!(field(o, "lwt"), field(w, "lwt"), "{ctx}: lwt");
        assert_eq!(
            field(o, "client_timestamp"),
            field(w, "client_timestamp"),
            "{ctx}: client_timestamp"
        );
        let source = match w["timestamp_source"].as_str() {
            Some("client") => "default",
            Some(s) => s,
            None => "server",
        };
        assert_eq!(o["timestamp_source"], source, "{ctx}: timestamp_source");
        match (field(o, "batch"), field(w, "batch")) {
            (Value::Null, Value::Null) => {}
            (ob, wb) => {
                for k in ["type", "index", "size"] {
                    assert_eq!(ob[k], wb[k], "{ctx}: batch.{k}");
                }
                let id = ob["id"].as_str().expect("batch id").to_string();
                let prev = batch_ids
                    .entry(wb["id"].as_i64().expect("truth id"))
                    .or_insert(id.clone());
                assert_eq!(*prev, id, "{ctx}: members of one batch share an id");
            }
        }
    }
}

fn check(name: &str) {
    let t = truth(name);
    let records = run(&capture(&format!("{name}.pcap")));
    let errors: Vec<&Value> = records.iter().filter(|r| r["type"] == "error").collect();
    assert!(errors.is_empty(), "{name}: decode errors {errors:?}");
    assert_eq!(
        counts(&records),
        truth_counts(&t),
        "{name}: messages by direction and opcode"
    );
    compare_writes(name, &records, &t);
}

#[test]
fn v4_lz4_matches_truth() {
    check("cql_v4_lz4");
}

#[test]
fn v4_snappy_matches_truth() {
    check("cql_v4_snappy");
}

#[test]
fn v5_framed_lz4_matches_truth() {
    check("cql_v5");
}

#[test]
fn v5_framed_uncompressed_matches_truth() {
    check("cql_v5_nocomp");
}

#[test]
fn auth_capture_matches_truth_and_never_shows_the_password() {
    check("cql_v4_auth");
    let t = truth("cql_v4_auth");
    let password = t["auth"]["password"].as_str().expect("password in truth");
    assert!(password.len() >= 4, "a password long enough to search for");
    let opts = InspectOptions {
        files: vec![capture("cql_v4_auth.pcap")],
        json: true,
        ..InspectOptions::default()
    };
    let mut lines = Vec::new();
    inspect(&opts, default_registry(), |r| {
        lines.push(serde_json::to_string(r).expect("serializes"));
        Ok(())
    })
    .expect("inspect runs");
    let auth = lines.iter().filter(|l| l.contains("AUTH_RESPONSE")).count();
    assert_eq!(auth, 2, "both AUTH_RESPONSE messages are reported");
    for l in &lines {
        assert!(!l.contains(password), "password leaked in: {l}");
    }
}

#[test]
fn exactify_quotes_only_inexact_numbers() {
    assert_eq!(
        truth_json::exactify(r#"{"a": 1, "b": 12345.678901234567890123, "c": "x1"}"#),
        r#"{"a": 1, "b": "12345.678901234567890123", "c": "x1"}"#
    );
    assert_eq!(
        truth_json::exactify("[2.5, -98765432109876543210, \"é\"]"),
        "[2.5, \"-98765432109876543210\", \"é\"]"
    );
}

// Captures of the real driver against tidemark-testbed (captures/cql.md, "Testbed
// captures"): the same workload, answered by the simulated cluster.

#[test]
fn testbed_v4_lz4_matches_truth() {
    check("cql_testbed_v4_lz4");
}

#[test]
fn testbed_v4_snappy_matches_truth() {
    check("cql_testbed_v4_snappy");
}

#[test]
fn testbed_v5_matches_truth() {
    check("cql_testbed_v5");
}

/// `cql_faults.pcap`: the testbed's 3-node cluster answering the real driver with a
/// WriteTimeout (SIMPLE, received 2 of 3 at ALL) twice and Unavailable twice (see
/// captures/cql.md). The truth lists the nine INSERTs; the workload's schema
/// statements (two SCHEMA_CHANGE events) are not in it and must be exactly the
/// keyspace and the table. Each INSERT comes out field by field as the truth has
/// it: seq 4 and 5 `committed` `partial 2/3`, 6 and 8 `rejected` `unavailable`, the
/// rest `committed`; and the ERROR frames are the truth's error responses, in order.
#[test]
fn faults_capture_matches_truth() {
    let name = "cql_faults";
    let t = truth(name);
    let records = run(&capture(&format!("{name}.pcap")));
    let errors: Vec<&Value> = records.iter().filter(|r| r["type"] == "error").collect();
    assert!(errors.is_empty(), "{name}: decode errors {errors:?}");
    assert_eq!(
        counts(&records),
        truth_counts(&t),
        "{name}: messages by direction and opcode"
    );
    let (ddl, dml): (Vec<Value>, Vec<Value>) = records
        .iter()
        .filter(|r| r["type"] == "write")
        .cloned()
        .partition(|w| w["op"].as_str().is_some_and(|op| op.starts_with("create_")));
    let ddl: Vec<(&str, &str)> = ddl
        .iter()
        .map(|w| (w["op"].as_str().unwrap(), w["namespace"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ddl,
        [("create_keyspace", "tm"), ("create_table", "tm.faults")]
    );
    compare_writes(name, &dml, &t);
    let outcomes: Vec<(&str, &Value)> = dml
        .iter()
        .map(|w| (w["outcome"].as_str().unwrap(), &w["reason"]))
        .collect();
    let partial = Value::from("partial 2/3");
    let unavailable = Value::from("unavailable");
    let none = Value::Null;
    assert_eq!(
        outcomes,
        [
            ("committed", &none),
            ("committed", &none),
            ("committed", &none),
            ("committed", &none),
            ("committed", &partial),
            ("committed", &partial),
            ("rejected", &unavailable),
            ("committed", &none),
            ("rejected", &unavailable),
        ]
    );
    // The ERROR frames on the wire, in the truth's words
    // ("ERROR WriteTimeout SIMPLE received=2 blockfor=3 at ALL").
    let cl: Vec<&str> = dml
        .iter()
        .zip(t["writes"].as_array().unwrap())
        .filter(|(_, w)| w["response"].as_str().unwrap().starts_with("ERROR"))
        .map(|(o, _)| o["consistency"].as_str().unwrap())
        .collect();
    let frames: Vec<String> = records
        .iter()
        .filter(|r| r["type"] == "message" && r["opcode"] == "ERROR")
        .zip(cl)
        .map(|(r, cl)| {
            let d = &r["detail"];
            match d["name"].as_str().unwrap() {
                "Write_timeout" => format!(
                    "ERROR WriteTimeout {} received={} blockfor={} at {cl}",
                    d["write_type"].as_str().unwrap(),
                    d["received"],
                    d["block_for"]
                ),
                "Unavailable" => format!(
                    "ERROR Unavailable required={} alive={} at {cl}",
                    d["required"], d["alive"]
                ),
                other => panic!("{other}"),
            }
        })
        .collect();
    let want: Vec<String> = serde_json::from_value(t["error_responses_in_pcap"].clone()).unwrap();
    assert_eq!(frames, want);
}
