//! Robustness: truncated and corrupted input gives errors, never panics or garbage;
//! lying lengths allocate nothing; decoding resumes after a gap and on a flow picked up
//! mid-stream; the Connection follows STARTUP compression and the v5 framing switch.

mod common;

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use tidemark_cql::frame::segment::{encode_envelopes, encode_envelopes_with};
use tidemark_cql::frame::{
    encode_frame, encode_message, Compression, DecoderConfig, FrameDecoder, Framing,
};
use tidemark_cql::message::*;
use tidemark_cql::{Connection, Consistency, Direction, Envelope, ErrorKind, Message, Text};

fn query(i: usize) -> Envelope {
    Envelope::new(Message::Query(Query {
        query: Text::from(format!(
            "INSERT INTO ks.t (k, v) VALUES ({i}, 'value number {i}')"
        )),
        params: QueryParameters {
            consistency: Consistency::Quorum,
            ..Default::default()
        },
    }))
}

/// Drains a decoder: (envelopes, errors).
fn drain(dec: &mut FrameDecoder) -> (Vec<Envelope>, Vec<tidemark_cql::CqlError>) {
    let (mut ok, mut errs) = (Vec::new(), Vec::new());
    for _ in 0..100_000 {
        match dec.next() {
            Ok(Some(f)) => match f.envelope() {
                Ok(e) => ok.push(e),
                Err(e) => errs.push(e),
            },
            Ok(None) => break,
            Err(e) => errs.push(e),
        }
    }
    (ok, errs)
}

/// Whether `got` is the tail of `all`.
fn is_suffix(got: &[Envelope], all: &[Envelope]) -> bool {
    got.len() <= all.len() && all[all.len() - got.len()..] == *got
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn garbage_never_panics(data in vec(any::<u8>(), 0..2048), mid in any::<bool>(), seg in any::<bool>()) {
        for dir in [Direction::ClientToServer, Direction::ServerToClient] {
            let mut dec = if mid { FrameDecoder::mid_stream(dir, DecoderConfig::default()) } else { FrameDecoder::new(dir) };
            if seg { dec.expect_segments(); }
            dec.feed(&data);
            drain(&mut dec);
        }
        let mut c = if mid { Connection::mid_stream() } else { Connection::new() };
        c.feed(Direction::ClientToServer, &data);
        c.feed(Direction::ServerToClient, &data);
        for _ in 0..10_000 { if c.next().is_none() { break; } }
    }

    #[test]
    fn corrupted_stream_never_panics(n in 1usize..6, flips in vec((any::<usize>(), any::<u8>()), 1..6), v5 in any::<bool>(), lz4 in any::<bool>()) {
        let frames: Vec<Vec<u8>> = (0..n).map(|i| encode_frame(if v5 { 5 } else { 4 }, i as i16, &query(i), if lz4 && !v5 { Compression::Lz4 } else { Compression::None }, 0)).collect();
        let mut stream = if v5 { encode_envelopes_with(&frames, lz4, 40) } else { frames.concat() };
        for (at, x) in flips {
            let len = stream.len();
            stream[at % len] ^= x | 1;
        }
        let mut dec = FrameDecoder::new(Direction::ClientToServer);
        if v5 {
            dec.set_compression(if lz4 { Compression::Lz4 } else { Compression::None });
            dec.expect_segments();
        }
        dec.feed(&stream);
        drain(&mut dec);
    }

    #[test]
    fn truncated_bodies_are_errors(env in common::envelope(4, true), cut in any::<usize>()) {
        let frame = encode_frame(4, 0, &env, Compression::None, 0);
        let body = &frame[9..];
        let cut = cut % (body.len() + 1);
        let mut header = tidemark_cql::FrameHeader::parse(frame[..9].try_into().unwrap(), u32::MAX).unwrap();
        header.length = cut as u32;
        match Envelope::decode(&header, Bytes::copy_from_slice(&body[..cut])) {
            // The whole body is the message itself.
            Ok(got) if cut == body.len() => prop_assert_eq!(got, env),
            Err(e) => prop_assert!(cut < body.len(), "the whole body failed: {}", e),
            // A shorter body may only decode when it is itself a complete encoding
            // of what it decoded to (a message whose last fields are optional):
            // encoding that message gives exactly the bytes it was read from, so
            // no byte was invented or skipped.
            Ok(got) => {
                let again = encode_frame(4, 0, &got, Compression::None, 0);
                prop_assert_eq!(&again[9..], &body[..cut], "cut {} of {}: {:?}", cut, body.len(), got);
            }
        }
    }

    #[test]
    fn mid_stream_start_finds_boundaries(n in 3usize..12, skip in 0usize..400, v5 in any::<bool>(), lz4 in any::<bool>()) {
        let envs: Vec<Envelope> = (0..n).map(query).collect();
        let frames: Vec<Vec<u8>> = envs.iter().enumerate().map(|(i, e)| encode_frame(if v5 { 5 } else { 4 }, i as i16, e, Compression::None, 0)).collect();
        // Each of these frames fits one 100-byte segment and no two share one, so a
        // v5 stream is the frames' own segments end to end: where each frame (v4)
        // or segment (v5) starts is known.
        let units: Vec<Vec<u8>> = if v5 {
            frames.iter().map(|f| encode_envelopes_with(&[f], lz4, 100)).collect()
        } else {
            frames.clone()
        };
        let stream = units.concat();
        if v5 {
            prop_assert_eq!(&stream, &encode_envelopes_with(&frames, lz4, 100));
        }
        let skip = skip % stream.len();
        let mut dec = FrameDecoder::mid_stream(Direction::ClientToServer, DecoderConfig::default());
        dec.feed(&stream[skip..]);
        let (got, _errs) = drain(&mut dec);
        // Exactly the frames whose unit starts at or after the cut: nothing invented
        // from the cut one, none of the whole ones after it missed.
        let mut start = 0;
        let first_whole = units
            .iter()
            .position(|u| {
                let here = start;
                start += u.len();
                here >= skip
            })
            .unwrap_or(n);
        prop_assert_eq!(&got[..], &envs[first_whole..], "cut at {} of {}", skip, stream.len());
    }

    #[test]
    fn gap_then_resync(n in 4usize..12, at in any::<usize>(), len in 1usize..300, v5 in any::<bool>()) {
        let envs: Vec<Envelope> = (0..n).map(query).collect();
        let frames: Vec<Vec<u8>> = envs.iter().enumerate().map(|(i, e)| encode_frame(if v5 { 5 } else { 3 }, i as i16, e, Compression::None, 0)).collect();
        let stream = if v5 { encode_envelopes_with(&frames, false, 100) } else { frames.concat() };
        let at = at % stream.len();
        let end = (at + len).min(stream.len());
        let mut dec = FrameDecoder::new(Direction::ClientToServer);
        if v5 { dec.set_compression(Compression::None); dec.expect_segments(); }
        dec.feed(&stream[..at]);
        let (mut got, _) = drain(&mut dec);
        let before = got.len();
        prop_assert_eq!(&got[..], &envs[..before]);
        dec.gap((end - at) as u64);
        dec.feed(&stream[end..]);
        let (after, _) = drain(&mut dec);
        prop_assert!(is_suffix(&after, &envs[before..]));
        // Every frame that starts at or after the gap's end comes back (v5: every
        // frame whose segment does; one frame per 100-byte segment here).
        let unit = |i: usize| if v5 { encode_envelopes_with(&frames[i..=i], false, 100).len() } else { frames[i].len() };
        let mut start = 0;
        let first_whole = (0..n).position(|i| { let here = start; start += unit(i); here >= end }).unwrap_or(n);
        prop_assert!(after.len() >= n - first_whole, "gap [{}, {}): {} frames after it, {} start after it", at, end, after.len(), n - first_whole);
        got.extend(after);
        prop_assert!(got.len() <= envs.len());
        prop_assert_eq!(dec.offset() + dec.buffered() as u64, stream.len() as u64);
    }
}

