//! Hostile input: lying lengths, bad checksums, bombs, unknown opcodes,
//! gaps. Every case is an error value (or a quiet wait), never a panic or a
//! large allocation.

use bson::rawdoc;
use bytes::Bytes;
use tidemark_mongo::*;

fn msg_body(doc: bson::RawDocumentBuf, flags: u32) -> Message {
    let mut m = OpMsg::new(Doc::from(doc));
    m.flags = MsgFlags(flags);
    Message::new(7, 0, Body::Msg(m))
}

fn ping() -> Vec<u8> {
    encode_message(&msg_body(rawdoc! {"ping": 1, "$db": "admin"}, 0)).unwrap()
}

fn header(len: i32, opcode: i32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(&1i32.to_le_bytes());
    v.extend_from_slice(&0i32.to_le_bytes());
    v.extend_from_slice(&opcode.to_le_bytes());
    v
}

#[test]
fn lying_length_buffers_only_what_arrives() {
    let mut dec = Decoder::default();
    let mut bytes = header(47_000_000, 2013);
    bytes.extend_from_slice(&[0; 100]);
    dec.feed(&bytes);
    assert_eq!(dec.next().unwrap(), None);
    assert!(dec.buffered() <= bytes.len());
}

#[test]
fn length_over_limit_is_an_error_then_resync() {
    let mut dec = Decoder::default();
    let mut bytes = header(49_000_000, 2013);
    bytes.extend_from_slice(&ping());
    dec.feed(&bytes);
    let e = dec.next().unwrap_err();
    assert_eq!(e.offset, 0);
    assert!(matches!(e.kind, ErrorKind::InvalidLength { .. }));
    let m = dec.next().unwrap().unwrap();
    assert_eq!(m.offset, 16);
    assert_eq!(m.command().unwrap().name, "ping");
}

#[test]
fn configurable_limits() {
    let limits = Limits {
        max_message: 1000,
        max_document: 100,
        max_depth: 10,
    };
    let big = msg_body(rawdoc! {"insert": "c", "pad": "x".repeat(200)}, 0);
    let bytes = encode_message(&big).unwrap();
    let e = decode_message(Bytes::from(bytes), 0, &limits).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::DocumentTooLarge { .. }), "{e}");
    let mut dec = Decoder::new(limits);
    dec.feed(&header(2000, 2013));
    assert!(matches!(
        dec.next().unwrap_err().kind,
        ErrorKind::InvalidLength { .. }
    ));
}

#[test]
fn bad_checksum_is_detected() {
    let m = msg_body(
        rawdoc! {"insert": "c", "$db": "d"},
        MsgFlags::CHECKSUM_PRESENT,
    );
    let mut bytes = encode_message(&m).unwrap();
    assert!(decode_message(Bytes::from(bytes.clone()), 0, &Limits::default()).is_ok());
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    let e = decode_message(Bytes::from(bytes.clone()), 0, &Limits::default()).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::ChecksumMismatch { .. }), "{e}");
    // corrupt the body instead: same error, and the decoder moves on
    bytes[n - 1] ^= 0xff;
    bytes[30] ^= 0x01;
    let mut dec = Decoder::default();
    dec.feed(&bytes);
    dec.feed(&ping());
    assert!(dec.next().is_err());
    assert!(dec.next().unwrap().is_some());
}

#[test]
fn checksum_inside_compression() {
    let m = msg_body(
        rawdoc! {"insert": "c", "$db": "d"},
        MsgFlags::CHECKSUM_PRESENT,
    )
    .compressed_with(Compressor::Zstd);
    let bytes = encode_message(&m).unwrap();
    let got = decode_message(Bytes::from(bytes), 0, &Limits::default()).unwrap();
    assert_eq!(got.compressor, Some(Compressor::Zstd));
    assert_eq!(got.opcode(), OpCode::Msg);
    assert_eq!(got.wire_opcode(), OpCode::Compressed);
}

