//! `write` lines' extras for the commit tracker (src/decode/mongo/evidence.rs): each
//! MongoDB write statement as an oplog-style `MongoOp` whose documents are the exact
//! BSON bytes of the request, session ids numbered as drivers number retryable
//! writes, the reply's optime (term from `opTime`, else `electionId`, else -1) and
//! error code. Messages come from tidemark-mongo's encoder; every expected byte string
//! is built independently with `rawdoc!`.

mod mongo_flow_support;

use mongo_flow_support::{msg, with, Flow};
use tidemark::decode::mongo::tidemark_mongo::bson::oid::ObjectId;
use tidemark::decode::mongo::tidemark_mongo::bson::{
    self, rawdoc, RawDocumentBuf, Timestamp as BsonTs,
};
use tidemark::store::envelope::{MongoOp, MongoOpKind, OpTime};

const UUID: [u8; 16] = [7; 16];
const UID: [u8; 32] = [0xAB; 32];

fn lsid() -> RawDocumentBuf {
    rawdoc! {
        "id": bson::Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: UUID.to_vec() },
        "uid": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: UID.to_vec() },
    }
}

fn ts(time: u32, increment: u32) -> BsonTs {
    BsonTs { time, increment }
}

fn optime(time: u32, increment: u32, t: i64) -> OpTime {
    OpTime {
        ts: (u64::from(time) << 32) | u64::from(increment),
        t,
    }
}

/// `7fffffff` + the term as 8 bytes big endian: protocol version 1's electionId.
fn election_id(term: i64) -> ObjectId {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
    b[4..].copy_from_slice(&term.to_be_bytes());
    ObjectId::from_bytes(b)
}

fn op(kind: MongoOpKind, ns: &str, o: &RawDocumentBuf, o2: Option<&RawDocumentBuf>) -> MongoOp {
    MongoOp {
        op: kind,
        ns: ns.to_owned(),
        o: o.as_bytes().to_vec().into(),
        o2: o2.map(|d| d.as_bytes().to_vec().into()),
        optime: None,
        lsid: None,
        txn_number: None,
        stmt_id: None,
    }
}

fn retryable(mut o: MongoOp, txn: i64, stmt: Option<i32>) -> MongoOp {
    o.lsid = Some(UUID);
    o.txn_number = Some(txn);
    o.stmt_id = stmt;
    o
}

fn ops(f: &Flow) -> Vec<MongoOp> {
    f.writes()
        .iter()
        .map(|w| {
            w.extras
                .mongo_op
                .clone()
                .expect("every write line has its op")
        })
        .collect()
}

fn dup(index: i32) -> RawDocumentBuf {
    rawdoc! {"index": index, "code": 11000, "codeName": "DuplicateKey", "errmsg": "E11000 duplicate key"}
}

#[test]
fn insert_batch_ops_are_the_documents_as_sent_numbered_from_zero() {
    let mut f = Flow::new();
    let docs: Vec<RawDocumentBuf> = (0..3)
        .map(|i| rawdoc! {"_id": i, "half": 0.5, "big": 1i64 << 40, "s": format!("d{i}")})
        .collect();
    let body = rawdoc! {"insert": "c", "$db": "d", "lsid": lsid(), "txnNumber": 5i64};
    f.send(&msg(1, 0, body, vec![("documents", docs.clone())]));
    f.answer(&msg(
        100,
        1,
        rawdoc! {
            "n": 1, "writeErrors": [dup(1)], "operationTime": ts(100, 3),
            "$clusterTime": {"clusterTime": ts(100, 9), "signature": {"keyId": 0i64}}, "ok": 1.0,
        },
        vec![],
    ));
    let want: Vec<MongoOp> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| retryable(op(MongoOpKind::Insert, "d.c", d, None), 5, Some(i as i32)))
        .collect();
    assert_eq!(ops(&f), want);
    let w = f.writes();
    // operationTime, not $clusterTime; no term in the reply → -1
    for x in &w {
        assert_eq!(x.extras.optime, Some(optime(100, 3, -1)));
    }
    let codes: Vec<Option<i32>> = w.iter().map(|x| x.extras.error_code).collect();
    assert_eq!(codes, [None, Some(11000), None]);
}

