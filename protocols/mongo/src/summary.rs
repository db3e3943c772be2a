//! The MongoDB fields of a `message` JSON line (ARCHITECTURE.md, command line).
//!
//! The CLI adds flow, dir, ts and proto; this gives what only the decoder
//! knows, under the names other tools depend on: `opcode` (the original
//! opcode when the message came wrapped in OP_COMPRESSED), `compressor`,
//! `request_id`, `response_to`, `command`.

use serde_json::{Map, Value};

use crate::message::Message;

impl Message {
    /// `opcode`, `request_id`, `response_to`, plus `compressor` when the
    /// message was compressed, `command` for command requests and
    /// `more_to_come` when set. `command` of a reply is the paired request's
    /// (from [`crate::Connection`]); pass it as `reply_to_command`.
    pub fn json_fields(&self, reply_to_command: Option<&str>) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("opcode".into(), self.opcode().name().into());
        m.insert("request_id".into(), self.request_id.into());
        m.insert("response_to".into(), self.response_to.into());
        if let Some(c) = self.compressor {
            m.insert("compressor".into(), c.name().into());
        }
        let command = reply_to_command
            .map(str::to_owned)
            .or_else(|| self.command().map(|c| c.name.to_owned()));
        if let Some(c) = command {
            m.insert("command".into(), c.into());
        }
        if self.more_to_come() {
            m.insert("more_to_come".into(), true.into());
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use crate::*;
    use bson::rawdoc;

    #[test]
    fn fields() {
        let m = Message::new(5, 0, Body::Msg(OpMsg::new(Doc::from(rawdoc! {"ping": 1}))))
            .compressed_with(Compressor::Snappy);
        let f = m.json_fields(None);
        assert_eq!(
            serde_json::Value::Object(f),
            r#"{"command":"ping","compressor":"snappy","opcode":"OP_MSG","request_id":5,"response_to":0}"#
                .parse::<serde_json::Value>()
                .unwrap()
        );
    }
}
