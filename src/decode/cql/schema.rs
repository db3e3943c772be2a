//! Table schemas learned from the wire, so INSERT key columns and literal types are
//! known without asking the cluster.
//!
//! Two sources, both already in captures of real drivers: the `system_schema.columns`
//! and `system_schema.types` rows every driver's control connection reads on connect
//! (and after each schema change), and `CREATE TABLE` statements seen in QUERY text.
//! Schema is cluster-wide in Cassandra, so one [`Schema`] serves every node of a run.
//! Column types are kept as CQL type text and resolved on use, because a column may
//! name a UDT whose definition arrives later.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tidemark_cql::message::Rows;
use tidemark_cql::{ColumnType, Text, Value};

/// Key columns and column types of one table.
#[derive(Debug, Clone, Default)]
pub struct TableSchema {
    /// Partition key columns in key order.
    pub partition_key: Vec<String>,
    /// Clustering columns in order.
    pub clustering: Vec<String>,
    /// Column name → CQL type text (`map<text, frozen<list<int>>>`).
    pub types: HashMap<String, String>,
    /// Key columns with their `position`, as learned from rows in any order.
    pk_pos: Vec<(i32, String)>,
    ck_pos: Vec<(i32, String)>,
}

impl TableSchema {
    /// A table with its key given in order (from CREATE TABLE text).
    pub fn with_key(types: HashMap<String, String>, pk: Vec<String>, ck: Vec<String>) -> Self {
        TableSchema {
            pk_pos: pk
                .iter()
                .enumerate()
                .map(|(i, c)| (i as i32, c.clone()))
                .collect(),
            ck_pos: ck
                .iter()
                .enumerate()
                .map(|(i, c)| (i as i32, c.clone()))
                .collect(),
            partition_key: pk,
            clustering: ck,
            types,
        }
    }

    /// True for a partition key or clustering column.
    pub fn is_key(&self, column: &str) -> bool {
        self.partition_key.iter().any(|c| c == column)
            || self.clustering.iter().any(|c| c == column)
    }
}

/// Everything learned about the cluster's schema.
#[derive(Debug, Default)]
pub struct Schema {
    /// keyspace → table → schema (nested, so a lookup needs no owned key).
    tables: HashMap<String, HashMap<String, TableSchema>>,
    /// (keyspace, type) → fields with their type text, in declaration order.
    udts: HashMap<(String, String), Vec<(String, String)>>,
    /// Bumped by every change, so a holder can tell when to persist it again.
    generation: u64,
    /// keyspace → table → column → its type parsed (`None`: [`Schema::parse_type`]
    /// gives none) and whether it is frozen at the top, remade by every change that
    /// could alter it (column types, UDTs): extraction asks for a column's type on
    /// every write, and parsing the text each time showed in profiles.
    parsed: HashMap<String, HashMap<String, HashMap<String, ParsedType>>>,
}

/// A column's parsed type and whether its text says `frozen<` at the top.
type ParsedType = Option<(Arc<ColumnType>, bool)>;

/// Nesting limit for type text (hostile schema rows must not recurse deeply).
const MAX_TYPE_DEPTH: usize = 24;

impl Schema {
    pub fn table(&self, keyspace: &str, table: &str) -> Option<&TableSchema> {
        self.tables.get(keyspace)?.get(table)
    }

    /// The resolved type of a column, when the table and type are known.
    pub fn column_type(&self, keyspace: &str, table: &str, column: &str) -> Option<ColumnType> {
        let text = self.table(keyspace, table)?.types.get(column)?;
        self.parse_type(keyspace, text)
    }

    /// [`Schema::column_type`], shared, with whether the column is frozen at the
    /// top: parsed once per schema change, not per call.
    pub fn parsed_column_type(
        &self,
        keyspace: &str,
        table: &str,
        column: &str,
    ) -> Option<(Arc<ColumnType>, bool)> {
        let cached = self
            .parsed
            .get(keyspace)
            .and_then(|t| t.get(table))
            .and_then(|c| c.get(column));
        match cached {
            Some(p) => p.clone(),
            // Not cached (a column this schema does not have): as parsed now.
            None => {
                let text = self.table(keyspace, table)?.types.get(column)?;
                Some((Arc::new(self.parse_type(keyspace, text)?), is_frozen(text)))
            }
        }
    }

    /// [`Schema::parsed_column_type`] borrowed, when the parsed cache holds the
    /// column (it does for every column of a known table): no reference count
    /// changes on the hot path.
    pub fn cached_column_type(
        &self,
        keyspace: &str,
        table: &str,
        column: &str,
    ) -> Option<(&Arc<ColumnType>, bool)> {
        let (ty, frozen) = self
            .parsed
            .get(keyspace)?
            .get(table)?
            .get(column)?
            .as_ref()?;
        Some((ty, *frozen))
    }

