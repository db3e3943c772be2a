//! The commit tracker's MongoDB replication side (ARCHITECTURE.md, MongoDB outcome
//! rules): replication facts in, pending writes decided by the commit point or a
//! new term, client writes matched to the oplog entries that are their authoritative
//! form, and entries no client write accounts for logged on their own.

use std::net::{Ipv4Addr, SocketAddr};

use super::super::convert;
use super::super::identity;
use super::super::mongo_rules;
use super::super::repl_sets::Scope;
use super::super::replication::{SeenEntry, Verdict};
use super::{CommitTracker, LoggedAt, Seen, KEEP_ENTRIES};
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
        let Some(o) = rec.extras.optime else {
            return;
        };
        let claim = match &rec.extras.mongo_op {
            // The entry itself was logged (a write that adopted it, or an orphan).
            Some(op) if op.optime.is_some() => {
                self.note_loose_adoption(op, o.ts);
                LoggedAt::Entry
            }
            // A transaction's statements carry its commit's reply optime; its
            // `applyOps` entry is recognised by `logged_txns`.
            _ if identity::in_transaction(rec) => return,
            // A write logged as sent: its reply's optime is the newest on the primary
            // when it replied, perhaps another client's entry; only an entry that is
            // this statement is this write.
            Some(op) => {
                let mut op = op.clone();
                if op.op == crate::store::MongoOpKind::Update {
                    op.o = bytes::Bytes::new(); // matching reads `o2` (the filter) only
                }
                LoggedAt::Client(op)
            }
            None => return,
        };
        self.logged_optimes.insert(o.ts, claim);
        while self.logged_optimes.len() > KEEP_ENTRIES {
            self.logged_optimes.pop_first();
        }
    }

    /// A retryable write logged as an entry without session ids (taken by `_id`
    /// before the server was seen writing them): should an entry carrying the
    /// write's ids come later, that is its own, and the one it took another write's,
    /// already logged as what it says; see [`CommitTracker::entry_already_logged`].
    fn note_loose_adoption(&mut self, op: &crate::store::MongoOp, ts: u64) {
        let loose = op.lsid.is_some()
            && op.txn_number.is_some()
            && op.stmt_id.is_some()
            && op
                .optime
                .and_then(|o| self.repls.entry_at(o))
                .is_some_and(|e| e.optime.ts == ts && e.op.lsid.is_none());
        if let (true, Some(i)) = (loose, identity::of_mongo_op(op)) {
            if self.loose_adoptions.len() >= KEEP_ENTRIES {
                self.loose_adoptions.clear();
            }
            self.loose_adoptions.insert(i, ts);
        }
    }

    /// Whether a fetched oplog entry is the form of a client write already logged.
    /// An entry with a logged retryable write's ids is that write's unless the write
    /// was logged as another entry (a loose adoption): then this one is not logged
    /// yet, and is logged on its own.
    pub(super) fn entry_already_logged(&self, optime_ts: u64, op: &crate::store::MongoOp) -> bool {
        let by_optime = match self.logged_optimes.get(&optime_ts) {
            Some(LoggedAt::Entry) => true,
            Some(LoggedAt::Client(c)) => self.repls.is_form_of(c, op),
            None => false,
        };
        by_optime
            || (op.op == crate::store::MongoOpKind::Command
                && matches!((op.lsid, op.txn_number), (Some(l), Some(t)) if self.logged_txns.contains(&(l, t))))
            || identity::of_mongo_op(op).is_some_and(|i| {
                matches!(self.identities.get(&i), Some(Seen::Logged(_)))
                    && self
                        .loose_adoptions
                        .get(&i)
                        .is_none_or(|ts| *ts == optime_ts)
            })
    }

    /// The optime acknowledged on `rec`'s connection before `rec`'s own (and notes
    /// `rec`'s): a connection carries one request at a time, so a write's oplog
    /// entries come after it.
    pub(super) fn acknowledged_before(&mut self, rec: &WriteRecord) -> Option<u64> {
        if rec.proto != "mongo" {
            return None;
        }
        let ts = rec.extras.optime?.ts;
        let slot = self.acked_on_flow.entry(rec.flow).or_insert((None, ts));
        if slot.1 != ts {
            *slot = (Some(slot.1), ts);
        }
        slot.0
    }

    /// A committed client update or delete that took no oplog entry one to one, as
    /// the entries it wrote (each with its `_id` as key and its optime), when the
    /// oplog is in sight and they were fetched; `None` to log the write as sent.
    pub(super) fn oplog_forms(
        &mut self,
        rec: &WriteRecord,
        after: Option<u64>,
        scope: Scope,
    ) -> Option<Vec<WriteRecord>> {
        if rec.proto != "mongo" || !self.repls.oplog_visible(scope) || identity::in_transaction(rec)
        {
            return None;
        }
        let op = rec.extras.mongo_op.as_ref()?;
        if op.optime.is_some() {
            return None; // already an entry's form
        }
        let entries = self
            .repls
            .take_entries_of(scope, op, rec.extras.optime, after);
        if entries.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(entries.len());
        for (_, e) in &entries {
            let mut r = rec.clone();
            self.adopt_entry(&mut r, e);
            out.push(r);
        }
        Some(out)
    }

    pub(super) fn adopt_entry(&mut self, rec: &mut WriteRecord, entry: &SeenEntry) {
        self.stats.matched_oplog += 1;
        rec.extras.optime = Some(entry.optime);
        let mut op = entry.op.clone();
        op.optime = Some(entry.optime);
        // The entry names the document by `_id`; the client's filter may not have.
        if let Ok(key) = serde_json::from_str::<serde_json::Value>(&oplog_key(&op)) {
            if key.get("_id").is_some() {
                rec.key = key.into();
            }
        }
        // Keep the client's session ids for dedupe when the entry lacks them.
        if let Some(client) = &rec.extras.mongo_op {
            op.lsid = op.lsid.or(client.lsid);
            op.txn_number = op.txn_number.or(client.txn_number);
            op.stmt_id = op.stmt_id.or(client.stmt_id);
        }
        rec.extras.mongo_op = Some(op);
    }

    /// The deployment rule ([`mongo_rules`]) that commits a pending MongoDB write at
    /// its acknowledgement, as the outcome and a note that names the rule first.
    pub(super) fn by_deployment(
        &self,
        scope: Scope,
        rec: &WriteRecord,
        prior: &str,
    ) -> Option<(Outcome, String)> {
        // With the oplog in sight the commit point is too, and waiting for it lets
        // the write take its oplog entries (the authoritative form) before it is
        // logged; the rules would only decide it earlier, never differently.
        if rec.proto != "mongo" || self.repls.oplog_visible(scope) {
            return None;
        }
        // A router's write: the rules of the first set seen (a cluster's shards
        // run one version and one default write concern).
        let d = &self
            .repls
            .get(match scope {
                Scope::Set(i) => i,
                Scope::Cluster => 0,
            })
            .deployment;
        let rule = mongo_rules::committed_on_acknowledgement(d, rec.extras.default_write_concern)?;
        let mut note = format!("{}: {}", rule.reason(), rule.explain(d));
        if !prior.is_empty() {
            note.push_str("; ");
            note.push_str(prior);
        }
        Some((Outcome::Committed, note))
    }

    /// The deployment facts changed (a hello, a default write concern): pending
    /// writes a rule now decides are committed, in the order they were taken in.
    fn apply_deployment_rules(&mut self, at: u64) {
        let decided: Vec<(u64, String)> = self
            .undecided
            .iter()
            .filter(|(_, e)| e.outcome == Outcome::Pending)
            .filter_map(|(wid, e)| {
                Some((
                    *wid,
                    self.by_deployment(self.scope_of(e), &e.rec, &e.note)?.1,
                ))
            })
            .collect();
        for (wid, note) in decided {
            self.decide(wid, Outcome::Committed, note, at);
        }
    }

    /// A write on a sharded cluster router's own connection to a shard (the command
    /// carries the routing table version it was routed with, or the flow's client is
    /// a router's address): the router forwarding its client's write,
    /// perhaps again after a `StaleConfig`. The client→router copy is the logical
    /// write, decided by the router's reply, which carries the shard's answer; this
    /// copy is one crossing of the wire of the same write, so it is not logged
    /// (deduping it by lsid/txnNumber/stmtId would miss writes without a session,
    /// and its StaleConfig rejections are the router's business, never the client's).
    /// A router's writes to the cluster's own metadata (`config.*`, on the config
    /// servers) are its own, not copies: they are kept.
    pub(super) fn router_copy(&self, rec: &WriteRecord) -> bool {
        // The command says so itself (`shardVersion`/`databaseVersion`), or it comes
        // from the address of a router whose hello was seen.
        rec.proto == "mongo"
            && !is_cluster_metadata(rec)
            && (rec.extras.routed || self.router_flow(rec.flow))
    }

    /// Whether `flow` is a sharded cluster router's own connection (its client end
    /// is a router's address): the writes on it are [`Self::router_copy`] copies but
    /// for the router's own `config.*` writes.
    pub fn router_flow(&self, flow: u64) -> bool {
        !self.routers.is_empty()
            && self
                .clients
                .get(&flow)
                .is_some_and(|c| self.routers.contains(&c.ip()))
    }

    /// A router's copy of a client write, acknowledged by a shard: which shard's
    /// set took it and at what optime (its reply's `operationTime`, in that set's
    /// term), kept under its content until the client's write to the router —
    /// whose reply comes after the shards' — takes it. A copy the shard refused
    /// (`StaleConfig`, retried by the router) holds nothing.
    pub(super) fn note_router_copy(&mut self, rec: &WriteRecord) {
        let (Some(op), Some(mut optime)) = (&rec.extras.mongo_op, rec.extras.optime) else {
            return;
        };
        if !rec.outcome.applied() {
            return;
        }
        let set = self.repls.set_of(self.node_of(rec.flow));
        if optime.t < 0 {
            optime.t = self.repls.term(Scope::Set(set));
        }
        if self.router_copies.len() >= KEEP_ROUTER_COPIES {
            self.router_copies.clear();
        }
        let copies = self.router_copies.entry(copy_key(op)).or_default();
        if !copies.contains(&(set, optime)) {
            copies.push((set, optime));
        }
    }

    /// The copies a router made of client write `rec` (by content: namespace,
    /// kind, document, filter), taken so the next write of the same content gets
    /// its own; empty when none was seen.
    pub(super) fn take_router_copies(
        &mut self,
        rec: &WriteRecord,
    ) -> Vec<(usize, crate::store::OpTime)> {
        rec.extras
            .mongo_op
            .as_ref()
            .and_then(|op| self.router_copies.remove(&copy_key(op)))
            .unwrap_or_default()
    }

    pub(super) fn replication(&mut self, event: &ReplicationEvent, flow: u64, at: u64) {
        let node = self.node_of(flow);
        if let ReplicationEvent::Router = event {
            if let Some(server) = self.nodes.get(&flow) {
                self.routers.insert(server.ip());
                self.router_nodes.insert(*server);
            }
            return;
        }
        let facts = self.repls.deployments();
        let (set, moved) = self.repls.apply(event, flow, node, at);
        if self.repls.deployments() != facts {
            self.apply_deployment_rules(at);
        }
        // The writes this set's facts can decide: its own, and routers' writes not
        // yet matched to any set's entry.
        let concerns = |this: &Self, e: &super::Entry| match this.scope_of(e) {
            Scope::Set(i) => i == set,
            Scope::Cluster => true,
        };
        if let ReplicationEvent::OplogEntry { optime, op, .. } = event {
            if self.entry_already_logged(optime.ts, op) {
                self.repls.get_mut(set).mark_matched(optime.ts);
            }
            // A waiting client write may be this entry: the retryable statement its
            // session ids name, whatever optime its reply carried (the newest on the
            // primary then, perhaps another client's entry), first; else one
            // acknowledged with this optime, or without one.
            let by_session = identity::of_mongo_op(op)
                .filter(|_| op.lsid.is_some() && op.txn_number.is_some() && op.stmt_id.is_some())
                .and_then(|i| match self.identities.get(&i) {
                    Some(Seen::Undecided(wid)) => Some(*wid),
                    _ => None,
                });
            let waiting: Vec<u64> = by_session
                .into_iter()
                .chain(self.pending.for_entry(optime.ts))
                .filter(|wid| {
                    self.undecided.get(wid).is_some_and(|e| {
                        e.rec.proto == "mongo"
                            && e.outcome == Outcome::Pending
                            && concerns(self, e)
                            && (Some(*wid) == by_session
                                || e.rec.extras.optime.is_none_or(|o| o.ts == optime.ts))
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
                            self.repls.get_mut(set).mark_matched(optime.ts);
                            if let Some(e) = self.undecided.get_mut(&wid) {
                                let before = e.rec.extras.optime;
                                e.rec.extras.optime = Some(*optime);
                                e.set = Some(set);
                                self.record_changed(wid, before);
                            }
                            self.changed.insert(wid);
                            self.recheck(wid, at);
                        }
                    }
                    continue;
                }
                let client_optime = self.undecided[&wid].rec.extras.optime;
                let previous_set = self.undecided[&wid].set;
                if let Some(entry) = self
                    .repls
                    .get_mut(set)
                    .match_write(&op, client_optime, false)
                {
                    // It had taken another entry (by `_id`, before its own with its
                    // session ids was fetched): that one is another write's, free
                    // again to be taken or logged on its own.
                    if let Some(prev) = op.optime.filter(|p| p.ts != entry.optime.ts) {
                        self.repls
                            .get_mut(previous_set.unwrap_or(set))
                            .release(prev.ts);
                    }
                    let mut rec = self.undecided[&wid].rec.clone();
                    self.adopt_entry(&mut rec, &entry);
                    if let Some(e) = self.undecided.get_mut(&wid) {
                        let before = e.rec.extras.optime;
                        e.rec = rec;
                        e.set = Some(set);
                        self.record_changed(wid, before);
                    }
                    self.changed.insert(wid);
                    self.recheck(wid, at);
                    break;
                }
            }
        }
        // A fetched batch linked an older term's history into a newer one: the
        // older terms' writes waiting for evidence of surviving the election (or
        // of being skipped by the new history) may now have it.
        let commit_point = self.repls.get(set).commit_point;
        if let (true, false, Some((cp, _))) = (
            self.repls.get_mut(set).take_history_grew(),
            moved,
            commit_point,
        ) {
            let waiting: Vec<u64> = self
                .pending
                .for_commit_point(cp)
                .into_iter()
                .filter(|wid| {
                    self.undecided.get(wid).is_some_and(|e| {
                        e.outcome == Outcome::Pending
                            && self.scope_of(e) == Scope::Set(set)
                            && e.rec.extras.optime.is_some_and(|o| o.t >= 0 && o.t < cp.t)
                    })
                })
                .collect();
            for wid in waiting {
                self.recheck(wid, at);
            }
        }
        if let (true, Some((cp, _))) = (moved, commit_point) {
            // Only MongoDB writes wait on a commit point, and only the ones it
            // covers (or that have no optime) can be decided by it.
            let pending: Vec<u64> = self
                .pending
                .for_commit_point(cp)
                .into_iter()
                .filter(|wid| {
                    self.undecided
                        .get(wid)
                        .is_some_and(|e| e.outcome == Outcome::Pending && concerns(self, e))
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
        let e = &self.undecided[&wid];
        let scope = self.scope_of(e);
        let Some((cp, _)) = self.repls.commit_point(scope) else {
            return;
        };
        if self.repls.oplog_visible(scope) && e.ack_term > 0 && cp.t > e.ack_term {
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
        if let Some((outcome, note)) = self.settle(self.scope_of(e), &e.copies, optime, &e.note) {
            self.decide(wid, outcome, note, at);
        }
    }

    /// The outcome and note of a pending write with `optime` that the replication
    /// state can now decide (`prior` is its note so far), or `None` to keep waiting.
    pub(super) fn settle(
        &self,
        scope: Scope,
        copies: &[(usize, crate::store::OpTime)],
        optime: crate::store::OpTime,
        prior: &str,
    ) -> Option<(Outcome, String)> {
        let verdict = if copies.is_empty() {
            self.repls.verdict(scope, optime)
        } else {
            self.repls.verdict_of_copies(copies)
        };
        match verdict {
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
            Verdict::Unknown { commit_point } => Some((
                Outcome::InDoubt {
                    reason: crate::store::InDoubtReason::Other(Reason::Unreplicated.as_str().into()),
                },
                format!(
                    "{prior}; term {} commit point {} passed this older term's write, and no oplog is in sight to say whether the new term kept it",
                    commit_point.t, commit_point.ts
                ),
            )),
        }
    }

    pub(super) fn log_orphan(&mut self, e: SeenEntry, now: u64) {
        self.stats.from_oplog += 1;
        let mut op = e.op.clone();
        op.optime = Some(e.optime);
        let key = oplog_key(&op);
        let commit_time = self.commit_time(now);
        let write_op = match op.op {
            crate::store::MongoOpKind::Insert => WriteOp::Insert,
            crate::store::MongoOpKind::Update => WriteOp::Update,
            crate::store::MongoOpKind::Delete => WriteOp::Delete,
            _ => WriteOp::Ddl,
        };
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
            op: write_op,
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
            ddl: (write_op == WriteOp::Ddl).then(|| crate::store::DdlChange {
                op: op_name(&op).to_owned(),
                cql: None,
            }),
            // The line names the entry; its values are the payload's `o` document,
            // rendered when printed (no JSON is built here).
            line: Some(crate::store::StoredLine::Oplog {
                namespace: op.ns.clone(),
                op: op_name(&op).to_owned(),
                values: None,
            }),
            line_values: Some(crate::store::LineValues::PayloadDocument),
            payload: Payload::Mongo(op),
        });
    }
}

/// A MongoDB write acknowledged although it changed no document (the decoder's
/// [`changed_nothing`](crate::decode::records::WriteExtras::changed_nothing)): it
/// wrote no oplog entry, so no commit point will ever name it and no rollback can
/// undo it. It is decided at once, committed as a no-op: logged (the client did
/// write), changing nothing.
pub(super) fn unchanged(rec: &WriteRecord, prior: &str) -> Option<(Outcome, String)> {
    if rec.proto != "mongo" || !rec.extras.changed_nothing {
        return None;
    }
    let mut note = format!(
        "{}: the reply says no document was changed, so there is no oplog entry to wait for",
        Reason::Unchanged
    );
    if !prior.is_empty() {
        note.push_str("; ");
        note.push_str(prior);
    }
    Some((Outcome::Committed, note))
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

/// Router copies remembered at most (a copy no client write takes — the client's
/// flow was not captured — would otherwise stay forever).
const KEEP_ROUTER_COPIES: usize = 10_000;

/// A write's content, as a router forwards it unchanged: namespace, kind, the
/// document or update specification, the filter.
fn copy_key(op: &crate::store::MongoOp) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (op.op, &op.ns, &op.o, &op.o2).hash(&mut h);
    h.finish()
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

/// A write to the sharded cluster's own metadata (`config.*`): a router's own write
/// when a router sends it, not a copy of a client's.
pub fn is_cluster_metadata(rec: &WriteRecord) -> bool {
    rec.namespace
        .as_deref()
        .is_some_and(|ns| ns.starts_with("config."))
}
