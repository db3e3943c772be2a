//! One INSERT, UPDATE or DELETE → its [`TypedWrite`]: key columns, cells in
//! Cassandra's layout and what a column-less DELETE removes (see
//! [`crate::decode::cql::typed`] for the model and why it holds bytes).
//!
//! Types come from the schema learned from the capture (which also says whether a
//! collection is frozen), else from the Prepared bind metadata of the marker. A bound
//! value is the frame's `Bytes` sliced, elements of a non-frozen collection are
//! slices of it too; a literal is converted by [`super::value`] and encoded.

use std::sync::Arc;

use bytes::Bytes;
use tidemark_cql::statement::{
    AssignOp, ColumnRef, InsertValues, Modification, Operator, Relation, RelationLhs, Rhs, Term,
};
use tidemark_cql::wire::WireValue;
use tidemark_cql::{ColumnType, Value};

use super::bound::Bound;
use super::collection::{canonical, canonical_owned, fields, split};
use super::value::{encode, literal_value, Why};
use crate::decode::cql::schema::{Schema, TableSchema};
use crate::decode::cql::typed::{
    CellOp, Name, RowDeletion, TypedBound, TypedCell, TypedKey, TypedWrite,
};

const NO_TYPE: Why = "no type: the table's schema and the bind metadata are both unknown";

/// A column's type (shared with the cells that hold it) and whether it is frozen
/// (`None`: not known).
type ColType = (Arc<ColumnType>, Option<bool>);

struct Cx<'a> {
    schema: &'a Schema,
    keyspace: &'a str,
    table_name: &'a str,
    table: Option<&'a TableSchema>,
    bound: &'a Bound<'a>,
}

/// A term's serialized value.
enum Got {
    /// UNSET: the cell is left alone.
    Unset,
    Null,
    Bytes(Bytes, ColType),
    Untyped(Why),
}

impl Cx<'_> {
    /// The schema's type of `col`; frozen when its type text says so at the top.
    fn schema_type(&self, col: &str) -> Option<ColType> {
        self.table?;
        let (ty, frozen) = self
            .schema
            .parsed_column_type(self.keyspace, self.table_name, col)?;
        Some((ty, Some(frozen)))
    }

    /// `col`'s shared name: the prepared statement's when `term` is the marker bound
    /// to it, else looked up.
    fn name(&self, col: &str, term: &Term<'_>) -> Name {
        term.as_marker()
            .and_then(|m| self.bound.spec_name_shared(m.index, col))
            .unwrap_or_else(|| Name::new(col))
    }

    /// [`Cx::schema_type`] borrowed from the schema's cache: on the hot path of
    /// prepared INSERTs a bound value takes the bind metadata's type and only the
    /// frozenness is read from the schema, so cloning the schema's `Arc` (an atomic
    /// increment and decrement per column) bought nothing. Falls back to the owned
    /// lookup, which `owned` then holds, when the cache does not have the column.
    fn schema_type_ref<'s>(
        &'s self,
        col: &str,
        owned: &'s mut Option<ColType>,
    ) -> Option<(&'s Arc<ColumnType>, Option<bool>)> {
        self.table?;
        if let Some((ty, frozen)) =
            self.schema
                .cached_column_type(self.keyspace, self.table_name, col)
        {
            return Some((ty, Some(frozen)));
        }
        *owned = self.schema_type(col);
        owned.as_ref().map(|(ty, frozen)| (ty, *frozen))
    }

    /// The serialized value of `term` where the context expects `expected`.
    fn value(&self, term: &Term<'_>, expected: Option<&ColType>) -> Got {
        self.value_ref(term, expected.map(|(ty, frozen)| (ty, *frozen)))
    }

    /// [`Cx::value`] with the expected type borrowed (see [`Cx::schema_type_ref`]).
    fn value_ref(
        &self,
        term: &Term<'_>,
        expected: Option<(&Arc<ColumnType>, Option<bool>)>,
    ) -> Got {
        if let Term::Bind(m) = term {
            let wire = match self.bound.wire(m.index) {
                None | Some(WireValue::Null) => return Got::Null,
                Some(WireValue::Unset) => return Got::Unset,
                Some(WireValue::Bytes(b)) => b,
            };
            // The server decodes a bound value with the bind metadata's type.
            let ty = match (self.bound.spec_type_shared(m.index), expected) {
                (Some(t), Some((_, frozen))) => (t, frozen),
                (Some(t), None) => (t, None),
                (None, Some((t, frozen))) => (t.clone(), frozen),
                (None, None) => return Got::Untyped(NO_TYPE),
            };
            return Got::Bytes(wire.clone(), ty);
        }
        let Some((ty, frozen)) = expected else {
            return Got::Untyped(NO_TYPE);
        };
        let bind = |i: usize, t: &ColumnType| -> Result<Value, Why> {
            match self.bound.wire(i) {
                None | Some(WireValue::Null) => Ok(Value::Null),
                Some(WireValue::Unset) => Err("UNSET inside a literal"),
                Some(WireValue::Bytes(b)) => {
                    Value::decode(t, b).map_err(|_| "bound value does not decode")
                }
            }
        };
        match literal_value(term, ty, &bind) {
            Ok(Value::Null) => Got::Null,
            Ok(v) => Got::Bytes(encode(&v), (ty.clone(), frozen)),
            Err(why) => Got::Untyped(why),
        }
    }
}

