//! Hinted handoff: a coordinator keeps the mutation for each replica that was down
//! or did not ack in time, and replays it when the replica is up and healthy again
//! (Cassandra's HintsService; here delivery is immediate on restart/heal instead of
//! on the dispatcher's 10 s schedule, and there is no hint window).

use super::state::Shared;
use crate::cql::storage::store::Partition;
use bytes::Bytes;
use std::sync::atomic::Ordering;

/// One stored hint.
#[derive(Debug, Clone)]
pub struct Hint {
    /// The coordinator holding it (it delivers only while up).
    pub from: usize,
    pub to: usize,
    pub keyspace: String,
    pub table: String,
    pub pk: Bytes,
    pub update: Partition,
}

fn hints(shared: &Shared) -> std::sync::MutexGuard<'_, Vec<Hint>> {
    shared.hints.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn store(shared: &Shared, hint: Hint) {
    tracing::debug!(from = hint.from, to = hint.to, "hint stored");
    hints(shared).push(hint);
}

/// Hints waiting for delivery.
pub fn pending(shared: &Shared) -> usize {
    hints(shared).len()
}

/// Hints waiting for delivery to `node`.
pub fn pending_for(shared: &Shared, node: usize) -> usize {
    hints(shared).iter().filter(|h| h.to == node).count()
}

fn deliverable(shared: &Shared, h: &Hint) -> bool {
    let up = |i: usize| shared.nodes[i].alive.load(Ordering::SeqCst);
    up(h.from)
        && up(h.to)
        && shared.nodes[h.to]
            .fault
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_healthy()
}

/// Replays every hint whose coordinator and target are both up and the target
/// healthy; returns how many were delivered.
pub fn deliver(shared: &Shared) -> usize {
    let ready: Vec<Hint> = {
        let mut all = hints(shared);
        let (ready, keep): (Vec<Hint>, Vec<Hint>) =
            all.drain(..).partition(|h| deliverable(shared, h));
        *all = keep;
        ready
    };
    for h in &ready {
        shared
            .store(h.to)
            .apply(&h.keyspace, &h.table, &h.pk, &h.update);
    }
    if !ready.is_empty() {
        tracing::info!(delivered = ready.len(), "hints delivered");
    }
    ready.len()
}

/// Forgets hints to or from `node` (it left the ring).
pub fn drop_node(shared: &Shared, node: usize) {
    hints(shared).retain(|h| h.to != node && h.from != node);
}
