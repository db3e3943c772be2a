//! Serialized collections (the protocol's list/set/map encoding) and the cell paths
//! of non-frozen collections: set elements and map keys are their own paths; list
//! elements get version-1 timeuuid paths, increasing for appends and, for prepends,
//! decreasing from a reference time in 2010 as Cassandra's `Lists.PrecisionTime`.

use super::order::{compare, timeuuid_time};
use super::store::Complex;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use tidemark_cql::ColumnType;

/// Splits a serialized collection into its elements (`[int n]` then `n` values; a
/// map has `2n`). Errors on truncated or negative-length input.
pub fn split(b: &[u8], per_entry: usize) -> Result<Vec<Bytes>, String> {
    let bad = || "invalid collection value".to_string();
    let n = i32::from_be_bytes(b.get(..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
    let n = usize::try_from(n).map_err(|_| bad())?;
    let mut pos = 4;
    let mut out = Vec::new();
    for _ in 0..n.checked_mul(per_entry).ok_or_else(bad)? {
        let len = i32::from_be_bytes(
            b.get(pos..pos + 4)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        );
        pos += 4;
        let len = usize::try_from(len).map_err(|_| "null inside a collection".to_string())?;
        out.push(Bytes::copy_from_slice(
            b.get(pos..pos + len).ok_or_else(bad)?,
        ));
        pos += len;
    }
    if pos != b.len() {
        return Err(bad());
    }
    Ok(out)
}

/// Serializes elements (for a map: key, value, key, value, ...) with a count of
/// `items.len() / per_entry`.
pub fn encode(items: &[Bytes], per_entry: usize) -> Bytes {
    let mut out = ((items.len() / per_entry.max(1)) as i32)
        .to_be_bytes()
        .to_vec();
    for i in items {
        super::collection::push_value(&mut out, Some(i));
    }
    Bytes::from(out)
}

/// Whether a column is stored cell-per-element (a non-frozen list, set, map or
/// user type).
pub fn is_multicell(ty: &ColumnType, type_text: &str) -> bool {
    matches!(
        ty,
        ColumnType::List(_) | ColumnType::Set(_) | ColumnType::Map(..) | ColumnType::Udt { .. }
    ) && !type_text.starts_with("frozen<")
}

/// The cell path of a non-frozen UDT field: its position as a 2-byte short.
pub fn field_path(index: usize) -> Bytes {
    Bytes::copy_from_slice(&(index as u16).to_be_bytes())
}

/// The fields of a serialized UDT value (`None` = null; missing trailing fields too).
pub fn split_udt(b: &[u8], n_fields: usize) -> Result<Vec<Option<Bytes>>, String> {
    let bad = || "invalid user type value".to_string();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let len = i32::from_be_bytes(
            b.get(pos..pos + 4)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        );
        pos += 4;
        if len < 0 {
            out.push(None);
            continue;
        }
        let len = len as usize;
        out.push(Some(Bytes::copy_from_slice(
            b.get(pos..pos + len).ok_or_else(bad)?,
        )));
        pos += len;
    }
    if out.len() > n_fields {
        return Err(bad());
    }
    out.resize(n_fields, None);
    Ok(out)
}

/// 100 ns intervals between 1582-10-15 and 1970-01-01.
const UUID_EPOCH_OFFSET: u64 = 0x01B2_1DD2_1381_4000;
/// 2010-01-01 in milliseconds: prepended list elements get times before it.
const PREPEND_REFERENCE_MS: u64 = 1_262_304_000_000;

static LAST_APPEND: AtomicU64 = AtomicU64::new(0);
static PREPENDS: AtomicU64 = AtomicU64::new(0);

fn timeuuid(time: u64, node: u64) -> Bytes {
    let time_low = time & 0xffff_ffff;
    let time_mid = (time >> 32) & 0xffff;
    let time_hi = (time >> 48) & 0x0fff;
    let msb = (time_low << 32) | (time_mid << 16) | 0x1000 | time_hi;
    let lsb = 0x8000_0000_0000_0000 | (node & 0x3fff_ffff_ffff_ffff);
    let mut v = msb.to_be_bytes().to_vec();
    v.extend(lsb.to_be_bytes());
    Bytes::from(v)
}

/// A fresh path for an appended list element: later than every earlier append.
pub fn append_path(node: usize) -> Bytes {
    let now = (super::clock::now_micros().max(0) as u64) * 10 + UUID_EPOCH_OFFSET;
    let mut last = LAST_APPEND.load(Ordering::Relaxed);
    loop {
        let t = now.max(last + 1);
        match LAST_APPEND.compare_exchange(last, t, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return timeuuid(t, node as u64 + 1),
            Err(l) => last = l,
        }
    }
}

/// A fresh path for a prepended list element: earlier than every earlier prepend and
/// every append (elements of one prepend keep their order when taken in reverse).
pub fn prepend_path(node: usize) -> Bytes {
    let n = PREPENDS.fetch_add(1, Ordering::Relaxed) + 1;
    let t = PREPEND_REFERENCE_MS * 10_000 + UUID_EPOCH_OFFSET - n;
    timeuuid(t, node as u64 + 1)
}

/// A list's elements in list order (cell paths sorted as timeuuids).
pub fn list_order(elems: &mut [(Bytes, super::cell::Cell)]) {
    elems.sort_by(|a, b| compare(&ColumnType::Timeuuid, &a.0, &b.0));
}

/// A non-frozen column's live cells in the order Cassandra keeps them (its cell
/// paths' comparator): list elements by path timeuuid, set elements and map entries
/// by element/key, UDT fields by position with `None` for a field that has no cell.
/// The value a reader sees and the per-element `WRITETIME`/`TTL` lists follow it.
pub fn cells_in_order<'a>(
    ty: &ColumnType,
    elems: &'a [(Bytes, super::cell::Cell)],
) -> Vec<Option<&'a (Bytes, super::cell::Cell)>> {
    let mut sorted: Vec<&(Bytes, super::cell::Cell)> = elems.iter().collect();
    match ty {
        ColumnType::List(_) => sorted.sort_by(|a, b| compare(&ColumnType::Timeuuid, &a.0, &b.0)),
        ColumnType::Set(et) => sorted.sort_by(|a, b| compare(et, &a.0, &b.0)),
        ColumnType::Map(kt, _) => sorted.sort_by(|a, b| compare(kt, &a.0, &b.0)),
        ColumnType::Udt { fields, .. } => {
            return (0..fields.len())
                .map(|i| {
                    let path = field_path(i);
                    elems.iter().find(|(p, _)| *p == path)
                })
                .collect()
        }
        _ => return Vec::new(),
    }
    sorted.into_iter().map(Some).collect()
}

