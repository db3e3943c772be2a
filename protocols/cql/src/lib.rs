//! tidemark-cql: a sans-IO decoder and encoder for the Cassandra CQL native protocol,
//! versions 3 to 5. Feed bytes in any split, get typed messages out; errors are values.

pub mod error;
pub mod frame;
pub mod message;
pub mod statement;
pub mod text;
pub mod types;
pub mod wire;

pub use error::{CqlError, Direction, ErrorKind, ParseError, ParseErrorKind};
pub use frame::{Compression, Frame, FrameHeader, Opcode};
pub use message::{Envelope, Message};
pub use text::Text;
pub use types::{json_text, to_json, ColumnType, Value};
pub use wire::{Consistency, WireValue};
