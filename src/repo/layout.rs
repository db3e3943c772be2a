//! Object names in a repository, and reading them back.
//!
//! ```text
//! PREFIX/sources/SOURCE/segments/FIRST-LAST.seg         the segment (zstd)
//! PREFIX/sources/SOURCE/segments/FIRST-LAST.json        its manifest
//! ```
//! Seqs are zero-padded to 20 digits so names sort in seq order, which is also
//! the order a listing returns them in.

use anyhow::{bail, Context};
use futures_util::TryStreamExt;
use object_store::path::Path;

use super::location::Repo;
use super::segment::Manifest;

/// Longest source id.
pub const MAX_SOURCE: usize = 64;

/// Checks a source id: 1..=64 letters, digits, `-`, `_`, `.` (it is a folder name in
/// every backend).
pub fn check_source(s: &str) -> anyhow::Result<()> {
    let ok = !s.is_empty()
        && s.len() <= MAX_SOURCE
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        bail!("invalid source id {s:?}: use 1 to {MAX_SOURCE} letters, digits, '-', '_', '.' (not starting with '.')");
    }
    Ok(())
}

pub fn segment_name(first: u64, last: u64) -> String {
    Manifest::object_name(first, last)
}

fn sources_dir(repo: &Repo) -> Path {
    repo.prefix.child("sources")
}

fn segments_dir(repo: &Repo, source: &str) -> Path {
    sources_dir(repo).child(source).child("segments")
}

pub fn segment_path(repo: &Repo, source: &str, name: &str) -> Path {
    segments_dir(repo, source).child(name)
}

pub fn manifest_path(repo: &Repo, source: &str, first: u64, last: u64) -> Path {
    segments_dir(repo, source).child(format!("{first:020}-{last:020}.json"))
}

/// The sources that have pushed anything, sorted.
pub async fn sources(repo: &Repo) -> anyhow::Result<Vec<String>> {
    let listing = repo
        .store
        .list_with_delimiter(Some(&sources_dir(repo)))
        .await
        .with_context(|| format!("listing {}", repo.url))?;
    let mut out: Vec<String> = listing
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename().map(str::to_string))
        .collect();
    out.sort();
    Ok(out)
}

/// Everything in a source's folder: manifests (parsed) and segment objects (name,
/// size), sorted by name.
pub struct Listing {
    pub manifests: Vec<(Path, Manifest)>,
    pub segments: Vec<(String, u64)>,
    /// Manifests that do not parse, with why.
    pub unreadable: Vec<(Path, String)>,
}

/// Lists a source's folder and reads every manifest.
pub async fn list(repo: &Repo, source: &str) -> anyhow::Result<Listing> {
    let dir = segments_dir(repo, source);
    let mut objects: Vec<object_store::ObjectMeta> = repo
        .store
        .list(Some(&dir))
        .try_collect()
        .await
        .with_context(|| format!("listing {} source {source}", repo.url))?;
    objects.sort_by(|a, b| a.location.cmp(&b.location));
    let mut l = Listing {
        manifests: Vec::new(),
        segments: Vec::new(),
        unreadable: Vec::new(),
    };
    for o in objects {
        let Some(name) = o.location.filename().map(str::to_string) else {
            continue;
        };
        if name.ends_with(".json") {
            match read_manifest(repo, &o.location).await {
                Ok(Some(m)) => l.manifests.push((o.location, m)),
                Ok(None) => {}
                Err(e) => l.unreadable.push((o.location, format!("{e:#}"))),
            }
        } else if name.ends_with(".seg") {
            l.segments.push((name, o.size));
        }
    }
    Ok(l)
}

/// The manifests of a source, in seq order (unreadable ones are an error).
pub async fn manifests(repo: &Repo, source: &str) -> anyhow::Result<Vec<Manifest>> {
    let l = list(repo, source).await?;
    if let Some((p, e)) = l.unreadable.first() {
        bail!("{p}: {e}");
    }
    Ok(l.manifests.into_iter().map(|(_, m)| m).collect())
}