    /// Remakes the parsed types of `keyspaces` (every keyspace when `None`).
    fn reparse(&mut self, keyspaces: Option<&HashSet<String>>) {
        let mut parsed = std::mem::take(&mut self.parsed);
        for (ks, tables) in &self.tables {
            if keyspaces.is_some_and(|k| !k.contains(ks)) {
                continue;
            }
            let out = parsed.entry(ks.clone()).or_default();
            out.clear();
            for (name, t) in tables {
                out.insert(name.clone(), self.parse_table(ks, t));
            }
        }
        self.parsed = parsed;
    }

    fn parse_table(&self, ks: &str, t: &TableSchema) -> HashMap<String, ParsedType> {
        t.types
            .iter()
            .map(|(c, text)| {
                let ty = self.parse_type(ks, text);
                (c.clone(), ty.map(|ty| (Arc::new(ty), is_frozen(text))))
            })
            .collect()
    }

    /// Parses CQL type text as `system_schema` writes it, resolving UDT names in
    /// `keyspace`. `None` for text it cannot read or UDTs not (yet) known.
    pub fn parse_type(&self, keyspace: &str, text: &str) -> Option<ColumnType> {
        let mut p = TypeParser {
            s: text.as_bytes(),
            i: 0,
            schema: self,
            keyspace,
        };
        let t = p.ty(0)?;
        p.skip_ws();
        (p.i == p.s.len()).then_some(t)
    }

    /// Learns from a RESULT Rows of `system_schema.columns` or `system_schema.types`
    /// (recognized by its own metadata). Rows of other tables are ignored.
    pub fn learn_rows(&mut self, rows: &Rows) {
        let cols = &rows.metadata.columns;
        let Some(first) = cols.first() else { return };
        if first.keyspace.as_str() != "system_schema" {
            return;
        }
        let types: Vec<&ColumnType> = cols.iter().map(|c| &c.ty).collect();
        let Ok(decoded) = rows.typed_rows(&types) else {
            return;
        };
        let idx = |name: &str| cols.iter().position(|c| c.name.as_str() == name);
        match first.table.as_str() {
            "columns" => {
                let (Some(k), Some(t), Some(c), Some(kind), Some(pos), Some(ty)) = (
                    idx("keyspace_name"),
                    idx("table_name"),
                    idx("column_name"),
                    idx("kind"),
                    idx("position"),
                    idx("type"),
                ) else {
                    return;
                };
                let mut touched = HashSet::new();
                for row in &decoded {
                    let (Some(k), Some(t), Some(c), Some(kind), Some(ty)) = (
                        text(&row[k]),
                        text(&row[t]),
                        text(&row[c]),
                        text(&row[kind]),
                        text(&row[ty]),
                    ) else {
                        continue;
                    };
                    let pos = match &row[pos] {
                        Value::Int(p) => *p,
                        _ => -1,
                    };
                    if !touched.contains(k) {
                        touched.insert(k.to_string());
                    }
                    self.add_column(k, t, c, kind, pos, ty);
                }
                self.reparse(Some(&touched));
            }
            "types" => {
                let (Some(k), Some(t), Some(names), Some(ftypes)) = (
                    idx("keyspace_name"),
                    idx("type_name"),
                    idx("field_names"),
                    idx("field_types"),
                ) else {
                    return;
                };
                for row in &decoded {
                    let (Some(k), Some(t)) = (text(&row[k]), text(&row[t])) else {
                        continue;
                    };
                    let names = text_list(&row[names]);
                    let ftypes = text_list(&row[ftypes]);
                    let fields = names.into_iter().zip(ftypes).collect();
                    self.generation += 1;
                    self.udts.insert((k.to_string(), t.to_string()), fields);
                }
                self.reparse(None);
            }
            _ => {}
        }
    }

    fn add_column(&mut self, ks: &str, table: &str, col: &str, kind: &str, pos: i32, ty: &str) {
        self.generation += 1;
        let t = self
            .tables
            .entry(ks.to_string())
            .or_default()
            .entry(table.to_string())
            .or_default();
        t.types.insert(col.to_string(), ty.to_string());
        let list = match kind {
            "partition_key" => &mut t.pk_pos,
            "clustering" => &mut t.ck_pos,
            _ => return,
        };
        if !list.iter().any(|(_, c)| c == col) {
            list.push((pos, col.to_string()));
            // Rows may come in any order; keep the key in `position` order.
            list.sort_by_key(|(p, _)| *p);
        }
        t.partition_key = t.pk_pos.iter().map(|(_, c)| c.clone()).collect();
        t.clustering = t.ck_pos.iter().map(|(_, c)| c.clone()).collect();
    }

