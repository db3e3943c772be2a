//! Executing DDL: CREATE/ALTER/DROP KEYSPACE, TABLE and TYPE change the shared
//! schema (every node sees the change at once), bump the schema version and push a
//! SCHEMA_CHANGE event, as a Cassandra coordinator does once the change is agreed.

use super::ctx::Ctx;
use super::warnings;
use crate::cql::errors::{error, invalid};
use crate::cql::language::ddl::{parse_ddl, AlterTable, Ddl};
use crate::cql::storage::ring::Replication;
use crate::cql::storage::schema::{
    uuid_from, ColumnDef, ColumnKind, Keyspace, Schema, Table, UserType,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use tidemark_cql::message::{
    error_code as code, ErrorBody, ErrorDetails, Event, ResultBody, SchemaChange, SchemaTarget,
};
use tidemark_cql::ColumnType;

fn announce(ctx: &Ctx<'_>, change: &str, target: SchemaTarget) -> ResultBody {
    let sc = SchemaChange {
        change_type: change.into(),
        target,
    };
    // No receiver is fine: nobody registered for events.
    let _ = ctx.shared.events.send(Event::SchemaChange(sc.clone()));
    ResultBody::SchemaChange(sc)
}

/// The keyspace a statement names, else the connection's (`USE`).
fn keyspace_name(keyspace: Option<String>, ctx: &Ctx<'_>) -> Result<String, ErrorBody> {
    keyspace
        .or_else(|| ctx.keyspace.clone())
        .ok_or_else(|| invalid("No keyspace has been specified."))
}

/// Keyspace `name` of the schema, or Cassandra's error for a missing one.
fn keyspace_mut<'a>(schema: &'a mut Schema, name: &str) -> Result<&'a mut Keyspace, ErrorBody> {
    schema
        .keyspaces
        .get_mut(name)
        .ok_or_else(|| invalid(format!("Keyspace '{name}' doesn't exist")))
}

/// The joined nodes (of datacenter `dc`, when given).
fn nodes_in(ctx: &Ctx<'_>, dc: Option<&str>) -> usize {
    ctx.shared
        .nodes
        .iter()
        .filter(|n| n.joined.load(std::sync::atomic::Ordering::SeqCst))
        .filter(|n| dc.is_none_or(|d| n.dc == d))
        .count()
}

/// Replicas of each token over all datacenters.
fn total_replicas(r: &Replication) -> usize {
    match r {
        Replication::Simple { rf } => *rf,
        Replication::NetworkTopology { dcs } => dcs.values().sum(),
    }
}

