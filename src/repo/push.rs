//! `tidemark repo push`: seals what a store's log holds beyond what the repository
//! already has into segments and uploads them, each confirmed before the next.
//!
//! What is pushed is read back from the repository, not remembered locally: the
//! source's manifests say how far its log is there, so a push after a crash, a
//! retry, or a push from another machine holding a copy of the store starts exactly
//! where the repository ends. Object names are fixed by the source and the seq
//! range, so a retried upload replaces its own unfinished copy and never makes a
//! second one; a manifest is only ever created, never overwritten, so two stores
//! claiming one source id are caught instead of mixed.
//!
//! A large segment on a backend with multipart upload ids (S3, GCS, Azure) is
//! uploaded resumably ([`super::resume`]): a push killed in its middle is
//! continued by the next one, part by part. After a clean push, a [`DropRule`]
//! (`--drop-pushed`, `--keep-local`) drops from the local log what the
//! repository's manifests confirm ([`drop_confirmed`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use serde::Serialize;

use super::layout;
use super::location::Repo;
use super::push_progress::Progress;
use super::resume::Spool;
use super::seal::{gather, manifest_of, same_log};
use super::segment::Sealed;
use super::upload::{upload, Throttle};
use crate::store::{Store, StoreOptions};

/// Segments are cut at this many mutations unless told otherwise.
pub const DEFAULT_SEGMENT_MUTATIONS: u64 = 100_000;
/// … or at this many decompressed bytes.
pub const DEFAULT_SEGMENT_BYTES: usize = 64 << 20;

/// What `repo push` was asked to do.
#[derive(Debug, Clone)]
pub struct PushOptions {
    pub store: PathBuf,
    pub repo: String,
    /// The source id to push as; the store's own (made once and kept) when `None`.
    pub source: Option<String>,
    pub segment_mutations: u64,
    pub segment_bytes: usize,
    /// Upload rate limit, MB/s.
    pub rate_mb: Option<f64>,
    pub json: bool,
    /// Show progress (a bar, or `progress` lines with `json`); off when pushing
    /// from beside a run, whose output is its own.
    pub progress: bool,
    /// Encrypt every object with this key (`--encrypt-key-file`).
    pub key: Option<std::sync::Arc<super::crypt::Key>>,
    /// After the push, drop from the local log what the repository confirms.
    pub drop: Option<DropRule>,
}

/// What a push drops locally once the repository confirms it (see [`drop_confirmed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropRule {
    /// Every confirmed segment (`repo push --drop-pushed`).
    Confirmed,
    /// Confirmed segments whose last commit is older than this many ns before now
    /// (`tap|proxy --repo … --keep-local D`).
    OlderThan(u64),
}

/// What a push did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PushReport {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub repo: String,
    pub source: String,
    pub segments: u64,
    pub mutations: u64,
    /// Bytes uploaded (compressed, as stored).
    pub bytes: u64,
    /// The last seq of the source now in the repository (0: none).
    pub pushed_through: u64,
    /// Snapshots uploaded (finished ones the repository did not hold).
    pub snapshots: u64,
    pub seconds: f64,
    pub mb_per_s: f64,
    /// Multipart parts this push sent, of segments uploaded in parts through a
    /// backend with upload ids (S3, GCS, Azure).
    pub parts_sent: u64,
    /// Parts found finished (by an interrupted earlier push, or an earlier attempt
    /// of this one) and not sent again: the upload was continued
    /// ([`super::resume`]).
    pub parts_resumed: u64,
    /// Set when the push stopped early; what was confirmed stays.
    pub error: Option<String>,
    /// What was dropped from the local log (asked for with a [`DropRule`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped: Option<crate::store::DropReport>,
}

/// Pushes; `stop` ends it between segments. Bad input (URL, store, source id) is an
/// `Err`; a failure after the first upload is a report with `error`.
pub fn push(o: &PushOptions, stop: Arc<AtomicBool>) -> anyhow::Result<PushReport> {
    let repo = super::location::open(&o.repo)?;
    let store = Store::open_side(&o.store, &StoreOptions::default())
        .with_context(|| format!("--store {}", o.store.display()))?;
    push_store(o, &repo, &store, &stop)
}