    /// How many changes the schema has seen.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Every known table: (keyspace, table, schema), in no particular order.
    pub fn tables(&self) -> impl Iterator<Item = (&str, &str, &TableSchema)> {
        self.tables.iter().flat_map(|(ks, ts)| {
            ts.iter()
                .map(move |(t, schema)| (ks.as_str(), t.as_str(), schema))
        })
    }

    /// The user types of a keyspace: (name, fields with their type text).
    pub fn udts_of<'a>(
        &'a self,
        keyspace: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a [(String, String)])> + 'a {
        self.udts
            .iter()
            .filter(move |((ks, _), _)| ks == keyspace)
            .map(|((_, name), fields)| (name.as_str(), fields.as_slice()))
    }

    /// Records a table defined by `CREATE TABLE` text (see [`super::ddl`]).
    pub fn add_table(&mut self, keyspace: &str, table: &str, schema: TableSchema) {
        self.generation += 1;
        let parsed = self.parse_table(keyspace, &schema);
        self.parsed
            .entry(keyspace.to_string())
            .or_default()
            .insert(table.to_string(), parsed);
        self.tables
            .entry(keyspace.to_string())
            .or_default()
            .insert(table.to_string(), schema);
    }

    /// Records a UDT defined by `CREATE TYPE` text.
    pub fn add_udt(&mut self, keyspace: &str, name: &str, fields: Vec<(String, String)>) {
        self.generation += 1;
        self.udts
            .insert((keyspace.to_string(), name.to_string()), fields);
        self.reparse(None);
    }
}

/// Whether type text is frozen at the top.
fn is_frozen(text: &str) -> bool {
    text.trim_start().starts_with("frozen<")
}

fn text(v: &Value) -> Option<&str> {
    match v {
        Value::Text(t) | Value::Ascii(t) => Some(t.as_str()),
        _ => None,
    }
}

fn text_list(v: &Value) -> Vec<String> {
    match v {
        Value::List(items) => items.iter().filter_map(text).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

struct TypeParser<'a> {
    s: &'a [u8],
    i: usize,
    schema: &'a Schema,
    keyspace: &'a str,
}

impl TypeParser<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.i).is_some_and(|b| b.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// A name: `[A-Za-z0-9_]+` or `"quoted"` (kept exactly).
    fn name(&mut self) -> Option<String> {
        self.skip_ws();
        if self.s.get(self.i) == Some(&b'"') {
            let mut out = Vec::new();
            self.i += 1;
            loop {
                match self.s.get(self.i)? {
                    b'"' if self.s.get(self.i + 1) == Some(&b'"') => {
                        out.push(b'"');
                        self.i += 2;
                    }
                    b'"' => {
                        self.i += 1;
                        return String::from_utf8(out).ok();
                    }
                    b => {
                        out.push(*b);
                        self.i += 1;
                    }
                }
            }
        }
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            self.i += 1;
        }
        (self.i > start)
            .then(|| String::from_utf8_lossy(&self.s[start..self.i]).to_ascii_lowercase())
    }

    fn args(&mut self, depth: usize) -> Option<Vec<ColumnType>> {
        if !self.eat(b'<') {
            return None;
        }
        let mut out = vec![self.ty(depth + 1)?];
        while self.eat(b',') {
            out.push(self.ty(depth + 1)?);
        }
        self.eat(b'>').then_some(out)
    }

    fn ty(&mut self, depth: usize) -> Option<ColumnType> {
        if depth > MAX_TYPE_DEPTH {
            return None;
        }
        self.skip_ws();
        if self.s.get(self.i) == Some(&b'\'') {
            let end = self.s[self.i + 1..].iter().position(|b| *b == b'\'')?;
            let class = std::str::from_utf8(&self.s[self.i + 1..self.i + 1 + end]).ok()?;
            self.i += end + 2;
            return Some(ColumnType::custom(Text::from(class)));
        }
        let quoted = self.s.get(self.i) == Some(&b'"');
        let name = self.name()?;
        if !quoted {
            if let Some(t) = native(&name) {
                return Some(t);
            }
        }
        let one = |p: &mut Self| -> Option<ColumnType> {
            let mut a = p.args(depth)?;
            (a.len() == 1).then(|| a.remove(0))
        };
        match name.as_str() {
            "list" if !quoted => Some(ColumnType::List(Box::new(one(self)?))),
            "set" if !quoted => Some(ColumnType::Set(Box::new(one(self)?))),
            "frozen" if !quoted => one(self),
            "map" if !quoted => {
                let a = self.args(depth)?;
                let [k, v]: [ColumnType; 2] = a.try_into().ok()?;
                Some(ColumnType::Map(Box::new(k), Box::new(v)))
            }
            "tuple" if !quoted => Some(ColumnType::Tuple(self.args(depth)?)),
            "vector" if !quoted => {
                if !self.eat(b'<') {
                    return None;
                }
                let element = self.ty(depth + 1)?;
                if !self.eat(b',') {
                    return None;
                }
                let dim = self.name()?.parse::<u32>().ok()?;
                self.eat(b'>').then(|| ColumnType::Vector {
                    element: Box::new(element),
                    dimension: dim,
                })
            }
            _ => self.udt(&name, depth),
        }
    }

    fn udt(&mut self, name: &str, depth: usize) -> Option<ColumnType> {
        let (ks, name) = if self.eat(b'.') {
            (name.to_string(), self.name()?)
        } else {
            (self.keyspace.to_string(), name.to_string())
        };
        let fields = self.schema.udts.get(&(ks.clone(), name.clone()))?;
        let mut out = Vec::with_capacity(fields.len());
        for (f, ft) in fields {
            let mut sub = TypeParser {
                s: ft.as_bytes(),
                i: 0,
                schema: self.schema,
                keyspace: &ks,
            };
            out.push((Text::from(f.as_str()), sub.ty(depth + 1)?));
        }
        Some(ColumnType::Udt {
            keyspace: Text::from(ks),
            name: Text::from(name),
            fields: out,
        })
    }
}

