//! BSON values as `serde_json::Value` in Extended JSON v2 *relaxed* form, the form
//! `write` lines carry (ARCHITECTURE.md, "Command line": as mongoexport writes it).
//!
//! The common types (documents, arrays, strings, numbers, booleans, null, ObjectId)
//! are converted directly from the raw bytes, in field order, without a text round
//! trip: a 1 KB document is a few dozen small allocations. Everything else goes through
//! `tidemark_mongo::json`, the reference renderer, so the two can never disagree on
//! the rare types (dates, binaries, decimals, regexes, timestamps, ...).

use serde_json::{Map, Number, Value};
use tidemark_mongo::bson::{RawArray, RawBsonRef, RawDocument};

use super::share::Owners;
use crate::decode::records::{LineValue, RawForm, RenderLater};
use tidemark_mongo::json::value_to_serde;

/// Nesting beyond which values render as `null` (validated BSON never gets there).
const MAX_DEPTH: usize = 200;

/// 9999-12-31T23:59:59.999Z, the last instant relaxed Extended JSON writes as a string.
const MAX_ISO_DATE: i64 = 253_402_300_799_999;

fn single(key: &str, v: Value) -> Value {
    let mut m = Map::with_capacity(1);
    m.insert(key.to_owned(), v);
    Value::Object(m)
}

/// A document as relaxed Extended JSON.
pub fn doc(d: &RawDocument) -> Value {
    doc_at(d, 0)
}

/// A document kept as bytes (a slice of `owners` when it lies in one), rendered as
/// [`doc`] when the line is read or printed.
pub fn lazy_doc(d: &RawDocument, owners: &Owners<'_>) -> LineValue {
    LineValue::raw(
        owners.share(d.as_bytes()),
        RawForm::BsonDocument,
        render_doc,
    )
}

/// An array kept as bytes, rendered as [`value`] when the line is read or printed.
pub fn lazy_array(a: &RawArray, owners: &Owners<'_>) -> LineValue {
    LineValue::raw(owners.share(a.as_bytes()), RawForm::BsonArray, render_array)
}

/// Renders kept bytes of `form` (what the store hands back to `log --json`).
pub fn render(bytes: &[u8], form: RawForm) -> Value {
    match form {
        RawForm::BsonDocument => render_doc(bytes),
        RawForm::BsonArray => render_array(bytes),
        // Not BSON: the registry sends these to their own decoder.
        RawForm::CqlValues => Value::Null,
    }
}

/// Bytes that are not a document render as `null`: they were a validated document
/// when kept, so only a damaged store gets there.
fn render_doc(bytes: &[u8]) -> Value {
    RawDocument::from_bytes(bytes).map_or(Value::Null, doc)
}

fn render_array(bytes: &[u8]) -> Value {
    // An array's bytes are a document keyed "0", "1", ...: its values in order, as
    // `value_at` renders an array.
    RawDocument::from_bytes(bytes).map_or(Value::Null, |d| {
        Value::Array(
            d.iter()
                .map_while(|e| e.ok())
                .map(|(_, v)| value_at(v, 1))
                .collect(),
        )
    })
}

/// Lowercase hex of `bytes` in one allocation (`ObjectId::to_hex` collects it a
/// char at a time; an `_id` is rendered for every statement's key).
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Any value as relaxed Extended JSON.
pub fn value(v: RawBsonRef<'_>) -> Value {
    value_at(v, 0)
}

/// `{"_id": id}`.
pub fn id_key(id: RawBsonRef<'_>) -> Value {
    single("_id", value(id))
}

/// [`id_key`] rendered when the key is first read: the id is kept as its BSON (an
/// ObjectId needs no allocation), while rendering it built two JSON maps and three
/// strings per write that `inspect` without `--json` never read. No kept form:
/// the store's line holds the key itself.
pub fn lazy_id_key(id: RawBsonRef<'_>) -> LineValue {
    struct IdKey(tidemark_mongo::bson::RawBson);
    impl RenderLater for IdKey {
        fn render(&self) -> Value {
            id_key(self.0.as_raw_bson_ref())
        }
    }
    LineValue::deferred(IdKey(id.into()))
}

