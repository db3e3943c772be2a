//! v5 framing (spec section 2.1–2.2): segments with a little-endian header carrying the
//! payload length and the self-contained flag, protected by a CRC24, then the payload
//! and its CRC32. With LZ4 negotiated the header is 8 bytes and also carries the
//! uncompressed length (0 = stored uncompressed). A self-contained segment holds whole
//! envelopes; a large envelope is split over consecutive non-self-contained segments.

use super::compression::lz4_block;
use super::crc::{crc24, crc32};
use crate::error::ErrorKind;

/// Largest payload one segment can carry (17-bit length).
pub const MAX_SEGMENT_PAYLOAD: usize = (1 << 17) - 1;
/// Header sizes.
pub const HEADER_LEN_PLAIN: usize = 6;
pub const HEADER_LEN_LZ4: usize = 8;
/// Trailer (payload CRC32) size.
pub const TRAILER_LEN: usize = 4;

/// A parsed segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Bytes of payload on the wire (compressed length for LZ4 segments).
    pub payload_len: usize,
    /// LZ4 segments: the decompressed length, 0 if the payload is stored as is.
    pub uncompressed_len: usize,
    pub self_contained: bool,
    /// True for the 8-byte LZ4 header form.
    pub lz4: bool,
}

impl SegmentHeader {
    pub fn header_len(&self) -> usize {
        if self.lz4 {
            HEADER_LEN_LZ4
        } else {
            HEADER_LEN_PLAIN
        }
    }

    /// Header + payload + trailer.
    pub fn total_len(&self) -> usize {
        self.header_len() + self.payload_len + TRAILER_LEN
    }

    /// Parses a header if `b` holds enough bytes; `Ok(None)` means "need more". A CRC
    /// mismatch is an error: the caller decides whether to resynchronize.
    pub fn parse(b: &[u8], lz4: bool) -> Result<Option<SegmentHeader>, ErrorKind> {
        if lz4 {
            let Some(h) = b.first_chunk::<HEADER_LEN_LZ4>() else {
                return Ok(None);
            };
            let mut v = [0u8; 8];
            v[..5].copy_from_slice(&h[..5]);
            let word = u64::from_le_bytes(v);
            let crc = u32::from_le_bytes([h[5], h[6], h[7], 0]);
            if crc24(&h[..5]) != crc {
                return Err(ErrorKind::SegmentHeaderCrc);
            }
            Ok(Some(SegmentHeader {
                payload_len: (word & 0x1ffff) as usize,
                uncompressed_len: ((word >> 17) & 0x1ffff) as usize,
                self_contained: word & (1 << 34) != 0,
                lz4: true,
            }))
        } else {
            let Some(h) = b.first_chunk::<HEADER_LEN_PLAIN>() else {
                return Ok(None);
            };
            let word = u32::from_le_bytes([h[0], h[1], h[2], 0]);
            let crc = u32::from_le_bytes([h[3], h[4], h[5], 0]);
            if crc24(&h[..3]) != crc {
                return Err(ErrorKind::SegmentHeaderCrc);
            }
            Ok(Some(SegmentHeader {
                payload_len: (word & 0x1ffff) as usize,
                uncompressed_len: 0,
                self_contained: word & (1 << 17) != 0,
                lz4: false,
            }))
        }
    }

    /// Checks the payload CRC and returns the (decompressed) payload. `seg` must hold
    /// the whole segment (`total_len` bytes).
    pub fn payload(&self, seg: &[u8]) -> Result<Vec<u8>, ErrorKind> {
        let start = self.header_len();
        let end = start + self.payload_len;
        let (Some(payload), Some(trailer)) = (
            seg.get(start..end),
            seg.get(end..end + TRAILER_LEN)
                .and_then(|t| t.first_chunk::<4>()),
        ) else {
            return Err(ErrorKind::SegmentSequence(
                "segment shorter than its header says",
            ));
        };
        if crc32(payload) != u32::from_le_bytes(*trailer) {
            return Err(ErrorKind::SegmentPayloadCrc);
        }
        if self.lz4 && self.uncompressed_len > 0 {
            lz4_block(payload, self.uncompressed_len)
        } else {
            Ok(payload.to_vec())
        }
    }
}

/// Appends one segment carrying `payload` (at most [`MAX_SEGMENT_PAYLOAD`] bytes; longer
/// input is truncated — use [`encode_envelopes`], which splits). With `lz4`, the payload
/// is compressed when that makes it smaller, and stored as is otherwise.
pub fn encode_segment(out: &mut Vec<u8>, payload: &[u8], self_contained: bool, lz4: bool) {
    let payload = &payload[..payload.len().min(MAX_SEGMENT_PAYLOAD)];
    let sc = u64::from(self_contained);
    if lz4 {
        let compressed = lz4_flex::block::compress(payload);
        let (body, ulen): (&[u8], usize) =
            if compressed.len() < payload.len() && compressed.len() <= MAX_SEGMENT_PAYLOAD {
                (&compressed, payload.len())
            } else {
                (payload, 0)
            };
        let word = (body.len() as u64) | ((ulen as u64) << 17) | (sc << 34);
        let h = word.to_le_bytes();
        out.extend_from_slice(&h[..5]);
        out.extend_from_slice(&crc24(&h[..5]).to_le_bytes()[..3]);
        out.extend_from_slice(body);
        out.extend_from_slice(&crc32(body).to_le_bytes());
    } else {
        let word = (payload.len() as u32) | ((sc as u32) << 17);
        let h = word.to_le_bytes();
        out.extend_from_slice(&h[..3]);
        out.extend_from_slice(&crc24(&h[..3]).to_le_bytes()[..3]);
        out.extend_from_slice(payload);
        out.extend_from_slice(&crc32(payload).to_le_bytes());
    }
}

/// Wraps encoded envelopes (each a complete 9-byte header + body) in segments the way
/// Cassandra does: consecutive small envelopes share self-contained segments; an
/// envelope too big for one segment gets its own run of non-self-contained segments.
pub fn encode_envelopes<E: AsRef<[u8]>>(envelopes: &[E], lz4: bool) -> Vec<u8> {
    encode_envelopes_with(envelopes, lz4, MAX_SEGMENT_PAYLOAD)
}

/// [`encode_envelopes`] with a smaller segment payload limit, so tests can exercise
/// multi-segment envelopes with small messages.
pub fn encode_envelopes_with<E: AsRef<[u8]>>(envelopes: &[E], lz4: bool, max: usize) -> Vec<u8> {
    let max = max.clamp(1, MAX_SEGMENT_PAYLOAD);
    let mut out = Vec::new();
    let mut batch: Vec<u8> = Vec::new();
    for env in envelopes {
        let env = env.as_ref();
        if env.len() > max {
            if !batch.is_empty() {
                encode_segment(&mut out, &batch, true, lz4);
                batch.clear();
            }
            for chunk in env.chunks(max) {
                encode_segment(&mut out, chunk, false, lz4);
            }
            continue;
        }
        if batch.len() + env.len() > max {
            encode_segment(&mut out, &batch, true, lz4);
            batch.clear();
        }
        batch.extend_from_slice(env);
    }
    if !batch.is_empty() {
        encode_segment(&mut out, &batch, true, lz4);
    }
    out
}
