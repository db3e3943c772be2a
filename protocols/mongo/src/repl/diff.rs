//! The `$v: 2` update diff format (MongoDB 5.0+ oplog update entries).
//!
//! A document diff has sections `u` (fields set to new values), `i` (fields
//! inserted), `d` (fields deleted) and `s<field>` (a nested diff for one
//! field). A nested diff with `a: true` is an array diff: `l` (new length),
//! `u<index>` (element replaced) and `s<index>` (element diffed).

use bson::{RawBsonRef, RawDocument};

use crate::model::fields;
use crate::model::ModelError;

const CTX: &str = "update diff";
/// Deeper diffs are rejected (documents nest at most ~200 levels anyway).
const MAX_DEPTH: usize = 200;

/// A diff of a document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DocDiff<'a> {
    /// `u`: fields set to new values.
    pub update: Option<&'a RawDocument>,
    /// `i`: fields added.
    pub insert: Option<&'a RawDocument>,
    /// `d`: fields removed.
    pub delete: Vec<&'a str>,
    /// `s<field>`: nested diffs.
    pub sub: Vec<(&'a str, SubDiff<'a>)>,
}

/// A nested diff.
#[derive(Debug, Clone, PartialEq)]
pub enum SubDiff<'a> {
    Doc(DocDiff<'a>),
    Array(ArrayDiff<'a>),
}

/// A diff of an array.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ArrayDiff<'a> {
    /// `l`: the array is resized (truncated or padded with nulls) to this length.
    pub new_len: Option<i64>,
    /// `u<i>`: element `i` replaced.
    pub update: Vec<(u64, RawBsonRef<'a>)>,
    /// `s<i>`: element `i` diffed.
    pub sub: Vec<(u64, SubDiff<'a>)>,
}

impl<'a> DocDiff<'a> {
    /// Reads a document diff.
    pub fn parse(d: &'a RawDocument) -> Result<DocDiff<'a>, ModelError> {
        parse_doc(d, 0)
    }
}

fn bad(reason: String) -> ModelError {
    ModelError::Invalid {
        context: CTX,
        reason,
    }
}

fn parse_sub(d: &RawDocument, depth: usize) -> Result<SubDiff<'_>, ModelError> {
    if depth > MAX_DEPTH {
        return Err(bad("diff nested too deeply".into()));
    }
    let is_array = fields::get(d, "a", CTX)?
        .and_then(fields::truthy)
        .unwrap_or(false);
    if is_array {
        parse_array(d, depth).map(SubDiff::Array)
    } else {
        parse_doc(d, depth).map(SubDiff::Doc)
    }
}

fn parse_doc(d: &RawDocument, depth: usize) -> Result<DocDiff<'_>, ModelError> {
    let mut out = DocDiff::default();
    for el in d.iter_elements() {
        let el = el.map_err(|e| bad(e.to_string()))?;
        let key = el.key().as_str();
        let v = el.value().map_err(|e| bad(e.to_string()))?;
        match (key, v) {
            ("u", RawBsonRef::Document(u)) => out.update = Some(u),
            ("i", RawBsonRef::Document(i)) => out.insert = Some(i),
            ("d", RawBsonRef::Document(del)) => {
                for e in del.iter_elements() {
                    let e = e.map_err(|e| bad(e.to_string()))?;
                    out.delete.push(e.key().as_str());
                }
            }
            (k, RawBsonRef::Document(sub)) if k.len() > 1 && k.starts_with('s') => {
                out.sub.push((&k[1..], parse_sub(sub, depth + 1)?));
            }
            (k, v) => {
                return Err(bad(format!(
                    "unexpected section `{k}` of type {}",
                    fields::type_name(v.element_type())
                )))
            }
        }
    }
    Ok(out)
}

fn parse_array(d: &RawDocument, depth: usize) -> Result<ArrayDiff<'_>, ModelError> {
    let mut out = ArrayDiff::default();
    for el in d.iter_elements() {
        let el = el.map_err(|e| bad(e.to_string()))?;
        let key = el.key().as_str();
        let v = el.value().map_err(|e| bad(e.to_string()))?;
        let index = |k: &str| -> Result<u64, ModelError> {
            k[1..]
                .parse::<u64>()
                .map_err(|_| bad(format!("bad array index in `{k}`")))
        };
        match key {
            "a" => {}
            "l" => out.new_len = fields::as_i64(v),
            k if k.starts_with('u') => out.update.push((index(k)?, v)),
            k if k.starts_with('s') => match v {
                RawBsonRef::Document(sub) => out.sub.push((index(k)?, parse_sub(sub, depth + 1)?)),
                _ => return Err(bad(format!("array subdiff `{k}` is not a document"))),
            },
            k => return Err(bad(format!("unexpected array diff section `{k}`"))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::rawdoc;

    #[test]
    fn parses_nested() {
        let d = rawdoc! {
            "u": {"a": 1}, "d": {"b": false},
            "sc": {"i": {"x": 2}},
            "sarr": {"a": true, "l": 3, "u0": 9, "s1": {"u": {"y": 1}}},
        };
        let diff = DocDiff::parse(&d).unwrap();
        assert_eq!(diff.delete, vec!["b"]);
        assert_eq!(diff.sub.len(), 2);
        match &diff.sub[1].1 {
            SubDiff::Array(a) => {
                assert_eq!(a.new_len, Some(3));
                assert_eq!(a.update[0].0, 0);
                assert_eq!(a.sub[0].0, 1);
            }
            other => panic!("{other:?}"),
        }
        assert!(DocDiff::parse(&rawdoc! {"zz": 1}).is_err());
    }
}
