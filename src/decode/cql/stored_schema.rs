//! The CQL schema a store describes, which versions, exports and imports read rows
//! with: key layout (which columns are the partition key, which clustering, their
//! types) and every column's type, user types included, for rendering rows and
//! matching range deletions.
//!
//! It comes from what the tap stored of the decoders' schema (the store's `schema`
//! table), then, as the decoder learns it, from CQL text: a snapshot's CREATE
//! statements and the `CREATE TABLE`/`CREATE TYPE` statements the log holds (schema
//! changes are logged like writes, with their text), in log order.

use super::ddl;
use super::protocol::statement::{parse_statement, parse_statements};
use super::schema::{Schema, TableSchema};
use crate::store::{Payload, Store, WriteOp};

/// Learns one statement's schema (CREATE TABLE / CREATE TYPE; others are ignored),
/// `keyspace` resolving unqualified names.
pub fn learn_text(schema: &mut Schema, text: &str, keyspace: Option<&str>) {
    if let Ok(stmt) = parse_statement(text) {
        ddl::learn(&stmt, keyspace, schema);
    }
}

/// Learns every statement of a CQL script (a snapshot's schema text: CREATE
/// KEYSPACE/TYPE/TABLE statements separated by `;`), split by the statement parser.
pub fn learn_script(schema: &mut Schema, script: &str, keyspace: Option<&str>) {
    for (_, stmt) in parse_statements(script) {
        if let Ok(stmt) = stmt {
            ddl::learn(&stmt, keyspace, schema);
        }
    }
}

/// Learns the tables and user types the tap stored (the store's `schema` table,
/// from `system_schema` rows a driver read or CREATE statements the tap saw).
pub fn learn_stored(schema: &mut Schema, store: &Store) -> anyhow::Result<()> {
    for ns in store.namespaces()? {
        let Some(rec) = store.schema(&ns)? else {
            continue;
        };
        let Some((ks, table)) = ns.split_once('.') else {
            continue;
        };
        for (name, fields) in &rec.user_types {
            schema.add_udt(ks, name, fields.clone());
        }
        if rec.partition_key.is_empty() {
            continue;
        }
        let types = rec
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.cql_type.clone()))
            .collect();
        let clustering = rec.clustering.iter().map(|c| c.name.clone()).collect();
        schema.add_table(
            ks,
            table,
            TableSchema::with_key(types, rec.partition_key.clone(), clustering),
        );
    }
    Ok(())
}

/// Learns from one logged mutation, if it is a CQL schema change with its text.
pub fn learn_logged(schema: &mut Schema, m: &crate::store::Mutation) {
    if m.op != WriteOp::Ddl || !matches!(m.payload, Payload::Cql(_)) {
        return;
    }
    if let Some(text) = m.ddl.as_ref().and_then(|d| d.cql.as_deref()) {
        learn_text(schema, text, m.namespace.split('.').next());
    }
}

/// The schema the store describes: what the tap stored, then every logged schema
/// change in log order.
pub fn from_store(store: &Store) -> anyhow::Result<Schema> {
    let mut schema = Schema::default();
    learn_stored(&mut schema, store)?;
    let reader = store.reader()?;
    for e in reader.seq_range(..)? {
        learn_logged(&mut schema, &e?.mutation);
    }
    Ok(schema)
}
