//! The MongoDB outcome rules of `inspect`, one case each, on wire bytes made with
//! tidemark-mongo's encoder and fed straight into the flow decoder (no capture file):
//! ordered/unordered writeErrors, write concerns, writeConcernError, ok:0, moreToCome,
//! transactions (commit, abort, unknown commit result), legacy opcodes decided by
//! getlasterror, gaps and closes without a reply, bulkWrite, DDL, compression,
//! unknown opcodes.

mod mongo_flow_support;

use mongo_flow_support::{msg, Flow};
use serde_json::{json, Value};
use tidemark::capture::Direction;
use tidemark::decode::mongo::tidemark_mongo::bson::{self, rawdoc, RawDocumentBuf};
use tidemark::decode::mongo::tidemark_mongo::{
    Body, Compressor, Doc, DocSeq, Message, MsgFlags, OpDelete, OpInsert, OpQuery, OpReply,
};
use tidemark::decode::records::Record;

fn lsid() -> bson::Binary {
    bson::Binary {
        subtype: bson::spec::BinarySubtype::Uuid,
        bytes: vec![7; 16],
    }
}

fn docs(n: i32) -> Vec<RawDocumentBuf> {
    (0..n)
        .map(|i| rawdoc! {"_id": i, "v": format!("doc{i}")})
        .collect()
}

fn insert(id: i32, n: i32, extra: RawDocumentBuf) -> Message {
    let mut body = rawdoc! {"insert": "c", "$db": "d"};
    for el in extra.iter() {
        let (k, v) = el.unwrap();
        body.append(k, v);
    }
    msg(id, 0, body, vec![("documents", docs(n))])
}

/// `{n: 1, ok: 1}` plus `extra` (whose `n`, if any, replaces the 1: an insert's
/// reply counts the documents it inserted).
fn ok_reply(id: i32, to: i32, extra: RawDocumentBuf) -> Message {
    let mut body = if extra.get("n").ok().flatten().is_some() {
        rawdoc! {"ok": 1.0}
    } else {
        rawdoc! {"n": 1, "ok": 1.0}
    };
    for el in extra.iter() {
        let (k, v) = el.unwrap();
        body.append(k, v);
    }
    msg(id, to, body, vec![])
}

fn dup(index: i32) -> RawDocumentBuf {
    rawdoc! {"index": index, "code": 11000, "codeName": "DuplicateKey", "errmsg": "E11000 duplicate key"}
}

#[test]
fn ordered_write_error_stops_the_batch() {
    let mut f = Flow::new();
    f.send(&insert(1, 3, rawdoc! {}));
    f.answer(&ok_reply(100, 1, rawdoc! {"writeErrors": [dup(1)]}));
    let o = f.outcomes();
    assert_eq!(o[0].0, "pending");
    assert!(o[0].1.starts_with("awaiting_majority"), "{o:?}");
    assert_eq!(
        o[1],
        (
            "rejected",
            "write_error 11000 DuplicateKey: E11000 duplicate key".into()
        )
    );
    assert_eq!(o[2].0, "rejected");
    assert!(o[2].1.starts_with("not_executed"), "{o:?}");
    let w = f.writes();
    assert_eq!(w[1].key, json!({"_id": 1}));
    assert_eq!(w[1].values, json!({"_id": 1, "v": "doc1"}));
    assert_eq!(
        w[2].batch_json(),
        Some(json!({"command": "insert", "index": 2, "count": 3, "ordered": true}))
    );
    assert_eq!(w[0].request, Some(1));
    assert_eq!(w[0].namespace.as_deref(), Some("d.c"));
}

#[test]
fn unordered_write_error_rejects_only_the_failed_index() {
    let mut f = Flow::new();
    f.send(&insert(
        1,
        3,
        rawdoc! {"ordered": false, "writeConcern": {"w": "majority"}},
    ));
    f.answer(&ok_reply(100, 1, rawdoc! {"n": 2, "writeErrors": [dup(1)]}));
    let o: Vec<&str> = f.outcomes().iter().map(|o| o.0).collect();
    assert_eq!(o, ["committed", "rejected", "committed"]);
    assert_eq!(
        f.writes()[0].write_concern_json(),
        Some(json!({"w": "majority"}))
    );
}

