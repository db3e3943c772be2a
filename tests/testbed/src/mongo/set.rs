//! The replica set: configuration, members, listeners, topology, and the
//! ground-truth API (each member's data and oplog) tests compare against.

use super::store::{MemberStore, OpTime};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tidemark_mongo::bson::oid::ObjectId;
use tidemark_mongo::bson::Document;
use tidemark_mongo::Compressor;
use tokio::net::TcpListener;
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
    /// The user SCRAM-SHA-256 authenticates; `None` = no authentication.
    pub scram_user: Option<super::scram::ScramUser>,
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
            scram_user: None,
        }
    }
}

/// One member.
#[derive(Debug)]
pub struct Member {
    pub index: usize,
    pub addr: SocketAddr,
    /// `ip:port` as it appears in `hosts`, `me` and `primary`.
    pub host: String,
    /// Identifies this member's process in `topologyVersion`.
    pub process_id: ObjectId,
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
}

impl Member {
    /// A new `connectionId` for hello replies (per member, from 1).
    pub fn next_connection_id(&self) -> i64 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed) + 1
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
        *self.known_commit.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Raises the known commit point (never lowers it).
    pub fn learn_commit_point(&self, t: OpTime) {
        let mut c = self.known_commit.lock().unwrap_or_else(|e| e.into_inner());
        if t > *c {
            *c = t;
        }
    }

    /// A fresh non-zero cursor id on this member.
    pub fn next_cursor_id(&self) -> i64 {
        ((self.index as i64 + 1) << 40) + self.next_cursor_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// This member's data and oplog. A poisoned lock is still usable: the
    /// store is only mutated in small steps that leave it consistent.
    pub fn store(&self) -> MutexGuard<'_, MemberStore> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Who is primary, in which term. Kept together so an election (later) can
/// change them atomically and bump `counter` for `topologyVersion`.
#[derive(Debug, Clone)]
pub struct Topology {
    pub primary: Option<usize>,
    pub term: i64,
    pub election_id: ObjectId,
    pub set_version: i32,
    /// `topologyVersion.counter`: bumped on every state change.
    pub counter: i64,
}

/// State shared by every member and connection.
#[derive(Debug)]
pub struct Shared {
    pub config: ReplSetConfig,
    pub members: Vec<Arc<Member>>,
    topology: Mutex<Topology>,
    /// `replicaSetId` of `$replData`.
    pub replica_set_id: ObjectId,
    /// Each member's durable optime as the primary knows it (from its own
    /// writes and `replSetUpdatePosition`).
    progress: Mutex<Vec<OpTime>>,
    /// Bumped on every progress change; write-concern waiters watch it.
    pub progress_tx: watch::Sender<u64>,
}

impl Shared {
    pub fn topology(&self) -> Topology {
        self.topology
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn is_primary(&self, member: usize) -> bool {
        self.topology().primary == Some(member)
    }

    /// Members needed for a majority.
    pub fn majority(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// Records that `member` is durable up to `t`, and advances the primary's
    /// commit point to the optime a majority has reached.
    pub fn record_progress(&self, member: usize, t: OpTime) {
        let commit = {
            let mut p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
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
        if let Some(primary) = self.topology().primary {
            self.members[primary].learn_commit_point(commit);
        }
        self.progress_tx.send_modify(|v| *v += 1);
    }

    /// Ground truth: each member's durable optime as the primary knows it.
    pub fn progress(&self) -> Vec<OpTime> {
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until `w` members are durable at `target` or `timeout` passes;
    /// true when satisfied.
    pub async fn wait_replicated(&self, target: OpTime, w: usize, timeout: Duration) -> bool {
        let mut rx = self.progress_tx.subscribe();
        let check = || self.progress().iter().filter(|t| **t >= target).count() >= w;
        let wait = async {
            loop {
                rx.borrow_and_update();
                if check() {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok() && check()
    }

    /// Every member's `ip:port`, in member order.
    pub fn hosts(&self) -> Vec<String> {
        self.members.iter().map(|m| m.host.clone()).collect()
    }
}

/// A running replica set. Dropping it stops listeners and connections.
pub struct MongoReplicaSet {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
}

impl MongoReplicaSet {
    /// Binds every member's listener and starts serving, member 0 as primary
    /// in term 1 (no election is simulated yet).
    pub async fn start(config: ReplSetConfig) -> std::io::Result<MongoReplicaSet> {
        if config.members == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a replica set needs at least one member",
            ));
        }
        let mut listeners = Vec::new();
        let mut port = config.port;
        for i in 0..config.members {
            let ip = Ipv4Addr::from(u32::from(config.base_addr) + i as u32);
            let l = TcpListener::bind(SocketAddr::from((ip, port))).await?;
            port = l.local_addr()?.port();
            listeners.push(l);
        }
        let mut members = Vec::new();
        for (i, l) in listeners.iter().enumerate() {
            let addr = l.local_addr()?;
            members.push(Arc::new(Member {
                index: i,
                addr,
                host: addr.to_string(),
                process_id: ObjectId::new(),
                next_connection_id: AtomicI64::new(0),
                compressed_requests: Default::default(),
                store: Mutex::new(MemberStore::default()),
                oplog_tx: watch::channel(OpTime::default()).0,
                known_commit: Mutex::new(OpTime::default()),
                cursors: Mutex::new(HashMap::new()),
                next_cursor_id: AtomicI64::new(0),
            }));
        }
        let topology = Topology {
            primary: Some(0),
            term: 1,
            election_id: election_id(1),
            set_version: 1,
            counter: 0,
        };
        let n = members.len();
        let shared = Arc::new(Shared {
            config,
            members,
            topology: Mutex::new(topology),
            replica_set_id: ObjectId::new(),
            progress: Mutex::new(vec![OpTime::default(); n]),
            progress_tx: watch::channel(0).0,
        });
        let (shutdown, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for (i, l) in listeners.into_iter().enumerate() {
            let shared = shared.clone();
            let rx = rx.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((sock, peer)) => {
                            tracing::debug!(member = i, %peer, "connection");
                            let _ = sock.set_nodelay(true);
                            tokio::spawn(super::conn::serve(shared.clone(), i, sock, rx.clone()));
                        }
                        Err(e) => {
                            tracing::warn!(member = i, "accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }));
        }
        for i in 0..n {
            tasks.push(tokio::spawn(super::sync::run(
                shared.clone(),
                i,
                rx.clone(),
            )));
        }
        tracing::info!(members = shared.members.len(), "mongo testbed started");
        Ok(MongoReplicaSet {
            shared,
            tasks,
            shutdown,
        })
    }

    /// Every member's address, in member order (member 0 is the primary).
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.shared.members.iter().map(|m| m.addr).collect()
    }

    /// A replica-set connection string listing every member.
    pub fn uri(&self) -> String {
        format!(
            "mongodb://{}/?replicaSet={}",
            self.shared.hosts().join(","),
            self.shared.config.set_name
        )
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The current primary's index, if any.
    pub fn primary(&self) -> Option<usize> {
        self.shared.topology().primary
    }

    /// Ground truth: the documents of `ns` ("db.coll") on `member`, in natural
    /// (insertion) order. Empty for an unknown member or namespace.
    pub fn documents(&self, member: usize, ns: &str) -> Vec<Document> {
        self.shared
            .members
            .get(member)
            .map(|m| m.store().documents(ns))
            .unwrap_or_default()
    }

    /// Ground truth: `member`'s oplog entries, oldest first, as they would be
    /// served from `local.oplog.rs`.
    pub fn oplog(&self, member: usize) -> Vec<Document> {
        self.shared
            .members
            .get(member)
            .map(|m| m.store().oplog().to_vec())
            .unwrap_or_default()
    }

    /// Ground truth: the commit point as `member` knows it.
    pub fn commit_point(&self, member: usize) -> Option<OpTime> {
        self.shared.members.get(member).map(|m| m.commit_point())
    }

    /// Ground truth: the optime of `member`'s last oplog entry.
    pub fn last_applied(&self, member: usize) -> Option<OpTime> {
        self.shared
            .members
            .get(member)
            .map(|m| m.store().last_op_time())
    }

    /// Stops accepting and closes every open connection.
    pub fn stop(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for MongoReplicaSet {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for t in &self.tasks {
            t.abort();
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
