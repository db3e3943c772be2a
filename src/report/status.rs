//! `tidemark status`: the tidemark, mutations by outcome, the writes still undecided
//! with their reasons, capture gaps, the policy in force, and where the last tap run
//! got to.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::format_time;
use crate::store::{Query, Store, StoreOptions};

/// What `tidemark status` was asked for.
#[derive(Debug, Clone, Default)]
pub struct StatusOptions {
    pub store: PathBuf,
    pub json: bool,
}

/// One undecided write, as `status` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct UndecidedLine {
    pub outcome: &'static str,
    pub reason: String,
    pub namespace: String,
    pub key: String,
    pub first_seen: String,
}

/// A capture gap, as `status` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct GapLine {
    pub flow: u64,
    pub node: Option<String>,
    pub from: String,
    pub to: String,
    pub bytes: u64,
}

/// The store's state.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub store: String,
    pub format_version: u32,
    pub mutations: u64,
    /// RFC 3339, `null` before any tap run set it.
    pub tidemark: Option<String>,
    pub by_outcome: BTreeMap<&'static str, u64>,
    pub undecided: Vec<UndecidedLine>,
    pub gaps: Vec<GapLine>,
    pub policy: serde_json::Value,
    /// The last tap run: `complete`, `interrupted` (resume with `--resume`), or
    /// `none`.
    pub last_run: &'static str,
    /// Where the local log starts when a push dropped its oldest part (absent when
    /// it never did): `mutations` counts only what is still here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped: Option<DroppedLine>,
    /// A sharded MongoDB cluster's chunk maps now, by namespace, from the logged
    /// `config.chunks` writes (absent when none were logged): how many changes the
    /// log holds and the map in force since the last one. The whole history, and
    /// the owner of a key at any time, is [`super::chunk_map::history`].
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub chunk_maps: BTreeMap<String, ChunkMapLine>,
    /// What holds the tidemark back, when something stored does: the oldest
    /// undecided write (the node it went to — a sharded cluster's router for a
    /// routed write — and why it waits) or the earliest capture gap, whichever
    /// began first. Absent when neither exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
}

/// One namespace's chunk map, as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkMapLine {
    /// Committed changes of the map in the log.
    pub changes: usize,
    /// When the map in force took effect (its change's commit time).
    pub since: String,
    pub chunks: Vec<super::chunk_map::Chunk>,
}

/// The dropped part of the log, as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DroppedLine {
    /// The first seq the local log holds.
    pub log_start: u64,
    /// The repository holding the dropped seqs (no credentials).
    pub repository: String,
    /// When the last drop ran.
    pub at: String,
}

