//! Lightweight transactions (`IF NOT EXISTS`, `IF EXISTS`, `IF col op value`): a
//! Paxos round reduced to what a client can observe. Rounds are serialized in the
//! process (one ballot at a time), the condition is evaluated on every live
//! replica's merged copy, a quorum (SERIAL) or local quorum (LOCAL_SERIAL) must be
//! alive, and the result is the `[applied]` row Cassandra returns: `true`, or
//! `false` with the existing row (IF NOT EXISTS) or the condition columns.

use super::ctx::{Bound, Ctx};
use super::modify::serialize;
use super::mutation::{build, resolve, Val};
use super::read::{current_partition, read_partition, row_values, sorted_rows};
use super::write::coordinate;
use crate::cql::errors::invalid;
use crate::cql::storage::clock::now_secs;
use crate::cql::storage::collection;
use crate::cql::storage::order::compare;
use crate::cql::storage::schema::{ColumnDef, Table};
use bytes::Bytes;
use std::cmp::Ordering;
use tidemark_cql::message::{
    error_code as code, ColumnSpec, ErrorBody, ErrorDetails, ResultBody, Rows, RowsMetadata,
};
use tidemark_cql::statement::{
    using_timestamp, ColumnCondition, ColumnRef, Condition, Modification, Operator, Rhs,
};
use tidemark_cql::{ColumnType, Consistency};

/// How a conditional statement decides.
pub(crate) enum Check<'a> {
    NotExists,
    Exists,
    Columns(&'a [ColumnCondition<'a>]),
}

pub fn conditional(
    ctx: &Ctx<'_>,
    t: &Table,
    m: &Modification<'_>,
    bound: &Bound,
) -> Result<ResultBody, ErrorBody> {
    let (check, using) = match m {
        Modification::Insert(i) => (Check::NotExists, &i.using[..]),
        Modification::Update(u) => (check_of(u.condition.as_ref()), &u.using[..]),
        Modification::Delete(d) => (check_of(d.condition.as_ref()), &[][..]),
    };
    if using_timestamp(using).is_some()
        || matches!(m, Modification::Delete(d) if d.timestamp.is_some())
    {
        return Err(invalid(
            "Cannot provide custom timestamp for conditional updates",
        ));
    }
    let serial = paxos_consistency(ctx)?;
    let _ballot = serialize();
    let ts = ctx.shared.nodes[ctx.me].next_timestamp();
    let current = |pk: &Bytes| current_partition(ctx.shared, t, pk);
    let updates = build(m, t, bound, ts, ctx.me, &current)?;
    let [(pk, update)] = &updates[..] else {
        return Err(invalid(
            "IN on the partition key is not supported with conditional updates",
        ));
    };
    promise(ctx, t, pk, serial)?;
    let now = now_secs();
    let cur = current(pk);
    let ck = update.rows.keys().next().cloned().unwrap_or_default();
    let rows = sorted_rows(t, &cur, now);
    let existing = rows.iter().find(|(k, _)| *k == ck).or_else(|| {
        // A partition-level DELETE ... IF EXISTS: any live row counts.
        (update.rows.is_empty()).then(|| rows.first()).flatten()
    });
    let values = existing.map(|(k, live)| row_values(t, &update.key, k, live, now).0);
    let value_of = |c: &ColumnDef| {
        let i = t.columns.iter().position(|x| x.name == c.name)?;
        values.as_ref().and_then(|v| v[i].clone())
    };
    let applied = match &check {
        Check::NotExists => existing.is_none(),
        Check::Exists => existing.is_some(),
        Check::Columns(conds) => {
            let mut ok = true;
            for cond in *conds {
                ok &= holds(t, cond, &value_of, bound)?;
            }
            ok
        }
    };
    if applied {
        coordinate(ctx.shared, ctx.me, t, pk, update, ctx.consistency)?;
    }
    // The result: [applied], then on failure the existing row's columns.
    let spec = |name: &str, ty: &ColumnType| ColumnSpec {
        keyspace: t.keyspace.clone().into(),
        table: t.name.clone().into(),
        name: name.into(),
        ty: ty.clone(),
    };
    let mut specs = vec![spec("[applied]", &ColumnType::Boolean)];
    let mut row = vec![Some(Bytes::from_static(if applied { &[1] } else { &[0] }))];
    if !applied {
        if let Some(v) = &values {
            // The condition columns in the order the IF names them, as Cassandra
            // returns them; readers by position depend on it.
            let shown: Vec<&ColumnDef> = match &check {
                Check::Columns(conds) => {
                    let mut shown: Vec<&ColumnDef> = Vec::new();
                    for x in conds.iter() {
                        let name = x.target.column().as_str();
                        if let Some(c) = t.column(name) {
                            if !shown.iter().any(|s| s.name == c.name) {
                                shown.push(c);
                            }
                        }
                    }
                    shown
                }
                _ => t.columns.iter().collect(),
            };
            for c in shown {
                specs.push(spec(&c.name, &c.ty));
                let i = t.columns.iter().position(|x| x.name == c.name).unwrap_or(0);
                row.push(v[i].clone());
            }
        }
    }
    let metadata = RowsMetadata {
        columns_count: specs.len(),
        global_table_spec: Some((t.keyspace.clone().into(), t.name.clone().into())),
        columns: specs,
        ..RowsMetadata::default()
    };
    Ok(ResultBody::Rows(Rows::from_cells(metadata, &[row])))
}