/// A native type by its CQL name.
pub fn native(name: &str) -> Option<ColumnType> {
    use ColumnType as T;
    Some(match name {
        "ascii" => T::Ascii,
        "bigint" => T::BigInt,
        "blob" => T::Blob,
        "boolean" => T::Boolean,
        "counter" => T::Counter,
        "decimal" => T::Decimal,
        "double" => T::Double,
        "duration" => T::Duration,
        "float" => T::Float,
        "inet" => T::Inet,
        "int" => T::Int,
        "smallint" => T::SmallInt,
        "text" | "varchar" => T::Varchar,
        "timestamp" => T::Timestamp,
        "timeuuid" => T::Timeuuid,
        "tinyint" => T::TinyInt,
        "uuid" => T::Uuid,
        "varint" => T::Varint,
        "date" => T::Date,
        "time" => T::Time,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_and_udt_types() {
        let mut s = Schema::default();
        s.add_udt(
            "tm",
            "address",
            vec![
                ("street".into(), "text".into()),
                ("zip".into(), "int".into()),
            ],
        );
        let t = s.parse_type("tm", "map<text, frozen<list<int>>>").unwrap();
        assert_eq!(
            t,
            ColumnType::Map(
                Box::new(ColumnType::Varchar),
                Box::new(ColumnType::List(Box::new(ColumnType::Int)))
            )
        );
        assert!(matches!(
            s.parse_type("tm", "frozen<address>"),
            Some(ColumnType::Udt { .. })
        ));
        assert!(matches!(
            s.parse_type("tm", "vector<float, 3>"),
            Some(ColumnType::Vector { dimension: 3, .. })
        ));
        assert_eq!(s.parse_type("tm", "frozen<nope>"), None);
        assert_eq!(s.parse_type("tm", "list<int"), None);
        let deep = "list<".repeat(100) + "int" + &">".repeat(100);
        assert_eq!(s.parse_type("tm", &deep), None);
    }

    #[test]
    fn parsed_types_follow_every_schema_change() {
        let mut s = Schema::default();
        let types = [("k", "int"), ("a", "frozen<pt>"), ("m", "map<text, int>")]
            .map(|(c, t)| (c.to_string(), t.to_string()));
        s.add_table(
            "tm",
            "t",
            TableSchema::with_key(types.into(), vec!["k".into()], vec![]),
        );
        let parsed = |s: &Schema, c: &str| s.parsed_column_type("tm", "t", c);
        assert_eq!(parsed(&s, "k"), Some((Arc::new(ColumnType::Int), false)));
        assert_eq!(parsed(&s, "m").map(|p| p.1), Some(false));
        // The UDT is not known yet: no type, as parse_type says.
        assert_eq!(parsed(&s, "a"), None);
        s.add_udt("tm", "pt", vec![("x".into(), "int".into())]);
        let (ty, frozen) = parsed(&s, "a").unwrap();
        assert!(frozen);
        assert_eq!(Some(&*ty), s.column_type("tm", "t", "a").as_ref());
        assert!(matches!(&*ty, ColumnType::Udt { .. }));
        assert_eq!(parsed(&s, "nope"), None);
    }
}
