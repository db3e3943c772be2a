//! SELECT execution: materialize the table's rows (system tables from cluster state;
//! user tables by reading the partition from enough replicas for the consistency
//! level and reconciling their copies), then filter, project and limit.

use super::cell::Cell;
use super::cluster::{now_secs, Shared};
use super::consistency::{block_for, check_available, ReplicaInfo};
use super::exec::{cl_error, invalid, Bound};
use super::literal::{lit_bytes, Lit};
use super::murmur3::{partition_key_bytes, token};
use super::schema::{ColumnKind, Table};
use super::select::{Op, SelectStmt, Selector};
use super::storage::Partition;
use bytes::Bytes;
use std::cmp::Ordering;
use tidemark_cql::message::{ColumnSpec, ErrorBody, ResultBody, Rows, RowsMetadata};
use tidemark_cql::{ColumnType, Consistency};

/// Write time and remaining TTL of a cell.
pub type CellMeta = (i64, Option<i32>);

/// Rows with typed columns; `meta` (user tables only) holds each cell's write time
/// and remaining TTL for `WRITETIME()`/`TTL()`.
#[derive(Debug, Clone, Default)]
pub struct Materialized {
    pub columns: Vec<(String, ColumnType)>,
    pub rows: Vec<Vec<Option<Bytes>>>,
    pub meta: Vec<Vec<Option<CellMeta>>>,
}

fn cmp_typed(ty: &ColumnType, a: &[u8], b: &[u8]) -> Ordering {
    use ColumnType as T;
    let int = |x: &[u8]| {
        let mut v: i64 = if x.first().is_some_and(|f| f & 0x80 != 0) {
            -1
        } else {
            0
        };
        for byte in x {
            v = (v << 8) | i64::from(*byte);
        }
        v
    };
    match ty.effective() {
        T::Int | T::BigInt | T::SmallInt | T::TinyInt | T::Timestamp | T::Counter | T::Varint => {
            int(a).cmp(&int(b))
        }
        _ => a.cmp(b),
    }
}

/// Result columns for a selection over `cols` (also the Prepared result metadata).
pub fn result_columns(
    stmt: &SelectStmt,
    ks: &str,
    table: &str,
    cols: &[(String, ColumnType)],
) -> Result<Vec<ColumnSpec>, String> {
    let spec = |name: &str, ty: &ColumnType| ColumnSpec {
        keyspace: ks.into(),
        table: table.into(),
        name: name.into(),
        ty: ty.clone(),
    };
    let find = |c: &str| {
        cols.iter()
            .find(|(n, _)| n == c)
            .ok_or_else(|| format!("Undefined column name {c} in table {ks}.{table}"))
    };
    let mut out = Vec::new();
    for (sel, alias) in &stmt.selectors {
        let name = |d: String| alias.clone().unwrap_or(d);
        match sel {
            Selector::Star => out.extend(cols.iter().map(|(n, t)| spec(n, t))),
            Selector::Column(c) => out.push(spec(&name(c.clone()), &find(c)?.1)),
            Selector::WriteTime(c) => {
                find(c)?;
                out.push(spec(&name(format!("writetime({c})")), &ColumnType::BigInt))
            }
            Selector::Ttl(c) => {
                find(c)?;
                out.push(spec(&name(format!("ttl({c})")), &ColumnType::Int))
            }
            Selector::CountStar => out.push(spec(&name("count".into()), &ColumnType::BigInt)),
        }
    }
    Ok(out)
}

fn bind_lit(l: &Lit, ty: &ColumnType, bound: &Bound) -> Result<Option<Bytes>, ErrorBody> {
    match l {
        Lit::Marker(i, _) => Ok(bound.get(*i).flatten()),
        l => lit_bytes(ty, l).map_err(invalid),
    }
}

