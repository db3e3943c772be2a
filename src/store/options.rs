//! How a store is opened: map size, durability, read-only.

/// Default memory map size: 64 GiB.
///
/// LMDB reserves address space, not disk: `data.mdb` grows only as pages are used
/// (and is sparse on ext4/xfs), so a large default costs nothing. When a store
/// outgrows it, appends fail with [`crate::store::StoreError::MapFull`]; reopen with a
/// larger [`StoreOptions::map_size`]. LMDB keeps the larger of the configured size and
/// the size recorded in the file, so a store never shrinks below what it holds.
pub const DEFAULT_MAP_SIZE: usize = 64 << 30;

/// When an append is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync at the end of every transaction (every group commit). A committed
    /// group survives power loss.
    #[default]
    SyncPerGroup,
    /// LMDB `MDB_NOSYNC`: the OS writes pages back when it likes. A process crash
    /// loses nothing, a power loss can lose the last groups (never corrupts them).
    /// For tests and benchmarks.
    NoSync,
}

/// Options for [`crate::store::Store::create`] and [`crate::store::Store::open`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Memory map size in bytes; rounded up to a multiple of the page size.
    pub map_size: usize,
    /// Sync policy for write transactions.
    pub durability: Durability,
    /// Open for reading only: no writer lock is taken, so `tidemark log` and
    /// `status` can read a store while `tap` or `proxy` writes it.
    pub read_only: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            map_size: DEFAULT_MAP_SIZE,
            durability: Durability::SyncPerGroup,
            read_only: false,
        }
    }
}

impl StoreOptions {
    /// Options for tests and benchmarks: no fsync, a 1 GiB map.
    pub fn for_tests() -> Self {
        StoreOptions {
            map_size: 1 << 30,
            durability: Durability::NoSync,
            read_only: false,
        }
    }

    /// Same options, read-only.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }
}
