//! The commit tracker's MongoDB replication side (ARCHITECTURE.md, MongoDB outcome
//! rules): replication facts in, pending writes decided by the commit point or a
//! new term, client writes matched to the oplog entries that are their authoritative
//! form, and entries no client write accounts for logged on their own.

use std::net::{Ipv4Addr, SocketAddr};

use super::super::convert;
use super::super::identity;
use super::super::replication::{SeenEntry, Verdict};
use super::{CommitTracker, Seen, KEEP_ENTRIES};
use crate::decode::reason::Reason;
use crate::decode::records::{ReplicationEvent, WriteRecord};
use crate::store::{Mutation, Outcome, Payload, Source, WriteOp};

impl CommitTracker {
    pub(super) fn note_logged_optime(&mut self, rec: &WriteRecord) {
        if identity::in_transaction(rec) {
            if let Some(op) = &rec.extras.mongo_op {
                if let (Some(l), Some(t)) = (op.lsid, op.txn_number) {
                    self.logged_txns.insert((l, t));
                    while self.logged_txns.len() > KEEP_ENTRIES {
                        self.logged_txns.pop_first();
                    }
                }
            }
        }
        if let Some(o) = rec.extras.optime {
            self.logged_optimes.insert(o.ts);
            while self.logged_optimes.len() > KEEP_ENTRIES {
                self.logged_optimes.pop_first();
            }
        }
    }

    /// Whether a fetched oplog entry is the form of a client write already logged.
    pub(super) fn entry_already_logged(&self, optime_ts: u64, op: &crate::store::MongoOp) -> bool {
        self.logged_optimes.contains(&optime_ts)
            || (op.op == crate::store::MongoOpKind::Command
                && matches!((op.lsid, op.txn_number), (Some(l), Some(t)) if self.logged_txns.contains(&(l, t))))
            || identity::of_mongo_op(op)
                .is_some_and(|i| matches!(self.identities.get(&i), Some(Seen::Logged(_))))
    }

    pub(super) fn adopt_entry(&mut self, rec: &mut WriteRecord, entry: &SeenEntry) {
        self.stats.matched_oplog += 1;
        rec.extras.optime = Some(entry.optime);
        let mut op = entry.op.clone();
        op.optime = Some(entry.optime);
        // Keep the client's session ids for dedupe when the entry lacks them.
        if let Some(client) = &rec.extras.mongo_op {
            op.lsid = op.lsid.or(client.lsid);
            op.txn_number = op.txn_number.or(client.txn_number);
            op.stmt_id = op.stmt_id.or(client.stmt_id);
        }
        rec.extras.mongo_op = Some(op);
    }

    pub(super) fn replication(&mut self, event: &ReplicationEvent, flow: u64, at: u64) {
        let moved = self.repl.apply(event, flow, at);
        if let ReplicationEvent::OplogEntry { optime, op, .. } = event {
            if self.entry_already_logged(optime.ts, op) {
                self.repl.mark_matched(optime.ts);
            }
            // A waiting client write may be this entry.
            let waiting: Vec<u64> = self
                .pending
                .for_entry(optime.ts)
                .into_iter()
                .filter(|wid| {
                    self.undecided.get(wid).is_some_and(|e| {
                        e.rec.proto == "mongo"
                            && e.outcome == Outcome::Pending
                            && e.rec.extras.optime.is_none_or(|o| o.ts == optime.ts)
                    })
                })
                .collect();
            for wid in waiting {
                let Some(op) = self.undecided[&wid].rec.extras.mongo_op.clone() else {
                    continue;
                };
                // A committed transaction's statements are one `applyOps` entry.
                if identity::in_transaction(&self.undecided[&wid].rec) {
                    if let ReplicationEvent::OplogEntry { op: entry_op, .. } = event {
                        if entry_op.op == crate::store::MongoOpKind::Command
                            && entry_op.lsid.is_some()
                            && (entry_op.lsid, entry_op.txn_number) == (op.lsid, op.txn_number)
                        {
                            self.repl.mark_matched(optime.ts);
                            if let Some(e) = self.undecided.get_mut(&wid) {
                                let before = e.rec.extras.optime;
                                e.rec.extras.optime = Some(*optime);
                                self.reindex(wid, before);
                            }
                            self.changed.insert(wid);
                            self.recheck(wid, at);
                        }
                    }
                    continue;
                }
                let client_optime = self.undecided[&wid].rec.extras.optime;
                if let Some(entry) = self.repl.match_write(&op, client_optime) {
                    let mut rec = self.undecided[&wid].rec.clone();
                    self.adopt_entry(&mut rec, &entry);
                    if let Some(e) = self.undecided.get_mut(&wid) {
                        let before = e.rec.extras.optime;
                        e.rec = rec;
                        self.reindex(wid, before);
                    }
                    self.changed.insert(wid);
                    self.recheck(wid, at);
                    break;
                }
            }
        }
        if let (true, Some((cp, _))) = (moved, self.repl.commit_point) {
            // Only MongoDB writes wait on a commit point, and only the ones it
            // covers (or that have no optime) can be decided by it.
            let pending: Vec<u64> = self
                .pending
                .for_commit_point(cp)
                .into_iter()
                .filter(|wid| {
                    self.undecided
                        .get(wid)
                        .is_some_and(|e| e.outcome == Outcome::Pending)
                })
                .collect();
            for wid in pending {
                if self.undecided[&wid].rec.extras.optime.is_some() {
                    self.recheck(wid, at);
                } else {
                    self.unmatched_after_new_term(wid, at);
                }
            }
        }
    }

