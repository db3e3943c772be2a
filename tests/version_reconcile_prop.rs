//! Properties of cell reconciliation over generated cells of every CQL type
//! (`version_support`): the winner is independent of merge order (commutative,
//! associative, idempotent) and is the cell a direct statement of the rule over the
//! serialized bytes picks (`sort_key`). Counter contexts: the merge is commutative and
//! associative, idempotent for global shards, and totals what a per-id statement of
//! the shard rules gives. Range tombstones: coverage agrees with integer comparison.

mod version_support;

use proptest::prelude::*;
use std::collections::BTreeMap;
use tidemark::version::*;
use version_support::*;

/// The same cell with its TTL cleared: what is left when two cells tie on every
/// compared field.
fn without_ttl(c: &Cell) -> Cell {
    let mut c = c.clone();
    if let CellKind::Expiring { ttl, .. } = &mut c.kind {
        *ttl = std::num::NonZeroU32::MIN;
    }
    c
}

fn r(a: &Cell, b: &Cell) -> Cell {
    reconcile(a, b).expect("regular cells")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn pair_winner_is_the_greatest_serialized_sort_key((_ty, c) in cells(2)) {
        prop_assert_eq!(r(&c[0], &c[1]), expected_winner(&c));
    }

    #[test]
    fn pair_is_commutative((_ty, c) in cells(2)) {
        let (a, b) = (&c[0], &c[1]);
        if sort_key(a) != sort_key(b) {
            prop_assert_eq!(r(a, b), r(b, a));
        } else {
            // A full tie: the cells can only differ in TTL, and Cassandra keeps the left.
            prop_assert_eq!(without_ttl(a), without_ttl(b));
            prop_assert_eq!(&r(a, b), a);
            prop_assert_eq!(&r(b, a), b);
        }
    }

    #[test]
    fn triple_is_associative((_ty, c) in cells(3)) {
        let (a, b, d) = (&c[0], &c[1], &c[2]);
        let left = r(&r(a, b), d);
        let right = r(a, &r(b, d));
        prop_assert_eq!(&left, &right);
        prop_assert_eq!(&left, &expected_winner(&c));
        prop_assert_eq!(reconcile_all(&c).unwrap(), Some(left));
    }

    #[test]
    fn reconcile_is_idempotent((_ty, c) in cells(1)) {
        prop_assert_eq!(&r(&c[0], &c[0]), &c[0]);
    }

    #[test]
    fn any_order_of_a_triple_keeps_the_winning_key((_ty, c) in cells(3)) {
        let want = sort_key(&expected_winner(&c));
        for p in [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
            let w = r(&r(&c[p[0]], &c[p[1]]), &c[p[2]]);
            prop_assert_eq!(sort_key(&w), want.clone());
        }
    }
}

/// Global shards over a few ids, clocks and counts, so ids collide and clocks tie.
fn global_context() -> impl Strategy<Value = CounterContext> {
    prop::collection::btree_map(0u8..5, (0i64..4, -3i64..4), 0..5).prop_map(|m| {
        let shards = m
            .into_iter()
            .map(|(id, (clock, count))| Shard {
                id: [id; 16],
                clock,
                count,
                kind: ShardKind::Global,
            })
            .collect();
        CounterContext::new(shards).expect("unique ids")
    })
}

/// Shards of every kind; remote clocks stay positive (at 0 Cassandra's legacy rule is
/// not commutative, see `counter.rs`).
fn mixed_context() -> impl Strategy<Value = CounterContext> {
    let kind = prop::sample::select(vec![ShardKind::Global, ShardKind::Local, ShardKind::Remote]);
    prop::collection::btree_map(0u8..5, (kind, 1i64..4, -3i64..4), 0..5).prop_map(|m| {
        let shards = m
            .into_iter()
            .map(|(id, (kind, clock, count))| Shard {
                id: [id; 16],
                clock,
                count,
                kind,
            })
            .collect();
        CounterContext::new(shards).expect("unique ids")
    })
}

