//! INSERT/UPDATE/DELETE: turn a parsed statement plus bound values into a partition
//! update (row marker, cells, tombstones with the write timestamp and TTL), then
//! coordinate it: send to every live replica and wait for the consistency level.

use super::cell::{Cell, Deletion};
use super::cluster::{now_secs, Shared};
use super::exec::{invalid, Bound};
use super::literal::term_bytes;
use super::murmur3::{partition_key_bytes, token};
use super::schema::{ColumnKind, Table};
use super::storage::{Partition, Row};
use bytes::Bytes;
use tidemark_cql::message::ErrorBody;
use tidemark_cql::statement::{
    using_timestamp, using_ttl, AssignOp, InsertValues, Modification, Relation, Term,
};
use tidemark_cql::{ColumnType, Consistency};

/// A bound term: bytes, null, or unset (leave the column alone).
enum Val {
    Set(Bytes),
    Null,
    Unset,
}

fn resolve(term: &Term<'_>, ty: &ColumnType, bound: &Bound) -> Result<Val, ErrorBody> {
    if let Some(m) = term.as_marker() {
        return match bound.get(m.index) {
            Some(Some(b)) => Ok(Val::Set(b.clone())),
            Some(None) => Ok(Val::Null),
            None => Ok(Val::Unset),
        };
    }
    Ok(match term_bytes(ty, term).map_err(invalid)? {
        Some(b) => Val::Set(b),
        None => Val::Null,
    })
}

fn int_of(
    term: Option<&Term<'_>>,
    bound: &Bound,
    ty: ColumnType,
) -> Result<Option<i64>, ErrorBody> {
    let Some(t) = term else { return Ok(None) };
    Ok(match resolve(t, &ty, bound)? {
        Val::Set(b) => Some(match b.len() {
            8 => i64::from_be_bytes(b[..].try_into().unwrap_or_default()),
            4 => i64::from(i32::from_be_bytes(b[..].try_into().unwrap_or_default())),
            _ => return Err(invalid("invalid TIMESTAMP/TTL value")),
        }),
        _ => None,
    })
}