/// Runs a SELECT against materialized rows (filter, project, limit).
pub fn finish(
    stmt: &SelectStmt,
    ks: &str,
    table: &str,
    m: Materialized,
    bound: &Bound,
) -> Result<ResultBody, ErrorBody> {
    let specs = result_columns(stmt, ks, table, &m.columns).map_err(invalid)?;
    let mut keep: Vec<usize> = Vec::new();
    'rows: for (ri, row) in m.rows.iter().enumerate() {
        for w in &stmt.wheres {
            let Some(ci) = m.columns.iter().position(|(n, _)| *n == w.column) else {
                return Err(invalid(format!("Undefined column name {}", w.column)));
            };
            let ty = &m.columns[ci].1;
            let have = row[ci].as_deref();
            let mut any = false;
            for v in &w.values {
                let want = bind_lit(v, ty, bound)?;
                let ord = match (have, want.as_deref()) {
                    (Some(h), Some(x)) => cmp_typed(ty, h, x),
                    _ => continue,
                };
                any |= match w.op {
                    Op::Eq | Op::In => ord == Ordering::Equal,
                    Op::Lt => ord == Ordering::Less,
                    Op::Le => ord != Ordering::Greater,
                    Op::Gt => ord == Ordering::Greater,
                    Op::Ge => ord != Ordering::Less,
                };
            }
            if !any {
                continue 'rows;
            }
        }
        keep.push(ri);
    }
    if let Some(l) = &stmt.limit {
        let n = bind_lit(l, &ColumnType::Int, bound)?
            .and_then(|b| <[u8; 4]>::try_from(&b[..]).ok())
            .map(i32::from_be_bytes)
            .unwrap_or(i32::MAX);
        keep.truncate(usize::try_from(n).unwrap_or(0));
    }
    let col = |c: &str| m.columns.iter().position(|(n, _)| n == c).unwrap_or(0);
    let mut out_rows = Vec::new();
    if stmt
        .selectors
        .iter()
        .any(|(s, _)| *s == Selector::CountStar)
    {
        let n = keep.len() as i64;
        out_rows.push(vec![Some(Bytes::copy_from_slice(&n.to_be_bytes()))]);
    } else {
        for ri in keep {
            let mut row = Vec::new();
            for (sel, _) in &stmt.selectors {
                let meta = |c: &str| m.meta.get(ri).and_then(|r| r[col(c)]);
                match sel {
                    Selector::Star => row.extend(m.rows[ri].iter().cloned()),
                    Selector::Column(c) => row.push(m.rows[ri][col(c)].clone()),
                    Selector::WriteTime(c) => {
                        row.push(meta(c).map(|(ts, _)| Bytes::copy_from_slice(&ts.to_be_bytes())))
                    }
                    Selector::Ttl(c) => row.push(
                        meta(c)
                            .and_then(|(_, t)| t)
                            .map(|t| Bytes::copy_from_slice(&t.to_be_bytes())),
                    ),
                    Selector::CountStar => {}
                }
            }
            out_rows.push(row);
        }
    }
    let metadata = RowsMetadata {
        columns_count: specs.len(),
        global_table_spec: Some((ks.into(), table.into())),
        columns: specs,
        ..RowsMetadata::default()
    };
    Ok(ResultBody::Rows(Rows::from_cells(metadata, &out_rows)))
}

