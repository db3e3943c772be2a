//! INSERT/UPDATE/DELETE → partition updates: row markers, cells, tombstones,
//! collection elements, counter totals and range deletions, with the write timestamp
//! and TTL. Operations that need the current value (list index/removal, counters)
//! read it through `current`, as Cassandra's read-before-write does.

use super::cell::{Cell, Deletion};
use super::cluster::now_secs;
use super::collection::{append_path, is_multicell, prepend_path, split};
use super::exec::{invalid, Bound};
use super::json::json_columns;
use super::literal::term_bytes;
use super::murmur3::{partition_key_bytes, token};
use super::schema::{ColumnDef, Table};
use super::storage::{Complex, LiveRow, Partition, RangeTombstone, Row};
use bytes::Bytes;
use tidemark_cql::message::ErrorBody;
use tidemark_cql::statement::{
    using_timestamp, using_ttl, AssignOp, ColumnRef, InsertValues, Modification, Operator,
    Relation, RelationLhs, Rhs, Term,
};
use tidemark_cql::ColumnType;

/// A bound term: bytes, null, or unset (leave the column alone).
pub enum Val {
    Set(Bytes),
    Null,
    Unset,
}

pub fn resolve(term: &Term<'_>, ty: &ColumnType, bound: &Bound) -> Result<Val, ErrorBody> {
    if let Some(m) = term.as_marker() {
        return match bound.get(m.index) {
            Some(Some(b)) => Ok(Val::Set(b.clone())),
            Some(None) => Ok(Val::Null),
            None => Ok(Val::Unset),
        };
    }
    Ok(match term_bytes(ty, term).map_err(invalid)? {
        Some(b) => Val::Set(b),
        None => Val::Null,
    })
}

fn int_of(
    term: Option<&Term<'_>>,
    bound: &Bound,
    ty: ColumnType,
) -> Result<Option<i64>, ErrorBody> {
    let Some(t) = term else { return Ok(None) };
    Ok(match resolve(t, &ty, bound)? {
        Val::Set(b) => Some(be_int(&b).ok_or_else(|| invalid("invalid TIMESTAMP/TTL value"))?),
        _ => None,
    })
}

fn be_int(b: &[u8]) -> Option<i64> {
    match b.len() {
        8 => Some(i64::from_be_bytes(b.try_into().ok()?)),
        4 => Some(i64::from(i32::from_be_bytes(b.try_into().ok()?))),
        _ => None,
    }
}

/// Reads the current (replica-merged) partition for read-before-write operations.
pub type Current<'a> = &'a dyn Fn(&Bytes) -> Partition;

/// Everything a row operation needs.
struct Op<'a> {
    ts: i64,
    ttl: i32,
    now: i32,
    node: usize,
    bound: &'a Bound,
    /// The row as a read sees it now (lists and counters only).
    current: &'a LiveRow,
}

impl Op<'_> {
    fn cell(&self, v: Bytes) -> Cell {
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
        let ts = cur.map_or(self.ts, |x| self.ts.max(x.timestamp + 1));
        Cell::live(ts, Bytes::copy_from_slice(&total.to_be_bytes()))
    }

    fn list_paths(&self, c: &ColumnDef) -> Vec<(Bytes, Bytes)> {
        let mut e = self
            .current
            .complex
            .get(&c.name)
            .cloned()
            .unwrap_or_default();
        super::collection::list_order(&mut e);
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
            _ => return Err(invalid(format!("{} is not a collection", c.name))),
        }
        Ok(())
    }

    /// `c = value` (INSERT or UPDATE SET).
    fn set(&self, row: &mut Row, c: &ColumnDef, v: Val) -> Result<(), ErrorBody> {
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
                    cx.deletion = Some(self.deletion(self.ts - 1));
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

    fn assign(&self, row: &mut Row, c: &ColumnDef, op: &AssignOp<'_>) -> Result<(), ErrorBody> {
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
            AssignOp::SetField { .. } => Err(invalid(
                "UDT field updates are not supported by the testbed (UDTs are stored frozen)",
            )),
        }
    }

    fn delete(&self, row: &mut Row, c: &ColumnDef, r: &ColumnRef<'_>) -> Result<(), ErrorBody> {
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
                    _ => unreachable!("multicell is a collection"),
                };
                row.complex
                    .entry(c.name.clone())
                    .or_default()
                    .cells
                    .insert(path, self.tomb());
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

