//! Messages and frames: every message encodes and decodes back for v3, v4 and v5; any
//! split of a valid stream decodes the same, with v4 lz4/snappy and v5 segmented (plain
//! and lz4, self-contained and multi-segment) framing.

mod common;

use proptest::collection::vec;
use proptest::prelude::*;
use tidemark_cql::frame::segment::encode_envelopes_with;
use tidemark_cql::frame::{encode_frame, flags, Compression, FrameDecoder};
use tidemark_cql::{Direction, Envelope};

fn dir(response: bool) -> Direction {
    if response {
        Direction::ServerToClient
    } else {
        Direction::ClientToServer
    }
}

/// Feeds `stream` cut at `cuts`, pulling after each piece; returns the envelopes.
fn decode_split(mut dec: FrameDecoder, stream: &[u8], cuts: &[usize]) -> Vec<Envelope> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    points.push(0);
    points.push(stream.len());
    points.sort_unstable();
    let mut out = Vec::new();
    for w in points.windows(2) {
        dec.feed(&stream[w[0]..w[1]]);
        loop {
            match dec.next() {
                Ok(Some(f)) => out.push(f.envelope().expect("body decodes")),
                Ok(None) => break,
                Err(e) => panic!("unexpected error {e}"),
            }
        }
    }
    assert_eq!(dec.buffered(), 0);
    out
}

fn envelopes(version: u8, response: bool) -> impl Strategy<Value = Vec<Envelope>> {
    vec(common::envelope(version, response), 1..6)
}

fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Lz4),
        Just(Compression::Snappy)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn legacy_roundtrip_and_split(
        (version, response, envs) in (3u8..=5, any::<bool>()).prop_flat_map(|(v, r)| (Just(v), Just(r), envelopes(v, r))),
        comp in compression(),
        known in any::<bool>(),
        cuts in vec(any::<usize>(), 0..8),
    ) {
        let comp = if version >= 5 { Compression::None } else { comp };
        let mut stream = Vec::new();
        for (i, e) in envs.iter().enumerate() {
            let extra = if !response && i % 2 == 0 { flags::TRACING } else { 0 };
            stream.extend_from_slice(&encode_frame(version, i as i16, e, comp, extra));
        }
        let mut dec = FrameDecoder::new(dir(response));
        if known {
            dec.set_compression(comp);
        }
        let got = decode_split(dec, &stream, &cuts);
        prop_assert_eq!(got, envs);
    }

    #[test]
    fn v5_segments_any_split(
        (response, envs) in any::<bool>().prop_flat_map(|r| (Just(r), envelopes(5, r))),
        lz4 in any::<bool>(),
        max_payload in prop_oneof![Just(131_071usize), 16usize..200],
        cuts in vec(any::<usize>(), 0..8),
    ) {
        let encoded: Vec<Vec<u8>> = envs
            .iter()
            .enumerate()
            .map(|(i, e)| encode_frame(5, i as i16, e, Compression::None, 0))
            .collect();
        let stream = encode_envelopes_with(&encoded, lz4, max_payload);
        let mut dec = FrameDecoder::new(dir(response));
        dec.set_compression(if lz4 { Compression::Lz4 } else { Compression::None });
        dec.expect_segments();
        let got = decode_split(dec, &stream, &cuts);
        prop_assert_eq!(got, envs);
    }
}

#[test]
fn lz4_compressed_frame_is_flagged() {
    let env = Envelope::new(tidemark_cql::Message::Register(
        tidemark_cql::message::Register {
            events: vec!["SCHEMA_CHANGE".into(); 20],
        },
    ));
    for comp in [Compression::Lz4, Compression::Snappy] {
        let b = encode_frame(4, 1, &env, comp, 0);
        assert_eq!(b[1] & flags::COMPRESSION, flags::COMPRESSION);
        let mut dec = FrameDecoder::new(Direction::ClientToServer);
        dec.feed(&b);
        let f = dec.next().unwrap().unwrap();
        assert!(f.compressed);
        assert_eq!(f.envelope().unwrap(), env);
        assert_eq!(dec.compression(), Some(comp), "detected without STARTUP");
    }
}
