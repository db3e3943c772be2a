//! The `{ok: 0}` error replies every layer answers with (commands,
//! replication, authentication).

use tidemark_mongo::bson::{doc, Document};

/// An `{ok: 0}` error reply.
pub fn error(code: i32, code_name: &str, msg: &str) -> Document {
    doc! { "ok": 0.0, "errmsg": msg, "code": code, "codeName": code_name }
}

/// What a secondary answers to a write (drivers re-discover the primary on it).
pub fn not_writable_primary() -> Document {
    error(10107, "NotWritablePrimary", "not primary")
}