/// The restriction of one key column: its values (several for IN).
fn key_values(r: &Relation<'_>, c: &ColumnDef, bound: &Bound) -> Result<Vec<Bytes>, ErrorBody> {
    let one = |t: &Term<'_>| match resolve(t, &c.ty, bound)? {
        Val::Set(b) => Ok(b),
        _ => Err(invalid(format!(
            "Invalid null value for key column {}",
            c.name
        ))),
    };
    match (r.op, &r.rhs) {
        (Operator::Eq, Rhs::Term(t)) => Ok(vec![one(t)?]),
        (Operator::In, Rhs::List(ts)) => ts.iter().map(one).collect(),
        (Operator::In, Rhs::Term(t)) => {
            match resolve(t, &ColumnType::List(Box::new(c.ty.clone())), bound)? {
                Val::Set(b) => split(&b, 1).map_err(invalid),
                _ => Err(invalid(format!("Invalid null value for IN on {}", c.name))),
            }
        }
        _ => Err(invalid(format!("unsupported relation on {}", c.name))),
    }
}

fn cartesian(lists: &[Vec<Bytes>]) -> Vec<Vec<Bytes>> {
    let mut out: Vec<Vec<Bytes>> = vec![vec![]];
    for l in lists {
        out = out
            .iter()
            .flat_map(|prefix| {
                l.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push(v.clone());
                    p
                })
            })
            .collect();
    }
    out
}

