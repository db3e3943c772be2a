//! A version's rows and deletions as CQL statements with their bound values
//! (serialized bytes, bound as they are): every write carries its own timestamp
//! (`USING TIMESTAMP`), so writing a version into a cluster that already holds data
//! resolves cell by cell exactly as the source did, and writing it twice changes
//! nothing.
//!
//! - Simple cells (and frozen values) of a row, grouped by (timestamp, remaining
//!   TTL): one `INSERT ... USING TIMESTAMP ? AND TTL ?` per group (an INSERT also
//!   writes the row marker, so the row exists as it did). An expiring cell is written
//!   with the TTL it has left (`local_deletion_time - now`); one already expired is
//!   not written.
//! - Elements of non-frozen maps, sets and UDTs: one `UPDATE` per element (`m[?] = ?`,
//!   `s = s + {?}`, `u.f = ?`) with the element's own timestamp and TTL.
//! - Non-frozen lists: the version's list paths are tidemark's own (the server makes
//!   list timeuuids, and CQL cannot name one), so a list is written whole (`SET l = ?`,
//!   elements in list order) at its newest element's timestamp and, when every element
//!   expires, the shortest remaining TTL. Element timestamps are not kept, and — as
//!   with any Cassandra list write — writing the same list twice at one timestamp
//!   appends it twice (the overwrite's tombstone sits at timestamp − 1): a list row in
//!   flight when a restore is killed can come back doubled on `--resume`.
//! - A row with no cells (it exists by its key alone): an `INSERT` of the key columns
//!   at the version's time, which beats the version's own deletions.
//! - Counters: no `USING TIMESTAMP`, and an increment is not idempotent; the writer
//!   reads the target's value and adds the difference (see [`CounterWrite`]).
//! - Deletions: row, partition, clustering-range and cell tombstones as `DELETE ...
//!   USING TIMESTAMP` with their own timestamps.
//!
//! With `--overwrite` every write takes the restore's start time instead (deletions
//! one microsecond earlier, so they never shadow the rows restored with them).

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value as Json;
use tidemark_cql::ColumnType;

use super::plan::{Column, Table};
use crate::snapshot::import::value::to_bytes;
use crate::snapshot::take::cql_schema::ident;
use crate::store::{Cell, CellKind, ClusteringBound, Deletion, RangeDeletion};
use crate::version::model::VersionDeletion;

/// One statement with its bound values.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub cql: String,
    pub values: Vec<Vec<u8>>,
}

impl Stmt {
    pub fn bytes(&self) -> usize {
        self.values.iter().map(Vec::len).sum()
    }
}

/// Counter columns of one row brought to the version's totals: the writer reads
/// `select` (the columns, in order), then runs `update` with `total - current` per
/// column. Without concurrent writers to the target's counters, running it again
/// (a retry, a resume) adds nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterWrite {
    pub select: String,
    pub update: String,
    /// Key values, bound after the deltas in `update` and alone in `select`.
    pub key: Vec<Vec<u8>>,
    pub totals: Vec<i64>,
}

/// One write of a restore.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Write(Stmt),
    Counter(CounterWrite),
}

impl Op {
    pub fn bytes(&self) -> usize {
        match self {
            Op::Write(s) => s.bytes(),
            Op::Counter(c) => c.key.iter().map(Vec::len).sum::<usize>() + 8 * c.totals.len(),
        }
    }
}

/// The key columns of a row or partition, serialized, with their names.
pub struct Key {
    pub columns: Vec<(String, Vec<u8>)>,
    /// The partition key's bytes (all partition key values, joined): rows with equal
    /// `partition` share a batch.
    pub partition: Vec<u8>,
}

