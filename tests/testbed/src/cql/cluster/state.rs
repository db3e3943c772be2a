//! State shared by every node and connection of the simulated cluster: its
//! configuration, each node's state (storage, prepared statements, clock, fault)
//! and the `Shared` hub. It sits below execution, the wire and the server so those
//! layers can all hold it without importing each other.

use super::faults::Fault;
use super::hints::Hint;
use crate::cql::storage::clock::now_micros;
use crate::cql::storage::ring::{LiveRing, Ring, RingNode};
use crate::cql::storage::schema::Schema;
use crate::cql::storage::store::NodeStore;
use bytes::Bytes;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tidemark_cql::message::{Event, PreparedMetadata, RowsMetadata};
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
    pub(crate) last_timestamp: AtomicI64,
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
    pub(crate) this: std::sync::Weak<Shared>,
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
