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

use bytes::Bytes;
use serde_json::{Map, Value as Json};
use tidemark_cql::types::format;
use tidemark_cql::ColumnType;

use super::bound::typed;
use super::order::normalize;
use crate::decode::records::{LineValue, RenderLater};

/// One column's value.
pub enum Entry {
    /// Already rendered (literals, nulls).
    Ready(Json),
    /// A bound value, rendered when read.
    Bound {
        bytes: Bytes,
        /// The bind metadata's type for the marker, if the statement was prepared.
        spec: Option<ColumnType>,
        /// The column's schema type, if known.
        column: Option<ColumnType>,
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
                let decode_as = spec.as_ref().or(column.as_ref().map(ColumnType::effective));
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
#[derive(Default)]
pub struct Values(Vec<(String, Entry)>);

impl Values {
    /// Room for `n` columns at once (growing one push at a time showed in profiles).
    pub fn with_capacity(n: usize) -> Self {
        Values(Vec::with_capacity(n))
    }

    /// As `Map::insert`: a column already present keeps its place.
    pub fn insert(&mut self, column: String, e: Entry) {
        match self.0.iter_mut().find(|(c, _)| *c == column) {
            Some(slot) => slot.1 = e,
            None => self.0.push((column, e)),
        }
    }

    /// As `Map::remove_entry` with `preserve_order`: the last entry takes the gap.
    pub fn remove_entry(&mut self, column: &str) -> Option<(String, Json)> {
        let at = self.0.iter().position(|(c, _)| c == column)?;
        let (c, e) = self.0.swap_remove(at);
        Some((c, e.render()))
    }

    /// Adds rendered entries (INSERT JSON's object).
    pub fn extend(&mut self, m: Map<String, Json>) {
        for (c, v) in m {
            self.insert(c, Entry::Ready(v));
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
                map.insert(c, j);
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
                .map(|(c, e)| (c.clone(), e.render()))
                .collect(),
        )
    }
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
                        values.insert(format!("c{c}"), Entry::Ready(Json::from(v)));
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

    #[test]
    fn a_bound_value_renders_as_the_eager_path_does() {
        let set = ColumnType::Set(Box::new(ColumnType::Varchar));
        // set<text> {"b", "a"} as sent: count, then [len][bytes] per element.
        let bytes = Bytes::from_static(b"\0\0\0\x02\0\0\0\x01b\0\0\0\x01a");
        let mut eager = typed(&set, &bytes);
        normalize(&mut eager, &set);
        let mut values = Values::default();
        values.insert(
            "s".into(),
            Entry::Bound {
                bytes,
                spec: None,
                column: Some(set),
            },
        );
        let line = values.into_line();
        assert!(matches!(line, LineValue::Deferred(_)));
        assert_eq!(*line, serde_json::json!({ "s": eager }));
        assert_eq!(line["s"], serde_json::json!(["a", "b"]));
    }
}
