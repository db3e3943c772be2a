//! Values of an `sstabledump` file back to the bytes Cassandra stores.
//!
//! `sstabledump` prints cell values and clustering values with the type's
//! `toJSONString` (what `SELECT JSON` writes: numbers bare, text quoted, blobs as
//! `"0x…"`) and partition key components and collection paths with `getString`
//! (text; blobs as hex without `0x`). Both are read as CQL literals of the column's
//! type through the decoder's own literal conversion (`extract::value`), so the
//! bytes are the ones a write of that literal stores.

use std::borrow::Cow;

use anyhow::{anyhow, bail, Result};
use serde_json::Value as Json;
use tidemark_cql::statement::Term;
use tidemark_cql::{ColumnType, Value};

use crate::decode::cql::extract::value::{encode, literal_value};

/// The serialized value of `j` (a `toJSONString` or `getString` rendering) as type `ty`.
pub fn to_bytes(j: &Json, ty: &ColumnType) -> Result<Vec<u8>> {
    Ok(encode(&to_value(j, ty)?).to_vec())
}

fn scalar(j: &Json, ty: &ColumnType) -> Result<Value> {
    let no_bind = |_: usize, _: &ColumnType| Err("bind marker in a dump");
    let text;
    let term = match j {
        Json::Null => Term::Null,
        Json::Bool(b) => Term::Bool(*b),
        Json::Number(n) => {
            text = n.to_string();
            if text.contains(['.', 'e', 'E']) {
                Term::Float(&text)
            } else {
                Term::Integer(&text)
            }
        }
        Json::String(s) => match ty {
            ColumnType::Blob => {
                text = if s.starts_with("0x") {
                    s.clone()
                } else {
                    format!("0x{s}")
                };
                Term::Blob(&text)
            }
            ColumnType::Boolean => match s.to_ascii_lowercase().as_str() {
                "true" => Term::Bool(true),
                "false" => Term::Bool(false),
                _ => bail!("{s:?} is not a boolean"),
            },
            _ => Term::Str(Cow::Borrowed(s)),
        },
        _ => bail!("{j} is not a {ty:?} value"),
    };
    literal_value(&term, ty, &no_bind).map_err(|why| anyhow!("{j} as {ty:?}: {why}"))
}

fn to_value(j: &Json, ty: &ColumnType) -> Result<Value> {
    use ColumnType as T;
    let ty = ty.effective();
    Ok(match (j, ty) {
        (Json::Array(items), T::List(e)) => Value::List(
            items
                .iter()
                .map(|x| to_value(x, e))
                .collect::<Result<_>>()?,
        ),
        (Json::Array(items), T::Set(e)) => Value::Set(
            items
                .iter()
                .map(|x| to_value(x, e))
                .collect::<Result<_>>()?,
        ),
        (Json::Array(items), T::Vector { element, .. }) => Value::Vector(
            items
                .iter()
                .map(|x| to_value(x, element))
                .collect::<Result<_>>()?,
        ),
        (Json::Array(items), T::Tuple(ts)) => Value::Tuple(
            items
                .iter()
                .zip(ts)
                .map(|(x, t)| to_value(x, t))
                .collect::<Result<_>>()?,
        ),
        (Json::Object(m), T::Map(kt, vt)) => Value::Map(
            m.iter()
                .map(|(k, v)| Ok((map_key(k, kt)?, to_value(v, vt)?)))
                .collect::<Result<_>>()?,
        ),
        (Json::Object(m), T::Udt { fields, .. }) => Value::Udt(
            fields
                .iter()
                .map(|(f, ft)| match m.get(f.as_str()) {
                    Some(v) => to_value(v, ft),
                    None => Ok(Value::Null),
                })
                .collect::<Result<_>>()?,
        ),
        _ => scalar(j, ty)?,
    })
}

/// A map key of `SELECT JSON` text: always a JSON string, holding the key's own
/// JSON text when the key type is not a string type.
fn map_key(k: &str, ty: &ColumnType) -> Result<Value> {
    match ty.effective() {
        ColumnType::Varchar | ColumnType::Ascii => scalar(&Json::String(k.to_string()), ty),
        _ => match serde_json::from_str::<Json>(k) {
            Ok(j) => to_value(&j, ty),
            Err(_) => scalar(&Json::String(k.to_string()), ty),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_renderings_become_the_stored_bytes() {
        assert_eq!(
            to_bytes(&Json::from(10), &ColumnType::BigInt).unwrap(),
            10i64.to_be_bytes()
        );
        assert_eq!(
            to_bytes(&Json::from("1"), &ColumnType::Int).unwrap(),
            1i32.to_be_bytes()
        );
        assert_eq!(
            to_bytes(&Json::from("two"), &ColumnType::Varchar).unwrap(),
            b"two"
        );
        assert_eq!(
            to_bytes(&Json::from("0x0aff"), &ColumnType::Blob).unwrap(),
            [10, 255]
        );
        assert_eq!(
            to_bytes(&Json::from("0aff"), &ColumnType::Blob).unwrap(),
            [10, 255]
        );
        assert!(to_bytes(&Json::from("x"), &ColumnType::Int).is_err());
    }
}
