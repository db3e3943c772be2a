//! Fuzzes the MongoDB message decoder: arbitrary bytes, arbitrary splits,
//! gaps and mid-stream starts. Every decoded message goes through the
//! models, and re-encoding it must decode to the same body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidemark_mongo::{decode_message, encode_message, Decoder, Limits};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_message: 1 << 20,
        max_document: 1 << 19,
        max_depth: 64,
    };
    let mut dec = if mode & 1 == 1 {
        Decoder::mid_stream(limits)
    } else {
        Decoder::new(limits)
    };
    let chunk = (mode as usize >> 1).max(1);
    for (i, piece) in rest.chunks(chunk).enumerate() {
        if mode & 0x80 != 0 && i == 3 {
            dec.gap(piece.len() as u64);
            continue;
        }
        dec.feed(piece);
        for _ in 0..64 {
            match dec.next() {
                Ok(Some(m)) => {
                    let _ = m.classify();
                    if let Some(c) = m.command() {
                        let _ = c.write();
                        let _ = c.ddl();
                        let _ = c.session();
                        let _ = c.auth();
                        let _ = c.get_last_error();
                        let _ = c.oplog_find();
                        let _ = c.get_more();
                        let _ = tidemark_mongo::repl::UpdatePosition::parse(c.body);
                    }
                    let _ = m.write();
                    if let Some(Ok(r)) = m.reply() {
                        if let Some(cur) = &r.cursor {
                            let _ = cur.oplog_entries();
                        }
                    }
                    if let Some(d) = m.reply_document() {
                        let _ = tidemark_mongo::repl::HelloReply::parse(d);
                        let _ = tidemark_mongo::json::document_to_json(d);
                    }
                    if !m.redacted {
                        let bytes = encode_message(&m).expect("decoded messages re-encode");
                        let again = decode_message(bytes.into(), m.offset, &limits)
                            .expect("re-encoded message decodes");
                        assert_eq!(again.body, m.body);
                        assert_eq!(again.compressor, m.compressor);
                    }
                }
                Ok(None) => break,
                Err(e) => assert!(e.offset <= dec.stream_offset()),
            }
        }
    }
});
