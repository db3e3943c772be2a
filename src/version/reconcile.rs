//! Which of two versions of one cell survives: one function per rule, composed in the
//! order Cassandra applies them.
//!
//! Followed: apache/cassandra `src/java/org/apache/cassandra/db/rows/Cells.java`,
//! `Cells.reconcile(Cell, Cell)`, `resolveRegular` and `resolveCounter` (4.0 through
//! 5.0 agree; 5.0 widened `localDeletionTime` to an unsigned int, CASSANDRA-14227).
//! The value tie-break is `Cells.compareValues` → `ValueAccessor.compare` →
//! `ByteBufferUtil.compareUnsigned`: unsigned byte order, a prefix before its
//! extensions, whatever the column's type. So the int -1 (`ff ff ff ff`) beats 1
//! (`00 00 00 01`), -0.0 (`80 00 00 00`) beats 0.0, and of two encodings of one decimal
//! the one with the larger scale bytes wins. (Cassandra 3.x compared with Java's
//! `ByteBuffer.compareTo`, which is signed; that is not what is modelled.)
//!
//! Regular cells always resolve to one of the two inputs, so the result is commutative
//! and associative on everything the rules look at. Cassandra keeps the *left* cell
//! when nothing tells them apart; two expiring cells that differ only in their TTL
//! (same timestamp, expiry and value) therefore resolve by argument order. Newer
//! Cassandra code than 5.0 was seen to add a "lower TTL wins" step there; 5.0 has none.

use super::cell::{Cell, CellKind};

/// Which argument a rule picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

/// A pair of cells that cannot be versions of one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileError {
    /// A live counter and a live or expiring regular cell: one column cannot hold both.
    #[error("a counter cell cannot be reconciled with a regular live or expiring cell")]
    CounterWithRegular,
}

fn pick(left_wins: bool) -> Side {
    if left_wins {
        Side::Left
    } else {
        Side::Right
    }
}

/// Rule 1: the higher write timestamp wins (`resolveRegular`, first test).
pub fn higher_timestamp(left: &Cell, right: &Cell) -> Option<Side> {
    (left.timestamp != right.timestamp).then(|| pick(left.timestamp > right.timestamp))
}

/// Rule 2, on a timestamp tie: a cell with a deletion time (tombstone or expiring)
/// beats one without. Expiring cells count as tombstones here so the outcome does not
/// depend on the clock at reconciliation (CASSANDRA-14592).
pub fn deletion_time_beats_live(left: &Cell, right: &Cell) -> Option<Side> {
    let l = left.local_deletion_time().is_some();
    let r = right.local_deletion_time().is_some();
    (l != r).then(|| pick(l))
}

/// Rule 3, between two cells with deletion times: a tombstone beats an expiring cell
/// (`!isExpiring()` in `resolveRegular`).
pub fn tombstone_beats_expiring(left: &Cell, right: &Cell) -> Option<Side> {
    let l = left.is_tombstone();
    let r = right.is_tombstone();
    (l != r).then(|| pick(l))
}

/// Rule 4, between two expiring cells or two tombstones: the later local deletion time
/// wins, so the value of expiring cells is not consulted while expiry tells them apart.
/// Only meaningful after rules 1–3 (it would also rank a tombstone against an expiring
/// cell by deletion time).
pub fn later_local_deletion_time(left: &Cell, right: &Cell) -> Option<Side> {
    match (left.local_deletion_time(), right.local_deletion_time()) {
        (Some(l), Some(r)) if l != r => Some(pick(l > r)),
        _ => None,
    }
}

/// Rule 5, when nothing else decides: the greater value in unsigned byte order; the
/// left cell on equal values (`compareValues(left, right) >= 0`).
pub fn greater_value(left: &Cell, right: &Cell) -> Side {
    pick(left.value_bytes()[..] >= right.value_bytes()[..])
}

/// The winner of two regular (non-counter) versions of one cell: rules 1–5 in order
/// (`Cells.resolveRegular`).
pub fn resolve_regular(left: &Cell, right: &Cell) -> Side {
    higher_timestamp(left, right)
        .or_else(|| deletion_time_beats_live(left, right))
        .or_else(|| tombstone_beats_expiring(left, right))
        .or_else(|| later_local_deletion_time(left, right))
        .unwrap_or_else(|| greater_value(left, right))
}

/// Counter rule 1: a tombstone beats a live counter whatever the timestamps
/// (`resolveCounter`, CASSANDRA-7346: a deleted counter cannot be revived).
pub fn counter_tombstone_wins(left: &Cell, right: &Cell) -> Option<Side> {
    if left.is_tombstone() {
        Some(Side::Left)
    } else if right.is_tombstone() {
        Some(Side::Right)
    } else {
        None
    }
}

/// The reconciliation of two versions of a counter cell, at least one a live counter
/// (`Cells.resolveCounter`): a tombstone wins; two live counters merge their contexts
/// ([`super::counter::CounterContext::merge`]) under the higher timestamp, keeping the
/// left cell's path.
pub fn resolve_counter(left: &Cell, right: &Cell) -> Result<Cell, ReconcileError> {
    if let Some(side) = counter_tombstone_wins(left, right) {
        return Ok(chosen(side, left, right).clone());
    }
    match (&left.kind, &right.kind) {
        (CellKind::Counter { context: l }, CellKind::Counter { context: r }) => Ok(Cell {
            timestamp: left.timestamp.max(right.timestamp),
            kind: CellKind::Counter {
                context: l.merge(r),
            },
            path: left.path.clone(),
        }),
        _ => Err(ReconcileError::CounterWithRegular),
    }
}

/// The cell a [`Side`] names.
pub fn chosen<'a>(side: Side, left: &'a Cell, right: &'a Cell) -> &'a Cell {
    match side {
        Side::Left => left,
        Side::Right => right,
    }
}

/// The surviving version of two versions of one cell (same row, column and path):
/// counters when either is a live counter, the regular rules otherwise
/// (`Cells.reconcile(Cell, Cell)`). Errs only for a counter against a regular live
/// value, which no column holds.
pub fn reconcile(left: &Cell, right: &Cell) -> Result<Cell, ReconcileError> {
    if left.is_counter() || right.is_counter() {
        resolve_counter(left, right)
    } else {
        Ok(chosen(resolve_regular(left, right), left, right).clone())
    }
}

/// The surviving version of any number of versions of one cell, folded left to right;
/// `None` for no versions.
pub fn reconcile_all<'a, I>(cells: I) -> Result<Option<Cell>, ReconcileError>
where
    I: IntoIterator<Item = &'a Cell>,
{
    let mut acc: Option<Cell> = None;
    for c in cells {
        acc = Some(match acc {
            None => c.clone(),
            Some(a) => reconcile(&a, c)?,
        });
    }
    Ok(acc)
}
