//! Rough decode throughput (run with `--release -- --ignored --nocapture`); the target
//! is about 1 GB/s per core for framing plus message decoding.

use std::time::Instant;
use tidemark_cql::frame::{encode_frame, Compression, FrameDecoder};
use tidemark_cql::message::*;
use tidemark_cql::{Consistency, Direction, Envelope, Message, Text, WireValue};

#[test]
#[ignore]
fn decode_throughput() {
    let mut stream = Vec::new();
    for i in 0..20_000 {
        let env = Envelope::new(Message::Execute(Execute {
            id: bytes::Bytes::from_static(&[7; 16]),
            result_metadata_id: None,
            params: QueryParameters {
                consistency: Consistency::LocalQuorum,
                values: QueryValues::Positional(vec![
                    WireValue::Bytes(bytes::Bytes::from(vec![1u8; 16])),
                    WireValue::Bytes(bytes::Bytes::from(vec![2u8; 400])),
                ]),
                timestamp: Some(i),
                ..Default::default()
            },
        }));
        stream.extend(encode_frame(
            4,
            (i % 1000) as i16,
            &env,
            Compression::None,
            0,
        ));
        let q = Envelope::new(Message::Query(Query {
            query: Text::from("INSERT INTO ks.tbl (a, b, c) VALUES (?, ?, ?) USING TTL 100"),
            params: QueryParameters::default(),
        }));
        stream.extend(encode_frame(4, 1, &q, Compression::None, 0));
    }
    let rounds = 20;
    for decode in [false, true] {
        let start = Instant::now();
        let mut n = 0usize;
        for _ in 0..rounds {
            let mut dec = FrameDecoder::new(Direction::ClientToServer);
            for chunk in stream.chunks(64 * 1024) {
                dec.feed(chunk);
                while let Ok(Some(f)) = dec.next() {
                    if decode {
                        let _ = f.envelope().unwrap();
                    }
                    n += 1;
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let mb = (stream.len() * rounds) as f64 / 1e6;
        eprintln!(
            "{n} frames, decode messages {decode}: {:.0} MB/s",
            mb / secs
        );
    }
}
