//! Where a version's row lies on the target's ring: the Murmur3 token of its
//! partition key. The driver's own partitioner (`scylla::routing::partitioner`)
//! hashes; this module only serializes the key as Cassandra does before hashing (one
//! component as its bytes; a composite key as `[u16 length][bytes][0]` per
//! component), from the key's canonical JSON through the same literal conversion the
//! snapshot import uses, so a row lands in the range the target serves it from.

use anyhow::{anyhow, Result};
use scylla::routing::partitioner::{Murmur3Partitioner, Partitioner, PartitionerHasher};
use serde_json::{Map, Value as Json};

use crate::snapshot::import::value::to_bytes;
use crate::snapshot::take::cql_schema::Table;

/// The token of the row keyed `key` (a canonical key, or a partition key) in `table`.
pub fn token(table: &Table, key: &Map<String, Json>) -> Result<i64> {
    let mut parts = Vec::with_capacity(table.partition_key.len());
    for c in &table.partition_key {
        let v = key
            .get(&c.name)
            .ok_or_else(|| anyhow!("the key has no partition key column {}", c.name))?;
        parts.push(to_bytes(v, &c.ty)?);
    }
    token_of_parts(&parts)
}

/// The Murmur3 token of a partition key's serialized components.
pub fn token_of_parts(parts: &[Vec<u8>]) -> Result<i64> {
    let mut h = Murmur3Partitioner.build_hasher();
    if let [one] = parts {
        h.write(one);
    } else {
        for p in parts {
            let len = u16::try_from(p.len())
                .map_err(|_| anyhow!("a partition key component of {} bytes", p.len()))?;
            h.write(&len.to_be_bytes());
            h.write(p);
            h.write(&[0]);
        }
    }
    Ok(h.finish().value())
}

/// The index of the `(start, end]` range holding `token` in `ranges` (sorted,
/// contiguous, covering the ring as `split_ring` makes them).
pub fn range_of(ranges: &[(i64, i64)], token: i64) -> usize {
    // Murmur3 never yields i64::MIN (the driver maps it to MAX).
    let t = if token == i64::MIN { i64::MAX } else { token };
    ranges
        .partition_point(|&(_, end)| end < t)
        .min(ranges.len().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors of Cassandra's `MurmurHash` (also in the Python driver's and
    /// Cassandra's unit tests), and the composite layout of a two-column key.
    #[test]
    fn tokens_are_cassandras() {
        assert_eq!(
            token_of_parts(&[b"123".to_vec()]).unwrap(),
            -7468325962851647638
        );
        assert_eq!(
            token_of_parts(&[b"hello world".to_vec()]).unwrap(),
            5998619086395760910
        );
        // [0 2 'a' 'b' 0][0 1 'c' 0] hashed whole.
        let mut h = Murmur3Partitioner.build_hasher();
        h.write(&[0, 2, b'a', b'b', 0, 0, 1, b'c', 0]);
        assert_eq!(
            token_of_parts(&[b"ab".to_vec(), b"c".to_vec()]).unwrap(),
            h.finish().value()
        );
    }

    #[test]
    fn ranges_hold_their_end_and_not_their_start() {
        let r = [(i64::MIN, -5), (-5, 10), (10, i64::MAX)];
        assert_eq!(range_of(&r, -5), 0);
        assert_eq!(range_of(&r, -4), 1);
        assert_eq!(range_of(&r, 10), 1);
        assert_eq!(range_of(&r, 11), 2);
        assert_eq!(range_of(&r, i64::MIN), 2);
        assert_eq!(range_of(&r, i64::MAX), 2);
    }
}
