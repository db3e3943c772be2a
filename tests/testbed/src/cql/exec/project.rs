//! The last steps of a SELECT over materialized rows: filter by the WHERE relations,
//! project the selectors (`*`, columns, `WRITETIME`, `TTL`, `COUNT(*)`), apply LIMIT
//! and cut the result into pages (`page_size`, paging state).

use super::cell_times;
use super::ctx::Bound;
use super::read::Materialized;
use crate::cql::errors::invalid;
use crate::cql::language::literal::{lit_bytes, Lit};
use crate::cql::language::select;
use crate::cql::language::select::{Op, SelectStmt, Selector};
use crate::cql::storage::collection;
use crate::cql::storage::murmur3;
use crate::cql::storage::order::compare;
use crate::cql::storage::schema::uuid_from;
use bytes::Bytes;
use std::cmp::Ordering;
use tidemark_cql::message::{ColumnSpec, ErrorBody, ResultBody, Rows, RowsMetadata};
use tidemark_cql::ColumnType;

/// What the client asked for: at most `size` rows from the position in `state`.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub size: Option<i32>,
    pub state: Option<Bytes>,
}

pub(crate) fn query_hash(stmt: &SelectStmt) -> u64 {
    let u = uuid_from(&format!("{stmt:?}"));
    u64::from_be_bytes(u[..8].try_into().unwrap_or([0; 8]))
}
/// The result column specs of a SELECT over `cols`; `multicell` names the non-frozen
/// collection and UDT columns, whose `WRITETIME`/`TTL` are lists.
pub fn result_columns(
    stmt: &SelectStmt,
    ks: &str,
    table: &str,
    cols: &[(String, ColumnType)],
    multicell: &[String],
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
                let ty = cell_times::result_type(multicell.contains(c), false);
                out.push(spec(&name(format!("writetime({c})")), &ty))
            }
            Selector::MaxWriteTime(c) => {
                find(c)?;
                out.push(spec(
                    &name(format!("maxwritetime({c})")),
                    &ColumnType::BigInt,
                ))
            }
            Selector::Ttl(c) => {
                find(c)?;
                let ty = cell_times::result_type(multicell.contains(c), true);
                out.push(spec(&name(format!("ttl({c})")), &ty))
            }
            Selector::CountStar => out.push(spec(&name("count".into()), &ColumnType::BigInt)),
            Selector::Token(ks) => {
                for k in ks {
                    find(k)?;
                }
                let n = format!("system.token({})", ks.join(", "));
                out.push(spec(&name(n), &ColumnType::BigInt))
            }
        }
    }
    if stmt.json {
        return Ok(vec![spec("[json]", &ColumnType::Varchar)]);
    }
    Ok(out)
}

pub fn bind_lit(l: &Lit, ty: &ColumnType, bound: &Bound) -> Result<Option<Bytes>, ErrorBody> {
    match l {
        Lit::Marker(i, _) => Ok(bound.get(*i).flatten()),
        l => lit_bytes(ty, l).map_err(invalid),
    }
}

/// The values a relation compares with; `c IN ?` binds one list of values.
pub fn where_values(
    w: &select::Where,
    ty: &ColumnType,
    bound: &Bound,
) -> Result<Vec<Option<Bytes>>, ErrorBody> {
    if let (Op::In, [Lit::Marker(i, _)]) = (w.op, &w.values[..]) {
        return match bound.get(*i).flatten() {
            Some(list) => Ok(collection::split(&list, 1)
                .map_err(invalid)?
                .into_iter()
                .map(Some)
                .collect()),
            None => Ok(Vec::new()),
        };
    }
    w.values.iter().map(|v| bind_lit(v, ty, bound)).collect()
}

