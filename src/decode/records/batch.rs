//! `batch`: a statement's place in a CQL BATCH or a MongoDB multi-statement command,
//! typed as the decoders know it, printed as the JSON contract spells it.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// A CQL batch's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CqlBatchType {
    Logged,
    Unlogged,
    Counter,
}

impl CqlBatchType {
    /// The word the line prints.
    pub fn as_str(self) -> &'static str {
        match self {
            CqlBatchType::Logged => "logged",
            CqlBatchType::Unlogged => "unlogged",
            CqlBatchType::Counter => "counter",
        }
    }

    /// The type a word names; `None` for any other word.
    pub fn parse(word: &str) -> Option<CqlBatchType> {
        match word {
            "logged" => Some(CqlBatchType::Logged),
            "unlogged" => Some(CqlBatchType::Unlogged),
            "counter" => Some(CqlBatchType::Counter),
            _ => None,
        }
    }
}

/// The MongoDB commands whose statements carry a `batch` (`command` of the line).
const MONGO_COMMANDS: &[&str] = &[
    "insert",
    "update",
    "delete",
    "findAndModify",
    "bulkWrite",
    "applyOps",
];

/// `batch` of a `write` line.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchPlace {
    /// A member of a CQL BATCH, printed `{"id": "flow:stream", "type", "index",
    /// "size"}`: the batch is named by the flow and stream id that carried it.
    Cql {
        flow: u64,
        stream: i16,
        kind: CqlBatchType,
        index: u64,
        size: u64,
    },
    /// A statement of a MongoDB multi-statement command, printed `{"command",
    /// "index", "count", "ordered"}`.
    Mongo {
        /// The command's name (one of the write commands).
        command: &'static str,
        index: u64,
        count: u64,
        ordered: bool,
    },
    /// Any other form, as JSON (a line read back from an older store, a test).
    Json(Value),
}

impl BatchPlace {
    /// The statement's position in its batch or command.
    pub fn index(&self) -> Option<u64> {
        match self {
            BatchPlace::Cql { index, .. } | BatchPlace::Mongo { index, .. } => Some(*index),
            BatchPlace::Json(v) => v.get("index").and_then(Value::as_u64),
        }
    }

    /// The CQL batch type, for a CQL batch member.
    pub fn cql_kind(&self) -> Option<CqlBatchType> {
        match self {
            BatchPlace::Cql { kind, .. } => Some(*kind),
            BatchPlace::Mongo { .. } => None,
            BatchPlace::Json(v) => CqlBatchType::parse(v.get("type")?.as_str()?),
        }
    }

    /// The CQL batch id as the line prints it.
    pub fn cql_id(flow: u64, stream: i16) -> String {
        format!("{flow}:{stream}")
    }

    /// The `'static` name of a MongoDB write command, `None` for another name.
    pub fn mongo_command(name: &str) -> Option<&'static str> {
        MONGO_COMMANDS.iter().copied().find(|c| *c == name)
    }
}

/// A JSON value as it is (see [`BatchPlace::Json`]).
impl From<Value> for BatchPlace {
    fn from(v: Value) -> Self {
        BatchPlace::Json(v)
    }
}

/// `flow:stream`, without building the string.
struct CqlId(u64, i16);

impl Serialize for CqlId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}:{}", self.0, self.1))
    }
}

impl Serialize for BatchPlace {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BatchPlace::Cql {
                flow,
                stream,
                kind,
                index,
                size,
            } => {
                let mut m = s.serialize_map(Some(4))?;
                m.serialize_entry("id", &CqlId(*flow, *stream))?;
                m.serialize_entry("type", kind.as_str())?;
                m.serialize_entry("index", index)?;
                m.serialize_entry("size", size)?;
                m.end()
            }
            BatchPlace::Mongo {
                command,
                index,
                count,
                ordered,
            } => {
                let mut m = s.serialize_map(Some(4))?;
                m.serialize_entry("command", command)?;
                m.serialize_entry("index", index)?;
                m.serialize_entry("count", count)?;
                m.serialize_entry("ordered", ordered)?;
                m.end()
            }
            BatchPlace::Json(v) => v.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_batches_print_as_the_decoders_json_did() {
        let cql = BatchPlace::Cql {
            flow: 7,
            stream: -3,
            kind: CqlBatchType::Unlogged,
            index: 2,
            size: 3,
        };
        assert_eq!(
            serde_json::to_string(&cql).unwrap(),
            json!({"id": "7:-3", "type": "unlogged", "index": 2usize, "size": 3usize}).to_string()
        );
        assert_eq!(cql.index(), Some(2));
        assert_eq!(cql.cql_kind(), Some(CqlBatchType::Unlogged));
        let mongo = BatchPlace::Mongo {
            command: "bulkWrite",
            index: 0,
            count: 5,
            ordered: false,
        };
        assert_eq!(
            serde_json::to_string(&mongo).unwrap(),
            json!({"command": "bulkWrite", "index": 0, "count": 5, "ordered": false}).to_string()
        );
        assert_eq!(mongo.cql_kind(), None);
        let odd = BatchPlace::from(json!({"type": "counter", "index": 4, "x": 1}));
        assert_eq!(
            (odd.index(), odd.cql_kind()),
            (Some(4), Some(CqlBatchType::Counter))
        );
        assert_eq!(
            BatchPlace::mongo_command("findAndModify"),
            Some("findAndModify")
        );
        assert_eq!(BatchPlace::mongo_command("find"), None);
    }
}
