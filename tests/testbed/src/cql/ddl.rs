//! CREATE/DROP KEYSPACE and TABLE, parsed from text (the `tidemark-cql` parser only
//! classifies DDL) into schema objects.

use super::lex::Cursor;
use super::literal::{parse_lit, Lit};
use super::ring::Replication;
use super::schema::{parse_type, ColumnDef, ColumnKind};
use std::collections::BTreeMap;

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
}

pub fn parse_ddl(text: &str) -> Result<Ddl, String> {
    let mut c = Cursor::new(text)?;
    let ddl = if c.kw("create") {
        if c.kw("keyspace") || c.kw("schema") {
            create_keyspace(&mut c)?
        } else if c.kw("table") || c.kw("columnfamily") {
            create_table(&mut c)?
        } else {
            return Err("only CREATE KEYSPACE and CREATE TABLE are supported".into());
        }
    } else if c.kw("drop") {
        let ks = c.kw("keyspace") || c.kw("schema");
        if !(ks || c.kw("table") || c.kw("columnfamily")) {
            return Err("only DROP KEYSPACE and DROP TABLE are supported".into());
        }
        let if_exists = c.kw("if") && c.kw("exists");
        let (keyspace, name) = c.qualified()?;
        if ks {
            Ddl::DropKeyspace { name, if_exists }
        } else {
            Ddl::DropTable {
                keyspace,
                name,
                if_exists,
            }
        }
    } else {
        return Err("only CREATE and DROP are supported".into());
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

fn create_keyspace(c: &mut Cursor) -> Result<Ddl, String> {
    let if_not_exists = if_not_exists(c)?;
    let name = c.ident()?;
    c.expect_kw("with")?;
    let mut replication = None;
    let mut durable_writes = true;
    loop {
        let opt = c.ident()?;
        c.expect_sym("=")?;
        let v = parse_lit(c, &mut 0)?;
        match (opt.as_str(), v) {
            ("replication", Lit::Map(m)) => replication = Some(replication_of(&m)?),
            ("durable_writes", v) => durable_writes = v.text() == Some("true"),
            (o, _) => return Err(format!("unknown keyspace option {o}")),
        }
        if !c.kw("and") {
            break;
        }
    }
    let replication = replication.ok_or("missing replication")?;
    Ok(Ddl::CreateKeyspace {
        name,
        if_not_exists,
        replication,
        durable_writes,
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

fn create_table(c: &mut Cursor) -> Result<Ddl, String> {
    let if_not_exists = if_not_exists(c)?;
    let (keyspace, name) = c.qualified()?;
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
            let (ty, text) = parse_type(c)?;
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

    #[test]
    fn keyspace_with_both_strategies() {
        let d = parse_ddl("CREATE KEYSPACE IF NOT EXISTS ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': '3'} AND durable_writes = true").unwrap();
        assert_eq!(
            d,
            Ddl::CreateKeyspace {
                name: "ks".into(),
                if_not_exists: true,
                replication: Replication::Simple { rf: 3 },
                durable_writes: true
            }
        );
        let d = parse_ddl("create keyspace k2 with replication = {'class': 'NetworkTopologyStrategy', 'dc1': 2, 'dc2': 1};").unwrap();
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
        let d = parse_ddl("CREATE TABLE ks.t (a int, b text, c bigint, v text, w int, PRIMARY KEY ((a, b), c)) WITH CLUSTERING ORDER BY (c DESC) AND comment = 'x'").unwrap();
        let Ddl::CreateTable { columns, .. } = d else {
            panic!()
        };
        let names: Vec<_> = columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "v", "w"]);
        assert_eq!(columns[1].kind, ColumnKind::PartitionKey);
        assert_eq!(columns[1].position, 1);
        assert!(columns[2].descending);
        assert_eq!(columns[3].position, -1);
        assert!(parse_ddl("CREATE TABLE t (a int)").is_err());
        assert!(parse_ddl("CREATE INDEX ON t (a)").is_err());
    }
}
