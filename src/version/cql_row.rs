//! One CQL row of a version: the snapshot's cells and the committed mutations of the
//! row merged by Cassandra's cell rules, then read at the version's time.
//!
//! Merging is last-write-wins per cell ([`super::reconcile`], on the serialized
//! bytes), so the order mutations arrive in does not matter — except for what is not
//! idempotent: counter increments add up, and list operations that name a position
//! or a value (`l[2] = x`, `l = l - [x]`) act on the list as it stood, which is commit
//! order. Deletions (row, and for collections the whole column) are kept beside the
//! cells and applied when the row is read, so a deletion shadows older cells whichever
//! came first.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use bytes::Bytes;

use super::cell::{Cell as RCell, LocalDeletionTime};
use super::reconcile::{resolve_regular, Side};
use crate::store::{Cell, CellKind, CellOp, Deletion};

/// A cell's place in the row: column and element path (`None` for a simple or frozen
/// column; for list elements a path made here, see [`list_path`]).
pub type CellId = (Arc<str>, Option<Vec<u8>>);

/// Row liveness from an INSERT (Cassandra's primary key liveness info): the row
/// exists, even without any cell, until deleted or expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub timestamp: i64,
    /// Expiry (seconds since the epoch) for `INSERT ... USING TTL`.
    pub expires: Option<i64>,
}

/// What a row is made of before it is read at a time.
#[derive(Debug, Clone, Default)]
pub struct CqlRow {
    cells: BTreeMap<CellId, Cell>,
    /// Whole-column deletions of collections and UDTs: shadow element cells at or
    /// below the timestamp.
    column_deletions: BTreeMap<Arc<str>, Deletion>,
    row_deletion: Option<Deletion>,
    marker: Option<Marker>,
    /// Counter columns: the total and the newest timestamp that changed it.
    counters: BTreeMap<Arc<str>, (i64, i64)>,
    /// List elements added so far (for a list path made here).
    list_elements: u64,
    /// For a row a snapshot read: the read window of its part (ns), which decides
    /// the non-idempotent changes of the log (see `super::join::window_rule`).
    pub window: Option<(u64, u64)>,
    /// The cells the snapshot read, kept so a TRUNCATE committed before the read can
    /// put the row back as read.
    pub seed: Option<Vec<Cell>>,
}

/// The later of two deletions (Cassandra's `DeletionTime.supersedes`: higher
/// timestamp, then later local deletion time).
pub fn later_deletion(a: Deletion, b: Deletion) -> Deletion {
    if (b.timestamp, b.local_deletion_time) > (a.timestamp, a.local_deletion_time) {
        b
    } else {
        a
    }
}

/// Whether `deletion` shadows data written at `timestamp` (`DeletionTime.deletes`).
pub fn deletes(deletion: Option<Deletion>, timestamp: i64) -> bool {
    deletion.is_some_and(|d| timestamp <= d.timestamp)
}

/// Whether an expiring cell (or marker) expiring at `expires` is gone at `at_secs`:
/// Cassandra treats a cell as live while `now < localDeletionTime`.
pub fn expired(expires: Option<i64>, at_secs: i64) -> bool {
    expires.is_some_and(|e| at_secs >= e)
}

/// The reconcile form of a stored (non-counter) cell.
fn reconcile_form(c: &Cell) -> RCell {
    let ldt = |t: Option<i64>| {
        LocalDeletionTime::new(t.unwrap_or(0).clamp(0, u32::MAX as i64 - 1) as u32)
            .unwrap_or_else(|_| LocalDeletionTime::new(0).expect("0 is a valid deletion time"))
    };
    let value = Bytes::copy_from_slice(&c.value);
    match (c.kind, c.ttl.and_then(NonZeroU32::new)) {
        (CellKind::Tombstone, _) => RCell::tombstone(c.timestamp, ldt(c.local_deletion_time)),
        (CellKind::Expiring, Some(ttl)) => {
            RCell::expiring(c.timestamp, value, ttl, ldt(c.local_deletion_time))
        }
        _ => RCell::live(c.timestamp, value),
    }
}