impl Key {
    fn where_clause(&self) -> String {
        self.columns
            .iter()
            .map(|(c, _)| format!("{} = ?", ident(c)))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    fn values(&self) -> Vec<Vec<u8>> {
        self.columns.iter().map(|(_, v)| v.clone()).collect()
    }
}

/// Parses a canonical JSON key: every partition key column, then a prefix of the
/// clustering columns (none for a partition's static row or a partition deletion).
pub fn key(t: &Table, key: &str) -> Result<Key> {
    let j: Json =
        serde_json::from_str(key).with_context(|| format!("key {key} of {}", t.source))?;
    let obj = j
        .as_object()
        .ok_or_else(|| anyhow!("key {key} of {}: not an object", t.source))?;
    let mut columns = Vec::new();
    let mut partition = Vec::new();
    for c in &t.partition_key {
        let v = obj
            .get(&c.name)
            .ok_or_else(|| anyhow!("key {key} of {}: no {}", t.source, c.name))?;
        let b = to_bytes(v, &c.ty).with_context(|| format!("key {key} of {}", t.source))?;
        partition.extend_from_slice(&(b.len() as u32).to_be_bytes());
        partition.extend_from_slice(&b);
        columns.push((c.name.clone(), b));
    }
    let mut ended = false;
    for c in &t.clustering {
        match obj.get(&c.name) {
            Some(v) if !ended => {
                let b = to_bytes(v, &c.ty).with_context(|| format!("key {key} of {}", t.source))?;
                columns.push((c.name.clone(), b));
            }
            Some(_) => bail!("key {key} of {}: clustering columns out of order", t.source),
            None => ended = true,
        }
    }
    Ok(Key { columns, partition })
}

/// Time values the statements need.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Now, seconds since the epoch (for the TTL left).
    pub now_secs: i64,
    /// The version's moment, µs (row markers of rows without cells).
    pub at_us: i64,
    /// `--overwrite`: every write at this timestamp (µs).
    pub overwrite_us: Option<i64>,
}

fn ts_bytes(ts: i64) -> Vec<u8> {
    ts.to_be_bytes().to_vec()
}

fn ttl_bytes(ttl: i32) -> Vec<u8> {
    ttl.to_be_bytes().to_vec()
}

/// A collection of `items` serialized (protocol v4+: 4-byte counts and lengths).
fn collection(items: &[&[u8]]) -> Vec<u8> {
    let mut out = (items.len() as i32).to_be_bytes().to_vec();
    for i in items {
        out.extend_from_slice(&(i.len() as i32).to_be_bytes());
        out.extend_from_slice(i);
    }
    out
}

/// The TTL a cell has left: `None` when it expired already, `Some(0)` for no TTL.
fn ttl_left(c: &Cell, now_secs: i64) -> Option<i32> {
    match (c.ttl, c.local_deletion_time) {
        (Some(ttl), Some(ldt)) if c.kind == CellKind::Expiring || ttl > 0 => {
            let left = ldt - now_secs;
            (left > 0).then(|| left.min(i64::from(ttl)).min(i32::MAX as i64) as i32)
        }
        _ => Some(0),
    }
}

/// The value bytes of a cell as type `ty` (the column's, or for an element cell the
/// element's): `json` cells (the decoder knew no type) are converted.
fn value_of(c: &Cell, ty: &ColumnType) -> Result<Vec<u8>> {
    if &*c.cql_type == "json" {
        let j: Json = serde_json::from_slice(&c.value).context("a json cell")?;
        return to_bytes(&j, ty);
    }
    Ok(c.value.to_vec())
}

/// A list element: (path, value, timestamp, TTL left).
type ListElement = (Vec<u8>, Vec<u8>, i64, i32);

