//! CQL snapshot through the `scylla` driver: the schema first, then every table
//! scanned token range by token range (the ring split at the driver's token map,
//! one range per part), every regular and static column read with `WRITETIME` and
//! `TTL` per cell, paged.
//!
//! Non-frozen collections: Cassandra 5.0 answers `WRITETIME(c)`/`TTL(c)` with a
//! list (one entry per element), earlier versions refuse them; a server that
//! answers one scalar gets that value on every element. Counters have neither:
//! their cells carry timestamp 0 and the total as a `CounterShard`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::deserialize::row::ColumnIterator;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::Consistency;
use serde_json::{Map, Value as Json};
use tidemark_cql::ColumnType;

use super::cql_schema::{self, ident, Col, Table};
use super::now_ns;
use crate::decode::cql::extract::bound::typed;
use crate::decode::cql::extract::collection;
use crate::snapshot::model::{NamespaceInfo, PartInfo, PartRange, RowData, SnapshotRow};
use crate::store::{Cell, CellKind, CellOp};

/// Rows per page.
const PAGE_SIZE: i32 = 1000;

/// A connected cluster and what to read from it.
pub struct CqlScan {
    session: Session,
    consistency: Consistency,
    tables: Vec<Arc<Table>>,
}

/// The `--consistency` names, as CQL spells them.
pub fn consistency(name: &str) -> Result<Consistency> {
    Ok(match name.to_ascii_uppercase().as_str() {
        "ONE" => Consistency::One,
        "TWO" => Consistency::Two,
        "THREE" => Consistency::Three,
        "QUORUM" => Consistency::Quorum,
        "ALL" => Consistency::All,
        "LOCAL_QUORUM" => Consistency::LocalQuorum,
        "EACH_QUORUM" => Consistency::EachQuorum,
        "LOCAL_ONE" => Consistency::LocalOne,
        _ => bail!("invalid --consistency {name:?}: ONE, TWO, THREE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM or LOCAL_ONE"),
    })
}

/// What [`connect`] found: the scan, the cluster name, the namespaces with their
/// schema, and the parts (every table × every token range).
pub struct Plan {
    pub scan: CqlScan,
    pub cluster: String,
    pub namespaces: Vec<NamespaceInfo>,
    pub parts: Vec<PartInfo>,
    /// The ring's token ranges (what every table's parts are split at).
    pub ranges: Vec<(i64, i64)>,
}

/// Connects, reads the schema of the selected tables and splits the ring.
pub async fn connect(
    hosts: &[String],
    credentials: Option<&(String, String)>,
    consistency: Consistency,
    keyspaces: &[String],
    tables: &[String],
) -> Result<Plan> {
    let mut builder = SessionBuilder::new()
        .known_nodes(hosts)
        .connection_timeout(Duration::from_secs(5));
    if let Some((user, pass)) = credentials {
        builder = builder.user(user, pass);
    }
    let session = tokio::time::timeout(Duration::from_secs(20), builder.build())
        .await
        .map_err(|_| anyhow!("cannot connect to {}: timed out", hosts.join(",")))?
        .map_err(|e| anyhow!("cannot connect to {}: {e}", hosts.join(",")))?;
    let state = session.get_cluster_state();
    let cluster = state.cluster_name().to_string();
    let keep =
        |ks: &str, t: &str| super::super::source::selected(keyspaces, tables, &format!("{ks}.{t}"));
    let found = cql_schema::read(&session, keep).await?;
    check_literals(keyspaces, tables, &found)?;
    let mut tokens: Vec<i64> = state
        .replica_locator()
        .ring()
        .iter()
        .map(|(t, _)| t.value())
        .collect();
    tokens.sort_unstable();
    tokens.dedup();
    let ranges = split_ring(&tokens);
    let mut namespaces = Vec::new();
    let mut parts = Vec::new();
    for t in &found {
        let ns = t.namespace();
        namespaces.push(NamespaceInfo {
            name: ns.clone(),
            schema: t.schema.clone(),
            rows: 0,
            bytes: 0,
        });
        for &(a, b) in &ranges {
            parts.push(PartInfo {
                namespace: ns.clone(),
                range: PartRange::Token(a, b),
                read_start: 0,
                read_end: None,
                rows: 0,
            });
        }
    }
    Ok(Plan {
        scan: CqlScan {
            session,
            consistency,
            tables: found.into_iter().map(Arc::new).collect(),
        },
        cluster,
        namespaces,
        parts,
        ranges,
    })
}

