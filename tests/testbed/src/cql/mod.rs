//! The simulated Cassandra cluster (`tidemark-testbed cql`).
//!
//! Layers, from the top; each imports only from the layers below it:
//! - `server`: the running cluster, node membership, control routes
//! - `wire`: client connections and authentication
//! - `exec`: statement execution
//! - `cluster`: the shared state, write coordinator, consistency, faults, hints
//! - `language`: the CQL the testbed parses itself
//! - `storage`: cells, partitions, schema, value order, ring, clock
//! - `errors`: protocol ERROR bodies
// Errors here are protocol ERROR bodies sent back to the client: cold path, and
// boxing them would only add noise at every `?`.
#![allow(clippy::result_large_err)]

pub mod cluster;
pub mod errors;
pub mod exec;
pub mod language;
pub mod server;
pub mod storage;
pub mod wire;

pub use cluster::faults::Fault;
pub use cluster::state::ClusterConfig;
pub use server::cluster::{CqlCluster, LogicalCell};
pub use server::membership::MembershipError;
pub use storage::store::CellRecord;
