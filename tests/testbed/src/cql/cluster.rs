//! The in-process cluster: configuration, node state, listeners, and ground truth.
//! Nodes share one schema (so schema agreement holds) but each has its own storage,
//! prepared-statement cache and clock. Node lifecycle (stop/start/add/remove) lives
//! in `membership.rs`, replica faults and hints in `faults.rs` and `hints.rs`.

use super::faults::Fault;
use super::hints::Hint;
use super::membership::MembershipError;
use super::murmur3::token;
use super::ring::{vnode_tokens, LiveRing, Ring, RingNode};
use super::schema::{uuid_from, Schema};
use super::storage::{hex, CellRecord, NodeStore, Partition};
use crate::control::ControlServer;
use bytes::Bytes;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tidemark_cql::message::{Event, PreparedMetadata, RowsMetadata};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// How to build a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub nodes: usize,
    /// Node i listens on `base_addr + i` (127.0.0.1, 127.0.0.2, ...).
    pub base_addr: Ipv4Addr,
    /// 0 picks a free port (the same one for every node, so drivers that assume one
    /// port for the cluster work).
    pub port: u16,
    pub num_tokens: usize,
    pub datacenter: String,
    pub rack: String,
    pub cluster_name: String,
    /// Seeds the vnode tokens (same seed, same ring).
    pub token_seed: u64,
    /// How long a coordinator waits for replica acknowledgements before answering
    /// WriteTimeout (Cassandra's `write_request_timeout`, 2 s by default). Tests use
    /// a short one; drivers' request timeouts must be longer.
    pub write_timeout: Duration,
    /// `Some((user, password))`: require PasswordAuthenticator (SASL PLAIN) logins.
    pub credentials: Option<(String, String)>,
    /// Node slots prepared for `add_node` beyond `nodes` (their addresses continue
    /// after the initial nodes'; their tokens are fixed in advance).
    pub spare_nodes: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nodes: 3,
            base_addr: Ipv4Addr::new(127, 0, 0, 1),
            port: 9042,
            num_tokens: 16,
            datacenter: "datacenter1".into(),
            rack: "rack1".into(),
            cluster_name: "tidemark-testbed".into(),
            token_seed: 0x7469_6465,
            write_timeout: Duration::from_secs(2),
            credentials: None,
            spare_nodes: 2,
        }
    }
}

/// A statement prepared on one node.
#[derive(Debug, Clone)]
pub struct PreparedStmt {
    pub query: String,
    pub keyspace: Option<String>,
    pub bind: PreparedMetadata,
    pub result: RowsMetadata,
}

/// One node.
#[derive(Debug)]
pub struct NodeState {
    pub index: usize,
    pub addr: SocketAddr,
    pub host_id: [u8; 16],
    pub dc: String,
    pub rack: String,
    pub tokens: Vec<i64>,
    /// Up and serving (false while stopped, and for spare or removed slots).
    pub alive: AtomicBool,
    /// Owns its tokens in the ring (false for spare and removed slots).
    pub joined: AtomicBool,
    /// Watched by the node's connections: `false` closes them (node stopped).
    pub running: watch::Sender<bool>,
    /// How this node misbehaves as a write replica.
    pub fault: Mutex<Fault>,
    /// Added to the wall clock for server-side timestamps (simulated clock skew).
    pub clock_skew_micros: AtomicI64,
    /// When set, every server-side timestamp of this node is exactly this value
    /// (to produce two writes to one cell with the same timestamp).
    pub fixed_clock: Mutex<Option<i64>>,
    pub store: Mutex<NodeStore>,
    pub prepared: Mutex<HashMap<Bytes, Arc<PreparedStmt>>>,
    last_timestamp: AtomicI64,
}

impl NodeState {
    /// A server-side write timestamp: microseconds, strictly increasing per node.
    /// The node's clock (skew and a fixed clock apply, as they would to a real node's
    /// `ClientState` timestamps).
    pub fn next_timestamp(&self) -> i64 {
        if let Some(fixed) = *self.fixed_clock.lock().unwrap_or_else(|e| e.into_inner()) {
            return fixed;
        }
        let now = now_micros().saturating_add(self.clock_skew_micros.load(Ordering::Relaxed));
        let mut last = self.last_timestamp.load(Ordering::Relaxed);
        loop {
            let ts = now.max(last + 1);
            match self.last_timestamp.compare_exchange(
                last,
                ts,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return ts,
                Err(l) => last = l,
            }
        }
    }
}

pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

pub fn now_secs() -> i32 {
    (now_micros() / 1_000_000) as i32
}

