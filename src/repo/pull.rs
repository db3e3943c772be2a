//! Many sources, one cluster: the segments of every source in a repository merged
//! into one log in a local working store, where `version create`, `restore` and
//! `verify` then run as on any store.
//!
//! - **How far**: each source's segments say up to when its log is complete (the
//!   tidemark of its last segment); the cluster's tidemark is the minimum over the
//!   sources, and a pull merges exactly up to it, so the merged log is in commit
//!   order and never misses a write a slower source has not shipped yet. A source
//!   that stopped shipping holds the cluster's tidemark (`status --repo` names it).
//! - **Once**: the same logical write seen by two sources (overlapping taps, a
//!   client retry through two sidecars) is merged into one by the tracker's dedupe
//!   identity ([`crate::commit::identity::of_mutation`]); of two copies the more
//!   decided outcome wins (committed or rejected over in doubt over pending). Writes
//!   without an identity (server-assigned CQL timestamps, MongoDB updates outside a
//!   session) cannot be told apart from a second write and are kept as seen.
//! - **Resumable**: each source's merged position is a checkpoint committed in the
//!   same transaction as the merged mutations, so a pull killed midway starts again
//!   where the last commit left it.
//! - **Keys**: a sidecar that never saw a table's schema keys an INSERT by its
//!   partition key only; such keys are completed with the schema the other sources
//!   shipped before copies are matched ([`super::rekey`]).
//! - Snapshots and the CQL schema the sources learned come along.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use anyhow::{bail, Context};
use serde::Serialize;

use super::layout;
use super::location::Repo;
use super::segment::{self, Manifest};
use super::snapshots;
use crate::commit::identity::{self, Identity};
use crate::store::{
    Checkpoint, Envelope, Gap, Mutation, OutcomeKind, Store, StoreOptions, TxnExtras,
};

/// Duplicates are looked for this far (ns of commit time) back into what earlier
/// pulls merged: copies of one write are decided within seconds of each other.
const DEDUPE_WINDOW_NS: u64 = 300_000_000_000;

/// Mutations appended per transaction.
const BATCH: usize = 10_000;

/// Checkpoint name of a source's merged position in the working store.
fn checkpoint_name(source: &str) -> String {
    format!("repo:{source}")
}

/// What one source contributes.
#[derive(Debug, Clone, Serialize)]
pub struct SourceState {
    pub source: String,
    /// End of its chain of segments from seq 1.
    pub last_seq: u64,
    /// Its log is complete up to this time (ns; 0: nothing yet).
    pub tidemark: u64,
    /// When its newest segment was sealed (RFC 3339).
    pub last_sealed: Option<String>,
}

/// The sources of a repository and the cluster's tidemark.
pub async fn sources(repo: &Repo) -> anyhow::Result<Vec<(SourceState, Vec<Manifest>)>> {
    let mut out = Vec::new();
    for source in layout::sources(repo).await? {
        let mut ms = layout::manifests(repo, &source).await?;
        ms.sort_by_key(|m| m.first_seq);
        let pruned = layout::pruned(repo, &source).await?.through_seq;
        let end = layout::contiguous_end(&ms, pruned)
            .map_err(|e| anyhow::anyhow!("source {source}: {e}"))?;
        ms.retain(|m| m.first_seq > pruned && m.last_seq <= end);
        let mut tidemark = ms.iter().map(|m| m.tidemark).max().unwrap_or(0);
        let mut last_sealed = ms.last().map(|m| m.sealed_at.clone());
        if let Some(h) = layout::head(repo, &source).await? {
            // Only a head whose seqs are all in the chain speaks for it.
            if h.last_seq <= end && h.tidemark > tidemark {
                tidemark = h.tidemark;
                last_sealed = Some(h.updated_at);
            }
        }
        out.push((
            SourceState {
                source,
                last_seq: end,
                tidemark,
                last_sealed,
            },
            ms,
        ));
    }
    Ok(out)
}

/// What a pull did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PullReport {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub repo: String,
    pub store: String,
    pub sources: Vec<SourceState>,
    /// The cluster's tidemark (ns): the minimum over the sources.
    pub tidemark: u64,
    /// The source(s) whose tidemark is the cluster's.
    pub held_by: Vec<String>,
    pub segments_read: u64,
    pub merged: u64,
    /// Copies of a write another source (or an earlier pull) already gave.
    pub duplicates: u64,
    /// CQL keys completed with the merged schema (decoded without it by their source).
    pub rekeyed: u64,
    pub snapshots: u64,
}

