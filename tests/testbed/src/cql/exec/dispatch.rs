//! Statement execution on a coordinator: parse, dispatch (USE, SELECT, DDL, DML),
//! and PREPARE metadata. The error bodies Cassandra would send are in `errors.rs`.

use super::ctx::{Bound, Ctx};
use super::read::{finish, materialize_user, multicell_columns, result_columns};
use super::system::system_table;
use crate::cql::cluster::state::PreparedStmt;
use crate::cql::errors::{error, invalid};
use crate::cql::language::literal;
use crate::cql::language::select;
use crate::cql::language::select::parse_select;
use crate::cql::storage::schema::{uuid_from, ColumnKind, Table};
use bytes::Bytes;
use tidemark_cql::message::{
    error_code as code, ColumnSpec, ErrorBody, Prepared, PreparedMetadata, ResultBody, RowsMetadata,
};
use tidemark_cql::statement::{parse_statement, BindTarget, StatementKind};
use tidemark_cql::ColumnType;

/// Executes `query` with `bound` values. The new keyspace of a USE is returned in
/// `ResultBody::SetKeyspace`; the caller records it.
pub fn execute(ctx: &Ctx<'_>, query: &str, bound: &Bound) -> Result<ResultBody, ErrorBody> {
    let stmt = parse_statement(query).map_err(|e| error(code::SYNTAX_ERROR, e.to_string()))?;
    match &stmt.kind {
        StatementKind::Use(ks) => {
            let ks = ks.as_str().to_string();
            let exists = ctx.shared.schema().keyspaces.contains_key(&ks)
                || matches!(ks.as_str(), "system" | "system_schema");
            if !exists {
                return Err(invalid(format!("Keyspace '{ks}' does not exist")));
            }
            Ok(ResultBody::SetKeyspace(ks.into()))
        }
        StatementKind::Select(s) => {
            let sel = parse_select(s.text).map_err(|e| error(code::SYNTAX_ERROR, e))?;
            let ks = sel
                .keyspace
                .clone()
                .or_else(|| ctx.keyspace.clone())
                .unwrap_or_default();
            if let Some(m) = system_table(ctx.shared, ctx.me, &ks, &sel.table) {
                return finish(&sel, &ks, &sel.table, m, bound, &ctx.page);
            }
            let (ks, t) = ctx.table(
                Some(&ks).filter(|k| !k.is_empty()).map(|k| k.as_str()),
                &sel.table,
            )?;
            refuse_key_metadata(&sel, &t)?;
            let m = materialize_user(ctx.shared, ctx.me, &t, &sel, bound, ctx.consistency)?;
            finish(&sel, &ks, &t.name, m, bound, &ctx.page)
        }
        StatementKind::Schema(s) => super::ddl_exec::ddl(ctx, s.text),
        StatementKind::Modification(m) => super::modify::modification(ctx, m, bound),
        StatementKind::Batch(b) => {
            // A text BATCH: one set of values, numbered across all members.
            let ts = match tidemark_cql::statement::using_timestamp(&b.using) {
                Some(t) => match super::mutation::resolve(t, &ColumnType::BigInt, bound)? {
                    super::mutation::Val::Set(v) => v[..].try_into().ok().map(i64::from_be_bytes),
                    _ => None,
                },
                None => None,
            };
            let members: Vec<_> = b
                .statements
                .iter()
                .map(|m| (m.clone(), bound.clone()))
                .collect();
            super::modify::batch(ctx, b.kind, ts, &members)
        }
        StatementKind::Truncate(q) => super::modify::truncate(
            ctx,
            q.keyspace.as_ref().map(|k| k.as_str()),
            q.name.as_str(),
        ),
        _ => Err(invalid("statement not supported by the testbed yet")),
    }
}

/// Key columns have no cells of their own, so no write time or TTL: Cassandra refuses
/// `WRITETIME`/`TTL` of one (`Selectable.WritetimeOrTTL`) rather than answer null.
fn refuse_key_metadata(sel: &select::SelectStmt, t: &Table) -> Result<(), ErrorBody> {
    for (s, _) in &sel.selectors {
        let (f, c) = match s {
            select::Selector::WriteTime(c) => ("writetime", c),
            select::Selector::MaxWriteTime(c) => ("maxwritetime", c),
            select::Selector::Ttl(c) => ("ttl", c),
            _ => continue,
        };
        if t.column(c)
            .is_some_and(|d| d.kind != ColumnKind::Regular && d.kind != ColumnKind::Static)
        {
            return Err(invalid(format!(
                "Cannot use selection function {f} on PRIMARY KEY part {c}"
            )));
        }
    }
    Ok(())
}

