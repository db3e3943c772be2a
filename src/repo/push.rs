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

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use object_store::{PutMode, PutOptions, PutPayload, WriteMultipart};
use serde::Serialize;

use super::layout;
use super::location::Repo;
use super::segment::{GapEntry, Manifest, Sealed, SegmentWriter, MANIFEST_FORMAT};
use crate::store::{Store, StoreOptions};

/// Segments are cut at this many mutations unless told otherwise.
pub const DEFAULT_SEGMENT_MUTATIONS: u64 = 100_000;
/// … or at this many decompressed bytes.
pub const DEFAULT_SEGMENT_BYTES: usize = 64 << 20;
/// Objects above this go up in multipart parts of this size.
const PART_BYTES: usize = 8 << 20;
/// Attempts per segment beyond the backend's own retries, with doubling pauses.
const ATTEMPTS: u32 = 5;

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
    /// Set when the push stopped early; what was confirmed stays.
    pub error: Option<String>,
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
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let (from, last) = (plan.pushed_through + 1, plan.last);
        scope.spawn(move || seal_all(store, from, last, o, stop, tx));
        rt.block_on(upload_all(o, repo, store, &source, plan, rx))
    })
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
    let last = store.reader()?.last_seq()?;
    if last < pushed_through {
        bail!(
            "the repository holds seqs up to {pushed_through} of source {source}, the store only {last}: another store pushed as this source"
        );
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

/// Seals segments `from..=last` one after the other into `tx` (encrypted when a key
/// is given); stops at the first error (sent on), when told to, or when the
/// uploader hangs up.
fn seal_all(
    store: &Store,
    from: u64,
    last: u64,
    o: &PushOptions,
    stop: &AtomicBool,
    tx: std::sync::mpsc::SyncSender<anyhow::Result<Sealed>>,
) {
    let mut next = from;
    while next <= last && !stop.load(Ordering::Relaxed) {
        let sealed = seal_next(store, next, last, o).and_then(|s| {
            let Some(mut s) = s else { return Ok(None) };
            if let Some(k) = &o.key {
                let name = layout::segment_name(s.first_seq, s.last_seq);
                s.object = k.seal(&name, &s.object)?;
                s.crc32c = crc32c::crc32c(&s.object);
            }
            Ok(Some(s))
        });
        match sealed {
            Ok(None) => return,
            Ok(Some(s)) => {
                next = s.last_seq + 1;
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
}

async fn upload_all(
    o: &PushOptions,
    repo: &Repo,
    store: &Store,
    source: &str,
    plan: Plan,
    rx: std::sync::mpsc::Receiver<anyhow::Result<Sealed>>,
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
        if let Err(e) = upload(repo, source, &sealed, &manifest, &mut throttle).await {
            report.error = Some(format!("{e:#}"));
            break;
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
            updated_at: crate::decode::time::rfc3339(crate::capture::Timestamp(wall_clock_ns())),
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

/// Checks that the store holds what the repository's last segment of this source
/// holds (re-sealed from the store, compared by the decompressed contents' CRC): a
/// different store pushing under this source id would otherwise append its log to
/// another's.
fn same_log(store: &Store, m: &Manifest, o: &PushOptions) -> anyhow::Result<()> {
    let conflict = || -> anyhow::Error {
        Conflict(format!(
            "the store's log at seqs {}–{} differs from the repository's segment of source {}: two stores push as source {}",
            m.first_seq, m.last_seq, m.source, m.source
        ))
        .into()
    };
    if m.store_format != store.format() {
        // The store was upgraded since (its bytes changed form, not content): the
        // commit times at both ends must still agree.
        let reader = store.reader()?;
        let mut times = Vec::new();
        for seq in [m.first_seq, m.last_seq] {
            reader.for_each_raw(seq, seq, |_, t, _| {
                times.push(t);
                false
            })?;
        }
        return if times == [m.first_commit_time, m.last_commit_time] {
            Ok(())
        } else {
            Err(conflict())
        };
    }
    let whole = PushOptions {
        segment_mutations: u64::MAX,
        segment_bytes: usize::MAX,
        ..o.clone()
    };
    match seal_next(store, m.first_seq, m.last_seq, &whole)? {
        Some(s) if s.raw_crc32c == m.raw_crc32c && s.last_seq == m.last_seq => Ok(()),
        _ => Err(conflict()),
    }
}

/// Reads the log from `first` on until a segment is full (or `last`), and seals it.
fn seal_next(
    store: &Store,
    first: u64,
    last: u64,
    o: &PushOptions,
) -> anyhow::Result<Option<Sealed>> {
    let reader = store.reader()?;
    let mut w = SegmentWriter::default();
    let mut bad = None;
    reader.for_each_raw(first, last, |seq, t, bytes| {
        if let Err(m) = w.push_raw(seq, t, bytes) {
            bad = Some(anyhow::anyhow!("store log at seq {seq}: {m}"));
            return false;
        }
        w.mutations() < o.segment_mutations.max(1) && w.raw_len() < o.segment_bytes
    })?;
    if let Some(e) = bad {
        return Err(e);
    }
    w.seal()
        .map_err(|e| anyhow::anyhow!("sealing a segment: {e}"))
}

fn manifest_of(source: &str, s: &Sealed, tidemark: u64, gaps: &[crate::store::Gap]) -> Manifest {
    Manifest {
        manifest_format: MANIFEST_FORMAT,
        source: source.to_string(),
        first_seq: s.first_seq,
        last_seq: s.last_seq,
        mutations: s.mutations,
        first_commit_time: s.first_commit_time,
        last_commit_time: s.last_commit_time,
        tidemark,
        gaps: gaps
            .iter()
            .filter(|g| g.to >= s.first_commit_time && g.from <= s.last_commit_time)
            .map(GapEntry::from)
            .collect(),
        store_format: crate::store::FORMAT_VERSION,
        object: layout::segment_name(s.first_seq, s.last_seq),
        bytes: s.object.len() as u64,
        crc32c: s.crc32c,
        raw_bytes: s.raw_bytes,
        raw_crc32c: s.raw_crc32c,
        sealed_at: crate::decode::time::rfc3339(crate::capture::Timestamp(wall_clock_ns())),
        created_by: format!("tidemark {}", env!("CARGO_PKG_VERSION")),
        schema: Vec::new(),
        encryption: None,
        schema_sealed: None,
    }
}

fn wall_clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Uploads one segment then its manifest, retrying the pair with doubling pauses;
/// authentication and permission errors are not retried (they will not heal).
async fn upload(
    repo: &Repo,
    source: &str,
    s: &Sealed,
    m: &Manifest,
    throttle: &mut Throttle,
) -> anyhow::Result<()> {
    let mut pause = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match upload_once(repo, source, s, m, throttle).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt >= ATTEMPTS || !transient(&e) => {
                return Err(e.context(format!(
                    "uploading segment {}–{} of source {source} (attempt {attempt})",
                    s.first_seq, s.last_seq
                )))
            }
            Err(e) => {
                tracing::warn!(attempt, error = %format!("{e:#}"), "segment upload failed; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
        }
    }
}

/// Whether an upload error may go away by itself.
fn transient(e: &anyhow::Error) -> bool {
    !matches!(
        e.downcast_ref::<object_store::Error>(),
        Some(
            object_store::Error::Unauthenticated { .. }
                | object_store::Error::PermissionDenied { .. }
                | object_store::Error::NotSupported { .. }
                | object_store::Error::InvalidPath { .. }
                | object_store::Error::UnknownConfigurationKey { .. }
        )
    ) && e.downcast_ref::<Conflict>().is_none()
}

/// A manifest of the same name with other contents is already there.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Conflict(String);

async fn upload_once(
    repo: &Repo,
    source: &str,
    s: &Sealed,
    m: &Manifest,
    throttle: &mut Throttle,
) -> anyhow::Result<()> {
    let object = layout::segment_path(repo, source, &m.object);
    put_throttled(repo, &object, &s.object, throttle).await?;
    // Confirmed before the manifest names it: the object is there, whole.
    let head = repo.store.head(&object).await?;
    if head.size != m.bytes {
        bail!(
            "the repository holds {} bytes of {} after the upload, not {}",
            head.size,
            object,
            m.bytes
        );
    }
    let path = layout::manifest_path(repo, source, s.first_seq, s.last_seq);
    // Looked at first as well as created exclusively: a server that ignores
    // `If-None-Match` (some S3-compatible ones do) still cannot mix two stores.
    if let Some(there) = layout::read_manifest(repo, &path).await? {
        return check_same(&there, m, &path, source);
    }
    let body = serde_json::to_vec_pretty(m)?;
    let create = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    match repo
        .store
        .put_opts(&path, PutPayload::from(body), create)
        .await
    {
        Ok(_) => Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => {
            match layout::read_manifest(repo, &path).await? {
                Some(there) => check_same(&there, m, &path, source),
                None => bail!("{path} exists and then does not"),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Puts a whole object, in multipart parts when it is large, pausing for the
/// throttle after each part.
async fn put_throttled(
    repo: &Repo,
    path: &object_store::path::Path,
    bytes: &[u8],
    throttle: &mut Throttle,
) -> anyhow::Result<()> {
    if bytes.len() > PART_BYTES {
        let upload = repo.store.put_multipart(path).await?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        for part in bytes.chunks(PART_BYTES) {
            w.wait_for_capacity(2).await?;
            w.write(part);
            throttle.sent(part.len()).await;
        }
        w.finish().await?;
    } else {
        repo.store
            .put(path, PutPayload::from(bytes.to_vec()))
            .await?;
        throttle.sent(bytes.len()).await;
    }
    Ok(())
}

/// [`put_throttled`] without a rate limit.
pub(crate) async fn put_whole(
    repo: &Repo,
    path: &object_store::path::Path,
    bytes: Vec<u8>,
) -> anyhow::Result<()> {
    put_throttled(repo, path, &bytes, &mut Throttle::new(None)).await
}

/// A manifest already at `path` is fine when it describes this very segment (a retry
/// after the manifest went up); otherwise another store pushes as this source.
fn check_same(
    there: &Manifest,
    m: &Manifest,
    path: &object_store::path::Path,
    source: &str,
) -> anyhow::Result<()> {
    if same_segment(there, m) {
        Ok(())
    } else {
        Err(Conflict(format!(
            "{path} already describes another segment (crc {:08x}, not {:08x}): two stores push as source {source}",
            there.crc32c, m.crc32c
        ))
        .into())
    }
}

/// Two manifests of one seq range describe the same data (the seal time and the
/// tidemark at the seal may differ between a first try and a retry).
fn same_segment(a: &Manifest, b: &Manifest) -> bool {
    a.source == b.source
        && a.first_seq == b.first_seq
        && a.last_seq == b.last_seq
        && a.raw_crc32c == b.raw_crc32c
        && a.raw_bytes == b.raw_bytes
}

/// Keeps uploads under `--rate-mb` by pausing after each part.
struct Throttle {
    bytes_per_s: Option<f64>,
    started: Instant,
    sent: u64,
}

impl Throttle {
    fn new(rate_mb: Option<f64>) -> Throttle {
        Throttle {
            bytes_per_s: rate_mb.filter(|r| *r > 0.0).map(|r| r * 1e6),
            started: Instant::now(),
            sent: 0,
        }
    }

    async fn sent(&mut self, n: usize) {
        self.sent += n as u64;
        if let Some(rate) = self.bytes_per_s {
            let due = Duration::from_secs_f64(self.sent as f64 / rate);
            let elapsed = self.started.elapsed();
            if due > elapsed {
                tokio::time::sleep(due - elapsed).await;
            }
        }
    }
}

/// A bar on a terminal (mutations, MB/s, ETA); `--json` progress lines otherwise.
struct Progress {
    json: bool,
    show: bool,
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(json: bool, show: bool, mutations: u64) -> Progress {
        let bar = (show && !json && std::io::stderr().is_terminal() && mutations > 0).then(|| {
            let bar = ProgressBar::with_draw_target(Some(mutations), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} mutations  {per_sec}  {msg}  eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        Progress { json, show, bar }
    }

    fn segment(&mut self, r: &PushReport, started: Instant) {
        let mb_s = r.bytes as f64 / 1e6 / started.elapsed().as_secs_f64().max(1e-6);
        if !self.show {
            return;
        }
        if self.json {
            println!(
                "{}",
                serde_json::json!({
                    "type": "progress",
                    "source": r.source,
                    "segments": r.segments,
                    "mutations": r.mutations,
                    "bytes": r.bytes,
                    "pushed_through": r.pushed_through,
                    "mb_per_s": (mb_s * 100.0).round() / 100.0,
                })
            );
        } else if let Some(bar) = &self.bar {
            bar.set_position(r.mutations);
            bar.set_message(format!("{mb_s:.1} MB/s"));
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
