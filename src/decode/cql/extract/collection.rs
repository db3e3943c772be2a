//! Serialized collections: splitting them into their elements (slices of the
//! frame, no copy), and the canonical form Cassandra stores for frozen sets and maps.
//!
//! Cassandra sorts a frozen set's elements and a frozen map's entries (by key) with
//! the element type's comparator and drops duplicates before storing the value
//! (`Sets.Value.fromSerialized`, `Maps.Value.fromSerialized` in 4.x; for a map the
//! last value of a repeated key stays), so the stored bytes, which decide timestamp
//! ties, can differ from the wire's. The order is `order::compare`'s, the one the
//! `write` line already sorts sets by.

use std::cmp::Ordering;

use bytes::Bytes;
use tidemark_cql::ColumnType;

use super::bound::typed;
use super::order::{compare, compare_text};

/// Reads `[int]`-length-prefixed items (negative = null), sliced from `b`.
pub fn items(b: &Bytes, mut at: usize, count: Option<usize>) -> Option<Vec<Option<Bytes>>> {
    let mut out = Vec::new();
    while count.map_or(at < b.len(), |n| out.len() < n) {
        let len = i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        if len < 0 {
            out.push(None);
            continue;
        }
        let end = at.checked_add(len as usize)?;
        if end > b.len() {
            return None;
        }
        out.push(Some(b.slice(at..end)));
        at = end;
    }
    (at == b.len()).then_some(out)
}

/// A collection's items: `[int] n` then `n * per` items.
pub fn split(b: &Bytes, per: usize) -> Option<Vec<Option<Bytes>>> {
    let n = usize::try_from(i32::from_be_bytes(b.get(..4)?.try_into().ok()?)).ok()?;
    items(b, 4, Some(n.checked_mul(per)?))
}

/// A UDT's fields, in type order (trailing fields may be missing).
pub fn fields(b: &Bytes) -> Option<Vec<Option<Bytes>>> {
    items(b, 0, None)
}

/// [`canonical`] taking the bytes: when they are already canonical (almost always)
/// the same `Bytes` comes back moved, not cloned and dropped (two atomic reference
/// count changes per cell on the hot path).
pub fn canonical_owned(ty: &ColumnType, b: Bytes) -> Bytes {
    if !has_sorted(ty) || in_text_order(ty, &b) {
        return b;
    }
    canonical(ty, &b)
}

