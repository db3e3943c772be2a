//! The commit tracker's MongoDB rules (ARCHITECTURE.md, "Outcome rules"), one
//! scenario each: client and replication traffic made with tidemark-mongo's encoder,
//! on TCP flows in a pcap, through `tidemark tap`'s pipeline into a store; the log
//! and the undecided writes are asserted exactly.
//!
//! The replication traffic is what mongod members exchange: a secondary's tailable
//! `find`/`getMore` on `local.oplog.rs` (replies carry the entries and
//! `$replData.lastOpCommitted`), `replSetUpdatePosition`, and hello replies.

mod commit_support;
mod common;

use commit_support::{at, tap, Scenario};
use tidemark::commit::TrackerConfig;
use tidemark::decode::mongo::tidemark_mongo::bson::{self, rawdoc, RawDocumentBuf};
use tidemark::decode::mongo::tidemark_mongo::{
    encode_message, Body, Doc, DocSeq, DocSequence, Message, MsgFlags, OpMsg,
};

const PRIMARY: &str = "10.2.0.1:27017";
const APP: &str = "10.9.0.1:50001";
const APP2: &str = "10.9.0.1:50002";
const SECONDARY: &str = "10.2.0.2:41000";

fn msg(id: i32, to: i32, body: RawDocumentBuf, seqs: Vec<(&str, Vec<RawDocumentBuf>)>) -> Vec<u8> {
    msg_flags(id, to, body, seqs, 0)
}

fn msg_flags(
    id: i32,
    to: i32,
    body: RawDocumentBuf,
    seqs: Vec<(&str, Vec<RawDocumentBuf>)>,
    flags: u32,
) -> Vec<u8> {
    let mut m = OpMsg::new(Doc::from(body));
    m.flags = MsgFlags(flags);
    m.sequences = seqs
        .into_iter()
        .map(|(id, docs)| DocSequence {
            identifier: id.to_owned(),
            documents: DocSeq::from_docs(docs.iter().map(|d| d.as_ref())),
        })
        .collect();
    encode_message(&Message::new(id, to, Body::Msg(m))).unwrap()
}

fn ts(secs: u32, inc: u32) -> bson::Timestamp {
    bson::Timestamp {
        time: secs,
        increment: inc,
    }
}

/// The store's optime integer of a BSON timestamp.
fn ot(secs: u32, inc: u32) -> u64 {
    (u64::from(secs) << 32) | u64::from(inc)
}

fn lsid() -> bson::Binary {
    bson::Binary {
        subtype: bson::spec::BinarySubtype::Uuid,
        bytes: vec![9; 16],
    }
}

fn insert(id: i32, doc_id: i32, extra: RawDocumentBuf) -> Vec<u8> {
    let mut body = rawdoc! {"insert": "c", "$db": "d"};
    for el in extra.iter() {
        let (k, v) = el.unwrap();
        body.append(k, v);
    }
    msg(
        id,
        0,
        body,
        vec![("documents", vec![rawdoc! {"_id": doc_id, "v": "x"}])],
    )
}

fn ok(id: i32, to: i32, op_time: bson::Timestamp) -> Vec<u8> {
    msg(
        id,
        to,
        rawdoc! {"n": 1, "ok": 1.0, "operationTime": op_time},
        vec![],
    )
}

fn entry(t: bson::Timestamp, term: i64, doc_id: i32) -> RawDocumentBuf {
    rawdoc! {"ts": t, "t": term, "op": "i", "ns": "d.c", "o": {"_id": doc_id, "v": "x"}, "v": 2i64}
}

fn repl_data(commit: bson::Timestamp, term: i64) -> RawDocumentBuf {
    rawdoc! {"term": term, "lastOpCommitted": {"ts": commit, "t": term}, "lastOpVisible": {"ts": commit, "t": term}, "configVersion": 1, "replicaSetId": bson::oid::ObjectId::from_bytes([1; 12]), "primaryIndex": 0, "syncSourceIndex": -1}
}

/// A secondary's tailable find on the oplog and its reply.
fn oplog_find(id: i32) -> Vec<u8> {
    msg(
        id,
        0,
        rawdoc! {"find": "oplog.rs", "filter": {"ts": {"$gte": ts(1, 0)}}, "tailable": true, "awaitData": true, "$db": "local"},
        vec![],
    )
}

fn oplog_batch(
    id: i32,
    to: i32,
    first: bool,
    entries: Vec<RawDocumentBuf>,
    commit: bson::Timestamp,
    term: i64,
) -> Vec<u8> {
    let mut arr = bson::RawArrayBuf::new();
    for e in entries {
        arr.push(e);
    }
    let cursor = if first {
        rawdoc! {"firstBatch": arr, "id": 77i64, "ns": "local.oplog.rs"}
    } else {
        rawdoc! {"nextBatch": arr, "id": 77i64, "ns": "local.oplog.rs"}
    };
    msg(
        id,
        to,
        rawdoc! {"cursor": cursor, "$replData": repl_data(commit, term), "ok": 1.0},
        vec![],
    )
}

