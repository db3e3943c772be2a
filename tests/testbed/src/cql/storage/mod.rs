//! What a node stores and where: cells and their reconciliation, partitions, the
//! schema, Cassandra's value order, collection encoding, the Murmur3 partitioner,
//! the token ring and the clock. The bottom layer: nothing here imports from the
//! layers above (language, cluster, exec, wire, server).

pub mod cell;
pub mod clock;
pub mod collection;
pub mod murmur3;
pub mod order;
pub mod ring;
pub mod schema;
pub mod sstabledump;
pub mod store;