/// The typed form of `m` on table `table` (`keyspace`, `table`), when known.
pub fn build(
    m: &Modification<'_>,
    schema: &Schema,
    table: Option<(&str, &str)>,
    bound: &Bound<'_>,
) -> TypedWrite {
    let cx = Cx {
        schema,
        keyspace: table.map_or("", |(k, _)| k),
        table_name: table.map_or("", |(_, t)| t),
        table: table.and_then(|(k, t)| schema.table(k, t)),
        bound,
    };
    let mut w = TypedWrite::default();
    match m {
        Modification::Insert(i) => match &i.values {
            InsertValues::Columns(pairs) => {
                // Asked per column, not collected: a vector per write showed in
                // allocation profiles. The bind metadata's key is checked once.
                let pk = bound.pk_columns();
                let is_key = |col: &str| match cx.table {
                    Some(t) => t
                        .partition_key
                        .iter()
                        .chain(&t.clustering)
                        .any(|k| k == col),
                    None => pk.clone().is_some_and(|mut pk| pk.any(|k| k == col)),
                };
                // Sized once: growing a vector of cells one push at a time was a
                // tenth of prepared-INSERT extraction (reallocations of large blocks).
                w.cells.reserve(pairs.len());
                for (c, term) in pairs {
                    let col = c.as_str();
                    if is_key(col) {
                        key(&cx, col, term, &mut w);
                    } else {
                        set(&cx, col, term, &mut w);
                    }
                }
            }
            InsertValues::Json { .. } => w.untyped("*", "INSERT JSON: values are JSON text"),
        },
        Modification::Update(u) => {
            w.cells.reserve(u.assignments.len());
            for a in &u.assignments {
                assignment(&cx, a.column.as_str(), &a.op, &mut w);
            }
            where_keys(&cx, &u.where_clause, &mut w);
        }
        Modification::Delete(d) => {
            for c in &d.columns {
                delete_target(&cx, c, &mut w);
            }
            where_keys(&cx, &d.where_clause, &mut w);
            if d.columns.is_empty() {
                w.deletion = row_deletion(&cx, &d.where_clause, &w);
                if w.deletion.is_none() {
                    w.untyped(
                        "WHERE",
                        "rows deleted: needs the table's schema and `=` or range restrictions",
                    );
                }
            }
        }
    }
    w
}

fn key(cx: &Cx<'_>, col: &str, term: &Term<'_>, w: &mut TypedWrite) {
    let mut owned = None;
    match cx.value_ref(term, cx.schema_type_ref(col, &mut owned)) {
        Got::Bytes(value, (ty, _)) => w.key.push(TypedKey {
            column: cx.name(col, term),
            value: canonical_owned(&ty, value),
            ty,
        }),
        Got::Untyped(why) => w.untyped(col, why),
        Got::Null | Got::Unset => w.untyped(col, "key column without a value"),
    }
}

fn cell(column: &str, ct: &ColType, op: CellOp) -> TypedCell {
    named_cell(Name::new(column), ct, op)
}

fn named_cell(column: Name, (ty, frozen): &ColType, op: CellOp) -> TypedCell {
    TypedCell {
        column,
        ty: ty.clone(),
        frozen: *frozen,
        op,
        path: None,
        value: None,
    }
}

