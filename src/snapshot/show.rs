//! `snapshot list` and `snapshot show`: a store's snapshots as text or JSON.

use std::path::Path;

use anyhow::{anyhow, Result};
use serde_json::{json, Value};

use super::model::{PartRange, SnapshotInfo};
use super::store as snapstore;
use crate::store::{Store, StoreOptions};

/// A time for output (RFC 3339 UTC, as `log` and `status` print them).
fn format_time(ns: u64) -> String {
    crate::decode::time::rfc3339(crate::capture::Timestamp(ns))
}

fn open(dir: &Path) -> Result<Store> {
    Ok(Store::open(dir, &StoreOptions::default().read_only())?)
}

fn window_json(info: &SnapshotInfo) -> Value {
    match info.read_window() {
        Some((s, e)) => json!({"start": format_time(s), "end": format_time(e)}),
        None => Value::Null,
    }
}

/// The `snapshot` line of `list --json`.
pub fn summary_json(info: &SnapshotInfo) -> Value {
    json!({
        "type": "snapshot",
        "id": info.id,
        "source": info.source,
        "cluster": info.cluster,
        "protocol": info.protocol.as_str(),
        "started": format_time(info.started),
        "finished": info.finished.map(format_time),
        "namespaces": info.namespaces.len(),
        "rows": info.rows(),
        "bytes": info.namespaces.iter().map(|n| n.bytes).sum::<u64>(),
        "parts": info.parts.len(),
        "parts_done": info.parts_done(),
        "read_window": window_json(info),
        "cluster_time": info.cluster_time.map(|t| json!({"t": (t.ts >> 32), "i": (t.ts & 0xffff_ffff)})),
        "import": import_json(info),
        "orphans_filtered": orphans_json(info),
    })
}

/// A per-shard snapshot's orphans left out, per namespace (`null` otherwise).
pub fn orphans_json(info: &SnapshotInfo) -> Value {
    let o = info.orphans_filtered();
    if o.is_empty()
        && !info
            .parts
            .iter()
            .any(|p| matches!(p.range, PartRange::ShardIdChunk { .. }))
    {
        return Value::Null;
    }
    json!(o)
}

/// Ratio of input to logical bytes, two decimals (`None` when nothing is stored).
fn ratio(input: u64, logical: u64) -> Option<f64> {
    (logical > 0).then(|| (input as f64 / logical as f64 * 100.0).round() / 100.0)
}

/// An import's sizes: files on disk, value bytes over every input copy, value
/// bytes stored after deduplication, and their ratio (≈ the replication factor
/// for node dumps of a whole cluster).
fn import_json(info: &SnapshotInfo) -> Value {
    match super::import::dedup(info) {
        Some((files, input, logical)) => json!({
            "file_bytes": files,
            "input_bytes": input,
            "logical_bytes": logical,
            "dedup_ratio": ratio(input, logical),
        }),
        None => Value::Null,
    }
}

fn range_json(r: &PartRange) -> Value {
    let hex = |b: &Option<Vec<u8>>| {
        b.as_ref()
            .map(|b| b.iter().map(|x| format!("{x:02x}")).collect::<String>())
    };
    match r {
        PartRange::Token(a, b) => json!({"token_start": a.to_string(), "token_end": b.to_string()}),
        PartRange::IdChunk { from, to } => json!({"id_from": hex(from), "id_to": hex(to)}),
        PartRange::File {
            path,
            input_bytes,
            value_bytes,
        } => json!({"file": path, "input_bytes": input_bytes, "value_bytes": value_bytes}),
        PartRange::ShardIdChunk {
            shard,
            from,
            to,
            orphans,
        } => {
            json!({"shard": shard, "id_from": hex(from), "id_to": hex(to), "orphans_filtered": orphans})
        }
    }
}

/// `snapshot list`.
pub fn run_list(store: &Path, json: bool) -> Result<()> {
    let store = open(store)?;
    let all = snapstore::list_snapshots(&store)?;
    for s in &all {
        if json {
            println!("{}", summary_json(s));
        } else {
            println!(
                "{:>4}  {:<5}  {:<24}  {:<16}  {:>10} rows  {:>4}/{:<4} parts  {}",
                s.id,
                s.protocol.as_str(),
                s.source,
                s.cluster,
                s.rows(),
                s.parts_done(),
                s.parts.len(),
                match s.finished {
                    Some(t) => format!("finished {}", format_time(t)),
                    None => "unfinished".to_string(),
                }
            );
        }
    }
    if !json && all.is_empty() {
        println!("no snapshots");
    }
    Ok(())
}

/// `snapshot show ID`.
pub fn run_show(store: &Path, id: u64, json: bool) -> Result<()> {
    let store = open(store)?;
    let info = snapstore::snapshot(&store, id)?
        .ok_or_else(|| anyhow!("no snapshot {id} in {}", store.path().display()))?;
    if json {
        let mut v = summary_json(&info);
        v["namespaces"] = Value::Array(
            info.namespaces
                .iter()
                .map(|n| {
                    let parts: Vec<Value> = info
                        .parts
                        .iter()
                        .filter(|p| p.namespace == n.name)
                        .map(|p| {
                            let mut r = range_json(&p.range);
                            r["rows"] = json!(p.rows);
                            r["read_start"] = json!(p.read_end.map(|_| format_time(p.read_start)));
                            r["read_end"] = json!(p.read_end.map(format_time));
                            r
                        })
                        .collect();
                    json!({"name": n.name, "rows": n.rows, "bytes": n.bytes, "schema": n.schema, "parts": parts})
                })
                .collect(),
        );
        println!("{v}");
        return Ok(());
    }
    println!("snapshot {} ({})", info.id, info.protocol.as_str());
    println!("source    {}", info.source);
    println!("cluster   {}", info.cluster);
    println!("started   {}", format_time(info.started));
    println!(
        "finished  {}",
        info.finished
            .map_or("no (continue with --resume)".into(), format_time)
    );
    if let Some((s, e)) = info.read_window() {
        println!("read      {} .. {}", format_time(s), format_time(e));
    }
    if let Some(t) = info.cluster_time {
        println!(
            "at        cluster time {{t: {}, i: {}}}",
            t.ts >> 32,
            t.ts & 0xffff_ffff
        );
    }
    println!("parts     {}/{}", info.parts_done(), info.parts.len());
    if let Some((files, input, logical)) = super::import::dedup(&info) {
        println!("input     {input} bytes of values in {files} bytes of files");
        println!("logical   {logical} bytes");
        println!(
            "dedup     {}",
            ratio(input, logical).map_or("-".to_string(), |r| format!("{r:.2}x"))
        );
    }
    let orphans = info.orphans_filtered();
    for n in &info.namespaces {
        let parts: Vec<_> = info
            .parts
            .iter()
            .filter(|p| p.namespace == n.name)
            .collect();
        let done = parts.iter().filter(|p| p.read_end.is_some()).count();
        println!(
            "  {:<32} {:>10} rows {:>12} bytes  {done}/{} parts{}",
            n.name,
            n.rows,
            n.bytes,
            parts.len(),
            orphans
                .get(&n.name)
                .map_or(String::new(), |o| format!("  {o} orphans filtered"))
        );
    }
    Ok(())
}