pub fn ddl(ctx: &Ctx<'_>, text: &str) -> Result<ResultBody, ErrorBody> {
    // User types known now, for column types that name them.
    let types: BTreeMap<String, BTreeMap<String, ColumnType>> = ctx
        .shared
        .schema()
        .keyspaces
        .values()
        .map(|k| {
            let t = k
                .types
                .values()
                .map(|u| (u.name.clone(), u.column_type()))
                .collect();
            (k.name.clone(), t)
        })
        .collect();
    let current = ctx.keyspace.clone();
    let udts = |ks: Option<&str>, name: &str| {
        let ks = ks.map(str::to_string).or_else(|| current.clone())?;
        types.get(&ks)?.get(name).cloned()
    };
    let d = parse_ddl(text, &udts).map_err(|e| error(code::SYNTAX_ERROR, e))?;
    // Cassandra 5.0.9's texts.
    let exists = |ks: &str, t: &str| ErrorBody {
        code: code::ALREADY_EXISTS,
        message: if t.is_empty() {
            format!("Cannot add existing keyspace \"{ks}\"")
        } else {
            format!("Cannot add already existing table \"{t}\" to keyspace \"{ks}\"")
        }
        .into(),
        details: ErrorDetails::AlreadyExists {
            keyspace: ks.into(),
            table: t.into(),
        },
    };
    // The keyspace (and table) whose prepared statements this change forgets.
    let mut forget: Option<(String, Option<String>)> = None;
    // When not empty, the events to announce instead of the statement's own (an ALTER
    // TYPE's: the types it changed and the tables holding them).
    let mut then: Vec<SchemaTarget> = Vec::new();
    let mut schema = ctx.shared.schema_mut();
    let result = match d {
        Ddl::CreateKeyspace {
            name,
            if_not_exists,
            replication,
            durable_writes,
        } => {
            if schema.keyspaces.contains_key(&name) {
                if if_not_exists {
                    return Ok(ResultBody::Void);
                }
                return Err(exists(&name, ""));
            }
            warnings::replication_factor(&name, &replication, |dc| nodes_in(ctx, dc));
            schema.keyspaces.insert(
                name.clone(),
                Keyspace {
                    name: name.clone(),
                    replication,
                    durable_writes,
                    tables: BTreeMap::new(),
                    types: BTreeMap::new(),
                },
            );
            (
                "CREATED",
                SchemaTarget::Keyspace {
                    keyspace: name.into(),
                },
            )
        }
        Ddl::DropKeyspace { name, if_exists } => {
            let Some(dropped) = schema.keyspaces.remove(&name) else {
                if if_exists {
                    return Ok(ResultBody::Void);
                }
                return Err(error(
                    code::CONFIG_ERROR,
                    format!("Cannot drop non existing keyspace '{name}'."),
                ));
            };
            // Cassandra announces each of the keyspace's tables, then each of its
            // types, as DROPPED before the keyspace itself (seen from 5.0.9 by
            // tests/realdb_fidelity.rs and a cql_raw.py run against the node).
            let tables = dropped.tables.keys().map(|t| SchemaTarget::Table {
                keyspace: name.as_str().into(),
                name: t.as_str().into(),
            });
            let types = dropped.types.keys().map(|t| SchemaTarget::Type {
                keyspace: name.as_str().into(),
                name: t.as_str().into(),
            });
            for target in tables.chain(types) {
                let _ = ctx.shared.events.send(Event::SchemaChange(SchemaChange {
                    change_type: "DROPPED".into(),
                    target,
                }));
            }
            for i in 0..ctx.shared.nodes.len() {
                ctx.shared.store(i).forget(&name, None);
            }
            forget = Some((name.clone(), None));
            (
                "DROPPED",
                SchemaTarget::Keyspace {
                    keyspace: name.into(),
                },
            )
        }
        Ddl::CreateTable {
            keyspace,
            name,
            if_not_exists,
            columns,
            default_ttl,
        } => {
            let ksn = keyspace_name(keyspace, ctx)?;
            let generation = schema.generation;
            let ks = keyspace_mut(&mut schema, &ksn)?;
            if ks.tables.contains_key(&name) {
                if if_not_exists {
                    return Ok(ResultBody::Void);
                }
                return Err(exists(&ksn, &name));
            }
            let id = uuid_from(&format!("{ksn}.{name}#{generation}"));
            ks.tables.insert(
                name.clone(),
                Arc::new(Table {
                    keyspace: ksn.clone(),
                    name: name.clone(),
                    id,
                    columns,
                    default_ttl,
                }),
            );
            (
                "CREATED",
                SchemaTarget::Table {
                    keyspace: ksn.into(),
                    name: name.into(),
                },
            )
        }
        Ddl::DropTable {
            keyspace,
            name,
            if_exists,
        } => {
            let ksn = keyspace_name(keyspace, ctx)?;
            let removed = schema
                .keyspaces
                .get_mut(&ksn)
                .and_then(|k| k.tables.remove(&name));
            if removed.is_none() {
                if if_exists {
                    return Ok(ResultBody::Void);
                }
                return Err(invalid(format!("Table '{ksn}.{name}' doesn't exist")));
            }
            for i in 0..ctx.shared.nodes.len() {
                ctx.shared.store(i).forget(&ksn, Some(&name));
            }
            forget = Some((ksn.clone(), Some(name.clone())));
            (
                "DROPPED",
                SchemaTarget::Table {
                    keyspace: ksn.into(),
                    name: name.into(),
                },
            )
        }
        Ddl::AlterKeyspace {
            name,
            replication,
            durable_writes,
        } => {
            let Some(ks) = schema.keyspaces.get_mut(&name) else {
                return Err(invalid(format!("Keyspace '{name}' doesn't exist")));
            };
            let before = (ks.replication.clone(), ks.durable_writes);
            if let Some(r) = replication {
                ks.replication = r;
            }
            if let Some(d) = durable_writes {
                ks.durable_writes = d;
            }
            // Cassandra validates the resulting replication (warning when it exceeds
            // the nodes), asks for a repair when replicas were added, and answers a
            // change that changes nothing with Void and no event.
            warnings::replication_factor(&name, &ks.replication, |dc| nodes_in(ctx, dc));
            if total_replicas(&ks.replication) > total_replicas(&before.0) {
                warnings::warn(warnings::REPAIR_AFTER_RF_INCREASE);
            }
            if before == (ks.replication.clone(), ks.durable_writes) {
                return Ok(ResultBody::Void);
            }
            (
                "UPDATED",
                SchemaTarget::Keyspace {
                    keyspace: name.into(),
                },
            )
        }
        Ddl::AlterTable {
            keyspace,
            name,
            change,
        } => {
            let ksn = keyspace_name(keyspace, ctx)?;
            let Some(t) = schema
                .keyspaces
                .get_mut(&ksn)
                .and_then(|k| k.tables.get_mut(&name))
            else {
                return Err(invalid(format!("Table '{ksn}.{name}' doesn't exist")));
            };
            let mut nt: Table = t.as_ref().clone();
            match change {
                AlterTable::Add(cols) => {
                    for (col, ty, text, is_static) in cols {
                        if nt.column(&col).is_some() {
                            return Err(invalid(format!(
                                "Invalid column name {col} because it conflicts with an existing column"
                            )));
                        }
                        nt.columns.push(ColumnDef {
                            name: col,
                            ty,
                            type_text: text,
                            kind: if is_static {
                                ColumnKind::Static
                            } else {
                                ColumnKind::Regular
                            },
                            position: -1,
                            descending: false,
                        });
                    }
                    // Keys first, then the rest by name (SELECT * order).
                    let keys = nt
                        .columns
                        .iter()
                        .take_while(|c| {
                            matches!(c.kind, ColumnKind::PartitionKey | ColumnKind::Clustering)
                        })
                        .count();
                    nt.columns[keys..].sort_by(|a, b| a.name.cmp(&b.name));
                }
                AlterTable::Drop(cols) => {
                    for col in &cols {
                        match nt.column(col) {
                            None => {
                                return Err(invalid(format!(
                                    "Column {col} was not found in table {name}"
                                )))
                            }
                            Some(c) if nt.is_key(&c.name) => {
                                return Err(invalid(format!("Cannot drop PRIMARY KEY part {col}")))
                            }
                            Some(_) => {}
                        }
                        nt.columns.retain(|c| &c.name != col);
                    }
                    for i in 0..ctx.shared.nodes.len() {
                        for col in &cols {
                            ctx.shared.store(i).drop_column(&ksn, &name, col);
                        }
                    }
                }
                AlterTable::Options { default_ttl } => {
                    if let Some(ttl) = default_ttl {
                        nt.default_ttl = ttl;
                    }
                }
            }
            // Columns or the default TTL changed: Cassandra's statements of the table
            // are stale (other options leave them).
            if nt.columns != t.columns || nt.default_ttl != t.default_ttl {
                forget = Some((ksn.clone(), Some(name.clone())));
            }
            *t = Arc::new(nt);
            (
                "UPDATED",
                SchemaTarget::Table {
                    keyspace: ksn.into(),
                    name: name.into(),
                },
            )
        }
        Ddl::CreateType {
            keyspace,
            name,
            if_not_exists,
            fields,
        } => {
            let ksn = keyspace_name(keyspace, ctx)?;
            let ks = keyspace_mut(&mut schema, &ksn)?;
            if ks.types.contains_key(&name) {
                if if_not_exists {
                    return Ok(ResultBody::Void);
                }
                return Err(invalid(format!(
                    "A user type of name {ksn}.{name} already exists"
                )));
            }
            ks.types.insert(
                name.clone(),
                UserType {
                    keyspace: ksn.clone(),
                    name: name.clone(),
                    fields,
                },
            );
            (
                "CREATED",
                SchemaTarget::Type {
                    keyspace: ksn.into(),
                    name: name.into(),
                },
            )
        }
        Ddl::DropType {
            keyspace,
            name,
            if_exists,
        } => {
            let ksn = keyspace_name(keyspace, ctx)?;
            let ks = keyspace_mut(&mut schema, &ksn)?;
            let used = ks
                .tables
                .values()
                .any(|t| t.columns.iter().any(|c| c.type_text.contains(&name)));
            if used {
                return Err(invalid(format!(
                    "Cannot drop user type {ksn}.{name} as it is still used"
                )));
            }
            if ks.types.remove(&name).is_none() {
                if if_exists {
                    return Ok(ResultBody::Void);
                }
                return Err(invalid(format!("No user type named {ksn}.{name} exists.")));
            }
            (
                "DROPPED",
                SchemaTarget::Type {
                    keyspace: ksn.into(),
                    name: name.into(),
                },
            )
        }
        Ddl::AlterType {
            keyspace,
            name,
            if_exists,
            change,
        } => {
            let ksn = keyspace_name(keyspace, ctx)?;
            let ks = keyspace_mut(&mut schema, &ksn)?;
            let Some(altered) = super::ddl_type::alter(ks, &name, if_exists, change)? else {
                return Ok(ResultBody::Void);
            };
            // Cassandra announces the altered types by name, this one among them, then
            // the tables.
            let mut types = altered.types;
            types.push(name.clone());
            types.sort();
            for t in types {
                then.push(SchemaTarget::Type {
                    keyspace: ksn.as_str().into(),
                    name: t.into(),
                });
            }
            for t in altered.tables {
                then.push(SchemaTarget::Table {
                    keyspace: ksn.as_str().into(),
                    name: t.into(),
                });
            }
            (
                "UPDATED",
                SchemaTarget::Type {
                    keyspace: ksn.into(),
                    name: name.into(),
                },
            )
        }
    };
    schema.recompute_version();
    drop(schema);
    if let Some((ks, table)) = forget {
        super::invalidate::forget_prepared(ctx, &ks, table.as_deref());
    }
    if then.is_empty() {
        return Ok(announce(ctx, result.0, result.1));
    }
    // The statement's own event is among `then`, in Cassandra's order.
    let own = SchemaChange {
        change_type: result.0.into(),
        target: result.1,
    };
    for target in then {
        // A table whose column types changed: Cassandra forgets its statements too.
        if let SchemaTarget::Table { keyspace, name } = &target {
            super::invalidate::forget_prepared(ctx, keyspace.as_ref(), Some(name.as_ref()));
        }
        let _ = ctx.shared.events.send(Event::SchemaChange(SchemaChange {
            change_type: "UPDATED".into(),
            target,
        }));
    }
    Ok(ResultBody::SchemaChange(own))
}
