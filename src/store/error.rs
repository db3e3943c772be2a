//! Errors of the store layer.
//!
//! Every variant that concerns the store directory names it, so a one-line message
//! (`{err}`) is enough for an operator to act on: the CLI prints it as is.

use std::path::PathBuf;

/// What can go wrong opening, reading or writing a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `Store::open` on a directory that does not exist (use `Store::create`).
    #[error("store {path}: no such directory")]
    Missing { path: PathBuf },

    /// `Store::create` on a directory that already holds a store.
    #[error("store {path}: already exists")]
    AlreadyExists { path: PathBuf },

    /// Another process (or another `Store` in this process) holds the writer lock.
    #[error("store {path}: locked by another writer (lock file {lock})")]
    Locked { path: PathBuf, lock: PathBuf },

    /// The store was written by a tidemark with another on-disk format.
    #[error("store {path}: format version {found}, this tidemark reads version {expected}")]
    FormatVersion {
        path: PathBuf,
        found: u32,
        expected: u32,
    },

    /// The directory exists but is not a tidemark store, or its data is damaged.
    #[error("store {path}: not a tidemark store or corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },

    /// The memory map is full; reopen with a larger `StoreOptions::map_size`.
    #[error("store {path}: map full at {map_size} bytes; reopen with a larger map size")]
    MapFull { path: PathBuf, map_size: usize },

    /// The caller passed something the store cannot hold (too long a namespace, a
    /// commit time that goes backwards, ...). Nothing was written.
    #[error("store {path}: invalid input: {reason}")]
    Invalid { path: PathBuf, reason: String },

    /// The store was opened read-only and a write was attempted.
    #[error("store {path}: opened read-only")]
    ReadOnly { path: PathBuf },

    /// A file system operation on the store directory failed.
    #[error("store {path}: {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },

    /// LMDB reported an error.
    #[error("store {path}: {action}: {source}")]
    Lmdb {
        path: PathBuf,
        action: &'static str,
        source: heed::Error,
    },
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
