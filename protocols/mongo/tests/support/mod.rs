//! Helpers shared by the model tests.

#![allow(dead_code)]

use bson::Binary;
use tidemark_mongo::*;

pub fn uuid() -> Binary {
    Binary {
        subtype: bson::spec::BinarySubtype::Uuid,
        bytes: vec![7; 16],
    }
}

pub fn op_msg(body: bson::RawDocumentBuf, seqs: Vec<(&str, Vec<bson::RawDocumentBuf>)>) -> Message {
    let mut m = OpMsg::new(Doc::from(body));
    for (id, docs) in seqs {
        m.sequences.push(DocSequence {
            identifier: id.into(),
            documents: DocSeq::from_docs(docs.iter().map(|d| d.as_ref())),
        });
    }
    // go through the wire so the model sees decoded bytes
    let bytes = encode_message(&Message::new(1, 0, Body::Msg(m))).unwrap();
    decode_message(bytes.into(), 0, &Limits::default()).unwrap()
}