#[test]
fn op_msg_structure_errors() {
    let body = rawdoc! {"ping": 1};
    let build = |flags: u32, sections: &[(u8, &[u8])]| {
        let mut v = header(0, 2013);
        v.extend_from_slice(&flags.to_le_bytes());
        for (k, b) in sections {
            v.push(*k);
            v.extend_from_slice(b);
        }
        let n = v.len() as i32;
        v[..4].copy_from_slice(&n.to_le_bytes());
        Bytes::from(v)
    };
    let l = Limits::default();
    let e = decode_message(build(1 << 5, &[(0, body.as_bytes())]), 0, &l).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::UnknownRequiredFlags { .. }));
    // unknown optional bits are ignored
    assert!(decode_message(build(1 << 20, &[(0, body.as_bytes())]), 0, &l).is_ok());
    let e = decode_message(build(0, &[(2, body.as_bytes())]), 0, &l).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::UnknownSectionKind { kind: 2 }));
    let e = decode_message(
        build(0, &[(0, body.as_bytes()), (0, body.as_bytes())]),
        0,
        &l,
    )
    .unwrap_err();
    assert!(matches!(e.kind, ErrorKind::BodySectionCount { count: 2 }));
    let e = decode_message(build(0, &[]), 0, &l).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::BodySectionCount { count: 0 }));
    // a document sequence whose size lies
    let mut seq = Vec::new();
    seq.extend_from_slice(&1000i32.to_le_bytes());
    seq.extend_from_slice(b"documents\0");
    let e = decode_message(build(0, &[(0, body.as_bytes()), (1, &seq)]), 0, &l).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Truncated { .. }), "{e}");
}

#[test]
fn compressed_size_lies_and_bombs() {
    let l = Limits::default();
    let wrap = |declared: i32, id: u8, payload: &[u8]| {
        let mut v = header(0, 2012);
        v.extend_from_slice(&2013i32.to_le_bytes());
        v.extend_from_slice(&declared.to_le_bytes());
        v.push(id);
        v.extend_from_slice(payload);
        let n = v.len() as i32;
        v[..4].copy_from_slice(&n.to_le_bytes());
        Bytes::from(v)
    };
    // zlib bomb: 40 MB of zeros declared as 100 bytes
    let zeros = vec![0u8; 40 << 20];
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut z, &zeros).unwrap();
    let bomb = z.finish().unwrap();
    let e = decode_message(wrap(100, 2, &bomb), 0, &l).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Decompression { .. }), "{e}");
    // declared beyond the limit
    let e = decode_message(wrap(60_000_000, 2, &bomb), 0, &l).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Decompression { .. }), "{e}");
    // snappy with a lying header
    let e = decode_message(wrap(10, 1, &[0xff, 0xff, 0xff, 0x7f]), 0, &l).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Decompression { .. }), "{e}");
    // unknown compressor, nested compression
    let e = decode_message(wrap(0, 9, &[]), 0, &l).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::UnknownCompressor { id: 9 }));
    let mut nested = header(0, 2012);
    nested.extend_from_slice(&2012i32.to_le_bytes());
    nested.extend_from_slice(&0i32.to_le_bytes());
    nested.push(0);
    let n = nested.len() as i32;
    nested[..4].copy_from_slice(&n.to_le_bytes());
    let e = decode_message(Bytes::from(nested), 0, &l).unwrap_err();
    assert!(matches!(
        e.kind,
        ErrorKind::InvalidOriginalOpcode { opcode: 2012 }
    ));
}

#[test]
fn unknown_opcode_skipped_across_feeds() {
    let mut dec = Decoder::default();
    let mut bad = header(16 + 100, 2269);
    bad.extend_from_slice(&[0xAB; 100]);
    dec.feed(&bad[..20]);
    let e = dec.next().unwrap_err();
    assert!(matches!(
        e.kind,
        ErrorKind::UnknownOpcode {
            opcode: 2269,
            length: 116
        }
    ));
    assert_eq!(e.request_id, Some(1));
    // the rest of the unknown message is dropped on arrival, even across a gap
    dec.feed(&bad[20..50]);
    dec.gap(10);
    dec.feed(&bad[60..]);
    assert!(!dec.is_resyncing());
    let p = ping();
    dec.feed(&p);
    let m = dec.next().unwrap().unwrap();
    assert_eq!(m.offset, 116);
}

