//! tidemark-cql: a sans-IO decoder and encoder for the Cassandra CQL native protocol,
//! versions 3 to 5. Feed bytes in any split, get typed messages out; errors are values.

pub mod statement;
