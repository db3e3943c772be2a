//! What a CQL restore will write where: the version's tables selected and renamed,
//! each with the schema the store describes (`decode::cql::stored_schema`), and the
//! schema statements the target lacks (`CREATE ... IF NOT EXISTS`), checked against
//! the target's own schema before anything is written.
//!
//! Why from the store and not from the snapshot's script alone: a version may be cut
//! from the log with no snapshot. A snapshot's recorded script still contributes what
//! the store's schema cannot say: static columns, clustering order and the keyspace's
//! replication.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, bail, Result};
use tidemark_cql::ColumnType;

use crate::decode::cql::schema::Schema;
use crate::restore::Rename;
use crate::snapshot::source::{glob, is_literal};
use crate::snapshot::take::cql_schema::{ident, Table as TargetTable};
use crate::version::model::NamespaceCount;

/// One column as restore writes it.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// Type text as the store recorded it.
    pub type_text: String,
    pub ty: ColumnType,
    pub is_static: bool,
    /// Clustering columns: `DESC` order.
    pub desc: bool,
}

impl Column {
    /// A non-frozen collection or UDT (one cell per element).
    pub fn multi_cell(&self) -> bool {
        crate::snapshot::take::cql_schema::multi_cell(&self.type_text, &self.ty)
    }

    pub fn counter(&self) -> bool {
        matches!(self.ty.effective(), ColumnType::Counter)
    }
}

/// One table of the version and where it goes.
#[derive(Debug, Clone)]
pub struct Table {
    /// `ks.t` as in the version.
    pub source: String,
    /// Target keyspace and table (after renames).
    pub keyspace: String,
    pub name: String,
    pub partition_key: Vec<Column>,
    pub clustering: Vec<Column>,
    /// Static and regular columns.
    pub others: Vec<Column>,
    /// Rows the version holds.
    pub rows: u64,
}

impl Table {
    pub fn target(&self) -> String {
        format!("{}.{}", self.keyspace, self.name)
    }

    /// `ks.t` quoted for CQL text.
    pub fn qualified(&self) -> String {
        format!("{}.{}", ident(&self.keyspace), ident(&self.name))
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.partition_key
            .iter()
            .chain(&self.clustering)
            .chain(&self.others)
            .find(|c| c.name == name)
    }

    pub fn is_counter_table(&self) -> bool {
        self.others.iter().any(Column::counter)
    }
}

/// A user type to create in a target keyspace.
#[derive(Debug, Clone)]
pub struct UserType {
    pub keyspace: String,
    pub name: String,
    pub fields: Vec<(String, String)>,
}

/// Every table selected, the user types and keyspaces they need.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub tables: Vec<Table>,
    pub types: Vec<UserType>,
    /// Target keyspace → the replication map recorded for its source keyspace (CQL
    /// map text), if a snapshot recorded one.
    pub keyspaces: BTreeMap<String, Option<String>>,
}

/// What the snapshot scripts recorded, per source namespace (`ks.t` → script).
pub type Scripts = BTreeMap<String, String>;

