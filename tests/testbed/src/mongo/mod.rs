//! The simulated MongoDB replica set (`tidemark-testbed mongo`).
//!
//! Members listen on consecutive loopback addresses and speak the real wire
//! protocol through `tidemark-mongo` (OP_MSG, OP_COMPRESSED, legacy OP_QUERY
//! handshakes). One member is primary; it holds the data and writes the
//! oplog. See the crate README for where this differs from MongoDB.

pub mod commands;
pub mod conn;
pub mod control;
pub mod election;
pub mod heartbeat;
pub mod hello;
pub mod lifecycle;
pub mod matcher;
pub mod oplog;
pub mod peer;
pub mod repl;
pub mod rollback;
pub mod set;
pub mod store;
pub mod sync;
pub mod truth;
pub mod update;
pub mod write;

pub use set::{MongoReplicaSet, ReplSetConfig};
pub use store::{MemberStore, OpTime};
/// The codec the testbed speaks, re-exported for tests that build raw messages.
pub use tidemark_mongo;
