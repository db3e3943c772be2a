//! Checksums of the v5 framing format (spec section 2.1, Cassandra's `Crc` class):
//! CRC24 (init 0x875060, polynomial 0x1974F0B, bytes taken least significant first)
//! over the segment header, and the standard zlib CRC32 over the payload, seeded by
//! first feeding the four bytes FA 2D 55 CA as Cassandra does.

const CRC24_INIT: u32 = 0x0087_5060;
const CRC24_POLY: u32 = 0x0197_4F0B;
const CRC32_SEED_BYTES: [u8; 4] = [0xFA, 0x2D, 0x55, 0xCA];

/// A 256-entry table for the CRC24, built at compile time.
const CRC24_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u32) << 16;
        let mut k = 0;
        while k < 8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= CRC24_POLY;
            }
            k += 1;
        }
        t[i] = crc & 0x00ff_ffff;
        i += 1;
    }
    t
};

/// CRC24 of the given header bytes (3 for uncompressed, 5 for LZ4 segment headers).
pub fn crc24(bytes: &[u8]) -> u32 {
    let mut crc = CRC24_INIT;
    for b in bytes {
        let idx = ((crc >> 16) ^ u32::from(*b)) & 0xff;
        crc = ((crc << 8) ^ CRC24_TABLE[idx as usize]) & 0x00ff_ffff;
    }
    crc
}

/// Cassandra's payload CRC32.
pub fn crc32(payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&CRC32_SEED_BYTES);
    h.update(payload);
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit-at-a-time form exactly as the spec describes it, to check the table.
    fn crc24_naive(bytes: &[u8]) -> u32 {
        let mut crc = CRC24_INIT;
        for b in bytes {
            crc ^= u32::from(*b) << 16;
            for _ in 0..8 {
                crc <<= 1;
                if crc & 0x0100_0000 != 0 {
                    crc ^= CRC24_POLY;
                }
            }
        }
        crc
    }

    #[test]
    fn table_matches_naive() {
        for v in [
            &[0u8, 0, 0][..],
            &[0x32, 0x00, 0x02],
            &[1, 2, 3, 4, 5],
            &[0xff; 5],
        ] {
            assert_eq!(crc24(v), crc24_naive(v) & 0xffffff);
        }
    }

    #[test]
    fn reference_values() {
        // A 50-byte self-contained segment header (other implementations' test vector).
        assert_eq!(
            crc24(&[0x32, 0x00, 0x02]).to_le_bytes()[..3],
            [0xa5, 0xff, 0xee]
        );
        assert_eq!(crc32(b"123456789"), 0xe2a2_61a7);
    }
}
