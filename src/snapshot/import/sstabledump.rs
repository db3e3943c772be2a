//! Reading one node's `sstabledump` JSON (Cassandra's `SSTableExport`, or the
//! testbed's copy of its shape: `tests/testbed/src/cql/storage/sstabledump.rs` has
//! the shape, `captures/sstabledump/` a real dump) into the replica merge.
//!
//! Every cell, row marker, tombstone and range tombstone of the file goes to
//! [`Merge`] as it is; nothing is decided per file, since a copy that looks live on
//! one replica may be shadowed by a deletion only another replica saw.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{Map, Value as Json};
use tidemark_cql::ColumnType;

use super::merge::{Del, Marker, Merge, RowAt};
use super::schema::TableDef;
use super::value::to_bytes;
use crate::decode::cql::extract::bound::typed;
use crate::store::{Cell, CellKind, CellOp};

/// What one file held.
#[derive(Debug, Default, Clone, Copy)]
pub struct FileStats {
    /// Rows (and static blocks) in the file.
    pub rows: u64,
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An `Instant.toString()` (`2023-11-14T22:13:20.000001Z`) as (seconds, nanos).
fn parse_instant(s: &str) -> Option<(i64, u32)> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let (y, mo, da): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':');
    let (h, mi, se): (i64, i64, i64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next().unwrap_or("0").parse().ok()?,
    );
    // Years within Java's Instant range keep every product below in i64.
    if !(1..=12).contains(&mo)
        || !(1..=31).contains(&da)
        || frac.len() > 9
        || y.abs() > 1_000_000_000
        || !(0..24).contains(&h)
        || !(0..60).contains(&mi)
        || !(0..61).contains(&se)
    {
        return None;
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        frac.parse::<u32>().ok()? * 10u32.pow(9 - frac.len() as u32)
    };
    Some((
        days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60 + se,
        nanos,
    ))
}

/// A time field: an ISO instant, or (`sstabledump -t`) the raw number.
fn time_field(v: &Json, micros: bool) -> Result<i64> {
    if let Some(n) = v.as_i64() {
        return Ok(n);
    }
    let s = v
        .as_str()
        .ok_or_else(|| anyhow!("time {v} is not a string"))?;
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    let (secs, nanos) = parse_instant(s).ok_or_else(|| anyhow!("bad time {s:?}"))?;
    if !micros {
        return Ok(secs);
    }
    secs.checked_mul(1_000_000)
        .and_then(|m| m.checked_add(i64::from(nanos / 1000)))
        .ok_or_else(|| anyhow!("time {s:?} out of range"))
}

fn deletion(v: &Json) -> Result<Del> {
    Ok(Del {
        timestamp: time_field(
            v.get("marked_deleted")
                .ok_or_else(|| anyhow!("deletion_info without marked_deleted"))?,
            true,
        )?,
        local_deletion_time: v
            .get("local_delete_time")
            .map(|t| time_field(t, false))
            .transpose()?
            .unwrap_or(0),
    })
}

fn opt_deletion(o: &Json) -> Result<Option<Del>> {
    o.get("deletion_info").map(deletion).transpose()
}

/// The row's liveness info (what cells without their own `tstamp`/`ttl` inherit).
fn liveness(row: &Json) -> Result<Option<Marker>> {
    let Some(li) = row.get("liveness_info") else {
        return Ok(None);
    };
    let ts = time_field(
        li.get("tstamp")
            .ok_or_else(|| anyhow!("liveness_info without tstamp"))?,
        true,
    )?;
    let ttl = li.get("ttl").and_then(Json::as_u64).map(|t| t as u32);
    let expires = li
        .get("expires_at")
        .map(|e| time_field(e, false))
        .transpose()?;
    Ok(Some(Marker {
        timestamp: ts,
        ttl,
        expires,
    }))
}

/// Reads one dump of `table` (whole file in `bytes`) into `merge` as part `part`.
pub fn read(bytes: &[u8], table: &TableDef, part: u32, merge: &mut Merge) -> Result<FileStats> {
    let doc: Json = serde_json::from_slice(bytes).context("not JSON")?;
    let partitions = doc
        .as_array()
        .ok_or_else(|| anyhow!("not an sstabledump array of partitions"))?;
    let mut stats = FileStats::default();
    for (i, p) in partitions.iter().enumerate() {
        read_partition(p, table, part, merge, &mut stats)
            .with_context(|| format!("partition {i}"))?;
    }
    Ok(stats)
}

