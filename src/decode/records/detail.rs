//! A `message` line's `detail`, kept as the facts it prints and rendered only when
//! the line is printed.
//!
//! Why: every CQL EXECUTE, QUERY, BATCH and their results get a message line, and
//! building each detail as a `serde_json::Value` (a map, its keys, the statement id
//! as hex) was about 5 % of decode time, for lines that `tap` and the proxy only
//! count. The frequent kinds are typed here; the rest stay JSON. Each typed kind
//! prints exactly what `json!` printed before (same keys, same order).

use bytes::Bytes;
use serde::ser::{Serialize, SerializeMap, Serializer};
use tidemark_cql::types::format;

/// What a message line's `detail` holds.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageDetail {
    /// Built as JSON: the kinds that are rare, or whose shape varies.
    Json(serde_json::Value),
    /// CQL EXECUTE: `{"id": "0x…", "consistency": "QUORUM"}`.
    CqlExecute {
        id: Bytes,
        consistency: &'static str,
    },
    /// CQL QUERY: `{"consistency": "ONE"}`.
    CqlQuery { consistency: &'static str },
    /// CQL BATCH: `{"type": "LOGGED", "statements": 3, "consistency": "ONE"}`.
    CqlBatch {
        kind: &'static str,
        statements: usize,
        consistency: &'static str,
    },
    /// CQL RESULT Void: `{"kind": "Void"}`.
    CqlVoid,
    /// CQL RESULT Rows: `{"kind": "Rows", "rows": 3}`.
    CqlRows { rows: usize },
}

impl MessageDetail {
    /// The detail as the line prints it (tests and tools; nothing on the hot path).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            MessageDetail::Json(j) => j.clone(),
            other => serde_json::to_value(other).unwrap_or_default(),
        }
    }
}

impl From<serde_json::Value> for MessageDetail {
    fn from(j: serde_json::Value) -> Self {
        MessageDetail::Json(j)
    }
}

impl Serialize for MessageDetail {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MessageDetail::Json(j) => j.serialize(s),
            MessageDetail::CqlExecute { id, consistency } => {
                let mut m = s.serialize_map(Some(2))?;
                // Hex only when printed: the same spelling as every other blob.
                m.serialize_entry("id", &format::blob(id))?;
                m.serialize_entry("consistency", consistency)?;
                m.end()
            }
            MessageDetail::CqlQuery { consistency } => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("consistency", consistency)?;
                m.end()
            }
            MessageDetail::CqlBatch {
                kind,
                statements,
                consistency,
            } => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("type", kind)?;
                m.serialize_entry("statements", statements)?;
                m.serialize_entry("consistency", consistency)?;
                m.end()
            }
            MessageDetail::CqlVoid => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("kind", "Void")?;
                m.end()
            }
            MessageDetail::CqlRows { rows } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("kind", "Rows")?;
                m.serialize_entry("rows", rows)?;
                m.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_details_print_as_the_json_they_replace() {
        let id = Bytes::from_static(&[0x00, 0xab, 0x10, 0xff]);
        let cases = [
            (
                MessageDetail::CqlExecute {
                    id: id.clone(),
                    consistency: "LOCAL_QUORUM",
                },
                json!({"id": "0x00ab10ff", "consistency": "LOCAL_QUORUM"}),
            ),
            (
                MessageDetail::CqlQuery { consistency: "ONE" },
                json!({"consistency": "ONE"}),
            ),
            (
                MessageDetail::CqlBatch {
                    kind: "LOGGED",
                    statements: 3,
                    consistency: "ALL",
                },
                json!({"type": "LOGGED", "statements": 3, "consistency": "ALL"}),
            ),
            (MessageDetail::CqlVoid, json!({"kind": "Void"})),
            (
                MessageDetail::CqlRows { rows: 7 },
                json!({"kind": "Rows", "rows": 7}),
            ),
        ];
        for (typed, want) in cases {
            assert_eq!(
                serde_json::to_string(&typed).unwrap(),
                serde_json::to_string(&want).unwrap()
            );
            assert_eq!(typed.to_json(), want);
        }
    }
}
