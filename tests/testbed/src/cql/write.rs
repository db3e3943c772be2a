//! INSERT/UPDATE/DELETE coordination: send a partition update (built by
//! `mutation::build`) to every live replica and wait for the consistency level.

use super::cluster::Shared;
use super::consistency::{block_for, check_available, ReplicaInfo};
use super::exec::{cl_error, invalid};
use super::schema::Table;
use super::storage::Partition;
use bytes::Bytes;
use std::sync::atomic::Ordering;
use tidemark_cql::message::{ErrorBody, ErrorDetails};
use tidemark_cql::Consistency;

/// Sends `update` to the replicas of its token and waits for `cl`.
pub fn coordinate(
    shared: &Shared,
    me: usize,
    table: &Table,
    pk: &Bytes,
    update: &Partition,
    cl: Consistency,
) -> Result<(), ErrorBody> {
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
            alive: shared.nodes[*r].alive.load(Ordering::Relaxed),
        })
        .collect();
    let dcs: Vec<&str> = infos.iter().map(|i| i.dc.as_str()).collect();
    let bf = block_for(cl, &replication.rf_by_dc(&dcs), &shared.nodes[me].dc, true)
        .map_err(|e| cl_error(e, cl))?;
    check_available(cl, &bf, &infos).map_err(|e| cl_error(e, cl))?;
    let mut acks = Vec::new();
    for r in infos.iter().filter(|r| r.alive) {
        shared
            .store(r.node)
            .apply(&table.keyspace, &table.name, pk, update);
        acks.push(r);
    }
    if cl == Consistency::Any || bf.satisfied(&acks) {
        return Ok(());
    }
    Err(ErrorBody {
        code: tidemark_cql::message::error_code::WRITE_TIMEOUT,
        message: format!(
            "Operation timed out - received only {} responses.",
            bf.counted(&acks)
        )
        .into(),
        details: ErrorDetails::WriteTimeout {
            consistency: cl,
            received: bf.counted(&acks) as i32,
            block_for: bf.total() as i32,
            write_type: "SIMPLE".into(),
            contentions: None,
        },
    })
}
