//! The `write` line a mutation was decided from, typed (store format 6).
//!
//! `tidemark log --json` prints each mutation as the `write` line `inspect --json`
//! printed for it plus the log's own fields. Up to format 5 the envelope kept that
//! line as JSON text; now it keeps the line's fields typed ([`WriteLine`]) and the
//! commit module renders them through the very serializer `inspect --json` uses
//! (`commit::line`), so the tap builds no JSON text per mutation.
//!
//! What is typed how:
//! - the scalar fields as the decoder's record has them: the capture time as its
//!   integer, `proto`, `timestamp_source`, `key_source`, `lwt` and `outcome` as
//!   enums of the words the JSON contract spells, the rest as numbers and strings;
//! - the fields of a fixed shape as small structs: `batch` (CQL `id`/`type`/`index`/
//!   `size`, MongoDB `command`/`index`/`count`/`ordered`), `session` (`txnNumber`,
//!   `autocommit`, `startTransaction`, `stmtId`; `lsid` is the client's document and
//!   stays a tree), `write_concern` (`w`, `j`, `wtimeout`);
//! - the free-shaped fields — `key` (CQL key columns rendered as `SELECT JSON` does,
//!   a MongoDB `_id` or filter), `range`, `condition`, `collection_ops` and `values`
//!   when the decoder had them as JSON — as a [`LineTree`]: the JSON value's own
//!   structure (objects as ordered pairs), no text.
//!
//! A fixed-shape field whose value does not have exactly the expected form (another
//! key, another order, another type) keeps its tree ([`LineBatch::Other`], ...), and
//! a whole line of an older store that the typed form cannot reproduce byte for byte
//! stays a tree ([`StoredLine::Tree`]): printed as it was, never dropped.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

/// The line a mutation was decided from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoredLine {
    /// A decoder's `write` line.
    Write(Box<WriteLine>),
    /// The line of a MongoDB oplog entry logged without a client write (the tracker's
    /// orphan): `{"type":"write","proto":"mongo","namespace","op","key","values",
    /// "source":"oplog"}`. The key is the mutation's own key; `values` is `None` when
    /// they are the payload's `o` document (`Mutation::line_values`).
    Oplog {
        /// `db.collection` as the entry names it.
        namespace: String,
        /// The operation's name (`insert`, `update`, `delete`, the command).
        op: String,
        /// The values as a tree, for lines converted from older stores.
        values: Option<LineTree>,
    },
    /// A line kept as its value tree: one of an older store that the typed forms do
    /// not reproduce exactly, or a decoder's line with a word this code does not know.
    Tree(LineTree),
}

/// A JSON value's structure without its text: what a free-shaped field of the line
/// holds. Objects keep their keys' order (the JSON contract prints them in order).
///
/// Strings and keys are [`CompactString`]s: the ones a tree mostly holds (`_id`,
/// `$oid` and a hex id, an lsid's `$binary`, `base64`, `subType` and their values)
/// fit in its 24 inline bytes, so a tree costs an allocation per object, not one
/// per string besides (those were the larger part of a MongoDB tap's allocations
/// and of its committer's frees). Serde writes it as the `str` it is: the store's
/// encoding is unchanged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LineTree {
    Null,
    Bool(bool),
    /// A negative integer (non-negative ones are [`LineTree::U64`], as `serde_json`
    /// keeps them).
    I64(i64),
    U64(u64),
    F64(f64),
    String(CompactString),
    Array(Vec<LineTree>),
    Object(Vec<(CompactString, LineTree)>),
}

