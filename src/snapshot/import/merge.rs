//! Replica deduplication: every node's copy of a cell, row marker and deletion goes
//! into one [`Merge`], and copies of the same cell collapse by Cassandra's reconcile
//! rules (`version::cql_row::winner`: the newer timestamp, then deletion over live,
//! then the later local deletion time, then the greater value). Deletions merge to
//! the latest, and shadow every cell written at or before them
//! (ARCHITECTURE.md, "Versions and restore": node-local copies reconcile by the
//! same cell rules). A replica that missed a write, or got it late by a hint,
//! therefore reconciles to the newest cell whatever the order files are read in.
//!
//! What comes out is what a snapshot stores: live rows with their live cells
//! (expiring ones kept with their expiry; a version drops them at its own T).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};
use tidemark_cql::ColumnType;

use crate::decode::cql::extract::order::compare;
use crate::snapshot::model::{RowData, SnapshotRow};
use crate::store::{Cell, CellKind};
use crate::version::cql_row::{is_list, winner};

/// A partition, row or collection deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Del {
    /// Shadows data written at or before this (µs).
    pub timestamp: i64,
    /// When it was made (s).
    pub local_deletion_time: i64,
}

fn later(a: Option<Del>, b: Del) -> Del {
    match a {
        Some(a) if (a.timestamp, a.local_deletion_time) >= (b.timestamp, b.local_deletion_time) => {
            a
        }
        _ => b,
    }
}

fn shadowed(d: Option<Del>, timestamp: i64) -> bool {
    d.is_some_and(|d| timestamp <= d.timestamp)
}

/// A row's primary key liveness (set by INSERT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub timestamp: i64,
    pub ttl: Option<u32>,
    /// Expiry (s) of an expiring marker.
    pub expires: Option<i64>,
}

/// Where a dump entry belongs: a partition (by [`Merge::partition`]'s handle), a
/// row (clustering values, typed JSON) or the static row (`None`), and the input
/// file it came from.
pub struct RowAt<'a> {
    pub pkey: &'a str,
    pub ck: Option<Vec<Json>>,
    pub part: u32,
}

/// A cell's identity in its row: column, and element path for collections.
type CellId = (std::sync::Arc<str>, Option<Vec<u8>>);

#[derive(Default)]
struct RowAcc {
    marker: Option<Marker>,
    deletion: Option<Del>,
    /// Each cell's winning copy and the files holding that same copy.
    cells: BTreeMap<CellId, (Cell, Vec<u32>)>,
    complex: BTreeMap<String, Del>,
    /// The newest write seen in this row and the file it came from: the row's part.
    newest: Option<(i64, u32)>,
}

impl RowAcc {
    fn saw(&mut self, timestamp: i64, part: u32) {
        if self.newest.is_none_or(|(t, _)| timestamp > t) {
            self.newest = Some((timestamp, part));
        }
    }
}

struct Bound {
    values: Vec<Json>,
    inclusive: bool,
}

struct Range {
    start: Bound,
    end: Bound,
    deletion: Del,
}

struct PartAcc {
    namespace: String,
    pk: Map<String, Json>,
    deletion: Option<Del>,
    deletion_part: u32,
    statics: RowAcc,
    rows: BTreeMap<String, (Vec<Json>, RowAcc)>,
    ranges: Vec<Range>,
    open: Option<Bound>,
}

/// Every replica's copy of every partition, merged.
#[derive(Default)]
pub struct Merge {
    parts: BTreeMap<String, PartAcc>,
    /// Clustering column types per namespace, for range tombstone bounds.
    clustering: BTreeMap<String, Vec<(String, ColumnType)>>,
}

impl Merge {
    /// Records the clustering columns of a namespace.
    pub fn table(&mut self, namespace: &str, clustering: Vec<(String, ColumnType)>) {
        self.clustering.insert(namespace.to_string(), clustering);
    }

    /// The handle of partition `pk` of `namespace` (created when new).
    pub fn partition(&mut self, namespace: &str, pk: Map<String, Json>) -> String {
        let handle = format!("{namespace}\u{0}{}", Json::Object(pk.clone()));
        self.parts.entry(handle.clone()).or_insert_with(|| PartAcc {
            namespace: namespace.to_string(),
            pk,
            deletion: None,
            deletion_part: 0,
            statics: RowAcc::default(),
            rows: BTreeMap::new(),
            ranges: Vec::new(),
            open: None,
        });
        handle
    }