/// PREPARE: the id (a hash of keyspace and text, like Cassandra's MD5), bind-marker
/// metadata with partition-key indexes, and result metadata.
pub fn prepare(ctx: &Ctx<'_>, query: &str) -> Result<(Prepared, PreparedStmt), ErrorBody> {
    let stmt = parse_statement(query).map_err(|e| error(code::SYNTAX_ERROR, e.to_string()))?;
    let mut bind = PreparedMetadata::default();
    // Statements that return no rows: Cassandra's empty result metadata (NO_METADATA).
    let mut result = RowsMetadata {
        no_metadata: true,
        ..RowsMetadata::default()
    };
    let spec = |ks: &str, t: &str, name: &str, ty: &ColumnType| ColumnSpec {
        keyspace: ks.into(),
        table: t.into(),
        name: name.into(),
        ty: ty.clone(),
    };
    match &stmt.kind {
        StatementKind::Modification(m) => {
            let q = m.table();
            let (ks, t) = ctx.table(q.keyspace.as_ref().map(|k| k.as_str()), q.name.as_str())?;
            for b in &stmt.bind_markers {
                let (name, ty) = match &b.target {
                    BindTarget::Column(c) => {
                        let col = t.column(c.as_str()).ok_or_else(|| {
                            invalid(format!("Undefined column name {}", c.as_str()))
                        })?;
                        (col.name.clone(), col.ty.clone())
                    }
                    BindTarget::Timestamp => ("[timestamp]".into(), ColumnType::BigInt),
                    BindTarget::Ttl => ("[ttl]".into(), ColumnType::Int),
                    BindTarget::Json => ("[json]".into(), ColumnType::Varchar),
                    BindTarget::Field(c, f) => {
                        let col = t.column(c.as_str()).ok_or_else(|| {
                            invalid(format!("Undefined column name {}", c.as_str()))
                        })?;
                        let ColumnType::Udt { fields, .. } = &col.ty else {
                            return Err(invalid(format!("{} is not a user type", col.name)));
                        };
                        let ty = fields
                            .iter()
                            .find(|(n, _)| n.as_ref() == f.as_str())
                            .map(|(_, t)| t.clone())
                            .ok_or_else(|| invalid(format!("Unknown field {}", f.as_str())))?;
                        (format!("{}.{}", col.name, f.as_str()), ty)
                    }
                    BindTarget::InValues(c) => {
                        let col = t.column(c.as_str()).ok_or_else(|| {
                            invalid(format!("Undefined column name {}", c.as_str()))
                        })?;
                        (
                            format!("in({})", col.name),
                            ColumnType::List(Box::new(col.ty.clone())),
                        )
                    }
                    BindTarget::Key(c) | BindTarget::Element(c) => {
                        let col = t.column(c.as_str()).ok_or_else(|| {
                            invalid(format!("Undefined column name {}", c.as_str()))
                        })?;
                        let key = matches!(&b.target, BindTarget::Key(_));
                        let ty = match (&col.ty, key) {
                            (ColumnType::Map(k, _), true) => k.as_ref().clone(),
                            (ColumnType::Map(_, v), false) => v.as_ref().clone(),
                            (ColumnType::List(_), true) => ColumnType::Int,
                            (ColumnType::List(e) | ColumnType::Set(e), false) => e.as_ref().clone(),
                            (ColumnType::Set(e), true) => e.as_ref().clone(),
                            (t, _) => t.clone(),
                        };
                        let name = if key {
                            format!("key({})", col.name)
                        } else {
                            format!("value({})", col.name)
                        };
                        (name, ty)
                    }
                    other => {
                        return Err(invalid(format!(
                            "bind marker for {other:?} not supported by the testbed yet"
                        )))
                    }
                };
                let name = b
                    .name
                    .as_ref()
                    .map(|n| n.as_str().to_string())
                    .unwrap_or(name);
                bind.columns.push(spec(&ks, &t.name, &name, &ty));
            }
            let mut pk = Vec::new();
            for c in t.partition_key() {
                match stmt
                    .bind_markers
                    .iter()
                    .find(|b| matches!(&b.target, BindTarget::Column(x) if x.as_str() == c.name))
                {
                    Some(b) => pk.push(b.index as u16),
                    None => {
                        pk.clear();
                        break;
                    }
                }
            }
            bind.pk_indexes = pk;
            bind.global_table_spec = Some((ks.clone().into(), t.name.clone().into()));
        }
        StatementKind::Select(s) => {
            let sel = parse_select(s.text).map_err(|e| error(code::SYNTAX_ERROR, e))?;
            let ks = sel
                .keyspace
                .clone()
                .or_else(|| ctx.keyspace.clone())
                .unwrap_or_default();
            let (cols, multicell, tname, pk_names) =
                match system_table(ctx.shared, ctx.me, &ks, &sel.table) {
                    Some(m) => (m.columns, m.multicell, sel.table.clone(), vec![]),
                    None => {
                        let (_, t) = ctx.table(
                            Some(&ks).filter(|k| !k.is_empty()).map(|k| k.as_str()),
                            &sel.table,
                        )?;
                        refuse_key_metadata(&sel, &t)?;
                        (
                            t.columns
                                .iter()
                                .map(|c| (c.name.clone(), c.ty.clone()))
                                .collect(),
                            multicell_columns(&t),
                            t.name.clone(),
                            t.partition_key().map(|c| c.name.clone()).collect(),
                        )
                    }
                };
            let mut markers: Vec<(usize, String, ColumnType)> = Vec::new();
            for w in &sel.wheres {
                let (default_name, ty) = if w.token {
                    ("partition key token".to_string(), ColumnType::BigInt)
                } else {
                    let ty = cols
                        .iter()
                        .find(|(n, _)| *n == w.column)
                        .map(|(_, t)| t.clone())
                        .ok_or_else(|| invalid(format!("Undefined column name {}", w.column)))?;
                    (w.column.clone(), ty)
                };
                let in_marker = w.op == select::Op::In && w.values.len() == 1;
                let ty = match (w.op, &ty) {
                    (select::Op::Contains, ColumnType::List(e) | ColumnType::Set(e)) => {
                        e.as_ref().clone()
                    }
                    (select::Op::Contains, ColumnType::Map(_, v)) => v.as_ref().clone(),
                    (select::Op::ContainsKey, ColumnType::Map(k, _)) => k.as_ref().clone(),
                    _ => ty,
                };
                for v in &w.values {
                    if let literal::Lit::Marker(i, name) = v {
                        let (n, t) = if in_marker {
                            (
                                format!("in({default_name})"),
                                ColumnType::List(Box::new(ty.clone())),
                            )
                        } else {
                            (default_name.clone(), ty.clone())
                        };
                        markers.push((*i, name.clone().unwrap_or(n), t));
                    }
                }
            }
            if let Some(literal::Lit::Marker(i, _)) = &sel.per_partition_limit {
                markers.push((*i, "[per_partition_limit]".into(), ColumnType::Int));
            }
            if let Some(literal::Lit::Marker(i, _)) = &sel.limit {
                markers.push((*i, "[limit]".into(), ColumnType::Int));
            }
            markers.sort_by_key(|m| m.0);
            for (_, name, ty) in &markers {
                bind.columns.push(spec(&ks, &tname, name, ty));
            }
            if !markers.is_empty() {
                // Every marker is of the one table: Cassandra's global table spec flag.
                bind.global_table_spec = Some((ks.clone().into(), tname.clone().into()));
            }
            let mut pk = Vec::new();
            for n in &pk_names {
                match markers.iter().position(|m| &m.1 == n) {
                    Some(i) => pk.push(i as u16),
                    None => {
                        pk.clear();
                        break;
                    }
                }
            }
            bind.pk_indexes = pk;
            let specs = result_columns(&sel, &ks, &tname, &cols, &multicell).map_err(invalid)?;
            result = RowsMetadata {
                columns_count: specs.len(),
                global_table_spec: Some((ks.clone().into(), tname.into())),
                columns: specs,
                ..RowsMetadata::default()
            };
        }
        _ => {}
    }
    let ks_text = ctx.keyspace.clone().unwrap_or_default();
    let id = Bytes::copy_from_slice(&uuid_from(&format!("{ks_text}\u{0}{query}")));
    let prepared = Prepared {
        id,
        result_metadata_id: Some(super::result_metadata::metadata_id(&result.columns)),
        metadata: bind.clone(),
        result_metadata: result.clone(),
    };
    let stmt = PreparedStmt {
        query: query.to_string(),
        keyspace: ctx.keyspace.clone(),
        bind,
        result,
    };
    Ok((prepared, stmt))
}
