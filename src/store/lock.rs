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

/// How long a busy lock is tried again before it counts as held.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// File name of the lock inside the store directory.
pub const LOCK_FILE: &str = "tidemark.lock";

/// Held while a [`crate::store::Store`] is open for writing; unlocks on drop.
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
}

impl WriterLock {
    /// Takes the lock of the store at `dir`, failing if someone holds it (after
    /// [`BUSY_WAIT`]).
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
        // A lock just released can still be held for a moment by a child process
        // forked (by any thread of this process) while it was open and not yet
        // exec'd — the descriptor is close-on-exec, not close-on-fork — so a busy
        // lock is tried again for a short while before it counts as held.
        let deadline = std::time::Instant::now() + BUSY_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(WriterLock { _file: file }),
                Err(TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(StoreError::Locked {
                        path: dir.to_path_buf(),
                        lock,
                    })
                }
                Err(TryLockError::Error(source)) => {
                    return Err(StoreError::Io {
                        path: dir.to_path_buf(),
                        action: "lock",
                        source,
                    })
                }
            }
        }
    }
}
