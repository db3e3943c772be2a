//! The cluster's schema: keyspaces with their replication, tables with their columns
//! and key structure, and the schema version every node reports. The testbed keeps
//! one schema shared by all nodes, so schema agreement always holds (real clusters
//! converge to that by gossip).

use super::murmur3::hash3_x64_128;
use super::ring::Replication;
use std::collections::BTreeMap;
use std::sync::Arc;
use tidemark_cql::ColumnType;

/// Where a column sits in the primary key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    PartitionKey,
    Clustering,
    Regular,
    Static,
}

impl ColumnKind {
    /// The `kind` value of `system_schema.columns`.
    pub fn name(self) -> &'static str {
        match self {
            ColumnKind::PartitionKey => "partition_key",
            ColumnKind::Clustering => "clustering",
            ColumnKind::Regular => "regular",
            ColumnKind::Static => "static",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: String,
    pub ty: ColumnType,
    /// The type as `system_schema.columns.type` shows it (`frozen<list<int>>`).
    pub type_text: String,
    pub kind: ColumnKind,
    /// Position within the partition key or clustering columns; -1 otherwise.
    pub position: i32,
    /// Clustering columns only.
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub keyspace: String,
    pub name: String,
    pub id: [u8; 16],
    /// In definition order: partition key, clustering, then the rest by name (the
    /// order `SELECT *` returns, as in Cassandra).
    pub columns: Vec<ColumnDef>,
    pub default_ttl: i32,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn partition_key(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns
            .iter()
            .filter(|c| c.kind == ColumnKind::PartitionKey)
    }

    pub fn clustering(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns
            .iter()
            .filter(|c| c.kind == ColumnKind::Clustering)
    }

    pub fn is_key(&self, name: &str) -> bool {
        self.column(name)
            .is_some_and(|c| matches!(c.kind, ColumnKind::PartitionKey | ColumnKind::Clustering))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyspace {
    pub name: String,
    pub replication: Replication,
    pub durable_writes: bool,
    pub tables: BTreeMap<String, Arc<Table>>,
    /// User-defined types by name.
    pub types: BTreeMap<String, UserType>,
}

/// A user-defined type (`CREATE TYPE`): fields in order, with their wire types and
/// their type texts as `system_schema.types` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserType {
    pub keyspace: String,
    pub name: String,
    pub fields: Vec<(String, ColumnType, String)>,
}

impl UserType {
    pub fn column_type(&self) -> ColumnType {
        ColumnType::Udt {
            keyspace: self.keyspace.clone().into(),
            name: self.name.clone().into(),
            fields: self
                .fields
                .iter()
                .map(|(n, t, _)| (n.clone().into(), t.clone()))
                .collect(),
        }
    }
}

/// Looks up a user type by name while parsing DDL.
pub type UdtLookup<'a> = &'a dyn Fn(&str) -> Option<ColumnType>;

impl Keyspace {
    /// The `replication` map of `system_schema.keyspaces`.
    pub fn replication_map(&self) -> Vec<(String, String)> {
        match &self.replication {
            Replication::Simple { rf } => vec![
                (
                    "class".into(),
                    "org.apache.cassandra.locator.SimpleStrategy".into(),
                ),
                ("replication_factor".into(), rf.to_string()),
            ],
            Replication::NetworkTopology { dcs } => {
                let mut v = vec![(
                    "class".into(),
                    "org.apache.cassandra.locator.NetworkTopologyStrategy".into(),
                )];
                v.extend(dcs.iter().map(|(d, n)| (d.clone(), n.to_string())));
                v
            }
        }
    }
}

/// All user keyspaces and the version that identifies this schema.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub keyspaces: BTreeMap<String, Keyspace>,
    pub version: [u8; 16],
    /// Bumped on every change, so table ids of re-created tables differ.
    pub generation: u64,
}

/// A name-based (version 3 style) UUID from a hash, as Cassandra derives schema
/// versions from a digest of the schema.
pub fn uuid_from(text: &str) -> [u8; 16] {
    let (a, b) = hash3_x64_128(text.as_bytes());
    let mut u = [0u8; 16];
    u[..8].copy_from_slice(&a.to_be_bytes());
    u[8..].copy_from_slice(&b.to_be_bytes());
    u[6] = (u[6] & 0x0f) | 0x30;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

impl Schema {
    pub fn new() -> Schema {
        let mut s = Schema::default();
        s.recompute_version();
        s
    }

    /// Recomputes the version from a canonical description of every keyspace and
    /// table (so the same schema always has the same version).
    pub fn recompute_version(&mut self) {
        self.generation += 1;
        let mut desc = String::from("tidemark-testbed schema");
        for ks in self.keyspaces.values() {
            desc.push_str(&format!(
                "|{}:{:?}:{}",
                ks.name, ks.replication, ks.durable_writes
            ));
            for u in ks.types.values() {
                desc.push_str(&format!("|type {}.{}:{:?}", u.keyspace, u.name, u.fields));
            }
            for t in ks.tables.values() {
                desc.push_str(&format!(
                    "|{}.{}:{:?}:{}",
                    t.keyspace, t.name, t.id, t.default_ttl
                ));
                for c in &t.columns {
                    desc.push_str(&format!(
                        ",{}:{}:{:?}:{}",
                        c.name, c.type_text, c.kind, c.descending
                    ));
                }
            }
        }
        self.version = uuid_from(&desc);
    }

    pub fn table(&self, ks: &str, name: &str) -> Option<&Arc<Table>> {
        self.keyspaces.get(ks)?.tables.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_depends_on_content() {
        let a = Schema::new();
        let mut b = Schema::new();
        assert_eq!(a.version, b.version);
        b.keyspaces.insert(
            "ks".into(),
            Keyspace {
                name: "ks".into(),
                replication: Replication::Simple { rf: 3 },
                durable_writes: true,
                tables: BTreeMap::new(),
                types: BTreeMap::new(),
            },
        );
        b.recompute_version();
        assert_ne!(a.version, b.version);
    }
}
