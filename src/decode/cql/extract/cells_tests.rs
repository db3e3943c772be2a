//! Unit tests of [`super::build`]: every expected byte string is
//! `tidemark_cql::Value::encode` of the value Cassandra stores (or a path as
//! `crate::version::cell` lays it out), never this module's own conversion.

use std::collections::HashMap;
use std::net::IpAddr;

use bytes::Bytes;
use tidemark_cql::message::QueryValues;
use tidemark_cql::statement::{parse_statement, StatementKind};
use tidemark_cql::wire::WireValue;
use tidemark_cql::{Text, Value};

use super::build;
use crate::decode::cql::extract::bound::Bound;
use crate::decode::cql::schema::{Schema, TableSchema};
use crate::decode::cql::typed::{CellOp, RowDeletion, TypedBound, TypedCell, TypedWrite};

const COLUMNS: &[(&str, &str)] = &[
    ("k", "int"),
    ("c", "int"),
    ("c2", "int"),
    ("t", "text"),
    ("a", "ascii"),
    ("bo", "boolean"),
    ("bi", "bigint"),
    ("si", "smallint"),
    ("ti", "tinyint"),
    ("vi", "varint"),
    ("de", "decimal"),
    ("f", "float"),
    ("d", "double"),
    ("b", "blob"),
    ("ts", "timestamp"),
    ("dt", "date"),
    ("tm", "time"),
    ("ip", "inet"),
    ("id", "uuid"),
    ("du", "duration"),
    ("tu", "tuple<int, text>"),
    ("l", "list<int>"),
    ("s", "set<text>"),
    ("m", "map<text, int>"),
    ("u", "addr"),
    ("fu", "frozen<addr>"),
    ("fl", "frozen<list<int>>"),
    ("nested", "map<text, frozen<list<int>>>"),
    ("n", "counter"),
    ("fs", "frozen<set<int>>"),
    ("fm", "frozen<map<text, int>>"),
    ("ns", "map<text, frozen<set<int>>>"),
];

fn schema() -> Schema {
    let mut s = Schema::default();
    s.add_udt(
        "ks",
        "addr",
        vec![
            ("street".into(), "text".into()),
            ("zip".into(), "int".into()),
        ],
    );
    let types: HashMap<String, String> = COLUMNS
        .iter()
        .map(|(c, t)| (c.to_string(), t.to_string()))
        .collect();
    s.add_table(
        "ks",
        "t",
        TableSchema::with_key(types.clone(), vec!["k".into()], vec!["c".into()]),
    );
    s.add_table(
        "ks",
        "t2",
        TableSchema::with_key(types, vec!["k".into()], vec!["c".into(), "c2".into()]),
    );
    s
}

fn typed_with(cql: &str, values: &QueryValues) -> TypedWrite {
    let st = parse_statement(cql).unwrap();
    let StatementKind::Modification(m) = &st.kind else {
        panic!("not a modification: {cql}")
    };
    let table = m.table().name.as_str().to_string();
    let bound = Bound::new(values, &st.bind_markers, None);
    build(m, &schema(), Some(("ks", &table)), &bound)
}

fn typed(cql: &str) -> TypedWrite {
    typed_with(cql, &QueryValues::None)
}

fn enc(v: Value) -> Bytes {
    let mut out = Vec::new();
    v.encode(&mut out);
    Bytes::from(out)
}

fn text(s: &str) -> Value {
    Value::Text(Text::from(s))
}

/// The single cell of `SET col = literal`.
fn literal(col: &str, lit: &str) -> Bytes {
    let w = typed(&format!(
        "UPDATE ks.t SET {col} = {lit} WHERE k = 1 AND c = 2"
    ));
    assert!(w.untyped.is_empty(), "{col} = {lit}: {:?}", w.untyped);
    let [c] = &w.cells[..] else {
        panic!("{col} = {lit}: {:?}", w.cells)
    };
    assert_eq!(
        (c.op, c.path.as_ref()),
        (CellOp::Set, None),
        "{col} = {lit}"
    );
    c.value.clone().unwrap()
}

