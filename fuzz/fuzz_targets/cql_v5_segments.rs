//! v5 segment framing from arbitrary bytes (plain and LZ4 headers, synced start or
//! mid-stream): no panics, no unbounded buffering.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidemark_cql::frame::{Compression, DecoderConfig, FrameDecoder};
use tidemark_cql::Direction;

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, rest)) = data.split_first() else {
        return;
    };
    let dir = if cfg & 1 == 0 {
        Direction::ClientToServer
    } else {
        Direction::ServerToClient
    };
    let limits = DecoderConfig {
        max_frame_len: 1 << 20,
        resync_window: 1 << 16,
    };
    let mut dec = if cfg & 2 == 0 {
        let mut d = FrameDecoder::with_config(dir, limits);
        d.set_compression(if cfg & 4 == 0 {
            Compression::None
        } else {
            Compression::Lz4
        });
        d.expect_segments();
        d
    } else {
        FrameDecoder::mid_stream(dir, limits)
    };
    let chunk = usize::from(cfg >> 3) + 1;
    for piece in rest.chunks(chunk) {
        dec.feed(piece);
        loop {
            match dec.next() {
                Ok(Some(f)) => {
                    let _ = f.envelope();
                }
                Ok(None) => break,
                Err(_) => {}
            }
        }
        assert!(dec.buffered() <= rest.len() + 1);
    }
});
