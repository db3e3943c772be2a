//! Deletions above the cell: partition deletions, range tombstones, row deletions and
//! collection (complex column) deletions. Each is a [`DeletionTime`] that shadows every
//! cell it covers whose timestamp is at or below its own.
//!
//! Followed: apache/cassandra `src/java/org/apache/cassandra/db/DeletionTime.java`
//! (`deletes(long)`: `timestamp <= markedForDeleteAt`; `supersedes`: higher
//! `markedForDeleteAt`, then higher `localDeletionTime`; `LIVE`), `db/ClusteringPrefix.
//! java` (`Kind.comparedToClustering`) and `db/ClusteringComparator.java`
//! (`compare(ClusteringPrefix, ClusteringPrefix)`: component by component over the
//! shorter prefix, then the bound kind decides).
//!
//! A collection overwritten whole (`SET l = [...]`) is a collection deletion at the
//! write's timestamp minus one (`UpdateParameters.setComplexDeletionTimeForOverwrite`)
//! plus the new element cells, so the deletion shadows the
//! old elements and not the new ones.
//!
//! Comparing clusterings needs each clustering column's type order. That is a parameter
//! ([`ClusteringComparator`]); [`ByteOrder`] covers the types whose Cassandra order is
//! a byte order: unsigned bytes for blob, ascii, text, inet, date and boolean, and
//! two's complement for the fixed-width signed integers (tinyint, smallint, int,
//! bigint, timestamp, time). uuid, timeuuid, varint, decimal, float, double and
//! duration order by value and need a type-aware comparator.

use super::cell::{Cell, LocalDeletionTime};
use bytes::Bytes;
use std::cmp::Ordering;

/// When and at what timestamp something was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeletionTime {
    /// Cells with a timestamp at or below this are deleted.
    pub marked_for_delete_at: i64,
    /// Server time of the deletion, seconds; `u32::MAX` only for [`DeletionTime::LIVE`].
    pub local_deletion_time: u32,
}

impl DeletionTime {
    /// No deletion (`DeletionTime.LIVE`): deletes nothing, superseded by everything.
    pub const LIVE: DeletionTime = DeletionTime {
        marked_for_delete_at: i64::MIN,
        local_deletion_time: u32::MAX,
    };

    pub fn new(marked_for_delete_at: i64, local_deletion_time: LocalDeletionTime) -> Self {
        DeletionTime {
            marked_for_delete_at,
            local_deletion_time: local_deletion_time.seconds(),
        }
    }

    pub fn is_live(&self) -> bool {
        *self == DeletionTime::LIVE
    }

    /// True when this deletion wins over `other` (`DeletionTime.supersedes`): a higher
    /// `marked_for_delete_at`, or an equal one and a later local deletion time.
    pub fn supersedes(&self, other: &DeletionTime) -> bool {
        self.marked_for_delete_at > other.marked_for_delete_at
            || (self.marked_for_delete_at == other.marked_for_delete_at
                && self.local_deletion_time > other.local_deletion_time)
    }

    /// True when data written at `timestamp` is deleted (`DeletionTime.deletes`).
    pub fn deletes(&self, timestamp: i64) -> bool {
        timestamp <= self.marked_for_delete_at
    }
}

/// The stronger of two deletions of one thing; `a` when neither supersedes the other
/// (they are then equal).
pub fn reconcile_deletions(a: DeletionTime, b: DeletionTime) -> DeletionTime {
    if b.supersedes(&a) {
        b
    } else {
        a
    }
}

/// True when `deletion` shadows `cell`: the cell's timestamp is at or below the
/// deletion's, whatever the cell is (tombstones and counters included).
pub fn shadows(deletion: &DeletionTime, cell: &Cell) -> bool {
    deletion.deletes(cell.timestamp)
}

/// The deletion in force over a cell given every deletion that covers it (its
/// partition's, the range tombstones over its row, its row's, its collection's): the
/// one that supersedes the others, or [`DeletionTime::LIVE`].
pub fn active_deletion<I: IntoIterator<Item = DeletionTime>>(covering: I) -> DeletionTime {
    covering
        .into_iter()
        .fold(DeletionTime::LIVE, reconcile_deletions)
}

/// A row's clustering: the serialized value of each clustering column, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Clustering(pub Vec<Bytes>);

/// Which end of a range a bound is and whether it includes its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BoundKind {
    InclusiveStart,
    ExclusiveStart,
    InclusiveEnd,
    ExclusiveEnd,
}

