//! INSERT/UPDATE/DELETE → partition updates: row markers, cells, tombstones,
//! collection elements, counter totals and range deletions, with the write timestamp
//! and TTL. Operations that need the current value (list index/removal, counters)
//! read it through `current`, as Cassandra's read-before-write does.

use super::ctx::Bound;
use super::json::json_columns;
use super::rowop::Op;
use crate::cql::errors::invalid;
use crate::cql::language::literal::term_bytes;
use crate::cql::storage::cell::Deletion;
use crate::cql::storage::clock::now_secs;
use crate::cql::storage::collection::split;
use crate::cql::storage::murmur3::{partition_key_bytes, token};
use crate::cql::storage::schema;
use crate::cql::storage::schema::{ColumnDef, Table};
use crate::cql::storage::store::{Partition, RangeTombstone, Row};
use bytes::Bytes;
use tidemark_cql::message::ErrorBody;
use tidemark_cql::statement::{
    using_timestamp, using_ttl, AssignOp, ColumnRef, InsertValues, Modification, Operator,
    Relation, RelationLhs, Rhs, Term,
};
use tidemark_cql::ColumnType;

/// A bound term: bytes, null, or unset (leave the column alone).
pub enum Val {
    Set(Bytes),
    Null,
    Unset,
}

pub fn resolve(term: &Term<'_>, ty: &ColumnType, bound: &Bound) -> Result<Val, ErrorBody> {
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
        Val::Set(b) => Some(be_int(&b).ok_or_else(|| invalid("invalid TIMESTAMP/TTL value"))?),
        _ => None,
    })
}

pub(crate) fn be_int(b: &[u8]) -> Option<i64> {
    match b.len() {
        8 => Some(i64::from_be_bytes(b.try_into().ok()?)),
        4 => Some(i64::from(i32::from_be_bytes(b.try_into().ok()?))),
        _ => None,
    }
}

/// Reads the current (replica-merged) partition for read-before-write operations.
pub type Current<'a> = &'a dyn Fn(&Bytes) -> Partition;

/// The restriction of one key column: its values (several for IN).
fn key_values(r: &Relation<'_>, c: &ColumnDef, bound: &Bound) -> Result<Vec<Bytes>, ErrorBody> {
    let one = |t: &Term<'_>| match resolve(t, &c.ty, bound)? {
        Val::Set(b) => Ok(b),
        _ => Err(invalid(format!(
            "Invalid null value for key column {}",
            c.name
        ))),
    };
    match (r.op, &r.rhs) {
        (Operator::Eq, Rhs::Term(t)) => Ok(vec![one(t)?]),
        (Operator::In, Rhs::List(ts)) => ts.iter().map(one).collect(),
        (Operator::In, Rhs::Term(t)) => {
            match resolve(t, &ColumnType::List(Box::new(c.ty.clone())), bound)? {
                Val::Set(b) => split(&b, 1).map_err(invalid),
                _ => Err(invalid(format!("Invalid null value for IN on {}", c.name))),
            }
        }
        _ => Err(invalid(format!("unsupported relation on {}", c.name))),
    }
}

fn cartesian(lists: &[Vec<Bytes>]) -> Vec<Vec<Bytes>> {
    let mut out: Vec<Vec<Bytes>> = vec![vec![]];
    for l in lists {
        out = out
            .iter()
            .flat_map(|prefix| {
                l.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push(v.clone());
                    p
                })
            })
            .collect();
    }
    out
}

