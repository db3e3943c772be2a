//! The simulated Cassandra cluster (`tidemark-testbed cql`).
// Errors here are protocol ERROR bodies sent back to the client: cold path, and
// boxing them would only add noise at every `?`.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod cell;
pub mod cluster;
pub mod collection;
pub mod conn;
pub mod consistency;
pub mod ddl;
pub mod ddl_exec;
pub mod exec;
pub mod json;
pub mod lex;
pub mod literal;
pub mod literal_text;
pub mod lwt;
pub mod lwt_batch;
pub mod modify;
pub mod murmur3;
pub mod mutation;
pub mod order;
pub mod paging;
pub mod project;
pub mod read;
pub mod ring;
pub mod rowop;
pub mod schema;
pub mod select;
pub mod storage;
pub mod system;
pub mod write;

pub use cluster::{ClusterConfig, CqlCluster, LogicalCell};
pub use storage::CellRecord;
