//! tidemark-testbed: simulated Cassandra cluster and MongoDB replica set speaking the
//! real wire protocols, for tests, benchmarks and the demo. Never for production.

pub mod control;
pub mod cql;
pub mod mongo;

pub use cql::{ClusterConfig, CqlCluster};
pub use mongo::{MongoReplicaSet, ReplSetConfig};