fn read_partition(
    p: &Json,
    table: &TableDef,
    part: u32,
    merge: &mut Merge,
    stats: &mut FileStats,
) -> Result<()> {
    let head = p
        .get("partition")
        .ok_or_else(|| anyhow!("no \"partition\""))?;
    let key = head
        .get("key")
        .and_then(Json::as_array)
        .ok_or_else(|| anyhow!("no partition key"))?;
    if key.len() != table.partition_key.len() {
        bail!(
            "partition key has {} components, {} has {}",
            key.len(),
            table.namespace,
            table.partition_key.len()
        );
    }
    let mut pk = Map::new();
    for ((name, ty), v) in table.partition_key.iter().zip(key) {
        let b = to_bytes(v, ty).with_context(|| format!("key column {name}"))?;
        pk.insert(name.clone(), typed(ty, &bytes::Bytes::from(b)));
    }
    let pkey = merge.partition(&table.namespace, pk);
    if let Some(d) = opt_deletion(head)? {
        merge.delete_partition(&pkey, d, part);
    }
    let empty = Vec::new();
    let rows = p.get("rows").and_then(Json::as_array).unwrap_or(&empty);
    for r in rows {
        match r.get("type").and_then(Json::as_str) {
            Some("row") => read_row(r, table, &pkey, false, part, merge, stats)?,
            Some("static_block") => read_row(r, table, &pkey, true, part, merge, stats)?,
            Some("range_tombstone_bound") | Some("range_tombstone_boundary") => {
                read_bound(r, table, &pkey, merge)?
            }
            other => bail!("unknown row type {other:?}"),
        }
    }
    Ok(())
}

fn clustering(v: Option<&Json>, table: &TableDef) -> Result<Vec<Json>> {
    let Some(items) = v else {
        return Ok(Vec::new());
    };
    let items = items
        .as_array()
        .ok_or_else(|| anyhow!("clustering is not an array"))?;
    let mut out = Vec::new();
    for ((name, ty), v) in table.clustering.iter().zip(items) {
        if v.as_str() == Some("*") {
            break;
        }
        let b = to_bytes(v, ty).with_context(|| format!("clustering column {name}"))?;
        out.push(typed(ty, &bytes::Bytes::from(b)));
    }
    Ok(out)
}

