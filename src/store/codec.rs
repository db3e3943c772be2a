//! Byte layouts: value encoding (postcard) and the composite keys of the indexes.
//!
//! Keys are built so that LMDB's plain byte order gives the iteration order the
//! queries need, and so that no key is a prefix of another key's family: every
//! variable-length part is length-prefixed.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use twox_hash::XxHash3_128;

use super::envelope::{Envelope, Mutation, OutcomeKind};

/// Longest namespace the store accepts, in bytes. Cassandra limits keyspace and table
/// names to 48 characters each and MongoDB namespaces to 255 bytes, so every real
/// namespace fits the one-byte length prefix of the index keys.
pub const MAX_NAMESPACE_LEN: usize = 255;

/// Longest opaque id (undecided write id, prepared statement id), in bytes; keeps
/// every key well inside LMDB's 511-byte limit.
pub const MAX_ID_LEN: usize = 255;

const KEY_LITERAL: u8 = 0;
const KEY_DIGEST: u8 = 1;
const SEQ_LEN: usize = 8;

/// Encodes a value with postcard, appending to `out`.
pub fn encode_into<T: Serialize>(value: &T, mut out: Vec<u8>) -> Result<Vec<u8>, String> {
    postcard::serialize_with_flavor(value, AppendVec(&mut out)).map_err(|e| e.to_string())?;
    Ok(out)
}

/// A postcard output that appends to a caller's `Vec`: a slice is one
/// `extend_from_slice` and a byte one `push`. (`to_extend` pushed slices byte by byte,
/// a tenth of a CQL tap's time; `to_io` goes through `io::Write` for every varint
/// byte.)
struct AppendVec<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for AppendVec<'_> {
    type Output = ();

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Encodes a value with postcard.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    encode_into(value, Vec::new())
}

/// Decodes a whole value; trailing bytes are an error, since they mean the value was
/// written by another layout.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(format!("{} trailing bytes", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}

/// Appends the stored form of `Envelope { seq, mutation }` to `out` without
/// cloning the mutation: postcard writes a struct as its fields in order.
pub fn encode_envelope_into(
    seq: u64,
    mutation: &Mutation,
    out: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let out = encode_into(&seq, out)?;
    encode_into(mutation, out)
}

/// Decodes a stored envelope.
pub fn decode_envelope(bytes: &[u8]) -> Result<Envelope, String> {
    decode(bytes)
}

/// The leading fields of a stored envelope, borrowed: enough to filter by time,
/// namespace, key and outcome without decoding cells or documents.
#[derive(Debug, Deserialize)]
pub struct Header<'a> {
    /// Log position.
    pub seq: u64,
    /// Commit time, ns since the epoch.
    pub commit_time: u64,
    /// Source node and flow (decoded only to skip over it).
    #[allow(dead_code)]
    pub source: super::envelope::Source,
    /// Namespace.
    pub namespace: &'a str,
    /// Canonical key.
    pub key: &'a str,
    /// Statement kind (decoded only to skip over it).
    #[allow(dead_code)]
    pub op: super::envelope::WriteOp,
    /// Outcome.
    pub outcome: super::envelope::Outcome,
}

impl Header<'_> {
    /// The outcome kind.
    pub fn outcome_kind(&self) -> OutcomeKind {
        self.outcome.kind()
    }
}

/// Decodes the header of a stored envelope.
pub fn decode_header(bytes: &[u8]) -> Result<Header<'_>, String> {
    postcard::take_from_bytes::<Header<'_>>(bytes)
        .map(|(h, _)| h)
        .map_err(|e| e.to_string())
}

/// Decodes only `(seq, commit_time)`, the first two fields of a stored envelope.
pub fn decode_commit_time(bytes: &[u8]) -> Result<u64, String> {
    postcard::take_from_bytes::<(u64, u64)>(bytes)
        .map(|((_, t), _)| t)
        .map_err(|e| e.to_string())
}

/// Checks a namespace can be indexed.
pub fn check_namespace(ns: &str) -> Result<(), String> {
    if ns.is_empty() {
        return Err("empty namespace".into());
    }
    if ns.len() > MAX_NAMESPACE_LEN {
        return Err(format!(
            "namespace of {} bytes (at most {MAX_NAMESPACE_LEN})",
            ns.len()
        ));
    }
    Ok(())
}

/// `by_key` prefix of every entry of a namespace: `u8 len | ns`.
pub fn ns_prefix(ns: &str, out: &mut Vec<u8>) {
    out.clear();
    out.push(ns.len() as u8);
    out.extend_from_slice(ns.as_bytes());
}

