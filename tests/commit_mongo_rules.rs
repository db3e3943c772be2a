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
/// A member elected in a later term, and the third member fetching from it.
const NEW_PRIMARY: &str = "10.2.0.2:27017";
const SECONDARY2: &str = "10.2.0.3:41000";

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

/// Rule: a `w:1` write whose entry never reached the majority is rolled back when
/// the new term's history is seen skipping it: a fetcher on the new primary gets, in
/// one batch (a stretch of that member's oplog), the entry before the write's time
/// followed straight by the new term's entry, which the commit point covers.
#[test]
fn a_new_term_history_that_skips_the_entry_rolls_the_write_back() {
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
    // The secondary, elected in term 2, is fetched from by the third member from its
    // last entry on: 1000:1, then the new primary's own entry.
    let rep2 = s.flow(SECONDARY2, NEW_PRIMARY, 30);
    s.send(rep2, 40, &oplog_find(7));
    s.answer(
        rep2,
        41,
        &oplog_batch(
            201,
            7,
            true,
            vec![entry(ts(1000, 1), 1, 1), entry(ts(1005, 1), 2, 3)],
            ts(1005, 1),
            2,
        ),
    );
    s.close(app, 5000);
    s.close(rep, 5000);
    s.close(rep2, 5000);
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

/// The false rollback the randomized histories found (tests/regressions/
/// mongo-false-rollback.json): a `w:1` write whose entry a secondary fetched, but
/// whose fetcher was cut off by the partition before it asked again (so the entry
/// was never confirmed received), survives the election — the new term's primary
/// serves it followed by its own entry in one batch, with a commit point covering
/// that entry. It is committed, not rolled back.
#[test]
fn an_entry_the_new_terms_history_holds_is_committed_though_its_first_fetch_was_cut() {
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
    s.send(rep, 12, &oplog_get_more(6));
    s.answer(
        rep,
        13,
        &oplog_batch(
            201,
            6,
            false,
            vec![entry(ts(1000, 2), 1, 2)],
            ts(1000, 1),
            1,
        ),
    );
    // The partition: the secondary's fetcher never asks again on `rep`.
    let rep2 = s.flow(SECONDARY2, NEW_PRIMARY, 30);
    s.send(rep2, 40, &oplog_find(7));
    s.answer(
        rep2,
        41,
        &oplog_batch(
            202,
            7,
            true,
            vec![entry(ts(1000, 2), 1, 2), entry(ts(1005, 1), 2, 3)],
            ts(1005, 1),
            2,
        ),
    );
    s.close(app, 5000);
    s.close(rep, 5000);
    s.close(rep2, 5000);
    let out = tap(&s, cfg());
    let got: Vec<(String, &str)> = out
        .log
        .iter()
        .map(|e| (e.mutation.key.clone(), e.mutation.outcome.kind().as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (r#"{"_id":2}"#.into(), "committed"),
            (r#"{"_id":1}"#.into(), "committed"),
            (r#"{"_id":3}"#.into(), "committed"),
        ]
    );
    let note = &out.log[0].mutation.evidence.note;
    assert!(note.contains(&format!("2:{}", ot(1005, 1))), "{note}");
    assert!(out.undecided.is_empty());
}

/// A newer term's commit point passing an older term's `w:1` write says nothing by
/// itself when the new history was not seen around the write (its entry fetched on a
/// flow the fault cut, the new primary's oplog never fetched from before it): the
/// write is neither committed nor rolled back, it stays undecided.
#[test]
fn a_new_term_without_evidence_either_way_leaves_the_write_undecided() {
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
    s.send(rep, 12, &oplog_get_more(6));
    s.answer(
        rep,
        13,
        &oplog_batch(
            201,
            6,
            false,
            vec![entry(ts(1000, 2), 1, 2)],
            ts(1000, 1),
            1,
        ),
    );
    // Term 2's fetcher joins the new primary at its own newest entry only.
    let rep2 = s.flow(SECONDARY2, NEW_PRIMARY, 30);
    s.send(rep2, 40, &oplog_find(7));
    s.answer(
        rep2,
        41,
        &oplog_batch(202, 7, true, vec![entry(ts(1005, 1), 2, 3)], ts(1005, 1), 2),
    );
    s.close(app, 5000);
    s.close(rep, 5000);
    s.close(rep2, 5000);
    let out = tap(&s, cfg());
    let got: Vec<(String, &str)> = out
        .log
        .iter()
        .map(|e| (e.mutation.key.clone(), e.mutation.outcome.kind().as_str()))
        .collect();
    assert!(
        !got.iter().any(|(_, o)| *o == "rolled_back"),
        "no evidence the write is gone: {got:?}"
    );
    assert!(
        !got.contains(&(r#"{"_id":2}"#.into(), "committed")),
        "no evidence the write survived: {got:?}"
    );
    assert_eq!(out.undecided.len(), 1, "{:?}", out.undecided);
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

/// Rule: a retried write's later reply is the write's answer. A retryable
/// replacement whose first copy lost its connection and whose retry matched nothing
/// (`n: 0, nModified: 0`) is logged as the no-op it was, not as the client's
/// replacement document (found by tests/histories.rs, mongo seed 2: versions held a
/// document no member ever had).
#[test]
fn a_retry_that_changed_nothing_makes_the_first_copy_a_no_op() {
    let update = |id: i32| {
        msg(
            id,
            0,
            rawdoc! {"update": "c", "$db": "d", "lsid": {"id": lsid()}, "txnNumber": 7i64, "writeConcern": {"w": "majority"}},
            vec![(
                "updates",
                vec![rawdoc! {"q": {"_id": 3}, "u": {"v": 1, "r": true}}],
            )],
        )
    };
    let mut s = Scenario::new();
    let a = s.flow(APP, PRIMARY, 0);
    let b = s.flow(APP2, PRIMARY, 0);
    s.send(a, 10, &update(1));
    s.close(a, 20);
    s.send(b, 30, &update(2));
    s.answer(
        b,
        31,
        &msg(
            100,
            2,
            rawdoc! {"n": 0, "nModified": 0, "ok": 1.0, "operationTime": ts(1000, 1)},
            vec![],
        ),
    );
    s.close(b, 100);
    let out = tap(&s, cfg());
    assert_eq!(out.log.len(), 1, "one write");
    let m = &out.log[0].mutation;
    assert_eq!(m.outcome, tidemark::store::Outcome::Committed);
    assert!(
        m.evidence
            .note
            .contains("in_doubt(no_response) resolved by a later copy on flow 1"),
        "{}",
        m.evidence.note
    );
    let tidemark::store::Payload::Mongo(op) = &m.payload else {
        panic!("a MongoDB payload");
    };
    assert_eq!(op.op, tidemark::store::MongoOpKind::Noop, "{op:?}");
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

// --- Deployment rules (src/commit/mongo_rules.rs; ARCHITECTURE.md: "What a majority
// is comes from the set's voting members in `hello` …; a standalone never rolls
// back"). The hello replies carry the fields the MongoDB manual's `hello` page
// names (`setName`, `hosts`, `passives`, `arbiters`, `arbiterOnly`, `msg:
// "isdbgrid"`, `maxWireVersion`); the default write concern replies those of
// `getDefaultRWConcern` / `setDefaultRWConcern` (`defaultWriteConcern`,
// `defaultWriteConcernSource`).

/// A hello exchange on `f` at `ms` answered with `reply`.
fn hello(s: &mut Scenario, f: commit_support::FlowRef, ms: u64, id: i32, reply: RawDocumentBuf) {
    s.send(
        f,
        ms,
        &msg(id, 0, rawdoc! {"hello": 1, "$db": "admin"}, vec![]),
    );
    s.answer(f, ms + 1, &msg(id + 1000, id, reply, vec![]));
}

/// `(key, optime)` of the logged mutations `keep` selects, in optime order (0 for
/// one without an optime).
fn keys_by_optime(
    out: &commit_support::Outcome,
    keep: impl Fn(&tidemark::store::Mutation) -> bool,
) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = out
        .log
        .iter()
        .filter(|e| keep(&e.mutation))
        .map(|e| {
            let tidemark::store::Payload::Mongo(op) = &e.mutation.payload else {
                panic!("not a mongo payload")
            };
            (e.mutation.key.clone(), op.optime.map_or(0, |o| o.ts))
        })
        .collect();
    v.sort_by_key(|e| e.1);
    v
}

/// `(key, reason)` of every logged mutation, for failure messages.
fn notes(out: &commit_support::Outcome) -> Vec<(&String, &String)> {
    out.log
        .iter()
        .map(|e| (&e.mutation.key, &e.mutation.evidence.note))
        .collect()
}

/// `(key, outcome, reason)` of each logged mutation, and `(key, outcome)` of each
/// undecided write.
type Logged = (Vec<(String, String, String)>, Vec<(String, String)>);

fn logged(out: &commit_support::Outcome) -> Logged {
    (
        out.log
            .iter()
            .map(|e| {
                (
                    e.mutation.key.clone(),
                    e.mutation.outcome.kind().as_str().to_string(),
                    e.mutation.evidence.note.clone(),
                )
            })
            .collect(),
        out.undecided
            .iter()
            .map(|u| {
                (
                    u.mutation.key.clone(),
                    u.mutation.outcome.kind().as_str().to_string(),
                )
            })
            .collect(),
    )
}

/// Rule `standalone`: a server whose hello has no `setName` has no replica to roll
/// back to, so an acknowledged `w:1` write is committed at its reply (not by the
/// unreplicated policy at the end); a router's hello (`msg: "isdbgrid"`) proves no
/// such thing, and the same write is left to that policy.
#[test]
fn standalone_commits_an_acknowledged_write_at_its_reply() {
    let run = |reply: RawDocumentBuf| {
        let mut s = Scenario::new();
        let app = s.flow(APP, PRIMARY, 0);
        hello(&mut s, app, 1, 1, reply);
        s.send(app, 10, &insert(2, 1, rawdoc! {"writeConcern": {"w": 1}}));
        s.answer(app, 11, &ok(100, 2, ts(1000, 1)));
        s.close(app, 5000);
        tap(&s, cfg())
    };
    let out = run(rawdoc! {"isWritablePrimary": true, "maxWireVersion": 21, "ok": 1.0});
    let (log, undecided) = logged(&out);
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].1, "committed");
    assert!(
        log[0].2.starts_with("standalone: ")
            && log[0].2.ends_with("; awaiting_majority: acknowledged w:1"),
        "{}",
        log[0].2
    );
    assert_eq!(
        out.log[0].mutation.commit_time,
        at(11),
        "decided at the reply"
    );
    assert!(undecided.is_empty());

    let out = run(
        rawdoc! {"isWritablePrimary": true, "msg": "isdbgrid", "maxWireVersion": 21, "ok": 1.0},
    );
    let (log, _) = logged(&out);
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].2.starts_with("unreplicated_policy"), "{}", log[0].2);
}

/// Rule `one_member_set`: a set whose hello names one voting member (`hosts` of one,
/// no `passives`, no `arbiters`) commits an acknowledged `w:1` write at its reply,
/// and a write acknowledged before that hello was seen when the hello comes. A
/// passive counts as a voter (hello shows no `votes`), so `hosts` of one plus one
/// passive is two members: the write waits for a commit point.
#[test]
fn one_member_set_commits_an_acknowledged_write_at_its_reply() {
    let one = || rawdoc! {"isWritablePrimary": true, "setName": "rs0", "hosts": [PRIMARY], "primary": PRIMARY, "maxWireVersion": 21, "ok": 1.0};
    let mut s = Scenario::new();
    let app = s.flow(APP, PRIMARY, 0);
    hello(&mut s, app, 1, 1, one());
    s.send(app, 10, &insert(2, 1, rawdoc! {"writeConcern": {"w": 1}}));
    s.answer(app, 11, &ok(100, 2, ts(1000, 1)));
    s.close(app, 5000);
    let out = tap(&s, cfg());
    let (log, undecided) = logged(&out);
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].1, "committed");
    assert!(log[0].2.starts_with("one_member_set: "), "{}", log[0].2);
    assert_eq!(out.log[0].mutation.commit_time, at(11));
    assert!(undecided.is_empty());

    // The hello after the write (another connection, as a driver's monitor).
    let mut s = Scenario::new();
    let app = s.flow(APP, PRIMARY, 0);
    let monitor = s.flow(APP2, PRIMARY, 0);
    s.send(app, 10, &insert(2, 1, rawdoc! {"writeConcern": {"w": 1}}));
    s.answer(app, 11, &ok(100, 2, ts(1000, 1)));
    hello(&mut s, monitor, 30, 1, one());
    s.close(app, 5000);
    s.close(monitor, 5000);
    let out = tap(&s, cfg());
    let (log, _) = logged(&out);
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].2.starts_with("one_member_set: "), "{}", log[0].2);
    assert_eq!(
        out.log[0].mutation.commit_time,
        at(31),
        "decided when hello said so"
    );

    // One host and one passive: two voters.
    let mut s = Scenario::new();
    let app = s.flow(APP, PRIMARY, 0);
    hello(
        &mut s,
        app,
        1,
        1,
        rawdoc! {"isWritablePrimary": true, "setName": "rs0", "hosts": [PRIMARY], "passives": ["10.2.0.3:27017"], "maxWireVersion": 21, "ok": 1.0},
    );
    s.send(app, 10, &insert(2, 1, rawdoc! {"writeConcern": {"w": 1}}));
    s.answer(app, 11, &ok(100, 2, ts(1000, 1)));
    s.close(app, 5000);
    let (log, undecided) = logged(&tap(&s, cfg()));
    assert!(log.is_empty(), "{log:?}");
    assert_eq!(undecided, vec![(r#"{"_id":1}"#.into(), "pending".into())]);
}

/// Rule `implicit_default_majority`: from MongoDB 5.0 (`maxWireVersion` ≥ 13) a set
/// without arbiters defaults to `w:"majority"`, so a write sent without `w` is
/// committed at its reply, while one sent with `w:1` waits. With the manual's PSA
/// example (2 non-arbiters, 1 arbiter: 2 ≤ majority 2) the default is `w:1`, and
/// before 5.0 (wire 12) it is `w:1` too: the write without `w` waits. Its PSSSA
/// example (4 non-arbiters > majority 3) defaults to majority again.
#[test]
fn implicit_default_majority_commits_writes_without_w_except_psa_and_before_5_0() {
    let run = |reply: RawDocumentBuf| {
        let mut s = Scenario::new();
        let app = s.flow(APP, PRIMARY, 0);
        hello(&mut s, app, 1, 1, reply);
        s.send(app, 10, &insert(2, 1, rawdoc! {}));
        s.answer(app, 11, &ok(100, 2, ts(1000, 1)));
        s.send(app, 20, &insert(3, 2, rawdoc! {"writeConcern": {"w": 1}}));
        s.answer(app, 21, &ok(101, 3, ts(1000, 2)));
        s.close(app, 5000);
        logged(&tap(&s, cfg()))
    };
    let pss = rawdoc! {"isWritablePrimary": true, "setName": "rs0", "hosts": [PRIMARY, "10.2.0.2:27017", "10.2.0.3:27017"], "maxWireVersion": 17, "ok": 1.0};
    let (log, undecided) = run(pss);
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].0, r#"{"_id":1}"#);
    assert!(
        log[0].2.starts_with("implicit_default_majority: ")
            && log[0]
                .2
                .ends_with("; awaiting_majority: acknowledged with the default write concern"),
        "{}",
        log[0].2
    );
    assert_eq!(undecided, vec![(r#"{"_id":2}"#.into(), "pending".into())]);

    let psa = rawdoc! {"isWritablePrimary": true, "setName": "rs0", "hosts": [PRIMARY, "10.2.0.2:27017"], "arbiters": ["10.2.0.3:27017"], "maxWireVersion": 17, "ok": 1.0};
    let old = rawdoc! {"isWritablePrimary": true, "setName": "rs0", "hosts": [PRIMARY, "10.2.0.2:27017", "10.2.0.3:27017"], "maxWireVersion": 12, "ok": 1.0};
    for reply in [psa, old] {
        let (log, undecided) = run(reply);
        assert!(log.is_empty(), "{log:?}");
        assert_eq!(undecided.len(), 2, "{undecided:?}");
    }
    let psssa = rawdoc! {"isWritablePrimary": true, "setName": "rs0", "hosts": [PRIMARY, "10.2.0.2:27017", "10.2.0.3:27017", "10.2.0.4:27017"], "arbiters": ["10.2.0.5:27017"], "maxWireVersion": 17, "ok": 1.0};
    let (log, _) = run(psssa);
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(
        log[0].2.starts_with("implicit_default_majority: "),
        "{}",
        log[0].2
    );
}

/// Rule `cluster_default_majority`: a cluster-wide default write concern seen on
/// the wire overrides the implicit one. A `getDefaultRWConcern` reply with
/// `defaultWriteConcern: {w: "majority"}` makes a PSA set's write without `w`
/// committed at its reply; a `setDefaultRWConcern` reply with `{w: 1}` makes a
/// 5.0+ PSS set's wait.
#[test]
fn cluster_default_write_concern_overrides_the_implicit_default() {
    let run = |set: RawDocumentBuf, cmd: &str, reply: RawDocumentBuf| {
        let mut s = Scenario::new();
        let app = s.flow(APP, PRIMARY, 0);
        let admin = s.flow(APP2, PRIMARY, 0);
        hello(&mut s, app, 1, 1, set);
        let req = if cmd == "setDefaultRWConcern" {
            rawdoc! {"setDefaultRWConcern": 1, "defaultWriteConcern": {"w": 1}, "$db": "admin"}
        } else {
            rawdoc! {"getDefaultRWConcern": 1, "$db": "admin"}
        };
        s.send(admin, 5, &msg(7, 0, req, vec![]));
        s.answer(admin, 6, &msg(300, 7, reply, vec![]));
        s.send(app, 10, &insert(2, 1, rawdoc! {}));
        s.answer(app, 11, &ok(100, 2, ts(1000, 1)));
        s.close(app, 5000);
        s.close(admin, 5000);
        logged(&tap(&s, cfg()))
    };
    let psa = rawdoc! {"isWritablePrimary": true, "setName": "rs0", "hosts": [PRIMARY, "10.2.0.2:27017"], "arbiters": ["10.2.0.3:27017"], "maxWireVersion": 17, "ok": 1.0};
    let (log, undecided) = run(
        psa,
        "getDefaultRWConcern",
        rawdoc! {"defaultReadConcern": {"level": "local"}, "defaultWriteConcern": {"w": "majority", "wtimeout": 0}, "updateOpTime": ts(900, 1), "defaultWriteConcernSource": "global", "defaultReadConcernSource": "implicit", "ok": 1.0},
    );
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(
        log[0].2.starts_with("cluster_default_majority: "),
        "{}",
        log[0].2
    );
    assert!(undecided.is_empty());

    let pss = rawdoc! {"isWritablePrimary": true, "setName": "rs0", "hosts": [PRIMARY, "10.2.0.2:27017", "10.2.0.3:27017"], "maxWireVersion": 17, "ok": 1.0};
    let (log, undecided) = run(
        pss,
        "setDefaultRWConcern",
        rawdoc! {"defaultWriteConcern": {"w": 1, "wtimeout": 0}, "updateOpTime": ts(900, 1), "defaultWriteConcernSource": "global", "ok": 1.0},
    );
    assert!(log.is_empty(), "{log:?}");
    assert_eq!(undecided, vec![(r#"{"_id":1}"#.into(), "pending".into())]);
}

/// A delete the reply says removed nothing (`n: 0`) wrote no oplog entry: no commit
/// point will name it and nothing can roll it back, so it is committed at its reply
/// as a no-op (`unchanged`; payload an oplog `n`, no optime), even in a 3-member set
/// where a `w:1` write otherwise waits.
#[test]
fn a_write_that_changed_nothing_is_committed_as_a_no_op() {
    let mut s = Scenario::new();
    let app = s.flow(APP, PRIMARY, 0);
    hello(
        &mut s,
        app,
        1,
        1,
        rawdoc! {"isWritablePrimary": true, "setName": "rs0", "hosts": [PRIMARY, "10.2.0.2:27017", "10.2.0.3:27017"], "maxWireVersion": 17, "ok": 1.0},
    );
    s.send(
        app,
        10,
        &msg(
            2,
            0,
            rawdoc! {"delete": "c", "$db": "d", "writeConcern": {"w": 1}},
            vec![("deletes", vec![rawdoc! {"q": {"k": "none"}, "limit": 0}])],
        ),
    );
    s.answer(
        app,
        11,
        &msg(
            100,
            2,
            rawdoc! {"n": 0, "ok": 1.0, "operationTime": ts(1000, 7)},
            vec![],
        ),
    );
    s.close(app, 5000);
    let out = tap(&s, cfg());
    let (log, undecided) = logged(&out);
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].0, r#"{"k":"none"}"#);
    assert!(log[0].2.starts_with("unchanged: "), "{}", log[0].2);
    let tidemark::store::Payload::Mongo(op) = &out.log[0].mutation.payload else {
        panic!("not a mongo payload")
    };
    assert_eq!(op.op, tidemark::store::MongoOpKind::Noop);
    assert_eq!(op.optime, None);
    assert!(undecided.is_empty());
}

/// Rule: "When oplog entries are visible (secondaries' `getMore` on
/// `local.oplog.rs`), they are the authoritative form of the mutation". A
/// multi-document update by `{_id: {$in: [1, 2]}}` that the oplog shows as two `u`
/// entries is logged as those two (keyed by their `_id`, with their optimes, in
/// oplog order), not once under the client's filter; an upsert is logged as its
/// `i` entry.
#[test]
fn a_multi_document_update_is_logged_as_its_oplog_entries() {
    let u = |t: bson::Timestamp, id: i32| rawdoc! {"ts": t, "t": 1i64, "op": "u", "ns": "d.c", "o": {"$v": 2, "diff": {"u": {"v": "y"}}}, "o2": {"_id": id}, "v": 2i64};
    let i = |t: bson::Timestamp, id: i32| rawdoc! {"ts": t, "t": 1i64, "op": "i", "ns": "d.c", "o": {"_id": id, "v": "z"}, "v": 2i64};
    let update = |id: i32, q: RawDocumentBuf, u: RawDocumentBuf, multi: bool, upsert: bool| {
        msg(
            id,
            0,
            rawdoc! {"update": "c", "$db": "d", "writeConcern": {"w": 1}},
            vec![(
                "updates",
                vec![rawdoc! {"q": q, "u": u, "multi": multi, "upsert": upsert}],
            )],
        )
    };
    let mut s = Scenario::new();
    let app = s.flow(APP, PRIMARY, 0);
    let rep = s.flow(SECONDARY, PRIMARY, 0);
    s.send(rep, 1, &oplog_find(5));
    s.answer(rep, 2, &oplog_batch(200, 5, true, vec![], ts(1000, 1), 1));
    s.send(
        app,
        10,
        &update(
            1,
            rawdoc! {"_id": {"$in": [1, 2]}},
            rawdoc! {"$set": {"v": "y"}},
            true,
            false,
        ),
    );
    s.answer(
        app,
        11,
        &msg(
            100,
            1,
            rawdoc! {"n": 2, "nModified": 2, "ok": 1.0, "operationTime": ts(1000, 3)},
            vec![],
        ),
    );
    s.send(
        app,
        20,
        &update(
            2,
            rawdoc! {"_id": 400},
            rawdoc! {"$set": {"v": "z"}},
            false,
            true,
        ),
    );
    s.answer(
        app,
        21,
        &msg(101, 2, rawdoc! {"n": 1, "nModified": 0, "upserted": [{"index": 0, "_id": 400}], "ok": 1.0, "operationTime": ts(1000, 4)}, vec![]),
    );
    s.send(rep, 30, &oplog_get_more(6));
    s.answer(
        rep,
        31,
        &oplog_batch(
            201,
            6,
            false,
            vec![u(ts(1000, 2), 1), u(ts(1000, 3), 2), i(ts(1000, 4), 400)],
            ts(1000, 1),
            1,
        ),
    );
    s.send(rep, 40, &oplog_get_more(7));
    s.answer(rep, 41, &oplog_batch(202, 7, false, vec![], ts(1000, 4), 1));
    s.close(app, 5000);
    s.close(rep, 5000);
    let out = tap(&s, cfg());
    let got: Vec<(String, &str, &str, Option<u64>)> = out
        .log
        .iter()
        .map(|e| {
            let tidemark::store::Payload::Mongo(op) = &e.mutation.payload else {
                panic!("not a mongo payload")
            };
            (
                e.mutation.key.clone(),
                e.mutation.outcome.kind().as_str(),
                op.op.as_str(),
                op.optime.map(|o| o.ts),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (r#"{"_id":1}"#.into(), "committed", "u", Some(ot(1000, 2))),
            (r#"{"_id":2}"#.into(), "committed", "u", Some(ot(1000, 3))),
            (r#"{"_id":400}"#.into(), "committed", "i", Some(ot(1000, 4))),
        ]
    );
    assert_eq!(
        out.report.tracker.from_oplog, 0,
        "taken by the writes, not orphans"
    );
    assert!(out.undecided.is_empty());
}

/// Found by the MongoDB soak (seed 1883824943267864): an `updateMany` by filter and,
/// on another connection, a retryable `replaceOne` of one of its documents, both
/// acknowledged with the same `operationTime` (the replacement's entry, the newest
/// on the primary). The multi-document update's entries are the unmatched update
/// entries up to its optime — but not one that names another session: that is the
/// replacement's own entry. Before, the update took it, the replacement was logged
/// without its entry, and versions lost it.
#[test]
fn a_multi_document_update_does_not_take_a_concurrent_sessions_entry() {
    let other = bson::Binary {
        subtype: bson::spec::BinarySubtype::Uuid,
        bytes: vec![7; 16],
    };
    let inc = |t: bson::Timestamp, id: i32| rawdoc! {"ts": t, "t": 1i64, "op": "u", "ns": "d.c", "o": {"$v": 2, "diff": {"u": {"n": 10}}}, "o2": {"_id": id}, "v": 2i64};
    let mut s = Scenario::new();
    let app = s.flow(APP, PRIMARY, 0);
    let app2 = s.flow(APP2, PRIMARY, 0);
    let rep = s.flow(SECONDARY, PRIMARY, 0);
    s.send(rep, 1, &oplog_find(5));
    s.answer(rep, 2, &oplog_batch(200, 5, true, vec![], ts(1000, 1), 1));
    s.send(
        app,
        10,
        &msg(
            1,
            0,
            rawdoc! {"update": "c", "$db": "d", "writeConcern": {"w": 1}},
            vec![(
                "updates",
                vec![rawdoc! {"q": {"_id": {"$in": [5, 4]}}, "u": {"$inc": {"n": 10}}, "multi": true}],
            )],
        ),
    );
    s.send(
        app2,
        11,
        &msg(
            2,
            0,
            rawdoc! {"update": "c", "$db": "d", "writeConcern": {"w": 1}, "lsid": {"id": other.clone()}, "txnNumber": 3i64},
            vec![(
                "updates",
                vec![rawdoc! {"q": {"_id": 4}, "u": {"v": 12, "r": true}}],
            )],
        ),
    );
    let replaced = rawdoc! {"ts": ts(1000, 4), "t": 1i64, "op": "u", "ns": "d.c", "o": {"_id": 4, "v": 12, "r": true}, "o2": {"_id": 4}, "lsid": {"id": other}, "txnNumber": 3i64, "stmtId": 0, "v": 2i64};
    s.send(rep, 12, &oplog_get_more(6));
    s.answer(
        rep,
        13,
        &oplog_batch(
            201,
            6,
            false,
            vec![inc(ts(1000, 2), 5), inc(ts(1000, 3), 4), replaced],
            ts(1000, 1),
            1,
        ),
    );
    // Both replies carry the newest optime on the primary: the replacement's. The
    // update's comes first, and the commit point passes both before the
    // replacement's reply is seen.
    s.answer(
        app,
        20,
        &msg(
            100,
            1,
            rawdoc! {"n": 2, "nModified": 2, "ok": 1.0, "operationTime": ts(1000, 4)},
            vec![],
        ),
    );
    s.send(rep, 30, &oplog_get_more(7));
    s.answer(rep, 31, &oplog_batch(202, 7, false, vec![], ts(1000, 4), 1));
    s.answer(
        app2,
        40,
        &msg(
            101,
            2,
            rawdoc! {"n": 1, "nModified": 1, "ok": 1.0, "operationTime": ts(1000, 4)},
            vec![],
        ),
    );
    s.close(app, 5000);
    s.close(app2, 5000);
    s.close(rep, 5000);
    let out = tap(&s, cfg());
    let got: Vec<(String, &str, Option<u64>)> = out
        .log
        .iter()
        .map(|e| {
            let tidemark::store::Payload::Mongo(op) = &e.mutation.payload else {
                panic!("not a mongo payload")
            };
            (
                e.mutation.key.clone(),
                e.mutation.outcome.kind().as_str(),
                op.optime.map(|o| o.ts),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (r#"{"_id":5}"#.into(), "committed", Some(ot(1000, 2))),
            (r#"{"_id":4}"#.into(), "committed", Some(ot(1000, 3))),
            (r#"{"_id":4}"#.into(), "committed", Some(ot(1000, 4))),
        ],
        "the update's two entries, then the replacement with its own"
    );
    let tidemark::store::Payload::Mongo(op) = &out.log[2].mutation.payload else {
        panic!("not a mongo payload")
    };
    let o = bson::RawDocument::from_bytes(&op.o).unwrap();
    assert_eq!(o.get_i32("v").unwrap(), 12, "the replacement's document");
    assert!(out.undecided.is_empty());
}

/// Rule `router_copy` (sharded clusters): a write command carrying `shardVersion` or
/// `databaseVersion` is a router's copy of a client's write to a shard — clients
/// never send either — and is not logged, even on a connection whose router hello
/// the capture never saw (a tap started after the routers connected; before, such
/// a copy was logged as a second write). The same write without those fields, on
/// the same connection, is a client's and is logged.
#[test]
fn a_write_naming_its_routing_version_is_a_router_copy() {
    let run = |extra: RawDocumentBuf| {
        let mut s = Scenario::new();
        // No hello on this connection or any other: nothing says the client is a router.
        let router = s.flow(APP, PRIMARY, 0);
        s.send(router, 10, &insert(2, 1, extra));
        s.answer(router, 11, &ok(100, 2, ts(1000, 1)));
        s.close(router, 5000);
        tap(&s, cfg())
    };
    let majority = || rawdoc! {"writeConcern": {"w": "majority"}};
    let client = run(majority());
    assert_eq!(client.log.len(), 1, "{:?}", logged(&client));
    assert_eq!(client.report.tracker.router_copies, 0);
    for version in [
        rawdoc! {"shardVersion": {"e": bson::oid::ObjectId::new(), "t": ts(900, 1), "v": ts(3, 2)}},
        rawdoc! {"databaseVersion": {"uuid": bson::Binary {subtype: bson::spec::BinarySubtype::Uuid, bytes: vec![7; 16]}, "timestamp": ts(900, 1), "lastMod": 1}},
    ] {
        let mut extra = majority();
        for el in version.iter() {
            let (k, v) = el.unwrap();
            extra.append(k, v);
        }
        let copy = run(extra);
        assert!(copy.log.is_empty(), "{:?}", logged(&copy));
        assert!(copy.undecided.is_empty());
        assert_eq!(copy.report.tracker.router_copies, 1);
    }
}

/// One step of the `updateMany` / retryable `replaceOne` race below.
#[derive(Debug, Clone, Copy)]
enum RaceStep {
    /// The secondary fetches these entries (indices into the oplog), the commit
    /// point staying before them.
    Fetch(&'static [usize]),
    /// The `updateMany`'s reply (operationTime: the newest entry).
    UpdateReply,
    /// The `replaceOne`'s reply (the same operationTime).
    ReplaceReply,
    /// A fetch reply moves the commit point to the entry at this index.
    Commit(usize),
}

/// Runs the race: an `updateMany` `$inc` by filter `{_id: {$in: [5, 4]}}` on one
/// connection, a retryable `replaceOne` of `_id` 4 on another, both `w:1`, both
/// acknowledged with the newest optime; the replacement's entry is the last of the
/// three (`replace_last`) or the first. Returns the log as (key, optime, the
/// entry's `o`), in optime order.
///
/// `sessions_seen`: an entry carrying retryable-write ids (another collection's) is
/// fetched first, so the server is known to write them; else the replacement's own
/// entry is the first that shows it.
fn update_many_race(
    replace_last: bool,
    sessions_seen: bool,
    steps: &[RaceStep],
) -> Vec<(String, u64, Vec<u8>)> {
    use RaceStep::*;
    let other = bson::Binary {
        subtype: bson::spec::BinarySubtype::Uuid,
        bytes: vec![7; 16],
    };
    let inc = |t: bson::Timestamp, id: i32, diff: RawDocumentBuf| rawdoc! {"ts": t, "t": 1i64, "op": "u", "ns": "d.c", "o": {"$v": 2, "diff": diff}, "o2": {"_id": id}, "v": 2i64};
    let replaced = |t: bson::Timestamp| rawdoc! {"ts": t, "t": 1i64, "op": "u", "ns": "d.c", "o": {"_id": 4, "v": 12, "r": true}, "o2": {"_id": 4}, "lsid": {"id": other.clone()}, "txnNumber": 3i64, "stmtId": 0, "v": 2i64};
    // The documents before: {_id: 5, v: 5, n: 0} and {_id: 4, v: 6, r: true}.
    let oplog: Vec<RawDocumentBuf> = if replace_last {
        vec![
            inc(ts(1000, 2), 5, rawdoc! {"u": {"n": 10}}),
            inc(ts(1000, 3), 4, rawdoc! {"i": {"n": 10}}),
            replaced(ts(1000, 4)),
        ]
    } else {
        vec![
            replaced(ts(1000, 2)),
            inc(ts(1000, 3), 5, rawdoc! {"u": {"n": 10}}),
            inc(ts(1000, 4), 4, rawdoc! {"i": {"n": 10}}),
        ]
    };
    let mut s = Scenario::new();
    let app = s.flow(APP, PRIMARY, 0);
    let app2 = s.flow(APP2, PRIMARY, 0);
    let rep = s.flow(SECONDARY, PRIMARY, 0);
    s.send(rep, 1, &oplog_find(5));
    let earlier = rawdoc! {"ts": ts(1000, 1), "t": 1i64, "op": "i", "ns": "d.other", "o": {"_id": 9}, "lsid": {"id": lsid()}, "txnNumber": 1i64, "stmtId": 0, "v": 2i64};
    let first: Vec<RawDocumentBuf> = if sessions_seen { vec![earlier] } else { vec![] };
    s.answer(rep, 2, &oplog_batch(200, 5, true, first, ts(1000, 1), 1));
    s.send(
        app,
        10,
        &msg(
            1,
            0,
            rawdoc! {"update": "c", "$db": "d", "writeConcern": {"w": 1}, "lsid": {"id": lsid()}},
            vec![(
                "updates",
                vec![rawdoc! {"q": {"_id": {"$in": [5, 4]}}, "u": {"$inc": {"n": 10}}, "multi": true}],
            )],
        ),
    );
    s.send(
        app2,
        11,
        &msg(
            2,
            0,
            rawdoc! {"update": "c", "$db": "d", "writeConcern": {"w": 1}, "lsid": {"id": other.clone()}, "txnNumber": 3i64},
            vec![(
                "updates",
                vec![rawdoc! {"q": {"_id": 4}, "u": {"v": 12, "r": true}}],
            )],
        ),
    );
    let newest = ts(1000, 4);
    let mut t = 20;
    let mut req = 6;
    for step in steps {
        t += 10;
        match *step {
            Fetch(which) => {
                s.send(rep, t, &oplog_get_more(req));
                let batch = which.iter().map(|i| oplog[*i].clone()).collect();
                s.answer(
                    rep,
                    t + 1,
                    &oplog_batch(200 + req, req, false, batch, ts(1000, 1), 1),
                );
                req += 1;
            }
            Commit(i) => {
                s.send(rep, t, &oplog_get_more(req));
                let cp = ts(1000, 2 + i as u32);
                s.answer(
                    rep,
                    t + 1,
                    &oplog_batch(200 + req, req, false, vec![], cp, 1),
                );
                req += 1;
            }
            UpdateReply => s.answer(
                app,
                t,
                &msg(
                    100,
                    1,
                    rawdoc! {"n": 2, "nModified": 2, "ok": 1.0, "operationTime": newest},
                    vec![],
                ),
            ),
            ReplaceReply => s.answer(
                app2,
                t,
                &msg(
                    101,
                    2,
                    rawdoc! {"n": 1, "nModified": 1, "ok": 1.0, "operationTime": newest},
                    vec![],
                ),
            ),
        }
    }
    s.close(app, 5000);
    s.close(app2, 5000);
    s.close(rep, 5000);
    let out = tap(&s, cfg());
    assert!(out.undecided.is_empty(), "{steps:?}: {:?}", out.undecided);
    let mut got: Vec<(String, u64, Vec<u8>)> = out
        .log
        .iter()
        .filter(|e| e.mutation.namespace == "d.c")
        .map(|e| {
            assert_eq!(e.mutation.outcome.kind().as_str(), "committed", "{steps:?}");
            let tidemark::store::Payload::Mongo(op) = &e.mutation.payload else {
                panic!("not a mongo payload")
            };
            (
                e.mutation.key.clone(),
                op.optime.map_or(0, |o| o.ts),
                op.o.to_vec(),
            )
        })
        .collect();
    got.sort_by_key(|g| g.1);
    got
}

/// The oplog of [`update_many_race`] as the log must hold it: each entry once, as
/// what it says, at its own optime (the version applies the entries' contents in
/// optime order, so any other log makes it wrong).
fn update_many_race_entries(replace_last: bool) -> Vec<(String, u64, Vec<u8>)> {
    let inc = |diff: RawDocumentBuf| rawdoc! {"$v": 2, "diff": diff}.into_bytes();
    let replacement = rawdoc! {"_id": 4, "v": 12, "r": true}.into_bytes();
    let (k4, k5) = (r#"{"_id":4}"#.to_string(), r#"{"_id":5}"#.to_string());
    if replace_last {
        vec![
            (k5, ot(1000, 2), inc(rawdoc! {"u": {"n": 10}})),
            (k4.clone(), ot(1000, 3), inc(rawdoc! {"i": {"n": 10}})),
            (k4, ot(1000, 4), replacement),
        ]
    } else {
        vec![
            (k4.clone(), ot(1000, 2), replacement),
            (k5, ot(1000, 3), inc(rawdoc! {"u": {"n": 10}})),
            (k4, ot(1000, 4), inc(rawdoc! {"i": {"n": 10}})),
        ]
    }
}

/// The saved soak case `mongo-update-many-concurrent-replace.json`, made
/// deterministic: a retryable `replaceOne` of `_id` 4 and an `updateMany` `$inc` of
/// `_id` 5 and 4 on another connection, both acknowledged with the same
/// `operationTime` (the newest entry on the primary, whoever wrote it), in every
/// order of replies, fetched entries and commit point, with the replacement's entry
/// after the update's and before them. The log must hold each entry once, as what
/// it says: the replacement is only the entry with its session ids, the update only
/// entries without any. Before, a reply seen before its own entry was fetched took
/// the other write's entry of `_id` 4 by `_id` (by the reply's optime, or as the
/// newest entry of that `_id`), and the replacement's own entry was then dropped as
/// already logged (its session ids): the version held `{v: 6, r: true, n: 10}`.
#[test]
fn a_retryable_replacement_and_a_concurrent_update_many_each_take_their_own_entries() {
    use RaceStep::*;
    let orders: &[&[RaceStep]] = &[
        // The CI divergence: the update's entries fetched, the replacement's reply
        // before its own entry, and the commit point passing the entry it took (the
        // middle one) before its own was fetched.
        &[
            Fetch(&[0, 1]),
            ReplaceReply,
            Commit(1),
            Fetch(&[2]),
            UpdateReply,
            Commit(2),
        ],
        &[
            Fetch(&[0, 1]),
            UpdateReply,
            ReplaceReply,
            Commit(1),
            Fetch(&[2]),
            Commit(2),
        ],
        &[
            Fetch(&[0, 1]),
            ReplaceReply,
            UpdateReply,
            Fetch(&[2]),
            Commit(2),
        ],
        &[
            Fetch(&[0, 1]),
            UpdateReply,
            ReplaceReply,
            Fetch(&[2]),
            Commit(2),
        ],
        // 5e62fe0's: everything fetched, the commit point before the replacement's reply.
        &[Fetch(&[0, 1, 2]), UpdateReply, Commit(2), ReplaceReply],
        &[Fetch(&[0, 1, 2]), ReplaceReply, UpdateReply, Commit(2)],
        &[
            Fetch(&[0, 1, 2]),
            ReplaceReply,
            Commit(1),
            UpdateReply,
            Commit(2),
        ],
        &[ReplaceReply, UpdateReply, Fetch(&[0, 1, 2]), Commit(2)],
        &[
            UpdateReply,
            ReplaceReply,
            Fetch(&[0]),
            Commit(0),
            Fetch(&[1, 2]),
            Commit(2),
        ],
        &[
            Fetch(&[0]),
            ReplaceReply,
            Commit(0),
            Fetch(&[1]),
            UpdateReply,
            Fetch(&[2]),
            Commit(2),
        ],
    ];
    let mut failed = Vec::new();
    for (replace_last, sessions_seen) in
        [(true, false), (false, false), (true, true), (false, true)]
    {
        let want = update_many_race_entries(replace_last);
        for steps in orders {
            let got = update_many_race(replace_last, sessions_seen, steps);
            if got != want {
                failed.push(format!(
                    "replacement {} the update, session ids seen before: {sessions_seen}, {steps:?}: logged {:?}",
                    if replace_last { "after" } else { "before" },
                    got.iter()
                        .map(|g| (&g.0, g.1 & 0xffff_ffff))
                        .collect::<Vec<_>>()
                ));
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// A write logged as its client sent it (its entries not fetched when the commit
/// point passed its reply's optime: a fetcher the capture did not show, a lagging
/// secondary) does not claim the entry at that optime unless it is the same
/// statement: the reply's `operationTime` is the newest optime on the primary, here
/// another client's unacknowledged `$set` of `_id` 7. Before, that entry, fetched
/// later, was taken for the update's own and never logged; now it is logged on its
/// own like the update's two entries.
#[test]
fn a_write_logged_as_sent_does_not_claim_another_writes_entry_at_its_optime() {
    let entry = |t: bson::Timestamp, id: i32, o: RawDocumentBuf| rawdoc! {"ts": t, "t": 1i64, "op": "u", "ns": "d.c", "o": o, "o2": {"_id": id}, "v": 2i64};
    let mut s = Scenario::new();
    let app = s.flow(APP, PRIMARY, 0);
    let rep = s.flow(SECONDARY, PRIMARY, 0);
    s.send(rep, 1, &oplog_find(5));
    // An entry of another collection: the oplog is in sight.
    let first = rawdoc! {"ts": ts(1000, 1), "t": 1i64, "op": "i", "ns": "d.other", "o": {"_id": 9, "v": 1}, "v": 2i64};
    s.answer(
        rep,
        2,
        &oplog_batch(200, 5, true, vec![first], ts(1000, 1), 1),
    );
    s.send(
        app,
        10,
        &msg(
            1,
            0,
            rawdoc! {"update": "c", "$db": "d", "writeConcern": {"w": 1}, "lsid": {"id": lsid()}},
            vec![(
                "updates",
                vec![rawdoc! {"q": {"_id": {"$in": [5, 4]}}, "u": {"$inc": {"n": 10}}, "multi": true}],
            )],
        ),
    );
    s.answer(
        app,
        20,
        &msg(
            100,
            1,
            rawdoc! {"n": 2, "nModified": 2, "ok": 1.0, "operationTime": ts(1000, 4)},
            vec![],
        ),
    );
    s.send(rep, 30, &oplog_get_more(6));
    s.answer(rep, 31, &oplog_batch(201, 6, false, vec![], ts(1000, 4), 1));
    s.send(rep, 40, &oplog_get_more(7));
    s.answer(
        rep,
        41,
        &oplog_batch(
            202,
            7,
            false,
            vec![
                entry(ts(1000, 2), 5, rawdoc! {"$v": 2, "diff": {"u": {"n": 10}}}),
                entry(ts(1000, 3), 4, rawdoc! {"$v": 2, "diff": {"u": {"n": 10}}}),
                entry(ts(1000, 4), 7, rawdoc! {"$v": 2, "diff": {"u": {"v": 99}}}),
            ],
            ts(1000, 4),
            1,
        ),
    );
    s.close(app, 5000);
    s.close(rep, 5000);
    let out = tap(&s, cfg());
    assert!(out.undecided.is_empty());
    let entries = keys_by_optime(&out, |m| m.evidence.note.contains("no client write seen"));
    assert_eq!(
        entries,
        vec![
            (r#"{"_id":9}"#.into(), ot(1000, 1)),
            (r#"{"_id":5}"#.into(), ot(1000, 2)),
            (r#"{"_id":4}"#.into(), ot(1000, 3)),
            (r#"{"_id":7}"#.into(), ot(1000, 4)),
        ],
        "every fetched entry logged, the unacknowledged $set of _id 7 included: {:?}",
        notes(&out)
    );
}

/// An unacknowledged (`w:0`) `$set` of `_id` 4, seen after a concurrent
/// `updateMany`'s entries were fetched, does not take the update's entry of `_id`
/// 4 by `_id`: it stays in doubt (versions do not apply it), so an entry it took
/// would never be applied. Before, it took the `$inc` entry, the update took the
/// `$set`'s entry instead, and the committed log lacked the `$inc` of `_id` 4.
#[test]
fn an_unacknowledged_write_does_not_take_another_writes_entry_by_id() {
    let entry = |t: bson::Timestamp, id: i32, diff: RawDocumentBuf| rawdoc! {"ts": t, "t": 1i64, "op": "u", "ns": "d.c", "o": {"$v": 2, "diff": diff}, "o2": {"_id": id}, "v": 2i64};
    let mut s = Scenario::new();
    let app = s.flow(APP, PRIMARY, 0);
    let app2 = s.flow(APP2, PRIMARY, 0);
    let rep = s.flow(SECONDARY, PRIMARY, 0);
    s.send(rep, 1, &oplog_find(5));
    s.answer(rep, 2, &oplog_batch(200, 5, true, vec![], ts(1000, 1), 1));
    s.send(
        app,
        10,
        &msg(
            1,
            0,
            rawdoc! {"update": "c", "$db": "d", "writeConcern": {"w": 1}, "lsid": {"id": lsid()}},
            vec![(
                "updates",
                vec![rawdoc! {"q": {"_id": {"$in": [5, 4]}}, "u": {"$inc": {"n": 10}}, "multi": true}],
            )],
        ),
    );
    s.send(rep, 20, &oplog_get_more(6));
    s.answer(
        rep,
        21,
        &oplog_batch(
            201,
            6,
            false,
            vec![
                entry(ts(1000, 2), 5, rawdoc! {"u": {"n": 10}}),
                entry(ts(1000, 3), 4, rawdoc! {"u": {"n": 10}}),
            ],
            ts(1000, 1),
            1,
        ),
    );
    s.send(
        app2,
        30,
        &msg_flags(
            2,
            0,
            rawdoc! {"update": "c", "$db": "d", "writeConcern": {"w": 0}},
            vec![(
                "updates",
                vec![rawdoc! {"q": {"_id": 4}, "u": {"$set": {"v": 99}}}],
            )],
            MsgFlags::MORE_TO_COME,
        ),
    );
    s.send(rep, 40, &oplog_get_more(7));
    s.answer(
        rep,
        41,
        &oplog_batch(
            202,
            7,
            false,
            vec![entry(ts(1000, 4), 4, rawdoc! {"u": {"v": 99}})],
            ts(1000, 1),
            1,
        ),
    );
    s.answer(
        app,
        50,
        &msg(
            100,
            1,
            rawdoc! {"n": 2, "nModified": 2, "ok": 1.0, "operationTime": ts(1000, 4)},
            vec![],
        ),
    );
    s.send(rep, 60, &oplog_get_more(8));
    s.answer(rep, 61, &oplog_batch(203, 8, false, vec![], ts(1000, 4), 1));
    s.close(app, 5000);
    s.close(app2, 5000);
    s.close(rep, 5000);
    let out = tap(&s, cfg());
    let committed = keys_by_optime(&out, |m| m.outcome == tidemark::store::Outcome::Committed);
    assert_eq!(
        committed,
        vec![
            (r#"{"_id":5}"#.into(), ot(1000, 2)),
            (r#"{"_id":4}"#.into(), ot(1000, 3)),
            (r#"{"_id":4}"#.into(), ot(1000, 4)),
        ],
        "each committed entry once: {:?}",
        notes(&out)
    );
}

// --- A sharded cluster: several replica sets seen by one tap (issue 17: "its commit
// follows the owning shard's majority commit point"; "the tidemark of the cluster is
// the minimum over the shards and the config servers").

const SHARD_A: [&str; 3] = ["10.4.0.1:27017", "10.4.0.2:27017", "10.4.0.3:27017"];
const SHARD_B: [&str; 3] = ["10.5.0.1:27017", "10.5.0.2:27017", "10.5.0.3:27017"];
const ROUTER: &str = "10.6.0.1:27017";

/// A shard primary's hello: its set, members and term (no `majorityOpTime`, so the
/// hello itself moves no commit point).
fn shard_hello(set: &str, hosts: &[&str; 3], term: i64) -> RawDocumentBuf {
    let mut arr = bson::RawArrayBuf::new();
    for h in hosts {
        arr.push(*h);
    }
    rawdoc! {"isWritablePrimary": true, "setName": set, "hosts": arr, "primary": hosts[0], "me": hosts[0], "lastWrite": {"opTime": {"ts": ts(900, 1), "t": term}}, "maxWireVersion": 17, "ok": 1.0}
}

/// A client connection to each shard's primary, each answered a hello naming its
/// set, members and term (`term_a`, `term_b`).
fn two_shards(
    s: &mut Scenario,
    term_a: i64,
    term_b: i64,
) -> (commit_support::FlowRef, commit_support::FlowRef) {
    let app_a = s.flow(APP, SHARD_A[0], 0);
    let app_b = s.flow(APP2, SHARD_B[0], 0);
    hello(s, app_a, 1, 1, shard_hello("shardA", &SHARD_A, term_a));
    hello(s, app_b, 3, 2, shard_hello("shardB", &SHARD_B, term_b));
    (app_a, app_b)
}

fn update_position(id: i32, optimes: &[(i32, bson::Timestamp, i64)]) -> Vec<u8> {
    let mut arr = bson::RawArrayBuf::new();
    for &(m, t, term) in optimes {
        arr.push(rawdoc! {"memberId": m, "durableOpTime": {"ts": t, "t": term}, "appliedOpTime": {"ts": t, "t": term}, "cfgver": 1});
    }
    msg(
        id,
        0,
        rawdoc! {"replSetUpdatePosition": 1, "optimes": arr, "$db": "admin"},
        vec![],
    )
}

/// Each shard's replication decides its own writes: the shards' members have the
/// same ids (0, 1, 2), and shard A's positions — all past both writes — must not
/// commit shard B's `w:1` write, which only one of B's members holds; shard A's
/// newer term must not make B's write look like an older term's (B's own commit
/// point commits B's next write). One state for the whole capture merged the
/// members' positions across sets and committed B's first write, and gave B's
/// second write A's term, which B's commit point (term 1) never covers.
#[test]
fn each_shard_decides_its_own_writes() {
    let mut s = Scenario::new();
    let (app_a, app_b) = two_shards(&mut s, 5, 1);
    let rep_a = s.flow("10.4.0.2:41000", SHARD_A[0], 5);
    let rep_b = s.flow("10.5.0.2:41000", SHARD_B[0], 5);
    // B: a w:1 insert only B's primary holds.
    s.send(
        app_b,
        10,
        &insert(10, 1, rawdoc! {"writeConcern": {"w": 1}}),
    );
    s.answer(app_b, 11, &ok(110, 10, ts(1000, 5)));
    // A: its members all durable past both writes (term 5).
    s.send(
        rep_a,
        20,
        &update_position(
            20,
            &[
                (0, ts(1000, 9), 5),
                (1, ts(1000, 9), 5),
                (2, ts(1000, 9), 5),
            ],
        ),
    );
    s.answer(rep_a, 21, &msg(120, 20, rawdoc! {"ok": 1.0}, vec![]));
    // B: only its primary has the write.
    s.send(
        rep_b,
        30,
        &update_position(
            30,
            &[(0, ts(1000, 5), 1), (1, ts(999, 1), 1), (2, ts(999, 1), 1)],
        ),
    );
    s.answer(rep_b, 31, &msg(130, 30, rawdoc! {"ok": 1.0}, vec![]));
    // B: a second w:1 insert, then B's majority passes it (but not the first).
    s.send(
        app_b,
        40,
        &insert(11, 2, rawdoc! {"writeConcern": {"w": 1}}),
    );
    s.answer(app_b, 41, &ok(111, 11, ts(999, 3)));
    s.send(
        rep_b,
        50,
        &update_position(
            31,
            &[(0, ts(1000, 5), 1), (1, ts(999, 4), 1), (2, ts(999, 4), 1)],
        ),
    );
    s.answer(rep_b, 51, &msg(131, 31, rawdoc! {"ok": 1.0}, vec![]));
    for f in [app_a, app_b, rep_a, rep_b] {
        s.close(f, 5000);
    }
    let out = tap(&s, cfg());
    let (log, undecided) = logged(&out);
    assert_eq!(
        log.iter()
            .map(|(k, o, _)| (k.as_str(), o.as_str()))
            .collect::<Vec<_>>(),
        vec![(r#"{"_id":2}"#, "committed")],
        "{log:?}"
    );
    assert!(
        log[0].2.contains("1:") && log[0].2.contains("(replSetUpdatePosition)"),
        "decided by shard B's own commit point in its own term: {}",
        log[0].2
    );
    assert_eq!(
        undecided,
        vec![(r#"{"_id":1}"#.to_string(), "pending".to_string())],
        "B's first write waits for B's majority"
    );
}

/// A `w:1` write sent to a router (its hello said `isdbgrid`) whose oplog entry was
/// not seen: the router's reply carries no term and names no shard, so the write is
/// committed once every set's commit point has passed its time — the cluster's
/// commit point is the lowest of the shards' — not when the most advanced shard's
/// has.
#[test]
fn a_routers_write_waits_for_the_lowest_shard_commit_point() {
    let mut s = Scenario::new();
    let (app_a, app_b) = two_shards(&mut s, 1, 1);
    let client = s.flow("10.9.0.1:50003", ROUTER, 4);
    hello(
        &mut s,
        client,
        5,
        3,
        rawdoc! {"isWritablePrimary": true, "msg": "isdbgrid", "maxWireVersion": 17, "ok": 1.0},
    );
    let rep_a = s.flow("10.4.0.2:41000", SHARD_A[0], 6);
    let rep_b = s.flow("10.5.0.2:41000", SHARD_B[0], 6);
    s.send(
        client,
        10,
        &insert(10, 7, rawdoc! {"writeConcern": {"w": 1}}),
    );
    s.answer(client, 11, &ok(110, 10, ts(1000, 20)));
    let positions = |to: bson::Timestamp| [(0, to, 1i64), (1, to, 1), (2, to, 1)];
    s.send(rep_a, 20, &update_position(20, &positions(ts(1000, 30))));
    s.answer(rep_a, 21, &msg(120, 20, rawdoc! {"ok": 1.0}, vec![]));
    s.send(rep_b, 30, &update_position(30, &positions(ts(1000, 10))));
    s.answer(rep_b, 31, &msg(130, 30, rawdoc! {"ok": 1.0}, vec![]));
    s.send(rep_b, 40, &update_position(31, &positions(ts(1000, 25))));
    s.answer(rep_b, 41, &msg(131, 31, rawdoc! {"ok": 1.0}, vec![]));
    for f in [app_a, app_b, client, rep_a, rep_b] {
        s.close(f, 5000);
    }
    let out = tap(&s, cfg());
    assert_eq!(out.log.len(), 1, "{:?}", logged(&out));
    assert_eq!(
        out.log[0].mutation.outcome,
        tidemark::store::Outcome::Committed
    );
    assert_eq!(
        out.log[0].mutation.commit_time,
        at(40),
        "committed when the lagging shard passed it, not at shard A's commit point: {}",
        out.log[0].mutation.evidence.note
    );
}

/// A router's client write is decided by the shard its copy went to: the router's
/// own connection to shard B carries the copy (it names its routing version) and
/// B's reply its optime there; B's commit point passing that optime commits the
/// client's write, though shard A — idle, its commit point far behind — never
/// passes the router's reply time, and B's commit point stops short of it too.
/// (Decided by every set at once, it would wait for A forever.)
#[test]
fn a_routers_write_is_decided_by_the_shard_its_copy_went_to() {
    let mut s = Scenario::new();
    let (app_a, app_b) = two_shards(&mut s, 1, 1);
    let client = s.flow("10.9.0.1:50003", ROUTER, 4);
    hello(
        &mut s,
        client,
        5,
        3,
        rawdoc! {"isWritablePrimary": true, "msg": "isdbgrid", "maxWireVersion": 17, "ok": 1.0},
    );
    let copy = s.flow("10.6.0.1:40000", SHARD_B[0], 6);
    let rep_a = s.flow("10.4.0.2:41000", SHARD_A[0], 6);
    let rep_b = s.flow("10.5.0.2:41000", SHARD_B[0], 6);
    let positions = |to: bson::Timestamp| [(0, to, 1i64), (1, to, 1), (2, to, 1)];
    s.send(rep_a, 8, &update_position(20, &positions(ts(1000, 5))));
    s.answer(rep_a, 9, &msg(120, 20, rawdoc! {"ok": 1.0}, vec![]));
    s.send(
        client,
        10,
        &insert(10, 7, rawdoc! {"writeConcern": {"w": 1}}),
    );
    s.send(
        copy,
        11,
        &insert(
            50,
            7,
            rawdoc! {"writeConcern": {"w": 1}, "shardVersion": {"e": bson::oid::ObjectId::from_bytes([3; 12]), "t": ts(900, 1), "v": ts(3, 2)}},
        ),
    );
    s.answer(copy, 12, &ok(150, 50, ts(1000, 15)));
    s.answer(client, 13, &ok(110, 10, ts(1000, 20)));
    s.send(rep_b, 30, &update_position(30, &positions(ts(1000, 16))));
    s.answer(rep_b, 31, &msg(130, 30, rawdoc! {"ok": 1.0}, vec![]));
    for f in [app_a, app_b, client, copy, rep_a, rep_b] {
        s.close(f, 5000);
    }
    let out = tap(&s, cfg());
    assert_eq!(out.report.tracker.router_copies, 1);
    assert_eq!(out.log.len(), 1, "{:?}", logged(&out));
    assert_eq!(
        out.log[0].mutation.outcome,
        tidemark::store::Outcome::Committed
    );
    assert_eq!(out.log[0].mutation.commit_time, at(30));
    assert!(out.undecided.is_empty());
}