fn read_bound(r: &Json, table: &TableDef, pkey: &str, merge: &mut Merge) -> Result<()> {
    // A boundary closes one range and opens the next: its end comes first.
    let sides = if r.get("type").and_then(Json::as_str) == Some("range_tombstone_boundary") {
        [("end", false), ("start", true)]
    } else {
        [("start", true), ("end", false)]
    };
    for (side, is_start) in sides {
        let Some(b) = r.get(side) else { continue };
        let inclusive = b.get("type").and_then(Json::as_str) != Some("exclusive");
        let ck = clustering(b.get("clustering"), table)?;
        let d = opt_deletion(b)?.ok_or_else(|| anyhow!("range bound without deletion_info"))?;
        merge.range_bound(pkey, is_start, ck, inclusive, d);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn read_row(
    r: &Json,
    table: &TableDef,
    pkey: &str,
    is_static: bool,
    part: u32,
    merge: &mut Merge,
    stats: &mut FileStats,
) -> Result<()> {
    stats.rows += 1;
    let ck = if is_static {
        Vec::new()
    } else {
        clustering(r.get("clustering"), table)?
    };
    if !is_static && ck.len() != table.clustering.len() {
        bail!(
            "row with {} of {} clustering values",
            ck.len(),
            table.clustering.len()
        );
    }
    let live = liveness(r)?;
    let at = RowAt {
        pkey,
        ck: if is_static { None } else { Some(ck) },
        part,
    };
    if let Some(m) = live {
        merge.marker(&at, m);
    }
    if let Some(d) = opt_deletion(r)? {
        merge.delete_row(&at, d);
    }
    let empty = Vec::new();
    for c in r.get("cells").and_then(Json::as_array).unwrap_or(&empty) {
        let name = c
            .get("name")
            .and_then(Json::as_str)
            .ok_or_else(|| anyhow!("cell without name"))?;
        let name = name
            .strip_prefix('"')
            .and_then(|n| n.strip_suffix('"'))
            .map_or_else(|| name.to_string(), |n| n.replace("\"\"", "\""));
        let (type_text, ty) = table
            .columns
            .get(&name)
            .ok_or_else(|| anyhow!("column {name} is not in the schema of {}", table.namespace))?;
        let path = c.get("path").and_then(Json::as_array);
        // A collection deletion: a deletion_info with marked_deleted and no path.
        if path.is_none() && c.get("value").is_none() {
            if let Some(di) = c.get("deletion_info") {
                if di.get("marked_deleted").is_some() {
                    merge.delete_collection(&at, &name, deletion(di)?);
                    continue;
                }
            }
        }
        let (path_bytes, value_ty) = match path {
            Some(p) => element(ty, p, &name)?,
            None => (None, ty.clone()),
        };
        let timestamp = match c.get("tstamp") {
            Some(t) => time_field(t, true)?,
            None => live
                .map(|m| m.timestamp)
                .ok_or_else(|| anyhow!("cell {name} without tstamp or row liveness"))?,
        };
        let (ttl, expires) = match c.get("ttl") {
            Some(t) => (
                t.as_u64().map(|t| t as u32),
                c.get("expires_at")
                    .map(|e| time_field(e, false))
                    .transpose()?,
            ),
            None => live.map_or((None, None), |m| (m.ttl, m.expires)),
        };
        let cell = match c.get("deletion_info") {
            Some(di) => Cell {
                column: name.as_str().into(),
                path: path_bytes,
                value: Default::default(),
                cql_type: type_text.as_str().into(),
                timestamp,
                ttl: None,
                local_deletion_time: di
                    .get("local_delete_time")
                    .map(|t| time_field(t, false))
                    .transpose()?,
                kind: CellKind::Tombstone,
                op: CellOp::Set,
            },
            None => {
                let v = c
                    .get("value")
                    .ok_or_else(|| anyhow!("cell {name} without value"))?;
                let value = if matches!(ty.effective(), ColumnType::Set(_)) && path.is_some() {
                    Vec::new()
                } else {
                    to_bytes(v, &value_ty).with_context(|| format!("column {name}"))?
                };
                let counter = matches!(ty.effective(), ColumnType::Counter);
                Cell {
                    column: name.as_str().into(),
                    path: path_bytes,
                    value: value.into(),
                    cql_type: type_text.as_str().into(),
                    timestamp,
                    ttl: ttl.filter(|_| !counter),
                    local_deletion_time: expires.filter(|_| !counter),
                    kind: match (counter, ttl) {
                        (true, _) => CellKind::CounterShard,
                        (false, Some(_)) => CellKind::Expiring,
                        (false, None) => CellKind::Live,
                    },
                    op: CellOp::Set,
                }
            }
        };
        merge.cell(&at, cell);
    }
    Ok(())
}

/// A list element's path as bytes that sort in list order. Cassandra's paths are
/// timeuuids, ordered by their time: the time fields are put first (high, mid,
/// low), then the clock sequence and node. Other paths (the testbed's hex) sort as
/// their text.
fn list_order(path: &str) -> Vec<u8> {
    let hex: String = path.chars().filter(|c| *c != '-').collect();
    let bytes: Option<Vec<u8>> = (path.len() == 36 && hex.len() == 32)
        .then(|| {
            (0..16)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                .collect()
        })
        .flatten();
    match bytes {
        Some(b) => {
            let mut out = Vec::with_capacity(16);
            out.extend_from_slice(&[b[6] & 0x0f, b[7], b[4], b[5], b[0], b[1], b[2], b[3]]);
            out.extend_from_slice(&b[8..]);
            out
        }
        None => path.as_bytes().to_vec(),
    }
}

/// The stored path of a collection or UDT element, and the element value's type.
/// List paths (timeuuids, or the testbed's hex) are kept as their text for ordering;
/// the merge turns them into list positions.
fn element(ty: &ColumnType, path: &[Json], name: &str) -> Result<(Option<Vec<u8>>, ColumnType)> {
    let p = path
        .first()
        .ok_or_else(|| anyhow!("cell {name} with an empty path"))?;
    Ok(match ty.effective() {
        ColumnType::Set(e) => (Some(to_bytes(p, e)?), (**e).clone()),
        ColumnType::Map(k, v) => (Some(to_bytes(p, k)?), (**v).clone()),
        ColumnType::List(e) => (
            Some(list_order(
                p.as_str()
                    .ok_or_else(|| anyhow!("list path of {name} is not text"))?,
            )),
            (**e).clone(),
        ),
        ColumnType::Udt { fields, .. } => {
            let f = p.as_str().unwrap_or_default();
            let i = fields
                .iter()
                .position(|(n, _)| n.as_str() == f)
                .ok_or_else(|| anyhow!("{name} has no field {f:?}"))?;
            (Some((i as u16).to_be_bytes().to_vec()), fields[i].1.clone())
        }
        _ => bail!("cell {name} has a path but is not a collection"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_as_cassandra_prints_them() {
        // From the real Cassandra 5.0.9 dump in captures/sstabledump/ (timestamps
        // written with USING TIMESTAMP 1700000000000001 and 1700000000000000).
        assert_eq!(
            time_field(&Json::from("2023-11-14T22:13:20.000001Z"), true).unwrap(),
            1_700_000_000_000_001
        );
        assert_eq!(
            time_field(&Json::from("2023-11-14T22:13:20Z"), true).unwrap(),
            1_700_000_000_000_000
        );
        assert_eq!(
            time_field(&Json::from("1970-01-01T00:00:00.005Z"), true).unwrap(),
            5000
        );
        assert_eq!(
            time_field(&Json::from("1700000000"), false).unwrap(),
            1_700_000_000
        );
        assert!(time_field(&Json::from("2023-13-14T22:13:20Z"), true).is_err());
        assert!(time_field(&Json::from("garbage"), true).is_err());
        // Far years are refused, not overflowed.
        assert!(time_field(&Json::from("999999999999-01-01T00:00:00Z"), true).is_err());
        assert!(time_field(&Json::from("-999999999-01-01T00:00:00Z"), true).is_err());
    }
}