/// The statements restoring one row; also how many cells were left out as expired.
pub fn row(t: &Table, key_text: &str, cells: &[Cell], clock: Clock) -> Result<(Vec<Op>, u64)> {
    let k = key(t, key_text)?;
    let ts_of = |c: &Cell| clock.overwrite_us.unwrap_or(c.timestamp);
    let mut ops = Vec::new();
    let mut expired = 0;
    // (timestamp, ttl) → column → value
    let mut groups: BTreeMap<(i64, i32), BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let mut lists: BTreeMap<String, Vec<ListElement>> = BTreeMap::new();
    let mut counters: BTreeMap<String, i64> = BTreeMap::new();
    for c in cells {
        if c.kind == CellKind::Tombstone {
            continue;
        }
        let col = t
            .column(&c.column)
            .ok_or_else(|| anyhow!("{}: column {} is not in the schema", t.source, c.column))?;
        if c.kind == CellKind::CounterShard || col.counter() {
            let total = i64::from_be_bytes(c.value.as_ref().try_into().map_err(|_| {
                anyhow!(
                    "{}.{}: a counter of {} bytes",
                    t.source,
                    c.column,
                    c.value.len()
                )
            })?);
            counters.insert(c.column.to_string(), total);
            continue;
        }
        let Some(ttl) = ttl_left(c, clock.now_secs) else {
            expired += 1;
            continue;
        };
        let ts = ts_of(c);
        match (&c.path, col.ty.effective()) {
            (Some(path), ColumnType::List(element)) if col.multi_cell() => {
                lists.entry(c.column.to_string()).or_default().push((
                    path.clone(),
                    value_of(c, element)?,
                    ts,
                    ttl,
                ));
            }
            (Some(path), _) if col.multi_cell() => {
                ops.push(Op::Write(element(t, &k, col, path, c, ts, ttl)?));
            }
            _ => {
                groups
                    .entry((ts, ttl))
                    .or_default()
                    .insert(c.column.to_string(), value_of(c, &col.ty)?);
            }
        }
    }
    for ((ts, ttl), cols) in groups {
        ops.insert(
            0,
            Op::Write(insert(t, &k, cols.into_iter().collect(), ts, ttl)),
        );
    }
    for (column, mut elements) in lists {
        elements.sort_by(|a, b| a.0.cmp(&b.0));
        let ts = elements.iter().map(|e| e.2).max().unwrap_or(0);
        let ttl = if elements.iter().all(|e| e.3 > 0) {
            elements.iter().map(|e| e.3).min().unwrap_or(0)
        } else {
            0
        };
        let items: Vec<&[u8]> = elements.iter().map(|e| e.1.as_slice()).collect();
        let mut values = vec![ts_bytes(ts), ttl_bytes(ttl), collection(&items)];
        values.extend(k.values());
        ops.push(Op::Write(Stmt {
            cql: format!(
                "UPDATE {} USING TIMESTAMP ? AND TTL ? SET {} = ? WHERE {}",
                t.qualified(),
                ident(&column),
                k.where_clause()
            ),
            values,
        }));
    }
    if !counters.is_empty() {
        let names: Vec<String> = counters.keys().map(|c| ident(c)).collect();
        ops.push(Op::Counter(CounterWrite {
            select: format!(
                "SELECT {} FROM {} WHERE {}",
                names.join(", "),
                t.qualified(),
                k.where_clause()
            ),
            update: format!(
                "UPDATE {} SET {} WHERE {}",
                t.qualified(),
                names
                    .iter()
                    .map(|n| format!("{n} = {n} + ?"))
                    .collect::<Vec<_>>()
                    .join(", "),
                k.where_clause()
            ),
            key: k.values(),
            totals: counters.values().copied().collect(),
        }));
    }
    if cells.is_empty() && !t.is_counter_table() {
        let ts = clock.overwrite_us.unwrap_or(clock.at_us);
        ops.push(Op::Write(insert(t, &k, Vec::new(), ts, 0)));
    }
    Ok((ops, expired))
}

/// `INSERT` of the key and `cols` at one timestamp and TTL.
fn insert(t: &Table, k: &Key, cols: Vec<(String, Vec<u8>)>, ts: i64, ttl: i32) -> Stmt {
    let names: Vec<String> = k
        .columns
        .iter()
        .chain(&cols)
        .map(|(c, _)| ident(c))
        .collect();
    let marks = vec!["?"; names.len()].join(", ");
    let mut values = k.values();
    values.extend(cols.into_iter().map(|(_, v)| v));
    values.push(ts_bytes(ts));
    values.push(ttl_bytes(ttl));
    Stmt {
        cql: format!(
            "INSERT INTO {} ({}) VALUES ({marks}) USING TIMESTAMP ? AND TTL ?",
            t.qualified(),
            names.join(", ")
        ),
        values,
    }
}

/// The field name of a UDT element path (a 2-byte field index).
fn udt_field(col: &Column, path: &[u8]) -> Result<String> {
    let ColumnType::Udt { fields, .. } = col.ty.effective() else {
        bail!("column {} is not a user type", col.name);
    };
    let index = <[u8; 2]>::try_from(path)
        .map(u16::from_be_bytes)
        .map_err(|_| anyhow!("column {}: a field path of {} bytes", col.name, path.len()))?;
    fields
        .get(index as usize)
        .map(|(f, _)| f.as_str().to_string())
        .ok_or_else(|| anyhow!("column {}: no field {index}", col.name))
}