/// The serialized value a reader sees for a non-frozen collection's live elements.
pub fn materialize(ty: &ColumnType, elems: &[(Bytes, super::cell::Cell)]) -> Bytes {
    let cells = cells_in_order(ty, elems);
    match ty {
        ColumnType::List(_) => {
            let items: Vec<Bytes> = cells
                .into_iter()
                .flatten()
                .map(|(_, c)| c.value.clone())
                .collect();
            encode(&items, 1)
        }
        ColumnType::Set(_) => {
            let items: Vec<Bytes> = cells
                .into_iter()
                .flatten()
                .map(|(p, _)| p.clone())
                .collect();
            encode(&items, 1)
        }
        ColumnType::Map(..) => {
            let items: Vec<Bytes> = cells
                .into_iter()
                .flatten()
                .flat_map(|(p, c)| [p.clone(), c.value.clone()])
                .collect();
            encode(&items, 2)
        }
        ColumnType::Udt { .. } => {
            let mut out = Vec::new();
            for cell in cells {
                super::collection::push_value(&mut out, cell.map(|(_, c)| &c.value[..]));
            }
            Bytes::from(out)
        }
        _ => Bytes::new(),
    }
}

/// The live list paths of a column in list order (for index-based operations).
pub fn live_list_paths(cx: Option<&Complex>, now: i32) -> Vec<(Bytes, Bytes)> {
    let Some(cx) = cx else { return Vec::new() };
    let mut elems: Vec<(Bytes, super::cell::Cell)> = cx
        .cells
        .iter()
        .filter(|(_, c)| c.is_live(now) && !cx.deletion.is_some_and(|d| d.shadows(c.timestamp)))
        .map(|(p, c)| (p.clone(), c.clone()))
        .collect();
    list_order(&mut elems);
    elems.into_iter().map(|(p, c)| (p, c.value)).collect()
}

/// For tests and dumps: the time of a list path.
pub fn path_time(path: &[u8]) -> u64 {
    timeuuid_time(u64::from_be_bytes(
        path.get(..8)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; 8]),
    ))
}

/// Appends `[int length][bytes]` (-1 for null).
pub fn push_value(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        Some(b) => {
            out.extend_from_slice(&(b.len() as i32).to_be_bytes());
            out.extend_from_slice(b);
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_encode_round_trip() {
        let items = vec![Bytes::from_static(b"a"), Bytes::from_static(b"bc")];
        let enc = encode(&items, 1);
        assert_eq!(split(&enc, 1).unwrap(), items);
        assert_eq!(split(&enc, 2).ok(), None);
        assert!(split(&[0, 0, 0, 1, 0, 0], 1).is_err());
        assert!(split(&[0xff, 0xff, 0xff, 0xff], 1).is_err());
    }

    #[test]
    fn prepends_sort_before_appends_and_each_other() {
        let a1 = append_path(0);
        let a2 = append_path(0);
        let p1 = prepend_path(0);
        let p2 = prepend_path(0);
        assert!(path_time(&a1) < path_time(&a2));
        assert!(path_time(&p2) < path_time(&p1));
        assert!(path_time(&p1) < path_time(&a1));
        assert_eq!(
            compare(&ColumnType::Timeuuid, &p1, &a1),
            std::cmp::Ordering::Less
        );
    }
}
