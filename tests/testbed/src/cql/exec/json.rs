//! `INSERT ... JSON '{...}'`: a JSON object mapped to the table's columns and each
//! value serialized for its column type (numbers, strings, booleans, UUID and blob
//! strings, arrays for lists/sets/tuples, objects for maps and UDTs). Columns absent
//! from the object become null, or stay unset with `DEFAULT UNSET`.

use super::mutation::Val;
use crate::cql::language::literal::{lit_bytes, Lit};
use crate::cql::storage::collection::encode;
use crate::cql::storage::collection::push_value;
use crate::cql::storage::order;
use crate::cql::storage::schema::Table;
use bytes::Bytes;
use serde_json::Value as J;
use tidemark_cql::ColumnType;

/// The `(column, value)` pairs of an INSERT JSON document.
pub fn json_columns(
    table: &Table,
    text: &[u8],
    unset_missing: bool,
) -> Result<Vec<(String, Val)>, String> {
    let doc: J =
        serde_json::from_slice(text).map_err(|e| format!("Could not decode JSON string: {e}"))?;
    let J::Object(obj) = doc else {
        return Err("INSERT JSON needs a JSON object".into());
    };
    for k in obj.keys() {
        let name = k
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .map_or_else(|| k.to_lowercase(), str::to_string);
        if table.column(&name).is_none() {
            return Err(format!("JSON values map contains unrecognized column: {k}"));
        }
    }
    let mut out = Vec::new();
    for c in &table.columns {
        let found = obj.iter().find(|(k, _)| {
            k.strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .map_or_else(|| k.to_lowercase(), str::to_string)
                == c.name
        });
        let v = match found {
            Some((_, J::Null)) => Val::Null,
            Some((_, v)) => Val::Set(json_bytes(&c.ty, v, 0)?),
            None if unset_missing => Val::Unset,
            None => Val::Null,
        };
        out.push((c.name.clone(), v));
    }
    Ok(out)
}

fn json_bytes(ty: &ColumnType, v: &J, depth: usize) -> Result<Bytes, String> {
    use ColumnType as T;
    if depth > 16 {
        return Err("JSON nesting too deep".into());
    }
    let bad = || format!("Invalid JSON value {v} for type {}", ty.cql_name());
    let scalar = |l: Lit| lit_bytes(ty, &l).and_then(|b| b.ok_or_else(bad));
    match (ty.effective(), v) {
        (T::List(e) | T::Set(e), J::Array(items)) => {
            let mut elems = Vec::new();
            for i in items {
                elems.push(json_bytes(e, i, depth + 1)?);
            }
            if matches!(ty.effective(), T::Set(_)) {
                elems.sort_by(|a, b| order::compare(e, a, b));
                elems.dedup();
            }
            Ok(encode(&elems, 1))
        }
        (T::Map(k, val), J::Object(m)) => {
            let mut kv = Vec::new();
            for (key, x) in m {
                // Keys are JSON strings; non-text keys hold their value as JSON text.
                let kj = if k.is_text() {
                    J::String(key.clone())
                } else {
                    serde_json::from_str(key).unwrap_or(J::String(key.clone()))
                };
                kv.push((
                    json_bytes(k, &kj, depth + 1)?,
                    json_bytes(val, x, depth + 1)?,
                ));
            }
            kv.sort_by(|a, b| order::compare(k, &a.0, &b.0));
            let flat: Vec<Bytes> = kv.into_iter().flat_map(|(a, b)| [a, b]).collect();
            Ok(encode(&flat, 2))
        }
        (T::Tuple(types), J::Array(items)) => {
            let mut out = Vec::new();
            for (t, x) in types.iter().zip(items) {
                let b = if x.is_null() {
                    None
                } else {
                    Some(json_bytes(t, x, depth + 1)?)
                };
                push_value(&mut out, b.as_deref());
            }
            Ok(Bytes::from(out))
        }
        (T::Udt { fields, .. }, J::Object(m)) => {
            let mut out = Vec::new();
            for (name, t) in fields {
                let b = match m.get(name.as_str()) {
                    Some(x) if !x.is_null() => Some(json_bytes(t, x, depth + 1)?),
                    _ => None,
                };
                push_value(&mut out, b.as_deref());
            }
            Ok(Bytes::from(out))
        }
        (_, J::Bool(b)) => scalar(Lit::Bool(*b)),
        (_, J::Number(n)) => scalar(Lit::Num(n.to_string())),
        (T::Uuid | T::Timeuuid, J::String(s)) => scalar(Lit::Uuid(s.clone())),
        (T::Blob, J::String(s)) => scalar(Lit::Blob(s.clone())),
        (t, J::String(s)) if !t.is_text() && !matches!(t, T::Inet) => {
            // Numbers and booleans may be given as strings.
            let l = match s.as_str() {
                "true" => Lit::Bool(true),
                "false" => Lit::Bool(false),
                n => Lit::Num(n.to_string()),
            };
            scalar(l)
        }
        (_, J::String(s)) => scalar(Lit::Str(s.clone())),
        _ => Err(bad()),
    }
}
