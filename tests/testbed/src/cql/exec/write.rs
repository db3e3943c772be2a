//! INSERT/UPDATE/DELETE coordination: a partition update (built by
//! `mutation::build`) goes to the replicas of its token; the coordinator
//! ([`crate::cql::cluster::coordinator`]) applies the consistency level, replica faults, the write
//! timeout and hints.

use crate::cql::cluster::coordinator;
use crate::cql::cluster::state::Shared;
use crate::cql::storage::schema::Table;
use crate::cql::storage::store::Partition;
use bytes::Bytes;
use tidemark_cql::message::ErrorBody;
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
    coordinator::coordinate(shared, me, table, pk, update, cl)
}
