//! The typed form of a CQL write: key columns, cells and deletions as the wire's
//! bytes plus their CQL type, built beside the JSON `write` line (issue #11).
//!
//! Why bytes and not JSON: Cassandra breaks write-timestamp ties by comparing the
//! serialized cell values (unsigned bytes, `Cells.compareValues`), and a restore must
//! write back exactly what the client wrote; JSON text can reproduce neither. Bound
//! values are slices of the frame's `Bytes` (no copy, no re-encoding); literals are
//! converted the way Cassandra converts them for the column's type, then encoded.
//!
//! Cells follow Cassandra's layout (see `crate::version::cell`): a simple or frozen
//! column is one cell; a non-frozen collection or UDT is one cell per element with
//! a [`TypedCell::path`], and a whole-collection overwrite is a [`CellOp::Clear`]
//! (the collection deletion Cassandra writes at timestamp - 1) plus element cells.
//! Where no type is known (no schema, no bind metadata) there is no typed cell: the
//! column is listed in [`TypedWrite::untyped`] with the reason, never guessed.

use std::sync::Arc;

use bytes::Bytes;
use tidemark_cql::ColumnType;

pub use name::Name;

/// What a cell does to its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellOp {
    /// The value of a simple or frozen column, or one element of a whole non-frozen
    /// map, set or UDT written at once.
    Set,
    /// A list element added at the end (its timeuuid path is chosen by the server,
    /// so `path` is `None`). Whole-list overwrites are a clear plus appends.
    Append,
    /// A list element added at the front (path chosen by the server).
    Prepend,
    /// One element written by its key: a map entry (`path` = key bytes), a set
    /// element (`path` = element bytes, no value), a list position (`path` = the
    /// index as a 4-byte int, the server resolves it), a UDT field (`path` = the
    /// field index as a 2-byte short).
    Put,
    /// One element deleted: by key, set element, list index or UDT field (`path`
    /// set), or a list value removed wherever it is (`path` `None`, `value` the
    /// element).
    Remove,
    /// A counter change: `value` is the signed delta as a big-endian i64
    /// (decrements are negative).
    Increment,
    /// The whole column deleted (`DELETE c`, or assigned null).
    Tombstone,
    /// The collection deletion before a whole non-frozen collection overwrite:
    /// Cassandra writes it at the write timestamp minus one.
    Clear,
}

/// One cell of the row.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedCell {
    /// Column name as in the schema (shared: see [`Name`]).
    pub column: Name,
    /// The column's type (for element cells the collection's type: path and value
    /// types follow from it). Shared by every cell of the column and by the
    /// prepared statement it came from: a cloned `map<text, int>` was two
    /// allocations per cell, and the full enum made a write's cells too large for
    /// the allocator's small bins.
    pub ty: Arc<ColumnType>,
    /// Whether the column is frozen: `None` when the type came from bind metadata
    /// only (the protocol does not say); such collections are kept as one cell.
    pub frozen: Option<bool>,
    pub op: CellOp,
    /// Element path (see [`CellOp`]).
    pub path: Option<Bytes>,
    /// Serialized value (without the `[bytes]` length); `None` for tombstones,
    /// clears, set elements and element removals by key.
    pub value: Option<Bytes>,
}

/// One key column fixed by equality, or one end of a clustering range.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedKey {
    pub column: Name,
    pub ty: Arc<ColumnType>,
    pub value: Bytes,
}

/// One end of a clustering range: the clustering prefix and whether it is included.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TypedBound {
    pub prefix: Vec<Bytes>,
    pub inclusive: bool,
}

/// What a DELETE without columns removes.
#[derive(Debug, Clone, PartialEq)]
pub enum RowDeletion {
    /// Every clustering column fixed: one row.
    Row,
    /// Only the partition key fixed: the whole partition.
    Partition,
    /// A clustering prefix or range.
    Range { start: TypedBound, end: TypedBound },
}

/// The typed form of one `write` line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TypedWrite {
    /// Partition and clustering columns fixed by equality, in the order given.
    pub key: Vec<TypedKey>,
    pub cells: Vec<TypedCell>,
    /// What a column-less DELETE removes; `None` for other writes, and for a
    /// DELETE whose rows cannot be told without the schema (then in `untyped`).
    pub deletion: Option<RowDeletion>,
    /// Columns (or `WHERE`) with no typed form, and why.
    pub untyped: Vec<(String, &'static str)>,
}

impl TypedWrite {
    /// Records that `column` has no typed form.
    pub fn untyped(&mut self, column: &str, why: &'static str) {
        self.untyped.push((column.to_string(), why));
    }
}

/// Column names shared between the cells that name them.
mod name {
    use std::cell::RefCell;
    use std::collections::HashSet;
    use std::fmt;
    use std::ops::Deref;
    use std::sync::Arc;

    /// Names kept per thread before the table starts over (garbage traffic naming
    /// endless columns must not grow it without bound).
    const LIMIT: usize = 4096;

    thread_local! {
        static NAMES: RefCell<HashSet<Arc<str>>> = RefCell::new(HashSet::new());
    }

    /// A column name, shared: every write of a prepared INSERT names the same ten
    /// columns, and a heap string per cell (made, then freed with the record) was a
    /// measurable part of extraction. The store's cells take the same `Arc<str>`.
    #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct Name(Arc<str>);

    impl Name {
        /// `name`, shared with every other `Name` of the same text on this thread.
        pub fn new(name: &str) -> Name {
            NAMES.with(|names| {
                let mut names = names.borrow_mut();
                if let Some(shared) = names.get(name) {
                    return Name(shared.clone());
                }
                if names.len() >= LIMIT {
                    names.clear();
                }
                let shared: Arc<str> = Arc::from(name);
                names.insert(shared.clone());
                Name(shared)
            })
        }

        pub fn as_str(&self) -> &str {
            &self.0
        }

        /// The shared text.
        pub fn shared(&self) -> &Arc<str> {
            &self.0
        }
    }

    impl Deref for Name {
        type Target = str;
        fn deref(&self) -> &str {
            &self.0
        }
    }

    impl PartialEq<str> for Name {
        fn eq(&self, other: &str) -> bool {
            &*self.0 == other
        }
    }

    impl PartialEq<&str> for Name {
        fn eq(&self, other: &&str) -> bool {
            &*self.0 == *other
        }
    }

    /// As a `String` prints.
    impl fmt::Debug for Name {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt::Debug::fmt(&*self.0, f)
        }
    }

    impl fmt::Display for Name {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn equal_names_share_one_string() {
            let (a, b) = (Name::new("c1"), Name::new("c1"));
            assert!(Arc::ptr_eq(a.shared(), b.shared()));
            assert_eq!(a, "c1");
            assert_eq!(format!("{a:?} {a}"), "\"c1\" c1");
        }
    }
}
