//! One member's data: collections, indexes, the oplog and applying its
//! entries, logical sessions, and the ground-truth record of what happened.
//! Depends on `query` only.

pub mod index;
pub mod oplog;
pub mod session;
pub mod store;
pub mod truth;
