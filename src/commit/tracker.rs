//! The commit tracker's state machine: write lines and replication facts in,
//! decided mutations (in commit order), undecided-write changes, gaps and the
//! tidemark out, one [`Flush`] per group commit.
//!
//! The MongoDB replication side (commit point, rollback, oplog entries) is in
//! [`mongo`]; this file holds the shared machinery: intake, dedupe, deadlines,
//! decisions, the tidemark and flushes.
//!
//! Everything here is deterministic in its input (ordered maps, no wall clock), so a
//! capture replayed after a crash yields the same decisions in the same order — the
//! basis of `tap --resume`.

use crate::decode::records::WireOutcome;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};

mod mongo;
pub use mongo::is_cluster_metadata;
mod pending;

use super::config::{InDoubtPolicy, TrackerConfig};
use super::convert::{self, is_control};
use super::identity::{self, Identity};
use super::repl_sets::{ReplSets, Scope};
use crate::capture::{FlowId, StreamEvent};
use crate::decode::reason::Reason;
use crate::decode::records::{Record, WriteRecord};
use crate::store::{Gap, InDoubtReason, Mutation, Outcome, OutcomeKind, Undecided};

/// Capture time an oplog entry nobody's write matched waits before it is logged on
/// its own: the client's reply (which would match it) may come just after the
/// commit point in capture order.
const ORPHAN_GRACE_NS: u64 = 1_000_000_000;

/// Oplog entries kept for matching once matched or logged.
const KEEP_ENTRIES: usize = 100_000;

/// A write seen but not decided.
#[derive(Debug, Clone)]
struct Entry {
    rec: Box<WriteRecord>,
    node: SocketAddr,
    request_time: u64,
    outcome: Outcome,
    note: String,
    identity: Option<Identity>,
    deadline: u64,
    /// MongoDB: the latest term known when the write was acknowledged (0: none).
    ack_term: i64,
    /// MongoDB: the optime acknowledged on the write's connection before it; its
    /// oplog entries come after (see [`crate::commit::replication::ReplState::take_entries_of`]).
    after: Option<u64>,
    /// MongoDB: the replica set whose oplog entry the write took (a router's
    /// client write is decided by the shard it went to); `None`: its server's set.
    set: Option<usize>,
    /// MongoDB, a router's client write that crossed to several shards: each
    /// shard's set and the optime its reply to the router carried; the write is
    /// committed when every one of them is.
    copies: Vec<(usize, crate::store::OpTime)>,
    /// `rec` converted to a mutation for a flush (outcome, note and commit time are
    /// set at each use): the decision reuses it instead of converting again. Cleared
    /// whenever `rec` changes ([`CommitTracker::record_changed`]). Boxed: an
    /// entry lives in a B-tree whose nodes shift their entries on every removal,
    /// and a mutation inline made each entry 864 bytes to move (a tenth of a
    /// MongoDB tap's deciding was that `memmove`).
    converted: Option<Box<Mutation>>,
}

/// What was logged at a MongoDB optime (the tracker's `logged_optimes`).
#[derive(Debug, Clone)]
enum LoggedAt {
    /// The oplog entry at that optime, as a write that adopted it.
    Entry,
    /// A write as its client sent it, acknowledged with that optime: the entry
    /// there is this write only if it is the same statement.
    Client(crate::store::MongoOp),
}

/// What dedupe remembers about an identity.
#[derive(Debug, Clone, Copy)]
enum Seen {
    Undecided(u64),
    Logged(OutcomeKind),
}

/// Counters for `tap`'s report and `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TrackerStats {
    /// `write` lines taken in (transaction control lines excluded).
    pub lines: u64,
    /// Lines dropped because the same mutation was already logged or waiting.
    pub duplicates: u64,
    /// In-doubt or pending writes resolved by a later copy of the same mutation.
    pub merged: u64,
    /// Writes decided by policy at their deadline.
    pub by_policy: u64,
    /// Mutations logged from oplog entries no client write matched.
    pub from_oplog: u64,
    /// Client writes matched to the oplog entry that is their authoritative form.
    pub matched_oplog: u64,
    /// `commitTransaction` / `abortTransaction` lines (they decide other lines).
    pub control_lines: u64,
    /// Capture gaps on database flows.
    pub gaps: u64,
    /// Writes a sharded cluster's router forwarded to a shard (its own connection
    /// to the shard): copies of a client's write to the router, not logged.
    pub router_copies: u64,
}