/// Builds the plan from the version's namespaces and the store's schema.
pub fn build(
    namespaces: &[NamespaceCount],
    schema: &Schema,
    scripts: &Scripts,
    keyspaces: &[String],
    tables: &[String],
    renames: &[Rename],
) -> Result<Plan> {
    let selected: Vec<&NamespaceCount> = namespaces
        .iter()
        .filter(|n| n.protocol == crate::store::Protocol::Cql)
        .filter(|n| crate::snapshot::source::selected(keyspaces, tables, &n.namespace))
        .collect();
    for k in keyspaces.iter().filter(|k| is_literal(k)) {
        if !selected.iter().any(|n| {
            n.namespace
                .split_once('.')
                .is_some_and(|(ks, _)| glob(k, ks))
        }) {
            bail!("the version has no table in keyspace {k:?}");
        }
    }
    for t in tables.iter().filter(|t| is_literal(t)) {
        if !selected.iter().any(|n| {
            glob(t, &n.namespace) || n.namespace.split_once('.').is_some_and(|(_, x)| glob(t, x))
        }) {
            bail!("the version has no table {t:?}");
        }
    }
    let mut plan = Plan::default();
    let mut types_done = BTreeSet::new();
    for n in selected {
        let Some((ks, t)) = n.namespace.split_once('.') else {
            bail!("version namespace {:?} is not keyspace.table", n.namespace);
        };
        let Some(ts) = schema.table(ks, t) else {
            bail!(
                "the store knows no schema for {}: cannot restore it",
                n.namespace
            );
        };
        let target = Rename::apply(renames, &n.namespace);
        let (tks, tname) = target
            .split_once('.')
            .ok_or_else(|| anyhow!("rename of {} gives {target:?}", n.namespace))?;
        let script = scripts.get(&n.namespace).map(String::as_str).unwrap_or("");
        let col = |name: &str| -> Result<Column> {
            let type_text = ts
                .types
                .get(name)
                .ok_or_else(|| anyhow!("{}: no type known for column {name}", n.namespace))?
                .clone();
            let ty = schema.parse_type(ks, &type_text).ok_or_else(|| {
                anyhow!("{}.{name}: type {type_text:?} not understood", n.namespace)
            })?;
            Ok(Column {
                is_static: script_says(script, &format!("{} {type_text} static", ident(name))),
                desc: script_says(script, &format!("{} DESC", ident(name))),
                name: name.to_string(),
                type_text,
                ty,
            })
        };
        if ts.partition_key.is_empty() {
            bail!("{}: the store knows no partition key", n.namespace);
        }
        let partition_key = ts
            .partition_key
            .iter()
            .map(|c| col(c))
            .collect::<Result<Vec<_>>>()?;
        let clustering = ts
            .clustering
            .iter()
            .map(|c| col(c))
            .collect::<Result<Vec<_>>>()?;
        let mut names: Vec<&String> = ts.types.keys().filter(|c| !ts.is_key(c)).collect();
        names.sort();
        let mut others = names
            .into_iter()
            .map(|c| col(c))
            .collect::<Result<Vec<_>>>()?;
        for c in &mut others {
            // a static needs clustering columns to mean anything
            c.is_static &= !ts.clustering.is_empty();
        }
        for (name, fields) in ordered_types(schema, ks) {
            if types_done.insert((tks.to_string(), name.clone())) {
                plan.types.push(UserType {
                    keyspace: tks.to_string(),
                    name,
                    fields,
                });
            }
        }
        let replication = recorded_replication(script);
        let entry = plan.keyspaces.entry(tks.to_string()).or_insert(None);
        if entry.is_none() {
            *entry = replication;
        }
        plan.tables.push(Table {
            source: n.namespace.clone(),
            keyspace: tks.to_string(),
            name: tname.to_string(),
            partition_key,
            clustering,
            others,
            rows: n.rows,
        });
    }
    let mut seen = BTreeMap::new();
    for t in &plan.tables {
        if let Some(other) = seen.insert(t.target(), t.source.clone()) {
            bail!(
                "--rename sends both {other} and {} to {}",
                t.source,
                t.target()
            );
        }
    }
    Ok(plan)
}