/// Floats compare by their bits, so a tree is `Eq` (a mutation is compared whole).
impl PartialEq for LineTree {
    fn eq(&self, other: &Self) -> bool {
        use LineTree::*;
        match (self, other) {
            (Null, Null) => true,
            (Bool(a), Bool(b)) => a == b,
            (I64(a), I64(b)) => a == b,
            (U64(a), U64(b)) => a == b,
            (F64(a), F64(b)) => a.to_bits() == b.to_bits(),
            (String(a), String(b)) => a == b,
            (Array(a), Array(b)) => a == b,
            (Object(a), Object(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for LineTree {}

impl From<&Value> for LineTree {
    fn from(v: &Value) -> Self {
        match v {
            Value::Null => LineTree::Null,
            Value::Bool(b) => LineTree::Bool(*b),
            Value::Number(n) => number_tree(n),
            Value::String(s) => LineTree::String(CompactString::from(s.as_str())),
            Value::Array(a) => LineTree::Array(a.iter().map(LineTree::from).collect()),
            Value::Object(o) => LineTree::Object(
                o.iter()
                    .map(|(k, v)| (CompactString::from(k.as_str()), LineTree::from(v)))
                    .collect(),
            ),
        }
    }
}

fn number_tree(n: &Number) -> LineTree {
    if let Some(u) = n.as_u64() {
        LineTree::U64(u)
    } else if let Some(i) = n.as_i64() {
        LineTree::I64(i)
    } else {
        LineTree::F64(n.as_f64().unwrap_or(f64::NAN))
    }
}

impl From<&LineTree> for Value {
    fn from(t: &LineTree) -> Self {
        match t {
            LineTree::Null => Value::Null,
            LineTree::Bool(b) => Value::Bool(*b),
            LineTree::I64(i) => Value::from(*i),
            LineTree::U64(u) => Value::from(*u),
            // A JSON value never holds a NaN or an infinity; a damaged tree prints null.
            LineTree::F64(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            LineTree::String(s) => Value::String(s.as_str().to_owned()),
            LineTree::Array(a) => Value::Array(a.iter().map(Value::from).collect()),
            LineTree::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (k.as_str().to_owned(), Value::from(v)))
                    .collect::<Map<String, Value>>(),
            ),
        }
    }
}

/// A decoder's `write` line, field for field in the order the JSON contract prints
/// them (`decode::records::WriteRecord`). Postcard: field order is the format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteLine {
    pub flow: u64,
    /// Capture time of the request, ns since the epoch (printed RFC 3339, µs).
    pub ts: u64,
    pub proto: LineProto,
    pub namespace: Option<String>,
    /// Inline strings (the words fit in 24 bytes): a heap string each per stored
    /// line was made on the decoding thread and freed on the committer's.
    /// Serialized as the `str` they are (see `inline_strings_encode_as_strings_did`).
    pub op: CompactString,
    pub key: LineTree,
    pub range: Option<LineTree>,
    /// `Null` when the values are kept as the protocol's bytes
    /// (`Mutation::line_values`) and rendered from them when printed.
    pub values: LineTree,
    pub timestamp: Option<i64>,
    pub timestamp_source: Option<TimestampSource>,
    pub ttl: Option<i64>,
    pub consistency: Option<CompactString>,
    pub serial_consistency: Option<CompactString>,
    pub write_concern: Option<LineWriteConcern>,
    pub condition: Option<LineTree>,
    pub batch: Option<LineBatch>,
    pub session: Option<LineSession>,
    pub request: Option<i64>,
    pub outcome: LineOutcome,
    pub reason: Option<String>,
    pub table: Option<String>,
    pub key_source: Option<KeySource>,
    pub columns_deleted: Option<Vec<String>>,
    pub collection_ops: Option<LineTree>,
    pub lwt: Option<Lwt>,
    pub prepared: Option<bool>,
    /// Shared with the write record (serialized as the string it is).
    pub cql: Option<std::sync::Arc<str>>,
    pub client_timestamp: Option<i64>,
    pub statement_id: Option<String>,
    pub statements: Option<u64>,
}

/// Declares an enum of the words a line field spells, with both directions.
macro_rules! words {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// The word the JSON line prints.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }

            /// The value of a word; `None` for a word this code does not know.
            pub fn parse(word: &str) -> Option<Self> {
                match word { $($word => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

words! {
    /// `proto`.
    LineProto { Cql = "cql", Mongo = "mongo" }
}

words! {
    /// `timestamp_source`.
    TimestampSource {
        Using = "using",
        Default = "default",
        Server = "server",
        PaxosBallot = "paxos_ballot",
    }
}

words! {
    /// `key_source`.
    KeySource {
        Schema = "schema",
        Where = "where",
        BindMetadata = "bind_metadata",
        Unknown = "unknown",
    }
}

words! {
    /// `lwt`.
    Lwt { IfNotExists = "if_not_exists", IfExists = "if_exists", If = "if" }
}

words! {
    /// The line's `outcome` as the response left it (the mutation's own outcome is
    /// `Mutation::outcome`).
    LineOutcome {
        Committed = "committed",
        Rejected = "rejected",
        InDoubt = "in_doubt",
        Pending = "pending",
        RolledBack = "rolled_back",
        Unresolved = "unresolved",
    }
}

words! {
    /// A CQL batch's `type`.
    LineBatchType { Logged = "logged", Unlogged = "unlogged", Counter = "counter" }
}

/// `batch`: the statement's place in a CQL BATCH or a MongoDB multi-statement command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LineBatch {
    /// `{"id": "flow:stream", "type", "index", "size"}`.
    Cql {
        id: String,
        kind: LineBatchType,
        index: u64,
        size: u64,
    },
    /// `{"command", "index", "count", "ordered"}`.
    Mongo {
        command: String,
        index: u64,
        count: u64,
        ordered: bool,
    },
    /// Any other form, as it was.
    Other(LineTree),
}

/// `session`: MongoDB session and transaction identity, in the order the decoder
/// writes them; each present only when the command carried it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LineSession {
    Fields {
        /// The client's `lsid` document (relaxed Extended JSON: `{"id": {"$binary":
        /// ...}}`, with `uid` when a router added it).
        lsid: Option<LineTree>,
        txn_number: Option<i64>,
        autocommit: Option<bool>,
        start_transaction: Option<bool>,
        stmt_id: Option<i64>,
    },
    /// Any other form, as it was.
    Other(LineTree),
}

/// A write concern's `w`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LineW {
    /// A number of members (printed as a JSON integer).
    Members(i64),
    /// `majority` or a tag set's name.
    Tag(String),
}

/// `write_concern`: the MongoDB write concern as the command carried it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LineWriteConcern {
    /// `{"w", "j", "wtimeout"}`, each when present, in that order.
    Fields {
        w: Option<LineW>,
        j: Option<bool>,
        wtimeout: Option<i64>,
    },
    /// Any other form (other fields, another order), as it was.
    Other(LineTree),
}

/// The values of `obj` for `names`, when `obj` holds no other key and its keys come in
/// the order of `names` (some may be missing): what a fixed-shape field must look like
/// to be typed, since its typed form prints its keys in that order.
pub fn fields_in_order<'a, const N: usize>(
    obj: &'a Map<String, Value>,
    names: [&str; N],
) -> Option<[Option<&'a Value>; N]> {
    let mut out = [None; N];
    let mut next = 0;
    for (k, v) in obj {
        let at = names[next..].iter().position(|n| n == k)? + next;
        out[at] = Some(v);
        next = at + 1;
    }
    Some(out)
}

/// An optional field's typed value: absent is `Some(None)`, a value that does not
/// convert is `None`.
fn opt<'a, T>(v: Option<&'a Value>, f: impl FnOnce(&'a Value) -> Option<T>) -> Option<Option<T>> {
    match v {
        None => Some(None),
        Some(v) => f(v).map(Some),
    }
}

impl LineBatch {
    /// The typed form of a `batch` value (its tree when no typed form fits).
    pub fn of(v: &Value) -> LineBatch {
        Self::typed(v).unwrap_or_else(|| LineBatch::Other(v.into()))
    }

    fn typed(v: &Value) -> Option<LineBatch> {
        let o = v.as_object()?;
        if o.len() != 4 {
            return None;
        }
        if let Some([Some(id), Some(kind), Some(index), Some(size)]) =
            fields_in_order(o, ["id", "type", "index", "size"])
        {
            return Some(LineBatch::Cql {
                id: id.as_str()?.to_owned(),
                kind: LineBatchType::parse(kind.as_str()?)?,
                index: index.as_u64()?,
                size: size.as_u64()?,
            });
        }
        let [Some(command), Some(index), Some(count), Some(ordered)] =
            fields_in_order(o, ["command", "index", "count", "ordered"])?
        else {
            return None;
        };
        Some(LineBatch::Mongo {
            command: command.as_str()?.to_owned(),
            index: index.as_u64()?,
            count: count.as_u64()?,
            ordered: ordered.as_bool()?,
        })
    }

    /// The JSON value the line prints.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        match self {
            LineBatch::Cql {
                id,
                kind,
                index,
                size,
            } => {
                m.insert("id".into(), id.clone().into());
                m.insert("type".into(), kind.as_str().into());
                m.insert("index".into(), (*index).into());
                m.insert("size".into(), (*size).into());
            }
            LineBatch::Mongo {
                command,
                index,
                count,
                ordered,
            } => {
                m.insert("command".into(), command.clone().into());
                m.insert("index".into(), (*index).into());
                m.insert("count".into(), (*count).into());
                m.insert("ordered".into(), (*ordered).into());
            }
            LineBatch::Other(t) => return t.into(),
        }
        Value::Object(m)
    }
}

