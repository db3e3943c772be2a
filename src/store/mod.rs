//! The store: tidemark's versioned log and the state needed to resume, in LMDB
//! through heed (ARCHITECTURE.md, "Store").
//!
//! One directory (mode 0700) holds one LMDB environment (files 0600) with these named
//! databases:
//!
//! | database | key | value |
//! |---|---|---|
//! | `log` | seq (u64 BE) | [`Envelope`] (postcard) |
//! | `by_key` | `u8 len, namespace, key part, seq BE` | () |
//! | `writes` | write id (opaque bytes) | [`Undecided`] |
//! | `prepared` | `u8 len, statement id, node` | [`PreparedStatement`] |
//! | `schema` | namespace | [`NamespaceSchema`] |
//! | `flows` | capture source id | [`Checkpoint`] |
//! | `versions` | layout of `crate::version::stored` | rows and descriptions of versions |
//! | `snapshots` | snapshot id (u64 BE) | snapshot description (layout: `crate::snapshot`) |
//! | `snapshot_rows` | `id BE, u8 len, namespace, key part` | snapshot row (layout: `crate::snapshot`) |
//! | `meta` | name | format version, next seq, tidemark, gaps, policy, where the log starts after a drop |
//!
//! Writes are grouped: [`Store::append_batch_with`] commits mutations, their index
//! entries and everything that must move with them (checkpoints, undecided writes,
//! tidemark) in one transaction, fsynced per group by default ([`Durability`]). One
//! process writes a store at a time (a lock file); any number may read it.
//!
//! ```no_run
//! use tidemark::store::{Store, StoreOptions, Query};
//! # fn main() -> Result<(), tidemark::store::StoreError> {
//! let store = Store::open("/var/lib/tidemark", &StoreOptions::default().read_only())?;
//! let reader = store.reader()?;
//! for envelope in reader.query(&Query::all().namespace("shop.orders"))? {
//!     println!("{}", envelope?.seq);
//! }
//! # Ok(()) }
//! ```

pub mod codec;
mod dbs;
mod drop;
pub mod envelope;
mod error;
pub(crate) mod legacy_line;
mod lock;
mod log;
mod meta;
mod open;
mod options;
mod reader;
mod records;
mod side;
mod state;
mod upgrade;
pub use upgrade::decode_envelope;
mod versions;

pub use drop::{DropReport, Dropped};
pub use envelope::{
    Acknowledgement, BatchKind, BatchRef, Cell, CellKind, CellOp, ClusteringBound, CqlEvidence,
    CqlPayload, DdlChange, Deletion, Envelope, Evidence, EvidenceDetail, InDoubtReason, LineTree,
    LineValues, MongoEvidence, MongoOp, MongoOpKind, Mutation, OpTime, Outcome, OutcomeKind,
    Payload, Protocol, RangeDeletion, Source, StoredLine, WriteConcern, WriteLine, WriteOp,
};
pub use error::{Result, StoreError};
pub use lock::LOCK_FILE;
pub use log::TxnExtras;
pub use meta::FORMAT_VERSION;
pub use open::{Store, DATA_FILE, LMDB_LOCK_FILE};
pub use options::{Durability, StoreOptions, DEFAULT_MAP_SIZE};
pub use reader::{Envelopes, Query, Reader};
pub use records::{
    Checkpoint, ClusteringColumn, Column, Gap, NamespaceSchema, Policy, PreparedStatement,
    Replication, Undecided,
};
/// Byte strings inside envelopes (clustering bounds).
pub use serde_bytes::ByteBuf;
pub use side::RawRow;

/// What the commit tracker hands to [`Store::append_batch`]: a mutation before it
/// has a seq.
pub type NewMutation = Mutation;
