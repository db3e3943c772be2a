//! Snapshots in the store: their descriptions in `snapshots`, their rows in
//! `snapshot_rows` (`id | namespace | key`, sorted like the log's `by_key` index),
//! postcard-encoded ([`super::model`]).

use crate::store::codec;
use crate::store::{Result, Store, StoreError};

use super::model::{SnapshotInfo, SnapshotRow};

/// Rows read per read transaction by [`rows`].
const ROWS_PER_READ: usize = 512;

fn corrupt(store: &Store, what: String) -> StoreError {
    StoreError::Corrupt {
        path: store.path().to_path_buf(),
        reason: what,
    }
}

fn invalid(store: &Store, what: String) -> StoreError {
    StoreError::Invalid {
        path: store.path().to_path_buf(),
        reason: what,
    }
}

/// Adds a new snapshot; its id is assigned here (`info.id` is overwritten) and
/// returned.
pub fn insert_info(store: &Store, info: &SnapshotInfo) -> Result<u64> {
    store.snapshot_insert_raw(|id| {
        let mut info = info.clone();
        info.id = id;
        codec::encode(&info)
    })
}

/// Rewrites the description of snapshot `info.id`.
pub fn put_info(store: &Store, info: &SnapshotInfo) -> Result<()> {
    let value = codec::encode(info).map_err(|e| invalid(store, e))?;
    store.snapshot_put_raw(info.id, &[], Some(&value))
}

/// Stores rows of snapshot `id`, and with them (same transaction) `info` when given.
pub fn put_rows(
    store: &Store,
    id: u64,
    rows: &[SnapshotRow],
    info: Option<&SnapshotInfo>,
) -> Result<()> {
    let values = rows
        .iter()
        .map(codec::encode)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| invalid(store, e))?;
    let raw: Vec<_> = rows
        .iter()
        .zip(&values)
        .map(|(r, v)| (r.namespace.as_str(), r.key.as_str(), &v[..]))
        .collect();
    let info = info
        .map(codec::encode)
        .transpose()
        .map_err(|e| invalid(store, e))?;
    store.snapshot_put_raw(id, &raw, info.as_deref())
}

fn decode_info(store: &Store, id: u64, bytes: &[u8]) -> Result<SnapshotInfo> {
    codec::decode(bytes).map_err(|e| corrupt(store, format!("snapshot {id}: {e}")))
}

/// Every snapshot, by id.
pub fn list_snapshots(store: &Store) -> Result<Vec<SnapshotInfo>> {
    store
        .snapshot_infos_raw()?
        .iter()
        .map(|(id, bytes)| decode_info(store, *id, bytes))
        .collect()
}

/// Snapshot `id`, if there is one.
pub fn snapshot(store: &Store, id: u64) -> Result<Option<SnapshotInfo>> {
    store
        .snapshot_info_raw(id)?
        .map(|b| decode_info(store, id, &b))
        .transpose()
}

/// The rows of snapshot `id` (only `namespace`'s when given), sorted by namespace
/// then key in the `by_key` index's order (length-prefixed namespace, then the key;
/// keys too long for LMDB sort by their digest, as in `by_key`). Read in batches of
/// short read transactions, so a tap can keep appending meanwhile.
pub fn rows<'s>(
    store: &'s Store,
    id: u64,
    namespace: Option<&str>,
) -> impl Iterator<Item = Result<SnapshotRow>> + 's {
    let namespace = namespace.map(str::to_string);
    let mut after: Option<Vec<u8>> = None;
    let mut batch = std::collections::VecDeque::new();
    let mut done = false;
    std::iter::from_fn(move || {
        if batch.is_empty() && !done {
            match store.snapshot_rows_raw(id, namespace.as_deref(), after.as_deref(), ROWS_PER_READ)
            {
                Ok(b) => {
                    done = b.len() < ROWS_PER_READ;
                    after = b.last().map(|(k, _)| k.clone());
                    batch.extend(b);
                }
                Err(e) => {
                    done = true;
                    return Some(Err(e));
                }
            }
        }
        let (key, value) = batch.pop_front()?;
        Some(
            codec::decode::<SnapshotRow>(&value)
                .map_err(|e| corrupt(store, format!("snapshot {id} row {}: {e}", hex(&key)))),
        )
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
