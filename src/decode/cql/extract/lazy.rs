//! An INSERT's `values` kept as the frame's bytes and rendered when the line is read.
//!
//! Why: rendering every bound value of a prepared INSERT to JSON was about a sixth of
//! CQL decode time (issue #11's profile), for lines that are mostly never printed —
//! the store keeps the typed cells (`extras.cql`). Each bound value is kept as its
//! bytes (a refcounted slice of the frame) with the types the eager path would have
//! used, and [`render_bound`] runs exactly that path: decode with the bind
//! metadata's type (else the column's), then normalize with the column's type.
//!
//! [`Values`] mirrors the `serde_json::Map` the eager path filled, operation for
//! operation (an insert of a known column replaces it in place; a removal swaps the
//! last entry into the gap, as the map does with `preserve_order`), so the rendered
//! object has the same keys in the same order.
//!
//! The store keeps the same pieces instead of the JSON ([`Values::kept`], rendered
//! back by [`render_kept`] when `log --json` prints the line): the tap then renders
//! no bound value at all, and the dedupe identity digests those bytes.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value as Json};
use tidemark_cql::types::format;
use tidemark_cql::wire::{Reader, Writer};
use tidemark_cql::{ColumnType, ParseError};

use super::bound::typed;
use super::order::normalize;
use crate::decode::cql::typed::{CellOp, Name, TypedCell, TypedWrite};
use crate::decode::records::{LineValue, RawForm, RenderLater};

/// One column's value.
#[derive(Debug)]
pub enum Entry {
    /// Already rendered (literals, nulls).
    Ready(Json),
    /// A bound value, rendered when read.
    ///
    /// The column name and both types are shared with the prepared statement and
    /// the schema (an `Arc` each), not copied per write: a prepared INSERT's ten
    /// columns made thirty heap copies per line before.
    Bound {
        bytes: Bytes,
        /// The bind metadata's type for the marker, if the statement was prepared.
        spec: Option<Arc<ColumnType>>,
        /// The column's schema type, if known.
        column: Option<Arc<ColumnType>>,
    },
}

/// A bound value as the eager path renders it (`Bound::render` then
/// `literal::render`'s normalize): decoded with the bind metadata's type (else
/// the column's), then normalized with the column's type.
fn render_bound(bytes: &Bytes, spec: Option<&ColumnType>, column: Option<&ColumnType>) -> Json {
    let decode_as = spec.or(column.map(ColumnType::effective));
    let mut j = match decode_as {
        Some(ty) => typed(ty, bytes),
        None => Json::String(format::blob(bytes)),
    };
    if let Some(t) = column {
        normalize(&mut j, t);
    }
    j
}

/// The bytes of a cell without a value (a shared cell always has one).
static NO_BYTES: Bytes = Bytes::new();

