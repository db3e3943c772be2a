//! ALTER TYPE ADD / RENAME on the shared schema, as Cassandra 5.0's
//! `AlterTypeStatement`: the type changes, so does every type and table column that
//! contains it (their wire types carry the field list), and the coordinator announces
//! UPDATED TYPE, then UPDATED for each such type and table. Stored values stay as they
//! are: a frozen value keeps its fewer fields, a non-frozen one shows null for a field
//! added since.

use crate::cql::errors::invalid;
use crate::cql::language::alter_type::AlterType;
use crate::cql::storage::schema::{Keyspace, Table, UserType};
use std::sync::Arc;
use tidemark_cql::message::ErrorBody;
use tidemark_cql::ColumnType;

/// What an applied ALTER TYPE changed besides the type itself (names in name order,
/// the order of Cassandra's events).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Altered {
    pub types: Vec<String>,
    pub tables: Vec<String>,
}

/// Applies `change` to type `name` of `ks`. `Ok(None)`: nothing to do (IF EXISTS on a
/// missing type or field, IF NOT EXISTS on an existing field), answered with Void.
pub fn alter(
    ks: &mut Keyspace,
    name: &str,
    if_exists: bool,
    change: AlterType,
) -> Result<Option<Altered>, ErrorBody> {
    let full = format!("{}.{name}", ks.name);
    let Some(old) = ks.types.get(name).cloned() else {
        if if_exists {
            return Ok(None);
        }
        return Err(invalid(format!("Type {full} doesn't exist")));
    };
    let mut new = old.clone();
    match change {
        AlterType::Add {
            field,
            ty,
            text,
            if_not_exists,
        } => {
            if new.fields.iter().any(|(f, _, _)| *f == field) {
                if if_not_exists {
                    return Ok(None);
                }
                return Err(invalid(format!(
                    "Cannot add field {field} to type {full}: a field with name {field} already exists"
                )));
            }
            new.fields.push((field, ty, text));
        }
        AlterType::Rename { if_exists, renames } => {
            for (from, to) in renames {
                let Some(i) = new.fields.iter().position(|(f, _, _)| *f == from) else {
                    if if_exists {
                        continue;
                    }
                    // Cassandra's own spelling.
                    return Err(invalid(format!("Unkown field {from} in user type {full}")));
                };
                if new.fields.iter().any(|(f, _, _)| *f == to) {
                    // Cassandra names the keyspace only.
                    return Err(invalid(format!(
                        "Duplicate field name {to} in type {}",
                        ks.name
                    )));
                }
                new.fields[i].0 = to;
            }
            if new == old {
                return Ok(None);
            }
        }
    }
    let (was, now) = (old.column_type(), new.column_type());
    ks.types.insert(name.to_string(), new);
    let mut altered = Altered::default();
    // Types that contain this one (by name order, as the schema keeps them).
    let others: Vec<String> = ks.types.keys().filter(|n| *n != name).cloned().collect();
    for other in others {
        let t = &ks.types[&other];
        let fields: Vec<(String, ColumnType, String)> = t
            .fields
            .iter()
            .map(|(f, ty, text)| (f.clone(), replace(ty, &was, &now), text.clone()))
            .collect();
        if fields != t.fields {
            let updated = UserType {
                fields,
                ..t.clone()
            };
            ks.types.insert(other.clone(), updated);
            altered.types.push(other);
        }
    }
    for (tname, table) in ks.tables.iter_mut() {
        let mut nt: Table = table.as_ref().clone();
        for c in nt.columns.iter_mut() {
            c.ty = replace(&c.ty, &was, &now);
        }
        if nt.columns != table.columns {
            *table = Arc::new(nt);
            altered.tables.push(tname.clone());
        }
    }
    Ok(Some(altered))
}