/// Reads the status of the store at `path`.
pub fn status(path: &std::path::Path) -> anyhow::Result<Status> {
    let store = Store::open(path, &StoreOptions::default().read_only())?;
    let mut by_outcome = BTreeMap::new();
    let mut mutations = 0;
    {
        // One read transaction per thread at a time (LMDB's reader slots): this one
        // ends before the state reads below open theirs.
        let reader = store.reader()?;
        for e in reader.query(&Query::all())? {
            let e = e?;
            mutations += 1;
            *by_outcome
                .entry(e.mutation.outcome.kind().as_str())
                .or_insert(0u64) += 1;
        }
    }
    let undecided_raw = store.list_undecided()?;
    let oldest = undecided_raw
        .iter()
        .min_by_key(|(_, u)| u.first_seen)
        .map(|(_, u)| {
            (
                u.first_seen,
                format!(
                    "{} write to {} ({} {}) since {}: {}",
                    u.mutation.outcome.kind().as_str(),
                    u.mutation.source.node,
                    u.mutation.namespace,
                    u.mutation.key,
                    format_time(u.first_seen),
                    u.mutation.reason_text().unwrap_or("")
                ),
            )
        });
    let undecided = undecided_raw
        .into_iter()
        .map(|(_, u)| UndecidedLine {
            outcome: u.mutation.outcome.kind().as_str(),
            reason: u.mutation.reason_text().unwrap_or("").to_string(),
            namespace: u.mutation.namespace.clone(),
            key: u.mutation.key.clone(),
            first_seen: format_time(u.first_seen),
        })
        .collect();
    let gaps_raw = store.gaps()?;
    let first_gap = gaps_raw.iter().min_by_key(|g| g.from).map(|g| {
        (
            g.from,
            format!(
                "capture gap on flow {} ({}) from {}",
                g.flow,
                g.node.map_or_else(|| "?".to_string(), |n| n.to_string()),
                format_time(g.from)
            ),
        )
    });
    let held_by = match (oldest, first_gap) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a.1 } else { b.1 }),
        (a, b) => a.or(b).map(|x| x.1),
    };
    let gaps = gaps_raw
        .into_iter()
        .map(|g| GapLine {
            flow: g.flow,
            node: g.node.map(|n| n.to_string()),
            from: format_time(g.from),
            to: format_time(g.to),
            bytes: g.bytes,
        })
        .collect();
    let policy = store.policy()?;
    let chunk_maps = super::chunk_map::history(&store)?
        .into_iter()
        .filter_map(|(ns, maps)| {
            let last = maps.last()?.clone();
            Some((
                ns,
                ChunkMapLine {
                    changes: maps.len(),
                    since: format_time(last.from),
                    chunks: last.chunks,
                },
            ))
        })
        .collect();
    let last_run = match crate::tap::last_run_complete(&store) {
        Ok(None) => "none",
        Ok(Some(true)) => "complete",
        Ok(Some(false)) => "interrupted",
        Err(_) => "unknown",
    };
    Ok(Status {
        kind: "status",
        store: path.display().to_string(),
        format_version: store.format(),
        mutations,
        tidemark: store.tidemark()?.map(format_time),
        by_outcome,
        undecided,
        gaps,
        policy: serde_json::json!({
            "mongo_unreplicated": if policy.mongo_unreplicated_committed { "committed" } else { "in_doubt" },
            "in_doubt_at_deadline": policy.in_doubt,
            "resolve_after_s": policy.resolve_after_ns as f64 / 1e9,
        }),
        last_run,
        dropped: store.dropped()?.map(|d| DroppedLine {
            log_start: d.through_seq + 1,
            repository: d.repository,
            at: format_time(d.at),
        }),
        chunk_maps,
        held_by,
    })
}

/// Runs `tidemark status`, printing to stdout.
pub fn run_status(o: &StatusOptions) -> anyhow::Result<()> {
    let s = status(&o.store)?;
    let mut w = std::io::stdout().lock();
    if o.json {
        serde_json::to_writer(&mut w, &s)?;
        writeln!(w)?;
        return Ok(());
    }
    writeln!(w, "store        {}", s.store)?;
    writeln!(
        w,
        "tidemark     {}",
        s.tidemark.as_deref().unwrap_or("(none yet)")
    )?;
    writeln!(w, "mutations    {}", s.mutations)?;
    for (k, n) in &s.by_outcome {
        writeln!(w, "  {k:<12} {n}")?;
    }
    if let Some(d) = &s.dropped {
        writeln!(
            w,
            "local log    from seq {} (earlier seqs pushed to {} and dropped here)",
            d.log_start, d.repository
        )?;
    }
    writeln!(w, "last run     {}", s.last_run)?;
    writeln!(
        w,
        "policy       mongo w<majority without replication traffic: {}; in-doubt at deadline: {}; deadline {} s",
        s.policy["mongo_unreplicated"].as_str().unwrap_or("?"),
        s.policy["in_doubt_at_deadline"].as_str().unwrap_or("?"),
        s.policy["resolve_after_s"]
    )?;
    for (ns, m) in &s.chunk_maps {
        writeln!(
            w,
            "chunk map    {ns}: {} chunks since {} ({} changes logged)",
            m.chunks.len(),
            m.since,
            m.changes
        )?;
    }
    if let Some(h) = &s.held_by {
        writeln!(w, "held by      {h}")?;
    }
    writeln!(w, "undecided    {}", s.undecided.len())?;
    for u in s.undecided.iter().take(50) {
        writeln!(
            w,
            "  {:<9} {} {} {}  {}",
            u.outcome, u.first_seen, u.namespace, u.key, u.reason
        )?;
    }
    if s.undecided.len() > 50 {
        writeln!(
            w,
            "  ... {} more (--json lists all)",
            s.undecided.len() - 50
        )?;
    }
    writeln!(w, "gaps         {}", s.gaps.len())?;
    for g in &s.gaps {
        writeln!(
            w,
            "  flow {} {} {} .. {} {} bytes",
            g.flow,
            g.node.as_deref().unwrap_or("?"),
            g.from,
            g.to,
            g.bytes
        )?;
    }
    Ok(())
}
