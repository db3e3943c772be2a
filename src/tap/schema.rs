//! The schema the CQL decoders learned (from `system_schema` rows a driver read, or
//! CREATE statements seen), kept in the store's `schema` table as it changes, so
//! versions and exports know every table's key columns, column types and user types
//! even when no snapshot was taken and the CREATE happened before the tap began.

use std::collections::HashMap;

use crate::decode::cql::SharedState;
use crate::store::{ClusteringColumn, Column, NamespaceSchema, Store};

/// Keyspaces Cassandra keeps for itself: their tables are never backed up.
const SYSTEM_KEYSPACES: [&str; 7] = [
    "system",
    "system_schema",
    "system_auth",
    "system_distributed",
    "system_traces",
    "system_views",
    "system_virtual_schema",
];

/// What was written last, so unchanged tables are not written again.
#[derive(Debug, Default)]
pub struct SchemaKeeper {
    generation: u64,
    written: HashMap<String, NamespaceSchema>,
}

impl SchemaKeeper {
    /// Writes every user table whose schema changed since the last call.
    pub fn persist(&mut self, store: &Store, state: &SharedState, now: u64) -> anyhow::Result<()> {
        let changed: Vec<(String, NamespaceSchema)> = {
            let shared = state.lock();
            let schema = &shared.schema;
            if schema.generation() == self.generation {
                return Ok(());
            }
            self.generation = schema.generation();
            schema
                .tables()
                .filter(|(ks, _, _)| !SYSTEM_KEYSPACES.contains(ks))
                .filter_map(|(ks, table, t)| {
                    let mut columns: Vec<Column> = t
                        .types
                        .iter()
                        .map(|(name, ty)| Column {
                            name: name.clone(),
                            cql_type: ty.clone(),
                        })
                        .collect();
                    columns.sort_by(|a, b| a.name.cmp(&b.name));
                    let mut user_types: Vec<(String, Vec<(String, String)>)> = schema
                        .udts_of(ks)
                        .map(|(n, f)| (n.to_string(), f.to_vec()))
                        .collect();
                    user_types.sort();
                    let record = NamespaceSchema {
                        partition_key: t.partition_key.clone(),
                        clustering: t
                            .clustering
                            .iter()
                            .map(|c| ClusteringColumn {
                                name: c.clone(),
                                descending: false,
                            })
                            .collect(),
                        columns,
                        replication: Default::default(),
                        updated_at: now,
                        user_types,
                    };
                    let ns = format!("{ks}.{table}");
                    let same = self.written.get(&ns).is_some_and(|w| {
                        NamespaceSchema {
                            updated_at: now,
                            ..w.clone()
                        } == record
                    });
                    (!same).then_some((ns, record))
                })
                .collect()
        };
        for (ns, record) in changed {
            store.put_schema(&ns, &record)?;
            self.written.insert(ns, record);
        }
        Ok(())
    }
}