/// The consistency a Paxos round needs from the serial consistency asked for.
pub(crate) fn paxos_consistency(ctx: &Ctx<'_>) -> Result<Consistency, ErrorBody> {
    match ctx.serial.unwrap_or(Consistency::Serial) {
        Consistency::LocalSerial => Ok(Consistency::LocalQuorum),
        Consistency::Serial => Ok(Consistency::Quorum),
        other => Err(invalid(format!(
            "Invalid consistency for conditional update. Must be one of SERIAL or LOCAL_SERIAL, got {other:?}"
        ))),
    }
}

/// Prepare/promise: enough replicas must answer. An Unavailable names the level the
/// Paxos round needs (QUORUM for SERIAL, LOCAL_QUORUM for LOCAL_SERIAL), as
/// Cassandra 5.0's does.
pub(crate) fn promise(
    ctx: &Ctx<'_>,
    t: &Table,
    pk: &Bytes,
    paxos_cl: Consistency,
) -> Result<(), ErrorBody> {
    read_partition(ctx.shared, ctx.me, t, pk, paxos_cl)?;
    Ok(())
}

pub(crate) fn check_of<'a>(c: Option<&'a Condition<'a>>) -> Check<'a> {
    match c {
        Some(Condition::Columns(v)) => Check::Columns(v),
        _ => Check::Exists,
    }
}

/// Evaluates one `IF` condition against the current value (`None` = null/absent).
pub(crate) fn holds(
    t: &Table,
    cond: &ColumnCondition<'_>,
    value_of: &dyn Fn(&ColumnDef) -> Option<Bytes>,
    bound: &Bound,
) -> Result<bool, ErrorBody> {
    let name = cond.target.column().as_str();
    let c = t
        .column(name)
        .ok_or_else(|| invalid(format!("Undefined column name {name}")))?;
    let (have, ty) = match &cond.target {
        ColumnRef::Column(_) => (value_of(c), c.ty.clone()),
        ColumnRef::Element(_, key) => {
            let ColumnType::Map(kt, vt) = &c.ty else {
                return Err(invalid(
                    "IF on a collection element is supported for maps only",
                ));
            };
            let Val::Set(k) = resolve(key, kt, bound)? else {
                return Err(invalid("Invalid null map key"));
            };
            let have = value_of(c).and_then(|m| {
                let items = collection::split(&m, 2).ok()?;
                items.chunks(2).find(|p| p[0] == k).map(|p| p[1].clone())
            });
            (have, vt.as_ref().clone())
        }
        ColumnRef::Field(..) => return Err(invalid("IF on a UDT field is not supported")),
    };
    let value = |term| -> Result<Option<Bytes>, ErrorBody> {
        Ok(match resolve(term, &ty, bound)? {
            Val::Set(b) => Some(b),
            _ => None,
        })
    };
    let eq = |want: &Option<Bytes>| match (&have, want) {
        (Some(h), Some(w)) => compare(&ty, h, w) == Ordering::Equal,
        (None, None) => true,
        _ => false,
    };
    Ok(match (cond.op, &cond.rhs) {
        (Operator::Eq, Rhs::Term(x)) => eq(&value(x)?),
        (Operator::Neq, Rhs::Term(x)) => !eq(&value(x)?),
        (Operator::In, Rhs::List(xs)) => {
            let mut any = false;
            for x in xs {
                any |= eq(&value(x)?);
            }
            any
        }
        (op @ (Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte), Rhs::Term(x)) => {
            let Some(want) = value(x)? else {
                return Err(invalid(format!(
                    "Invalid comparison with null for operator {op:?}"
                )));
            };
            let Some(h) = &have else { return Ok(false) };
            let o = compare(&ty, h, &want);
            match op {
                Operator::Lt => o == Ordering::Less,
                Operator::Lte => o != Ordering::Greater,
                Operator::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            }
        }
        _ => {
            return Err(ErrorBody {
                code: code::INVALID,
                message: format!("unsupported IF condition on {name}").into(),
                details: ErrorDetails::None,
            })
        }
    })
}
