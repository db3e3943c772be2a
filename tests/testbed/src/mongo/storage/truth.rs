//! The ground-truth record: what happened to the set, for tests to compare
//! tidemark's reconstructions with — the commit point over time, elections,
//! rollbacks (with what was rolled back) and member events. Queries over the
//! running set (each member's oplog and data, the majority-committed logical
//! state at any optime) are in `server/set_truth.rs`.

use super::store::OpTime;
use std::time::{SystemTime, UNIX_EPOCH};
use tidemark_mongo::bson::{Bson, Document};

/// Wall-clock milliseconds since the epoch.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The primary's commit point moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitPointChange {
    pub wall_millis: i64,
    /// The primary that advanced it.
    pub member: usize,
    pub term: i64,
    pub commit_point: OpTime,
}

/// A member won an election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Election {
    pub wall_millis: i64,
    pub member: usize,
    pub term: i64,
    /// Votes received, the candidate's own included.
    pub votes: usize,
    /// The candidate's last applied optime when it won.
    pub last_applied: OpTime,
}

/// A member rolled back entries the majority never had.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollback {
    pub wall_millis: i64,
    pub member: usize,
    pub sync_source: usize,
    /// The last entry both oplogs share; everything after it was undone.
    pub common_point: OpTime,
    /// The undone oplog entries, oldest first.
    pub entries: Vec<Document>,
    /// Each document the undone entries touched, as it was on the member
    /// just before the rollback (`None`: it did not exist) — what MongoDB
    /// writes to its rollback files: (namespace, `_id`, document).
    pub documents: Vec<(String, Bson, Option<Document>)>,
    /// The member's rollback id after the rollback.
    pub rbid: i32,
}

/// Something that happened to a member (stop, start, partition, stepdown…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub wall_millis: i64,
    pub member: usize,
    pub what: String,
}

/// Everything recorded over the set's life.
#[derive(Debug, Default)]
pub struct Truth {
    pub commit_points: Vec<CommitPointChange>,
    pub elections: Vec<Election>,
    pub rollbacks: Vec<Rollback>,
    pub events: Vec<Event>,
}

impl Truth {
    pub fn commit_moved(&mut self, member: usize, term: i64, commit_point: OpTime) {
        self.commit_points.push(CommitPointChange {
            wall_millis: now_millis(),
            member,
            term,
            commit_point,
        });
    }

    pub fn event(&mut self, member: usize, what: String) {
        tracing::info!(member, "{what}");
        self.events.push(Event {
            wall_millis: now_millis(),
            member,
            what,
        });
    }
}
