//! The layout of versions in the store's `versions` database:
//!
//! | key | value |
//! |---|---|
//! | `i \0 name` | [`VersionInfo`] |
//! | `r \0 name \0 namespace \0 key` | [`VersionRow`] |
//! | `d \0 name \0 namespace \0 key` | [`VersionDeletion`] (CQL; read by restore) |
//! | `k \0 name \0 target \0` | a restore's checkpoint (`crate::restore::checkpoint`) |
//!
//! Names, namespaces and keys never hold a NUL (names are checked here; namespaces
//! and keys are checked by the log), so the layout sorts rows by namespace then key
//! and a prefix finds one version's rows or one namespace of them. The description is
//! written after the rows: a version is listed only once it is whole.

use anyhow::{bail, Context};

use super::model::{VersionDeletion, VersionInfo, VersionRow};
use crate::store::{codec, Store};

/// Longest version name.
pub const MAX_NAME: usize = 128;

/// Checks a version name: 1..=128 characters of letters, digits, `-`, `_`, `.`, `:`.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if !ok {
        bail!("invalid version name {name:?}: use 1 to {MAX_NAME} letters, digits, '-', '_', '.', ':'");
    }
    Ok(())
}

fn info_key(name: &str) -> Vec<u8> {
    [b"i\0", name.as_bytes()].concat()
}

fn rows_prefix(name: &str) -> Vec<u8> {
    [b"r\0", name.as_bytes(), b"\0"].concat()
}

fn deletions_prefix(name: &str) -> Vec<u8> {
    [b"d\0", name.as_bytes(), b"\0"].concat()
}

fn checkpoints_prefix(name: &str) -> Vec<u8> {
    [b"k\0", name.as_bytes(), b"\0"].concat()
}

/// The key of one deletion entry.
pub fn deletion_key(name: &str, namespace: &str, key: &str) -> Vec<u8> {
    [
        deletions_prefix(name).as_slice(),
        namespace.as_bytes(),
        b"\0",
        key.as_bytes(),
    ]
    .concat()
}

/// The key of one row.
pub fn row_key(name: &str, namespace: &str, key: &str) -> Vec<u8> {
    [
        rows_prefix(name).as_slice(),
        namespace.as_bytes(),
        b"\0",
        key.as_bytes(),
    ]
    .concat()
}

/// The description of version `name`, if it exists.
pub fn info(store: &Store, name: &str) -> anyhow::Result<Option<VersionInfo>> {
    match store.version_entry(&info_key(name))? {
        None => Ok(None),
        Some(bytes) => {
            Ok(Some(codec::decode(&bytes).map_err(|e| {
                anyhow::anyhow!("version {name:?}: unreadable: {e}")
            })?))
        }
    }
}

/// Every version, in name order.
pub fn list(store: &Store) -> anyhow::Result<Vec<VersionInfo>> {
    let mut out = Vec::new();
    store.for_each_version_entry(b"i\0", |k, v| -> anyhow::Result<bool> {
        let info: VersionInfo = codec::decode(v).map_err(|e| {
            anyhow::anyhow!(
                "version {:?}: unreadable: {e}",
                String::from_utf8_lossy(&k[2..])
            )
        })?;
        out.push(info);
        Ok(true)
    })?;
    Ok(out)
}

/// Removes a version: its description first (it is no longer listed), then its rows.
pub fn delete(store: &Store, name: &str) -> anyhow::Result<()> {
    store.delete_version_entries(&info_key(name))?;
    clear_rows(store, name)?;
    Ok(())
}

/// Removes whatever rows, deletions and restore checkpoints a version of this name
/// left (an interrupted create, or a deleted version).
pub fn clear_rows(store: &Store, name: &str) -> anyhow::Result<u64> {
    let rows = store.delete_version_entries(&rows_prefix(name))?;
    store.delete_version_entries(&deletions_prefix(name))?;
    store.delete_version_entries(&checkpoints_prefix(name))?;
    Ok(rows)
}

