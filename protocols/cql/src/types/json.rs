//! Values rendered the way Cassandra's `SELECT JSON` renders them (each type's
//! `toJSONString`): uuids, blobs (`"0x…"`), timestamps, dates, times, inets and
//! durations as strings; integers, varints and decimals as numbers; NaN and infinities
//! as strings; collections as arrays and objects; maps with non-text keys get each key's
//! JSON text as the object key; UDTs as objects, tuples as arrays.
//!
//! Two forms: [`json_text`] writes Cassandra's exact text (including its `", "` and
//! `": "` separators and arbitrary-precision numbers), and [`to_json`] builds a
//! `serde_json::Value`. `serde_json` numbers are 64-bit, so a varint or decimal that a
//! JSON number cannot hold exactly is given as a string of its exact digits in
//! `to_json` rather than silently rounded; [`json_text`] is always exact.

use super::column_type::ColumnType;
use super::decimal::exact_number;
use super::format;
use super::value::Value;
use serde_json::{Map, Number, Value as Json};

fn quote(out: &mut String, s: &str) {
    // serde_json escapes exactly what Jackson's quoteAsJsonString does for valid UTF-8
    // (quotes, backslash, control characters); serializing a &str cannot fail.
    match serde_json::to_string(s) {
        Ok(q) => out.push_str(&q),
        Err(_) => out.push_str("\"\""),
    }
}

/// The UDT field name as Cassandra prints it: case-sensitive names keep their quotes.
fn udt_field_name(name: &str) -> String {
    if name.chars().any(|c| c.is_uppercase()) {
        format!("\"{name}\"")
    } else {
        name.to_string()
    }
}

fn element_types(ty: &ColumnType) -> (Option<&ColumnType>, Option<&ColumnType>) {
    match ty.effective() {
        ColumnType::List(e) | ColumnType::Set(e) => (Some(e), None),
        ColumnType::Vector { element, .. } => (Some(element), None),
        ColumnType::Map(k, v) => (Some(k), Some(v)),
        _ => (None, None),
    }
}

/// Writes Cassandra's `toJSONString` of `v` (typed by `ty`) to `out`.
pub fn write_json(out: &mut String, v: &Value, ty: &ColumnType) {
    let blob_ty = ColumnType::Blob;
    match v {
        Value::Null | Value::Unset | Value::Empty => out.push_str("null"),
        Value::Ascii(t) | Value::Text(t) => quote(out, t),
        Value::Blob(b) | Value::Custom(b) => {
            out.push('"');
            out.push_str(&format::blob(b));
            out.push('"');
        }
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::BigInt(x) | Value::Counter(x) => out.push_str(&x.to_string()),
        Value::Int(x) => out.push_str(&x.to_string()),
        Value::SmallInt(x) => out.push_str(&x.to_string()),
        Value::TinyInt(x) => out.push_str(&x.to_string()),
        Value::Float(x) => float_text(out, format::float(*x), x.is_finite()),
        Value::Double(x) => float_text(out, format::double(*x), x.is_finite()),
        Value::Varint(b) => number_text(out, format::varint(b)),
        Value::Decimal { scale, unscaled } => number_text(out, format::decimal(*scale, unscaled)),
        Value::Timestamp(ms) => string(out, &format::timestamp(*ms)),
        Value::Date(d) => string(out, &format::date(*d)),
        Value::Time(t) => string(out, &format::time(*t)),
        Value::Uuid(u) | Value::Timeuuid(u) => string(out, &format::uuid(u)),
        Value::Inet(ip) => string(out, &format::inet(ip)),
        Value::Duration {
            months,
            days,
            nanos,
        } => string(out, &format::duration(*months, *days, *nanos)),
        Value::List(items) | Value::Set(items) | Value::Vector(items) => {
            let e = element_types(ty).0.unwrap_or(&blob_ty);
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(out, item, e);
            }
            out.push(']');
        }
        Value::Tuple(items) => {
            let ts: &[ColumnType] = match ty.effective() {
                ColumnType::Tuple(ts) => ts,
                _ => &[],
            };
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(out, item, ts.get(i).unwrap_or(&blob_ty));
            }
            out.push(']');
        }
        Value::Map(entries) => {
            let (k, vt) = element_types(ty);
            let (k, vt) = (k.unwrap_or(&blob_ty), vt.unwrap_or(&blob_ty));
            out.push('{');
            for (i, (key, val)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let key_text = json_text(key, k);
                if key_text.starts_with('"') {
                    out.push_str(&key_text);
                } else {
                    quote(out, &key_text);
                }
                out.push_str(": ");
                write_json(out, val, vt);
            }
            out.push('}');
        }
        Value::Udt(items) => {
            let fields: &[(crate::text::Text, ColumnType)] = match ty.effective() {
                ColumnType::Udt { fields, .. } => fields,
                _ => &[],
            };
            out.push('{');
            for (i, (name, ft)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                quote(out, &udt_field_name(name));
                out.push_str(": ");
                write_json(out, items.get(i).unwrap_or(&Value::Null), ft);
            }
            out.push('}');
        }
    }
}

