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

use bytes::Bytes;
use tidemark_cql::ColumnType;

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
    /// Column name as in the schema.
    pub column: String,
    /// The column's type (for element cells the collection's type: path and value
    /// types follow from it).
    pub ty: ColumnType,
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
    pub column: String,
    pub ty: ColumnType,
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
