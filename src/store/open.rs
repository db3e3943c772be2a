//! [`Store`]: creating and opening a store directory.
//!
//! A store is a directory (mode 0700) holding one LMDB environment (`data.mdb`,
//! `lock.mdb`, mode 0600) and the writer lock file. Opening checks, in this order, that
//! the directory exists, that no other writer holds it, that it holds an LMDB
//! environment with every database, and that its format version is ours, so each
//! failure gets its own one-line error.

use std::fs::{self, DirBuilder, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard};

use heed::{EnvFlags, EnvOpenOptions, MdbError};

use super::codec;
use super::dbs::{self, Dbs};
use super::error::{Result, StoreError};
use super::lock::{WriterLock, LOCK_FILE};
use super::meta::{self, FORMAT_VERSION, OLDEST_READABLE};
use super::options::{Durability, StoreOptions};
use super::records::Policy;

/// LMDB's data file inside the store directory.
pub const DATA_FILE: &str = "data.mdb";
/// LMDB's reader table inside the store directory.
pub const LMDB_LOCK_FILE: &str = "lock.mdb";

/// An open store. `Send + Sync`: share it behind an `Arc`; appends serialize on an
/// internal mutex, reads run concurrently on LMDB snapshots.
pub struct Store {
    pub(super) path: PathBuf,
    pub(super) env: heed::Env,
    pub(super) dbs: Dbs,
    pub(super) read_only: bool,
    /// Opened by [`Store::open_side`]: writes only the side tables (snapshots,
    /// versions), never the log, so it holds no writer lock.
    pub(super) side: bool,
    /// The store's on-disk format: [`FORMAT_VERSION`], or an older one still read
    /// (a read-only open of a store no writer has converted yet).
    pub(super) format: u32,
    pub(super) writer: Mutex<WriterState>,
    /// Held shared by every transaction of this process (see [`Store::gate`]) and
    /// taken exclusively, without waiting, to grow the map: LMDB allows a resize only
    /// while the process has no transaction open.
    pub(super) txn_gate: RwLock<()>,
    _lock: Option<WriterLock>,
}

/// What the single writer keeps between appends, and its scratch buffers.
#[derive(Debug, Default)]
pub(super) struct WriterState {
    /// Seq of the next appended mutation.
    pub next_seq: u64,
    /// Commit time of the last appended mutation (appends never go below it).
    pub last_commit_time: u64,
    /// Current tidemark (it never goes back).
    pub tidemark: Option<u64>,
    /// Number of the next gap record.
    pub next_gap: u64,
    /// Encoded envelopes of the batch being appended.
    pub values: Vec<u8>,
    /// End offset of each envelope in `values`.
    pub ends: Vec<usize>,
    /// Scratch for index keys.
    pub key: Vec<u8>,
    /// The batch's `by_key` entries, back to back ...
    pub index_bytes: Vec<u8>,
    /// ... and each one's span in `index_bytes`, sorted by key.
    pub index_spans: Vec<(usize, usize)>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Creates a new store in `dir`, which must not exist yet or be an empty
    /// directory, or hold only what a create killed before its commit leaves (the
    /// writer lock, an LMDB environment without databases); its parent must exist.
    pub fn create(dir: impl AsRef<Path>, options: &StoreOptions) -> Result<Store> {
        let path = dir.as_ref().to_path_buf();
        let io = |action, source| StoreError::Io {
            path: path.clone(),
            action,
            source,
        };
        if options.read_only {
            return Err(invalid(&path, "cannot create a store read-only"));
        }
        let leftovers = match fs::read_dir(&path) {
            Ok(entries) => {
                let mut any = false;
                for entry in entries {
                    let entry = entry.map_err(|e| io("read directory", e))?;
                    any = true;
                    let name = entry.file_name();
                    if ![LOCK_FILE, DATA_FILE, LMDB_LOCK_FILE]
                        .iter()
                        .any(|f| name.as_os_str() == *f)
                    {
                        return Err(StoreError::AlreadyExists { path });
                    }
                }
                any
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                DirBuilder::new()
                    .mode(0o700)
                    .create(&path)
                    .map_err(|e| io("create directory", e))?;
                false
            }
            Err(e) => return Err(io("read directory", e)),
        };
        // The umask may have narrowed the mode, an existing empty directory may be wider.
        fs::set_permissions(&path, Permissions::from_mode(0o700))
            .map_err(|e| io("set directory mode", e))?;
        let lock = WriterLock::acquire(&path)?;
        let env = open_env(&path, options)?;
        if leftovers && has_databases(&env).map_err(on_lmdb(&path, "read"))? {
            return Err(StoreError::AlreadyExists { path });
        }
        for file in [DATA_FILE, LMDB_LOCK_FILE] {
            fs::set_permissions(path.join(file), Permissions::from_mode(0o600))
                .map_err(|e| io("set file mode", e))?;
        }
        let lmdb = |action| on_lmdb(&path, action);
        let wtxn = env.write_txn().map_err(lmdb("begin create"))?;
        let dbs = dbs::create(&env, wtxn, |db, txn| {
            meta::put(db, txn, meta::FORMAT, &FORMAT_VERSION)?;
            meta::put(db, txn, meta::CREATED_BY, &env!("CARGO_PKG_VERSION"))?;
            meta::put(db, txn, meta::NEXT_SEQ, &1u64)?;
            meta::put(db, txn, meta::NEXT_GAP, &0u64)?;
            meta::put(db, txn, meta::POLICY, &Policy::default())
        })
        .map_err(lmdb("create databases"))?;
        let state = WriterState {
            next_seq: 1,
            ..WriterState::default()
        };
        Ok(Store::assemble(
            path.clone(),
            env,
            dbs,
            options,
            (state, FORMAT_VERSION),
            Some(lock),
        ))
    }

