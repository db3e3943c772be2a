//! Replication documents as MongoDB's own server source writes them, decoded by
//! tidemark-mongo's replication models. The testbed and the decoder were written by
//! the same hands, so a shared misreading would pass every capture test; these
//! vectors come from the server (facts only, each cited, encoded here with `bson`
//! exactly as the source builds them):
//! - oplog entries: `src/mongo/db/repl/oplog_entry_test.cpp` (mongodb/mongo, commit
//!   00fd21d4): insert/update/delete of `_id` 17 at OpTime `{ts: Timestamp(3, 4),
//!   t: 5}` in `foo.bar`, a capped `create`, and `applyOps` transaction entries,
//!   whose `partialTxn` lives inside `o` (`ApplyOpsCommandInfoBase`,
//!   `src/mongo/db/repl/apply_ops.idl`; `DurableOplogEntry::isPartialTransaction`
//!   reads `getObject()[kPartialTxnFieldName]`);
//! - `$v: 2` update diffs: `src/mongo/db/update/document_diff_serialization_test.cpp`
//!   (mongodb/mongo, commit 5dafb078), the serialized form each test asserts;
//! - `replSetUpdatePosition`: `src/mongo/db/repl/update_position_args.cpp` (field
//!   names `optimes`, `cfgver`, `memberId`, `durableOpTime`, `appliedOpTime`) and
//!   `ReplicationCoordinatorImpl::prepareReplSetUpdatePositionCommand`
//!   (`src/mongo/db/repl/replication_coordinator_impl.cpp`: per member
//!   `durableOpTime`, `durableWallTime`, `appliedOpTime`, `appliedWallTime`,
//!   `memberId`, `cfgver`, in that order; newer servers add `writtenOpTime` and
//!   `writtenWallTime`, which a reader must pass over).

use bson::spec::BinarySubtype;
use bson::{rawdoc, Binary, DateTime, RawBsonRef, RawDocumentBuf, Timestamp};
use tidemark_mongo::repl::{
    ArrayDiff, DocDiff, OpTime, OpType, OplogEntry, OplogUpdate, SubDiff, UpdatePosition,
};

/// `entryOpTime` of oplog_entry_test.cpp: `OpTime{Timestamp(3, 4), 5}`.
fn entry_optime() -> OpTime {
    OpTime::new(3, 4, 5)
}

fn ts(time: u32, increment: u32) -> Timestamp {
    Timestamp { time, increment }
}

fn uuid() -> Binary {
    Binary {
        subtype: BinarySubtype::Uuid,
        bytes: (1u8..=16).collect(),
    }
}

/// An entry as `makeOplogEntry` lays one out: ts, t, op, ns, wall, o[, o2].
fn crud(op: &str, o: RawDocumentBuf, o2: Option<RawDocumentBuf>) -> RawDocumentBuf {
    let mut d = rawdoc! {
        "ts": ts(3, 4), "t": 5i64, "op": op, "ns": "foo.bar",
        "wall": DateTime::from_millis(0), "o": o,
    };
    if let Some(o2) = o2 {
        d.append(bson::raw::cstr!("o2"), o2);
    }
    d
}

fn id_of(e: &OplogEntry<'_>) -> Option<i32> {
    match e.document_id()? {
        RawBsonRef::Int32(i) => Some(i),
        _ => None,
    }
}

#[test]
fn oplog_insert_update_delete_of_id_17() {
    // OplogEntryTest.Insert: o = {_id: 17, a: 5}; the id comes from o.
    let d = crud("i", rawdoc! {"_id": 17, "a": 5}, None);
    let e = OplogEntry::parse(&d).unwrap();
    assert_eq!(e.op, OpType::Insert);
    assert_eq!(e.ns, "foo.bar");
    assert_eq!(e.op_time(), Some(entry_optime()));
    assert_eq!(id_of(&e), Some(17));
    assert_eq!(e.o.get_i32("a").unwrap(), 5);
    assert_eq!(e.update().unwrap(), None);

    // OplogEntryTest.Update: o = {$set: {a: 4}}, o2 = {_id: 17}; the id comes from o2.
    let d = crud("u", rawdoc! {"$set": {"a": 4}}, Some(rawdoc! {"_id": 17}));
    let e = OplogEntry::parse(&d).unwrap();
    assert_eq!(e.op, OpType::Update);
    assert_eq!(id_of(&e), Some(17));
    match e.update().unwrap() {
        Some(OplogUpdate::Modifiers(m)) => {
            assert_eq!(m.get_document("$set").unwrap().get_i32("a").unwrap(), 4)
        }
        other => panic!("{other:?}"),
    }

    // OplogEntryTest.Delete: o = {_id: 17}.
    let d = crud("d", rawdoc! {"_id": 17}, None);
    let e = OplogEntry::parse(&d).unwrap();
    assert_eq!(e.op, OpType::Delete);
    assert_eq!(id_of(&e), Some(17));
    assert_eq!(e.command_name(), None);
}