#[test]
fn gap_mid_message_resyncs() {
    let p = ping();
    let mut stream = Vec::new();
    for _ in 0..4 {
        stream.extend_from_slice(&p);
    }
    let mut dec = Decoder::default();
    dec.feed(&stream[..p.len() + 5]);
    assert!(dec.next().unwrap().is_some());
    assert_eq!(dec.next().unwrap(), None);
    dec.gap(7);
    dec.feed(&stream[p.len() + 12..]);
    let mut got = Vec::new();
    while let Some(m) = dec.next().unwrap() {
        got.push(m.offset);
    }
    let l = p.len() as u64;
    assert_eq!(got, vec![2 * l, 3 * l]);
}

#[test]
fn garbage_between_messages() {
    let p = ping();
    let mut stream = p.clone();
    stream.extend_from_slice(b"\x05\x00\x00\x00garbage that is not a message at all");
    stream.extend_from_slice(&p);
    let mut dec = Decoder::default();
    dec.feed(&stream);
    assert!(dec.next().unwrap().is_some());
    assert!(dec.next().is_err());
    let m = dec.next().unwrap().unwrap();
    assert_eq!(m.offset as usize, stream.len() - p.len());
    assert_eq!(dec.next().unwrap(), None);
}

#[test]
fn legacy_structure_errors() {
    let l = Limits::default();
    // OP_REPLY whose numberReturned disagrees with its documents
    let mut v = header(0, 1);
    v.extend_from_slice(&0i32.to_le_bytes());
    v.extend_from_slice(&0i64.to_le_bytes());
    v.extend_from_slice(&0i32.to_le_bytes());
    v.extend_from_slice(&5i32.to_le_bytes());
    v.extend_from_slice(rawdoc! {"a": 1}.as_bytes());
    let n = v.len() as i32;
    v[..4].copy_from_slice(&n.to_le_bytes());
    assert!(decode_message(Bytes::from(v), 0, &l).is_err());
    // OP_KILL_CURSORS with a count larger than the message
    let mut v = header(0, 2007);
    v.extend_from_slice(&0i32.to_le_bytes());
    v.extend_from_slice(&i32::MAX.to_le_bytes());
    let n = v.len() as i32;
    v[..4].copy_from_slice(&n.to_le_bytes());
    assert!(decode_message(Bytes::from(v), 0, &l).is_err());
    // OP_QUERY with an unterminated namespace
    let mut v = header(0, 2004);
    v.extend_from_slice(&0i32.to_le_bytes());
    v.extend_from_slice(b"db.coll");
    let n = v.len() as i32;
    v[..4].copy_from_slice(&n.to_le_bytes());
    let e = decode_message(Bytes::from(v), 0, &l).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::InvalidCString { .. }));
}

#[test]
fn sasl_payloads_are_scrubbed() {
    let secret = vec![0x41u8; 32];
    let bin = bson::Binary {
        subtype: bson::spec::BinarySubtype::Generic,
        bytes: secret.clone(),
    };
    let req = msg_body(
        rawdoc! {"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": bin.clone(), "$db": "admin"},
        0,
    );
    let reply = msg_body(
        rawdoc! {"conversationId": 1, "done": false, "payload": bin.clone(), "ok": 1.0},
        0,
    );
    let hello = msg_body(
        rawdoc! {"hello": 1, "speculativeAuthenticate": {"saslStart": 1, "payload": bin.clone(), "db": "admin"}},
        0,
    );
    let create_user = msg_body(
        rawdoc! {"createUser": "u", "pwd": "hunter2", "roles": []},
        0,
    );
    let legacy = Message::new(
        1,
        0,
        Body::Query(OpQuery {
            flags: 0,
            full_collection_name: "admin.$cmd".into(),
            number_to_skip: 0,
            number_to_return: -1,
            query: Doc::from(rawdoc! {"saslContinue": 1, "conversationId": 1, "payload": bin}),
            return_fields_selector: None,
        }),
    );
    for m in [req, reply, hello, create_user, legacy] {
        let bytes = encode_message(&m).unwrap();
        let got = decode_message(Bytes::from(bytes), 0, &Limits::default()).unwrap();
        assert!(got.redacted);
        let raw = match &got.body {
            Body::Msg(m) => m.body.bytes().clone(),
            Body::Query(q) => q.query.bytes().clone(),
            _ => unreachable!(),
        };
        assert!(!raw.windows(32).any(|w| w == secret.as_slice()));
        assert!(!raw.windows(7).any(|w| w == b"hunter2"));
        if let Some(c) = got.command() {
            if let Some(a) = c.auth() {
                assert_eq!(a.payload.map(|p| p.len), Some(32));
            }
        }
    }
    // ordinary commands are untouched
    let got = decode_message(Bytes::from(ping()), 0, &Limits::default()).unwrap();
    assert!(!got.redacted);
}

