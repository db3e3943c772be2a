//! The in-process cluster: listeners and ground truth (configuration and node state
//! are in `cluster/state.rs`).
//! Nodes share one schema (so schema agreement holds) but each has its own storage,
//! prepared-statement cache and clock. Node lifecycle (stop/start/add/remove) lives
//! in `membership.rs`, replica faults and hints in `faults.rs` and `hints.rs`.

use super::membership::MembershipError;
use crate::control::ControlServer;
use crate::cql::cluster::faults::Fault;
use crate::cql::cluster::hints;
use crate::cql::cluster::state::{ClusterConfig, NodeState, Shared};
use crate::cql::storage::clock::now_secs;
use crate::cql::storage::murmur3::token;
use crate::cql::storage::ring::{vnode_tokens, LiveRing};
use crate::cql::storage::schema::{uuid_from, Schema};
use crate::cql::storage::store::{hex, CellRecord, NodeStore, Partition};
use bytes::Bytes;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};

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

    /// Node `node`'s local copy of `keyspace.table` as `sstabledump` JSON (see
    /// `storage/sstabledump.rs`); `None` when the table does not exist.
    pub fn sstabledump(
        &self,
        node: usize,
        keyspace: &str,
        table: &str,
    ) -> Option<serde_json::Value> {
        let t = self.shared.schema().table(keyspace, table)?.clone();
        Some(self.shared.store(node).sstabledump(&t))
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
        hints::pending(&self.shared)
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
