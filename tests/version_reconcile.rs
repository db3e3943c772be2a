//! One test per cell reconciliation rule of ARCHITECTURE.md ("Outcome rules"), with
//! expectations computed by hand from Cassandra's `Cells.resolveRegular` /
//! `resolveCounter` and serialized values written out from the native protocol spec
//! (section 6), not produced by tidemark.

use bytes::Bytes;
use std::num::NonZeroU32;
use tidemark::version::*;
use tidemark_cql::Value;

fn ldt(s: u32) -> LocalDeletionTime {
    LocalDeletionTime::new(s).unwrap()
}

fn live(ts: i64, v: &[u8]) -> Cell {
    Cell::live(ts, Bytes::copy_from_slice(v))
}

fn expiring(ts: i64, v: &[u8], ttl: u32, at: u32) -> Cell {
    Cell::expiring(
        ts,
        Bytes::copy_from_slice(v),
        NonZeroU32::new(ttl).unwrap(),
        ldt(at),
    )
}

fn tomb(ts: i64, at: u32) -> Cell {
    Cell::tombstone(ts, ldt(at))
}

/// The winner in both argument orders (the regular rules are commutative here).
fn winner(a: &Cell, b: &Cell) -> Cell {
    let w = reconcile(a, b).unwrap();
    assert_eq!(reconcile(b, a).unwrap(), w, "order changed the winner");
    w
}

fn enc(v: Value) -> Vec<u8> {
    let mut out = Vec::new();
    v.encode(&mut out);
    out
}

#[test]
fn higher_timestamp_wins() {
    // A later live cell beats an earlier tombstone, and the later of two live cells
    // wins even with the smaller value.
    assert_eq!(winner(&live(10, b"\x00"), &tomb(9, 500)), live(10, b"\x00"));
    assert_eq!(
        winner(&live(11, b"\x00"), &live(10, b"\xff")),
        live(11, b"\x00")
    );
    assert_eq!(
        winner(&tomb(12, 1), &expiring(11, b"z", 5, 900)),
        tomb(12, 1)
    );
    // Negative timestamps order as signed numbers.
    assert_eq!(winner(&live(-1, b"a"), &live(-2, b"b")), live(-1, b"a"));
}

#[test]
fn tombstone_beats_live_on_tie() {
    assert_eq!(winner(&live(5, b"\xff\xff"), &tomb(5, 1)), tomb(5, 1));
}

#[test]
fn expiring_beats_live_on_tie() {
    // The live value is larger, and the expiring cell's deletion time is irrelevant.
    assert_eq!(
        winner(&live(5, b"\xff"), &expiring(5, b"\x00", 60, 10)),
        expiring(5, b"\x00", 60, 10)
    );
}

#[test]
fn tombstone_beats_expiring_on_tie() {
    // Even though the expiring cell expires later than the tombstone was written.
    assert_eq!(
        winner(&tomb(5, 100), &expiring(5, b"\xff", 60, 200)),
        tomb(5, 100)
    );
}

#[test]
fn later_local_deletion_time_wins_between_expiring() {
    // The earlier expiry has the larger value: the value is not consulted.
    assert_eq!(
        winner(
            &expiring(5, b"\xff", 10, 100),
            &expiring(5, b"\x00", 10, 200)
        ),
        expiring(5, b"\x00", 10, 200)
    );
}

#[test]
fn later_local_deletion_time_wins_between_tombstones() {
    assert_eq!(winner(&tomb(5, 100), &tomb(5, 101)), tomb(5, 101));
}

#[test]
fn local_deletion_times_compare_unsigned_past_2038() {
    // 2^31 seconds (2038-01-19) is negative as a Java int; Cassandra 5.0 stores
    // deletion times as unsigned ints (CASSANDRA-14227), so it is the later one.
    assert_eq!(
        winner(&tomb(5, 0x7fff_ffff), &tomb(5, 0x8000_0000)),
        tomb(5, 0x8000_0000)
    );
    assert!(LocalDeletionTime::new(u32::MAX - 2).is_ok());
    assert_eq!(
        LocalDeletionTime::new(u32::MAX - 1),
        Err(InvalidDeletionTime(u32::MAX - 1))
    );
    assert!(LocalDeletionTime::new(u32::MAX).is_err());
}