/// `col = term`: one cell, or a clear plus element cells for a non-frozen collection.
fn set(cx: &Cx<'_>, col: &str, term: &Term<'_>, w: &mut TypedWrite) {
    let mut owned = None;
    let ct = cx.schema_type_ref(col, &mut owned);
    match cx.value_ref(term, ct) {
        Got::Unset => {}
        Got::Untyped(why) => w.untyped(col, why),
        Got::Null => {
            let ct = ct
                .map(|(ty, frozen)| (ty.clone(), frozen))
                .or_else(|| spec_col_type(cx, term));
            match ct {
                Some(ct) => w
                    .cells
                    .push(named_cell(cx.name(col, term), &ct, CellOp::Tombstone)),
                None => w.untyped(col, NO_TYPE),
            }
        }
        Got::Bytes(b, ct) if ct.1 == Some(false) && is_complex(&ct.0) => {
            let name = cx.name(col, term);
            w.cells.push(named_cell(name.clone(), &ct, CellOp::Clear));
            match elements(&ct, &b, CellOp::Set, name) {
                Some(cells) => w.cells.extend(cells),
                None => w.untyped(col, "collection bytes do not split into elements"),
            }
        }
        Got::Bytes(b, ct) => {
            let value = canonical_owned(&ct.0, b);
            // The type is moved into the cell, not cloned: one allocation less per
            // collection cell on the hot path of prepared INSERTs.
            let (ty, frozen) = ct;
            w.cells.push(TypedCell {
                column: cx.name(col, term),
                ty,
                frozen,
                op: CellOp::Set,
                path: None,
                value: Some(value),
            });
        }
    }
}

/// The bind metadata's type of a marker term, frozenness unknown.
fn spec_col_type(cx: &Cx<'_>, term: &Term<'_>) -> Option<ColType> {
    let i = term.as_marker()?.index;
    Some((cx.bound.spec_type_shared(i)?, None))
}

fn is_complex(ty: &ColumnType) -> bool {
    matches!(
        ty.effective(),
        ColumnType::List(_) | ColumnType::Set(_) | ColumnType::Map(..) | ColumnType::Udt { .. }
    )
}

/// Element cells of a whole non-frozen collection value. `op` is used for set, map
/// and UDT elements; list elements are always appends (their paths are timeuuids the
/// server chooses).
fn elements(ct: &ColType, b: &Bytes, op: CellOp, col: Name) -> Option<Vec<TypedCell>> {
    let mut out = Vec::new();
    let mk = |op, path: Option<Bytes>, value: Option<Bytes>| {
        let mut c = named_cell(col.clone(), ct, op);
        c.path = path;
        c.value = value;
        c
    };
    match ct.0.effective() {
        ColumnType::List(e) => {
            let list_op = match op {
                CellOp::Remove | CellOp::Prepend => op,
                _ => CellOp::Append,
            };
            for v in split(b, 1)? {
                out.push(mk(list_op, None, Some(canonical(e, &v?))));
            }
        }
        ColumnType::Set(e) => {
            for v in split(b, 1)? {
                out.push(mk(op, Some(canonical(e, &v?)), None));
            }
        }
        ColumnType::Map(kt, vt) => {
            let items = split(b, 2)?;
            for kv in items.chunks(2) {
                let k = canonical(kt, kv[0].as_ref()?);
                out.push(mk(op, Some(k), kv[1].as_ref().map(|v| canonical(vt, v))));
            }
        }
        ColumnType::Udt { fields: types, .. } => {
            for (i, f) in fields(b)?.into_iter().enumerate() {
                // A null field of a whole-UDT write writes no cell.
                if let Some(v) = f {
                    let v = match types.get(i) {
                        Some((_, ft)) => canonical(ft, &v),
                        None => v,
                    };
                    out.push(mk(op, Some(field_path(i)?), Some(v)));
                }
            }
        }
        _ => return None,
    }
    Some(out)
}

/// A UDT field's cell path: its index as a 2-byte short (`UserType.cellPathForField`).
fn field_path(i: usize) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(
        &i16::try_from(i).ok()?.to_be_bytes(),
    ))
}

