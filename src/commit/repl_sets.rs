//! Replication state per replica set: a sharded cluster is several replica sets
//! (each shard, and the config servers), each with its own terms, member ids,
//! commit point and oplog, all seen by one tap.
//!
//! One [`ReplState`] for the whole capture mixed them: `replSetUpdatePosition`
//! reports of member 0 of two shards overwrote each other (a majority of durable
//! positions taken across sets commits a lagging shard's write early), one set's
//! commit point decided another set's write, a term from one set made another
//! set's write look older-term (rollback evidence looked for in the wrong history),
//! and two shards' oplog entries with the same timestamp — the cluster time is one
//! clock, two primaries can stamp the same second and increment — took each
//! other's place.
//!
//! Each fact is attributed to the set of the server that said it: a flow's server
//! end is mapped to its set by the hello replies that name the set (`setName`,
//! and `hosts`/`passives`/`arbiters`, so every member is known from one hello).
//! Until a set is named, facts go to the first set — the one a replica-set
//! capture has — which takes the first name seen. A write is decided by its
//! server's set; a write sent to a sharded cluster's router ([`Scope::Cluster`]) by
//! the set whose oplog entry it took, and before that by every set at once: the
//! cluster's commit point is the minimum over the shards and the config servers.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::mongo_rules::Deployment;
use super::replication::{covers, ReplState, SeenEntry, Verdict};
use crate::decode::records::ReplicationEvent;
use crate::store::{MongoOp, OpTime};

/// Which replication decides a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One replica set's (an index into [`ReplSets`]).
    Set(usize),
    /// A sharded cluster router's client write not yet matched to an oplog entry:
    /// every set's commit point must pass it.
    Cluster,
}

/// See the module docs.
#[derive(Debug)]
pub struct ReplSets {
    sets: Vec<ReplState>,
    /// Each set's name, once a hello named it (the first set starts unnamed).
    names: Vec<Option<String>>,
    /// Server address → set, from hello replies.
    by_node: HashMap<SocketAddr, usize>,
    /// The cluster-wide default write concern last stated (it holds for every set,
    /// including those named later).
    default_write_concern: Option<Option<bool>>,
}

impl ReplSets {
    /// One (unnamed) set with `members` voting members when configured.
    pub fn new(members: Option<usize>) -> Self {
        ReplSets {
            sets: vec![ReplState::with_members(members)],
            names: vec![None],
            by_node: HashMap::new(),
            default_write_concern: None,
        }
    }

    /// The set of the server at `node`: its named set, else the first set.
    pub fn set_of(&self, node: SocketAddr) -> usize {
        self.by_node.get(&node).copied().unwrap_or(0)
    }

    /// Whether a hello has named the set of the server at `node`.
    pub fn knows(&self, node: SocketAddr) -> bool {
        self.by_node.contains_key(&node)
    }

