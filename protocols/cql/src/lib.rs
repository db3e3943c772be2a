//! tidemark-cql: a sans-IO decoder and encoder for the Cassandra CQL native protocol,
//! versions 3 to 5. Feed bytes in any split, get typed messages out; errors are values.

pub mod connection;
pub mod error;
pub mod frame;
pub mod message;
pub mod statement;
pub mod text;
pub mod types;
pub mod wire;

/// The byte buffer and JSON crates of the public API, re-exported so users agree on versions.
pub use bytes;
pub use serde_json;

pub use connection::{Connection, Item};
pub use error::{CqlError, Direction, ErrorKind, ParseError, ParseErrorKind};
pub use frame::{Compression, DecoderConfig, Frame, FrameDecoder, FrameHeader, Framing, Opcode};
pub use message::{Envelope, Message};
pub use text::Text;
pub use types::{json_text, to_json, ColumnType, Value};
pub use wire::{Consistency, WireValue};