/// One element of a non-frozen map, set or UDT.
fn element(
    t: &Table,
    k: &Key,
    col: &Column,
    path: &[u8],
    c: &Cell,
    ts: i64,
    ttl: i32,
) -> Result<Stmt> {
    let name = ident(&col.name);
    let (set, mut values) = match col.ty.effective() {
        ColumnType::Map(_, v) => (
            format!("{name}[?] = ?"),
            vec![path.to_vec(), value_of(c, v)?],
        ),
        ColumnType::Set(_) => (format!("{name} = {name} + ?"), vec![collection(&[path])]),
        ColumnType::Udt { fields, .. } => {
            let field = udt_field(col, path)?;
            let ty = fields
                .iter()
                .find(|(f, _)| f.as_str() == field)
                .map(|(_, t)| t)
                .ok_or_else(|| anyhow!("column {}: no field {field}", col.name))?;
            (
                format!("{name}.{} = ?", ident(&field)),
                vec![value_of(c, ty)?],
            )
        }
        other => bail!("column {}: elements of a {other:?}", col.name),
    };
    let mut all = vec![ts_bytes(ts), ttl_bytes(ttl)];
    all.append(&mut values);
    all.extend(k.values());
    Ok(Stmt {
        cql: format!(
            "UPDATE {} USING TIMESTAMP ? AND TTL ? SET {set} WHERE {}",
            t.qualified(),
            k.where_clause()
        ),
        values: all,
    })
}

/// The statements writing one deletion entry's tombstones; also how many parts of
/// it could not be written (list element tombstones: their paths are not the
/// server's).
pub fn deletion(
    t: &Table,
    key_text: &str,
    d: &VersionDeletion,
    clock: Clock,
) -> Result<(Vec<Stmt>, u64)> {
    let k = key(t, key_text)?;
    let ts_of = |x: i64| clock.overwrite_us.map_or(x, |now| now - 1);
    let mut out = Vec::new();
    let mut unwritable = 0;
    let delete = |cols: &str, k: &Key, ts: i64| {
        let mut values = vec![ts_bytes(ts)];
        values.extend(k.values());
        Stmt {
            cql: format!(
                "DELETE {cols}FROM {} USING TIMESTAMP ? WHERE {}",
                t.qualified(),
                k.where_clause()
            ),
            values,
        }
    };
    if let Some(Deletion { timestamp, .. }) = d.partition {
        let pk = Key {
            columns: k.columns[..t.partition_key.len()].to_vec(),
            partition: k.partition.clone(),
        };
        out.push(delete("", &pk, ts_of(timestamp)));
    }
    for r in &d.ranges {
        out.push(range(t, &k, r, ts_of(r.deletion.timestamp))?);
    }
    if let Some(Deletion { timestamp, .. }) = d.row {
        out.push(delete("", &k, ts_of(timestamp)));
    }
    for c in &d.cells {
        let col = t
            .column(&c.column)
            .ok_or_else(|| anyhow!("{}: column {} is not in the schema", t.source, c.column))?;
        let name = ident(&col.name);
        let ts = ts_of(c.timestamp);
        match (&c.path, col.ty.effective()) {
            (None, _) => out.push(delete(&format!("{name} "), &k, ts)),
            (Some(_), ColumnType::List(_)) => unwritable += 1,
            (Some(p), ColumnType::Map(..)) => {
                let mut s = delete(&format!("{name}[?] "), &k, ts);
                s.values.insert(1, p.clone());
                out.push(s);
            }
            (Some(p), ColumnType::Set(_)) => {
                let mut values = vec![ts_bytes(ts), collection(&[p])];
                values.extend(k.values());
                out.push(Stmt {
                    cql: format!(
                        "UPDATE {} USING TIMESTAMP ? SET {name} = {name} - ? WHERE {}",
                        t.qualified(),
                        k.where_clause()
                    ),
                    values,
                });
            }
            (Some(p), ColumnType::Udt { .. }) => {
                let f = ident(&udt_field(col, p)?);
                out.push(delete(&format!("{name}.{f} "), &k, ts));
            }
            (Some(_), _) => unwritable += 1,
        }
    }
    Ok((out, unwritable))
}

