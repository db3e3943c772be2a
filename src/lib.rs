//! tidemark: consistent point-in-time backup and restore for Cassandra and MongoDB,
//! built by watching their wire traffic.
//!
//! The crate follows the data flow of `ARCHITECTURE.md`, and its modules are listed
//! in that order: [`capture`] turns packets (or proxied bytes) into
//! [`capture::StreamEvent`]s, [`decode`] turns a flow's bytes into typed records with
//! the protocol crates, [`commit`] decides every write's outcome, [`tap`] runs that
//! pipeline into the [`store`]; [`snapshot`] copies a cluster (or its dumps) into the
//! store beside the log; [`version`] cuts point-in-time versions from the store
//! (the cell rules, the merge of log and snapshot), [`restore`] puts them back to use
//! (export); [`report`] and [`inspect`] print what was seen and kept. A module uses the
//! ones before it (and the store), never one after it.

pub mod capture;
pub mod commit;
pub mod decode;
pub mod demo;
pub mod inspect;
pub mod logging;
pub mod proxy;
pub mod repo;
pub mod report;
pub mod restore;
pub mod snapshot;
pub mod store;
pub mod tap;
pub mod version;
