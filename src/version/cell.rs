//! The cell as reconciliation sees it: a write timestamp, what the cell is (live,
//! expiring, tombstone, counter), its serialized value and, in a complex column, its
//! cell path. Modelled on apache/cassandra `src/java/org/apache/cassandra/db/rows/
//! Cell.java` (Cassandra 5.0: `localDeletionTime` is an unsigned 32-bit second count,
//! CASSANDRA-14227) and `AbstractCell`/`BufferCell` (`isExpiring` is "has a TTL",
//! `isTombstone` is "has a deletion time and no TTL").
//!
//! The value is kept as bytes because that is what Cassandra compares (`Cells.
//! compareValues`, unsigned byte order), not the typed value: two encodings of one
//! number (`1.0` and `1.00` as decimals, a varint with a redundant leading byte, two
//! NaN bit patterns) are different cells to Cassandra, and so they are here.
//!
//! Which bytes, for which column:
//! - A simple column (any type, frozen collections and UDTs included) is one cell whose
//!   value is the whole serialized value. For a value bound by the client this is the
//!   native protocol's `[bytes]` content as sent (Cassandra validates but does not
//!   rewrite atomic values). Frozen sets and maps are the exception: Cassandra sorts
//!   their elements (map entries by key) with the element type's comparator and drops
//!   duplicates before storing them (`MapType.filterSortAndValidateElements` in newer
//!   code; 4.x's `Sets.Value.fromSerialized` also re-serialized every element), so the stored bytes can differ from the wire's.
//!   Callers must build frozen set and map cells from that sorted form.
//! - A non-frozen collection or UDT is one cell *per element*, addressed by a
//!   [`CellPath`]: a list element by its timeuuid, a set element by the element's
//!   bytes (the cell value is empty), a map entry by the key's bytes (the value is the
//!   entry's value), a UDT field by its index as a 2-byte short (`UserType.
//!   cellPathForField`). Whole-collection overwrites also write a collection deletion
//!   (see `deletion.rs`).
//! - A counter column holds a [`CounterContext`], merged rather than picked.

use super::counter::CounterContext;
use bytes::Bytes;
use std::num::NonZeroU32;

/// The largest valid local deletion time (`Cell.MAX_DELETION_TIME`, 2106-02-07):
/// `u32::MAX` means "no deletion time" and `u32::MAX - 1` marks a corrupt one.
pub const MAX_DELETION_TIME: u32 = u32::MAX - 2;

/// Seconds since the Unix epoch at which a tombstone was written or an expiring cell
/// expires: at most [`MAX_DELETION_TIME`], compared unsigned as Cassandra 5.0 does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalDeletionTime(u32);

/// A local deletion time past [`MAX_DELETION_TIME`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("local deletion time {0} is past the largest Cassandra accepts ({MAX_DELETION_TIME})")]
pub struct InvalidDeletionTime(pub u32);

impl LocalDeletionTime {
    pub fn new(seconds: u32) -> Result<Self, InvalidDeletionTime> {
        if seconds > MAX_DELETION_TIME {
            Err(InvalidDeletionTime(seconds))
        } else {
            Ok(LocalDeletionTime(seconds))
        }
    }

    pub fn seconds(self) -> u32 {
        self.0
    }
}

/// What a cell is, with the fields that only that kind has.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CellKind {
    /// A plain value with no TTL.
    Live { value: Bytes },
    /// A value written `USING TTL`: it turns into a tombstone at `local_deletion_time`
    /// (write time + ttl). Reconciliation never looks at the clock, so expired and
    /// unexpired expiring cells reconcile alike (CASSANDRA-14592).
    Expiring {
        value: Bytes,
        ttl: NonZeroU32,
        local_deletion_time: LocalDeletionTime,
    },
    /// A deleted cell: no value; `local_deletion_time` is when it was written and only
    /// matters for purging (and for the tie-break between two tombstones).
    Tombstone {
        local_deletion_time: LocalDeletionTime,
    },
    /// A live counter: its shards. A deleted counter is a [`CellKind::Tombstone`].
    Counter { context: CounterContext },
}

