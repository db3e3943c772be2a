//! What the tracker knows of a MongoDB replica set's replication: the majority
//! commit point, the term, members' durable optimes, and the oplog entries seen
//! being fetched (ARCHITECTURE.md, MongoDB outcome rules).
//!
//! Optimes order by term, then timestamp, as MongoDB's `OpTime` does. A write whose
//! reply carried no term (`t = -1`) compares by timestamp alone.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::mongo_rules::{Deployment, Kind};
use crate::decode::records::ReplicationEvent;
use crate::store::{MongoOp, MongoOpKind, OpTime};

/// How a pending write stands against the replication state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not yet known.
    Wait,
    /// The commit point passed it.
    Committed {
        commit_point: OpTime,
        source: &'static str,
    },
    /// A later term's commit point passed its time, and the history it commits was
    /// seen going from an entry before the write straight to one after it: a
    /// rollback removed it. (Not seeing the entry proves nothing: a fault may have
    /// cut the flow that would have shown it.)
    RolledBack { commit_point: OpTime },
    /// A later term's commit point passed an older term's write and no oplog is in
    /// sight (a proxy sees only the clients' side): the new term may have kept it or
    /// rolled it back, and nothing will ever say which.
    Unknown { commit_point: OpTime },
}

/// An oplog entry seen in a secondary's fetch.
#[derive(Debug, Clone)]
pub struct SeenEntry {
    pub optime: OpTime,
    pub op: MongoOp,
    /// Capture time it was first seen (ns).
    pub seen_at: u64,
    /// A client write was matched to it, or it was logged on its own.
    pub matched: bool,
    /// It was logged on its own (no client write matched it in time).
    pub logged: bool,
    /// The flow (a secondary's fetcher connection) it was seen on.
    pub flow: u64,
    /// The fetching member went on to ask for more on that flow, so it received and
    /// processed the batch. An entry seen on the wire whose fetcher never asked
    /// again (its connection was cut mid-partition) proves nothing about the
    /// secondary having it.
    pub confirmed: bool,
    /// The entries seen right after this one in one fetched batch: a batch is a
    /// stretch of its source's oplog, so each is this entry's successor in that
    /// member's history (two when histories forked after it).
    pub next: Vec<OpTime>,
}

/// Most successors kept per entry (histories fork rarely; more says nothing new).
const MAX_NEXT: usize = 4;
/// Bounds a walk over successor links (an older term's write waiting for evidence
/// is checked at every commit point move: the walks must stay cheap).
const MAX_WALK: usize = 256;
/// How many entries before a write are looked at for a pair that skips it.
const MAX_LOOK_BACK: usize = 16;
/// Fetcher flows whose current batch is remembered; beyond it the map starts over
/// (it only costs a missed link).
const MAX_FLOWS: usize = 4096;

