//! The system tables drivers read to discover the cluster and its schema:
//! `system.local`, `system.peers`, `system.peers_v2`, the `system_schema` tables and
//! (empty) `system_virtual_schema` tables, with Cassandra 4.1's columns and types.

use super::read::Materialized;
use crate::cql::cluster::state::{NodeState, Shared};
use crate::cql::storage::schema;
use crate::cql::storage::schema::Schema;
use bytes::Bytes;
use std::net::IpAddr;
use tidemark_cql::{ColumnType as T, Value};

pub const RELEASE_VERSION: &str = "4.1.5";
pub const CQL_VERSION: &str = "3.4.6";

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn set_text(v: &[String]) -> Value {
    Value::Set(v.iter().map(|s| text(s)).collect())
}

fn map_text(v: &[(String, String)]) -> Value {
    Value::Map(v.iter().map(|(k, x)| (text(k), text(x))).collect())
}

fn map_tt() -> T {
    T::Map(Box::new(T::Varchar), Box::new(T::Varchar))
}

fn list_t() -> T {
    T::List(Box::new(T::Varchar))
}

fn ser(v: &Value) -> Option<Bytes> {
    match v {
        Value::Null => None,
        v => {
            let mut out = Vec::new();
            v.encode(&mut out);
            Some(Bytes::from(out))
        }
    }
}

fn table(cols: &[(&str, T)], rows: Vec<Vec<Value>>) -> Materialized {
    Materialized {
        columns: cols
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect(),
        rows: rows.iter().map(|r| r.iter().map(ser).collect()).collect(),
        ..Materialized::default()
    }
}

fn tokens(n: &NodeState) -> Value {
    set_text(&n.tokens.iter().map(|t| t.to_string()).collect::<Vec<_>>())
}

fn inet(n: &NodeState) -> Value {
    Value::Inet(n.addr.ip())
}

/// Rows of a system table as seen from node `me`, or `None` if there is no such table.
pub fn system_table(shared: &Shared, me: usize, ks: &str, name: &str) -> Option<Materialized> {
    let schema = shared.schema();
    let version = Value::Uuid(schema.version);
    let node = &shared.nodes[me];
    Some(match (ks, name) {
        ("system", "local") => table(
            &[
                ("key", T::Varchar),
                ("bootstrapped", T::Varchar),
                ("broadcast_address", T::Inet),
                ("broadcast_port", T::Int),
                ("cluster_name", T::Varchar),
                ("cql_version", T::Varchar),
                ("data_center", T::Varchar),
                ("gossip_generation", T::Int),
                ("host_id", T::Uuid),
                ("listen_address", T::Inet),
                ("listen_port", T::Int),
                ("native_protocol_version", T::Varchar),
                ("partitioner", T::Varchar),
                ("rack", T::Varchar),
                ("release_version", T::Varchar),
                ("rpc_address", T::Inet),
                ("rpc_port", T::Int),
                ("schema_version", T::Uuid),
                ("tokens", T::Set(Box::new(T::Varchar))),
                ("truncated_at", T::Map(Box::new(T::Uuid), Box::new(T::Blob))),
            ],
            vec![vec![
                text("local"),
                text("COMPLETED"),
                inet(node),
                Value::Int(7000),
                text(&shared.config.cluster_name),
                text(CQL_VERSION),
                text(&node.dc),
                Value::Int(1),
                Value::Uuid(node.host_id),
                inet(node),
                Value::Int(7000),
                text("5"),
                text("org.apache.cassandra.dht.Murmur3Partitioner"),
                text(&node.rack),
                text(RELEASE_VERSION),
                inet(node),
                Value::Int(i32::from(node.addr.port())),
                version,
                tokens(node),
                Value::Null,
            ]],
        ),
        ("system", "peers") => table(
            &[
                ("peer", T::Inet),
                ("data_center", T::Varchar),
                ("host_id", T::Uuid),
                ("preferred_ip", T::Inet),
                ("rack", T::Varchar),
                ("release_version", T::Varchar),
                ("rpc_address", T::Inet),
                ("schema_version", T::Uuid),
                ("tokens", T::Set(Box::new(T::Varchar))),
            ],
            peers(shared, me)
                .map(|n| {
                    vec![
                        inet(n),
                        text(&n.dc),
                        Value::Uuid(n.host_id),
                        Value::Null,
                        text(&n.rack),
                        text(RELEASE_VERSION),
                        inet(n),
                        Value::Uuid(schema.version),
                        tokens(n),
                    ]
                })
                .collect(),
        ),
        ("system", "peers_v2") => table(
            &[
                ("peer", T::Inet),
                ("peer_port", T::Int),
                ("data_center", T::Varchar),
                ("host_id", T::Uuid),
                ("native_address", T::Inet),
                ("native_port", T::Int),
                ("preferred_ip", T::Inet),
                ("preferred_port", T::Int),
                ("rack", T::Varchar),
                ("release_version", T::Varchar),
                ("schema_version", T::Uuid),
                ("tokens", T::Set(Box::new(T::Varchar))),
            ],
            peers(shared, me)
                .map(|n| {
                    vec![
                        inet(n),
                        Value::Int(7000),
                        text(&n.dc),
                        Value::Uuid(n.host_id),
                        inet(n),
                        Value::Int(i32::from(n.addr.port())),
                        Value::Null,
                        Value::Null,
                        text(&n.rack),
                        text(RELEASE_VERSION),
                        Value::Uuid(schema.version),
                        tokens(n),
                    ]
                })
                .collect(),
        ),
        ("system_schema", t) => schema_table(&schema, t)?,
        ("system_virtual_schema", "keyspaces") => table(&[("keyspace_name", T::Varchar)], vec![]),
        ("system_virtual_schema", "tables") => table(
            &[
                ("keyspace_name", T::Varchar),
                ("table_name", T::Varchar),
                ("comment", T::Varchar),
            ],
            vec![],
        ),
        ("system_virtual_schema", "columns") => table(&column_cols(), vec![]),
        _ => return None,
    })
}

