//! Partition and clustering-range deletions, and which rows they cover.
//!
//! The log keys a row by its canonical key (a JSON object of the primary-key columns in
//! key order); a partition deletion is keyed by the partition key alone and a range
//! deletion carries its bounds as serialized clustering values. Which rows a range
//! covers is decided by Cassandra's order of the clustering types: each row's
//! clustering values are compared, as the decoder renders them, with the bound's
//! values rendered the same way (`decode::cql::extract::order::compare`).

use std::cmp::Ordering;
use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::cql_row::later_deletion;
use crate::decode::cql::extract::bound::typed;
use crate::decode::cql::extract::order::compare;
use crate::decode::cql::protocol::ColumnType;
use crate::decode::cql::schema::Schema;
use crate::store::{ClusteringBound, Deletion, RangeDeletion};

/// The deletions of one table that cover more than one row.
#[derive(Debug, Default)]
pub struct TableShadows {
    /// Partition key (canonical JSON) → partition deletion.
    partitions: HashMap<String, Deletion>,
    /// Partition key → range deletions within it.
    ranges: HashMap<String, Vec<RangeDeletion>>,
}

/// How a table's keys are laid out, for matching rows to deletions.
#[derive(Debug, Default)]
pub struct KeyLayout {
    partition_key: Vec<String>,
    /// Clustering columns with their types (`None` when not parseable).
    clustering: Vec<(String, Option<ColumnType>)>,
}

impl KeyLayout {
    /// From the learned schema of table `ks.table`; `None` when it is not known.
    pub fn of(schema: &Schema, keyspace: &str, table: &str) -> Option<KeyLayout> {
        let t = schema.table(keyspace, table)?;
        Some(KeyLayout {
            partition_key: t.partition_key.clone(),
            clustering: t
                .clustering
                .iter()
                .map(|c| (c.clone(), schema.column_type(keyspace, table, c)))
                .collect(),
        })
    }

    /// The partition key of a row key: its partition columns, in order, as canonical
    /// JSON. Without a known layout, the whole key (so only exact matches apply).
    pub fn partition_of(&self, key: &Map<String, Value>) -> String {
        if self.partition_key.is_empty() {
            return Value::Object(key.clone()).to_string();
        }
        let mut pk = Map::new();
        for c in &self.partition_key {
            if let Some(v) = key.get(c) {
                pk.insert(c.clone(), v.clone());
            }
        }
        Value::Object(pk).to_string()
    }
}

impl TableShadows {
    /// Records a partition deletion under `partition` (the mutation's key).
    pub fn delete_partition(&mut self, partition: &str, d: Deletion) {
        let e = self.partitions.entry(partition.to_string()).or_insert(d);
        *e = later_deletion(*e, d);
    }

    /// Records a range deletion in `partition`.
    pub fn delete_range(&mut self, partition: &str, r: RangeDeletion) {
        self.ranges
            .entry(partition.to_string())
            .or_default()
            .push(r);
    }

    pub fn is_empty(&self) -> bool {
        self.partitions.is_empty() && self.ranges.is_empty()
    }

    /// Every partition deletion, by partition key (canonical JSON).
    pub fn partitions(&self) -> impl Iterator<Item = (&str, Deletion)> + '_ {
        self.partitions.iter().map(|(k, d)| (k.as_str(), *d))
    }

    /// Every partition's range deletions, by partition key.
    pub fn ranges(&self) -> impl Iterator<Item = (&str, &[RangeDeletion])> + '_ {
        self.ranges.iter().map(|(k, r)| (k.as_str(), r.as_slice()))
    }

    /// The strongest deletion covering the row with this key, if any.
    pub fn covering(&self, layout: &KeyLayout, key: &Map<String, Value>) -> Option<Deletion> {
        let partition = layout.partition_of(key);
        let mut out = self.partitions.get(&partition).copied();
        if layout.partition_key.is_empty() {
            // No schema: a partition deletion's key names exactly the partition
            // columns, so it covers every row whose key has those values.
            for (pk, d) in &self.partitions {
                if covers_by_columns(pk, key) {
                    out = Some(out.map_or(*d, |o| later_deletion(o, *d)));
                }
            }
        }
        for r in self.ranges.get(&partition).into_iter().flatten() {
            if in_range(layout, key, r) {
                out = Some(out.map_or(r.deletion, |d| later_deletion(d, r.deletion)));
            }
        }
        out
    }
}

