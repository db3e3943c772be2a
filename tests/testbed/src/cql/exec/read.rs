//! SELECT execution on user tables: find the partitions (by key, or a full scan in
//! token order, optionally restricted by `token()` relations), read each from enough
//! replicas for the consistency level, reconcile their copies, and materialize rows
//! as typed columns (non-frozen collections assembled from their element cells).

use super::ctx::Bound;
use super::project::where_values;
use crate::cql::cluster::consistency::cl_error;
use crate::cql::cluster::consistency::{block_for, check_available, ReplicaInfo};
use crate::cql::cluster::state::Shared;
use crate::cql::errors::invalid;
use crate::cql::language::select::{Op, SelectStmt};
use crate::cql::storage::cell::Cell;
use crate::cql::storage::clock::now_secs;
use crate::cql::storage::collection::{is_multicell, materialize};
use crate::cql::storage::murmur3::{partition_key_bytes, token};
use crate::cql::storage::order::compare_clustering;
use crate::cql::storage::schema::{ColumnKind, Table};
use crate::cql::storage::store::{LiveRow, Partition};
use bytes::Bytes;
use tidemark_cql::message::ErrorBody;
use tidemark_cql::{ColumnType, Consistency};

pub use super::project::{finish, result_columns};

pub use super::cell_times::CellMeta;

/// Rows with typed columns; `meta` (user tables only) holds each column's write times
/// and remaining TTLs for `WRITETIME()`/`TTL()`.
#[derive(Debug, Clone, Default)]
pub struct Materialized {
    pub columns: Vec<(String, ColumnType)>,
    /// The non-frozen collection and UDT columns (their `WRITETIME`/`TTL` are lists).
    pub multicell: Vec<String>,
    pub rows: Vec<Vec<Option<Bytes>>>,
    pub meta: Vec<Vec<Option<CellMeta>>>,
    /// User tables: the ordinal of each row's partition (for PER PARTITION LIMIT).
    pub partition: Vec<usize>,
    /// User tables: each row's position, for paging states.
    pub keys: Vec<super::paging::RowKey>,
    /// Clustering types and directions in result order (paging comparisons).
    pub order: Vec<(ColumnType, bool)>,
}

fn replica_infos(shared: &Shared, replicas: &[usize]) -> Vec<ReplicaInfo> {
    replicas
        .iter()
        .map(|r| ReplicaInfo {
            node: *r,
            dc: shared.nodes[*r].dc.clone(),
            alive: shared.nodes[*r]
                .alive
                .load(std::sync::atomic::Ordering::Relaxed),
        })
        .collect()
}

/// Reads partition `pk` at `cl` from node `me`: contacts the coordinator first if it
/// is a replica, then ring order, until `block_for` replicas answered, and merges
/// their copies.
pub fn read_partition(
    shared: &Shared,
    me: usize,
    table: &Table,
    pk: &Bytes,
    cl: Consistency,
) -> Result<Partition, ErrorBody> {
    let replication = {
        let schema = shared.schema();
        let ks = schema
            .keyspaces
            .get(&table.keyspace)
            .ok_or_else(|| invalid(format!("Keyspace {} does not exist", table.keyspace)))?;
        ks.replication.clone()
    };
    let replicas = shared.ring.replicas(token(pk), &replication);
    let infos = replica_infos(shared, &replicas);
    let dcs: Vec<&str> = infos.iter().map(|i| i.dc.as_str()).collect();
    let bf = block_for(cl, &replication.rf_by_dc(&dcs), &shared.nodes[me].dc, false)
        .map_err(|e| cl_error(e, cl))?;
    check_available(cl, &bf, &infos).map_err(|e| cl_error(e, cl))?;
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
            .partition(&table.keyspace, &table.name, pk)
        {
            merged.merge(p);
        }
        contacted.push(r);
    }
    Ok(merged)
}

/// Every live replica's copy of `pk` merged: what a read-before-write (counter, list
/// index) or a Paxos prepare sees.
pub fn current_partition(shared: &Shared, table: &Table, pk: &Bytes) -> Partition {
    let replication = shared
        .schema()
        .keyspaces
        .get(&table.keyspace)
        .map(|k| k.replication.clone());
    let Some(replication) = replication else {
        return Partition::default();
    };
    let mut merged = Partition::default();
    for r in shared.ring.replicas(token(pk), &replication) {
        if !shared.nodes[r]
            .alive
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            continue;
        }
        if let Some(p) = shared.store(r).partition(&table.keyspace, &table.name, pk) {
            merged.merge(p);
        }
    }
    merged
}