/// Whether the snapshot's script holds `needle` as whole words (case-sensitive: the
/// script is the take's own spelling).
fn script_says(script: &str, needle: &str) -> bool {
    script.match_indices(needle).any(|(i, _)| {
        let before = script[..i].chars().next_back();
        let after = script[i + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '"')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// The replication map of a script's `CREATE KEYSPACE` line.
fn recorded_replication(script: &str) -> Option<String> {
    let line = script
        .lines()
        .find(|l| l.trim_start().starts_with("CREATE KEYSPACE"))?;
    let at = line.find("replication = ")? + "replication = ".len();
    let rest = &line[at..];
    let end = rest.find('}')?;
    Some(rest[..=end].to_string())
}

/// The user types of a keyspace, a type after those its fields use.
fn ordered_types(schema: &Schema, ks: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut left: Vec<(String, Vec<(String, String)>)> = schema
        .udts_of(ks)
        .map(|(n, f)| (n.to_string(), f.to_vec()))
        .collect();
    left.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    while !left.is_empty() {
        let names: Vec<String> = left.iter().map(|(n, _)| n.clone()).collect();
        let ready = left.iter().position(|(me, fields)| {
            !fields.iter().any(|(_, t)| {
                names
                    .iter()
                    .any(|n| n != me && script_says(t, n) && !out.iter().any(|(o, _)| o == n))
            })
        });
        // a cycle (which CQL cannot create) goes in name order
        out.push(left.remove(ready.unwrap_or(0)));
    }
    out
}

/// `--replication` as a CQL map: `SimpleStrategy:3`, `NetworkTopologyStrategy:dc1=3,dc2=2`
/// or a literal map (`{'class': ...}`).
pub fn parse_replication(s: &str) -> Result<String> {
    let s = s.trim();
    if s.starts_with('{') && s.ends_with('}') {
        return Ok(s.to_string());
    }
    let bad = || {
        anyhow!(
            "invalid --replication {s:?}: SimpleStrategy:3, NetworkTopologyStrategy:dc1=3,dc2=2 or a CQL map"
        )
    };
    let (class, rest) = s.split_once(':').ok_or_else(bad)?;
    let rf = |x: &str| -> Result<u32> {
        x.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(bad)
    };
    let plain = |x: &str| {
        !x.is_empty()
            && x.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    match class.trim() {
        "SimpleStrategy" => Ok(format!(
            "{{'class': 'SimpleStrategy', 'replication_factor': '{}'}}",
            rf(rest)?
        )),
        "NetworkTopologyStrategy" => {
            let mut parts = vec!["'class': 'NetworkTopologyStrategy'".to_string()];
            for dc in rest.split(',') {
                let (name, n) = dc.split_once('=').ok_or_else(bad)?;
                if !plain(name.trim()) {
                    return Err(bad());
                }
                parts.push(format!("'{}': '{}'", name.trim(), rf(n)?));
            }
            Ok(format!("{{{}}}", parts.join(", ")))
        }
        _ => Err(bad()),
    }
}

/// The replication for a keyspace restore creates: `--replication`, else the one
/// recorded (a SimpleStrategy factor above the target's node count is lowered to it:
/// a keyspace asking more replicas than nodes refuses QUORUM writes), else
/// SimpleStrategy with min(3, nodes).
pub fn replication_for(given: Option<&str>, recorded: Option<&str>, nodes: usize) -> String {
    if let Some(g) = given {
        return g.to_string();
    }
    let nodes = nodes.max(1);
    if let Some(r) = recorded {
        if !r.contains("SimpleStrategy") {
            return r.to_string();
        }
        let factor = r
            .split("'replication_factor': '")
            .nth(1)
            .and_then(|x| x.split('\'').next())
            .and_then(|x| x.parse::<usize>().ok());
        if let Some(f) = factor {
            return format!(
                "{{'class': 'SimpleStrategy', 'replication_factor': '{}'}}",
                f.min(nodes)
            );
        }
    }
    format!(
        "{{'class': 'org.apache.cassandra.locator.SimpleStrategy', 'replication_factor': '{}'}}",
        nodes.min(3)
    )
}

/// The schema statements the target lacks, in the order they must run; an `Err`
/// (before anything is written) when a table exists with another key or other
/// column types.
pub fn schema_statements(
    plan: &Plan,
    target: &[TargetTable],
    target_keyspaces: &BTreeSet<String>,
    target_types: &BTreeSet<(String, String)>,
    replication: Option<&str>,
    nodes: usize,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (ks, recorded) in &plan.keyspaces {
        if !target_keyspaces.contains(ks) {
            out.push(format!(
                "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {}",
                ident(ks),
                replication_for(replication, recorded.as_deref(), nodes)
            ));
        }
    }
    for t in &plan.types {
        if !target_types.contains(&(t.keyspace.clone(), t.name.clone())) {
            let fields: Vec<String> = t
                .fields
                .iter()
                .map(|(f, ty)| format!("{} {ty}", ident(f)))
                .collect();
            out.push(format!(
                "CREATE TYPE IF NOT EXISTS {}.{} ({})",
                ident(&t.keyspace),
                ident(&t.name),
                fields.join(", ")
            ));
        }
    }
    for t in &plan.tables {
        match target
            .iter()
            .find(|x| x.keyspace == t.keyspace && x.name == t.name)
        {
            Some(existing) => check_same(t, existing)?,
            None => out.push(create_table(t)),
        }
    }
    Ok(out)
}

/// Type text compared without spaces or case (`map<text,int>` = `map<text, int>`).
fn norm(t: &str) -> String {
    t.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

fn check_same(t: &Table, existing: &TargetTable) -> Result<()> {
    let names = |cols: &[Column]| cols.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    let theirs = |cols: &[crate::snapshot::take::cql_schema::Col]| {
        cols.iter().map(|c| c.name.clone()).collect::<Vec<_>>()
    };
    if names(&t.partition_key) != theirs(&existing.partition_key)
        || names(&t.clustering) != theirs(&existing.clustering)
    {
        bail!(
            "target table {} exists with another primary key (({}) {} there, ({}) {} in the version)",
            t.target(),
            theirs(&existing.partition_key).join(", "),
            theirs(&existing.clustering).join(", "),
            names(&t.partition_key).join(", "),
            names(&t.clustering).join(", ")
        );
    }
    let all = existing
        .partition_key
        .iter()
        .chain(&existing.clustering)
        .chain(&existing.others);
    let theirs: BTreeMap<&str, &str> = all
        .map(|c| (c.name.as_str(), c.type_text.as_str()))
        .collect();
    for c in t.partition_key.iter().chain(&t.clustering).chain(&t.others) {
        match theirs.get(c.name.as_str()) {
            None => bail!(
                "target table {} exists without column {} (the version has it)",
                t.target(),
                c.name
            ),
            Some(ty) if norm(ty) != norm(&c.type_text) => bail!(
                "target table {} exists with column {} of type {ty}, the version's is {}",
                t.target(),
                c.name,
                c.type_text
            ),
            Some(_) => {}
        }
    }
    Ok(())
}

/// `CREATE TABLE IF NOT EXISTS` for a table of the plan.
pub fn create_table(t: &Table) -> String {
    let mut defs: Vec<String> = Vec::new();
    for c in t.partition_key.iter().chain(&t.clustering).chain(&t.others) {
        let mut d = format!("{} {}", ident(&c.name), c.type_text);
        if c.is_static {
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
    let mut s = format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        t.qualified(),
        defs.join(", ")
    );
    if !t.clustering.is_empty() {
        let order: Vec<String> = t
            .clustering
            .iter()
            .map(|c| format!("{} {}", ident(&c.name), if c.desc { "DESC" } else { "ASC" }))
            .collect();
        s.push_str(&format!(" WITH CLUSTERING ORDER BY ({})", order.join(", ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_short_forms_become_cql_maps() {
        assert_eq!(
            parse_replication("SimpleStrategy:3").unwrap(),
            "{'class': 'SimpleStrategy', 'replication_factor': '3'}"
        );
        assert_eq!(
            parse_replication("NetworkTopologyStrategy:dc1=3,dc2=2").unwrap(),
            "{'class': 'NetworkTopologyStrategy', 'dc1': '3', 'dc2': '2'}"
        );
        let lit = "{'class': 'SimpleStrategy', 'replication_factor': 1}";
        assert_eq!(parse_replication(lit).unwrap(), lit);
        for bad in [
            "Simple:3",
            "SimpleStrategy:x",
            "SimpleStrategy:0",
            "NetworkTopologyStrategy:dc1",
            "x",
        ] {
            assert!(parse_replication(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_recorded_factor_above_the_nodes_is_lowered() {
        let rec =
            "{'class': 'org.apache.cassandra.locator.SimpleStrategy', 'replication_factor': '3'}";
        assert!(replication_for(None, Some(rec), 1).contains("'replication_factor': '1'"));
        assert!(replication_for(None, Some(rec), 5).contains("'replication_factor': '3'"));
        assert!(replication_for(None, None, 2).contains("'replication_factor': '2'"));
        assert_eq!(replication_for(Some("{x}"), Some(rec), 1), "{x}");
    }

    #[test]
    fn script_words_match_whole_identifiers_only() {
        let s = "CREATE TABLE ks.t (id int, s text static, xs text, PRIMARY KEY (id, c)) WITH CLUSTERING ORDER BY (c DESC)";
        assert!(script_says(s, "s text static"));
        assert!(!script_says(s, "xs text static"));
        assert!(script_says(s, "c DESC"));
        assert_eq!(
            recorded_replication("CREATE KEYSPACE IF NOT EXISTS ks WITH replication = {'class': 'S', 'replication_factor': '3'};\nCREATE TABLE x"),
            Some("{'class': 'S', 'replication_factor': '3'}".into())
        );
    }
}