/// The surviving one of two versions of the same cell (Cassandra's `Cells.reconcile`
/// on regular cells: timestamp, then deletion over live, then tombstone over
/// expiring, then local deletion time, then the greater value by unsigned bytes).
pub fn winner(existing: Cell, incoming: Cell) -> Cell {
    if incoming_wins(&existing, &incoming) {
        incoming
    } else {
        existing
    }
}

/// Whether `incoming` survives over `existing` ([`winner`]'s rule). The first rule
/// (the higher timestamp) decides almost every pair; the full rules, and their copies
/// of the values, only run on a timestamp tie.
pub fn incoming_wins(existing: &Cell, incoming: &Cell) -> bool {
    match incoming.timestamp.cmp(&existing.timestamp) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => {
            resolve_regular(&reconcile_form(existing), &reconcile_form(incoming)) == Side::Right
        }
    }
}

/// The path given to the `n`-th list element added here: appends sort after
/// everything before them and prepends before, as Cassandra's timeuuid paths do
/// (append paths grow with time; prepend paths are made to sort first).
pub fn list_path(op: CellOp, timestamp: i64, n: u64) -> Vec<u8> {
    let ts = (timestamp as u64) ^ (1 << 63);
    match op {
        CellOp::Prepend => [[0u8].as_slice(), &(!ts).to_be_bytes(), &(!n).to_be_bytes()].concat(),
        _ => [[1u8].as_slice(), &ts.to_be_bytes(), &n.to_be_bytes()].concat(),
    }
}

impl CqlRow {
    /// Seeds the row with what a snapshot read in a part with read window `window`:
    /// list elements (which the snapshot names by index) get paths in list order.
    pub fn seed_from_snapshot(&mut self, cells: &[Cell], window: (u64, u64)) {
        let mut seeded = Vec::with_capacity(cells.len());
        for (i, c) in cells.iter().enumerate() {
            let mut c = c.clone();
            if is_list(&c.cql_type) && c.path.as_ref().is_some_and(|p| p.len() == 4) {
                c.path = Some(list_path(CellOp::Append, c.timestamp, i as u64));
            }
            seeded.push(c);
        }
        if seeded.is_empty() {
            // A row of key columns only: it exists, by a liveness no later deletion
            // can be older than.
            self.mark_live(Marker {
                timestamp: i64::MIN + 1,
                expires: None,
            });
        }
        for c in &seeded {
            self.apply_seeded(c);
        }
        self.window = Some(window);
        self.seed = Some(seeded);
    }

    /// A snapshot cell goes in as read (its path already made).
    fn apply_seeded(&mut self, c: &Cell) {
        match c.kind {
            CellKind::CounterShard => self.apply(c),
            _ => self.put((c.column.clone(), c.path.clone()), c.clone()),
        }
    }

    /// The row as the snapshot read it, forgetting the log (a TRUNCATE committed
    /// before the read).
    pub fn reset_to_seed(&mut self) {
        let (seed, window) = (self.seed.take(), self.window);
        *self = CqlRow::default();
        if let (Some(seed), Some(window)) = (seed, window) {
            // The kept seed's list paths are made already (they are no 4-byte
            // indexes any more), so seeding again gives the row as first seeded.
            self.seed_from_snapshot(&seed, window);
        }
    }

    /// A row that exists (a snapshot read it, or an INSERT wrote it).
    pub fn mark_live(&mut self, marker: Marker) {
        self.marker = Some(match self.marker {
            Some(m)
                if (m.timestamp, m.expires.unwrap_or(i64::MAX))
                    >= (marker.timestamp, marker.expires.unwrap_or(i64::MAX)) =>
            {
                m
            }
            _ => marker,
        });
    }

    /// A row deletion (`DELETE FROM t WHERE <full primary key>`).
    pub fn delete_row(&mut self, d: Deletion) {
        self.row_deletion = Some(match self.row_deletion {
            Some(old) => later_deletion(old, d),
            None => d,
        });
    }

    /// Adds a counter's value as a snapshot read it (its total).
    pub fn set_counter(&mut self, column: &str, total: i64, timestamp: i64) {
        self.counters.insert(Arc::from(column), (total, timestamp));
    }

