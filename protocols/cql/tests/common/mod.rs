//! Shared proptest strategies: CQL types with matching values, and messages valid for a
//! given protocol version.
#![allow(dead_code)]

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use std::net::{IpAddr, SocketAddr};
use tidemark_cql::message::*;
use tidemark_cql::types::marshal;
use tidemark_cql::{ColumnType, Consistency, Text, Value, WireValue};

pub fn text() -> impl Strategy<Value = Text> {
    "[a-zA-Z0-9_ é€]{0,12}".prop_map(Text::from)
}

pub fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// A varint in canonical (shortest) two's complement form, as Cassandra writes it.
pub fn varint() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 1..20).prop_map(|mut v| {
        while v.len() > 1 && ((v[0] == 0 && v[1] & 0x80 == 0) || (v[0] == 0xff && v[1] & 0x80 != 0))
        {
            v.remove(0);
        }
        Bytes::from(v)
    })
}

fn leaf_type() -> impl Strategy<Value = ColumnType> {
    use ColumnType::*;
    prop_oneof![
        Just(Ascii),
        Just(BigInt),
        Just(Blob),
        Just(Boolean),
        Just(Counter),
        Just(Decimal),
        Just(Double),
        Just(Float),
        Just(Int),
        Just(Timestamp),
        Just(Uuid),
        Just(Varchar),
        Just(Varint),
        Just(Timeuuid),
        Just(Inet),
        Just(Date),
        Just(Time),
        Just(SmallInt),
        Just(TinyInt),
        Just(Duration),
        Just(ColumnType::custom(Text::from("com.example.OpaqueType"))),
    ]
}

pub fn column_type() -> impl Strategy<Value = ColumnType> {
    leaf_type().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| ColumnType::List(Box::new(t))),
            inner.clone().prop_map(|t| ColumnType::Set(Box::new(t))),
            (inner.clone(), inner.clone())
                .prop_map(|(k, v)| ColumnType::Map(Box::new(k), Box::new(v))),
            vec(inner.clone(), 1..4).prop_map(ColumnType::Tuple),
            (text(), vec(("[a-z][a-zA-Z]{0,6}", inner.clone()), 1..4)).prop_map(|(n, f)| {
                ColumnType::Udt {
                    keyspace: Text::from("ks"),
                    name: n,
                    fields: f.into_iter().map(|(a, t)| (Text::from(a), t)).collect(),
                }
            }),
            (
                prop_oneof![
                    Just(ColumnType::Float),
                    Just(ColumnType::Int),
                    Just(ColumnType::Varchar),
                    Just(ColumnType::BigInt)
                ],
                1u32..5
            )
                .prop_map(|(e, n)| {
                    let v = ColumnType::Vector {
                        element: Box::new(e),
                        dimension: n,
                    };
                    ColumnType::custom(Text::from(marshal::class_name(&v)))
                }),
        ]
    })
}

fn uuid() -> impl Strategy<Value = [u8; 16]> {
    any::<[u8; 16]>()
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from)
    ]
}