/// Replication state of one replica set (a sharded cluster has one per shard and one
/// for the config servers: [`super::repl_sets`]).
#[derive(Debug, Default)]
pub struct ReplState {
    /// Highest commit point seen, and where it came from.
    pub commit_point: Option<(OpTime, &'static str)>,
    /// Highest term seen anywhere (hello, commit points, oplog entries).
    pub term: i64,
    /// Voting members (from hello `hosts`, else configuration).
    pub members: Option<usize>,
    /// Durable optime per member id, from `replSetUpdatePosition`.
    pub durable: HashMap<i64, OpTime>,
    /// Any replication traffic at all (commit points, positions, oplog fetches).
    pub visible: bool,
    /// Oplog fetches seen: entries are then authoritative and rollbacks detectable.
    pub oplog_visible: bool,
    /// Entries seen, by BSON timestamp.
    pub entries: BTreeMap<u64, SeenEntry>,
    /// Timestamps of the entries not matched yet, so matching, orphan logging and the
    /// tidemark look at the few entries still open instead of every kept one (up to
    /// `KEEP_ENTRIES`, most of them long matched).
    unmatched: BTreeSet<u64>,
    /// The same entries by (first seen, timestamp): the oldest holds the tidemark.
    unmatched_by_seen: BTreeSet<(u64, u64)>,
    /// Entries per fetcher flow not yet confirmed by a further request on it.
    pub tentative: HashMap<u64, Vec<u64>>,
    /// What the servers said they are, for the deployment rules.
    pub deployment: Deployment,
    /// Per fetcher flow: the capture time of the reply whose entries are being
    /// taken in and the last of them, so the next one of the same reply is its
    /// successor. Entries of two replies are not linked: a capture gap or a new
    /// cursor may lie between them.
    batch_tail: HashMap<u64, (u64, OpTime)>,
    /// A CRUD entry carrying retryable-write ids was fetched: the server writes them
    /// (MongoDB 3.6+ always does; some test servers did not), so a retryable
    /// statement's entry is known to carry its ids (see [`same_statement`]).
    entries_carry_sessions: bool,
    /// A link into a newer term was added since [`ReplState::take_history_grew`]:
    /// an older term's write waiting for evidence may now be decidable.
    history_grew: bool,
}

/// `a` at or before `b` in MongoDB's optime order (unknown terms compare by time).
pub fn covers(commit_point: OpTime, write: OpTime) -> bool {
    if write.t < 0 || commit_point.t < 0 || write.t == commit_point.t {
        write.ts <= commit_point.ts
    } else {
        write.t < commit_point.t
    }
}

impl ReplState {
    /// The state of a set with `members` voting members, when configured.
    pub fn with_members(members: Option<usize>) -> Self {
        ReplState {
            members,
            ..ReplState::default()
        }
    }

    /// Takes in one replication fact; returns whether the commit point moved.
    pub fn apply(&mut self, event: &ReplicationEvent, flow: u64, at: u64) -> bool {
        // What a server says it is, and a cluster-wide default, are no replication
        // traffic: a standalone's writes must still meet the policy when nothing
        // else decides them.
        self.visible |= !matches!(
            event,
            ReplicationEvent::Standalone { .. }
                | ReplicationEvent::DefaultWriteConcern { .. }
                | ReplicationEvent::Router
        );
        match event {
            ReplicationEvent::CommitPoint { optime, source } => self.advance(*optime, source),
            ReplicationEvent::Standalone { max_wire_version } => {
                self.deployment.kind = Kind::Standalone;
                self.deployment.max_wire_version = *max_wire_version;
                false
            }
            ReplicationEvent::Router => false,
            ReplicationEvent::DefaultWriteConcern { majority, .. } => {
                self.deployment.cluster_default_majority = *majority;
                false
            }
            ReplicationEvent::MemberPositions { durable } => {
                // Positions are reported by a secondary: the set has another member.
                self.deployment.other_members_seen = true;
                for (member, optime) in durable {
                    let e = self.durable.entry(*member).or_insert(*optime);
                    if (optime.t, optime.ts) > (e.t, e.ts) {
                        *e = *optime;
                    }
                }
                match self.majority_durable() {
                    Some(cp) => self.advance(cp, "replSetUpdatePosition"),
                    None => false,
                }
            }
            ReplicationEvent::Topology {
                members,
                term,
                arbiters,
                max_wire_version,
                ..
            } => {
                if *members > 0 {
                    self.members = Some(*members);
                }
                self.deployment.kind = Kind::ReplicaSet {
                    voters: *members,
                    arbiters: *arbiters,
                };
                self.deployment.max_wire_version = *max_wire_version;
                if let Some(t) = term {
                    self.term = self.term.max(*t);
                }
                false
            }
            ReplicationEvent::OplogEntry { optime, op, .. } => {
                self.oplog_visible = true;
                self.entries_carry_sessions |= matches!(
                    op.op,
                    MongoOpKind::Insert | MongoOpKind::Update | MongoOpKind::Delete
                ) && retryable_ids(op).is_some();
                // Someone fetches the oplog: a secondary (perhaps a hidden one).
                self.deployment.other_members_seen = true;
                self.term = self.term.max(optime.t);
                if let std::collections::btree_map::Entry::Vacant(v) = self.entries.entry(optime.ts)
                {
                    v.insert(SeenEntry {
                        optime: *optime,
                        op: op.clone(),
                        seen_at: at,
                        matched: false,
                        logged: false,
                        flow,
                        confirmed: false,
                        next: Vec::new(),
                    });
                    self.unmatched.insert(optime.ts);
                    self.unmatched_by_seen.insert((at, optime.ts));
                }
                self.tentative.entry(flow).or_default().push(optime.ts);
                if self.batch_tail.len() >= MAX_FLOWS && !self.batch_tail.contains_key(&flow) {
                    self.batch_tail.clear();
                }
                match self.batch_tail.insert(flow, (at, *optime)) {
                    Some((prev_at, prev)) if prev_at == at => self.link(prev, *optime),
                    _ => {}
                }
                false
            }
        }
    }

