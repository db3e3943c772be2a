//! Message-level codec: one framed message in, one [`crate::Message`] out, and back.

pub(crate) mod compression;
pub mod decode;
pub mod encode;
pub(crate) mod reader;
pub(crate) mod redact;
