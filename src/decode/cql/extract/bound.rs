//! Bound values: pairing the `[value]`s of a QUERY, EXECUTE or BATCH member with the
//! statement's bind markers, and rendering each as `SELECT JSON` would.
//!
//! A value's type comes from the Prepared bind metadata when the statement was
//! prepared (that is what the server will decode it with), else from the schema type
//! of the column the marker binds to; with neither, the raw bytes are shown as `0x…`.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value as Json;
use tidemark_cql::message::{PreparedMetadata, QueryValues};
use tidemark_cql::statement::{BindInfo, BindTarget};
use tidemark_cql::types::format;
use tidemark_cql::wire::WireValue;
use tidemark_cql::{to_json, ColumnType, Value};

use super::order::normalize;
use crate::decode::cql::shared::SharedSpecs;
use crate::decode::cql::typed::Name;

/// The values bound to one statement, positional, with their types when known.
pub struct Bound<'a> {
    values: Vec<&'a WireValue>,
    specs: Option<&'a PreparedMetadata>,
    /// `specs`' marker types and names, shared (see [`Bound::with_shared`]).
    shared: Option<&'a SharedSpecs>,
}

impl<'a> Bound<'a> {
    /// Positional view of `values` for a statement with `markers`. Named values are
    /// matched by marker name, or by the column a `?` binds to (what drivers send).
    pub fn new(
        values: &'a QueryValues,
        markers: &[BindInfo<'_>],
        specs: Option<&'a PreparedMetadata>,
    ) -> Self {
        let values = match values {
            QueryValues::None => Vec::new(),
            QueryValues::Positional(v) => v.iter().collect(),
            QueryValues::Named(named) => markers
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    let want = m
                        .name
                        .as_ref()
                        .map(|n| n.as_str().to_string())
                        .or_else(|| {
                            specs
                                .and_then(|s| s.columns.get(i))
                                .map(|c| c.name.to_string())
                        })
                        .or_else(|| target_column(&m.target).map(str::to_string))?;
                    named
                        .iter()
                        .find(|(n, _)| n.as_str().eq_ignore_ascii_case(&want))
                        .map(|(_, v)| v)
                })
                .collect(),
        };
        Bound {
            values,
            specs,
            shared: None,
        }
    }

    /// `specs`' types and names made shareable once (see [`SharedSpecs`]): typed
    /// cells then hold these instead of a copy each.
    pub fn with_shared(self, shared: &'a SharedSpecs) -> Self {
        Bound {
            shared: Some(shared),
            ..self
        }
    }

    /// Values as given, for EXECUTEs whose statement is unknown.
    pub fn raw(values: &'a QueryValues) -> Self {
        Self::new(values, &[], None)
    }

    /// The table the bind metadata describes (what the server resolved the statement
    /// to, so it names the keyspace even when the text does not).
    pub fn spec_table(&self) -> Option<(&'a str, &'a str)> {
        let s = self.specs?;
        if let Some((k, t)) = &s.global_table_spec {
            return Some((k.as_str(), t.as_str()));
        }
        s.columns
            .first()
            .map(|c| (c.keyspace.as_str(), c.table.as_str()))
    }

    /// Partition-key column names from the bind metadata (protocol v4+), when every
    /// partition-key column is bound.
    /// An iterator, not a vector: every prepared INSERT without a known schema
    /// asks twice, and two vectors per write showed in allocation profiles.
    pub fn pk_columns(&self) -> Option<impl Iterator<Item = &'a str> + Clone + 'a> {
        let s = self.specs?;
        let n = s.columns.len();
        if s.pk_indexes.is_empty() || s.pk_indexes.iter().any(|i| usize::from(*i) >= n) {
            return None;
        }
        Some(
            s.pk_indexes
                .iter()
                .map(move |i| s.columns[usize::from(*i)].name.as_str()),
        )
    }

    /// The bind metadata's type for marker `i`.
    pub fn spec_type(&self, i: usize) -> Option<&'a ColumnType> {
        self.specs.and_then(|s| s.columns.get(i)).map(|c| &c.ty)
    }

    /// The shared type of marker `i`, borrowed (only when [`Bound::with_shared`]
    /// gave the shared types).
    pub fn spec_type_ref(&self, i: usize) -> Option<&'a Arc<ColumnType>> {
        self.shared?.types.get(i)
    }

    /// The shared name of marker `i`, borrowed, when it is `column`.
    pub fn spec_name_ref(&self, i: usize, column: &str) -> Option<&'a Name> {
        let name = self.shared?.names.get(i)?;
        (name.as_str() == column).then_some(name)
    }

    /// [`Bound::spec_type`], shared when [`Bound::with_shared`] gave it.
    pub fn spec_type_shared(&self, i: usize) -> Option<Arc<ColumnType>> {
        match self.spec_type_ref(i) {
            Some(shared) => Some(shared.clone()),
            None => self.spec_type(i).map(|t| Arc::new(t.clone())),
        }
    }

    /// The shared name of marker `i` when it is `column` (what an INSERT or a `SET
    /// c = ?` binds), so the cell needs no name lookup of its own.
    pub fn spec_name_shared(&self, i: usize, column: &str) -> Option<Name> {
        self.spec_name_ref(i, column).cloned()
    }

    /// The bind metadata's name for marker `i` (`key(m)`, `idx(l)`, `[ttl]`, ...).
    pub fn spec_name(&self, i: usize) -> Option<&'a str> {
        self.specs
            .and_then(|s| s.columns.get(i))
            .map(|c| c.name.as_str())
    }

    /// The value bound to marker `i` as sent (`None` when the request has fewer
    /// values than markers).
    pub fn wire(&self, i: usize) -> Option<&'a WireValue> {
        self.values.get(i).copied()
    }

    /// Renders marker `i`; `expected` is the type the statement's context gives it.
    /// `None` for UNSET.
    pub fn render(&self, i: usize, expected: Option<&ColumnType>) -> Option<Json> {
        let v = match self.values.get(i) {
            Some(v) => *v,
            None => return Some(Json::Null),
        };
        match v {
            WireValue::Null => Some(Json::Null),
            WireValue::Unset => None,
            WireValue::Bytes(b) => Some(match self.spec_type(i).or(expected) {
                Some(ty) => typed(ty, b),
                None => Json::String(format::blob(b)),
            }),
        }
    }

    /// An integer marker (`USING TTL ?` is an int, `USING TIMESTAMP ?` a bigint).
    pub fn integer(&self, i: usize) -> Option<i64> {
        match self.values.get(i)? {
            WireValue::Bytes(b) => match b.len() {
                8 => Some(i64::from_be_bytes(b[..].try_into().ok()?)),
                4 => Some(i32::from_be_bytes(b[..].try_into().ok()?).into()),
                _ => None,
            },
            _ => None,
        }
    }

    /// Every value as `0x…` hex (null as null, UNSET as the string `"unset"`).
    pub fn hex_all(&self) -> Json {
        Json::Array(
            self.values
                .iter()
                .map(|v| match v {
                    WireValue::Null => Json::Null,
                    WireValue::Unset => Json::String("unset".into()),
                    WireValue::Bytes(b) => Json::String(format::blob(b)),
                })
                .collect(),
        )
    }
}

/// Decodes and renders bytes of type `ty`; undecodable bytes are shown as `0x…`.
pub fn typed(ty: &ColumnType, b: &Bytes) -> Json {
    match Value::decode(ty, b) {
        Ok(v) => {
            let mut j = to_json(&v, ty);
            normalize(&mut j, ty);
            j
        }
        Err(_) => Json::String(format::blob(b)),
    }
}

fn target_column<'s>(t: &'s BindTarget<'_>) -> Option<&'s str> {
    match t {
        BindTarget::Column(c)
        | BindTarget::InValues(c)
        | BindTarget::Key(c)
        | BindTarget::Element(c)
        | BindTarget::Field(c, _) => Some(c.as_str()),
        BindTarget::Nested(inner) => target_column(inner),
        _ => None,
    }
}
