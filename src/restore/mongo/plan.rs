//! Which of a version's collections a restore or verify touches, and under which
//! names in the target: `--db` / `--collection` globs as `snapshot take` reads them,
//! then `--rename`.

use anyhow::{bail, Result};

use crate::restore::Rename;
use crate::snapshot::source::{is_literal, selected};
use crate::store::Protocol;
use crate::version::model::VersionInfo;

/// One collection to restore or verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `db.coll` as in the version.
    pub source: String,
    /// `db.coll` in the target (after renames).
    pub db: String,
    pub coll: String,
    /// Documents the version holds there.
    pub rows: u64,
}

impl Target {
    pub fn name(&self) -> String {
        format!("{}.{}", self.db, self.coll)
    }
}

/// The databases a cluster keeps for itself: `config` (a sharded cluster's chunk
/// map, its routers' and shards' metadata, sessions), `local` (the oplog, the
/// replica set's configuration) and `admin` (users, roles, the cluster's settings).
/// A tap of a sharded cluster logs the config servers' `config.*` writes (the chunk
/// map's history comes from them), so a version holds them; written into another
/// cluster they would overwrite its own metadata with the source's.
pub const SYSTEM_DATABASES: [&str; 3] = ["admin", "config", "local"];

/// Whether `namespace` is in a system database that no `--db` names literally
/// (a pattern such as `*` does not take them in: an operator names them or not).
fn system_left_out(dbs: &[String], namespace: &str) -> bool {
    let db = namespace.split('.').next().unwrap_or("");
    SYSTEM_DATABASES.contains(&db) && !dbs.iter().any(|p| is_literal(p) && p == db)
}

/// The version's MongoDB collections that pass the filters, in the version's
/// (namespace) order. A literal filter that names nothing, a rename that leaves no
/// collection name, or two collections renamed onto one are errors.
pub fn targets(
    info: &VersionInfo,
    dbs: &[String],
    collections: &[String],
    renames: &[Rename],
) -> Result<Vec<Target>> {
    let mongo: Vec<_> = info
        .namespaces
        .iter()
        .filter(|n| n.protocol == Protocol::Mongo)
        .collect();
    for p in dbs.iter().filter(|p| is_literal(p)) {
        if !mongo
            .iter()
            .any(|n| n.namespace.split('.').next() == Some(p.as_str()))
        {
            bail!("version {:?} has no database {p:?}", info.name);
        }
    }
    for p in collections.iter().filter(|p| is_literal(p)) {
        let hit = mongo.iter().any(|n| {
            if p.contains('.') {
                n.namespace == *p
            } else {
                n.namespace.split_once('.').map(|(_, c)| c) == Some(p.as_str())
            }
        });
        if !hit {
            bail!("version {:?} has no collection {p:?}", info.name);
        }
    }
    let mut out: Vec<Target> = Vec::new();
    for n in mongo {
        if !selected(dbs, collections, &n.namespace) || system_left_out(dbs, &n.namespace) {
            continue;
        }
        let renamed = Rename::apply(renames, &n.namespace);
        let Some((db, coll)) = renamed
            .split_once('.')
            .filter(|(d, c)| !d.is_empty() && !c.is_empty())
        else {
            bail!(
                "{} renamed to {renamed:?}: not a db.collection name",
                n.namespace
            );
        };
        if let Some(other) = out.iter().find(|t| t.name() == renamed) {
            bail!(
                "{} and {} would both be restored into {renamed}",
                other.source,
                n.namespace
            );
        }
        out.push(Target {
            source: n.namespace.clone(),
            db: db.to_string(),
            coll: coll.to_string(),
            rows: n.rows,
        });
    }
    if out.is_empty() {
        bail!(
            "version {:?} holds no MongoDB collection{}",
            info.name,
            if dbs.is_empty() && collections.is_empty() {
                ""
            } else {
                " that --db/--collection select"
            }
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::model::NamespaceCount;

    fn info() -> VersionInfo {
        let ns = |n: &str, p| NamespaceCount {
            namespace: n.into(),
            protocol: p,
            rows: 3,
            uncertain: 0,
        };
        VersionInfo {
            name: "v".into(),
            at: 0,
            tidemark: 0,
            created: 0,
            snapshot: None,
            last_seq: 0,
            mutations: 0,
            gaps: vec![],
            namespaces: vec![
                ns("ks.t", Protocol::Cql),
                ns("shop.orders", Protocol::Mongo),
                ns("shop.people", Protocol::Mongo),
                ns("t.c", Protocol::Mongo),
            ],
            uncertain: vec![],
            snapshots: vec![],
        }
    }

    #[test]
    fn selects_and_renames() {
        let r = [
            Rename::parse("shop=shop2").unwrap(),
            Rename::parse("t.c=u.d").unwrap(),
        ];
        let t = targets(&info(), &[], &[], &r).unwrap();
        let names: Vec<String> = t.iter().map(Target::name).collect();
        assert_eq!(names, ["shop2.orders", "shop2.people", "u.d"]);
        let t = targets(&info(), &["shop".into()], &["ord*".into()], &[]).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].source, "shop.orders");
        assert!(targets(&info(), &["nope".into()], &[], &[]).is_err());
        assert!(targets(&info(), &[], &["nope".into()], &[]).is_err());
        assert!(targets(&info(), &["n*".into()], &[], &[]).is_err());
        let clash = [Rename::parse("shop.people=shop.orders").unwrap()];
        assert!(targets(&info(), &[], &[], &clash).is_err());
    }

    #[test]
    fn system_databases_only_when_named() {
        let mut v = info();
        for n in [
            "config.chunks",
            "config.collections",
            "admin.system.users",
            "local.oplog.rs",
        ] {
            v.namespaces.push(NamespaceCount {
                namespace: n.into(),
                protocol: Protocol::Mongo,
                rows: 1,
                uncertain: 0,
            });
        }
        let names = |dbs: &[&str]| -> Vec<String> {
            let dbs: Vec<String> = dbs.iter().map(|d| d.to_string()).collect();
            targets(&v, &dbs, &[], &[])
                .unwrap()
                .iter()
                .map(|t| t.source.clone())
                .collect()
        };
        assert_eq!(names(&[]), ["shop.orders", "shop.people", "t.c"]);
        assert_eq!(names(&["*"]), ["shop.orders", "shop.people", "t.c"]);
        assert_eq!(names(&["config"]), ["config.chunks", "config.collections"]);
        assert_eq!(
            names(&["shop", "admin"]),
            ["shop.orders", "shop.people", "admin.system.users"]
        );
    }
}