/// Writes a version's deletions (before its description, like its rows); entries
/// with nothing in them are left out.
pub fn write_deletions<I>(store: &Store, name: &str, deletions: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = (String, String, VersionDeletion)>,
{
    let mut failed = None;
    let encoded = deletions
        .into_iter()
        .filter(|(_, _, d)| !d.is_empty())
        .map_while(|(ns, key, d)| match codec::encode(&d) {
            Ok(bytes) => Some((deletion_key(name, &ns, &key), bytes)),
            Err(e) => {
                failed = Some(e);
                None
            }
        });
    store.put_version_entries(encoded)?;
    if let Some(e) = failed {
        bail!("encode a deletion of version {name:?}: {e}");
    }
    Ok(())
}

/// Calls `f(namespace, key, deletion)` for every deletion entry of version `name`,
/// in namespace and key order, until it returns `Ok(false)`.
pub fn for_each_deletion<F>(store: &Store, name: &str, mut f: F) -> anyhow::Result<()>
where
    F: FnMut(&str, &str, VersionDeletion) -> anyhow::Result<bool>,
{
    let prefix = deletions_prefix(name);
    store.for_each_version_entry(&prefix, |k, v| -> anyhow::Result<bool> {
        let rest = &k[prefix.len()..];
        let Some(split) = rest.iter().position(|&b| b == 0) else {
            bail!("version {name:?}: a deletion key without a namespace");
        };
        let ns = std::str::from_utf8(&rest[..split]).context("deletion namespace")?;
        let key = std::str::from_utf8(&rest[split + 1..]).context("deletion key")?;
        let d: VersionDeletion = codec::decode(v)
            .map_err(|e| anyhow::anyhow!("version {name:?}: deletion {ns} {key}: {e}"))?;
        f(ns, key, d)
    })
}

/// Writes a version: its rows first, then its description.
pub fn write<I>(store: &Store, info: &VersionInfo, rows: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = (String, String, VersionRow)>,
{
    let name = info.name.clone();
    let mut failed = None;
    let encoded = rows
        .into_iter()
        .map_while(|(ns, key, row)| match codec::encode(&row) {
            Ok(bytes) => Some((row_key(&name, &ns, &key), bytes)),
            Err(e) => {
                failed = Some(e);
                None
            }
        });
    store.put_version_entries(encoded)?;
    if let Some(e) = failed {
        bail!("encode a row of version {name:?}: {e}");
    }
    let bytes =
        codec::encode(info).map_err(|e| anyhow::anyhow!("encode version description: {e}"))?;
    store.put_version_entries([(info_key(&info.name), bytes)])?;
    Ok(())
}

/// Calls `f(namespace, key, row)` for every row of version `name`, in namespace and
/// key order, until it returns `Ok(false)`.
pub fn for_each_row<F>(store: &Store, name: &str, mut f: F) -> anyhow::Result<()>
where
    F: FnMut(&str, &str, VersionRow) -> anyhow::Result<bool>,
{
    let prefix = rows_prefix(name);
    store.for_each_version_entry(&prefix, |k, v| -> anyhow::Result<bool> {
        let rest = &k[prefix.len()..];
        let Some(split) = rest.iter().position(|&b| b == 0) else {
            bail!("version {name:?}: a row key without a namespace");
        };
        let ns = std::str::from_utf8(&rest[..split]).context("row namespace")?;
        let key = std::str::from_utf8(&rest[split + 1..]).context("row key")?;
        let row: VersionRow = codec::decode(v)
            .map_err(|e| anyhow::anyhow!("version {name:?}: row {ns} {key}: {e}"))?;
        f(ns, key, row)
    })
}

/// [`for_each_row`] for one namespace only (the key prefix finds it: no other
/// namespace is read).
pub fn for_each_row_of<F>(
    store: &Store,
    name: &str,
    namespace: &str,
    mut f: F,
) -> anyhow::Result<()>
where
    F: FnMut(&str, VersionRow) -> anyhow::Result<bool>,
{
    let prefix = [rows_prefix(name).as_slice(), namespace.as_bytes(), b"\0"].concat();
    store.for_each_version_entry(&prefix, |k, v| -> anyhow::Result<bool> {
        let key = std::str::from_utf8(&k[prefix.len()..]).context("row key")?;
        let row: VersionRow = codec::decode(v)
            .map_err(|e| anyhow::anyhow!("version {name:?}: row {namespace} {key}: {e}"))?;
        f(key, row)
    })
}

/// One row of version `name`, if it holds it.
pub fn row(
    store: &Store,
    name: &str,
    namespace: &str,
    key: &str,
) -> anyhow::Result<Option<VersionRow>> {
    match store.version_entry(&row_key(name, namespace, key))? {
        None => Ok(None),
        Some(v) => Ok(Some(codec::decode(&v).map_err(|e| {
            anyhow::anyhow!("version {name:?}: row {namespace} {key}: {e}")
        })?)),
    }
}
