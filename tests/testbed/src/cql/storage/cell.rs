//! Cells and their reconciliation, exactly as Cassandra 4.x `Cells.resolveRegular`:
//! the higher write timestamp wins; on a tie a tombstone or expiring cell beats a live
//! one, a tombstone beats an expiring cell, the later local deletion time wins between
//! two expiring cells or two tombstones, and otherwise the greater value (unsigned
//! byte order) wins. Ties that remain keep the first argument.

use bytes::Bytes;
use serde::Serialize;

/// `localDeletionTime` of a cell that never expires (Cassandra's `NO_DELETION_TIME`).
pub const NO_DELETION_TIME: i32 = i32::MAX;

/// One column value on one replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    /// Write timestamp, microseconds.
    pub timestamp: i64,
    /// Seconds; 0 for a cell without TTL (and for tombstones).
    pub ttl: i32,
    /// Seconds since the epoch: expiry for expiring cells, deletion for tombstones,
    /// [`NO_DELETION_TIME`] for plain live cells.
    pub local_deletion_time: i32,
    /// Empty for tombstones.
    #[serde(serialize_with = "crate::cql::storage::cell::ser_bytes")]
    pub value: Bytes,
}

pub(crate) fn ser_bytes<S: serde::Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    s.serialize_str(&hex)
}

impl Cell {
    pub fn live(timestamp: i64, value: Bytes) -> Cell {
        Cell {
            timestamp,
            ttl: 0,
            local_deletion_time: NO_DELETION_TIME,
            value,
        }
    }

    /// A cell written with `USING TTL ttl` at `now_secs`.
    pub fn expiring(timestamp: i64, value: Bytes, ttl: i32, now_secs: i32) -> Cell {
        Cell {
            timestamp,
            ttl,
            local_deletion_time: now_secs.saturating_add(ttl),
            value,
        }
    }

    pub fn tombstone(timestamp: i64, now_secs: i32) -> Cell {
        Cell {
            timestamp,
            ttl: 0,
            local_deletion_time: now_secs,
            value: Bytes::new(),
        }
    }

    pub fn is_tombstone(&self) -> bool {
        self.ttl == 0 && self.local_deletion_time != NO_DELETION_TIME
    }

    pub fn is_expiring(&self) -> bool {
        self.ttl > 0
    }

    /// Visible to reads at `now_secs`.
    pub fn is_live(&self, now_secs: i32) -> bool {
        if self.is_tombstone() {
            return false;
        }
        !self.is_expiring() || now_secs < self.local_deletion_time
    }

    /// Seconds left to live at `now_secs` (what `TTL(c)` returns), `None` without TTL.
    pub fn remaining_ttl(&self, now_secs: i32) -> Option<i32> {
        self.is_expiring()
            .then(|| (self.local_deletion_time - now_secs).max(0))
    }
}

/// The winner of two versions of one cell (see the module doc).
pub fn reconcile<'a>(left: &'a Cell, right: &'a Cell) -> &'a Cell {
    if left.timestamp != right.timestamp {
        return if left.timestamp > right.timestamp {
            left
        } else {
            right
        };
    }
    let l_del = left.local_deletion_time != NO_DELETION_TIME;
    let r_del = right.local_deletion_time != NO_DELETION_TIME;
    if l_del || r_del {
        if l_del != r_del {
            return if l_del { left } else { right };
        }
        let l_tomb = !left.is_expiring();
        let r_tomb = !right.is_expiring();
        if l_tomb != r_tomb {
            return if l_tomb { left } else { right };
        }
        if left.local_deletion_time != right.local_deletion_time {
            return if left.local_deletion_time > right.local_deletion_time {
                left
            } else {
                right
            };
        }
    }
    if left.value[..] >= right.value[..] {
        left
    } else {
        right
    }
}

/// A deletion (partition or row level): shadows every cell and row marker with a
/// timestamp at or below `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Deletion {
    pub timestamp: i64,
    pub local_deletion_time: i32,
}

impl Deletion {
    /// The stronger of two deletions (Cassandra's `DeletionTime.supersedes`).
    pub fn merge(a: Option<Deletion>, b: Option<Deletion>) -> Option<Deletion> {
        match (a, b) {
            (Some(x), Some(y)) => Some(
                if (x.timestamp, x.local_deletion_time) >= (y.timestamp, y.local_deletion_time) {
                    x
                } else {
                    y
                },
            ),
            (x, y) => x.or(y),
        }
    }

    pub fn shadows(&self, timestamp: i64) -> bool {
        timestamp <= self.timestamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(ts: i64, v: &'static [u8]) -> Cell {
        Cell::live(ts, Bytes::from_static(v))
    }

    #[test]
    fn higher_timestamp_wins() {
        let a = live(10, b"a");
        let b = Cell::tombstone(9, 100);
        assert_eq!(reconcile(&a, &b), &a);
        assert_eq!(reconcile(&b, &a), &a);
    }

    #[test]
    fn tie_tombstone_beats_expiring_beats_live() {
        let l = live(5, b"zzz");
        let e = Cell::expiring(5, Bytes::from_static(b"a"), 60, 1000);
        let t = Cell::tombstone(5, 1);
        assert_eq!(reconcile(&l, &e), &e);
        assert_eq!(reconcile(&e, &l), &e);
        assert_eq!(reconcile(&e, &t), &t);
        assert_eq!(reconcile(&t, &e), &t);
        assert_eq!(reconcile(&l, &t), &t);
    }

    #[test]
    fn tie_two_expiring_later_deletion_wins() {
        let e1 = Cell::expiring(5, Bytes::from_static(b"z"), 10, 1000);
        let e2 = Cell::expiring(5, Bytes::from_static(b"a"), 20, 1000);
        assert_eq!(reconcile(&e1, &e2), &e2);
        assert_eq!(reconcile(&e2, &e1), &e2);
        let t1 = Cell::tombstone(5, 10);
        let t2 = Cell::tombstone(5, 20);
        assert_eq!(reconcile(&t1, &t2), &t2);
    }

    #[test]
    fn tie_live_greater_value_unsigned_wins() {
        let a = live(5, b"\x7f");
        let b = live(5, b"\x80");
        assert_eq!(reconcile(&a, &b), &b);
        assert_eq!(reconcile(&b, &a), &b);
        let short = live(5, b"ab");
        let long = live(5, b"abc");
        assert_eq!(reconcile(&short, &long), &long);
        // Same expiring deletion time: falls through to the value.
        let e1 = Cell::expiring(5, Bytes::from_static(b"b"), 10, 1000);
        let e2 = Cell::expiring(5, Bytes::from_static(b"a"), 10, 1000);
        assert_eq!(reconcile(&e2, &e1), &e1);
    }

    #[test]
    fn liveness_and_ttl() {
        let e = Cell::expiring(1, Bytes::from_static(b"x"), 10, 100);
        assert!(e.is_live(109));
        assert!(!e.is_live(110));
        assert_eq!(e.remaining_ttl(104), Some(6));
        assert!(!Cell::tombstone(1, 100).is_live(0));
        assert_eq!(live(1, b"x").remaining_ttl(5), None);
    }

    #[test]
    fn deletion_merge_and_shadow() {
        let a = Deletion {
            timestamp: 5,
            local_deletion_time: 1,
        };
        let b = Deletion {
            timestamp: 7,
            local_deletion_time: 0,
        };
        assert_eq!(Deletion::merge(Some(a), Some(b)), Some(b));
        assert_eq!(Deletion::merge(None, Some(a)), Some(a));
        assert!(b.shadows(7));
        assert!(!b.shadows(8));
    }
}
