//! `tidemark repo ls`: the sources in a repository and what each has pushed.

use serde::Serialize;

use super::layout;

/// One source as `ls` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceLine {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub source: String,
    pub segments: u64,
    pub mutations: u64,
    pub first_seq: u64,
    /// The end of the chain of segments (what a version can use).
    pub last_seq: u64,
    /// Seqs up to this one were pruned (their writes are in a kept snapshot).
    pub pruned_through: u64,
    pub first_commit_time: Option<String>,
    pub last_commit_time: Option<String>,
    /// The highest tidemark any of its segments was sealed at.
    pub tidemark: Option<String>,
    pub bytes: u64,
    pub gaps: u64,
    /// Segment objects without a manifest: uploads that did not finish.
    pub unfinished: u64,
    /// Manifests that do not parse.
    pub unreadable: u64,
}

fn time(ns: u64) -> String {
    crate::decode::time::rfc3339(crate::capture::Timestamp(ns))
}

/// Lists every source of the repository at `url`.
pub fn list(url: &str) -> anyhow::Result<Vec<SourceLine>> {
    let repo = super::location::open(url)?;
    super::block_on(async {
        let mut out = Vec::new();
        for source in layout::sources(&repo).await? {
            let l = layout::list(&repo, &source).await?;
            let pruned = layout::pruned(&repo, &source).await?.through_seq;
            let ms: Vec<&super::segment::Manifest> = l.manifests.iter().map(|(_, m)| m).collect();
            let named: std::collections::BTreeSet<&str> =
                ms.iter().map(|m| m.object.as_str()).collect();
            let owned: Vec<super::segment::Manifest> = ms.iter().map(|m| (*m).clone()).collect();
            out.push(SourceLine {
                kind: "repo_source",
                source: source.clone(),
                segments: ms.len() as u64,
                mutations: ms.iter().map(|m| m.mutations).sum(),
                first_seq: ms.iter().map(|m| m.first_seq).min().unwrap_or(0),
                last_seq: layout::contiguous_end(&owned, pruned).unwrap_or(pruned),
                pruned_through: pruned,
                first_commit_time: ms.iter().map(|m| m.first_commit_time).min().map(time),
                last_commit_time: ms.iter().map(|m| m.last_commit_time).max().map(time),
                tidemark: ms
                    .iter()
                    .map(|m| m.tidemark)
                    .max()
                    .filter(|t| *t > 0)
                    .map(time),
                bytes: ms.iter().map(|m| m.bytes).sum(),
                gaps: ms.iter().map(|m| m.gaps.len() as u64).sum(),
                unfinished: l
                    .segments
                    .iter()
                    .filter(|(name, _)| !named.contains(name.as_str()))
                    .count() as u64,
                unreadable: l.unreadable.len() as u64,
            });
        }
        Ok(out)
    })?
}
