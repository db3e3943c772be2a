//! Store format 4 (issue #11): the write line's MongoDB values are kept as the
//! protocol's bytes, not as JSON text, and a schema change is a typed field.
//!
//! - A tap of a MongoDB capture stores inserts and updates with `values` left `null`
//!   in the stored (typed, format 6) line and the BSON beside it — an insert's document stored once (the
//!   payload's own `o`) — and `log --json` renders them back to exactly what `inspect
//!   --json` printed for the same write (the byte-identical baseline of every capture
//!   is `output_baseline`; this test shows *why* it holds: the bytes are there, the
//!   JSON is not).
//! - Format 5: a tap of a CQL capture stores a prepared INSERT's bound values as the
//!   frame's bytes with their types (`LineValues::CqlValues`), the stored line's
//!   `values` `null`, and `log --json` renders them to what `inspect --json` printed.
//! - A format-3 store (made by the release before, `tests/fixtures/store_v3`) read by
//!   this release has its schema changes typed from its lines: the CQL text of every
//!   CREATE, and DROP KEYSPACE as a change that removes data.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tidemark::store::{
    LineTree, LineValues, Payload, Query, Store, StoreOptions, StoredLine, WriteOp,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tidemark(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .output()
        .expect("run tidemark");
    assert!(
        out.status.success(),
        "tidemark {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// What `tidemark args` prints, one JSON value per line.
fn json_lines(args: &[&str]) -> Vec<Value> {
    String::from_utf8(tidemark(args))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect()
}

/// The `values` of a mutation's typed line (format 6: the line is typed, no JSON).
fn stored_values(m: &tidemark::store::Mutation) -> LineTree {
    match m.line.as_ref() {
        Some(StoredLine::Write(w)) => w.values.clone(),
        other => panic!("not a typed write line: {other:?}"),
    }
}

fn envelopes(store: &Path) -> Vec<tidemark::store::Envelope> {
    let s = Store::open(store, &StoreOptions::default().read_only()).unwrap();
    let r = s.reader().unwrap();
    r.query(&Query::all())
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn mongo_values_are_stored_as_bson_and_printed_as_inspect_printed_them() {
    let pcap = root().join("captures/mongo_rust_zstd.pcap");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    tidemark(&["tap", "--pcap", pcap.to_str().unwrap(), "--store", s]);

    let log = envelopes(&store);
    let inserts: Vec<_> = log
        .iter()
        .filter(|e| e.mutation.op == WriteOp::Insert)
        .collect();
    assert!(inserts.len() >= 10, "{} inserts", inserts.len());
    for e in &inserts {
        let m = &e.mutation;
        assert_eq!(
            stored_values(m),
            LineTree::Null,
            "seq {}: values kept twice",
            e.seq
        );
        assert_eq!(
            m.line_values,
            Some(LineValues::PayloadDocument),
            "seq {}: an insert's document is stored once, as the payload's",
            e.seq
        );
        let Payload::Mongo(op) = &m.payload else {
            panic!("seq {}: not a MongoDB payload", e.seq)
        };
        assert!(!op.o.is_empty());
    }
    let updates = log
        .iter()
        .filter(|e| e.mutation.op == WriteOp::Update && e.mutation.line_values.is_some())
        .count();
    assert!(updates >= 1, "no update kept its specification as BSON");

    // What `log --json` prints for each write equals what `inspect --json` printed
    // for it (the inspect line is independent of the store: rendered at decode).
    let inspected: Vec<Value> = json_lines(&["inspect", pcap.to_str().unwrap(), "--json"])
        .into_iter()
        .filter(|v| v["type"] == "write")
        .collect();
    let logged = json_lines(&["log", "--store", s, "--json"]);
    let mut matched = 0;
    for m in logged.iter().filter(|m| m["op"] == "insert") {
        let same = inspected.iter().find(|w| {
            w["request"] == m["request"] && w["flow"] == m["flow"] && w["key"] == m["key"]
        });
        let w = same.unwrap_or_else(|| panic!("no inspect line for {m}"));
        assert_eq!(w["values"], m["values"], "{m}");
        assert_ne!(m["values"], Value::Null);
        matched += 1;
    }
    assert_eq!(matched, inserts.len());
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn a_format_3_stores_schema_changes_come_out_typed() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    std::fs::write(
        store.join("data.mdb"),
        gunzip(&root().join("tests/fixtures/store_v3/cassandra5_v4_lz4/data.mdb.gz")),
    )
    .unwrap();
    let ddl: Vec<_> = envelopes(&store)
        .into_iter()
        .filter(|e| e.mutation.op == WriteOp::Ddl)
        .map(|e| {
            e.mutation
                .ddl
                .expect("a format-3 DDL line gives a typed change")
        })
        .collect();
    let ops: Vec<&str> = ddl.iter().map(|d| d.op.as_str()).collect();
    assert_eq!(ops.iter().filter(|o| **o == "create_table").count(), 6);
    assert!(ops.contains(&"create_keyspace") && ops.contains(&"create_type"));
    for d in ddl.iter().filter(|d| d.op.starts_with("create_")) {
        let text = d.cql.as_deref().unwrap_or_default().to_ascii_uppercase();
        assert!(text.starts_with("CREATE "), "{d:?}");
        assert!(!d.drops_data(), "{d:?}");
    }
    let drops: Vec<_> = ddl.iter().filter(|d| d.drops_data()).collect();
    assert_eq!(drops.len(), 1);
    assert_eq!(drops[0].op, "drop_keyspace");
}

#[test]
fn cql_bound_values_are_stored_as_bytes_and_printed_as_inspect_printed_them() {
    let pcap = root().join("captures/cassandra5_v4_lz4.pcap");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    tidemark(&["tap", "--pcap", pcap.to_str().unwrap(), "--store", s]);

    let log = envelopes(&store);
    let kept: Vec<_> = log
        .iter()
        .filter(|e| matches!(e.mutation.line_values, Some(LineValues::CqlValues(_))))
        .collect();
    assert!(kept.len() >= 10, "{} writes kept CQL values", kept.len());
    for e in &kept {
        let m = &e.mutation;
        assert_eq!(
            stored_values(m),
            LineTree::Null,
            "seq {}: values kept twice",
            e.seq
        );
        assert!(matches!(m.payload, Payload::Cql(_)));
    }

    let inspected: Vec<Value> = json_lines(&["inspect", pcap.to_str().unwrap(), "--json"])
        .into_iter()
        .filter(|v| v["type"] == "write")
        .collect();
    let logged = json_lines(&["log", "--store", s, "--json"]);
    let mut matched = 0;
    for e in &kept {
        let m = logged
            .iter()
            .find(|l| l["seq"] == e.seq)
            .unwrap_or_else(|| panic!("seq {} not printed", e.seq));
        let w = inspected
            .iter()
            .find(|w| {
                w["request"] == m["request"] && w["flow"] == m["flow"] && w["key"] == m["key"]
            })
            .unwrap_or_else(|| panic!("no inspect line for {m}"));
        assert_ne!(m["values"], Value::Null, "{m}");
        assert_eq!(w["values"], m["values"], "{m}");
        matched += 1;
    }
    assert_eq!(matched, kept.len());
}