fn oplog_get_more(id: i32) -> Vec<u8> {
    msg(
        id,
        0,
        rawdoc! {"getMore": 77i64, "collection": "oplog.rs", "term": 1i64, "$db": "local"},
        vec![],
    )
}

fn cfg() -> TrackerConfig {
    TrackerConfig {
        resolve_after_ns: 60_000_000_000,
        ..TrackerConfig::default()
    }
}

/// Rules: `w:"majority"` acknowledged → committed at once; `w:1` → pending until
/// the majority commit point (`$replData.lastOpCommitted` in a secondary's oplog
/// getMore) reaches its optime (`operationTime`); the oplog entry the secondary
/// fetched is the authoritative form of the mutation.
#[test]
fn w1_waits_for_the_commit_point_and_takes_the_oplog_entry() {
    let mut s = Scenario::new();
    let app = s.flow(APP, PRIMARY, 0);
    let rep = s.flow(SECONDARY, PRIMARY, 0);
    s.send(
        app,
        10,
        &insert(1, 1, rawdoc! {"writeConcern": {"w": "majority"}}),
    );
    s.answer(app, 11, &ok(100, 1, ts(1000, 1)));
    s.send(app, 20, &insert(2, 2, rawdoc! {"writeConcern": {"w": 1}}));
    s.answer(app, 21, &ok(101, 2, ts(1000, 2)));
    s.send(rep, 30, &oplog_find(5));
    s.answer(
        rep,
        31,
        &oplog_batch(
            200,
            5,
            true,
            vec![entry(ts(1000, 1), 1, 1), entry(ts(1000, 2), 1, 2)],
            ts(1000, 1),
            1,
        ),
    );
    s.send(rep, 40, &oplog_get_more(6));
    s.answer(rep, 41, &oplog_batch(201, 6, false, vec![], ts(1000, 2), 1));
    s.close(app, 5000);
    s.close(rep, 5000);
    let out = tap(&s, cfg());
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
    assert_eq!(
        got,
        vec![
            (r#"{"_id":1}"#.into(), "committed", String::new()),
            (
                r#"{"_id":2}"#.into(),
                "committed",
                format!(
                    "awaiting_majority: acknowledged w:1; majority commit point 1:{} (lastOpCommitted) covers the write",
                    ot(1000, 2)
                )
            ),
        ]
    );
    assert_eq!(
        out.log[1].mutation.commit_time,
        at(41),
        "decided when the commit point passed it"
    );
    let tidemark::store::Payload::Mongo(op) = &out.log[1].mutation.payload else {
        panic!("not a mongo payload")
    };
    assert_eq!(
        op.optime,
        Some(tidemark::store::OpTime {
            ts: ot(1000, 2),
            t: 1
        })
    );
    // The w:1 write took its entry; the majority one was logged before its entry was
    // fetched, and the entry is recognised as it.
    assert_eq!(out.report.tracker.matched_oplog, 1);
    assert_eq!(
        out.report.tracker.from_oplog, 0,
        "entries matched, not logged twice"
    );
    assert!(out.undecided.is_empty());
}

/// Rule: a `w:1` write whose entry never reached the majority, followed by a new
/// term whose commit point passes its time without the entry in the replicated
/// history, was rolled back.
#[test]
fn a_new_term_without_the_entry_rolls_the_write_back() {
    let mut s = Scenario::new();
    let app = s.flow(APP, PRIMARY, 0);
    let rep = s.flow(SECONDARY, PRIMARY, 0);
    s.send(rep, 5, &oplog_find(5));
    s.answer(
        rep,
        6,
        &oplog_batch(200, 5, true, vec![entry(ts(1000, 1), 1, 1)], ts(1000, 1), 1),
    );
    s.send(app, 10, &insert(1, 2, rawdoc! {"writeConcern": {"w": 1}}));
    s.answer(app, 11, &ok(100, 1, ts(1000, 2)));
    // The new primary (term 2) writes its own entry; the commit point moves past.
    s.send(rep, 40, &oplog_get_more(6));
    s.answer(
        rep,
        41,
        &oplog_batch(
            201,
            6,
            false,
            vec![entry(ts(1005, 1), 2, 3)],
            ts(1005, 1),
            2,
        ),
    );
    s.close(app, 5000);
    s.close(rep, 5000);
    let out = tap(&s, cfg());
    let got: Vec<(String, &str)> = out
        .log
        .iter()
        .map(|e| (e.mutation.key.clone(), e.mutation.outcome.kind().as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (r#"{"_id":2}"#.into(), "rolled_back"),
            // Entries no client write matched are logged on their own once committed.
            (r#"{"_id":1}"#.into(), "committed"),
            (r#"{"_id":3}"#.into(), "committed"),
        ]
    );
    assert!(out.log[0]
        .mutation
        .evidence
        .note
        .starts_with("rolled_back: term 2"));
    assert_eq!(out.report.tracker.from_oplog, 2);
}

/// Rules: a retryable write (same lsid, txnNumber, stmtId) sent again after its
/// connection died is one write: the retry's acknowledgement resolves the in-doubt
/// first copy. With no replication traffic at all, `w:1` writes count as committed
/// by the policy (and say so); with the policy off they stay in doubt.
#[test]
fn retryable_writes_are_one_write_and_the_unreplicated_policy_decides() {
    let retryable =
        || rawdoc! {"lsid": {"id": lsid()}, "txnNumber": 5i64, "writeConcern": {"w": 1}};
    let mut s = Scenario::new();
    let a = s.flow(APP, PRIMARY, 0);
    let b = s.flow(APP2, PRIMARY, 0);
    s.send(a, 10, &insert(1, 1, retryable()));
    s.close(a, 20);
    s.send(b, 30, &insert(2, 1, retryable()));
    s.answer(b, 31, &ok(100, 2, ts(1000, 1)));
    // w:0: the driver sets moreToCome and expects no reply.
    s.send(
        b,
        40,
        &msg_flags(
            3,
            0,
            rawdoc! {"insert": "c", "$db": "d", "writeConcern": {"w": 0}},
            vec![("documents", vec![rawdoc! {"_id": 9, "v": "x"}])],
            MsgFlags::MORE_TO_COME,
        ),
    );
    s.close(b, 100);
    let out = tap(&s, cfg());
    let got: Vec<(String, &str)> = out
        .log
        .iter()
        .map(|e| (e.mutation.key.clone(), e.mutation.outcome.kind().as_str()))
        .collect();
    assert_eq!(got, vec![(r#"{"_id":1}"#.into(), "committed")]);
    assert!(
        out.log[0]
            .mutation
            .evidence
            .note
            .contains("in_doubt(no_response) resolved by a later copy on flow 1"),
        "{}",
        out.log[0].mutation.evidence.note
    );
    // w:0 is in doubt (unacknowledged), waiting for its deadline.
    let u: Vec<_> = out
        .undecided
        .iter()
        .map(|u| (u.mutation.key.as_str(), u.mutation.outcome.reason()))
        .collect();
    assert_eq!(u, vec![(r#"{"_id":9}"#, Some("unacknowledged"))]);

    // The same w:1 write alone, no retry: committed by policy at the end of input...
    let mut s = Scenario::new();
    let a = s.flow(APP, PRIMARY, 0);
    s.send(a, 10, &insert(1, 4, rawdoc! {"writeConcern": {"w": 1}}));
    s.answer(a, 11, &ok(100, 1, ts(1000, 1)));
    s.close(a, 20);
    let out = tap(&s, cfg());
    assert_eq!(out.log.len(), 1);
    assert_eq!(
        out.log[0].mutation.outcome,
        tidemark::store::Outcome::Committed
    );
    assert!(out.log[0]
        .mutation
        .evidence
        .note
        .starts_with("unreplicated_policy"));
    // ...or left in doubt when the policy says so.
    let out = tap(
        &s,
        TrackerConfig {
            mongo_unreplicated_committed: false,
            ..cfg()
        },
    );
    assert_eq!(out.log[0].mutation.outcome.reason(), Some("unreplicated"));
}

/// Rule: a majority of `replSetUpdatePosition` durable optimes is a commit point.
#[test]
fn a_majority_of_durable_positions_commits() {
    let pos = |m: i32, t: bson::Timestamp| rawdoc! {"memberId": m, "durableOpTime": {"ts": t, "t": 1i64}, "appliedOpTime": {"ts": t, "t": 1i64}, "cfgver": 1};
    let mut s = Scenario::new();
    let app = s.flow(APP, PRIMARY, 0);
    let rep = s.flow(SECONDARY, PRIMARY, 0);
    s.send(app, 10, &insert(1, 1, rawdoc! {"writeConcern": {"w": 1}}));
    s.answer(app, 11, &ok(100, 1, ts(1000, 5)));
    s.send(
        rep,
        20,
        &msg(7, 0, rawdoc! {"replSetUpdatePosition": 1, "optimes": [pos(0, ts(1000, 9)), pos(1, ts(1000, 5)), pos(2, ts(999, 1))], "$db": "admin"}, vec![]),
    );
    s.answer(rep, 21, &msg(300, 7, rawdoc! {"ok": 1.0}, vec![]));
    s.close(app, 100);
    s.close(rep, 100);
    let out = tap(
        &s,
        TrackerConfig {
            mongo_members: Some(3),
            ..cfg()
        },
    );
    assert_eq!(out.log.len(), 1);
    assert_eq!(
        out.log[0].mutation.outcome,
        tidemark::store::Outcome::Committed
    );
    assert!(
        out.log[0]
            .mutation
            .evidence
            .note
            .ends_with("(replSetUpdatePosition) covers the write"),
        "{}",
        out.log[0].mutation.evidence.note
    );
}