impl LineSession {
    /// The typed form of a `session` value (its tree when no typed form fits).
    pub fn of(v: &Value) -> LineSession {
        Self::typed(v).unwrap_or_else(|| LineSession::Other(v.into()))
    }

    fn typed(v: &Value) -> Option<LineSession> {
        let [lsid, txn, auto, start, stmt] = fields_in_order(
            v.as_object()?,
            [
                "lsid",
                "txnNumber",
                "autocommit",
                "startTransaction",
                "stmtId",
            ],
        )?;
        Some(LineSession::Fields {
            lsid: lsid.map(LineTree::from),
            txn_number: opt(txn, Value::as_i64)?,
            autocommit: opt(auto, Value::as_bool)?,
            start_transaction: opt(start, Value::as_bool)?,
            stmt_id: opt(stmt, Value::as_i64)?,
        })
    }

    /// The JSON value the line prints.
    pub fn to_json(&self) -> Value {
        let (lsid, txn_number, autocommit, start_transaction, stmt_id) = match self {
            LineSession::Fields {
                lsid,
                txn_number,
                autocommit,
                start_transaction,
                stmt_id,
            } => (lsid, txn_number, autocommit, start_transaction, stmt_id),
            LineSession::Other(t) => return t.into(),
        };
        let mut m = Map::new();
        if let Some(l) = lsid {
            m.insert("lsid".into(), l.into());
        }
        if let Some(t) = txn_number {
            m.insert("txnNumber".into(), (*t).into());
        }
        if let Some(a) = autocommit {
            m.insert("autocommit".into(), (*a).into());
        }
        if let Some(s) = start_transaction {
            m.insert("startTransaction".into(), (*s).into());
        }
        if let Some(s) = stmt_id {
            m.insert("stmtId".into(), (*s).into());
        }
        Value::Object(m)
    }
}

