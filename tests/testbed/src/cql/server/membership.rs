//! Node lifecycle: stop and restart a node, add one (it takes its tokens and data is
//! streamed to it), remove one (its ranges move to the remaining nodes). Drivers stay
//! connected through it: STATUS_CHANGE (UP/DOWN) and TOPOLOGY_CHANGE
//! (NEW_NODE/REMOVED_NODE) events go to connections that REGISTERed, and
//! `system.peers`/`peers_v2` list exactly the joined nodes.

use crate::cql::cluster::faults::Fault;
use crate::cql::cluster::hints;
use crate::cql::cluster::state::Shared;
use crate::cql::storage::murmur3;
use crate::cql::storage::ring;
use crate::cql::storage::ring::Ring;
use crate::cql::storage::store;
use crate::cql::storage::store::NodeStore;
use crate::cql::wire::conn;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tidemark_cql::message::Event;
use tokio::net::TcpListener;

/// Why a membership change was refused.
#[derive(Debug, Error)]
pub enum MembershipError {
    #[error("no node {0}")]
    NoSuchNode(usize),
    #[error("node {0} is not part of the ring")]
    NotJoined(usize),
    #[error("node {0} is already {1}")]
    AlreadyInState(usize, &'static str),
    #[error("no spare node slot left (raise ClusterConfig::spare_nodes)")]
    NoSpareSlot,
    #[error("node {node} cannot listen on {addr}: {source}")]
    Bind {
        node: usize,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Runs node `i`'s accept loop on `listener`.
pub fn spawn_listener(shared: &Arc<Shared>, i: usize, listener: TcpListener) {
    let s = shared.clone();
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((sock, peer)) => {
                    tracing::debug!(node = i, %peer, "connection");
                    tokio::spawn(conn::serve(s.clone(), i, sock));
                }
                Err(e) => {
                    tracing::warn!(node = i, "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    let mut listeners = shared.listeners.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(old) = listeners[i].replace(task) {
        old.abort();
    }
}

fn node_index(shared: &Shared, i: usize) -> Result<(), MembershipError> {
    if i < shared.nodes.len() {
        Ok(())
    } else {
        Err(MembershipError::NoSuchNode(i))
    }
}

/// Closes node `i`'s listener and connections; its data is kept for a restart.
fn halt(shared: &Shared, i: usize) {
    let node = &shared.nodes[i];
    node.alive.store(false, Ordering::SeqCst);
    node.running.send_replace(false);
    if let Some(t) = shared.listeners.lock().unwrap_or_else(|e| e.into_inner())[i].take() {
        t.abort();
    }
}

/// Binds node `i`'s address and marks it up.
async fn launch(shared: &Arc<Shared>, i: usize) -> Result<(), MembershipError> {
    let addr = shared.nodes[i].addr;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| MembershipError::Bind {
            node: i,
            addr,
            source,
        })?;
    let node = &shared.nodes[i];
    node.running.send_replace(true);
    node.alive.store(true, Ordering::SeqCst);
    spawn_listener(shared, i, listener);
    Ok(())
}

/// Stops node `i` (as `nodetool stopdaemon`): connections close, coordinators see it
/// down (Unavailable / hints), other nodes announce DOWN.
pub async fn stop_node(shared: &Arc<Shared>, i: usize) -> Result<(), MembershipError> {
    let _guard = shared.membership.lock().await;
    node_index(shared, i)?;
    let node = &shared.nodes[i];
    if !node.joined.load(Ordering::SeqCst) {
        return Err(MembershipError::NotJoined(i));
    }
    if !node.alive.load(Ordering::SeqCst) {
        return Err(MembershipError::AlreadyInState(i, "down"));
    }
    halt(shared, i);
    shared.announce(Event::StatusChange {
        change: "DOWN".into(),
        node: node.addr,
    });
    tracing::info!(node = i, "node stopped");
    Ok(())
}

/// Restarts node `i` with the data it had; hints for it are then delivered.
pub async fn start_node(shared: &Arc<Shared>, i: usize) -> Result<(), MembershipError> {
    let _guard = shared.membership.lock().await;
    node_index(shared, i)?;
    let node = &shared.nodes[i];
    if !node.joined.load(Ordering::SeqCst) {
        return Err(MembershipError::NotJoined(i));
    }
    if node.alive.load(Ordering::SeqCst) {
        return Err(MembershipError::AlreadyInState(i, "up"));
    }
    launch(shared, i).await?;
    hints::deliver(shared);
    shared.announce(Event::StatusChange {
        change: "UP".into(),
        node: node.addr,
    });
    tracing::info!(node = i, "node started");
    Ok(())
}

/// Sets node `i`'s write-path fault; clearing it delivers the hints held for it.
pub fn set_fault(shared: &Shared, i: usize, fault: Fault) -> Result<(), MembershipError> {
    node_index(shared, i)?;
    let healthy = fault.is_healthy();
    *shared.nodes[i]
        .fault
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = fault;
    if healthy {
        hints::deliver(shared);
    }
    Ok(())
}

/// Skews node `i`'s clock by `micros`, or pins it to `fixed` (both for server-side
/// timestamps).
pub fn set_clock(
    shared: &Shared,
    i: usize,
    micros: i64,
    fixed: Option<i64>,
) -> Result<(), MembershipError> {
    node_index(shared, i)?;
    let node = &shared.nodes[i];
    node.clock_skew_micros.store(micros, Ordering::SeqCst);
    *node.fixed_clock.lock().unwrap_or_else(|e| e.into_inner()) = fixed;
    Ok(())
}

/// Bootstraps a node in the first spare slot: it takes its tokens, receives the data
/// of the ranges it now replicates, starts listening, and NEW_NODE + UP are announced.
/// Returns its index.
pub async fn add_node(shared: &Arc<Shared>) -> Result<usize, MembershipError> {
    let _guard = shared.membership.lock().await;
    let i = shared
        .nodes
        .iter()
        .position(|n| !n.joined.load(Ordering::SeqCst) && !n.alive.load(Ordering::SeqCst))
        .ok_or(MembershipError::NoSpareSlot)?;
    *shared.store(i) = NodeStore::default();
    launch(shared, i).await?;
    let old = shared.ring.current();
    shared.nodes[i].joined.store(true, Ordering::SeqCst);
    let new = shared.build_ring();
    shared.ring.replace(new.clone());
    let streamed = stream_ranges(shared, &old, &new);
    let addr = shared.nodes[i].addr;
    shared.announce(Event::TopologyChange {
        change: "NEW_NODE".into(),
        node: addr,
    });
    shared.announce(Event::StatusChange {
        change: "UP".into(),
        node: addr,
    });
    tracing::info!(node = i, %addr, streamed, "node added");
    Ok(i)
}

/// Removes node `i` from the ring (`nodetool decommission` if it is up, `removenode`
/// if down): its ranges move to the remaining nodes, it stops, its data is dropped,
/// and REMOVED_NODE is announced.
pub async fn remove_node(shared: &Arc<Shared>, i: usize) -> Result<(), MembershipError> {
    let _guard = shared.membership.lock().await;
    node_index(shared, i)?;
    if !shared.nodes[i].joined.load(Ordering::SeqCst) {
        return Err(MembershipError::NotJoined(i));
    }
    let old = shared.ring.current();
    shared.nodes[i].joined.store(false, Ordering::SeqCst);
    let new = shared.build_ring();
    shared.ring.replace(new.clone());
    let streamed = stream_ranges(shared, &old, &new);
    halt(shared, i);
    *shared.store(i) = NodeStore::default();
    hints::drop_node(shared, i);
    shared.announce(Event::TopologyChange {
        change: "REMOVED_NODE".into(),
        node: shared.nodes[i].addr,
    });
    tracing::info!(node = i, streamed, "node removed");
    Ok(())
}

/// Gives every node that replicates a partition under `new` but did not under `old`
/// the copies held by the partition's old replicas (Cassandra streams each range
/// from one source; merging all copies is a superset with the same reconciled
/// result). Old replicas keep their copies, as without `nodetool cleanup`.
/// Returns how many partition copies were streamed.
fn stream_ranges(shared: &Shared, old: &Ring, new: &Ring) -> usize {
    let tables: Vec<(String, String, ring::Replication)> = {
        let schema = shared.schema();
        schema
            .keyspaces
            .values()
            .flat_map(|ks| {
                ks.tables
                    .values()
                    .map(|t| (ks.name.clone(), t.name.clone(), ks.replication.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let mut streamed = 0;
    for (ks, table, replication) in tables {
        let mut keys: Vec<bytes::Bytes> = (0..shared.nodes.len())
            .flat_map(|n| shared.store(n).partition_keys(&ks, &table))
            .collect();
        keys.sort();
        keys.dedup();
        for pk in keys {
            let token = murmur3::token(&pk);
            let before = old.replicas(token, &replication);
            let after = new.replicas(token, &replication);
            let copies: Vec<store::Partition> = before
                .iter()
                .filter_map(|n| shared.store(*n).partition(&ks, &table, &pk).cloned())
                .collect();
            for target in after.iter().filter(|n| !before.contains(n)) {
                let mut store = shared.store(*target);
                for p in &copies {
                    store.apply(&ks, &table, &pk, p);
                    streamed += 1;
                }
            }
        }
    }
    streamed
}