    /// Opens an existing store.
    pub fn open(dir: impl AsRef<Path>, options: &StoreOptions) -> Result<Store> {
        Store::open_with(dir.as_ref(), options, false)
    }

    /// Opens an existing store to write its side tables (snapshots, versions) while a
    /// `tap` or `proxy` may be appending to it: no writer lock is taken, since the lock
    /// only keeps two seq counters apart and side tables have no seq; LMDB itself
    /// serializes the write transactions of all processes, so the side writer and the
    /// appender take turns (keep side transactions short). Appends through this
    /// handle are refused. A store of an older format is refused too: converting it
    /// needs the writer lock (open it once with [`Store::open`]).
    pub fn open_side(dir: impl AsRef<Path>, options: &StoreOptions) -> Result<Store> {
        Store::open_with(dir.as_ref(), options, true)
    }

    fn open_with(dir: &Path, options: &StoreOptions, side: bool) -> Result<Store> {
        let path = dir.to_path_buf();
        match fs::metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(corrupt(&path, "not a directory")),
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(StoreError::Missing { path }),
            Err(source) => {
                return Err(StoreError::Io {
                    path,
                    action: "stat directory",
                    source,
                })
            }
        }
        let lock = match options.read_only || side {
            true => None,
            false => Some(WriterLock::acquire(&path)?),
        };
        if !path.join(DATA_FILE).is_file() {
            return Err(corrupt(&path, "no data.mdb"));
        }
        let env = open_env(&path, options)?;
        let lmdb = |action| on_lmdb(&path, action);
        let rtxn = env.read_txn().map_err(lmdb("begin read"))?;
        let dbs = match dbs::open(&env, rtxn).map_err(lmdb("open databases"))? {
            Ok(dbs) => dbs,
            Err(missing) => return Err(corrupt(&path, &format!("database `{missing}` missing"))),
        };
        let (state, mut format) = load_state(&path, &env, &dbs)?;
        if format < FORMAT_VERSION && side && !options.read_only {
            return Err(StoreError::FormatVersion {
                path,
                found: format,
                expected: FORMAT_VERSION,
            });
        }
        if format < FORMAT_VERSION && !options.read_only {
            upgrade_in_place(&path, &env, &dbs, format)?;
            format = FORMAT_VERSION;
        }
        let mut store = Store::assemble(path, env, dbs, options, (state, format), lock);
        store.side = side;
        Ok(store)
    }

    fn assemble(
        path: PathBuf,
        env: heed::Env,
        dbs: Dbs,
        options: &StoreOptions,
        (state, format): (WriterState, u32),
        lock: Option<WriterLock>,
    ) -> Store {
        Store {
            path,
            env,
            dbs,
            read_only: options.read_only,
            side: false,
            format,
            writer: Mutex::new(state),
            txn_gate: RwLock::new(()),
            _lock: lock,
        }
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store's on-disk format version (older than [`FORMAT_VERSION`] only for a
    /// read-only open of a store no writer has converted yet).
    pub fn format(&self) -> u32 {
        self.format
    }

    /// Whether the store was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Locks the writer state, refusing on a read-only store. A poisoned mutex only
    /// means another thread panicked between appends; the state it guards is
    /// rewritten from committed data on every append, so it is taken over.
    pub(super) fn writer(&self) -> Result<MutexGuard<'_, WriterState>> {
        if self.read_only || self.side {
            return Err(StoreError::ReadOnly {
                path: self.path.clone(),
            });
        }
        Ok(self.writer.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Admits one transaction: hold the guard for as long as the transaction lives.
    /// Shared, so transactions never wait for each other here; only a map growth
    /// (which takes it exclusively, and only when nobody holds it) is kept out.
    pub(super) fn gate(&self) -> RwLockReadGuard<'_, ()> {
        self.txn_gate.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Doubles the memory map (up to [`MAX_MAP_SIZE`]) if no transaction of this
    /// process is open; whether it grew. Called by the writer after a transaction
    /// failed with a full map and was aborted, so an append can go on without a
    /// restart. Other processes see the larger map when they next open the store.
    pub(super) fn grow_map(&self) -> bool {
        let Ok(_exclusive) = self.txn_gate.try_write() else {
            return false;
        };
        let current = self.env.info().map_size;
        let next = current.saturating_mul(2).min(MAX_MAP_SIZE);
        if next <= current {
            return false;
        }
        // SAFETY: LMDB allows `mdb_env_set_mapsize` while the process has no
        // transaction open. Every transaction of this process holds `txn_gate`
        // shared for its whole life; holding it exclusively proves none is open.
        let grown = unsafe { self.env.resize(next) };
        match grown {
            Ok(()) => {
                tracing::info!(path = %self.path.display(), from = current, to = next, "store map grown");
                true
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "store map could not grow");
                false
            }
        }
    }

    /// Maps an LMDB error of this store.
    pub(super) fn lmdb(&self, action: &'static str) -> impl Fn(heed::Error) -> StoreError + '_ {
        move |e| match lmdb_error(&self.path, action, e) {
            StoreError::MapFull { path, .. } => StoreError::MapFull {
                path,
                map_size: self.env.info().map_size,
            },
            other => other,
        }
    }
}

/// Opens the LMDB environment with the store's settings.
fn open_env(path: &Path, options: &StoreOptions) -> Result<heed::Env> {
    let map_size = options.map_size.div_ceil(MAP_ALIGN).max(1) * MAP_ALIGN;
    let mut flags = EnvFlags::empty();
    if options.durability == Durability::NoSync {
        flags |= EnvFlags::NO_SYNC;
    }
    if options.read_only {
        flags |= EnvFlags::READ_ONLY;
    }
    let mut builder = EnvOpenOptions::new();
    builder.map_size(map_size).max_dbs(dbs::NAMES.len() as u32);
    // SAFETY: NO_SYNC only weakens durability (documented on `Durability::NoSync`),
    // never consistency. Opening maps `data.mdb`: the writer lock keeps a second
    // tidemark writer out, and nothing else is meant to modify store files.
    let env = unsafe {
        builder.flags(flags);
        builder.open(path)
    };
    env.map_err(|e| match e {
        heed::Error::Mdb(MdbError::Invalid) | heed::Error::Mdb(MdbError::VersionMismatch) => {
            corrupt(path, "data.mdb is not an LMDB environment")
        }
        heed::Error::EnvAlreadyOpened => StoreError::Locked {
            path: path.to_path_buf(),
            lock: path.join(LOCK_FILE),
        },
        e => lmdb_error(path, "open environment", e),
    })
}

/// Whether an environment holds tidemark's databases: they and the first meta
/// records are one transaction, so an environment without them is one whose create
/// never committed.
fn has_databases(env: &heed::Env) -> heed::Result<bool> {
    Ok(dbs::open(env, env.read_txn()?)?.is_ok())
}

/// Converts a store of an older readable format to [`FORMAT_VERSION`] in one
/// transaction, with the writer lock held (see `upgrade.rs`).
fn upgrade_in_place(path: &Path, env: &heed::Env, dbs: &Dbs, from: u32) -> Result<()> {
    let lmdb = |action| on_lmdb(path, action);
    let mut txn = env.write_txn().map_err(lmdb("begin upgrade"))?;
    let rewritten = super::upgrade::rewrite_older(from, dbs, &mut txn).map_err(|e| match e {
        super::upgrade::UpgradeError::Lmdb(e) => lmdb_error(path, "upgrade", e),
        super::upgrade::UpgradeError::Decode(seq, e) => {
            corrupt(path, &format!("format {from} entry {seq}: {e}"))
        }
    })?;
    meta::put(&dbs.meta, &mut txn, meta::FORMAT, &FORMAT_VERSION).map_err(lmdb("upgrade"))?;
    txn.commit().map_err(lmdb("commit upgrade"))?;
    tracing::info!(path = %path.display(), from, to = FORMAT_VERSION, rewritten, "store format upgraded");
    Ok(())
}

/// Reads the format version and the writer's counters from a freshly opened store.
fn load_state(path: &Path, env: &heed::Env, dbs: &Dbs) -> Result<(WriterState, u32)> {
    let lmdb = |action| on_lmdb(path, action);
    let txn = env.read_txn().map_err(lmdb("begin read"))?;
    let get_u64 = |key| -> Result<Option<u64>> {
        meta::get::<u64>(&dbs.meta, &txn, key)
            .map_err(lmdb("read meta"))?
            .map_err(|e| corrupt(path, &e))
    };
    let found = meta::get::<u32>(&dbs.meta, &txn, meta::FORMAT)
        .map_err(lmdb("read meta"))?
        .map_err(|e| corrupt(path, &e))?
        .ok_or_else(|| corrupt(path, "meta has no format version"))?;
    if !(OLDEST_READABLE..=FORMAT_VERSION).contains(&found) {
        return Err(StoreError::FormatVersion {
            path: path.to_path_buf(),
            found,
            expected: FORMAT_VERSION,
        });
    }
    let next_seq = get_u64(meta::NEXT_SEQ)?.ok_or_else(|| corrupt(path, "meta has no next seq"))?;
    let next_gap = get_u64(meta::NEXT_GAP)?.unwrap_or(0);
    let tidemark = get_u64(meta::TIDEMARK)?;
    let (last_seq, last_commit_time) = match dbs.log.last(&txn).map_err(lmdb("read log"))? {
        None => (0, 0),
        Some((seq, bytes)) => (
            seq,
            codec::decode_commit_time(bytes)
                .map_err(|e| corrupt(path, &format!("log {seq}: {e}")))?,
        ),
    };
    // A log dropped whole still went up to the last dropped entry's time.
    let dropped = meta::get::<super::Dropped>(&dbs.meta, &txn, meta::DROPPED)
        .map_err(lmdb("read meta"))?
        .map_err(|e| corrupt(path, &e))?;
    let last_commit_time = last_commit_time.max(dropped.map_or(0, |d| d.last_commit_time));
    if last_seq >= next_seq {
        return Err(corrupt(
            path,
            &format!("log ends at {last_seq} but next seq is {next_seq}"),
        ));
    }
    let state = WriterState {
        next_seq,
        last_commit_time,
        tidemark,
        next_gap,
        ..WriterState::default()
    };
    Ok((state, found))
}

/// The map size must be a multiple of the OS page size; 4 KiB, 16 KiB and 64 KiB
/// pages all divide 64 KiB.
const MAP_ALIGN: usize = 64 << 10;

/// The largest map a store grows to by itself: 4 TiB of address space.
pub const MAX_MAP_SIZE: usize = 4 << 40;

/// One-line error for a store that is not one or is damaged.
pub(super) fn corrupt(path: &Path, reason: &str) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// One-line error for input the store refuses.
pub(super) fn invalid(path: &Path, reason: &str) -> StoreError {
    StoreError::Invalid {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// [`lmdb_error`] as a closure for `map_err`.
fn on_lmdb<'p>(path: &'p Path, action: &'static str) -> impl Fn(heed::Error) -> StoreError + 'p {
    move |e| lmdb_error(path, action, e)
}

/// Maps an LMDB error, giving corruption and a full map their own variants.
pub(super) fn lmdb_error(path: &Path, action: &'static str, e: heed::Error) -> StoreError {
    match e {
        heed::Error::Mdb(MdbError::MapFull) => StoreError::MapFull {
            path: path.to_path_buf(),
            map_size: 0,
        },
        heed::Error::Mdb(
            MdbError::Corrupted | MdbError::PageNotFound | MdbError::Invalid | MdbError::Panic,
        ) => corrupt(path, &format!("{action}: {e}")),
        source => StoreError::Lmdb {
            path: path.to_path_buf(),
            action,
            source,
        },
    }
}