/// The bytes Cassandra stores for a value of type `ty`: frozen sets and maps (at
/// any depth inside lists, sets and maps) sorted and deduplicated; anything else,
/// and anything that does not split, as given (the same `Bytes`, no copy).
pub fn canonical(ty: &ColumnType, b: &Bytes) -> Bytes {
    // Without a set or map inside, nothing is reordered: the split-and-rebuild below
    // would give back the same bytes, or `b` itself when they do not split.
    if !has_sorted(ty) || in_text_order(ty, b) {
        return b.clone();
    }
    let (per, key_ty, val_ty) = match ty.effective() {
        ColumnType::Set(e) => (1, &**e, None),
        ColumnType::Map(k, v) => (2, &**k, Some(&**v)),
        ColumnType::List(e) => (1, &**e, None),
        _ => return b.clone(),
    };
    let Some(items) = split(b, per) else {
        return b.clone();
    };
    let Some(items) = items.into_iter().collect::<Option<Vec<Bytes>>>() else {
        return b.clone();
    };
    // Elements canonical first (a set of frozen sets), then ordered.
    let mut entries: Vec<(Bytes, Option<Bytes>)> = items
        .chunks(per)
        .map(|c| {
            let k = canonical(key_ty, &c[0]);
            let v = val_ty.map(|vt| canonical(vt, &c[1]));
            (k, v)
        })
        .collect();
    if !matches!(ty.effective(), ColumnType::List(_)) {
        if let Some(sorted) = sort_text_keys(&entries, key_ty) {
            entries = sorted;
        } else {
            entries = sort_rendered_keys(entries, key_ty);
        }
    }
    let mut out = Vec::with_capacity(b.len());

    out.extend_from_slice(&(entries.len() as i32).to_be_bytes());
    for (k, v) in &entries {
        for part in std::iter::once(k).chain(v) {
            out.extend_from_slice(&(part.len() as i32).to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    if out[..] == b[..] {
        b.clone()
    } else {
        Bytes::from(out)
    }
}

/// Whether `b`, a set or map of `ty` with `text` keys, is already what [`canonical`]
/// would give back: keys valid UTF-8 in strictly increasing byte order (no
/// duplicates), map values of a type holding no set or map, every length in bounds.
/// Checked in place, without splitting into `Bytes` or allocating: drivers send sets
/// and maps from sorted containers, and re-sorting each was a twentieth of prepared
/// INSERT extraction. `false` sends the value down the general path.
fn in_text_order(ty: &ColumnType, b: &[u8]) -> bool {
    let (per, key_ty, val_ty) = match ty.effective() {
        ColumnType::Set(e) => (1, &**e, None),
        ColumnType::Map(k, v) => (2, &**k, Some(&**v)),
        _ => return false,
    };
    if !matches!(key_ty.effective(), ColumnType::Varchar) || val_ty.is_some_and(has_sorted) {
        return false;
    }
    let int = |at: usize| -> Option<i32> {
        Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let Some(n) = int(0) else { return false };
    let mut at = 4;
    let mut prev: Option<&[u8]> = None;
    for _ in 0..n.max(0) {
        for part in 0..per {
            let Some(Ok(len)) = int(at).map(usize::try_from) else {
                return false;
            };
            at += 4;
            let Some(item) = at.checked_add(len).and_then(|end| b.get(at..end)) else {
                return false;
            };
            at += len;
            if part == 0 {
                if std::str::from_utf8(item).is_err() || prev.is_some_and(|p| p >= item) {
                    return false;
                }
                prev = Some(item);
            }
        }
    }
    n >= 0 && at == b.len()
}

/// Whether a value of `ty` can hold a set or map outside a UDT or tuple (what
/// [`canonical`] reorders).
fn has_sorted(ty: &ColumnType) -> bool {
    match ty.effective() {
        ColumnType::Set(_) | ColumnType::Map(..) => true,
        ColumnType::List(e) => has_sorted(e),
        _ => false,
    }
}

/// A set's elements or a map's entries (`key_ty` keys) in `order::compare`'s order of
/// their rendered keys, duplicates dropped with the last one written kept.
fn sort_rendered_keys(
    entries: Vec<(Bytes, Option<Bytes>)>,
    key_ty: &ColumnType,
) -> Vec<(Bytes, Option<Bytes>)> {
    let mut keyed: Vec<(serde_json::Value, (Bytes, Option<Bytes>))> = entries
        .into_iter()
        .map(|e| (typed(key_ty, &e.0), e))
        .collect();
    // Stable: among equal keys the last one written is kept below.
    keyed.sort_by(|a, b| compare(&a.0, &b.0, key_ty));
    let mut out: Vec<(serde_json::Value, (Bytes, Option<Bytes>))> = Vec::new();
    for e in keyed {
        match out.last_mut() {
            Some(last) if compare(&last.0, &e.0, key_ty) == Ordering::Equal => *last = e,
            _ => out.push(e),
        }
    }
    out.into_iter().map(|(_, e)| e).collect()
}

/// [`sort_rendered_keys`] for text keys, comparing the key strings where they lie in
/// the frame instead of rendering each as JSON: a `text`/`varchar` key renders as its
/// own string when it is valid UTF-8, and `order::compare_text` is the comparison
/// `order::compare` applies to two strings. `None` (use the rendering path) for other
/// key types or when a key is not valid UTF-8 (it renders as a blob then).
fn sort_text_keys(
    entries: &[(Bytes, Option<Bytes>)],
    key_ty: &ColumnType,
) -> Option<Vec<(Bytes, Option<Bytes>)>> {
    if !matches!(key_ty.effective(), ColumnType::Varchar) {
        return None;
    }
    let mut keyed: Vec<(&str, &(Bytes, Option<Bytes>))> = entries
        .iter()
        .map(|e| std::str::from_utf8(&e.0).ok().map(|k| (k, e)))
        .collect::<Option<_>>()?;
    keyed.sort_by(|a, b| compare_text(a.0, b.0));
    let mut out: Vec<(&str, &(Bytes, Option<Bytes>))> = Vec::with_capacity(keyed.len());
    for e in keyed {
        match out.last_mut() {
            Some(last) if compare_text(last.0, e.0) == Ordering::Equal => *last = e,
            _ => out.push(e),
        }
    }
    Some(out.into_iter().map(|(_, e)| e.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tidemark_cql::Value;

    fn enc(v: Value) -> Bytes {
        let mut out = Vec::new();
        v.encode(&mut out);
        Bytes::from(out)
    }

    proptest! {
        /// Int32Type orders sets as signed ints: Rust's `i32` order is the reference.
        #[test]
        fn int_sets_sort_signed_and_dedup(xs in proptest::collection::vec(any::<i32>(), 0..20)) {
            let ty = ColumnType::Set(Box::new(ColumnType::Int));
            let mut want = xs.clone();
            want.sort();
            want.dedup();
            let got = canonical(&ty, &enc(Value::Set(xs.into_iter().map(Value::Int).collect())));
            prop_assert_eq!(got, enc(Value::Set(want.into_iter().map(Value::Int).collect())));
        }

        /// UTF8Type orders map keys by their UTF-8 bytes, and a repeated key keeps
        /// its last value (`Maps.Value.fromSerialized`): Rust's `BTreeMap<String, _>`,
        /// filled in wire order, is the reference; keys of digits sort by their bytes
        /// too ("10" before "9").
        #[test]
        fn text_map_keys_sort_by_utf8_bytes_last_value_kept(
            kv in proptest::collection::vec(("[a-zA-Z0-9. é日ß_-]{0,6}", any::<i32>()), 0..16)
        ) {
            let ty = ColumnType::Map(Box::new(ColumnType::Varchar), Box::new(ColumnType::Int));
            let text = |s: &str| Value::Text(tidemark_cql::text::Text::from(s));
            let wire = Value::Map(kv.iter().map(|(k, v)| (text(k), Value::Int(*v))).collect());
            let want: std::collections::BTreeMap<&str, i32> =
                kv.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            let want = Value::Map(want.into_iter().map(|(k, v)| (text(k), Value::Int(v))).collect());
            prop_assert_eq!(canonical(&ty, &enc(wire)), enc(want));
        }

        /// The in-place check for text keys already in order gives what the general
        /// path gives: sorted, duplicated and unsorted keys alike.
        #[test]
        fn text_keys_in_order_are_kept_as_sent(
            mut keys in proptest::collection::vec("[a-c]{0,3}", 0..8),
            sort in any::<bool>(),
        ) {
            if sort {
                keys.sort();
            }
            let ty = ColumnType::Set(Box::new(ColumnType::Varchar));
            let text = |s: &str| Value::Text(tidemark_cql::text::Text::from(s));
            let wire = enc(Value::Set(keys.iter().map(|k| text(k)).collect()));
            let mut want = keys.clone();
            want.sort();
            want.dedup();
            let want = enc(Value::Set(want.iter().map(|k| text(k)).collect()));
            let got = canonical(&ty, &wire);
            prop_assert_eq!(&got, &want);
            if in_text_order(&ty, &wire) {
                prop_assert_eq!(got.as_ptr(), wire.as_ptr());
            }
        }

        /// ListType keeps elements in the order written: a list holding no set or
        /// map is stored as sent, byte for byte, whatever the bytes are.
        #[test]
        fn lists_without_sets_are_kept_as_given(
            xs in proptest::collection::vec(proptest::collection::vec(any::<i32>(), 0..4), 0..8),
            junk in proptest::collection::vec(any::<u8>(), 0..3),
        ) {
            let ty = ColumnType::List(Box::new(ColumnType::List(Box::new(ColumnType::Int))));
            let v = Value::List(xs.into_iter().map(|l| Value::List(l.into_iter().map(Value::Int).collect())).collect());
            let mut b = enc(v).to_vec();
            b.extend_from_slice(&junk);
            let b = Bytes::from(b);
            prop_assert_eq!(canonical(&ty, &b), b);
        }

        /// Any bytes under any collection type: no panic, and a value that does
        /// not split is kept as it came.
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let b = Bytes::from(b);
            for ty in [
                ColumnType::Set(Box::new(ColumnType::Varchar)),
                ColumnType::Map(Box::new(ColumnType::Int), Box::new(ColumnType::Set(Box::new(ColumnType::Int)))),
                ColumnType::List(Box::new(ColumnType::Set(Box::new(ColumnType::BigInt)))),
            ] {
                let out = canonical(&ty, &b);
                if split(&b, 1).is_none() && split(&b, 2).is_none() {
                    prop_assert_eq!(&out, &b);
                }
                let _ = fields(&b);
            }
        }
    }
}
