//! Fixed resource limits for the decoder.
//!
//! Lengths on the wire are attacker- or corruption-controlled; the decoder
//! only ever buffers bytes it has actually received, and rejects any length
//! field above these limits before trusting it.

/// Limits applied while decoding. The defaults follow mongod's own limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted BSON document. mongod allows user documents of 16 MiB
    /// and internal ones (oplog entries, command replies) 16 KiB larger.
    pub max_document: u32,
    /// Largest accepted message, compressed or not (mongod's `maxMessageSizeBytes`).
    pub max_message: u32,
    /// Deepest accepted nesting of documents and arrays.
    pub max_depth: u32,
}

impl Limits {
    /// mongod's `BSONObjMaxUserSize` (16 MiB).
    pub const BSON_USER_MAX: u32 = 16 * 1024 * 1024;
    /// mongod's `BSONObjMaxInternalSize`: user max plus 16 KiB of headroom.
    pub const BSON_INTERNAL_MAX: u32 = Self::BSON_USER_MAX + 16 * 1024;
    /// mongod's `MaxMessageSizeBytes` (48,000,000).
    pub const MESSAGE_MAX: u32 = 48_000_000;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_document: Self::BSON_INTERNAL_MAX,
            max_message: Self::MESSAGE_MAX,
            max_depth: 200,
        }
    }
}
