//! Fuzzes the command, reply and replication models over arbitrary BSON.
//! The input's first byte picks a command name; the rest are raw BSON
//! elements appended after it (or, failing that, a whole document).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidemark_mongo::bson::RawDocument;
use tidemark_mongo::model::{fields, Reply};
use tidemark_mongo::repl::*;
use tidemark_mongo::*;

const NAMES: &[&str] = &[
    "insert",
    "update",
    "delete",
    "findAndModify",
    "bulkWrite",
    "applyOps",
    "create",
    "drop",
    "dropDatabase",
    "renameCollection",
    "createIndexes",
    "dropIndexes",
    "collMod",
    "getlasterror",
    "find",
    "getMore",
    "hello",
    "replSetHeartbeat",
    "replSetUpdatePosition",
    "saslStart",
    "commitTransaction",
    "convertToCapped",
];

fn exercise(doc: &RawDocument) {
    let _ = tidemark_mongo::json::document_to_json(doc);
    let _ = Reply::parse(doc);
    let _ = HelloReply::parse(doc);
    let _ = HeartbeatRequest::parse(doc);
    let _ = HeartbeatReply::parse(doc);
    let _ = UpdatePosition::parse(doc);
    let _ = CursorReply::parse(doc);
    let _ = ReplData::parse(doc);
    let _ = OplogQueryData::parse(doc);
    let _ = DocDiff::parse(doc);
    let _ = OpTime::from_doc(doc);
    if let Ok(e) = OplogEntry::parse(doc) {
        let _ = e.update();
        let _ = e.apply_ops();
        let _ = e.document_id();
    }
    let _ = fields::first_key(doc);
    let msg = Message::new(1, 0, Body::Msg(OpMsg::new(Doc::from_raw(doc))));
    if let Some(c) = msg.command() {
        let _ = c.kind;
        if let Ok(Some(w)) = c.write() {
            for s in &w.statements {
                if let Some(id) = s.id() {
                    let _ = tidemark_mongo::json::value_to_json(id);
                }
            }
        }
        let _ = c.ddl();
        let _ = c.session();
        let _ = c.auth();
        let _ = c.get_last_error();
        let _ = c.oplog_find();
        let _ = c.get_more();
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let limits = Limits::default();
    let name = NAMES[pick as usize % NAMES.len()];
    // {name: "coll", <rest as elements>}
    let mut bytes = vec![0u8; 4];
    bytes.push(0x02);
    bytes.extend_from_slice(name.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(&5i32.to_le_bytes());
    bytes.extend_from_slice(b"coll\0");
    bytes.extend_from_slice(rest);
    bytes.push(0);
    let n = bytes.len() as i32;
    bytes[..4].copy_from_slice(&n.to_le_bytes());
    if let Ok(doc) = Doc::new(bytes.into(), &limits) {
        exercise(doc.raw());
    }
    if let Ok(doc) = Doc::new(tidemark_mongo::bytes::Bytes::copy_from_slice(rest), &limits) {
        exercise(doc.raw());
    }
});