    /// How many sets have been seen (1 until a second set name appears).
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// Always false: there is at least the first set.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    pub fn get(&self, set: usize) -> &ReplState {
        &self.sets[set.min(self.sets.len() - 1)]
    }

    pub fn get_mut(&mut self, set: usize) -> &mut ReplState {
        let last = self.sets.len() - 1;
        &mut self.sets[set.min(last)]
    }

    /// Every set, with its index.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut ReplState)> {
        self.sets.iter_mut().enumerate()
    }

    /// The deployment facts of every set (to see whether an event changed them).
    pub fn deployments(&self) -> Vec<Deployment> {
        self.sets.iter().map(|s| s.deployment.clone()).collect()
    }

    /// The set named `name`, created when new (the first name names the first set).
    fn named(&mut self, name: &str) -> usize {
        if let Some(i) = self.names.iter().position(|n| n.as_deref() == Some(name)) {
            return i;
        }
        if self.names[0].is_none() {
            self.names[0] = Some(name.to_owned());
            return 0;
        }
        let mut state = ReplState::default();
        if let Some(majority) = self.default_write_concern {
            state.deployment.cluster_default_majority = majority;
        }
        self.sets.push(state);
        self.names.push(Some(name.to_owned()));
        self.sets.len() - 1
    }

    /// Takes in one replication fact said by the server at `node` on `flow`;
    /// returns the set it went to and whether that set's commit point moved.
    pub fn apply(
        &mut self,
        event: &ReplicationEvent,
        flow: u64,
        node: SocketAddr,
        at: u64,
    ) -> (usize, bool) {
        match event {
            ReplicationEvent::Topology {
                set_name: Some(name),
                hosts,
                ..
            } => {
                let set = self.named(name);
                self.by_node.insert(node, set);
                for h in hosts {
                    if let Ok(addr) = h.parse::<SocketAddr>() {
                        self.by_node.insert(addr, set);
                    }
                }
                (set, self.sets[set].apply(event, flow, at))
            }
            // Cluster-wide: every set's writes inherit it.
            ReplicationEvent::DefaultWriteConcern { majority, .. } => {
                self.default_write_concern = Some(*majority);
                for s in &mut self.sets {
                    s.apply(event, flow, at);
                }
                (self.set_of(node), false)
            }
            _ => {
                let set = self.set_of(node);
                (set, self.sets[set].apply(event, flow, at))
            }
        }
    }

    /// A request went out on `flow`: a fetcher there asked for more.
    pub fn confirm_flow(&mut self, flow: u64) {
        for s in &mut self.sets {
            s.confirm_flow(flow);
        }
    }

    /// Any replication traffic at all, in the scope.
    pub fn visible(&self, scope: Scope) -> bool {
        match scope {
            Scope::Set(i) => self.get(i).visible,
            Scope::Cluster => self.sets.iter().any(|s| s.visible),
        }
    }

    /// Oplog fetches seen, in the scope.
    pub fn oplog_visible(&self, scope: Scope) -> bool {
        match scope {
            Scope::Set(i) => self.get(i).oplog_visible,
            Scope::Cluster => self.sets.iter().any(|s| s.oplog_visible),
        }
    }

    /// The latest term of the scope's set (0 for the cluster: terms are per set).
    pub fn term(&self, scope: Scope) -> i64 {
        match scope {
            Scope::Set(i) => self.get(i).term,
            Scope::Cluster => 0,
        }
    }

    /// The scope's commit point: its set's, or the cluster's — the lowest of the
    /// sets that show replication, and none while one of them has shown none yet.
    pub fn commit_point(&self, scope: Scope) -> Option<(OpTime, &'static str)> {
        match scope {
            Scope::Set(i) => self.get(i).commit_point,
            Scope::Cluster => {
                let mut lowest: Option<(OpTime, &'static str)> = None;
                for s in self.sets.iter().filter(|s| s.visible) {
                    let cp = s.commit_point?;
                    if lowest.is_none_or(|(l, _)| cp.0.ts < l.ts) {
                        lowest = Some(cp);
                    }
                }
                lowest
            }
        }
    }

    /// Where a write with `optime` stands in its scope. The cluster compares by
    /// time alone (terms are per set): committed once every set's commit point has
    /// passed it; a rollback is only ever seen in the set whose entry it took.
    pub fn verdict(&self, scope: Scope, optime: OpTime) -> Verdict {
        match scope {
            Scope::Set(i) => self.get(i).verdict(optime),
            Scope::Cluster => match self.commit_point(Scope::Cluster) {
                Some((cp, source)) if covers(OpTime { ts: cp.ts, t: -1 }, optime) => {
                    Verdict::Committed {
                        commit_point: cp,
                        source,
                    }
                }
                _ => Verdict::Wait,
            },
        }
    }

    /// Where a router's write that crossed to several shards stands: committed
    /// when each shard's part is (by its set's commit point, at the optime the
    /// shard acknowledged it with), rolled back when one part is, and
    /// unknowable when one part is.
    pub fn verdict_of_copies(&self, copies: &[(usize, OpTime)]) -> Verdict {
        let mut committed = None;
        for &(set, optime) in copies {
            match self.verdict(Scope::Set(set), optime) {
                v @ Verdict::Committed { .. } => {
                    committed.get_or_insert(v);
                }
                other => return other,
            }
        }
        committed.unwrap_or(Verdict::Wait)
    }

    /// The entry a client write is ([`ReplState::match_write`]), searched in the
    /// scope's set, or in every set for the cluster; with the set it is in.
    pub fn match_write(
        &mut self,
        scope: Scope,
        op: &MongoOp,
        optime: Option<OpTime>,
        exact: bool,
    ) -> Option<(usize, SeenEntry)> {
        match scope {
            Scope::Set(i) => {
                let i = i.min(self.sets.len() - 1);
                Some((i, self.sets[i].match_write(op, optime, exact)?))
            }
            Scope::Cluster => self
                .sets
                .iter_mut()
                .enumerate()
                .find_map(|(i, s)| Some((i, s.match_write(op, optime, exact)?))),
        }
    }

    /// The entries a multi-document update or delete became
    /// ([`ReplState::take_entries_of`]): in its set, or — a router's write may
    /// touch every shard — in each set, in time order; each with its set.
    pub fn take_entries_of(
        &mut self,
        scope: Scope,
        op: &MongoOp,
        optime: Option<OpTime>,
        after: Option<u64>,
    ) -> Vec<(usize, SeenEntry)> {
        match scope {
            Scope::Set(i) => {
                let i = i.min(self.sets.len() - 1);
                self.sets[i]
                    .take_entries_of(op, optime, after)
                    .into_iter()
                    .map(|e| (i, e))
                    .collect()
            }
            Scope::Cluster => {
                let mut all: Vec<(usize, SeenEntry)> = Vec::new();
                for (i, s) in self.sets.iter_mut().enumerate() {
                    all.extend(
                        s.take_entries_of(op, optime, after)
                            .into_iter()
                            .map(|e| (i, e)),
                    );
                }
                all.sort_by_key(|(_, e)| e.optime.ts);
                all
            }
        }
    }

    /// Whether `entry` is the form of client statement `op`, by what any set's
    /// entries showed of the servers' session ids (one cluster runs one version).
    pub fn is_form_of(&self, op: &MongoOp, entry: &MongoOp) -> bool {
        self.sets.iter().any(|s| s.is_form_of(op, entry))
    }

    /// The entry at exactly `optime` in any set.
    pub fn entry_at(&self, optime: OpTime) -> Option<&SeenEntry> {
        self.sets
            .iter()
            .filter_map(|s| s.entries.get(&optime.ts))
            .find(|e| e.optime == optime)
    }

    /// When the oldest entry no client write matched yet was first seen, over
    /// every set (the tidemark cannot pass it).
    pub fn oldest_unmatched_seen(&self) -> Option<u64> {
        self.sets
            .iter()
            .filter_map(ReplState::oldest_unmatched_seen)
            .min()
    }

    /// Bounds each set's kept entries.
    pub fn prune(&mut self, keep: usize) {
        for s in &mut self.sets {
            s.prune(keep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ot(ts: u64, t: i64) -> OpTime {
        OpTime { ts, t }
    }

    fn node(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn topology(name: &str, hosts: &[&str], term: i64) -> ReplicationEvent {
        ReplicationEvent::Topology {
            set_name: Some(name.into()),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            members: hosts.len(),
            primary: hosts.first().map(|h| h.to_string()),
            term: Some(term),
            arbiters: 0,
            max_wire_version: Some(17),
        }
    }

    fn positions(durable: &[(i64, u64, i64)]) -> ReplicationEvent {
        ReplicationEvent::MemberPositions {
            durable: durable.iter().map(|&(m, ts, t)| (m, ot(ts, t))).collect(),
        }
    }

    /// Two shards' members report as member ids 0, 1, 2 each: the majority of
    /// durable positions is each set's own, and one set's commit point never
    /// decides the other's writes. (One state for both took the highest position
    /// of each member id across sets and committed the lagging shard's write.)
    #[test]
    fn member_positions_and_commit_points_stay_in_their_set() {
        let a = ["10.0.0.1:27017", "10.0.0.2:27017", "10.0.0.3:27017"];
        let b = ["10.0.1.1:27017", "10.0.1.2:27017", "10.0.1.3:27017"];
        let mut r = ReplSets::new(None);
        r.apply(&topology("shardA", &a, 1), 1, node(a[0]), 0);
        r.apply(&topology("shardB", &b, 1), 2, node(b[0]), 0);
        assert_eq!(r.len(), 2);
        // Member 1 of shard B (not the flow's own server) is known from hosts.
        let sb = r.set_of(node(b[1]));
        let sa = r.set_of(node(a[2]));
        assert_ne!(sa, sb);
        r.apply(
            &positions(&[(0, 900, 1), (1, 900, 1), (2, 900, 1)]),
            3,
            node(a[0]),
            1,
        );
        r.apply(
            &positions(&[(0, 100, 1), (1, 50, 1), (2, 40, 1)]),
            4,
            node(b[0]),
            1,
        );
        assert_eq!(
            r.commit_point(Scope::Set(sa)).map(|c| c.0),
            Some(ot(900, 1))
        );
        assert_eq!(r.commit_point(Scope::Set(sb)).map(|c| c.0), Some(ot(50, 1)));
        assert_eq!(r.verdict(Scope::Set(sb), ot(80, 1)), Verdict::Wait);
        assert!(matches!(
            r.verdict(Scope::Set(sa), ot(80, 1)),
            Verdict::Committed { .. }
        ));
        // A router's write waits for the lowest of the sets.
        assert_eq!(r.verdict(Scope::Cluster, ot(80, -1)), Verdict::Wait);
        assert!(matches!(
            r.verdict(Scope::Cluster, ot(50, -1)),
            Verdict::Committed { .. }
        ));
    }

    /// Terms are per set: a later term in one shard does not make another shard's
    /// write an older term's (whose fate would need evidence of the new history).
    #[test]
    fn a_newer_term_in_one_set_leaves_another_sets_writes_alone() {
        let a = ["10.0.0.1:27017"];
        let b = ["10.0.1.1:27017"];
        let mut r = ReplSets::new(None);
        r.apply(&topology("shardA", &a, 7), 1, node(a[0]), 0);
        r.apply(&topology("shardB", &b, 1), 2, node(b[0]), 0);
        let cp = |ts, t| ReplicationEvent::CommitPoint {
            optime: ot(ts, t),
            source: "lastOpCommitted",
        };
        r.apply(&cp(500, 7), 3, node(a[0]), 1);
        r.apply(&cp(500, 1), 4, node(b[0]), 1);
        let sb = r.set_of(node(b[0]));
        assert_eq!(r.term(Scope::Set(sb)), 1);
        assert!(matches!(
            r.verdict(Scope::Set(sb), ot(400, 1)),
            Verdict::Committed { .. }
        ));
    }

    /// A capture of one replica set: facts seen before any hello and after it are
    /// one set's (the first set takes the first name).
    #[test]
    fn the_first_set_takes_the_first_name() {
        let mut r = ReplSets::new(Some(3));
        let p = node("10.0.0.1:27017");
        r.apply(&positions(&[(0, 10, 1), (1, 10, 1)]), 1, p, 0);
        r.apply(&topology("rs0", &["10.0.0.1:27017"], 1), 2, p, 1);
        assert_eq!(r.len(), 1);
        assert_eq!(r.set_of(p), 0);
        assert_eq!(r.commit_point(Scope::Set(0)).map(|c| c.0), Some(ot(10, 1)));
    }
}
