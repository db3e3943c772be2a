//! Executing modifications: single INSERT/UPDATE/DELETE (counters serialized so the
//! read-modify-write of a total is atomic), BATCH (logged, unlogged, counter; text or
//! prepared members, one timestamp for the whole batch) and TRUNCATE.

use super::ctx::{Bound, Ctx};
use super::lwt;
use super::mutation::build;
use super::read::current_partition;
use super::write::coordinate;
use crate::cql::cluster::consistency;
use crate::cql::cluster::consistency::cl_error;
use crate::cql::errors::{error, invalid};
use crate::cql::storage::schema::Table;
use bytes::Bytes;
use std::sync::{Arc, Mutex, MutexGuard};
use tidemark_cql::message::{error_code as code, ErrorBody, ResultBody};
use tidemark_cql::statement::{BatchKind, Modification};
use tidemark_cql::ColumnType;

/// Serializes counter updates and Paxos rounds across the process: the testbed's
/// stand-in for counter locks and Paxos ballots.
static SERIALIZER: Mutex<()> = Mutex::new(());

pub fn serialize() -> MutexGuard<'static, ()> {
    SERIALIZER.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn is_counter_table(t: &Table) -> bool {
    t.columns.iter().any(|c| c.ty == ColumnType::Counter)
}

pub fn is_conditional(m: &Modification<'_>) -> bool {
    match m {
        Modification::Insert(i) => i.if_not_exists,
        Modification::Update(u) => u.condition.is_some(),
        Modification::Delete(d) => d.condition.is_some(),
    }
}

/// Builds the partition updates of `m` at `ts` and sends each to its replicas.
pub fn apply(
    ctx: &Ctx<'_>,
    t: &Table,
    m: &Modification<'_>,
    bound: &Bound,
    ts: i64,
) -> Result<(), ErrorBody> {
    let current = |pk: &Bytes| current_partition(ctx.shared, t, pk);
    for (pk, update) in build(m, t, bound, ts, ctx.me, &current)? {
        coordinate(ctx.shared, ctx.me, t, &pk, &update, ctx.consistency)?;
    }
    Ok(())
}

fn table_of(ctx: &Ctx<'_>, m: &Modification<'_>) -> Result<Arc<Table>, ErrorBody> {
    let q = m.table();
    Ok(ctx
        .table(q.keyspace.as_ref().map(|k| k.as_str()), q.name.as_str())?
        .1)
}

/// One INSERT/UPDATE/DELETE.
pub fn modification(
    ctx: &Ctx<'_>,
    m: &Modification<'_>,
    bound: &Bound,
) -> Result<ResultBody, ErrorBody> {
    let t = table_of(ctx, m)?;
    if is_conditional(m) {
        return lwt::conditional(ctx, &t, m, bound);
    }
    let ts = ctx
        .timestamp
        .unwrap_or_else(|| ctx.shared.nodes[ctx.me].next_timestamp());
    let _guard = is_counter_table(&t).then(serialize);
    apply(ctx, &t, m, bound, ts)?;
    Ok(ResultBody::Void)
}

/// A BATCH: every member is checked first (tables, counter rules), then applied with
/// the batch timestamp (a member's own `USING TIMESTAMP` wins).
pub fn batch(
    ctx: &Ctx<'_>,
    kind: BatchKind,
    default_ts: Option<i64>,
    members: &[(Modification<'_>, Bound)],
) -> Result<ResultBody, ErrorBody> {
    let mut tables = Vec::new();
    for (m, _) in members {
        let t = table_of(ctx, m)?;
        let counter = is_counter_table(&t);
        match (kind, counter) {
            (BatchKind::Counter, false) => {
                return Err(invalid(
                    "Cannot include non-counter statement in a counter batch",
                ))
            }
            (BatchKind::Logged, true) => {
                return Err(invalid(
                    "Cannot include a counter statement in a logged batch",
                ))
            }
            (BatchKind::Unlogged, true) => {
                return Err(invalid(
                    "Counter mutations are only allowed in COUNTER batches",
                ))
            }
            _ => {}
        }
        tables.push(t);
    }
    if members.iter().any(|(m, _)| is_conditional(m)) {
        if kind == BatchKind::Counter {
            return Err(invalid("Cannot include conditions in a counter batch"));
        }
        return super::lwt_batch::conditional_batch(ctx, members, &tables);
    }
    let ts = default_ts
        .or(ctx.timestamp)
        .unwrap_or_else(|| ctx.shared.nodes[ctx.me].next_timestamp());
    let _guard = (kind == BatchKind::Counter).then(serialize);
    if kind == BatchKind::Logged {
        // All or nothing: every partition's replicas are checked before any is
        // written (Cassandra's `mutateAtomically`). An unlogged batch goes partition
        // by partition (`StorageProxy.mutate`): one short of replicas is refused
        // after the ones before it were sent.
        let current = |t: &Table, pk: &Bytes| current_partition(ctx.shared, t, pk);
        let mut updates = Vec::new();
        for ((m, bound), t) in members.iter().zip(&tables) {
            for (pk, update) in build(m, t, bound, ts, ctx.me, &|pk: &Bytes| current(t, pk))? {
                crate::cql::cluster::coordinator::check_available_for(
                    ctx.shared,
                    ctx.me,
                    t,
                    &update,
                    ctx.consistency,
                )?;
                updates.push((t, pk, update));
            }
        }
        for (t, pk, update) in updates {
            coordinate(ctx.shared, ctx.me, t, &pk, &update, ctx.consistency)?;
        }
        return Ok(ResultBody::Void);
    }
    for ((m, bound), t) in members.iter().zip(&tables) {
        apply(ctx, t, m, bound, ts)?;
    }
    Ok(ResultBody::Void)
}

/// TRUNCATE: needs every node up (Cassandra truncates on all nodes), then drops the
/// table's data everywhere.
pub fn truncate(ctx: &Ctx<'_>, ks: Option<&str>, name: &str) -> Result<ResultBody, ErrorBody> {
    let (ks, t) = ctx.table(ks, name)?;
    use std::sync::atomic::Ordering::Relaxed;
    let nodes = &ctx.shared.nodes;
    // Members of the ring only: spare and removed slots are not nodes of the cluster.
    let members: Vec<_> = nodes.iter().filter(|n| n.joined.load(Relaxed)).collect();
    let alive = members.iter().filter(|n| n.alive.load(Relaxed)).count();
    if alive < members.len() {
        return Err(cl_error(
            consistency::ClError::Unavailable {
                required: members.len(),
                alive,
            },
            tidemark_cql::Consistency::All,
        ));
    }
    for i in 0..nodes.len() {
        ctx.shared.store(i).forget(&ks, Some(&t.name));
    }
    Ok(ResultBody::Void)
}

/// Parses each text member and pairs it with its values (prepared members arrive as
/// their query text).
pub fn parse_members<'a>(
    texts: &'a [(String, Bound)],
) -> Result<Vec<(Modification<'a>, Bound)>, ErrorBody> {
    let mut out = Vec::new();
    for (text, bound) in texts {
        let stmt = tidemark_cql::statement::parse_statement(text)
            .map_err(|e| error(code::SYNTAX_ERROR, e.to_string()))?;
        match stmt.kind {
            tidemark_cql::statement::StatementKind::Modification(m) => {
                out.push((m, bound.clone()))
            }
            _ => {
                return Err(invalid(
                    "Invalid statement in batch: only UPDATE, INSERT and DELETE statements are allowed.",
                ))
            }
        }
    }
    Ok(out)
}
