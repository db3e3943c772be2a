//! The commit tracker (ARCHITECTURE.md, "Semantics"): turns decoded `write` lines and
//! replication evidence into decided mutations in commit order, and advances the
//! tidemark.
//!
//! The decoders (`src/decode/`) already pair requests with responses and apply the
//! per-response outcome rules (CQL `[applied]`, WriteTimeout by write type, Mongo
//! write concern and `writeErrors`, transactions). What needs more than one response
//! is decided here:
//!
//! - **Dedupe** ([`identity`]): the same mutation seen twice (a driver retry on
//!   another coordinator, speculative execution, two taps overlapping, a retryable
//!   Mongo write) is logged once; a later commit resolves an earlier in-doubt copy.
//! - **Mongo `pending`** ([`replication`]): a `w:1` write waits for the majority
//!   commit point (`$replData.lastOpCommitted`, hello `majorityOpTime`, or a majority
//!   of `replSetUpdatePosition` durable optimes) to pass its optime; a new term
//!   whose history lacks it makes it `rolled_back`; oplog entries fetched by
//!   secondaries are the authoritative form and are logged themselves when no client
//!   write matches them. With no replication traffic in sight, the policy decides.
//! - **Deployment rules** ([`mongo_rules`]): a standalone, a one-member set, and a
//!   default write concern of `w:"majority"` (cluster-wide, or implicit from 5.0
//!   without a PSA arbiter) make an acknowledged write committed at its reply.
//! - **Resolution deadline** ([`config`]): an in-doubt write that nothing resolves
//!   within the configured capture time gets its final outcome by policy, with the
//!   reason recorded.
//! - **Tidemark** ([`tracker`]): the latest capture time before which every write
//!   is decided (none undecided here, none still waiting for a response in a
//!   decoder) and no capture gap touched a database flow.
//!
//! `crate::tap` drives the whole pipeline (capture → reassembly → decoders → tracker
//! → store) with group commit and crash-safe resume.

pub mod config;
mod convert;
pub mod cql_cells;
pub mod identity;
pub mod line;
pub mod mongo_rules;
pub mod repl_sets;
pub mod replication;
mod tracker;

pub use config::{InDoubtPolicy, TrackerConfig};
pub use line::write_line;
pub use tracker::{
    is_cluster_metadata, CommitTracker, Flush, Parking, TrackerStats, IN_FLIGHT_ID_PREFIX,
    SLIM_PARKED,
};