/// A non-null value of type `ty`.
pub fn value_of(ty: &ColumnType) -> BoxedStrategy<Value> {
    use ColumnType as T;
    match ty.effective().clone() {
        T::Ascii => "[ -~]{0,10}"
            .prop_map(|s| Value::Ascii(Text::from(s)))
            .boxed(),
        T::Varchar => text().prop_map(Value::Text).boxed(),
        T::Blob => bytes(16).prop_map(Value::Blob).boxed(),
        T::Custom { .. } => bytes(16).prop_map(Value::Custom).boxed(),
        T::Boolean => any::<bool>().prop_map(Value::Boolean).boxed(),
        T::BigInt => any::<i64>().prop_map(Value::BigInt).boxed(),
        T::Counter => any::<i64>().prop_map(Value::Counter).boxed(),
        T::Int => any::<i32>().prop_map(Value::Int).boxed(),
        T::SmallInt => any::<i16>().prop_map(Value::SmallInt).boxed(),
        T::TinyInt => any::<i8>().prop_map(Value::TinyInt).boxed(),
        T::Float => any::<f32>()
            .prop_filter("NaN", |f| !f.is_nan())
            .prop_map(Value::Float)
            .boxed(),
        T::Double => any::<f64>()
            .prop_filter("NaN", |f| !f.is_nan())
            .prop_map(Value::Double)
            .boxed(),
        T::Varint => varint().prop_map(Value::Varint).boxed(),
        T::Decimal => (any::<i32>(), varint())
            .prop_map(|(scale, unscaled)| Value::Decimal { scale, unscaled })
            .boxed(),
        T::Timestamp => any::<i64>().prop_map(Value::Timestamp).boxed(),
        T::Date => any::<u32>().prop_map(Value::Date).boxed(),
        T::Time => (0i64..86_400_000_000_000).prop_map(Value::Time).boxed(),
        T::Uuid => uuid().prop_map(Value::Uuid).boxed(),
        T::Timeuuid => uuid().prop_map(Value::Timeuuid).boxed(),
        T::Inet => ip().prop_map(Value::Inet).boxed(),
        T::Duration => prop_oneof![
            (0..i32::MAX, 0..i32::MAX, 0..i64::MAX),
            (i32::MIN..=0, i32::MIN..=0, i64::MIN..=0)
        ]
        .prop_map(|(months, days, nanos)| Value::Duration {
            months,
            days,
            nanos,
        })
        .boxed(),
        T::List(e) => vec(value_of(&e), 0..4).prop_map(Value::List).boxed(),
        T::Set(e) => vec(value_of(&e), 0..4).prop_map(Value::Set).boxed(),
        T::Map(k, v) => vec((value_of(&k), value_of(&v)), 0..4)
            .prop_map(Value::Map)
            .boxed(),
        T::Tuple(ts) => {
            let parts: Vec<BoxedStrategy<Value>> = ts.iter().map(nullable_value_of).collect();
            parts.prop_map(Value::Tuple).boxed()
        }
        T::Udt { fields, .. } => {
            let parts: Vec<BoxedStrategy<Value>> =
                fields.iter().map(|(_, t)| nullable_value_of(t)).collect();
            parts.prop_map(Value::Udt).boxed()
        }
        T::Vector { element, dimension } => vec(value_of(&element), dimension as usize)
            .prop_map(Value::Vector)
            .boxed(),
    }
}

fn nullable_value_of(ty: &ColumnType) -> BoxedStrategy<Value> {
    prop_oneof![1 => Just(Value::Null), 4 => value_of(ty)].boxed()
}

pub fn typed_value() -> impl Strategy<Value = (ColumnType, Value)> {
    column_type().prop_flat_map(|t| {
        let s = value_of(&t);
        (Just(t), s)
    })
}

pub fn consistency() -> impl Strategy<Value = Consistency> {
    (0u16..12).prop_map(Consistency::from_u16)
}

pub fn wire_value() -> impl Strategy<Value = WireValue> {
    prop_oneof![
        Just(WireValue::Null),
        Just(WireValue::Unset),
        bytes(12).prop_map(WireValue::Bytes)
    ]
}

pub fn query_values() -> impl Strategy<Value = QueryValues> {
    prop_oneof![
        Just(QueryValues::None),
        vec(wire_value(), 0..4).prop_map(QueryValues::Positional),
        vec((text(), wire_value()), 0..4).prop_map(QueryValues::Named),
    ]
}

pub fn params(version: u8) -> impl Strategy<Value = QueryParameters> {
    let v5 = version >= 5;
    (
        consistency(),
        query_values(),
        any::<bool>(),
        proptest::option::of(any::<i32>()),
        proptest::option::of(proptest::option::of(bytes(10))),
        proptest::option::of(consistency()),
        proptest::option::of(any::<i64>()),
        proptest::option::of(text()),
        proptest::option::of(any::<i32>()),
    )
        .prop_map(
            move |(c, values, skip, ps, pst, sc, ts, ks, now)| QueryParameters {
                consistency: c,
                values,
                skip_metadata: skip,
                page_size: ps,
                paging_state: pst,
                serial_consistency: sc,
                timestamp: ts,
                keyspace: if v5 { ks } else { None },
                now_in_seconds: if v5 { now } else { None },
            },
        )
}

