//! Putting a sealed segment and its manifest into the repository: multipart above
//! one part, throttled, confirmed by HEAD before the manifest is created (never
//! overwritten), retried with doubling pauses when the error may heal.

use std::time::{Duration, Instant};

use anyhow::bail;
use futures_util::StreamExt;
use object_store::multipart::MultipartStore;
use object_store::{PutMode, PutOptions, PutPayload};

use super::layout;
use super::location::Repo;
use super::resume::{Pending, Spool, Target};
use super::segment::{Manifest, Sealed};

/// Objects above this go up in multipart parts of this size.
const PART_BYTES: usize = 8 << 20;
/// Parts of one resumable upload in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// The parts of a segment's multipart upload: sent by this push (by all its
/// attempts), and found finished when the attempt that completed it began (by an
/// earlier process, [`super::resume`], or an earlier attempt).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Parts {
    pub sent: u64,
    pub resumed: u64,
}
/// Attempts per segment beyond the backend's own retries, with doubling pauses.
const ATTEMPTS: u32 = 5;

/// Uploads one segment then its manifest, retrying the pair with doubling pauses;
/// authentication and permission errors are not retried (they will not heal).
/// With a `spool` (the store's) and a backend with multipart ids, a large segment's
/// upload is kept resumable there until its manifest is in the repository.
pub(super) async fn upload(
    repo: &Repo,
    source: &str,
    s: &Sealed,
    m: &Manifest,
    throttle: &mut Throttle,
    spool: Option<&Spool>,
) -> anyhow::Result<Parts> {
    let mut pause = Duration::from_millis(500);
    let mut attempt = 1;
    let mut parts = Parts::default();
    loop {
        match upload_once(repo, source, s, m, throttle, spool, &mut parts).await {
            Ok(()) => {
                if let Some(spool) = spool {
                    spool.clear();
                }
                return Ok(parts);
            }
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
pub(super) struct Conflict(pub(super) String);

async fn upload_once(
    repo: &Repo,
    source: &str,
    s: &Sealed,
    m: &Manifest,
    throttle: &mut Throttle,
    spool: Option<&Spool>,
    parts: &mut Parts,
) -> anyhow::Result<()> {
    let object = layout::segment_path(repo, source, &m.object);
    match (&repo.multipart, spool) {
        (Some(mp), Some(spool)) if s.object.len() > PART_BYTES => {
            let url = super::location::redact(&repo.url);
            let to = Target {
                repo: &url,
                source,
                object: object.as_ref(),
                encryption: m.encryption.as_deref(),
            };
            put_resumable(mp.as_ref(), spool, to, &object, s, throttle, parts).await?;
        }
        _ => put_throttled(repo, &object, &s.object, throttle).await?,
    }
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

/// Puts a whole object, in multipart parts when it is large (slices of the one
/// buffer, [`PARTS_IN_FLIGHT`] at once), pausing for the throttle after each part.
async fn put_throttled(
    repo: &Repo,
    path: &object_store::path::Path,
    bytes: &bytes::Bytes,
    throttle: &mut Throttle,
) -> anyhow::Result<()> {
    if bytes.len() <= PART_BYTES {
        repo.store.put(path, bytes.clone().into()).await?;
        throttle.sent(bytes.len()).await;
        return Ok(());
    }
    let mut upload = repo.store.put_multipart(path).await?;
    let result: anyhow::Result<()> = async {
        let parts = (0..bytes.len())
            .step_by(PART_BYTES)
            .map(|start| bytes.slice(start..(start + PART_BYTES).min(bytes.len())))
            .map(|part| {
                let len = part.len();
                let put = upload.put_part(part.into());
                async move { put.await.map(|()| len) }
            });
        let mut in_flight = futures_util::stream::iter(parts).buffer_unordered(PARTS_IN_FLIGHT);
        while let Some(len) = in_flight.next().await {
            throttle.sent(len?).await;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            upload.complete().await?;
            Ok(())
        }
        Err(e) => {
            let _ = upload.abort().await;
            Err(e)
        }
    }
}

/// Puts a large segment through the backend's multipart calls, continuing the
/// store's pending upload of these very bytes when there is one (only the parts it
/// lacks are sent) and recording each finished part in the spool's state. An upload
/// the server no longer knows is forgotten here too and the error retried, which
/// starts a new one.
async fn put_resumable(
    mp: &dyn MultipartStore,
    spool: &Spool,
    to: Target<'_>,
    object: &object_store::path::Path,
    s: &Sealed,
    throttle: &mut Throttle,
    parts: &mut Parts,
) -> anyhow::Result<()> {
    // A new upload's spool is written while its first parts go up; no part is
    // recorded before it is whole (a state file always has its spool).
    let mut spooling = None;
    let mut p = match spool.load() {
        Some(p) if p.is_of(to, s, PART_BYTES) => p,
        stale => {
            if let Some(old) = stale.filter(|o| o.goes_to(to)) {
                abort(mp, &old).await;
            }
            spool.clear();
            let id = mp.create_multipart(object).await?;
            let p = Pending::new(to, id, PART_BYTES, s);
            let (spool, state, bytes) = (spool.clone(), p.clone(), s.object.clone());
            spooling = Some(tokio::task::spawn_blocking(move || {
                spool.start(&state, &bytes)
            }));
            p
        }
    };
    let resumed = p.parts.len() as u64;
    let todo: Vec<usize> = (0..s.object.len().div_ceil(PART_BYTES))
        .filter(|i| !p.parts.contains_key(i))
        .collect();
    let id = p.upload_id.clone();
    let send = |i: usize| {
        let chunk = s
            .object
            .slice(i * PART_BYTES..((i + 1) * PART_BYTES).min(s.object.len()));
        let len = chunk.len();
        let id = &id;
        async move { (i, len, mp.put_part(object, id, i, chunk.into()).await) }
    };
    let mut in_flight =
        futures_util::stream::iter(todo.into_iter().map(send)).buffer_unordered(PARTS_IN_FLIGHT);
    while let Some((i, len, r)) = in_flight.next().await {
        match r {
            Ok(part) => {
                if let Some(writing) = spooling.take() {
                    writing.await??;
                }
                p.parts.insert(i, part.content_id);
                spool.save(&p)?;
                parts.sent += 1;
                throttle.sent(len).await;
            }
            Err(e) => {
                // The spool is left whole (or not at all) before anything else.
                if let Some(writing) = spooling.take() {
                    let _ = writing.await;
                }
                if let object_store::Error::NotFound { .. } = e {
                    spool.clear();
                    bail!("the server no longer knows the multipart upload of {object}; it is started again");
                }
                return Err(e.into());
            }
        }
    }
    drop(in_flight);
    let ids: Vec<object_store::multipart::PartId> = p
        .parts
        .values()
        .map(|c| object_store::multipart::PartId {
            content_id: c.clone(),
        })
        .collect();
    mp.complete_multipart(object, &p.upload_id, ids).await?;
    parts.resumed = resumed;
    Ok(())
}

/// Aborts an abandoned upload on the server, as far as it can (a server that
/// forgot it already is fine; anything else only leaves parts its lifecycle rules
/// clean up).
async fn abort(mp: &dyn MultipartStore, p: &Pending) {
    let path = object_store::path::Path::from(p.object.as_str());
    if let Err(e) = mp.abort_multipart(&path, &p.upload_id).await {
        tracing::warn!(object = %p.object, error = %e, "abandoned multipart upload not aborted");
    }
}

/// [`abort`] of a pending upload the push found it will not continue.
pub(super) async fn abandon(repo: &Repo, p: &Pending) {
    if let Some(mp) = &repo.multipart {
        if p.repo == super::location::redact(&repo.url) {
            abort(mp.as_ref(), p).await;
        }
    }
}

/// [`put_throttled`] without a rate limit.
pub(crate) async fn put_whole(
    repo: &Repo,
    path: &object_store::path::Path,
    bytes: Vec<u8>,
) -> anyhow::Result<()> {
    put_throttled(repo, path, &bytes.into(), &mut Throttle::new(None)).await
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
pub(super) struct Throttle {
    bytes_per_s: Option<f64>,
    started: Instant,
    sent: u64,
}

impl Throttle {
    pub(super) fn new(rate_mb: Option<f64>) -> Throttle {
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
