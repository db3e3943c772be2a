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

use crate::store::envelope::line::{KeySource, LineTree};
use crate::store::{Mutation, NamespaceSchema, Payload, StoredLine};

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
    if !matches!(m.payload, Payload::Cql(_)) {
        return false;
    }
    // The line as printed: values the store kept as bytes (a prepared statement's
    // bound values, format 5) rendered in place, since key columns are found there.
    let Some(mut line) = crate::commit::write_line(m) else {
        return false;
    };
    let Payload::Cql(payload) = &mut m.payload else {
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
        .retain(|cell| cell.path.is_some() || !moved.iter().any(|m| **m == *cell.column));
    // Without the schema a DELETE's WHERE was taken as a row's key (a row
    // deletion); naming the partition key alone of a table with clustering columns
    // (and no clustering range), it deletes the partition.
    let ranged = line.get("range").is_some_and(|r| !r.is_null());
    if m.op == crate::store::WriteOp::Delete
        && !ranged
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
    let values = Value::Object(values);
    match m.line.as_mut() {
        Some(StoredLine::Write(w)) => {
            w.key = LineTree::from(&key);
            w.values = LineTree::from(&values);
            w.key_source = Some(KeySource::Schema);
        }
        _ => {
            line.insert("key".into(), key);
            line.insert("values".into(), values);
            line.insert("key_source".into(), Value::String("schema".into()));
            m.line = Some(StoredLine::Tree(LineTree::from(&Value::Object(line))));
        }
    }
    // The values are in the line now (key columns moved out of them).
    m.line_values = None;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        Acknowledgement, ClusteringColumn, CqlEvidence, CqlPayload, Deletion, Evidence,
        EvidenceDetail, Outcome, Source, WriteOp,
    };
    use serde_json::json;

    fn schema() -> NamespaceSchema {
        NamespaceSchema {
            partition_key: vec!["id".into()],
            clustering: vec![ClusteringColumn {
                name: "c".into(),
                descending: false,
            }],
            ..NamespaceSchema::default()
        }
    }

    /// A DELETE decoded without the schema: its WHERE as the key, a row deletion.
    fn delete(line: Value) -> Mutation {
        Mutation {
            commit_time: 1,
            source: Source {
                node: "10.0.0.1:9042".parse().unwrap(),
                flow: 1,
            },
            namespace: "ks.t".into(),
            key: line["key"].to_string(),
            op: WriteOp::Delete,
            outcome: Outcome::Committed,
            evidence: Evidence {
                note: String::new(),
                detail: EvidenceDetail::Cql(CqlEvidence::default()),
            },
            write_timestamp: Some(5),
            ttl: None,
            ack: Acknowledgement::Consistency {
                level: "QUORUM".into(),
                serial: None,
            },
            batch: None,
            payload: Payload::Cql(CqlPayload {
                row_deletion: Some(Deletion {
                    timestamp: 5,
                    local_deletion_time: 1,
                }),
                ..CqlPayload::default()
            }),
            line: Some(StoredLine::Tree(LineTree::from(&line))),
            line_values: None,
            ddl: None,
        }
    }

    fn deletions(m: &Mutation) -> (bool, bool) {
        let Payload::Cql(p) = &m.payload else {
            panic!("cql")
        };
        (p.row_deletion.is_some(), p.partition_deletion.is_some())
    }

    #[test]
    fn a_partition_key_delete_becomes_a_partition_deletion_and_a_ranged_one_does_not() {
        let mut whole = delete(json!({"key": {"id": 1}, "values": {}, "key_source": "where"}));
        assert!(complete_key(&mut whole, &schema()));
        assert_eq!(deletions(&whole), (false, true));

        let mut ranged = delete(json!({
            "key": {"id": 1}, "range": {"c": {"gt": 3}}, "values": {}, "key_source": "where"
        }));
        complete_key(&mut ranged, &schema());
        assert_eq!(deletions(&ranged), (true, false), "a range is no partition");

        let mut row =
            delete(json!({"key": {"c": 2, "id": 1}, "values": {}, "key_source": "where"}));
        assert!(complete_key(&mut row, &schema()));
        assert_eq!(row.key, r#"{"id":1,"c":2}"#, "primary-key order");
        assert_eq!(deletions(&row), (true, false));
    }

    #[test]
    fn a_key_naming_a_column_the_schema_lacks_is_left_alone() {
        let mut m = delete(json!({"key": {"id": 1, "x": 2}, "values": {}, "key_source": "where"}));
        let before = m.clone();
        assert!(!complete_key(&mut m, &schema()));
        assert_eq!(m, before);
    }
}