/// `ty` with every occurrence of the user type `was` (same keyspace and name) replaced
/// by `now`, however deeply nested (collections, tuples, other user types, vectors).
fn replace(ty: &ColumnType, was: &ColumnType, now: &ColumnType) -> ColumnType {
    let same = |k: &_, n: &_| matches!(was, ColumnType::Udt { keyspace, name, .. } if keyspace == k && name == n);
    let r = |t: &ColumnType| Box::new(replace(t, was, now));
    match ty {
        ColumnType::Udt { keyspace, name, .. } if same(keyspace, name) => now.clone(),
        ColumnType::Udt {
            keyspace,
            name,
            fields,
        } => ColumnType::Udt {
            keyspace: keyspace.clone(),
            name: name.clone(),
            fields: fields
                .iter()
                .map(|(f, t)| (f.clone(), replace(t, was, now)))
                .collect(),
        },
        ColumnType::List(e) => ColumnType::List(r(e)),
        ColumnType::Set(e) => ColumnType::Set(r(e)),
        ColumnType::Map(k, v) => ColumnType::Map(r(k), r(v)),
        ColumnType::Tuple(ts) => {
            ColumnType::Tuple(ts.iter().map(|t| replace(t, was, now)).collect())
        }
        ColumnType::Vector { element, dimension } => ColumnType::Vector {
            element: r(element),
            dimension: *dimension,
        },
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cql::storage::ring::Replication;
    use crate::cql::storage::schema::{ColumnDef, ColumnKind};
    use std::collections::BTreeMap;

    fn keyspace() -> Keyspace {
        let pt = UserType {
            keyspace: "ks".into(),
            name: "pt".into(),
            fields: vec![("x".into(), ColumnType::Int, "int".into())],
        };
        let col = |name: &str, ty: ColumnType, text: &str, kind| ColumnDef {
            name: name.into(),
            ty,
            type_text: text.into(),
            kind,
            position: if kind == ColumnKind::PartitionKey {
                0
            } else {
                -1
            },
            descending: false,
        };
        let table = |name: &str, cols: Vec<ColumnDef>| Table {
            keyspace: "ks".into(),
            name: name.into(),
            id: [0; 16],
            columns: cols,
            default_ttl: 0,
        };
        let k = || col("k", ColumnType::Int, "int", ColumnKind::PartitionKey);
        let pt_ty = pt.column_type();
        let tables = [
            table(
                "t",
                vec![
                    k(),
                    col("p", pt_ty.clone(), "frozen<pt>", ColumnKind::Regular),
                ],
            ),
            table(
                "t2",
                vec![
                    k(),
                    col(
                        "l",
                        ColumnType::List(Box::new(pt_ty)),
                        "list<frozen<pt>>",
                        ColumnKind::Regular,
                    ),
                ],
            ),
            table("t3", vec![k()]),
        ];
        Keyspace {
            name: "ks".into(),
            replication: Replication::Simple { rf: 1 },
            durable_writes: true,
            tables: tables
                .into_iter()
                .map(|t| (t.name.clone(), Arc::new(t)))
                .collect(),
            types: BTreeMap::from([("pt".to_string(), pt)]),
        }
    }

    // Cassandra 5.0.9 (tests/realdb_fidelity.rs and a cql_raw.py run against the
    // node) announces UPDATED TABLE for t and t2 — the tables holding `pt`, nested or
    // not — and not for t3; refuses an existing field, a missing field and a missing
    // type with these texts; IF [NOT] EXISTS turn the refusals into no-ops.
    #[test]
    fn add_updates_every_table_holding_the_type() {
        let mut ks = keyspace();
        let add = |f: &str, ine| AlterType::Add {
            field: f.into(),
            ty: ColumnType::Int,
            text: "int".into(),
            if_not_exists: ine,
        };
        let a = alter(&mut ks, "pt", false, add("y", false))
            .unwrap()
            .unwrap();
        assert_eq!(a.tables, ["t", "t2"]);
        let ColumnType::Udt { fields, .. } = &ks.tables["t"].columns[1].ty else {
            panic!()
        };
        assert_eq!(fields.len(), 2);
        assert_eq!(
            alter(&mut ks, "pt", false, add("y", false))
                .unwrap_err()
                .message
                .to_string(),
            "Cannot add field y to type ks.pt: a field with name y already exists"
        );
        assert_eq!(alter(&mut ks, "pt", false, add("y", true)).unwrap(), None);
        assert_eq!(
            alter(&mut ks, "nope", false, add("z", false))
                .unwrap_err()
                .message
                .to_string(),
            "Type ks.nope doesn't exist"
        );
        assert_eq!(alter(&mut ks, "nope", true, add("z", false)).unwrap(), None);
    }

    #[test]
    fn rename_keeps_positions() {
        let mut ks = keyspace();
        let rename = |from: &str, to: &str, if_exists| AlterType::Rename {
            if_exists,
            renames: vec![(from.into(), to.into())],
        };
        let a = alter(&mut ks, "pt", false, rename("x", "xx", false))
            .unwrap()
            .unwrap();
        assert_eq!(a.tables, ["t", "t2"]);
        assert_eq!(ks.types["pt"].fields[0].0, "xx");
        assert_eq!(
            alter(&mut ks, "pt", false, rename("zz", "z", false))
                .unwrap_err()
                .message
                .to_string(),
            "Unkown field zz in user type ks.pt"
        );
        assert_eq!(
            alter(&mut ks, "pt", false, rename("zz", "z", true)).unwrap(),
            None
        );
    }
}
