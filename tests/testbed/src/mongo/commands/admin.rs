//! Collection and database commands: `create`, `drop`, `dropDatabase`,
//! `renameCollection`, `listCollections`, `listDatabases`. Each change is
//! logged as a `c` oplog entry on `db.$cmd` with the collection's `ui`, as
//! MongoDB 6.0 logs it.

use super::cursor;
use super::write::create_entry;
use crate::mongo::errors::{error, not_writable_primary};
use crate::mongo::query::matcher;
use crate::mongo::state::Shared;
use crate::mongo::storage::store::MemberStore;
use tidemark_mongo::bson::{doc, Bson, Document};

fn collection_arg<'a>(cmd: &'a Document, name: &str) -> Result<&'a str, Document> {
    match cmd.get_str(name) {
        Ok(c) if !c.is_empty() && !c.contains('$') => Ok(c),
        _ => Err(error(
            73,
            "InvalidNamespace",
            &format!("{name} needs a valid collection name"),
        )),
    }
}

fn log_command(store: &mut MemberStore, term: i64, db: &str, ns: &str, o: Document) {
    let ui = store.uuid(ns);
    let extra = ui.map(|u| doc! { "ui": u }).unwrap_or_default();
    store.append_oplog_with(term, "c", &format!("{db}.$cmd"), o, None, extra);
}

fn finish(shared: &Shared, member: usize, reply: Document) -> Document {
    shared.members[member].publish_oplog(shared);
    reply
}

/// `create`: NamespaceExists when the collection is already there.
/// Options other than the name are accepted and ignored.
pub fn create(shared: &Shared, member: usize, db: &str, cmd: &Document) -> Document {
    if !shared.is_primary(member) {
        return not_writable_primary();
    }
    let coll = match collection_arg(cmd, "create") {
        Ok(c) => c,
        Err(e) => return e,
    };
    let ns = format!("{db}.{coll}");
    let term = shared.topology().term;
    let mut store = shared.members[member].store();
    if !store.create_collection(&ns, None) {
        return error(
            48,
            "NamespaceExists",
            &format!("Collection {ns} already exists."),
        );
    }
    log_command(&mut store, term, db, &ns, create_entry(coll));
    drop(store);
    finish(shared, member, doc! { "ok": 1.0 })
}

/// Drops `ns` in `store`, logging `{drop: coll}` with `o2.numRecords`.
fn drop_ns(store: &mut MemberStore, term: i64, db: &str, coll: &str) -> Option<usize> {
    let ns = format!("{db}.{coll}");
    let n = store.collection(&ns)?.len();
    let ui = store.uuid(&ns);
    store.collections.remove(&ns);
    let extra = ui.map(|u| doc! { "ui": u }).unwrap_or_default();
    store.append_oplog_with(
        term,
        "c",
        &format!("{db}.$cmd"),
        doc! { "drop": coll },
        Some(doc! { "numRecords": n as i64 }),
        extra,
    );
    Some(n)
}

pub fn drop_collection(shared: &Shared, member: usize, db: &str, cmd: &Document) -> Document {
    if !shared.is_primary(member) {
        return not_writable_primary();
    }
    let coll = match collection_arg(cmd, "drop") {
        Ok(c) => c,
        Err(e) => return e,
    };
    let term = shared.topology().term;
    let mut store = shared.members[member].store();
    let indexes = store
        .collection(&format!("{db}.{coll}"))
        .map_or(0, |c| c.indexes.specs().len() as i32);
    if drop_ns(&mut store, term, db, coll).is_none() {
        return error(26, "NamespaceNotFound", "ns not found");
    }
    drop(store);
    finish(
        shared,
        member,
        doc! { "ns": format!("{db}.{coll}"), "nIndexesWas": 1 + indexes, "ok": 1.0 },
    )
}

/// `dropDatabase`: a `drop` entry per collection, then `{dropDatabase: 1}`.
pub fn drop_database(shared: &Shared, member: usize, db: &str) -> Document {
    if !shared.is_primary(member) {
        return not_writable_primary();
    }
    if matches!(db, "admin" | "local" | "config") {
        return error(
            20,
            "IllegalOperation",
            &format!("Cannot drop '{db}' database"),
        );
    }
    let term = shared.topology().term;
    let mut store = shared.members[member].store();
    let prefix = format!("{db}.");
    let colls: Vec<String> = store
        .collections
        .keys()
        .filter_map(|ns| ns.strip_prefix(&prefix).map(str::to_string))
        .collect();
    if colls.is_empty() {
        return doc! { "ok": 1.0 };
    }
    for c in &colls {
        drop_ns(&mut store, term, db, c);
    }
    store.append_oplog(
        term,
        "c",
        &format!("{db}.$cmd"),
        doc! { "dropDatabase": 1 },
        None,
    );
    drop(store);
    finish(shared, member, doc! { "dropped": db, "ok": 1.0 })
}