/// The partition updates a statement makes, one per partition key (several with
/// `IN`): `(serialized partition key, update)`.
pub fn build(
    m: &Modification<'_>,
    table: &Table,
    bound: &Bound,
    default_ts: i64,
    node: usize,
    current: Current<'_>,
) -> Result<Vec<(Bytes, Partition)>, ErrorBody> {
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
    let is_counter = table.columns.iter().any(|c| c.ty == ColumnType::Counter);
    if is_counter && using_timestamp(&using).is_some() {
        return Err(invalid(
            "Cannot provide custom timestamp for counter updates",
        ));
    }
    let ts = int_of(using_timestamp(&using), bound, ColumnType::BigInt)?.unwrap_or(default_ts);
    let ttl = match int_of(using_ttl(&using), bound, ColumnType::Int)? {
        // Cassandra's bounds: 0 (no TTL) to 20 years.
        Some(t) if !(0..=630_720_000).contains(&t) => {
            return Err(invalid(format!(
                "ttl is out of range: {t} (it must be between 0 and 630720000 seconds)"
            )))
        }
        Some(t) => t as i32,
        None => table.default_ttl,
    };
    let col = |n: &str| {
        table
            .column(n)
            .ok_or_else(|| invalid(format!("Undefined column name {n}")))
    };
    // Key restrictions by column name, and an optional clustering range (DELETE).
    let mut keys: Vec<(String, Vec<Bytes>)> = Vec::new();
    let mut values: Vec<(&ColumnDef, Val)> = Vec::new();
    let mut lower: Option<(String, Bytes, bool)> = None;
    let mut upper: Option<(String, Bytes, bool)> = None;
    if let Modification::Insert(i) = m {
        let cols: Vec<(String, Val)> = match &i.values {
            InsertValues::Columns(cols) => {
                let mut v = Vec::new();
                for (name, term) in cols {
                    let c = col(name.as_str())?;
                    v.push((c.name.clone(), resolve(term, &c.ty, bound)?));
                }
                v
            }
            InsertValues::Json { value, default } => {
                let Val::Set(text) = resolve(value, &ColumnType::Varchar, bound)? else {
                    return Err(invalid("Got null for INSERT JSON values"));
                };
                let unset_missing =
                    matches!(default, Some(tidemark_cql::statement::JsonDefault::Unset));
                json_columns(table, &text, unset_missing).map_err(invalid)?
            }
        };
        for (name, v) in cols {
            let c = col(&name)?;
            if table.is_key(&c.name) {
                match v {
                    Val::Set(b) => keys.push((c.name.clone(), vec![b])),
                    _ => {
                        return Err(invalid(format!(
                            "Invalid null value for key column {}",
                            c.name
                        )))
                    }
                }
            } else {
                values.push((c, v));
            }
        }
    }
    for r in wheres {
        let RelationLhs::Column(name) = &r.lhs else {
            return Err(invalid("unsupported WHERE relation in a modification"));
        };
        let c = col(name.as_str())?;
        if !table.is_key(&c.name) {
            return Err(invalid(format!(
                "Non PRIMARY KEY column {} found in where clause",
                c.name
            )));
        }
        match r.op {
            Operator::Eq | Operator::In => keys.push((c.name.clone(), key_values(r, c, bound)?)),
            Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte
                if matches!(m, Modification::Delete(_)) =>
            {
                let Rhs::Term(t) = &r.rhs else {
                    return Err(invalid("unsupported range relation"));
                };
                let Val::Set(b) = resolve(t, &c.ty, bound)? else {
                    return Err(invalid(format!("Invalid null value for {}", c.name)));
                };
                let incl = matches!(r.op, Operator::Gte | Operator::Lte);
                if matches!(r.op, Operator::Gt | Operator::Gte) {
                    lower = Some((c.name.clone(), b, incl));
                } else {
                    upper = Some((c.name.clone(), b, incl));
                }
            }
            _ => {
                return Err(invalid(format!(
                    "unsupported relation on {} in a modification",
                    c.name
                )))
            }
        }
    }
    let get = |n: &str| keys.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut pk_lists = Vec::new();
    for c in table.partition_key() {
        pk_lists.push(
            get(&c.name).ok_or_else(|| {
                invalid(format!("Some partition key parts are missing: {}", c.name))
            })?,
        );
    }
    let cks: Vec<&ColumnDef> = table.clustering().collect();
    let mut ck_lists = Vec::new();
    for c in &cks {
        match get(&c.name) {
            Some(v) => ck_lists.push(v),
            None => break,
        }
    }
    let range_col = lower.as_ref().or(upper.as_ref()).map(|r| r.0.clone());
    if let Some(rc) = &range_col {
        let expected = cks.get(ck_lists.len()).map(|c| c.name.as_str());
        if expected != Some(rc.as_str())
            || upper.as_ref().is_some_and(|u| &u.0 != rc)
            || lower.as_ref().is_some_and(|l| &l.0 != rc)
        {
            return Err(invalid(
                "A range deletion must restrict the clustering column after the equalities",
            ));
        }
    }
    let whole_delete = matches!(m, Modification::Delete(d) if d.columns.is_empty());
    let partial = ck_lists.len() < cks.len();
    let is_static = |n: &str| {
        table
            .column(n)
            .is_some_and(|c| c.kind == schema::ColumnKind::Static)
    };
    // Writes of static columns only need no clustering key: they go to the static row.
    let statics_only = match m {
        Modification::Insert(_) => {
            !values.is_empty() && values.iter().all(|(c, _)| is_static(&c.name))
        }
        Modification::Update(u) => u.assignments.iter().all(|a| is_static(a.column.as_str())),
        Modification::Delete(d) => {
            !d.columns.is_empty() && d.columns.iter().all(|c| is_static(c.column().as_str()))
        }
    };
    let static_row_write = partial && ck_lists.is_empty() && statics_only && !cks.is_empty();
    if partial && !whole_delete && !static_row_write {
        // Cassandra names every clustering column left unrestricted.
        let missing: Vec<&str> = cks
            .iter()
            .filter(|c| get(&c.name).is_none())
            .map(|c| c.name.as_str())
            .collect();
        return Err(invalid(format!(
            "Some clustering keys are missing: {}",
            missing.join(", ")
        )));
    }
    if range_col.is_some() && !whole_delete {
        return Err(invalid("Range deletions cannot name columns"));
    }
    let mut out = Vec::new();
    for pk_parts in cartesian(&pk_lists) {
        let refs: Vec<&[u8]> = pk_parts.iter().map(|b| &b[..]).collect();
        let pk = Bytes::from(partition_key_bytes(&refs));
        let mut update = Partition {
            key: pk_parts.clone(),
            token: token(&pk),
            ..Partition::default()
        };
        let deletion = Deletion {
            timestamp: ts,
            local_deletion_time: now,
        };
        let needs_read = is_counter
            || matches!(m, Modification::Update(u) if u.assignments.iter().any(|a| matches!(a.op, AssignOp::Subtract(_) | AssignOp::SetElement { .. })))
            || matches!(m, Modification::Delete(d) if d.columns.iter().any(|c| matches!(c, ColumnRef::Element(..))));
        let cur = if needs_read { Some(current(&pk)) } else { None };
        for ck in cartesian(&ck_lists) {
            if whole_delete && partial && !static_row_write {
                if ck.is_empty() && range_col.is_none() {
                    update.deletion = Some(deletion);
                } else {
                    update.ranges.push(RangeTombstone {
                        prefix: ck.clone(),
                        lower: lower.as_ref().map(|l| (l.1.clone(), l.2)),
                        upper: upper.as_ref().map(|u| (u.1.clone(), u.2)),
                        ty: cks.get(ck.len()).map_or(ColumnType::Blob, |c| c.ty.clone()),
                        deletion,
                    });
                }
                continue;
            }
            let live = cur
                .as_ref()
                .and_then(|p| p.live_view(now).into_iter().find(|(k, _)| *k == ck))
                .map(|(_, r)| r)
                .unwrap_or_default();
            let op = Op {
                ts,
                ttl,
                now,
                node,
                bound,
                current: &live,
            };
            let mut row = Row::default();
            match m {
                Modification::Insert(_) => {
                    if is_counter {
                        return Err(invalid("INSERT statements are not allowed on counter tables, use UPDATE instead"));
                    }
                    if !static_row_write {
                        row.marker = Some(op.cell(Bytes::new()));
                    }
                    for (c, v) in &values {
                        let v = match v {
                            Val::Set(b) => Val::Set(b.clone()),
                            Val::Null => Val::Null,
                            Val::Unset => Val::Unset,
                        };
                        op.set(&mut row, c, v)?;
                    }
                }
                Modification::Update(u) => {
                    for a in &u.assignments {
                        let c = col(a.column.as_str())?;
                        if table.is_key(&c.name) {
                            return Err(invalid(format!(
                                "PRIMARY KEY part {} found in SET part",
                                c.name
                            )));
                        }
                        op.assign(&mut row, c, &a.op)?;
                    }
                }
                Modification::Delete(d) => {
                    for r in &d.columns {
                        op.delete(&mut row, col(r.column().as_str())?, r)?;
                    }
                    if d.columns.is_empty() {
                        row.deletion = Some(deletion);
                    }
                }
            }
            // Static cells live in the partition's static row (empty clustering).
            if !ck.is_empty() {
                let mut st = Row::default();
                row.cells.retain(|n, c| {
                    let keep = !is_static(n);
                    if !keep {
                        st.cells.insert(n.clone(), c.clone());
                    }
                    keep
                });
                let names: Vec<String> = row
                    .complex
                    .keys()
                    .filter(|n| is_static(n))
                    .cloned()
                    .collect();
                for n in names {
                    if let Some(cx) = row.complex.remove(&n) {
                        st.complex.insert(n, cx);
                    }
                }
                if st != Row::default() {
                    update.rows.insert(Vec::new(), st);
                }
            }
            update.rows.insert(ck, row);
        }
        out.push((pk, update));
    }
    Ok(out)
}

#[cfg(test)]
#[path = "mutation_tests.rs"]
mod tests;
