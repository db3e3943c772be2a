//! Real captures through `tidemark tap`, judged against references nobody here
//! computed with tidemark:
//! - the project's captures in `captures/` against their `*.truth.json` (made by the
//!   server side from what it answered, never by decoding the pcap): every write the
//!   truth lists becomes exactly the outcome ARCHITECTURE.md's rules give it after the
//!   commit tracker, per namespace and key and in commit order ([`expected`]);
//! - the third-party captures in `../shared/captures` against the facts SOURCES.md
//!   names for each file (its "writes" column), through `require`.
//!
//! All 22 own captures are in the repository, so a missing one fails even locally.

mod commit_support;
mod common;
mod inspect_support;
mod require;

use inspect_support::own_capture as own;
use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use tidemark::commit::TrackerConfig;
use tidemark::store::envelope::Payload;
use tidemark::store::{Envelope, Mutation, Undecided};

/// The project's captures (captures/*.pcap), each with a truth file. The real-server
/// captures (`captures/realdb.md`: `cassandra5_v4_lz4`, `ferretdb_pymongo`) have a truth of the driver's
/// and server's view instead of `writes` with outcomes as responded; they are held
/// against it by `tests/realdb_captures.rs`.
const OWN: [&str; 22] = [
    "cassandra5_v4_lz4",
    "cql_faults",
    "cql_testbed_v4_lz4",
    "cql_testbed_v4_snappy",
    "cql_testbed_v5",
    "cql_v4_auth",
    "cql_v4_lz4",
    "cql_v4_snappy",
    "cql_v5",
    "cql_v5_nocomp",
    "ferretdb_pymongo",
    "mongo_failover",
    "mongo_opmsg",
    "mongo_rust",
    "mongo_rust_zlib",
    "mongo_rust_zstd",
    "mongo_scram",
    "mongo_sharded",
    "mongo_snappy",
    "mongo_testbed",
    "mongo_zlib",
    "mongo_zstd",
];

/// The own captures whose truth lists every write (`writes`), and the tracker
/// decides all of them as ARCHITECTURE.md says. `mongo_failover` (rollback),
/// `mongo_testbed` (oplog) and `mongo_sharded` (chunk moves) have their own tests; the pymongo responder captures
/// whose set has one member are in [`ONE_MEMBER_SET`].
const WITH_WRITES: [&str; 12] = [
    "cql_faults",
    "cql_testbed_v4_lz4",
    "cql_testbed_v4_snappy",
    "cql_testbed_v5",
    "cql_v4_auth",
    "cql_v4_lz4",
    "cql_v4_snappy",
    "cql_v5",
    "cql_v5_nocomp",
    "mongo_rust",
    "mongo_rust_zlib",
    "mongo_rust_zstd",
];

/// pymongo against `mongo_responder.py`, whose hello names one member (`hosts:
/// [its address]`): "in a one-member set an acknowledged write is committed"
/// (ARCHITECTURE.md), the tracker's `one_member_set` rule.
const ONE_MEMBER_SET: [&str; 5] = [
    "mongo_opmsg",
    "mongo_scram",
    "mongo_snappy",
    "mongo_zlib",
    "mongo_zstd",
];

