//! Error values for decoding and encoding.
//!
//! Every error carries the stream offset of the message it concerns, so a
//! tool can point at the exact byte in a capture (`error` JSON lines carry
//! `offset`). Decoding never panics: malformed input always ends up here.

use thiserror::Error;

/// A decoding or encoding failure, located in the byte stream of one direction.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("at stream offset {offset}: {kind}")]
pub struct MongoError {
    /// Offset (from the start of the direction's stream) of the first byte of
    /// the message that failed, or of the bytes that could not be framed.
    pub offset: u64,
    /// The `requestID` of the failing message, when its header was readable.
    pub request_id: Option<i32>,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl MongoError {
    /// Builds an error at `offset` without a request id.
    pub fn at(offset: u64, kind: ErrorKind) -> Self {
        MongoError {
            offset,
            request_id: None,
            kind,
        }
    }

    /// Same error with the request id attached.
    pub fn with_request_id(mut self, id: i32) -> Self {
        self.request_id = Some(id);
        self
    }
}

/// The reasons a message can be rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ErrorKind {
    /// The `messageLength` field is below the header size or above the limit;
    /// the message boundary is lost and the decoder resynchronises.
    #[error("message length {length} outside 16..={max}")]
    InvalidLength { length: i64, max: u64 },
    /// The opcode is not one this decoder knows; the message was skipped.
    #[error("unknown opcode {opcode} (message of {length} bytes skipped)")]
    UnknownOpcode { opcode: i32, length: u32 },
    /// A field runs past the end of the message.
    #[error("truncated {what}: needs {needed} bytes, {available} left")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    /// Bytes remain after the last field of a message that has a fixed shape.
    #[error("{count} trailing bytes after {what}")]
    TrailingBytes { what: &'static str, count: usize },
    /// A BSON document failed validation.
    #[error("invalid BSON in {what}: {reason}")]
    InvalidBson { what: &'static str, reason: String },
    /// A document is larger than the configured document limit.
    #[error("{what} document of {size} bytes exceeds limit {max}")]
    DocumentTooLarge {
        what: &'static str,
        size: u64,
        max: u64,
    },
    /// A C string is not terminated inside the message, or not UTF-8.
    #[error("invalid cstring in {what}")]
    InvalidCString { what: &'static str },
    /// OP_MSG flag bits in the required range (0..16) that this decoder does not know.
    #[error("OP_MSG has unknown required flag bits {flags:#010x}")]
    UnknownRequiredFlags { flags: u32 },
    /// OP_MSG section kind other than 0 and 1.
    #[error("OP_MSG section kind {kind} is unknown")]
    UnknownSectionKind { kind: u8 },
    /// OP_MSG without a kind-0 body, or with more than one.
    #[error("OP_MSG must have exactly one body section, found {count}")]
    BodySectionCount { count: usize },
    /// Declared checksum does not match the CRC-32C of the message.
    #[error("OP_MSG checksum mismatch: declared {declared:#010x}, computed {computed:#010x}")]
    ChecksumMismatch { declared: u32, computed: u32 },
    /// OP_COMPRESSED names a compressor id this decoder does not know.
    #[error("unknown compressor id {id}")]
    UnknownCompressor { id: u8 },
    /// OP_COMPRESSED wraps something that cannot be wrapped (another OP_COMPRESSED, unknown opcode).
    #[error("OP_COMPRESSED cannot wrap opcode {opcode}")]
    InvalidOriginalOpcode { opcode: i32 },
    /// The decompressor failed or produced a size other than the declared one.
    #[error("{compressor} decompression failed: {reason}")]
    Decompression {
        compressor: &'static str,
        reason: String,
    },
    /// An encoder input that cannot be put on the wire.
    #[error("cannot encode: {reason}")]
    Encode { reason: String },
}