#[test]
fn oplog_create_is_a_command() {
    // OplogEntryTest.Create: o = {create: "bar", capped: true, size: 15}.
    let d = crud(
        "c",
        rawdoc! {"create": "bar", "capped": true, "size": 15},
        None,
    );
    let e = OplogEntry::parse(&d).unwrap();
    assert_eq!(e.op, OpType::Command);
    assert_eq!(e.command_name(), Some("create"));
    assert_eq!(e.document_id(), None);
    assert!(e.apply_ops().unwrap().is_empty());
}

/// An `applyOps` entry of OplogEntryTest: ts Timestamp(1, n), t 1, ns admin.$cmd, one
/// insert of `{_id: 1}` into foo.bar, lsid, txnNumber 5, stmtId 0, prevOpTime.
fn apply_ops(n: u32, partial: bool, prev: RawDocumentBuf) -> RawDocumentBuf {
    let mut o = rawdoc! {
        "applyOps": [{"op": "i", "ns": "foo.bar", "ui": uuid(), "o": {"_id": 1}}],
    };
    if partial {
        o.append(bson::raw::cstr!("partialTxn"), true);
    }
    rawdoc! {
        "ts": ts(1, n), "t": 1i64, "op": "c", "ns": "admin.$cmd",
        "wall": DateTime::from_millis(0), "o": o,
        "lsid": {"id": uuid()}, "txnNumber": 5i64, "stmtId": 0, "prevOpTime": prev,
    }
}

#[test]
fn oplog_apply_ops_transaction_entries() {
    // ApplyOpsSingleEntryTransaction: prevOpTime is the null OpTime {ts: (0, 0), t: -1}.
    let d = apply_ops(1, false, rawdoc! {"ts": ts(0, 0), "t": -1i64});
    let e = OplogEntry::parse(&d).unwrap();
    assert_eq!(e.command_name(), Some("applyOps"));
    assert_eq!(e.op_time(), Some(OpTime::new(1, 1, 1)));
    assert_eq!(e.txn_number, Some(5));
    assert_eq!(e.stmt_id, Some(RawBsonRef::Int32(0)));
    assert_eq!(e.prev_op_time, Some(OpTime::new(0, 0, -1)));
    assert!(e.lsid.is_some());
    assert!(!e.partial_txn, "a single-entry transaction is terminal");
    assert!(!e.prepare);
    let ops = e.apply_ops().unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].op, OpType::Insert);
    assert_eq!(ops[0].ns, "foo.bar");
    assert_eq!(ops[0].ui, Some(&uuid().bytes[..]));
    assert_eq!(id_of(&ops[0]), Some(1));
    assert_eq!(ops[0].op_time(), None, "members carry no ts of their own");

    // ApplyOpsStartMultiEntryTransaction: o = {applyOps: [...], partialTxn: true}.
    let d = apply_ops(1, true, rawdoc! {"ts": ts(0, 0), "t": -1i64});
    let e = OplogEntry::parse(&d).unwrap();
    assert!(
        e.partial_txn,
        "partialTxn inside o marks a non-terminal entry"
    );
    assert_eq!(e.apply_ops().unwrap().len(), 1);

    // ApplyOpsEndMultiEntryTransaction: no partialTxn, prevOpTime {ts: (1, 1), t: 1}.
    let d = apply_ops(2, false, rawdoc! {"ts": ts(1, 1), "t": 1i64});
    let e = OplogEntry::parse(&d).unwrap();
    assert!(!e.partial_txn);
    assert_eq!(e.prev_op_time, Some(OpTime::new(1, 1, 1)));
    assert_eq!(e.op_time(), Some(OpTime::new(1, 2, 1)));
}

