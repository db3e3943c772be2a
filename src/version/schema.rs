//! The CQL schema a version's rows are read with: key layout (which columns are the
//! partition key, which clustering, their types) and every column's type, user types
//! included, for rendering rows and matching range deletions.
//!
//! It comes from what the tap stored of the decoders' schema (the store's `schema`
//! table), then, as the decoder learns it, from CQL text: a snapshot's CREATE
//! statements and the `CREATE TABLE`/`CREATE TYPE` statements the log holds (schema
//! changes are logged like writes, with their text), in log order.

use crate::decode::cql::ddl;
use crate::decode::cql::protocol::statement::parse_statement;
use crate::decode::cql::schema::{Schema, TableSchema};
use crate::store::{Envelope, Payload, Store, WriteOp};

/// The CQL text of a logged schema change, if it has one.
fn ddl_text(e: &Envelope) -> Option<String> {
    let line: serde_json::Value = serde_json::from_str(e.mutation.write_json.as_deref()?).ok()?;
    line.get("cql")?.as_str().map(str::to_owned)
}

/// Learns one statement's schema (CREATE TABLE / CREATE TYPE; others are ignored),
/// `keyspace` resolving unqualified names.
pub fn learn_text(schema: &mut Schema, text: &str, keyspace: Option<&str>) {
    if let Ok(stmt) = parse_statement(text) {
        ddl::learn(&stmt, keyspace, schema);
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
    let Some(json) = m.write_json.as_deref() else {
        return;
    };
    let Ok(line) = serde_json::from_str::<serde_json::Value>(json) else {
        return;
    };
    if let Some(text) = line.get("cql").and_then(|t| t.as_str()) {
        learn_text(schema, text, m.namespace.split('.').next());
    }
}

/// The schema the store's log describes, up to seq `last_seq`.
pub fn from_log(store: &Store, last_seq: u64) -> anyhow::Result<Schema> {
    let mut schema = Schema::default();
    learn_stored(&mut schema, store)?;
    let reader = store.reader()?;
    for e in reader.seq_range(..=last_seq)? {
        let e = e?;
        if e.mutation.op != WriteOp::Ddl || !matches!(e.mutation.payload, Payload::Cql(_)) {
            continue;
        }
        if let Some(text) = ddl_text(&e) {
            let keyspace = e.mutation.namespace.split('.').next();
            learn_text(&mut schema, &text, keyspace);
        }
    }
    Ok(schema)
}