#[test]
fn lying_length_buffers_only_what_arrives() {
    // A QUERY header claiming 200 MB: the decoder waits without reserving anything.
    let mut dec = FrameDecoder::new(Direction::ClientToServer);
    dec.feed(&[0x04, 0, 0, 1, 0x07, 0x0c, 0x80, 0, 0, 1, 2, 3]);
    assert!(dec.next().unwrap().is_none());
    assert_eq!(dec.buffered(), 12);
    // Over a configured cap: an error, then resynchronization.
    let cfg = DecoderConfig {
        max_frame_len: 1 << 20,
        ..Default::default()
    };
    let mut dec = FrameDecoder::with_config(Direction::ClientToServer, cfg);
    dec.feed(&[0x04, 0, 0, 1, 0x07, 0x0c, 0x80, 0, 0]);
    let e = dec.next().unwrap_err();
    assert!(matches!(e.kind, ErrorKind::FrameTooLarge { .. }), "{e}");
    assert_eq!(e.offset, 0);
}

#[test]
fn lying_lz4_length_is_refused() {
    // Compressed frame whose LZ4 prefix claims 256 MB from a 6-byte block.
    let mut f = vec![0x04, 0x01, 0, 1, 0x07, 0, 0, 0, 10];
    f.extend_from_slice(&[0x10, 0, 0, 0, 0x10, 0x41, 0, 0, 0, 0]);
    let mut dec = FrameDecoder::new(Direction::ClientToServer);
    dec.set_compression(Compression::Lz4);
    dec.feed(&f);
    let e = dec.next().unwrap_err();
    assert!(
        matches!(
            e.kind,
            ErrorKind::Decompress(..) | ErrorKind::FrameTooLarge { .. }
        ),
        "{e}"
    );
}