/// The diff of an update entry `{$v: 2, diff}` for `_id` 17.
fn parse_diff(diff: RawDocumentBuf, check: impl FnOnce(&DocDiff<'_>)) {
    let d = crud(
        "u",
        rawdoc! {"$v": 2, "diff": diff},
        Some(rawdoc! {"_id": 17}),
    );
    let e = OplogEntry::parse(&d).unwrap();
    match e.update().unwrap() {
        Some(OplogUpdate::Diff(diff)) => check(&diff),
        other => panic!("not a $v:2 diff: {other:?}"),
    }
}

fn keys(d: Option<&bson::RawDocument>) -> Vec<(String, RawBsonRef<'_>)> {
    d.map(|d| {
        d.iter_elements()
            .map(|e| {
                let e = e.unwrap();
                (e.key().as_str().to_string(), e.value().unwrap())
            })
            .collect()
    })
    .unwrap_or_default()
}

fn array<'a>(d: &'a SubDiff<'a>) -> &'a ArrayDiff<'a> {
    match d {
        SubDiff::Array(a) => a,
        other => panic!("not an array diff: {other:?}"),
    }
}

fn doc<'a>(d: &'a SubDiff<'a>) -> &'a DocDiff<'a> {
    match d {
        SubDiff::Doc(x) => x,
        other => panic!("not a document diff: {other:?}"),
    }
}

#[test]
fn diff_delete_insert_update_simple() {
    // DeleteSimple: {d: {f1: false, f2: false, f3: false}}.
    parse_diff(
        rawdoc! {"d": {"f1": false, "f2": false, "f3": false}},
        |d| {
            assert_eq!(d.delete, ["f1", "f2", "f3"]);
            assert!(d.update.is_none() && d.insert.is_none() && d.sub.is_empty());
        },
    );
    // InsertSimple: {i: {f1: 1, f2: 'foo'}}.
    parse_diff(rawdoc! {"i": {"f1": 1, "f2": "foo"}}, |d| {
        assert_eq!(
            keys(d.insert),
            [
                ("f1".to_string(), RawBsonRef::Int32(1)),
                ("f2".to_string(), RawBsonRef::String("foo")),
            ]
        );
        assert!(d.update.is_none() && d.delete.is_empty());
    });
    // UpdateSimple: {u: {f1: 1, f2: 'foo'}}.
    parse_diff(rawdoc! {"u": {"f1": 1, "f2": "foo"}}, |d| {
        assert_eq!(
            keys(d.update),
            [
                ("f1".to_string(), RawBsonRef::Int32(1)),
                ("f2".to_string(), RawBsonRef::String("foo")),
            ]
        );
        assert!(d.insert.is_none() && d.delete.is_empty());
    });
}

#[test]
fn diff_sub_object() {
    // SubDiff: {sobj: {d: {dField: false}, u: {uField: 'foo'}, i: {iField: 1}}}.
    parse_diff(
        rawdoc! {"sobj": {"d": {"dField": false}, "u": {"uField": "foo"}, "i": {"iField": 1}}},
        |d| {
            assert!(d.update.is_none() && d.insert.is_none() && d.delete.is_empty());
            assert_eq!(d.sub.len(), 1);
            assert_eq!(d.sub[0].0, "obj");
            let s = doc(&d.sub[0].1);
            assert_eq!(s.delete, ["dField"]);
            assert_eq!(
                keys(s.update),
                [("uField".to_string(), RawBsonRef::String("foo"))]
            );
            assert_eq!(
                keys(s.insert),
                [("iField".to_string(), RawBsonRef::Int32(1))]
            );
        },
    );
}

#[test]
fn diff_sub_array_with_sub_diff_and_resize() {
    // SubArrayWithSubDiff: {sarr: {a: true, l: 6, u0: {foo: 'bar'},
    //                              s2: {d: {dField: false}}, u5: 1}}.
    parse_diff(
        rawdoc! {"sarr": {"a": true, "l": 6, "u0": {"foo": "bar"},
        "s2": {"d": {"dField": false}}, "u5": 1}},
        |d| {
            assert_eq!(d.sub.len(), 1);
            assert_eq!(d.sub[0].0, "arr");
            let a = array(&d.sub[0].1);
            assert_eq!(a.new_len, Some(6));
            let updates: Vec<u64> = a.update.iter().map(|(i, _)| *i).collect();
            assert_eq!(updates, [0, 5]);
            match a.update[0].1 {
                RawBsonRef::Document(x) => assert_eq!(x.get_str("foo").unwrap(), "bar"),
                other => panic!("{other:?}"),
            }
            assert_eq!(a.update[1].1, RawBsonRef::Int32(1));
            assert_eq!(a.sub.len(), 1);
            assert_eq!(a.sub[0].0, 2);
            assert_eq!(doc(&a.sub[0].1).delete, ["dField"]);
        },
    );
}

