//! The simulated MongoDB replica set (`tidemark-testbed mongo`).
//!
//! Members listen on consecutive loopback addresses and speak the real wire
//! protocol through `tidemark-mongo` (OP_MSG, OP_COMPRESSED, legacy OP_QUERY
//! handshakes). One member is primary; it holds the data and writes the
//! oplog. See the crate README for where this differs from MongoDB.
//!
//! Layers, from the top; each imports only from the layers below it:
//! - `server`: the running set, member lifecycle, control routes, truth JSON
//! - `wire`: client connections
//! - `commands`: client commands
//! - `repl`: replication between members
//! - `state` (the shared state) and `scram` (SCRAM-SHA-256)
//! - `storage`: a member's data, the oplog, the ground-truth record
//! - `query`: filters, projections, order, updates
//! - `errors`: the `{ok: 0}` replies

pub mod commands;
pub mod errors;
pub mod query;
pub mod repl;
pub mod scram;
pub mod server;
pub mod sharded;
pub mod state;
pub mod storage;
pub mod wire;

pub use server::set::MongoReplicaSet;
pub use state::ReplSetConfig;
pub use storage::store::{MemberStore, OpTime};
/// The codec the testbed speaks, re-exported for tests that build raw messages.
pub use tidemark_mongo;
