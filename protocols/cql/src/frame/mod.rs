//! Framing: frame (envelope) headers, v3/v4 body compression, v5 segments with their
//! CRCs, and the incremental, resynchronizing [`FrameDecoder`].

mod compression;
pub mod crc;
mod decoder;
mod header;
mod scan;
pub mod segment;

pub use compression::{compress, decompress, Compression};
pub use decoder::{DecoderConfig, FrameDecoder, Framing};
pub use header::{flags, FrameHeader, Opcode, HEADER_LEN, MAX_FRAME_LEN};

use crate::error::{CqlError, Direction, ErrorKind};
use crate::message::{Envelope, Message};
use bytes::Bytes;

/// One frame (v3/v4) or envelope (v5) taken off a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: FrameHeader,
    /// The body, decompressed.
    pub body: Bytes,
    /// Absolute offset in its direction's stream (bytes of gaps included) of the frame
    /// start, or for v5 of the segment in which the envelope starts.
    pub offset: u64,
    /// The body travelled compressed (v3/v4 compression flag, or an LZ4 v5 segment).
    pub compressed: bool,
    /// The frame came inside v5 segments.
    pub segmented: bool,
}

impl Frame {
    /// Decodes the message. Errors carry the frame's stream offset.
    pub fn envelope(&self) -> Result<Envelope, CqlError> {
        Envelope::decode(&self.header, self.body.clone()).map_err(|source| {
            CqlError::new(
                Some(self.header.direction),
                self.offset,
                ErrorKind::Body {
                    opcode: self.header.opcode.name(),
                    source,
                },
            )
        })
    }
}

/// Encodes one complete v3/v4 frame (or unframed v5 envelope): header and body,
/// compressing the body with `compression` (STARTUP is never compressed; `None` leaves
/// the compression flag clear). `extra_flags` may add tracing (requests) or beta.
pub fn encode_frame(
    version: u8,
    stream: i16,
    envelope: &Envelope,
    compression: Compression,
    extra_flags: u8,
) -> Vec<u8> {
    let op = envelope.message.opcode();
    let (body, mut fl) = envelope.encode_body(version, extra_flags);
    let body = if compression != Compression::None && op != Opcode::Startup && version < 5 {
        fl |= flags::COMPRESSION;
        compress(compression, &body)
    } else {
        body
    };
    let header = FrameHeader {
        version,
        direction: op.direction(),
        flags: fl,
        stream,
        opcode: op,
        length: u32::try_from(body.len()).unwrap_or(u32::MAX),
    };
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(&body);
    out
}

/// Convenience: a frame for a bare message.
pub fn encode_message(
    version: u8,
    stream: i16,
    message: Message,
    compression: Compression,
) -> Vec<u8> {
    encode_frame(version, stream, &Envelope::new(message), compression, 0)
}

/// Which way the frame goes, from the opcode.
pub fn direction_of(op: Opcode) -> Direction {
    op.direction()
}
