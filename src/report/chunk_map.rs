//! A sharded MongoDB cluster's chunk map and its history, from the log.
//!
//! The config servers' `config.chunks` documents (one per chunk: `ns`, `min`,
//! `max`, `shard`) are written over the wire by whoever changes the map (the router
//! for `shardCollection`/`split`, the donor shard committing a migration), with
//! `w: "majority"`, so a tap that sees the config servers logs them as the ordinary
//! committed mutations they are. Replaying them in log order gives the map in force
//! at any commit time: the owner of any key at any time.
//!
//! ARCHITECTURE.md keeps side tables (schema, prepared statements) for what the log
//! does not hold; the chunk map's history is already in the log, durably and in
//! commit order, so it is derived here on demand rather than copied into a table of
//! its own.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::log::mutation_line;
use crate::store::{OutcomeKind, Query, Store};

/// The namespace holding the chunk documents.
pub const CHUNKS_NS: &str = "config.chunks";

/// One chunk: its `config.chunks` `_id`, key range `[min, max)` (documents of the
/// shard key, as relaxed Extended JSON) and owning shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chunk {
    pub id: String,
    pub min: Value,
    pub max: Value,
    pub shard: String,
}

/// The chunk map of one namespace from a commit time on (ns since the epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChunkMap {
    pub from: u64,
    /// By `_id`.
    pub chunks: Vec<Chunk>,
}

/// Sharded namespace → its chunk maps in commit order (one per committed change;
/// the statements of one command, committed together, are one change).
pub type History = BTreeMap<String, Vec<ChunkMap>>;

/// The chunk-map history in the store's log.
pub fn history(store: &Store) -> anyhow::Result<History> {
    let reader = store.reader()?;
    let q = Query::all()
        .namespace(CHUNKS_NS)
        .outcome(OutcomeKind::Committed);
    // `_id` → chunk, for every namespace at once (an `_id` names one chunk).
    let mut live: BTreeMap<String, Chunk> = BTreeMap::new();
    let mut ns_of: BTreeMap<String, String> = BTreeMap::new();
    let mut out: History = BTreeMap::new();
    let mut pending: Option<(u64, Vec<String>)> = None;
    let snapshot = |live: &BTreeMap<String, Chunk>,
                    ns_of: &BTreeMap<String, String>,
                    ns: &str,
                    from: u64| ChunkMap {
        from,
        chunks: live
            .values()
            .filter(|c| ns_of.get(&c.id).is_some_and(|n| n == ns))
            .cloned()
            .collect(),
    };
    for e in reader.query(&q)? {
        let e = e?;
        let line = mutation_line(&e);
        let t = e.mutation.commit_time;
        if let Some((at, touched)) = pending.take() {
            if at == t {
                pending = Some((at, touched));
            } else {
                for ns in touched {
                    out.entry(ns.clone())
                        .or_default()
                        .push(snapshot(&live, &ns_of, &ns, at));
                }
            }
        }
        let Some(id) = line["key"]["_id"].as_str().map(str::to_owned) else {
            continue;
        };
        let values = &line["values"];
        let doc = values.get("$set").unwrap_or(values);
        let ns = match line["op"].as_str() {
            Some("delete") => {
                live.remove(&id);
                ns_of.get(&id).cloned()
            }
            Some("insert" | "update" | "replace") => {
                let prior = live.get(&id).cloned();
                let field = |k: &str| doc.get(k).cloned().filter(|v| !v.is_null());
                let chunk_ns = field("ns")
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .or_else(|| ns_of.get(&id).cloned());
                let (Some(chunk_ns), Some(min), Some(max), Some(shard)) = (
                    chunk_ns,
                    field("min").or_else(|| prior.as_ref().map(|c| c.min.clone())),
                    field("max").or_else(|| prior.as_ref().map(|c| c.max.clone())),
                    field("shard")
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .or_else(|| prior.as_ref().map(|c| c.shard.clone())),
                ) else {
                    continue;
                };
                ns_of.insert(id.clone(), chunk_ns.clone());
                live.insert(
                    id.clone(),
                    Chunk {
                        id,
                        min,
                        max,
                        shard,
                    },
                );
                Some(chunk_ns)
            }
            _ => None,
        };
        if let Some(ns) = ns {
            let (_, touched) = pending.get_or_insert_with(|| (t, Vec::new()));
            if !touched.contains(&ns) {
                touched.push(ns);
            }
        }
    }
    if let Some((at, touched)) = pending {
        for ns in touched {
            out.entry(ns.clone())
                .or_default()
                .push(snapshot(&live, &ns_of, &ns, at));
        }
    }
    Ok(out)
}

/// The chunk map of `ns` in force at commit time `t`.
pub fn at<'a>(history: &'a History, ns: &str, t: u64) -> Option<&'a ChunkMap> {
    history.get(ns)?.iter().rev().find(|m| m.from <= t)
}