/// One live row as values in table column order, with write time/TTL metadata.
pub fn row_values(
    table: &Table,
    key: &[Bytes],
    ck: &[Bytes],
    live: &LiveRow,
    now: i32,
) -> (Vec<Option<Bytes>>, Vec<Option<CellMeta>>) {
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
            _ if is_multicell(&c.ty, &c.type_text) => {
                let elems = live.complex.get(&c.name);
                row.push(elems.map(|e| materialize(&c.ty, e)));
                meta.push(elems.and_then(|e| CellMeta::of_cells(&c.ty, e, now)));
            }
            _ => {
                let cell: Option<&Cell> = live.cells.get(&c.name);
                row.push(cell.map(|x| x.value.clone()));
                meta.push(cell.map(|x| CellMeta::Single((x.timestamp, x.remaining_ttl(now)))));
            }
        }
    }
    (row, meta)
}

/// A partition's live rows in clustering order.
pub fn sorted_rows(table: &Table, p: &Partition, now: i32) -> Vec<(Vec<Bytes>, LiveRow)> {
    let order: Vec<(ColumnType, bool)> = table
        .clustering()
        .map(|c| (c.ty.clone(), c.descending))
        .collect();
    let mut rows = p.live_view(now);
    rows.sort_by(|(a, _), (b, _)| compare_clustering(&order, a, b));
    rows
}

