//! CQL frames from arbitrary bytes through a whole Connection (both directions, any
//! split): no panics, and every decoded message re-encodes to bytes that decode to the
//! same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidemark_cql::frame::{encode_frame, Compression, FrameDecoder};
use tidemark_cql::{Connection, Direction};

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, rest)) = data.split_first() else {
        return;
    };
    let mut conn = if cfg & 1 == 0 {
        Connection::new()
    } else {
        Connection::mid_stream()
    };
    match (cfg >> 1) & 3 {
        1 => conn.set_compression(Compression::Lz4),
        2 => conn.set_compression(Compression::Snappy),
        _ => {}
    }
    let chunk = usize::from(cfg >> 3) + 1;
    for (i, piece) in rest.chunks(chunk).enumerate() {
        let dir = if (i / 3) % 2 == 0 {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        };
        if cfg & 0x80 != 0 && i == 5 {
            conn.gap(dir, 17);
        }
        conn.feed(dir, piece);
        while let Some(item) = conn.next() {
            let Ok(item) = item else { continue };
            let h = item.frame.header;
            let bytes = encode_frame(h.version, h.stream, &item.envelope, Compression::None, 0);
            let mut dec = FrameDecoder::new(item.dir);
            dec.feed(&bytes);
            let again = dec
                .next()
                .expect("re-encoded frame decodes")
                .expect("complete");
            let env = again.envelope().expect("re-encoded body decodes");
            assert_eq!(env, item.envelope);
        }
    }
});
