//! MongoDB flows: messages to `message` records, writes to `write` records.

use crate::inspect::decoder::DecoderRegistry;

/// Registers the MongoDB flow decoder.
pub fn register(_reg: &mut DecoderRegistry) {}
