//! The `meta` database: format version, seq counter, tidemark, gaps, policy.
//!
//! Keys are short ASCII names; gaps are many, so each has its own key
//! (`gap/` + big-endian number) instead of one growing list.

use heed::types::Bytes;
use heed::{Database, RoTxn, RwTxn};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::codec;

/// On-disk format of this code. Bump on any incompatible change of a key layout or
/// of a postcard-encoded type (anything but appending fields or variants).
pub const FORMAT_VERSION: u32 = 6;

/// The oldest format whose envelopes decode with this code's layout as they are:
/// older ones are rewritten when a writer opens the store. Format 6 replaced the
/// write line's JSON text by the typed line, so every older store is rewritten.
/// (Format 5 had only appended a variant, `LineValues::CqlValues`, to format 4.)
pub const SAME_LAYOUT_SINCE: u32 = 6;

/// The oldest format this code still reads (format 2: CQL cells without `op`; format
/// 3: mutations without `line_values` and `ddl`; format 4: no CQL kept values;
/// formats 2 to 5: the write line as JSON text). A
/// writer converts such a store in
/// place when it opens it (see `upgrade.rs`).
pub const OLDEST_READABLE: u32 = 2;

/// `u32`: the format the store was written in.
pub const FORMAT: &[u8] = b"format_version";
/// `String`: the tidemark version that created the store.
pub const CREATED_BY: &[u8] = b"created_by";
/// `u64`: the seq the next append gets.
pub const NEXT_SEQ: &[u8] = b"next_seq";
/// `u64`: the tidemark, ns since the epoch (absent until first set).
pub const TIDEMARK: &[u8] = b"tidemark";
/// `Policy`.
pub const POLICY: &[u8] = b"policy";
/// `u64`: the number the next gap gets.
pub const NEXT_GAP: &[u8] = b"next_gap";
/// `Dropped`: where the local log starts after a drop (absent: it was never
/// dropped; see `drop.rs`).
pub const DROPPED: &[u8] = b"dropped";
/// Prefix of gap records: `gap/` + u64 BE.
pub const GAP_PREFIX: &[u8] = b"gap/";

/// Reads and decodes one meta value; `Err` holds a decode message.
pub fn get<T: DeserializeOwned>(
    db: &Database<'_, Bytes, Bytes>,
    txn: &RoTxn<'_>,
    key: &[u8],
) -> heed::Result<Result<Option<T>, String>> {
    Ok(match db.get(txn, key)? {
        None => Ok(None),
        Some(bytes) => codec::decode(bytes)
            .map(Some)
            .map_err(|e| format!("meta `{}`: {e}", String::from_utf8_lossy(key))),
    })
}

/// Encodes and writes one meta value.
pub fn put<T: Serialize>(
    db: &Database<'_, Bytes, Bytes>,
    txn: &mut RwTxn<'_>,
    key: &[u8],
    value: &T,
) -> heed::Result<()> {
    let bytes = codec::encode(value).map_err(|e| heed::Error::Encoding(e.into()))?;
    db.put(txn, key, &bytes)
}

/// The key of gap number `n`.
pub fn gap_key(n: u64) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..4].copy_from_slice(GAP_PREFIX);
    key[4..].copy_from_slice(&n.to_be_bytes());
    key
}
