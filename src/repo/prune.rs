//! `tidemark repo prune`: drops what no version that is still wanted can need.
//!
//! A version at T joins the newest snapshot finished by T with the log after it, so
//! once a snapshot of each protocol is kept as the oldest base, the log before that
//! base's start and the older snapshots are needed by nothing kept:
//! - `--keep-within D`: every T in the last D stays possible: the base of a protocol is
//!   its newest snapshot finished D ago or earlier;
//! - `--keep-versions N`: the N newest snapshots of each protocol stay usable, the
//!   oldest of them being the base.
//!
//! Segments go whole, and only when their last commit time is before the earliest
//! base start over the protocols, and only when every protocol their writes belong to
//! has a base (a protocol with no snapshot would lose history no snapshot holds: the
//! segment stays, and the report says why). Each source's prune point is written
//! (`pruned.json`) before its segments are deleted, so a prune stopped midway leaves
//! a consistent chain, and the next prune deletes what is left.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::crypt::Key;
use super::layout;
use super::segment;
use super::snapshots::{self, SnapshotManifest};

/// What to keep.
#[derive(Debug, Clone, Copy)]
pub enum Keep {
    /// Versions at any time within this many ns before now.
    Within(u64),
    /// The newest this many snapshots of each protocol.
    Versions(usize),
}

/// What a prune did (or would do, with `dry_run`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneReport {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub repo: String,
    pub dry_run: bool,
    /// Per protocol: the snapshot kept as the oldest base (source/id), if any.
    pub bases: BTreeMap<String, String>,
    /// Log before this commit time (ns) is not needed (0: nothing can go).
    pub log_needed_from: u64,
    pub segments_deleted: u64,
    pub mutations_deleted: u64,
    pub snapshots_deleted: u64,
    pub bytes_freed: u64,
    /// Why something that is old stays.
    pub kept_because: Vec<String>,
}

/// Prunes the repository at `url`.
pub fn prune(
    url: &str,
    keep: Keep,
    dry_run: bool,
    key: Option<&Key>,
) -> anyhow::Result<PruneReport> {
    let repo = super::location::open(url)?;
    super::block_on(async {
        let mut r = PruneReport {
            kind: "repo_prune",
            repo: repo.url.clone(),
            dry_run,
            ..PruneReport::default()
        };
        let sources = layout::sources(&repo).await?;
        // Every snapshot of the repository, by protocol, newest finished first.
        let mut snaps: BTreeMap<String, Vec<SnapshotManifest>> = BTreeMap::new();
        for s in &sources {
            for m in snapshots::manifests(&repo, s).await? {
                snaps.entry(m.protocol.clone()).or_default().push(m);
            }
        }
        for list in snaps.values_mut() {
            list.sort_by_key(|m| std::cmp::Reverse(m.finished));
        }
        let mut bases: BTreeMap<String, &SnapshotManifest> = BTreeMap::new();
        for (protocol, list) in &snaps {
            let base = match keep {
                Keep::Within(d) => {
                    let cutoff = crate::capture::Timestamp::now().0.saturating_sub(d);
                    list.iter().find(|m| m.finished <= cutoff)
                }
                Keep::Versions(n) => list.get(n.max(1) - 1),
            };
            match base {
                Some(b) => {
                    bases.insert(protocol.clone(), b);
                }
                None => r.kept_because.push(format!(
                    "no {protocol} snapshot old enough to be the base: the {protocol} log stays"
                )),
            }
        }
        for (p, b) in &bases {
            r.bases.insert(p.clone(), format!("{}/{}", b.source, b.id));
        }
        // The log is needed from the earliest base start; a protocol without a base
        // needs all of it.
        let needed_from = if bases.len() == snaps.len() && !bases.is_empty() {
            bases.values().map(|b| b.started).min().unwrap_or(0)
        } else {
            0
        };
        r.log_needed_from = needed_from;

        // Older snapshots of a protocol with a base go.
        let mut doomed_snaps: Vec<&SnapshotManifest> = Vec::new();
        for (protocol, list) in &snaps {
            if let Some(b) = bases.get(protocol) {
                doomed_snaps.extend(list.iter().filter(|m| m.finished < b.finished));
            }
        }

        let snapshots_before: BTreeMap<String, u64> =
            bases.iter().map(|(p, b)| (p.clone(), b.finished)).collect();
        for source in &sources {
            let already = layout::pruned(&repo, source).await?;
            let mut record = layout::Pruned {
                snapshots_before: snapshots_before.clone(),
                ..already.clone()
            };
            if needed_from == 0 {
                if !dry_run
                    && !bases.is_empty()
                    && record.snapshots_before != already.snapshots_before
                {
                    layout::put_pruned(&repo, source, &record).await?;
                }
                continue;
            }
            let mut ms = layout::manifests(&repo, source).await?;
            ms.sort_by_key(|m| m.first_seq);
            // The prefix of whole segments entirely before the needed time.
            let mut cut: Vec<&segment::Manifest> = Vec::new();
            for m in &ms {
                if m.last_commit_time >= needed_from {
                    break;
                }
                cut.push(m);
            }
            // Every write in them must belong to a protocol with a base.
            let mut protocols = BTreeSet::new();
            for m in cut.iter().filter(|m| m.last_seq > already.through_seq) {
                let object = layout::segment_path(&repo, source, &m.object);
                let bytes = repo.store.get(&object).await?.bytes().await?;
                let envs =
                    segment::read(&bytes, m, key).map_err(|e| anyhow::anyhow!("{object}: {e}"))?;
                for e in envs {
                    protocols.insert(e.mutation.protocol().as_str().to_string());
                }
            }
            if let Some(p) = protocols.iter().find(|p| !bases.contains_key(*p)) {
                r.kept_because.push(format!(
                    "source {source}: its old segments hold {p} writes and no {p} snapshot is a base"
                ));
                continue;
            }
            if let Some(last) = cut.last().filter(|l| l.last_seq > already.through_seq) {
                record.through_seq = last.last_seq;
                record.through_commit_time = last.last_commit_time;
            }
            record.at = crate::decode::time::rfc3339(crate::capture::Timestamp::now());
            if !dry_run {
                layout::put_pruned(&repo, source, &record).await?;
            }
            for m in cut {
                r.segments_deleted += 1;
                r.mutations_deleted += m.mutations;
                r.bytes_freed += m.bytes;
                if !dry_run {
                    let object = layout::segment_path(&repo, source, &m.object);
                    layout::delete(&repo, &object).await?;
                    layout::delete(
                        &repo,
                        &layout::manifest_path(&repo, source, m.first_seq, m.last_seq),
                    )
                    .await?;
                }
            }
        }
        for m in doomed_snaps {
            r.snapshots_deleted += 1;
            r.bytes_freed += m.bytes;
            if !dry_run {
                snapshots::delete(&repo, m).await?;
            }
        }
        Ok(r)
    })?
}