impl LineWriteConcern {
    /// The typed form of a `write_concern` value (its tree when no typed form fits).
    pub fn of(v: &Value) -> LineWriteConcern {
        Self::typed(v).unwrap_or_else(|| LineWriteConcern::Other(v.into()))
    }

    fn typed(v: &Value) -> Option<LineWriteConcern> {
        let [w, j, wtimeout] = fields_in_order(v.as_object()?, ["w", "j", "wtimeout"])?;
        let w = opt(w, |w| match w {
            Value::String(s) => Some(LineW::Tag(s.clone())),
            Value::Number(n) => n.as_i64().map(LineW::Members),
            _ => None,
        })?;
        Some(LineWriteConcern::Fields {
            w,
            j: opt(j, Value::as_bool)?,
            wtimeout: opt(wtimeout, Value::as_i64)?,
        })
    }

    /// The JSON value the line prints.
    pub fn to_json(&self) -> Value {
        match self {
            LineWriteConcern::Fields { w, j, wtimeout } => {
                let mut m = Map::new();
                match w {
                    Some(LineW::Members(n)) => {
                        m.insert("w".into(), (*n).into());
                    }
                    Some(LineW::Tag(t)) => {
                        m.insert("w".into(), t.clone().into());
                    }
                    None => {}
                }
                if let Some(j) = j {
                    m.insert("j".into(), (*j).into());
                }
                if let Some(t) = wtimeout {
                    m.insert("wtimeout".into(), (*t).into());
                }
                Value::Object(m)
            }
            LineWriteConcern::Other(t) => t.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(v: Value) {
        let t = LineTree::from(&v);
        let bytes = postcard::to_stdvec(&t).unwrap();
        let back: LineTree = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, t);
        assert_eq!(
            serde_json::to_string(&Value::from(&back)).unwrap(),
            serde_json::to_string(&v).unwrap()
        );
    }

    /// `LineTree` as it was declared before its strings became inline ones: what
    /// every store up to now holds.
    #[derive(Serialize)]
    enum StringTree {
        Null,
        Bool(bool),
        I64(i64),
        U64(u64),
        F64(f64),
        String(String),
        Array(Vec<StringTree>),
        Object(Vec<(String, StringTree)>),
    }

    fn string_tree(t: &LineTree) -> StringTree {
        match t {
            LineTree::Null => StringTree::Null,
            LineTree::Bool(b) => StringTree::Bool(*b),
            LineTree::I64(i) => StringTree::I64(*i),
            LineTree::U64(u) => StringTree::U64(*u),
            LineTree::F64(f) => StringTree::F64(*f),
            LineTree::String(s) => StringTree::String(s.to_string()),
            LineTree::Array(a) => StringTree::Array(a.iter().map(string_tree).collect()),
            LineTree::Object(o) => StringTree::Object(
                o.iter()
                    .map(|(k, v)| (k.to_string(), string_tree(v)))
                    .collect(),
            ),
        }
    }

    /// Inline strings (short and long, keys and values) encode byte for byte as the
    /// `String`s did: no store format changes with them.
    #[test]
    fn inline_strings_encode_as_strings_did() {
        let long = "k".repeat(40);
        let v = json!({"_id": {"$oid": "65e1c0de0000000000000001"}, long.clone(): [long, "", "é"]});
        let t = LineTree::from(&v);
        assert_eq!(
            postcard::to_stdvec(&t).unwrap(),
            postcard::to_stdvec(&string_tree(&t)).unwrap()
        );
        // A line's op and consistency levels, inline or not, present or not.
        for word in ["insert", "LOCAL_QUORUM", &"x".repeat(30)] {
            let (inline, heap) = (CompactString::from(word), word.to_string());
            assert_eq!(
                postcard::to_stdvec(&inline).unwrap(),
                postcard::to_stdvec(&heap).unwrap()
            );
            assert_eq!(
                postcard::to_stdvec(&Some(inline)).unwrap(),
                postcard::to_stdvec(&Some(heap)).unwrap()
            );
        }
        assert_eq!(
            postcard::to_stdvec(&None::<CompactString>).unwrap(),
            postcard::to_stdvec(&None::<String>).unwrap()
        );
    }

    #[test]
    fn trees_keep_order_numbers_and_nesting() {
        round_trip(
            json!({"z": 1, "a": [-1, 2.5, 18446744073709551615u64, null, true],
                          "m": {"b": "x", "a": {"$binary": {"base64": "AA==", "subType": "04"}}}}),
        );
        round_trip(json!(-0.0));
        round_trip(json!([]));
    }

    #[test]
    fn fixed_shapes_are_typed_only_in_their_exact_form() {
        let cql = json!({"id": "1:43", "type": "logged", "index": 0, "size": 3});
        assert!(matches!(LineBatch::of(&cql), LineBatch::Cql { .. }));
        assert_eq!(LineBatch::of(&cql).to_json(), cql);
        let mongo = json!({"command": "insert", "index": 1, "count": 2, "ordered": true});
        assert!(matches!(LineBatch::of(&mongo), LineBatch::Mongo { .. }));
        assert_eq!(LineBatch::of(&mongo).to_json(), mongo);
        // Another order or another type keeps the tree, which prints as it was.
        let odd = json!({"type": "logged", "id": "1:43", "index": 0, "size": 3});
        let b = LineBatch::of(&odd);
        assert!(matches!(b, LineBatch::Other(_)));
        assert_eq!(
            serde_json::to_string(&b.to_json()).unwrap(),
            serde_json::to_string(&odd).unwrap()
        );

        let s = json!({"lsid": {"id": 1}, "txnNumber": 8, "stmtId": 2});
        assert!(matches!(LineSession::of(&s), LineSession::Fields { .. }));
        assert_eq!(LineSession::of(&s).to_json(), s);
        let s = json!({"txnNumber": 8, "lsid": {"id": 1}});
        assert!(matches!(LineSession::of(&s), LineSession::Other(_)));

        for wc in [
            json!({"w": 1}),
            json!({"w": "majority", "wtimeout": 10000}),
            json!({"j": true}),
        ] {
            let typed = LineWriteConcern::of(&wc);
            assert!(matches!(typed, LineWriteConcern::Fields { .. }), "{wc}");
            assert_eq!(
                serde_json::to_string(&typed.to_json()).unwrap(),
                wc.to_string()
            );
        }
        let wc = json!({"w": 1, "fsync": true});
        assert!(matches!(
            LineWriteConcern::of(&wc),
            LineWriteConcern::Other(_)
        ));
    }

    #[test]
    fn words_round_trip() {
        for w in ["using", "default", "server", "paxos_ballot"] {
            assert_eq!(TimestampSource::parse(w).unwrap().as_str(), w);
        }
        assert_eq!(
            LineOutcome::parse("unresolved"),
            Some(LineOutcome::Unresolved)
        );
        assert_eq!(KeySource::parse("guess"), None);
    }
}
