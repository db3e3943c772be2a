//! A simulated sharded MongoDB cluster (`tidemark-testbed mongo-sharded`):
//! config servers, shards and `mongos` routers, each made of the testbed's
//! replica sets and speaking the wire protocol to each other. See the crate
//! README ("sharded") for what differs from MongoDB.
//!
//! Layers, from the top; each imports only from the layers below it:
//! - [`server`]: the running cluster (start/stop, addresses), its ground
//!   truth (logical state, raw shard state, chunk-map history) and the
//!   control endpoint's routes
//! - [`router`]: the `mongos` (wire, commands, routed writes, transactions)
//! - the rest, one job each:
//! - [`state`]: what routers, migrations, the balancer and coordinators share
//! - [`chunks`]: shard keys, chunk maps and their versions
//! - [`hash`]: hashed shard keys (MongoDB's md5-based hash)
//! - [`config`]: the config servers and the catalog
//! - [`shard`]: a shard's command hook (versions, critical section, donor commands)
//! - [`migration`]: `moveChunk` and the range deleter
//! - [`txn`]: cross-shard transactions on the shards (prepare, coordinator)
//! - [`balancer`]: moves chunks by itself
//! - [`client`]: the wire client the cluster's processes use between each other

pub mod balancer;
pub mod chunks;
pub mod client;
pub mod config;
pub mod hash;
pub mod migration;
pub mod router;
pub mod server;
pub mod shard;
pub mod state;
pub mod txn;

pub use server::cluster::{MongoShardedCluster, ShardedConfig};
pub use server::control;
