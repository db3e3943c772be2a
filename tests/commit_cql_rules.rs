//! The commit tracker's CQL rules (ARCHITECTURE.md, "Outcome rules"), one scenario
//! each: real protocol frames (tidemark-cql's encoder) on TCP flows in a pcap, run
//! through `tidemark tap`'s pipeline into a store; the log and the undecided writes
//! are asserted exactly.

mod commit_support;
mod common;

use commit_support::{at, tap, Scenario};
use tidemark::commit::{InDoubtPolicy, TrackerConfig};
use tidemark_cql::frame::{encode_message, Compression};
use tidemark_cql::message::{
    error_code, ColumnSpec, ErrorBody, ErrorDetails, Query, QueryParameters, ResultBody, Rows,
    RowsMetadata,
};
use tidemark_cql::wire::Consistency;
use tidemark_cql::{ColumnType, Message};

const NODE1: &str = "10.1.0.1:9042";
const NODE2: &str = "10.1.0.2:9042";
const CLIENT: &str = "10.9.0.1:40001";
const CLIENT2: &str = "10.9.0.1:40002";

fn query(stream: i16, text: &str) -> Vec<u8> {
    encode_message(
        4,
        stream,
        Message::Query(Query {
            query: text.into(),
            params: QueryParameters {
                consistency: Consistency::Quorum,
                ..QueryParameters::default()
            },
        }),
        Compression::None,
    )
}

fn void(stream: i16) -> Vec<u8> {
    encode_message(
        4,
        stream,
        Message::Result(ResultBody::Void),
        Compression::None,
    )
}

fn write_timeout(stream: i16, write_type: &str, received: i32) -> Vec<u8> {
    encode_message(
        4,
        stream,
        Message::Error(ErrorBody {
            code: error_code::WRITE_TIMEOUT,
            message: "Operation timed out".into(),
            details: ErrorDetails::WriteTimeout {
                consistency: Consistency::Quorum,
                received,
                block_for: 2,
                write_type: write_type.into(),
                contentions: None,
            },
        }),
        Compression::None,
    )
}

fn unavailable(stream: i16) -> Vec<u8> {
    encode_message(
        4,
        stream,
        Message::Error(ErrorBody {
            code: error_code::UNAVAILABLE,
            message: "Cannot achieve consistency level QUORUM".into(),
            details: ErrorDetails::Unavailable {
                consistency: Consistency::Quorum,
                required: 2,
                alive: 1,
            },
        }),
        Compression::None,
    )
}

fn applied(stream: i16, value: bool) -> Vec<u8> {
    let spec = ColumnSpec {
        keyspace: "ks".into(),
        table: "t".into(),
        name: "[applied]".into(),
        ty: ColumnType::Boolean,
    };
    let meta = RowsMetadata {
        columns_count: 1,
        columns: vec![spec],
        ..RowsMetadata::default()
    };
    let rows = Rows::from_cells(
        meta,
        &[vec![Some(bytes::Bytes::from(vec![u8::from(value)]))]],
    );
    encode_message(
        4,
        stream,
        Message::Result(ResultBody::Rows(rows)),
        Compression::None,
    )
}

fn cfg(resolve_after_ms: u64, policy: InDoubtPolicy) -> TrackerConfig {
    TrackerConfig {
        resolve_after_ns: resolve_after_ms * 1_000_000,
        in_doubt_policy: policy,
        ..TrackerConfig::default()
    }
}

fn row(
    ns: &str,
    key: &str,
    outcome: &'static str,
    note: &str,
) -> (String, String, &'static str, String) {
    (ns.to_string(), key.to_string(), outcome, note.to_string())
}