/// One group commit's worth of changes, for [`crate::store::Store::append_batch_with`].
#[derive(Debug, Default)]
pub struct Flush {
    pub mutations: Vec<Mutation>,
    /// Write ids (in `writes`) decided since the last flush.
    pub decided: Vec<Vec<u8>>,
    /// Writes still undecided that were not stored yet, or whose state changed.
    pub undecided: Vec<(Vec<u8>, Undecided)>,
    pub gaps: Vec<Gap>,
    pub tidemark: u64,
}

/// See the module docs.
pub struct CommitTracker {
    cfg: TrackerConfig,
    nodes: HashMap<u64, SocketAddr>,
    /// Each open flow's client end, to tell a router's own connections to shards.
    clients: HashMap<u64, SocketAddr>,
    /// Addresses of the sharded cluster's routers (a hello reply said `isdbgrid`).
    routers: std::collections::HashSet<std::net::IpAddr>,
    /// The routers' own addresses: a write sent there is decided by the set whose
    /// oplog entry it took, or by every set ([`Scope::Cluster`]).
    router_nodes: std::collections::HashSet<SocketAddr>,
    last_data: HashMap<u64, u64>,
    undecided: BTreeMap<u64, Entry>,
    by_time: BTreeSet<(u64, u64)>,
    by_deadline: BTreeSet<(u64, u64)>,
    next_id: u64,
    identities: HashMap<Identity, Seen>,
    identity_order: VecDeque<Identity>,
    /// Optimes (BSON timestamps) of MongoDB client writes already logged, so their
    /// oplog entries, fetched later, are not logged a second time.
    logged_optimes: BTreeMap<u64, LoggedAt>,
    /// Retryable writes logged as an oplog entry without session ids, by identity:
    /// the entry's optime (see `note_loose_adoption`).
    loose_adoptions: HashMap<Identity, u64>,
    /// Per MongoDB connection: the optime acknowledged before the last one, and the
    /// last one (statements of one command share their reply's optime).
    acked_on_flow: HashMap<u64, (Option<u64>, u64)>,
    /// (lsid, txnNumber) of transactions whose statements were logged, so their
    /// `applyOps` oplog entry is recognised as them.
    logged_txns: BTreeSet<([u8; 16], i64)>,
    /// Replication state per replica set (a sharded cluster has several).
    repls: ReplSets,
    /// Routers' copies of client writes seen acknowledged by a shard, by content,
    /// until the client's write takes them (see [`Self::note_router_copy`]).
    router_copies: HashMap<u64, Vec<(usize, crate::store::OpTime)>>,
    /// Undecided MongoDB writes by optime, for replication facts to find them.
    pending: pending::PendingIndex,
    ready: Vec<Mutation>,
    persisted: BTreeSet<u64>,
    changed: BTreeSet<u64>,
    decided_ids: Vec<u64>,
    gaps: Vec<Gap>,
    first_gap: Option<u64>,
    now: u64,
    last_commit: u64,
    tidemark: u64,
    stats: TrackerStats,
}