fn startup(comp: Option<&str>) -> Message {
    let mut options = vec![(Text::from("CQL_VERSION"), Text::from("3.0.0"))];
    if let Some(c) = comp {
        options.push((Text::from("COMPRESSION"), Text::from(c)));
    }
    Message::Startup(Startup { options })
}

#[test]
fn connection_v4_compression_from_startup() {
    for (name, comp) in [("lz4", Compression::Lz4), ("snappy", Compression::Snappy)] {
        let mut c = Connection::new();
        let mut c2s = encode_message(4, 0, startup(Some(name)), Compression::None);
        c2s.extend(encode_frame(4, 1, &query(1), comp, 0));
        let mut s2c = encode_message(4, 0, Message::Ready, comp);
        s2c.extend(encode_message(
            4,
            1,
            Message::Result(ResultBody::Void),
            comp,
        ));
        // Interleave byte by byte.
        let mut got = Vec::new();
        for i in 0..c2s.len().max(s2c.len()) {
            if let Some(b) = c2s.get(i) {
                c.feed(Direction::ClientToServer, &[*b]);
            }
            if let Some(b) = s2c.get(i) {
                c.feed(Direction::ServerToClient, &[*b]);
            }
            while let Some(item) = c.next() {
                got.push(item.unwrap());
            }
        }
        let ops = |d| {
            got.iter()
                .filter(|i| i.dir == d)
                .map(|i| i.frame.header.opcode.name())
                .collect::<Vec<_>>()
        };
        assert_eq!(ops(Direction::ClientToServer), ["STARTUP", "QUERY"]);
        assert_eq!(ops(Direction::ServerToClient), ["READY", "RESULT"]);
        assert_eq!(c.compression(), Some(comp));
        assert!(got
            .iter()
            .filter(|i| i.frame.header.opcode.name() == "QUERY")
            .all(|i| i.frame.compressed));
    }
}

#[test]
fn connection_v5_switches_to_segments() {
    for lz4 in [false, true] {
        let comp = if lz4 { Some("lz4") } else { None };
        let mut c = Connection::new();
        // OPTIONS/SUPPORTED and STARTUP/AUTHENTICATE unframed, then segments.
        let mut c2s = encode_message(5, 0, Message::Options, Compression::None);
        c2s.extend(encode_message(5, 1, startup(comp), Compression::None));
        let framed: Vec<Vec<u8>> = vec![
            encode_message(
                5,
                2,
                Message::AuthResponse(AuthResponse::with_token(Some(Bytes::from_static(
                    b"\0user\0secret",
                )))),
                Compression::None,
            ),
            encode_frame(5, 3, &query(3), Compression::None, 0),
        ];
        c2s.extend(encode_envelopes(&framed, lz4));
        let mut s2c = encode_message(
            5,
            0,
            Message::Supported { options: vec![] },
            Compression::None,
        );
        s2c.extend(encode_message(
            5,
            1,
            Message::Authenticate {
                authenticator: Text::from("PasswordAuthenticator"),
            },
            Compression::None,
        ));
        let big = Message::Result(ResultBody::SetKeyspace(Text::from("k".repeat(60_000))));
        let framed: Vec<Vec<u8>> = vec![
            encode_message(
                5,
                2,
                Message::AuthSuccess { token: None },
                Compression::None,
            ),
            encode_message(5, 3, big.clone(), Compression::None),
        ];
        s2c.extend(encode_envelopes_with(&framed, lz4, 20_000));
        for chunk in c2s.chunks(7) {
            c.feed(Direction::ClientToServer, chunk);
        }
        for chunk in s2c.chunks(13) {
            c.feed(Direction::ServerToClient, chunk);
        }
        let got: Vec<_> = std::iter::from_fn(|| c.next())
            .map(|r| r.unwrap())
            .collect();
        let ops: Vec<_> = got.iter().map(|i| i.frame.header.opcode.name()).collect();
        assert_eq!(
            ops,
            [
                "OPTIONS",
                "STARTUP",
                "AUTH_RESPONSE",
                "QUERY",
                "SUPPORTED",
                "AUTHENTICATE",
                "AUTH_SUCCESS",
                "RESULT"
            ]
        );
        assert_eq!(c.framing(Direction::ClientToServer), Framing::Segments);
        assert_eq!(c.framing(Direction::ServerToClient), Framing::Segments);
        assert_eq!(got[7].envelope.message, big);
        // The credentials never survive decoding.
        assert!(!format!("{:?}", got[2]).contains("secret"));
        match &got[2].envelope.message {
            Message::AuthResponse(a) => {
                assert_eq!(a.token(), None);
                assert_eq!(a.token_len, 12);
            }
            m => panic!("{m:?}"),
        }
    }
}
