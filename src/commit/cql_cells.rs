//! A CQL `write` line → the store's [`CqlPayload`]: cells with their real value
//! bytes and CQL type, from the decoder's typed form
//! ([`TypedWrite`](crate::decode::cql::typed::TypedWrite)).
//!
//! Cassandra's layout is kept (see `crate::version::cell`): a whole non-frozen
//! collection overwrite is a collection tombstone at timestamp - 1 plus element
//! cells, counters are counter shards holding the delta, nulls and deleted columns
//! are tombstones. A column the decoder could not type (no schema, no bind metadata,
//! INSERT JSON) falls back to its `SELECT JSON` text with `cql_type` `"json"`, which
//! says so in the cell; so does a whole line without a typed form.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use tidemark_cql::ColumnType;

use crate::decode::cql::typed::{CellOp as Op, RowDeletion, TypedBound, TypedCell, TypedWrite};
use crate::decode::records::WriteRecord;
use crate::store::{
    ByteBuf, Cell, CellKind, CellOp, ClusteringBound, CqlPayload, Deletion, RangeDeletion,
};

/// Timing shared by every cell of one line.
struct Timing {
    timestamp: i64,
    now_secs: i64,
    ttl: Option<u32>,
}

impl Timing {
    fn of(rec: &WriteRecord, request_time_ns: u64) -> Timing {
        Timing {
            timestamp: rec
                .timestamp
                .unwrap_or((request_time_ns / 1_000).min(i64::MAX as u64) as i64),
            now_secs: (request_time_ns / 1_000_000_000) as i64,
            ttl: rec
                .ttl
                .and_then(|t| u32::try_from(t).ok())
                .filter(|t| *t > 0),
        }
    }

    /// A cell of `kind` at the line's timestamp, its TTL and deletion time set.
    fn cell(
        &self,
        column: Arc<str>,
        cql_type: Arc<str>,
        op: CellOp,
        deleted: bool,
        value: Bytes,
    ) -> Cell {
        let (kind, ttl, ldt) = match (deleted, op, self.ttl) {
            (true, ..) => (CellKind::Tombstone, None, Some(self.now_secs)),
            (false, CellOp::Increment, _) => (CellKind::CounterShard, None, None),
            (false, _, Some(t)) => (
                CellKind::Expiring,
                Some(t),
                Some(self.now_secs + i64::from(t)),
            ),
            (false, _, None) => (CellKind::Live, None, None),
        };
        Cell {
            column,
            path: None,
            value,
            cql_type,
            timestamp: self.timestamp,
            ttl,
            local_deletion_time: ldt,
            kind,
            op,
        }
    }

    fn deletion(&self, timestamp: i64) -> Deletion {
        Deletion {
            timestamp,
            local_deletion_time: self.now_secs,
        }
    }
}

/// Cells and deletions of a CQL line.
pub fn cql_payload(rec: &WriteRecord, request_time_ns: u64) -> CqlPayload {
    let t = Timing::of(rec, request_time_ns);
    let mut p = CqlPayload::default();
    let Some(typed) = &rec.extras.cql else {
        json_cells(rec, &t, |_| true, &mut p);
        if rec.op == "delete" && rec.columns_deleted.as_deref().unwrap_or(&[]).is_empty() {
            p.row_deletion = Some(t.deletion(t.timestamp));
        }
        return p;
    };
    for c in &typed.cells {
        p.cells.push(typed_cell(c, &t));
    }
    if typed.untyped.iter().any(|(c, _)| c != "WHERE") {
        let all = typed.untyped.iter().any(|(c, _)| c == "*");
        json_cells(rec, &t, |col| all || is_untyped(typed, col), &mut p);
    }
    match &typed.deletion {
        Some(RowDeletion::Row) => p.row_deletion = Some(t.deletion(t.timestamp)),
        Some(RowDeletion::Partition) => p.partition_deletion = Some(t.deletion(t.timestamp)),
        Some(RowDeletion::Range { start, end }) => p.range_deletions.push(RangeDeletion {
            start: bound(start),
            end: bound(end),
            deletion: t.deletion(t.timestamp),
        }),
        // Without the schema, which rows a DELETE removes is not known: the line's
        // key is kept as a row deletion, as format 2 did.
        None if rec.op == "delete" && typed.untyped.iter().any(|(c, _)| c == "WHERE") => {
            p.row_deletion = Some(t.deletion(t.timestamp));
        }
        None => {}
    }
    p
}

fn is_untyped(typed: &TypedWrite, col: &str) -> bool {
    typed.untyped.iter().any(|(c, _)| c == col)
}