fn write_id(id: u64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

impl CommitTracker {
    pub fn new(cfg: TrackerConfig) -> Self {
        let members = cfg.mongo_members;
        CommitTracker {
            cfg,
            nodes: HashMap::new(),
            clients: HashMap::new(),
            routers: std::collections::HashSet::new(),
            router_nodes: std::collections::HashSet::new(),
            router_copies: HashMap::new(),
            last_data: HashMap::new(),
            undecided: BTreeMap::new(),
            by_time: BTreeSet::new(),
            by_deadline: BTreeSet::new(),
            next_id: 1,
            identities: HashMap::new(),
            identity_order: VecDeque::new(),
            logged_optimes: BTreeMap::new(),
            loose_adoptions: HashMap::new(),
            logged_txns: BTreeSet::new(),
            acked_on_flow: HashMap::new(),
            repls: ReplSets::new(members),
            pending: pending::PendingIndex::default(),
            ready: Vec::new(),
            persisted: BTreeSet::new(),
            changed: BTreeSet::new(),
            decided_ids: Vec::new(),
            gaps: Vec::new(),
            first_gap: None,
            now: 0,
            last_commit: 0,
            tidemark: 0,
            stats: TrackerStats::default(),
        }
    }

    pub fn stats(&self) -> &TrackerStats {
        &self.stats
    }

    /// Decided mutations waiting for the next flush.
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// Writes not decided yet.
    pub fn undecided_len(&self) -> usize {
        self.undecided.len()
    }

    /// Sees a stream event before the decoders do: flow endpoints (the node a write
    /// went to), last data times, and gaps on flows that can carry writes.
    pub fn observe(&mut self, ev: &StreamEvent, database_flow: bool) {
        match ev {
            StreamEvent::Opened {
                flow,
                client,
                server,
                ts,
            } => {
                self.nodes.insert(flow.0, *server);
                self.clients.insert(flow.0, *client);
                self.now = self.now.max(ts.0);
            }
            StreamEvent::Data { flow, ts, .. } => {
                self.last_data.insert(flow.0, ts.0);
                self.now = self.now.max(ts.0);
            }
            StreamEvent::Gap { flow, ts, len, .. } => {
                self.now = self.now.max(ts.0);
                if database_flow {
                    let from = self.last_data.get(&flow.0).copied().unwrap_or(ts.0);
                    self.gaps.push(Gap {
                        flow: flow.0,
                        node: self.nodes.get(&flow.0).copied(),
                        from,
                        to: ts.0,
                        bytes: *len,
                    });
                    self.first_gap = Some(self.first_gap.map_or(from, |g| g.min(from)));
                    self.stats.gaps += 1;
                }
            }
            StreamEvent::Closed { ts, .. } => self.now = self.now.max(ts.0),
        }
        self.pass_deadlines();
    }

    /// Decides by policy every write whose deadline capture time has reached, each
    /// at its deadline, in deadline order.
    fn pass_deadlines(&mut self) {
        while let Some(&(deadline, wid)) = self.by_deadline.first() {
            if deadline > self.now {
                break;
            }
            self.by_deadline.remove(&(deadline, wid));
            self.deadline_passed(wid, deadline, false);
        }
    }

    /// Forgets a flow once its last records were taken in.
    pub fn forget(&mut self, flow: FlowId) {
        self.nodes.remove(&flow.0);
        self.clients.remove(&flow.0);
        self.last_data.remove(&flow.0);
    }

    /// Takes in one decoder record produced at capture time `at`.
    pub fn record(&mut self, rec: Record, at: u64) {
        self.now = self.now.max(at);
        self.pass_deadlines();
        match rec {
            Record::Write(w) => self.write(w, at),
            Record::Replication(r) => self.replication(&r.event, r.flow, at),
            Record::Message(m) if m.proto == "mongo" && m.dir == "c2s" => {
                self.repls.confirm_flow(m.flow)
            }
            _ => {}
        }
    }

    /// Which replication decides a write sent to `node`: a router's (whose hello
    /// said so) is the cluster's until it takes a set's oplog entry; any other
    /// server's is its set's.
    fn scope_of_node(&self, node: SocketAddr) -> Scope {
        if self.router_nodes.contains(&node) && !self.repls.knows(node) {
            Scope::Cluster
        } else {
            Scope::Set(self.repls.set_of(node))
        }
    }

    /// Which replication decides undecided write `e`.
    fn scope_of(&self, e: &Entry) -> Scope {
        e.set
            .map(Scope::Set)
            .unwrap_or_else(|| self.scope_of_node(e.node))
    }

    fn node_of(&self, flow: u64) -> SocketAddr {
        self.nodes
            .get(&flow)
            .copied()
            .unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
    }

    fn write(&mut self, mut rec: Box<WriteRecord>, at: u64) {
        if is_control(&rec) {
            self.stats.control_lines += 1;
            return;
        }
        self.stats.lines += 1;
        if self.router_copy(&rec) {
            self.stats.router_copies += 1;
            self.note_router_copy(&rec);
            return;
        }
        let node = self.node_of(rec.flow);
        let mut scope = self.scope_of_node(node);
        let mut set = None;
        let request_time = rec.ts.0;
        // A reply's `operationTime` has no term; the primary that acknowledged it is
        // in the latest term seen of its set (hello `electionId`, commit points,
        // oplog entries). A router's reply has none to take: terms are per set.
        if let Some(o) = rec.extras.optime.as_mut() {
            let term = self.repls.term(scope);
            if o.t < 0 && term > 0 {
                o.t = term;
            }
        }
        let mut outcome = convert::outcome_of(&rec);
        let mut note = rec
            .reason
            .as_ref()
            .map_or_else(String::new, ToString::to_string);
        let after = self.acknowledged_before(&rec);
        // A router's client write: the shards its copies went to decide it.
        let mut copies = Vec::new();
        if scope == Scope::Cluster {
            copies = self.take_router_copies(&rec);
            if let [(s, optime)] = copies[..] {
                scope = Scope::Set(s);
                set = Some(s);
                rec.extras.optime = Some(optime);
                copies.clear();
            }
        }

        // The oplog entry, when seen, is the authoritative form (and has the optime).
        if rec.proto == "mongo"
            && self.repls.oplog_visible(scope)
            && outcome.kind() != OutcomeKind::Rejected
        {
            if let Some(op) = rec.extras.mongo_op.clone() {
                // A write in doubt (unacknowledged, no response) is logged in doubt,
                // which versions do not apply: an entry it took would never be
                // applied either. It takes only an entry its session ids or inserted
                // document name; one it could only match by `_id` may be another
                // write's (a concurrent updateMany's), and is left to be logged as
                // what it is. (Its deadline policy committing it is the user's
                // choice to apply it as sent.)
                let exact = matches!(outcome, Outcome::InDoubt { .. })
                    && self.cfg.in_doubt_policy != InDoubtPolicy::Committed;
                if let Some((in_set, entry)) =
                    self.repls.match_write(scope, &op, rec.extras.optime, exact)
                {
                    // Logged on its own before this reply was seen: the same write.
                    if entry.logged {
                        self.stats.duplicates += 1;
                        return;
                    }
                    self.adopt_entry(&mut rec, &entry);
                    set = Some(in_set);
                    scope = Scope::Set(in_set);
                }
            }
        }

        let identity = identity::of(&rec);
        if let Some(id) = identity {
            match self.identities.get(&id).copied() {
                Some(Seen::Logged(OutcomeKind::Committed)) => {
                    self.stats.duplicates += 1;
                    return;
                }
                Some(Seen::Undecided(wid)) => {
                    self.duplicate_of_undecided(wid, rec, outcome, note, at);
                    return;
                }
                Some(Seen::Logged(_)) if outcome.kind() != OutcomeKind::Committed => {
                    self.stats.duplicates += 1;
                    return;
                }
                _ => {}
            }
        }

        if outcome == Outcome::Pending {
            if let Some(decided) = rec
                .extras
                .optime
                .and_then(|o| self.settle(scope, &copies, o, &note))
            {
                (outcome, note) = decided;
            }
        }
        if outcome == Outcome::Pending {
            if let Some(decided) = self
                .by_deployment(scope, &rec, &note)
                .or_else(|| mongo::unchanged(&rec, &note))
            {
                (outcome, note) = decided;
            }
        }
        match outcome {
            Outcome::InDoubt { .. } | Outcome::Pending => {
                let id = self.next_id;
                self.next_id += 1;
                let entry = Entry {
                    rec,
                    node,
                    request_time,
                    outcome,
                    note,
                    identity,
                    deadline: at.saturating_add(self.cfg.resolve_after_ns),
                    ack_term: self.repls.term(scope),
                    after,
                    set,
                    copies,
                    converted: None,
                };
                self.by_time.insert((request_time, id));
                self.by_deadline.insert((entry.deadline, id));
                if entry.rec.proto == "mongo" {
                    self.pending.note(id, entry.rec.extras.optime);
                }
                self.undecided.insert(id, entry);
                self.changed.insert(id);
                if let Some(i) = identity {
                    self.remember(i, Seen::Undecided(id));
                }
            }
            decided => {
                let kind = decided.kind();
                let commit_time = self.commit_time(at);
                self.log(
                    scope,
                    rec,
                    node,
                    request_time,
                    commit_time,
                    decided,
                    note,
                    after,
                    None,
                );
                if let Some(i) = identity {
                    self.remember(i, Seen::Logged(kind));
                }
            }
        }
    }

    /// A second copy of an undecided write: a commit resolves it; anything else is
    /// dropped (the first copy stays).
    fn duplicate_of_undecided(
        &mut self,
        wid: u64,
        rec: Box<WriteRecord>,
        outcome: Outcome,
        note: String,
        at: u64,
    ) {
        self.stats.duplicates += 1;
        let Some(entry) = self.undecided.get_mut(&wid) else {
            return;
        };
        let before = entry.rec.extras.optime;
        if entry.rec.extras.optime.is_none() {
            entry.rec.extras.optime = rec.extras.optime;
        }
        // The later copy's reply is the write's answer: when it says nothing changed
        // (a retried update or replacement that matched nothing), the first copy is
        // that no-op too, not its client form (a replacement of an absent document
        // would otherwise be applied as if it had matched one).
        if rec.extras.changed_nothing && outcome == Outcome::Committed {
            let x = &mut entry.rec.extras;
            x.changed_nothing = true;
            x.optime = None;
            if let Some(op) = x.mongo_op.as_mut() {
                op.op = crate::store::MongoOpKind::Noop;
            }
        }
        self.record_changed(wid, before);
        match outcome {
            Outcome::Committed => {
                let Some(entry) = self.undecided.get(&wid) else {
                    return;
                };
                self.stats.merged += 1;
                let why = format!(
                    "{} {} on flow {}{}",
                    describe(&entry.outcome),
                    Reason::ResolvedByLaterCopy,
                    rec.flow,
                    if note.is_empty() {
                        String::new()
                    } else {
                        format!(" ({note})")
                    }
                );
                self.decide(wid, Outcome::Committed, why, at);
            }
            Outcome::Pending => {
                // A retried write acknowledged below majority: applied on the
                // primary. An in-doubt first copy now waits for the commit point
                // like any acknowledged write.
                let Some(entry) = self.undecided.get_mut(&wid) else {
                    return;
                };
                if matches!(entry.outcome, Outcome::InDoubt { .. }) {
                    let before = entry.rec.extras.optime;
                    self.stats.merged += 1;
                    entry.note = format!(
                        "{} {} on flow {} ({note})",
                        describe(&entry.outcome),
                        Reason::ResolvedByLaterCopy,
                        rec.flow
                    );
                    entry.outcome = Outcome::Pending;
                    entry.rec.extras.optime = rec.extras.optime.or(entry.rec.extras.optime);
                    entry.rec.outcome = WireOutcome::Pending;
                    self.changed.insert(wid);
                    self.record_changed(wid, before);
                }
                self.recheck(wid, at);
                // Still waiting: a deployment rule may decide it at this reply.
                let ruled = self.undecided.get(&wid).and_then(|e| {
                    (e.outcome == Outcome::Pending)
                        .then(|| self.by_deployment(self.scope_of(e), &e.rec, &e.note))
                        .flatten()
                });
                if let Some((outcome, note)) = ruled {
                    self.decide(wid, outcome, note, at);
                }
            }
            _ => {}
        }
    }

    /// After write `wid`'s record changed (its optime was `before`): the pending index
    /// follows its optime, and its converted mutation is stale.
    fn record_changed(&mut self, wid: u64, before: Option<crate::store::OpTime>) {
        let Some(e) = self.undecided.get_mut(&wid) else {
            return;
        };
        e.converted = None;
        if e.rec.proto == "mongo" && e.rec.extras.optime != before {
            self.pending.forget(wid, before);
            self.pending.note(wid, e.rec.extras.optime);
        }
    }

    fn remember(&mut self, id: Identity, seen: Seen) {
        if self.identities.insert(id, seen).is_none() {
            self.identity_order.push_back(id);
            while self.identity_order.len() > self.cfg.dedupe_window {
                if let Some(old) = self.identity_order.pop_front() {
                    if !matches!(self.identities.get(&old), Some(Seen::Undecided(_))) {
                        self.identities.remove(&old);
                    } else {
                        self.identity_order.push_back(old);
                        break;
                    }
                }
            }
        }
    }

    fn commit_time(&mut self, at: u64) -> u64 {
        self.last_commit = self.last_commit.max(at);
        self.last_commit
    }

    /// Logs undecided write `wid` with its final outcome.
    fn decide(&mut self, wid: u64, outcome: Outcome, note: String, at: u64) {
        let Some(entry) = self.undecided.remove(&wid) else {
            return;
        };
        self.by_time.remove(&(entry.request_time, wid));
        self.by_deadline.remove(&(entry.deadline, wid));
        self.pending.forget(wid, entry.rec.extras.optime);
        self.changed.remove(&wid);
        if self.persisted.remove(&wid) {
            self.decided_ids.push(wid);
        }
        let kind = outcome.kind();
        let commit_time = self.commit_time(at);
        let scope = self.scope_of(&entry);
        self.log(
            scope,
            entry.rec,
            entry.node,
            entry.request_time,
            commit_time,
            outcome,
            note,
            entry.after,
            entry.converted,
        );
        if let Some(i) = entry.identity {
            self.identities.insert(i, Seen::Logged(kind));
        }
    }
    /// Appends a decided write to the log: as the oplog entries it became when a
    /// committed MongoDB write has them in sight (ARCHITECTURE.md: they are the
    /// authoritative form), else as the write itself (`converted`, when a flush
    /// already converted it). The line is consumed: its operation moves into the
    /// mutation.
    #[allow(clippy::too_many_arguments)]
    fn log(
        &mut self,
        scope: Scope,
        rec: Box<WriteRecord>,
        node: SocketAddr,
        request_time: u64,
        commit_time: u64,
        outcome: Outcome,
        note: String,
        after: Option<u64>,
        converted: Option<Box<Mutation>>,
    ) {
        if outcome == Outcome::Committed {
            if let Some(forms) = self.oplog_forms(&rec, after, scope) {
                let n = forms.len();
                for (i, r) in forms.iter().enumerate() {
                    self.note_logged_optime(r);
                    let note = format!(
                        "{note}; {} {} of the {n} it wrote",
                        Reason::OplogEntry,
                        i + 1
                    );
                    let m = convert::mutation(
                        r,
                        node,
                        request_time,
                        commit_time,
                        outcome.clone(),
                        note,
                    );
                    self.ready.push(m);
                }
                return;
            }
        }
        self.note_logged_optime(&rec);
        let m = match converted {
            Some(m) => with_decision(*m, commit_time, outcome, note),
            None => convert::mutation_of_owned(rec, node, request_time, commit_time, outcome, note),
        };
        self.ready.push(m);
    }

    /// Moves capture time to `now`: deadlines pass, orphan oplog entries are
    /// logged, and the tidemark advances (never past `oldest_in_decoders`, the
    /// request time of the oldest write a decoder still waits on).
    pub fn advance(&mut self, now: u64, oldest_in_decoders: Option<u64>) {
        self.now = self.now.max(now);
        let now = self.now;
        self.pass_deadlines();
        let mut orphans = Vec::new();
        for (_, set) in self.repls.iter_mut() {
            orphans.extend(set.take_committed_orphans(now.saturating_sub(ORPHAN_GRACE_NS)));
        }
        for e in orphans {
            self.log_orphan(e, now);
        }
        self.repls.prune(KEEP_ENTRIES);
        let mut t = now;
        if let Some(d) = oldest_in_decoders {
            t = t.min(d);
        }
        if let Some((first, _)) = self.by_time.first() {
            t = t.min(*first);
        }
        if let Some(g) = self.first_gap {
            t = t.min(g);
        }
        if let Some(seen) = self.repls.oldest_unmatched_seen() {
            t = t.min(seen);
        }
        self.tidemark = self.tidemark.max(t);
    }

    /// The input is over (a pcap run ended): Mongo writes still pending whose
    /// replica set (or, for a router's write, any set) showed no replication
    /// traffic at all are decided by policy now, since nothing will ever show their
    /// commit point.
    pub fn finish(&mut self) {
        let now = self.now;
        let pending: Vec<u64> = self
            .undecided
            .iter()
            .filter(|(_, e)| e.outcome == Outcome::Pending && !self.repls.visible(self.scope_of(e)))
            .map(|(id, _)| *id)
            .collect();
        // Each is logged: grow the flush's list once, not by doubling through
        // a capture's worth of mutations.
        self.ready.reserve(pending.len());
        for wid in pending {
            self.deadline_passed(wid, now, true);
        }
        self.advance(now, None);
    }

    fn deadline_passed(&mut self, wid: u64, now: u64, end_of_input: bool) {
        let Some(e) = self.undecided.get(&wid) else {
            return;
        };
        let when = if end_of_input {
            "at the end of the capture"
        } else {
            "at its resolution deadline"
        };
        match &e.outcome {
            Outcome::Pending if !self.repls.visible(self.scope_of(e)) => {
                self.stats.by_policy += 1;
                if self.cfg.mongo_unreplicated_committed {
                    let note = format!(
                        "{}: {}; no replication traffic visible {when}, counted as committed by policy",
                        Reason::UnreplicatedPolicy,
                        e.note
                    );
                    self.decide(wid, Outcome::Committed, note, now);
                } else {
                    let note = format!("{}; no replication traffic visible {when}", e.note);
                    self.decide(
                        wid,
                        Outcome::InDoubt {
                            reason: InDoubtReason::Other(Reason::Unreplicated.as_str().into()),
                        },
                        note,
                        now,
                    );
                }
            }
            // Replication is visible: the commit point will say; keep waiting.
            Outcome::Pending => {}
            Outcome::InDoubt { reason } => {
                self.stats.by_policy += 1;
                let reason = reason.clone();
                let base = if e.note.is_empty() {
                    reason.as_str().to_string()
                } else {
                    e.note.clone()
                };
                let (outcome, note) = match self.cfg.in_doubt_policy {
                    InDoubtPolicy::Keep => (
                        Outcome::InDoubt { reason },
                        format!("{base}; unresolved {when}"),
                    ),
                    InDoubtPolicy::Committed => (
                        Outcome::Committed,
                        format!("{base}; unresolved {when}, committed by policy"),
                    ),
                    InDoubtPolicy::Rejected => (
                        Outcome::Rejected,
                        format!("{base}; unresolved {when}, rejected by policy"),
                    ),
                };
                self.decide(wid, outcome, note, now);
            }
            _ => {}
        }
    }
    /// [`CommitTracker::take_flush`] carrying the whole undecided state instead of
    /// what changed since the last flush: every write still undecided, and as
    /// decided every id in `stored` that this tracker issued and has decided. A
    /// resumed `tap` takes it once, where its replay catches up with the store,
    /// whose undecided writes are those of the interrupted run's last flush.
    pub fn take_full_flush(&mut self, stored: &[Vec<u8>], parking: Parking) -> Flush {
        self.changed.extend(self.undecided.keys().copied());
        let mut flush = self.take_flush(parking);
        for id in stored {
            let Ok(bytes) = <[u8; 8]>::try_from(id.as_slice()) else {
                continue;
            };
            let wid = u64::from_be_bytes(bytes);
            if wid < self.next_id
                && !self.undecided.contains_key(&wid)
                && !flush.decided.contains(id)
            {
                flush.decided.push(id.clone());
            }
        }
        flush
    }

    /// The changes since the last flush. Undecided writes are stored with the
    /// outcome known so far, so `status` can list them and their reasons; `parking`
    /// says how much of each (see [`Parking`]).
    pub fn take_flush(&mut self, parking: Parking) -> Flush {
        let mut undecided = Vec::new();
        for wid in std::mem::take(&mut self.changed) {
            if let Some(e) = self.undecided.get_mut(&wid) {
                let mutation = match parking {
                    Parking::Full => {
                        let converted = e.converted.get_or_insert_with(|| {
                            Box::new(convert::mutation(
                                &e.rec,
                                e.node,
                                e.request_time,
                                e.request_time,
                                e.outcome.clone(),
                                e.note.clone(),
                            ))
                        });
                        with_decision(
                            (**converted).clone(),
                            e.request_time,
                            e.outcome.clone(),
                            e.note.clone(),
                        )
                    }
                    Parking::Slim => slim_mutation(e),
                };
                undecided.push((
                    write_id(wid),
                    Undecided {
                        first_seen: e.request_time,
                        mutation,
                        tracker_state: match parking {
                            Parking::Full => Vec::new(),
                            Parking::Slim => SLIM_PARKED.to_vec(),
                        },
                    },
                ));
                self.persisted.insert(wid);
            }
        }
        Flush {
            mutations: std::mem::take(&mut self.ready),
            decided: self.decided_ids.drain(..).map(write_id).collect(),
            undecided,
            gaps: std::mem::take(&mut self.gaps),
            tidemark: self.tidemark,
        }
    }

    /// Takes an emptied list (a written group's) to collect the next group's
    /// mutations in, when it is larger than the one in use and that one is empty:
    /// reusing its pages saves the kernel faulting in and zeroing fresh ones for
    /// every group.
    pub fn reuse_ready_list(&mut self, mut list: Vec<Mutation>) {
        if self.ready.is_empty() && list.capacity() > self.ready.capacity() {
            list.clear();
            self.ready = list;
        }
    }

    /// Marks every undecided write as changed, so the next flush parks each anew: a
    /// file run's last flush parks in full what it parked slim before
    /// ([`Parking`]), and the store it leaves is the one a run parking in full
    /// throughout leaves.
    pub fn repark_all(&mut self) {
        self.changed.extend(self.undecided.keys().copied());
    }
}

/// How a flush parks the writes still undecided in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parking {
    /// The whole mutation as it would be logged so far. A live run's store must
    /// hold it: its input cannot be replayed, and a later run logs what it left
    /// undecided from these records alone (`settle_orphans` in `crate::tap`).
    Full,
    /// What `status` lists (namespace, key, node, outcome, reason, first seen) under
    /// the write id, without the payload or the write line, marked
    /// [`SLIM_PARKED`]. For a file run before its last flush: a resume replays the
    /// capture and re-decides every write, needing only the ids of the parked
    /// ones (`take_full_flush`), and the last flush parks in full what is still
    /// undecided then. Parking a MongoDB `w:1` write's 1 KB document, only to delete
    /// it when the capture's end decides it, was half of a file tap's store time.
    Slim,
}

