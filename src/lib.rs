//! tidemark: consistent point-in-time backup and restore for Cassandra and MongoDB,
//! built by watching their wire traffic.
//!
//! The crate follows the data flow of `ARCHITECTURE.md`: [`capture`] turns packets
//! (or proxied bytes) into [`capture::StreamEvent`]s, the protocol crates decode them,
//! and [`inspect`] reports what was seen.

pub mod capture;
pub mod commit;
pub mod decode;
pub mod inspect;
pub mod logging;
pub mod report;
pub mod store;
