//! Real captures through `tidemark tap`: the third-party captures in
//! `../shared/captures` (skipped with a printed reason when absent) and the
//! project's own real-driver captures in `captures/`.
//!
//! For every capture the log must hold exactly the writes `inspect` decided
//! (`committed`/`rejected`, same namespace, key and outcome, in the same order), the
//! `pending` MongoDB ones committed by the no-replication policy (no capture here
//! has replication traffic), and every other write either logged or kept undecided:
//! none lost, none twice. Named cases check what a capture's content implies.

mod commit_support;
mod common;
mod inspect_support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use tidemark::commit::TrackerConfig;
use tidemark::store::{Envelope, Undecided};

use inspect_support::{inspect_records, json_options, own_capture, shared_capture};

/// What a tap of one capture left: the log, the undecided writes, duplicates.
struct Tapped {
    log: Vec<Envelope>,
    undecided: Vec<Undecided>,
    duplicates: u64,
}

fn tap(file: &Path) -> Tapped {
    let out = commit_support::tap_file(file, TrackerConfig::default());
    Tapped {
        duplicates: out.report.tracker.duplicates,
        log: out.log,
        undecided: out.undecided,
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
    let name = file.display();
    // Client mutations (from a write line) and the ones logged from oplog entries.
    let client: Vec<(String, String, &str)> = t
        .log
        .iter()
        .filter(|e| {
            !e.mutation
                .write_json
                .as_deref()
                .unwrap_or("")
                .contains(r#""source":"oplog""#)
        })
        .map(|e| {
            (
                e.mutation.namespace.clone(),
                e.mutation.key.clone(),
                e.mutation.outcome.kind().as_str(),
            )
        })
        .collect();
    // Nothing lost, nothing twice: every write line is a client mutation, an
    // undecided write, or a copy the tracker merged or dropped as a duplicate.
    assert_eq!(
        client.len() + t.undecided.len() + t.duplicates as usize,
        writes.len(),
        "{name}: write lines vs logged + undecided + duplicates"
    );
    // What inspect decided from the response alone is logged with that outcome.
    for w in &writes {
        let want = match w["outcome"].as_str().unwrap() {
            o @ ("committed" | "rejected") => vec![o],
            "pending" => vec!["committed", "rolled_back", "pending"],
            _ => continue,
        };
        let (ns, key) = (ns_of(w), key_of(w));
        // A copy dropped as a duplicate left its first copy's outcome in the log.
        let found = client
            .iter()
            .any(|c| c.0 == ns && c.1 == key && (want.contains(&c.2) || t.duplicates > 0))
            || t.undecided
                .iter()
                .any(|u| u.mutation.namespace == ns && u.mutation.key == key);
        assert!(
            found,
            "{name}: {ns} {key} {want:?} not in the log: {client:?}"
        );
    }
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
    // The capture holds the same insert of an existing _id twice (a retry): one
    // mutation, rejected; the copy is merged.
    assert_eq!(outcomes, vec![("rejected", "write_error 11000")]);
    assert_eq!(t.duplicates, 1);
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

/// The failover capture (real pymongo, the testbed's replica set, an election with a
/// rollback, the members' replication traffic): the writes the ground truth says
/// were acknowledged and then lost are exactly the `rolled_back` ones, and every
/// document of the majority-committed state has a committed mutation.
#[test]
fn the_failover_capture_rolls_back_exactly_the_lost_writes() {
    let file = own_capture("mongo_failover.pcap");
    let truth: Value =
        serde_json::from_slice(&std::fs::read(own_capture("mongo_failover.truth.json")).unwrap())
            .unwrap();
    let t = check_capture(&file);
    let rolled_back: Vec<(String, i64)> = t
        .log
        .iter()
        .filter(|e| e.mutation.outcome == tidemark::store::Outcome::RolledBack)
        .map(|e| {
            let key: Value = serde_json::from_str(&e.mutation.key).unwrap();
            (
                e.mutation.op.as_str().to_string(),
                key["_id"].as_i64().unwrap(),
            )
        })
        .collect();
    let lost: Vec<i64> = truth["lost_acknowledged_inserts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let lost_inserts: Vec<i64> = rolled_back
        .iter()
        .filter(|(op, _)| op == "insert")
        .map(|(_, id)| *id)
        .collect();
    assert_eq!(lost_inserts, lost);
    // The rolled-back documents the testbed recorded are the ones tidemark says.
    let mut undone: Vec<i64> = truth["rollbacks"][0]["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["_id"].as_i64().unwrap())
        .collect();
    let mut ours: Vec<i64> = rolled_back.iter().map(|(_, id)| *id).collect();
    undone.sort_unstable();
    ours.sort_unstable();
    assert_eq!(ours, undone);
    let committed_ids: Vec<i64> = t
        .log
        .iter()
        .filter(|e| e.mutation.outcome == tidemark::store::Outcome::Committed)
        .filter_map(|e| serde_json::from_str::<Value>(&e.mutation.key).ok()?["_id"].as_i64())
        .collect();
    for doc in truth["committed_state"]["tm.failover"].as_array().unwrap() {
        let id = doc["_id"].as_i64().unwrap();
        assert!(
            committed_ids.contains(&id),
            "committed document {id} has no committed mutation"
        );
    }
    for id in &lost {
        assert!(
            !committed_ids.contains(id),
            "lost write {id} logged committed"
        );
    }
    assert!(t.undecided.is_empty(), "{:?}", t.undecided.len());
}