fn bound(b: &TypedBound) -> ClusteringBound {
    ClusteringBound {
        prefix: b.prefix.iter().map(|v| ByteBuf::from(v.to_vec())).collect(),
        inclusive: b.inclusive,
    }
}

fn typed_cell(c: &TypedCell, t: &Timing) -> Cell {
    let (op, deleted) = match c.op {
        Op::Set => (CellOp::Set, false),
        Op::Append => (CellOp::Append, false),
        Op::Prepend => (CellOp::Prepend, false),
        Op::Put => (CellOp::Put, false),
        Op::Remove => (CellOp::Remove, true),
        Op::Increment => (CellOp::Increment, false),
        Op::Tombstone | Op::Clear => (CellOp::Tombstone, true),
    };
    // The frame's bytes, shared: no copy per cell.
    let value = if deleted && c.op != Op::Remove {
        Bytes::new()
    } else {
        c.value.clone().unwrap_or_default()
    };
    let mut cell = t.cell(
        c.column.shared().clone(),
        shared::spelled_shared(&c.ty, c.frozen == Some(true)),
        op,
        deleted,
        value,
    );
    cell.path = c.path.as_ref().map(|p| p.to_vec());
    if c.op == Op::Clear {
        // Cassandra's collection deletion of an overwrite shadows only older cells.
        cell.timestamp = t.timestamp.saturating_sub(1);
    }
    cell
}

/// The type as CQL spells it: `frozen<...>` around a frozen column's type and
/// around every nested collection or UDT (which CQL requires to be frozen).
pub fn spell(ty: &ColumnType, frozen: bool) -> String {
    use ColumnType as T;
    let inner = |t: &ColumnType| spell(t, true);
    let name = match ty.effective() {
        T::List(e) => format!("list<{}>", inner(e)),
        T::Set(e) => format!("set<{}>", inner(e)),
        T::Map(k, v) => format!("map<{}, {}>", inner(k), inner(v)),
        T::Tuple(ts) => format!(
            "tuple<{}>",
            ts.iter().map(inner).collect::<Vec<_>>().join(", ")
        ),
        T::Vector { element, dimension } => format!("vector<{}, {dimension}>", inner(element)),
        other => other.cql_name(),
    };
    let freezable = matches!(
        ty.effective(),
        T::List(_) | T::Set(_) | T::Map(..) | T::Udt { .. }
    );
    if frozen && freezable {
        format!("frozen<{name}>")
    } else {
        name
    }
}

/// Cells of the columns `want` accepts, as `SELECT JSON` text (`cql_type` `json`):
/// assigned values, deleted columns and collection operations.
fn json_cells(rec: &WriteRecord, t: &Timing, want: impl Fn(&str) -> bool, p: &mut CqlPayload) {
    let json = || shared::name("json");
    if let Value::Object(values) = &*rec.values {
        for (column, value) in values.iter().filter(|(c, _)| want(c)) {
            let deleted = value.is_null();
            let op = if deleted {
                CellOp::Tombstone
            } else {
                CellOp::Set
            };
            let bytes = if deleted {
                Bytes::new()
            } else {
                Bytes::from(value.to_string())
            };
            p.cells
                .push(t.cell(shared::name(column), json(), op, deleted, bytes));
        }
    }
    if rec.op == "delete" {
        for c in rec.columns_deleted.iter().flatten().filter(|c| want(c)) {
            p.cells.push(t.cell(
                shared::name(c),
                json(),
                CellOp::Tombstone,
                true,
                Bytes::new(),
            ));
        }
    }
    // Collection operations have no JSON cell of their own: the operation object
    // is kept whole, with the operation named in `op`.
    if rec.extras.cql.is_some() {
        for o in rec
            .collection_ops
            .iter()
            .flat_map(|v| v.as_array())
            .flatten()
        {
            let Some(col) = o.get("column").and_then(Value::as_str) else {
                continue;
            };
            if !want(col) {
                continue;
            }
            let (op, deleted) = match o.get("op").and_then(Value::as_str).unwrap_or("") {
                "append" => (CellOp::Append, false),
                "prepend" => (CellOp::Prepend, false),
                "increment" | "decrement" => (CellOp::Increment, false),
                n if n.starts_with("remove") => (CellOp::Remove, true),
                _ => (CellOp::Put, false),
            };
            let mut cell = t.cell(
                shared::name(col),
                json(),
                op,
                deleted,
                Bytes::from(o.to_string()),
            );
            if op == CellOp::Increment {
                // A counter shard's value is a binary delta; JSON text is not one.
                cell.kind = CellKind::Live;
            }
            p.cells.push(cell);
        }
    }
}