/// The partition updates a statement makes, one per partition key (several with
/// `IN`): `(serialized partition key, update)`.
pub fn build(
    m: &Modification<'_>,
    table: &Table,
    bound: &Bound,
    default_ts: i64,
    node: usize,
    current: Current<'_>,
) -> Result<Vec<(Bytes, Partition)>, ErrorBody> {
    let now = now_secs();
    let (using, wheres): (Vec<_>, &[Relation<'_>]) = match m {
        Modification::Insert(i) => (i.using.clone(), &[]),
        Modification::Update(u) => (u.using.clone(), &u.where_clause),
        Modification::Delete(d) => (
            d.timestamp
                .clone()
                .map(tidemark_cql::statement::UsingParam::Timestamp)
                .into_iter()
                .collect(),
            &d.where_clause,
        ),
    };
    let is_counter = table.columns.iter().any(|c| c.ty == ColumnType::Counter);
    if is_counter && using_timestamp(&using).is_some() {
        return Err(invalid(
            "Cannot provide custom timestamp for counter updates",
        ));
    }
    let ts = int_of(using_timestamp(&using), bound, ColumnType::BigInt)?.unwrap_or(default_ts);
    let ttl = int_of(using_ttl(&using), bound, ColumnType::Int)?
        .map(|t| t as i32)
        .unwrap_or(table.default_ttl);
    let col = |n: &str| {
        table
            .column(n)
            .ok_or_else(|| invalid(format!("Undefined column name {n}")))
    };
    // Key restrictions by column name, and an optional clustering range (DELETE).
    let mut keys: Vec<(String, Vec<Bytes>)> = Vec::new();
    let mut values: Vec<(&ColumnDef, Val)> = Vec::new();
    let mut lower: Option<(String, Bytes, bool)> = None;
    let mut upper: Option<(String, Bytes, bool)> = None;
    if let Modification::Insert(i) = m {
        let cols: Vec<(String, Val)> = match &i.values {
            InsertValues::Columns(cols) => {
                let mut v = Vec::new();
                for (name, term) in cols {
                    let c = col(name.as_str())?;
                    v.push((c.name.clone(), resolve(term, &c.ty, bound)?));
                }
                v
            }
            InsertValues::Json { value, default } => {
                let Val::Set(text) = resolve(value, &ColumnType::Varchar, bound)? else {
                    return Err(invalid("Got null for INSERT JSON values"));
                };
                let unset_missing =
                    matches!(default, Some(tidemark_cql::statement::JsonDefault::Unset));
                json_columns(table, &text, unset_missing).map_err(invalid)?
            }
        };
        for (name, v) in cols {
            let c = col(&name)?;
            if table.is_key(&c.name) {
                match v {
                    Val::Set(b) => keys.push((c.name.clone(), vec![b])),
                    _ => {
                        return Err(invalid(format!(
                            "Invalid null value for key column {}",
                            c.name
                        )))
                    }
                }
            } else {
                values.push((c, v));
            }
        }
    }
    for r in wheres {
        let RelationLhs::Column(name) = &r.lhs else {
            return Err(invalid("unsupported WHERE relation in a modification"));
        };
        let c = col(name.as_str())?;
        if !table.is_key(&c.name) {
            return Err(invalid(format!(
                "Non PRIMARY KEY column {} found in where clause",
                c.name
            )));
        }
        match r.op {
            Operator::Eq | Operator::In => keys.push((c.name.clone(), key_values(r, c, bound)?)),
            Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte
                if matches!(m, Modification::Delete(_)) =>
            {
                let Rhs::Term(t) = &r.rhs else {
                    return Err(invalid("unsupported range relation"));
                };
                let Val::Set(b) = resolve(t, &c.ty, bound)? else {
                    return Err(invalid(format!("Invalid null value for {}", c.name)));
                };
                let incl = matches!(r.op, Operator::Gte | Operator::Lte);
                if matches!(r.op, Operator::Gt | Operator::Gte) {
                    lower = Some((c.name.clone(), b, incl));
                } else {
                    upper = Some((c.name.clone(), b, incl));
                }
            }
            _ => {
                return Err(invalid(format!(
                    "unsupported relation on {} in a modification",
                    c.name
                )))
            }
        }
    }
    let get = |n: &str| keys.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut pk_lists = Vec::new();
    for c in table.partition_key() {
        pk_lists.push(
            get(&c.name).ok_or_else(|| {
                invalid(format!("Some partition key parts are missing: {}", c.name))
            })?,
        );
    }
    let cks: Vec<&ColumnDef> = table.clustering().collect();
    let mut ck_lists = Vec::new();
    for c in &cks {
        match get(&c.name) {
            Some(v) => ck_lists.push(v),
            None => break,
        }
    }
    let range_col = lower.as_ref().or(upper.as_ref()).map(|r| r.0.clone());
    if let Some(rc) = &range_col {
        let expected = cks.get(ck_lists.len()).map(|c| c.name.as_str());
        if expected != Some(rc.as_str())
            || upper.as_ref().is_some_and(|u| &u.0 != rc)
            || lower.as_ref().is_some_and(|l| &l.0 != rc)
        {
            return Err(invalid(
                "A range deletion must restrict the clustering column after the equalities",
            ));
        }
    }
    let whole_delete = matches!(m, Modification::Delete(d) if d.columns.is_empty());
    let partial = ck_lists.len() < cks.len();
    if partial && !whole_delete {
        return Err(invalid("Some clustering keys are missing"));
    }
    if range_col.is_some() && !whole_delete {
        return Err(invalid("Range deletions cannot name columns"));
    }
    let mut out = Vec::new();
    for pk_parts in cartesian(&pk_lists) {
        let refs: Vec<&[u8]> = pk_parts.iter().map(|b| &b[..]).collect();
        let pk = Bytes::from(partition_key_bytes(&refs));
        let mut update = Partition {
            key: pk_parts.clone(),
            token: token(&pk),
            ..Partition::default()
        };
        let deletion = Deletion {
            timestamp: ts,
            local_deletion_time: now,
        };
        let needs_read = is_counter
            || matches!(m, Modification::Update(u) if u.assignments.iter().any(|a| matches!(a.op, AssignOp::Subtract(_) | AssignOp::SetElement { .. })))
            || matches!(m, Modification::Delete(d) if d.columns.iter().any(|c| matches!(c, ColumnRef::Element(..))));
        let cur = if needs_read { Some(current(&pk)) } else { None };
        for ck in cartesian(&ck_lists) {
            if whole_delete && partial {
                if ck.is_empty() && range_col.is_none() {
                    update.deletion = Some(deletion);
                } else {
                    update.ranges.push(RangeTombstone {
                        prefix: ck.clone(),
                        lower: lower.as_ref().map(|l| (l.1.clone(), l.2)),
                        upper: upper.as_ref().map(|u| (u.1.clone(), u.2)),
                        ty: cks.get(ck.len()).map_or(ColumnType::Blob, |c| c.ty.clone()),
                        deletion,
                    });
                }
                continue;
            }
            let live = cur
                .as_ref()
                .and_then(|p| p.live_view(now).into_iter().find(|(k, _)| *k == ck))
                .map(|(_, r)| r)
                .unwrap_or_default();
            let op = Op {
                ts,
                ttl,
                now,
                node,
                bound,
                current: &live,
            };
            let mut row = Row::default();
            match m {
                Modification::Insert(_) => {
                    if is_counter {
                        return Err(invalid("INSERT statements are not allowed on counter tables, use UPDATE instead"));
                    }
                    row.marker = Some(op.cell(Bytes::new()));
                    for (c, v) in &values {
                        let v = match v {
                            Val::Set(b) => Val::Set(b.clone()),
                            Val::Null => Val::Null,
                            Val::Unset => Val::Unset,
                        };
                        op.set(&mut row, c, v)?;
                    }
                }
                Modification::Update(u) => {
                    for a in &u.assignments {
                        let c = col(a.column.as_str())?;
                        if table.is_key(&c.name) {
                            return Err(invalid(format!(
                                "PRIMARY KEY part {} found in SET part",
                                c.name
                            )));
                        }
                        op.assign(&mut row, c, &a.op)?;
                    }
                }
                Modification::Delete(d) => {
                    for r in &d.columns {
                        op.delete(&mut row, col(r.column().as_str())?, r)?;
                    }
                    if d.columns.is_empty() {
                        row.deletion = Some(deletion);
                    }
                }
            }
            update.rows.insert(ck, row);
        }
        out.push((pk, update));
    }
    Ok(out)
}