    /// A pending write with no optime (its reply had no `operationTime`) and no
    /// fetched oplog entry matching it, acknowledged in an older term than the
    /// commit point's: with the oplog traffic in sight, it never replicated, and the
    /// new primary's history does not have it.
    pub(super) fn unmatched_after_new_term(&mut self, wid: u64, at: u64) {
        let Some((cp, _)) = self.repl.commit_point else {
            return;
        };
        let e = &self.undecided[&wid];
        if self.repl.oplog_visible && e.ack_term > 0 && cp.t > e.ack_term {
            let note = format!(
                "{}: acknowledged in term {} without an optime; no oplog entry for it was ever fetched, and term {} has committed {}",
                Reason::RolledBack, e.ack_term, cp.t, cp.ts
            );
            self.decide(wid, Outcome::RolledBack, note, at);
        }
    }

    /// Decides a pending write if the replication state now can.
    pub(super) fn recheck(&mut self, wid: u64, at: u64) {
        let Some(e) = self.undecided.get(&wid) else {
            return;
        };
        let Some(optime) = e.rec.extras.optime else {
            return;
        };
        if e.outcome != Outcome::Pending {
            return;
        }
        if let Some((outcome, note)) = self.settle(optime, &e.note) {
            self.decide(wid, outcome, note, at);
        }
    }

    /// The outcome and note of a pending write with `optime` that the replication
    /// state can now decide (`prior` is its note so far), or `None` to keep waiting.
    pub(super) fn settle(
        &self,
        optime: crate::store::OpTime,
        prior: &str,
    ) -> Option<(Outcome, String)> {
        match self.repl.verdict(optime) {
            Verdict::Wait => None,
            Verdict::Committed {
                commit_point,
                source,
            } => Some((
                Outcome::Committed,
                committed_note(prior, commit_point, source),
            )),
            Verdict::RolledBack { commit_point } => {
                Some((Outcome::RolledBack, rolled_back_note(commit_point)))
            }
        }
    }

    pub(super) fn log_orphan(&mut self, e: SeenEntry, now: u64) {
        self.stats.from_oplog += 1;
        let mut op = e.op.clone();
        op.optime = Some(e.optime);
        let key = oplog_key(&op);
        let commit_time = self.commit_time(now);
        let write_json = serde_json::json!({
            "type": "write",
            "proto": "mongo",
            "namespace": op.ns,
            "op": op_name(&op),
            "key": serde_json::from_str::<serde_json::Value>(&key).unwrap_or_default(),
            "values": bson_json(&op.o),
            "source": "oplog",
        })
        .to_string();
        self.ready.push(Mutation {
            commit_time,
            source: Source {
                node: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
                flow: 0,
            },
            namespace: if op.ns.is_empty() {
                convert::UNKNOWN_NAMESPACE.into()
            } else {
                op.ns.clone()
            },
            key,
            op: match op.op {
                crate::store::MongoOpKind::Insert => WriteOp::Insert,
                crate::store::MongoOpKind::Update => WriteOp::Update,
                crate::store::MongoOpKind::Delete => WriteOp::Delete,
                _ => WriteOp::Ddl,
            },
            outcome: Outcome::Committed,
            evidence: crate::store::Evidence {
                note: format!(
                    "{} {}:{} under commit point; no client write seen for it",
                    Reason::OplogEntry,
                    e.optime.t,
                    e.optime.ts
                ),
                ..Default::default()
            },
            write_timestamp: None,
            ttl: None,
            ack: crate::store::Acknowledgement::Unknown,
            batch: None,
            payload: Payload::Mongo(op),
            write_json: Some(write_json),
        });
    }
}

fn committed_note(prior: &str, cp: crate::store::OpTime, source: &str) -> String {
    let base = if prior.is_empty() {
        String::new()
    } else {
        format!("{prior}; ")
    };
    format!(
        "{base}{} {}:{} ({source}) covers the write",
        Reason::MajorityCommitPoint,
        cp.t,
        cp.ts
    )
}

fn rolled_back_note(cp: crate::store::OpTime) -> String {
    format!(
        "{}: term {} commit point {} passed the write's time and its entry is not in the new history",
        Reason::RolledBack,
        cp.t,
        cp.ts
    )
}

fn op_name(op: &crate::store::MongoOp) -> &'static str {
    match op.op {
        crate::store::MongoOpKind::Insert => "insert",
        crate::store::MongoOpKind::Update => "update",
        crate::store::MongoOpKind::Delete => "delete",
        crate::store::MongoOpKind::Command => "command",
        crate::store::MongoOpKind::Noop => "noop",
    }
}

fn bson_json(bytes: &[u8]) -> serde_json::Value {
    match tidemark_mongo::bson::RawDocument::from_bytes(bytes) {
        Ok(d) => crate::decode::mongo::values::doc(d),
        Err(_) => serde_json::Value::Null,
    }
}

/// `{"_id": …}` of an oplog entry (from `o2` for updates, `o` otherwise).
fn oplog_key(op: &crate::store::MongoOp) -> String {
    let id = op
        .target_doc()
        .and_then(|d| tidemark_mongo::bson::RawDocument::from_bytes(d).ok())
        .and_then(|d| d.get("_id").ok().flatten())
        .map(crate::decode::mongo::values::value);
    match id {
        Some(id) => serde_json::json!({ "_id": id }).to_string(),
        None => "{}".to_string(),
    }
}
