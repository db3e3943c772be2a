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

/// Parses a CQL type as written in DDL (`int`, `map<text, frozen<list<int>>>`),
/// returning the wire type and the normalized text `system_schema` shows.
pub fn parse_type(cur: &mut super::lex::Cursor) -> Result<(ColumnType, String), String> {
    parse_type_depth(cur, 0, &|_| None)
}

/// [`parse_type`] that also knows the user types of the statement's keyspace.
pub fn parse_type_with(
    cur: &mut super::lex::Cursor,
    udts: UdtLookup<'_>,
) -> Result<(ColumnType, String), String> {
    parse_type_depth(cur, 0, udts)
}

fn parse_type_depth(
    cur: &mut super::lex::Cursor,
    depth: usize,
    udts: UdtLookup<'_>,
) -> Result<(ColumnType, String), String> {
    if depth > 16 {
        return Err("type nesting too deep".into());
    }
    let name = cur.ident()?;
    if name == "vector" {
        // `vector<element, dimension>` (Cassandra 5; the driver knows it as a custom type).
        cur.expect_sym("<")?;
        let (element, text) = parse_type_depth(cur, depth + 1, udts)?;
        cur.expect_sym(",")?;
        let dimension = match cur.next_tok() {
            Some(super::lex::Tok::Num(n)) => n.parse::<u32>().ok().filter(|d| *d > 0),
            _ => None,
        }
        .ok_or("vector dimension must be a positive integer")?;
        cur.expect_sym(">")?;
        return Ok((
            ColumnType::Vector {
                element: Box::new(element),
                dimension,
            },
            format!("vector<{text}, {dimension}>"),
        ));
    }
    let mut args = Vec::new();
    if cur.sym("<") {
        loop {
            args.push(parse_type_depth(cur, depth + 1, udts)?);
            if cur.sym(">") {
                break;
            }
            cur.expect_sym(",")?;
        }
    }
    let texts = || {
        args.iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let simple = |t: ColumnType, n: &str| Ok((t, n.to_string()));
    match (name.as_str(), args.len()) {
        ("ascii", 0) => simple(ColumnType::Ascii, "ascii"),
        ("bigint", 0) => simple(ColumnType::BigInt, "bigint"),
        ("blob", 0) => simple(ColumnType::Blob, "blob"),
        ("boolean", 0) => simple(ColumnType::Boolean, "boolean"),
        ("counter", 0) => simple(ColumnType::Counter, "counter"),
        ("decimal", 0) => simple(ColumnType::Decimal, "decimal"),
        ("double", 0) => simple(ColumnType::Double, "double"),
        ("float", 0) => simple(ColumnType::Float, "float"),
        ("int", 0) => simple(ColumnType::Int, "int"),
        ("timestamp", 0) => simple(ColumnType::Timestamp, "timestamp"),
        ("uuid", 0) => simple(ColumnType::Uuid, "uuid"),
        ("text" | "varchar", 0) => simple(ColumnType::Varchar, "text"),
        ("varint", 0) => simple(ColumnType::Varint, "varint"),
        ("timeuuid", 0) => simple(ColumnType::Timeuuid, "timeuuid"),
        ("inet", 0) => simple(ColumnType::Inet, "inet"),
        ("date", 0) => simple(ColumnType::Date, "date"),
        ("time", 0) => simple(ColumnType::Time, "time"),
        ("smallint", 0) => simple(ColumnType::SmallInt, "smallint"),
        ("tinyint", 0) => simple(ColumnType::TinyInt, "tinyint"),
        ("duration", 0) => simple(ColumnType::Duration, "duration"),
        ("frozen", 1) => {
            let (t, text) = args.remove(0);
            Ok((t, format!("frozen<{text}>")))
        }
        ("list", 1) => {
            let text = format!("list<{}>", texts());
            Ok((ColumnType::List(Box::new(args.remove(0).0)), text))
        }
        ("set", 1) => {
            let text = format!("set<{}>", texts());
            Ok((ColumnType::Set(Box::new(args.remove(0).0)), text))
        }
        ("map", 2) => {
            let text = format!("map<{}>", texts());
            let v = args.remove(1).0;
            let k = args.remove(0).0;
            Ok((ColumnType::Map(Box::new(k), Box::new(v)), text))
        }
        ("tuple", n) if n > 0 => {
            let text = format!("tuple<{}>", texts());
            Ok((
                ColumnType::Tuple(args.into_iter().map(|a| a.0).collect()),
                text,
            ))
        }
        (n, 0) => match udts(n) {
            Some(t) => Ok((t, n.to_string())),
            None => Err(format!("Unknown type {n}")),
        },
        _ => Err(format!("unknown or unsupported type {name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::lex::Cursor;
    use super::*;

    #[test]
    fn parses_nested_types() {
        let mut c = Cursor::new("map<varchar, frozen<list<int>>>").unwrap();
        let (t, text) = parse_type(&mut c).unwrap();
        assert_eq!(text, "map<text, frozen<list<int>>>");
        assert_eq!(
            t,
            ColumnType::Map(
                Box::new(ColumnType::Varchar),
                Box::new(ColumnType::List(Box::new(ColumnType::Int)))
            )
        );
        assert!(parse_type(&mut Cursor::new("list<int, int>").unwrap()).is_err());
        let (t, text) = parse_type(&mut Cursor::new("vector<float, 3>").unwrap()).unwrap();
        assert_eq!(text, "vector<float, 3>");
        assert!(matches!(t, ColumnType::Vector { dimension: 3, .. }));
        assert!(parse_type(&mut Cursor::new("vector<float, 0>").unwrap()).is_err());
    }

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
