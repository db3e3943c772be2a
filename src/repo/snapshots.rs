//! Snapshots in the repository: each finished snapshot of a source's store as one
//! immutable object (zstd over `SNAP_MAGIC`, the description, then the rows, each
//! length-prefixed and postcard-encoded as the store keeps them) and a JSON manifest
//! written after it.
//!
//! ```text
//! PREFIX/sources/SOURCE/snapshots/ID.snap    the snapshot
//! PREFIX/sources/SOURCE/snapshots/ID.json    its manifest
//! ```

use anyhow::Context;
use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use super::location::Repo;
use crate::snapshot::model::{SnapshotInfo, SnapshotRow};
use crate::store::{codec, Store};

/// First bytes of a decompressed snapshot object.
pub const SNAP_MAGIC: &[u8; 8] = b"TMSNP\0\0\x01";

/// Largest single record accepted when reading.
const MAX_RECORD: usize = 256 << 20;

/// What a snapshot object holds and how to check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotManifest {
    pub source: String,
    /// The snapshot's id in the source's store.
    pub id: u64,
    pub protocol: String,
    pub cluster: String,
    pub started: u64,
    pub finished: u64,
    pub rows: u64,
    pub bytes: u64,
    pub crc32c: u32,
    pub raw_bytes: u64,
    pub raw_crc32c: u32,
    pub created_by: String,
    /// `aes-256-gcm:KEYID` when the object is encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
}

fn dir(repo: &Repo, source: &str) -> Path {
    repo.prefix
        .child("sources")
        .child(source)
        .child("snapshots")
}

fn object_name(id: u64) -> String {
    format!("{id:020}.snap")
}

fn object_path(repo: &Repo, source: &str, id: u64) -> Path {
    dir(repo, source).child(object_name(id))
}

fn manifest_path(repo: &Repo, source: &str, id: u64) -> Path {
    dir(repo, source).child(format!("{id:020}.json"))
}

