//! Completing CQL keys with the merged schema at `repo pull`.
//!
//! A sidecar knows a table's primary key only if the DDL or the driver's
//! `system_schema` reads went through it; with one sidecar per node, the control
//! connection (and so the schema) passes through one of them. The others decode an
//! INSERT by the bind metadata alone, which names the partition key but not the
//! clustering columns: their key is the partition key, and the clustering values sit
//! among the row's cells (`key_source: bind_metadata`); an UPDATE or DELETE keeps
//! its WHERE order (`key_source: where`). A single tap of the same traffic saw the
//! schema and keys the row fully. The working store has the schema every source
//! learned, so the pull completes such keys before merging: the mutation then names
//! the row the database wrote, and a copy of it from another source (a retry through
//! another sidecar) has the same identity.

use serde_json::{Map, Value};

use crate::store::{Mutation, NamespaceSchema, Payload};

/// Completes `m`'s key from `schema` when the decoder did not know the table's
/// primary key: key columns found among the values move to the key, in primary-key
/// order (with their cells dropped from the payload); a key already complete is
/// put in primary-key order. Returns whether `m` changed. A key that stays
/// incomplete (a column neither in the key nor among the values) is left as it was.
pub fn complete_key(m: &mut Mutation, schema: &NamespaceSchema) -> bool {
    use crate::store::WriteOp;
    if !matches!(m.op, WriteOp::Insert | WriteOp::Update | WriteOp::Delete) {
        return false;
    }
    let Payload::Cql(payload) = &mut m.payload else {
        return false;
    };
    let Some(json) = &m.write_json else {
        return false;
    };
    let Ok(Value::Object(mut line)) = serde_json::from_str::<Value>(json) else {
        return false;
    };
    if line.get("key_source").and_then(Value::as_str) == Some("schema") {
        return false;
    }
    let Some(Value::Object(key)) = line.get("key").cloned() else {
        return false;
    };
    let mut values = match line.get("values") {
        Some(Value::Object(v)) => v.clone(),
        _ => Map::new(),
    };
    let columns: Vec<&str> = schema
        .partition_key
        .iter()
        .map(String::as_str)
        .chain(schema.clustering.iter().map(|c| c.name.as_str()))
        .collect();
    if columns.is_empty() {
        return false;
    }
    // Only a row-level key may be completed: a DELETE or UPDATE naming fewer columns
    // is a partition or range operation, whose key stays what its WHERE gave.
    let row_level = m.op == crate::store::WriteOp::Insert;
    let mut full = Map::with_capacity(columns.len());
    let mut moved = Vec::new();
    for c in &columns {
        if let Some(v) = key.get(*c) {
            full.insert((*c).to_string(), v.clone());
        } else if row_level {
            match values.remove(*c) {
                Some(v) => {
                    full.insert((*c).to_string(), v);
                    moved.push((*c).to_string());
                }
                None => return false,
            }
        }
    }
    if full.len() != key.len() + moved.len() || key.keys().any(|k| !full.contains_key(k)) {
        // The key names a column the schema does not have: not this table's form.
        return false;
    }
    payload
        .cells
        .retain(|cell| cell.path.is_some() || !moved.contains(&cell.column));
    // Without the schema a DELETE's WHERE was taken as a row's key (a row
    // deletion); naming the partition key alone of a table with clustering columns,
    // it deletes the partition.
    if m.op == crate::store::WriteOp::Delete
        && !schema.clustering.is_empty()
        && full.len() == schema.partition_key.len()
        && payload.range_deletions.is_empty()
        && payload.partition_deletion.is_none()
    {
        if let Some(d) = payload.row_deletion.take() {
            payload.partition_deletion = Some(d);
        }
    }
    let key = Value::Object(full);
    m.key = key.to_string();
    line.insert("key".into(), key);
    line.insert("values".into(), Value::Object(values));
    line.insert("key_source".into(), Value::String("schema".into()));
    m.write_json = Some(Value::Object(line).to_string());
    true
}