/// An insert reply that counts fewer documents than it acknowledged (seen from a
/// router that dropped a statement's result): which landed is unknown, so the
/// acknowledged statements are in doubt, not `pending` on an oplog entry that may
/// never come; a reply whose count adds up stays as it was.
#[test]
fn an_insert_reply_short_of_its_statements_is_in_doubt() {
    let mut f = Flow::new();
    f.send(&insert(1, 2, rawdoc! {"writeConcern": {"w": 1}}));
    f.answer(&ok_reply(100, 1, rawdoc! {"n": 1}));
    let o = f.outcomes();
    assert_eq!(o.len(), 2);
    for (outcome, reason) in &o {
        assert_eq!(*outcome, "in_doubt", "{o:?}");
        assert!(
            reason.starts_with("count_mismatch: the reply counts n=1 inserted of 2"),
            "{o:?}"
        );
    }
    let mut f = Flow::new();
    f.send(&insert(
        1,
        3,
        rawdoc! {"ordered": false, "writeConcern": {"w": "majority"}},
    ));
    f.answer(&ok_reply(100, 1, rawdoc! {"n": 1, "writeErrors": [dup(1)]}));
    let o: Vec<&str> = f.outcomes().iter().map(|o| o.0).collect();
    assert_eq!(o, ["in_doubt", "rejected", "in_doubt"]);
    let mut f = Flow::new();
    f.send(&insert(1, 2, rawdoc! {"writeConcern": {"w": "majority"}}));
    f.answer(&ok_reply(100, 1, rawdoc! {"n": 2}));
    let o: Vec<&str> = f.outcomes().iter().map(|o| o.0).collect();
    assert_eq!(o, ["committed", "committed"]);
}

#[test]
fn write_concerns_and_write_concern_error() {
    let mut f = Flow::new();
    f.send(&insert(1, 1, rawdoc! {"writeConcern": {"w": "majority"}}));
    f.answer(&ok_reply(100, 1, rawdoc! {}));
    f.send(&insert(2, 1, rawdoc! {"writeConcern": {"w": 1}}));
    f.answer(&ok_reply(101, 2, rawdoc! {}));
    f.send(&insert(
        3,
        1,
        rawdoc! {"writeConcern": {"w": "majority", "wtimeout": 1}},
    ));
    let wce = rawdoc! {"code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication timed out"};
    f.answer(&ok_reply(102, 3, rawdoc! {"writeConcernError": wce}));
    let o = f.outcomes();
    assert_eq!(o[0], ("committed", String::new()));
    assert_eq!(
        o[1],
        ("pending", "awaiting_majority: acknowledged w:1".into())
    );
    assert_eq!(
        o[2],
        (
            "pending",
            "write_concern_error 64 WriteConcernFailed: waiting for replication timed out".into()
        )
    );
}

#[test]
fn command_failure_rejects_every_statement() {
    let mut f = Flow::new();
    f.send(&insert(1, 2, rawdoc! {}));
    f.answer(&msg(
        100,
        1,
        rawdoc! {"ok": 0.0, "code": 13, "codeName": "Unauthorized", "errmsg": "not authorized"},
        vec![],
    ));
    let o = f.outcomes();
    assert_eq!(o.len(), 2);
    assert!(o.iter().all(|o| o
        == &(
            "rejected",
            "command_failed 13 Unauthorized: not authorized".to_owned()
        )));
}

#[test]
fn more_to_come_is_unacknowledged() {
    let mut f = Flow::new();
    let mut m = insert(1, 1, rawdoc! {"writeConcern": {"w": 0}});
    if let Body::Msg(b) = &mut m.body {
        b.flags = MsgFlags(MsgFlags::MORE_TO_COME);
    }
    f.send(&m);
    let o = f.outcomes();
    assert_eq!(o.len(), 1, "decided at once, no reply will come");
    assert_eq!(o[0].0, "in_doubt");
    assert!(o[0].1.starts_with("unacknowledged"));
    f.close();
    assert_eq!(f.writes().len(), 1);
}

fn txn_stmt(id: i32, n: i64, first: bool) -> Message {
    let mut extra = rawdoc! {"lsid": {"id": lsid()}, "txnNumber": n, "autocommit": false};
    if first {
        extra.append(bson::raw::cstr!("startTransaction"), true);
    }
    insert(id, 1, extra)
}

