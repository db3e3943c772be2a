//! Typed access to raw command fields, with mongod's lenient number rules.
//!
//! mongod accepts any numeric type where it wants an integer (`limit: 1.0`,
//! `w: 1.0` as sent by the 3.2 shell) and numbers where it wants a boolean
//! (`upsert: 1`). These helpers do the same, and name the field and the
//! message part in every error.

use bson::spec::ElementType;
use bson::{RawArray, RawBsonRef, RawDocument, Timestamp};

use super::ModelError;

/// The first key of a document (the command name).
pub fn first_key(doc: &RawDocument) -> Option<&str> {
    doc.iter_elements()
        .next()
        .and_then(|e| e.ok())
        .map(|e| e.key().as_str())
}

/// The first element (command name and its argument).
pub fn first_element(doc: &RawDocument) -> Option<(&str, RawBsonRef<'_>)> {
    let e = doc.iter_elements().next()?.ok()?;
    Some((e.key().as_str(), e.value().ok()?))
}

/// An integral number of any BSON numeric type.
pub fn as_i64(v: RawBsonRef<'_>) -> Option<i64> {
    match v {
        RawBsonRef::Int32(i) => Some(i as i64),
        RawBsonRef::Int64(i) => Some(i),
        RawBsonRef::Double(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(f as i64),
        _ => None,
    }
}

/// mongod's `trueValue()`: booleans, and numbers other than zero.
pub fn truthy(v: RawBsonRef<'_>) -> Option<bool> {
    match v {
        RawBsonRef::Boolean(b) => Some(b),
        RawBsonRef::Int32(i) => Some(i != 0),
        RawBsonRef::Int64(i) => Some(i != 0),
        RawBsonRef::Double(f) => Some(f != 0.0),
        RawBsonRef::Null | RawBsonRef::Undefined => Some(false),
        _ => None,
    }
}

fn wrong(ctx: &'static str, field: &str, expected: &'static str, v: RawBsonRef<'_>) -> ModelError {
    ModelError::WrongType {
        context: ctx,
        field: field.to_owned(),
        expected,
        found: v.element_type(),
    }
}

/// Looks a field up; BSON errors become [`ModelError::Bson`].
pub fn get<'a>(
    doc: &'a RawDocument,
    key: &str,
    ctx: &'static str,
) -> Result<Option<RawBsonRef<'a>>, ModelError> {
    doc.get(key).map_err(|e| ModelError::Bson {
        context: ctx,
        reason: e.to_string(),
    })
}

pub fn opt_i64(doc: &RawDocument, key: &str, ctx: &'static str) -> Result<Option<i64>, ModelError> {
    match get(doc, key, ctx)? {
        None | Some(RawBsonRef::Null) => Ok(None),
        Some(v) => as_i64(v)
            .map(Some)
            .ok_or_else(|| wrong(ctx, key, "integer", v)),
    }
}

pub fn opt_bool(
    doc: &RawDocument,
    key: &str,
    ctx: &'static str,
) -> Result<Option<bool>, ModelError> {
    match get(doc, key, ctx)? {
        None => Ok(None),
        Some(v) => truthy(v)
            .map(Some)
            .ok_or_else(|| wrong(ctx, key, "boolean", v)),
    }
}

pub fn opt_str<'a>(
    doc: &'a RawDocument,
    key: &str,
    ctx: &'static str,
) -> Result<Option<&'a str>, ModelError> {
    match get(doc, key, ctx)? {
        None => Ok(None),
        Some(RawBsonRef::String(s)) => Ok(Some(s)),
        Some(v) => Err(wrong(ctx, key, "string", v)),
    }
}

pub fn opt_doc<'a>(
    doc: &'a RawDocument,
    key: &str,
    ctx: &'static str,
) -> Result<Option<&'a RawDocument>, ModelError> {
    match get(doc, key, ctx)? {
        None | Some(RawBsonRef::Null) => Ok(None),
        Some(RawBsonRef::Document(d)) => Ok(Some(d)),
        Some(v) => Err(wrong(ctx, key, "document", v)),
    }
}

pub fn opt_array<'a>(
    doc: &'a RawDocument,
    key: &str,
    ctx: &'static str,
) -> Result<Option<&'a RawArray>, ModelError> {
    match get(doc, key, ctx)? {
        None | Some(RawBsonRef::Null) => Ok(None),
        Some(RawBsonRef::Array(a)) => Ok(Some(a)),
        Some(v) => Err(wrong(ctx, key, "array", v)),
    }
}

pub fn opt_timestamp(
    doc: &RawDocument,
    key: &str,
    ctx: &'static str,
) -> Result<Option<Timestamp>, ModelError> {
    match get(doc, key, ctx)? {
        None => Ok(None),
        Some(RawBsonRef::Timestamp(t)) => Ok(Some(t)),
        Some(v) => Err(wrong(ctx, key, "timestamp", v)),
    }
}

pub fn req_doc<'a>(
    doc: &'a RawDocument,
    key: &'static str,
    ctx: &'static str,
) -> Result<&'a RawDocument, ModelError> {
    opt_doc(doc, key, ctx)?.ok_or(ModelError::Missing {
        context: ctx,
        field: key,
    })
}

pub fn req_str<'a>(
    doc: &'a RawDocument,
    key: &'static str,
    ctx: &'static str,
) -> Result<&'a str, ModelError> {
    opt_str(doc, key, ctx)?.ok_or(ModelError::Missing {
        context: ctx,
        field: key,
    })
}

/// All elements of an array that must hold documents.
pub fn docs_of<'a>(
    arr: &'a RawArray,
    field: &str,
    ctx: &'static str,
) -> Result<Vec<&'a RawDocument>, ModelError> {
    let mut out = Vec::new();
    for v in arr {
        match v.map_err(|e| ModelError::Bson {
            context: ctx,
            reason: e.to_string(),
        })? {
            RawBsonRef::Document(d) => out.push(d),
            v => return Err(wrong(ctx, field, "array of documents", v)),
        }
    }
    Ok(out)
}

/// The element type name, for messages.
pub fn type_name(t: ElementType) -> &'static str {
    match t {
        ElementType::Double => "double",
        ElementType::String => "string",
        ElementType::EmbeddedDocument => "document",
        ElementType::Array => "array",
        ElementType::Binary => "binary",
        ElementType::Boolean => "bool",
        ElementType::Int32 => "int",
        ElementType::Int64 => "long",
        ElementType::Null => "null",
        ElementType::Timestamp => "timestamp",
        ElementType::ObjectId => "objectId",
        ElementType::DateTime => "date",
        _ => "other",
    }
}
