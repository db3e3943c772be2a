//! One node's local copy of a table as JSON in the shape Cassandra's `sstabledump`
//! (`org.apache.cassandra.tools.SSTableExport`, its `JsonTransformer`) writes, so
//! `tidemark snapshot import --node-dump` reads the testbed's replicas and real
//! nodes' dumps through one parser.
//!
//! The shape, as Cassandra 5.0.9 writes it (a real dump is in
//! `captures/sstabledump/`): an array of partitions, each `{"table kind",
//! "partition": {"key": [getString of each component], "position",
//! "deletion_info"?}, "rows": [...]}`; a row is `{"type": "row"|"static_block",
//! "position", "clustering": [toJSONString…], "liveness_info"?: {"tstamp", "ttl"?,
//! "expires_at"?, "expired"?}, "deletion_info"?, "cells": [...]}`; a cell is
//! `{"name", "path"?, "value" | "deletion_info": {"local_delete_time"}, "tstamp"?
//! (omitted when equal to the row's liveness timestamp), "ttl"?, "expires_at"?,
//! "expired"?}`; a collection deletion is `{"name", "deletion_info":
//! {"marked_deleted", "local_delete_time"}}`; a clustering range deletion is a pair
//! of `range_tombstone_bound` entries. Times are ISO-8601 instants (`Instant`'s
//! `toString`), microseconds for write times, seconds for deletion times.
//!
//! The testbed keeps list elements under its own path bytes, not Cassandra's
//! timeuuids: list paths are written as the hex of those bytes.

use super::cell::{Cell, Deletion};
use super::schema::{ColumnKind, Table};
use super::store::{hex, NodeStore, Partition, RangeTombstone};
use serde_json::{json, Map, Value as Json};
use tidemark_cql::{ColumnType, Value};

