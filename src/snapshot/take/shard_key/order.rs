//! MongoDB's order of BSON values (`BSONElement::woCompare` without collation),
//! the order `config.chunks` ranges `[min, max)` are in: canonical type first
//! (MinKey < null < numbers < strings < documents < arrays < binary < ObjectId <
//! booleans < dates < timestamps < regexes < … < MaxKey), then the value — numbers
//! by numeric value across int32/int64/double (NaN below every other number),
//! strings and symbols bytewise, documents and arrays element by element (type,
//! field name, value; the shorter first), binary by length then subtype then bytes.

use std::cmp::Ordering;

use anyhow::{bail, Result};
use tidemark_mongo::bson::{Bson, Document};

use super::hash::{canonical_type, value_bytes};

/// A number as MongoDB compares it.
enum Num {
    Int(i64),
    Double(f64),
}

fn num(v: &Bson) -> Option<Num> {
    match v {
        Bson::Int32(i) => Some(Num::Int(i64::from(*i))),
        Bson::Int64(i) => Some(Num::Int(*i)),
        Bson::Double(d) => Some(Num::Double(*d)),
        _ => None,
    }
}

/// An int64 against a double, exactly (no rounding of the int64).
fn cmp_int_double(i: i64, d: f64) -> Ordering {
    if d.is_nan() {
        return Ordering::Greater;
    }
    if d >= 9.223_372_036_854_776e18 {
        return Ordering::Less;
    }
    if d < -9.223_372_036_854_776e18 {
        return Ordering::Greater;
    }
    let t = d.trunc();
    match i.cmp(&(t as i64)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(d - t)).unwrap_or(Ordering::Equal),
        o => o,
    }
}

fn cmp_numbers(a: Num, b: Num) -> Ordering {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (Num::Int(x), Num::Double(y)) => cmp_int_double(x, y),
        (Num::Double(x), Num::Int(y)) => cmp_int_double(y, x).reverse(),
        (Num::Double(x), Num::Double(y)) => match (x.is_nan(), y.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        },
    }
}

/// Two documents (or arrays as documents), element by element.
pub fn cmp_docs<'a>(
    a: impl IntoIterator<Item = (&'a str, &'a Bson)>,
    b: impl IntoIterator<Item = (&'a str, &'a Bson)>,
) -> Result<Ordering> {
    let mut b = b.into_iter();
    for (ka, va) in a {
        let Some((kb, vb)) = b.next() else {
            return Ok(Ordering::Greater);
        };
        let t = canonical_type(va).cmp(&canonical_type(vb));
        if t != Ordering::Equal {
            return Ok(t);
        }
        let k = ka.as_bytes().cmp(kb.as_bytes());
        if k != Ordering::Equal {
            return Ok(k);
        }
        let v = cmp(va, vb)?;
        if v != Ordering::Equal {
            return Ok(v);
        }
    }
    Ok(if b.next().is_some() {
        Ordering::Less
    } else {
        Ordering::Equal
    })
}

fn doc_items(d: &Document) -> impl Iterator<Item = (&str, &Bson)> {
    d.iter().map(|(k, v)| (k.as_str(), v))
}

