//! tidemark-cql: a sans-IO decoder and encoder for the Cassandra CQL native protocol,
//! versions 3 to 5. Feed bytes in any split, get typed messages out; errors are values.
//!
//! * [`Connection`]: one TCP flow. `feed(dir, bytes)`, `gap(dir, len)`, then pull
//!   [`Item`]s (`dir`, [`Frame`], decoded [`Envelope`]) with `next()`. It learns the
//!   version and compression from STARTUP and follows the v5 switch to segment framing.
//! * [`FrameDecoder`]: one direction, if you manage the state yourself.
//! * [`message`]: every request and response body; [`frame::encode_frame`] and
//!   [`frame::segment::encode_envelopes`] encode.
//! * [`types`]: [`ColumnType`] (from metadata), [`Value`] (`Value::decode(&ty, &bytes)`),
//!   and Cassandra's `SELECT JSON` rendering ([`to_json`], [`json_text`]).
//!
//! ```
//! use tidemark_cql::{Connection, Direction, Message};
//! use tidemark_cql::frame::{encode_message, Compression};
//!
//! let mut conn = Connection::new();
//! conn.feed(Direction::ServerToClient, &encode_message(4, 0, Message::Ready, Compression::None));
//! let item = conn.next().unwrap().unwrap();
//! assert_eq!(item.envelope.message, Message::Ready);
//! ```

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