/// The partition update a statement makes: (keyspace-relative table, serialized
/// partition key, update).
pub fn build(
    m: &Modification<'_>,
    table: &Table,
    bound: &Bound,
    default_ts: i64,
) -> Result<(Bytes, Partition), ErrorBody> {
    let now = now_secs();
    let (using, wheres): (Vec<_>, &[Relation<'_>]) = match m {
        Modification::Insert(i) => (i.using.clone(), &[]),
        Modification::Update(u) => (u.using.clone(), &u.where_clause),
        Modification::Delete(d) => (
            d.timestamp
                .clone()
                .map(tidemark_cql::statement::UsingParam::Timestamp)
                .into_iter()
                .collect(),
            &d.where_clause,
        ),
    };
    let ts = int_of(using_timestamp(&using), bound, ColumnType::BigInt)?.unwrap_or(default_ts);
    let ttl = int_of(using_ttl(&using), bound, ColumnType::Int)?
        .map(|t| t as i32)
        .unwrap_or(table.default_ttl);
    let cell = |v: Bytes| {
        if ttl > 0 {
            Cell::expiring(ts, v, ttl, now)
        } else {
            Cell::live(ts, v)
        }
    };
    // Key column values: from INSERT's column list or from WHERE equalities.
    let mut key_vals: Vec<(String, Bytes)> = Vec::new();
    let mut row = Row::default();
    let col = |n: &str| {
        table
            .column(n)
            .ok_or_else(|| invalid(format!("Undefined column name {n}")))
    };
    let mut key = |name: &str, v: Val| -> Result<(), ErrorBody> {
        match v {
            Val::Set(b) => {
                key_vals.push((name.to_string(), b));
                Ok(())
            }
            _ => Err(invalid(format!("Invalid null value for key column {name}"))),
        }
    };
    match m {
        Modification::Insert(i) => {
            let InsertValues::Columns(cols) = &i.values else {
                return Err(invalid("INSERT JSON is not supported by the testbed yet"));
            };
            row.marker = Some(cell(Bytes::new()));
            for (name, term) in cols {
                let c = col(name.as_str())?;
                let v = resolve(term, &c.ty, bound)?;
                if table.is_key(&c.name) {
                    key(&c.name, v)?;
                } else {
                    match v {
                        Val::Set(b) => {
                            row.cells.insert(c.name.clone(), cell(b));
                        }
                        Val::Null => {
                            row.cells.insert(c.name.clone(), Cell::tombstone(ts, now));
                        }
                        Val::Unset => {}
                    }
                }
            }
        }
        Modification::Update(u) => {
            for a in &u.assignments {
                let c = col(a.column.as_str())?;
                let AssignOp::Set(term) = &a.op else {
                    return Err(invalid(
                        "only `c = value` assignments are supported by the testbed yet",
                    ));
                };
                match resolve(term, &c.ty, bound)? {
                    Val::Set(b) => {
                        row.cells.insert(c.name.clone(), cell(b));
                    }
                    Val::Null => {
                        row.cells.insert(c.name.clone(), Cell::tombstone(ts, now));
                    }
                    Val::Unset => {}
                }
            }
        }
        Modification::Delete(d) => {
            for c in &d.columns {
                let c = col(c.column().as_str())?;
                row.cells.insert(c.name.clone(), Cell::tombstone(ts, now));
            }
        }
    }
    for r in wheres {
        let Some((name, term)) = r.equality() else {
            return Err(invalid(
                "only `column = value` WHERE relations are supported by the testbed yet",
            ));
        };
        let c = col(name.as_str())?;
        if !table.is_key(&c.name) {
            return Err(invalid(format!(
                "Non PRIMARY KEY column {} found in where clause",
                c.name
            )));
        }
        let v = resolve(term, &c.ty, bound)?;
        key(&c.name, v)?;
    }
    let get = |n: &str| {
        key_vals
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    let mut pk_parts = Vec::new();
    for c in table.partition_key() {
        pk_parts.push(
            get(&c.name).ok_or_else(|| {
                invalid(format!("Some partition key parts are missing: {}", c.name))
            })?,
        );
    }
    let mut ck = Vec::new();
    for c in table.clustering() {
        match get(&c.name) {
            Some(v) => ck.push(v),
            None => break,
        }
    }
    let n_ck = table.clustering().count();
    let refs: Vec<&[u8]> = pk_parts.iter().map(|b| &b[..]).collect();
    let pk = Bytes::from(partition_key_bytes(&refs));
    let mut update = Partition {
        key: pk_parts,
        token: token(&pk),
        ..Partition::default()
    };
    let deletion = Deletion {
        timestamp: ts,
        local_deletion_time: now,
    };
    let whole_delete = matches!(m, Modification::Delete(d) if d.columns.is_empty());
    if ck.len() < n_ck {
        if whole_delete && ck.is_empty() {
            update.deletion = Some(deletion);
            return Ok((pk, update));
        }
        return Err(invalid(if whole_delete {
            "clustering range deletions are not supported by the testbed yet".to_string()
        } else {
            "Some clustering keys are missing".to_string()
        }));
    }
    if whole_delete {
        row.deletion = Some(deletion);
    }
    if table.columns.iter().any(|c| c.kind == ColumnKind::Static) {
        tracing::debug!("static columns are stored as regular cells");
    }
    update.rows.insert(ck, row);
    Ok((pk, update))
}

/// Sends `update` to the replicas of its token and waits for `cl` (see
/// `coordinator.rs`: faults, WriteTimeout, hints).
pub fn coordinate(
    shared: &Shared,
    me: usize,
    table: &Table,
    pk: &Bytes,
    update: &Partition,
    cl: Consistency,
) -> Result<(), ErrorBody> {
    super::coordinator::coordinate(shared, me, table, pk, update, cl)
}
