//! The replica set's shared state: configuration, members, topology, each
//! member's view of it, the links between members (partitions), and the
//! majority commit point. It sits below commands, replication, the wire and
//! the server so those layers can all hold it without importing each other.
//! Starting/stopping members is in [`crate::mongo::server::lifecycle`],
//! elections in [`crate::mongo::repl::election`], ground truth in
//! [`crate::mongo::storage::truth`].

use crate::mongo::scram;
use crate::mongo::storage::store::{MemberStore, OpTime};
use crate::mongo::storage::truth::Truth;
use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tidemark_mongo::bson::oid::ObjectId;
use tidemark_mongo::bson::Document;
use tidemark_mongo::Compressor;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How to build a replica set.
#[derive(Debug, Clone)]
pub struct ReplSetConfig {
    pub members: usize,
    /// Member i listens on `base_addr + i` (127.0.0.1, 127.0.0.2, ...).
    pub base_addr: Ipv4Addr,
    /// 0 picks a free port (the same one for every member, so a connection
    /// string can list `ip:port` pairs that differ only in the address).
    pub port: u16,
    pub set_name: String,
    /// Compressors offered in the hello negotiation, in server preference order.
    pub compressors: Vec<Compressor>,
    /// Upper bound on how long an awaitable (streaming) hello is held before
    /// the reply, whatever `maxAwaitTimeMS` the driver asks for; keeps test
    /// shutdown quick.
    pub max_await: Duration,
    /// `settings.electionTimeoutMillis`: a primary that has not heard from a
    /// majority for this long steps down; a secondary that has not heard
    /// from a primary for this long (plus a per-member offset) stands for
    /// election. MongoDB's default is 10 s; tests use a short one.
    pub election_timeout: Duration,
    /// `settings.heartbeatIntervalMillis` (MongoDB: 2 s).
    pub heartbeat_interval: Duration,
    /// Record the raw bytes of every member-to-member connection (sync,
    /// reporter, heartbeats, votes) for tests that decode them; see
    /// [`TapRecord`].
    pub tap_replication: bool,
    /// The user SCRAM-SHA-256 authenticates; `None` = no authentication.
    pub scram_user: Option<scram::ScramUser>,
    /// Sees every command before dispatch: a shard of a sharded cluster
    /// checks `shardVersion`, blocks writes in a migration's critical
    /// section and serves the migration commands through it (see
    /// [`crate::mongo::sharded::shard`]). `None` for a plain replica set.
    pub command_hook: Option<Arc<dyn CommandHook>>,
}

/// What a [`CommandHook`] decided about one command.
pub enum HookOutcome {
    /// Run the command (replaced by `cmd` when given) as usual; the guard
    /// (if any) is held until it finishes.
    Continue {
        guard: Option<Box<dyn Send>>,
        cmd: Option<Document>,
    },
    /// Answer with this reply instead.
    Reply(Document),
}

/// A future a [`CommandHook`] returns.
pub type HookFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = HookOutcome> + Send + 'a>>;

/// Code that runs in front of a member's command dispatch (the sharding
/// layer sits above the replica set and plugs in here).
pub trait CommandHook: Send + Sync + std::fmt::Debug {
    fn before<'a>(
        &'a self,
        shared: &'a Shared,
        member: usize,
        db: &'a str,
        cmd: &'a Document,
    ) -> HookFuture<'a>;
}

impl Default for ReplSetConfig {
    fn default() -> Self {
        ReplSetConfig {
            members: 3,
            base_addr: Ipv4Addr::new(127, 0, 0, 1),
            port: 27017,
            set_name: "rs0".into(),
            compressors: vec![Compressor::Snappy, Compressor::Zlib, Compressor::Zstd],
            max_await: Duration::from_secs(10),
            election_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(2),
            tap_replication: false,
            scram_user: None,
            command_hook: None,
        }
    }
}

