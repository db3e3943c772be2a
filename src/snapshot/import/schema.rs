//! The tables node dumps are read with. An `sstabledump` file names no keyspace,
//! table or column type, so the schema comes from outside it: `--schema FILE` (CQL
//! `CREATE KEYSPACE`/`CREATE TYPE`/`CREATE TABLE` statements, as `DESCRIBE` prints
//! them); else the newest CQL snapshot in the store (its recorded `CREATE`
//! statements, the same text); else the `CREATE TABLE`s the store's log holds, for
//! the tables named by `--table` or `keyspace.table=FILE`.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};
use tidemark_cql::statement::{parse_statements, SchemaAction, SchemaObject, StatementKind};
use tidemark_cql::ColumnType;

use crate::decode::cql::ddl;
use crate::decode::cql::schema::Schema;

/// One table's key layout and column types.
#[derive(Debug, Clone)]
pub struct TableDef {
    /// `keyspace.table`.
    pub namespace: String,
    pub partition_key: Vec<(String, ColumnType)>,
    pub clustering: Vec<(String, ColumnType)>,
    /// Every column: (type text, type).
    pub columns: HashMap<String, (String, ColumnType)>,
    /// The statements of the table's keyspace, types and table, for the snapshot.
    pub schema_text: String,
}

/// The tables `text` creates, in order.
pub fn from_text(text: &str) -> Result<Vec<TableDef>> {
    let mut schema = Schema::default();
    let mut keyspace: Option<String> = None;
    let mut tables: Vec<(String, String, String)> = Vec::new();
    let mut preamble: Vec<(String, String)> = Vec::new();
    for (stmt_text, parsed) in parse_statements(text) {
        let stmt_text = stmt_text.trim();
        if stmt_text.is_empty() {
            continue;
        }
        let stmt = parsed.map_err(|e| anyhow!("schema statement {stmt_text:?}: {e}"))?;
        match &stmt.kind {
            StatementKind::Use(ks) => keyspace = Some(ks.to_string()),
            StatementKind::Schema(s) if s.action == SchemaAction::Create => {
                ddl::learn(&stmt, keyspace.as_deref(), &mut schema);
                if s.object == SchemaObject::Keyspace {
                    if let Some(n) = &s.keyspace {
                        preamble.push((
                            n.as_str().to_string(),
                            format!("{};", stmt_text.trim_end_matches(';')),
                        ));
                    }
                } else if let Some(t) = s.resolve(keyspace.as_deref()) {
                    let line = format!("{};", stmt_text.trim_end_matches(';'));
                    match s.object {
                        SchemaObject::Table => {
                            tables.push((t.keyspace.to_string(), t.table.to_string(), line))
                        }
                        _ => preamble.push((t.keyspace.to_string(), line)),
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (ks, name, line) in tables {
        let mut schema_text: Vec<String> = preamble
            .iter()
            .filter(|(k, _)| *k == ks)
            .map(|(_, l)| l.clone())
            .collect();
        schema_text.push(line);
        out.push(table_def(
            &schema,
            &ks,
            &name,
            Some(schema_text.join("\n")),
        )?);
    }
    if out.is_empty() {
        bail!("the schema creates no table");
    }
    Ok(out)
}

/// Double-quotes an identifier unless it is a plain lower-case one.
fn ident(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// Table `ks.name` of `schema`; `schema_text` the statements that made it, or
/// (`None`) a `CREATE TABLE` written from the key layout and types.
fn table_def(
    schema: &Schema,
    ks: &str,
    name: &str,
    schema_text: Option<String>,
) -> Result<TableDef> {
    let t = schema
        .table(ks, name)
        .ok_or_else(|| anyhow!("no CREATE TABLE {ks}.{name} to read the dumps with"))?;
    let ty = |c: &str| -> Result<(String, ColumnType)> {
        let text = t
            .types
            .get(c)
            .ok_or_else(|| anyhow!("{ks}.{name}: no type for column {c}"))?;
        let parsed = schema
            .parse_type(ks, text)
            .ok_or_else(|| anyhow!("{ks}.{name}: cannot read type {text:?} of {c}"))?;
        Ok((text.clone(), parsed))
    };
    let mut columns = HashMap::new();
    for c in t.types.keys() {
        columns.insert(c.clone(), ty(c)?);
    }
    let key = |names: &[String]| -> Result<Vec<(String, ColumnType)>> {
        names.iter().map(|c| Ok((c.clone(), ty(c)?.1))).collect()
    };
    let schema_text = schema_text.unwrap_or_else(|| {
        let mut cols: Vec<&String> = t.types.keys().collect();
        // Key columns in key order, then the others by name.
        let rank = |c: &str| {
            t.partition_key
                .iter()
                .chain(&t.clustering)
                .position(|k| k == c)
                .unwrap_or(usize::MAX)
        };
        cols.sort_by_key(|c| (rank(c), *c));
        let defs: Vec<String> = cols
            .iter()
            .map(|c| format!("{} {}", ident(c), t.types[*c]))
            .collect();
        let pk: Vec<String> = t.partition_key.iter().map(|c| ident(c)).collect();
        let mut primary = vec![format!("({})", pk.join(", "))];
        primary.extend(t.clustering.iter().map(|c| ident(c)));
        format!(
            "CREATE TABLE {}.{} ({}, PRIMARY KEY ({}));",
            ident(ks),
            ident(name),
            defs.join(", "),
            primary.join(", ")
        )
    });
    Ok(TableDef {
        namespace: format!("{ks}.{name}"),
        partition_key: key(&t.partition_key)?,
        clustering: key(&t.clustering)?,
        columns,
        schema_text,
    })
}

/// Tables `names` (`keyspace.table`) as `schema` (learned from the log's CREATE
/// statements) describes them.
pub fn from_schema(schema: &Schema, names: &[String]) -> Result<Vec<TableDef>> {
    names
        .iter()
        .map(|n| {
            let (ks, t) = n
                .split_once('.')
                .ok_or_else(|| anyhow!("{n:?} is not keyspace.table"))?;
            table_def(schema, ks, t, None)
        })
        .collect()
}

/// The table a dump holds: `wanted` (`keyspace.table`) when given, else the only one.
pub fn pick<'a>(tables: &'a [TableDef], wanted: Option<&str>) -> Result<&'a TableDef> {
    match wanted {
        Some(w) => tables
            .iter()
            .find(|t| t.namespace == w)
            .ok_or_else(|| anyhow!("table {w} is not in the schema")),
        None if tables.len() == 1 => Ok(&tables[0]),
        None => bail!(
            "the schema has {} tables: name the one a dump holds as TABLE=FILE or with --table",
            tables.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_statements_give_key_layout_and_types() {
        let t = from_text(
            "CREATE KEYSPACE imp WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1};\n\
             CREATE TABLE imp.t (k int, c text, v text, n bigint, tags set<text>, PRIMARY KEY (k, c));",
        )
        .unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].namespace, "imp.t");
        assert_eq!(t[0].partition_key[0].0, "k");
        assert_eq!(t[0].clustering[0].0, "c");
        assert_eq!(t[0].columns["tags"].0, "set<text>");
        assert!(t[0].schema_text.starts_with("CREATE KEYSPACE imp"));
        assert!(from_text("SELECT * FROM x").is_err());
        assert!(from_text("CREATE TABLE ((").is_err());
    }
}