impl BoundKind {
    /// Where the bound sits against the clusterings it is a prefix of
    /// (`ClusteringPrefix.Kind.comparedToClustering`): before them for an inclusive
    /// start or an exclusive end, after them otherwise.
    fn against_its_clusterings(self) -> Ordering {
        match self {
            BoundKind::InclusiveStart | BoundKind::ExclusiveEnd => Ordering::Less,
            BoundKind::ExclusiveStart | BoundKind::InclusiveEnd => Ordering::Greater,
        }
    }
}

/// One end of a range tombstone: a prefix of the clustering columns (empty for the
/// start or end of the partition).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusteringBound {
    pub kind: BoundKind,
    pub prefix: Vec<Bytes>,
}

/// The order of one table's clustering columns, component by component.
pub trait ClusteringComparator {
    /// Orders two serialized values of clustering column `index` as the table does
    /// (its type order, reversed for a `DESC` column).
    fn compare_component(&self, index: usize, a: &[u8], b: &[u8]) -> Ordering;

    /// Where `bound` sits against `clustering` (`ClusteringComparator.compare`).
    fn compare_bound(&self, bound: &ClusteringBound, clustering: &Clustering) -> Ordering {
        for (i, (b, c)) in bound.prefix.iter().zip(&clustering.0).enumerate() {
            let o = self.compare_component(i, b, c);
            if o != Ordering::Equal {
                return o;
            }
        }
        if bound.prefix.len() <= clustering.0.len() {
            bound.kind.against_its_clusterings()
        } else {
            // A bound longer than the clustering: Cassandra returns the clustering's
            // own kind order, which is "equal"; no real table produces one.
            Ordering::Equal
        }
    }

    /// True when two clusterings name the same row.
    fn same_row(&self, a: &Clustering, b: &Clustering) -> bool {
        a.0.len() == b.0.len()
            && a.0
                .iter()
                .zip(&b.0)
                .enumerate()
                .all(|(i, (x, y))| self.compare_component(i, x, y) == Ordering::Equal)
    }
}

/// How one clustering column orders by bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrderKind {
    /// Unsigned bytes, shorter prefix first: blob, ascii, text, inet, date, boolean.
    Unsigned,
    /// Big-endian two's complement of one width: tinyint, smallint, int, bigint,
    /// timestamp, time. An empty value sorts first, as Cassandra's `AbstractType`
    /// puts empty values before all others.
    Signed,
}

/// A clustering comparator for tables whose clustering columns all order by bytes:
/// one (kind, descending) per clustering column. Columns past the list compare as
/// ascending unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ByteOrder(pub Vec<(ByteOrderKind, bool)>);

impl ClusteringComparator for ByteOrder {
    fn compare_component(&self, index: usize, a: &[u8], b: &[u8]) -> Ordering {
        let (kind, descending) = self
            .0
            .get(index)
            .copied()
            .unwrap_or((ByteOrderKind::Unsigned, false));
        let o = match kind {
            ByteOrderKind::Unsigned => a.cmp(b),
            ByteOrderKind::Signed => match (a.split_first(), b.split_first()) {
                (Some((ha, ra)), Some((hb, rb))) if a.len() == b.len() => {
                    (*ha as i8).cmp(&(*hb as i8)).then_with(|| ra.cmp(rb))
                }
                // Empty first; unequal widths are invalid values: order by length.
                _ => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
            },
        };
        if descending {
            o.reverse()
        } else {
            o
        }
    }
}

/// A deletion of the rows between two clustering bounds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RangeTombstone {
    pub start: ClusteringBound,
    pub end: ClusteringBound,
    pub deletion: DeletionTime,
}

impl RangeTombstone {
    /// True when the row at `clustering` lies between the bounds.
    pub fn covers<C: ClusteringComparator + ?Sized>(
        &self,
        clustering: &Clustering,
        by: &C,
    ) -> bool {
        by.compare_bound(&self.start, clustering) == Ordering::Less
            && by.compare_bound(&self.end, clustering) == Ordering::Greater
    }

    /// True when the tombstone shadows `cell`, a cell of the row at `clustering`.
    pub fn shadows<C: ClusteringComparator + ?Sized>(
        &self,
        clustering: &Clustering,
        cell: &Cell,
        by: &C,
    ) -> bool {
        self.covers(clustering, by) && shadows(&self.deletion, cell)
    }
}

/// A deletion of one row (`DELETE ... WHERE` the full primary key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowDeletion {
    pub clustering: Clustering,
    pub deletion: DeletionTime,
}

impl RowDeletion {
    /// True when the deletion shadows `cell`, a cell of the row at `clustering`.
    pub fn shadows<C: ClusteringComparator + ?Sized>(
        &self,
        clustering: &Clustering,
        cell: &Cell,
        by: &C,
    ) -> bool {
        by.same_row(&self.clustering, clustering) && shadows(&self.deletion, cell)
    }
}