/// What one member believes about the set (members disagree while a
/// partition keeps news from them).
#[derive(Debug, Clone)]
pub struct MemberView {
    /// The highest term this member has seen.
    pub term: i64,
    /// Whom this member takes for primary (itself when it is primary).
    pub primary: Option<usize>,
    /// The vote cast in `term`, if any: (term, candidate).
    pub voted: Option<(i64, usize)>,
    /// When each member last answered this member's heartbeat.
    pub last_heard: Vec<Option<Instant>>,
    /// A secondary stands for election when this passes without news from
    /// a primary (MongoDB's election timeout callback).
    pub election_due: Instant,
    /// When this member became primary (steps down only after a full
    /// election timeout without a majority).
    pub primary_since: Option<Instant>,
}

/// The tasks of a running member; dropping the sender ends its connections.
#[derive(Debug)]
pub struct Runtime {
    pub shutdown: watch::Sender<bool>,
    pub tasks: Vec<JoinHandle<()>>,
}

/// A member's data as of one cluster time (`(seconds, increment)`), rebuilt from
/// its oplog by a snapshot read.
pub type SnapshotView = ((u32, u32), std::sync::Arc<MemberStore>);

/// One member.
#[derive(Debug)]
pub struct Member {
    pub index: usize,
    pub addr: SocketAddr,
    /// `ip:port` as it appears in `hosts`, `me` and `primary`.
    pub host: String,
    /// Identifies this member's process in `topologyVersion`; a restart
    /// gets a new one, as a new mongod process does.
    process_id: Mutex<ObjectId>,
    next_connection_id: AtomicI64,
    /// Requests received inside OP_COMPRESSED, by compressor id (0..=3), so
    /// tests can see that negotiation really led to compressed traffic.
    compressed_requests: [AtomicU64; 4],
    store: Mutex<MemberStore>,
    /// The optime of the last oplog entry, published after every write or
    /// applied batch so awaitData `getMore`s wake up.
    pub oplog_tx: watch::Sender<OpTime>,
    /// The commit point as this member knows it (the primary computes it,
    /// secondaries learn it from `$replData`).
    pub known_commit: Mutex<OpTime>,
    /// Open oplog cursors: id → position of the next entry to return.
    pub cursors: Mutex<HashMap<i64, usize>>,
    next_cursor_id: AtomicI64,
    /// Running (listening, syncing, sending heartbeats) or stopped.
    pub up: AtomicBool,
    /// Rollback id: bumped by every rollback, as `replSetGetRBID` reports.
    pub rbid: AtomicI32,
    pub view: Mutex<MemberView>,
    pub runtime: Mutex<Option<Runtime>>,
    /// The last view a snapshot read rebuilt (`commands::snapshot_read`), by its
    /// cluster time: a snapshot taken chunk by chunk reads at one time, and the
    /// oplog up to a majority-committed time never changes, so one replay serves all.
    pub snapshot_view: Mutex<Option<SnapshotView>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Member {
    pub(crate) fn new(index: usize, addr: SocketAddr, members: usize) -> Member {
        Member {
            index,
            addr,
            host: addr.to_string(),
            process_id: Mutex::new(ObjectId::new()),
            next_connection_id: AtomicI64::new(0),
            compressed_requests: Default::default(),
            store: Mutex::new(MemberStore::default()),
            oplog_tx: watch::channel(OpTime::default()).0,
            known_commit: Mutex::new(OpTime::default()),
            cursors: Mutex::new(HashMap::new()),
            next_cursor_id: AtomicI64::new(0),
            up: AtomicBool::new(false),
            rbid: AtomicI32::new(1),
            view: Mutex::new(MemberView {
                term: 1,
                primary: Some(0),
                voted: None,
                last_heard: vec![None; members],
                election_due: Instant::now(),
                primary_since: None,
            }),
            runtime: Mutex::new(None),
            snapshot_view: Mutex::new(None),
        }
    }

    /// A new `connectionId` for hello replies (per member, from 1).
    pub fn next_connection_id(&self) -> i64 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn process_id(&self) -> ObjectId {
        *lock(&self.process_id)
    }

    pub(crate) fn new_process_id(&self) {
        *lock(&self.process_id) = ObjectId::new();
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// Counts one request that arrived compressed with `c`.
    pub fn count_compressed(&self, c: Compressor) {
        if let Some(n) = self.compressed_requests.get(c.id() as usize) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many requests arrived compressed with `c`.
    pub fn compressed_requests(&self, c: Compressor) -> u64 {
        self.compressed_requests
            .get(c.id() as usize)
            .map_or(0, |n| n.load(Ordering::Relaxed))
    }

    /// Publishes the store's last optime to awaitData waiters and, on the
    /// primary, records it as the primary's own durable progress.
    pub fn publish_oplog(&self, shared: &Shared) {
        let last = self.store().last_op_time();
        self.oplog_tx.send_replace(last);
        if shared.is_primary(self.index) {
            shared.record_progress(self.index, last);
        }
    }

    /// The commit point this member knows.
    pub fn commit_point(&self) -> OpTime {
        *lock(&self.known_commit)
    }

    /// Raises the known commit point (never lowers it); true if it moved.
    pub fn learn_commit_point(&self, t: OpTime) -> bool {
        let mut c = lock(&self.known_commit);
        if t > *c {
            *c = t;
            return true;
        }
        false
    }

    /// A fresh non-zero cursor id on this member.
    pub fn next_cursor_id(&self) -> i64 {
        ((self.index as i64 + 1) << 40) + self.next_cursor_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// This member's data and oplog. A poisoned lock is still usable: the
    /// store is only mutated in small steps that leave it consistent.
    pub fn store(&self) -> MutexGuard<'_, MemberStore> {
        lock(&self.store)
    }

    pub fn view(&self) -> MutexGuard<'_, MemberView> {
        lock(&self.view)
    }
}

/// The set as it really is: who is primary, in which term. At most one
/// member is primary at a time (see the README: the testbed lets a
/// partitioned primary step down before the others elect), so `term` is
/// the primary's term and writes stamp their oplog entries with it.
#[derive(Debug, Clone)]
pub struct Topology {
    pub primary: Option<usize>,
    /// The term of the last elected primary.
    pub term: i64,
    pub election_id: ObjectId,
    pub set_version: i32,
    /// `topologyVersion.counter`: bumped on every change of any member's
    /// state or view, so awaitable hellos answer.
    pub counter: i64,
}

/// State shared by every member and connection.
#[derive(Debug)]
pub struct Shared {
    pub config: ReplSetConfig,
    pub members: Vec<Arc<Member>>,
    topology: Mutex<Topology>,
    /// Wakes awaitable hellos: carries `Topology::counter`.
    pub topology_tx: watch::Sender<i64>,
    /// `replicaSetId` of `$replData`.
    pub replica_set_id: ObjectId,
    /// Each member's durable optime as the primary knows it (from its own
    /// writes and `replSetUpdatePosition`).
    progress: Mutex<Vec<OpTime>>,
    /// Bumped on every progress or primary change; write-concern waiters watch it.
    pub progress_tx: watch::Sender<u64>,
    /// Cut member pairs (smaller index first).
    cuts: Mutex<HashSet<(usize, usize)>>,
    /// Bumped when a link is cut or healed or a member stops or starts.
    pub links_tx: watch::Sender<u64>,
    /// Ground truth beyond the stores: commit point history, elections, rollbacks.
    pub truth: Mutex<Truth>,
    /// Raw bytes of member-to-member connections, when `tap_replication`.
    pub tap: Mutex<Vec<TapRecord>>,
    /// One election at a time (they are short; keeps the simulation simple).
    pub election_lock: tokio::sync::Mutex<()>,
}

/// Result of waiting for a write concern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    Satisfied,
    TimedOut,
    /// The member stopped being primary while waiting.
    SteppedDown,
}

impl Shared {
    pub(crate) fn new(config: ReplSetConfig, members: Vec<Arc<Member>>) -> Shared {
        let n = members.len();
        Shared {
            config,
            members,
            topology: Mutex::new(Topology {
                primary: Some(0),
                term: 1,
                election_id: election_id(1),
                set_version: 1,
                counter: 0,
            }),
            topology_tx: watch::channel(0).0,
            replica_set_id: ObjectId::new(),
            progress: Mutex::new(vec![OpTime::default(); n]),
            progress_tx: watch::channel(0).0,
            cuts: Mutex::new(HashSet::new()),
            links_tx: watch::channel(0).0,
            truth: Mutex::new(Truth::default()),
            tap: Mutex::new(Vec::new()),
            election_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn topology(&self) -> Topology {
        lock(&self.topology).clone()
    }

    pub fn is_primary(&self, member: usize) -> bool {
        self.topology().primary == Some(member)
    }

    /// The term `member` has seen.
    pub fn term_of(&self, member: usize) -> i64 {
        self.members.get(member).map_or(0, |m| m.view().term)
    }

    /// Members needed for a majority.
    pub fn majority(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// Bumps `topologyVersion.counter` and wakes awaitable hellos.
    pub fn bump_topology(&self) {
        let c = {
            let mut t = lock(&self.topology);
            t.counter += 1;
            t.counter
        };
        self.topology_tx.send_replace(c);
    }

    /// Makes `member` primary in `term` unless another member is; true if it did.
    pub(crate) fn set_primary(&self, member: usize, term: i64) -> bool {
        {
            let mut t = lock(&self.topology);
            if t.primary.is_some() {
                return false;
            }
            t.primary = Some(member);
            t.term = term;
            t.election_id = election_id(term);
        }
        let last = self.members[member].store().last_op_time();
        {
            let mut p = lock(&self.progress);
            p.iter_mut().for_each(|o| *o = OpTime::default());
            p[member] = last;
        }
        self.bump_topology();
        self.progress_tx.send_modify(|v| *v += 1);
        true
    }

    /// `member` is no longer primary (stepdown or stop); true if it was.
    pub(crate) fn clear_primary(&self, member: usize) -> bool {
        let was = {
            let mut t = lock(&self.topology);
            let was = t.primary == Some(member);
            if was {
                t.primary = None;
            }
            was
        };
        if was {
            self.bump_topology();
            self.progress_tx.send_modify(|v| *v += 1);
        }
        was
    }

    /// Records that `member` is durable up to `t`, and advances the primary's
    /// commit point to the optime a majority has reached — only if that
    /// optime is in the primary's term (MongoDB's rule: entries of earlier
    /// terms are committed only by committing one of the current term).
    pub fn record_progress(&self, member: usize, t: OpTime) {
        let topo = self.topology();
        let commit = {
            let mut p = lock(&self.progress);
            let Some(slot) = p.get_mut(member) else {
                return;
            };
            if t > *slot {
                *slot = t;
            }
            let mut sorted = p.clone();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            sorted.get(self.majority() - 1).copied().unwrap_or_default()
        };
        if let Some(primary) = topo.primary {
            if commit.t == topo.term && self.members[primary].learn_commit_point(commit) {
                lock(&self.truth).commit_moved(primary, topo.term, commit);
            }
        }
        self.progress_tx.send_modify(|v| *v += 1);
    }

    /// Ground truth: each member's durable optime as the primary knows it.
    pub fn progress(&self) -> Vec<OpTime> {
        lock(&self.progress).clone()
    }

    /// Waits until `w` members are durable at `target`, `member` stops
    /// being primary, or `timeout` passes.
    pub async fn wait_replicated(
        &self,
        member: usize,
        target: OpTime,
        w: usize,
        timeout: Duration,
    ) -> WaitOutcome {
        let mut rx = self.progress_tx.subscribe();
        let check = || self.progress().iter().filter(|t| **t >= target).count() >= w;
        let wait = async {
            loop {
                rx.borrow_and_update();
                if !self.is_primary(member) {
                    return WaitOutcome::SteppedDown;
                }
                if check() {
                    return WaitOutcome::Satisfied;
                }
                if rx.changed().await.is_err() {
                    return WaitOutcome::TimedOut;
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(WaitOutcome::TimedOut)
    }

    /// Every member's `ip:port`, in member order.
    pub fn hosts(&self) -> Vec<String> {
        self.members.iter().map(|m| m.host.clone()).collect()
    }

    /// Whether `a` and `b` can talk: both running and not partitioned.
    pub fn link_up(&self, a: usize, b: usize) -> bool {
        let (Some(ma), Some(mb)) = (self.members.get(a), self.members.get(b)) else {
            return false;
        };
        a != b && ma.is_up() && mb.is_up() && !lock(&self.cuts).contains(&(a.min(b), a.max(b)))
    }

    /// Cuts (or heals) the link between `a` and `b`.
    pub fn set_cut(&self, a: usize, b: usize, cut: bool) {
        if a == b {
            return;
        }
        {
            let mut c = lock(&self.cuts);
            if cut {
                c.insert((a.min(b), a.max(b)));
            } else {
                c.remove(&(a.min(b), a.max(b)));
            }
        }
        self.links_tx.send_modify(|v| *v += 1);
    }

    /// The cut links, smaller index first.
    pub fn cuts(&self) -> Vec<(usize, usize)> {
        let mut v: Vec<_> = lock(&self.cuts).iter().copied().collect();
        v.sort_unstable();
        v
    }

    /// Resolves when the link between `a` and `b` is down.
    pub async fn link_down(&self, a: usize, b: usize) {
        let mut rx = self.links_tx.subscribe();
        loop {
            rx.borrow_and_update();
            if !self.link_up(a, b) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// MongoDB's electionId for protocol version 1: an ObjectId whose first
/// bytes are 0x7fffffff and whose last 8 bytes are the term, so it compares
/// (as drivers do) in term order.
pub fn election_id(term: i64) -> ObjectId {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
    b[4..].copy_from_slice(&term.to_be_bytes());
    ObjectId::from_bytes(b)
}

/// Raw bytes one member-to-member connection carried in one direction.
#[derive(Debug, Clone)]
pub struct TapRecord {
    /// The member that opened the connection.
    pub from: usize,
    pub to: usize,
    /// Identifies the connection (unique in the process).
    pub conn: u64,
    /// What it is for: "fetcher", "reporter", "heartbeat", "votes", "rollback".
    pub purpose: &'static str,
    /// true: request bytes (from → to); false: reply bytes.
    pub request: bool,
    pub bytes: Vec<u8>,
}

impl Shared {
    pub fn truth(&self) -> MutexGuard<'_, Truth> {
        self.truth.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(n: usize) -> Shared {
        let members = (0..n)
            .map(|i| {
                let addr = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 1 + i as u8), 27017));
                Arc::new(Member::new(i, addr, n))
            })
            .collect();
        Shared::new(ReplSetConfig::default(), members)
    }

    fn op(t: i64, secs: u32) -> OpTime {
        OpTime { t, ts: (secs, 1) }
    }

    #[test]
    fn commit_point_moves_only_to_an_entry_of_the_current_term() {
        let s = shared(3);
        assert!(s.clear_primary(0));
        assert!(s.set_primary(1, 2));
        // a majority has an entry of term 1: not committable by the term-2 primary
        s.record_progress(1, op(1, 10));
        s.record_progress(2, op(1, 10));
        assert_eq!(s.members[1].commit_point(), OpTime::default());
        // once a term-2 entry reaches a majority, it and everything before commit
        s.record_progress(1, op(2, 11));
        assert_eq!(
            s.members[1].commit_point(),
            OpTime::default(),
            "one member is no majority"
        );
        s.record_progress(2, op(2, 11));
        assert_eq!(s.members[1].commit_point(), op(2, 11));
        let history: Vec<OpTime> = s
            .truth()
            .commit_points
            .iter()
            .map(|c| c.commit_point)
            .collect();
        assert_eq!(history, vec![op(2, 11)]);
    }

    #[test]
    fn only_one_primary_at_a_time_and_links_are_symmetric() {
        let s = shared(3);
        assert!(!s.set_primary(1, 2), "member 0 is still primary");
        assert!(s.clear_primary(0));
        assert!(!s.clear_primary(0));
        assert!(s.set_primary(2, 2));
        assert_eq!(s.topology().election_id, election_id(2));
        s.members
            .iter()
            .for_each(|m| m.up.store(true, Ordering::SeqCst));
        assert!(s.link_up(0, 1));
        s.set_cut(1, 0, true);
        assert!(!s.link_up(0, 1) && !s.link_up(1, 0) && s.link_up(0, 2));
        s.set_cut(0, 1, false);
        assert!(s.link_up(1, 0));
        assert!(!s.link_up(1, 1), "no link to oneself");
        assert!(!s.link_up(0, 7), "no such member");
    }
}
