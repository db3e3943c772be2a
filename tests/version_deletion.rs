//! Deletions above the cell (ARCHITECTURE.md: "Row, range and partition deletions
//! shadow cells with timestamps at or below theirs"), checked against Cassandra's
//! `DeletionTime.deletes` / `supersedes` and `ClusteringComparator.compare` semantics
//! with hand-computed expectations.

use bytes::Bytes;
use std::num::NonZeroU32;
use tidemark::version::*;

fn ldt(s: u32) -> LocalDeletionTime {
    LocalDeletionTime::new(s).unwrap()
}

fn del(at: i64, secs: u32) -> DeletionTime {
    DeletionTime::new(at, ldt(secs))
}

fn live(ts: i64) -> Cell {
    Cell::live(ts, Bytes::from_static(b"v"))
}

fn int(v: i32) -> Bytes {
    Bytes::copy_from_slice(&v.to_be_bytes())
}

fn text(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn row(parts: &[Bytes]) -> Clustering {
    Clustering(parts.to_vec())
}

fn bound(kind: BoundKind, parts: &[Bytes]) -> ClusteringBound {
    ClusteringBound {
        kind,
        prefix: parts.to_vec(),
    }
}

#[test]
fn partition_deletion_shadows() {
    let d = del(100, 1);
    // At or below: shadowed, whatever the cell is.
    assert!(shadows(&d, &live(100)));
    assert!(shadows(&d, &live(-5)));
    assert!(shadows(&d, &Cell::tombstone(99, ldt(7))));
    let ctx = CounterContext::global([1; 16], 1, 1);
    assert!(shadows(&d, &Cell::counter(100, ctx.clone())));
    let ttl = NonZeroU32::new(5).unwrap();
    assert!(shadows(&d, &Cell::expiring(50, Bytes::new(), ttl, ldt(9))));
    // Above: not shadowed.
    assert!(!shadows(&d, &live(101)));
    assert!(!shadows(&d, &Cell::counter(101, ctx)));
    // No deletion shadows nothing a client can write (timestamps above i64::MIN).
    assert!(!shadows(&DeletionTime::LIVE, &live(i64::MIN + 1)));
    assert!(DeletionTime::LIVE.is_live());
}

#[test]
fn row_deletion_shadows_at_or_below() {
    let by = ByteOrder(vec![(ByteOrderKind::Signed, false)]);
    let d = RowDeletion {
        clustering: row(&[int(7)]),
        deletion: del(10, 1),
    };
    assert!(d.shadows(&row(&[int(7)]), &live(10), &by));
    assert!(d.shadows(&row(&[int(7)]), &live(9), &by));
    assert!(!d.shadows(&row(&[int(7)]), &live(11), &by));
    // Another row is untouched.
    assert!(!d.shadows(&row(&[int(8)]), &live(1), &by));
}

#[test]
fn range_tombstone_shadows_within_bounds() {
    let by = ByteOrder(vec![(ByteOrderKind::Signed, false)]);
    // DELETE ... WHERE c >= -5 AND c < 2 USING TIMESTAMP 10
    let rt = RangeTombstone {
        start: bound(BoundKind::InclusiveStart, &[int(-5)]),
        end: bound(BoundKind::ExclusiveEnd, &[int(2)]),
        deletion: del(10, 1),
    };
    for c in [-5, -1, 0, 1] {
        assert!(rt.shadows(&row(&[int(c)]), &live(10), &by), "c = {c}");
        assert!(!rt.shadows(&row(&[int(c)]), &live(11), &by), "c = {c}");
    }
    for c in [-6, 2, 3, i32::MIN, i32::MAX] {
        assert!(!rt.shadows(&row(&[int(c)]), &live(1), &by), "c = {c}");
    }
    // Signed order matters: bytewise, -1 (ff ff ff ff) would sort after 2.
    let unsigned = ByteOrder(vec![(ByteOrderKind::Unsigned, false)]);
    assert!(!rt.covers(&row(&[int(-1)]), &unsigned));

    // Exclusive start, inclusive end: c > -5 AND c <= 2.
    let rt2 = RangeTombstone {
        start: bound(BoundKind::ExclusiveStart, &[int(-5)]),
        end: bound(BoundKind::InclusiveEnd, &[int(2)]),
        deletion: del(10, 1),
    };
    assert!(!rt2.covers(&row(&[int(-5)]), &by));
    assert!(rt2.covers(&row(&[int(-4)]), &by));
    assert!(rt2.covers(&row(&[int(2)]), &by));
    assert!(!rt2.covers(&row(&[int(3)]), &by));
}

#[test]
fn range_tombstone_prefix_bounds_cover_whole_groups() {
    // PRIMARY KEY (k, a text, b int): DELETE WHERE k = ? AND a >= 'b' AND a <= 'c'.
    let by = ByteOrder(vec![
        (ByteOrderKind::Unsigned, false),
        (ByteOrderKind::Signed, false),
    ]);
    let rt = RangeTombstone {
        start: bound(BoundKind::InclusiveStart, &[text("b")]),
        end: bound(BoundKind::InclusiveEnd, &[text("c")]),
        deletion: del(10, 1),
    };
    assert!(rt.covers(&row(&[text("b"), int(i32::MIN)]), &by));
    assert!(rt.covers(&row(&[text("bzz"), int(0)]), &by));
    assert!(rt.covers(&row(&[text("c"), int(i32::MAX)]), &by));
    assert!(!rt.covers(&row(&[text("a"), int(0)]), &by));
    assert!(!rt.covers(&row(&[text("ca"), int(0)]), &by));
    // a > 'b': every row under 'b' is outside, 'ba' inside.
    let rt = RangeTombstone {
        start: bound(BoundKind::ExclusiveStart, &[text("b")]),
        end: bound(BoundKind::InclusiveEnd, &[]),
        deletion: del(10, 1),
    };
    assert!(!rt.covers(&row(&[text("b"), int(i32::MAX)]), &by));
    assert!(rt.covers(&row(&[text("ba"), int(i32::MIN)]), &by));
    // Empty bounds: the whole partition.
    let all = RangeTombstone {
        start: bound(BoundKind::InclusiveStart, &[]),
        end: bound(BoundKind::InclusiveEnd, &[]),
        deletion: del(10, 1),
    };
    assert!(all.covers(&row(&[text(""), int(i32::MIN)]), &by));
}

#[test]
fn range_tombstone_bounds_follow_descending_order() {
    // CLUSTERING ORDER BY (c DESC): the range runs from the high value to the low one.
    let by = ByteOrder(vec![(ByteOrderKind::Signed, true)]);
    let rt = RangeTombstone {
        start: bound(BoundKind::InclusiveStart, &[int(5)]),
        end: bound(BoundKind::ExclusiveEnd, &[int(1)]),
        deletion: del(10, 1),
    };
    assert!(rt.covers(&row(&[int(5)]), &by));
    assert!(rt.covers(&row(&[int(2)]), &by));
    assert!(!rt.covers(&row(&[int(1)]), &by));
    assert!(!rt.covers(&row(&[int(6)]), &by));
}

#[test]
fn collection_deletion_shadows_old_elements_only() {
    // UPDATE t SET l = [..] USING TIMESTAMP 20: a collection deletion at 19 and new
    // element cells at 20.
    let d = del(19, 1);
    let old = live(15).at(CellPath::list_element([1; 16]));
    let new = live(20).at(CellPath::list_element([2; 16]));
    assert!(shadows(&d, &old));
    assert!(!shadows(&d, &new));
}

#[test]
fn deletion_time_supersedes_by_timestamp_then_local_deletion_time() {
    assert!(del(11, 0).supersedes(&del(10, 99)));
    assert!(!del(10, 99).supersedes(&del(11, 0)));
    assert!(del(10, 2).supersedes(&del(10, 1)));
    assert!(!del(10, 1).supersedes(&del(10, 1)));
    assert!(del(i64::MIN + 1, 0).supersedes(&DeletionTime::LIVE));
    assert_eq!(reconcile_deletions(del(10, 1), del(10, 2)), del(10, 2));
    assert_eq!(reconcile_deletions(del(12, 1), del(10, 2)), del(12, 1));
    // The deletion in force over a cell: the strongest of those covering it.
    assert_eq!(active_deletion([]), DeletionTime::LIVE);
    assert_eq!(
        active_deletion([del(5, 1), del(9, 0), del(9, 3), del(2, 8)]),
        del(9, 3)
    );
}