#[test]
fn diff_sub_array_nested_objects_and_high_index() {
    // SubArrayNestedObject: {ssubArray: {a: true, s1: {u: {a: 1}}, s2: {u: {b: 2}},
    //                                    s3: {u: {c: 3}}}}.
    parse_diff(
        rawdoc! {"ssubArray": {"a": true, "s1": {"u": {"a": 1}}, "s2": {"u": {"b": 2}},
        "s3": {"u": {"c": 3}}}},
        |d| {
            assert_eq!(d.sub[0].0, "subArray");
            let a = array(&d.sub[0].1);
            assert_eq!(a.new_len, None);
            assert!(a.update.is_empty());
            let subs: Vec<(u64, Vec<(String, RawBsonRef<'_>)>)> = a
                .sub
                .iter()
                .map(|(i, s)| (*i, keys(doc(s).update)))
                .collect();
            assert_eq!(
                subs,
                [
                    (1, vec![("a".to_string(), RawBsonRef::Int32(1))]),
                    (2, vec![("b".to_string(), RawBsonRef::Int32(2))]),
                    (3, vec![("c".to_string(), RawBsonRef::Int32(3))]),
                ]
            );
        },
    );
    // SubArrayHighIndex: {ssubArray: {a: true, u254: 'foo'}}.
    parse_diff(rawdoc! {"ssubArray": {"a": true, "u254": "foo"}}, |d| {
        let a = array(&d.sub[0].1);
        assert_eq!(a.update, [(254, RawBsonRef::String("foo"))]);
        assert_eq!(a.new_len, None);
    });
}

#[test]
fn diff_mixed_sections_with_a_resized_array() {
    // SubArrayDiffAbandon's output:
    // {d: {dField1: false, dField2: false}, u: {uField: 1}, sarr2: {a: true, l: 5}}.
    parse_diff(
        rawdoc! {"d": {"dField1": false, "dField2": false}, "u": {"uField": 1},
        "sarr2": {"a": true, "l": 5}},
        |d| {
            assert_eq!(d.delete, ["dField1", "dField2"]);
            assert_eq!(
                keys(d.update),
                [("uField".to_string(), RawBsonRef::Int32(1))]
            );
            assert_eq!(d.sub.len(), 1);
            assert_eq!(d.sub[0].0, "arr2");
            let a = array(&d.sub[0].1);
            assert_eq!(a.new_len, Some(5));
            assert!(a.update.is_empty() && a.sub.is_empty());
        },
    );
}

/// One member's entry as `prepareReplSetUpdatePositionCommand` appends it, with the
/// `writtenOpTime`/`writtenWallTime` of newer servers between applied and memberId.
fn member(id: i32, durable: (u32, u32), applied: (u32, u32), term: i64) -> RawDocumentBuf {
    rawdoc! {
        "durableOpTime": {"ts": ts(durable.0, durable.1), "t": term},
        "durableWallTime": DateTime::from_millis(i64::from(durable.0) * 1000),
        "appliedOpTime": {"ts": ts(applied.0, applied.1), "t": term},
        "appliedWallTime": DateTime::from_millis(i64::from(applied.0) * 1000),
        "writtenOpTime": {"ts": ts(applied.0, applied.1), "t": term},
        "writtenWallTime": DateTime::from_millis(i64::from(applied.0) * 1000),
        "memberId": id,
        "cfgver": 2,
    }
}

#[test]
fn repl_set_update_position() {
    let cmd = rawdoc! {
        "replSetUpdatePosition": 1,
        "optimes": [
            member(0, (100, 3), (100, 4), 2),
            member(1, (100, 1), (100, 2), 2),
            member(2, (99, 7), (100, 1), 2),
        ],
        "$db": "admin",
    };
    let u = UpdatePosition::parse(&cmd).unwrap();
    assert_eq!(u.optimes.len(), 3);
    let m = &u.optimes[1];
    assert_eq!(m.member_id, Some(1));
    assert_eq!(m.cfgver, Some(2));
    assert_eq!(m.durable_op_time, Some(OpTime::new(100, 1, 2)));
    assert_eq!(m.applied_op_time, Some(OpTime::new(100, 2, 2)));
    assert_eq!(m.durable_wall_time, Some(DateTime::from_millis(100_000)));
    assert_eq!(m.applied_wall_time, Some(DateTime::from_millis(100_000)));
    // Of three members, the second-highest durable optime is on a majority of them.
    assert_eq!(u.majority_durable(2), Some(OpTime::new(100, 1, 2)));
    assert_eq!(u.majority_durable(3), Some(OpTime::new(99, 7, 2)));
    assert_eq!(u.majority_durable(4), None, "only three members reported");
}