fn short_id() -> impl Strategy<Value = Bytes> {
    bytes(17)
}

pub fn request(version: u8) -> BoxedStrategy<Message> {
    let v5 = version >= 5;
    let batch = (
        0u8..3,
        any::<bool>(),
        vec(
            (
                prop_oneof![
                    text().prop_map(BatchQuery::Query),
                    short_id().prop_map(BatchQuery::Prepared)
                ],
                vec((text(), wire_value()), 0..3),
            ),
            0..4,
        ),
        consistency(),
        proptest::option::of(consistency()),
        proptest::option::of(any::<i64>()),
        proptest::option::of(text()),
        proptest::option::of(any::<i32>()),
    )
        .prop_map(move |(t, named, stmts, c, sc, ts, ks, now)| {
            Message::Batch(Batch {
                batch_type: [BatchType::Logged, BatchType::Unlogged, BatchType::Counter]
                    [t as usize],
                statements: stmts
                    .into_iter()
                    .map(|(query, vals)| BatchStatement {
                        query,
                        values: if named {
                            QueryValues::Named(vals)
                        } else {
                            QueryValues::Positional(vals.into_iter().map(|(_, v)| v).collect())
                        },
                    })
                    .collect(),
                consistency: c,
                serial_consistency: sc,
                timestamp: ts,
                keyspace: if v5 { ks } else { None },
                now_in_seconds: if v5 { now } else { None },
            })
        });
    prop_oneof![
        vec((text(), text()), 0..4).prop_map(|options| Message::Startup(Startup { options })),
        Just(Message::AuthResponse(AuthResponse::default())),
        Just(Message::Options),
        (text(), params(version))
            .prop_map(|(query, params)| Message::Query(Query { query, params })),
        (text(), proptest::option::of(text())).prop_map(move |(query, ks)| Message::Prepare(
            Prepare {
                query,
                keyspace: if v5 { ks } else { None }
            }
        )),
        (short_id(), short_id(), params(version)).prop_map(move |(id, rid, params)| {
            Message::Execute(Execute {
                id,
                result_metadata_id: if v5 { Some(rid) } else { None },
                params,
            })
        }),
        batch,
        vec(text(), 0..4).prop_map(|events| Message::Register(Register { events })),
    ]
    .boxed()
}

fn column_spec() -> impl Strategy<Value = ColumnSpec> {
    (text(), text(), text(), column_type()).prop_map(|(keyspace, table, name, ty)| ColumnSpec {
        keyspace,
        table,
        name,
        ty,
    })
}

fn rows_metadata(version: u8) -> impl Strategy<Value = RowsMetadata> {
    let v5 = version >= 5;
    (
        proptest::option::of(proptest::option::of(bytes(10))),
        proptest::option::of(short_id()),
        proptest::option::of((text(), text())),
        any::<bool>(),
        vec(column_spec(), 0..4),
        any::<bool>(),
    )
        .prop_map(
            move |(paging_state, nmi, global, no_metadata, mut columns, global_flag)| {
                let columns_count = columns.len();
                if no_metadata {
                    columns.clear();
                }
                if let Some((k, t)) = &global {
                    for c in columns.iter_mut() {
                        c.keyspace = k.clone();
                        c.table = t.clone();
                    }
                }
                RowsMetadata {
                    columns_count,
                    paging_state,
                    new_metadata_id: if v5 && !no_metadata { nmi } else { None },
                    global_table_spec: if no_metadata { None } else { global },
                    no_metadata,
                    global_flag_without_spec: no_metadata && global_flag,
                    columns,
                }
            },
        )
}