/// Column names and spelled types shared by every cell that names them: a tap holds
/// tens of thousands of cells between group commits, and two heap strings per cell
/// were a fifth of a CQL tap's time (allocating, then freeing them after the
/// commit). Per thread, and bounded: garbage traffic naming endless columns only
/// makes the tables start over.
mod shared {
    use std::cell::RefCell;
    use std::collections::{HashMap, HashSet};
    use std::sync::Arc;

    use tidemark_cql::ColumnType;

    /// Entries kept per table before it starts over.
    const LIMIT: usize = 4096;

    thread_local! {
        static NAMES: RefCell<HashSet<Arc<str>>> = RefCell::new(HashSet::new());
        static TYPES: RefCell<HashMap<ColumnType, [Option<Arc<str>>; 2]>> =
            RefCell::new(HashMap::new());
    }

    /// `name`, shared.
    pub fn name(name: &str) -> Arc<str> {
        NAMES.with(|names| {
            let mut names = names.borrow_mut();
            if let Some(shared) = names.get(name) {
                return shared.clone();
            }
            if names.len() >= LIMIT {
                names.clear();
            }
            let shared: Arc<str> = Arc::from(name);
            names.insert(shared.clone());
            shared
        })
    }

    /// Slots of the front cache of [`spelled_shared`].
    const RECENT_SLOTS: usize = 64;

    type Recent = [Option<(Arc<ColumnType>, bool, Arc<str>)>; RECENT_SLOTS];

    thread_local! {
        /// Recently spelled types by the address of their shared `Arc`: a prepared
        /// statement's cells point at the same few types, so most lookups end here
        /// without hashing a type (hashing it per cell was 2 % of a CQL tap). Each
        /// slot holds its `Arc`, so a cached address cannot be reused by another
        /// type while it is cached.
        static RECENT: RefCell<Recent> = RefCell::new(std::array::from_fn(|_| None));
    }

    /// [`spelled`] of a type shared by `Arc`, looked up by its address first.
    pub fn spelled_shared(ty: &Arc<ColumnType>, frozen: bool) -> Arc<str> {
        let slot = ((Arc::as_ptr(ty) as usize >> 4) ^ usize::from(frozen)) % RECENT_SLOTS;
        RECENT.with(|recent| {
            let mut recent = recent.borrow_mut();
            if let Some((t, f, s)) = &recent[slot] {
                if Arc::ptr_eq(t, ty) && *f == frozen {
                    return s.clone();
                }
            }
            let s = spelled(ty, frozen);
            recent[slot] = Some((ty.clone(), frozen, s.clone()));
            s
        })
    }

    /// [`super::spell`]`(ty, frozen)`, shared.
    pub fn spelled(ty: &ColumnType, frozen: bool) -> Arc<str> {
        TYPES.with(|types| {
            let mut types = types.borrow_mut();
            if let Some(Some(shared)) = types.get(ty).map(|s| &s[usize::from(frozen)]) {
                return shared.clone();
            }
            if types.len() >= LIMIT {
                types.clear();
            }
            let shared: Arc<str> = Arc::from(super::spell(ty, frozen));
            types.entry(ty.clone()).or_default()[usize::from(frozen)] = Some(shared.clone());
            shared
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn equal_names_and_types_share_one_string() {
            assert!(Arc::ptr_eq(&name("c1"), &name("c1")));
            let map = ColumnType::Map(Box::new(ColumnType::Int), Box::new(ColumnType::Varchar));
            let (a, b) = (spelled(&map, true), spelled(&map, true));
            assert!(Arc::ptr_eq(&a, &b));
            assert_eq!(&*a, "frozen<map<int, text>>");
            assert_eq!(&*spelled(&map, false), "map<int, text>");
        }

        #[test]
        fn the_front_cache_answers_as_the_table_does() {
            let map = Arc::new(ColumnType::Map(
                Box::new(ColumnType::Int),
                Box::new(ColumnType::Varchar),
            ));
            for _ in 0..3 {
                for frozen in [false, true] {
                    assert_eq!(spelled_shared(&map, frozen), spelled(&map, frozen));
                }
            }
            // Many types through the same slots: each answer is its own type's.
            let types: Vec<Arc<ColumnType>> = (0..200)
                .map(|i| {
                    Arc::new(match i % 3 {
                        0 => ColumnType::List(Box::new(ColumnType::Int)),
                        1 => ColumnType::Set(Box::new(ColumnType::Varchar)),
                        _ => ColumnType::BigInt,
                    })
                })
                .collect();
            for t in types.iter().chain(types.iter().rev()) {
                assert_eq!(spelled_shared(t, true), spelled(t, true));
            }
        }
    }
}