fn string(out: &mut String, s: &str) {
    quote(out, s);
}

fn float_text(out: &mut String, s: String, finite: bool) {
    if finite {
        out.push_str(&s);
    } else {
        string(out, &s);
    }
}

fn number_text(out: &mut String, s: String) {
    if s.starts_with("0x") {
        // Oversized varint printed in hex: not a JSON number, so quote it.
        string(out, &s);
    } else {
        out.push_str(&s);
    }
}

/// Cassandra's exact JSON text for a value.
pub fn json_text(v: &Value, ty: &ColumnType) -> String {
    let mut s = String::new();
    write_json(&mut s, v, ty);
    s
}

fn float_json(text: String, x: f64) -> Json {
    if !x.is_finite() {
        return Json::String(text);
    }
    // Parse Java's shortest text so a float's value is its f32 digits (1.1, not
    // 1.100000023841858).
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Json::Number)
        .unwrap_or(Json::String(text))
}

/// A double as `float_json(format::double(x), x)` would give it, without the text: the
/// text carries the shortest round-trip digits of `x`, so it parses back to `x` itself.
fn double_json(x: f64) -> Json {
    match Number::from_f64(x) {
        Some(n) => Json::Number(n),
        None => Json::String(format::double(x)),
    }
}

/// `v` (typed by `ty`) as a `serde_json::Value`, following Cassandra's `SELECT JSON`.
pub fn to_json(v: &Value, ty: &ColumnType) -> Json {
    let blob_ty = ColumnType::Blob;
    match v {
        Value::Null | Value::Unset | Value::Empty => Json::Null,
        Value::Ascii(t) | Value::Text(t) => Json::String(t.to_string()),
        Value::Blob(b) | Value::Custom(b) => Json::String(format::blob(b)),
        Value::Boolean(b) => Json::Bool(*b),
        Value::BigInt(x) | Value::Counter(x) => Json::Number((*x).into()),
        Value::Int(x) => Json::Number((*x).into()),
        Value::SmallInt(x) => Json::Number((*x).into()),
        Value::TinyInt(x) => Json::Number((*x).into()),
        Value::Float(x) => float_json(format::float(*x), f64::from(*x)),
        Value::Double(x) => double_json(*x),
        Value::Varint(b) => exact_number(&format::varint(b)),
        Value::Decimal { scale, unscaled } => exact_number(&format::decimal(*scale, unscaled)),
        Value::Timestamp(ms) => Json::String(format::timestamp(*ms)),
        Value::Date(d) => Json::String(format::date(*d)),
        Value::Time(t) => Json::String(format::time(*t)),
        Value::Uuid(u) | Value::Timeuuid(u) => Json::String(format::uuid(u)),
        Value::Inet(ip) => Json::String(format::inet(ip)),
        Value::Duration {
            months,
            days,
            nanos,
        } => Json::String(format::duration(*months, *days, *nanos)),
        Value::List(items) | Value::Set(items) | Value::Vector(items) => {
            let e = element_types(ty).0.unwrap_or(&blob_ty);
            Json::Array(items.iter().map(|i| to_json(i, e)).collect())
        }
        Value::Tuple(items) => {
            let ts: &[ColumnType] = match ty.effective() {
                ColumnType::Tuple(ts) => ts,
                _ => &[],
            };
            Json::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| to_json(item, ts.get(i).unwrap_or(&blob_ty)))
                    .collect(),
            )
        }
        Value::Map(entries) => {
            let (k, vt) = element_types(ty);
            let (k, vt) = (k.unwrap_or(&blob_ty), vt.unwrap_or(&blob_ty));
            let mut m = Map::new();
            for (key, val) in entries {
                let key = match to_json(key, k) {
                    Json::String(s) => s,
                    _ => json_text(key, k),
                };
                m.insert(key, to_json(val, vt));
            }
            Json::Object(m)
        }
        Value::Udt(items) => {
            let fields: &[(crate::text::Text, ColumnType)] = match ty.effective() {
                ColumnType::Udt { fields, .. } => fields,
                _ => &[],
            };
            let mut m = Map::new();
            for (i, (name, ft)) in fields.iter().enumerate() {
                m.insert(
                    udt_field_name(name),
                    to_json(items.get(i).unwrap_or(&Value::Null), ft),
                );
            }
            Json::Object(m)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_json_is_the_parsed_java_text() {
        let mut xs = vec![
            0.0,
            -0.0,
            1.0,
            0.1,
            1e-3,
            1e7,
            1.5e300,
            -2.5e-300,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let mut r = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            xs.push(f64::from_bits(r));
            xs.push((r % 1_000_000) as f64 / 7.0);
        }
        for x in xs {
            assert_eq!(
                double_json(x),
                float_json(format::double(x), x),
                "{x:e} ({:016x})",
                x.to_bits()
            );
        }
    }
}
