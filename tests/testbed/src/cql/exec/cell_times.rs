//! What `WRITETIME(c)` and `TTL(c)` answer. Cassandra 5.0 gives a simple (or frozen)
//! column one `bigint`/`int`, and a non-frozen collection or UDT a `list<bigint>` /
//! `list<int>` with one entry per cell in cell order (a UDT: one per field, null for a
//! field without a cell; a TTL entry is null for a cell that does not expire), null when
//! the column has no cell at all (`ColumnTimestamps` and `ResultSetBuilder` in
//! apache/cassandra 5.0). Snapshots and drivers decode these lists, so they follow
//! Cassandra's layout exactly.

use crate::cql::storage::cell::Cell;
use crate::cql::storage::collection::{cells_in_order, push_value};
use bytes::Bytes;
use tidemark_cql::ColumnType;

/// One cell's write time (µs) and remaining TTL (s, `None` when it does not expire).
pub type Times = (i64, Option<i32>);

/// The write times and TTLs of one column of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellMeta {
    /// A simple or frozen column: its one cell.
    Single(Times),
    /// A non-frozen collection or UDT: each cell in cell order; `None` is a UDT field
    /// without a cell.
    Multi(Vec<Option<Times>>),
}

impl CellMeta {
    /// The times of a non-frozen column's live cells at `now` (seconds), `None` when
    /// it has none (Cassandra answers null then).
    pub fn of_cells(ty: &ColumnType, elems: &[(Bytes, Cell)], now: i32) -> Option<CellMeta> {
        if elems.is_empty() {
            return None;
        }
        let times = cells_in_order(ty, elems)
            .into_iter()
            .map(|c| c.map(|(_, c)| (c.timestamp, c.remaining_ttl(now))))
            .collect();
        Some(CellMeta::Multi(times))
    }

    /// `WRITETIME(c)`: a bigint, or a `list<bigint>` for a non-frozen column.
    pub fn writetime(&self) -> Bytes {
        let be = |t: &Times| t.0.to_be_bytes().to_vec();
        match self {
            CellMeta::Single(t) => Bytes::from(be(t)),
            CellMeta::Multi(ts) => pack(ts.iter().map(|t| t.as_ref().map(be))),
        }
    }

    /// `MAXWRITETIME(c)`: the latest write time of the column's cells, a bigint
    /// whatever the column (null when no cell has one).
    pub fn max_writetime(&self) -> Option<Bytes> {
        let max = match self {
            CellMeta::Single(t) => Some(t.0),
            CellMeta::Multi(ts) => ts.iter().flatten().map(|t| t.0).max(),
        };
        max.map(|m| Bytes::copy_from_slice(&m.to_be_bytes()))
    }

    /// `TTL(c)`: an int (null when the cell does not expire), or a `list<int>` for a
    /// non-frozen column with a null entry for each cell that does not expire.
    pub fn ttl(&self) -> Option<Bytes> {
        let be = |t: &Times| t.1.map(|s| s.to_be_bytes().to_vec());
        match self {
            CellMeta::Single(t) => be(t).map(Bytes::from),
            CellMeta::Multi(ts) => Some(pack(ts.iter().map(|t| t.as_ref().and_then(be)))),
        }
    }
}

/// The result type of `WRITETIME(c)` (`ttl` false) or `TTL(c)` of a column.
pub fn result_type(multicell: bool, ttl: bool) -> ColumnType {
    let scalar = if ttl {
        ColumnType::Int
    } else {
        ColumnType::BigInt
    };
    if multicell {
        ColumnType::List(Box::new(scalar))
    } else {
        scalar
    }
}