/// Reads the partitions a SELECT on a user table needs and materializes their rows.
pub fn materialize_user(
    shared: &Shared,
    me: usize,
    table: &Table,
    stmt: &SelectStmt,
    bound: &Bound,
    cl: Consistency,
) -> Result<Materialized, ErrorBody> {
    let pk_cols: Vec<_> = table.partition_key().collect();
    // Partition keys: from `=`/IN on every key column, else a full scan.
    let mut keys: Vec<Vec<Bytes>> = vec![vec![]];
    let mut restricted = true;
    for c in &pk_cols {
        let Some(w) = stmt
            .wheres
            .iter()
            .find(|w| w.column == c.name && matches!(w.op, Op::Eq | Op::In))
        else {
            restricted = false;
            break;
        };
        let mut next = Vec::new();
        for v in &w.values {
            let b = bind_lit(v, &c.ty, bound)?.ok_or_else(|| {
                invalid(format!("Invalid null value for partition key {}", c.name))
            })?;
            for k in &keys {
                let mut k = k.clone();
                k.push(b.clone());
                next.push(k);
            }
        }
        keys = next;
    }
    if !restricted {
        let mut all: Vec<(i64, Bytes)> = Vec::new();
        for i in 0..shared.nodes.len() {
            for pk in shared.store(i).partition_keys(&table.keyspace, &table.name) {
                all.push((token(&pk), pk));
            }
        }
        all.sort();
        all.dedup();
        keys = all
            .into_iter()
            .filter_map(|(_, pk)| {
                (0..shared.nodes.len()).find_map(|i| {
                    shared
                        .store(i)
                        .partition(&table.keyspace, &table.name, &pk)
                        .map(|p| p.key.clone())
                })
            })
            .collect();
    }
    let schema = shared.schema();
    let ks = schema
        .keyspaces
        .get(&table.keyspace)
        .ok_or_else(|| invalid(format!("Keyspace {} does not exist", table.keyspace)))?;
    let now = now_secs();
    let mut m = Materialized {
        columns: table
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.ty.clone()))
            .collect(),
        ..Materialized::default()
    };
    for key in keys {
        let refs: Vec<&[u8]> = key.iter().map(|k| &k[..]).collect();
        let pk = Bytes::from(partition_key_bytes(&refs));
        let tok = token(&pk);
        let replicas = shared.ring.replicas(tok, &ks.replication);
        let infos: Vec<ReplicaInfo> = replicas
            .iter()
            .map(|r| ReplicaInfo {
                node: *r,
                dc: shared.nodes[*r].dc.clone(),
                alive: shared.nodes[*r]
                    .alive
                    .load(std::sync::atomic::Ordering::Relaxed),
            })
            .collect();
        let dcs: Vec<&str> = infos.iter().map(|i| i.dc.as_str()).collect();
        let bf = block_for(
            cl,
            &ks.replication.rf_by_dc(&dcs),
            &shared.nodes[me].dc,
            false,
        )
        .map_err(|e| cl_error(e, cl))?;
        check_available(cl, &bf, &infos).map_err(|e| cl_error(e, cl))?;
        // Contact the coordinator first if it is a replica, then ring order.
        let mut order: Vec<&ReplicaInfo> = infos.iter().filter(|r| r.alive).collect();
        order.sort_by_key(|r| r.node != me);
        let mut merged = Partition::default();
        let mut contacted = Vec::new();
        for r in order {
            if bf.satisfied(&contacted) {
                break;
            }
            if let Some(p) = shared
                .store(r.node)
                .partition(&table.keyspace, &table.name, &pk)
            {
                merged.merge(p);
            }
            contacted.push(r);
        }
        let mut rows = merged.live_rows(now);
        let cks: Vec<_> = table.clustering().collect();
        rows.sort_by(|(a, _), (b, _)| {
            for (i, c) in cks.iter().enumerate() {
                let o = cmp_typed(&c.ty, &a[i], &b[i]);
                let o = if c.descending { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
        for (ck, cells) in rows {
            let mut row = Vec::new();
            let mut meta = Vec::new();
            for c in &table.columns {
                match c.kind {
                    ColumnKind::PartitionKey => {
                        row.push(key.get(c.position as usize).cloned());
                        meta.push(None);
                    }
                    ColumnKind::Clustering => {
                        row.push(ck.get(c.position as usize).cloned());
                        meta.push(None);
                    }
                    _ => {
                        let cell: Option<&Cell> = cells.get(&c.name);
                        row.push(cell.map(|x| x.value.clone()));
                        meta.push(cell.map(|x| (x.timestamp, x.remaining_ttl(now))));
                    }
                }
            }
            m.rows.push(row);
            m.meta.push(meta);
        }
    }
    Ok(m)
}
