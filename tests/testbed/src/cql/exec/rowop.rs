//! Row operations of INSERT/UPDATE/DELETE on one row: plain cells, collection
//! overwrites and element operations (append, prepend, remove, set/delete by key or
//! index), counter increments, and column deletions.

use super::ctx::Bound;
use super::mutation::{be_int, resolve, Val};
use crate::cql::errors::invalid;
use crate::cql::storage::cell::{Cell, Deletion};
use crate::cql::storage::collection;
use crate::cql::storage::collection::{
    append_path, field_path, is_multicell, prepend_path, split, split_udt,
};
use crate::cql::storage::schema::ColumnDef;
use crate::cql::storage::store::{Complex, LiveRow, Row};
use bytes::Bytes;
use tidemark_cql::message::ErrorBody;
use tidemark_cql::statement::{AssignOp, ColumnRef, Term};
use tidemark_cql::ColumnType;

/// Everything a row operation needs.
pub struct Op<'a> {
    pub ts: i64,
    pub ttl: i32,
    pub now: i32,
    pub node: usize,
    pub bound: &'a Bound,
    /// The row as a read sees it now (lists and counters only).
    pub current: &'a LiveRow,
}

impl Op<'_> {
    pub fn cell(&self, v: Bytes) -> Cell {
        if self.ttl > 0 {
            Cell::expiring(self.ts, v, self.ttl, self.now)
        } else {
            Cell::live(self.ts, v)
        }
    }

    fn tomb(&self) -> Cell {
        Cell::tombstone(self.ts, self.now)
    }

    fn deletion(&self, ts: i64) -> Deletion {
        Deletion {
            timestamp: ts,
            local_deletion_time: self.now,
        }
    }

    fn counter_total(&self, c: &ColumnDef, delta: i64) -> Cell {
        let cur = self.current.cells.get(&c.name);
        let total = cur
            .and_then(|x| be_int(&x.value))
            .unwrap_or(0)
            .wrapping_add(delta);
        // The new total must win over the old one even with a client timestamp.
        let ts = cur.map_or(self.ts, |x| self.ts.max(x.timestamp.saturating_add(1)));
        Cell::live(ts, Bytes::copy_from_slice(&total.to_be_bytes()))
    }

    fn list_paths(&self, c: &ColumnDef) -> Vec<(Bytes, Bytes)> {
        let mut e = self
            .current
            .complex
            .get(&c.name)
            .cloned()
            .unwrap_or_default();
        collection::list_order(&mut e);
        e.into_iter().map(|(p, c)| (p, c.value)).collect()
    }

    fn list_index(&self, c: &ColumnDef, idx: &Term<'_>) -> Result<Bytes, ErrorBody> {
        let Val::Set(b) = resolve(idx, &ColumnType::Int, self.bound)? else {
            return Err(invalid("Invalid null value for list index"));
        };
        let i = be_int(&b).ok_or_else(|| invalid("invalid list index"))?;
        let paths = self.list_paths(c);
        usize::try_from(i)
            .ok()
            .and_then(|i| paths.get(i))
            .map(|(p, _)| p.clone())
            .ok_or_else(|| {
                invalid(format!(
                    "List index {i} out of bound, list has size {}",
                    paths.len()
                ))
            })
    }

    /// Adds elements of a serialized collection to a non-frozen column.
    fn add(
        &self,
        cx: &mut Complex,
        c: &ColumnDef,
        v: &[u8],
        prepend: bool,
    ) -> Result<(), ErrorBody> {
        match &c.ty {
            ColumnType::List(_) => {
                let items = split(v, 1).map_err(invalid)?;
                if prepend {
                    for e in items.into_iter().rev() {
                        cx.cells.insert(prepend_path(self.node), self.cell(e));
                    }
                } else {
                    for e in items {
                        cx.cells.insert(append_path(self.node), self.cell(e));
                    }
                }
            }
            ColumnType::Set(_) => {
                for e in split(v, 1).map_err(invalid)? {
                    cx.cells.insert(e, self.cell(Bytes::new()));
                }
            }
            ColumnType::Map(..) => {
                let kv = split(v, 2).map_err(invalid)?;
                for pair in kv.chunks(2) {
                    cx.cells.insert(pair[0].clone(), self.cell(pair[1].clone()));
                }
            }
            ColumnType::Udt { fields, .. } if !prepend => {
                let vals = split_udt(v, fields.len()).map_err(invalid)?;
                for (i, f) in vals.into_iter().enumerate() {
                    if let Some(f) = f {
                        cx.cells.insert(field_path(i), self.cell(f));
                    }
                }
            }
            _ => return Err(invalid(format!("{} is not a collection", c.name))),
        }
        Ok(())
    }

    /// `c = value` (INSERT or UPDATE SET).
    pub fn set(&self, row: &mut Row, c: &ColumnDef, v: Val) -> Result<(), ErrorBody> {
        if c.ty == ColumnType::Counter {
            return Err(invalid(format!(
                "Cannot set the value of counter column {} (counters can only be incremented/decremented, not set)",
                c.name
            )));
        }
        if is_multicell(&c.ty, &c.type_text) {
            let cx = row.complex.entry(c.name.clone()).or_default();
            match v {
                Val::Set(b) => {
                    // Overwrite: delete what was there just before this write.
                    cx.deletion = Some(self.deletion(self.ts.saturating_sub(1)));
                    self.add(cx, c, &b, false)?;
                }
                Val::Null => cx.deletion = Some(self.deletion(self.ts)),
                Val::Unset => {}
            }
            return Ok(());
        }
        match v {
            Val::Set(b) => {
                row.cells.insert(c.name.clone(), self.cell(b));
            }
            Val::Null => {
                row.cells.insert(c.name.clone(), self.tomb());
            }
            Val::Unset => {}
        }
        Ok(())
    }

    pub fn assign(&self, row: &mut Row, c: &ColumnDef, op: &AssignOp<'_>) -> Result<(), ErrorBody> {
        let multicell = is_multicell(&c.ty, &c.type_text);
        let counter = c.ty == ColumnType::Counter;
        let operand = |t: &Term<'_>, ty: &ColumnType| match resolve(t, ty, self.bound)? {
            Val::Set(b) => Ok(Some(b)),
            Val::Null => Err(invalid(format!("Invalid null value for {}", c.name))),
            Val::Unset => Ok(None),
        };
        match op {
            AssignOp::Set(t) => self.set(row, c, resolve(t, &c.ty, self.bound)?),
            AssignOp::Add(t) | AssignOp::Prepend(t) | AssignOp::Subtract(t) if counter => {
                let Some(b) = operand(t, &ColumnType::BigInt)? else {
                    return Ok(());
                };
                let d = be_int(&b).ok_or_else(|| invalid("invalid counter delta"))?;
                let d = if matches!(op, AssignOp::Subtract(_)) {
                    d.wrapping_neg()
                } else {
                    d
                };
                row.cells.insert(c.name.clone(), self.counter_total(c, d));
                Ok(())
            }
            _ if !multicell => Err(invalid(format!(
                "Invalid operation for non counter, non collection column {}",
                c.name
            ))),
            AssignOp::Add(t) | AssignOp::Prepend(t) => {
                let Some(b) = operand(t, &c.ty)? else {
                    return Ok(());
                };
                let cx = row.complex.entry(c.name.clone()).or_default();
                self.add(cx, c, &b, matches!(op, AssignOp::Prepend(_)))
            }
            AssignOp::Subtract(t) => {
                let ty = match &c.ty {
                    ColumnType::Map(k, _) => ColumnType::Set(k.clone()),
                    t => t.clone(),
                };
                let Some(b) = operand(t, &ty)? else {
                    return Ok(());
                };
                let items = split(&b, 1).map_err(invalid)?;
                let paths: Vec<Bytes> = match &c.ty {
                    ColumnType::List(_) => self
                        .list_paths(c)
                        .into_iter()
                        .filter(|(_, v)| items.contains(v))
                        .map(|(p, _)| p)
                        .collect(),
                    _ => items,
                };
                let cx = row.complex.entry(c.name.clone()).or_default();
                for p in paths {
                    cx.cells.insert(p, self.tomb());
                }
                Ok(())
            }
            AssignOp::SetElement { key, value } => {
                let (path, vty) = match &c.ty {
                    ColumnType::Map(k, v) => {
                        let Val::Set(p) = resolve(key, k, self.bound)? else {
                            return Err(invalid("Invalid null map key"));
                        };
                        (p, v.as_ref().clone())
                    }
                    ColumnType::List(e) => (self.list_index(c, key)?, e.as_ref().clone()),
                    _ => {
                        return Err(invalid(format!(
                            "Invalid operation for set column {}",
                            c.name
                        )))
                    }
                };
                let cell = match resolve(value, &vty, self.bound)? {
                    Val::Set(b) => self.cell(b),
                    Val::Null => self.tomb(),
                    Val::Unset => return Ok(()),
                };
                row.complex
                    .entry(c.name.clone())
                    .or_default()
                    .cells
                    .insert(path, cell);
                Ok(())
            }
            AssignOp::SetField { field, value } => {
                let (i, fty) = udt_field(c, field.as_str())?;
                let cell = match resolve(value, &fty, self.bound)? {
                    Val::Set(b) => self.cell(b),
                    Val::Null => self.tomb(),
                    Val::Unset => return Ok(()),
                };
                row.complex
                    .entry(c.name.clone())
                    .or_default()
                    .cells
                    .insert(field_path(i), cell);
                Ok(())
            }
        }
    }

    pub fn delete(&self, row: &mut Row, c: &ColumnDef, r: &ColumnRef<'_>) -> Result<(), ErrorBody> {
        let multicell = is_multicell(&c.ty, &c.type_text);
        match r {
            ColumnRef::Column(_) if multicell => {
                row.complex.entry(c.name.clone()).or_default().deletion =
                    Some(self.deletion(self.ts));
            }
            ColumnRef::Column(_) => {
                row.cells.insert(c.name.clone(), self.tomb());
            }
            ColumnRef::Element(_, key) if multicell => {
                let path = match &c.ty {
                    ColumnType::List(_) => self.list_index(c, key)?,
                    ColumnType::Map(k, _) | ColumnType::Set(k) => {
                        match resolve(key, k, self.bound)? {
                            Val::Set(p) => p,
                            _ => return Err(invalid("Invalid null collection element")),
                        }
                    }
                    _ => return Err(invalid(format!("Invalid element deletion on {}", c.name))),
                };
                row.complex
                    .entry(c.name.clone())
                    .or_default()
                    .cells
                    .insert(path, self.tomb());
            }
            ColumnRef::Field(_, f) if multicell => {
                let (i, _) = udt_field(c, f.as_str())?;
                row.complex
                    .entry(c.name.clone())
                    .or_default()
                    .cells
                    .insert(field_path(i), self.tomb());
            }
            _ => {
                return Err(invalid(format!(
                    "Invalid element or field deletion on column {}",
                    c.name
                )))
            }
        }
        Ok(())
    }
}

/// The position and type of field `name` of a non-frozen UDT column.
fn udt_field(c: &ColumnDef, name: &str) -> Result<(usize, ColumnType), ErrorBody> {
    match &c.ty {
        ColumnType::Udt { fields, .. } if is_multicell(&c.ty, &c.type_text) => fields
            .iter()
            .position(|(n, _)| n.as_ref() == name)
            .map(|i| (i, fields[i].1.clone()))
            .ok_or_else(|| invalid(format!("Unknown field {name} in {}", c.name))),
        ColumnType::Udt { .. } => Err(invalid(format!(
            "Invalid operation for frozen UDT column {}",
            c.name
        ))),
        _ => Err(invalid(format!("{} is not a user type", c.name))),
    }
}
