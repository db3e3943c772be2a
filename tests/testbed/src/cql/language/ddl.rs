//! CREATE/ALTER/DROP KEYSPACE, TABLE and TYPE, parsed from text (the `tidemark-cql`
//! parser only classifies DDL) into schema objects.

use super::lex::Cursor;
use super::literal::{parse_lit, Lit};
use super::types::parse_type_with;
use crate::cql::storage::ring::Replication;
use crate::cql::storage::schema::{ColumnDef, ColumnKind};
use std::collections::BTreeMap;
use tidemark_cql::ColumnType;

/// A parsed DDL statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Ddl {
    CreateKeyspace {
        name: String,
        if_not_exists: bool,
        replication: Replication,
        durable_writes: bool,
    },
    CreateTable {
        keyspace: Option<String>,
        name: String,
        if_not_exists: bool,
        columns: Vec<ColumnDef>,
        default_ttl: i32,
    },
    DropKeyspace {
        name: String,
        if_exists: bool,
    },
    DropTable {
        keyspace: Option<String>,
        name: String,
        if_exists: bool,
    },
    AlterKeyspace {
        name: String,
        replication: Option<Replication>,
        durable_writes: Option<bool>,
    },
    AlterTable {
        keyspace: Option<String>,
        name: String,
        change: AlterTable,
    },
    CreateType {
        keyspace: Option<String>,
        name: String,
        if_not_exists: bool,
        fields: Vec<(String, ColumnType, String)>,
    },
    DropType {
        keyspace: Option<String>,
        name: String,
        if_exists: bool,
    },
    AlterType {
        keyspace: Option<String>,
        name: String,
        if_exists: bool,
        change: super::alter_type::AlterType,
    },
}

/// What an ALTER TABLE changes.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterTable {
    /// `ADD c type [static], ...`.
    Add(Vec<(String, ColumnType, String, bool)>),
    Drop(Vec<String>),
    /// `WITH default_time_to_live = n` (other options are accepted and ignored).
    Options {
        default_ttl: Option<i32>,
    },
}

/// Resolves a user type name given the statement's keyspace (if it names one).
pub type UdtResolver<'a> = &'a dyn Fn(Option<&str>, &str) -> Option<ColumnType>;

pub fn parse_ddl(text: &str, udts: UdtResolver<'_>) -> Result<Ddl, String> {
    let mut c = Cursor::new(text)?;
    let ddl = if c.kw("create") {
        if c.kw("keyspace") || c.kw("schema") {
            create_keyspace(&mut c)?
        } else if c.kw("table") || c.kw("columnfamily") {
            create_table(&mut c, udts)?
        } else if c.kw("type") {
            create_type(&mut c, udts)?
        } else {
            return Err("only CREATE KEYSPACE, TABLE and TYPE are supported".into());
        }
    } else if c.kw("alter") {
        if c.kw("keyspace") || c.kw("schema") {
            alter_keyspace(&mut c)?
        } else if c.kw("table") || c.kw("columnfamily") {
            alter_table(&mut c, udts)?
        } else if c.kw("type") {
            super::alter_type::alter_type(&mut c, udts)?
        } else {
            return Err("only ALTER KEYSPACE, TABLE and TYPE are supported".into());
        }
    } else if c.kw("drop") {
        let ks = c.kw("keyspace") || c.kw("schema");
        let ty = !ks && c.kw("type");
        if !(ks || ty || c.kw("table") || c.kw("columnfamily")) {
            return Err("only DROP KEYSPACE, TABLE and TYPE are supported".into());
        }
        let if_exists = c.kw("if") && c.kw("exists");
        let (keyspace, name) = c.qualified()?;
        if ks {
            Ddl::DropKeyspace { name, if_exists }
        } else if ty {
            Ddl::DropType {
                keyspace,
                name,
                if_exists,
            }
        } else {
            Ddl::DropTable {
                keyspace,
                name,
                if_exists,
            }
        }
    } else {
        return Err("only CREATE, ALTER and DROP are supported".into());
    };
    if !c.at_end() {
        return Err(format!("unexpected input near {:?}", c.peek()));
    }
    Ok(ddl)
}

fn if_not_exists(c: &mut Cursor) -> Result<bool, String> {
    if c.kw("if") {
        c.expect_kw("not")?;
        c.expect_kw("exists")?;
        return Ok(true);
    }
    Ok(false)
}