#[test]
fn greater_unsigned_bytes_win_on_full_tie() {
    // int -1 is ff ff ff ff and 1 is 00 00 00 01: -1 wins though it is smaller.
    let minus_one = enc(Value::Int(-1));
    let one = enc(Value::Int(1));
    assert_eq!(minus_one, [0xff; 4]);
    assert_eq!(one, [0, 0, 0, 1]);
    assert_eq!(
        winner(&live(7, &minus_one), &live(7, &one)),
        live(7, &minus_one)
    );

    // float -0.0 is 80 00 00 00 and beats 0.0 (00 00 00 00) though they are equal
    // numbers; a negative NaN (ff c0 00 00) beats every other float.
    let neg_zero = enc(Value::Float(-0.0));
    assert_eq!(neg_zero, [0x80, 0, 0, 0]);
    let zero = enc(Value::Float(0.0));
    assert_eq!(
        winner(&live(7, &zero), &live(7, &neg_zero)),
        live(7, &neg_zero)
    );
    let neg_nan = [0xff, 0xc0, 0, 0];
    let max = enc(Value::Float(f32::MAX));
    assert_eq!(
        winner(&live(7, &max), &live(7, &neg_nan)),
        live(7, &neg_nan)
    );

    // 1.0 as decimal scale 1, unscaled 10 (00 00 00 01 0a) beats 1 as scale 0,
    // unscaled 1 (00 00 00 00 01): the scale bytes decide, not the number.
    let one_point_zero = enc(Value::Decimal {
        scale: 1,
        unscaled: Bytes::from_static(&[10]),
    });
    assert_eq!(one_point_zero, [0, 0, 0, 1, 10]);
    let one_dec = [0, 0, 0, 0, 1];
    assert_eq!(
        winner(&live(7, &one_dec), &live(7, &one_point_zero)),
        live(7, &one_point_zero)
    );

    // varint 1 written with a redundant leading zero (00 01) loses to 01.
    assert_eq!(winner(&live(7, &[0, 1]), &live(7, &[1])), live(7, &[1]));
    // Unsigned: 80 beats 7f (signed bytes would say otherwise).
    assert_eq!(
        winner(&live(7, &[0x7f]), &live(7, &[0x80])),
        live(7, &[0x80])
    );
    // A prefix loses to its extensions; the empty value loses to everything.
    assert_eq!(winner(&live(7, b"ab"), &live(7, b"abc")), live(7, b"abc"));
    assert_eq!(winner(&live(7, b""), &live(7, b"\x00")), live(7, b"\x00"));
}

#[test]
fn expiring_tie_on_deletion_time_falls_to_the_value() {
    assert_eq!(
        winner(&expiring(5, b"a", 10, 100), &expiring(5, b"b", 10, 100)),
        expiring(5, b"b", 10, 100)
    );
}

#[test]
fn equal_expiring_cells_differing_only_in_ttl_keep_the_left() {
    // Same timestamp, expiry and value: Cassandra 5.0's resolveRegular returns its
    // left argument, so this one tie depends on argument order.
    let a = expiring(5, b"v", 10, 100);
    let b = expiring(5, b"v", 20, 100);
    assert_eq!(reconcile(&a, &b).unwrap(), a);
    assert_eq!(reconcile(&b, &a).unwrap(), b);
}

#[test]
fn cell_paths_follow_cassandra_layout() {
    // UserType.cellPathForField: the field position as a 2-byte short.
    assert_eq!(&CellPath::udt_field(2).0[..], &[0, 2]);
    let c = live(1, b"x").at(CellPath::udt_field(2));
    // The path rides along with the winner; it does not take part in the rules.
    assert_eq!(winner(&c, &tomb(0, 0).at(CellPath::udt_field(2))), c);
}

fn id(n: u8) -> [u8; 16] {
    [n; 16]
}

fn shard(n: u8, clock: i64, count: i64, kind: ShardKind) -> Shard {
    Shard {
        id: id(n),
        clock,
        count,
        kind,
    }
}

fn counter(ts: i64, shards: Vec<Shard>) -> Cell {
    Cell::counter(ts, CounterContext::new(shards).unwrap())
}

#[test]
fn counter_shards_merge_by_clock() {
    use ShardKind::Global as G;
    let a = counter(10, vec![shard(1, 3, 7, G), shard(2, 1, 1, G)]);
    let b = counter(20, vec![shard(3, 2, 4, G), shard(1, 5, 9, G)]);
    // Shard 1: clock 5 beats clock 3; shards 2 and 3 are kept; the timestamp is the max.
    let expected = counter(
        20,
        vec![shard(1, 5, 9, G), shard(2, 1, 1, G), shard(3, 2, 4, G)],
    );
    assert_eq!(winner(&a, &b), expected);
    let CellKind::Counter { context } = &expected.kind else {
        unreachable!()
    };
    assert_eq!(context.total(), 14);
    // Same clock, different counts (a lost sstable): the higher count heals it.
    let c = counter(1, vec![shard(1, 5, 2, G)]);
    assert_eq!(
        winner(&c, &b),
        counter(20, vec![shard(1, 5, 9, G), shard(3, 2, 4, G)])
    );
}

