//! Raw access to the snapshot tables (`snapshots`, `snapshot_rows`) for the snapshot
//! module, which owns their value layout: the store only moves bytes, and builds
//! the row keys so that they sort like the `by_key` index.
//!
//! Every write here is one short transaction, so a snapshot taken through
//! [`Store::open_side`] takes turns with a `tap` appending to the same store.

use std::ops::Bound;

use super::codec;
use super::error::{Result, StoreError};
use super::open::{invalid, Store};

/// Length of the snapshot id at the front of a `snapshot_rows` key.
const ID_LEN: usize = 8;

/// One row to store: namespace, canonical key, encoded value.
pub type RawRow<'a> = (&'a str, &'a str, &'a [u8]);

impl Store {
    fn side_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(StoreError::ReadOnly {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// `snapshot_rows` key: `id BE | codec::key_prefix(ns, key)`, so one snapshot's
    /// rows iterate by namespace, then key, in the order of the `by_key` index (a
    /// key too long for LMDB is stored as its digest, exactly as `by_key` does).
    pub fn snapshot_row_key(&self, id: u64, ns: &str, key: &str) -> Result<Vec<u8>> {
        codec::check_namespace(ns).map_err(|e| invalid(&self.path, &e))?;
        // `key_prefix` keeps room for a trailing seq; the id takes that room here.
        let mut part = Vec::new();
        codec::key_prefix(ns, key, self.env.max_key_size(), &mut part);
        let mut out = Vec::with_capacity(ID_LEN + part.len());
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&part);
        Ok(out)
    }

    /// Stores a new snapshot description under the next free id (one past the
    /// highest), computed inside the write transaction so two takers never share
    /// one; `encode` gets the id and returns the value.
    pub fn snapshot_insert_raw(
        &self,
        encode: impl FnOnce(u64) -> std::result::Result<Vec<u8>, String>,
    ) -> Result<u64> {
        self.side_writable()?;
        let lmdb = self.lmdb("add snapshot");
        let _gate = self.gate();
        let mut txn = self.env.write_txn().map_err(&lmdb)?;
        let id = match self.dbs.snapshots.last(&txn).map_err(&lmdb)? {
            Some((last, _)) => last + 1,
            None => 1,
        };
        let value = encode(id).map_err(|e| invalid(&self.path, &e))?;
        self.dbs
            .snapshots
            .put(&mut txn, &id, &value)
            .map_err(&lmdb)?;
        txn.commit().map_err(&lmdb)?;
        Ok(id)
    }

    /// Stores `rows` of snapshot `id` and, in the same transaction, its description
    /// `info` when given: a part's rows and the mark that the part is finished land
    /// together or not at all, which is what makes `--resume` exact.
    pub fn snapshot_put_raw(
        &self,
        id: u64,
        rows: &[RawRow<'_>],
        info: Option<&[u8]>,
    ) -> Result<()> {
        self.side_writable()?;
        let lmdb = self.lmdb("write snapshot");
        let keys = rows
            .iter()
            .map(|(ns, key, _)| self.snapshot_row_key(id, ns, key))
            .collect::<Result<Vec<_>>>()?;
        let _gate = self.gate();
        let mut txn = self.env.write_txn().map_err(&lmdb)?;
        for (k, (_, _, value)) in keys.iter().zip(rows) {
            self.dbs
                .snapshot_rows
                .put(&mut txn, k, value)
                .map_err(&lmdb)?;
        }
        if let Some(info) = info {
            self.dbs.snapshots.put(&mut txn, &id, info).map_err(&lmdb)?;
        }
        txn.commit().map_err(&lmdb)
    }

    /// Removes rows `(namespace, key)` of snapshot `id` (missing ones are no error).
    pub fn snapshot_delete_raw(&self, id: u64, rows: &[(&str, &str)]) -> Result<()> {
        self.side_writable()?;
        let lmdb = self.lmdb("delete snapshot rows");
        let keys = rows
            .iter()
            .map(|(ns, key)| self.snapshot_row_key(id, ns, key))
            .collect::<Result<Vec<_>>>()?;
        let _gate = self.gate();
        let mut txn = self.env.write_txn().map_err(&lmdb)?;
        for k in &keys {
            self.dbs.snapshot_rows.delete(&mut txn, k).map_err(&lmdb)?;
        }
        txn.commit().map_err(&lmdb)
    }

    /// Every snapshot description, by id.
    pub fn snapshot_infos_raw(&self) -> Result<Vec<(u64, Vec<u8>)>> {
        let lmdb = self.lmdb("list snapshots");
        let _gate = self.gate();
        let txn = self.env.read_txn().map_err(&lmdb)?;
        let mut out = Vec::new();
        for item in self.dbs.snapshots.iter(&txn).map_err(&lmdb)? {
            let (id, bytes) = item.map_err(&lmdb)?;
            out.push((id, bytes.to_vec()));
        }
        Ok(out)
    }

    /// The description of snapshot `id`.
    pub fn snapshot_info_raw(&self, id: u64) -> Result<Option<Vec<u8>>> {
        let lmdb = self.lmdb("read snapshot");
        let _gate = self.gate();
        let txn = self.env.read_txn().map_err(&lmdb)?;
        Ok(self
            .dbs
            .snapshots
            .get(&txn, &id)
            .map_err(&lmdb)?
            .map(<[u8]>::to_vec))
    }

    /// Up to `limit` rows of snapshot `id` (of namespace `ns` when given) whose key
    /// comes after `after` (a key returned earlier), as (key, value). Each call is
    /// its own read transaction, so a long iteration never pins old pages.
    pub fn snapshot_rows_raw(
        &self,
        id: u64,
        ns: Option<&str>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let lmdb = self.lmdb("read snapshot rows");
        let mut prefix = id.to_be_bytes().to_vec();
        if let Some(ns) = ns {
            let mut part = Vec::new();
            codec::ns_prefix(ns, &mut part);
            prefix.extend_from_slice(&part);
        }
        let _gate = self.gate();
        let txn = self.env.read_txn().map_err(&lmdb)?;
        let mut out = Vec::new();
        let start = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Included(&prefix[..]),
        };
        let range = (start, Bound::Unbounded);
        for item in self.dbs.snapshot_rows.range(&txn, &range).map_err(&lmdb)? {
            let (k, v) = item.map_err(&lmdb)?;
            if !k.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }
}