/// Whether a partition's token satisfies the statement's `token()` relations.
fn token_matches(stmt: &SelectStmt, tok: i64, bound: &Bound) -> Result<bool, ErrorBody> {
    for w in stmt.wheres.iter().filter(|w| w.token) {
        let mut any = false;
        for v in where_values(w, &ColumnType::BigInt, bound)? {
            let Some(b) = v else { continue };
            let t = i64::from_be_bytes(
                b[..]
                    .try_into()
                    .map_err(|_| invalid("token values are bigint"))?,
            );
            any |= match w.op {
                Op::Eq | Op::In => tok == t,
                Op::Lt => tok < t,
                Op::Le => tok <= t,
                Op::Gt => tok > t,
                Op::Ge => tok >= t,
                Op::Contains | Op::ContainsKey => false,
            };
        }
        if !any {
            return Ok(false);
        }
    }
    Ok(true)
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
            .find(|w| !w.token && w.column == c.name && matches!(w.op, Op::Eq | Op::In))
        else {
            restricted = false;
            break;
        };
        let mut next = Vec::new();
        for b in where_values(w, &c.ty, bound)? {
            let b = b.ok_or_else(|| {
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
        keys = Vec::new();
        for (tok, pk) in all {
            if !token_matches(stmt, tok, bound)? {
                continue;
            }
            if let Some(k) = (0..shared.nodes.len()).find_map(|i| {
                shared
                    .store(i)
                    .partition(&table.keyspace, &table.name, &pk)
                    .map(|p| p.key.clone())
            }) {
                keys.push(k);
            }
        }
    }
    // ORDER BY: only clustering columns, in clustering order; reversing the first
    // column's order reverses the partition (Cassandra's rule).
    let cks: Vec<_> = table.clustering().collect();
    let mut reverse = false;
    for (i, (name, desc)) in stmt.order_by.iter().enumerate() {
        let Some(c) = cks.get(i).filter(|c| &c.name == name) else {
            return Err(invalid(
                "Order by currently only supports the ordering of columns following their declared order in the PRIMARY KEY",
            ));
        };
        let r = *desc != c.descending;
        if i == 0 {
            reverse = r;
        } else if r != reverse {
            return Err(invalid("Unsupported order by relation"));
        }
    }
    if !stmt.order_by.is_empty() && !restricted {
        return Err(invalid(
            "ORDER BY is only supported when the partition key is restricted by an EQ or an IN.",
        ));
    }
    aggregate_warnings(stmt, table);
    let multi = keys.len() > 1 && !stmt.order_by.is_empty();
    let now = now_secs();
    let mut m = Materialized {
        columns: table
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.ty.clone()))
            .collect(),
        multicell: multicell_columns(table),
        ..Materialized::default()
    };
    for (ordinal, key) in keys.into_iter().enumerate() {
        let refs: Vec<&[u8]> = key.iter().map(|k| &k[..]).collect();
        let pk = Bytes::from(partition_key_bytes(&refs));
        if restricted && !token_matches(stmt, token(&pk), bound)? {
            continue;
        }
        let merged = read_partition(shared, me, table, &pk, cl)?;
        let mut rows = sorted_rows(table, &merged, now);
        // The static row (empty clustering, tables with clustering only) shows in
        // every row of its partition, or alone when the partition has no rows.
        let mut statics = None;
        if table.clustering().next().is_some() && rows.first().is_some_and(|(ck, _)| ck.is_empty())
        {
            statics = Some(rows.remove(0).1);
        }
        if rows.is_empty() {
            if let Some(s) = statics.take() {
                rows.push((Vec::new(), s));
            }
        }
        if stmt.distinct {
            rows.truncate(1);
        }
        if reverse {
            rows.reverse();
        }
        for (ck, mut live) in rows {
            if let Some(s) = &statics {
                live.cells.extend(s.cells.clone());
                live.complex.extend(s.complex.clone());
            }
            let (row, meta) = row_values(table, &key, &ck, &live, now);
            m.rows.push(row);
            m.meta.push(meta);
            m.partition.push(ordinal);
            m.keys.push(super::paging::RowKey {
                token: token(&pk),
                pk: pk.clone(),
                ck,
            });
        }
    }
    m.order = cks
        .iter()
        .map(|c| (c.ty.clone(), c.descending != reverse))
        .collect();
    if multi {
        // IN with ORDER BY: rows of all partitions merged in the requested order.
        let order: Vec<(ColumnType, bool)> = cks
            .iter()
            .map(|c| (c.ty.clone(), c.descending != reverse))
            .collect();
        let ck_idx: Vec<usize> = cks
            .iter()
            .filter_map(|c| table.columns.iter().position(|x| x.name == c.name))
            .collect();
        let key_of = |r: &Vec<Option<Bytes>>| -> Vec<Bytes> {
            ck_idx
                .iter()
                .map(|i| r[*i].clone().unwrap_or_default())
                .collect()
        };
        let mut idx: Vec<usize> = (0..m.rows.len()).collect();
        idx.sort_by(|a, b| compare_clustering(&order, &key_of(&m.rows[*a]), &key_of(&m.rows[*b])));
        m.rows = idx.iter().map(|i| m.rows[*i].clone()).collect();
        m.meta = idx.iter().map(|i| m.meta[*i].clone()).collect();
        m.partition = idx.iter().map(|i| m.partition[*i]).collect();
        m.keys = idx.iter().map(|i| m.keys[*i].clone()).collect();
    }
    Ok(m)
}

/// The names of a table's non-frozen collection and UDT columns.
pub fn multicell_columns(table: &Table) -> Vec<String> {
    table
        .columns
        .iter()
        .filter(|c| is_multicell(&c.ty, &c.type_text))
        .map(|c| c.name.clone())
        .collect()
}

/// Cassandra warns about an aggregate (`COUNT(*)`) that reads without a partition key
/// restriction (`=`, IN or `token()` on a key column) or reads several partitions
/// through IN (`SelectStatement.pageAggregateQuery`).
fn aggregate_warnings(stmt: &SelectStmt, table: &Table) {
    if !stmt
        .selectors
        .iter()
        .any(|(s, _)| *s == crate::cql::language::select::Selector::CountStar)
    {
        return;
    }
    let on_key = |w: &&crate::cql::language::select::Where| {
        w.token || table.partition_key().any(|c| c.name == w.column)
    };
    if !stmt.wheres.iter().any(|w| on_key(&w)) {
        super::warnings::warn(super::warnings::AGGREGATE_WITHOUT_KEY);
    } else if stmt.wheres.iter().any(|w| on_key(&w) && w.op == Op::In) {
        super::warnings::warn(super::warnings::AGGREGATE_OVER_IN);
    }
}