    fn row(&mut self, at: &RowAt<'_>) -> Option<&mut RowAcc> {
        let p = self.parts.get_mut(at.pkey)?;
        Some(match &at.ck {
            None => &mut p.statics,
            Some(ck) => {
                &mut p
                    .rows
                    .entry(Json::Array(ck.clone()).to_string())
                    .or_insert_with(|| (ck.clone(), RowAcc::default()))
                    .1
            }
        })
    }

    pub fn delete_partition(&mut self, pkey: &str, d: Del, part: u32) {
        if let Some(p) = self.parts.get_mut(pkey) {
            if p.deletion.is_none_or(|x| d.timestamp > x.timestamp) {
                p.deletion_part = part;
            }
            p.deletion = Some(later(p.deletion, d));
        }
    }

    pub fn marker(&mut self, at: &RowAt<'_>, m: Marker) {
        if let Some(r) = self.row(at) {
            r.saw(m.timestamp, at.part);
            let keep = r
                .marker
                .is_some_and(|x| (x.timestamp, x.expires) >= (m.timestamp, m.expires));
            if !keep {
                r.marker = Some(m);
            }
        }
    }

    pub fn delete_row(&mut self, at: &RowAt<'_>, d: Del) {
        if let Some(r) = self.row(at) {
            r.saw(d.timestamp, at.part);
            r.deletion = Some(later(r.deletion, d));
        }
    }

    pub fn delete_collection(&mut self, at: &RowAt<'_>, column: &str, d: Del) {
        if let Some(r) = self.row(at) {
            let merged = later(r.complex.get(column).copied(), d);
            r.complex.insert(column.to_string(), merged);
        }
    }

    /// One copy of a cell: reconciled with the copies already seen.
    pub fn cell(&mut self, at: &RowAt<'_>, c: Cell) {
        if let Some(r) = self.row(at) {
            r.saw(c.timestamp, at.part);
            let id = (c.column.clone(), c.path.clone());
            let merged = match r.cells.remove(&id) {
                Some((old, mut holders)) if old == c => {
                    holders.push(at.part);
                    (old, holders)
                }
                Some((old, holders)) => {
                    let w = winner(old.clone(), c);
                    if w == old {
                        (old, holders)
                    } else {
                        (w, vec![at.part])
                    }
                }
                None => (c, vec![at.part]),
            };
            r.cells.insert(id, merged);
        }
    }

    /// A range tombstone bound; a start pairs with the next end of the same file.
    pub fn range_bound(
        &mut self,
        pkey: &str,
        is_start: bool,
        values: Vec<Json>,
        inclusive: bool,
        d: Del,
    ) {
        let Some(p) = self.parts.get_mut(pkey) else {
            return;
        };
        let b = Bound { values, inclusive };
        if is_start {
            p.open = Some(b);
        } else if let Some(start) = p.open.take() {
            p.ranges.push(Range {
                start,
                end: b,
                deletion: d,
            });
        }
    }

    /// The merged live rows, sorted by namespace then partition then clustering
    /// handle, and how many of their bytes each file held (see [`Held`]).
    pub fn rows(self) -> (Vec<SnapshotRow>, Held) {
        let mut out = Vec::new();
        let mut held = Held::default();
        for p in self.parts.into_values() {
            let types = self
                .clustering
                .get(&p.namespace)
                .cloned()
                .unwrap_or_default();
            emit_partition(p, &types, &mut out, &mut held);
        }
        (out, held)
    }
}

/// The deduplication count: bytes of the live cell values kept, each counted once
/// (static cells once per partition), per namespace; and per input file, the bytes
/// of those same cells it held an identical copy of. Their ratio is the average
/// number of replicas holding each surviving cell (the replication factor when
/// every replica is up to date; less where a replica missed writes).
#[derive(Debug, Default)]
pub struct Held {
    pub logical: BTreeMap<String, u64>,
    pub per_part: BTreeMap<u32, u64>,
}

