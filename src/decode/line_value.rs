//! A `write` line's `values`: a JSON value, or the protocol's own bytes rendered to
//! JSON only when someone reads or prints them.
//!
//! Why lazy: `tap` and the proxy print no line; they store the protocol's own form of
//! the change (raw BSON for MongoDB) and never need the JSON. Rendering a 1 KB MongoDB
//! document into a `serde_json::Value` tree, and dropping it again, was about a quarter
//! of decode time (issue #11's profile), for lines most of which are never printed.
//! So a MongoDB decoder hands over the document's bytes with the function that renders
//! them; `inspect --json` renders when it serializes the line, and the store keeps the
//! bytes (see [`without_raw_values`]) for `log --json` to render at print time — the
//! printed line is the same either way.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::store::envelope::line::LineTree;

/// What raw bytes are, so a reader that only has the bytes (the store) renders them
/// with the right function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RawForm {
    /// A BSON document.
    BsonDocument,
    /// A BSON array (its bytes are a document whose keys are "0", "1", ...).
    BsonArray,
    /// A CQL statement's values as the decoder kept them: each column's bound bytes
    /// with their types, or its JSON (`decode::cql::extract::lazy`).
    CqlValues,
}

/// The bytes of a value not yet rendered, with the function that renders them.
#[derive(Clone)]
pub struct RawValue {
    /// Often a slice of the request's own buffer, shared with the operation's
    /// payload (`decode::mongo::share`).
    bytes: Bytes,
    form: RawForm,
    render: fn(&[u8]) -> Value,
    rendered: OnceLock<Value>,
}

impl RawValue {
    /// The protocol's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// What the bytes are.
    pub fn form(&self) -> RawForm {
        self.form
    }
}

/// What a decoder hands over to be rendered later: owned pieces of the request
/// (refcounted slices of the frame, types) and the renderer that would have run.
pub trait RenderLater: Send + Sync {
    /// The JSON the decoder would have built at once.
    fn render(&self) -> Value;

    /// The kept pieces as bytes a reader without the decoder renders
    /// (`decode::registry::render_kept`), so the store keeps them instead of the JSON;
    /// `None`: the store keeps the rendered JSON.
    fn kept(&self) -> Option<(RawForm, Vec<u8>)> {
        None
    }

    /// [`canonical_text`] of [`RenderLater::render`]'s value, written without building
    /// that value, when the source knows how; `None`: rendered, then written.
    fn canonical_text(&self) -> Option<String> {
        None
    }

    /// `LineTree::from` [`RenderLater::render`]'s value, built without that value,
    /// when the source knows how; `None`: rendered, then converted.
    fn tree(&self) -> Option<LineTree> {
        None
    }
}

/// A value's canonical text, as the store's `key` holds it: compact JSON, keys in
/// the order given, `{}` for none (`null`).
pub fn canonical_text(v: &Value) -> String {
    match v {
        Value::Null => "{}".to_string(),
        // The text `Display` writes, into one buffer of room for a key instead of
        // one grown a few bytes at a time through the formatter.
        k => serde_json::to_string(k).unwrap_or_else(|_| k.to_string()),
    }
}

/// A value rendered on first read from what a decoder kept.
///
/// The source is the struct's last field, unsized behind the `Arc`: one allocation
/// per deferred value, where a `Box<dyn RenderLater>` inside the `Arc` made two
/// (a prepared INSERT has two deferred values per write).
pub struct Deferred<S: ?Sized + RenderLater = dyn RenderLater> {
    rendered: OnceLock<Value>,
    /// [`RenderLater::kept`], computed once: the dedupe identity and the store both
    /// read it.
    kept: OnceLock<Option<(RawForm, Vec<u8>)>>,
    /// [`LineValue::canonical_text`], computed once: a tap writes a key's text when
    /// it parks the write and again when it logs it.
    text: OnceLock<String>,
    source: S,
}

/// A `write` line's `values` field.
#[derive(Clone)]
pub enum LineValue {
    /// Already JSON (MongoDB DDL and transaction lines, CQL values of literals).
    Json(Value),
    /// The protocol's bytes; rendered on first read.
    Raw(RawValue),
    /// Rendered on first read by the decoder's own renderer (CQL bound values). When
    /// the source has a kept form the store keeps that, as for [`LineValue::Raw`].
    Deferred(Arc<Deferred>),
}

impl Default for LineValue {
    fn default() -> Self {
        LineValue::Json(Value::Null)
    }
}

impl LineValue {
    /// A value kept as `bytes` of `form`, rendered by `render` when read.
    pub fn raw(bytes: impl Into<Bytes>, form: RawForm, render: fn(&[u8]) -> Value) -> Self {
        LineValue::Raw(RawValue {
            bytes: bytes.into(),
            form,
            render,
            rendered: OnceLock::new(),
        })
    }

