//! An INSERT's `values` kept as the frame's bytes and rendered when the line is read.
//!
//! Why: rendering every bound value of a prepared INSERT to JSON was about a sixth of
//! CQL decode time (issue #11's profile), for lines that are mostly never printed —
//! the store keeps the typed cells (`extras.cql`). Each bound value is kept as its
//! bytes (a refcounted slice of the frame) with the types the eager path would have
//! used, and [`Entry::render`] runs exactly that path: decode with the bind
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
use crate::decode::cql::typed::Name;
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

impl Entry {
    /// What the eager path gives: `Bound::render` then `literal::render`'s normalize.
    pub fn render(&self) -> Json {
        match self {
            Entry::Ready(j) => j.clone(),
            Entry::Bound {
                bytes,
                spec,
                column,
            } => {
                let decode_as = spec
                    .as_deref()
                    .or(column.as_deref().map(ColumnType::effective));
                let mut j = match decode_as {
                    Some(ty) => typed(ty, bytes),
                    None => Json::String(format::blob(bytes)),
                };
                if let Some(t) = column {
                    normalize(&mut j, t);
                }
                j
            }
        }
    }
}

/// An INSERT's values in the order the eager map would hold them.
#[derive(Default, Debug)]
pub struct Values(Vec<(Name, Entry)>);

impl Values {
    /// Room for `n` columns at once (growing one push at a time showed in profiles).
    pub fn with_capacity(n: usize) -> Self {
        Values(Vec::with_capacity(n))
    }

    /// As `Map::insert`: a column already present keeps its place.
    pub fn insert(&mut self, column: Name, e: Entry) {
        match self.0.iter_mut().find(|(c, _)| same_name(c, &column)) {
            Some(slot) => slot.1 = e,
            None => self.0.push((column, e)),
        }
    }

    /// As `Map::remove_entry` with `preserve_order`: the last entry takes the gap.
    pub fn remove_entry(&mut self, column: &str) -> Option<(String, Json)> {
        let at = self.0.iter().position(|(c, _)| c == column)?;
        let (c, e) = self.0.swap_remove(at);
        Some((c.to_string(), e.render()))
    }

    /// Adds rendered entries (INSERT JSON's object).
    pub fn extend(&mut self, m: Map<String, Json>) {
        for (c, v) in m {
            self.insert(Name::new(&c), Entry::Ready(v));
        }
    }

    /// The line's `values`: JSON at once when nothing is left to render.
    pub fn into_line(self) -> LineValue {
        if self.0.iter().any(|(_, e)| matches!(e, Entry::Bound { .. })) {
            return LineValue::deferred(self);
        }
        let mut map = Map::with_capacity(self.0.len());
        for (c, e) in self.0 {
            if let Entry::Ready(j) = e {
                map.insert(c.to_string(), j);
            }
        }
        Json::Object(map).into()
    }
}

impl RenderLater for Values {
    fn render(&self) -> Json {
        Json::Object(
            self.0
                .iter()
                .map(|(c, e)| (c.to_string(), e.render()))
                .collect(),
        )
    }

    fn kept(&self) -> Option<(RawForm, Vec<u8>)> {
        Some((RawForm::CqlValues, self.encode()))
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
    /// (UDT fields and custom classes included).
    fn encode(&self) -> Vec<u8> {
        // Room for what is written below, a simple type's option id being 2 bytes
        // (growing from a guess per column reallocated several times per line).
        let room: usize = self
            .0
            .iter()
            .map(|(column, entry)| {
                4 + column.len()
                    + 1
                    + match entry {
                        Entry::Ready(_) => 4 + 16,
                        Entry::Bound { bytes, .. } => 4 + bytes.len() + 2 * (1 + 2),
                    }
            })
            .sum();
        let mut buf = Vec::with_capacity(room);
        let mut w = Writer::new(&mut buf);
        for (column, entry) in &self.0 {
            w.long_string(column);
            match entry {
                Entry::Ready(j) => {
                    w.u8(READY);
                    w.long_string(&j.to_string());
                }
                Entry::Bound {
                    bytes,
                    spec,
                    column,
                } => {
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
            out.0.push((column, entry));
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

        /// A damaged kept form renders `null` (or some JSON), never panics.
        #[test]
        fn a_damaged_kept_form_does_not_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = render_kept(&bytes);
        }
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
