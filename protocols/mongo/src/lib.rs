//! tidemark-mongo: a sans-IO decoder and encoder for the MongoDB wire protocol.
//!
//! Feed bytes in any split, get typed messages out; errors are values with
//! stream offsets. Layers, bottom up:
//!
//! - [`Decoder`]: framing of one direction, gaps and resynchronisation.
//! - [`Message`]/[`Body`]: OP_MSG, OP_COMPRESSED (unwrapped), OP_QUERY,
//!   OP_REPLY, OP_INSERT, OP_UPDATE, OP_DELETE, OP_GET_MORE,
//!   OP_KILL_CURSORS, OP_COMMAND, OP_COMMANDREPLY; [`encode_message`] for
//!   the way back.
//! - [`Doc`]/[`DocSeq`]: validated BSON kept as shared `Bytes`, viewed as
//!   `&RawDocument`; nothing is copied into owned documents.
//! - [`model`]: commands (with write extraction), replies, sessions.
//! - [`repl`]: optimes, hello, heartbeats, oplog entries, `$replData`.
//! - [`Connection`]: both directions of a TCP flow, request/reply pairing.
//! - [`json`]: Extended JSON v2 relaxed rendering.

mod bsonval;
pub mod connection;
pub mod decoder;
pub mod doc;
pub mod error;
pub mod json;
pub mod limits;
pub mod message;
pub mod model;
pub mod repl;
mod resync;
mod summary;
pub mod wire;

/// The `bson` and `bytes` crates this API is expressed in, re-exported so
/// users (and the fuzz targets) get the same versions.
pub use bson;
pub use bytes;
pub use connection::{ConnEvent, Connection, Direction, Pairing, RequestSummary};
pub use decoder::Decoder;
pub use doc::{Doc, DocSeq};
pub use error::{ErrorKind, MongoError};
pub use limits::Limits;
pub use message::*;
pub use wire::decode::decode_message;
pub use wire::encode::encode_message;
