//! The writer lock: one process writes a store at a time.
//!
//! LMDB serializes write transactions between processes itself, but two tidemark
//! writers would each assign seqs from their own counter and interleave two logs. An
//! advisory lock on `tidemark.lock` (flock on Unix, via `File::try_lock`) is held for
//! the writer's lifetime and released by the OS when the process dies, so a crash
//! never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::error::{Result, StoreError};

/// File name of the lock inside the store directory.
pub const LOCK_FILE: &str = "tidemark.lock";

/// Held while a [`crate::store::Store`] is open for writing; unlocks on drop.
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
}

impl WriterLock {
    /// Takes the lock of the store at `dir`, failing at once if someone holds it.
    pub fn acquire(dir: &Path) -> Result<WriterLock> {
        let lock: PathBuf = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock)
            .map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                action: "open lock file",
                source,
            })?;
        // `File::try_lock` is std since Rust 1.89 (the workspace's rust-version).
        match file.try_lock() {
            Ok(()) => Ok(WriterLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(StoreError::Locked {
                path: dir.to_path_buf(),
                lock,
            }),
            Err(TryLockError::Error(source)) => Err(StoreError::Io {
                path: dir.to_path_buf(),
                action: "lock",
                source,
            }),
        }
    }
}
