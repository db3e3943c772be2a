//! A version's rows as JSON: CQL rows as Cassandra's `SELECT JSON` writes them, MongoDB
//! documents as mongoexport's relaxed Extended JSON — so `COPY FROM`-style loaders and
//! `mongoimport` read an export back, and one renderer serves `export` and the tests.
//!
//! CQL values are rendered by the decoder's own renderer
//! (`decode::cql::extract::bound::typed`), the one the `write` lines use. A collection
//! or UDT kept as element cells is first put back together into the serialized form
//! the protocol uses for the whole value (count, then each element as `[bytes]`; UDT
//! fields in order), so sets come out in Cassandra's order and map keys rendered as
//! `SELECT JSON` renders them.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Map, Value};

use crate::decode::cql::extract::bound::typed;
use crate::decode::cql::protocol::types::format;
use crate::decode::cql::protocol::ColumnType;
use crate::decode::cql::schema::Schema;
use crate::decode::mongo::tidemark_mongo::bson::RawDocument;
use crate::decode::mongo::values;
use crate::store::{Cell, CellKind, CellOp};

/// The `SELECT JSON` object of a CQL row: key columns (from the log's key), then every
/// column of the table in name order (`null` when the row has no value), or, when the
/// table's schema is not known, the columns the row has.
pub fn cql_row(namespace: &str, key: &str, cells: &[Cell], schema: &Schema) -> Value {
    let (keyspace, table) = namespace.split_once('.').unwrap_or((namespace, ""));
    let mut out = match serde_json::from_str::<Value>(key) {
        Ok(Value::Object(o)) => o,
        _ => Map::new(),
    };
    let known = schema.table(keyspace, table);
    let mut columns: Vec<&str> = cells.iter().map(|c| &*c.column).collect();
    if let Some(t) = known {
        columns.extend(t.types.keys().map(String::as_str).filter(|c| !t.is_key(c)));
    }
    columns.sort_unstable();
    columns.dedup();
    for column in columns {
        if out.contains_key(column) {
            continue;
        }
        let of_column: Vec<&Cell> = cells.iter().filter(|c| &*c.column == column).collect();
        let ty = schema.column_type(keyspace, table, column).or_else(|| {
            of_column
                .first()
                .and_then(|c| schema.parse_type(keyspace, &c.cql_type))
        });
        out.insert(column.to_string(), column_value(ty, &of_column));
    }
    Value::Object(out)
}

/// A blob as `SELECT JSON` writes it (`0x…`), with the decoder's spelling.
fn blob(b: &[u8]) -> Value {
    Value::String(format::blob(b))
}

/// One column's value.
fn column_value(ty: Option<ColumnType>, cells: &[&Cell]) -> Value {
    let Some(first) = cells.first() else {
        return Value::Null;
    };
    if first.kind == CellKind::CounterShard {
        return <[u8; 8]>::try_from(first.value.as_ref())
            .map(|b| Value::from(i64::from_be_bytes(b)))
            .unwrap_or(Value::Null);
    }
    if &*first.cql_type == "json" {
        return serde_json::from_slice(&first.value).unwrap_or(Value::Null);
    }
    let whole = cells.len() == 1
        && first.path.is_none()
        && !matches!(first.op, CellOp::Append | CellOp::Prepend);
    match ty {
        Some(ty) if whole => typed(&ty, &Bytes::copy_from_slice(&first.value)),
        Some(ty) => match assemble(&ty, cells) {
            Some(bytes) => typed(&ty, &bytes),
            None => blob(&first.value),
        },
        None if whole => blob(&first.value),
        None => Value::Array(cells.iter().map(|c| blob(&c.value)).collect()),
    }
}

/// The serialized whole value of a collection or UDT from its element cells (in path
/// order, which is list order for lists).
fn assemble(ty: &ColumnType, cells: &[&Cell]) -> Option<Bytes> {
    let mut b = BytesMut::new();
    let item = |b: &mut BytesMut, v: &[u8]| {
        b.put_i32(v.len() as i32);
        b.put_slice(v);
    };
    match ty.effective() {
        ColumnType::Map(..) => {
            b.put_i32(cells.len() as i32);
            for c in cells {
                item(&mut b, c.path.as_deref()?);
                item(&mut b, &c.value);
            }
        }
        ColumnType::Set(_) => {
            b.put_i32(cells.len() as i32);
            for c in cells {
                item(&mut b, c.path.as_deref()?);
            }
        }
        ColumnType::List(_) => {
            b.put_i32(cells.len() as i32);
            for c in cells {
                item(&mut b, &c.value);
            }
        }
        ColumnType::Udt { fields, .. } => {
            let mut by_index: Vec<Option<&[u8]>> = vec![None; fields.len()];
            for c in cells {
                let i = u16::from_be_bytes(c.path.as_deref()?.try_into().ok()?) as usize;
                *by_index.get_mut(i)? = Some(&c.value);
            }
            for f in by_index {
                match f {
                    Some(v) => item(&mut b, v),
                    None => b.put_i32(-1),
                }
            }
        }
        _ => return None,
    }
    Some(b.freeze())
}

/// A MongoDB document as relaxed Extended JSON (mongoexport's default).
pub fn mongo_document(bytes: &[u8]) -> Value {
    match RawDocument::from_bytes(bytes) {
        Ok(d) => values::doc(d),
        Err(_) => blob(bytes),
    }
}
