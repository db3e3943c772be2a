//! `session`: MongoDB session and transaction identity as the command carried it,
//! typed (no allocation for the common forms: a statement's line is a copy of its
//! command's, per statement), printed as the relaxed Extended JSON the line spells.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// `session` of a `write` line: each field present only when the command carried it.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionIds {
    /// Printed in this order: `lsid`, `txnNumber`, `autocommit`, `startTransaction`,
    /// `stmtId`.
    Fields {
        lsid: Option<Lsid>,
        txn_number: Option<i64>,
        autocommit: Option<bool>,
        start_transaction: Option<bool>,
        stmt_id: Option<i64>,
    },
    /// A field of a type the typed form cannot print as the command had it (a
    /// `txnNumber` sent as a double, an `autocommit` that is not a boolean, ...), or a
    /// line read back from an older store: the JSON as it was.
    Json(Value),
}

/// `lsid`: the logical session id document. Its `Debug` prints the relaxed Extended
/// JSON the line prints (see the impl below), never the raw `uid` bytes.
#[derive(Clone, PartialEq)]
pub enum Lsid {
    /// `{"id": UUID}`, with `uid` (a 32-byte SHA-256 of the user, binary subtype 0)
    /// when a router or an authenticated internal client added it.
    Uuid { id: [u8; 16], uid: Option<[u8; 32]> },
    /// Any other form, as its relaxed Extended JSON.
    Json(Value),
}

/// As the line prints it: `uid` is a hash of the authenticated user, which logs and
/// panic messages show no more plainly than the `write` line does (the typed form
/// holds its raw bytes; `tests/mongo_replication_evidence.rs` checks records'
/// `Debug` for them).
impl std::fmt::Debug for Lsid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::to_string(self) {
            Ok(json) => write!(f, "Lsid({json})"),
            Err(_) => f.write_str("Lsid(?)"),
        }
    }
}

impl SessionIds {
    /// `autocommit` as the command sent it (`false` marks a transaction's statement).
    pub fn autocommit(&self) -> Option<bool> {
        match self {
            SessionIds::Fields { autocommit, .. } => *autocommit,
            SessionIds::Json(v) => v.get("autocommit").and_then(Value::as_bool),
        }
    }
}

/// A JSON value as it is (see [`SessionIds::Json`]).
impl From<Value> for SessionIds {
    fn from(v: Value) -> Self {
        SessionIds::Json(v)
    }
}

/// `{"$binary": {"base64": ..., "subType": "xx"}}`, as relaxed Extended JSON writes a
/// binary.
pub struct Binary<'a> {
    pub bytes: &'a [u8],
    pub subtype: u8,
}

impl Binary<'_> {
    /// The base64 text of the bytes.
    pub fn base64(&self) -> String {
        let mut s = String::with_capacity(self.base64_len());
        self.write_base64(&mut s);
        s
    }

    /// The subtype as two lowercase hex digits.
    pub fn subtype_hex(&self) -> String {
        let mut s = String::with_capacity(2);
        self.write_subtype_hex(&mut s);
        s
    }

    /// Length of [`Binary::base64`]'s text.
    pub fn base64_len(&self) -> usize {
        self.bytes.len().div_ceil(3) * 4
    }

    /// Appends [`Binary::base64`]'s text to any text buffer (an inline small string
    /// for the store's trees).
    pub fn write_base64<W: std::fmt::Write>(&self, out: &mut W) {
        tidemark_mongo::json::base64(out, self.bytes);
    }

    /// Appends [`Binary::subtype_hex`]'s text to any text buffer.
    pub fn write_subtype_hex<W: std::fmt::Write>(&self, out: &mut W) {
        // Writing to an in-memory text buffer cannot fail.
        let _ = write!(out, "{:02x}", self.subtype);
    }
}

impl Serialize for Binary<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Inner<'a>(&'a Binary<'a>);
        impl Serialize for Inner<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("base64", &self.0.base64())?;
                m.serialize_entry("subType", &self.0.subtype_hex())?;
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("$binary", &Inner(self))?;
        m.end()
    }
}

/// Binary subtype of a UUID.
pub const UUID_SUBTYPE: u8 = 4;
/// Binary subtype of generic bytes (`lsid.uid`).
pub const GENERIC_SUBTYPE: u8 = 0;

impl Serialize for Lsid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Lsid::Uuid { id, uid } => {
                let mut m = s.serialize_map(Some(1 + usize::from(uid.is_some())))?;
                m.serialize_entry(
                    "id",
                    &Binary {
                        bytes: id,
                        subtype: UUID_SUBTYPE,
                    },
                )?;
                if let Some(uid) = uid {
                    m.serialize_entry(
                        "uid",
                        &Binary {
                            bytes: uid,
                            subtype: GENERIC_SUBTYPE,
                        },
                    )?;
                }
                m.end()
            }
            Lsid::Json(v) => v.serialize(s),
        }
    }
}

impl Serialize for SessionIds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (lsid, txn_number, autocommit, start_transaction, stmt_id) = match self {
            SessionIds::Fields {
                lsid,
                txn_number,
                autocommit,
                start_transaction,
                stmt_id,
            } => (lsid, txn_number, autocommit, start_transaction, stmt_id),
            SessionIds::Json(v) => return v.serialize(s),
        };
        let n = [
            lsid.is_some(),
            txn_number.is_some(),
            autocommit.is_some(),
            start_transaction.is_some(),
            stmt_id.is_some(),
        ]
        .into_iter()
        .filter(|p| *p)
        .count();
        let mut m = s.serialize_map(Some(n))?;
        if let Some(l) = lsid {
            m.serialize_entry("lsid", l)?;
        }
        if let Some(t) = txn_number {
            m.serialize_entry("txnNumber", t)?;
        }
        if let Some(a) = autocommit {
            m.serialize_entry("autocommit", a)?;
        }
        if let Some(st) = start_transaction {
            m.serialize_entry("startTransaction", st)?;
        }
        if let Some(id) = stmt_id {
            m.serialize_entry("stmtId", id)?;
        }
        m.end()
    }
}