    /// Records that `next` follows `prev` in some member's oplog.
    fn link(&mut self, prev: OpTime, next: OpTime) {
        let Some(e) = self.entries.get_mut(&prev.ts) else {
            return;
        };
        if e.optime == prev && !e.next.contains(&next) && e.next.len() < MAX_NEXT {
            e.next.push(next);
            // A link into a newer term is what decides an older term's writes.
            self.history_grew |= next.t > prev.t;
        }
    }

    /// Whether a link from one term into a newer one was added since the last call.
    pub fn take_history_grew(&mut self) -> bool {
        std::mem::take(&mut self.history_grew)
    }

    /// Whether the entry at `at` is in the history the commit point `cp` commits:
    /// following successor links from it reaches an entry of `cp`'s term at or
    /// before `cp`. Oplogs obey log matching (two histories holding the same entry
    /// hold the same entries before it), so whatever precedes a committed entry in
    /// any history is committed. Bounded; `false` when the links seen do not show it.
    fn in_committed_history(&self, at: OpTime, cp: OpTime) -> bool {
        let mut todo = vec![at];
        let mut seen = BTreeSet::new();
        while let Some(o) = todo.pop() {
            if o.t == cp.t && o.ts <= cp.ts {
                return true;
            }
            if seen.len() >= MAX_WALK || !seen.insert((o.t, o.ts)) {
                continue;
            }
            if let Some(e) = self.entries.get(&o.ts).filter(|e| e.optime == o) {
                todo.extend(e.next.iter().copied());
            }
        }
        false
    }

    /// Whether the history `cp` commits is seen to skip `write`: two entries
    /// fetched one right after the other, the first before the write in optime
    /// order and the second after it (and not it), the second in that history.
    fn skipped_by_committed_history(&self, write: OpTime, cp: OpTime) -> bool {
        let before = |o: &OpTime| (o.t, o.ts) < (write.t, write.ts);
        self.entries
            .range(..=write.ts)
            .rev()
            .take(MAX_LOOK_BACK)
            .filter(|(_, e)| e.optime != write && before(&e.optime))
            .any(|(_, e)| {
                e.next.iter().any(|n| {
                    *n != write
                        && (n.t, n.ts) > (write.t, write.ts)
                        && self.in_committed_history(*n, cp)
                })
            })
    }

    fn advance(&mut self, optime: OpTime, source: &'static str) -> bool {
        self.term = self.term.max(optime.t);
        match self.commit_point {
            Some((cp, _)) if (optime.t, optime.ts) <= (cp.t, cp.ts) => false,
            _ => {
                self.commit_point = Some((optime, source));
                true
            }
        }
    }

    /// The majority-th highest durable optime, when enough members reported.
    fn majority_durable(&self) -> Option<OpTime> {
        let n = self.members.unwrap_or(0).max(self.durable.len());
        let majority = n / 2 + 1;
        let mut all: Vec<OpTime> = self.durable.values().copied().collect();
        if all.len() < majority {
            return None;
        }
        all.sort_by_key(|o| std::cmp::Reverse((o.t, o.ts)));
        Some(all[majority - 1])
    }

