//! What of a row verify compares, reduced to one canonical form both sides share: the
//! version's cells (as `version create` wrote them) and the target's (as the
//! snapshot scan reads them through the driver) spell some things differently, so
//! neither is compared as stored.
//!
//! - Simple and frozen columns: the value bytes; whether the cell has a TTL (not the
//!   TTL itself: it counts down between the version and the read); with
//!   `--timestamps`, the write timestamp (off by default: a restore with
//!   `--overwrite` writes at the current time and the data is still equal).
//! - Non-frozen collections and UDTs: their elements. A list's elements in list order,
//!   values only (the version names them by paths it made, the scan by index; both
//!   sort in list order); a set's elements; a map's or UDT's (key, value) pairs. Per
//!   element timestamps and TTLs are not compared (the scan reads them only from
//!   Cassandra 5.0 on).
//! - Counters: the total (they have no timestamp a read can see).
//!
//! A row's digest hashes its key and these columns; a range's digest adds the row
//! digests up (wrapping), so the order rows come in does not matter and a range is
//! never held whole to be compared.

use std::collections::{BTreeMap, HashSet};

use tidemark_cql::ColumnType;
use twox_hash::XxHash3_128;

use crate::snapshot::take::cql_schema::Table;
use crate::store::{Cell, CellKind};

/// Column name → canonical bytes.
pub type Columns = BTreeMap<String, Vec<u8>>;

/// How one table's columns compare.
#[derive(Debug, Default)]
pub struct Shape {
    lists: HashSet<String>,
    sets: HashSet<String>,
    timestamps: bool,
}

/// Rows and the sum of their digests, of one token range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RangeSum {
    pub rows: u64,
    pub sum: u128,
}

impl RangeSum {
    pub fn add(&mut self, digest: u128) {
        self.rows += 1;
        self.sum = self.sum.wrapping_add(digest);
    }
}

impl Shape {
    /// From the target's table (its collection kinds); without one, every
    /// multi-cell column compares as (path, value) pairs.
    pub fn of(table: Option<&Table>, timestamps: bool) -> Shape {
        let mut s = Shape {
            timestamps,
            ..Shape::default()
        };
        for c in table.into_iter().flat_map(|t| &t.others) {
            if !c.multi_cell() {
                continue;
            }
            match c.ty.effective() {
                ColumnType::List(_) => s.lists.insert(c.name.clone()),
                ColumnType::Set(_) => s.sets.insert(c.name.clone()),
                _ => false,
            };
        }
        s
    }

    /// The canonical form of a row's cells, by column.
    pub fn columns(&self, cells: &[Cell]) -> Columns {
        let mut by_column: BTreeMap<&str, Vec<&Cell>> = BTreeMap::new();
        for c in cells {
            by_column.entry(&*c.column).or_default().push(c);
        }
        let mut out = Columns::new();
        for (column, cs) in by_column {
            let mut b = Vec::new();
            if cs.iter().any(|c| c.path.is_some()) {
                let mut elements: Vec<(&[u8], &[u8])> = cs
                    .iter()
                    .map(|c| (c.path.as_deref().unwrap_or(&[]), c.value.as_ref()))
                    .collect();
                elements.sort_unstable();
                if self.lists.contains(column) {
                    b.push(b'L');
                    elements.iter().for_each(|(_, v)| put(&mut b, v));
                } else if self.sets.contains(column) {
                    b.push(b'S');
                    elements.iter().for_each(|(p, _)| put(&mut b, p));
                } else {
                    b.push(b'M');
                    for (p, v) in &elements {
                        put(&mut b, p);
                        put(&mut b, v);
                    }
                }
            } else {
                let c = cs[cs.len() - 1];
                b.push(b'V');
                put(&mut b, &c.value);
                if c.kind != CellKind::CounterShard {
                    b.push(u8::from(c.ttl.is_some()));
                    if self.timestamps {
                        b.extend_from_slice(&c.timestamp.to_be_bytes());
                    }
                }
            }
            out.insert(column.to_string(), b);
        }
        out
    }
}

/// `[u32 length][bytes]`: no two different sequences of parts hash the same input.
fn put(b: &mut Vec<u8>, part: &[u8]) {
    b.extend_from_slice(&(part.len() as u32).to_be_bytes());
    b.extend_from_slice(part);
}

/// A row's digest: its key and its columns.
pub fn digest(key: &str, columns: &Columns) -> u128 {
    let mut b = Vec::with_capacity(64);
    put(&mut b, key.as_bytes());
    for (c, v) in columns {
        put(&mut b, c.as_bytes());
        put(&mut b, v);
    }
    XxHash3_128::oneshot(&b)
}

/// The version's cells still live at `now_secs`: a cell whose TTL ran out since the
/// version's time is gone from any target too. `None` when the row had cells and
/// none is left (the row has expired; a row of key columns alone stays).
pub fn live_now(cells: Vec<Cell>, now_secs: i64) -> Option<Vec<Cell>> {
    if cells.is_empty() {
        return Some(cells);
    }
    let live: Vec<Cell> = cells
        .into_iter()
        .filter(|c| !expired_by(c, now_secs))
        .collect();
    (!live.is_empty()).then_some(live)
}

/// Whether `c` is an expiring cell whose TTL ran out at or before `secs`.
fn expired_by(c: &Cell, secs: i64) -> bool {
    c.kind == CellKind::Expiring && c.local_deletion_time.is_some_and(|t| t <= secs)
}

