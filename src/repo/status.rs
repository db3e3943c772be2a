//! `tidemark status --repo URL`: how far each source has shipped its log, the
//! cluster's tidemark (the minimum over the sources) and which source holds it —
//! the one to look at when versions stop moving forward.

use serde::Serialize;

/// A source lagging the newest one by more than this is called behind.
pub const BEHIND_NS: u64 = 60_000_000_000;

/// One source's line.
#[derive(Debug, Clone, Serialize)]
pub struct SourceStatus {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub source: String,
    pub last_seq: u64,
    pub tidemark: Option<String>,
    pub last_shipped: Option<String>,
    /// Its tidemark is the cluster's.
    pub holds_tidemark: bool,
    /// Why it matters, when it does.
    pub note: Option<String>,
}

/// The repository's state.
#[derive(Debug, Clone, Serialize)]
pub struct RepoStatus {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub repo: String,
    pub tidemark: Option<String>,
    pub sources: Vec<SourceStatus>,
}

fn time(ns: u64) -> Option<String> {
    (ns > 0).then(|| crate::decode::time::rfc3339(crate::capture::Timestamp(ns)))
}

pub fn status(url: &str) -> anyhow::Result<RepoStatus> {
    let repo = super::location::open(url)?;
    let all = super::block_on(super::pull::sources(&repo))??;
    let min = all.iter().map(|(s, _)| s.tidemark).min().unwrap_or(0);
    let max = all.iter().map(|(s, _)| s.tidemark).max().unwrap_or(0);
    let sources = all
        .iter()
        .map(|(s, _)| {
            let holds = all.len() > 1 && s.tidemark == min && min < max;
            let note = if s.tidemark == 0 {
                Some("has shipped no tidemark yet: no version can be cut from the repository".to_string())
            } else if holds && max - min > BEHIND_NS {
                Some(format!(
                    "{:.0} s behind the newest source: it stopped shipping or fell behind, and holds the cluster's tidemark",
                    (max - min) as f64 / 1e9
                ))
            } else if holds {
                Some("holds the cluster's tidemark".to_string())
            } else {
                None
            };
            SourceStatus {
                kind: "repo_source_status",
                source: s.source.clone(),
                last_seq: s.last_seq,
                tidemark: time(s.tidemark),
                last_shipped: s.last_sealed.clone(),
                holds_tidemark: holds || all.len() == 1,
                note,
            }
        })
        .collect();
    Ok(RepoStatus {
        kind: "repo_status",
        repo: url.to_string(),
        tidemark: time(min),
        sources,
    })
}