fn put_record(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Uploads every finished snapshot of `store` the repository does not hold yet;
/// returns how many went up and their bytes.
pub async fn push(
    repo: &Repo,
    store: &Store,
    source: &str,
    key: Option<&super::crypt::Key>,
) -> anyhow::Result<(u64, u64)> {
    let there = manifests(repo, source).await?;
    let pruned = super::layout::pruned(repo, source).await?;
    let mut pushed = (0, 0);
    for info in crate::snapshot::store::list_snapshots(store)? {
        let Some(finished) = info.finished else {
            continue; // still being taken, or interrupted: not a snapshot yet
        };
        if pruned
            .snapshots_before
            .get(info.protocol.as_str())
            .is_some_and(|before| finished < *before)
        {
            continue; // pruned from the repository: no version wants it
        }
        if there.iter().any(|m| m.id == info.id) {
            continue;
        }
        let mut raw = SNAP_MAGIC.to_vec();
        put_record(
            &mut raw,
            &codec::encode(&info).map_err(|e| anyhow::anyhow!("snapshot {}: {e}", info.id))?,
        );
        let mut rows = 0u64;
        for row in crate::snapshot::store::rows(store, info.id, None) {
            let row = row?;
            put_record(
                &mut raw,
                &codec::encode(&row).map_err(|e| anyhow::anyhow!("snapshot {}: {e}", info.id))?,
            );
            rows += 1;
        }
        let mut object = zstd::bulk::compress(&raw, 3).context("zstd")?;
        if let Some(k) = key {
            object = k.seal(&object_name(info.id), &object)?;
        }
        let m = SnapshotManifest {
            source: source.to_string(),
            id: info.id,
            protocol: info.protocol.as_str().to_string(),
            cluster: info.cluster.clone(),
            started: info.started,
            finished,
            rows,
            bytes: object.len() as u64,
            crc32c: crc32c::crc32c(&object),
            raw_bytes: raw.len() as u64,
            raw_crc32c: crc32c::crc32c(&raw),
            created_by: format!("tidemark {}", env!("CARGO_PKG_VERSION")),
            encryption: key.map(|k| k.label()),
        };
        let path = object_path(repo, source, info.id);
        super::upload::put_whole(repo, &path, object).await?;
        let head = repo.store.head(&path).await?;
        anyhow::ensure!(
            head.size == m.bytes,
            "{path}: {} bytes after the upload, not {}",
            head.size,
            m.bytes
        );
        let create = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match repo
            .store
            .put_opts(
                &manifest_path(repo, source, info.id),
                PutPayload::from(serde_json::to_vec_pretty(&m)?),
                create,
            )
            .await
        {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        pushed.0 += 1;
        pushed.1 += m.bytes;
    }
    Ok(pushed)
}

/// The snapshot manifests of a source, by id.
pub async fn manifests(repo: &Repo, source: &str) -> anyhow::Result<Vec<SnapshotManifest>> {
    let objects: Vec<object_store::ObjectMeta> = repo
        .store
        .list(Some(&dir(repo, source)))
        .try_collect()
        .await
        .with_context(|| format!("listing the snapshots of source {source}"))?;
    let mut out = Vec::new();
    for o in objects {
        if o.location.extension() != Some("json") {
            continue;
        }
        let bytes = repo.store.get(&o.location).await?.bytes().await?;
        let m: SnapshotManifest = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a snapshot manifest", o.location))?;
        out.push(m);
    }
    out.sort_by_key(|m| m.id);
    Ok(out)
}

/// Downloads a snapshot and checks it against its manifest.
pub async fn fetch(
    repo: &Repo,
    m: &SnapshotManifest,
    key: Option<&super::crypt::Key>,
) -> anyhow::Result<(SnapshotInfo, Vec<SnapshotRow>)> {
    let path = object_path(repo, &m.source, m.id);
    let object = repo.store.get(&path).await?.bytes().await?;
    read(&object, m, key).map_err(|e| anyhow::anyhow!("{path}: {e}"))
}

/// Checks a snapshot object against its manifest and decodes it.
pub fn read(
    object: &[u8],
    m: &SnapshotManifest,
    key: Option<&super::crypt::Key>,
) -> Result<(SnapshotInfo, Vec<SnapshotRow>), String> {
    if object.len() as u64 != m.bytes || crc32c::crc32c(object) != m.crc32c {
        return Err("length or CRC-32C differs from the manifest".into());
    }
    let opened;
    let object = match super::crypt::check_label(m.encryption.as_deref(), key)? {
        None => object,
        Some(k) => {
            opened = k.open(&object_name(m.id), object)?;
            &opened[..]
        }
    };
    if m.raw_bytes > super::segment::MAX_RAW_BYTES {
        return Err("decompressed size over the limit".into());
    }
    let raw =
        zstd::bulk::decompress(object, m.raw_bytes as usize).map_err(|e| format!("zstd: {e}"))?;
    if raw.len() as u64 != m.raw_bytes
        || crc32c::crc32c(&raw) != m.raw_crc32c
        || !raw.starts_with(SNAP_MAGIC)
    {
        return Err("decompressed contents differ from the manifest".into());
    }
    let mut rest = &raw[SNAP_MAGIC.len()..];
    let mut next = || -> Result<Option<&[u8]>, String> {
        if rest.is_empty() {
            return Ok(None);
        }
        if rest.len() < 4 {
            return Err("truncated record length".into());
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > MAX_RECORD || len + 4 > rest.len() {
            return Err(format!("record of {len} bytes does not fit"));
        }
        let (rec, after) = rest[4..].split_at(len);
        rest = after;
        Ok(Some(rec))
    };
    let info: SnapshotInfo = codec::decode(next()?.ok_or("no description")?)?;
    let mut rows = Vec::new();
    while let Some(r) = next()? {
        rows.push(codec::decode::<SnapshotRow>(r)?);
    }
    if rows.len() as u64 != m.rows || info.id != m.id {
        return Err(format!(
            "{} rows where the manifest says {}",
            rows.len(),
            m.rows
        ));
    }
    Ok((info, rows))
}

/// Deletes a snapshot: its manifest first (so a half-done delete leaves no manifest
/// naming a missing object), then the object.
pub async fn delete(repo: &Repo, m: &SnapshotManifest) -> anyhow::Result<()> {
    for path in [
        manifest_path(repo, &m.source, m.id),
        object_path(repo, &m.source, m.id),
    ] {
        super::layout::delete(repo, &path).await?;
    }
    Ok(())
}
