//! Replication between members: elections, heartbeats, the secondary's sync
//! and rollback, the sync source's oplog queries, member-to-member
//! connections, and the `hello` reply drivers discover the set from.

pub mod election;
pub mod heartbeat;
pub mod hello;
pub mod peer;
pub mod rollback;
pub mod source;
pub mod sync;