fn txn_end(id: i32, name: &str, n: i64) -> Message {
    let mut body = RawDocumentBuf::new();
    let name: &bson::raw::CStr = name.try_into().unwrap();
    body.append(name, 1);
    body.append(bson::raw::cstr!("lsid"), rawdoc! {"id": lsid()});
    body.append(bson::raw::cstr!("txnNumber"), n);
    body.append(bson::raw::cstr!("autocommit"), false);
    body.append(bson::raw::cstr!("writeConcern"), rawdoc! {"w": "majority"});
    body.append(bson::raw::cstr!("$db"), "admin");
    msg(id, 0, body, vec![])
}

#[test]
fn transaction_statements_wait_for_commit() {
    let mut f = Flow::new();
    f.send(&txn_stmt(1, 5, true));
    f.answer(&ok_reply(100, 1, rawdoc! {}));
    f.send(&txn_stmt(2, 5, false));
    f.answer(&ok_reply(101, 2, rawdoc! {}));
    assert!(f.writes().is_empty(), "held until the transaction ends");
    f.send(&txn_end(3, "commitTransaction", 5));
    f.answer(&ok_reply(102, 3, rawdoc! {}));
    let w = f.writes();
    assert_eq!(w.len(), 3);
    assert_eq!(w[0].outcome, "committed");
    assert_eq!(w[0].reason.as_deref(), Some("transaction_committed"));
    assert_eq!(
        w[0].session_json().unwrap()["startTransaction"],
        json!(true)
    );
    assert_eq!(w[0].session_json().unwrap()["autocommit"], json!(false));
    assert_eq!(
        w[0].session_json().unwrap()["lsid"],
        json!({"id": {"$binary": {"base64": "BwcHBwcHBwcHBwcHBwcHBw==", "subType": "04"}}})
    );
    let c = w[2];
    assert_eq!(
        (c.op.as_str(), c.outcome.as_str(), c.statements),
        ("commitTransaction", "committed", Some(2))
    );
    assert_eq!(c.namespace.as_deref(), Some("admin.$cmd"));
    assert_eq!(c.values, json!({"txnNumber": 5}));
}

#[test]
fn aborted_and_unknown_transactions() {
    let mut f = Flow::new();
    f.send(&txn_stmt(1, 6, true));
    f.answer(&ok_reply(100, 1, rawdoc! {}));
    f.send(&txn_end(2, "abortTransaction", 6));
    f.answer(&ok_reply(101, 2, rawdoc! {}));
    let o: Vec<_> = f.outcomes();
    assert_eq!(
        o,
        [
            ("rejected", "transaction_aborted".into()),
            ("rejected", "transaction_aborted".into())
        ]
    );

    let mut f = Flow::new();
    f.send(&txn_stmt(1, 7, true));
    f.answer(&ok_reply(100, 1, rawdoc! {}));
    f.send(&txn_end(2, "commitTransaction", 7));
    let fail = rawdoc! {"ok": 0.0, "code": 50, "codeName": "MaxTimeMSExpired", "errmsg": "timed out",
    "errorLabels": ["UnknownTransactionCommitResult"]};
    f.answer(&msg(101, 2, fail, vec![]));
    assert_eq!(
        f.writes().len(),
        1,
        "the commit line; its statement stays held for a retry"
    );
    assert_eq!(f.writes()[0].outcome, "in_doubt");
    f.close();
    let w = f.writes();
    assert_eq!(w.len(), 2);
    assert_eq!(w[1].outcome, "in_doubt");
    assert!(w[1]
        .reason
        .as_deref()
        .unwrap()
        .starts_with("unknown_commit_result"));
}

fn gle(id: i32, w: i32) -> Message {
    let q = OpQuery {
        flags: 0,
        full_collection_name: "d.$cmd".into(),
        number_to_skip: 0,
        number_to_return: -1,
        query: Doc::from(rawdoc! {"getlasterror": 1, "w": w}),
        return_fields_selector: None,
    };
    Message::new(id, 0, Body::Query(q))
}

fn op_reply(id: i32, to: i32, doc: RawDocumentBuf) -> Message {
    let r = OpReply {
        response_flags: 0,
        cursor_id: 0,
        starting_from: 0,
        documents: DocSeq::from_docs([doc.as_ref()]),
    };
    Message::new(id, to, Body::Reply(r))
}