fn assignment(cx: &Cx<'_>, col: &str, op: &AssignOp<'_>, w: &mut TypedWrite) {
    let ct = cx.schema_type(col);
    match op {
        AssignOp::Set(t) => set(cx, col, t, w),
        AssignOp::Add(t) | AssignOp::Subtract(t) | AssignOp::Prepend(t) => {
            let ct = ct.or_else(|| spec_col_type(cx, t));
            let Some(ct) = ct else {
                return w.untyped(col, NO_TYPE);
            };
            let sub = matches!(op, AssignOp::Subtract(_));
            // Operand type: the column's, except `map - {keys}` (a set of keys).
            let operand = match (ct.0.effective(), sub) {
                (ColumnType::Map(k, _), true) => {
                    (Arc::new(ColumnType::Set(k.clone())), Some(false))
                }
                _ => (ct.0.clone(), Some(false)),
            };
            let got = cx.value(t, Some(&operand));
            let (b, _) = match got {
                Got::Unset => return,
                Got::Untyped(why) => return w.untyped(col, why),
                Got::Null => return w.untyped(col, "null operand"),
                Got::Bytes(b, t) => (b, t),
            };
            if matches!(ct.0.effective(), ColumnType::Counter) {
                let Ok(delta) = <[u8; 8]>::try_from(&b[..]).map(i64::from_be_bytes) else {
                    return w.untyped(col, "counter operand is not 8 bytes");
                };
                let delta = if sub { delta.wrapping_neg() } else { delta };
                let mut c = cell(col, &ct, CellOp::Increment);
                c.value = Some(Bytes::copy_from_slice(&delta.to_be_bytes()));
                return w.cells.push(c);
            }
            let elem_op = match op {
                AssignOp::Prepend(_) => CellOp::Prepend,
                _ if sub => CellOp::Remove,
                _ => CellOp::Put,
            };
            let ct = (ct.0, Some(false));
            let cells = match (ct.0.effective(), sub) {
                // `map - {k1, k2}`: the operand is a set of keys.
                (ColumnType::Map(k, _), true) => {
                    let keys = (Arc::new(ColumnType::Set(k.clone())), Some(false));
                    elements(&keys, &b, CellOp::Remove, Name::new(col)).map(|cs| {
                        cs.into_iter()
                            .map(|mut c| {
                                c.ty = ct.0.clone();
                                c
                            })
                            .collect()
                    })
                }
                _ => elements(&ct, &b, elem_op, Name::new(col)),
            };
            match cells {
                Some(cells) => w.cells.extend(cells),
                None => w.untyped(col, "operand is not a collection of the column's type"),
            }
        }
        AssignOp::SetElement { key, value } => {
            let Some(ct) = ct.or_else(|| spec_col_type(cx, value)) else {
                return w.untyped(col, NO_TYPE);
            };
            let (kt, vt) = match ct.0.effective() {
                ColumnType::Map(k, v) => (Arc::new((**k).clone()), Arc::new((**v).clone())),
                ColumnType::List(e) => (Arc::new(ColumnType::Int), Arc::new((**e).clone())),
                _ => return w.untyped(col, "element of a column that is not a list or map"),
            };
            let k = match cx.value(key, Some(&(kt.clone(), Some(true)))) {
                Got::Bytes(b, _) => canonical(&kt, &b),
                Got::Untyped(why) => return w.untyped(col, why),
                _ => return w.untyped(col, "element key without a value"),
            };
            element_write(cx, col, &ct, k, value, vt, w);
        }
        AssignOp::SetField { field, value } => {
            let Some(ct) = ct else {
                return w.untyped(col, NO_TYPE);
            };
            let ColumnType::Udt { fields, .. } = ct.0.effective() else {
                return w.untyped(col, "field of a column that is not a UDT");
            };
            let Some((i, (_, ft))) = fields
                .iter()
                .enumerate()
                .find(|(_, (n, _))| n.as_str() == field.as_str())
            else {
                return w.untyped(col, "field the UDT does not have");
            };
            let Some(path) = field_path(i) else {
                return w.untyped(col, "field index past a short");
            };
            element_write(cx, col, &ct, path, value, Arc::new(ft.clone()), w);
        }
    }
}

/// `col[path] = value`: a put, or (value null) a removal.
fn element_write(
    cx: &Cx<'_>,
    col: &str,
    ct: &ColType,
    path: Bytes,
    value: &Term<'_>,
    vt: Arc<ColumnType>,
    w: &mut TypedWrite,
) {
    let (op, v) = match cx.value(value, Some(&(vt.clone(), Some(true)))) {
        Got::Unset => return,
        Got::Untyped(why) => return w.untyped(col, why),
        Got::Null => (CellOp::Remove, None),
        Got::Bytes(b, _) => (CellOp::Put, Some(canonical(&vt, &b))),
    };
    let mut c = cell(col, &(ct.0.clone(), Some(false)), op);
    c.path = Some(path);
    c.value = v;
    w.cells.push(c);
}

