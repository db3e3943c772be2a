//! Raw access to the `versions` database: keys and encoded values whose layout the
//! version module owns (`crate::version::stored`). The store only keeps the bytes,
//! writes them in bounded transactions and iterates them in key order.
//!
//! Why bounded transactions: a version of millions of rows written in one LMDB
//! transaction would hold the single writer (and its dirty pages) for as long as the
//! whole write takes; chunks let other work take turns and keep memory flat. A version
//! becomes visible only when its description is written, after its rows (see
//! `crate::version::stored`), so a crash in between leaves rows nobody lists, which the
//! next create of that name removes first.

use heed::types::Bytes;

use super::error::Result;
use super::open::Store;

/// Rows per write transaction.
const CHUNK: usize = 20_000;

impl Store {
    /// Versions are side tables: written by the appender or by a side writer
    /// ([`Store::open_side`]), never through a read-only handle.
    fn versions_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(super::StoreError::ReadOnly {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// Writes `(key, value)` pairs into `versions`, [`CHUNK`] per transaction.
    pub fn put_version_entries<I>(&self, entries: I) -> Result<u64>
    where
        I: IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    {
        self.versions_writable()?;
        let lmdb = self.lmdb("write versions");
        let db = self.dbs.versions.remap_types::<Bytes, Bytes>();
        let mut written = 0u64;
        let mut iter = entries.into_iter().peekable();
        while iter.peek().is_some() {
            let _gate = self.gate();
            let mut txn = self.env.write_txn().map_err(&lmdb)?;
            for (k, v) in iter.by_ref().take(CHUNK) {
                db.put(&mut txn, &k, &v).map_err(&lmdb)?;
                written += 1;
            }
            txn.commit().map_err(&lmdb)?;
        }
        Ok(written)
    }

    /// Deletes every entry of `versions` whose key starts with `prefix`; how many.
    pub fn delete_version_entries(&self, prefix: &[u8]) -> Result<u64> {
        self.versions_writable()?;
        let lmdb = self.lmdb("delete versions");
        let db = self.dbs.versions.remap_types::<Bytes, Bytes>();
        let mut deleted = 0u64;
        loop {
            let _gate = self.gate();
            let mut txn = self.env.write_txn().map_err(&lmdb)?;
            let mut n = 0usize;
            {
                let mut iter = db.prefix_iter_mut(&mut txn, prefix).map_err(&lmdb)?;
                while n < CHUNK {
                    match iter.next() {
                        Some(item) => {
                            item.map_err(&lmdb)?;
                            // SAFETY: no reference into the database is kept across
                            // the deletion (heed's requirement for `del_current`).
                            unsafe { iter.del_current() }.map_err(&lmdb)?;
                            n += 1;
                        }
                        None => break,
                    }
                }
            }
            txn.commit().map_err(&lmdb)?;
            deleted += n as u64;
            if n < CHUNK {
                return Ok(deleted);
            }
        }
    }

    /// The value under `key` in `versions`.
    pub fn version_entry(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let lmdb = self.lmdb("read versions");
        let db = self.dbs.versions.remap_types::<Bytes, Bytes>();
        let _gate = self.gate();
        let txn = self.env.read_txn().map_err(&lmdb)?;
        Ok(db.get(&txn, key).map_err(&lmdb)?.map(<[u8]>::to_vec))
    }

    /// Calls `f` with every entry of `versions` whose key starts with `prefix`, in key
    /// order, until it returns `Ok(false)` or an error. Runs inside one read
    /// transaction (a consistent view), so `f` must not write the store.
    pub fn for_each_version_entry<F, E>(
        &self,
        prefix: &[u8],
        mut f: F,
    ) -> std::result::Result<(), E>
    where
        F: FnMut(&[u8], &[u8]) -> std::result::Result<bool, E>,
        E: From<super::StoreError>,
    {
        let lmdb = self.lmdb("read versions");
        let db = self.dbs.versions.remap_types::<Bytes, Bytes>();
        let _gate = self.gate();
        let txn = self.env.read_txn().map_err(&lmdb)?;
        for item in db.prefix_iter(&txn, prefix).map_err(&lmdb)? {
            let (k, v) = item.map_err(&lmdb)?;
            if !f(k, v)? {
                break;
            }
        }
        Ok(())
    }
}
