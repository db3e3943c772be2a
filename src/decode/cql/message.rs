//! One decoded CQL frame → one `message` line, with a short `detail` that says what
//! kind of message it was (result kind, error code and name, consistency, ...).
//! Statement text, values and credentials stay out of message lines.

use crate::capture::Timestamp;
use serde_json::{json, Value as Json};
use tidemark_cql::frame::HEADER_LEN;
use tidemark_cql::message::{ErrorDetails, ResultBody};
use tidemark_cql::types::format;
use tidemark_cql::{Item, Message};

use crate::decode::records::{MessageDetail, MessageRecord, OpcodeName};

/// The `message` record of a decoded item.
pub fn record(flow: u64, ts: Timestamp, item: &Item) -> MessageRecord {
    let h = &item.frame.header;
    MessageRecord {
        flow,
        dir: item.dir.as_str(),
        ts,
        proto: "cql",
        opcode: OpcodeName(h.opcode.name()),
        offset: item.frame.offset,
        length: HEADER_LEN as u64 + u64::from(h.length),
        version: Some(h.version),
        stream: Some(h.stream),
        compressed: Some(item.frame.compressed),
        detail: detail(item.message()),
        ..MessageRecord::default()
    }
}

fn detail(m: &Message) -> Option<MessageDetail> {
    Some(match m {
        // The kinds every capture is full of stay typed (rendered when printed).
        Message::Result(ResultBody::Void) => MessageDetail::CqlVoid,
        Message::Result(ResultBody::Rows(rows)) => MessageDetail::CqlRows {
            rows: rows.rows_count,
        },
        Message::Query(q) => MessageDetail::CqlQuery {
            consistency: q.params.consistency.name(),
        },
        Message::Execute(e) => MessageDetail::CqlExecute {
            id: e.id.clone(),
            consistency: e.params.consistency.name(),
        },
        Message::Batch(b) => MessageDetail::CqlBatch {
            kind: b.batch_type.name(),
            statements: b.statements.len(),
            consistency: b.consistency.name(),
        },
        other => MessageDetail::Json(json_detail(other)?),
    })
}

/// The other kinds, as JSON (Void, Rows, QUERY, EXECUTE and BATCH are typed above).
fn json_detail(m: &Message) -> Option<Json> {
    Some(match m {
        Message::Result(r) => match r {
            ResultBody::Rows(_) | ResultBody::Void => return None,
            ResultBody::SetKeyspace(k) => json!({"kind": "Set_keyspace", "keyspace": k.as_str()}),
            ResultBody::Prepared(p) => json!({"kind": "Prepared", "id": format::blob(&p.id)}),
            ResultBody::SchemaChange(s) => {
                json!({"kind": "Schema_change", "change": format!("{s:?}")})
            }
        },
        Message::Error(e) => {
            let mut d =
                json!({"code": e.code, "name": e.code_name(), "message": e.message.as_str()});
            match &e.details {
                ErrorDetails::WriteTimeout {
                    received,
                    block_for,
                    write_type,
                    ..
                }
                | ErrorDetails::WriteFailure {
                    received,
                    block_for,
                    write_type,
                    ..
                } => {
                    d["write_type"] = json!(write_type.as_str());
                    d["received"] = json!(received);
                    d["block_for"] = json!(block_for);
                }
                ErrorDetails::Unavailable {
                    required, alive, ..
                } => {
                    d["required"] = json!(required);
                    d["alive"] = json!(alive);
                }
                ErrorDetails::Unprepared { id } => d["id"] = json!(format::blob(id)),
                _ => {}
            }
            d
        }
        Message::Startup(s) => {
            let opts: serde_json::Map<String, Json> = s
                .options
                .iter()
                .map(|(k, v)| (k.to_string(), Json::String(v.to_string())))
                .collect();
            Json::Object(opts)
        }
        Message::Authenticate { authenticator } => json!({"authenticator": authenticator.as_str()}),
        Message::Event(e) => json!({"event": format!("{e:?}")}),
        _ => return None,
    })
}