/// `a` against `b` in MongoDB's order. A NumberDecimal against another number is
/// an error: tidemark does no decimal arithmetic, and guessing would misplace a key.
pub fn cmp(a: &Bson, b: &Bson) -> Result<Ordering> {
    let t = canonical_type(a).cmp(&canonical_type(b));
    if t != Ordering::Equal {
        return Ok(t);
    }
    Ok(match (a, b) {
        (Bson::Decimal128(_), _) | (_, Bson::Decimal128(_)) => {
            bail!("a NumberDecimal compared with a number: tidemark cannot order it")
        }
        (Bson::String(x) | Bson::Symbol(x), Bson::String(y) | Bson::Symbol(y)) => {
            x.as_bytes().cmp(y.as_bytes())
        }
        (Bson::Document(x), Bson::Document(y)) => cmp_docs(doc_items(x), doc_items(y))?,
        (Bson::Array(x), Bson::Array(y)) => {
            let names_x: Vec<String> = (0..x.len()).map(|i| i.to_string()).collect();
            let names_y: Vec<String> = (0..y.len()).map(|i| i.to_string()).collect();
            cmp_docs(
                names_x.iter().map(String::as_str).zip(x),
                names_y.iter().map(String::as_str).zip(y),
            )?
        }
        (Bson::Binary(x), Bson::Binary(y)) => x
            .bytes
            .len()
            .cmp(&y.bytes.len())
            .then(u8::from(x.subtype).cmp(&u8::from(y.subtype)))
            .then_with(|| x.bytes.cmp(&y.bytes)),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => x.bytes().cmp(&y.bytes()),
        (Bson::Boolean(x), Bson::Boolean(y)) => x.cmp(y),
        (Bson::DateTime(x), Bson::DateTime(y)) => x.timestamp_millis().cmp(&y.timestamp_millis()),
        (Bson::Timestamp(x), Bson::Timestamp(y)) => {
            (x.time, x.increment).cmp(&(y.time, y.increment))
        }
        (Bson::RegularExpression(x), Bson::RegularExpression(y)) => x
            .pattern
            .as_str()
            .as_bytes()
            .cmp(y.pattern.as_str().as_bytes())
            .then_with(|| {
                x.options
                    .as_str()
                    .as_bytes()
                    .cmp(y.options.as_str().as_bytes())
            }),
        (Bson::JavaScriptCode(x), Bson::JavaScriptCode(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Bson::JavaScriptCodeWithScope(x), Bson::JavaScriptCodeWithScope(y)) => x
            .code
            .as_bytes()
            .cmp(y.code.as_bytes())
            .then(cmp_docs(doc_items(&x.scope), doc_items(&y.scope))?),
        (Bson::DbPointer(_), Bson::DbPointer(_)) => {
            let (x, y) = (value_bytes(a)?, value_bytes(b)?);
            x.len().cmp(&y.len()).then_with(|| x.cmp(&y))
        }
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => cmp_numbers(x, y),
            // MinKey, MaxKey, null, undefined: one value each
            _ => Ordering::Equal,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_mongo::bson::oid::ObjectId;
    use tidemark_mongo::bson::spec::BinarySubtype;
    use tidemark_mongo::bson::{doc, Binary, DateTime};

    #[test]
    fn orders_like_mongodb() {
        let bin = |b: Vec<u8>, s| {
            Bson::Binary(Binary {
                subtype: s,
                bytes: b,
            })
        };
        // ascending, each strictly below the next
        let ladder = vec![
            Bson::MinKey,
            Bson::Null,
            Bson::Double(f64::NAN),
            Bson::Double(f64::NEG_INFINITY),
            Bson::Int64(i64::MIN),
            Bson::Int32(-1),
            Bson::Double(-0.5),
            Bson::Int32(0),
            Bson::Double(0.5),
            Bson::Int64(1),
            Bson::Double(1.5),
            Bson::Int64(9_007_199_254_740_993),
            Bson::Double(9.223_372_036_854_776e18),
            Bson::Double(f64::INFINITY),
            Bson::String(String::new()),
            Bson::String("B".into()),
            Bson::String("a".into()),
            Bson::String("ab".into()),
            Bson::Document(doc! {}),
            Bson::Document(doc! { "a": 1 }),
            Bson::Document(doc! { "a": 1, "b": 0 }),
            // an element's type counts before its field name
            Bson::Document(doc! { "b": 0 }),
            Bson::Document(doc! { "a": "x" }),
            Bson::Array(vec![]),
            Bson::Array(vec![Bson::Int32(2)]),
            bin(vec![9], BinarySubtype::UserDefined(0x80)),
            bin(vec![0, 0], BinarySubtype::Generic),
            bin(vec![0, 1], BinarySubtype::Generic),
            bin(vec![0, 0], BinarySubtype::Uuid),
            Bson::ObjectId(ObjectId::from_bytes([0; 12])),
            Bson::ObjectId(ObjectId::from_bytes([1; 12])),
            Bson::Boolean(false),
            Bson::Boolean(true),
            Bson::DateTime(DateTime::from_millis(-1)),
            Bson::DateTime(DateTime::from_millis(0)),
            Bson::MaxKey,
        ];
        for (i, a) in ladder.iter().enumerate() {
            for (j, b) in ladder.iter().enumerate() {
                assert_eq!(cmp(a, b).unwrap(), i.cmp(&j), "{a:?} vs {b:?}");
            }
        }
        // equal across number types
        assert_eq!(
            cmp(&Bson::Int32(7), &Bson::Double(7.0)).unwrap(),
            Ordering::Equal
        );
        assert_eq!(
            cmp(&Bson::Int64(7), &Bson::Int32(7)).unwrap(),
            Ordering::Equal
        );
        assert_eq!(
            cmp(&Bson::Double(-0.0), &Bson::Int32(0)).unwrap(),
            Ordering::Equal
        );
        // a long beyond a double's precision is not rounded
        assert_eq!(
            cmp(
                &Bson::Int64(9_007_199_254_740_993),
                &Bson::Double(9_007_199_254_740_992.0)
            )
            .unwrap(),
            Ordering::Greater
        );
    }
}