#[test]
fn literals_of_every_type_encode_as_cassandra_stores_them() {
    let cases: Vec<(&str, &str, Value)> = vec![
        ("t", "'héllo'", text("héllo")),
        ("a", "'plain'", Value::Ascii(Text::from("plain"))),
        ("bo", "true", Value::Boolean(true)),
        (
            "bi",
            "-9007199254740993",
            Value::BigInt(-9_007_199_254_740_993),
        ),
        ("si", "32767", Value::SmallInt(32767)),
        ("ti", "-128", Value::TinyInt(-128)),
        // Leading zeros are not part of the value: minimal two's complement.
        ("vi", "007", Value::Varint(Bytes::from_static(&[7]))),
        (
            "vi",
            "-129",
            Value::Varint(Bytes::from_static(&[0xff, 0x7f])),
        ),
        (
            "vi",
            "-98765432109876543210",
            Value::Varint(Bytes::from_static(&[
                0xfa, 0xa5, 0x5a, 0xb2, 0xc7, 0x1a, 0xd9, 0x81, 0x16,
            ])),
        ),
        // BigDecimal(String) keeps the scale: 1.50 is 150 at scale 2, not 15 at 1.
        (
            "de",
            "1.50",
            Value::Decimal {
                scale: 2,
                unscaled: Bytes::from_static(&[0, 150]),
            },
        ),
        (
            "de",
            "-0.5",
            Value::Decimal {
                scale: 1,
                unscaled: Bytes::from_static(&[0xfb]),
            },
        ),
        (
            "de",
            "1E3",
            Value::Decimal {
                scale: -3,
                unscaled: Bytes::from_static(&[1]),
            },
        ),
        ("f", "NaN", Value::Float(f32::NAN)),
        ("f", "1.5", Value::Float(1.5)),
        ("d", "-0.0", Value::Double(-0.0)),
        ("d", "-Infinity", Value::Double(f64::NEG_INFINITY)),
        (
            "b",
            "0xCAFE",
            Value::Blob(Bytes::from_static(&[0xca, 0xfe])),
        ),
        (
            "ts",
            "'2024-01-02 03:04:05.678+0000'",
            Value::Timestamp(1_704_164_645_678),
        ),
        ("ts", "1704164645678", Value::Timestamp(1_704_164_645_678)),
        // Days since the epoch, with the epoch at 2^31.
        ("dt", "'2024-02-29'", Value::Date((1u32 << 31) + 19_782)),
        (
            "tm",
            "'13:45:30.123456789'",
            Value::Time(((13 * 60 + 45) * 60 + 30) * 1_000_000_000 + 123_456_789),
        ),
        (
            "ip",
            "'192.168.1.10'",
            Value::Inet("192.168.1.10".parse::<IpAddr>().unwrap()),
        ),
        (
            "id",
            "3c2b1a09-8f7e-4d6c-b5a4-938271605f4e",
            Value::Uuid([
                0x3c, 0x2b, 0x1a, 0x09, 0x8f, 0x7e, 0x4d, 0x6c, 0xb5, 0xa4, 0x93, 0x82, 0x71, 0x60,
                0x5f, 0x4e,
            ]),
        ),
        (
            "du",
            "1mo2d3h",
            Value::Duration {
                months: 1,
                days: 2,
                nanos: 3 * 3_600_000_000_000,
            },
        ),
        (
            "tu",
            "(7, 'seven')",
            Value::Tuple(vec![Value::Int(7), text("seven")]),
        ),
        // A frozen UDT serializes every field of its type; the unnamed one is null.
        (
            "fu",
            "{street: 'Elm'}",
            Value::Udt(vec![text("Elm"), Value::Null]),
        ),
        (
            "fl",
            "[3, 1, 2]",
            Value::List(vec![Value::Int(3), Value::Int(1), Value::Int(2)]),
        ),
    ];
    for (col, lit, want) in cases {
        assert_eq!(
            literal(col, lit),
            enc(want.clone()),
            "{col} = {lit} ({want:?})"
        );
    }
}

fn cell_summary(c: &TypedCell) -> (CellOp, Option<Bytes>, Option<Bytes>) {
    (c.op, c.path.clone(), c.value.clone())
}