#[test]
fn legacy_writes_are_decided_by_getlasterror() {
    let mut f = Flow::new();
    let ins = OpInsert {
        flags: 0,
        full_collection_name: "d.c".into(),
        documents: DocSeq::from_docs(docs(2).iter().map(|d| d.as_ref())),
    };
    f.send(&Message::new(1, 0, Body::Insert(ins)));
    assert!(f.writes().is_empty(), "waits for a getlasterror");
    f.send(&gle(2, 2));
    f.answer(&op_reply(100, 2, rawdoc! {"n": 0, "err": null, "ok": 1.0}));
    let w = f.writes();
    assert_eq!(w.len(), 2);
    assert_eq!(w[0].outcome, "pending");
    assert_eq!(
        w[0].reason.as_deref(),
        Some("awaiting_majority: acknowledged w:2 (getlasterror)")
    );
    assert_eq!(w[0].write_concern_json(), Some(json!({"w": 2})));

    // A legacy delete followed by something else was never acknowledged.
    let del = OpDelete {
        full_collection_name: "d.c".into(),
        flags: 1,
        selector: Doc::from(rawdoc! {"k": "x"}),
    };
    f.send(&Message::new(3, 0, Body::Delete(del)));
    f.send(&msg(4, 0, rawdoc! {"ping": 1, "$db": "admin"}, vec![]));
    let w = f.writes();
    assert_eq!(w.len(), 3);
    assert_eq!(
        (w[2].op.as_str(), w[2].outcome.as_str()),
        ("delete", "in_doubt")
    );
    assert_eq!(w[2].key, json!({"k": "x"}));
    assert!(w[2]
        .reason
        .as_deref()
        .unwrap()
        .starts_with("unacknowledged"));

    // getlasterror reporting an error rejects the single legacy write.
    let ins = OpInsert {
        flags: 0,
        full_collection_name: "d.c".into(),
        documents: DocSeq::from_docs(docs(1).iter().map(|d| d.as_ref())),
    };
    f.send(&Message::new(5, 0, Body::Insert(ins)));
    f.send(&gle(6, 1));
    f.answer(&op_reply(
        101,
        6,
        rawdoc! {"n": 0, "err": "E11000 duplicate key", "code": 11000, "ok": 1.0},
    ));
    let w = f.writes();
    assert_eq!(w[3].outcome, "rejected");
    assert_eq!(
        w[3].reason.as_deref(),
        Some("write_error 11000: E11000 duplicate key")
    );
}

#[test]
fn no_reply_before_close_or_lost_in_a_gap() {
    let mut f = Flow::new();
    f.send(&insert(1, 1, rawdoc! {}));
    f.gap(Direction::ServerToClient, 100);
    f.send(&insert(2, 1, rawdoc! {}));
    f.answer(&ok_reply(100, 2, rawdoc! {}));
    let o = f.outcomes();
    assert_eq!(
        o.len(),
        2,
        "the reply to request 2 proves request 1's reply was lost"
    );
    assert_eq!(
        o[0],
        (
            "in_doubt",
            "no_response: the reply was lost in a capture gap".into()
        )
    );
    assert_eq!(o[1].0, "pending");
    f.send(&insert(3, 1, rawdoc! {}));
    f.close();
    let o = f.outcomes();
    assert_eq!(
        o[2],
        (
            "in_doubt",
            "no_response: the flow ended before the reply".into()
        )
    );
}

