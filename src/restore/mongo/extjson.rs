//! Between BSON values and the relaxed Extended JSON snapshots store a collection's
//! options and indexes in. Reading covers what `listCollections` / `listIndexes`
//! answers hold (numbers, strings, booleans, documents, arrays, and the `$oid`,
//! `$date`, `$numberLong`, `$numberInt`, `$numberDouble`, `$regularExpression`
//! wrappers); anything else stays a document, as written.

use serde_json::Value;
use tidemark_mongo::bson::{doc, oid::ObjectId, Bson, DateTime, Document, Regex};

use crate::decode::mongo::values;

/// A value as relaxed Extended JSON (the decoder's spelling).
pub fn to_json(v: &Bson) -> Value {
    let Ok(bytes) = doc! {"v": v.clone()}.to_vec() else {
        return Value::Null;
    };
    match tidemark_mongo::bson::RawDocument::from_bytes(&bytes)
        .ok()
        .and_then(|d| d.get("v").ok().flatten())
    {
        Some(raw) => values::value(raw),
        None => Value::Null,
    }
}

/// A document as relaxed Extended JSON text.
pub fn doc_text(d: &Document) -> String {
    to_json(&Bson::Document(d.clone())).to_string()
}

/// Relaxed Extended JSON as a BSON value.
pub fn from_json(v: &Value) -> Bson {
    match v {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i32::try_from(i).map_or(Bson::Int64(i), Bson::Int32),
            None => Bson::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(a) => Bson::Array(a.iter().map(from_json).collect()),
        Value::Object(m) => {
            if m.len() == 1 {
                let (k, inner) = m.iter().next().expect("one entry");
                if let Some(b) = wrapper(k, inner) {
                    return b;
                }
            }
            Bson::Document(m.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

fn wrapper(k: &str, v: &Value) -> Option<Bson> {
    let s = v.as_str();
    Some(match k {
        "$oid" => Bson::ObjectId(ObjectId::parse_str(s?).ok()?),
        "$numberLong" => Bson::Int64(s?.parse().ok()?),
        "$numberInt" => Bson::Int32(s?.parse().ok()?),
        "$numberDouble" => Bson::Double(s?.parse().ok()?),
        "$date" => match v {
            Value::String(iso) => Bson::DateTime(DateTime::parse_rfc3339_str(iso).ok()?),
            Value::Object(_) => match from_json(v) {
                Bson::Int64(ms) => Bson::DateTime(DateTime::from_millis(ms)),
                _ => return None,
            },
            Value::Number(n) => Bson::DateTime(DateTime::from_millis(n.as_i64()?)),
            _ => return None,
        },
        "$regularExpression" => {
            let pattern = v.get("pattern")?.as_str()?;
            let options = v.get("options")?.as_str()?;
            Bson::RegularExpression(regex(pattern, options)?)
        }
        _ => return None,
    })
}

fn regex(pattern: &str, options: &str) -> Option<Regex> {
    let mut chars: Vec<char> = options.chars().collect();
    chars.sort_unstable();
    Some(Regex {
        pattern: pattern.to_string().try_into().ok()?,
        options: chars.into_iter().collect::<String>().try_into().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_index_specs_round_trip() {
        let d = doc! {
            "capped": true, "size": 4096, "max": 5_000_000_000i64, "f": 1.5,
            "key": {"a": 1, "b": -1}, "validator": {"s": {"$regex": regex("^x", "i").unwrap()}},
        };
        assert_eq!(
            from_json(&to_json(&Bson::Document(d.clone()))),
            Bson::Document(d)
        );
    }
}