/// Issue #19: the checksum is verified on the bytes as received, before the SASL
/// payload is scrubbed from the decoder's copy; a checksummed SCRAM message (as some
/// drivers and mongod's internal clients send them) decodes, scrubbed, in plain and
/// OP_COMPRESSED form, and a really wrong checksum is still an error.
#[test]
fn checksummed_sasl_messages_verify_before_scrubbing() {
    let secret = b"c=biws,r=nonce-0123456789,p=proof-0123456789".to_vec();
    let bin = bson::Binary {
        subtype: bson::spec::BinarySubtype::Generic,
        bytes: secret.clone(),
    };
    let checksummed = MsgFlags::CHECKSUM_PRESENT;
    for (doc, name) in [
        (
            rawdoc! {"saslContinue": 1, "conversationId": 1, "payload": bin.clone(), "$db": "admin"},
            "saslContinue",
        ),
        (
            rawdoc! {"conversationId": 1, "done": true, "payload": bin.clone(), "ok": 1.0},
            "reply",
        ),
    ] {
        let plain = msg_body(doc.clone(), checksummed);
        let zlib = msg_body(doc, checksummed).compressed_with(Compressor::Zlib);
        for m in [plain, zlib] {
            let bytes = encode_message(&m).unwrap();
            let got = decode_message(Bytes::from(bytes.clone()), 0, &Limits::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(got.redacted, "{name}");
            let Body::Msg(msg) = &got.body else {
                panic!("{name}: not an OP_MSG")
            };
            assert!(msg.flags.checksum_present(), "{name}");
            let raw = msg.body.bytes();
            assert!(
                !raw.windows(secret.len()).any(|w| w == secret.as_slice()),
                "{name}: payload scrubbed"
            );
            if m.compressor.is_none() {
                // A really wrong checksum (one bit of the trailing CRC) is reported.
                let mut bad = bytes;
                let last = bad.len() - 1;
                bad[last] ^= 1;
                let e = decode_message(Bytes::from(bad), 0, &Limits::default()).unwrap_err();
                assert!(
                    matches!(e.kind, ErrorKind::ChecksumMismatch { .. }),
                    "{name}: {e}"
                );
            }
        }
    }
}

/// Found by the `resync_emits_only_real_messages` property test: after a gap, bytes
/// that look like the header of a long OP_MSG hold the scan until their claimed
/// length arrives, which at the end of a flow never happens. `finish` says no more
/// bytes will come, and the real message behind the false header is found.
#[test]
fn finish_moves_past_a_false_candidate_at_end_of_stream() {
    let mut fake = header(1000, 2013);
    fake.extend_from_slice(&0u32.to_le_bytes()); // flags
    fake.push(0); // section kind 0
    fake.extend_from_slice(&100i32.to_le_bytes()); // plausible document size
    let real = ping();
    let mut dec = Decoder::mid_stream(Limits::default());
    dec.gap(7);
    dec.feed(&fake);
    dec.feed(&real);
    assert!(
        dec.next().unwrap().is_none(),
        "waits for the candidate's bytes"
    );
    dec.finish();
    let m = dec.next().unwrap().expect("the real message after finish");
    assert_eq!(m.offset, 7 + fake.len() as u64);
    assert!(dec.next().unwrap().is_none());
}