/// `WITH replication = {...} AND durable_writes = b`.
fn keyspace_options(c: &mut Cursor) -> Result<(Option<Replication>, Option<bool>), String> {
    c.expect_kw("with")?;
    let mut replication = None;
    let mut durable_writes = None;
    loop {
        let opt = c.ident()?;
        c.expect_sym("=")?;
        let v = parse_lit(c, &mut 0)?;
        match (opt.as_str(), v) {
            ("replication", Lit::Map(m)) => replication = Some(replication_of(&m)?),
            ("durable_writes", v) => durable_writes = Some(v.text() == Some("true")),
            (o, _) => return Err(format!("unknown keyspace option {o}")),
        }
        if !c.kw("and") {
            break;
        }
    }
    Ok((replication, durable_writes))
}

fn create_keyspace(c: &mut Cursor) -> Result<Ddl, String> {
    let if_not_exists = if_not_exists(c)?;
    let name = c.ident()?;
    let (replication, durable_writes) = keyspace_options(c)?;
    let replication = replication.ok_or("missing replication")?;
    Ok(Ddl::CreateKeyspace {
        name,
        if_not_exists,
        replication,
        durable_writes: durable_writes.unwrap_or(true),
    })
}

fn alter_keyspace(c: &mut Cursor) -> Result<Ddl, String> {
    let name = c.ident()?;
    let (replication, durable_writes) = keyspace_options(c)?;
    Ok(Ddl::AlterKeyspace {
        name,
        replication,
        durable_writes,
    })
}

fn create_type(c: &mut Cursor, udts: UdtResolver<'_>) -> Result<Ddl, String> {
    let if_not_exists = if_not_exists(c)?;
    let (keyspace, name) = c.qualified()?;
    let lookup = |n: &str| udts(keyspace.as_deref(), n);
    c.expect_sym("(")?;
    let mut fields = Vec::new();
    loop {
        let f = c.ident()?;
        let (ty, text) = parse_type_with(c, &lookup)?;
        fields.push((f, ty, text));
        if c.sym(")") {
            break;
        }
        c.expect_sym(",")?;
    }
    Ok(Ddl::CreateType {
        keyspace,
        name,
        if_not_exists,
        fields,
    })
}

fn alter_table(c: &mut Cursor, udts: UdtResolver<'_>) -> Result<Ddl, String> {
    let (keyspace, name) = c.qualified()?;
    let lookup = |n: &str| udts(keyspace.as_deref(), n);
    let change = if c.kw("add") {
        let paren = c.sym("(");
        let mut cols = Vec::new();
        loop {
            let col = c.ident()?;
            let (ty, text) = parse_type_with(c, &lookup)?;
            let is_static = c.kw("static");
            cols.push((col, ty, text, is_static));
            if !(paren && c.sym(",")) {
                break;
            }
        }
        if paren {
            c.expect_sym(")")?;
        }
        AlterTable::Add(cols)
    } else if c.kw("drop") {
        let paren = c.sym("(");
        let mut cols = vec![c.ident()?];
        while paren && c.sym(",") {
            cols.push(c.ident()?);
        }
        if paren {
            c.expect_sym(")")?;
        }
        AlterTable::Drop(cols)
    } else if c.kw("with") {
        let mut default_ttl = None;
        loop {
            let opt = c.ident()?;
            c.expect_sym("=")?;
            let v = parse_lit(c, &mut 0)?;
            if opt == "default_time_to_live" {
                default_ttl = Some(
                    v.text()
                        .and_then(|t| t.parse().ok())
                        .ok_or("default_time_to_live must be an integer")?,
                );
            }
            if !c.kw("and") {
                break;
            }
        }
        AlterTable::Options { default_ttl }
    } else {
        return Err("only ALTER TABLE ADD, DROP and WITH are supported".into());
    };
    Ok(Ddl::AlterTable {
        keyspace,
        name,
        change,
    })
}

