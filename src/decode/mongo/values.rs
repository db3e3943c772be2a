//! BSON values as `serde_json::Value` in Extended JSON v2 *relaxed* form, the form
//! `write` lines carry (ARCHITECTURE.md, "Command line": as mongoexport writes it).
//!
//! The common types (documents, arrays, strings, numbers, booleans, null, ObjectId)
//! are converted directly from the raw bytes, in field order, without a text round
//! trip: a 1 KB document is a few dozen small allocations. Everything else goes through
//! `tidemark_mongo::json`, the reference renderer, so the two can never disagree on
//! the rare types (dates, binaries, decimals, regexes, timestamps, ...).

use compact_str::CompactString;
use serde_json::{Map, Number, Value};
use tidemark_mongo::bson::{RawArray, RawBsonRef, RawDocument};

use super::share::Owners;
use crate::decode::records::{LineValue, RawForm, RenderLater};
use crate::store::envelope::line::LineTree;
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
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

/// Appends `bytes` as lowercase hex digits to any text buffer.
fn push_hex<W: std::fmt::Write>(out: &mut W, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        // Writing to an in-memory text buffer cannot fail.
        let _ = out.write_char(char::from(DIGITS[usize::from(b >> 4)]));
        let _ = out.write_char(char::from(DIGITS[usize::from(b & 15)]));
    }
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
        fn canonical_text(&self) -> Option<String> {
            id_key_text(self.0.as_raw_bson_ref())
        }
        fn tree(&self) -> Option<LineTree> {
            id_key_tree(self.0.as_raw_bson_ref())
        }
    }
    LineValue::deferred(IdKey(id.into()))
}

/// The canonical text of [`id_key`] (`canonical_text`), written straight for the
/// ids most collections use (an ObjectId, an integer, a string); `None` for the
/// others, which go through the rendered value. A tap writes every write's key text
/// and never reads the JSON: building two JSON maps to write one short string was
/// most of the key's cost.
fn id_key_text(id: RawBsonRef<'_>) -> Option<String> {
    use std::fmt::Write;
    let mut s = String::with_capacity(48);
    s.push_str(r#"{"_id":"#);
    match id {
        RawBsonRef::ObjectId(o) => {
            s.push_str(r#"{"$oid":""#);
            push_hex(&mut s, &o.bytes());
            s.push_str(r#""}"#);
        }
        RawBsonRef::Int32(i) => write!(s, "{i}").ok()?,
        RawBsonRef::Int64(i) => write!(s, "{i}").ok()?,
        RawBsonRef::String(t) => s.push_str(&serde_json::to_string(t).ok()?),
        _ => return None,
    }
    s.push('}');
    Some(s)
}

/// `LineTree::from(&id_key(id))` built straight for the ids [`id_key_text`] writes.
fn id_key_tree(id: RawBsonRef<'_>) -> Option<LineTree> {
    let value = match id {
        RawBsonRef::ObjectId(o) => {
            let mut hex = CompactString::with_capacity(24);
            push_hex(&mut hex, &o.bytes());
            LineTree::Object(vec![(
                CompactString::const_new("$oid"),
                LineTree::String(hex),
            )])
        }
        RawBsonRef::Int32(i) => int_tree(i64::from(i)),
        RawBsonRef::Int64(i) => int_tree(i),
        RawBsonRef::String(t) => LineTree::String(CompactString::from(t)),
        _ => return None,
    };
    Some(LineTree::Object(vec![(
        CompactString::const_new("_id"),
        value,
    )]))
}

/// An integer as a tree holds it: non-negative as `U64`, as `serde_json` keeps it.
fn int_tree(i: i64) -> LineTree {
    u64::try_from(i).map_or(LineTree::I64(i), LineTree::U64)
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

    fn an_id() -> impl proptest::strategy::Strategy<Value = bson::Bson> {
        use proptest::prelude::*;
        prop_oneof![
            any::<[u8; 12]>()
                .prop_map(|b| bson::Bson::ObjectId(bson::oid::ObjectId::from_bytes(b))),
            any::<i32>().prop_map(bson::Bson::Int32),
            any::<i64>().prop_map(bson::Bson::Int64),
            any::<String>().prop_map(bson::Bson::String),
            "[\\u{0}-\\u{7f}\"]{0,12}".prop_map(bson::Bson::String),
            // Written through the rendered value: must come out the same too.
            any::<f64>().prop_map(bson::Bson::Double),
            any::<bool>().prop_map(bson::Bson::Boolean),
            any::<i64>().prop_map(|i| bson::Bson::Document(bson::doc! {"a": i, "b": [i]})),
        ]
    }

    proptest::proptest! {
        /// The key's text and tree written straight from the BSON id are exactly
        /// what the rendered key gives, before and after it is rendered.
        #[test]
        fn a_lazy_id_keys_text_and_tree_are_the_rendered_keys(id in an_id()) {
            let d = bson::RawDocumentBuf::try_from(&bson::doc! {"_id": id}).unwrap();
            let id = d.get("_id").unwrap().unwrap();
            let rendered = id_key(id);
            let want_text = crate::decode::line_value::canonical_text(&rendered);
            let want_tree = LineTree::from(&rendered);
            let fresh = lazy_id_key(id);
            proptest::prop_assert_eq!(fresh.tree(), want_tree.clone());
            proptest::prop_assert_eq!(fresh.canonical_text(), want_text.as_str());
            let read = lazy_id_key(id);
            proptest::prop_assert_eq!(&*read, &rendered);
            proptest::prop_assert_eq!(read.tree(), want_tree);
            proptest::prop_assert_eq!(read.canonical_text(), want_text.as_str());
        }
    }
}