/// [`push`] of a store already open (a tap's or a proxy's own, from beside the run).
/// Sealing (reading the log, compressing, encrypting) runs on a thread of its own,
/// one segment ahead of the upload, so the two overlap.
pub fn push_store(
    o: &PushOptions,
    repo: &Repo,
    store: &Store,
    stop: &AtomicBool,
) -> anyhow::Result<PushReport> {
    let source = match &o.source {
        Some(s) => {
            layout::check_source(s)?;
            s.clone()
        }
        None => super::source_id(store)?,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the I/O runtime")?;
    let plan = rt.block_on(prepare(o, repo, store, &source))?;
    let spool = Spool::of(store.path());
    let resumed = rt.block_on(pending_upload(o, repo, &spool, &source, &plan));
    let mut report = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let from = resumed.as_ref().map_or(plan.pushed_through, |s| s.last_seq) + 1;
        let last = plan.last;
        scope.spawn(move || seal_all(store, resumed, from, last, o, stop, tx));
        rt.block_on(upload_all(o, repo, store, &source, plan, rx, &spool))
    })?;
    // Dropped only after a push that ended cleanly: the snapshots went up too, so
    // the repository holds everything a version cut from it needs.
    if let (Some(rule), None) = (o.drop, &report.error) {
        match rt.block_on(drop_confirmed(repo, store, &source, rule)) {
            Ok(d) => report.dropped = Some(d),
            Err(e) => report.error = Some(format!("dropping pushed segments: {e:#}")),
        }
    }
    Ok(report)
}

/// Drops from the local log the segments the repository confirms, as `rule` allows.
///
/// The proof is the repository's own listing, read now: a segment counts as
/// confirmed when its manifest is there (a manifest is created only after its
/// object was uploaded and its size checked) and the chain of manifests from seq 1
/// (or from what `repo prune` removed) reaches it without a hole. Local state is
/// never trusted for it. Each confirmed manifest to be dropped is also checked
/// against the local log (the commit times at both ends), so a repository holding
/// another store's segments under this source id drops nothing.
///
/// A store whose log was dropped cuts no versions locally (any version needs the
/// whole log up to T): they are cut from the repository, which holds every
/// segment and every finished snapshot pushed before the drop. Local snapshots and
/// versions already cut are kept.
pub async fn drop_confirmed(
    repo: &Repo,
    store: &Store,
    source: &str,
    rule: DropRule,
) -> anyhow::Result<crate::store::DropReport> {
    let mut there = layout::manifests(repo, source).await?;
    there.sort_by_key(|m| m.first_seq);
    let pruned = layout::pruned(repo, source).await?;
    let end = layout::contiguous_end(&there, pruned.through_seq)
        .map_err(|e| anyhow::anyhow!("repository {}: source {source}: {e}", repo.url))?;
    let cutoff = match rule {
        DropRule::Confirmed => u64::MAX,
        DropRule::OlderThan(ns) => crate::capture::Timestamp::now().0.saturating_sub(ns),
    };
    let start = store.log_start()?;
    let mut through = start - 1;
    // What `repo prune` removed was confirmed before it was pruned.
    if pruned.through_seq > through && pruned.through_commit_time < cutoff {
        through = pruned.through_seq.min(end);
    }
    let reader = store.reader()?;
    for m in there
        .iter()
        .filter(|m| m.first_seq > pruned.through_seq && m.last_seq <= end)
    {
        if m.last_commit_time >= cutoff {
            break;
        }
        if m.last_seq < start {
            through = through.max(m.last_seq);
            continue;
        }
        let mut times = Vec::new();
        for seq in [m.first_seq, m.last_seq] {
            reader.for_each_raw(seq, seq, |_, t, _| {
                times.push(t);
                false
            })?;
        }
        let expected: &[u64] = if m.first_seq < start {
            &[m.last_commit_time]
        } else {
            &[m.first_commit_time, m.last_commit_time]
        };
        if times != expected {
            bail!(
                "the repository's segment {}–{} of source {source} does not match the local log: nothing dropped",
                m.first_seq,
                m.last_seq
            );
        }
        through = m.last_seq;
    }
    drop(reader);
    Ok(store.drop_log_through(through, &super::location::redact(&repo.url))?)
}

/// What a push found before sending anything.
struct Plan {
    started: Instant,
    pushed_through: u64,
    last: u64,
    tidemark: u64,
    gaps: Vec<crate::store::Gap>,
    schema: Vec<(String, crate::store::NamespaceSchema)>,
}