/// A `--keyspace` or `--table` without glob characters must name something.
fn check_literals(keyspaces: &[String], tables: &[String], found: &[Table]) -> Result<()> {
    use super::super::source::{glob, is_literal};
    for k in keyspaces.iter().filter(|k| is_literal(k)) {
        if !found.iter().any(|t| glob(k, &t.keyspace)) {
            bail!("unknown keyspace {k:?} (or it has no tables)");
        }
    }
    for p in tables.iter().filter(|p| is_literal(p)) {
        let hit = found.iter().any(|t| {
            if p.contains('.') {
                *p == t.namespace()
            } else {
                *p == t.name
            }
        });
        if !hit {
            bail!("unknown table {p:?}");
        }
    }
    Ok(())
}

/// `(start, end]` ranges covering the whole Murmur3 ring, split at `tokens`
/// (sorted, distinct). The wrap-around range is split at the ring's end, so every
/// range has `start < end`; `i64::MIN` is no token (Murmur3 maps it to `MAX`).
pub fn split_ring(tokens: &[i64]) -> Vec<(i64, i64)> {
    let (Some(&first), Some(&last)) = (tokens.first(), tokens.last()) else {
        return vec![(i64::MIN, i64::MAX)];
    };
    let mut out = Vec::with_capacity(tokens.len() + 1);
    if first > i64::MIN {
        out.push((i64::MIN, first));
    }
    out.extend(tokens.windows(2).map(|w| (w[0], w[1])));
    if last < i64::MAX {
        out.push((last, i64::MAX));
    }
    out
}

impl CqlScan {
    /// The selected tables with their schema.
    pub fn tables(&self) -> &[Arc<Table>] {
        &self.tables
    }

    /// Reads part `index` (`part`), handing each page's rows to `sink`; the rows read.
    pub async fn scan(
        &self,
        index: u32,
        part: &PartInfo,
        sink: &mut (dyn FnMut(Vec<SnapshotRow>) -> Result<()> + Send),
    ) -> Result<u64> {
        let PartRange::Token(start, end) = part.range else {
            bail!("part {index} is not a token range");
        };
        let table = self
            .tables
            .iter()
            .find(|t| t.namespace() == part.namespace)
            .ok_or_else(|| anyhow!("table {} no longer selected", part.namespace))?;
        let stmt = self.prepare(table).await?;
        let mut paging = PagingState::start();
        let mut total = 0u64;
        // Partitions whose static row is out already (a partition never spans two
        // token ranges, but it can span pages).
        let mut statics_out = std::collections::HashSet::new();
        loop {
            let (result, next) = self
                .session
                .execute_single_page(&stmt, (start, end), paging)
                .await
                .with_context(|| format!("reading {} ({start}, {end}]", part.namespace))?;
            let read_secs = (now_ns() / 1_000_000_000) as i64;
            let rows = result
                .into_rows_result()
                .with_context(|| format!("reading {}", part.namespace))?;
            let mut page = Vec::new();
            for row in rows.rows::<ColumnIterator>()? {
                let mut cols = Vec::new();
                for c in row? {
                    cols.push(c?.slice.map(|s| s.to_bytes()));
                }
                for r in to_rows(table, index, &cols, read_secs)? {
                    let is_static = matches!(&r.data, RowData::Cql { static_cells, .. } if !static_cells.is_empty());
                    if !is_static || statics_out.insert(r.key.clone()) {
                        page.push(r);
                    }
                }
            }
            total += page.len() as u64;
            sink(page)?;
            match next {
                PagingStateResponse::HasMorePages { state } => paging = state,
                PagingStateResponse::NoMorePages => break,
            }
        }
        Ok(total)
    }

