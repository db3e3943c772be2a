//! Resume of an interrupted pcap run (see the module docs of [`crate::tap`]): the
//! checkpoint's state, the input's fingerprint, and the plan a new run follows —
//! start afresh, continue an interrupted run of the same input, or refuse.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::store::Store;

/// A pcap run's resume state, kept in the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ResumeState {
    pub(super) fingerprint: u128,
    pub(super) files: Vec<String>,
    /// The log's next seq when the run started.
    pub(super) base_seq: u64,
    /// Gaps recorded before the run started.
    pub(super) base_gaps: u64,
    pub(super) complete: bool,
}

/// The checkpoint's source id of a pcap run (`status` reads it).
pub(super) const SOURCE_ID: &str = "tap";

/// How the last pcap run into `store` ended: `None` when there was none, else
/// whether it completed (`status` reports it). The checkpoint is read with the same
/// type `tap` writes it with, so the two cannot drift apart.
pub fn last_run_complete(store: &Store) -> anyhow::Result<Option<bool>> {
    let Some(c) = store.checkpoint(SOURCE_ID)? else {
        return Ok(None);
    };
    let state: ResumeState = crate::store::codec::decode(&c.state)
        .map_err(|e| anyhow::anyhow!("the tap checkpoint is unreadable: {e}"))?;
    Ok(Some(state.complete))
}

/// Whether the store's last proxy run ended without its final flush (its checkpoint
/// is not `complete`: it was killed or crashed): then the time of the last event its
/// last group commit covered (the checkpoint's `at`). No proxy run yet, or one that
/// stopped cleanly: None.
pub(super) fn proxy_run_crashed(store: &Store) -> anyhow::Result<Option<u64>> {
    let Some(c) = store.checkpoint(PROXY_SOURCE_ID)? else {
        return Ok(None);
    };
    let state: ResumeState = crate::store::codec::decode(&c.state)
        .map_err(|e| anyhow::anyhow!("the proxy checkpoint is unreadable: {e}"))?;
    Ok((!state.complete).then_some(c.at))
}

/// The checkpoint's source id of a live run: informational, never resumed.
pub(super) const LIVE_SOURCE_ID: &str = "tap-live";

/// The checkpoint's source id of a proxy's run (live too: never resumed).
pub(super) const PROXY_SOURCE_ID: &str = "proxy";

/// Identifies an input: each file's path, size and first MiB.
fn fingerprint(files: &[PathBuf]) -> anyhow::Result<u128> {
    let mut h = twox_hash::XxHash3_128::with_seed(0);
    for f in files {
        let mut file =
            File::open(f).with_context(|| format!("cannot open capture {}", f.display()))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        h.write(f.to_string_lossy().as_bytes());
        h.write(&len.to_le_bytes());
        let mut head = Vec::with_capacity(1 << 20);
        file.by_ref()
            .take(1 << 20)
            .read_to_end(&mut head)
            .with_context(|| format!("cannot read capture {}", f.display()))?;
        h.write(&head);
    }
    Ok(h.finish_128())
}

/// Where appends resume: how much of what the replay decides is already stored.
pub(super) struct Skip {
    /// This run continues an interrupted one.
    pub(super) resumed: bool,
    pub(super) mutations: u64,
    pub(super) gaps: u64,
    pub(super) next_seq: u64,
}

/// What a run does about an earlier one into the same store.
pub(super) enum Plan {
    /// `--resume` of a run that already completed: nothing to do.
    AlreadyComplete,
    /// Run, starting from `state`, skipping what `skip` says is already stored.
    Run { state: ResumeState, skip: Skip },
}

/// Decides how a run of `files` (or a live run) continues what the store holds.
pub(super) fn plan(
    store: &Store,
    files: &[PathBuf],
    live: bool,
    resume: bool,
) -> anyhow::Result<Plan> {
    let reader_gaps = store.gaps()?.len() as u64;
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let fp = if live { 0 } else { fingerprint(files)? };
    let previous: Option<ResumeState> = store
        .checkpoint(if live { LIVE_SOURCE_ID } else { SOURCE_ID })?
        .and_then(|c| crate::store::codec::decode(&c.state).ok());
    let next_seq = store.next_seq()?;
    Ok(match previous {
        Some(p) if resume && p.fingerprint == fp => {
            if p.complete {
                return Ok(Plan::AlreadyComplete);
            }
            let skip = Skip {
                resumed: true,
                mutations: next_seq - p.base_seq,
                gaps: reader_gaps.saturating_sub(p.base_gaps),
                next_seq: p.base_seq,
            };
            Plan::Run { state: p, skip }
        }
        Some(p) if resume && !p.complete => bail!(
            "--resume: the store's interrupted run was of other input ({}); give the same files in the same order",
            p.files.join(" ")
        ),
        Some(p) if !p.complete && !live && !resume => bail!(
            "the store holds an interrupted tap of {}; run again with --resume to continue it",
            p.files.join(" ")
        ),
        _ => Plan::Run {
            state: ResumeState {
                fingerprint: fp,
                files: names,
                base_seq: next_seq,
                base_gaps: reader_gaps,
                complete: false,
            },
            skip: Skip {
                resumed: false,
                mutations: 0,
                gaps: 0,
                next_seq,
            },
        },
    })
}
