//! Hashed shard keys: MongoDB's `BSONElementHasher::hash64` (seed 0), the
//! value `convertShardKeyToHashed` returns and hashed chunks are split on.
//! md5 over the little-endian seed, then, recursively, the element's
//! canonical type (int32 LE) and its value: numbers squashed to int64
//! (doubles truncated, as `safeNumberLong` does), other scalars as their BSON
//! value bytes, embedded documents and arrays element by element with field
//! names. The result is the digest's first 8 bytes read little-endian.
//! Written from MongoDB's source; not checked against a real mongod here
//! (the README says so).

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

/// The end-of-object element `moreWithEOO` also hashes: canonical type 0 (EOO)
/// and an empty field name.
fn eoo(h: &mut Md5) {
    h.update(0i32.to_le_bytes());
    h.update([0u8]);
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
