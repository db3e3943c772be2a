//! Real captures through `tidemark tap`: the third-party captures in
//! `../shared/captures` (skipped with a printed reason when absent) and the
//! project's own real-driver captures in `captures/`.
//!
//! For every capture the log must hold exactly the writes `inspect` decided
//! (`committed`/`rejected`, same namespace, key and outcome, in the same order), the
//! `pending` MongoDB ones committed by the no-replication policy (no capture here
//! has replication traffic), and every other write either logged or kept undecided:
//! none lost, none twice. Named cases check what a capture's content implies.

mod inspect_support;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde_json::Value;
use tidemark::commit::{TapOptions, TrackerConfig};
use tidemark::store::{Durability, Envelope, Query, Store, StoreOptions, Undecided};

use inspect_support::{inspect_records, json_options, own_capture, shared_capture};

struct Tapped {
    _dir: tempfile::TempDir,
    log: Vec<Envelope>,
    undecided: Vec<Undecided>,
}

fn tap(file: &Path) -> Tapped {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let options = TapOptions {
        files: vec![file.to_path_buf()],
        store: store_dir.clone(),
        durability: Durability::NoSync,
        tracker: TrackerConfig::default(),
        ..TapOptions::default()
    };
    tidemark::commit::tap(&options, Arc::new(AtomicBool::new(false)))
        .unwrap_or_else(|e| panic!("{}: {e:#}", file.display()));
    let store = Store::open(&store_dir, &StoreOptions::for_tests().read_only()).unwrap();
    let log = {
        let r = store.reader().unwrap();
        r.query(&Query::all())
            .unwrap()
            .map(|e| e.unwrap())
            .collect()
    };
    let undecided = store
        .list_undecided()
        .unwrap()
        .into_iter()
        .map(|(_, u)| u)
        .collect();
    Tapped {
        _dir: dir,
        log,
        undecided,
    }
}

fn key_of(w: &Value) -> String {
    match &w["key"] {
        Value::Null => "{}".into(),
        k => k.to_string(),
    }
}

fn ns_of(w: &Value) -> String {
    w["namespace"]
        .as_str()
        .or(w["table"].as_str())
        .unwrap_or("(unknown)")
        .to_string()
}

/// The invariant of the module docs, for one capture.
fn check_capture(file: &Path) -> Tapped {
    let writes: Vec<Value> = inspect_records(&json_options(file))
        .into_iter()
        .filter(|r| r["type"] == "write")
        .filter(|w| {
            !matches!(
                w["op"].as_str(),
                Some("commitTransaction" | "abortTransaction")
            )
        })
        .collect();
    let t = tap(file);
    let logged: Vec<(String, String, &str)> = t
        .log
        .iter()
        .map(|e| {
            (
                e.mutation.namespace.clone(),
                e.mutation.key.clone(),
                e.mutation.outcome.kind().as_str(),
            )
        })
        .collect();
    let mut expected = Vec::new();
    let mut open = 0;
    for w in &writes {
        match w["outcome"].as_str().unwrap() {
            "committed" | "rejected" => {
                expected.push((ns_of(w), key_of(w), w["outcome"].as_str().unwrap()))
            }
            "pending" => expected.push((ns_of(w), key_of(w), "committed")),
            _ => open += 1,
        }
    }
    // Decided lines appear in order; in-doubt ones are logged (deadline passed) or
    // undecided, each exactly once.
    let decided: Vec<_> = logged
        .iter()
        .filter(|l| l.2 != "in_doubt")
        .cloned()
        .collect();
    let name = file.display();
    // Pending writes are decided later than the lines around them (by policy at the
    // end), so compare as multisets, and the decided ones in order.
    let mut a = decided.clone();
    let mut b: Vec<(String, String, &str)> = expected.clone();
    a.sort();
    b.sort();
    assert_eq!(
        a, b,
        "{name}: logged mutations differ from inspect's decided writes"
    );
    let in_doubt_logged = logged.iter().filter(|l| l.2 == "in_doubt").count();
    assert_eq!(
        in_doubt_logged + t.undecided.len(),
        open,
        "{name}: in-doubt writes lost or doubled"
    );
    t
}

fn shared(rel: &str) -> Option<PathBuf> {
    let p = shared_capture(rel);
    if p.is_none() {
        eprintln!("skipping {rel}: ../shared/captures is not present");
    }
    p
}

#[test]
fn every_shared_capture_logs_what_inspect_decided() {
    let Some(dir) = shared("") else { return };
    let mut n = 0;
    for sub in std::fs::read_dir(&dir).unwrap() {
        let sub = sub.unwrap().path();
        if !sub.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&sub).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "pcap" || e == "pcapng") {
                check_capture(&f);
                n += 1;
            }
        }
    }
    assert!(n >= 20, "expected the shared captures, found {n}");
}

#[test]
fn every_own_capture_logs_what_inspect_decided() {
    let dir = own_capture("");
    let mut n = 0;
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "pcap") {
            check_capture(&f);
            n += 1;
        }
    }
    assert!(n >= 13, "expected the project's captures, found {n}");
}

#[test]
fn the_duplicate_key_insert_is_rejected() {
    let Some(f) = shared("beats-packetbeat/mongodb_insert_duplicate_key.pcap") else {
        return;
    };
    let t = tap(&f);
    let outcomes: Vec<(&str, &str)> = t
        .log
        .iter()
        .map(|e| {
            (
                e.mutation.outcome.kind().as_str(),
                e.mutation.evidence.note.split(':').next().unwrap_or(""),
            )
        })
        .collect();
    // The capture holds the retried insert of an existing _id, twice: both rejected,
    // neither in the log as a change.
    assert_eq!(
        outcomes,
        vec![
            ("rejected", "write_error 11000"),
            ("rejected", "write_error 11000")
        ]
    );
}

#[test]
fn the_snappy_cql_inserts_are_committed() {
    let Some(f) = shared("beats-packetbeat/cassandra_compressed.pcap") else {
        return;
    };
    let t = tap(&f);
    let inserts: Vec<&Envelope> = t
        .log
        .iter()
        .filter(|e| e.mutation.op == tidemark::store::WriteOp::Insert)
        .collect();
    assert!(!inserts.is_empty());
    for e in &inserts {
        assert_eq!(e.mutation.outcome, tidemark::store::Outcome::Committed);
    }
    let text: Vec<String> = inserts
        .iter()
        .map(|e| e.mutation.write_json.clone().unwrap())
        .collect();
    assert!(
        text.iter().any(|t| t.contains("Joséphine Baker")),
        "{text:?}"
    );
}
