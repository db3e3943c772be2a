//! Hashed shard keys: MongoDB's `BSONElementHasher::hash64` (seed 0), the
//! value `convertShardKeyToHashed` returns and hashed chunks are split on.
//! md5 over the little-endian seed, then, recursively, the element's
//! canonical type (int32 LE) and its value: numbers squashed to int64
//! (doubles truncated, as `safeNumberLong` does), other scalars as their BSON
//! value bytes, embedded documents and arrays element by element with field
//! names and the end-of-object type. The result is the digest's first 8
//! bytes read little-endian. Checked against MongoDB's own test vectors
//! (`hasher_test.cpp`) for numbers, strings, documents, arrays, binary,
//! ObjectIds, booleans, MinKey/MaxKey; dates and timestamps are not covered
//! there (MongoDB 4.x+ gives them different canonical types, as here).

use md5::{Digest, Md5};
use tidemark_mongo::bson::{Bson, Document};

/// MongoDB's canonical type order (`canonicalizeBSONType`).
fn canonical_type(v: &Bson) -> i32 {
    match v {
        Bson::MinKey => -1,
        Bson::Undefined => 0,
        Bson::Null => 5,
        Bson::Double(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Decimal128(_) => 10,
        Bson::String(_) | Bson::Symbol(_) => 15,
        Bson::Document(_) => 20,
        Bson::Array(_) => 25,
        Bson::Binary(_) => 30,
        Bson::ObjectId(_) => 35,
        Bson::Boolean(_) => 40,
        Bson::DateTime(_) => 45,
        Bson::Timestamp(_) => 47,
        Bson::RegularExpression(_) => 50,
        Bson::DbPointer(_) => 55,
        Bson::JavaScriptCode(_) => 60,
        Bson::JavaScriptCodeWithScope(_) => 65,
        Bson::MaxKey => 127,
    }
}

/// `safeNumberLong`: NaN is 0, out-of-range doubles clamp.
fn number_long(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(i) => Some(*i as i64),
        Bson::Int64(i) => Some(*i),
        Bson::Double(d) if d.is_nan() => Some(0),
        Bson::Double(d) if *d >= 9.223_372_036_854_776e18 => Some(i64::MAX),
        Bson::Double(d) if *d <= -9.223_372_036_854_776e18 => Some(i64::MIN),
        Bson::Double(d) => Some(*d as i64),
        _ => None,
    }
}

/// The value bytes of a scalar element, as BSON stores them.
fn value_bytes(v: &Bson) -> Vec<u8> {
    let mut d = Document::new();
    d.insert("", v.clone());
    let raw = d.to_vec().unwrap_or_default();
    // 4 length bytes, 1 type byte, "" (one NUL), the value, the final NUL
    raw.get(6..raw.len().saturating_sub(1))
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

fn recursive(h: &mut Md5, name: Option<&str>, v: &Bson) {
    h.update(canonical_type(v).to_le_bytes());
    if let Some(n) = name {
        h.update(n.as_bytes());
        h.update([0u8]);
    }
    match v {
        Bson::Document(d) => {
            for (k, e) in d {
                recursive(h, Some(k), e);
            }
            eoo(h);
        }
        Bson::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                recursive(h, Some(&i.to_string()), e);
            }
            eoo(h);
        }
        _ => match number_long(v) {
            Some(i) => h.update(i.to_le_bytes()),
            None => h.update(value_bytes(v)),
        },
    }
}

/// The end-of-object element `moreWithEOO` also hashes: its canonical type
/// (0) only — an EOO element's field name has size 0.
fn eoo(h: &mut Md5) {
    h.update(0i32.to_le_bytes());
}

/// `convertShardKeyToHashed(v)`.
pub fn hash64(v: &Bson) -> i64 {
    let mut h = Md5::new();
    h.update(0i32.to_le_bytes());
    recursive(&mut h, None, v);
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    i64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MongoDB's own test vectors (`src/mongo/db/hasher_test.cpp`, "determined
    /// experimentally" against mongod).
    #[test]
    fn matches_mongodb_test_vectors() {
        use tidemark_mongo::bson::oid::ObjectId;
        use tidemark_mongo::bson::spec::BinarySubtype;
        use tidemark_mongo::bson::{doc, Binary};
        let oid = |h: &str| Bson::ObjectId(ObjectId::parse_str(h).unwrap());
        let cases: Vec<(Bson, i64)> = vec![
            (Bson::Int32(42), -944302157085130861),
            (Bson::Double(42.123), -944302157085130861),
            (Bson::Int64(42), -944302157085130861),
            (Bson::Int32(0), 4854801880128277513),
            (Bson::Double(f64::NAN), 4854801880128277513),
            (Bson::Int32(1), 5902408780260971510),
            (Bson::Double(-1.789), 1140205862565771219),
            (Bson::Int32(i32::MIN), 6165898260261354870),
            (Bson::Int32(i32::MAX), 1143184177162245883),
            (Bson::Double(f64::MAX), 921523596458303250),
            (Bson::Int64(i64::MAX), 921523596458303250),
            (Bson::Double(-f64::MAX), 4532067210535695462),
            (Bson::Int64(i64::MIN), 4532067210535695462),
            (Bson::MinKey, 7961148599568647290),
            (Bson::MaxKey, 5504842513779440750),
            (Bson::Undefined, 40158834000849533),
            (Bson::String("abc".into()), 8478485326885698097),
            (Bson::String(String::new()), 2049396243249673340),
            (
                Bson::Document(doc! { "a": "abc", "b": 123i64 }),
                4771603801758380216,
            ),
            (Bson::Document(doc! {}), 7980500913326740417),
            (
                Bson::Array(vec!["bar".into(), "baz".into(), "qux".into()]),
                -2938911267422831539,
            ),
            (Bson::Array(vec![]), 8849948234993459283),
            (
                Bson::Binary(Binary {
                    subtype: BinarySubtype::Generic,
                    bytes: vec![0, 1, 2, 3, 4, 6],
                }),
                7252465090394235301,
            ),
            (oid("010203040506070809101112"), -5588663249627035708),
            (oid("000000000000000000000000"), -4293118519463489418),
            (Bson::Boolean(true), 6405873908747105701),
            (Bson::Boolean(false), 6289544573401934092),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .filter(|(v, h)| hash64(v) != *h)
            .map(|(v, h)| format!("{v}: {} != {h}", hash64(v)))
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn numbers_of_any_type_hash_alike_and_values_differ() {
        assert_eq!(hash64(&Bson::Int32(7)), hash64(&Bson::Int64(7)));
        assert_eq!(hash64(&Bson::Int64(7)), hash64(&Bson::Double(7.9)));
        assert_ne!(hash64(&Bson::Int64(7)), hash64(&Bson::Int64(8)));
        assert_ne!(hash64(&Bson::Int64(7)), hash64(&Bson::String("7".into())));
        // spread: 1000 consecutive keys land on both halves of the key space
        let neg = (0..1000).filter(|i| hash64(&Bson::Int64(*i)) < 0).count();
        assert!((300..700).contains(&neg), "{neg} of 1000 negative");
    }
}