/// `tracker_state` of a write parked [`Parking::Slim`]: the record names the write
/// but lacks its content, which only a replay of the file run's capture gives back.
pub const SLIM_PARKED: &[u8] = b"slim: replay the capture";

/// What [`Parking::Slim`] stores of an undecided write: every field `status` reads,
/// as [`convert::mutation`] would fill it, nothing it would have to convert.
fn slim_mutation(e: &Entry) -> Mutation {
    use crate::store::{Acknowledgement, CqlPayload, Evidence, MongoOp, Payload, Source};
    let payload = match &e.rec.extras.mongo_op {
        Some(op) if e.rec.proto == "mongo" => Payload::Mongo(MongoOp {
            op: op.op,
            ns: op.ns.clone(),
            o: bytes::Bytes::new(),
            o2: None,
            optime: op.optime.or(e.rec.extras.optime),
            lsid: op.lsid,
            txn_number: op.txn_number,
            stmt_id: op.stmt_id,
        }),
        _ => Payload::Cql(CqlPayload::default()),
    };
    Mutation {
        commit_time: e.request_time,
        source: Source {
            node: e.node,
            flow: e.rec.flow,
        },
        namespace: convert::namespace(&e.rec),
        key: convert::canonical_key(&e.rec),
        op: convert::write_op(&e.rec),
        outcome: e.outcome.clone(),
        evidence: Evidence {
            note: e.note.clone(),
            ..Evidence::default()
        },
        write_timestamp: e.rec.timestamp,
        ttl: e.rec.ttl.and_then(|t| u32::try_from(t).ok()),
        ack: Acknowledgement::Unknown,
        batch: None,
        payload,
        line: None,
        line_values: None,
        ddl: None,
    }
}