fn delete_target(cx: &Cx<'_>, c: &ColumnRef<'_>, w: &mut TypedWrite) {
    match c {
        ColumnRef::Column(col) => match cx.schema_type(col.as_str()) {
            Some(ct) => w.cells.push(cell(col.as_str(), &ct, CellOp::Tombstone)),
            None => w.untyped(col.as_str(), NO_TYPE),
        },
        ColumnRef::Element(col, key) => {
            let col = col.as_str();
            // Only the schema gives the column type here: the bind metadata of `m[?]`
            // types the key, not the column.
            let Some(ct) = cx.schema_type(col) else {
                return w.untyped(col, NO_TYPE);
            };
            let kt = match ct.0.effective() {
                ColumnType::Map(k, _) => Arc::new((**k).clone()),
                ColumnType::List(_) => Arc::new(ColumnType::Int),
                ColumnType::Set(e) => Arc::new((**e).clone()),
                _ => return w.untyped(col, "element of a column that is not a collection"),
            };
            match cx.value(key, Some(&(kt, Some(true)))) {
                Got::Bytes(b, _) => {
                    let mut c = cell(col, &(ct.0, Some(false)), CellOp::Remove);
                    c.path = Some(b);
                    w.cells.push(c);
                }
                Got::Untyped(why) => w.untyped(col, why),
                _ => w.untyped(col, "element key without a value"),
            }
        }
        ColumnRef::Field(col, f) => {
            let col = col.as_str();
            let Some(ct) = cx.schema_type(col) else {
                return w.untyped(col, NO_TYPE);
            };
            let idx = match ct.0.effective() {
                ColumnType::Udt { fields, .. } => {
                    fields.iter().position(|(n, _)| n.as_str() == f.as_str())
                }
                _ => None,
            };
            match idx.and_then(field_path) {
                Some(path) => {
                    let mut c = cell(col, &(ct.0, Some(false)), CellOp::Remove);
                    c.path = Some(path);
                    w.cells.push(c);
                }
                None => w.untyped(col, "field the column's UDT does not have"),
            }
        }
    }
}

/// Key columns fixed by `=` in WHERE.
fn where_keys(cx: &Cx<'_>, rels: &[Relation<'_>], w: &mut TypedWrite) {
    for r in rels {
        if let (RelationLhs::Column(c), Operator::Eq, Rhs::Term(t)) = (&r.lhs, r.op, &r.rhs) {
            key(cx, c.as_str(), t, w);
        }
    }
}

/// What a column-less DELETE removes, from the clustering restrictions; `None`
/// without the schema or for restrictions this does not model (IN, tuples).
fn row_deletion(cx: &Cx<'_>, rels: &[Relation<'_>], w: &TypedWrite) -> Option<RowDeletion> {
    let t = cx.table?;
    let fixed = |c: &str| {
        w.key
            .iter()
            .find(|k| k.column.as_str() == c)
            .map(|k| k.value.clone())
    };
    let mut prefix = Vec::new();
    let mut rest = t.clustering.iter();
    for c in rest.by_ref() {
        match fixed(c) {
            Some(v) => prefix.push(v),
            None => {
                let (mut start, mut end) = (
                    TypedBound {
                        prefix: prefix.clone(),
                        inclusive: true,
                    },
                    TypedBound {
                        prefix: prefix.clone(),
                        inclusive: true,
                    },
                );
                let mut any = false;
                for r in rels {
                    let RelationLhs::Column(rc) = &r.lhs else {
                        continue;
                    };
                    if rc.as_str() != c {
                        continue;
                    }
                    let Rhs::Term(term) = &r.rhs else {
                        return None;
                    };
                    let Got::Bytes(b, _) = cx.value(term, cx.schema_type(c).as_ref()) else {
                        return None;
                    };
                    let side = match r.op {
                        Operator::Gt | Operator::Gte => &mut start,
                        Operator::Lt | Operator::Lte => &mut end,
                        _ => return None,
                    };
                    side.prefix.push(b);
                    side.inclusive = matches!(r.op, Operator::Gte | Operator::Lte);
                    any = true;
                }
                if prefix.is_empty() && !any {
                    return Some(RowDeletion::Partition);
                }
                return Some(RowDeletion::Range { start, end });
            }
        }
    }
    Some(if t.clustering.is_empty() {
        RowDeletion::Partition
    } else {
        RowDeletion::Row
    })
}

#[cfg(test)]
#[path = "cells_tests.rs"]
mod tests;