async fn prepare(
    o: &PushOptions,
    repo: &Repo,
    store: &Store,
    source: &str,
) -> anyhow::Result<Plan> {
    let started = Instant::now();
    let there = layout::manifests(repo, source).await?;
    let pruned = layout::pruned(repo, source).await?.through_seq;
    let pushed_through = layout::contiguous_end(&there, pruned)
        .map_err(|e| anyhow::anyhow!("repository {}: source {source}: {e}", repo.url))?;
    // The tidemark before the log's end: every write decided up to it was appended
    // before `last` is read, so the segments up to `last` hold all of it.
    let tidemark = store.tidemark()?.unwrap_or(0);
    // Past a drop the log may be empty here: it still went up to its end seq.
    let last = store.reader()?.end_seq()?;
    if last < pushed_through {
        bail!(
            "the repository holds seqs up to {pushed_through} of source {source}, the store only {last}: another store pushed as this source"
        );
    }
    if let Some(d) = store.dropped()? {
        if pushed_through < d.through_seq {
            bail!(
                "the repository holds source {source} only up to seq {pushed_through}, but this store dropped its log up to seq {} after pushing it to {}: segments are missing from the repository and no longer here",
                d.through_seq,
                d.repository
            );
        }
    }
    if let Some(m) = there.iter().find(|m| m.last_seq == pushed_through) {
        same_log(store, m, o)?;
    }
    let gaps = store.gaps()?;
    let schema: Vec<(String, crate::store::NamespaceSchema)> = store
        .namespaces()?
        .into_iter()
        .filter_map(|ns| match store.schema(&ns) {
            Ok(Some(s)) => Some(Ok((ns, s))),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()?;
    Ok(Plan {
        started,
        pushed_through,
        last,
        tidemark,
        gaps,
        schema,
    })
}

/// The segment of the store's pending multipart upload ([`super::resume`]) when it
/// is the next one this push sends, from its spooled bytes; any other pending
/// upload is abandoned (aborted on the server when it is this repository's).
async fn pending_upload(
    o: &PushOptions,
    repo: &Repo,
    spool: &Spool,
    source: &str,
    plan: &Plan,
) -> Option<Sealed> {
    let p = spool.load()?;
    let url = super::location::redact(&repo.url);
    let label = o.key.as_ref().map(|k| k.label());
    let to = super::resume::Target {
        repo: &url,
        source,
        object: &p.object,
        encryption: label.as_deref(),
    };
    if p.goes_to(to) && p.first_seq == plan.pushed_through + 1 && p.last_seq <= plan.last {
        if let Some(bytes) = spool.bytes(&p) {
            tracing::info!(
                first = p.first_seq,
                last = p.last_seq,
                parts = p.parts.len(),
                "continuing an interrupted multipart upload"
            );
            return Some(p.sealed(bytes));
        }
    }
    super::upload::abandon(repo, &p).await;
    spool.clear();
    None
}

/// Segments compressed (and encrypted) at once while the next is read: two, one
/// per core of a small machine, so sealing keeps ahead of an upload that itself
/// takes little CPU. Each holds its segment's uncompressed bytes (up to
/// `--segment-mb`) until it is compressed.
const SEAL_THREADS: usize = 2;

/// Seals segments `from..=last` into `tx` in seq order (encrypted when a key is
/// given), after `first` (a segment sealed by an earlier process) when given.
/// Reading the log runs here, compressing on [`SEAL_THREADS`] scoped threads. Stops
/// at the first error (sent on, after the segments before it), when told to, or
/// when the uploader hangs up.
fn seal_all(
    store: &Store,
    first: Option<Sealed>,
    from: u64,
    last: u64,
    o: &PushOptions,
    stop: &AtomicBool,
    tx: std::sync::mpsc::SyncSender<anyhow::Result<Sealed>>,
) {
    if let Some(s) = first {
        if tx.send(Ok(s)).is_err() {
            return;
        }
    }
    std::thread::scope(|scope| {
        let mut compressing = std::collections::VecDeque::new();
        let mut next = from;
        loop {
            while compressing.len() < SEAL_THREADS && next <= last && !stop.load(Ordering::Relaxed)
            {
                let job: Box<dyn FnOnce() -> anyhow::Result<Option<Sealed>> + Send> =
                    match gather(store, next, last, o) {
                        Ok(w) => {
                            let Some(end) = w.last_seq() else {
                                next = last + 1;
                                break;
                            };
                            next = end + 1;
                            Box::new(move || compress(w, o))
                        }
                        Err(e) => {
                            next = last + 1;
                            Box::new(move || Err(e))
                        }
                    };
                compressing.push_back(scope.spawn(job));
            }
            let Some(job) = compressing.pop_front() else {
                return;
            };
            let sealed = job
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("sealing a segment panicked")));
            match sealed {
                Ok(None) => {}
                Ok(Some(s)) => {
                    if tx.send(Ok(s)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
}

/// Compresses a gathered segment, and encrypts it when a key is given.
fn compress(w: super::segment::SegmentWriter, o: &PushOptions) -> anyhow::Result<Option<Sealed>> {
    let Some(mut s) = w
        .seal()
        .map_err(|e| anyhow::anyhow!("sealing a segment: {e}"))?
    else {
        return Ok(None);
    };
    if let Some(k) = &o.key {
        let name = layout::segment_name(s.first_seq, s.last_seq);
        s.object = k.seal(&name, &s.object)?.into();
        s.crc32c = crc32c::crc32c(&s.object);
    }
    Ok(Some(s))
}

async fn upload_all(
    o: &PushOptions,
    repo: &Repo,
    store: &Store,
    source: &str,
    plan: Plan,
    rx: std::sync::mpsc::Receiver<anyhow::Result<Sealed>>,
    spool: &Spool,
) -> anyhow::Result<PushReport> {
    let Plan {
        started,
        mut pushed_through,
        last,
        tidemark,
        gaps,
        schema,
    } = plan;
    let mut report = PushReport {
        kind: "repo_push",
        repo: repo.url.clone(),
        source: source.to_string(),
        pushed_through,
        ..PushReport::default()
    };
    let mut progress = Progress::new(o.json, o.progress, last - pushed_through);
    let mut throttle = Throttle::new(o.rate_mb);
    while pushed_through < last {
        let sealed = match rx.recv() {
            Ok(Ok(s)) => s,
            Ok(Err(e)) if pushed_through == plan_start(&report) => return Err(e),
            Ok(Err(e)) => {
                report.error = Some(format!("{e:#}"));
                break;
            }
            // The sealer stopped: interrupted.
            Err(_) => {
                report.error = Some("interrupted; what was confirmed stays pushed".into());
                break;
            }
        };
        // A segment before the last covers only up to just before its last commit
        // time (the next one may hold more writes of that very time).
        let covered = if sealed.last_seq == last {
            tidemark
        } else {
            tidemark.min(sealed.last_commit_time.saturating_sub(1))
        };
        let mut manifest = manifest_of(source, &sealed, covered, &gaps);
        manifest.store_format = store.format();
        match &o.key {
            None => manifest.schema.clone_from(&schema),
            Some(k) => {
                manifest.encryption = Some(k.label());
                let plain = serde_json::to_vec(&schema)?;
                let sealed_schema = k.seal(&format!("schema:{}", manifest.object), &plain)?;
                manifest.schema_sealed = Some(super::crypt::to_hex(&sealed_schema));
            }
        }
        match upload(repo, source, &sealed, &manifest, &mut throttle, Some(spool)).await {
            Ok(parts) => {
                report.parts_sent += parts.sent;
                report.parts_resumed += parts.resumed;
            }
            Err(e) => {
                report.error = Some(format!("{e:#}"));
                break;
            }
        }
        pushed_through = sealed.last_seq;
        report.segments += 1;
        report.mutations += sealed.mutations;
        report.bytes += sealed.object.len() as u64;
        report.pushed_through = pushed_through;
        progress.segment(&report, started);
    }
    drop(rx);
    progress.finish();
    if report.error.is_none() {
        match super::snapshots::push(repo, store, source, o.key.as_deref()).await {
            Ok((n, bytes)) => {
                report.snapshots = n;
                report.bytes += bytes;
            }
            Err(e) => report.error = Some(format!("pushing snapshots: {e:#}")),
        }
    }
    if report.error.is_none() && pushed_through == last {
        // Says how far the source's log is complete even when nothing new was
        // decided: without it a quiet source would hold the cluster's tidemark.
        let state = layout::SourceHead {
            source: source.to_string(),
            last_seq: last,
            tidemark,
            updated_at: crate::decode::time::rfc3339(crate::capture::Timestamp::now()),
        };
        if let Err(e) = layout::put_head(repo, &state).await {
            report.error = Some(format!("writing the source's head: {e:#}"));
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.mb_per_s = report.bytes as f64 / 1e6 / report.seconds.max(1e-6);
    Ok(report)
}

/// Nothing was sent yet in this push: an error then is the input's, not a partial
/// push's.
fn plan_start(r: &PushReport) -> u64 {
    if r.segments == 0 {
        r.pushed_through
    } else {
        u64::MAX
    }
}
