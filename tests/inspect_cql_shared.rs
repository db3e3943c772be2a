//! Third-party CQL captures (../shared/captures, see its SOURCES.md): every one decodes
//! with zero errors, and its messages per opcode equal what tshark's CQL dissector
//! counts; the INSERTs of two of them come out exactly.
//!
//! tshark prints one line per packet with the opcodes of all PDUs in it joined by
//! commas, so opcodes are counted per comma-separated field. tshark 4.0 does not
//! dissect protocol v5 (SOURCES.md), so only our v3/v4 messages are compared with it;
//! the v5 part of ndpi/cassandra.pcap is checked by its own expected counts.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

mod inspect_support;
mod require;
use inspect_support::{inspect_records, json_options, own_capture as own};
use require::shared_capture as shared;

/// Every record of `inspect --json` on `file`, as JSON.
fn run(file: &Path) -> Vec<Value> {
    inspect_records(&json_options(file))
}

const CQL_FILES: &[&str] = &[
    "beats-packetbeat/cassandra_insert.pcap",
    "beats-packetbeat/cassandra_select.pcap",
    "beats-packetbeat/cassandra_select_via_index.pcap",
    "beats-packetbeat/cassandra_create_keyspace.pcap",
    "beats-packetbeat/cassandra_create_table.pcap",
    "beats-packetbeat/cassandra_create_index.pcap",
    "beats-packetbeat/cassandra_trace_err.pcap",
    "beats-packetbeat/cassandra_compressed.pcap",
    "beats-packetbeat/cassandra_mixed_frame.pcap",
    "ndpi/cassandra.pcap",
];

fn opcode_name(n: u32) -> &'static str {
    match n {
        0 => "ERROR",
        1 => "STARTUP",
        2 => "READY",
        3 => "AUTHENTICATE",
        5 => "OPTIONS",
        6 => "SUPPORTED",
        7 => "QUERY",
        8 => "RESULT",
        9 => "PREPARE",
        10 => "EXECUTE",
        11 => "REGISTER",
        12 => "EVENT",
        13 => "BATCH",
        14 => "AUTH_CHALLENGE",
        15 => "AUTH_RESPONSE",
        16 => "AUTH_SUCCESS",
        _ => "?",
    }
}

/// tshark's CQL messages per opcode (the caller has required tshark).
fn tshark_counts(file: &Path) -> BTreeMap<String, u64> {
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(file)
        .args(["-Y", "cql", "-T", "fields", "-e", "cql.opcode"])
        .output()
        .expect("tshark runs");
    assert!(out.status.success(), "tshark failed on {}", file.display());
    let mut m = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        for f in line.split(',').filter(|f| !f.is_empty()) {
            let n: u32 = f.trim().parse().expect("numeric opcode");
            *m.entry(opcode_name(n).to_string()).or_insert(0) += 1;
        }
    }
    m
}

/// Our messages per opcode, protocol v3/v4 only (what tshark 4.0 dissects).
fn our_counts(records: &[Value]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for r in records
        .iter()
        .filter(|r| r["type"] == "message" && r["version"].as_u64() < Some(5))
    {
        *m.entry(r["opcode"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    m
}

fn errors(records: &[Value]) -> Vec<&Value> {
    records.iter().filter(|r| r["type"] == "error").collect()
}

fn writes(records: &[Value]) -> Vec<&Value> {
    records.iter().filter(|r| r["type"] == "write").collect()
}

#[test]
fn shared_cql_captures_decode_cleanly_and_agree_with_tshark() {
    // Without tshark the decode checks still run; the comparison is the skip.
    let tshark = require::tool("tshark");
    let mut checked = 0;
    for rel in CQL_FILES {
        let Some(f) = shared(rel) else { continue };
        let records = run(&f);
        assert!(errors(&records).is_empty(), "{rel}: {:?}", errors(&records));
        let ours = our_counts(&records);
        assert!(!ours.is_empty(), "{rel}: no CQL messages");
        if tshark {
            let theirs = tshark_counts(&f);
            eprintln!("{rel}: tidemark {ours:?} tshark {theirs:?}");
            assert_eq!(ours, theirs, "{rel}: messages per opcode vs tshark");
        }
        checked += 1;
    }
    eprintln!("{checked} of {} captures checked", CQL_FILES.len());
}

#[test]
fn own_v4_captures_agree_with_tshark() {
    if !require::tool("tshark") {
        return;
    }
    for name in ["cql_v4_lz4.pcap", "cql_v4_snappy.pcap", "cql_v4_auth.pcap"] {
        let records = run(&own(name));
        let theirs = tshark_counts(&own(name));
        assert_eq!(
            our_counts(&records),
            theirs,
            "{name}: messages per opcode vs tshark"
        );
    }
}

#[test]
fn ndpi_v5_handshake_is_decoded_where_tshark_sees_nothing() {
    let Some(f) = shared("ndpi/cassandra.pcap") else {
        return;
    };
    let records = run(&f);
    let v5: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "message" && r["version"] == 5)
        .map(|r| r["opcode"].as_str().unwrap())
        .collect();
    // SOURCES.md: v5 OPTIONS, SUPPORTED, STARTUP (the capture ends before READY).
    assert_eq!(v5, ["OPTIONS", "SUPPORTED", "STARTUP"]);
}

#[test]
fn thrift_capture_is_not_cql() {
    let Some(f) = shared("arkime/cassandra1.pcap") else {
        return;
    };
    let records = run(&f);
    let flows: Vec<&Value> = records.iter().filter(|r| r["type"] == "flow").collect();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0]["protocol"], "unknown");
    assert!(records
        .iter()
        .all(|r| r["type"] != "message" && r["type"] != "write"));
}

