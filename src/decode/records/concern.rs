//! `write_concern`: the MongoDB write concern as the command (or a `getlasterror`)
//! carried it, typed when it has the usual shape, printed as the line spells it.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// A write concern's `w` as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentW {
    /// A number of members (an integer on the wire; printed as a JSON integer).
    Members(i64),
    /// `"majority"`, kept without a string.
    Majority,
    /// A tag set's name.
    Tag(String),
}

impl SentW {
    /// The text the store's acknowledgement keeps: a number as its digits.
    pub fn text(&self) -> String {
        match self {
            SentW::Members(n) => n.to_string(),
            SentW::Majority => "majority".to_owned(),
            SentW::Tag(t) => t.clone(),
        }
    }
}

/// `write_concern` of a `write` line.
#[derive(Debug, Clone, PartialEq)]
pub enum SentWriteConcern {
    /// `{"w", "j", "wtimeout"}`, each when present, in that order, of integer,
    /// boolean and integer types (`w` may be a string).
    Fields {
        w: Option<SentW>,
        j: Option<bool>,
        wtimeout: Option<i64>,
    },
    /// Any other form as its relaxed Extended JSON: other fields (`fsync`,
    /// `provenance`, ...), another order, a repeated field, another type (a shell's
    /// `w: 1.0`).
    Json(Value),
}

/// A JSON value as it is (see [`SentWriteConcern::Json`]).
impl From<Value> for SentWriteConcern {
    fn from(v: Value) -> Self {
        SentWriteConcern::Json(v)
    }
}

impl Serialize for SentW {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SentW::Members(n) => s.serialize_i64(*n),
            SentW::Majority => s.serialize_str("majority"),
            SentW::Tag(t) => s.serialize_str(t),
        }
    }
}

impl Serialize for SentWriteConcern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SentWriteConcern::Fields { w, j, wtimeout } => {
                let n = usize::from(w.is_some())
                    + usize::from(j.is_some())
                    + usize::from(wtimeout.is_some());
                let mut m = s.serialize_map(Some(n))?;
                if let Some(w) = w {
                    m.serialize_entry("w", w)?;
                }
                if let Some(j) = j {
                    m.serialize_entry("j", j)?;
                }
                if let Some(t) = wtimeout {
                    m.serialize_entry("wtimeout", t)?;
                }
                m.end()
            }
            SentWriteConcern::Json(v) => v.serialize(s),
        }
    }
}
