//! The schema a CQL snapshot records, read from `system_schema` (so the type text
//! is the server's own spelling, which `decode::cql::schema` parses), and written
//! back as the `CREATE` statements a restore runs.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result};
use scylla::client::session::Session;
use scylla::value::{CqlValue, Row};
use tidemark_cql::ColumnType;

use crate::decode::cql::schema::Schema;

/// Keyspaces a snapshot never reads (the server's own).
pub const SYSTEM_KEYSPACES: [&str; 7] = [
    "system",
    "system_schema",
    "system_auth",
    "system_distributed",
    "system_traces",
    "system_views",
    "system_virtual_schema",
];

/// Table options a `CREATE TABLE ... WITH` accepts (Cassandra 5.0), in the order
/// `DESCRIBE` prints them; other `system_schema.tables` columns are not options.
const TABLE_OPTIONS: [&str; 18] = [
    "additional_write_policy",
    "allow_auto_snapshot",
    "bloom_filter_fp_chance",
    "caching",
    "cdc",
    "comment",
    "compaction",
    "compression",
    "memtable",
    "crc_check_chance",
    "default_time_to_live",
    "extensions",
    "gc_grace_seconds",
    "incremental_backups",
    "max_index_interval",
    "memtable_flush_period_in_ms",
    "min_index_interval",
    "read_repair",
];

/// One column of a table.
#[derive(Debug, Clone)]
pub struct Col {
    pub name: String,
    /// `partition_key`, `clustering`, `static` or `regular`.
    pub kind: String,
    pub position: i32,
    /// Type text as `system_schema.columns` spells it.
    pub type_text: String,
    pub ty: ColumnType,
    /// `asc` / `desc` for clustering columns.
    pub order: String,
}

/// Whether a column of this type (as CQL spells it, and parsed) is a non-frozen
/// collection or UDT: Cassandra keeps one cell per element.
pub fn multi_cell(type_text: &str, ty: &ColumnType) -> bool {
    !type_text.trim_start().starts_with("frozen<")
        && matches!(
            ty.effective(),
            ColumnType::List(_) | ColumnType::Set(_) | ColumnType::Map(..) | ColumnType::Udt { .. }
        )
}

impl Col {
    /// A non-frozen collection or UDT: Cassandra keeps one cell per element.
    pub fn multi_cell(&self) -> bool {
        multi_cell(&self.type_text, &self.ty)
    }

    pub fn counter(&self) -> bool {
        matches!(self.ty.effective(), ColumnType::Counter)
    }
}

/// One table to scan.
#[derive(Debug, Clone)]
pub struct Table {
    pub keyspace: String,
    pub name: String,
    /// Partition key columns, in key order.
    pub partition_key: Vec<Col>,
    /// Clustering columns, in clustering order.
    pub clustering: Vec<Col>,
    /// Static, then regular columns, by name.
    pub others: Vec<Col>,
    /// `CREATE KEYSPACE`, `CREATE TYPE`s of the keyspace, `CREATE TABLE`.
    pub schema: String,
}

impl Table {
    pub fn namespace(&self) -> String {
        format!("{}.{}", self.keyspace, self.name)
    }
}

