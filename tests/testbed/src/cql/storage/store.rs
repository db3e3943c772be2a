//! Per-replica storage: each node keeps its own partitions, rows and cells with their
//! timestamps, TTLs and tombstones, merged on write with Cassandra's reconciliation.
//! Replicas are never forced equal: what a node holds is what reached it. Reads merge
//! replica copies the same way, and the logical view drops shadowed and dead data.

use super::cell::{reconcile, Cell, Deletion};
use super::order::compare;
use bytes::Bytes;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// One row on one replica. The row marker (set by INSERT, not by UPDATE) is a cell
/// with an empty value: it keeps a row alive with no live regular cells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    pub marker: Option<Cell>,
    pub deletion: Option<Deletion>,
    pub cells: BTreeMap<String, Cell>,
    /// Non-frozen collections: one cell per element, keyed by column name.
    pub complex: BTreeMap<String, Complex>,
}

/// A non-frozen collection column on one replica, as Cassandra stores it: a
/// collection-level deletion (set when the whole collection is overwritten or
/// deleted) and one cell per element, keyed by its cell path (the set element, the
/// map key, or a list element's timeuuid).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Complex {
    pub deletion: Option<Deletion>,
    pub cells: BTreeMap<Bytes, Cell>,
}

impl Complex {
    fn merge(&mut self, other: &Complex) {
        self.deletion = Deletion::merge(self.deletion, other.deletion);
        for (path, cell) in &other.cells {
            match self.cells.get_mut(path) {
                Some(mine) => *mine = reconcile(mine, cell).clone(),
                None => {
                    self.cells.insert(path.clone(), cell.clone());
                }
            }
        }
    }
}

/// A clustering range deletion (`DELETE ... WHERE k = ? AND c1 = ? AND c2 > ? AND
/// c2 <= ?`, or a clustering prefix): shadows the rows whose clustering starts with
/// `prefix` and whose next component lies between the bounds (compared by value, so
/// DESC columns need no special case). Carries that column's type so a replica can
/// compare without the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeTombstone {
    pub prefix: Vec<Bytes>,
    /// `(value, inclusive)`; `None` = unbounded.
    pub lower: Option<(Bytes, bool)>,
    pub upper: Option<(Bytes, bool)>,
    /// Type of the clustering column after the prefix (the bounded one).
    pub ty: tidemark_cql::ColumnType,
    pub deletion: Deletion,
}

impl RangeTombstone {
    /// Whether the row with clustering `ck` lies inside the range.
    pub fn covers(&self, ck: &[Bytes]) -> bool {
        use std::cmp::Ordering as O;
        if ck.len() < self.prefix.len() || ck[..self.prefix.len()] != self.prefix[..] {
            return false;
        }
        let Some(v) = ck.get(self.prefix.len()) else {
            return self.lower.is_none() && self.upper.is_none();
        };
        let lower_ok = self
            .lower
            .as_ref()
            .is_none_or(|(b, incl)| match compare(&self.ty, v, b) {
                O::Greater => true,
                O::Equal => *incl,
                O::Less => false,
            });
        let upper_ok = self
            .upper
            .as_ref()
            .is_none_or(|(b, incl)| match compare(&self.ty, v, b) {
                O::Less => true,
                O::Equal => *incl,
                O::Greater => false,
            });
        lower_ok && upper_ok
    }
}

/// The live content of one row at read time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveRow {
    pub cells: BTreeMap<String, Cell>,
    /// Live elements of each non-frozen collection, by cell path.
    pub complex: BTreeMap<String, Vec<(Bytes, Cell)>>,
}

impl Row {
    fn merge(&mut self, other: &Row) {
        self.marker = match (self.marker.take(), &other.marker) {
            (Some(a), Some(b)) => Some(reconcile(&a, b).clone()),
            (a, b) => a.or_else(|| b.clone()),
        };
        self.deletion = Deletion::merge(self.deletion, other.deletion);
        for (name, cell) in &other.cells {
            match self.cells.get_mut(name) {
                Some(mine) => *mine = reconcile(mine, cell).clone(),
                None => {
                    self.cells.insert(name.clone(), cell.clone());
                }
            }
        }
        for (name, c) in &other.complex {
            self.complex.entry(name.clone()).or_default().merge(c);
        }
    }
}

/// A partition on one replica, or a write to one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partition {
    /// Serialized partition key components.
    pub key: Vec<Bytes>,
    pub token: i64,
    pub deletion: Option<Deletion>,
    /// Rows by serialized clustering components (empty for tables without clustering).
    pub rows: BTreeMap<Vec<Bytes>, Row>,
    /// Clustering range deletions.
    pub ranges: Vec<RangeTombstone>,
}

impl Partition {
    /// Merges another copy (a write, or another replica's copy) into this one.
    pub fn merge(&mut self, other: &Partition) {
        self.deletion = Deletion::merge(self.deletion, other.deletion);
        for (ck, row) in &other.rows {
            self.rows.entry(ck.clone()).or_default().merge(row);
        }
        for r in &other.ranges {
            if !self.ranges.contains(r) {
                self.ranges.push(r.clone());
            }
        }
    }