/// `renameCollection` (run on `admin`): `{renameCollection: "db.a", to:
/// "db.b", dropTarget}`; the collection keeps its UUID.
pub fn rename_collection(shared: &Shared, member: usize, db: &str, cmd: &Document) -> Document {
    if !shared.is_primary(member) {
        return not_writable_primary();
    }
    if db != "admin" {
        return error(
            13,
            "Unauthorized",
            "renameCollection may only be run against the admin database.",
        );
    }
    let (Ok(from), Ok(to)) = (cmd.get_str("renameCollection"), cmd.get_str("to")) else {
        return error(
            9,
            "FailedToParse",
            "renameCollection needs 'renameCollection' and 'to' namespaces",
        );
    };
    let (Some((from_db, _)), Some((to_db, to_coll))) = (from.split_once('.'), to.split_once('.'))
    else {
        return error(73, "InvalidNamespace", "namespaces must be 'db.collection'");
    };
    if from_db != to_db {
        return error(
            20,
            "IllegalOperation",
            "renaming across databases is not supported by the testbed",
        );
    }
    let drop_target = cmd.get_bool("dropTarget").unwrap_or(false);
    let term = shared.topology().term;
    let mut store = shared.members[member].store();
    if store.collection(from).is_none() {
        return error(
            26,
            "NamespaceNotFound",
            &format!("Source collection {from} does not exist"),
        );
    }
    let mut dropped_target = Bson::Boolean(false);
    if store.collection(to).is_some() {
        if !drop_target {
            return error(
                48,
                "NamespaceExists",
                &format!("target namespace {to} exists"),
            );
        }
        if let Some(u) = store.uuid(to) {
            dropped_target = Bson::Binary(u);
        }
        store.collections.remove(to);
    }
    let ui = store.uuid(from);
    if let Some(c) = store.collections.remove(from) {
        store.collections.insert(to.to_string(), c);
    }
    let extra = ui.map(|u| doc! { "ui": u }).unwrap_or_default();
    store.append_oplog_with(
        term,
        "c",
        &format!("{from_db}.$cmd"),
        doc! { "renameCollection": from, "to": to, "stayTemp": false, "dropTarget": dropped_target },
        None,
        extra,
    );
    let _ = to_coll;
    drop(store);
    finish(shared, member, doc! { "ok": 1.0 })
}

/// `listCollections` with an optional `filter` (on `name`/`type`) and `nameOnly`.
pub fn list_collections(shared: &Shared, member: usize, db: &str, cmd: &Document) -> Document {
    let prefix = format!("{db}.");
    let filter = cmd.get_document("filter").cloned().unwrap_or_default();
    let name_only = cmd.get_bool("nameOnly").unwrap_or(false);
    let mut out = Vec::new();
    {
        let store = shared.members[member].store();
        for (ns, c) in &store.collections {
            let Some(name) = ns.strip_prefix(&prefix) else {
                continue;
            };
            let full = doc! {
                "name": name,
                "type": "collection",
                "options": {},
                "info": { "readOnly": false, "uuid": c.uuid.clone() },
                "idIndex": { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
            };
            match matcher::matches(&full, &filter) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => return error(2, "BadValue", &e),
            }
            out.push(if name_only {
                doc! { "name": name, "type": "collection" }
            } else {
                full
            });
        }
    }
    let batch = cmd
        .get_document("cursor")
        .ok()
        .and_then(|c| cursor::int_arg(c, "batchSize"));
    cursor::open(
        shared,
        member,
        &format!("{db}.$cmd.listCollections"),
        out,
        batch,
        false,
    )
}

/// `listDatabases` (admin, config and local always exist on a mongod).
pub fn list_databases(shared: &Shared, member: usize, cmd: &Document) -> Document {
    let store = shared.members[member].store();
    let mut names: Vec<String> = vec!["admin".into(), "config".into(), "local".into()];
    for ns in store.collections.keys() {
        if let Some((db, _)) = ns.split_once('.') {
            if !names.iter().any(|n| n == db) {
                names.push(db.to_string());
            }
        }
    }
    names.sort();
    let filter = cmd.get_document("filter").cloned().unwrap_or_default();
    let name_only = cmd.get_bool("nameOnly").unwrap_or(false);
    let mut dbs = Vec::new();
    let mut total: i64 = 0;
    for name in names {
        let prefix = format!("{name}.");
        let size: i64 = store
            .collections
            .iter()
            .filter(|(ns, _)| ns.starts_with(&prefix))
            .flat_map(|(_, c)| {
                c.iter()
                    .map(|(_, d)| d.to_vec().map_or(0, |v| v.len()) as i64)
            })
            .sum();
        let entry = doc! { "name": name.clone(), "sizeOnDisk": size.max(8192), "empty": false };
        if !matcher::matches(&entry, &filter).unwrap_or(false) {
            continue;
        }
        total += size.max(8192);
        dbs.push(if name_only {
            doc! { "name": name }
        } else {
            entry
        });
    }
    if name_only {
        return doc! { "databases": dbs, "ok": 1.0 };
    }
    doc! { "databases": dbs, "totalSize": total, "totalSizeMb": total / (1024 * 1024), "ok": 1.0 }
}