fn doc_at(d: &RawDocument, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    // Collecting an exact-size list into the map sizes its table once, instead of
    // growing (and rehashing) it field by field. Validated documents never fail to
    // iterate; on a failure the document is cut there rather than guessed at.
    let fields: Vec<(String, Value)> = d
        .iter()
        .map_while(|el| el.ok())
        .map(|(k, v)| (k.as_str().to_owned(), value_at(v, depth + 1)))
        .collect();
    Value::Object(fields.into_iter().collect::<Map<String, Value>>())
}

fn value_at(v: RawBsonRef<'_>, depth: usize) -> Value {
    match v {
        RawBsonRef::Document(d) => doc_at(d, depth),
        RawBsonRef::Array(a) => {
            if depth > MAX_DEPTH {
                return Value::Null;
            }
            Value::Array(
                a.into_iter()
                    .map_while(|e| e.ok())
                    .map(|e| value_at(e, depth + 1))
                    .collect(),
            )
        }
        RawBsonRef::String(s) => Value::String(s.to_owned()),
        RawBsonRef::Int32(i) => Value::Number(i.into()),
        RawBsonRef::Int64(i) => Value::Number(i.into()),
        RawBsonRef::Boolean(b) => Value::Bool(b),
        RawBsonRef::Null => Value::Null,
        // Finite doubles are plain numbers; NaN and infinities need `$numberDouble`.
        RawBsonRef::Double(f) => match Number::from_f64(f) {
            Some(n) => Value::Number(n),
            None => value_to_serde(v),
        },
        RawBsonRef::ObjectId(o) => single("$oid", Value::String(hex(&o.bytes()))),
        // Dates in years 1970-9999 as ISO-8601 strings (others fall through to the
        // reference renderer's `$numberLong` form).
        RawBsonRef::DateTime(d) if (0..=MAX_ISO_DATE).contains(&d.timestamp_millis()) => {
            match d.try_to_rfc3339_string() {
                Ok(s) => single("$date", Value::String(s)),
                Err(_) => value_to_serde(v),
            }
        }
        other => value_to_serde(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_mongo::bson::{self, rawdoc};

    #[test]
    fn matches_the_reference_renderer_and_keeps_order() {
        let d = rawdoc! {
            "z": 1, "_id": bson::oid::ObjectId::parse_str("65e1c0de0000000000000001").unwrap(),
            "l": 9_007_199_254_740_993i64, "d": 3.25, "whole": 2.0, "nan": f64::NAN,
            "s": "é\"\n", "n": null, "b": false,
            "when": bson::DateTime::from_millis(1_709_296_245_123),
            "old": bson::DateTime::from_millis(-1),
            "bin": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0, 1, 2] },
            "dec": bson::Decimal128::from_bytes([0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x30]),
            "nested": { "a": [1, { "b": "c" }, []] },
        };
        let got = doc(&d);
        let want: Value =
            serde_json::from_str(&tidemark_mongo::json::document_to_json(&d)).unwrap();
        assert_eq!(got, want);
        assert_eq!(
            serde_json::to_string(&got).unwrap(),
            tidemark_mongo::json::document_to_json(&d)
        );
        let keys: Vec<&String> = got.as_object().unwrap().keys().collect();
        assert_eq!(keys[0], "z");
        assert_eq!(keys[1], "_id");
    }

    #[test]
    fn a_lazy_id_key_renders_as_the_eager_one_and_stays_in_the_stored_line() {
        let d = rawdoc! {
            "o": bson::oid::ObjectId::parse_str("65e1c0de0000000000000001").unwrap(),
            "s": "k\"1", "n": 7i64, "sub": { "a": [1, 2] },
        };
        for (_, id) in d.iter().map(Result::unwrap) {
            let lazy = lazy_id_key(id);
            assert!(matches!(lazy, LineValue::Deferred(_)));
            assert_eq!(lazy.kept(), None);
            let eager = serde_json::to_string(&id_key(id)).unwrap();
            let stored = crate::decode::line_value::without_raw_values(|| {
                serde_json::to_string(&lazy).unwrap()
            });
            assert_eq!(stored, eager);
            assert_eq!(*lazy, id_key(id));
        }
    }
}
