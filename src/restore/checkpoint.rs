//! Where a restore keeps its place, so `--resume` continues it: one entry per
//! (version, target) in the store's `versions` database under `k \0 version \0 target \0`
//! (the target redacted: credentials are never stored). The content is the protocol
//! half's own (postcard), written after the writes it vouches for are acknowledged;
//! a restore that finishes removes its entry.
//!
//! Why the `versions` database: a checkpoint belongs to a version (deleting the
//! version deletes it), and a new named database would be a store format change.

use anyhow::{anyhow, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::store::{codec, Store};

fn key(version: &str, target: &str) -> Vec<u8> {
    // closed by a NUL so that clearing (a prefix delete) never reaches a target whose
    // name merely starts with this one
    [b"k\0", version.as_bytes(), b"\0", target.as_bytes(), b"\0"].concat()
}

/// The checkpoint of restoring `version` to `target` (redacted), if one is kept.
pub fn load<T: DeserializeOwned>(store: &Store, version: &str, target: &str) -> Result<Option<T>> {
    match store.version_entry(&key(version, target))? {
        None => Ok(None),
        Some(bytes) => codec::decode(&bytes).map(Some).map_err(|e| {
            anyhow!("the checkpoint of restoring {version:?} to {target} is unreadable: {e}")
        }),
    }
}

/// Keeps `state` as the checkpoint (replacing the previous one).
pub fn save<T: Serialize>(store: &Store, version: &str, target: &str, state: &T) -> Result<()> {
    let bytes = codec::encode(state).map_err(|e| anyhow!("encode restore checkpoint: {e}"))?;
    store.put_version_entries([(key(version, target), bytes)])?;
    Ok(())
}

/// Removes the checkpoint (the restore finished).
pub fn clear(store: &Store, version: &str, target: &str) -> Result<()> {
    store.delete_version_entries(&key(version, target))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    #[test]
    fn a_checkpoint_is_kept_per_version_and_target_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path(), &StoreOptions::default()).unwrap();
        save(&store, "v1", "cql://a:9042", &(3u64, "ks.t".to_string())).unwrap();
        save(&store, "v1", "cql://b:9042", &(5u64, "ks.u".to_string())).unwrap();
        let a: Option<(u64, String)> = load(&store, "v1", "cql://a:9042").unwrap();
        assert_eq!(a, Some((3, "ks.t".to_string())));
        clear(&store, "v1", "cql://a:9042").unwrap();
        assert_eq!(
            load::<(u64, String)>(&store, "v1", "cql://a:9042").unwrap(),
            None
        );
        let b: Option<(u64, String)> = load(&store, "v1", "cql://b:9042").unwrap();
        assert_eq!(b, Some((5, "ks.u".to_string())));
        // a prefix of another target's name is not that target
        assert_eq!(
            load::<(u64, String)>(&store, "v1", "cql://b:904").unwrap(),
            None
        );
        clear(&store, "v1", "cql://b:904").unwrap();
        assert!(load::<(u64, String)>(&store, "v1", "cql://b:9042")
            .unwrap()
            .is_some());
    }
}
