//! A multipart upload that outlives its process: the sealed segment's bytes
//! (spooled) and the upload's id and finished parts, kept in the store directory
//! (`repo-upload/`) until the segment's manifest is in the repository, so a push
//! killed in the middle of a large segment is continued by the next push — only
//! the parts the server does not hold yet are sent — instead of redone whole.
//!
//! Why the bytes are spooled rather than sealed again: an encrypted segment gets a
//! fresh nonce at every seal, so a second seal would not give the bytes whose
//! first parts the server holds. The spool's CRC-32C is checked before it is
//! reused; a spool that does not match, an upload the server forgot, or one for
//! another repository or source is dropped (and aborted where it can be) and the
//! segment is uploaded afresh.
//!
//! The state file holds the repository URL without credentials, the object's
//! name, the upload id and each finished part's id (an ETag): nothing secret.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::segment::Sealed;

/// The directory in the store that holds one pending upload.
pub const DIR: &str = "repo-upload";
const STATE: &str = "state.json";
const SPOOL: &str = "segment.bin";

/// A multipart upload in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    /// The repository (URL without credentials) and source it goes to.
    pub repo: String,
    pub source: String,
    /// The object's full path in the backend.
    pub object: String,
    pub upload_id: String,
    pub part_bytes: usize,
    /// The spooled object's length and CRC-32C.
    pub bytes: u64,
    pub crc32c: u32,
    /// What the segment is (everything of [`Sealed`] but its bytes).
    pub first_seq: u64,
    pub last_seq: u64,
    pub mutations: u64,
    pub first_commit_time: u64,
    pub last_commit_time: u64,
    pub raw_bytes: u64,
    pub raw_crc32c: u32,
    /// The key label the spooled bytes are encrypted with (`None`: plain).
    pub encryption: Option<String>,
    /// Finished parts: index → the server's part id.
    pub parts: BTreeMap<usize, String>,
}

impl Pending {
    /// The segment this upload is of, with `object` as its bytes.
    pub fn sealed(&self, object: Vec<u8>) -> Sealed {
        Sealed {
            object: object.into(),
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            mutations: self.mutations,
            first_commit_time: self.first_commit_time,
            last_commit_time: self.last_commit_time,
            crc32c: self.crc32c,
            raw_bytes: self.raw_bytes,
            raw_crc32c: self.raw_crc32c,
        }
    }

    /// The state of a new upload of `s` (no part finished yet).
    pub fn new(to: Target<'_>, upload_id: String, part_bytes: usize, s: &Sealed) -> Pending {
        Pending {
            repo: to.repo.to_string(),
            source: to.source.to_string(),
            object: to.object.to_string(),
            upload_id,
            part_bytes,
            bytes: s.object.len() as u64,
            crc32c: s.crc32c,
            first_seq: s.first_seq,
            last_seq: s.last_seq,
            mutations: s.mutations,
            first_commit_time: s.first_commit_time,
            last_commit_time: s.last_commit_time,
            raw_bytes: s.raw_bytes,
            raw_crc32c: s.raw_crc32c,
            encryption: to.encryption.map(str::to_string),
            parts: BTreeMap::new(),
        }
    }
}

/// Where an upload goes: the repository (URL without credentials), source, object
/// and the key label its bytes are sealed with.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub repo: &'a str,
    pub source: &'a str,
    pub object: &'a str,
    pub encryption: Option<&'a str>,
}

impl Pending {
    /// Whether this is an upload of `s` to `to`.
    pub fn is_of(&self, to: Target<'_>, s: &Sealed, part_bytes: usize) -> bool {
        self.goes_to(to)
            && self.object == to.object
            && self.first_seq == s.first_seq
            && self.last_seq == s.last_seq
            && self.bytes == s.object.len() as u64
            && self.crc32c == s.crc32c
            && self.part_bytes == part_bytes
    }

    /// Whether it goes to the same repository and source, sealed alike.
    pub fn goes_to(&self, to: Target<'_>) -> bool {
        self.repo == to.repo
            && self.source == to.source
            && self.encryption.as_deref() == to.encryption
    }
}

/// Where a store keeps its pending upload.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// The spool of the store in `store_dir`.
    pub fn of(store_dir: &Path) -> Spool {
        Spool {
            dir: store_dir.join(DIR),
        }
    }

    /// The pending upload's state, if any (an unreadable one counts as none and is
    /// removed: the worst it costs is one segment uploaded again).
    pub fn load(&self) -> Option<Pending> {
        let bytes = std::fs::read(self.dir.join(STATE)).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(error = %e, dir = %self.dir.display(), "unreadable upload state; dropped");
                self.clear();
                None
            }
        }
    }

    /// The spooled bytes of `p`, if they are there and whole (length and CRC-32C).
    pub fn bytes(&self, p: &Pending) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.dir.join(SPOOL)).ok()?;
        (bytes.len() as u64 == p.bytes && crc32c::crc32c(&bytes) == p.crc32c).then_some(bytes)
    }

    /// Starts a pending upload: the bytes, then the state naming them (so a state
    /// file always has its spool).
    pub fn start(&self, p: &Pending, object: &[u8]) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let spool = self.dir.join(SPOOL);
        std::fs::write(&spool, object).with_context(|| format!("writing {}", spool.display()))?;
        self.save(p)
    }

    /// Rewrites the state (after each finished part), atomically.
    pub fn save(&self, p: &Pending) -> anyhow::Result<()> {
        let tmp = self.dir.join(format!("{STATE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(p)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, self.dir.join(STATE))
            .with_context(|| format!("writing {}", self.dir.join(STATE).display()))
    }

    /// Forgets the pending upload (its segment is in the repository, or it is
    /// abandoned).
    pub fn clear(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