fn rows(version: u8) -> impl Strategy<Value = Rows> {
    (rows_metadata(version), 0usize..4).prop_flat_map(|(md, n)| {
        let cols = md.columns_count;
        vec(vec(proptest::option::of(bytes(8)), cols), n)
            .prop_map(move |cells| Rows::from_cells(md.clone(), &cells))
    })
}

fn schema_change() -> impl Strategy<Value = SchemaChange> {
    let target = prop_oneof![
        text().prop_map(|keyspace| SchemaTarget::Keyspace { keyspace }),
        (text(), text()).prop_map(|(keyspace, name)| SchemaTarget::Table { keyspace, name }),
        (text(), text()).prop_map(|(keyspace, name)| SchemaTarget::Type { keyspace, name }),
        (text(), text(), vec(text(), 0..3)).prop_map(|(keyspace, name, arg_types)| {
            SchemaTarget::Function {
                keyspace,
                name,
                arg_types,
            }
        }),
        (text(), text(), vec(text(), 0..3)).prop_map(|(keyspace, name, arg_types)| {
            SchemaTarget::Aggregate {
                keyspace,
                name,
                arg_types,
            }
        }),
    ];
    (
        prop_oneof![Just("CREATED"), Just("UPDATED"), Just("DROPPED")],
        target,
    )
        .prop_map(|(c, target)| SchemaChange {
            change_type: Text::from(c),
            target,
        })
}

fn failures(version: u8) -> BoxedStrategy<Failures> {
    if version >= 5 {
        vec((ip(), any::<u16>()), 0..3)
            .prop_map(Failures::ReasonMap)
            .boxed()
    } else {
        any::<i32>().prop_map(Failures::Count).boxed()
    }
}

fn error_body(version: u8) -> impl Strategy<Value = ErrorBody> {
    use ErrorDetails as D;
    let v5 = version >= 5;
    let details = prop_oneof![
        prop_oneof![
            Just(0x0000),
            Just(0x000A),
            Just(0x0100),
            Just(0x1001),
            Just(0x1002),
            Just(0x1003),
            Just(0x1600),
            Just(0x2000),
            Just(0x2100),
            Just(0x2200),
            Just(0x2300)
        ]
        .prop_map(|c| (c, D::None)),
        (consistency(), any::<i32>(), any::<i32>()).prop_map(|(consistency, required, alive)| (
            0x1000,
            D::Unavailable {
                consistency,
                required,
                alive
            }
        )),
        (
            consistency(),
            any::<i32>(),
            any::<i32>(),
            prop_oneof![
                Just("SIMPLE"),
                Just("BATCH"),
                Just("CAS"),
                Just("BATCH_LOG")
            ],
            any::<u16>()
        )
            .prop_map(move |(consistency, received, block_for, wt, cont)| (
                0x1100,
                D::WriteTimeout {
                    consistency,
                    received,
                    block_for,
                    write_type: Text::from(wt),
                    contentions: if v5 && wt == "CAS" { Some(cont) } else { None },
                }
            )),
        (consistency(), any::<i32>(), any::<i32>(), any::<bool>()).prop_map(
            |(consistency, received, block_for, data_present)| (
                0x1200,
                D::ReadTimeout {
                    consistency,
                    received,
                    block_for,
                    data_present
                }
            )
        ),
        (
            consistency(),
            any::<i32>(),
            any::<i32>(),
            failures(version),
            any::<bool>()
        )
            .prop_map(
                |(consistency, received, block_for, failures, data_present)| (
                    0x1300,
                    D::ReadFailure {
                        consistency,
                        received,
                        block_for,
                        failures,
                        data_present
                    }
                )
            ),
        (
            consistency(),
            any::<i32>(),
            any::<i32>(),
            failures(version),
            text()
        )
            .prop_map(|(consistency, received, block_for, failures, write_type)| (
                0x1500,
                D::WriteFailure {
                    consistency,
                    received,
                    block_for,
                    failures,
                    write_type
                }
            )),
        (text(), text(), vec(text(), 0..3)).prop_map(|(keyspace, function, arg_types)| (
            0x1400,
            D::FunctionFailure {
                keyspace,
                function,
                arg_types
            }
        )),
        (consistency(), any::<i32>(), any::<i32>()).prop_map(
            |(consistency, received, block_for)| (
                0x1700,
                D::CasWriteUnknown {
                    consistency,
                    received,
                    block_for
                }
            )
        ),
        (text(), text())
            .prop_map(|(keyspace, table)| (0x2400, D::AlreadyExists { keyspace, table })),
        short_id().prop_map(|id| (0x2500, D::Unprepared { id })),
    ];
    (details, text()).prop_map(|((code, details), message)| ErrorBody {
        code,
        message,
        details,
    })
}