/// Double-quotes an identifier unless it is a plain lower-case one.
pub fn ident(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn map_literal(m: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{}: {}", quote(k), quote(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// A `system_schema.tables` option value as CQL text; `None` for a value CQL
/// cannot state (or an empty one).
fn option_literal(v: &CqlValue) -> Option<String> {
    Some(match v {
        CqlValue::Text(s) | CqlValue::Ascii(s) => quote(s),
        CqlValue::Boolean(b) => b.to_string(),
        CqlValue::Int(i) => i.to_string(),
        CqlValue::BigInt(i) => i.to_string(),
        CqlValue::Double(d) => d.to_string(),
        CqlValue::Float(f) => f.to_string(),
        CqlValue::Map(entries) => {
            if entries.is_empty() {
                return None;
            }
            let parts: Option<Vec<String>> = entries
                .iter()
                .map(|(k, v)| Some(format!("{}: {}", option_literal(k)?, blob_or(v)?)))
                .collect();
            format!("{{{}}}", parts?.join(", "))
        }
        _ => return None,
    })
}

fn blob_or(v: &CqlValue) -> Option<String> {
    match v {
        CqlValue::Blob(b) => Some(format!(
            "0x{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        )),
        other => option_literal(other),
    }
}

/// A `system_schema.columns` row: name, clustering order, kind, position, type.
type ColumnRow = (String, String, String, i32, String);

/// Reads the schema of every selected table: `keep(ks, table)` selects.
pub async fn read(session: &Session, keep: impl Fn(&str, &str) -> bool) -> Result<Vec<Table>> {
    let q = |text: &'static str| async move {
        session
            .query_unpaged(text, ())
            .await
            .with_context(|| format!("reading the schema ({text})"))?
            .into_rows_result()
            .context("reading the schema")
    };
    let keyspaces =
        q("SELECT keyspace_name, durable_writes, replication FROM system_schema.keyspaces").await?;
    let mut ks_text: BTreeMap<String, String> = BTreeMap::new();
    for r in keyspaces.rows::<(String, Option<bool>, Option<HashMap<String, String>>)>()? {
        let (name, durable, replication) = r?;
        if SYSTEM_KEYSPACES.contains(&name.as_str()) {
            continue;
        }
        let replication: BTreeMap<_, _> = replication.unwrap_or_default().into_iter().collect();
        let mut text = format!(
            "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {}",
            ident(&name),
            map_literal(&replication)
        );
        if durable == Some(false) {
            text.push_str(" AND durable_writes = false");
        }
        ks_text.insert(name, text + ";");
    }

    let mut schema = Schema::default();
    let mut types_found: BTreeMap<String, Vec<UserType>> = BTreeMap::new();
    let types =
        q("SELECT keyspace_name, type_name, field_names, field_types FROM system_schema.types")
            .await?;
    for r in types.rows::<(String, String, Option<Vec<String>>, Option<Vec<String>>)>()? {
        let (ks, name, names, tys) = r?;
        let fields: Vec<(String, String)> = names
            .unwrap_or_default()
            .into_iter()
            .zip(tys.unwrap_or_default())
            .collect();
        let body: Vec<String> = fields
            .iter()
            .map(|(f, t)| format!("{} {t}", ident(f)))
            .collect();
        let text = format!(
            "CREATE TYPE IF NOT EXISTS {}.{} ({});",
            ident(&ks),
            ident(&name),
            body.join(", ")
        );
        let field_types = fields.iter().map(|(_, t)| t.clone()).collect();
        types_found
            .entry(ks.clone())
            .or_default()
            .push((name.clone(), field_types, text));
        schema.add_udt(&ks, &name, fields);
    }
    let types_text: BTreeMap<String, Vec<String>> = types_found
        .into_iter()
        .map(|(ks, types)| (ks, dependency_order(types)))
        .collect();

    let columns = q("SELECT keyspace_name, table_name, column_name, clustering_order, kind, position, type FROM system_schema.columns").await?;
    let mut by_table: BTreeMap<(String, String), Vec<ColumnRow>> = BTreeMap::new();
    for r in columns.rows::<(
        String,
        String,
        String,
        Option<String>,
        String,
        Option<i32>,
        String,
    )>()? {
        let (ks, t, c, order, kind, pos, ty) = r?;
        by_table.entry((ks, t)).or_default().push((
            c,
            order.unwrap_or_default(),
            kind,
            pos.unwrap_or(-1),
            ty,
        ));
    }

    let tables = q("SELECT * FROM system_schema.tables").await?;
    let specs: Vec<String> = tables
        .column_specs()
        .iter()
        .map(|s| s.name().to_string())
        .collect();
    let mut out = Vec::new();
    for r in tables.rows::<Row>()? {
        let row = r?;
        let get = |name: &str| {
            specs
                .iter()
                .position(|s| s == name)
                .and_then(|i| row.columns.get(i).cloned().flatten())
        };
        let (Some(CqlValue::Text(ks)), Some(CqlValue::Text(name))) =
            (get("keyspace_name"), get("table_name"))
        else {
            continue;
        };
        if !ks_text.contains_key(&ks) || !keep(&ks, &name) {
            continue;
        }
        let cols = by_table
            .remove(&(ks.clone(), name.clone()))
            .unwrap_or_default();
        let mut table = Table {
            keyspace: ks.clone(),
            name: name.clone(),
            partition_key: Vec::new(),
            clustering: Vec::new(),
            others: Vec::new(),
            schema: String::new(),
        };
        for (c, order, kind, position, type_text) in cols {
            let ty = schema
                .parse_type(&ks, &type_text)
                .with_context(|| format!("{ks}.{name}.{c}: type {type_text:?} not understood"))?;
            let col = Col {
                name: c,
                kind: kind.clone(),
                position,
                type_text,
                ty,
                order,
            };
            match kind.as_str() {
                "partition_key" => table.partition_key.push(col),
                "clustering" => table.clustering.push(col),
                _ => table.others.push(col),
            }
        }
        table.partition_key.sort_by_key(|c| c.position);
        table.clustering.sort_by_key(|c| c.position);
        table
            .others
            .sort_by_key(|c| (c.kind != "static", c.name.clone()));
        let mut options = Vec::new();
        for o in TABLE_OPTIONS {
            if let Some(v) = get(o).as_ref().and_then(option_literal) {
                options.push(format!("{o} = {v}"));
            }
        }
        let mut text = String::new();
        text.push_str(&ks_text[&ks]);
        text.push('\n');
        for t in types_text.get(&ks).into_iter().flatten() {
            text.push_str(t);
            text.push('\n');
        }
        text.push_str(&create_table(&table, &options));
        table.schema = text;
        out.push(table);
    }
    Ok(out)
}

/// A user type: name, field type texts, its `CREATE TYPE` statement.
type UserType = (String, Vec<String>, String);

/// The `CREATE TYPE` statements ordered so that a type comes after the types its
/// fields use (`system_schema.types` lists them by name). A cycle, which CQL cannot
/// create, would keep the remaining ones in name order.
fn dependency_order(mut types: Vec<UserType>) -> Vec<String> {
    let uses = |field_types: &[String], other: &str| {
        field_types.iter().any(|t| {
            t.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '"'))
                .any(|w| w.trim_matches('"') == other)
        })
    };
    let mut out = Vec::with_capacity(types.len());
    while !types.is_empty() {
        let ready = (0..types.len())
            .find(|&i| {
                !types
                    .iter()
                    .enumerate()
                    .any(|(j, o)| j != i && uses(&types[i].1, &o.0))
            })
            .unwrap_or(0);
        out.push(types.remove(ready).2);
    }
    out
}

/// `CREATE TABLE` with its primary key, clustering order and options.
fn create_table(t: &Table, options: &[String]) -> String {
    let mut defs: Vec<String> = Vec::new();
    for c in t.partition_key.iter().chain(&t.clustering).chain(&t.others) {
        let mut d = format!("{} {}", ident(&c.name), c.type_text);
        if c.kind == "static" {
            d.push_str(" static");
        }
        defs.push(d);
    }
    let pk: Vec<String> = t.partition_key.iter().map(|c| ident(&c.name)).collect();
    let pk = if pk.len() == 1 {
        pk[0].clone()
    } else {
        format!("({})", pk.join(", "))
    };
    let mut key = vec![pk];
    key.extend(t.clustering.iter().map(|c| ident(&c.name)));
    defs.push(format!("PRIMARY KEY ({})", key.join(", ")));
    let mut with = Vec::new();
    if !t.clustering.is_empty() {
        let order: Vec<String> = t
            .clustering
            .iter()
            .map(|c| format!("{} {}", ident(&c.name), c.order.to_uppercase()))
            .collect();
        with.push(format!("CLUSTERING ORDER BY ({})", order.join(", ")));
    }
    with.extend(options.iter().cloned());
    let mut s = format!(
        "CREATE TABLE IF NOT EXISTS {}.{} ({})",
        ident(&t.keyspace),
        ident(&t.name),
        defs.join(", ")
    );
    if !with.is_empty() {
        s.push_str(" WITH ");
        s.push_str(&with.join(" AND "));
    }
    s.push(';');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_types_come_after_the_types_they_use() {
        let t = |name: &str, fields: &[&str]| {
            (
                name.to_string(),
                fields.iter().map(|f| f.to_string()).collect(),
                name.to_string(),
            )
        };
        let order = dependency_order(vec![
            t("address", &["text", "frozen<geo>"]),
            t("geo", &["double", "double"]),
            t("person", &["frozen<list<frozen<address>>>", "text"]),
            t("zip", &["int"]),
        ]);
        assert_eq!(order, ["geo", "address", "person", "zip"]);
        assert_eq!(ident("Mixed"), "\"Mixed\"");
        assert_eq!(ident("plain_1"), "plain_1");
    }
}