fn cells(cql: &str) -> Vec<(CellOp, Option<Bytes>, Option<Bytes>)> {
    let w = typed(cql);
    assert!(w.untyped.is_empty(), "{cql}: {:?}", w.untyped);
    w.cells.iter().map(cell_summary).collect()
}

const WHERE: &str = "WHERE k = 1 AND c = 2";

#[test]
fn collection_elements_have_cassandras_cell_paths() {
    let int = |i: i32| Some(enc(Value::Int(i)));
    let t = |s: &str| Some(enc(text(s)));
    assert_eq!(
        cells(&format!("UPDATE ks.t SET m['k'] = 5 {WHERE}")),
        [(CellOp::Put, t("k"), int(5))]
    );
    // Setting a map element to null deletes it.
    assert_eq!(
        cells(&format!("UPDATE ks.t SET m['k'] = null {WHERE}")),
        [(CellOp::Remove, t("k"), None)]
    );
    assert_eq!(
        cells(&format!("UPDATE ks.t SET m = m - {{'a'}} {WHERE}")),
        [(CellOp::Remove, t("a"), None)]
    );
    assert_eq!(
        cells(&format!("UPDATE ks.t SET m = m + {{'a': 1}} {WHERE}")),
        [(CellOp::Put, t("a"), int(1))]
    );
    // A set element is the path; the cell has no value.
    assert_eq!(
        cells(&format!("UPDATE ks.t SET s = s + {{'x', 'y'}} {WHERE}")),
        [(CellOp::Put, t("x"), None), (CellOp::Put, t("y"), None)]
    );
    assert_eq!(
        cells(&format!("UPDATE ks.t SET s = s - {{'x'}} {WHERE}")),
        [(CellOp::Remove, t("x"), None)]
    );
    // List elements get their timeuuid path from the server: none here.
    assert_eq!(
        cells(&format!("UPDATE ks.t SET l = l + [1, 2] {WHERE}")),
        [
            (CellOp::Append, None, int(1)),
            (CellOp::Append, None, int(2))
        ]
    );
    assert_eq!(
        cells(&format!("UPDATE ks.t SET l = [0] + l {WHERE}")),
        [(CellOp::Prepend, None, int(0))]
    );
    assert_eq!(
        cells(&format!("UPDATE ks.t SET l = l - [4] {WHERE}")),
        [(CellOp::Remove, None, int(4))]
    );
    assert_eq!(
        cells(&format!("UPDATE ks.t SET l[2] = 7 {WHERE}")),
        [(CellOp::Put, int(2), int(7))]
    );
    // A UDT field is addressed by its index as a 2-byte short (UserType.cellPathForField).
    let field = |i: u8| Some(Bytes::copy_from_slice(&[0, i]));
    assert_eq!(
        cells(&format!("UPDATE ks.t SET u.zip = 5 {WHERE}")),
        [(CellOp::Put, field(1), int(5))]
    );
    assert_eq!(
        cells(&format!("DELETE m['a'], l[0], u.street FROM ks.t {WHERE}")),
        [
            (CellOp::Remove, t("a"), None),
            (CellOp::Remove, int(0), None),
            (CellOp::Remove, field(0), None),
        ]
    );
}

