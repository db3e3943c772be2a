//! Replication and topology: optimes, hello, heartbeats, oplog entries and
//! the metadata secondaries exchange. These are the evidence for "majority
//! committed" and for rollbacks.

pub mod cursor;
pub mod diff;
pub mod heartbeat;
pub mod hello;
pub mod metadata;
pub mod oplog;
pub mod optime;
pub mod update_position;

pub use cursor::{CursorReply, GetMoreRequest, OplogFind};
pub use diff::{ArrayDiff, DocDiff, SubDiff};
pub use heartbeat::{HeartbeatReply, HeartbeatRequest};
pub use hello::{HelloReply, LastWrite, TopologyVersion};
pub use metadata::{OplogQueryData, ReplData};
pub use oplog::{OpType, OplogEntry, OplogUpdate};
pub use optime::OpTime;
pub use update_position::{MemberPosition, UpdatePosition};