/// Rules: RESULT Void → committed; Unavailable → rejected (not attempted);
/// WriteTimeout SIMPLE with received ≥ 1 → committed(partial); with received 0 →
/// in_doubt(timeout), logged `in_doubt` when its deadline passes under the `keep`
/// policy; LWT `[applied]` false → rejected.
#[test]
fn responses_decide_outcomes_and_the_deadline_settles_the_in_doubt() {
    let mut s = Scenario::new();
    let f = s.flow(CLIENT, NODE1, 0);
    s.send(f, 10, &query(1, "UPDATE ks.t SET v = 'a' WHERE k = 1"));
    s.answer(f, 11, &void(1));
    s.send(f, 20, &query(2, "UPDATE ks.t SET v = 'b' WHERE k = 2"));
    s.answer(f, 21, &unavailable(2));
    s.send(f, 30, &query(3, "UPDATE ks.t SET v = 'c' WHERE k = 3"));
    s.answer(f, 31, &write_timeout(3, "SIMPLE", 1));
    s.send(f, 40, &query(4, "UPDATE ks.t SET v = 'd' WHERE k = 4"));
    s.answer(f, 41, &write_timeout(4, "SIMPLE", 0));
    s.send(
        f,
        50,
        &query(5, "UPDATE ks.t SET v = 'e' WHERE k = 5 IF v = 'x'"),
    );
    s.answer(f, 51, &applied(5, false));
    // Capture time moves past the in-doubt write's deadline (500 ms).
    s.send(f, 900, &query(6, "UPDATE ks.t SET v = 'f' WHERE k = 6"));
    s.answer(f, 901, &void(6));
    s.close(f, 1000);
    let out = tap(&s, cfg(500, InDoubtPolicy::Keep));
    assert_eq!(
        out.summary(),
        vec![
            row("ks.t", r#"{"k":1}"#, "committed", ""),
            row("ks.t", r#"{"k":2}"#, "rejected", "unavailable"),
            row("ks.t", r#"{"k":3}"#, "committed", "partial 1/2"),
            row("ks.t", r#"{"k":5}"#, "rejected", "not_applied"),
            row(
                "ks.t",
                r#"{"k":4}"#,
                "in_doubt",
                "timeout; unresolved at its resolution deadline"
            ),
            row("ks.t", r#"{"k":6}"#, "committed", ""),
        ]
    );
    assert_eq!(out.log[4].mutation.outcome.reason(), Some("timeout"));
    assert!(out.undecided.is_empty());
    // Commit times never go backwards, and the values are the write's.
    assert!(out
        .log
        .windows(2)
        .all(|w| w[0].mutation.commit_time <= w[1].mutation.commit_time));
    assert_eq!(out.lines()[0]["values"], serde_json::json!({"v": "a"}));
}

/// Rules: WriteTimeout of a logged BATCH (`BATCH`) → every member committed (the
/// batchlog replays it); `BATCH_LOG` → in_doubt(batchlog); `UNLOGGED_BATCH` → each
/// member in_doubt(timeout); `CAS` → in_doubt(cas_unknown). Under the `committed`
/// policy the in-doubt ones are logged committed at their deadline, saying so.
#[test]
fn batch_timeouts_by_write_type_and_the_committed_policy() {
    let mut s = Scenario::new();
    let f = s.flow(CLIENT, NODE1, 0);
    let batch = "BEGIN BATCH UPDATE ks.t SET v = 1 WHERE k = 10; UPDATE ks.t SET v = 2 WHERE k = 11; APPLY BATCH";
    s.send(f, 10, &query(1, batch));
    s.answer(f, 11, &write_timeout(1, "BATCH", 0));
    s.send(
        f,
        20,
        &query(
            2,
            "BEGIN BATCH UPDATE ks.t SET v = 3 WHERE k = 12; APPLY BATCH",
        ),
    );
    s.answer(f, 21, &write_timeout(2, "BATCH_LOG", 0));
    s.send(
        f,
        30,
        &query(
            3,
            "BEGIN UNLOGGED BATCH UPDATE ks.t SET v = 4 WHERE k = 13; APPLY BATCH",
        ),
    );
    s.answer(f, 31, &write_timeout(3, "UNLOGGED_BATCH", 1));
    s.send(
        f,
        40,
        &query(4, "UPDATE ks.t SET v = 5 WHERE k = 14 IF EXISTS"),
    );
    s.answer(f, 41, &write_timeout(4, "CAS", 0));
    s.close(f, 2000);
    let out = tap(&s, cfg(100, InDoubtPolicy::Committed));
    let got: Vec<(String, &str, String)> = out
        .log
        .iter()
        .map(|e| {
            (
                e.mutation.key.clone(),
                e.mutation.outcome.kind().as_str(),
                e.mutation.evidence.note.clone(),
            )
        })
        .collect();
    let policy = "unresolved at its resolution deadline, committed by policy";
    assert_eq!(
        got,
        vec![
            (r#"{"k":10}"#.into(), "committed", "batchlog_written".into()),
            (r#"{"k":11}"#.into(), "committed", "batchlog_written".into()),
            (
                r#"{"k":12}"#.into(),
                "committed",
                format!("batchlog; {policy}")
            ),
            (
                r#"{"k":13}"#.into(),
                "committed",
                format!("timeout; {policy}")
            ),
            (
                r#"{"k":14}"#.into(),
                "committed",
                format!("cas_unknown; {policy}")
            ),
        ]
    );
    assert_eq!(out.report.tracker.by_policy, 3);
    // Batch members keep their batch.
    let b = out.log[0].mutation.batch.as_ref().unwrap();
    assert_eq!(
        (b.index, out.log[1].mutation.batch.as_ref().unwrap().index),
        (0, 1)
    );
}

/// Rule `unavailable` for batches: a LOGGED batch answered Unavailable is refused
/// whole (Cassandra checks every partition's live replicas before the batchlog
/// write), and so is an UNLOGGED batch of one key; an UNLOGGED batch over several
/// keys is sent partition by partition (`StorageProxy.mutate`), so an Unavailable may
/// follow partitions already written: each member is in doubt (found by the
/// histories: tests/regressions/cql-logged-batch-unavailable-after-add-node.json).
#[test]
fn an_unlogged_batch_over_several_keys_answered_unavailable_is_in_doubt() {
    let mut s = Scenario::new();
    let f = s.flow(CLIENT, NODE1, 0);
    let batches = [
        "BEGIN BATCH UPDATE ks.t SET v = 1 WHERE k = 20; UPDATE ks.t SET v = 2 WHERE k = 21; APPLY BATCH",
        "BEGIN UNLOGGED BATCH UPDATE ks.t SET v = 3 WHERE k = 22; UPDATE ks.t SET v = 4 WHERE k = 22; APPLY BATCH",
        "BEGIN UNLOGGED BATCH UPDATE ks.t SET v = 5 WHERE k = 23; UPDATE ks.t SET v = 6 WHERE k = 24; APPLY BATCH",
    ];
    for (i, b) in batches.iter().enumerate() {
        let stream = i as i16 + 1;
        s.send(f, 10 * (i as u64 + 1), &query(stream, b));
        s.answer(f, 10 * (i as u64 + 1) + 1, &unavailable(stream));
    }
    s.close(f, 2000);
    let out = tap(&s, cfg(100, InDoubtPolicy::Keep));
    let got: Vec<(String, &str, Option<&str>)> = out
        .log
        .iter()
        .map(|e| {
            (
                e.mutation.key.clone(),
                e.mutation.outcome.kind().as_str(),
                e.mutation.outcome.reason(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (r#"{"k":20}"#.into(), "rejected", None),
            (r#"{"k":21}"#.into(), "rejected", None),
            (r#"{"k":22}"#.into(), "rejected", None),
            (r#"{"k":22}"#.into(), "rejected", None),
            (r#"{"k":23}"#.into(), "in_doubt", Some("unavailable")),
            (r#"{"k":24}"#.into(), "in_doubt", Some("unavailable")),
        ],
        "{:?}",
        out.summary()
    );
}

/// Rules: the same mutation (table, key, cells, client timestamp) seen again on
/// another coordinator is one mutation; a later commit resolves an earlier in-doubt
/// copy; a third (speculative) copy is dropped. Writes with server-assigned
/// timestamps are never merged: two identical counter-style updates are two writes.
#[test]
fn retries_merge_into_one_mutation_and_resolve_the_in_doubt_copy() {
    let mut s = Scenario::new();
    let a = s.flow(CLIENT, NODE1, 0);
    let b = s.flow(CLIENT2, NODE2, 0);
    let stmt = "UPDATE ks.t USING TIMESTAMP 1795478400000777 SET v = 'x' WHERE k = 7";
    s.send(a, 10, &query(1, stmt));
    s.answer(a, 20, &write_timeout(1, "SIMPLE", 0));
    s.send(b, 30, &query(1, stmt));
    s.answer(b, 31, &void(1));
    s.send(b, 40, &query(2, stmt));
    s.answer(b, 41, &void(2));
    s.send(a, 50, &query(2, "UPDATE ks.c SET n = n + 1 WHERE k = 1"));
    s.answer(a, 51, &void(2));
    s.send(a, 60, &query(3, "UPDATE ks.c SET n = n + 1 WHERE k = 1"));
    s.answer(a, 61, &void(3));
    s.close(a, 100);
    s.close(b, 100);
    let out = tap(&s, cfg(10_000, InDoubtPolicy::Keep));
    assert_eq!(
        out.summary(),
        vec![
            row(
                "ks.t",
                r#"{"k":7}"#,
                "committed",
                "in_doubt(timeout) resolved by a later copy on flow 1"
            ),
            row("ks.c", r#"{"k":1}"#, "committed", ""),
            row("ks.c", r#"{"k":1}"#, "committed", ""),
        ]
    );
    assert_eq!(
        out.log[0].mutation.write_timestamp,
        Some(1_795_478_400_000_777)
    );
    assert_eq!(out.log[0].mutation.commit_time, at(31));
    assert_eq!(
        (out.report.tracker.duplicates, out.report.tracker.merged),
        (2, 1)
    );
    assert!(out.undecided.is_empty());
}

/// Rules: a request whose flow ends before its response is in_doubt(no_response);
/// before its deadline it stays undecided (kept in the store with its reason) and
/// holds the tidemark at its request time.
#[test]
fn unanswered_writes_stay_undecided_and_hold_the_tidemark() {
    let mut s = Scenario::new();
    let f = s.flow(CLIENT, NODE1, 0);
    s.send(f, 10, &query(1, "UPDATE ks.t SET v = 'a' WHERE k = 1"));
    s.answer(f, 11, &void(1));
    s.send(f, 20, &query(2, "UPDATE ks.t SET v = 'b' WHERE k = 2"));
    s.close(f, 30);
    let out = tap(&s, cfg(60_000, InDoubtPolicy::Keep));
    assert_eq!(
        out.summary(),
        vec![row("ks.t", r#"{"k":1}"#, "committed", "")]
    );
    assert_eq!(out.undecided.len(), 1);
    let u = &out.undecided[0];
    assert_eq!(u.mutation.key, r#"{"k":2}"#);
    assert_eq!(u.mutation.outcome.reason(), Some("no_response"));
    assert_eq!(u.first_seen, at(20));
    assert_eq!(out.tidemark, Some(at(20)));
}

/// Rule: no version can be cut across a capture gap on a database flow: the gap is
/// recorded and the tidemark stays before it; the write whose response fell into
/// it is in doubt.
#[test]
fn a_gap_on_a_database_flow_is_recorded_and_caps_the_tidemark() {
    let mut s = Scenario::new();
    let f = s.flow(CLIENT, NODE1, 0);
    s.send(f, 10, &query(1, "UPDATE ks.t SET v = 'a' WHERE k = 1"));
    s.answer(f, 11, &void(1));
    s.send(f, 20, &query(2, "UPDATE ks.t SET v = 'b' WHERE k = 2"));
    s.lose_answer(f, 21, void(2).len() as u32);
    s.send(f, 30, &query(3, "UPDATE ks.t SET v = 'c' WHERE k = 3"));
    s.answer(f, 31, &void(3));
    s.close(f, 40);
    let out = tap(&s, cfg(60_000, InDoubtPolicy::Keep));
    let store = tidemark::store::Store::open(
        out.dir.path().join("store"),
        &tidemark::store::StoreOptions::for_tests().read_only(),
    )
    .unwrap();
    let gaps = store.gaps().unwrap();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0].bytes, void(2).len() as u64);
    assert!(
        out.tidemark.unwrap() <= gaps[0].from,
        "tidemark past the gap"
    );
    assert_eq!(
        out.summary(),
        vec![
            row("ks.t", r#"{"k":1}"#, "committed", ""),
            row("ks.t", r#"{"k":3}"#, "committed", ""),
        ]
    );
    // The write whose response fell into the gap is not lost: it waits, in doubt.
    let u: Vec<_> = out
        .undecided
        .iter()
        .map(|u| (u.mutation.key.as_str(), u.mutation.outcome.reason()))
        .collect();
    assert_eq!(u, vec![(r#"{"k":2}"#, Some("no_response"))]);
}