    /// Applies one cell of a committed mutation (or of a snapshot row).
    pub fn apply(&mut self, cell: &Cell) {
        match (cell.op, cell.kind) {
            (CellOp::Increment, _) | (_, CellKind::CounterShard) => {
                let delta = i64::from_be_bytes(cell.value.as_ref().try_into().unwrap_or([0; 8]));
                let e = self
                    .counters
                    .entry(cell.column.clone())
                    .or_insert((0, i64::MIN));
                e.0 = e.0.wrapping_add(delta);
                e.1 = e.1.max(cell.timestamp);
            }
            (CellOp::Append | CellOp::Prepend, _) if cell.path.is_none() => {
                self.list_elements += 1;
                let path = list_path(cell.op, cell.timestamp, self.list_elements);
                self.put((cell.column.clone(), Some(path)), cell.clone());
            }
            (CellOp::Put | CellOp::Remove, _) if is_list(&cell.cql_type) => {
                self.list_by_position(cell)
            }
            (CellOp::Remove, _) if cell.path.is_none() => self.list_remove_value(cell),
            (CellOp::Tombstone, _) if cell.path.is_none() => {
                // A whole-column deletion: a tombstone for a simple or frozen column,
                // and for a collection or UDT the deletion of every element at or
                // below its timestamp.
                let d = Deletion {
                    timestamp: cell.timestamp,
                    local_deletion_time: cell.local_deletion_time.unwrap_or(0),
                };
                let old = self.column_deletions.get(&cell.column).copied();
                self.column_deletions
                    .insert(cell.column.clone(), old.map_or(d, |o| later_deletion(o, d)));
                self.put((cell.column.clone(), None), cell.clone());
                if self.counters.contains_key(&cell.column) {
                    self.counters.remove(&cell.column);
                }
            }
            _ => self.put((cell.column.clone(), cell.path.clone()), cell.clone()),
        }
    }

    fn put(&mut self, id: CellId, cell: Cell) {
        match self.cells.get_mut(&id) {
            Some(old) => {
                if incoming_wins(old, &cell) {
                    *old = cell;
                }
            }
            None => {
                self.cells.insert(id, cell);
            }
        }
    }

    /// The paths of the list's live elements in list order, as the row stands.
    fn list_paths(&self, column: &str) -> Vec<Vec<u8>> {
        let del = self.column_deletions.get(column).copied();
        self.cells
            .iter()
            .filter(|((c, p), cell)| {
                **c == *column
                    && p.is_some()
                    && cell.kind != CellKind::Tombstone
                    && !deletes(del, cell.timestamp)
                    && !deletes(self.row_deletion, cell.timestamp)
            })
            .filter_map(|((_, p), _)| p.clone())
            .collect()
    }

    /// `l[i] = x` or `DELETE l[i]`: the server resolves the index against the list as
    /// it stands; an index past the end is an error the server returns, so a committed
    /// one always lands.
    fn list_by_position(&mut self, cell: &Cell) {
        let Some(index) = cell
            .path
            .as_deref()
            .and_then(|p| <[u8; 4]>::try_from(p).ok())
            .map(i32::from_be_bytes)
        else {
            if cell.path.is_none() && cell.op == CellOp::Remove {
                return self.list_remove_value(cell);
            }
            return self.put((cell.column.clone(), cell.path.clone()), cell.clone());
        };
        let paths = self.list_paths(&cell.column);
        if let Some(path) = usize::try_from(index).ok().and_then(|i| paths.get(i)) {
            let mut c = cell.clone();
            c.path = Some(path.clone());
            if c.op == CellOp::Remove {
                c.kind = CellKind::Tombstone;
                c.value.clear();
            }
            self.put((cell.column.clone(), Some(path.clone())), c);
        }
    }

    /// `l = l - [x]`: every element equal to `x` is deleted.
    fn list_remove_value(&mut self, cell: &Cell) {
        let matching: Vec<Vec<u8>> = self
            .list_paths(&cell.column)
            .into_iter()
            .filter(|p| {
                self.cells
                    .get(&(cell.column.clone(), Some(p.clone())))
                    .is_some_and(|c| c.value == cell.value)
            })
            .collect();
        for p in matching {
            let mut c = cell.clone();
            c.path = Some(p.clone());
            c.kind = CellKind::Tombstone;
            c.value.clear();
            self.put((cell.column.clone(), Some(p)), c);
        }
    }

