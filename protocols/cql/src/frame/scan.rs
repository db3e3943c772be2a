//! Recognizing frame boundaries in arbitrary bytes, for flows picked up mid-stream and
//! after gaps. A v3/v4 header is only believed when the frame it announces is followed
//! by another plausible header (or ends exactly at the end of the data and its body
//! parses completely); a v5 segment header when its CRC24 matches and, once the
//! payload is there, its CRC32 too. So garbage is skipped, never emitted.

use super::compression::decompress;
use super::crc::crc32;
use super::header::{flags, FrameHeader, HEADER_LEN};
use super::segment::{SegmentHeader, TRAILER_LEN};
use crate::error::Direction;
use crate::message::Envelope;
use bytes::Bytes;

/// What the bytes at one position look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A confirmed boundary.
    Yes,
    /// Not a boundary.
    No,
    /// Plausible, but more bytes are needed to confirm.
    Maybe,
}

/// Header check used while scanning: strict, and consistent with what is known.
pub fn plausible_header(
    b: &[u8],
    dir: Direction,
    version: Option<u8>,
    max_len: u32,
) -> Option<FrameHeader> {
    let h = FrameHeader::parse(b.first_chunk::<HEADER_LEN>()?, max_len).ok()?;
    if h.direction != dir || version.is_some_and(|v| v != h.version) {
        return None;
    }
    Some(h)
}

/// Does a v3/v4 (or unframed v5) frame start at `b[0]`?
pub fn legacy_at(b: &[u8], dir: Direction, version: Option<u8>, max_len: u32) -> Verdict {
    if b.len() < HEADER_LEN {
        return Verdict::Maybe;
    }
    let Some(h) = plausible_header(b, dir, version, max_len) else {
        return Verdict::No;
    };
    let end = HEADER_LEN + h.length as usize;
    match b.len() {
        n if n >= end + HEADER_LEN => {
            match plausible_header(&b[end..], dir, Some(h.version), max_len) {
                Some(_) => Verdict::Yes,
                None => Verdict::No,
            }
        }
        n if n == end => {
            if body_parses_exactly(&h, &b[HEADER_LEN..end], max_len) {
                Verdict::Yes
            } else {
                Verdict::No
            }
        }
        _ => Verdict::Maybe,
    }
}

/// True if the body decodes as the header's message and nothing is left over.
fn body_parses_exactly(h: &FrameHeader, body: &[u8], max_len: u32) -> bool {
    let body = if h.has_flag(flags::COMPRESSION) && h.version < 5 {
        match decompress(None, body, max_len) {
            Ok((b, _)) => b,
            Err(_) => return false,
        }
    } else {
        body.to_vec()
    };
    let len = body.len();
    matches!(Envelope::decode_counted(h, Bytes::from(body)), Ok((_, n)) if n == len)
}

/// Does a v5 segment start at `b[0]`? `lz4` selects the header form.
pub fn segment_at(b: &[u8], lz4: bool) -> Verdict {
    match SegmentHeader::parse(b, lz4) {
        Ok(None) => Verdict::Maybe,
        Err(_) => Verdict::No,
        Ok(Some(h)) => {
            let total = h.total_len();
            if b.len() < total {
                return Verdict::Maybe;
            }
            let start = h.header_len();
            let end = start + h.payload_len;
            let (Some(p), Some(t)) = (
                b.get(start..end),
                b.get(end..end + TRAILER_LEN)
                    .and_then(|t| t.first_chunk::<4>()),
            ) else {
                return Verdict::No;
            };
            if crc32(p) == u32::from_le_bytes(*t) {
                Verdict::Yes
            } else {
                Verdict::No
            }
        }
    }
}