/// Runs a SELECT against materialized rows (filter, project, limit).
pub fn finish(
    stmt: &SelectStmt,
    ks: &str,
    table: &str,
    m: Materialized,
    bound: &Bound,
    page: &Page,
) -> Result<ResultBody, ErrorBody> {
    let specs = result_columns(stmt, ks, table, &m.columns, &m.multicell).map_err(invalid)?;
    let mut keep: Vec<usize> = Vec::new();
    'rows: for (ri, row) in m.rows.iter().enumerate() {
        for w in stmt.wheres.iter().filter(|w| !w.token) {
            let Some(ci) = m.columns.iter().position(|(n, _)| *n == w.column) else {
                return Err(invalid(format!("Undefined column name {}", w.column)));
            };
            let ty = &m.columns[ci].1;
            let have = row[ci].as_deref();
            if matches!(w.op, Op::Contains | Op::ContainsKey) {
                if !contains(w, ty, have, bound)? {
                    continue 'rows;
                }
                continue;
            }
            let mut any = false;
            for want in where_values(w, ty, bound)? {
                let ord = match (have, want.as_deref()) {
                    (Some(h), Some(x)) => compare(ty, h, x),
                    _ => continue,
                };
                any |= match w.op {
                    Op::Eq | Op::In => ord == Ordering::Equal,
                    Op::Lt => ord == Ordering::Less,
                    Op::Le => ord != Ordering::Greater,
                    Op::Gt => ord == Ordering::Greater,
                    Op::Ge => ord != Ordering::Less,
                    Op::Contains | Op::ContainsKey => false,
                };
            }
            if !any {
                continue 'rows;
            }
        }
        keep.push(ri);
    }
    if let Some(l) = &stmt.per_partition_limit {
        let n = limit_value(l, bound)?;
        if !m.partition.is_empty() {
            let mut seen: std::collections::HashMap<usize, usize> = Default::default();
            keep.retain(|ri| {
                let c = seen.entry(m.partition[*ri]).or_default();
                *c += 1;
                *c <= n
            });
        }
    }
    if let Some(l) = &stmt.limit {
        keep.truncate(limit_value(l, bound)?);
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
        for &ri in &keep {
            let mut row = Vec::new();
            for (sel, _) in &stmt.selectors {
                let meta = |c: &str| m.meta.get(ri).and_then(|r| r[col(c)].as_ref());
                match sel {
                    Selector::Star => row.extend(m.rows[ri].iter().cloned()),
                    Selector::Column(c) => row.push(m.rows[ri][col(c)].clone()),
                    Selector::WriteTime(c) => row.push(meta(c).map(|t| t.writetime())),
                    Selector::MaxWriteTime(c) => row.push(meta(c).and_then(|t| t.max_writetime())),
                    Selector::Ttl(c) => row.push(meta(c).and_then(|t| t.ttl())),
                    Selector::CountStar => {}
                    Selector::Token(ks) => {
                        let parts: Vec<&[u8]> = ks
                            .iter()
                            .map(|k| m.rows[ri][col(k)].as_deref().unwrap_or(&[]))
                            .collect();
                        let pk = murmur3::partition_key_bytes(&parts);
                        let tok = murmur3::token(&pk);
                        row.push(Some(Bytes::copy_from_slice(&tok.to_be_bytes())));
                    }
                }
            }
            out_rows.push(row);
        }
    }
    if stmt.json {
        out_rows = json_rows(stmt, ks, table, &m, &out_rows)?;
    }
    let counted = stmt
        .selectors
        .iter()
        .any(|(s, _)| *s == Selector::CountStar);
    let source = (!counted).then_some(&keep[..]);
    let (out_rows, paging_state) =
        super::paging::page(&m, source, out_rows, page, query_hash(stmt))?;
    let metadata = RowsMetadata {
        columns_count: specs.len(),
        global_table_spec: Some((ks.into(), table.into())),
        columns: specs,
        paging_state,
        ..RowsMetadata::default()
    };
    Ok(ResultBody::Rows(Rows::from_cells(metadata, &out_rows)))
}

/// `SELECT JSON`: each row as one JSON object text, keyed by the selected column
/// names (quoted when not lower case, as Cassandra does).
fn json_rows(
    stmt: &SelectStmt,
    ks: &str,
    table: &str,
    m: &Materialized,
    rows: &[Vec<Option<Bytes>>],
) -> Result<Vec<Vec<Option<Bytes>>>, ErrorBody> {
    let plain = SelectStmt {
        json: false,
        ..stmt.clone()
    };
    let specs = result_columns(&plain, ks, table, &m.columns, &m.multicell).map_err(invalid)?;
    let mut out = Vec::new();
    for row in rows {
        let mut obj = String::from("{");
        for (i, (spec, v)) in specs.iter().zip(row).enumerate() {
            if i > 0 {
                obj.push_str(", ");
            }
            let name = spec.name.as_str();
            // Cassandra quotes a name that lower-casing would change (`"Mixed"`), not
            // one with other characters (`writetime(l)` stays as it is).
            let key = if name == name.to_lowercase() {
                name.to_string()
            } else {
                format!("\"{name}\"")
            };
            obj.push_str(&serde_json::to_string(&key).unwrap_or_default());
            obj.push_str(": ");
            let value = tidemark_cql::Value::from_bytes(&spec.ty, v.as_ref())
                .map_err(|e| invalid(format!("cannot render {name} as JSON: {e}")))?;
            obj.push_str(&tidemark_cql::json_text(&value, &spec.ty));
        }
        obj.push('}');
        out.push(vec![Some(Bytes::from(obj))]);
    }
    Ok(out)
}

/// `CONTAINS` / `CONTAINS KEY` on a collection value (`have`, serialized).
fn contains(
    w: &select::Where,
    ty: &ColumnType,
    have: Option<&[u8]>,
    bound: &Bound,
) -> Result<bool, ErrorBody> {
    let (elem_ty, per, pick) = match (ty.effective(), w.op) {
        (ColumnType::List(e) | ColumnType::Set(e), Op::Contains) => (e.as_ref(), 1, 0),
        (ColumnType::Map(_, v), Op::Contains) => (v.as_ref(), 2, 1),
        (ColumnType::Map(k, _), Op::ContainsKey) => (k.as_ref(), 2, 0),
        _ => {
            return Err(invalid(format!(
                "Cannot use CONTAINS{} on non-collection column {}",
                if w.op == Op::ContainsKey { " KEY" } else { "" },
                w.column
            )))
        }
    };
    let Some(want) = w
        .values
        .first()
        .map(|v| bind_lit(v, elem_ty, bound))
        .transpose()?
        .flatten()
    else {
        return Err(invalid(format!(
            "Invalid null value for CONTAINS on {}",
            w.column
        )));
    };
    let Some(have) = have else { return Ok(false) };
    let items = collection::split(have, per).map_err(invalid)?;
    Ok(items
        .chunks(per)
        .any(|e| compare(elem_ty, &e[pick], &want) == Ordering::Equal))
}

/// A LIMIT value (literal or bound int); must be positive.
fn limit_value(l: &Lit, bound: &Bound) -> Result<usize, ErrorBody> {
    let n = bind_lit(l, &ColumnType::Int, bound)?
        .and_then(|b| <[u8; 4]>::try_from(&b[..]).ok())
        .map(i32::from_be_bytes)
        .unwrap_or(i32::MAX);
    if n <= 0 {
        return Err(invalid(format!("LIMIT must be strictly positive, got {n}")));
    }
    Ok(n as usize)
}