    async fn prepare(&self, t: &Table) -> Result<PreparedStatement> {
        let text = select_text(t);
        let mut stmt = self
            .session
            .prepare(text.clone())
            .await
            .with_context(|| format!("preparing {text}"))?;
        stmt.set_consistency(self.consistency);
        stmt.set_page_size(PAGE_SIZE);
        Ok(stmt)
    }
}

/// `SELECT pk…, ck…, c, WRITETIME(c), TTL(c), … FROM ks.t WHERE token(pk…) > ?
/// AND token(pk…) <= ?` (counters without `WRITETIME`/`TTL`, which CQL refuses).
pub fn select_text(t: &Table) -> String {
    let mut sel: Vec<String> = t
        .partition_key
        .iter()
        .chain(&t.clustering)
        .map(|c| ident(&c.name))
        .collect();
    for c in &t.others {
        let n = ident(&c.name);
        sel.push(n.clone());
        if !c.counter() {
            sel.push(format!("WRITETIME({n})"));
            sel.push(format!("TTL({n})"));
        }
    }
    let pk: Vec<String> = t.partition_key.iter().map(|c| ident(&c.name)).collect();
    let pk = pk.join(", ");
    format!(
        "SELECT {} FROM {}.{} WHERE token({pk}) > ? AND token({pk}) <= ?",
        sel.join(", "),
        ident(&t.keyspace),
        ident(&t.name)
    )
}

fn be_i64(b: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(b.try_into().ok()?))
}

fn be_i32(b: &[u8]) -> Option<i32> {
    Some(i32::from_be_bytes(b.try_into().ok()?))
}

/// `WRITETIME`/`TTL` of a column: one value, or (Cassandra 5.0, non-frozen
/// collections) a list with one entry per element (`None` entries: no TTL).
enum PerCell<T> {
    One(Option<T>),
    Each(Vec<Option<T>>),
}

impl<T: Copy> PerCell<T> {
    fn parse(b: Option<&Bytes>, width: usize, read: fn(&[u8]) -> Option<T>) -> Result<PerCell<T>> {
        let Some(b) = b else {
            return Ok(PerCell::One(None));
        };
        if b.len() == width {
            return Ok(PerCell::One(read(b)));
        }
        let items = collection::split(b, 1).ok_or_else(|| anyhow!("bad WRITETIME/TTL list"))?;
        Ok(PerCell::Each(
            items
                .into_iter()
                .map(|i| i.and_then(|v| read(&v)))
                .collect(),
        ))
    }

    fn at(&self, i: usize) -> Option<T> {
        match self {
            PerCell::One(v) => *v,
            PerCell::Each(v) => v.get(i).copied().flatten(),
        }
    }
}

