//! Errors as values. Two levels: [`ParseError`] for a malformed message body (position
//! relative to the body, so it can be produced without knowing where the frame came from)
//! and [`CqlError`] for anything on a byte stream (absolute offset and direction), which
//! wraps body errors once the frame's place in the stream is known.

use std::fmt;

/// Which way a frame travels on a connection. The CQL version byte carries the same bit
/// (0x80 = response), which the decoders use to reject frames seen on the wrong side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Requests, client to server.
    ClientToServer,
    /// Responses and events, server to client.
    ServerToClient,
}

impl Direction {
    /// The short name used in tidemark's JSON output (`c2s` / `s2c`).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ClientToServer => "c2s",
            Direction::ServerToClient => "s2c",
        }
    }

    /// The other direction of the same connection.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::ClientToServer => Direction::ServerToClient,
            Direction::ServerToClient => Direction::ClientToServer,
        }
    }

    /// True for the response direction (version byte bit 0x80 set).
    pub fn is_response(self) -> bool {
        self == Direction::ServerToClient
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong inside a message body or a serialized value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// The input ended before the element was complete.
    #[error("truncated: needed {needed} bytes, {available} available")]
    Truncated { needed: u64, available: u64 },
    /// A length field was negative where that is not allowed, or otherwise impossible.
    #[error("invalid length {0}")]
    InvalidLength(i64),
    /// A string was not valid UTF-8 (or ASCII where ASCII is required).
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// An enumerated field had a value the protocol does not define.
    #[error("unknown {0}")]
    UnknownTag(u32),
    /// A value had the wrong size for its type (e.g. an int that is not 4 bytes).
    #[error("wrong size {0}")]
    WrongSize(usize),
    /// Nesting too deep (types or values); protects the stack.
    #[error("nesting too deep")]
    TooDeep,
    /// Something else the protocol forbids.
    #[error("{0}")]
    Invalid(&'static str),
}

/// A malformed body or value: what was being read, where (byte position inside the body
/// or value), and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at position {pos}: {kind}")]
pub struct ParseError {
    /// The protocol element being read, as the spec names it (e.g. `"[long string]"`).
    pub what: &'static str,
    /// Byte position relative to the start of the body or value.
    pub pos: usize,
    pub kind: ParseErrorKind,
}

impl ParseError {
    pub fn new(what: &'static str, pos: usize, kind: ParseErrorKind) -> Self {
        ParseError { what, pos, kind }
    }
}

/// What went wrong on a byte stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// A frame header announced a protocol version this crate does not speak.
    #[error("unsupported protocol version byte 0x{0:02x}")]
    UnsupportedVersion(u8),
    /// A frame header is not plausible (wrong direction bit, unknown opcode, ...).
    #[error("invalid frame header: {0}")]
    BadHeader(&'static str),
    /// A length field exceeds the configured cap; nothing was allocated for it.
    #[error("frame length {len} exceeds limit {limit}")]
    FrameTooLarge { len: u64, limit: u64 },
    /// A v5 segment header failed its CRC24.
    #[error("v5 segment header CRC24 mismatch")]
    SegmentHeaderCrc,
    /// A v5 segment payload failed its CRC32.
    #[error("v5 segment payload CRC32 mismatch")]
    SegmentPayloadCrc,
    /// A v5 multi-segment envelope was malformed (e.g. a self-contained segment arrived
    /// while a large envelope was incomplete).
    #[error("v5 segment sequence: {0}")]
    SegmentSequence(&'static str),
    /// Decompressing a frame body or segment failed.
    #[error("decompression ({0}) failed: {1}")]
    Decompress(&'static str, &'static str),
    /// The decoder dropped bytes to find a frame boundary again (after a gap, a
    /// mid-stream start, or an invalid header). Messages in them are lost.
    #[error("skipped {len} bytes to resynchronize")]
    Skipped { len: u64 },
    /// A message body did not parse.
    #[error("{opcode} body: {source}")]
    Body {
        opcode: &'static str,
        #[source]
        source: ParseError,
    },
}

/// An error on a byte stream, with the absolute byte offset (counting bytes lost in gaps)
/// in that direction's stream where the offending frame or segment starts, so a report
/// can point into a capture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}offset {offset}: {kind}", dir.map(|d| format!("{d} ")).unwrap_or_default())]
pub struct CqlError {
    pub dir: Option<Direction>,
    pub offset: u64,
    pub kind: ErrorKind,
}

impl CqlError {
    pub fn new(dir: Option<Direction>, offset: u64, kind: ErrorKind) -> Self {
        CqlError { dir, offset, kind }
    }
}
