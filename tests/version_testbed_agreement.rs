//! Cross-check with an independent implementation: the simulated cluster's own cell
//! reconciliation (`tidemark_testbed::cql::storage::cell`, written earlier for the testbed's
//! replicas) must pick the same winner as `tidemark::version` for every pair and triple
//! of regular cells, in every argument order, and merge deletions the same way. The
//! testbed keeps Cassandra 4.x's signed 32-bit deletion times, so deletion times stay
//! below 2^31 here.

mod version_support;

use bytes::Bytes;
use proptest::prelude::*;
use std::num::NonZeroU32;
use tidemark::version::{self, Cell, LocalDeletionTime};
use tidemark_testbed::cql::storage::cell as tb;
use version_support::value_pool;

/// One generated cell in both models.
#[derive(Debug, Clone)]
struct Pair {
    ours: Cell,
    theirs: tb::Cell,
}

fn pair_from(pool: Vec<Bytes>) -> impl Strategy<Value = Pair> {
    let ts = prop_oneof![6 => Just(0i64), 1 => Just(1), 1 => any::<i64>()];
    let ldt = prop::sample::select(vec![100i32, 101, i32::MAX - 1]);
    (ts, 0u8..4, 1i32..3, ldt, 0..pool.len()).prop_map(move |(ts, kind, ttl, at, i)| {
        let value = pool[i].clone();
        let ldt = LocalDeletionTime::new(at as u32).expect("in range");
        match kind {
            0 | 3 => Pair {
                ours: Cell::live(ts, value.clone()),
                theirs: tb::Cell::live(ts, value),
            },
            1 => Pair {
                ours: Cell::expiring(
                    ts,
                    value.clone(),
                    NonZeroU32::new(ttl as u32).expect("≥ 1"),
                    ldt,
                ),
                theirs: tb::Cell {
                    timestamp: ts,
                    ttl,
                    local_deletion_time: at,
                    value,
                },
            },
            _ => Pair {
                ours: Cell::tombstone(ts, ldt),
                theirs: tb::Cell::tombstone(ts, at),
            },
        }
    })
}

fn triple() -> impl Strategy<Value = Vec<Pair>> {
    value_pool().prop_flat_map(|(_, pool)| prop::collection::vec(pair_from(pool), 3))
}

/// The testbed's winner, identified by position in `cells` (first match on full
/// equality of the testbed cell).
fn theirs(cells: &[Pair], a: usize, b: usize) -> tb::Cell {
    tb::reconcile(&cells[a].theirs, &cells[b].theirs).clone()
}

fn ours(cells: &[Pair], a: usize, b: usize) -> Cell {
    version::reconcile(&cells[a].ours, &cells[b].ours).expect("regular cells")
}

/// The testbed cell for one of ours (the inverse of `pair_from`).
fn as_theirs(c: &Cell) -> tb::Cell {
    match &c.kind {
        version::CellKind::Live { value } => tb::Cell::live(c.timestamp, value.clone()),
        version::CellKind::Expiring {
            value,
            ttl,
            local_deletion_time,
        } => tb::Cell {
            timestamp: c.timestamp,
            ttl: ttl.get() as i32,
            local_deletion_time: local_deletion_time.seconds() as i32,
            value: value.clone(),
        },
        version::CellKind::Tombstone {
            local_deletion_time,
        } => tb::Cell::tombstone(c.timestamp, local_deletion_time.seconds() as i32),
        version::CellKind::Counter { .. } => unreachable!("regular cells only"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn testbed_and_tidemark_pick_the_same_winner(c in triple()) {
        for (a, b) in [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1), (0, 0)] {
            prop_assert_eq!(as_theirs(&ours(&c, a, b)), theirs(&c, a, b), "pair ({}, {})", a, b);
        }
        // Folding the three, left to right.
        let t01 = tb::reconcile(&c[0].theirs, &c[1].theirs).clone();
        let t = tb::reconcile(&t01, &c[2].theirs).clone();
        let o: Vec<Cell> = c.iter().map(|p| p.ours.clone()).collect();
        let w = version::reconcile_all(&o).unwrap().expect("three cells");
        prop_assert_eq!(as_theirs(&w), t);
    }

    #[test]
    fn testbed_and_tidemark_merge_deletions_alike(
        a in (-2i64..2, 0i32..3), b in (-2i64..2, 0i32..3), ts in -3i64..3
    ) {
        let d = |(at, s): (i64, i32)| (
            tb::Deletion { timestamp: at, local_deletion_time: s },
            version::DeletionTime::new(at, LocalDeletionTime::new(s as u32).unwrap()),
        );
        let ((ta, oa), (tb_, ob)) = (d(a), d(b));
        let theirs = tb::Deletion::merge(Some(ta), Some(tb_)).unwrap();
        let ours = version::reconcile_deletions(oa, ob);
        prop_assert_eq!(
            (theirs.timestamp, theirs.local_deletion_time as u32),
            (ours.marked_for_delete_at, ours.local_deletion_time)
        );
        prop_assert_eq!(theirs.shadows(ts), ours.deletes(ts));
    }
}
