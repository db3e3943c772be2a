//! Snapshots: a full copy of the cluster's tables and collections, read through
//! the real drivers and kept in the store next to the log, so a version at time T
//! can be cut as `reconcile(snapshot rows, log ≤ T)` (ARCHITECTURE.md, "Versions
//! and restore").
//!
//! [`model`] is what is stored, [`store`] reads and writes it, [`take`] reads a
//! cluster ([`take::cql`] through `scylla`, [`take::mongo`] through `mongodb`),
//! [`import`] makes one from files (node dumps with replica deduplication,
//! mongodump output), [`show`] prints `snapshot list` and `snapshot show`.

pub mod import;
pub mod model;
pub mod progress;
pub mod show;
pub mod source;
pub mod store;
pub mod take;

pub use model::{NamespaceInfo, PartInfo, PartRange, RowData, SnapshotInfo, SnapshotRow};
pub use take::{run as take, TakeOptions, TakeReport};