#[test]
fn counter_legacy_shards_merge_by_kind() {
    use ShardKind::*;
    // Global beats local and remote whatever the clocks; local beats remote; two
    // locals sum clock and count; two remotes: the higher clock.
    let a = counter(
        1,
        vec![
            shard(1, 1, 10, Global),
            shard(2, 9, 20, Local),
            shard(3, 2, 30, Local),
            shard(4, 3, 40, Remote),
        ],
    );
    let b = counter(
        1,
        vec![
            shard(1, 99, 11, Local),
            shard(2, 1, 21, Remote),
            shard(3, 5, 31, Local),
            shard(4, 4, 41, Remote),
        ],
    );
    let expected = counter(
        1,
        vec![
            shard(1, 1, 10, Global),
            shard(2, 9, 20, Local),
            shard(3, 7, 61, Local),
            shard(4, 4, 41, Remote),
        ],
    );
    assert_eq!(winner(&a, &b), expected);
}

#[test]
fn counter_tombstone_always_wins() {
    let live = counter(100, vec![shard(1, 1, 5, ShardKind::Global)]);
    // The tombstone is 99 µs older and still wins.
    assert_eq!(winner(&live, &tomb(1, 50)), tomb(1, 50));
}

#[test]
fn counter_against_a_regular_value_is_refused() {
    let c = counter(1, vec![shard(1, 1, 5, ShardKind::Global)]);
    assert_eq!(
        reconcile(&c, &live(1, b"x")),
        Err(ReconcileError::CounterWithRegular)
    );
    assert_eq!(
        reconcile(&expiring(1, b"x", 1, 1), &c),
        Err(ReconcileError::CounterWithRegular)
    );
}

/// A context laid out by hand from `CounterContext`'s class comment: i16 count of
/// header elements, the elements (global: index + i16::MIN, local: index), then 32-byte
/// shards (16-byte id, i64 clock, i64 count).
fn hand_context() -> Vec<u8> {
    let mut b = vec![0x00, 0x02, 0x80, 0x00, 0x00, 0x01];
    for (n, clock, count) in [(1u8, 3i64, 7i64), (2, 4, -2), (3, 5, 100)] {
        b.extend_from_slice(&[n; 16]);
        b.extend_from_slice(&clock.to_be_bytes());
        b.extend_from_slice(&count.to_be_bytes());
    }
    b
}

#[test]
fn counter_context_reads_and_writes_cassandra_layout() {
    use ShardKind::*;
    let bytes = hand_context();
    let ctx = CounterContext::decode(&bytes).unwrap();
    assert_eq!(
        ctx.shards(),
        [
            shard(1, 3, 7, Global),
            shard(2, 4, -2, Local),
            shard(3, 5, 100, Remote)
        ]
    );
    assert_eq!(ctx.total(), 105);
    assert_eq!(&ctx.encode()[..], &bytes[..]);
    // A negative count marks local shards "to be cleared": same shards, mark dropped.
    let mut marked = bytes.clone();
    marked[..2].copy_from_slice(&(-2i16).to_be_bytes());
    assert_eq!(CounterContext::decode(&marked).unwrap(), ctx);
    // One global shard, as a 2.1+ increment writes it (createGlobal).
    let g = CounterContext::global(id(9), 1, 5).encode();
    assert_eq!(&g[..4], &[0, 1, 0x80, 0]);
    assert_eq!(g.len(), 4 + 32);
}

#[test]
fn counter_context_refuses_malformed_bytes() {
    let bytes = hand_context();
    assert_eq!(CounterContext::decode(&[]), Err(CounterError::Truncated(0)));
    assert_eq!(
        CounterContext::decode(&[0, 3, 0, 0]),
        Err(CounterError::Truncated(4))
    );
    assert_eq!(
        CounterContext::decode(&bytes[..bytes.len() - 1]),
        Err(CounterError::RaggedBody(95))
    );
    // Shards out of id order.
    let mut unsorted = bytes.clone();
    unsorted[6..22].copy_from_slice(&[9; 16]);
    assert_eq!(
        CounterContext::decode(&unsorted),
        Err(CounterError::Unsorted)
    );
    assert_eq!(
        CounterContext::new(vec![
            shard(1, 1, 1, ShardKind::Global),
            shard(1, 2, 2, ShardKind::Global)
        ]),
        Err(CounterError::Unsorted)
    );
}