/// Where a cell sits inside a complex (non-frozen collection or UDT) column: one
/// serialized component, compared by the collection's name comparator (which
/// reconciliation never needs: it only reconciles cells of one path).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellPath(pub Bytes);

impl CellPath {
    /// A list element: the timeuuid Cassandra generated for it.
    pub fn list_element(timeuuid: [u8; 16]) -> Self {
        CellPath(Bytes::copy_from_slice(&timeuuid))
    }

    /// A set element (the element's serialized bytes; the cell value is empty).
    pub fn set_element(element: Bytes) -> Self {
        CellPath(element)
    }

    /// A map entry (the key's serialized bytes; the cell value is the entry's value).
    pub fn map_key(key: Bytes) -> Self {
        CellPath(key)
    }

    /// A field of a non-frozen UDT, by its position in the type as a 2-byte short.
    pub fn udt_field(index: u16) -> Self {
        CellPath(Bytes::copy_from_slice(&index.to_be_bytes()))
    }
}

/// One version of one cell, as one replica (or one write) has it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cell {
    /// Write timestamp, microseconds since the Unix epoch by convention.
    pub timestamp: i64,
    pub kind: CellKind,
    /// `Some` for the cells of complex columns.
    pub path: Option<CellPath>,
}

impl Cell {
    pub fn live(timestamp: i64, value: Bytes) -> Self {
        Cell {
            timestamp,
            kind: CellKind::Live { value },
            path: None,
        }
    }

    pub fn expiring(
        timestamp: i64,
        value: Bytes,
        ttl: NonZeroU32,
        local_deletion_time: LocalDeletionTime,
    ) -> Self {
        Cell {
            timestamp,
            kind: CellKind::Expiring {
                value,
                ttl,
                local_deletion_time,
            },
            path: None,
        }
    }

    pub fn tombstone(timestamp: i64, local_deletion_time: LocalDeletionTime) -> Self {
        Cell {
            timestamp,
            kind: CellKind::Tombstone {
                local_deletion_time,
            },
            path: None,
        }
    }

    pub fn counter(timestamp: i64, context: CounterContext) -> Self {
        Cell {
            timestamp,
            kind: CellKind::Counter { context },
            path: None,
        }
    }

    /// The same cell at a path of a complex column.
    pub fn at(mut self, path: CellPath) -> Self {
        self.path = Some(path);
        self
    }

    /// The local deletion time of a tombstone or expiring cell, `None` for live cells
    /// and counters (Cassandra's `NO_DELETION_TIME`).
    pub fn local_deletion_time(&self) -> Option<LocalDeletionTime> {
        match &self.kind {
            CellKind::Expiring {
                local_deletion_time,
                ..
            }
            | CellKind::Tombstone {
                local_deletion_time,
            } => Some(*local_deletion_time),
            CellKind::Live { .. } | CellKind::Counter { .. } => None,
        }
    }

    /// The value bytes Cassandra compares (`Cell.value()`): empty for a tombstone, the
    /// serialized context for a counter.
    pub fn value_bytes(&self) -> Bytes {
        match &self.kind {
            CellKind::Live { value } | CellKind::Expiring { value, .. } => value.clone(),
            CellKind::Tombstone { .. } => Bytes::new(),
            CellKind::Counter { context } => context.encode(),
        }
    }

    pub fn is_tombstone(&self) -> bool {
        matches!(self.kind, CellKind::Tombstone { .. })
    }

    pub fn is_expiring(&self) -> bool {
        matches!(self.kind, CellKind::Expiring { .. })
    }

    /// A live counter (Cassandra's `isCounterCell`: a counter column's cell that is not
    /// a tombstone).
    pub fn is_counter(&self) -> bool {
        matches!(self.kind, CellKind::Counter { .. })
    }
}