fn peers(shared: &Shared, me: usize) -> impl Iterator<Item = &NodeState> {
    shared
        .nodes
        .iter()
        .filter(move |n| n.index != me && n.joined.load(std::sync::atomic::Ordering::SeqCst))
        .map(|n| n.as_ref())
}

fn column_cols() -> Vec<(&'static str, T)> {
    vec![
        ("keyspace_name", T::Varchar),
        ("table_name", T::Varchar),
        ("column_name", T::Varchar),
        ("clustering_order", T::Varchar),
        ("column_name_bytes", T::Blob),
        ("kind", T::Varchar),
        ("position", T::Int),
        ("type", T::Varchar),
    ]
}

/// Cassandra 5.0.9's own keyspaces as `system_schema.keyspaces` lists them (the node
/// local ones with LocalStrategy, the replicated ones with the replication factors
/// of a fresh cluster); drivers put them in their schema metadata.
const SYSTEM_KEYSPACES: &[(&str, Option<usize>)] = &[
    ("system", None),
    ("system_auth", Some(1)),
    ("system_distributed", Some(3)),
    ("system_schema", None),
    ("system_traces", Some(2)),
];

/// `system_schema.keyspaces`: the system keyspaces and the user ones, in token order
/// of their names (the partition key) as Cassandra returns them.
fn keyspace_rows(schema: &Schema) -> Vec<Vec<Value>> {
    let class = |c: &str| {
        (
            "class".to_string(),
            format!("org.apache.cassandra.locator.{c}"),
        )
    };
    let mut rows: Vec<(String, Vec<Value>)> = SYSTEM_KEYSPACES
        .iter()
        .map(|(name, rf)| {
            let replication = match rf {
                None => vec![class("LocalStrategy")],
                Some(rf) => vec![
                    class("SimpleStrategy"),
                    ("replication_factor".to_string(), rf.to_string()),
                ],
            };
            let row = vec![text(name), Value::Boolean(true), map_text(&replication)];
            (name.to_string(), row)
        })
        .collect();
    rows.extend(schema.keyspaces.values().map(|k| {
        let row = vec![
            text(&k.name),
            Value::Boolean(k.durable_writes),
            map_text(&k.replication_map()),
        ];
        (k.name.clone(), row)
    }));
    rows.sort_by_key(|(name, _)| crate::cql::storage::murmur3::token(name.as_bytes()));
    rows.into_iter().map(|(_, row)| row).collect()
}

