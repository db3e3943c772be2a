//! Prepared statements a schema change makes every node forget, as Cassandra 5.0's
//! `QueryProcessor` does: DROP KEYSPACE forgets the keyspace's, DROP TABLE the table's,
//! and an ALTER TABLE whose change "affects prepared statements"
//! (`TableMetadata.changeAffectsPreparedStatements`: columns, their types, indexes,
//! default TTL, gc grace) the table's. The next EXECUTE of one gets Unprepared and the
//! driver prepares it again, so captures of the testbed show that round trip as those
//! of a real cluster do.

use super::ctx::Ctx;
use tidemark_cql::statement::parse_statement;

/// Forgets, on every node, the prepared statements that read or write `keyspace`
/// (only its `table` when given; a BATCH when any member does).
pub fn forget_prepared(ctx: &Ctx<'_>, keyspace: &str, table: Option<&str>) {
    for node in &ctx.shared.nodes {
        let mut cache = node.prepared.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, stmt| {
            let Ok(parsed) = parse_statement(&stmt.query) else {
                return true;
            };
            !parsed
                .resolve_tables(stmt.keyspace.as_deref())
                .into_iter()
                .flatten()
                .any(|t| t.keyspace == keyspace && table.is_none_or(|n| t.table == n))
        });
    }
}
