//! Write, DDL and reply models over hand-built messages.

mod support;

use bson::{rawdoc, RawBsonRef, Timestamp};
use support::{op_msg, uuid};
use tidemark_mongo::model::*;
use tidemark_mongo::repl::*;
use tidemark_mongo::*;

#[test]
fn insert_from_body_and_sequence_with_session() {
    let m = op_msg(
        rawdoc! {
            "insert": "people", "ordered": false, "$db": "app",
            "documents": [{"_id": 1}],
            "lsid": {"id": uuid()}, "txnNumber": 5i64, "autocommit": false, "startTransaction": true,
            "writeConcern": {"w": "majority", "j": true, "wtimeout": 500},
            "readConcern": {"level": "snapshot"},
        },
        vec![("documents", vec![rawdoc! {"_id": 2}, rawdoc! {"_id": 3}])],
    );
    let c = m.command().unwrap();
    assert_eq!(
        (c.name, c.db, c.kind),
        ("insert", "app", CommandKind::Write)
    );
    let w = m.write().unwrap().unwrap();
    assert_eq!(w.kind, WriteKind::Insert);
    assert!(!w.ordered);
    let ids: Vec<_> = w
        .statements
        .iter()
        .map(|s| s.id().unwrap().as_i32().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(w.statements[2].index, 2);
    assert_eq!(w.statements[0].ns.to_string(), "app.people");
    let s = &w.session;
    assert_eq!(s.lsid, Some(&[7u8; 16][..]));
    assert_eq!(s.txn_number, Some(5));
    assert!(s.in_transaction() && s.start_transaction && !s.is_retryable_write());
    let wc = s.write_concern.unwrap();
    assert!(wc.is_majority());
    assert_eq!((wc.j, wc.wtimeout), (Some(true), Some(500)));
    assert_eq!(s.read_concern.unwrap().level, Some("snapshot"));
    assert_eq!(s.db, Some("app"));
}

#[test]
fn update_forms() {
    let m = op_msg(
        rawdoc! {"update": "c", "$db": "d", "stmtIds": [0, 1, 2], "writeConcern": {"w": 2}},
        vec![(
            "updates",
            vec![
                rawdoc! {"q": {"_id": 1}, "u": {"$set": {"a": 1}}, "upsert": true, "arrayFilters": [{"x.y": 1}], "collation": {"locale": "fr"}, "hint": "a_1"},
                rawdoc! {"q": {"a": {"$gt": 1}}, "u": {"a": 2}, "multi": 1},
                rawdoc! {"q": {"_id": {"$eq": 9}}, "u": [{"$set": {"b": 1}}]},
            ],
        )],
    );
    let w = m.write().unwrap().unwrap();
    assert_eq!(w.session.write_concern.unwrap().w, Some(W::Nodes(2)));
    assert_eq!(w.session.stmt_ids.unwrap().into_iter().count(), 3);
    let ups: Vec<_> = w
        .statements
        .iter()
        .map(|s| match &s.op {
            StatementOp::Update(u) => u.clone(),
            _ => panic!(),
        })
        .collect();
    assert!(matches!(ups[0].u, UpdateSpec::Modifiers(_)));
    assert!(ups[0].upsert && !ups[0].multi);
    assert!(ups[0].array_filters.is_some() && ups[0].collation.is_some());
    assert_eq!(ups[0].hint.and_then(|h| h.as_str()), Some("a_1"));
    assert!(matches!(ups[1].u, UpdateSpec::Replacement(_)) && ups[1].multi);
    assert!(matches!(ups[2].u, UpdateSpec::Pipeline(_)));
    assert_eq!(w.statements[0].id(), Some(RawBsonRef::Int32(1)));
    assert_eq!(w.statements[1].id(), None);
    assert_eq!(w.statements[2].id(), Some(RawBsonRef::Int32(9)));
}

#[test]
fn delete_and_find_and_modify() {
    let m = op_msg(
        rawdoc! {"delete": "c", "$db": "d", "deletes": [{"q": {"_id": 1}, "limit": 1.0}, {"q": {}, "limit": 0}]},
        vec![],
    );
    let w = m.write().unwrap().unwrap();
    let limits: Vec<_> = w
        .statements
        .iter()
        .map(|s| match &s.op {
            StatementOp::Delete(d) => d.limit,
            _ => panic!(),
        })
        .collect();
    assert_eq!(limits, [1, 0]);

    let m = op_msg(
        rawdoc! {"findAndModify": "c", "query": {"_id": 4}, "update": {"$inc": {"n": 1}}, "new": true, "upsert": true, "fields": {"n": 1}, "sort": {"n": -1}, "$db": "d"},
        vec![],
    );
    let w = m.write().unwrap().unwrap();
    match &w.statements[0].op {
        StatementOp::FindAndModify(f) => {
            assert!(f.new && f.upsert && !f.remove);
            assert!(f.fields.is_some() && f.sort.is_some());
            assert!(matches!(f.update, Some(UpdateSpec::Modifiers(_))));
        }
        _ => panic!(),
    }
    assert_eq!(w.statements[0].id(), Some(RawBsonRef::Int32(4)));
    let bad = op_msg(rawdoc! {"findAndModify": "c", "$db": "d"}, vec![]);
    assert!(bad.write().is_err());
    let rm = op_msg(
        rawdoc! {"findandmodify": "c", "remove": true, "query": {}, "$db": "d"},
        vec![],
    );
    assert!(rm.write().unwrap().is_some());
}

#[test]
fn bulk_write_80() {
    let m = op_msg(
        rawdoc! {"bulkWrite": 1, "$db": "admin", "ordered": true,
        "nsInfo": [{"ns": "a.x"}, {"ns": "b.y.z"}]},
        vec![(
            "ops",
            vec![
                rawdoc! {"insert": 0, "document": {"_id": 1}},
                rawdoc! {"update": 1, "filter": {"_id": 2}, "updateMods": {"$set": {"k": 1}}, "upsert": true},
                rawdoc! {"delete": 0, "filter": {"_id": 3}, "multi": false},
            ],
        )],
    );
    let w = m.write().unwrap().unwrap();
    assert_eq!(w.kind, WriteKind::BulkWrite);
    let got: Vec<_> = w
        .statements
        .iter()
        .map(|s| (s.op.name(), s.ns.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            ("insert", "a.x".to_string()),
            ("update", "b.y.z".into()),
            ("delete", "a.x".into())
        ]
    );
    let bad = op_msg(
        rawdoc! {"bulkWrite": 1, "$db": "admin", "ops": [{"insert": 4, "document": {}}], "nsInfo": []},
        vec![],
    );
    assert!(bad.write().is_err());
}

#[test]
fn apply_ops_and_oplog_entries() {
    let m = op_msg(
        rawdoc! {"applyOps": [
            {"op": "i", "ns": "d.c", "o": {"_id": 1, "a": 1}},
            {"op": "u", "ns": "d.c", "o": {"$v": 2, "diff": {"u": {"a": 2}}}, "o2": {"_id": 1}},
            {"op": "d", "ns": "d.c", "o": {"_id": 1}},
        ], "$db": "admin"},
        vec![],
    );
    let w = m.write().unwrap().unwrap();
    assert_eq!(w.kind, WriteKind::ApplyOps);
    let ids: Vec<_> = w.statements.iter().map(|s| s.id()).collect();
    assert!(ids.iter().all(|i| *i == Some(RawBsonRef::Int32(1))));

    let txn = rawdoc! {
        "ts": Timestamp { time: 100, increment: 2 }, "t": 3i64, "v": 2, "op": "c", "ns": "admin.$cmd",
        "wall": bson::DateTime::from_millis(1000), "lsid": {"id": uuid()}, "txnNumber": 1i64,
        "prevOpTime": {"ts": Timestamp { time: 0, increment: 0 }, "t": -1i64},
        "o": {"applyOps": [
            {"op": "i", "ns": "d.c", "ui": uuid(), "o": {"_id": 5}},
            {"op": "u", "ns": "d.c", "o": {"$set": {"x": 1}}, "o2": {"_id": 5}},
            {"op": "u", "ns": "d.c", "o": {"_id": 5, "y": 2}, "o2": {"_id": 5}},
        ]},
    };
    let e = OplogEntry::parse(&txn).unwrap();
    assert_eq!(e.op, OpType::Command);
    assert_eq!(e.command_name(), Some("applyOps"));
    assert_eq!(e.op_time(), Some(OpTime::new(100, 2, 3)));
    assert_eq!(e.prev_op_time, Some(OpTime::new(0, 0, -1)));
    let inner = e.apply_ops().unwrap();
    assert_eq!(inner.len(), 3);
    assert_eq!(inner[0].ui, Some(&[7u8; 16][..]));
    assert!(matches!(
        inner[1].update().unwrap(),
        Some(OplogUpdate::Modifiers(_))
    ));
    assert!(matches!(
        inner[2].update().unwrap(),
        Some(OplogUpdate::Replacement(_))
    ));
    let v2 = rawdoc! {"op": "u", "ns": "d.c", "o": {"$v": 2, "diff": {"sa": {"a": true, "u1": 5}}}, "o2": {"_id": 5}};
    match OplogEntry::parse(&v2).unwrap().update().unwrap() {
        Some(OplogUpdate::Diff(d)) => assert!(matches!(d.sub[0].1, SubDiff::Array(_))),
        other => panic!("{other:?}"),
    }
    assert!(OplogEntry::parse(&rawdoc! {"op": "x", "o": {}}).is_err());
}

#[test]
fn ddl_commands() {
    let cases = [
        (
            rawdoc! {"create": "c", "capped": true, "size": 1024, "$db": "d"},
            "create",
        ),
        (
            rawdoc! {"create": "v", "viewOn": "c", "pipeline": [], "$db": "d"},
            "view",
        ),
        (rawdoc! {"drop": "c", "$db": "d"}, "drop"),
        (rawdoc! {"dropDatabase": 1, "$db": "d"}, "dropDatabase"),
        (
            rawdoc! {"renameCollection": "d.a", "to": "e.b", "dropTarget": true, "$db": "admin"},
            "rename",
        ),
        (
            rawdoc! {"createIndexes": "c", "indexes": [{"key": {"a": 1}, "name": "a_1"}], "$db": "d"},
            "createIndexes",
        ),
        (
            rawdoc! {"dropIndexes": "c", "index": "*", "$db": "d"},
            "dropIndexes",
        ),
        (
            rawdoc! {"collMod": "c", "validator": {}, "$db": "d"},
            "collMod",
        ),
        (
            rawdoc! {"convertToCapped": "c", "size": 10, "$db": "d"},
            "other",
        ),
    ];
    for (body, what) in cases {
        let m = op_msg(body, vec![]);
        let ddl = m.command().unwrap().ddl().unwrap().unwrap();
        assert_eq!(ddl.db, if what == "rename" { "admin" } else { "d" });
        let ok = match (&ddl.op, what) {
            (DdlOp::Create { view_on: None, .. }, "create") => true,
            (
                DdlOp::Create {
                    view_on: Some("c"), ..
                },
                "view",
            ) => true,
            (DdlOp::Drop { collection: "c" }, "drop") => true,
            (DdlOp::DropDatabase, "dropDatabase") => true,
            (
                DdlOp::RenameCollection {
                    from,
                    to,
                    drop_target: true,
                },
                "rename",
            ) => from.to_string() == "d.a" && to.to_string() == "e.b",
            (DdlOp::CreateIndexes { indexes, .. }, "createIndexes") => indexes.len() == 1,
            (
                DdlOp::DropIndexes {
                    index: Some(RawBsonRef::String("*")),
                    ..
                },
                "dropIndexes",
            ) => true,
            (
                DdlOp::CollMod {
                    collection: "c", ..
                },
                "collMod",
            ) => true,
            (
                DdlOp::Other {
                    name: "convertToCapped",
                    ..
                },
                "other",
            ) => true,
            _ => false,
        };
        assert!(ok, "{what}: {:?}", ddl.op);
    }
    assert!(op_msg(rawdoc! {"find": "c", "$db": "d"}, vec![])
        .command()
        .unwrap()
        .ddl()
        .unwrap()
        .is_none());
}

#[test]
fn legacy_writes_and_query_commands() {
    let ins = Message::new(
        1,
        0,
        Body::Insert(OpInsert {
            flags: 1,
            full_collection_name: "db.coll.sub".into(),
            documents: DocSeq::from_docs([
                rawdoc! {"_id": 1}.as_ref(),
                rawdoc! {"_id": 2}.as_ref(),
            ]),
        }),
    );
    let w = ins.write().unwrap().unwrap();
    assert!(w.legacy && !w.ordered);
    assert_eq!(w.statements.len(), 2);
    assert_eq!(w.statements[0].ns.coll, "coll.sub");
    let upd = Message::new(
        2,
        0,
        Body::Update(OpUpdate {
            full_collection_name: "db.c".into(),
            flags: 3,
            selector: Doc::from(rawdoc! {"_id": 1}),
            update: Doc::from(rawdoc! {"$set": {"a": 1}}),
        }),
    );
    match &upd.write().unwrap().unwrap().statements[0].op {
        StatementOp::Update(u) => assert!(u.upsert && u.multi),
        _ => panic!(),
    }
    let del = Message::new(
        3,
        0,
        Body::Delete(OpDelete {
            full_collection_name: "db.c".into(),
            flags: 1,
            selector: Doc::from(rawdoc! {"_id": 1}),
        }),
    );
    match &del.write().unwrap().unwrap().statements[0].op {
        StatementOp::Delete(d) => assert_eq!(d.limit, 1),
        _ => panic!(),
    }
    // 2.6 write command through OP_QUERY, wrapped in $query
    let q = Message::new(
        4,
        0,
        Body::Query(OpQuery {
            flags: 0,
            full_collection_name: "shop.$cmd".into(),
            number_to_skip: 0,
            number_to_return: -1,
            query: Doc::from(
                rawdoc! {"$query": {"insert": "items", "documents": [{"_id": "x"}]}, "$readPreference": {"mode": "primary"}},
            ),
            return_fields_selector: None,
        }),
    );
    let w = q.write().unwrap().unwrap();
    assert_eq!(w.statements[0].ns.to_string(), "shop.items");
    assert_eq!(q.command().unwrap().origin, CommandOrigin::OpQuery);
    // getlasterror with j and wtimeout
    let g = op_msg(
        rawdoc! {"getLastError": 1, "w": "majority", "j": true, "wtimeout": 100, "$db": "d"},
        vec![],
    );
    let gle = g.command().unwrap().get_last_error().unwrap().unwrap();
    assert!(gle.write_concern.is_majority());
    assert_eq!(gle.write_concern.wtimeout, Some(100));
    // a plain legacy query is a read
    let find = Message::new(
        5,
        0,
        Body::Query(OpQuery {
            flags: 0,
            full_collection_name: "shop.items".into(),
            number_to_skip: 0,
            number_to_return: 0,
            query: Doc::from(rawdoc! {}),
            return_fields_selector: None,
        }),
    );
    assert_eq!(find.classify(), Some(CommandKind::Read));
    assert!(find.write().unwrap().is_none());
}

#[test]
fn write_replies() {
    let ot = rawdoc! {"ts": Timestamp { time: 10, increment: 1 }, "t": 2i64};
    let oid = bson::oid::ObjectId::new();
    let doc = rawdoc! {
        "n": 1, "nModified": 0, "upserted": [{"index": 1, "_id": "u1"}],
        "writeErrors": [{"index": 0, "code": 11000, "codeName": "DuplicateKey", "errmsg": "E11000"}],
        "writeConcernError": {"code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting", "errInfo": {"wtimeout": true}},
        "opTime": ot, "electionId": oid, "ok": 1.0,
        "errorLabels": ["RetryableWriteError"],
        "operationTime": Timestamp { time: 10, increment: 1 },
        "$clusterTime": {"clusterTime": Timestamp { time: 11, increment: 0 }, "signature": {}},
    };
    let r = Reply::parse(&doc).unwrap();
    assert_eq!(r.ok, Some(true));
    assert_eq!((r.n, r.n_modified), (Some(1), Some(0)));
    assert_eq!(r.upserted[0].index, 1);
    assert_eq!(r.write_errors[0].code, 11000);
    assert_eq!(r.write_errors[0].code_name, Some("DuplicateKey"));
    assert_eq!(r.write_concern_error.as_ref().unwrap().code, 64);
    assert_eq!(r.op_time, Some(OpTime::new(10, 1, 2)));
    assert_eq!(r.election_id, Some(oid));
    assert!(r.has_label("RetryableWriteError") && !r.is_clean_success());
    assert_eq!(
        r.operation_time,
        Some(Timestamp {
            time: 10,
            increment: 1
        })
    );
    assert_eq!(
        r.cluster_time,
        Some(Timestamp {
            time: 11,
            increment: 0
        })
    );

    let err = rawdoc! {"ok": 0.0, "code": 251, "codeName": "NoSuchTransaction", "errmsg": "x", "errorLabels": ["TransientTransactionError"]};
    let r = Reply::parse(&err).unwrap();
    assert_eq!((r.ok, r.code), (Some(false), Some(251)));
    assert!(r.has_label("TransientTransactionError"));
    let d = rawdoc! {"ok": 0, "errorLabels": ["UnknownTransactionCommitResult"]};
    let r = Reply::parse(&d).unwrap();
    assert!(r.unknown_commit_result());

    let fam = rawdoc! {"lastErrorObject": {"n": 1, "updatedExisting": false, "upserted": 5}, "value": null, "ok": 1};
    let r = Reply::parse(&fam).unwrap();
    let leo = r.last_error_object.unwrap();
    assert_eq!(leo.updated_existing, Some(false));
    assert_eq!(leo.upserted, Some(RawBsonRef::Int32(5)));
    assert_eq!(r.value, Some(RawBsonRef::Null));

    let gle = rawdoc! {"n": 0, "err": "E11000 dup", "code": 11000, "wtimeout": true, "updatedExisting": true, "upserted": 9, "ok": 1};
    let r = Reply::parse(&gle).unwrap();
    assert_eq!(r.err, Some("E11000 dup"));
    assert_eq!(r.code, Some(11000));
    assert!(r.wtimeout);
    assert_eq!(r.upserted[0].id, RawBsonRef::Int32(9));
    // legacy query failure
    let d = rawdoc! {"$err": "bad query", "code": 2};
    let r = Reply::parse(&d).unwrap();
    assert_eq!((r.ok, r.errmsg), (None, Some("bad query")));
}

#[test]
fn extended_json_of_commands() {
    let m = op_msg(
        rawdoc! {"insert": "c", "documents": [{"_id": bson::oid::ObjectId::parse_str("000000000000000000000001").unwrap(), "when": bson::DateTime::from_millis(0)}], "$db": "d"},
        vec![],
    );
    let w = m.write().unwrap().unwrap();
    let StatementOp::Insert { document } = &w.statements[0].op else {
        panic!()
    };
    assert_eq!(
        json::document_to_json(document),
        r#"{"_id":{"$oid":"000000000000000000000001"},"when":{"$date":"1970-01-01T00:00:00Z"}}"#
    );
    assert_eq!(
        json::value_to_json(w.statements[0].id().unwrap()),
        r#"{"$oid":"000000000000000000000001"}"#
    );
}