    /// The rows a read at `now_secs` sees: deletions applied, dead cells dropped,
    /// rows without marker or live cell omitted.
    pub fn live_view(&self, now_secs: i32) -> Vec<(Vec<Bytes>, LiveRow)> {
        let mut out = Vec::new();
        for (ck, row) in &self.rows {
            let mut del = Deletion::merge(self.deletion, row.deletion);
            for r in self.ranges.iter().filter(|r| r.covers(ck)) {
                del = Deletion::merge(del, Some(r.deletion));
            }
            let visible = |c: &Cell, extra: Option<Deletion>| {
                c.is_live(now_secs)
                    && !Deletion::merge(del, extra).is_some_and(|d| d.shadows(c.timestamp))
            };
            let mut live = LiveRow {
                cells: row
                    .cells
                    .iter()
                    .filter(|(_, c)| visible(c, None))
                    .map(|(n, c)| (n.clone(), c.clone()))
                    .collect(),
                ..LiveRow::default()
            };
            for (name, cx) in &row.complex {
                let elems: Vec<(Bytes, Cell)> = cx
                    .cells
                    .iter()
                    .filter(|(_, c)| visible(c, cx.deletion))
                    .map(|(p, c)| (p.clone(), c.clone()))
                    .collect();
                if !elems.is_empty() {
                    live.complex.insert(name.clone(), elems);
                }
            }
            let marker_live = row.marker.as_ref().is_some_and(|m| visible(m, None));
            if marker_live || !live.cells.is_empty() || !live.complex.is_empty() {
                out.push((ck.clone(), live));
            }
        }
        out
    }

    /// [`Partition::live_view`] with collection elements flattened into cells named
    /// `column[hex of cell path]` (the ground-truth form).
    pub fn live_rows(&self, now_secs: i32) -> Vec<(Vec<Bytes>, BTreeMap<String, Cell>)> {
        self.live_view(now_secs)
            .into_iter()
            .map(|(ck, live)| {
                let mut cells = live.cells;
                for (name, elems) in live.complex {
                    for (path, c) in elems {
                        cells.insert(format!("{name}[{}]", hex(&path)), c);
                    }
                }
                (ck, cells)
            })
            .collect()
    }
}

/// Everything one node stores: `(keyspace, table)` → serialized partition key →
/// partition.
#[derive(Debug, Default)]
pub struct NodeStore {
    tables: HashMap<(String, String), HashMap<Bytes, Partition>>,
}

