//! The one line a differing row gets: the columns that differ, both values as
//! `SELECT JSON` renders them (`version::render`, the renderer `export` uses), or,
//! where the values render the same, what else differs (a TTL present on one side
//! only, or with `--timestamps` the write time).

use std::collections::BTreeSet;

use serde_json::Value;

use super::digest::Columns;
use crate::decode::cql::schema::Schema;
use crate::store::Cell;
use crate::version::render;

/// A row as `SELECT JSON` renders it, one line.
pub fn row(namespace: &str, key: &str, cells: &[Cell], schema: &Schema) -> String {
    render::cql_row(namespace, key, cells, schema).to_string()
}

/// What differs between the version's row and the target's.
pub fn different(
    namespace: &str,
    key: &str,
    version: (&[Cell], &Columns),
    target: (&[Cell], &Columns),
    schema: &Schema,
) -> String {
    let rendered_v = render::cql_row(namespace, key, version.0, schema);
    let rendered_t = render::cql_row(namespace, key, target.0, schema);
    let names: BTreeSet<&str> = version
        .1
        .keys()
        .chain(target.1.keys())
        .map(String::as_str)
        .collect();
    let mut parts = Vec::new();
    for n in names {
        if version.1.get(n) == target.1.get(n) {
            continue;
        }
        let (a, b) = (
            rendered_v.get(n).unwrap_or(&Value::Null),
            rendered_t.get(n).unwrap_or(&Value::Null),
        );
        if a != b {
            parts.push(format!("{n}: version {a}, target {b}"));
            continue;
        }
        let simple = |cells: &[Cell]| {
            cells
                .iter()
                .find(|c| &*c.column == n && c.path.is_none())
                .cloned()
        };
        match (simple(version.0), simple(target.0)) {
            (Some(x), Some(y)) if x.ttl.is_some() != y.ttl.is_some() => parts.push(format!(
                "{n}: ttl version {}, target {}",
                ttl(x.ttl),
                ttl(y.ttl)
            )),
            (Some(x), Some(y)) => parts.push(format!(
                "{n}: writetime version {}, target {}",
                x.timestamp, y.timestamp
            )),
            _ => parts.push(format!("{n}: elements differ")),
        }
    }
    if parts.is_empty() {
        "rows differ".to_string()
    } else {
        parts.join("; ")
    }
}

fn ttl(t: Option<u32>) -> String {
    t.map_or("none".to_string(), |t| t.to_string())
}