#[test]
fn beats_insert_comes_out_exactly() {
    let Some(f) = shared("beats-packetbeat/cassandra_insert.pcap") else {
        return;
    };
    let records = run(&f);
    let w = writes(&records);
    assert_eq!(w.len(), 1);
    // The capture starts mid-connection: no USE and no schema, so the keyspace and
    // the key columns cannot be known (namespace null, table as written, key null).
    assert_eq!(w[0]["namespace"], Value::Null);
    assert_eq!(w[0]["table"], "users");
    assert_eq!(w[0]["op"], "insert");
    assert_eq!(w[0]["key"], Value::Null);
    assert_eq!(w[0]["key_source"], "unknown");
    assert_eq!(
        w[0]["values"],
        json!({"user_id": 1745, "fname": "john", "lname": "smith"})
    );
    assert_eq!(w[0]["outcome"], "committed");
    assert_eq!(w[0]["consistency"], "ONE");
    // The driver sent a default timestamp (query flag 0x20).
    assert_eq!(w[0]["timestamp"], 1_466_947_800_567_074i64);
    assert_eq!(w[0]["timestamp_source"], "default");
}

#[test]
fn beats_snappy_inserts_come_out_exactly() {
    let Some(f) = shared("beats-packetbeat/cassandra_compressed.pcap") else {
        return;
    };
    let records = run(&f);
    let w = writes(&records);
    let ops: Vec<(&str, &str)> = w
        .iter()
        .map(|w| (w["op"].as_str().unwrap(), w["namespace"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ops,
        [
            ("create_keyspace", "simplex"),
            ("create_table", "simplex.songs"),
            ("create_table", "simplex.playlists"),
            ("insert", "simplex.songs"),
            ("insert", "simplex.playlists"),
        ]
    );
    // Key columns and the set type come from the CREATE TABLE statements in the capture.
    assert_eq!(
        w[3]["key"],
        json!({"id": "756716f7-2e54-4715-9f00-91dcbea6cf50"})
    );
    assert_eq!(
        w[3]["values"],
        json!({
            "title": "La Petite Tonkinoise",
            "album": "Bye Bye Blackbird",
            "artist": "Joséphine Baker",
            "tags": ["2013", "jazz"],
        })
    );
    assert_eq!(
        w[4]["key"],
        json!({
            "id": "2cc9ccb7-6221-4ccb-8387-f22b6a1b354d",
            "title": "La Petite Tonkinoise",
            "album": "Bye Bye Blackbird",
            "artist": "Joséphine Baker",
        })
    );
    assert_eq!(
        w[4]["values"],
        json!({"song_id": "756716f7-2e54-4715-9f00-91dcbea6cf50"})
    );
    assert!(w.iter().all(|w| w["outcome"] == "committed"));
    let compressed = records
        .iter()
        .filter(|r| r["type"] == "message" && r["compressed"] == true)
        .count();
    assert!(compressed > 0, "snappy frames are reported as compressed");
}

#[test]
fn beats_drop_of_missing_keyspace_is_rejected() {
    let Some(f) = shared("beats-packetbeat/cassandra_trace_err.pcap") else {
        return;
    };
    let records = run(&f);
    let w = writes(&records);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0]["op"], "drop_keyspace");
    assert_eq!(w[0]["namespace"], "mykeyspace");
    assert_eq!(w[0]["outcome"], "rejected");
    assert_eq!(w[0]["reason"], "config_error");
    let err = records
        .iter()
        .find(|r| r["opcode"] == "ERROR")
        .expect("ERROR message");
    assert_eq!(err["detail"]["code"], 0x2300);
    assert_eq!(err["detail"]["name"], "Config_error");
}