    /// A value rendered by `source` when first read.
    pub fn deferred(source: impl RenderLater + 'static) -> Self {
        let shared: Arc<Deferred> = Arc::new(Deferred {
            rendered: OnceLock::new(),
            kept: OnceLock::new(),
            text: OnceLock::new(),
            source,
        });
        LineValue::Deferred(shared)
    }

    /// The bytes the store keeps instead of the JSON, and what they are: a raw
    /// value's own bytes, or a deferred value's kept form. `None`: the store keeps
    /// the JSON.
    pub fn kept(&self) -> Option<(RawForm, &[u8])> {
        match self {
            LineValue::Json(_) => None,
            LineValue::Raw(r) => Some((r.form, &r.bytes)),
            LineValue::Deferred(d) => d
                .kept
                .get_or_init(|| d.source.kept())
                .as_ref()
                .map(|(form, bytes)| (*form, bytes.as_slice())),
        }
    }

    /// The value's [`canonical_text`]: for a deferred value written once, and
    /// straight from what the decoder kept when its source knows how.
    pub fn canonical_text(&self) -> Cow<'_, str> {
        match self {
            LineValue::Deferred(d) => Cow::Borrowed(d.text.get_or_init(|| {
                let direct = match d.rendered.get() {
                    None => d.source.canonical_text(),
                    // Already rendered: write that, rather than rebuild it.
                    Some(_) => None,
                };
                direct.unwrap_or_else(|| canonical_text(self))
            })),
            _ => Cow::Owned(canonical_text(self)),
        }
    }

    /// The value as the store's tree (`LineTree::from` its JSON), straight from what
    /// the decoder kept when its source knows how.
    pub fn tree(&self) -> LineTree {
        match self {
            LineValue::Deferred(d) if d.rendered.get().is_none() => {
                d.source.tree().unwrap_or_else(|| LineTree::from(&**self))
            }
            _ => LineTree::from(&**self),
        }
    }

    /// The unrendered bytes, when the value was handed over as bytes.
    pub fn as_raw(&self) -> Option<&RawValue> {
        match self {
            LineValue::Raw(r) => Some(r),
            LineValue::Json(_) | LineValue::Deferred(_) => None,
        }
    }
}

impl Deref for LineValue {
    type Target = Value;

    fn deref(&self) -> &Value {
        match self {
            LineValue::Json(v) => v,
            LineValue::Raw(r) => r.rendered.get_or_init(|| (r.render)(&r.bytes)),
            LineValue::Deferred(d) => d.rendered.get_or_init(|| d.source.render()),
        }
    }
}

impl From<Value> for LineValue {
    fn from(v: Value) -> Self {
        LineValue::Json(v)
    }
}

impl PartialEq for LineValue {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl PartialEq<Value> for LineValue {
    fn eq(&self, other: &Value) -> bool {
        **self == *other
    }
}

impl fmt::Debug for LineValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

thread_local! {
    /// Set while [`without_raw_values`] runs.
    static ELIDE_RAW: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with values that have a kept form ([`LineValue::kept`]) serialized as
/// `null` instead of rendered: the store keeps their bytes beside the line (the
/// protocol's own form), rendering them only when `log --json` prints the line. (The
/// typed line leaves them out by itself; this serves a line kept as a tree.)
pub fn without_raw_values<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            ELIDE_RAW.with(|e| e.set(self.0));
        }
    }
    let _restore = Restore(ELIDE_RAW.with(|e| e.replace(true)));
    f()
}

impl Serialize for LineValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LineValue::Json(v) => v.serialize(s),
            LineValue::Raw(_) | LineValue::Deferred(_)
                if ELIDE_RAW.with(Cell::get) && self.kept().is_some() =>
            {
                s.serialize_unit()
            }
            LineValue::Raw(r) => match r.rendered.get() {
                Some(v) => v.serialize(s),
                None => (r.render)(&r.bytes).serialize(s),
            },
            LineValue::Deferred(d) => match d.rendered.get() {
                Some(v) => v.serialize(s),
                None => d.source.render().serialize(s),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(b: &[u8]) -> Value {
        Value::String(String::from_utf8_lossy(b).into_owned())
    }

    #[test]
    fn a_raw_value_renders_when_read_and_when_printed() {
        let v = LineValue::raw(b"abc".to_vec(), RawForm::BsonDocument, render);
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"abc\"");
        assert_eq!(*v, Value::String("abc".into()));
        assert_eq!(v, LineValue::Json(Value::String("abc".into())));
    }

    #[test]
    fn without_raw_values_prints_null_and_restores_afterwards() {
        let v = LineValue::raw(b"abc".to_vec(), RawForm::BsonDocument, render);
        let json = LineValue::Json(Value::Bool(true));
        let (a, b) = without_raw_values(|| {
            (
                serde_json::to_string(&v).unwrap(),
                serde_json::to_string(&json).unwrap(),
            )
        });
        assert_eq!((a.as_str(), b.as_str()), ("null", "true"));
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"abc\"");
    }
}