impl Held {
    fn count(&mut self, namespace: &str, cell: &Cell, holders: &[u32]) {
        let n = cell.value.len() as u64;
        *self.logical.entry(namespace.to_string()).or_default() += n;
        for p in holders {
            *self.per_part.entry(*p).or_default() += n;
        }
    }
}

fn cmp_prefix(ck: &[Json], bound: &[Json], types: &[(String, ColumnType)]) -> Ordering {
    for ((a, b), (_, ty)) in ck.iter().zip(bound).zip(types) {
        match compare(a, b, ty) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    Ordering::Equal
}

fn covers(r: &Range, ck: &[Json], types: &[(String, ColumnType)]) -> bool {
    let lo = cmp_prefix(ck, &r.start.values, types);
    let hi = cmp_prefix(ck, &r.end.values, types);
    let after_start = lo == Ordering::Greater || (lo == Ordering::Equal && r.start.inclusive);
    let before_end = hi == Ordering::Less || (hi == Ordering::Equal && r.end.inclusive);
    after_start && before_end
}

/// The live cells of a row under deletion `d` (collection deletions applied), list
/// elements given their positions as 4-byte ints as `snapshot take` stores them.
fn live_cells(r: &RowAcc, d: Option<Del>, mut held: impl FnMut(&Cell, &[u32])) -> Vec<Cell> {
    let mut out = Vec::new();
    let mut lists: BTreeMap<std::sync::Arc<str>, Vec<Cell>> = BTreeMap::new();
    for ((column, path), (c, holders)) in &r.cells {
        if c.kind == CellKind::Tombstone || shadowed(d, c.timestamp) {
            continue;
        }
        if path.is_some() && shadowed(r.complex.get(&**column).copied(), c.timestamp) {
            continue;
        }
        held(c, holders);
        if path.is_some() && is_list(&c.cql_type) {
            lists.entry(column.clone()).or_default().push(c.clone());
        } else {
            out.push(c.clone());
        }
    }
    for (_, elems) in lists {
        for (i, mut c) in elems.into_iter().enumerate() {
            c.path = Some((i as i32).to_be_bytes().to_vec());
            out.push(c);
        }
    }
    out.sort_by(|a, b| (&a.column, &a.path).cmp(&(&b.column, &b.path)));
    out
}

fn emit_partition(
    p: PartAcc,
    types: &[(String, ColumnType)],
    out: &mut Vec<SnapshotRow>,
    held: &mut Held,
) {
    let static_deletion = match (p.deletion, p.statics.deletion) {
        (Some(a), b) => Some(later(b, a)),
        (None, b) => b,
    };
    let ns = p.namespace.clone();
    let statics = live_cells(&p.statics, static_deletion, |c, h| held.count(&ns, c, h));
    let mut any = false;
    for (ck, r) in p.rows.values() {
        let mut d = p.deletion;
        if let Some(rd) = r.deletion {
            d = Some(later(d, rd));
        }
        for range in p.ranges.iter().filter(|x| covers(x, ck, types)) {
            d = Some(later(d, range.deletion));
        }
        let cells = live_cells(r, d, |c, h| held.count(&ns, c, h));
        let marker_live = r.marker.is_some_and(|m| !shadowed(d, m.timestamp));
        if !marker_live && cells.is_empty() {
            continue;
        }
        any = true;
        let mut key = p.pk.clone();
        for ((name, _), v) in types.iter().zip(ck) {
            key.insert(name.clone(), v.clone());
        }
        out.push(SnapshotRow {
            namespace: p.namespace.clone(),
            key: Json::Object(key).to_string(),
            part: r.newest.map_or(0, |(_, part)| part),
            data: RowData::Cql {
                cells,
                static_cells: Vec::new(),
            },
        });
    }
    // Static cells belong to the partition: one row keyed by the partition key alone
    // holds them, as `snapshot take` stores them and the log keys a static write.
    let _ = any;
    if !statics.is_empty() {
        out.push(SnapshotRow {
            namespace: p.namespace.clone(),
            key: Json::Object(p.pk.clone()).to_string(),
            part: p.statics.newest.map_or(p.deletion_part, |(_, part)| part),
            data: RowData::Cql {
                cells: Vec::new(),
                static_cells: statics,
            },
        });
    }
}
