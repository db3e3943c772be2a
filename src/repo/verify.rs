//! `tidemark repo verify`: re-reads every object of a repository and checks it
//! against its manifest (length, CRC-32C, decompression, every envelope decoded, seqs
//! dense, commit times inside the stated range) and each source's segments form one
//! chain from seq 1.

use serde::Serialize;

use super::layout;
use super::segment;

/// One problem found.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub source: String,
    pub object: String,
    pub problem: String,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub repo: String,
    pub sources: u64,
    pub segments: u64,
    pub mutations: u64,
    pub bytes: u64,
    pub problems: Vec<Problem>,
    /// Segment objects without a manifest (unfinished uploads; a later push of that
    /// source replaces them). Not a problem: no manifest names them.
    pub unfinished: u64,
    /// Encrypted segments checked by length and CRC only (no key given).
    pub sealed: u64,
    /// Segments below a source's prune point still there (a prune that stopped before
    /// deleting them; the next prune does).
    pub awaiting_deletion: u64,
}

/// Verifies the repository at `url`.
pub fn verify(url: &str, key: Option<&super::crypt::Key>) -> anyhow::Result<VerifyReport> {
    let repo = super::location::open(url)?;
    super::block_on(async {
        let mut r = VerifyReport {
            kind: "repo_verify",
            repo: repo.url.clone(),
            ..VerifyReport::default()
        };
        for source in layout::sources(&repo).await? {
            r.sources += 1;
            let l = layout::list(&repo, &source).await?;
            let problem = |object: String, problem: String| Problem {
                kind: "repo_problem",
                source: source.clone(),
                object,
                problem,
            };
            for (p, e) in &l.unreadable {
                r.problems.push(problem(p.to_string(), e.clone()));
            }
            let named: std::collections::BTreeSet<&str> =
                l.manifests.iter().map(|(_, m)| m.object.as_str()).collect();
            r.unfinished += l
                .segments
                .iter()
                .filter(|(n, _)| !named.contains(n.as_str()))
                .count() as u64;
            let pruned = layout::pruned(&repo, &source).await?.through_seq;
            let mut next = pruned + 1;
            for (path, m) in &l.manifests {
                if m.last_seq <= pruned {
                    r.awaiting_deletion += 1;
                    continue;
                }
                r.segments += 1;
                if m.source != source {
                    r.problems.push(problem(
                        path.to_string(),
                        format!("manifest names source {:?}", m.source),
                    ));
                }
                if m.first_seq != next {
                    r.problems.push(problem(
                        path.to_string(),
                        format!("starts at seq {} where {next} was due", m.first_seq),
                    ));
                }
                next = m.last_seq.saturating_add(1);
                let object = layout::segment_path(&repo, &source, &m.object);
                let bytes = match repo.store.get(&object).await {
                    Ok(g) => g.bytes().await,
                    Err(e) => Err(e),
                };
                match bytes {
                    Err(e) => r
                        .problems
                        .push(problem(object.to_string(), format!("cannot read: {e}"))),
                    Ok(b) => {
                        r.bytes += b.len() as u64;
                        if m.encryption.is_some() && key.is_none() {
                            // Integrity of the stored bytes is all that can be checked.
                            r.sealed += 1;
                            if b.len() as u64 != m.bytes || crc32c::crc32c(&b) != m.crc32c {
                                r.problems.push(problem(
                                    object.to_string(),
                                    "length or CRC-32C differs from the manifest".into(),
                                ));
                            }
                            continue;
                        }
                        match segment::read(&b, m, key) {
                            Ok(envs) => r.mutations += envs.len() as u64,
                            Err(e) => r.problems.push(problem(object.to_string(), e)),
                        }
                    }
                }
            }
        }
        Ok(r)
    })?
}
