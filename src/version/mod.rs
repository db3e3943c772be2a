//! Versions: `version(T) = reconcile(snapshot, log ≤ T)` (ARCHITECTURE.md, "Versions").
//! This module holds the cell rules that reconcile is made of, on the cells' serialized
//! bytes exactly as Cassandra 5.0 (and 4.x) reconciles them, so node-local copies,
//! snapshot rows and logged mutations merge to what the cluster itself would return:
//!
//! - [`cell`]: the reconcile-level cell (timestamp, live / expiring / tombstone /
//!   counter, value bytes, cell path of complex columns);
//! - [`counter`]: counter contexts and the merge of their shards;
//! - [`reconcile`](mod@reconcile): one function per cell rule and their composition;
//! - [`deletion`]: partition, range, row and collection deletions and what they shadow.
//!
//! - [`build`]: `version create` — the log (and snapshot) read up to T, merged by
//!   [`cql_row`] (CQL rows), [`cql_shadow`] (partition and range deletions) and
//!   [`mongo_doc`] (MongoDB documents);
//! - [`join`]: which snapshot a version joins and the read-window rules;
//! - [`model`] and [`stored`]: what a version is and how the store keeps it;
//! - [`diff`]: two versions compared; [`render`]: rows as JSON.

pub mod build;
pub mod cell;
pub mod counter;
pub mod cql_row;
pub mod cql_shadow;
pub mod deletion;
pub mod diff;
pub mod join;
pub mod model;
pub mod mongo_doc;
pub mod reconcile;
pub mod render;
pub mod stored;

pub use cell::{
    Cell, CellKind, CellPath, InvalidDeletionTime, LocalDeletionTime, MAX_DELETION_TIME,
};
pub use counter::{CounterContext, CounterError, Shard, ShardKind};
pub use deletion::{
    active_deletion, reconcile_deletions, shadows, BoundKind, ByteOrder, ByteOrderKind, Clustering,
    ClusteringBound, ClusteringComparator, DeletionTime, RangeTombstone, RowDeletion,
};
pub use reconcile::{reconcile, reconcile_all, ReconcileError, Side};