/// A slot as [`Values::view`] reads it.
enum View<'s> {
    Ready(&'s Json),
    /// The bytes, the bind metadata's type and the column's.
    Bound(&'s Bytes, Option<&'s ColumnType>, Option<&'s ColumnType>),
}

/// An INSERT's values in the order the eager map would hold them.
#[derive(Default, Debug)]
pub struct Values {
    slots: Vec<Slot>,
    /// The statement's typed write, which [`Slot::Cell`]s read their value from.
    typed: Option<Arc<TypedWrite>>,
}

/// One column of [`Values`].
#[derive(Debug)]
enum Slot {
    /// A column with its own name and entry.
    Own(Name, Entry),
    /// A bound value that is exactly cell `index` of the typed write: the same
    /// name, the same bytes, decoded with the same (bind metadata) type. Kept as
    /// the index, not as a second copy: the name, the bytes and the type each cost
    /// an atomic reference count increment and decrement per column, and those
    /// were a quarter of decode time (issue #11's profile).
    Cell {
        index: u32,
        /// Whether the column's schema type is known (then it equals the cell's
        /// type, which [`render_bound`] normalizes with).
        column_known: bool,
    },
}

impl Values {
    /// Room for `n` columns at once (growing one push at a time showed in profiles).
    pub fn with_capacity(n: usize) -> Self {
        Values {
            slots: Vec::with_capacity(n),
            typed: None,
        }
    }

    /// The cell a [`Slot::Cell`] names (present: [`Values::insert_cell`] checked).
    fn cell(&self, index: u32) -> &TypedCell {
        &self
            .typed
            .as_ref()
            .expect("a cell slot has its typed write")
            .cells[index as usize]
    }

    fn slot_name<'s>(&'s self, slot: &'s Slot) -> &'s Name {
        match slot {
            Slot::Own(name, _) => name,
            Slot::Cell { index, .. } => &self.cell(*index).column,
        }
    }

    /// A slot as the entry it is or stands for: a [`Slot::Cell`] is the bound
    /// entry with the cell's bytes and its type as the bind metadata's, and as the
    /// column's when that is known (they are equal). Rendering and the kept form
    /// read slots through this one view, so the sharing changes neither.
    fn view<'s>(&'s self, slot: &'s Slot) -> View<'s> {
        match slot {
            Slot::Own(_, Entry::Ready(j)) => View::Ready(j),
            Slot::Own(
                _,
                Entry::Bound {
                    bytes,
                    spec,
                    column,
                },
            ) => View::Bound(bytes, spec.as_deref(), column.as_deref()),
            Slot::Cell {
                index,
                column_known,
            } => {
                let cell = self.cell(*index);
                let ty = Some(&*cell.ty);
                let bytes = cell.value.as_ref().unwrap_or(&NO_BYTES);
                View::Bound(bytes, ty, if *column_known { ty } else { None })
            }
        }
    }

    /// Whether a slot is still to be rendered.
    fn pending(&self) -> bool {
        self.slots
            .iter()
            .any(|s| !matches!(s, Slot::Own(_, Entry::Ready(_))))
    }

    /// As `Map::insert`: a column already present keeps its place.
    pub fn insert(&mut self, column: Name, e: Entry) {
        self.put(Slot::Own(column, e));
    }

    /// [`Values::insert`] of a bound value that is cell `index` of `typed` with
    /// the bytes and type the eager path would render (the caller checked that, see
    /// [`Values::cell_matches`]).
    pub fn insert_cell(&mut self, typed: &Arc<TypedWrite>, index: usize, column_known: bool) {
        let (Some(cell), Ok(index)) = (typed.cells.get(index), u32::try_from(index)) else {
            return;
        };
        if self.typed.is_none() {
            self.typed = Some(typed.clone());
        }
        debug_assert!(cell.value.is_some(), "a shared cell has its value");
        self.put(Slot::Cell {
            index,
            column_known,
        });
    }

    /// Whether cell `index` of `typed` is `column`'s bound value `bytes` decoded
    /// with `spec` as is: set, not split into elements, not reordered.
    pub fn cell_matches(
        typed: &TypedWrite,
        index: usize,
        column: &Name,
        bytes: &Bytes,
        spec: &Arc<ColumnType>,
    ) -> bool {
        let Some(cell) = typed.cells.get(index) else {
            return false;
        };
        cell.op == CellOp::Set
            && same_name(&cell.column, column)
            && Arc::ptr_eq(&cell.ty, spec)
            && cell
                .value
                .as_ref()
                .is_some_and(|v| v.as_ptr() == bytes.as_ptr() && v.len() == bytes.len())
    }

    /// As `Map::insert` of the slot's column.
    fn put(&mut self, slot: Slot) {
        let column = self.slot_name(&slot);
        let at = self
            .slots
            .iter()
            .position(|s| same_name(self.slot_name(s), column));
        match at {
            Some(at) => self.slots[at] = slot,
            None => self.slots.push(slot),
        }
    }

    /// As `Map::remove_entry` with `preserve_order`: the last entry takes the gap.
    pub fn remove_entry(&mut self, column: &str) -> Option<(String, Json)> {
        let at = self
            .slots
            .iter()
            .position(|s| self.slot_name(s) == column)?;
        let rendered = self.render_slot(&self.slots[at]);
        let name = self.slot_name(&self.slots[at]).to_string();
        self.slots.swap_remove(at);
        Some((name, rendered))
    }

    /// Moves `column` into `to` as `Map::remove_entry` here and `Map::insert` there
    /// would (an INSERT's key column): unrendered, so a key nobody reads is never
    /// rendered. Whether it was there.
    pub fn move_entry(&mut self, column: &str, to: &mut Values) -> bool {
        let Some(at) = self.slots.iter().position(|s| self.slot_name(s) == column) else {
            return false;
        };
        let mut slot = self.slots.swap_remove(at);
        if let Slot::Cell {
            index,
            column_known,
        } = slot
        {
            match (&to.typed, &self.typed) {
                (None, _) => to.typed = self.typed.clone(),
                (Some(theirs), Some(ours)) if Arc::ptr_eq(theirs, ours) => {}
                // Another statement's cells: the value goes as its own entry.
                _ => slot = self.own_entry(index, column_known),
            }
        }
        to.put(slot);
        true
    }

    /// The entry a [`Slot::Cell`] stands for.
    fn own_entry(&self, index: u32, column_known: bool) -> Slot {
        let cell = self.cell(index);
        Slot::Own(
            cell.column.clone(),
            Entry::Bound {
                bytes: cell.value.clone().unwrap_or_default(),
                spec: Some(cell.ty.clone()),
                column: column_known.then(|| cell.ty.clone()),
            },
        )
    }

    /// Adds rendered entries (INSERT JSON's object).
    pub fn extend(&mut self, m: Map<String, Json>) {
        for (c, v) in m {
            self.insert(Name::new(&c), Entry::Ready(v));
        }
    }

    /// The line's `values`: JSON at once when nothing is left to render.
    pub fn into_line(self) -> LineValue {
        if self.pending() {
            return LineValue::deferred(self);
        }
        let mut map = Map::with_capacity(self.slots.len());
        for slot in self.slots {
            if let Slot::Own(c, Entry::Ready(j)) = slot {
                map.insert(c.to_string(), j);
            }
        }
        Json::Object(map).into()
    }

    /// The line's `key`, as [`Values::into_line`] makes `values` but never with a
    /// kept form: the store's line holds the key itself (the by-key index and a
    /// reader without the decoder need it).
    pub fn into_key_line(self) -> LineValue {
        if self.pending() {
            return LineValue::deferred(Key(self));
        }
        self.into_line()
    }

    fn render_slot(&self, slot: &Slot) -> Json {
        match self.view(slot) {
            View::Ready(j) => j.clone(),
            View::Bound(bytes, spec, column) => render_bound(bytes, spec, column),
        }
    }
}

impl RenderLater for Values {
    fn render(&self) -> Json {
        Json::Object(
            self.slots
                .iter()
                .map(|s| (self.slot_name(s).to_string(), self.render_slot(s)))
                .collect(),
        )
    }

    fn kept(&self) -> Option<(RawForm, Vec<u8>)> {
        Some((RawForm::CqlValues, self.encode()))
    }
}

/// An INSERT's key rendered when read, with no kept form (see
/// [`Values::into_key_line`]).
struct Key(Values);

impl RenderLater for Key {
    fn render(&self) -> Json {
        self.0.render()
    }
}

/// Whether two column names are the same text. Every column of an INSERT is
/// checked against the ones before it (the map's replace-in-place), so the common
/// answer, "different", is found without a string comparison when the names differ
/// in length or in their last byte (`c0`…`c9`); the same shared name is equal at
/// once.
fn same_name(a: &Name, b: &Name) -> bool {
    if std::sync::Arc::ptr_eq(a.shared(), b.shared()) {
        return true;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.last() == b.last() && a == b
}

/// Kept-form tags: what follows a column's name.
const READY: u8 = 0;
const BOUND: u8 = 1;

impl Values {
    /// The kept form: per entry, in order, the column as a `[long string]`, then
    /// either [`READY`] and the JSON as a `[long string]`, or [`BOUND`], the value as
    /// `[bytes]` and each of the two types as a presence byte and an `[option]` —
    /// the native protocol's own notation, whose type encoding round-trips exactly
    /// (UDT fields and custom classes included). A [`Slot::Cell`] is kept as the
    /// bound entry it stands for (its type twice when the column's is known: they
    /// are equal), so the kept form does not depend on the sharing.
    fn encode(&self) -> Vec<u8> {
        // Room for what is written below, a simple type's option id being 2 bytes
        // (growing from a guess per column reallocated several times per line).
        let room: usize = self
            .slots
            .iter()
            .map(|slot| {
                4 + self.slot_name(slot).len()
                    + 1
                    + match self.view(slot) {
                        View::Ready(_) => 4 + 16,
                        View::Bound(bytes, ..) => 4 + bytes.len() + 2 * (1 + 2),
                    }
            })
            .sum();
        let mut buf = Vec::with_capacity(room);
        let mut w = Writer::new(&mut buf);
        for slot in &self.slots {
            w.long_string(self.slot_name(slot));
            match self.view(slot) {
                View::Bound(bytes, spec, column) => {
                    w.u8(BOUND);
                    w.bytes(Some(bytes));
                    for ty in [spec, column] {
                        match ty {
                            Some(t) => {
                                w.u8(1);
                                t.encode(&mut w);
                            }
                            None => w.u8(0),
                        }
                    }
                }
                View::Ready(j) => {
                    w.u8(READY);
                    w.long_string(&j.to_string());
                }
            }
        }
        buf
    }

    fn decode(bytes: &[u8]) -> Result<Values, String> {
        let mut r = Reader::new(Bytes::copy_from_slice(bytes));
        let mut out = Values::default();
        let bad = |e: ParseError| e.to_string();
        while !r.is_empty() {
            let column = Name::new(r.long_string().map_err(bad)?.as_str());
            let entry = match r.u8("kept tag").map_err(bad)? {
                READY => {
                    let text = r.long_string().map_err(bad)?;
                    Entry::Ready(serde_json::from_str(text.as_str()).map_err(|e| e.to_string())?)
                }
                BOUND => {
                    let bytes = r
                        .bytes()
                        .map_err(bad)?
                        .ok_or("a kept bound value is null")?;
                    let mut types = [None, None];
                    for ty in &mut types {
                        if r.u8("kept type presence").map_err(bad)? == 1 {
                            *ty = Some(Arc::new(ColumnType::decode(&mut r).map_err(bad)?));
                        }
                    }
                    let [spec, column] = types;
                    Entry::Bound {
                        bytes,
                        spec,
                        column,
                    }
                }
                t => return Err(format!("unknown kept tag {t}")),
            };
            // Entries were unique when kept; push keeps a damaged duplicate visible.
            out.slots.push(Slot::Own(column, entry));
        }
        Ok(out)
    }
}

/// Renders a stored [`Values::kept`] form as the line printed it. A damaged form
/// renders `null`, as damaged BSON does (only a damaged store gets there).
pub fn render_kept(bytes: &[u8]) -> Json {
    Values::decode(bytes).map_or(Json::Null, |v| v.render())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, i64),
        Remove(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..6, any::<i64>()).prop_map(|(c, v)| Op::Insert(c, v)),
            (0u8..6).prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// The same inserts and removals leave `Values` and the eager path's map
        /// with the same keys in the same order (the printed line depends on it).
        #[test]
        fn values_keep_the_maps_order(ops in prop::collection::vec(op(), 0..40)) {
            let mut map = Map::new();
            let mut values = Values::default();
            for op in ops {
                match op {
                    Op::Insert(c, v) => {
                        map.insert(format!("c{c}"), Json::from(v));
                        values.insert(Name::new(&format!("c{c}")), Entry::Ready(Json::from(v)));
                    }
                    Op::Remove(c) => {
                        let col = format!("c{c}");
                        prop_assert_eq!(map.remove_entry(&col), values.remove_entry(&col));
                    }
                }
            }
            let line = values.into_line();
            prop_assert_eq!(
                serde_json::to_string(&line).unwrap(),
                serde_json::to_string(&Json::Object(map)).unwrap()
            );
        }
    }

    fn column_type() -> impl Strategy<Value = ColumnType> {
        use tidemark_cql::Text;
        let leaf = prop_oneof![
            Just(ColumnType::Int),
            Just(ColumnType::Varint),
            Just(ColumnType::Decimal),
            Just(ColumnType::Double),
            Just(ColumnType::Float),
            Just(ColumnType::Varchar),
            Just(ColumnType::Blob),
            Just(ColumnType::Timestamp),
            Just(ColumnType::Uuid),
            Just(ColumnType::Duration),
            Just(ColumnType::custom(Text::from(
                "org.apache.cassandra.db.marshal.VectorType(org.apache.cassandra.db.marshal.FloatType,2)"
            ))),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                inner.clone().prop_map(|t| ColumnType::List(Box::new(t))),
                inner.clone().prop_map(|t| ColumnType::Set(Box::new(t))),
                (inner.clone(), inner.clone())
                    .prop_map(|(k, v)| ColumnType::Map(Box::new(k), Box::new(v))),
                prop::collection::vec(inner.clone(), 1..3).prop_map(ColumnType::Tuple),
                prop::collection::vec(inner, 1..3).prop_map(|ts| ColumnType::Udt {
                    keyspace: Text::from("ks"),
                    name: Text::from("u"),
                    fields: ts
                        .into_iter()
                        .enumerate()
                        .map(|(i, t)| (Text::from(format!("f{i}")), t))
                        .collect(),
                }),
            ]
        })
    }

    fn entry() -> impl Strategy<Value = Entry> {
        prop_oneof![
            any::<i64>().prop_map(|v| Entry::Ready(Json::from(v))),
            "[a-z\\\"]{0,5}".prop_map(|v| Entry::Ready(Json::from(v))),
            (
                prop::collection::vec(any::<u8>(), 0..24),
                prop::option::of(column_type()),
                prop::option::of(column_type()),
            )
                .prop_map(|(b, spec, column)| Entry::Bound {
                    bytes: Bytes::from(b),
                    spec: spec.map(Arc::new),
                    column: column.map(Arc::new),
                }),
        ]
    }

    proptest! {
        /// What the store keeps renders exactly as the values the decoder kept, for
        /// any bound bytes (garbage included) under any types: `log --json` prints
        /// the line `inspect --json` printed.
        #[test]
        fn the_kept_form_renders_as_the_values_do(
            entries in prop::collection::vec(entry(), 0..6),
        ) {
            let mut values = Values::default();
            for (i, e) in entries.into_iter().enumerate() {
                values.insert(Name::new(&format!("c{i}")), e);
            }
            let (form, kept) = values.kept().unwrap();
            prop_assert_eq!(form, RawForm::CqlValues);
            let direct = serde_json::to_string(&values.render()).unwrap();
            prop_assert_eq!(serde_json::to_string(&render_kept(&kept)).unwrap(), direct);
        }

        /// A bound value kept as an index into the typed write's cells renders and
        /// is kept exactly as the same value kept as its own entry: the sharing
        /// changes no printed or stored byte, garbage bytes and every type included.
        #[test]
        fn a_shared_cell_renders_and_is_kept_as_its_own_entry_is(
            columns in prop::collection::vec(
                (prop::collection::vec(any::<u8>(), 0..24), column_type(), any::<bool>()),
                1..5,
            ),
        ) {
            let mut typed = TypedWrite::default();
            let mut own = Values::default();
            for (i, (bytes, ty, column_known)) in columns.iter().enumerate() {
                let bytes = Bytes::from(bytes.clone());
                let ty = Arc::new(ty.clone());
                let name = Name::new(&format!("c{i}"));
                typed.cells.push(TypedCell {
                    column: name.clone(),
                    ty: ty.clone(),
                    frozen: None,
                    op: CellOp::Set,
                    path: None,
                    value: Some(bytes.clone()),
                });
                prop_assert!(Values::cell_matches(&typed, i, &name, &bytes, &ty));
                own.insert(name, Entry::Bound {
                    bytes,
                    spec: Some(ty.clone()),
                    column: column_known.then(|| Arc::new((*ty).clone())),
                });
            }
            let typed = Arc::new(typed);
            let mut shared = Values::default();
            for (i, (_, _, column_known)) in columns.iter().enumerate() {
                shared.insert_cell(&typed, i, *column_known);
            }
            let all_cells = shared.slots.iter().all(|s| matches!(s, Slot::Cell { .. }));
            prop_assert!(all_cells, "every column is a shared cell");
            prop_assert_eq!(
                serde_json::to_string(&shared.render()).unwrap(),
                serde_json::to_string(&own.render()).unwrap()
            );
            prop_assert_eq!(shared.kept(), own.kept());
            // Removing a column (an INSERT's key) swaps the last into its place alike.
            prop_assert_eq!(shared.remove_entry("c0"), own.remove_entry("c0"));
            prop_assert_eq!(shared.kept(), own.kept());
        }

        /// A damaged kept form renders `null` (or some JSON), never panics.
        #[test]
        fn a_damaged_kept_form_does_not_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = render_kept(&bytes);
        }
    }

    #[test]
    fn a_cell_that_is_not_the_bound_value_as_sent_is_not_shared() {
        let ty = Arc::new(ColumnType::Int);
        let sent = Bytes::from_static(&[0, 0, 0, 7]);
        let name = Name::new("a");
        let cell = |value: Bytes, ty: &Arc<ColumnType>, op| TypedCell {
            column: name.clone(),
            ty: ty.clone(),
            frozen: None,
            op,
            path: None,
            value: Some(value),
        };
        let mut typed = TypedWrite::default();
        // Equal bytes but not the same slice (a literal, or reordered by canonical).
        typed
            .cells
            .push(cell(Bytes::copy_from_slice(&sent), &ty, CellOp::Set));
        // Another type object than the bind metadata's.
        typed
            .cells
            .push(cell(sent.clone(), &Arc::new(ColumnType::Int), CellOp::Set));
        // Not a plain set.
        typed.cells.push(cell(sent.clone(), &ty, CellOp::Append));
        typed.cells.push(cell(sent.clone(), &ty, CellOp::Set));
        let shared = [0, 1, 2, 3, 4].map(|i| Values::cell_matches(&typed, i, &name, &sent, &ty));
        assert_eq!(shared, [false, false, false, true, false]);
        assert!(!Values::cell_matches(
            &typed,
            3,
            &Name::new("b"),
            &sent,
            &ty
        ));
    }

    #[test]
    fn an_insert_key_moves_unrendered_and_is_never_elided_from_the_stored_line() {
        let int = Arc::new(ColumnType::Int);
        let bound = |v: u8| Entry::Bound {
            bytes: Bytes::copy_from_slice(&[0, 0, 0, v]),
            spec: Some(int.clone()),
            column: Some(int.clone()),
        };
        let mut values = Values::default();
        for (c, v) in [("v", 1), ("ck", 2), ("w", 3), ("pk", 4)] {
            values.insert(Name::new(c), bound(v));
        }
        // The eager path: remove from the values map, insert into the key map.
        let mut eager_values = serde_json::json!({"v": 1, "ck": 2, "w": 3, "pk": 4});
        let mut eager_key = Map::new();
        let mut key = Values::default();
        for c in ["pk", "ck", "absent"] {
            let moved = values.move_entry(c, &mut key);
            let removed = eager_values.as_object_mut().unwrap().remove_entry(c);
            assert_eq!(moved, removed.is_some());
            if let Some((c, v)) = removed {
                eager_key.insert(c, v);
            }
        }
        let (key, values) = (key.into_key_line(), values.into_line());
        assert!(
            matches!(key, LineValue::Deferred(_)),
            "not rendered at decode"
        );
        assert_eq!(key.kept(), None, "the store keeps the key itself");
        let printed = |v: &LineValue| serde_json::to_string(v).unwrap();
        let stored = crate::decode::line_value::without_raw_values(|| printed(&key));
        assert_eq!(stored, r#"{"pk":4,"ck":2}"#);
        assert_eq!(printed(&key), serde_json::to_string(&eager_key).unwrap());
        assert_eq!(
            printed(&values),
            serde_json::to_string(&eager_values).unwrap()
        );
    }

    #[test]
    fn a_cell_moved_to_the_values_of_another_write_goes_as_its_own_entry() {
        let int = Arc::new(ColumnType::Int);
        let typed_with = |column: &str, v: u8| {
            let mut t = TypedWrite::default();
            t.cells.push(TypedCell {
                column: Name::new(column),
                ty: int.clone(),
                frozen: None,
                op: CellOp::Set,
                path: None,
                value: Some(Bytes::copy_from_slice(&[0, 0, 0, v])),
            });
            Arc::new(t)
        };
        let (ours, theirs) = (typed_with("c", 7), typed_with("d", 8));
        let mut from = Values::default();
        from.insert_cell(&ours, 0, true);
        let mut to = Values::default();
        to.insert_cell(&theirs, 0, false);
        assert!(from.move_entry("c", &mut to));
        assert!(matches!(to.slots[1], Slot::Own(..)));
        assert_eq!(to.render(), serde_json::json!({"d": 8, "c": 7}));
        let mut own = Values::default();
        own.insert(
            Name::new("d"),
            Entry::Bound {
                bytes: Bytes::from_static(&[0, 0, 0, 8]),
                spec: Some(int.clone()),
                column: None,
            },
        );
        own.insert(
            Name::new("c"),
            Entry::Bound {
                bytes: Bytes::from_static(&[0, 0, 0, 7]),
                spec: Some(int.clone()),
                column: Some(int.clone()),
            },
        );
        assert_eq!(to.kept(), own.kept());
    }

    #[test]
    fn a_truncated_kept_form_renders_null() {
        let mut values = Values::default();
        values.insert(
            Name::new("a"),
            Entry::Bound {
                bytes: Bytes::from_static(&[0, 0, 0, 7]),
                spec: Some(Arc::new(ColumnType::Int)),
                column: Some(Arc::new(ColumnType::Int)),
            },
        );
        let (_, kept) = values.kept().unwrap();
        assert_eq!(render_kept(&kept), serde_json::json!({ "a": 7 }));
        assert_eq!(render_kept(&kept[..kept.len() - 1]), Json::Null);
    }

    #[test]
    fn a_bound_value_renders_as_the_eager_path_does() {
        let set = ColumnType::Set(Box::new(ColumnType::Varchar));
        // set<text> {"b", "a"} as sent: count, then [len][bytes] per element.
        let bytes = Bytes::from_static(b"\0\0\0\x02\0\0\0\x01b\0\0\0\x01a");
        let mut eager = typed(&set, &bytes);
        normalize(&mut eager, &set);
        let mut values = Values::default();
        values.insert(
            Name::new("s"),
            Entry::Bound {
                bytes,
                spec: None,
                column: Some(Arc::new(set)),
            },
        );
        let line = values.into_line();
        assert!(matches!(line, LineValue::Deferred(_)));
        assert_eq!(*line, serde_json::json!({ "s": eager }));
        assert_eq!(line["s"], serde_json::json!(["a", "b"]));
    }
}