#[test]
fn updates_keep_the_filter_in_o2_and_take_stmt_ids_and_the_op_time_term() {
    let mut f = Flow::new();
    let q0 = rawdoc! {"_id": 1};
    let u0 = rawdoc! {"$set": {"a": 1}};
    let q1 = rawdoc! {"x": {"$gt": 2}};
    let u1 = rawdoc! {"b": 2};
    let q2 = rawdoc! {"_id": 3};
    let body = rawdoc! {
        "update": "c",
        "updates": [
            {"q": q0.clone(), "u": u0.clone()},
            {"q": q1.clone(), "u": u1.clone(), "multi": false, "upsert": true},
            {"q": q2.clone(), "u": [{"$set": {"c": 3}}]},
        ],
        "stmtIds": [7, 9, 11], "lsid": lsid(), "txnNumber": 6i64, "$db": "d",
    };
    f.send(&msg(2, 0, body, vec![]));
    // opTime carries the term; it wins over electionId's and over operationTime
    f.answer(&msg(
        101,
        2,
        rawdoc! {
            "n": 3, "nModified": 3, "opTime": {"ts": ts(200, 1), "t": 4i64},
            "electionId": election_id(9), "operationTime": ts(200, 1), "ok": 1.0,
        },
        vec![],
    ));
    let pipeline = rawdoc! {"$pipeline": [{"$set": {"c": 3}}]};
    let want = vec![
        retryable(op(MongoOpKind::Update, "d.c", &u0, Some(&q0)), 6, Some(7)),
        retryable(op(MongoOpKind::Update, "d.c", &u1, Some(&q1)), 6, Some(9)),
        retryable(
            op(MongoOpKind::Update, "d.c", &pipeline, Some(&q2)),
            6,
            Some(11),
        ),
    ];
    assert_eq!(ops(&f), want);
    for w in f.writes() {
        assert_eq!(w.extras.optime, Some(optime(200, 1, 4)));
        assert_eq!(w.extras.error_code, None);
    }
}

#[test]
fn deletes_and_find_and_modify() {
    let mut f = Flow::new();
    let q0 = rawdoc! {"_id": 4};
    let q1 = rawdoc! {"k": "x"};
    let body = rawdoc! {
        "delete": "c",
        "deletes": [{"q": q0.clone(), "limit": 1}, {"q": q1.clone(), "limit": 0}],
        "stmtId": 3, "lsid": lsid(), "txnNumber": 2i64, "$db": "d",
    };
    f.send(&msg(3, 0, body, vec![]));
    // no opTime: the term comes from electionId (7fffffff + term)
    f.answer(&msg(
        102,
        3,
        rawdoc! {"n": 2, "operationTime": ts(300, 7), "electionId": election_id(2), "ok": 1},
        vec![],
    ));
    let q5 = rawdoc! {"_id": 5};
    let inc = rawdoc! {"$inc": {"n": 1}};
    f.send(&msg(
        4,
        0,
        rawdoc! {"findAndModify": "c", "query": q5.clone(), "update": inc.clone(), "new": true, "$db": "d"},
        vec![],
    ));
    f.answer(&msg(103, 4, rawdoc! {"value": null, "ok": 1.0}, vec![]));
    let q6 = rawdoc! {"_id": 6};
    f.send(&msg(
        5,
        0,
        rawdoc! {"findAndModify": "c", "query": q6.clone(), "remove": true, "$db": "d"},
        vec![],
    ));
    f.answer(&msg(
        104,
        5,
        rawdoc! {"ok": 0.0, "code": 112, "codeName": "WriteConflict", "errmsg": "conflict"},
        vec![],
    ));
    let want = vec![
        retryable(op(MongoOpKind::Delete, "d.c", &q0, None), 2, Some(3)),
        retryable(op(MongoOpKind::Delete, "d.c", &q1, None), 2, Some(4)),
        op(MongoOpKind::Update, "d.c", &inc, Some(&q5)),
        op(MongoOpKind::Delete, "d.c", &q6, None),
    ];
    assert_eq!(ops(&f), want);
    let w = f.writes();
    assert_eq!(w[0].extras.optime, Some(optime(300, 7, 2)));
    assert_eq!(w[1].extras.optime, Some(optime(300, 7, 2)));
    assert_eq!(w[2].extras.optime, None, "a reply without optime");
    assert_eq!(
        w[3].extras.error_code,
        Some(112),
        "ok:0 → the command's code"
    );
}

