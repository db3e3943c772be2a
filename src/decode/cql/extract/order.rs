//! Cassandra's ordering of set elements, applied to rendered JSON.
//!
//! A driver sends a set in whatever order the client held it; Cassandra stores it
//! sorted by the element type's comparator and `SELECT JSON` prints it that way. So a
//! `write` line sorts (and deduplicates) set elements the same way, whether they came
//! bound or as a literal. Maps need no work here: JSON objects are keyed by text.

use std::cmp::Ordering;

use serde_json::Value as Json;
use tidemark_cql::ColumnType;

/// Sorts every set inside `v` (typed `ty`) in Cassandra's order, recursively.
pub fn normalize(v: &mut Json, ty: &ColumnType) {
    match (ty.effective(), v) {
        (ColumnType::Set(e), Json::Array(items)) => {
            items.iter_mut().for_each(|i| normalize(i, e));
            items.sort_by(|a, b| compare(a, b, e));
            items.dedup_by(|a, b| compare(a, b, e) == Ordering::Equal);
        }
        (ColumnType::List(e), Json::Array(items))
        | (ColumnType::Vector { element: e, .. }, Json::Array(items)) => {
            items.iter_mut().for_each(|i| normalize(i, e));
        }
        (ColumnType::Tuple(ts), Json::Array(items)) => {
            for (i, t) in items.iter_mut().zip(ts) {
                normalize(i, t);
            }
        }
        (ColumnType::Map(_, vt), Json::Object(m)) => m.values_mut().for_each(|x| normalize(x, vt)),
        (ColumnType::Udt { fields, .. }, Json::Object(m)) => {
            for (name, ft) in fields {
                if let Some(x) = m.get_mut(name.as_str()) {
                    normalize(x, ft);
                }
            }
        }
        _ => {}
    }
}

/// Orders two rendered values of type `ty` as Cassandra's comparator would.
pub fn compare(a: &Json, b: &Json, ty: &ColumnType) -> Ordering {
    match ty.effective() {
        ColumnType::Timeuuid => match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => uuid_time(x).cmp(&uuid_time(y)).then_with(|| x.cmp(y)),
            _ => generic(a, b),
        },
        // A varint or decimal too large for a JSON number is rendered as a string of
        // digits: those compare as numbers. Text never does (UTF8Type and AsciiType
        // compare bytes: "10" < "9").
        ColumnType::Varint | ColumnType::Decimal => match (a, b) {
            (Json::String(_), _) | (_, Json::String(_)) => numeric_text(a, b),
            _ => generic(a, b),
        },
        ColumnType::List(e) | ColumnType::Set(e) => seq(a, b, |_| e),
        ColumnType::Tuple(ts) => seq(a, b, |i| ts.get(i).unwrap_or(&ColumnType::Blob)),
        _ => generic(a, b),
    }
}

fn seq<'t>(a: &Json, b: &Json, ty_of: impl Fn(usize) -> &'t ColumnType) -> Ordering {
    match (a, b) {
        (Json::Array(x), Json::Array(y)) => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                let o = compare(p, q, ty_of(i));
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => generic(a, b),
    }
}

/// Numbers numerically (exact for integers), strings by UTF-8 bytes (text, blobs as
/// lowercase hex, ISO dates and timestamps all sort correctly that way), false before
/// true, nulls first.
fn generic(a: &Json, b: &Json) -> Ordering {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(p), Some(q)) => p.cmp(&q),
            _ => x
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&y.as_f64().unwrap_or(0.0)),
        },
        (Json::String(x), Json::String(y)) => compare_text(x, y),
        (Json::Bool(x), Json::Bool(y)) => x.cmp(y),
        (Json::Array(_), Json::Array(_)) => seq(a, b, |_| &ColumnType::Blob),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// How two rendered strings of a text type order: by their UTF-8 bytes, as
/// Cassandra's UTF8Type and AsciiType compare them.
pub fn compare_text(x: &str, y: &str) -> Ordering {
    x.as_bytes().cmp(y.as_bytes())
}

/// A varint or decimal rendered as a number or as a string of digits, by value.
fn numeric_text(a: &Json, b: &Json) -> Ordering {
    let value = |v: &Json| match v {
        Json::String(s) => big(s),
        Json::Number(n) => n.as_f64(),
        _ => None,
    };
    match (value(a), value(b)) {
        (Some(p), Some(q)) => p.total_cmp(&q),
        _ => generic(a, b),
    }
}

/// A varint or decimal too large for a JSON number is rendered as a string of digits.
fn big(s: &str) -> Option<f64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        return None;
    }
    s.parse().ok()
}

fn rank(v: &Json) -> u8 {
    match v {
        Json::Null => 0,
        Json::Bool(_) => 1,
        Json::Number(_) => 2,
        Json::String(_) => 3,
        Json::Array(_) => 4,
        Json::Object(_) => 5,
    }
}

/// The 60-bit timestamp of a version-1 UUID's text form.
fn uuid_time(s: &str) -> u64 {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let get = |r: std::ops::Range<usize>| hex.get(r).and_then(|h| u64::from_str_radix(h, 16).ok());
    match (get(0..8), get(8..12), get(13..16)) {
        (Some(low), Some(mid), Some(high)) => (high << 48) | (mid << 32) | low,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_sets_by_element_type() {
        let mut v = json!([3, 1, 2, 1]);
        normalize(&mut v, &ColumnType::Set(Box::new(ColumnType::Int)));
        assert_eq!(v, json!([1, 2, 3]));
        let mut v = json!({"a": ["y", "x"]});
        let t = ColumnType::Map(
            Box::new(ColumnType::Varchar),
            Box::new(ColumnType::Set(Box::new(ColumnType::Varchar))),
        );
        normalize(&mut v, &t);
        assert_eq!(v, json!({"a": ["x", "y"]}));
        let mut v = json!(["2013", "jazz"]);
        normalize(&mut v, &ColumnType::Set(Box::new(ColumnType::Varchar)));
        assert_eq!(v, json!(["2013", "jazz"]));
    }

    #[test]
    fn text_of_digits_sorts_by_bytes_and_varints_by_value() {
        // UTF8Type: "10" < "9" < "a" by bytes, as Cassandra stores a set<text>.
        let mut v = json!(["9", "a", "10", "1.5"]);
        normalize(&mut v, &ColumnType::Set(Box::new(ColumnType::Varchar)));
        assert_eq!(v, json!(["1.5", "10", "9", "a"]));
        // IntegerType: a varint too large for a JSON number is a digit string and
        // still orders by value.
        let mut v = json!(["100000000000000000000000", 5, "-100000000000000000000000"]);
        normalize(&mut v, &ColumnType::Set(Box::new(ColumnType::Varint)));
        assert_eq!(
            v,
            json!(["-100000000000000000000000", 5, "100000000000000000000000"])
        );
    }
}