fn truth(name: &str) -> Value {
    let p = own(&format!("{name}.truth.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

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

/// A key as compared: canonical JSON; no key (DDL, TRUNCATE) is `{}` on both sides.
fn canon_key(v: &Value) -> String {
    match v {
        Value::Null => "{}".into(),
        v => v.to_string(),
    }
}

/// `(namespace, key)`: what one write's history is kept under.
type Slot = (String, String);
/// One write as compared: op, reason (CQL), optime (a committed Mongo write's,
/// BSON timestamp as `secs << 32 | inc`).
type Entry = (String, Option<String>, Option<u64>);
/// Per slot, the writes in commit order.
type History = BTreeMap<Slot, Vec<Entry>>;

/// What the log must hold: committed and rejected writes per slot, each in commit
/// order, and the writes left undecided (no order). Commit order is CQL's send
/// order (the truth's order: one write at a time on one connection, each decided by
/// its response) and, for committed Mongo writes, optime order: the log appends in
/// decision order, and a transaction's write is decided at its commit while an
/// earlier w:1 write of the same key waits for the commit point.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    committed: History,
    rejected: History,
    undecided: History,
}

/// The truth's `writes` after the commit tracker, by ARCHITECTURE.md's rules:
/// - `committed`, `rejected` stay so (CQL: with the truth's reason, e.g.
///   `partial 1/2`, `unavailable`, `not_applied`); the transaction commands
///   themselves are not data mutations (their statements carry the outcome);
/// - CQL `in_doubt` stays undecided with its reason (`timeout`: nothing will
///   resolve it in a pcap);
/// - Mongo `pending` (acknowledged below majority, or with a writeConcernError:
///   applied on the primary) → `committed`: these sets have one voting member, so
///   the primary's acknowledgement is the majority's; a set without visible
///   replication would be committed by the default policy too;
/// - Mongo `in_doubt` `unacknowledged` (w:0) stays undecided: no reply, no oplog;
/// - a retryable write sent again (`retry_of_request_id`) is one write: the
///   attempt without a reply is the retry's write, which carries the outcome.
fn expected(t: &Value) -> Expected {
    let optime = |w: &Value| -> Option<u64> {
        let ts = &w["optime"]["$timestamp"];
        Some((ts["t"].as_u64()? << 32) | ts["i"].as_u64()?)
    };
    let writes = t["writes"].as_array().expect("truth lists writes");
    let retried: Vec<&Value> = writes
        .iter()
        .filter_map(|w| w.get("retry_of_request_id"))
        .filter(|v| !v.is_null())
        .collect();
    let mut e = Expected::default();
    for w in writes {
        let op = w["op"].as_str().unwrap();
        if matches!(op, "commitTransaction" | "abortTransaction") {
            continue;
        }
        if w.get("request_id").is_some_and(|id| retried.contains(&id)) {
            continue;
        }
        let mongo = w["proto"] == "mongo";
        let slot = (
            w["namespace"].as_str().unwrap().to_string(),
            canon_key(&w["key"]),
        );
        let reason = if mongo {
            None
        } else {
            w["reason"].as_str().map(str::to_string)
        };
        let mut at = None;
        let history = match w["outcome_as_responded"].as_str().unwrap() {
            "committed" | "pending" => {
                assert!(mongo || w["outcome_as_responded"] == "committed", "{w}");
                if mongo {
                    // A write that matched nothing has no optime (and no oplog entry).
                    at = optime(w);
                    assert!(at.is_some() || w["applied"] == false, "no optime: {w}");
                }
                &mut e.committed
            }
            "rejected" => &mut e.rejected,
            "in_doubt" => {
                let r = w["reason"].as_str().unwrap();
                assert!(
                    !mongo || r.starts_with("unacknowledged"),
                    "a Mongo in-doubt write the rules do not cover: {w}"
                );
                &mut e.undecided
            }
            other => panic!("truth outcome {other}: {w}"),
        };
        history
            .entry(slot)
            .or_default()
            .push((op.to_string(), reason, at));
    }
    if writes.iter().any(|w| w["proto"] == "mongo") {
        for h in e.committed.values_mut() {
            h.sort_by_key(|x| x.2);
        }
    }
    e
}

/// A Mongo mutation's optime (BSON timestamp), as the log stores it.
fn optime_of(m: &Mutation) -> Option<u64> {
    match &m.payload {
        Payload::Mongo(op) => op.optime.map(|o| o.ts),
        Payload::Cql(_) => None,
    }
}

fn op_of(m: &Mutation) -> String {
    let line = Value::Object(tidemark::commit::write_line(m).unwrap_or_default());
    line["op"].as_str().unwrap_or("?").to_string()
}

fn slot_of(m: &Mutation) -> Slot {
    let key: Value = serde_json::from_str(&m.key).unwrap_or(Value::Null);
    (m.namespace.clone(), canon_key(&key))
}

/// The same shape from what tap left, CQL DDL aside (the truth lists DML only).
fn got(t: &Tapped, mongo: bool) -> (Expected, Vec<(String, String)>) {
    let mut g = Expected::default();
    let mut ddl = Vec::new();
    let entry = |m: &Mutation| {
        let reason = if mongo {
            None
        } else {
            m.reason_text().map(str::to_string)
        };
        let committed = m.outcome.kind().as_str() == "committed";
        let at = if mongo && committed {
            optime_of(m)
        } else {
            None
        };
        (op_of(m), reason, at)
    };
    for e in &t.log {
        let m = &e.mutation;
        let op = op_of(m);
        if !mongo
            && (op.starts_with("create_") || op.starts_with("drop_") || op.starts_with("alter_"))
        {
            ddl.push((op, m.namespace.clone()));
            continue;
        }
        let history = match m.outcome.kind().as_str() {
            "committed" => &mut g.committed,
            "rejected" => &mut g.rejected,
            other => panic!("{other} in the log of a capture without replication: {m:?}"),
        };
        history.entry(slot_of(m)).or_default().push(entry(m));
    }
    for u in &t.undecided {
        let m = &u.mutation;
        g.undecided.entry(slot_of(m)).or_default().push(entry(m));
    }
    for h in g.undecided.values_mut() {
        // The undecided list has no order of its own.
        h.sort();
    }
    if mongo {
        for h in g.committed.values_mut() {
            h.sort_by_key(|x| x.2);
        }
    }
    (g, ddl)
}

/// The comparison of the module docs for one capture; returns the tap.
fn check_against_truth(name: &str) -> Tapped {
    let t = truth(name);
    let mongo = name.starts_with("mongo");
    let mut want = expected(&t);
    for h in want.undecided.values_mut() {
        h.sort();
    }
    let tapped = tap(&own(&format!("{name}.pcap")));
    let (got, ddl) = got(&tapped, mongo);
    let diff = |what: &str, a: &History, b: &History| {
        for slot in a.keys().chain(b.keys()) {
            assert_eq!(
                b.get(slot),
                a.get(slot),
                "{name}: {what} writes of {slot:?}: tap (left) vs truth (right)"
            );
        }
    };
    diff("committed", &want.committed, &got.committed);
    diff("rejected", &want.rejected, &got.rejected);
    diff("undecided", &want.undecided, &got.undecided);
    if name == "cql_faults" {
        // The workload's schema, announced by the two SCHEMA_CHANGE events (cql.md).
        let want_ddl = [
            ("create_keyspace".to_string(), "tm".to_string()),
            ("create_table".to_string(), "tm.faults".to_string()),
        ];
        assert_eq!(ddl, want_ddl, "{name}: DDL");
    } else {
        assert!(
            ddl.is_empty(),
            "{name}: DDL the workload never sent: {ddl:?}"
        );
    }
    tapped
}

#[test]
fn every_own_capture_is_in_the_repository() {
    for name in OWN {
        for ext in ["pcap", "truth.json"] {
            let p = own(&format!("{name}.{ext}"));
            assert!(p.is_file(), "{} is missing", p.display());
        }
    }
    // And no capture is left out of the list.
    let on_disk = std::fs::read_dir(own(""))
        .unwrap()
        .filter(|f| {
            f.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|e| e == "pcap")
        })
        .count();
    assert_eq!(on_disk, OWN.len());
}

#[test]
fn own_captures_log_exactly_what_their_truth_implies() {
    let mut writes = 0;
    for name in WITH_WRITES {
        let tapped = check_against_truth(name);
        writes += tapped.log.len() + tapped.undecided.len();
    }
    // cql: 9 + 3 × 38 + 3 + 4 × 38 minus the 4 × 2 still in doubt, plus cql_faults'
    // DDL; mongo_rust*: 3 × 225. A count, so an empty run cannot pass.
    assert!(writes > 900, "{writes}");
}

/// cql_faults.pcap against the cluster's own state: the keys the tap logs committed
/// in `tm.faults` are exactly the keys a SELECT read back from the three replicas
/// after hints (`final_state.keys`), and the rejected ones (Unavailable) are not
/// among them.
#[test]
fn cql_faults_committed_keys_are_the_clusters_final_state() {
    let t = truth("cql_faults");
    let want: Vec<i64> = t["final_state"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_i64().unwrap())
        .collect();
    assert_eq!(t["final_state"]["replicas_equal_after_hints"], true);
    let tapped = tap(&own("cql_faults.pcap"));
    let keys = |outcome: &str| -> Vec<i64> {
        let mut k: Vec<i64> = tapped
            .log
            .iter()
            .filter(|e| e.mutation.namespace == "tm.faults" && op_of(&e.mutation) == "insert")
            .filter(|e| e.mutation.outcome.kind().as_str() == outcome)
            .map(|e| {
                let key: Value = serde_json::from_str(&e.mutation.key).unwrap();
                key["k"].as_i64().unwrap()
            })
            .collect();
        k.sort_unstable();
        k
    };
    assert_eq!(keys("committed"), want);
    assert_eq!(keys("rejected"), [7, 9]);
}

/// The writes of a one-member set's captures, acknowledged at w:1 or the default
/// write concern, must be committed (ARCHITECTURE.md, MongoDB: "in a one-member set
/// an acknowledged write is committed"), at their reply: before the
/// `one_member_set` rule the tracker left them `pending` when no hello after them
/// carried `lastWrite.majorityOpTime` (57 of 66 writes in mongo_zlib/zstd/snappy,
/// both in mongo_scram, 6 in mongo_opmsg). Writes the truth says matched nothing
/// (`applied: false`) are logged with no optime.
#[test]
fn one_member_set_captures_log_exactly_what_their_truth_implies() {
    for name in ONE_MEMBER_SET {
        check_against_truth(name);
    }
}

/// `(namespace, op, outcome, reason prefix)` of one logged write.
type Fact = (&'static str, &'static str, &'static str, &'static str);

/// What SOURCES.md says each third-party capture writes (its "writes" column), as
/// `(namespace, op, outcome, reason prefix)` after the tracker; files it lists with
/// no write must log nothing. These captures start mid-connection with unqualified
/// tables (no USE, no keyspace to know): the INSERT's namespace is its table as
/// written, a DDL statement's is `(unknown)`.
fn shared_facts() -> Vec<(&'static str, Vec<Fact>)> {
    vec![
        ("arkime/cassandra1.pcap", vec![]),
        ("arkime/mongo.pcap", vec![]),
        (
            "beats-packetbeat/cassandra_compressed.pcap",
            vec![
                ("simplex", "create_keyspace", "committed", ""),
                ("simplex.songs", "create_table", "committed", ""),
                ("simplex.playlists", "create_table", "committed", ""),
                ("simplex.songs", "insert", "committed", ""),
                ("simplex.playlists", "insert", "committed", ""),
            ],
        ),
        (
            "beats-packetbeat/cassandra_create_index.pcap",
            vec![("(unknown)", "create_index", "committed", "")],
        ),
        (
            "beats-packetbeat/cassandra_create_keyspace.pcap",
            vec![("mykeyspace", "create_keyspace", "committed", "")],
        ),
        (
            "beats-packetbeat/cassandra_create_table.pcap",
            vec![("(unknown)", "create_table", "committed", "")],
        ),
        (
            "beats-packetbeat/cassandra_insert.pcap",
            vec![("users", "insert", "committed", "")],
        ),
        ("beats-packetbeat/cassandra_mixed_frame.pcap", vec![]),
        ("beats-packetbeat/cassandra_select.pcap", vec![]),
        ("beats-packetbeat/cassandra_select_via_index.pcap", vec![]),
        (
            // ERROR 0x2300 "Cannot drop non existing keyspace": not attempted.
            "beats-packetbeat/cassandra_trace_err.pcap",
            vec![("mykeyspace", "drop_keyspace", "rejected", "config_error")],
        ),
        ("beats-packetbeat/mongo_one_row.pcap", vec![]),
        (
            // MongoDB 2.6, whose isMaster has no setName: a standalone, which never
            // rolls back, so the acknowledged write is committed (`standalone`).
            "beats-packetbeat/mongodb_create_collection.pcap",
            vec![("testDB.testCollection", "create", "committed", "standalone")],
        ),
        ("beats-packetbeat/mongodb_find.pcap", vec![]),
        (
            // writeErrors 11000, seen twice (client→mongos, mongos→shard): one write.
            "beats-packetbeat/mongodb_insert_duplicate_key.pcap",
            vec![(
                "test.restaurants",
                "insert",
                "rejected",
                "write_error 11000",
            )],
        ),
        (
            "beats-packetbeat/mongodb_inserts.pcap",
            vec![
                ("testDB.testCollection", "insert", "committed", "standalone"),
                ("testDB.testCollection", "insert", "committed", "standalone"),
            ],
        ),
        ("beats-packetbeat/mongodb_invalid_opcode_2269.pcap", vec![]),
        ("beats-packetbeat/mongodb_more_rows.pcap", vec![]),
        ("beats-packetbeat/mongodb_op_msg_opcode.pcap", vec![]),
        ("beats-packetbeat/mongodb_reply_request_reply.pcap", vec![]),
        ("beats-packetbeat/mongodb_use_db.pcap", vec![]),
        ("deepflow/mongo-msg.pcap", vec![]),
        (
            // 2 inserts each confirmed by getlasterror {w:1}; MongoDB 3.2 standalone
            // (isMaster without setName).
            "mongo-tools/op_command_2inserts.pcap",
            vec![
                ("mongotape.test", "insert", "committed", "standalone"),
                ("mongotape.test", "insert", "committed", "standalone"),
            ],
        ),
        ("ndpi/cassandra.pcap", vec![]),
    ]
}

#[test]
fn every_shared_capture_logs_what_sources_md_names() {
    let facts = shared_facts();
    assert_eq!(facts.len(), 24, "SOURCES.md lists 24 captures");
    for (rel, want) in facts {
        let Some(file) = require::shared_capture(rel) else {
            continue;
        };
        let t = tap(&file);
        let got: Vec<(String, String, &str, String)> = t
            .log
            .iter()
            .map(|e| {
                let m = &e.mutation;
                (
                    m.namespace.clone(),
                    op_of(m),
                    m.outcome.kind().as_str(),
                    m.reason_text().unwrap_or("").to_string(),
                )
            })
            .collect();
        assert_eq!(got.len(), want.len(), "{rel}: {got:?}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!((g.0.as_str(), g.1.as_str(), g.2), (w.0, w.1, w.2), "{rel}");
            assert!(
                g.3.starts_with(w.3),
                "{rel}: reason {:?} not {:?}",
                g.3,
                w.3
            );
        }
        assert!(
            t.undecided.is_empty(),
            "{rel}: undecided {:?}",
            t.undecided.len()
        );
    }
}

#[test]
fn the_duplicate_key_insert_is_rejected() {
    let Some(f) = require::shared_capture("beats-packetbeat/mongodb_insert_duplicate_key.pcap")
    else {
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
    let Some(f) = require::shared_capture("beats-packetbeat/cassandra_compressed.pcap") else {
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
        .map(|e| Value::Object(tidemark::commit::write_line(&e.mutation).unwrap()).to_string())
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
    let file = own("mongo_failover.pcap");
    let truth = truth("mongo_failover");
    let t = tap(&file);
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

/// Canonical Extended JSON (the testbed's truth) to relaxed (the log's keys):
/// numbers become plain JSON numbers, everything else stays.
fn relaxed(v: &Value) -> Value {
    match v {
        Value::Object(m) if m.len() == 1 => {
            let (k, inner) = m.iter().next().unwrap();
            match (k.as_str(), inner.as_str()) {
                ("$numberInt" | "$numberLong", Some(s)) => Value::from(s.parse::<i64>().unwrap()),
                ("$numberDouble", Some(s)) => Value::from(s.parse::<f64>().unwrap()),
                _ => Value::Object(m.iter().map(|(k, v)| (k.clone(), relaxed(v))).collect()),
            }
        }
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), relaxed(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(relaxed).collect()),
        v => v.clone(),
    }
}

/// `(namespace, key, op kind, optime)` of each data entry of an oplog (`i`, `u`,
/// `d`, and the members of an `applyOps`, which take the entry's optime), in
/// oplog order.
fn oplog_data_entries(oplog: &[Value]) -> Vec<(String, String, String, u64)> {
    let mut out = Vec::new();
    for e in oplog {
        let ts = &e["ts"]["$timestamp"];
        let at = (ts["t"].as_u64().unwrap() << 32) | ts["i"].as_u64().unwrap();
        let members: Vec<&Value> = match e["o"]["applyOps"].as_array() {
            Some(ops) if e["op"] == "c" => ops.iter().collect(),
            _ => vec![e],
        };
        for m in members {
            let op = m["op"].as_str().unwrap();
            let id = match op {
                "i" | "d" => &m["o"]["_id"],
                "u" => &m["o2"]["_id"],
                _ => continue,
            };
            let key = serde_json::json!({ "_id": relaxed(id) });
            out.push((
                m["ns"].as_str().unwrap().to_string(),
                key.to_string(),
                op.to_string(),
                at,
            ));
        }
    }
    out
}

type OplogRow = (String, String, String, u64);
/// `(outcome, op kind, namespace)` of a logged mutation that is no oplog data entry.
type Other = (String, String, String);

/// The testbed capture's truth oplog data entries, and tap's committed data
/// mutations (sorted by optime) plus everything else it logged.
fn testbed_oplog_and_log() -> (Vec<OplogRow>, Vec<OplogRow>, Vec<Other>) {
    let t = truth("mongo_testbed");
    let members = t["testbed"]["members"].as_array().unwrap();
    let oplog = members[0]["oplog"].as_array().unwrap();
    for m in members {
        assert_eq!(
            m["oplog"].as_array().unwrap(),
            oplog,
            "members' oplogs are equal"
        );
        assert_eq!(m["commit_point"], m["last_applied"], "everything committed");
    }
    let want = oplog_data_entries(oplog);
    // 48 i + 23 u + 5 d entries, and the committed transaction's 3 operations.
    assert_eq!(want.len(), 79);

    let tapped = tap(&own("mongo_testbed.pcap"));
    assert!(tapped.undecided.is_empty(), "{:?}", tapped.undecided.len());
    let mut got = Vec::new();
    let mut other = Vec::new();
    for e in &tapped.log {
        let m = &e.mutation;
        let Payload::Mongo(op) = &m.payload else {
            panic!("a CQL mutation in a MongoDB capture");
        };
        let kind = op.op.as_str();
        match (m.outcome.kind().as_str(), kind) {
            ("committed", "i" | "u" | "d") => got.push((
                m.namespace.clone(),
                slot_of(m).1,
                kind.to_string(),
                op.optime.map(|o| o.ts).unwrap_or(0),
            )),
            (outcome, kind) => {
                other.push((outcome.to_string(), kind.to_string(), m.namespace.clone()))
            }
        }
    }
    got.sort_by_key(|g| g.3);
    // The rest: DDL (the oplog has it as commands), rejected writes (no entry), and
    // acknowledged writes that changed nothing (no entry: logged as a no-op `n`).
    let commands = oplog.iter().filter(|e| e["op"] == "c").count();
    for (outcome, kind, ns) in &other {
        assert!(
            (outcome == "committed" && (kind == "c" || kind == "n")) || outcome == "rejected",
            "{outcome} {kind} {ns}"
        );
    }
    let ddl = other
        .iter()
        .filter(|o| o.0 == "committed" && o.1 == "c")
        .count();
    assert!(
        ddl <= commands,
        "{ddl} DDL mutations, {commands} oplog commands"
    );
    (want, got, other)
}

/// `captures/mongo_testbed.pcap`: real pymongo against the testbed's 3-member set,
/// with the secondaries' oplog fetches on the wire. Its truth is the set's state at
/// shutdown (all three oplogs equal, the commit point at the last entry), so every
/// data entry of the oplog is a committed write: the log's committed data
/// mutations must be exactly those entries (namespace, `_id`, op kind, optime), in
/// oplog order, and nothing is left undecided. What is logged besides them is
/// DDL (an oplog `c` entry) or rejected (no oplog entry).
///
/// This holds for the writes whose form differs from their entries: multi-document
/// updates and deletes (`{_id: {$in: …}}` → one entry per document changed, a
/// missing `_id` none), upserts (an `i` entry), a findAndModify by `{grp: 2}` (the
/// entry of the document it found), and a findAndModify remove that matched nothing
/// (no entry: logged as a no-op, see `reason` `unchanged`).
#[test]
fn the_testbed_capture_logs_exactly_its_oplog() {
    let (want, got, _) = testbed_oplog_and_log();
    assert_eq!(got.len(), want.len(), "committed data mutations vs oplog");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "entry {i}: log (left) vs oplog (right)");
    }
}

/// A value of the testbed's truth or of the log, as relaxed Extended JSON through
/// the bson crate: both sides in one form (Int32 and Int64 alike as numbers).
fn ext(v: &Value) -> Value {
    bson::Bson::try_from(v.clone())
        .unwrap_or_else(|e| panic!("not extended JSON: {v}: {e}"))
        .into_relaxed_extjson()
}

/// `(min, max, shard)` of each chunk of one map, as the config servers' chunk
/// documents say them (`{key field: bound}`), sorted.
type ChunkRow = (String, String, String);

fn truth_chunks(table: &Value) -> Vec<ChunkRow> {
    let (field, _) = table["key"].as_object().unwrap().iter().next().unwrap();
    let bound = |b: &Value| ext(&serde_json::json!({ field.clone(): b })).to_string();
    let mut out: Vec<ChunkRow> = table["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                bound(&c["min"]),
                bound(&c["max"]),
                c["shard"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn logged_chunks<'a>(
    chunks: impl IntoIterator<Item = &'a tidemark::report::chunk_map::Chunk>,
) -> Vec<ChunkRow> {
    let mut out: Vec<ChunkRow> = chunks
        .into_iter()
        .map(|c| {
            (
                ext(&c.min).to_string(),
                ext(&c.max).to_string(),
                c.shard.clone(),
            )
        })
        .collect();
    out.sort();
    out
}

/// `captures/mongo_sharded.pcap` (`captures/mongo_sharded.md`): real pymongo through
/// the two routers of the testbed's sharded cluster while chunks move (explicit
/// `moveChunk`s, then the balancer), every layer on the wire: client→router,
/// router→shard, `_migrateClone`/`_transferMods`, the sets' oplog fetches with
/// `fromMigrate` entries and range-deleter deletes. Judged against its truth file
/// only (the driver's acknowledgements and the testbed's own state):
/// - every write the driver saw acknowledged (all `w: "majority"`; the retryable
///   insert sent twice counts once) is logged exactly once, committed, and nothing
///   else is logged as a write of the user collections: no migration clone or
///   catch-up copy, no range deletion, no router→shard copy; nothing undecided;
///   besides them each collection has one line, its client's `shardCollection`;
/// - the version at the end of the capture (log alone) is the testbed's final
///   logical state of each user collection, document for document;
/// - the chunk-map history derived from the logged `config.chunks` writes is the
///   config servers' own (same maps, same order), and `status --json` shows the
///   final map and the number of changes.
#[test]
fn the_sharded_capture_logs_each_acknowledged_write_once_and_ends_in_the_truths_state() {
    let t = truth("mongo_sharded");
    let user: Vec<&str> = t["user_namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(user, ["tm.hashed", "tm.ranged"]);
    let out = commit_support::tap_file(&own("mongo_sharded.pcap"), TrackerConfig::default());
    assert!(out.undecided.is_empty(), "{:?}", out.undecided.len());

    // 1. acknowledged writes, each once; nothing else for the user collections
    type Write = (String, String, String);
    let mut want: BTreeMap<Write, usize> = BTreeMap::new();
    for a in t["acknowledged"].as_array().unwrap() {
        let w = (
            a["ns"].as_str().unwrap().to_string(),
            a["op"].as_str().unwrap().to_string(),
            ext(&a["_id"]).to_string(),
        );
        *want.entry(w).or_default() += 1;
    }
    let mut got: BTreeMap<Write, usize> = BTreeMap::new();
    let mut strays = Vec::new();
    // The client's own `shardCollection` of each collection: the one DDL line.
    let mut sharded: Vec<String> = Vec::new();
    for e in &out.log {
        let m = &e.mutation;
        if !user.contains(&m.namespace.as_str()) {
            continue;
        }
        let op = op_of(m);
        let key: Value = serde_json::from_str(&m.key).unwrap_or(Value::Null);
        let committed = m.outcome.kind().as_str() == "committed";
        match (op.as_str(), key.get("_id")) {
            ("shardCollection", None) if committed => sharded.push(m.namespace.clone()),
            ("insert" | "update" | "delete", Some(id)) if committed => {
                *got.entry((m.namespace.clone(), op, ext(id).to_string()))
                    .or_default() += 1
            }
            _ => strays.push(format!("{} {op} {} {:?}", m.namespace, m.key, m.outcome)),
        }
    }
    assert!(strays.is_empty(), "not an acknowledged write: {strays:?}");
    let mut want_sharded: Vec<String> = t["chunk_map_history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["what"] == "shardCollection")
        .map(|h| h["ns"].as_str().unwrap().to_string())
        .collect();
    want_sharded.sort();
    sharded.sort();
    assert_eq!(sharded, want_sharded, "shardCollection lines");
    let missing: Vec<_> = want.iter().filter(|(w, n)| got.get(*w) < Some(n)).collect();
    let extra: Vec<_> = got.iter().filter(|(w, n)| want.get(*w) < Some(n)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged, not logged once: {missing:?}"
    );
    assert!(extra.is_empty(), "logged, never acknowledged: {extra:?}");
    let writes: usize = want.values().sum();
    // the recorded run: 100 + 40 bulk inserts, 2 retryable inserts, the writes during
    // the moves (a count, so an empty truth cannot pass)
    assert!(writes > 150, "{writes}");
    // The moves really copied documents, and the range deleter removed them: all of
    // which the log must have left out.
    let cloned: u64 = t["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["cloned"].as_u64().unwrap() + m["transferred"].as_u64().unwrap())
        .sum();
    let deleted: u64 = t["range_deletions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["deleted"].as_u64().expect("every range deletion ran"))
        .sum();
    assert!(
        cloned > 0 && deleted > 0,
        "cloned {cloned}, range-deleted {deleted}"
    );

    // 2. the version at the end of the capture is the final logical state
    let store_dir = out.dir.path().join("store");
    let cut = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "version",
            "create",
            "--name",
            "end",
            "--at",
            "latest",
            "--snapshot",
            "none",
            "--store",
        ])
        .arg(&store_dir)
        .output()
        .unwrap();
    assert!(
        cut.status.success(),
        "{}",
        String::from_utf8_lossy(&cut.stderr)
    );
    let store = tidemark::store::Store::open(
        &store_dir,
        &tidemark::store::StoreOptions::default().read_only(),
    )
    .unwrap();
    let info = tidemark::version::stored::info(&store, "end")
        .unwrap()
        .unwrap();
    assert!(
        info.gaps.is_empty() && info.uncertain.is_empty(),
        "{info:?}"
    );
    let mut docs: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    tidemark::version::stored::for_each_row(&store, "end", |ns, _, row| {
        if user.contains(&ns) {
            let tidemark::version::model::VersionRow::Mongo { document } = row else {
                panic!("{ns}: not a document");
            };
            let d = bson::Document::from_reader(document.as_slice()).expect("BSON");
            let v = bson::Bson::Document(d).into_relaxed_extjson();
            docs.entry(ns.to_string())
                .or_default()
                .insert(v["_id"].to_string(), v);
        }
        Ok(true)
    })
    .unwrap();
    for ns in &user {
        let theirs: BTreeMap<String, Value> = t["logical_state"][*ns]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let d = ext(d);
                (d["_id"].to_string(), d)
            })
            .collect();
        let ours = docs.remove(*ns).unwrap_or_default();
        let differing: Vec<_> = ours
            .iter()
            .filter(|(k, d)| theirs.get(*k) != Some(*d))
            .chain(theirs.iter().filter(|(k, _)| !ours.contains_key(*k)))
            .take(5)
            .collect();
        assert!(
            differing.is_empty(),
            "{ns}: the version at the end ({} documents) vs the final logical state ({}): {differing:?}",
            ours.len(),
            theirs.len()
        );
        assert!(!theirs.is_empty(), "{ns}");
    }

    // 3. the chunk-map history
    let history = tidemark::report::chunk_map::history(&store).expect("chunk-map history");
    drop(store);
    let changes = t["chunk_map_history"].as_array().unwrap();
    for ns in &user {
        let theirs: Vec<Vec<ChunkRow>> = changes
            .iter()
            .filter(|h| h["ns"] == *ns)
            .map(|h| truth_chunks(&h["table"]))
            .collect();
        let ours: Vec<Vec<ChunkRow>> = history
            .get(*ns)
            .unwrap_or_else(|| panic!("no chunk-map history for {ns}"))
            .iter()
            .map(|m| logged_chunks(&m.chunks))
            .collect();
        assert_eq!(
            ours, theirs,
            "{ns}: the chunk-map history, log (left) vs config servers (right)"
        );
    }
    assert!(
        changes.iter().filter(|h| h["what"] == "moveChunk").count() >= 4,
        "moves"
    );
    // Each change takes effect at its config-server oplog entry's wall time; tidemark
    // knows it at the reply to the write (its commit time): never before, and before
    // the next change of the collection.
    for ns in &user {
        let walls: Vec<i64> = changes
            .iter()
            .filter(|h| h["ns"] == *ns)
            .map(|h| h["config_wall_ms"].as_i64().unwrap())
            .collect();
        let froms: Vec<i64> = history[*ns]
            .iter()
            .map(|m| (m.from / 1_000_000) as i64)
            .collect();
        for (i, (from, wall)) in froms.iter().zip(&walls).enumerate() {
            let next = walls.get(i + 1).copied().unwrap_or(i64::MAX);
            assert!(
                *wall <= *from && *from < next,
                "{ns} change {i}: known at {from} ms, made at {wall} ms, next at {next} ms"
            );
        }
    }
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["status", "--json", "--store"])
        .arg(&store_dir)
        .output()
        .unwrap();
    assert!(status.status.success());
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    for table in t["chunks"].as_array().unwrap() {
        let ns = table["ns"].as_str().unwrap();
        let now: Vec<ChunkRow> = {
            let mut v: Vec<ChunkRow> = status["chunk_maps"][ns]["chunks"]
                .as_array()
                .unwrap_or_else(|| panic!("status --json has no chunk map of {ns}"))
                .iter()
                .map(|c| {
                    (
                        ext(&c["min"]).to_string(),
                        ext(&c["max"]).to_string(),
                        c["shard"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        assert_eq!(now, truth_chunks(table), "{ns}: status, the map in force");
        let n = changes.iter().filter(|h| h["ns"] == ns).count();
        assert_eq!(status["chunk_maps"][ns]["changes"], n, "{ns}: changes");
    }
}
