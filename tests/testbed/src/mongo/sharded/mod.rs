//! A simulated sharded MongoDB cluster (`tidemark-testbed mongo-sharded`):
//! config servers, shards and `mongos` routers, each made of the testbed's
//! replica sets and speaking the wire protocol to each other. See the crate
//! README ("sharded") for what differs from MongoDB.
//!
//! Modules, one job each:
//! - [`cluster`]: starting/stopping it, addresses, settings
//! - [`router`]: the `mongos` (wire, commands, routed writes)
//! - [`chunks`]: shard keys, chunk maps and their versions
//! - [`hash`]: hashed shard keys (MongoDB's md5-based hash)
//! - [`config`]: the config servers and the catalog
//! - [`shard`]: a shard's command hook (versions, critical section, donor commands)
//! - [`migration`]: `moveChunk` and the range deleter
//! - [`txn`]: cross-shard transactions on the shards (prepare, coordinator)
//! - [`balancer`]: moves chunks by itself
//! - [`truth`]: ground truth (logical state, raw shard state, chunk-map history)
//! - [`control`]: the control endpoint's routes
//! - [`client`]: the wire client the cluster's processes use between each other

pub mod balancer;
pub mod chunks;
pub mod client;
pub mod cluster;
pub mod config;
pub mod control;
pub mod hash;
pub mod migration;
pub mod router;
pub mod shard;
pub mod truth;
pub mod txn;

pub use cluster::{MongoShardedCluster, ShardedConfig};
