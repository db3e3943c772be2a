//! Property: however a flow's segments are reordered (within the reorder window),
//! duplicated or re-cut by retransmissions, the delivered bytes are the sent bytes,
//! with no gap.

mod common;

use common::*;
use proptest::prelude::*;

/// (stream bytes, client ISN, segment sizes, retransmitted ranges, shuffle seeds).
type Scenario = (Vec<u8>, u32, Vec<usize>, Vec<(usize, usize)>, Vec<usize>);

/// A stream, its cut into segments, and a delivery order with duplicates.
fn scenario() -> impl Strategy<Value = Scenario> {
    (1usize..3000, any::<u32>(), any::<u64>()).prop_flat_map(|(len, isn, seed)| {
        let data: Vec<u8> = (0..len)
            .map(|i| (i as u64 ^ seed).wrapping_mul(0x9e37) as u8)
            .collect();
        let cuts = proptest::collection::vec(1usize..300, 1..40);
        // Extra retransmissions: (start, len) ranges re-sent with their original bytes.
        let retx = proptest::collection::vec((0..len, 1usize..400), 0..10);
        let order_seed = proptest::collection::vec(any::<usize>(), 60);
        (Just(data), Just(isn), cuts, retx, order_seed)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn reordering_and_duplication_do_not_change_the_bytes((data, isn, cuts, retx, order) in scenario()) {
        let mut c = Conv::new("10.1.1.1:40001", "10.1.1.2:9042", isn, 77);
        let hs = c.handshake();
        let base = c.cseq;
        // Segments: the cut stream plus retransmissions of arbitrary ranges.
        let mut pieces: Vec<(usize, usize)> = Vec::new();
        let mut off = 0;
        let mut k = 0;
        while off < data.len() {
            let n = cuts[k % cuts.len()].min(data.len() - off);
            pieces.push((off, n));
            off += n;
            k += 1;
        }
        for &(s, n) in &retx {
            pieces.push((s, n.min(data.len() - s)));
        }
        // Shuffle with the generated order; duplicate every third piece.
        let mut order_idx: Vec<usize> = (0..pieces.len()).collect();
        for i in (1..order_idx.len()).rev() {
            let j = order[i % order.len()] % (i + 1);
            order_idx.swap(i, j);
        }
        let mut segs = hs;
        for (n, &i) in order_idx.iter().enumerate() {
            let (s, len) = pieces[i];
            let seg = c.at(true, base.wrapping_add(s as u32), &data[s..s + len]);
            segs.push(seg.clone());
            if n % 3 == 0 {
                segs.push(seg);
            }
        }
        // The FIN may arrive anywhere after the handshake, even before data it follows.
        let fin_seq = base.wrapping_add(data.len() as u32);
        let mut fin = c.at(true, fin_seq, b"");
        fin.flags.fin = true;
        let at = 3 + order[0] % (segs.len() - 2);
        segs.insert(at, fin);
        let r = run_segs(&segs);
        let f = r.only();
        prop_assert_eq!(f.c2s.gaps.clone(), Vec::<u64>::new());
        prop_assert_eq!(&f.c2s.bytes, &data);
        // The client's FIN is seen; the server never sent one.
        prop_assert_eq!(f.closed, Some(tidemark::capture::CloseReason::EndOfCapture));
    }
}
