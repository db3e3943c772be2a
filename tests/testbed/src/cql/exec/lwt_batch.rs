//! Conditional BATCH: every member on one partition of one table; all conditions are
//! checked against the partition as a Paxos round sees it, and the whole batch is
//! applied (as one update) only if every condition holds. The result is Cassandra's:
//! `[applied]` true, or false with one row per checked row that exists (its primary
//! key and the columns the conditions name; every column with IF [NOT] EXISTS).

use super::ctx::{Bound, Ctx};
use super::lwt::{check_of, holds, paxos_consistency, promise, Check};
use super::modify::serialize;
use super::mutation::build;
use super::read::{current_partition, row_values, sorted_rows};
use super::write::coordinate;
use crate::cql::errors::invalid;
use crate::cql::storage::clock::now_secs;
use crate::cql::storage::schema::{ColumnDef, ColumnKind, Table};
use crate::cql::storage::store::Partition;
use bytes::Bytes;
use std::sync::Arc;
use tidemark_cql::message::{ColumnSpec, ErrorBody, ResultBody, Rows, RowsMetadata};
use tidemark_cql::statement::{using_timestamp, Modification};
use tidemark_cql::ColumnType;

pub fn conditional_batch(
    ctx: &Ctx<'_>,
    members: &[(Modification<'_>, Bound)],
    tables: &[Arc<Table>],
) -> Result<ResultBody, ErrorBody> {
    let t = tables
        .first()
        .ok_or_else(|| invalid("empty batch"))?
        .clone();
    if tables
        .iter()
        .any(|x| x.keyspace != t.keyspace || x.name != t.name)
    {
        return Err(invalid("Batch with conditions cannot span multiple tables"));
    }
    for (m, _) in members {
        let using = match m {
            Modification::Insert(i) => &i.using[..],
            Modification::Update(u) => &u.using[..],
            Modification::Delete(_) => &[][..],
        };
        if using_timestamp(using).is_some()
            || matches!(m, Modification::Delete(d) if d.timestamp.is_some())
        {
            return Err(invalid(
                "Cannot provide custom timestamp for conditional BATCH",
            ));
        }
    }
    let paxos_cl = paxos_consistency(ctx)?;
    let _ballot = serialize();
    let ts = ctx.shared.nodes[ctx.me].next_timestamp();
    let current = |pk: &Bytes| current_partition(ctx.shared, &t, pk);
    let mut merged: Option<(Bytes, Partition)> = None;
    let mut checks = Vec::new();
    for (m, bound) in members {
        for (pk, update) in build(m, &t, bound, ts, ctx.me, &current)? {
            let ck = update.rows.keys().next().cloned().unwrap_or_default();
            let check = match m {
                Modification::Insert(i) if i.if_not_exists => Some(Check::NotExists),
                Modification::Update(u) if u.condition.is_some() => {
                    Some(check_of(u.condition.as_ref()))
                }
                Modification::Delete(d) if d.condition.is_some() => {
                    Some(check_of(d.condition.as_ref()))
                }
                _ => None,
            };
            if let Some(c) = check {
                checks.push((ck, c, bound));
            }
            match &mut merged {
                Some((p, all)) if *p == pk => all.merge(&update),
                Some(_) => {
                    return Err(invalid(
                        "Batch with conditions cannot span multiple partitions",
                    ))
                }
                None => merged = Some((pk, update)),
            }
        }
    }
    let (pk, update) = merged.ok_or_else(|| invalid("empty batch"))?;
    promise(ctx, &t, &pk, paxos_cl)?;
    let now = now_secs();
    let rows = sorted_rows(&t, &current(&pk), now);
    let mut applied = true;
    let mut shown_rows: Vec<Vec<Option<Bytes>>> = Vec::new();
    let mut cond_cols: Vec<String> = Vec::new();
    // Cassandra shows every column once a member says IF [NOT] EXISTS.
    let mut all_columns = false;
    for (ck, check, bound) in &checks {
        let existing = rows.iter().find(|(k, _)| k == ck);
        let values = existing.map(|(k, live)| row_values(&t, &update.key, k, live, now).0);
        let value_of = |c: &ColumnDef| {
            let i = t.columns.iter().position(|x| x.name == c.name)?;
            values.as_ref().and_then(|v| v[i].clone())
        };
        all_columns |= matches!(check, Check::NotExists | Check::Exists);
        applied &= match check {
            Check::NotExists => existing.is_none(),
            Check::Exists => existing.is_some(),
            Check::Columns(conds) => {
                let mut ok = true;
                for cond in *conds {
                    ok &= holds(&t, cond, &value_of, bound)?;
                    let n = cond.target.column().as_str().to_string();
                    if !cond_cols.contains(&n) {
                        cond_cols.push(n);
                    }
                }
                ok
            }
        };
        if let Some(v) = values {
            if !shown_rows.contains(&v) {
                shown_rows.push(v);
            }
        }
    }
    if applied {
        coordinate(ctx.shared, ctx.me, &t, &pk, &update, ctx.consistency)?;
    }
    let spec = |name: &str, ty: &ColumnType| ColumnSpec {
        keyspace: t.keyspace.clone().into(),
        table: t.name.clone().into(),
        name: name.into(),
        ty: ty.clone(),
    };
    let flag = |a: bool| Some(Bytes::from_static(if a { &[1] } else { &[0] }));
    let mut specs = vec![spec("[applied]", &ColumnType::Boolean)];
    let mut out = vec![vec![flag(applied)]];
    if !applied && !shown_rows.is_empty() {
        let shown: Vec<(usize, &ColumnDef)> = t
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                all_columns
                    || matches!(c.kind, ColumnKind::PartitionKey | ColumnKind::Clustering)
                    || cond_cols.contains(&c.name)
            })
            .collect();
        specs.extend(shown.iter().map(|(_, c)| spec(&c.name, &c.ty)));
        out = shown_rows
            .iter()
            .map(|v| {
                let mut r = vec![flag(false)];
                r.extend(shown.iter().map(|(i, _)| v[*i].clone()));
                r
            })
            .collect();
    }
    let metadata = RowsMetadata {
        columns_count: specs.len(),
        global_table_spec: Some((t.keyspace.clone().into(), t.name.clone().into())),
        columns: specs,
        ..RowsMetadata::default()
    };
    Ok(ResultBody::Rows(Rows::from_cells(metadata, &out)))
}