    /// The row as it reads at `at_secs` under the partition and range deletions that
    /// cover it: its live cells, or `None` when the row does not exist then.
    pub fn read(&self, at_secs: i64, covering: Option<Deletion>) -> Option<Vec<Cell>> {
        let deletion = match (self.row_deletion, covering) {
            (Some(a), Some(b)) => Some(later_deletion(a, b)),
            (a, b) => a.or(b),
        };
        let mut out = Vec::new();
        for ((column, path), cell) in &self.cells {
            if cell.kind == CellKind::Tombstone || deletes(deletion, cell.timestamp) {
                continue;
            }
            if path.is_some() && deletes(self.column_deletions.get(column).copied(), cell.timestamp)
            {
                continue;
            }
            let expires = (cell.kind == CellKind::Expiring)
                .then_some(cell.local_deletion_time)
                .flatten();
            if expired(expires, at_secs) {
                continue;
            }
            out.push(cell.clone());
        }
        for (column, &(total, timestamp)) in &self.counters {
            if deletes(deletion, timestamp) {
                continue;
            }
            out.push(Cell {
                column: column.clone(),
                path: None,
                value: total.to_be_bytes().to_vec().into(),
                cql_type: "counter".into(),
                timestamp,
                ttl: None,
                local_deletion_time: None,
                kind: CellKind::CounterShard,
                op: CellOp::Set,
            });
        }
        let marker_live = self
            .marker
            .is_some_and(|m| !deletes(deletion, m.timestamp) && !expired(m.expires, at_secs));
        (marker_live || !out.is_empty()).then_some(out)
    }

    /// What the row deleted that still matters at the version's time, for a restore
    /// to write back as tombstones with their own timestamps (so older data in a
    /// target stays shadowed as it was in the source): the row's deletion, and the
    /// cell tombstones no later write superseded and no row, partition or range
    /// deletion (`covering`) already covers — deleted simple columns, whole-collection
    /// deletions (`path: None`; an overwrite's sits just below its elements) and
    /// deleted map, set and UDT elements. A list element's tombstone is left out: its
    /// path is one made here (the server's timeuuid is never on the wire), which no
    /// target could be told.
    pub fn deletions(&self, covering: Option<Deletion>) -> (Option<Deletion>, Vec<Cell>) {
        let over = match (self.row_deletion, covering) {
            (Some(a), Some(b)) => Some(later_deletion(a, b)),
            (a, b) => a.or(b),
        };
        let mut cells = Vec::new();
        for ((column, path), cell) in &self.cells {
            if cell.kind != CellKind::Tombstone || deletes(over, cell.timestamp) {
                continue;
            }
            if path.is_some()
                && (is_list(&cell.cql_type)
                    || deletes(self.column_deletions.get(column).copied(), cell.timestamp))
            {
                continue;
            }
            let mut c = cell.clone();
            c.value.clear();
            cells.push(c);
        }
        (self.row_deletion, cells)
    }

    /// Whether the row holds any deletion ([`CqlRow::deletions`] has something to
    /// look at); cheap, so rows without any skip the rest.
    pub fn has_deletions(&self) -> bool {
        self.row_deletion.is_some()
            || !self.column_deletions.is_empty()
            || self.cells.values().any(|c| c.kind == CellKind::Tombstone)
    }
}