/// `cells` without the expiring ones whose TTL runs out at or before `until_secs`:
/// what two sides read while a cell expires must agree on. TTLs are whole seconds
/// and a restore writes the TTL left rounded up, so a cell expiring during a
/// verify (or within a second of it) may be on one side and gone from the other.
pub fn settled(cells: &[Cell], until_secs: i64) -> Vec<Cell> {
    cells
        .iter()
        .filter(|c| !expired_by(c, until_secs))
        .cloned()
        .collect()
}

/// Whether `cells` had cells and every one of them expires by `until_secs`.
pub fn expires_by(cells: &[Cell], until_secs: i64) -> bool {
    !cells.is_empty() && cells.iter().all(|c| expired_by(c, until_secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CellOp;

    fn cell(column: &str, path: Option<&[u8]>, value: &[u8], ts: i64) -> Cell {
        Cell {
            column: column.into(),
            path: path.map(<[u8]>::to_vec),
            value: value.to_vec().into(),
            cql_type: "text".into(),
            timestamp: ts,
            ttl: None,
            local_deletion_time: None,
            kind: CellKind::Live,
            op: CellOp::Set,
        }
    }

    #[test]
    fn timestamps_count_only_when_asked_and_ttls_by_presence() {
        let (plain, stamped) = (
            Shape::default(),
            Shape {
                timestamps: true,
                ..Shape::default()
            },
        );
        let a = [cell("v", None, b"x", 1)];
        let b = [cell("v", None, b"x", 2)];
        assert_eq!(plain.columns(&a), plain.columns(&b));
        assert_ne!(stamped.columns(&a), stamped.columns(&b));
        let mut ttl1 = cell("v", None, b"x", 1);
        ttl1.ttl = Some(100);
        let mut ttl2 = ttl1.clone();
        ttl2.ttl = Some(50);
        assert_eq!(plain.columns(&[ttl1.clone()]), plain.columns(&[ttl2]));
        assert_ne!(plain.columns(&[ttl1]), plain.columns(&a));
    }

    #[test]
    fn list_elements_compare_by_order_not_by_path() {
        let s = Shape {
            lists: ["l".to_string()].into(),
            ..Shape::default()
        };
        // The version's made-up paths and the scan's indexes, same order.
        let version = [
            cell("l", Some(&[1, 9, 9]), b"a", 1),
            cell("l", Some(&[1, 9, 10]), b"b", 1),
        ];
        let scan = [
            cell("l", Some(&0i32.to_be_bytes()), b"a", 1),
            cell("l", Some(&1i32.to_be_bytes()), b"b", 1),
        ];
        assert_eq!(s.columns(&version), s.columns(&scan));
        let swapped = [
            cell("l", Some(&0i32.to_be_bytes()), b"b", 1),
            cell("l", Some(&1i32.to_be_bytes()), b"a", 1),
        ];
        assert_ne!(s.columns(&version), s.columns(&swapped));
    }

    #[test]
    fn range_sums_do_not_depend_on_row_order() {
        let rows = [("k1", b"a"), ("k2", b"b"), ("k3", b"c")];
        let d = |(k, v): &(&str, &[u8; 1])| {
            digest(k, &Shape::default().columns(&[cell("v", None, *v, 1)]))
        };
        let (mut fwd, mut back) = (RangeSum::default(), RangeSum::default());
        rows.iter().for_each(|r| fwd.add(d(r)));
        rows.iter().rev().for_each(|r| back.add(d(r)));
        assert_eq!(fwd, back);
        let mut less = RangeSum::default();
        rows[..2].iter().for_each(|r| less.add(d(r)));
        assert_ne!(fwd, less);
    }

    #[test]
    fn cells_expired_since_the_version_are_left_out() {
        let mut e = cell("v", None, b"x", 1);
        e.kind = CellKind::Expiring;
        e.ttl = Some(10);
        e.local_deletion_time = Some(100);
        assert_eq!(live_now(vec![e.clone()], 99).map(|c| c.len()), Some(1));
        assert_eq!(live_now(vec![e.clone()], 100), None);
        assert_eq!(
            live_now(vec![e, cell("w", None, b"y", 1)], 100).map(|c| c.len()),
            Some(1)
        );
        assert_eq!(live_now(vec![], 100), Some(vec![]));
    }

    /// A cell expiring while verify reads is left out of both sides, so a target
    /// that already dropped it (or still has it) compares equal; others stay.
    #[test]
    fn cells_expiring_at_the_moment_settle_both_sides() {
        let mut e = cell("v", None, b"x", 1);
        e.kind = CellKind::Expiring;
        e.ttl = Some(2);
        e.local_deletion_time = Some(100);
        let w = cell("w", None, b"y", 1);
        let version = vec![e.clone(), w.clone()];
        let target = vec![w.clone()];
        let shape = Shape::default();
        let d = |cells: &[Cell]| digest("k", &shape.columns(cells));
        assert_ne!(d(&version), d(&target), "the difference the race makes");
        assert_eq!(d(&settled(&version, 100)), d(&settled(&target, 100)));
        assert_eq!(settled(&version, 99).len(), 2, "not yet expiring: kept");
        assert!(expires_by(&[e.clone()], 100));
        assert!(!expires_by(&[e.clone()], 99));
        assert!(!expires_by(&[e, w], 100), "a live cell keeps the row");
        assert!(!expires_by(&[], 100));
    }
}