/// A clustering range deletion: the bounds' common prefix as equalities, the rest
/// as one slice (single-column, or a multi-column tuple slice).
fn range(t: &Table, k: &Key, r: &RangeDeletion, ts: i64) -> Result<Stmt> {
    let pk_len = t.partition_key.len();
    let pk = &k.columns[..pk_len];
    let (s, e) = (&r.start.prefix, &r.end.prefix);
    let mut eq = 0;
    while eq < s.len() && eq < e.len() && s[eq] == e[eq] && eq < t.clustering.len() {
        eq += 1;
    }
    let mut conds: Vec<String> = pk
        .iter()
        .map(|(c, _)| format!("{} = ?", ident(c)))
        .collect();
    let mut values = vec![ts_bytes(ts)];
    values.extend(pk.iter().map(|(_, v)| v.clone()));
    for (c, v) in t.clustering.iter().zip(s).take(eq) {
        conds.push(format!("{} = ?", ident(&c.name)));
        values.push(v.to_vec());
    }
    let whole_prefix = |b: &ClusteringBound| b.prefix.len() == eq;
    let slice = |b: &ClusteringBound,
                 lower: bool,
                 conds: &mut Vec<String>,
                 values: &mut Vec<Vec<u8>>|
     -> Result<()> {
        if b.prefix.len() <= eq {
            return Ok(());
        }
        let cols = &t.clustering[eq..b.prefix.len().min(t.clustering.len())];
        if cols.len() != b.prefix.len() - eq {
            bail!("{}: a range bound longer than the clustering key", t.source);
        }
        let op = match (lower, b.inclusive) {
            (true, true) => ">=",
            (true, false) => ">",
            (false, true) => "<=",
            (false, false) => "<",
        };
        if cols.len() == 1 {
            conds.push(format!("{} {op} ?", ident(&cols[0].name)));
            values.push(b.prefix[eq].to_vec());
        } else {
            let names: Vec<String> = cols.iter().map(|c| ident(&c.name)).collect();
            conds.push(format!(
                "({}) {op} ({})",
                names.join(", "),
                vec!["?"; cols.len()].join(", ")
            ));
            values.extend(b.prefix[eq..].iter().map(|x| x.to_vec()));
        }
        Ok(())
    };
    if whole_prefix(&r.start)
        && whole_prefix(&r.end)
        && !(r.start.inclusive && r.end.inclusive)
        && eq > 0
    {
        // an exclusive range around one prefix deletes nothing; CQL cannot say it
        bail!("{}: an empty clustering range", t.source);
    }
    slice(&r.start, true, &mut conds, &mut values)?;
    slice(&r.end, false, &mut conds, &mut values)?;
    Ok(Stmt {
        cql: format!(
            "DELETE FROM {} USING TIMESTAMP ? WHERE {}",
            t.qualified(),
            conds.join(" AND ")
        ),
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CellOp, Deletion};

    fn col(name: &str, type_text: &str, ty: ColumnType) -> Column {
        Column {
            name: name.into(),
            type_text: type_text.into(),
            ty,
            is_static: false,
            desc: false,
        }
    }

    fn table() -> Table {
        Table {
            source: "ks.t".into(),
            keyspace: "ks".into(),
            name: "t".into(),
            partition_key: vec![col("pk", "int", ColumnType::Int)],
            clustering: vec![col("ck", "int", ColumnType::Int)],
            others: vec![
                col("v", "text", ColumnType::Varchar),
                col("w", "int", ColumnType::Int),
                col(
                    "m",
                    "map<text, int>",
                    ColumnType::Map(Box::new(ColumnType::Varchar), Box::new(ColumnType::Int)),
                ),
            ],
            rows: 0,
        }
    }

    fn cell(column: &str, value: &[u8], ts: i64, ttl: Option<(u32, i64)>) -> Cell {
        Cell {
            column: column.into(),
            path: None,
            value: value.to_vec().into(),
            cql_type: "".into(),
            timestamp: ts,
            ttl: ttl.map(|t| t.0),
            local_deletion_time: ttl.map(|t| t.1),
            kind: if ttl.is_some() {
                CellKind::Expiring
            } else {
                CellKind::Live
            },
            op: CellOp::Set,
        }
    }

    const CLOCK: Clock = Clock {
        now_secs: 1000,
        at_us: 77,
        overwrite_us: None,
    };

    fn writes(ops: &[Op]) -> Vec<&Stmt> {
        ops.iter()
            .filter_map(|o| match o {
                Op::Write(s) => Some(s),
                Op::Counter(_) => None,
            })
            .collect()
    }

    #[test]
    fn cells_group_by_timestamp_and_ttl_left_and_expired_ones_are_dropped() {
        let mut m = cell("m", &5i32.to_be_bytes(), 30, None);
        m.path = Some(b"a".to_vec());
        let cells = vec![
            cell("v", b"x", 10, None),
            cell("w", &1i32.to_be_bytes(), 10, None),
            cell("v", b"y", 20, Some((100, 1060))),
            cell("w", &2i32.to_be_bytes(), 20, Some((100, 990))),
            m,
        ];
        let (ops, expired) = row(&table(), r#"{"pk":1,"ck":2}"#, &cells, CLOCK).unwrap();
        assert_eq!(expired, 1);
        let w = writes(&ops);
        assert_eq!(w.len(), 3, "{w:?}");
        let one = |i: i32| i.to_be_bytes().to_vec();
        assert!(w.contains(&&Stmt {
            cql: "INSERT INTO ks.t (pk, ck, v, w) VALUES (?, ?, ?, ?) USING TIMESTAMP ? AND TTL ?"
                .into(),
            values: vec![
                one(1),
                one(2),
                b"x".to_vec(),
                one(1),
                10i64.to_be_bytes().to_vec(),
                one(0)
            ],
        }));
        // 60 s left of a 100 s TTL
        assert!(w.contains(&&Stmt {
            cql: "INSERT INTO ks.t (pk, ck, v) VALUES (?, ?, ?) USING TIMESTAMP ? AND TTL ?".into(),
            values: vec![
                one(1),
                one(2),
                b"y".to_vec(),
                20i64.to_be_bytes().to_vec(),
                one(60)
            ],
        }));
        assert!(w.contains(&&Stmt {
            cql: "UPDATE ks.t USING TIMESTAMP ? AND TTL ? SET m[?] = ? WHERE pk = ? AND ck = ?"
                .into(),
            values: vec![
                30i64.to_be_bytes().to_vec(),
                one(0),
                b"a".to_vec(),
                one(5),
                one(1),
                one(2)
            ],
        }));
    }

    #[test]
    fn a_row_without_cells_gets_a_marker_at_the_versions_time_or_now_with_overwrite() {
        let (ops, _) = row(&table(), r#"{"pk":1,"ck":2}"#, &[], CLOCK).unwrap();
        let w = writes(&ops);
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].cql,
            "INSERT INTO ks.t (pk, ck) VALUES (?, ?) USING TIMESTAMP ? AND TTL ?"
        );
        assert_eq!(w[0].values[2], 77i64.to_be_bytes().to_vec());
        let clock = Clock {
            overwrite_us: Some(999),
            ..CLOCK
        };
        let (ops, _) = row(
            &table(),
            r#"{"pk":1,"ck":2}"#,
            &[cell("v", b"x", 10, None)],
            clock,
        )
        .unwrap();
        assert_eq!(writes(&ops)[0].values[3], 999i64.to_be_bytes().to_vec());
    }

    #[test]
    fn deletions_become_timestamped_deletes() {
        let del = Deletion {
            timestamp: 5,
            local_deletion_time: 1,
        };
        let b = |ck: i32, inclusive: bool| ClusteringBound {
            prefix: vec![serde_bytes::ByteBuf::from(ck.to_be_bytes().to_vec())],
            inclusive,
        };
        let d = VersionDeletion {
            partition: Some(del),
            ranges: vec![RangeDeletion {
                start: b(2, true),
                end: b(5, false),
                deletion: del,
            }],
            ..Default::default()
        };
        let (stmts, unwritable) = deletion(&table(), r#"{"pk":1}"#, &d, CLOCK).unwrap();
        assert_eq!(unwritable, 0);
        let texts: Vec<&str> = stmts.iter().map(|s| s.cql.as_str()).collect();
        assert_eq!(
            texts,
            [
                "DELETE FROM ks.t USING TIMESTAMP ? WHERE pk = ?",
                "DELETE FROM ks.t USING TIMESTAMP ? WHERE pk = ? AND ck >= ? AND ck < ?"
            ]
        );
        assert_eq!(stmts[1].values.len(), 4);
        let mut tomb = cell("v", b"", 9, None);
        tomb.kind = CellKind::Tombstone;
        let d = VersionDeletion {
            row: Some(del),
            cells: vec![tomb],
            ..Default::default()
        };
        let clock = Clock {
            overwrite_us: Some(100),
            ..CLOCK
        };
        let (stmts, _) = deletion(&table(), r#"{"pk":1,"ck":3}"#, &d, clock).unwrap();
        assert_eq!(
            stmts[1].cql,
            "DELETE v FROM ks.t USING TIMESTAMP ? WHERE pk = ? AND ck = ?"
        );
        // with --overwrite, one microsecond before the rows written
        assert_eq!(stmts[0].values[0], 99i64.to_be_bytes().to_vec());
    }
}