#[test]
fn whole_collection_overwrites_clear_then_write_elements() {
    let int = |i: i32| Some(enc(Value::Int(i)));
    let t = |s: &str| Some(enc(text(s)));
    assert_eq!(
        cells(&format!("UPDATE ks.t SET m = {{'a': 1, 'b': 2}} {WHERE}")),
        [
            (CellOp::Clear, None, None),
            (CellOp::Set, t("a"), int(1)),
            (CellOp::Set, t("b"), int(2)),
        ]
    );
    assert_eq!(
        cells(&format!("UPDATE ks.t SET l = [5, 5] {WHERE}")),
        [
            (CellOp::Clear, None, None),
            (CellOp::Append, None, int(5)),
            (CellOp::Append, None, int(5)),
        ]
    );
    assert_eq!(
        cells(&format!("UPDATE ks.t SET s = {{}} {WHERE}")),
        [(CellOp::Clear, None, None)]
    );
    // A non-frozen UDT: one cell per non-null field.
    assert_eq!(
        cells(&format!("UPDATE ks.t SET u = {{street: 'Elm'}} {WHERE}")),
        [
            (CellOp::Clear, None, None),
            (CellOp::Set, Some(Bytes::copy_from_slice(&[0, 0])), t("Elm")),
        ]
    );
    // Nested collections are frozen: one element cell holding the whole list.
    let list = enc(Value::List(vec![Value::Int(1), Value::Int(2)]));
    assert_eq!(
        cells(&format!("UPDATE ks.t SET nested = {{'a': [1, 2]}} {WHERE}")),
        [
            (CellOp::Clear, None, None),
            (CellOp::Set, t("a"), Some(list))
        ]
    );
    // Assigning null deletes the whole column.
    assert_eq!(
        cells(&format!("UPDATE ks.t SET m = null {WHERE}")),
        [(CellOp::Tombstone, None, None)]
    );
    let w = typed(&format!("UPDATE ks.t SET fl = [1] {WHERE}"));
    assert_eq!((w.cells.len(), w.cells[0].frozen), (1, Some(true)));
}

#[test]
fn counters_hold_the_signed_delta() {
    let delta = |d: i64| Some(Bytes::copy_from_slice(&d.to_be_bytes()));
    assert_eq!(
        cells(&format!("UPDATE ks.t SET n = n + 5 {WHERE}")),
        [(CellOp::Increment, None, delta(5))]
    );
    assert_eq!(
        cells(&format!("UPDATE ks.t SET n = n - 3 {WHERE}")),
        [(CellOp::Increment, None, delta(-3))]
    );
}

#[test]
fn deletions_name_their_rows_with_clustering_bounds() {
    let int = |i: i32| enc(Value::Int(i));
    let bound = |prefix: Vec<Bytes>, inclusive| TypedBound { prefix, inclusive };
    assert_eq!(
        typed("DELETE FROM ks.t WHERE k = 1 AND c = 2").deletion,
        Some(RowDeletion::Row)
    );
    assert_eq!(
        typed("DELETE FROM ks.t WHERE k = 1").deletion,
        Some(RowDeletion::Partition)
    );
    assert_eq!(
        typed("DELETE FROM ks.t WHERE k = 1 AND c >= 2 AND c < 4").deletion,
        Some(RowDeletion::Range {
            start: bound(vec![int(2)], true),
            end: bound(vec![int(4)], false),
        })
    );
    assert_eq!(
        typed("DELETE FROM ks.t WHERE k = 1 AND c > 2").deletion,
        Some(RowDeletion::Range {
            start: bound(vec![int(2)], false),
            end: bound(vec![], true),
        })
    );
    // A clustering prefix of a two-column clustering key.
    assert_eq!(
        typed("DELETE FROM ks.t2 WHERE k = 1 AND c = 2").deletion,
        Some(RowDeletion::Range {
            start: bound(vec![int(2)], true),
            end: bound(vec![int(2)], true),
        })
    );
    assert_eq!(
        typed("DELETE FROM ks.t2 WHERE k = 1 AND c = 2 AND c2 <= 9").deletion,
        Some(RowDeletion::Range {
            start: bound(vec![int(2)], true),
            end: bound(vec![int(2), int(9)], true),
        })
    );
    let w = typed("DELETE t, m FROM ks.t WHERE k = 1 AND c = 2");
    assert_eq!(w.deletion, None);
    assert_eq!(
        w.cells
            .iter()
            .map(|c| (c.column.as_str(), c.op))
            .collect::<Vec<_>>(),
        [("t", CellOp::Tombstone), ("m", CellOp::Tombstone)]
    );
    let keys: Vec<_> = w
        .key
        .iter()
        .map(|k| (k.column.as_str(), k.value.clone()))
        .collect();
    assert_eq!(keys, [("k", int(1)), ("c", int(2))]);
}

