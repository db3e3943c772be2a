//! INSERT/UPDATE/DELETE coordination: a partition update (built by
//! `mutation::build`) goes to the replicas of its token; the coordinator
//! ([`super::coordinator`]) applies the consistency level, replica faults, the write
//! timeout and hints.

use super::cluster::Shared;
use super::schema::Table;
use super::storage::Partition;
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
    super::coordinator::coordinate(shared, me, table, pk, update, cl)
}
