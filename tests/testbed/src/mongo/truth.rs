//! Ground truth: what the set really holds, for tests to compare tidemark's
//! reconstructions with — each member's oplog and data, the commit point
//! over time, elections, rollbacks (with what was rolled back), and the
//! majority-committed logical state at any optime.

use super::oplog::apply_entry;
use super::set::{MongoReplicaSet, Shared};
use super::store::{MemberStore, OpTime};
use std::collections::BTreeMap;
use std::sync::MutexGuard;
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

impl Shared {
    pub fn truth(&self) -> MutexGuard<'_, Truth> {
        self.truth.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why a committed state cannot be given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TruthError {
    #[error(
        "optime {asked:?} is after the newest commit point {commit:?}: not majority-committed"
    )]
    NotCommitted { asked: OpTime, commit: OpTime },
    #[error("replaying the committed oplog failed: {0}")]
    Replay(String),
}

impl MongoReplicaSet {
    /// The documents of `ns` ("db.coll") on `member`, in natural
    /// (insertion) order. Empty for an unknown member or namespace.
    pub fn documents(&self, member: usize, ns: &str) -> Vec<Document> {
        self.shared
            .members
            .get(member)
            .map(|m| m.store().documents(ns))
            .unwrap_or_default()
    }

    /// Every namespace's documents on `member`.
    pub fn data(&self, member: usize) -> BTreeMap<String, Vec<Document>> {
        self.shared
            .members
            .get(member)
            .map(|m| collections(&m.store()))
            .unwrap_or_default()
    }

    /// `member`'s oplog entries, oldest first, as served from `local.oplog.rs`.
    pub fn oplog(&self, member: usize) -> Vec<Document> {
        self.shared
            .members
            .get(member)
            .map(|m| m.store().oplog().to_vec())
            .unwrap_or_default()
    }

    /// The commit point as `member` knows it.
    pub fn commit_point(&self, member: usize) -> Option<OpTime> {
        self.shared.members.get(member).map(|m| m.commit_point())
    }

    /// The optime of `member`'s last oplog entry.
    pub fn last_applied(&self, member: usize) -> Option<OpTime> {
        self.shared
            .members
            .get(member)
            .map(|m| m.store().last_op_time())
    }

    /// Every move of the primary's commit point, in order.
    pub fn commit_point_history(&self) -> Vec<CommitPointChange> {
        self.shared.truth().commit_points.clone()
    }

    pub fn elections(&self) -> Vec<Election> {
        self.shared.truth().elections.clone()
    }

    pub fn rollbacks(&self) -> Vec<Rollback> {
        self.shared.truth().rollbacks.clone()
    }

    pub fn events(&self) -> Vec<Event> {
        self.shared.truth().events.clone()
    }

    /// The newest commit point any member knows (committed entries are
    /// never rolled back, so it only grows).
    pub fn newest_commit_point(&self) -> OpTime {
        self.shared
            .members
            .iter()
            .map(|m| m.commit_point())
            .max()
            .unwrap_or_default()
    }

    /// The majority-committed oplog: the entries up to the newest commit
    /// point, taken from the member that knows it (all members agree on
    /// this prefix).
    pub fn committed_oplog(&self) -> Vec<Document> {
        let Some(m) = self.shared.members.iter().max_by_key(|m| m.commit_point()) else {
            return Vec::new();
        };
        let commit = m.commit_point();
        m.store()
            .oplog()
            .iter()
            .filter(|e| OpTime::from_doc(e).is_some_and(|t| t <= commit))
            .cloned()
            .collect()
    }

    /// The logical state (namespace → documents in natural order) a reader
    /// at `at` sees once `at` is majority-committed: every committed entry
    /// up to `at` applied in order.
    pub fn committed_state_at(
        &self,
        at: OpTime,
    ) -> Result<BTreeMap<String, Vec<Document>>, TruthError> {
        let commit = self.newest_commit_point();
        if at > commit {
            return Err(TruthError::NotCommitted { asked: at, commit });
        }
        let mut store = MemberStore::default();
        for e in self.committed_oplog() {
            if OpTime::from_doc(&e).is_some_and(|t| t > at) {
                break;
            }
            apply_entry(&mut store, &e).map_err(TruthError::Replay)?;
            store.push_replicated(e).map_err(TruthError::Replay)?;
        }
        Ok(collections(&store))
    }
}

/// A store's collections as plain documents.
pub fn collections(store: &MemberStore) -> BTreeMap<String, Vec<Document>> {
    store
        .collections
        .keys()
        .map(|ns| (ns.clone(), store.documents(ns)))
        .collect()
}
