//! The simulated MongoDB replica set (`tidemark-testbed mongo`).
//!
//! Members listen on consecutive loopback addresses and speak the real wire
//! protocol through `tidemark-mongo` (OP_MSG, OP_COMPRESSED, legacy OP_QUERY
//! handshakes). One member is primary; it holds the data and writes the
//! oplog. See the crate README for where this differs from MongoDB.

pub mod admin;
pub mod admin_index;
pub mod commands;
pub mod conn;
pub mod control;
pub mod cursor;
pub mod diff;
pub mod election;
pub mod famod;
pub mod find;
pub mod heartbeat;
pub mod hello;
pub mod index;
pub mod lifecycle;
pub mod match_ops;
pub mod matcher;
pub mod oplog;
pub mod order;
pub mod peer;
pub mod projection;
pub mod repl;
pub mod rollback;
pub mod scram;
pub mod session;
pub mod set;
pub mod set_truth;
pub mod store;
pub mod sync;
pub mod truth;
pub mod txn;
pub mod update;
pub mod update_array;
pub mod update_path;
pub mod write;

pub use set::{MongoReplicaSet, ReplSetConfig};
pub use store::{MemberStore, OpTime};
/// The codec the testbed speaks, re-exported for tests that build raw messages.
pub use tidemark_mongo;