fn inet() -> impl Strategy<Value = SocketAddr> {
    (ip(), any::<u16>()).prop_map(|(i, p)| SocketAddr::new(i, p))
}

pub fn response(version: u8) -> BoxedStrategy<Message> {
    let v5 = version >= 5;
    let prepared = (
        short_id(),
        short_id(),
        vec(any::<u16>(), 0..3),
        proptest::option::of((text(), text())),
        vec(column_spec(), 0..4),
        rows_metadata(version),
    )
        .prop_map(move |(id, rid, pk, global, mut columns, result_metadata)| {
            if let Some((k, t)) = &global {
                for c in columns.iter_mut() {
                    c.keyspace = k.clone();
                    c.table = t.clone();
                }
            }
            Message::Result(ResultBody::Prepared(Prepared {
                id,
                result_metadata_id: if v5 { Some(rid) } else { None },
                metadata: PreparedMetadata {
                    pk_indexes: if version >= 4 { pk } else { Vec::new() },
                    global_table_spec: global,
                    columns,
                },
                result_metadata,
            }))
        });
    prop_oneof![
        error_body(version).prop_map(Message::Error),
        Just(Message::Ready),
        text().prop_map(|authenticator| Message::Authenticate { authenticator }),
        vec((text(), vec(text(), 0..3)), 0..3).prop_map(|options| Message::Supported { options }),
        Just(Message::Result(ResultBody::Void)),
        rows(version).prop_map(|r| Message::Result(ResultBody::Rows(r))),
        text().prop_map(|k| Message::Result(ResultBody::SetKeyspace(k))),
        prepared,
        schema_change().prop_map(|s| Message::Result(ResultBody::SchemaChange(s))),
        (prop_oneof![Just("NEW_NODE"), Just("REMOVED_NODE")], inet()).prop_map(|(c, node)| {
            Message::Event(Event::TopologyChange {
                change: Text::from(c),
                node,
            })
        }),
        (prop_oneof![Just("UP"), Just("DOWN")], inet()).prop_map(|(c, node)| Message::Event(
            Event::StatusChange {
                change: Text::from(c),
                node
            }
        )),
        schema_change().prop_map(|s| Message::Event(Event::SchemaChange(s))),
        proptest::option::of(bytes(10)).prop_map(|token| Message::AuthChallenge { token }),
        proptest::option::of(bytes(10)).prop_map(|token| Message::AuthSuccess { token }),
    ]
    .boxed()
}

/// An envelope with random prefixes valid for its direction.
pub fn envelope(version: u8, response: bool) -> impl Strategy<Value = Envelope> {
    let msg = if response {
        self::response(version)
    } else {
        request(version)
    };
    (
        msg,
        proptest::option::of(uuid()),
        vec(text(), 0..2),
        proptest::option::of(vec((text(), proptest::option::of(bytes(6))), 0..2)),
    )
        .prop_map(
            move |(message, tracing_id, warnings, custom_payload)| Envelope {
                tracing_id: if response { tracing_id } else { None },
                warnings: if response && version >= 4 {
                    warnings
                } else {
                    Vec::new()
                },
                custom_payload: if version >= 4 { custom_payload } else { None },
                message,
            },
        )
}