/// One result row (columns in [`select_text`]'s order) as snapshot rows: the row
/// with its regular cells, and, when the partition has static cells, the
/// partition's own row (key = the partition key alone, as the log keys a write of
/// static columns) holding them. Every row of a partition repeats its static
/// values; the caller keeps one partition row per partition.
fn to_rows(
    t: &Table,
    part: u32,
    cols: &[Option<Bytes>],
    now_secs: i64,
) -> Result<Vec<SnapshotRow>> {
    let nkey = t.partition_key.len() + t.clustering.len();
    let mut key = Map::new();
    for (c, v) in t.partition_key.iter().zip(cols) {
        if let Some(v) = v {
            key.insert(c.name.clone(), typed(&c.ty, v));
        }
    }
    let partition_key = Json::Object(key.clone()).to_string();
    // A partition holding only static cells comes back once, with null clustering
    // columns: it has no row of its own, only the partition row.
    let mut has_row = t.clustering.is_empty();
    for (c, v) in t
        .clustering
        .iter()
        .zip(&cols[t.partition_key.len().min(cols.len())..])
    {
        if let Some(v) = v {
            key.insert(c.name.clone(), typed(&c.ty, v));
            has_row = true;
        }
    }
    let mut cells = Vec::new();
    let mut static_cells = Vec::new();
    let mut at = nkey;
    for c in &t.others {
        let value = cols.get(at).cloned().flatten();
        let (wt, ttl) = if c.counter() {
            at += 1;
            (PerCell::One(Some(0)), PerCell::One(None))
        } else {
            let wt = PerCell::parse(cols.get(at + 1).and_then(Option::as_ref), 8, be_i64)?;
            let ttl = PerCell::parse(cols.get(at + 2).and_then(Option::as_ref), 4, be_i32)?;
            at += 3;
            (wt, ttl)
        };
        let Some(value) = value else { continue };
        let out = if c.kind == "static" {
            &mut static_cells
        } else {
            &mut cells
        };
        for (i, (path, v)) in elements(c, &value)?.into_iter().enumerate() {
            let ttl = ttl.at(i).filter(|s| *s > 0);
            out.push(Cell {
                column: c.name.as_str().into(),
                path,
                value: v,
                cql_type: c.type_text.as_str().into(),
                timestamp: wt.at(i).unwrap_or(0),
                ttl: ttl.map(|s| s as u32),
                local_deletion_time: ttl.map(|s| now_secs + i64::from(s)),
                kind: match (c.counter(), ttl) {
                    (true, _) => CellKind::CounterShard,
                    (false, Some(_)) => CellKind::Expiring,
                    (false, None) => CellKind::Live,
                },
                op: CellOp::Set,
            });
        }
    }
    let mut out = Vec::with_capacity(2);
    if !static_cells.is_empty() {
        out.push(SnapshotRow {
            namespace: t.namespace(),
            key: partition_key,
            part,
            data: RowData::Cql {
                cells: Vec::new(),
                static_cells,
            },
        });
    }
    if has_row {
        out.push(SnapshotRow {
            namespace: t.namespace(),
            key: Json::Object(key).to_string(),
            part,
            data: RowData::Cql {
                cells,
                static_cells: Vec::new(),
            },
        });
    }
    Ok(out)
}

