//! The ground truth of a running set: each member's documents, the
//! recorded history (`storage/truth.rs`) and the majority-committed logical
//! state at any optime; and, as JSON (canonical extended JSON for BSON values)
//! for `tidemark-testbed mongo --truth-out` and the capture script, every
//! member's oplog, last optime and commit point, and the primary's documents
//! per namespace.

use super::set::MongoReplicaSet;
use crate::mongo::storage::oplog::apply_entry;
use crate::mongo::storage::store;
use crate::mongo::storage::store::{MemberStore, OpTime};
use crate::mongo::storage::truth::{CommitPointChange, Election, Event, Rollback};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use tidemark_mongo::bson::{Bson, Document};

fn ext(d: &Document) -> Value {
    Bson::Document(d.clone()).into_canonical_extjson()
}

/// `{set_name, primary, members: [{host, last_applied, commit_point,
/// oplog}], documents: {ns: [...]}}`.
pub fn ground_truth_json(set: &MongoReplicaSet) -> Value {
    let shared = set.shared();
    let members: Vec<Value> = (0..shared.members.len())
        .map(|m| {
            let optime =
                |o: Option<store::OpTime>| o.map(|o| json!({ "t": o.t, "ts": [o.ts.0, o.ts.1] }));
            json!({
                "host": shared.members[m].host,
                "last_applied": optime(set.last_applied(m)),
                "commit_point": optime(set.commit_point(m)),
                "oplog": set.oplog(m).iter().map(ext).collect::<Vec<_>>(),
            })
        })
        .collect();
    let primary = set.primary();
    let mut documents = serde_json::Map::new();
    if let Some(p) = primary {
        let namespaces: Vec<String> = shared.members[p]
            .store()
            .collections
            .keys()
            .cloned()
            .collect();
        for ns in namespaces {
            let docs: Vec<Value> = set.documents(p, &ns).iter().map(ext).collect();
            documents.insert(ns, Value::Array(docs));
        }
    }
    json!({
        "set_name": shared.config.set_name,
        "primary": primary,
        "members": members,
        "documents": documents,
    })
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