    /// Where a write with `optime` stands.
    pub fn verdict(&self, optime: OpTime) -> Verdict {
        let Some((cp, source)) = self.commit_point else {
            return Verdict::Wait;
        };
        if !covers(cp, optime) {
            return Verdict::Wait;
        }
        // Same term (or no term to compare): the commit point covers it.
        if optime.t < 0 || cp.t <= optime.t {
            return Verdict::Committed {
                commit_point: cp,
                source,
            };
        }
        // An older term's write under a newer term's commit point: it survived the
        // election only if the new history has it. Rolled back only on evidence
        // that it is gone (the committed history seen going from an entry before it
        // straight to one after it); with no evidence either way, it waits.
        // Without the oplog nothing will show it either way: in doubt, not committed
        // (found by the proxied histories: a w:1 insert acknowledged by a partitioned
        // primary, rolled back when it rejoined, was logged committed through a
        // proxy and stayed in every version).
        if !self.oplog_visible {
            return Verdict::Unknown { commit_point: cp };
        }
        let committed = Verdict::Committed {
            commit_point: cp,
            source,
        };
        if self.in_committed_history(optime, cp) {
            return committed;
        }
        if self.skipped_by_committed_history(optime, cp) {
            return Verdict::RolledBack { commit_point: cp };
        }
        match self.entries.get(&optime.ts) {
            Some(e) if e.optime.t == optime.t && e.confirmed => committed,
            _ => Verdict::Wait,
        }
    }

    /// Entries no client write matched that the commit point now covers and that
    /// are in the history it commits, in oplog order; they are marked so each is
    /// returned once. An older term's entry under a newer term's commit point is
    /// decided as a client write at its time would be ([`Self::verdict`]): returned
    /// once the new history is seen holding it, dropped (never logged) once it is
    /// seen skipping it — a rollback removed it — and left waiting otherwise (found
    /// by the randomized histories: a w:1 `updateMany` acknowledged by a primary
    /// that was then partitioned was decided rolled back, yet its fetched entry was
    /// logged as a committed write of its own, and every later version held it).
    pub fn take_committed_orphans(&mut self, older_than: u64) -> Vec<SeenEntry> {
        let Some((cp, _)) = self.commit_point else {
            return Vec::new();
        };
        let mut due: Vec<u64> = Vec::new();
        let mut gone: Vec<u64> = Vec::new();
        for ts in self.unmatched.iter().copied() {
            let Some(e) = self.entries.get(&ts) else {
                continue;
            };
            if !covers(cp, e.optime) || e.seen_at > older_than {
                continue;
            }
            match self.verdict(e.optime) {
                Verdict::Committed { .. } => due.push(ts),
                Verdict::RolledBack { .. } => gone.push(ts),
                Verdict::Wait | Verdict::Unknown { .. } => {}
            }
        }
        for ts in gone {
            self.set_matched(ts);
        }
        let mut out = Vec::new();
        for ts in due {
            self.set_matched(ts);
            let Some(e) = self.entries.get_mut(&ts) else {
                continue;
            };
            // A no-op (`n`: "new primary", periodic no-ops) changes nothing.
            if e.op.op != crate::store::MongoOpKind::Noop {
                e.logged = true;
                out.push(e.clone());
            }
        }
        out
    }

    /// When the oldest entry no client write matched yet was first seen: the
    /// tidemark cannot pass it, since a write may still turn out to be it.
    pub fn oldest_unmatched_seen(&self) -> Option<u64> {
        self.unmatched_by_seen.first().map(|(seen, _)| *seen)
    }

