//! Cassandra's Murmur3 token hash (`Murmur3Partitioner`), bit for bit.
//!
//! Cassandra's `MurmurHash.hash3_x64_128` differs from the reference MurmurHash3 in
//! one place: the tail bytes are read as *signed* Java bytes and sign-extended before
//! shifting. Drivers copy that quirk (the token-aware routing of every driver depends
//! on it), so the testbed must too, or drivers would route to the wrong replicas.

const C1: u64 = 0x87c3_7b91_1142_53d5;
const C2: u64 = 0x4cf5_ad43_2745_937f;

fn fmix(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The 128-bit hash `(h1, h2)` of `key` with seed 0, as Cassandra computes it.
pub fn hash3_x64_128(key: &[u8]) -> (u64, u64) {
    let len = key.len();
    let nblocks = len / 16;
    let (mut h1, mut h2) = (0u64, 0u64);
    for i in 0..nblocks {
        let b = &key[i * 16..i * 16 + 16];
        let mut k1 = u64::from_le_bytes(b[..8].try_into().unwrap_or_default());
        let mut k2 = u64::from_le_bytes(b[8..].try_into().unwrap_or_default());
        k1 = k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 ^= k1;
        h1 = h1
            .rotate_left(27)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);
        k2 = k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 ^= k2;
        h2 = h2
            .rotate_left(31)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(0x3849_5ab5);
    }
    let tail = &key[nblocks * 16..];
    // Java `(long) byte`: sign extension, the Cassandra quirk.
    let sx = |i: usize| tail[i] as i8 as i64 as u64;
    let (mut k1, mut k2) = (0u64, 0u64);
    let rem = tail.len();
    for i in (8..rem).rev() {
        k2 ^= sx(i) << ((i - 8) * 8);
    }
    if rem > 8 {
        k2 = k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 ^= k2;
    }
    for i in (0..rem.min(8)).rev() {
        k1 ^= sx(i) << (i * 8);
    }
    if rem > 0 {
        k1 = k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 ^= k1;
    }
    h1 ^= len as u64;
    h2 ^= len as u64;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    (h1, h2)
}

/// The Murmur3Partitioner token of a serialized partition key: the first half of the
/// hash as a signed long, with `i64::MIN` (the ring's minimum token, which no key may
/// have) mapped to `i64::MAX`.
pub fn token(key: &[u8]) -> i64 {
    let t = hash3_x64_128(key).0 as i64;
    if t == i64::MIN {
        i64::MAX
    } else {
        t
    }
}

/// Serializes partition key components the way Cassandra does before hashing: one
/// component as is; several as `CompositeType` (each: u16 length, bytes, 0 end byte).
pub fn partition_key_bytes(components: &[&[u8]]) -> Vec<u8> {
    if let [one] = components {
        return one.to_vec();
    }
    let mut out = Vec::new();
    for c in components {
        let len = u16::try_from(c.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&c[..usize::from(len)]);
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Vectors from the Python driver's `cassandra.murmur3.murmur3` (its C extension
    /// mirrors Cassandra's `MurmurHash`); the first five are also in the driver's and
    /// Cassandra's own unit tests. They cover every tail length class, including bytes
    /// >= 0x80 in the tail, where the sign-extension quirk shows.
    #[test]
    fn matches_cassandra_vectors() {
        let cases: &[(&str, i64)] = &[
            ("313233", -7468325962851647638),
            (
                "00ff10fa9900ff10fa9900ff10fa9900ff10fa9900ff10fa9900ff10fa9900ff10fa9900ff10fa9900ff10fa9900ff10fa99",
                5837342703291459765,
            ),
            ("fefefefefefefefe", -8927430733708461935),
            ("1010101010101010", 1446172840243228796),
            ("68656c6c6f20776f726c64", 5998619086395760910),
            (
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e",
                377690909827715220,
            ),
            ("808182838485868788898a8b8c8d8e", 63099782945186636),
        ];
        for (k, want) in cases {
            assert_eq!(token(&hex(k)), *want, "key {k}");
        }
    }

    #[test]
    fn composite_key_layout() {
        let k = partition_key_bytes(&[b"ab", b"c"]);
        assert_eq!(k, vec![0, 2, b'a', b'b', 0, 0, 1, b'c', 0]);
        assert_eq!(partition_key_bytes(&[b"xyz"]), b"xyz".to_vec());
    }
}