/// Opens (creating it when missing) the working store of a repository.
pub fn open_working(dir: &Path) -> anyhow::Result<Store> {
    match Store::open(dir, &StoreOptions::default()) {
        Err(crate::store::StoreError::Missing { .. }) => {
            Ok(Store::create(dir, &StoreOptions::default())?)
        }
        other => Ok(other.with_context(|| format!("working store {}", dir.display()))?),
    }
}

/// Merges what the repository at `url` holds beyond what the working store at `dir`
/// has, up to the cluster's tidemark.
pub fn pull(url: &str, dir: &Path, key: Option<&super::crypt::Key>) -> anyhow::Result<PullReport> {
    let repo = super::location::open(url)?;
    let store = open_working(dir)?;
    super::block_on(pull_into(&repo, &store, key))?
}

fn rank(k: OutcomeKind) -> u8 {
    match k {
        OutcomeKind::Committed | OutcomeKind::Rejected | OutcomeKind::RolledBack => 2,
        OutcomeKind::InDoubt => 1,
        OutcomeKind::Pending => 0,
    }
}

async fn pull_into(
    repo: &Repo,
    store: &Store,
    key: Option<&super::crypt::Key>,
) -> anyhow::Result<PullReport> {
    let all = sources(repo).await?;
    if all.is_empty() {
        bail!("repository {}: no source has pushed anything", repo.url);
    }
    let tidemark = all.iter().map(|(s, _)| s.tidemark).min().unwrap_or(0);
    let mut report = PullReport {
        kind: "repo_pull",
        repo: repo.url.clone(),
        store: store.path().display().to_string(),
        tidemark,
        held_by: all
            .iter()
            .filter(|(s, _)| s.tidemark == tidemark)
            .map(|(s, _)| s.source.clone())
            .collect(),
        sources: all.iter().map(|(s, _)| s.clone()).collect(),
        ..PullReport::default()
    };

    // What each source adds: its envelopes after its merged position, up to T.
    let mut taken: Vec<(u64, String, u64, Mutation)> = Vec::new();
    let mut positions: BTreeMap<String, u64> = BTreeMap::new();
    let mut gaps: Vec<Gap> = Vec::new();
    for (state, manifests) in &all {
        let from = store
            .checkpoint(&checkpoint_name(&state.source))?
            .map_or(0, |c| c.offset);
        let mut pos = from;
        for m in manifests
            .iter()
            .filter(|m| m.last_seq > from && m.first_commit_time <= tidemark)
        {
            let object = layout::segment_path(repo, &state.source, &m.object);
            let bytes = repo
                .store
                .get(&object)
                .await
                .with_context(|| format!("reading {object}"))?
                .bytes()
                .await?;
            let envs =
                segment::read(&bytes, m, key).map_err(|e| anyhow::anyhow!("{object}: {e}"))?;
            report.segments_read += 1;
            for Envelope { seq, mutation } in envs {
                if seq <= from || mutation.commit_time > tidemark {
                    continue;
                }
                pos = seq;
                taken.push((mutation.commit_time, state.source.clone(), seq, mutation));
            }
            for g in &m.gaps {
                if g.from <= tidemark {
                    gaps.push(Gap {
                        flow: g.flow,
                        node: g.node.as_deref().and_then(|n| n.parse().ok()),
                        from: g.from,
                        to: g.to,
                        bytes: g.bytes,
                    });
                }
            }
        }
        if pos > from {
            positions.insert(state.source.clone(), pos);
        }
        // The schema the source learned (the newest record of each namespace).
        let mut schema: BTreeMap<String, crate::store::NamespaceSchema> = BTreeMap::new();
        for m in manifests {
            let learned = m
                .schema(key)
                .map_err(|e| anyhow::anyhow!("source {}: {}: {e}", state.source, m.object))?;
            for (ns, s) in learned {
                if schema
                    .get(&ns)
                    .is_none_or(|old| old.updated_at <= s.updated_at)
                {
                    schema.insert(ns, s);
                }
            }
        }
        for (ns, s) in schema {
            let newer = store
                .schema(&ns)?
                .is_none_or(|old| old.updated_at < s.updated_at);
            if newer {
                store.put_schema(&ns, &s)?;
            }
        }
    }
    taken.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));

    // Keys a source decoded without the table's schema, completed with the schema
    // every source learned (see [`super::rekey`]), before copies are matched.
    let mut schemas: HashMap<String, Option<crate::store::NamespaceSchema>> = HashMap::new();
    for (_, _, _, m) in &mut taken {
        if !matches!(m.payload, crate::store::Payload::Cql(_)) {
            continue;
        }
        if !schemas.contains_key(&m.namespace) {
            schemas.insert(m.namespace.clone(), store.schema(&m.namespace)?);
        }
        if let Some(Some(s)) = schemas.get(&m.namespace) {
            if super::rekey::complete_key(m, s) {
                report.rekeyed += 1;
            }
        }
    }

    // Identities already merged, from the window before the first new commit time.
    let last = {
        let r = store.reader()?;
        match r.last_seq()? {
            0 => None,
            s => r.get(s)?.map(|e| e.mutation.commit_time),
        }
    };
    if let (Some(last), Some(first)) = (last, taken.first()) {
        if first.0 < last {
            bail!(
                "source {} pushed mutations from before what {} already merged (a source that joined late): merge into a new working store (another --store)",
                first.1,
                store.path().display()
            );
        }
    }
    let mut earlier: BTreeSet<Identity> = BTreeSet::new();
    if let Some(last) = last {
        let r = store.reader()?;
        for e in r.commit_times(last.saturating_sub(DEDUPE_WINDOW_NS)..)? {
            if let Some(id) = identity::of_mutation(&e?.mutation) {
                earlier.insert(id);
            }
        }
    }
    let mut merged: Vec<Mutation> = Vec::with_capacity(taken.len());
    let mut index: HashMap<Identity, usize> = HashMap::new();
    for (_, _, _, m) in taken {
        match identity::of_mutation(&m) {
            Some(id) if earlier.contains(&id) => report.duplicates += 1,
            Some(id) => match index.get(&id) {
                Some(&i) => {
                    report.duplicates += 1;
                    if rank(m.outcome.kind()) > rank(merged[i].outcome.kind()) {
                        let first_time = merged[i].commit_time;
                        merged[i] = m;
                        merged[i].commit_time = first_time;
                    }
                }
                None => {
                    index.insert(id, merged.len());
                    merged.push(m);
                }
            },
            None => merged.push(m),
        }
    }
    report.merged = merged.len() as u64;

    // Gaps not recorded yet.
    let known: BTreeSet<(u64, u64, u64, u64)> = store
        .gaps()?
        .iter()
        .map(|g| (g.flow, g.from, g.to, g.bytes))
        .collect();
    let mut seen = known.clone();
    gaps.retain(|g| seen.insert((g.flow, g.from, g.to, g.bytes)));

    let chunks: Vec<&[Mutation]> = if merged.is_empty() {
        vec![&[]]
    } else {
        merged.chunks(BATCH).collect()
    };
    let n = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let last_chunk = i + 1 == n;
        let extras = TxnExtras {
            // Positions and the tidemark move with the last chunk only: a pull killed
            // before it starts over from the old positions, and the chunks already
            // appended are found again as duplicates by their identities.
            checkpoints: if last_chunk {
                positions
                    .iter()
                    .map(|(s, pos)| {
                        (
                            checkpoint_name(s),
                            Checkpoint {
                                offset: *pos,
                                state: Vec::new(),
                                at: tidemark,
                            },
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            },
            gaps: if last_chunk {
                std::mem::take(&mut gaps)
            } else {
                Vec::new()
            },
            tidemark: (last_chunk && store.tidemark()?.is_none_or(|t| t < tidemark))
                .then_some(tidemark),
            ..TxnExtras::default()
        };
        store.append_batch_with(chunk, &extras)?;
    }

    // Snapshots not imported yet.
    for (state, _) in &all {
        for m in snapshots::manifests(repo, &state.source).await? {
            let imported = format!("o\0snapshot\0{}\0{}", state.source, m.id).into_bytes();
            if store.version_entry(&imported)?.is_some() {
                continue;
            }
            let (info, rows) = snapshots::fetch(repo, &m, key).await?;
            let id = crate::snapshot::store::insert_info(store, &info)?;
            for chunk in rows.chunks(BATCH) {
                crate::snapshot::store::put_rows(store, id, chunk, None)?;
            }
            store.put_version_entries([(imported, id.to_le_bytes().to_vec())])?;
            report.snapshots += 1;
        }
    }
    Ok(report)
}
