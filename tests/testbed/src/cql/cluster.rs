//! The in-process cluster: configuration, node state, listeners, and ground truth.
//! Nodes share one schema (so schema agreement holds) but each has its own storage,
//! prepared-statement cache and clock.

use super::murmur3::token;
use super::ring::{vnode_tokens, Ring, RingNode};
use super::schema::{uuid_from, Schema};
use super::storage::{hex, CellRecord, NodeStore, Partition};
use bytes::Bytes;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tidemark_cql::message::{Event, PreparedMetadata, RowsMetadata};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
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
    /// How long a coordinator waits for replica acknowledgements.
    pub write_timeout: Duration,
    /// `Some((user, password))`: require PasswordAuthenticator (SASL PLAIN) logins.
    pub credentials: Option<(String, String)>,
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
    pub alive: AtomicBool,
    pub store: Mutex<NodeStore>,
    pub prepared: Mutex<HashMap<Bytes, Arc<PreparedStmt>>>,
    last_timestamp: AtomicI64,
}

impl NodeState {
    /// A server-side write timestamp: microseconds, strictly increasing per node.
    pub fn next_timestamp(&self) -> i64 {
        let now = now_micros();
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
    pub nodes: Vec<Arc<NodeState>>,
    pub ring: Ring,
    pub schema: RwLock<Schema>,
    pub events: broadcast::Sender<Event>,
}

impl Shared {
    pub fn schema(&self) -> std::sync::RwLockReadGuard<'_, Schema> {
        self.schema.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn schema_mut(&self) -> std::sync::RwLockWriteGuard<'_, Schema> {
        self.schema.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn store(&self, node: usize) -> std::sync::MutexGuard<'_, NodeStore> {
        self.nodes[node]
            .store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// A running cluster. Dropping it stops the listeners.
pub struct CqlCluster {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
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
        for (i, l) in listeners.iter().enumerate() {
            let addr = l.local_addr()?;
            nodes.push(Arc::new(NodeState {
                index: i,
                addr,
                host_id: uuid_from(&format!("{}/{addr}/{i}", config.cluster_name)),
                dc: config.datacenter.clone(),
                rack: config.rack.clone(),
                tokens: vnode_tokens(config.token_seed, i, config.num_tokens),
                alive: AtomicBool::new(true),
                store: Mutex::new(NodeStore::default()),
                prepared: Mutex::new(HashMap::new()),
                last_timestamp: AtomicI64::new(0),
            }));
        }
        let ring = Ring::new(
            nodes
                .iter()
                .map(|n| RingNode {
                    dc: n.dc.clone(),
                    rack: n.rack.clone(),
                    tokens: n.tokens.clone(),
                })
                .collect(),
        );
        let (events, _) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            config,
            nodes,
            ring,
            schema: RwLock::new(Schema::new()),
            events,
        });
        let mut tasks = Vec::new();
        for (i, l) in listeners.into_iter().enumerate() {
            let shared = shared.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((sock, peer)) => {
                            tracing::debug!(node = i, %peer, "connection");
                            tokio::spawn(super::conn::serve(shared.clone(), i, sock));
                        }
                        Err(e) => {
                            tracing::warn!(node = i, "accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }));
        }
        tracing::info!(nodes = shared.nodes.len(), "cql testbed started");
        Ok(CqlCluster { shared, tasks })
    }

    /// The native-protocol address of every node.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.shared.nodes.iter().map(|n| n.addr).collect()
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting connections (open connections end when their peers close).
    pub fn stop(mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }

    /// Everything node `node` stores, with timestamps, TTLs and tombstones.
    pub fn replica_dump(&self, node: usize) -> Vec<CellRecord> {
        self.shared.store(node).dump()
    }

    /// The cluster's logical state: every replica's copy merged (as a read at ALL
    /// would), deletions applied, only live cells.
    pub fn logical_state(&self) -> Vec<LogicalCell> {
        let mut merged: BTreeMap<(String, String, i64, Bytes), Partition> = BTreeMap::new();
        for i in 0..self.shared.nodes.len() {
            let store = self.shared.store(i);
            let schema = self.shared.schema();
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
}

impl Drop for CqlCluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