fn schema_table(schema: &Schema, name: &str) -> Option<Materialized> {
    let kss = || schema.keyspaces.values();
    let tables = || kss().flat_map(|k| k.tables.values());
    Some(match name {
        "keyspaces" => table(
            &[
                ("keyspace_name", T::Varchar),
                ("durable_writes", T::Boolean),
                ("replication", map_tt()),
            ],
            keyspace_rows(schema),
        ),
        "tables" => table(
            &[
                ("keyspace_name", T::Varchar),
                ("table_name", T::Varchar),
                ("additional_write_policy", T::Varchar),
                ("allow_auto_snapshot", T::Boolean),
                ("bloom_filter_fp_chance", T::Double),
                ("caching", map_tt()),
                ("cdc", T::Boolean),
                ("comment", T::Varchar),
                ("compaction", map_tt()),
                ("compression", map_tt()),
                ("crc_check_chance", T::Double),
                ("dclocal_read_repair_chance", T::Double),
                ("default_time_to_live", T::Int),
                (
                    "extensions",
                    T::Map(Box::new(T::Varchar), Box::new(T::Blob)),
                ),
                ("flags", T::Set(Box::new(T::Varchar))),
                ("gc_grace_seconds", T::Int),
                ("id", T::Uuid),
                ("incremental_backups", T::Boolean),
                ("max_index_interval", T::Int),
                ("memtable", T::Varchar),
                ("memtable_flush_period_in_ms", T::Int),
                ("min_index_interval", T::Int),
                ("read_repair", T::Varchar),
                ("read_repair_chance", T::Double),
                ("speculative_retry", T::Varchar),
            ],
            tables()
                .map(|t| {
                    let m = |v: &[(&str, &str)]| {
                        map_text(
                            &v.iter()
                                .map(|(a, b)| (a.to_string(), b.to_string()))
                                .collect::<Vec<_>>(),
                        )
                    };
                    vec![
                        text(&t.keyspace),
                        text(&t.name),
                        text("99p"),
                        Value::Boolean(true),
                        Value::Double(0.01),
                        m(&[("keys", "ALL"), ("rows_per_partition", "NONE")]),
                        Value::Boolean(false),
                        text(""),
                        m(&[
                            (
                                "class",
                                "org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy",
                            ),
                            ("max_threshold", "32"),
                            ("min_threshold", "4"),
                        ]),
                        m(&[
                            ("chunk_length_in_kb", "16"),
                            ("class", "org.apache.cassandra.io.compress.LZ4Compressor"),
                        ]),
                        Value::Double(1.0),
                        Value::Double(0.0),
                        Value::Int(t.default_ttl),
                        Value::Map(vec![]),
                        set_text(&if super::modify::is_counter_table(t) {
                            vec!["compound".to_string(), "counter".to_string()]
                        } else {
                            vec!["compound".to_string()]
                        }),
                        Value::Int(864000),
                        Value::Uuid(t.id),
                        Value::Boolean(true),
                        Value::Int(2048),
                        text("default"),
                        Value::Int(0),
                        Value::Int(128),
                        text("BLOCKING"),
                        Value::Double(0.0),
                        text("99p"),
                    ]
                })
                .collect(),
        ),
        "columns" => table(
            &column_cols(),
            tables()
                .flat_map(|t| {
                    // column_name is the table's clustering column: rows by name.
                    let mut cols: Vec<_> = t.columns.iter().collect();
                    cols.sort_by(|a, b| a.name.cmp(&b.name));
                    cols.into_iter().map(|c| {
                        let order = match c.kind {
                            schema::ColumnKind::Clustering if c.descending => "desc",
                            schema::ColumnKind::Clustering => "asc",
                            _ => "none",
                        };
                        vec![
                            text(&t.keyspace),
                            text(&t.name),
                            text(&c.name),
                            text(order),
                            Value::Blob(Bytes::from(c.name.clone().into_bytes())),
                            text(c.kind.name()),
                            Value::Int(c.position),
                            text(&c.type_text),
                        ]
                    })
                })
                .collect(),
        ),
        "types" => table(
            &[
                ("keyspace_name", T::Varchar),
                ("type_name", T::Varchar),
                ("field_names", list_t()),
                ("field_types", list_t()),
            ],
            kss()
                .flat_map(|k| k.types.values())
                .map(|u| {
                    let texts = |f: &dyn Fn(&(String, T, String)) -> String| {
                        Value::List(u.fields.iter().map(|x| text(&f(x))).collect())
                    };
                    vec![
                        text(&u.keyspace),
                        text(&u.name),
                        texts(&|x| x.0.clone()),
                        texts(&|x| x.2.clone()),
                    ]
                })
                .collect(),
        ),
        "functions" => table(
            &[
                ("keyspace_name", T::Varchar),
                ("function_name", T::Varchar),
                ("argument_types", list_t()),
                ("argument_names", list_t()),
                ("body", T::Varchar),
                ("called_on_null_input", T::Boolean),
                ("language", T::Varchar),
                ("return_type", T::Varchar),
            ],
            vec![],
        ),
        "aggregates" => table(
            &[
                ("keyspace_name", T::Varchar),
                ("aggregate_name", T::Varchar),
                ("argument_types", list_t()),
                ("final_func", T::Varchar),
                ("initcond", T::Varchar),
                ("return_type", T::Varchar),
                ("state_func", T::Varchar),
                ("state_type", T::Varchar),
            ],
            vec![],
        ),
        "triggers" => table(
            &[
                ("keyspace_name", T::Varchar),
                ("table_name", T::Varchar),
                ("trigger_name", T::Varchar),
                ("options", map_tt()),
            ],
            vec![],
        ),
        "indexes" => table(
            &[
                ("keyspace_name", T::Varchar),
                ("table_name", T::Varchar),
                ("index_name", T::Varchar),
                ("kind", T::Varchar),
                ("options", map_tt()),
            ],
            vec![],
        ),
        "views" => table(
            &[
                ("keyspace_name", T::Varchar),
                ("view_name", T::Varchar),
                ("base_table_id", T::Uuid),
                ("base_table_name", T::Varchar),
                ("include_all_columns", T::Boolean),
                ("where_clause", T::Varchar),
            ],
            vec![],
        ),
        _ => return None,
    })
}

/// The address drivers should use for a node (what `rpc_address` says).
pub fn node_ip(n: &NodeState) -> IpAddr {
    n.addr.ip()
}