#[test]
fn ddl_and_transaction_control_are_command_ops_without_generic_fields() {
    let mut f = Flow::new();
    f.send(&msg(
        6,
        0,
        rawdoc! {
            "create": "c2", "capped": true, "size": 4096i64, "lsid": lsid(),
            "writeConcern": {"w": "majority"}, "$db": "d",
            "$clusterTime": {"clusterTime": ts(1, 1)}, "maxTimeMS": 1000,
        },
        vec![],
    ));
    f.answer(&msg(
        105,
        6,
        rawdoc! {"ok": 1.0, "operationTime": ts(400, 1)},
        vec![],
    ));
    f.send(&msg(
        7,
        0,
        rawdoc! {"renameCollection": "d.a", "to": "d.b", "$db": "admin"},
        vec![],
    ));
    f.answer(&msg(106, 7, rawdoc! {"ok": 1.0}, vec![]));
    // a transaction: the held insert takes the commit's optime
    let doc = rawdoc! {"_id": 1};
    let txn = rawdoc! {"lsid": lsid(), "txnNumber": 8i64, "autocommit": false};
    f.send(&msg(
        8,
        0,
        with(
            with(rawdoc! {"insert": "c", "$db": "d"}, txn.clone()),
            rawdoc! {"startTransaction": true},
        ),
        vec![("documents", vec![doc.clone()])],
    ));
    f.answer(&msg(
        107,
        8,
        rawdoc! {"n": 1, "ok": 1.0, "operationTime": ts(500, 1)},
        vec![],
    ));
    f.send(&msg(
        9,
        0,
        with(
            rawdoc! {"commitTransaction": 1, "$db": "admin", "writeConcern": {"w": "majority"}},
            txn,
        ),
        vec![],
    ));
    f.answer(&msg(
        108,
        9,
        rawdoc! {"ok": 1.0, "operationTime": ts(500, 4)},
        vec![],
    ));
    let mut create = op(
        MongoOpKind::Command,
        "d.$cmd",
        &rawdoc! {"create": "c2", "capped": true, "size": 4096i64},
        None,
    );
    create.lsid = Some(UUID);
    let rename = op(
        MongoOpKind::Command,
        "d.$cmd",
        &rawdoc! {"renameCollection": "d.a", "to": "d.b"},
        None,
    );
    // inside a transaction no stmtId is implied
    let insert = retryable(op(MongoOpKind::Insert, "d.c", &doc, None), 8, None);
    let commit = retryable(
        op(
            MongoOpKind::Command,
            "admin.$cmd",
            &rawdoc! {"commitTransaction": 1},
            None,
        ),
        8,
        None,
    );
    assert_eq!(ops(&f), vec![create, rename, insert, commit]);
    let w = f.writes();
    assert_eq!(w[0].extras.optime, Some(optime(400, 1, -1)));
    assert_eq!(w[2].op, "insert");
    assert_eq!(
        w[2].extras.optime,
        Some(optime(500, 4, -1)),
        "commit's optime"
    );
    assert_eq!(w[3].extras.optime, Some(optime(500, 4, -1)));
}

#[test]
fn write_concern_error_code_applies_to_every_statement() {
    let mut f = Flow::new();
    let docs = vec![rawdoc! {"_id": 1}, rawdoc! {"_id": 2}];
    f.send(&msg(
        10,
        0,
        rawdoc! {"insert": "c", "$db": "d", "writeConcern": {"w": 2, "wtimeout": 10}},
        vec![("documents", docs)],
    ));
    f.answer(&msg(
        109,
        10,
        rawdoc! {
            "n": 2, "ok": 1.0,
            "writeConcernError": {"code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting"},
        },
        vec![],
    ));
    let w = f.writes();
    assert_eq!(w.len(), 2);
    assert!(w.iter().all(|x| x.extras.error_code == Some(64)));
    // no session: no lsid, txnNumber or stmtId
    assert!(ops(&f)
        .iter()
        .all(|o| o.lsid.is_none() && o.txn_number.is_none() && o.stmt_id.is_none()));
}

#[test]
fn legacy_insert_takes_the_getlasterror_replys_optime_and_error() {
    use tidemark::decode::mongo::tidemark_mongo::{
        Body, Doc, DocSeq, Message, OpInsert, OpQuery, OpReply,
    };
    let mut f = Flow::new();
    let doc = rawdoc! {"_id": 1, "v": 2.5};
    let ins = OpInsert {
        flags: 0,
        full_collection_name: "d.c".into(),
        documents: DocSeq::from_docs([doc.as_ref()]),
    };
    f.send(&Message::new(1, 0, Body::Insert(ins)));
    let gle = OpQuery {
        flags: 0,
        full_collection_name: "d.$cmd".into(),
        number_to_skip: 0,
        number_to_return: -1,
        query: Doc::from(rawdoc! {"getlasterror": 1, "w": 1}),
        return_fields_selector: None,
    };
    f.send(&Message::new(2, 0, Body::Query(gle)));
    let reply = OpReply {
        response_flags: 0,
        cursor_id: 0,
        starting_from: 0,
        documents: DocSeq::from_docs([rawdoc! {
            "n": 0, "err": "E11000 duplicate key", "code": 11000,
            "opTime": ts(600, 2), "electionId": election_id(7), "ok": 1.0,
        }
        .as_ref()]),
    };
    f.answer(&Message::new(100, 2, Body::Reply(reply)));
    assert_eq!(ops(&f), vec![op(MongoOpKind::Insert, "d.c", &doc, None)]);
    let w = f.writes();
    assert_eq!(w[0].outcome, "rejected");
    // 3.x getlasterror: a bare opTime timestamp, the term from electionId
    assert_eq!(w[0].extras.optime, Some(optime(600, 2, 7)));
    assert_eq!(w[0].extras.error_code, Some(11000));
}