/// Prefix of the write ids under which a live run keeps the requests its decoders
/// hold (see [`CommitTracker::in_flight`]); the tracker's own ids are 8 bytes, so the
/// two never meet.
pub const IN_FLIGHT_ID_PREFIX: &[u8] = b"in-flight\0";

/// What a request seen on the wire but not answered yet is stored as.
const IN_FLIGHT_NOTE: &str = "request seen; its response has not arrived yet";

impl CommitTracker {
    /// The write lines the decoders still hold (requests waiting for their response,
    /// statements of open transactions), as undecided records for the store: outcome
    /// `pending`, first seen at the request's time, ids under
    /// [`IN_FLIGHT_ID_PREFIX`] numbered in the order given. A live run replaces the
    /// stored set at each group commit, so a crash leaves exactly what was in flight
    /// at the last one, and the next live run logs it in doubt (`no_response`).
    /// Control lines (commitTransaction / abortTransaction) are not writes and are left out.
    pub fn in_flight(&self, lines: &[WriteRecord]) -> Vec<(Vec<u8>, Undecided)> {
        lines
            .iter()
            // A router's copies of its clients' writes are never logged: nothing of
            // them is in flight either (the client's write to the router is).
            .filter(|rec| !is_control(rec) && !self.router_copy(rec))
            .enumerate()
            .map(|(i, rec)| {
                let t = rec.ts.0;
                let mutation = convert::mutation(
                    rec,
                    self.node_of(rec.flow),
                    t,
                    t,
                    Outcome::Pending,
                    IN_FLIGHT_NOTE.to_string(),
                );
                let mut id = IN_FLIGHT_ID_PREFIX.to_vec();
                id.extend_from_slice(&(i as u64).to_be_bytes());
                (
                    id,
                    Undecided {
                        first_seen: t,
                        mutation,
                        tracker_state: Vec::new(),
                    },
                )
            })
            .collect()
    }
}

/// A converted mutation with the decision's fields set (what `convert::mutation`
/// fills from its last three arguments).
fn with_decision(mut m: Mutation, commit_time: u64, outcome: Outcome, note: String) -> Mutation {
    m.commit_time = commit_time;
    m.outcome = outcome;
    m.evidence.note = note;
    m
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::InDoubt { reason } => format!("in_doubt({})", reason.as_str()),
        other => other.kind().as_str().to_string(),
    }
}
