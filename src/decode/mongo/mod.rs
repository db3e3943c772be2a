//! MongoDB flows: messages to `message` records, writes to `write` records.
//!
//! - [`flow`]: the per-flow [`FlowDecoder`](crate::decode::seam::FlowDecoder),
//!   request/reply pairing, getlasterror and gap handling;
//! - [`statement`]: what a request changes, one `write` line per statement;
//! - [`outcome`]: ARCHITECTURE.md's MongoDB outcome rules on one reply;
//! - [`txn`]: statements held until their transaction commits or aborts;
//! - [`message`]: `message` lines; [`values`]: BSON as relaxed Extended JSON;
//! - [`sent`]: the command's `session` and `write_concern`, typed from its BSON;
//! - [`share`]: documents handed on as slices of their message's buffer;
//! - [`evidence`]: the typed extras of `write` lines (raw-BSON oplog-style operation,
//!   reply optime, error code) for the commit tracker;
//! - [`replication`]: `replication` records (commit points, member positions,
//!   topology, fetched oplog entries), which inspect does not print.

pub mod evidence;
pub mod flow;
pub mod message;
pub mod outcome;
pub mod replication;
pub mod sent;
pub mod share;
pub mod statement;
pub mod txn;
pub mod values;

pub use flow::MongoFlowDecoder;
/// The protocol crate, for tools (the benchmark) that build MongoDB traffic.
pub use tidemark_mongo;
