//! `message` lines: one per decoded MongoDB message.
//!
//! `opcode` is the spelling of the wire-protocol reference (`OP_MSG`, ...); a message
//! that came wrapped in OP_COMPRESSED shows its inner opcode plus `compressor`.
//! `detail` is a short summary (flags, sections, namespace, reply status) — never a
//! document's contents, so credentials cannot leak through it.

use crate::capture::Timestamp;
use serde_json::{json, Map, Value};
use tidemark_mongo::model::Reply;
use tidemark_mongo::{Body, Message};

use crate::decode::records::{MessageRecord, OpcodeName};

/// Where and when a message was seen.
pub struct At {
    pub flow: u64,
    pub dir: &'static str,
    pub ts: Timestamp,
    /// Added to the decoder's stream offsets to get the session's.
    pub delta: u64,
}

/// The `message` line of `msg`. `command` is the request's command name (for a
/// reply, its request's); `reply` the parsed reply document, when it is one.
pub fn record(
    at: &At,
    msg: &Message,
    command: Option<String>,
    reply: Option<&Reply<'_>>,
    request: bool,
) -> MessageRecord {
    MessageRecord {
        flow: at.flow,
        dir: at.dir,
        ts: at.ts,
        proto: "mongo",
        opcode: OpcodeName(msg.opcode().name()),
        offset: msg.offset + at.delta,
        length: u64::from(msg.wire_length),
        request_id: Some(msg.request_id),
        response_to: Some(msg.response_to),
        command,
        compressor: msg.compressor.map(|c| c.name()),
        detail: Some(detail(msg, reply, request).into()),
        ..MessageRecord::default()
    }
}

fn detail(msg: &Message, reply: Option<&Reply<'_>>, request: bool) -> Value {
    let mut m = Map::new();
    match &msg.body {
        Body::Msg(b) => {
            if b.flags.0 != 0 {
                m.insert("flags".into(), b.flags.0.into());
            }
            if b.flags.more_to_come() {
                m.insert("more_to_come".into(), true.into());
            }
            if b.flags.exhaust_allowed() {
                m.insert("exhaust_allowed".into(), true.into());
            }
            if !b.sequences.is_empty() {
                let seqs: Vec<Value> = b
                    .sequences
                    .iter()
                    .map(|s| json!({"id": s.identifier, "documents": s.documents.len()}))
                    .collect();
                m.insert("sequences".into(), seqs.into());
            }
        }
        Body::Query(q) => {
            m.insert("ns".into(), q.full_collection_name.clone().into());
            m.insert("skip".into(), q.number_to_skip.into());
            m.insert("return".into(), q.number_to_return.into());
        }
        Body::Reply(r) => {
            m.insert("documents".into(), r.documents.len().into());
            m.insert("cursor_id".into(), r.cursor_id.into());
            if r.response_flags != 0 {
                m.insert("flags".into(), r.response_flags.into());
            }
        }
        Body::Insert(i) => {
            m.insert("ns".into(), i.full_collection_name.clone().into());
            m.insert("documents".into(), i.documents.len().into());
        }
        Body::Update(u) => {
            m.insert("ns".into(), u.full_collection_name.clone().into());
        }
        Body::Delete(d) => {
            m.insert("ns".into(), d.full_collection_name.clone().into());
        }
        Body::GetMore(g) => {
            m.insert("ns".into(), g.full_collection_name.clone().into());
            m.insert("cursor_id".into(), g.cursor_id.into());
        }
        Body::KillCursors(k) => {
            m.insert("cursors".into(), k.cursor_ids.len().into());
        }
        Body::Command(c) => {
            m.insert("db".into(), c.database.clone().into());
            if !c.input_docs.is_empty() {
                m.insert("input_docs".into(), c.input_docs.len().into());
            }
        }
        Body::CommandReply(c) => {
            if !c.output_docs.is_empty() {
                m.insert("output_docs".into(), c.output_docs.len().into());
            }
        }
    }
    if request {
        if let Some(kind) = msg.classify() {
            m.insert("kind".into(), kind.name().into());
        }
        if let Some(db) = msg.command().map(|c| c.db).filter(|d| !d.is_empty()) {
            m.entry("db").or_insert_with(|| db.into());
        }
    }
    if let Some(r) = reply {
        reply_detail(&mut m, r);
    }
    if msg.redacted {
        m.insert("redacted".into(), true.into());
    }
    Value::Object(m)
}

fn reply_detail(m: &mut Map<String, Value>, r: &Reply<'_>) {
    if let Some(ok) = r.ok {
        m.insert("ok".into(), ok.into());
    }
    if let Some(c) = r.code {
        m.insert("code".into(), c.into());
    }
    if let Some(c) = r.code_name {
        m.insert("codeName".into(), c.into());
    }
    if let Some(n) = r.n {
        m.insert("n".into(), n.into());
    }
    if !r.write_errors.is_empty() {
        let codes: Vec<Value> = r
            .write_errors
            .iter()
            .map(|e| json!({"index": e.index, "code": e.code}))
            .collect();
        m.insert("writeErrors".into(), codes.into());
    }
    if let Some(e) = &r.write_concern_error {
        m.insert("writeConcernError".into(), e.code.into());
    }
    if !r.error_labels.is_empty() {
        m.insert("errorLabels".into(), r.error_labels.clone().into());
    }
}
