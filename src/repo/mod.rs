//! The remote repository on object storage (ARCHITECTURE.md, "The repository"):
//! each source (a tap's or a sidecar's store) ships its log as sealed, immutable
//! segments with manifests; `ls` lists them and `verify` re-reads every object.
//!
//! - [`location`]: `--repo URL` → an `object_store` backend and prefix (credentials
//!   only from the environment);
//! - [`segment`]: a segment's bytes and its manifest;
//! - [`layout`]: object names, listing, the chain of a source's segments;
//! - [`push`], [`list`], [`verify`]: the commands; [`resume`]: a multipart upload
//!   continued by the next process; [`push::drop_confirmed`]: the local log
//!   dropped once the repository confirms it;
//! - [`pull`]: every source's segments merged into one working store, CQL keys a
//!   source decoded without the schema completed first ([`rekey`]).

pub mod crypt;
pub mod layout;
pub mod list;
pub mod location;
pub mod print;
pub mod prune;
pub mod pull;
pub mod push;
mod push_progress;
pub mod rekey;
pub mod resume;
mod seal;
pub mod segment;
pub mod ship;
pub mod snapshots;
pub mod status;
mod upload;
pub mod verify;

use anyhow::Context;

use crate::store::Store;

/// Where a store keeps the source id it pushes as (in its `versions` table, beside
/// restore checkpoints `k\0` and version deletions `d\0`).
const SOURCE_ID_KEY: &[u8] = b"o\0source_id";

/// The store's source id: made once (host name and a random suffix, so copies of
/// one machine image differ) and kept in the store, so every push of the store
/// names the same source.
pub fn source_id(store: &Store) -> anyhow::Result<String> {
    if let Some(bytes) = store.version_entry(SOURCE_ID_KEY)? {
        let id = String::from_utf8(bytes).context("the store's source id is not UTF-8")?;
        layout::check_source(&id)?;
        return Ok(id);
    }
    let host: String = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    let host = if host.is_empty() {
        "source".to_string()
    } else {
        host
    };
    let id = format!("{host}-{:08x}", random_u32());
    store.put_version_entries([(SOURCE_ID_KEY.to_vec(), id.clone().into_bytes())])?;
    Ok(id)
}

/// 32 random bits from the kernel (no dependency for one number).
fn random_u32() -> u32 {
    use std::io::Read;
    let mut b = [0u8; 4];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        return t ^ std::process::id();
    }
    u32::from_le_bytes(b)
}

/// Runs an async repository call on a runtime of its own (the commands are
/// synchronous).
pub(crate) fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the I/O runtime")?;
    Ok(rt.block_on(f))
}

/// The working store of a repository when no `--store` is given: under
/// `$XDG_CACHE_HOME/tidemark/repos` (or `~/.cache/…`), named by a digest of the URL,
/// so each repository has its own and a fresh machine starts from the repository
/// alone.
pub fn default_working_dir(url: &str) -> anyhow::Result<std::path::PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => std::path::PathBuf::from(d),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => std::path::PathBuf::from(h).join(".cache"),
            None => anyhow::bail!("no --store given and neither XDG_CACHE_HOME nor HOME is set"),
        },
    };
    let digest = twox_hash::XxHash3_128::oneshot(location::redact(url).as_bytes()) as u64;
    let dir = base
        .join("tidemark")
        .join("repos")
        .join(format!("{digest:016x}"));
    std::fs::create_dir_all(dir.parent().unwrap_or(&dir))
        .with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