/// A column's cells: one `(None, value)` for a simple or frozen column, one
/// `(Some(path), element)` per element of a non-frozen collection or UDT (list
/// elements by index as a 4-byte int: the list's timeuuids are not readable
/// through CQL; UDT fields by index as a 2-byte short, null fields skipped).
fn elements(c: &Col, value: &Bytes) -> Result<Vec<(Option<Vec<u8>>, Bytes)>> {
    if !c.multi_cell() {
        return Ok(vec![(None, value.clone())]);
    }
    let bad = || anyhow!("column {}: malformed {} value", c.name, c.type_text);
    Ok(match c.ty.effective() {
        ColumnType::List(_) => collection::split(value, 1)
            .ok_or_else(bad)?
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                (
                    Some((i as i32).to_be_bytes().to_vec()),
                    e.unwrap_or_default(),
                )
            })
            .collect(),
        ColumnType::Set(_) => collection::split(value, 1)
            .ok_or_else(bad)?
            .into_iter()
            .map(|e| (Some(e.unwrap_or_default().to_vec()), Bytes::new()))
            .collect(),
        ColumnType::Map(..) => {
            let items = collection::split(value, 2).ok_or_else(bad)?;
            items
                .chunks(2)
                .map(|kv| {
                    (
                        Some(kv[0].clone().unwrap_or_default().to_vec()),
                        kv[1].clone().unwrap_or_default(),
                    )
                })
                .collect()
        }
        ColumnType::Udt { .. } => collection::fields(value)
            .ok_or_else(bad)?
            .into_iter()
            .enumerate()
            .filter_map(|(i, f)| Some((Some((i as u16).to_be_bytes().to_vec()), f?)))
            .collect(),
        _ => vec![(None, value.clone())],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, kind: &str, type_text: &str) -> Col {
        let ty = crate::decode::cql::schema::Schema::default()
            .parse_type("ks", type_text)
            .unwrap();
        Col {
            name: name.into(),
            kind: kind.into(),
            position: 0,
            type_text: type_text.into(),
            ty,
            order: "none".into(),
        }
    }

    /// `[int n]` then each item as `[int len][bytes]` (null: length -1).
    fn list(items: &[Option<&[u8]>]) -> Bytes {
        let mut b = (items.len() as i32).to_be_bytes().to_vec();
        for i in items {
            match i {
                Some(v) => {
                    b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    b.extend_from_slice(v);
                }
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        Bytes::from(b)
    }

    /// Cassandra 5.0 answers WRITETIME/TTL of a non-frozen map with one entry per
    /// element (CASSANDRA-8877); an older server's scalar applies to every element.
    #[test]
    fn non_frozen_collections_take_writetime_and_ttl_per_element() {
        let t = Table {
            keyspace: "ks".into(),
            name: "t".into(),
            partition_key: vec![col("k", "partition_key", "int")],
            clustering: vec![],
            others: vec![col("m", "regular", "map<text, int>")],
            schema: String::new(),
        };
        // A map counts entries, not items: [int 2] then key, value, key, value.
        let mut map = list(&[
            Some(b"a"),
            Some(&1i32.to_be_bytes()),
            Some(b"b"),
            Some(&2i32.to_be_bytes()),
        ])
        .to_vec();
        map[..4].copy_from_slice(&2i32.to_be_bytes());
        let map = Bytes::from(map);
        // list shape: 2 entries, the second expiring
        let wt = list(&[Some(&100i64.to_be_bytes()), Some(&200i64.to_be_bytes())]);
        let ttl = list(&[None, Some(&60i32.to_be_bytes())]);
        let k = Bytes::from(7i32.to_be_bytes().to_vec());
        let row = to_rows(
            &t,
            3,
            &[Some(k.clone()), Some(map.clone()), Some(wt), Some(ttl)],
            1000,
        )
        .unwrap()
        .remove(0);
        assert_eq!(row.key, r#"{"k":7}"#);
        assert_eq!(row.part, 3);
        let RowData::Cql { cells, .. } = row.data else {
            panic!()
        };
        let got: Vec<_> = cells
            .iter()
            .map(|c| {
                (
                    c.path.clone().unwrap(),
                    c.value.to_vec(),
                    c.timestamp,
                    c.ttl,
                    c.local_deletion_time,
                    c.kind,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    b"a".to_vec(),
                    1i32.to_be_bytes().to_vec(),
                    100,
                    None,
                    None,
                    CellKind::Live
                ),
                (
                    b"b".to_vec(),
                    2i32.to_be_bytes().to_vec(),
                    200,
                    Some(60),
                    Some(1060),
                    CellKind::Expiring
                ),
            ]
        );
        // scalar shape
        let wt = Bytes::from(300i64.to_be_bytes().to_vec());
        let row = to_rows(&t, 0, &[Some(k), Some(map), Some(wt), None], 1000)
            .unwrap()
            .remove(0);
        let RowData::Cql { cells, .. } = row.data else {
            panic!()
        };
        assert!(cells.iter().all(|c| c.timestamp == 300 && c.ttl.is_none()));
        assert_eq!(cells.len(), 2);
    }

    #[test]
    fn ring_ranges_cover_everything_once() {
        assert_eq!(split_ring(&[]), [(i64::MIN, i64::MAX)]);
        assert_eq!(
            split_ring(&[-5, 10]),
            [(i64::MIN, -5), (-5, 10), (10, i64::MAX)]
        );
        assert_eq!(split_ring(&[i64::MIN, i64::MAX]), [(i64::MIN, i64::MAX)]);
    }
}