/// A serialized list (`[int n]`, then `[int len][bytes]` or -1 per element).
fn pack(items: impl ExactSizeIterator<Item = Option<Vec<u8>>>) -> Bytes {
    let mut out = (items.len() as i32).to_be_bytes().to_vec();
    for i in items {
        push_value(&mut out, i.as_deref());
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cql::storage::collection::{append_path, field_path};

    fn cell(ts: i64, ttl: i32) -> Cell {
        if ttl > 0 {
            Cell::expiring(ts, Bytes::from_static(b"v"), ttl, 1_000)
        } else {
            Cell::live(ts, Bytes::from_static(b"v"))
        }
    }

    fn int(i: i32) -> Bytes {
        Bytes::copy_from_slice(&i.to_be_bytes())
    }

    /// Decodes a list<bigint>/list<int> with tidemark-cql (independent of `pack`).
    fn decode(ty: &ColumnType, b: &Bytes) -> tidemark_cql::Value {
        tidemark_cql::Value::from_bytes(ty, Some(b)).unwrap()
    }

    // The expected values are the real Cassandra 5.0.9 node's answers to the same
    // writes (tests/realdb_fidelity.rs, `writetime_and_ttl_match`, and a run of
    // realdb_support/cql_raw.py against the node): a set's and a map's entries in
    // element/key order, not write order, TTL null for a cell without TTL.
    #[test]
    fn set_and_map_entries_follow_element_order() {
        // st = {7} at 1000 with TTL, then st + {1} at 2000 without: [2000, 1000].
        let set = ColumnType::Set(Box::new(ColumnType::Int));
        let elems = vec![(int(7), cell(1000, 100)), (int(1), cell(2000, 0))];
        let m = CellMeta::of_cells(&set, &elems, 1_000).unwrap();
        assert_eq!(
            m.writetime(),
            Bytes::from_static(
                b"\0\0\0\x02\0\0\0\x08\0\0\0\0\0\0\x07\xd0\0\0\0\x08\0\0\0\0\0\0\x03\xe8"
            )
        );
        // TTL: [null, 100].
        assert_eq!(
            m.ttl().unwrap(),
            Bytes::from_static(b"\0\0\0\x02\xff\xff\xff\xff\0\0\0\x04\0\0\0\x64")
        );
        let list_int = ColumnType::List(Box::new(ColumnType::Int));
        assert_eq!(
            format!("{:?}", decode(&list_int, &m.ttl().unwrap())),
            format!(
                "{:?}",
                decode(
                    &list_int,
                    &Bytes::from_static(b"\0\0\0\x02\xff\xff\xff\xff\0\0\0\x04\0\0\0\x64")
                )
            )
        );
        // Map keys 'a' (1000) and '0' (2000): '0' sorts first.
        let map = ColumnType::Map(Box::new(ColumnType::Varchar), Box::new(ColumnType::Int));
        let elems = vec![
            (Bytes::from_static(b"a"), cell(1000, 0)),
            (Bytes::from_static(b"0"), cell(2000, 0)),
        ];
        let m = CellMeta::of_cells(&map, &elems, 1_000).unwrap();
        let list_bigint = ColumnType::List(Box::new(ColumnType::BigInt));
        let shown = format!("{:?}", decode(&list_bigint, &m.writetime()));
        assert!(
            shown.find("2000").unwrap() < shown.find("1000").unwrap(),
            "{shown}"
        );
    }

    #[test]
    fn list_entries_follow_list_order_and_udt_fields_their_position() {
        // Two appends: the earlier path first, whatever the write times.
        let list = ColumnType::List(Box::new(ColumnType::Int));
        let (p1, p2) = (append_path(0), append_path(0));
        let elems = vec![(p2, cell(1000, 0)), (p1, cell(3000, 0))];
        let m = CellMeta::of_cells(&list, &elems, 1_000).unwrap();
        assert_eq!(
            m,
            CellMeta::Multi(vec![Some((3000, None)), Some((1000, None))])
        );
        // MAXWRITETIME: the latest, not the last in list order.
        assert_eq!(
            m.max_writetime().unwrap(),
            Bytes::copy_from_slice(&3000i64.to_be_bytes())
        );
        assert_eq!(CellMeta::Single((5, None)).max_writetime().unwrap()[7], 5);
        // A UDT of three fields with a cell for the second only: [null, 2000, null]
        // (Cassandra 5.0.9: 00000003 ffffffff 00000008 ..07d0 ffffffff).
        let udt = ColumnType::Udt {
            keyspace: "ks".into(),
            name: "u".into(),
            fields: vec![
                ("a".into(), ColumnType::Int),
                ("b".into(), ColumnType::Int),
                ("c".into(), ColumnType::Int),
            ],
        };
        let m = CellMeta::of_cells(&udt, &[(field_path(1), cell(2000, 0))], 1_000).unwrap();
        assert_eq!(
            m.writetime(),
            Bytes::from_static(
                b"\0\0\0\x03\xff\xff\xff\xff\0\0\0\x08\0\0\0\0\0\0\x07\xd0\xff\xff\xff\xff"
            )
        );
        // No TTL anywhere: three null entries, not a null list.
        assert_eq!(
            m.ttl().unwrap(),
            Bytes::from_static(b"\0\0\0\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")
        );
        // No cell at all: null.
        assert_eq!(CellMeta::of_cells(&udt, &[], 1_000), None);
    }

    #[test]
    fn simple_cells_answer_scalars() {
        let m = CellMeta::Single((1000, None));
        assert_eq!(
            m.writetime(),
            Bytes::copy_from_slice(&1000i64.to_be_bytes())
        );
        assert_eq!(m.ttl(), None);
        assert_eq!(result_type(true, false).cql_name(), "list<bigint>");
        assert_eq!(result_type(false, true), ColumnType::Int);
    }
}
