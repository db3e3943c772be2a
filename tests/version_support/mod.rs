//! Generators for the version property tests: CQL types of every kind, values of a
//! type serialized by tidemark-cql's encoder (with the encodings that make byte order
//! and value order part ways: NaN bit patterns, -0.0, varints with redundant leading
//! bytes, one decimal at several scales, nested frozen collections, UDTs with null or
//! missing fields, empty values), and cells built from a small pool of such values so
//! that timestamps, deletion times and values tie often.

#![allow(dead_code)]

use bytes::Bytes;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;
use tidemark::version::{Cell, CellKind, LocalDeletionTime};
use tidemark_cql::{ColumnType, Text, Value};

fn text(s: String) -> Text {
    Text::from_utf8(Bytes::from(s)).expect("generated strings are UTF-8")
}

/// Every non-counter leaf type (counters are cells of their own, see `counter.rs`).
pub fn leaf_type() -> impl Strategy<Value = ColumnType> {
    use ColumnType::*;
    prop::sample::select(vec![
        Ascii, BigInt, Blob, Boolean, Decimal, Double, Float, Int, Timestamp, Uuid, Varchar,
        Varint, Timeuuid, Inet, Date, Time, SmallInt, TinyInt, Duration,
    ])
}

fn udt(fields: Vec<ColumnType>) -> ColumnType {
    ColumnType::Udt {
        keyspace: text("ks".into()),
        name: text("u".into()),
        fields: fields
            .into_iter()
            .enumerate()
            .map(|(i, t)| (text(format!("f{i}")), t))
            .collect(),
    }
}

/// Leaf types (half the time, so each meets its edge cases often) and frozen
/// collections, tuples, UDTs and vectors of them, nested.
pub fn column_type() -> impl Strategy<Value = ColumnType> {
    let nested = leaf_type().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| ColumnType::List(Box::new(t))),
            inner.clone().prop_map(|t| ColumnType::Set(Box::new(t))),
            (inner.clone(), inner.clone())
                .prop_map(|(k, v)| ColumnType::Map(Box::new(k), Box::new(v))),
            prop::collection::vec(inner.clone(), 1..4).prop_map(ColumnType::Tuple),
            prop::collection::vec(inner.clone(), 1..4).prop_map(udt),
            (inner, 1u32..4).prop_map(|(e, dimension)| ColumnType::Vector {
                element: Box::new(e),
                dimension,
            }),
        ]
    });
    prop_oneof![leaf_type(), nested]
}

/// Two's complement, big-endian, shortest form.
fn minimal_varint(v: i64) -> Vec<u8> {
    let mut b = v.to_be_bytes().to_vec();
    while b.len() > 1 && ((b[0] == 0 && b[1] & 0x80 == 0) || (b[0] == 0xff && b[1] & 0x80 != 0)) {
        b.remove(0);
    }
    b
}

/// A varint, sometimes with redundant sign bytes in front (same number, other bytes).
fn varint_bytes() -> impl Strategy<Value = Bytes> {
    let n = prop_oneof![any::<i64>(), -300i64..300];
    (n, 0usize..3).prop_map(|(v, pad)| {
        let mut b = vec![if v < 0 { 0xff } else { 0x00 }; pad];
        b.extend(minimal_varint(v));
        Bytes::from(b)
    })
}

fn small_ints() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(-1i64),
        Just(0),
        Just(1),
        Just(i64::MIN),
        Just(i64::MAX),
        any::<i64>()
    ]
}

fn floats() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<f32>(),
        prop::sample::select(vec![0x7fc0_0000u32, 0x7f80_0001, 0xffc0_0000, 0x7fff_ffff])
            .prop_map(f32::from_bits),
        Just(-0.0f32),
        Just(0.0f32),
        Just(f32::INFINITY),
        Just(f32::NEG_INFINITY),
    ]
}

fn doubles() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        prop::sample::select(vec![
            0x7ff8_0000_0000_0000u64,
            0x7ff0_0000_0000_0001,
            0xfff8_0000_0000_0000,
            0x7fff_ffff_ffff_ffff,
        ])
        .prop_map(f64::from_bits),
        Just(-0.0f64),
        Just(0.0f64),
    ]
}

/// A decimal: a small number at one of several scales (1, 1.0, 1.00 ...).
fn decimal() -> impl Strategy<Value = Value> {
    (-1000i64..1000, -2i32..3, 0u32..3).prop_map(|(n, scale, more)| Value::Decimal {
        scale: scale + more as i32,
        unscaled: Bytes::from(minimal_varint(n * 10i64.pow(more))),
    })
}

fn leaf_value(ty: &ColumnType) -> BoxedStrategy<Value> {
    use ColumnType as T;
    match ty {
        T::Ascii => "[ -~]{0,6}".prop_map(|s| Value::Ascii(text(s))).boxed(),
        T::Varchar => "\\PC{0,4}".prop_map(|s| Value::Text(text(s))).boxed(),
        T::Blob => prop::collection::vec(any::<u8>(), 0..6)
            .prop_map(|b| Value::Blob(b.into()))
            .boxed(),
        T::Boolean => any::<bool>().prop_map(Value::Boolean).boxed(),
        T::BigInt => small_ints().prop_map(Value::BigInt).boxed(),
        T::Timestamp => small_ints().prop_map(Value::Timestamp).boxed(),
        T::Time => (0i64..86_400_000_000_000).prop_map(Value::Time).boxed(),
        T::Int => small_ints().prop_map(|v| Value::Int(v as i32)).boxed(),
        T::SmallInt => small_ints().prop_map(|v| Value::SmallInt(v as i16)).boxed(),
        T::TinyInt => small_ints().prop_map(|v| Value::TinyInt(v as i8)).boxed(),
        T::Float => floats().prop_map(Value::Float).boxed(),
        T::Double => doubles().prop_map(Value::Double).boxed(),
        T::Varint => varint_bytes().prop_map(Value::Varint).boxed(),
        T::Decimal => decimal().boxed(),
        T::Uuid => any::<[u8; 16]>().prop_map(Value::Uuid).boxed(),
        T::Timeuuid => any::<[u8; 16]>().prop_map(Value::Timeuuid).boxed(),
        T::Inet => prop_oneof![
            any::<[u8; 4]>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            any::<[u8; 16]>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        ]
        .prop_map(Value::Inet)
        .boxed(),
        T::Date => any::<u32>().prop_map(Value::Date).boxed(),
        T::Duration => (any::<i32>(), any::<i32>(), any::<i64>())
            .prop_map(|(months, days, nanos)| Value::Duration {
                months,
                days,
                nanos,
            })
            .boxed(),
        _ => Just(Value::Empty).boxed(),
    }
}