    /// Finds the entry a client write is, by optime, session ids, inserted document
    /// bytes, or the `_id` of a by-`_id` update/delete; marks it matched.
    ///
    /// `exact`: only an entry the statement's retryable-write ids or inserted
    /// document name, never one of the same `_id` alone (see [`same_statement`]).
    pub fn match_write(
        &mut self,
        op: &MongoOp,
        optime: Option<OpTime>,
        exact: bool,
    ) -> Option<SeenEntry> {
        let carry = self.entries_carry_sessions;
        let same = |e: &MongoOp| {
            same_statement(op, e, carry)
                && (!exact || retryable_ids(op).is_some() || op.op == MongoOpKind::Insert)
        };
        // The reply's optime is the *last* statement's for a multi-statement
        // command, so an entry found by optime must also be this statement.
        // An entry another client write already took is not this one's (a write
        // that changed nothing gets the reply's `operationTime` of an earlier
        // write); one logged on its own is returned, so the caller sees the copy.
        let by_optime = optime.map(|o| o.ts).filter(|ts| {
            self.entries
                .get(ts)
                .is_some_and(|e| (!e.matched || e.logged) && same(&e.op))
        });
        // Otherwise the newest unmatched entry that is this statement.
        let ts = by_optime.or_else(|| {
            self.unmatched
                .iter()
                .rev()
                .copied()
                .find(|ts| self.entries.get(ts).is_some_and(|e| same(&e.op)))
        })?;
        self.set_matched(ts);
        self.entries.get(&ts).cloned()
    }

    /// The entries a multi-document or filter-by-anything-but-`_id` update or delete
    /// became, for a client write that no entry matched one to one: the unmatched
    /// entries of its namespace and kind (an update's upserts included) at or before
    /// its optime and after `after` (the previous acknowledged optime on its
    /// connection, which sends one request at a time), in oplog order; each is
    /// marked matched. Empty when the write's optime is not known.
    pub fn take_entries_of(
        &mut self,
        op: &MongoOp,
        optime: Option<OpTime>,
        after: Option<u64>,
    ) -> Vec<SeenEntry> {
        let Some(upto) = optime.map(|o| o.ts) else {
            return Vec::new();
        };
        // `after` past `upto`: the connection's optimes went backwards, as a sharded
        // cluster's router's do (each reply carries its shard's optime).
        if !matches!(op.op, MongoOpKind::Update | MongoOpKind::Delete)
            || after.is_some_and(|a| a >= upto)
        {
            return Vec::new();
        }
        let lo = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        let found: Vec<u64> = self
            .unmatched
            .range((lo, std::ops::Bound::Included(upto)))
            .copied()
            .filter(|ts| {
                self.entries.get(ts).is_some_and(|e| {
                    e.op.ns == op.ns
                        && same_kind(op.op, e.op.op)
                        // An entry carrying retryable-write ids is that statement's
                        // (a concurrent retryable replaceOne on another connection),
                        // and a retryable statement's entries carry its ids: the
                        // session ids must agree (`same_session_class`).
                        && same_session_class(op, &e.op, self.entries_carry_sessions)
                })
            })
            .collect();
        let mut out = Vec::new();
        for ts in found {
            self.set_matched(ts);
            out.extend(self.entries.get(&ts).cloned());
        }
        out
    }

    /// Whether `entry` is the form of client statement `op` ([`same_statement`], with
    /// what the fetched entries showed of the server's session ids).
    pub fn is_form_of(&self, op: &MongoOp, entry: &MongoOp) -> bool {
        same_statement(op, entry, self.entries_carry_sessions)
    }

    /// A request went out on `flow`: a fetcher there asked for more, so the entries
    /// it was sent before are confirmed received.
    pub fn confirm_flow(&mut self, flow: u64) {
        if let Some(list) = self.tentative.remove(&flow) {
            for ts in list {
                if let Some(e) = self.entries.get_mut(&ts) {
                    e.confirmed = true;
                }
            }
        }
    }

    /// Marks the entry at `ts` as the form of a client write (so it is not logged on
    /// its own).
    pub fn mark_matched(&mut self, ts: u64) {
        self.set_matched(ts);
    }

