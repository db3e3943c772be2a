//! The write coordinator: sends a partition update to the replicas of its token,
//! collects acknowledgements under each replica's fault (see `faults.rs`), and
//! answers as Cassandra's `StorageProxy.mutate` would: Unavailable before writing when
//! too few replicas are alive, success once `block_for` acks arrived, WriteTimeout
//! with the true received/blockfor counts when they did not within `write_timeout`.
//! Replicas that were down or did not ack in time get a hint.
//!
//! Statement execution is synchronous, so the coordinator computes when the answer
//! would be sent and leaves that delay in [`take_reply_delay`] for the connection to
//! wait before replying; delayed mutations are applied by timer tasks.

use super::consistency::cl_error;
use super::consistency::{block_for, check_available, ReplicaInfo};
use super::hints;
use super::hints::Hint;
use super::state::Shared;
use crate::cql::errors::invalid;
use crate::cql::storage::schema::Table;
use crate::cql::storage::store::Partition;
use bytes::Bytes;
use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tidemark_cql::message::{error_code, ErrorBody, ErrorDetails};
use tidemark_cql::Consistency;

thread_local! {
    static REPLY_DELAY: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// How long the connection must wait before sending the answer of the statement
/// just executed on this thread (the slowest ack it waited for, or the write
/// timeout); resets it to zero.
pub fn take_reply_delay() -> Duration {
    REPLY_DELAY.with(|d| d.replace(Duration::ZERO))
}

fn note_reply_delay(delay: Duration) {
    REPLY_DELAY.with(|d| d.set(d.get().max(delay)));
}

/// Whether the replicas of `update`'s token can satisfy `cl` now: the
/// Unavailable `coordinate` would answer before writing anything, without writing.
/// A logged batch asks this of every partition first, as Cassandra's
/// `StorageProxy.mutateAtomically` builds every mutation's write handler (which
/// checks the live replicas) before the batchlog write: one partition short of
/// replicas refuses the whole batch, none of it applied.
pub fn check_available_for(
    shared: &Shared,
    me: usize,
    table: &Table,
    update: &Partition,
    cl: Consistency,
) -> Result<(), ErrorBody> {
    replicas_for(shared, me, table, update, cl).map(|_| ())
}

/// The replicas of `update`'s token, once `cl` is known to be satisfiable.
fn replicas_for(
    shared: &Shared,
    me: usize,
    table: &Table,
    update: &Partition,
    cl: Consistency,
) -> Result<(Vec<ReplicaInfo>, super::consistency::BlockFor), ErrorBody> {
    let replication = {
        let schema = shared.schema();
        let ks = schema
            .keyspaces
            .get(&table.keyspace)
            .ok_or_else(|| invalid(format!("Keyspace {} does not exist", table.keyspace)))?;
        ks.replication.clone()
    };
    let replicas = shared.ring.replicas(update.token, &replication);
    let infos: Vec<ReplicaInfo> = replicas
        .iter()
        .map(|r| ReplicaInfo {
            node: *r,
            dc: shared.nodes[*r].dc.clone(),
            alive: shared.nodes[*r].alive.load(Ordering::SeqCst),
        })
        .collect();
    let dcs: Vec<&str> = infos.iter().map(|i| i.dc.as_str()).collect();
    let bf = block_for(cl, &replication.rf_by_dc(&dcs), &shared.nodes[me].dc, true)
        .map_err(|e| cl_error(e, cl))?;
    check_available(cl, &bf, &infos).map_err(|e| cl_error(e, cl))?;
    Ok((infos, bf))
}

/// Sends `update` to the replicas of its token and waits (virtually) for `cl`.
pub fn coordinate(
    shared: &Shared,
    me: usize,
    table: &Table,
    pk: &Bytes,
    update: &Partition,
    cl: Consistency,
) -> Result<(), ErrorBody> {
    let (infos, bf) = replicas_for(shared, me, table, update, cl)?;
    let timeout = shared.config.write_timeout;
    let hint = |to: usize| {
        hints::store(
            shared,
            Hint {
                from: me,
                to,
                keyspace: table.keyspace.clone(),
                table: table.name.clone(),
                pk: pk.clone(),
                update: update.clone(),
            },
        )
    };
    // (ack time, replica) for every replica whose ack will arrive at all.
    let mut acks: Vec<(Duration, &ReplicaInfo)> = Vec::new();
    for r in &infos {
        if !r.alive {
            hint(r.node);
            continue;
        }
        let delivery = shared.nodes[r.node]
            .fault
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .delivery();
        if let Some(after) = delivery.apply_after {
            send_mutation(shared, r.node, table, pk, update, after);
        }
        match delivery.ack_after {
            Some(t) if t <= timeout => acks.push((t, r)),
            // Cassandra hints a replica whose ack did not come within the timeout.
            _ => hint(r.node),
        }
    }
    if cl == Consistency::Any {
        return Ok(());
    }
    acks.sort_by_key(|(t, _)| *t);
    let mut received: Vec<&ReplicaInfo> = Vec::new();
    for (t, r) in &acks {
        received.push(r);
        if bf.satisfied(&received) {
            note_reply_delay(*t);
            return Ok(());
        }
    }
    note_reply_delay(timeout);
    let counted = bf.counted(&received);
    Err(ErrorBody {
        code: error_code::WRITE_TIMEOUT,
        message: format!("Operation timed out - received only {counted} responses.").into(),
        details: ErrorDetails::WriteTimeout {
            consistency: cl,
            received: counted as i32,
            block_for: bf.total() as i32,
            write_type: "SIMPLE".into(),
            contentions: None,
        },
    })
}

/// Applies `update` on `node` now, or after `after` from a timer task (if the node
/// is still up then; a node stopped in between loses the mutation, as a real one
/// would lose an unapplied message).
fn send_mutation(
    shared: &Shared,
    node: usize,
    table: &Table,
    pk: &Bytes,
    update: &Partition,
    after: Duration,
) {
    let apply = |shared: &Shared| {
        shared
            .store(node)
            .apply(&table.keyspace, &table.name, pk, update)
    };
    if after.is_zero() {
        apply(shared);
        return;
    }
    let (Ok(handle), Some(shared_arc)) = (tokio::runtime::Handle::try_current(), shared.self_arc())
    else {
        apply(shared);
        return;
    };
    let (ks, name, pk, update) = (
        table.keyspace.clone(),
        table.name.clone(),
        pk.clone(),
        update.clone(),
    );
    handle.spawn(async move {
        tokio::time::sleep(after).await;
        if shared_arc.nodes[node].alive.load(Ordering::SeqCst) {
            shared_arc.store(node).apply(&ks, &name, &pk, &update);
        }
    });
}