/// The global-shard rule stated per id: keep the greatest (clock, count), sum them.
fn expected_total(contexts: &[&CounterContext]) -> i64 {
    let mut best: BTreeMap<[u8; 16], (i64, i64)> = BTreeMap::new();
    for c in contexts {
        for s in c.shards() {
            let e = best.entry(s.id).or_insert((s.clock, s.count));
            *e = (*e).max((s.clock, s.count));
        }
    }
    best.values().map(|(_, count)| count).sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn global_counter_merge_is_commutative_associative_idempotent(
        a in global_context(), b in global_context(), c in global_context()
    ) {
        prop_assert_eq!(a.merge(&b), b.merge(&a));
        prop_assert_eq!(a.merge(&b).merge(&c), a.merge(&b.merge(&c)));
        prop_assert_eq!(a.merge(&a), a.clone());
        prop_assert_eq!(a.merge(&b).merge(&c).total(), expected_total(&[&a, &b, &c]));
        // The merged context survives Cassandra's byte layout.
        let m = a.merge(&b);
        prop_assert_eq!(CounterContext::decode(&m.encode()).unwrap(), m);
    }

    #[test]
    fn mixed_counter_merge_is_commutative_and_associative(
        a in mixed_context(), b in mixed_context(), c in mixed_context()
    ) {
        prop_assert_eq!(a.merge(&b), b.merge(&a));
        prop_assert_eq!(a.merge(&b).merge(&c), a.merge(&b.merge(&c)));
        prop_assert_eq!(CounterContext::decode(&a.encode()).unwrap(), a);
    }

    #[test]
    fn counter_cells_merge_under_the_higher_timestamp_and_lose_to_tombstones(
        a in global_context(), b in global_context(), ta in any::<i64>(), tb in any::<i64>(),
        tt in any::<i64>()
    ) {
        let (x, y) = (Cell::counter(ta, a.clone()), Cell::counter(tb, b.clone()));
        let m = reconcile(&x, &y).unwrap();
        prop_assert_eq!(m.timestamp, ta.max(tb));
        prop_assert_eq!(m.kind, CellKind::Counter { context: a.merge(&b) });
        let t = Cell::tombstone(tt, LocalDeletionTime::new(1).unwrap());
        prop_assert_eq!(&reconcile(&x, &t).unwrap(), &t);
        prop_assert_eq!(&reconcile(&t, &y).unwrap(), &t);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(b in prop::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(c) = CounterContext::decode(&b) {
            // Whatever decodes re-encodes to a context that decodes the same.
            prop_assert_eq!(CounterContext::decode(&c.encode()).unwrap(), c);
        }
    }

    #[test]
    fn range_tombstone_coverage_matches_integer_order(
        lo in -4i32..4, hi in -4i32..4, lo_incl: bool, hi_incl: bool, c in -5i32..5,
        desc: bool
    ) {
        let int = |v: i32| bytes::Bytes::copy_from_slice(&v.to_be_bytes());
        let by = ByteOrder(vec![(ByteOrderKind::Signed, desc)]);
        // In clustering order the start is the low value, or the high one for DESC.
        let (first, last) = if desc { (hi, lo) } else { (lo, hi) };
        let (first_incl, last_incl) = if desc { (hi_incl, lo_incl) } else { (lo_incl, hi_incl) };
        let rt = RangeTombstone {
            start: ClusteringBound {
                kind: if first_incl { BoundKind::InclusiveStart } else { BoundKind::ExclusiveStart },
                prefix: vec![int(first)],
            },
            end: ClusteringBound {
                kind: if last_incl { BoundKind::InclusiveEnd } else { BoundKind::ExclusiveEnd },
                prefix: vec![int(last)],
            },
            deletion: DeletionTime::new(0, LocalDeletionTime::new(0).unwrap()),
        };
        let above = if lo_incl { c >= lo } else { c > lo };
        let below = if hi_incl { c <= hi } else { c < hi };
        prop_assert_eq!(rt.covers(&Clustering(vec![int(c)]), &by), above && below);
    }
}