/// `by_key` prefix of every entry of one key of a namespace:
/// `u8 len | ns | 0 | u16 len | key` when the whole entry fits in `max_key_size`,
/// else `u8 len | ns | 1 | xxh3-128(key)`. Digested keys can collide in theory, so
/// readers compare the envelope's key before returning it.
pub fn key_prefix(ns: &str, key: &str, max_key_size: usize, out: &mut Vec<u8>) {
    ns_prefix(ns, out);
    let literal = out.len() + 1 + 2 + key.len() + SEQ_LEN;
    if key.len() <= usize::from(u16::MAX) && literal <= max_key_size {
        out.push(KEY_LITERAL);
        out.extend_from_slice(&(key.len() as u16).to_be_bytes());
        out.extend_from_slice(key.as_bytes());
    } else {
        out.push(KEY_DIGEST);
        let digest = XxHash3_128::oneshot(key.as_bytes());
        out.extend_from_slice(&digest.to_be_bytes());
    }
}

/// Whether [`key_prefix`] stores `key` as a digest.
pub fn key_is_digested(prefix: &[u8], ns: &str) -> bool {
    prefix.get(1 + ns.len()) == Some(&KEY_DIGEST)
}

/// Full `by_key` entry: a key prefix followed by the big-endian seq, so one key's
/// entries iterate in log order.
pub fn push_seq(prefix: &mut Vec<u8>, seq: u64) {
    prefix.extend_from_slice(&seq.to_be_bytes());
}

/// The seq at the end of a `by_key` entry.
pub fn seq_of_entry(entry: &[u8]) -> Option<u64> {
    let start = entry.len().checked_sub(SEQ_LEN)?;
    let bytes: [u8; SEQ_LEN] = entry[start..].try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// `prepared` key: `u8 len | statement id | node` (`ip:port` text), so all nodes'
/// copies of one id are adjacent.
pub fn prepared_key(id: &[u8], node: Option<&str>) -> Result<Vec<u8>, String> {
    check_id(id)?;
    let mut out = Vec::with_capacity(1 + id.len() + 48);
    out.push(id.len() as u8);
    out.extend_from_slice(id);
    if let Some(node) = node {
        out.extend_from_slice(node.as_bytes());
    }
    Ok(out)
}

/// Checks an opaque id's length (non-empty, at most [`MAX_ID_LEN`]).
pub fn check_id(id: &[u8]) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(format!("id of {} bytes (1..={MAX_ID_LEN})", id.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 511;

    fn entry(ns: &str, key: &str, seq: u64) -> Vec<u8> {
        let mut out = Vec::new();
        key_prefix(ns, key, MAX, &mut out);
        push_seq(&mut out, seq);
        out
    }

    #[test]
    fn key_prefixes_are_prefix_free_across_keys_and_namespaces() {
        let mut p = Vec::new();
        key_prefix("ks.t", "a", MAX, &mut p);
        assert!(!entry("ks.t", "ab", 1).starts_with(&p));
        assert!(entry("ks.t", "a", 1).starts_with(&p));
        ns_prefix("ks.t", &mut p);
        assert!(!entry("ks.tt", "a", 1).starts_with(&p));
        assert!(entry("ks.t", "zzz", 9).starts_with(&p));
    }

    #[test]
    fn long_keys_switch_to_a_digest_that_fits() {
        let long = "k".repeat(MAX);
        let e = entry("ks.t", &long, 7);
        assert!(e.len() <= MAX);
        assert!(key_is_digested(&e, "ks.t"));
        assert!(!key_is_digested(&entry("ks.t", "short", 7), "ks.t"));
        assert_eq!(seq_of_entry(&e), Some(7));
        // The largest literal key fits exactly.
        let fits = "k".repeat(MAX - (1 + 4 + 1 + 2 + 8));
        let e = entry("ks.t", &fits, 1);
        assert_eq!(e.len(), MAX);
        assert!(!key_is_digested(&e, "ks.t"));
    }

    #[test]
    fn entries_of_one_key_sort_by_seq() {
        assert!(entry("ks.t", "a", 2) < entry("ks.t", "a", 256));
        assert_eq!(seq_of_entry(&entry("ks.t", "a", u64::MAX)), Some(u64::MAX));
        assert_eq!(seq_of_entry(&[1, 2]), None);
    }

    #[test]
    fn decode_refuses_trailing_and_truncated_bytes() {
        let mut bytes = encode(&(1u64, "x".to_string())).unwrap();
        assert_eq!(decode::<(u64, String)>(&bytes).unwrap(), (1, "x".into()));
        bytes.push(0);
        assert!(decode::<(u64, String)>(&bytes)
            .unwrap_err()
            .contains("trailing"));
        assert!(decode::<(u64, String)>(&bytes[..1]).is_err());
        assert!(decode_header(&[0xff; 3]).is_err());
        assert!(decode_commit_time(&[]).is_err());
    }

    #[test]
    fn namespace_and_id_limits() {
        assert!(check_namespace("").is_err());
        assert!(check_namespace(&"n".repeat(MAX_NAMESPACE_LEN)).is_ok());
        assert!(check_namespace(&"n".repeat(MAX_NAMESPACE_LEN + 1)).is_err());
        assert!(check_id(&[]).is_err());
        assert!(prepared_key(&[1; 16], Some("10.0.0.1:9042")).is_ok());
        assert!(prepared_key(&[1; 256], None).is_err());
    }
}