#[test]
fn bulk_write_cursor_errors() {
    let mut f = Flow::new();
    let body = rawdoc! {"bulkWrite": 1, "ordered": true, "$db": "admin"};
    let ops = vec![
        rawdoc! {"insert": 0, "document": {"_id": 1}},
        rawdoc! {"insert": 1, "document": {"_id": 2}},
        rawdoc! {"update": 0, "filter": {"k": 1}, "updateMods": {"$set": {"x": 1}}},
    ];
    let ns = vec![rawdoc! {"ns": "d.a"}, rawdoc! {"ns": "d.b"}];
    f.send(&msg(1, 0, body, vec![("ops", ops), ("nsInfo", ns)]));
    let batch = vec![
        bson::Bson::Document(bson::doc! {"ok": 1.0, "idx": 0, "n": 1}),
        bson::Bson::Document(
            bson::doc! {"ok": 0.0, "idx": 1, "code": 11000, "codeName": "DuplicateKey"},
        ),
    ];
    let reply = bson::doc! {"cursor": {"id": 0i64, "firstBatch": batch, "ns": "admin.$cmd.bulkWrite"}, "nErrors": 1, "ok": 1.0};
    f.answer(&msg(
        100,
        1,
        RawDocumentBuf::try_from(&reply).unwrap(),
        vec![],
    ));
    let w = f.writes();
    let got: Vec<_> = w
        .iter()
        .map(|w| {
            (
                w.namespace.clone().unwrap(),
                w.op.as_str(),
                w.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("d.a".to_owned(), "insert", "pending"),
            ("d.b".to_owned(), "insert", "rejected"),
            ("d.a".to_owned(), "update", "rejected")
        ]
    );
    assert_eq!(w[2].key, json!({"k": 1}));
}

/// `shardCollection` runs on `admin` and names its collection in full: the line is
/// the collection's (`d.c`), not `admin.d.c` (as `tidemark tap` named it before, seen in
/// captures/mongo_sharded.pcap).
#[test]
fn shard_collection_is_logged_under_its_collection() {
    let mut f = Flow::new();
    let body = rawdoc! {"shardCollection": "d.c", "key": {"k": "hashed"}, "$db": "admin"};
    f.send(&msg(1, 0, body, vec![]));
    f.answer(&ok_reply(100, 1, rawdoc! {"collectionsharded": "d.c"}));
    let w = f.writes();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].namespace.as_deref(), Some("d.c"));
    assert_eq!(w[0].op, "shardCollection");
    assert_eq!(w[0].key, Value::Null);
}

#[test]
fn ddl_find_and_modify_and_filters() {
    let mut f = Flow::new();
    let body = rawdoc! {"renameCollection": "d.old", "to": "d.new", "lsid": {"id": lsid()}, "$db": "admin"};
    f.send(&msg(1, 0, body, vec![]));
    f.answer(&ok_reply(100, 1, rawdoc! {}));
    let body = rawdoc! {"findAndModify": "c", "query": {"_id": "a"}, "remove": true, "$db": "d"};
    f.send(&msg(2, 0, body, vec![]));
    f.answer(&ok_reply(101, 2, rawdoc! {}));
    let body = rawdoc! {"delete": "c", "$db": "d"};
    f.send(&msg(
        3,
        0,
        body,
        vec![(
            "deletes",
            vec![rawdoc! {"q": {"age": {"$gt": 3}}, "limit": 0}],
        )],
    ));
    f.answer(&ok_reply(102, 3, rawdoc! {}));
    let w = f.writes();
    assert_eq!(w[0].namespace.as_deref(), Some("d.old"));
    assert_eq!(w[0].op, "renameCollection");
    assert_eq!(w[0].key, Value::Null);
    assert_eq!(
        w[0].values,
        json!({"renameCollection": "d.old", "to": "d.new"})
    );
    assert_eq!(
        (w[1].op.as_str(), &*w[1].key, &*w[1].values),
        ("findAndModify", &json!({"_id": "a"}), &Value::Null)
    );
    assert_eq!(w[2].key, json!({"age": {"$gt": 3}}));
}

#[test]
fn compressed_messages_and_unknown_opcodes() {
    let mut f = Flow::new();
    let mut bad = Vec::new();
    bad.extend_from_slice(&20i32.to_le_bytes());
    bad.extend_from_slice(&9i32.to_le_bytes());
    bad.extend_from_slice(&0i32.to_le_bytes());
    bad.extend_from_slice(&2269i32.to_le_bytes());
    bad.extend_from_slice(&[0; 4]);
    f.raw(Direction::ClientToServer, &bad);
    f.send(&insert(1, 1, rawdoc! {}).compressed_with(Compressor::Zstd));
    f.answer(&ok_reply(100, 1, rawdoc! {}).compressed_with(Compressor::Zlib));
    let errors: Vec<_> = f
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Error(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].offset, Some(0));
    assert!(
        errors[0].message.contains("unknown opcode 2269"),
        "{}",
        errors[0].message
    );
    let msgs: Vec<_> = f
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Message(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(msgs.len(), 2);
    assert_eq!(
        (msgs[0].opcode.as_str(), msgs[0].compressor, msgs[0].offset),
        ("OP_MSG", Some("zstd"), 20)
    );
    assert_eq!(msgs[0].command.as_deref(), Some("insert"));
    assert_eq!(
        (msgs[1].opcode.as_str(), msgs[1].compressor),
        ("OP_MSG", Some("zlib"))
    );
    assert_eq!(
        msgs[1].command.as_deref(),
        Some("insert"),
        "a reply carries its request's command"
    );
    assert_eq!(f.writes().len(), 1);
}