#[test]
fn without_a_type_there_is_no_typed_cell_and_the_reason_is_kept() {
    let w = typed("UPDATE ks.unknown SET x = 1 WHERE k = 1");
    assert!(w.cells.is_empty() && w.key.is_empty());
    let cols: Vec<&str> = w.untyped.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(cols, ["x", "k"]);
    assert!(w.untyped[0].1.contains("no type"));
    let w = typed("DELETE FROM ks.unknown WHERE k = 1");
    assert_eq!(w.deletion, None);
    assert!(w.untyped.iter().any(|(c, _)| c == "WHERE"));
    // A function call is evaluated by the server.
    let w = typed(&format!("UPDATE ks.t SET ts = toTimestamp(now()) {WHERE}"));
    assert!(w.cells.is_empty());
    assert_eq!(w.untyped[0].0, "ts");
}

#[test]
fn bound_values_are_slices_of_the_frame() {
    let frame = Bytes::from_static(b"\x00\x00\x00\x03abc");
    let value = frame.slice(4..);
    let values = QueryValues::Positional(vec![WireValue::Bytes(value.clone())]);
    let w = typed_with(&format!("UPDATE ks.t SET t = ? {WHERE}"), &values);
    let got = w.cells[0].value.as_ref().unwrap();
    assert_eq!(got, &value);
    assert_eq!(got.as_ptr(), value.as_ptr(), "no copy");
    // Elements of a bound non-frozen list are slices too.
    let list = enc(Value::List(vec![Value::Int(1), Value::Int(2)]));
    let values = QueryValues::Positional(vec![WireValue::Bytes(list.clone())]);
    let w = typed_with(&format!("UPDATE ks.t SET l = ? {WHERE}"), &values);
    let elems: Vec<_> = w.cells[1..]
        .iter()
        .map(|c| c.value.clone().unwrap())
        .collect();
    assert_eq!(elems, [enc(Value::Int(1)), enc(Value::Int(2))]);
    assert_eq!(elems[0].as_ptr(), list[8..].as_ptr());
    // UNSET leaves the column alone; null deletes it.
    let values = QueryValues::Positional(vec![WireValue::Unset]);
    assert!(
        typed_with(&format!("UPDATE ks.t SET t = ? {WHERE}"), &values)
            .cells
            .is_empty()
    );
    let values = QueryValues::Positional(vec![WireValue::Null]);
    let w = typed_with(&format!("UPDATE ks.t SET t = ? {WHERE}"), &values);
    assert_eq!(w.cells[0].op, CellOp::Tombstone);
}

#[test]
fn frozen_sets_and_maps_are_stored_sorted_without_duplicates() {
    let int = Value::Int;
    let set = |v: Vec<i32>| enc(Value::Set(v.into_iter().map(int).collect()));
    // Signed order, not byte order: -1 (ff ff ff ff) before 3.
    assert_eq!(literal("fs", "{3, -1, 3}"), set(vec![-1, 3]));
    // A repeated map key keeps its last value.
    assert_eq!(
        literal("fm", "{'b': 1, 'a': 2, 'b': 3}"),
        enc(Value::Map(vec![(text("a"), int(2)), (text("b"), int(3))]))
    );
    // Bound values are re-serialized the same way.
    let wire = set(vec![3, -1, 3]);
    let values = QueryValues::Positional(vec![WireValue::Bytes(wire)]);
    let w = typed_with(&format!("UPDATE ks.t SET fs = ? {WHERE}"), &values);
    assert_eq!(w.cells[0].value, Some(set(vec![-1, 3])));
    // ... and already sorted ones are kept as sent, without a copy.
    let sorted = set(vec![-1, 3]);
    let values = QueryValues::Positional(vec![WireValue::Bytes(sorted.clone())]);
    let w = typed_with(&format!("UPDATE ks.t SET fs = ? {WHERE}"), &values);
    assert_eq!(w.cells[0].value.as_ref().unwrap().as_ptr(), sorted.as_ptr());
    // A frozen set inside a non-frozen map: the element cell's value is sorted.
    assert_eq!(
        cells(&format!("UPDATE ks.t SET ns = {{'x': {{2, 1}}}} {WHERE}")),
        [
            (CellOp::Clear, None, None),
            (CellOp::Set, Some(enc(text("x"))), Some(set(vec![1, 2]))),
        ]
    );
}