/// Reads one manifest; `None` when it is not there.
pub async fn read_manifest(repo: &Repo, path: &Path) -> anyhow::Result<Option<Manifest>> {
    let bytes = match repo.store.get(path).await {
        Ok(r) => r.bytes().await.with_context(|| format!("reading {path}"))?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(anyhow::Error::from(e).context(format!("reading {path}"))),
    };
    let m: Manifest = serde_json::from_slice(&bytes)
        .with_context(|| format!("{path} is not a segment manifest"))?;
    Ok(Some(m))
}

/// The last seq of the chain of segments that starts just after `after` (0: at seq
/// 1; after a prune, just after what was pruned) and follows on without a hole
/// (`after` when there is none). Segments at or below `after` are left out (a prune
/// that stopped before deleting them); overlapping segments are an error: a log is
/// one sequence.
pub fn contiguous_end(manifests: &[Manifest], after: u64) -> Result<u64, String> {
    let mut sorted: Vec<&Manifest> = manifests.iter().filter(|m| m.first_seq > after).collect();
    sorted.sort_by_key(|m| m.first_seq);
    let mut end = after;
    for m in sorted {
        if m.first_seq <= end {
            return Err(format!(
                "segments {}–{} and one ending at {end} overlap",
                m.first_seq, m.last_seq
            ));
        }
        if m.first_seq != end + 1 {
            break;
        }
        end = m.last_seq;
    }
    Ok(end)
}

/// What `repo prune` removed of a source's log (`pruned.json`), written before the
/// segments are deleted: the chain starts after it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Pruned {
    /// Every seq up to this one is gone (its writes are in a kept snapshot).
    pub through_seq: u64,
    /// The last commit time among them.
    pub through_commit_time: u64,
    pub at: String,
    /// Per protocol: snapshots that finished before this time (ns) were pruned; a
    /// push does not send them again.
    #[serde(default)]
    pub snapshots_before: std::collections::BTreeMap<String, u64>,
}

fn pruned_path(repo: &Repo, source: &str) -> Path {
    sources_dir(repo).child(source).child("pruned.json")
}

/// How far a source's log was pruned (0: never).
pub async fn pruned(repo: &Repo, source: &str) -> anyhow::Result<Pruned> {
    let path = pruned_path(repo, source);
    match repo.store.get(&path).await {
        Ok(r) => {
            let bytes = r.bytes().await?;
            serde_json::from_slice(&bytes).with_context(|| format!("{path} is not a prune record"))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(Pruned::default()),
        Err(e) => Err(anyhow::Error::from(e).context(format!("reading {path}"))),
    }
}

pub async fn put_pruned(repo: &Repo, source: &str, p: &Pruned) -> anyhow::Result<()> {
    repo.store
        .put(
            &pruned_path(repo, source),
            serde_json::to_vec_pretty(p)?.into(),
        )
        .await?;
    Ok(())
}

/// How far a source's log is complete, rewritten at each push (`head.json`): the
/// tidemark a source reached with nothing new to seal.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SourceHead {
    pub source: String,
    /// Every seq up to this one is in the source's segments.
    pub last_seq: u64,
    /// The source's tidemark when `last_seq` was its log's end.
    pub tidemark: u64,
    pub updated_at: String,
}

fn head_path(repo: &Repo, source: &str) -> Path {
    sources_dir(repo).child(source).child("head.json")
}

pub async fn put_head(repo: &Repo, head: &SourceHead) -> anyhow::Result<()> {
    repo.store
        .put(
            &head_path(repo, &head.source),
            serde_json::to_vec_pretty(head)?.into(),
        )
        .await?;
    Ok(())
}

/// A source's head, when it wrote one.
pub async fn head(repo: &Repo, source: &str) -> anyhow::Result<Option<SourceHead>> {
    let path = head_path(repo, source);
    match repo.store.get(&path).await {
        Ok(r) => {
            let bytes = r.bytes().await?;
            Ok(Some(
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("{path} is not a source head"))?,
            ))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(anyhow::Error::from(e).context(format!("reading {path}"))),
    }
}

/// Deletes an object; one already gone is fine (a prune or delete run again).
pub async fn delete(repo: &Repo, path: &Path) -> anyhow::Result<()> {
    match repo.store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(anyhow::Error::from(e).context(format!("deleting {path}"))),
    }
}