/// Whether CQL type text is a non-frozen list (its elements are cells of their own).
pub fn is_list(cql_type: &str) -> bool {
    cql_type.trim_start().starts_with("list<")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(column: &str, value: &[u8], ts: i64) -> Cell {
        Cell {
            column: column.into(),
            path: None,
            value: value.to_vec().into(),
            cql_type: "text".into(),
            timestamp: ts,
            ttl: None,
            local_deletion_time: None,
            kind: CellKind::Live,
            op: CellOp::Set,
        }
    }

    fn values(cells: &[Cell]) -> Vec<(&str, &[u8])> {
        cells
            .iter()
            .map(|c| (&*c.column, c.value.as_ref()))
            .collect()
    }

    #[test]
    fn last_write_wins_whatever_the_arrival_order() {
        let (old, new) = (cell("v", b"old", 10), cell("v", b"new", 20));
        for order in [[&old, &new], [&new, &old]] {
            let mut r = CqlRow::default();
            order.iter().for_each(|c| r.apply(c));
            assert_eq!(values(&r.read(0, None).unwrap()), [("v", &b"new"[..])]);
        }
    }

    #[test]
    fn equal_timestamps_break_ties_by_the_greater_value_bytes() {
        let mut r = CqlRow::default();
        r.apply(&cell("v", &[0x80], 5));
        r.apply(&cell("v", &[0x7f, 0xff], 5));
        // Unsigned byte order: 0x80 > 0x7fff.
        assert_eq!(values(&r.read(0, None).unwrap()), [("v", &[0x80][..])]);
    }

    #[test]
    fn row_deletion_shadows_cells_at_or_below_its_timestamp() {
        let mut r = CqlRow::default();
        r.mark_live(Marker {
            timestamp: 10,
            expires: None,
        });
        r.apply(&cell("a", b"x", 10));
        r.apply(&cell("b", b"y", 30));
        r.delete_row(Deletion {
            timestamp: 20,
            local_deletion_time: 0,
        });
        assert_eq!(values(&r.read(0, None).unwrap()), [("b", &b"y"[..])]);
        let mut gone = CqlRow::default();
        gone.mark_live(Marker {
            timestamp: 10,
            expires: None,
        });
        gone.apply(&cell("a", b"x", 10));
        gone.delete_row(Deletion {
            timestamp: 10,
            local_deletion_time: 0,
        });
        assert_eq!(gone.read(0, None), None, "deleted at the same timestamp");
    }

    #[test]
    fn an_insert_of_key_columns_alone_makes_a_row_without_cells() {
        let mut r = CqlRow::default();
        r.mark_live(Marker {
            timestamp: 1,
            expires: None,
        });
        assert_eq!(r.read(0, None), Some(vec![]));
        let mut u = CqlRow::default();
        let mut t = cell("v", b"", 1);
        t.kind = CellKind::Tombstone;
        t.op = CellOp::Tombstone;
        u.apply(&t);
        assert_eq!(u.read(0, None), None, "an UPDATE setting null makes no row");
    }

    #[test]
    fn expiring_cells_are_live_while_now_is_before_their_deletion_time() {
        let mut r = CqlRow::default();
        let mut c = cell("v", b"x", 1);
        c.kind = CellKind::Expiring;
        c.ttl = Some(10);
        c.local_deletion_time = Some(1_000);
        r.apply(&c);
        r.mark_live(Marker {
            timestamp: 1,
            expires: Some(1_000),
        });
        assert!(r.read(999, None).is_some());
        assert_eq!(r.read(1_000, None), None);
    }

    #[test]
    fn counters_add_up_and_a_deletion_clears_them() {
        let mut r = CqlRow::default();
        for (d, ts) in [(5i64, 1), (-2, 2), (10, 3)] {
            let mut c = cell("n", &d.to_be_bytes(), ts);
            c.op = CellOp::Increment;
            c.kind = CellKind::CounterShard;
            r.apply(&c);
        }
        let cells = r.read(0, None).unwrap();
        assert_eq!(cells[0].value[..], 13i64.to_be_bytes());
        r.delete_row(Deletion {
            timestamp: 3,
            local_deletion_time: 0,
        });
        assert_eq!(r.read(0, None), None);
    }

    fn list_op(op: CellOp, value: &[u8], ts: i64, path: Option<Vec<u8>>) -> Cell {
        let mut c = cell("l", value, ts);
        c.cql_type = "list<text>".into();
        c.op = op;
        c.path = path;
        if op == CellOp::Remove {
            c.kind = CellKind::Tombstone;
        }
        c
    }

    #[test]
    fn list_appends_prepends_positions_and_removals_follow_commit_order() {
        let mut r = CqlRow::default();
        r.apply(&list_op(CellOp::Append, b"b", 10, None));
        r.apply(&list_op(CellOp::Append, b"c", 11, None));
        r.apply(&list_op(CellOp::Prepend, b"a", 12, None));
        r.apply(&list_op(CellOp::Append, b"c", 13, None));
        // l[1] = 'B'
        r.apply(&list_op(
            CellOp::Put,
            b"B",
            14,
            Some(1i32.to_be_bytes().to_vec()),
        ));
        // l = l - ['c']
        r.apply(&list_op(CellOp::Remove, b"c", 15, None));
        let got: Vec<Vec<u8>> = r
            .read(0, None)
            .unwrap()
            .into_iter()
            .map(|c| c.value.to_vec())
            .collect();
        assert_eq!(got, [b"a".to_vec(), b"B".to_vec()]);
    }

    fn tombstone(column: &str, path: Option<&[u8]>, ts: i64) -> Cell {
        let mut c = cell(column, b"", ts);
        c.path = path.map(<[u8]>::to_vec);
        c.kind = CellKind::Tombstone;
        c.op = if path.is_some() {
            CellOp::Remove
        } else {
            CellOp::Tombstone
        };
        c.local_deletion_time = Some(7);
        c
    }

    /// A tombstone as (column, path, timestamp).
    type Shown = (String, Option<Vec<u8>>, i64);

    fn shown(r: &CqlRow, covering: Option<Deletion>) -> (Option<i64>, Vec<Shown>) {
        let (d, cells) = r.deletions(covering);
        (
            d.map(|d| d.timestamp),
            cells
                .into_iter()
                .map(|c| (c.column.to_string(), c.path, c.timestamp))
                .collect(),
        )
    }

    #[test]
    fn deletions_keep_what_still_shadows_and_drop_what_was_superseded() {
        let mut r = CqlRow::default();
        assert!(!r.has_deletions());
        r.apply(&cell("a", b"x", 10));
        r.apply(&tombstone("a", None, 20)); // deleted column
        r.apply(&tombstone("b", None, 20));
        r.apply(&cell("b", b"back", 30)); // written again: superseded
        r.apply(&tombstone("m", Some(b"k1"), 15)); // element, then...
        r.apply(&tombstone("m", None, 16)); // ...the whole map deleted after it
        r.apply(&tombstone("m", Some(b"k2"), 17)); // an element deleted later
        let mut l = tombstone("l", Some(&[1, 2, 3]), 18);
        l.cql_type = "list<int>".into();
        r.apply(&l); // a list element's path is made here: not kept
        r.delete_row(Deletion {
            timestamp: 5,
            local_deletion_time: 1,
        });
        r.mark_live(Marker {
            timestamp: 40,
            expires: None,
        });
        assert!(r.has_deletions());
        let a = |c: &str, p: Option<&[u8]>, ts| (c.to_string(), p.map(<[u8]>::to_vec), ts);
        assert_eq!(
            shown(&r, None),
            (
                Some(5),
                vec![a("a", None, 20), a("m", None, 16), a("m", Some(b"k2"), 17)]
            ),
            "the row's deletion stays though the row was written again"
        );
        // A partition or range deletion at 17 covers the tombstones up to it.
        let covering = Some(Deletion {
            timestamp: 17,
            local_deletion_time: 1,
        });
        assert_eq!(shown(&r, covering), (Some(5), vec![a("a", None, 20)]));
    }

    #[test]
    fn a_whole_collection_overwrite_drops_older_elements_only() {
        let mut r = CqlRow::default();
        let mut old = cell("s", b"", 10);
        old.path = Some(b"old".to_vec());
        r.apply(&old);
        let mut clear = cell("s", b"", 19);
        clear.kind = CellKind::Tombstone;
        clear.op = CellOp::Tombstone;
        r.apply(&clear);
        let mut new = cell("s", b"", 20);
        new.path = Some(b"new".to_vec());
        r.apply(&new);
        let paths: Vec<_> = r
            .read(0, None)
            .unwrap()
            .into_iter()
            .map(|c| c.path.unwrap())
            .collect();
        assert_eq!(paths, [b"new".to_vec()]);
    }
}