/// One stored cell, for ground-truth dumps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CellRecord {
    pub keyspace: String,
    pub table: String,
    /// Hex of each partition key component.
    pub partition_key: Vec<String>,
    pub token: i64,
    /// Hex of each clustering component.
    pub clustering: Vec<String>,
    /// Column name; `""` for the row marker, `"<row deletion>"` and
    /// `"<partition deletion>"` for deletions (value empty, ttl 0).
    pub column: String,
    #[serde(flatten)]
    pub cell: Cell,
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl NodeStore {
    pub fn apply(&mut self, ks: &str, table: &str, pk: &Bytes, update: &Partition) {
        self.tables
            .entry((ks.to_string(), table.to_string()))
            .or_default()
            .entry(pk.clone())
            .or_insert_with(|| Partition {
                key: update.key.clone(),
                token: update.token,
                ..Partition::default()
            })
            .merge(update);
    }

    pub fn partition(&self, ks: &str, table: &str, pk: &Bytes) -> Option<&Partition> {
        self.tables
            .get(&(ks.to_string(), table.to_string()))?
            .get(pk)
    }

    /// Serialized keys of every partition this node holds for a table.
    pub fn partition_keys(&self, ks: &str, table: &str) -> Vec<Bytes> {
        self.tables
            .get(&(ks.to_string(), table.to_string()))
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Removes a dropped column's cells from every partition of a table (ALTER TABLE
    /// DROP; Cassandra instead ignores cells older than the drop time).
    pub fn drop_column(&mut self, ks: &str, table: &str, column: &str) {
        if let Some(t) = self.tables.get_mut(&(ks.to_string(), table.to_string())) {
            for p in t.values_mut() {
                for r in p.rows.values_mut() {
                    r.cells.remove(column);
                    r.complex.remove(column);
                }
            }
        }
    }

    /// Forgets a table (DROP TABLE) or, with `table == None`, a keyspace.
    pub fn forget(&mut self, ks: &str, table: Option<&str>) {
        self.tables
            .retain(|(k, t), _| !(k == ks && table.is_none_or(|x| x == t)));
    }

    /// Every stored cell, marker and deletion, sorted by table, token and key.
    pub fn dump(&self) -> Vec<CellRecord> {
        let mut out = Vec::new();
        for ((ks, table), parts) in &self.tables {
            for p in parts.values() {
                let rec = |ck: &[Bytes], column: &str, cell: Cell| CellRecord {
                    keyspace: ks.clone(),
                    table: table.clone(),
                    partition_key: p.key.iter().map(|k| hex(k)).collect(),
                    token: p.token,
                    clustering: ck.iter().map(|k| hex(k)).collect(),
                    column: column.to_string(),
                    cell,
                };
                let del_cell = |d: Deletion| Cell::tombstone(d.timestamp, d.local_deletion_time);
                if let Some(d) = p.deletion {
                    out.push(rec(&[], "<partition deletion>", del_cell(d)));
                }
                for (ck, row) in &p.rows {
                    if let Some(d) = row.deletion {
                        out.push(rec(ck, "<row deletion>", del_cell(d)));
                    }
                    if let Some(m) = &row.marker {
                        out.push(rec(ck, "", m.clone()));
                    }
                    for (name, c) in &row.cells {
                        out.push(rec(ck, name, c.clone()));
                    }
                    for (name, cx) in &row.complex {
                        if let Some(d) = cx.deletion {
                            out.push(rec(
                                ck,
                                &format!("{name}<collection deletion>"),
                                del_cell(d),
                            ));
                        }
                        for (path, c) in &cx.cells {
                            out.push(rec(ck, &format!("{name}[{}]", hex(path)), c.clone()));
                        }
                    }
                }
                for r in &p.ranges {
                    let bound = |x: &Option<(Bytes, bool)>, lower: bool| match (x, lower) {
                        (Some((v, true)), true) => format!("[{}", hex(v)),
                        (Some((v, false)), true) => format!("({}", hex(v)),
                        (Some((v, true)), false) => format!("{}]", hex(v)),
                        (Some((v, false)), false) => format!("{})", hex(v)),
                        (None, _) => "*".to_string(),
                    };
                    let name = format!(
                        "<range deletion {}..{}>",
                        bound(&r.lower, true),
                        bound(&r.upper, false),
                    );
                    out.push(rec(&r.prefix, &name, del_cell(r.deletion)));
                }
            }
        }
        out.sort_by(|a, b| {
            (
                &a.keyspace,
                &a.table,
                a.token,
                &a.partition_key,
                &a.clustering,
                &a.column,
            )
                .cmp(&(
                    &b.keyspace,
                    &b.table,
                    b.token,
                    &b.partition_key,
                    &b.clustering,
                    &b.column,
                ))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    fn write(ts: i64, col: &str, v: &'static str, marker: bool) -> Partition {
        let mut row = Row::default();
        if marker {
            row.marker = Some(Cell::live(ts, Bytes::new()));
        }
        row.cells.insert(col.into(), Cell::live(ts, b(v)));
        Partition {
            key: vec![b("k")],
            token: 1,
            deletion: None,
            rows: [(vec![b("c")], row)].into(),
            ranges: Vec::new(),
        }
    }

    #[test]
    fn merge_reconciles_and_deletions_shadow() {
        let mut s = NodeStore::default();
        let pk = b("k");
        s.apply("ks", "t", &pk, &write(10, "v", "new", true));
        s.apply("ks", "t", &pk, &write(5, "v", "old", true));
        let p = s.partition("ks", "t", &pk).unwrap();
        assert_eq!(p.live_rows(0)[0].1["v"].value, b("new"));
        // A partition deletion at 10 shadows everything written at <= 10.
        let del = Partition {
            key: vec![b("k")],
            token: 1,
            deletion: Some(Deletion {
                timestamp: 10,
                local_deletion_time: 0,
            }),
            rows: BTreeMap::new(),
            ranges: Vec::new(),
        };
        s.apply("ks", "t", &pk, &del);
        assert!(s.partition("ks", "t", &pk).unwrap().live_rows(0).is_empty());
        s.apply("ks", "t", &pk, &write(11, "w", "x", false));
        let rows = s.partition("ks", "t", &pk).unwrap().live_rows(0);
        assert_eq!(rows.len(), 1);
        assert!(!rows[0].1.contains_key("v"));
        // Marker, 2 cells, partition deletion.
        assert_eq!(s.dump().len(), 4);
        s.forget("ks", None);
        assert!(s.dump().is_empty());
    }

    #[test]
    fn update_without_marker_disappears_when_cells_die() {
        let mut s = NodeStore::default();
        let pk = b("k");
        s.apply("ks", "t", &pk, &write(1, "v", "x", false));
        let mut tomb = write(2, "v", "", false);
        tomb.rows.values_mut().for_each(|r| {
            r.cells.insert("v".into(), Cell::tombstone(2, 0));
        });
        s.apply("ks", "t", &pk, &tomb);
        assert!(s.partition("ks", "t", &pk).unwrap().live_rows(0).is_empty());
    }
}

#[cfg(test)]
#[path = "storage_tests.rs"]
mod reconcile_tests;