/// State shared by every node and connection.
#[derive(Debug)]
pub struct Shared {
    pub config: ClusterConfig,
    /// Every node slot, spare ones included (see `NodeState::joined`).
    pub nodes: Vec<Arc<NodeState>>,
    pub ring: LiveRing,
    pub schema: RwLock<Schema>,
    pub events: broadcast::Sender<Event>,
    /// Each node's accept loop while it is listening.
    pub listeners: Mutex<Vec<Option<JoinHandle<()>>>>,
    /// Hints held by coordinators for replicas that missed writes.
    pub hints: Mutex<Vec<Hint>>,
    /// Serializes membership changes (stop/start/add/remove).
    pub membership: tokio::sync::Mutex<()>,
    /// This value's own `Arc`, for timer tasks started from `&Shared`.
    this: std::sync::Weak<Shared>,
}

impl Shared {
    pub fn schema(&self) -> std::sync::RwLockReadGuard<'_, Schema> {
        self.schema.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn schema_mut(&self) -> std::sync::RwLockWriteGuard<'_, Schema> {
        self.schema.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The `Arc` this value lives in (`None` only while it is being dropped).
    pub fn self_arc(&self) -> Option<Arc<Shared>> {
        self.this.upgrade()
    }

    /// The ring built from the nodes that are currently joined.
    pub fn build_ring(&self) -> Ring {
        Ring::new(
            self.nodes
                .iter()
                .map(|n| RingNode {
                    dc: n.dc.clone(),
                    rack: n.rack.clone(),
                    tokens: if n.joined.load(Ordering::SeqCst) {
                        n.tokens.clone()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
        )
    }

    /// Sends an event to every connection that registered for its kind.
    pub fn announce(&self, event: Event) {
        // No receiver is fine: nobody registered for events.
        let _ = self.events.send(event);
    }

    pub fn store(&self, node: usize) -> std::sync::MutexGuard<'_, NodeStore> {
        self.nodes[node]
            .store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// A running cluster. Dropping it stops the listeners and closes connections.
pub struct CqlCluster {
    shared: Arc<Shared>,
}

/// One reconciled live cell of the cluster's logical state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogicalCell {
    pub keyspace: String,
    pub table: String,
    pub partition_key: Vec<String>,
    pub clustering: Vec<String>,
    pub column: String,
    pub value: String,
    pub timestamp: i64,
    pub ttl: i32,
}

impl CqlCluster {
    /// Binds every node's listener and starts serving.
    pub async fn start(config: ClusterConfig) -> std::io::Result<CqlCluster> {
        let mut listeners = Vec::new();
        let mut port = config.port;
        for i in 0..config.nodes {
            let ip = Ipv4Addr::from(u32::from(config.base_addr) + i as u32);
            let l = TcpListener::bind(SocketAddr::from((ip, port))).await?;
            port = l.local_addr()?.port();
            listeners.push(l);
        }
        let mut nodes = Vec::new();
        for i in 0..config.nodes + config.spare_nodes {
            let ip = Ipv4Addr::from(u32::from(config.base_addr) + i as u32);
            let addr = SocketAddr::from((ip, port));
            let initial = i < config.nodes;
            nodes.push(Arc::new(NodeState {
                index: i,
                addr,
                host_id: uuid_from(&format!("{}/{addr}/{i}", config.cluster_name)),
                dc: config.datacenter.clone(),
                rack: config.rack.clone(),
                tokens: vnode_tokens(config.token_seed, i, config.num_tokens),
                alive: AtomicBool::new(initial),
                joined: AtomicBool::new(initial),
                running: watch::channel(initial).0,
                fault: Mutex::new(Fault::default()),
                clock_skew_micros: AtomicI64::new(0),
                fixed_clock: Mutex::new(None),
                store: Mutex::new(NodeStore::default()),
                prepared: Mutex::new(HashMap::new()),
                last_timestamp: AtomicI64::new(0),
            }));
        }
        let (events, _) = broadcast::channel(256);
        let slots = nodes.len();
        let shared = Arc::new_cyclic(|this| Shared {
            config,
            nodes,
            ring: LiveRing::default(),
            schema: RwLock::new(Schema::new()),
            events,
            listeners: Mutex::new((0..slots).map(|_| None).collect()),
            hints: Mutex::new(Vec::new()),
            membership: tokio::sync::Mutex::new(()),
            this: this.clone(),
        });
        shared.ring.replace(shared.build_ring());
        for (i, l) in listeners.into_iter().enumerate() {
            super::membership::spawn_listener(&shared, i, l);
        }
        tracing::info!(nodes = shared.config.nodes, "cql testbed started");
        Ok(CqlCluster { shared })
    }

    /// The native-protocol address of every node in the ring (joined nodes, up or
    /// down; not spare or removed slots).
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.shared
            .nodes
            .iter()
            .filter(|n| n.joined.load(Ordering::SeqCst))
            .map(|n| n.addr)
            .collect()
    }

    /// The address of node slot `node` (joined or not).
    pub fn address(&self, node: usize) -> Option<SocketAddr> {
        self.shared.nodes.get(node).map(|n| n.addr)
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops every listener and closes every connection.
    pub fn stop(self) {
        shutdown(&self.shared);
    }

    /// Everything node `node` stores, with timestamps, TTLs and tombstones.
    pub fn replica_dump(&self, node: usize) -> Vec<CellRecord> {
        self.shared.store(node).dump()
    }

    /// Stops node `node`: its connections close, coordinators see it down.
    pub async fn stop_node(&self, node: usize) -> Result<(), MembershipError> {
        super::membership::stop_node(&self.shared, node).await
    }

    /// Restarts a stopped node with its data; hints for it are delivered.
    pub async fn start_node(&self, node: usize) -> Result<(), MembershipError> {
        super::membership::start_node(&self.shared, node).await
    }

    /// Bootstraps a node in a spare slot (tokens move, data streams); its index.
    pub async fn add_node(&self) -> Result<usize, MembershipError> {
        super::membership::add_node(&self.shared).await
    }

    /// Decommissions node `node` (its ranges move to the others).
    pub async fn remove_node(&self, node: usize) -> Result<(), MembershipError> {
        super::membership::remove_node(&self.shared, node).await
    }

    /// Makes node `node` a slow / ack-dropping / write-dropping replica
    /// (`Fault::default()` heals it and delivers its hints).
    pub fn set_fault(&self, node: usize, fault: Fault) -> Result<(), MembershipError> {
        super::membership::set_fault(&self.shared, node, fault)
    }

    /// Skews node `node`'s clock, or pins it (`fixed`), for server-side timestamps.
    pub fn set_clock(
        &self,
        node: usize,
        skew_micros: i64,
        fixed: Option<i64>,
    ) -> Result<(), MembershipError> {
        super::membership::set_clock(&self.shared, node, skew_micros, fixed)
    }

    /// Hints waiting for delivery.
    pub fn hints_pending(&self) -> usize {
        super::hints::pending(&self.shared)
    }

    /// Serves the control endpoint (JSON over HTTP, see `control_api.rs`) on `addr`.
    pub async fn start_control(&self, addr: SocketAddr) -> std::io::Result<ControlServer> {
        ControlServer::start(addr, super::control_api::handler(self.shared.clone())).await
    }

    /// The cluster's logical state: every replica's copy merged (as a read at ALL
    /// would), deletions applied, only live cells.
    pub fn logical_state(&self) -> Vec<LogicalCell> {
        logical_state(&self.shared)
    }
}

/// See [`CqlCluster::logical_state`].
pub fn logical_state(shared: &Shared) -> Vec<LogicalCell> {
    let mut merged: BTreeMap<(String, String, i64, Bytes), Partition> = BTreeMap::new();
    for i in 0..shared.nodes.len() {
        let store = shared.store(i);
        let schema = shared.schema();
        for ks in schema.keyspaces.values() {
            for t in ks.tables.values() {
                for pk in store.partition_keys(&ks.name, &t.name) {
                    if let Some(p) = store.partition(&ks.name, &t.name, &pk) {
                        merged
                            .entry((ks.name.clone(), t.name.clone(), token(&pk), pk))
                            .or_insert_with(|| Partition {
                                key: p.key.clone(),
                                token: p.token,
                                ..Partition::default()
                            })
                            .merge(p);
                    }
                }
            }
        }
    }
    let now = now_secs();
    let mut out = Vec::new();
    for ((ks, table, _, _), p) in merged {
        for (ck, cells) in p.live_rows(now) {
            for (column, c) in cells {
                out.push(LogicalCell {
                    keyspace: ks.clone(),
                    table: table.clone(),
                    partition_key: p.key.iter().map(|k| hex(k)).collect(),
                    clustering: ck.iter().map(|k| hex(k)).collect(),
                    column,
                    value: hex(&c.value),
                    timestamp: c.timestamp,
                    ttl: c.ttl,
                });
            }
        }
    }
    out
}

fn shutdown(shared: &Shared) {
    let mut listeners = shared.listeners.lock().unwrap_or_else(|e| e.into_inner());
    for t in listeners.iter_mut().filter_map(Option::take) {
        t.abort();
    }
    for n in &shared.nodes {
        n.alive.store(false, Ordering::SeqCst);
        n.running.send_replace(false);
    }
}

impl Drop for CqlCluster {
    fn drop(&mut self) {
        shutdown(&self.shared);
    }
}
