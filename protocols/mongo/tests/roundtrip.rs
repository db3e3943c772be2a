//! Encode → decode is the identity for every message kind and compressor,
//! and any split of a stream decodes the same.

mod strategies;

use bytes::Bytes;
use proptest::prelude::*;
use strategies::*;
use tidemark_mongo::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn single_message_round_trips(m in arb_message()) {
        let (bytes, expect) = encoded(&m, 0);
        let got = decode_message(Bytes::from(bytes.clone()), 0, &Limits::default()).unwrap();
        prop_assert_eq!(&got, &expect);
        // re-encoding the decoded message gives the same bytes
        prop_assert_eq!(encode_message(&got).unwrap(), bytes);
    }

    #[test]
    fn any_split_decodes_the_same(
        msgs in proptest::collection::vec(arb_message(), 1..6),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut stream = Vec::new();
        let mut expect = Vec::new();
        for m in &msgs {
            let (b, e) = encoded(m, stream.len() as u64);
            stream.extend_from_slice(&b);
            expect.push(e);
        }
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut dec = Decoder::default();
        let mut got = Vec::new();
        for w in points.windows(2) {
            dec.feed(&stream[w[0]..w[1]]);
            while let Some(m) = dec.next().unwrap() {
                got.push(m);
            }
        }
        prop_assert_eq!(got, expect);
        prop_assert_eq!(dec.buffered(), 0);
        prop_assert_eq!(dec.stream_offset(), stream.len() as u64);
    }

    #[test]
    fn byte_at_a_time(m in arb_message()) {
        let (b, e) = encoded(&m, 0);
        let mut dec = Decoder::default();
        let mut got = Vec::new();
        for byte in &b {
            dec.feed(std::slice::from_ref(byte));
            if let Some(m) = dec.next().unwrap() {
                got.push(m);
            }
        }
        prop_assert_eq!(got, vec![e]);
    }

    /// After a gap, or when joining mid-stream, only real messages come out
    /// (never garbage), and once resynchronised every later message does.
    #[test]
    fn resync_emits_only_real_messages(
        msgs in proptest::collection::vec(arb_message(), 2..8),
        start in any::<prop::sample::Index>(),
    ) {
        let mut stream = Vec::new();
        let mut expect = Vec::new();
        for m in &msgs {
            let (b, e) = encoded(m, stream.len() as u64);
            stream.extend_from_slice(&b);
            expect.push(e);
        }
        let start = start.index(stream.len());
        let mut dec = Decoder::mid_stream(Limits::default());
        dec.gap(start as u64);
        dec.feed(&stream[start..]);
        dec.finish();
        let mut got = Vec::new();
        while let Some(m) = dec.next().unwrap() {
            got.push(m);
        }
        // what comes out is a suffix of the original messages
        let first = expect.iter().position(|e| Some(e) == got.first()).unwrap_or(expect.len());
        prop_assert_eq!(&got[..], &expect[first..expect.len().min(first + got.len())]);
        // and it is exactly the messages that start at or after `start`: none of
        // them is missed, nothing of the cut one is invented
        let whole = expect.iter().position(|e| e.offset >= start as u64).unwrap_or(expect.len());
        prop_assert_eq!(&got[..], &expect[whole..], "cut at {}", start);
    }

    /// Random corruption never panics, and the decoder keeps going.
    #[test]
    fn corruption_never_panics(
        msgs in proptest::collection::vec(arb_message(), 1..4),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut stream = Vec::new();
        for m in &msgs {
            stream.extend_from_slice(&encode_message(m).unwrap());
        }
        for (i, v) in flips {
            let at = i.index(stream.len());
            stream[at] ^= v | 1;
        }
        let mut dec = Decoder::default();
        dec.feed(&stream);
        for _ in 0..10_000 {
            match dec.next() {
                Ok(None) => break,
                Ok(Some(m)) => { let _ = m.command(); let _ = m.reply(); let _ = m.write(); }
                Err(e) => prop_assert!(e.offset <= stream.len() as u64),
            }
        }
    }

    /// Every proper prefix of a message is an error for the one-shot decoder
    /// and "need more" for the incremental one.
    #[test]
    fn truncation(m in arb_message(), cut in any::<prop::sample::Index>()) {
        let (b, _) = encoded(&m, 0);
        let cut = cut.index(b.len());
        prop_assert!(decode_message(Bytes::copy_from_slice(&b[..cut]), 0, &Limits::default()).is_err());
        let mut dec = Decoder::default();
        dec.feed(&b[..cut]);
        prop_assert_eq!(dec.next().unwrap(), None);
    }
}