/// Whether every column of a partition deletion's key (canonical JSON) has the same
/// value in the row's key.
pub fn covers_by_columns(partition: &str, key: &Map<String, Value>) -> bool {
    match serde_json::from_str::<Value>(partition) {
        Ok(Value::Object(pk)) => !pk.is_empty() && pk.iter().all(|(c, v)| key.get(c) == Some(v)),
        _ => false,
    }
}

/// Whether a row's clustering values lie within a range deletion's bounds (start is
/// the lower bound by value, end the upper: how the decoder builds them from `>`/`<`).
pub fn in_range(layout: &KeyLayout, key: &Map<String, Value>, r: &RangeDeletion) -> bool {
    match (against(layout, key, &r.start), against(layout, key, &r.end)) {
        (Some((lo, lo_prefix_eq)), Some((hi, hi_prefix_eq))) => {
            let above_start = lo == Ordering::Greater || (lo_prefix_eq && r.start.inclusive);
            let below_end = hi == Ordering::Less || (hi_prefix_eq && r.end.inclusive);
            above_start && below_end
        }
        _ => false,
    }
}

/// The row's clustering values against a bound's prefix: the first difference (or
/// Equal) and whether the whole prefix matched. `None` when the row lacks a value or
/// a type is unknown (the row is then not counted as covered, and never guessed).
fn against(
    layout: &KeyLayout,
    key: &Map<String, Value>,
    bound: &ClusteringBound,
) -> Option<(Ordering, bool)> {
    for (i, b) in bound.prefix.iter().enumerate() {
        let (name, ty) = layout.clustering.get(i)?;
        let ty = ty.as_ref()?;
        let row_value = key.get(name)?;
        let bound_value = typed(ty, &Bytes::copy_from_slice(b));
        match compare(row_value, &bound_value, ty) {
            Ordering::Equal => continue,
            other => return Some((other, false)),
        }
    }
    Some((Ordering::Equal, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(s: &str) -> Map<String, Value> {
        match serde_json::from_str(s).unwrap() {
            Value::Object(o) => o,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_partition_deletion_covers_its_rows_without_a_schema() {
        let mut t = TableShadows::default();
        let d = Deletion {
            timestamp: 5,
            local_deletion_time: 0,
        };
        t.delete_partition(r#"{"pk":1}"#, d);
        let none = KeyLayout::default();
        assert_eq!(t.covering(&none, &obj(r#"{"pk":1,"ck":7}"#)), Some(d));
        assert_eq!(t.covering(&none, &obj(r#"{"pk":2,"ck":7}"#)), None);
    }

    #[test]
    fn a_range_deletion_covers_rows_by_clustering_order() {
        let layout = KeyLayout {
            partition_key: vec!["pk".into()],
            clustering: vec![("ck".into(), Some(ColumnType::Int))],
        };
        let d = Deletion {
            timestamp: 5,
            local_deletion_time: 0,
        };
        let bound = |v: Option<i32>, inclusive| ClusteringBound {
            prefix: v
                .map(|v| serde_bytes::ByteBuf::from(v.to_be_bytes().to_vec()))
                .into_iter()
                .collect(),
            inclusive,
        };
        let mut t = TableShadows::default();
        // ck > 2 AND ck <= 4
        t.delete_range(
            r#"{"pk":1}"#,
            RangeDeletion {
                start: bound(Some(2), false),
                end: bound(Some(4), true),
                deletion: d,
            },
        );
        let covered: Vec<i32> = (0..7)
            .filter(|ck| {
                t.covering(&layout, &obj(&format!(r#"{{"pk":1,"ck":{ck}}}"#)))
                    .is_some()
            })
            .collect();
        assert_eq!(covered, [3, 4]);
        // -1 < 0 by the int comparator, not by bytes.
        let mut u = TableShadows::default();
        u.delete_range(
            r#"{"pk":1}"#,
            RangeDeletion {
                start: bound(None, true),
                end: bound(Some(0), false),
                deletion: d,
            },
        );
        assert!(u.covering(&layout, &obj(r#"{"pk":1,"ck":-1}"#)).is_some());
        assert!(u.covering(&layout, &obj(r#"{"pk":1,"ck":0}"#)).is_none());
    }
}