    /// The entry at `ts` turned out not to be the write that took it: unmatched
    /// again (unless it was logged on its own), for its own write or orphan logging.
    pub fn release(&mut self, ts: u64) {
        if let Some(e) = self.entries.get_mut(&ts) {
            if e.matched && !e.logged {
                e.matched = false;
                self.unmatched.insert(ts);
                self.unmatched_by_seen.insert((e.seen_at, ts));
            }
        }
    }

    /// The one place an entry becomes matched, keeping the unmatched index true.
    fn set_matched(&mut self, ts: u64) {
        if let Some(e) = self.entries.get_mut(&ts) {
            if !e.matched {
                e.matched = true;
                self.unmatched.remove(&ts);
                self.unmatched_by_seen.remove(&(e.seen_at, ts));
            }
        }
    }

    /// Forgets entries the commit point covered more than `keep` entries ago (bounds
    /// memory on long captures).
    pub fn prune(&mut self, keep: usize) {
        while self.entries.len() > keep {
            let Some((&ts, e)) = self.entries.iter().next() else {
                break;
            };
            if !e.matched {
                break;
            }
            self.entries.remove(&ts);
        }
    }
}

/// Whether an oplog entry is the form of a client statement: same namespace and
/// kind, and the same retryable-write ids, inserted document, or `_id`.
///
/// The session ids decide first, both ways. A retryable statement (`lsid`,
/// `txnNumber`, `stmtId`) writes its entry with exactly those ids (MongoDB 3.6+), so
/// an entry with others is another write's, and, once the server is seen writing
/// them (`entries_carry_sessions`: an entry with retryable ids was fetched), so is
/// an entry without them, however equal its `_id`. An entry that carries them is
/// that retryable statement's, never a write without them. A transaction's
/// statement (`lsid` and `txnNumber`, no `stmtId`) is never a CRUD entry: its form
/// is its transaction's `applyOps`. Otherwise the inserted document or the `_id`
/// decide — between two writes of one document without session ids the wire cannot
/// tell, which is harmless as long as each entry is logged once as what it says
/// (see [`ReplState::take_entries_of`]).
///
/// Found by the MongoDB soak (`tests/regressions/mongo-update-many-concurrent-replace.json`):
/// a retryable `replaceOne` of `_id` 4 acknowledged before its entry was fetched took
/// a concurrent `updateMany`'s `$inc` entry of `_id` 4 by `_id`; the replacement's own
/// entry, fetched next, was then recognised by its session ids as already logged and
/// dropped, and versions lost the replacement.
pub(crate) fn same_statement(op: &MongoOp, e: &MongoOp, entries_carry_sessions: bool) -> bool {
    if e.ns != op.ns
        || !same_kind(op.op, e.op)
        || !same_session_class(op, e, entries_carry_sessions)
    {
        return false;
    }
    if retryable_ids(e).is_some() {
        return true; // the same ids (`same_session_class`)
    }
    match op.op {
        MongoOpKind::Insert => e.o == op.o,
        _ => same_id(op, e),
    }
}

/// Whether the session ids allow entry `e` to be (one of) client statement `op`'s
/// (see [`same_statement`]): the same retryable-write ids; none on the entry, for a
/// statement outside a transaction without them or, from a server not seen writing
/// them, with them.
fn same_session_class(op: &MongoOp, e: &MongoOp, entries_carry_sessions: bool) -> bool {
    match (retryable_ids(op), retryable_ids(e)) {
        (Some(a), Some(b)) => a == b,
        (None, Some(_)) => false,
        (Some(_), None) => !entries_carry_sessions,
        (None, None) => !(op.lsid.is_some() && op.txn_number.is_some()),
    }
}

/// The retryable-write ids of a statement or entry: `lsid`, `txnNumber`, `stmtId`,
/// all three present.
fn retryable_ids(op: &MongoOp) -> Option<([u8; 16], i64, i32)> {
    Some((op.lsid?, op.txn_number?, op.stmt_id?))
}

/// Whether an entry of kind `entry` can be the effect of a client statement of kind
/// `client`: the same kind, or an update that upserted (the oplog has the `i`).
fn same_kind(client: MongoOpKind, entry: MongoOpKind) -> bool {
    client == entry || (client == MongoOpKind::Update && entry == MongoOpKind::Insert)
}

/// `_id` of a client update/delete filter equals the entry's `o2._id` / `o._id`.
fn same_id(client: &MongoOp, entry: &MongoOp) -> bool {
    match (
        client.target_doc().and_then(id_of),
        entry.target_doc().and_then(id_of),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// A document's `_id` value, if it has one.
fn id_of(doc: &[u8]) -> Option<tidemark_mongo::bson::RawBson> {
    let doc = tidemark_mongo::bson::RawDocument::from_bytes(doc).ok()?;
    Some(tidemark_mongo::bson::RawBson::from(doc.get("_id").ok()??))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ot(ts: u64, t: i64) -> OpTime {
        OpTime { ts, t }
    }

    #[test]
    fn commit_point_covers_by_term_then_time() {
        assert!(covers(ot(10, 1), ot(10, 1)));
        assert!(!covers(ot(9, 1), ot(10, 1)));
        assert!(covers(ot(5, 2), ot(10, 1)));
        assert!(covers(ot(10, -1), ot(10, 3)));
    }

    fn update_of(id: i32, session: Option<([u8; 16], Option<i64>, Option<i32>)>) -> MongoOp {
        use tidemark_mongo::bson::rawdoc;
        MongoOp {
            op: MongoOpKind::Update,
            ns: "d.c".into(),
            o: rawdoc! {"$inc": {"n": 10}}.into_bytes().into(),
            o2: Some(rawdoc! {"_id": id}.into_bytes().into()),
            optime: None,
            lsid: session.map(|s| s.0),
            txn_number: session.and_then(|s| s.1),
            stmt_id: session.and_then(|s| s.2),
        }
    }

    /// The session ids decide before the `_id`, both ways: a retryable statement is
    /// never an entry without its ids (a concurrent non-retryable write's entry of
    /// the same `_id`), an entry with retryable ids is never a write without them,
    /// and a transaction's statement is never a CRUD entry.
    #[test]
    fn session_ids_decide_before_the_id() {
        let retryable = update_of(4, Some(([7; 16], Some(3), Some(0))));
        let plain_entry = update_of(4, None);
        let plain_client = update_of(4, Some(([9; 16], None, None)));
        let txn_statement = update_of(4, Some(([9; 16], Some(1), None)));
        for carry in [true, false] {
            assert!(same_statement(&retryable, &retryable, carry));
            assert!(!same_statement(&plain_client, &retryable, carry));
            assert!(same_statement(&plain_client, &plain_entry, carry));
            assert!(!same_statement(&txn_statement, &plain_entry, carry));
            assert!(!same_statement(&update_of(5, None), &plain_entry, carry));
        }
        // A retryable statement and an entry without session ids: another write's
        // once the server is seen writing them; by `_id` from one that does not.
        assert!(!same_statement(&retryable, &plain_entry, true));
        assert!(same_statement(&retryable, &plain_entry, false));
    }

    #[test]
    fn majority_of_durable_positions_is_a_commit_point() {
        let mut r = ReplState {
            members: Some(3),
            ..ReplState::default()
        };
        let ev = ReplicationEvent::MemberPositions {
            durable: vec![(0, ot(30, 1)), (1, ot(20, 1))],
        };
        assert!(r.apply(&ev, 1, 0));
        assert_eq!(r.commit_point.map(|c| c.0), Some(ot(20, 1)));
        assert!(matches!(r.verdict(ot(20, 1)), Verdict::Committed { .. }));
        assert_eq!(r.verdict(ot(21, 1)), Verdict::Wait);
    }
}
