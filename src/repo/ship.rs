//! `tap --repo` and `proxy --repo`: pushing as the run goes. A companion of the run
//! (see [`crate::tap::TapOptions::companion`]) seals and uploads what the store
//! holds beyond the repository every `--push-every` seconds and once more after the
//! run's last group, so a stopped tap or sidecar leaves its whole log shipped.
//! An upload that fails (the object store unreachable, throttled) is retried at the
//! next round; nothing unconfirmed is dropped locally, so nothing is lost
//! meanwhile. With `--keep-local D` each round that pushed cleanly drops from the
//! local log the confirmed segments whose last commit is older than D
//! ([`super::push::drop_confirmed`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::push::{push_store, PushOptions};
use crate::store::Store;
use crate::tap::Companion;

/// How a run ships.
#[derive(Debug, Clone)]
pub struct ShipOptions {
    pub repo: String,
    pub key: Option<std::sync::Arc<super::crypt::Key>>,
    pub every: Duration,
    pub source: Option<String>,
    pub rate_mb: Option<f64>,
    pub segment_mutations: u64,
    pub segment_bytes: usize,
    /// Drop confirmed segments whose last commit is older than this (ns) from the
    /// local log after each round (`--keep-local`); `None` keeps everything.
    pub keep_local: Option<u64>,
}

/// The companion that ships; the URL and source id are checked now, so bad input
/// is refused before the run starts.
pub fn companion(o: ShipOptions) -> anyhow::Result<Companion> {
    let repo = super::location::open(&o.repo)?;
    if let Some(s) = &o.source {
        super::layout::check_source(s)?;
    }
    let push = PushOptions {
        store: Default::default(),
        repo: o.repo.clone(),
        source: o.source.clone(),
        segment_mutations: o.segment_mutations,
        segment_bytes: o.segment_bytes,
        rate_mb: o.rate_mb,
        json: false,
        progress: false,
        key: o.key.clone(),
        drop: o.keep_local.map(super::push::DropRule::OlderThan),
    };
    let every = o.every;
    Ok(Companion(Arc::new(
        move |store: &Store, done: &AtomicBool| {
            let never = AtomicBool::new(false);
            let mut last_error: Option<String> = None;
            loop {
                let started = Instant::now();
                while !done.load(Ordering::SeqCst) && started.elapsed() < every {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let last_round = done.load(Ordering::SeqCst);
                let outcome = push_store(&push, &repo, store, &never).and_then(|r| match r.error {
                    Some(e) => Err(anyhow::anyhow!(e)),
                    None => Ok((r.segments, r.dropped.map_or(0, |d| d.entries))),
                });
                match outcome {
                    Ok((n, dropped)) => {
                        if dropped > 0 {
                            tracing::info!(entries = dropped, "dropped pushed log entries");
                        }
                        if n > 0 {
                            tracing::info!(segments = n, repo = %repo.url, "shipped");
                        }
                        if last_error.take().is_some() {
                            eprintln!("tidemark: shipping to {} works again", repo.url);
                        }
                    }
                    Err(e) => {
                        let e = format!("{e:#}");
                        if last_error.as_deref() != Some(e.as_str()) {
                            eprintln!(
                                "tidemark: shipping to {} failed (kept locally, retried): {e}",
                                repo.url
                            );
                        }
                        if last_round {
                            return Err(anyhow::anyhow!(
                                "the last push to {} failed: {e}",
                                repo.url
                            ));
                        }
                        last_error = Some(e);
                    }
                }
                if last_round {
                    return Ok(());
                }
            }
        },
    )))
}