/// An element of a tuple or UDT: sometimes null.
fn nullable(ty: &ColumnType) -> BoxedStrategy<Value> {
    prop_oneof![1 => Just(Value::Null), 3 => value_of(ty)].boxed()
}

/// A value of `ty` (collections hold non-null elements, tuples and UDTs may hold nulls
/// and UDTs may stop before their last fields).
pub fn value_of(ty: &ColumnType) -> BoxedStrategy<Value> {
    use ColumnType as T;
    match ty {
        T::List(e) => prop::collection::vec(value_of(e), 0..3)
            .prop_map(Value::List)
            .boxed(),
        T::Set(e) => prop::collection::vec(value_of(e), 0..3)
            .prop_map(Value::Set)
            .boxed(),
        T::Map(k, v) => prop::collection::vec((value_of(k), value_of(v)), 0..3)
            .prop_map(Value::Map)
            .boxed(),
        T::Tuple(ts) => ts
            .iter()
            .map(nullable)
            .collect::<Vec<_>>()
            .prop_map(Value::Tuple)
            .boxed(),
        T::Udt { fields, .. } => {
            let n = fields.len();
            (
                fields.iter().map(|(_, t)| nullable(t)).collect::<Vec<_>>(),
                0..=n,
            )
                .prop_map(|(mut vs, keep)| {
                    vs.truncate(keep);
                    Value::Udt(vs)
                })
                .boxed()
        }
        T::Vector { element, dimension } => {
            prop::collection::vec(value_of(element), *dimension as usize)
                .prop_map(Value::Vector)
                .boxed()
        }
        leaf => leaf_value(leaf),
    }
}

/// The bytes of a cell value of `ty`: the encoder's output, or the empty value.
pub fn serialized(ty: &ColumnType) -> BoxedStrategy<Bytes> {
    prop_oneof![
        9 => value_of(ty).prop_map(|v| {
            let mut out = Vec::new();
            v.encode(&mut out);
            Bytes::from(out)
        }),
        1 => Just(Bytes::new()),
    ]
    .boxed()
}

/// A type and three values of it: the pool cells draw their values from.
pub fn value_pool() -> impl Strategy<Value = (ColumnType, Vec<Bytes>)> {
    column_type().prop_flat_map(|ty| {
        let s = serialized(&ty);
        (Just(ty), prop::collection::vec(s, 3))
    })
}

/// Timestamps and deletion times drawn from few values so they tie; the deletion
/// times straddle 2^31 (negative as a signed int, later as Cassandra 5.0's unsigned).
pub fn cell_from(pool: Vec<Bytes>) -> impl Strategy<Value = Cell> {
    let ts = prop_oneof![6 => Just(0i64), 1 => Just(1), 1 => any::<i64>()];
    let ldt = prop::sample::select(vec![100u32, 101, 0x8000_0000]);
    (ts, 0u8..4, 1u32..3, ldt, 0..pool.len()).prop_map(move |(ts, kind, ttl, at, i)| {
        let value = pool[i].clone();
        let at = LocalDeletionTime::new(at).expect("in range");
        match kind {
            0 | 3 => Cell::live(ts, value),
            1 => Cell::expiring(ts, value, NonZeroU32::new(ttl).expect("≥ 1"), at),
            _ => Cell::tombstone(ts, at),
        }
    })
}

/// `n` cells of one generated type.
pub fn cells(n: usize) -> impl Strategy<Value = (ColumnType, Vec<Cell>)> {
    value_pool()
        .prop_flat_map(move |(ty, pool)| (Just(ty), prop::collection::vec(cell_from(pool), n)))
}

/// The rule stated directly over what Cassandra compares, as one sort key: timestamp,
/// then class (live < expiring < tombstone), then local deletion time (only ever
/// compared within one class), then the value's unsigned bytes.
pub fn sort_key(c: &Cell) -> (i64, u8, u32, Vec<u8>) {
    match &c.kind {
        CellKind::Live { value } => (c.timestamp, 0, 0, value.to_vec()),
        CellKind::Expiring {
            value,
            local_deletion_time,
            ..
        } => (
            c.timestamp,
            1,
            local_deletion_time.seconds(),
            value.to_vec(),
        ),
        CellKind::Tombstone {
            local_deletion_time,
        } => (c.timestamp, 2, local_deletion_time.seconds(), Vec::new()),
        CellKind::Counter { .. } => unreachable!("regular cells only"),
    }
}

/// The first cell with the greatest sort key (Cassandra keeps the left one on ties).
pub fn expected_winner(cells: &[Cell]) -> Cell {
    let mut best = &cells[0];
    for c in &cells[1..] {
        if sort_key(c) > sort_key(best) {
            best = c;
        }
    }
    best.clone()
}