fn replication_of(m: &[(Lit, Lit)]) -> Result<Replication, String> {
    let mut class = None;
    let mut opts = BTreeMap::new();
    for (k, v) in m {
        let (Some(k), Some(v)) = (k.text(), v.text()) else {
            return Err("replication options must be strings".into());
        };
        if k == "class" {
            class = Some(v.to_string());
        } else {
            let n: usize = v
                .parse()
                .map_err(|_| format!("invalid replication factor {v}"))?;
            opts.insert(k.to_string(), n);
        }
    }
    let class = class.ok_or("missing replication class")?;
    let short = class.rsplit('.').next().unwrap_or(&class);
    match short {
        "SimpleStrategy" => Ok(Replication::Simple {
            rf: *opts
                .get("replication_factor")
                .ok_or("SimpleStrategy requires replication_factor")?,
        }),
        "NetworkTopologyStrategy" => Ok(Replication::NetworkTopology { dcs: opts }),
        other => Err(format!("unsupported replication class {other}")),
    }
}

fn create_table(c: &mut Cursor, udts: UdtResolver<'_>) -> Result<Ddl, String> {
    let if_not_exists = if_not_exists(c)?;
    let (keyspace, name) = c.qualified()?;
    let lookup = |n: &str| udts(keyspace.as_deref(), n);
    c.expect_sym("(")?;
    let mut cols: Vec<(String, tidemark_cql::ColumnType, String, bool)> = Vec::new();
    let mut pk: Vec<String> = Vec::new();
    let mut ck: Vec<String> = Vec::new();
    loop {
        if c.kw("primary") {
            c.expect_kw("key")?;
            c.expect_sym("(")?;
            if c.sym("(") {
                loop {
                    pk.push(c.ident()?);
                    if c.sym(")") {
                        break;
                    }
                    c.expect_sym(",")?;
                }
            } else {
                pk.push(c.ident()?);
            }
            while c.sym(",") {
                ck.push(c.ident()?);
            }
            c.expect_sym(")")?;
        } else {
            let col = c.ident()?;
            let (ty, text) = parse_type_with(c, &lookup)?;
            let is_static = c.kw("static");
            if c.kw("primary") {
                c.expect_kw("key")?;
                pk.push(col.clone());
            }
            cols.push((col, ty, text, is_static));
        }
        if c.sym(")") {
            break;
        }
        c.expect_sym(",")?;
    }
    let mut desc: BTreeMap<String, bool> = BTreeMap::new();
    let mut default_ttl = 0;
    if c.kw("with") {
        loop {
            if c.kw("clustering") {
                c.expect_kw("order")?;
                c.expect_kw("by")?;
                c.expect_sym("(")?;
                loop {
                    let col = c.ident()?;
                    let d = if c.kw("desc") {
                        true
                    } else {
                        c.kw("asc");
                        false
                    };
                    desc.insert(col, d);
                    if c.sym(")") {
                        break;
                    }
                    c.expect_sym(",")?;
                }
            } else {
                let opt = c.ident()?;
                c.expect_sym("=")?;
                let v = parse_lit(c, &mut 0)?;
                if opt == "default_time_to_live" {
                    default_ttl = v.text().and_then(|t| t.parse().ok()).unwrap_or(0);
                }
            }
            if !c.kw("and") {
                break;
            }
        }
    }
    if pk.is_empty() {
        return Err("no PRIMARY KEY specified".into());
    }
    let mut columns = Vec::new();
    for (kind, names) in [
        (ColumnKind::PartitionKey, &pk),
        (ColumnKind::Clustering, &ck),
    ] {
        for (i, n) in names.iter().enumerate() {
            let (_, ty, text, _) = cols
                .iter()
                .find(|c| &c.0 == n)
                .ok_or_else(|| format!("unknown key column {n}"))?;
            columns.push(ColumnDef {
                name: n.clone(),
                ty: ty.clone(),
                type_text: text.clone(),
                kind,
                position: i as i32,
                descending: desc.get(n).copied().unwrap_or(false),
            });
        }
    }
    let mut rest: Vec<_> = cols
        .iter()
        .filter(|c| !pk.contains(&c.0) && !ck.contains(&c.0))
        .collect();
    rest.sort_by(|a, b| a.0.cmp(&b.0));
    for (n, ty, text, is_static) in rest {
        columns.push(ColumnDef {
            name: n.clone(),
            ty: ty.clone(),
            type_text: text.clone(),
            kind: if *is_static {
                ColumnKind::Static
            } else {
                ColumnKind::Regular
            },
            position: -1,
            descending: false,
        });
    }
    Ok(Ddl::CreateTable {
        keyspace,
        name,
        if_not_exists,
        columns,
        default_ttl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ddl_plain(text: &str) -> Result<Ddl, String> {
        parse_ddl(text, &|_, _| None)
    }

    #[test]
    fn alter_and_types() {
        let addr = ColumnType::Udt {
            keyspace: "ks".into(),
            name: "addr".into(),
            fields: vec![],
        };
        let udts = |_: Option<&str>, n: &str| (n == "addr").then(|| addr.clone());
        let d = parse_ddl(
            "CREATE TYPE IF NOT EXISTS ks.addr (street text, nums list<int>)",
            &udts,
        )
        .unwrap();
        let Ddl::CreateType {
            fields,
            if_not_exists,
            ..
        } = d
        else {
            panic!()
        };
        assert!(if_not_exists);
        assert_eq!(fields[1].2, "list<int>");
        let d = parse_ddl(
            "CREATE TABLE ks.p (k int PRIMARY KEY, home frozen<addr>)",
            &udts,
        )
        .unwrap();
        let Ddl::CreateTable { columns, .. } = d else {
            panic!()
        };
        assert_eq!(columns[1].type_text, "frozen<addr>");
        assert_eq!(columns[1].ty, addr);
        assert!(parse_ddl(
            "CREATE TABLE ks.p (k int PRIMARY KEY, home frozen<nope>)",
            &udts
        )
        .is_err());
        let d = parse_ddl("ALTER TABLE ks.t ADD extra map<text, int>", &udts).unwrap();
        assert!(
            matches!(d, Ddl::AlterTable { change: AlterTable::Add(ref v), .. } if v[0].0 == "extra")
        );
        let d = parse_ddl(
            "ALTER TABLE t WITH default_time_to_live = 60 AND comment = 'x'",
            &udts,
        )
        .unwrap();
        assert!(matches!(
            d,
            Ddl::AlterTable {
                change: AlterTable::Options {
                    default_ttl: Some(60)
                },
                ..
            }
        ));
        let d = parse_ddl("ALTER KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}", &udts).unwrap();
        assert!(matches!(
            d,
            Ddl::AlterKeyspace {
                replication: Some(Replication::Simple { rf: 2 }),
                ..
            }
        ));
        assert!(matches!(
            parse_ddl("DROP TYPE IF EXISTS ks.addr", &udts).unwrap(),
            Ddl::DropType {
                if_exists: true,
                ..
            }
        ));
    }

    #[test]
    fn keyspace_with_both_strategies() {
        let d = parse_ddl_plain("CREATE KEYSPACE IF NOT EXISTS ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': '3'} AND durable_writes = true").unwrap();
        assert_eq!(
            d,
            Ddl::CreateKeyspace {
                name: "ks".into(),
                if_not_exists: true,
                replication: Replication::Simple { rf: 3 },
                durable_writes: true
            }
        );
        let d = parse_ddl_plain("create keyspace k2 with replication = {'class': 'NetworkTopologyStrategy', 'dc1': 2, 'dc2': 1};").unwrap();
        let Ddl::CreateKeyspace { replication, .. } = d else {
            panic!()
        };
        assert_eq!(
            replication,
            Replication::NetworkTopology {
                dcs: [("dc1".to_string(), 2), ("dc2".to_string(), 1)].into()
            }
        );
    }

    #[test]
    fn table_with_compound_key_and_order() {
        let d = parse_ddl_plain("CREATE TABLE ks.t (a int, b text, c bigint, v text, w int, PRIMARY KEY ((a, b), c)) WITH CLUSTERING ORDER BY (c DESC) AND comment = 'x'").unwrap();
        let Ddl::CreateTable { columns, .. } = d else {
            panic!()
        };
        let names: Vec<_> = columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "v", "w"]);
        assert_eq!(columns[1].kind, ColumnKind::PartitionKey);
        assert_eq!(columns[1].position, 1);
        assert!(columns[2].descending);
        assert_eq!(columns[3].position, -1);
        assert!(parse_ddl_plain("CREATE TABLE t (a int)").is_err());
        assert!(parse_ddl_plain("CREATE INDEX ON t (a)").is_err());
    }
}
