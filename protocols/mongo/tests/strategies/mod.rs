//! Proptest strategies for documents and messages of every kind.

#![allow(dead_code)]

use bson::{RawBson, RawDocumentBuf};
use proptest::prelude::*;
use tidemark_mongo::*;

fn leaf() -> impl Strategy<Value = RawBson> {
    prop_oneof![
        any::<i32>().prop_map(RawBson::Int32),
        any::<i64>().prop_map(RawBson::Int64),
        any::<f64>().prop_map(RawBson::Double),
        any::<bool>().prop_map(RawBson::Boolean),
        "[a-zA-Z0-9 é]{0,12}".prop_map(RawBson::String),
        Just(RawBson::Null),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(|bytes| RawBson::Binary(
            bson::Binary {
                subtype: bson::spec::BinarySubtype::Generic,
                bytes
            }
        )),
        (any::<u32>(), any::<u32>())
            .prop_map(|(time, increment)| RawBson::Timestamp(bson::Timestamp { time, increment })),
    ]
}

pub fn arb_doc() -> impl Strategy<Value = RawDocumentBuf> {
    let value = leaf().prop_recursive(3, 24, 4, |inner| {
        proptest::collection::vec(("[a-z]{1,6}", inner), 0..4).prop_map(|fields| {
            let mut d = RawDocumentBuf::new();
            for (k, v) in fields {
                d.append(bson::raw::CString::try_from(k).unwrap(), v);
            }
            RawBson::Document(d)
        })
    });
    proptest::collection::vec(("[a-z]{1,6}", value), 0..6).prop_map(|fields| {
        let mut d = RawDocumentBuf::new();
        for (k, v) in fields {
            d.append(bson::raw::CString::try_from(k).unwrap(), v);
        }
        d
    })
}

pub fn arb_d() -> impl Strategy<Value = Doc> {
    arb_doc().prop_map(Doc::from)
}

pub fn arb_seq() -> impl Strategy<Value = DocSeq> {
    proptest::collection::vec(arb_doc(), 0..4)
        .prop_map(|docs| DocSeq::from_docs(docs.iter().map(|d| d.as_ref())))
}

fn ns() -> impl Strategy<Value = String> {
    "[a-z]{1,6}\\.[a-z$]{1,8}"
}

pub fn arb_body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (
            prop::sample::select(vec![
                0u32,
                MsgFlags::CHECKSUM_PRESENT,
                MsgFlags::MORE_TO_COME,
                MsgFlags::EXHAUST_ALLOWED,
                MsgFlags::CHECKSUM_PRESENT | MsgFlags::MORE_TO_COME,
            ]),
            arb_d(),
            proptest::collection::vec(("[a-z]{1,8}", arb_seq()), 0..3),
            any::<prop::sample::Index>(),
        )
            .prop_map(|(flags, body, seqs, idx)| {
                let n = seqs.len();
                Body::Msg(OpMsg {
                    flags: MsgFlags(flags),
                    body,
                    sequences: seqs
                        .into_iter()
                        .map(|(identifier, documents)| DocSequence {
                            identifier,
                            documents,
                        })
                        .collect(),
                    body_position: idx.index(n + 1),
                })
            }),
        (
            any::<u8>(),
            ns(),
            any::<i32>(),
            any::<i32>(),
            arb_d(),
            proptest::option::of(arb_d())
        )
            .prop_map(|(f, n, s, r, q, sel)| Body::Query(OpQuery {
                flags: (f & 0xFE) as u32,
                full_collection_name: n,
                number_to_skip: s,
                number_to_return: r,
                query: q,
                return_fields_selector: sel,
            })),
        (0u32..16, any::<i64>(), any::<i32>(), arb_seq()).prop_map(|(f, c, s, d)| Body::Reply(
            OpReply {
                response_flags: f,
                cursor_id: c,
                starting_from: s,
                documents: d,
            }
        )),
        (0u32..2, ns(), arb_seq()).prop_map(|(f, n, d)| Body::Insert(OpInsert {
            flags: f,
            full_collection_name: n,
            documents: d,
        })),
        (ns(), 0u32..4, arb_d(), arb_d()).prop_map(|(n, f, s, u)| Body::Update(OpUpdate {
            full_collection_name: n,
            flags: f,
            selector: s,
            update: u,
        })),
        (ns(), 0u32..2, arb_d()).prop_map(|(n, f, s)| Body::Delete(OpDelete {
            full_collection_name: n,
            flags: f,
            selector: s,
        })),
        (ns(), any::<i32>(), any::<i64>()).prop_map(|(n, r, c)| Body::GetMore(OpGetMore {
            full_collection_name: n,
            number_to_return: r,
            cursor_id: c,
        })),
        proptest::collection::vec(any::<i64>(), 0..5)
            .prop_map(|ids| Body::KillCursors(OpKillCursors { cursor_ids: ids })),
        ("[a-z]{1,8}", "[a-zA-Z]{1,10}", arb_d(), arb_d(), arb_seq()).prop_map(
            |(db, name, a, m, i)| Body::Command(OpCommand {
                database: db,
                command_name: name,
                command_args: a,
                metadata: m,
                input_docs: i,
            })
        ),
        (arb_d(), arb_d(), arb_seq()).prop_map(|(r, m, o)| Body::CommandReply(OpCommandReply {
            command_reply: r,
            metadata: m,
            output_docs: o,
        })),
    ]
}

pub fn arb_compressor() -> impl Strategy<Value = Option<Compressor>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Compressor::Noop)),
        1 => Just(Some(Compressor::Snappy)),
        1 => Just(Some(Compressor::Zlib)),
        1 => Just(Some(Compressor::Zstd)),
    ]
}

pub fn arb_message() -> impl Strategy<Value = Message> {
    (any::<i32>(), any::<i32>(), arb_body(), arb_compressor()).prop_map(|(id, to, body, c)| {
        let m = Message::new(id, to, body);
        match c {
            Some(c) => m.compressed_with(c),
            None => m,
        }
    })
}

/// Encodes and returns the message as decoding would report it.
pub fn encoded(m: &Message, offset: u64) -> (Vec<u8>, Message) {
    let bytes = encode_message(m).unwrap();
    let mut expect = m.clone();
    expect.offset = offset;
    expect.wire_length = bytes.len() as u32;
    (bytes, expect)
}