/// `Instant.ofEpochSecond(secs, nanos).toString()`: fraction in groups of three
/// digits, omitted when zero.
pub fn instant(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if nanos != 0 {
        if nanos.is_multiple_of(1_000_000) {
            s.push_str(&format!(".{:03}", nanos / 1_000_000));
        } else if nanos.is_multiple_of(1_000) {
            s.push_str(&format!(".{:06}", nanos / 1_000));
        } else {
            s.push_str(&format!(".{nanos:09}"));
        }
    }
    s.push('Z');
    s
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn micros(ts: i64) -> String {
    instant(
        ts.div_euclid(1_000_000),
        (ts.rem_euclid(1_000_000) * 1000) as u32,
    )
}

fn seconds(s: i32) -> String {
    instant(i64::from(s), 0)
}

/// `toJSONString`: the value as `SELECT JSON` writes it.
fn json_string(ty: &ColumnType, b: &[u8]) -> Json {
    match Value::from_bytes(ty, Some(&bytes::Bytes::copy_from_slice(b))) {
        Ok(v) => serde_json::from_str(&tidemark_cql::json_text(&v, ty)).unwrap_or(Json::Null),
        Err(_) => Json::String(format!("0x{}", hex(b))),
    }
}

/// `getString`: the value as text (strings bare, blobs as hex without `0x`).
fn get_string(ty: &ColumnType, b: &[u8]) -> String {
    match json_string(ty, b) {
        Json::String(s) if matches!(ty.effective(), ColumnType::Blob) => {
            s.trim_start_matches("0x").to_string()
        }
        Json::String(s) => s,
        other => other.to_string(),
    }
}

fn deletion(d: Deletion) -> Json {
    json!({"marked_deleted": micros(d.timestamp), "local_delete_time": seconds(d.local_deletion_time)})
}

/// A cell's fields after `name` (and `path`), as `serializeCell` writes them.
fn cell_fields(obj: &mut Map<String, Json>, c: &Cell, ty: &ColumnType, live: Option<&Cell>) {
    if c.is_tombstone() {
        obj.insert(
            "deletion_info".into(),
            json!({"local_delete_time": seconds(c.local_deletion_time)}),
        );
    } else {
        obj.insert("value".into(), json_string(ty, &c.value));
    }
    if live.is_none_or(|l| l.timestamp != c.timestamp) {
        obj.insert("tstamp".into(), json!(micros(c.timestamp)));
    }
    if c.is_expiring() && live.is_none_or(|l| l.ttl != c.ttl) {
        obj.insert("ttl".into(), json!(c.ttl));
        obj.insert("expires_at".into(), json!(seconds(c.local_deletion_time)));
        obj.insert("expired".into(), json!(false));
    }
}

fn element_types(ty: &ColumnType) -> (Option<ColumnType>, ColumnType) {
    match ty.effective() {
        ColumnType::Set(e) => (Some((**e).clone()), ColumnType::Blob),
        ColumnType::Map(k, v) => (Some((**k).clone()), (**v).clone()),
        ColumnType::List(e) => (None, (**e).clone()),
        other => (None, other.clone()),
    }
}

fn bound(r: &RangeTombstone, table: &Table, lower: bool) -> Json {
    let cks: Vec<_> = table.clustering().collect();
    let mut clustering: Vec<Json> = r
        .prefix
        .iter()
        .zip(&cks)
        .map(|(v, c)| json_string(&c.ty, v))
        .collect();
    let b = if lower { &r.lower } else { &r.upper };
    let inclusive = match b {
        Some((v, incl)) => {
            if let Some(c) = cks.get(r.prefix.len()) {
                clustering.push(json_string(&c.ty, v));
            }
            *incl
        }
        None => true,
    };
    let mut o = Map::new();
    o.insert(
        "type".into(),
        json!(if inclusive { "inclusive" } else { "exclusive" }),
    );
    if !clustering.is_empty() {
        o.insert("clustering".into(), Json::Array(clustering));
    }
    o.insert("deletion_info".into(), deletion(r.deletion));
    json!({"type": "range_tombstone_bound", (if lower { "start" } else { "end" }): Json::Object(o)})
}

fn partition_json(table: &Table, p: &Partition) -> Json {
    let pks: Vec<_> = table.partition_key().collect();
    let key: Vec<Json> = p
        .key
        .iter()
        .zip(&pks)
        .map(|(v, c)| Json::String(get_string(&c.ty, v)))
        .collect();
    let mut head = Map::new();
    head.insert("key".into(), Json::Array(key));
    head.insert("position".into(), json!(0));
    if let Some(d) = p.deletion {
        head.insert("deletion_info".into(), deletion(d));
    }
    let has_clustering = table.clustering().next().is_some();
    let mut rows = Vec::new();
    for (ck, row) in &p.rows {
        let is_static = has_clustering && ck.is_empty();
        let mut o = Map::new();
        o.insert(
            "type".into(),
            json!(if is_static { "static_block" } else { "row" }),
        );
        o.insert("position".into(), json!(0));
        if !is_static && !ck.is_empty() {
            let cl: Vec<Json> = ck
                .iter()
                .zip(table.clustering())
                .map(|(v, c)| json_string(&c.ty, v))
                .collect();
            o.insert("clustering".into(), Json::Array(cl));
        }
        if let Some(m) = &row.marker {
            let mut li = Map::new();
            li.insert("tstamp".into(), json!(micros(m.timestamp)));
            if m.is_expiring() {
                li.insert("ttl".into(), json!(m.ttl));
                li.insert("expires_at".into(), json!(seconds(m.local_deletion_time)));
                li.insert("expired".into(), json!(false));
            }
            o.insert("liveness_info".into(), Json::Object(li));
        }
        if let Some(d) = row.deletion {
            o.insert("deletion_info".into(), deletion(d));
        }
        let mut cells = Vec::new();
        let live = row.marker.as_ref();
        for col in table
            .columns
            .iter()
            .filter(|c| matches!(c.kind, ColumnKind::Regular | ColumnKind::Static))
        {
            if let Some(c) = row.cells.get(&col.name) {
                let mut cell = Map::new();
                cell.insert("name".into(), json!(col.name));
                cell_fields(&mut cell, c, &col.ty, live);
                cells.push(Json::Object(cell));
            }
            if let Some(cx) = row.complex.get(&col.name) {
                if let Some(d) = cx.deletion {
                    cells.push(json!({"name": col.name, "deletion_info": deletion(d)}));
                }
                let (path_ty, value_ty) = element_types(&col.ty);
                for (path, c) in &cx.cells {
                    let mut cell = Map::new();
                    cell.insert("name".into(), json!(col.name));
                    let path_text = match &path_ty {
                        Some(t) => get_string(t, path),
                        None => hex(path),
                    };
                    cell.insert("path".into(), json!([path_text]));
                    if matches!(col.ty.effective(), ColumnType::Set(_)) && !c.is_tombstone() {
                        // A set element's cell holds no value: `toJSONString` of an
                        // empty buffer as Cassandra prints it.
                        cell_fields(&mut cell, c, &ColumnType::Blob, live);
                        cell.insert("value".into(), json!(""));
                    } else {
                        cell_fields(&mut cell, c, &value_ty, live);
                    }
                    cells.push(Json::Object(cell));
                }
            }
        }
        o.insert("cells".into(), Json::Array(cells));
        rows.push(Json::Object(o));
    }
    for r in &p.ranges {
        rows.push(bound(r, table, true));
        rows.push(bound(r, table, false));
    }
    json!({"table kind": "REGULAR", "partition": Json::Object(head), "rows": rows})
}

impl NodeStore {
    /// This node's partitions of `table` as `sstabledump` JSON, in token order.
    pub fn sstabledump(&self, table: &Table) -> Json {
        let mut parts: Vec<&Partition> = self
            .partition_keys(&table.keyspace, &table.name)
            .iter()
            .filter_map(|k| self.partition(&table.keyspace, &table.name, k))
            .collect();
        parts.sort_by(|a, b| (a.token, &a.key).cmp(&(b.token, &b.key)));
        Json::Array(parts.iter().map(|p| partition_json(table, p)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_print_as_java_does() {
        // Values from the real Cassandra 5.0.9 dump in captures/sstabledump/.
        assert_eq!(micros(1_700_000_000_000_001), "2023-11-14T22:13:20.000001Z");
        assert_eq!(micros(1_700_000_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(instant(0, 5_000_000), "1970-01-01T00:00:00.005Z");
        assert_eq!(seconds(1_796_601_066), "2026-12-06T23:51:06Z");
    }
}
