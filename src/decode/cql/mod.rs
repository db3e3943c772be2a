//! CQL flows: frames to `message` records, writes to `write` records.

use crate::inspect::decoder::DecoderRegistry;

/// Registers the CQL flow decoder.
pub fn register(_reg: &mut DecoderRegistry) {}
