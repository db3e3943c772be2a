//! `createIndexes`, `listIndexes`, `dropIndexes`. Indexes are recorded and
//! unique ones enforced ([`crate::mongo::storage::index`]); queries never use them. Logged as
//! mongod 6.0 logs them: `createIndexes` entries for an empty collection,
//! `startIndexBuild` + `commitIndexBuild` (two-phase build) for one with
//! documents, `dropIndexes` with the dropped spec in `o2`.

use super::cursor;
use super::write::create_entry;
use crate::mongo::errors::{error, not_writable_primary};
use crate::mongo::state::Shared;
use crate::mongo::storage::index::{IndexError, IndexSpec};
use crate::mongo::storage::store::{new_uuid, MemberStore};
use tidemark_mongo::bson::{doc, Bson, Document};

fn log(store: &mut MemberStore, term: i64, db: &str, ns: &str, o: Document, o2: Option<Document>) {
    let extra = store.uuid(ns).map(|u| doc! { "ui": u }).unwrap_or_default();
    store.append_oplog_with(term, "c", &format!("{db}.$cmd"), o, o2, extra);
}

fn coll_arg<'a>(cmd: &'a Document, name: &str) -> Result<&'a str, Document> {
    match cmd.get_str(name) {
        Ok(c) if !c.is_empty() && !c.contains('$') => Ok(c),
        _ => Err(error(
            73,
            "InvalidNamespace",
            &format!("{name} needs a collection name"),
        )),
    }
}

/// `createIndexes`: builds each new index (creating the collection if needed).
pub fn create_indexes(shared: &Shared, member: usize, db: &str, cmd: &Document) -> Document {
    if !shared.is_primary(member) {
        return not_writable_primary();
    }
    let coll = match coll_arg(cmd, "createIndexes") {
        Ok(c) => c,
        Err(e) => return e,
    };
    let Ok(list) = cmd.get_array("indexes") else {
        return error(9, "FailedToParse", "createIndexes needs an 'indexes' array");
    };
    let mut specs = Vec::new();
    for d in list {
        let Bson::Document(d) = d else {
            return error(9, "FailedToParse", "index specifications must be objects");
        };
        match IndexSpec::parse(d) {
            Ok(s) => specs.push(s),
            Err(e) => return error(67, "CannotCreateIndex", &e),
        }
    }
    let ns = format!("{db}.{coll}");
    let term = shared.topology().term;
    let mut store = shared.members[member].store();
    let created = store.create_collection(&ns, None);
    if created {
        log(&mut store, term, db, &ns, create_entry(coll), None);
    }
    let Some(c) = store.collections.get_mut(&ns) else {
        return error(26, "NamespaceNotFound", "collection vanished");
    };
    let before = 1 + c.indexes.specs().len() as i32;
    let had_documents = !c.is_empty();
    let mut built = Vec::new();
    for spec in specs {
        let docs: Vec<(u64, Document)> = c.iter().map(|(s, d)| (s, d.clone())).collect();
        match c
            .indexes
            .add(spec.clone(), docs.iter().map(|(s, d)| (*s, d)))
        {
            Ok(true) => built.push(spec.spec),
            Ok(false) => {}
            Err(IndexError::Conflict(msg)) => return error(86, "IndexKeySpecsConflict", &msg),
            Err(IndexError::Duplicate(dup)) => {
                let mut e = error(
                    11000,
                    "DuplicateKey",
                    &format!("Index build failed: E11000 duplicate key error collection: {ns} index: {} dup key: {}", dup.index, dup.key_value),
                );
                e.insert("keyPattern", dup.key_pattern);
                e.insert("keyValue", dup.key_value);
                return e;
            }
        }
    }
    let after = 1 + c.indexes.specs().len() as i32;
    if !built.is_empty() {
        if had_documents {
            let build = new_uuid();
            let indexes: Vec<Bson> = built.iter().cloned().map(Bson::Document).collect();
            let start = doc! { "startIndexBuild": coll, "indexBuildUUID": build.clone(), "indexes": indexes.clone() };
            log(&mut store, term, db, &ns, start, None);
            let commit =
                doc! { "commitIndexBuild": coll, "indexBuildUUID": build, "indexes": indexes };
            log(&mut store, term, db, &ns, commit, None);
        } else {
            for spec in &built {
                let mut o = doc! { "createIndexes": coll };
                o.extend(spec.clone());
                log(&mut store, term, db, &ns, o, None);
            }
        }
    }
    drop(store);
    shared.members[member].publish_oplog(shared);
    let mut reply = doc! {
        "numIndexesBefore": before,
        "numIndexesAfter": after,
        "createdCollectionAutomatically": created,
        "commitQuorum": "votingMembers",
    };
    if built.is_empty() {
        reply.insert("note", "all indexes already exist");
    }
    reply.insert("ok", 1.0);
    reply
}

/// `listIndexes`: `_id_` first, then the others in creation order.
pub fn list_indexes(shared: &Shared, member: usize, db: &str, cmd: &Document) -> Document {
    let coll = match coll_arg(cmd, "listIndexes") {
        Ok(c) => c,
        Err(e) => return e,
    };
    let ns = format!("{db}.{coll}");
    let docs = {
        let store = shared.members[member].store();
        let Some(c) = store.collection(&ns) else {
            return error(26, "NamespaceNotFound", &format!("ns does not exist: {ns}"));
        };
        let mut out = vec![doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" }];
        out.extend(c.indexes.specs().iter().map(|s| s.spec.clone()));
        out
    };
    let batch = cmd
        .get_document("cursor")
        .ok()
        .and_then(|c| cursor::int_arg(c, "batchSize"));
    cursor::open(shared, member, &ns, docs, batch, false)
}

/// `dropIndexes`: by name, by key pattern, a list of names, or `"*"` (all but `_id_`).
pub fn drop_indexes(shared: &Shared, member: usize, db: &str, cmd: &Document) -> Document {
    if !shared.is_primary(member) {
        return not_writable_primary();
    }
    let coll = match coll_arg(cmd, "dropIndexes") {
        Ok(c) => c,
        Err(e) => return e,
    };
    let ns = format!("{db}.{coll}");
    let term = shared.topology().term;
    let mut store = shared.members[member].store();
    let Some(c) = store.collections.get_mut(&ns) else {
        return error(26, "NamespaceNotFound", &format!("ns not found {ns}"));
    };
    let was = 1 + c.indexes.specs().len() as i32;
    let names: Vec<String> = match cmd.get("index") {
        Some(Bson::String(s)) if s == "*" => {
            c.indexes.specs().iter().map(|s| s.name.clone()).collect()
        }
        Some(Bson::String(s)) => vec![s.clone()],
        Some(Bson::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Bson::Document(key)) => match c.indexes.specs().iter().find(|s| &s.key == key) {
            Some(s) => vec![s.name.clone()],
            None => {
                return error(
                    27,
                    "IndexNotFound",
                    &format!("can't find index with key: {key}"),
                )
            }
        },
        _ => return error(9, "FailedToParse", "dropIndexes needs 'index'"),
    };
    if names.iter().any(|n| n == "_id_") {
        return error(72, "InvalidOptions", "cannot drop _id index");
    }
    if let Some(missing) = names.iter().find(|n| c.indexes.get(n).is_none()) {
        return error(
            27,
            "IndexNotFound",
            &format!("index not found with name [{missing}]"),
        );
    }
    let mut dropped = Vec::new();
    for n in &names {
        if let Some(spec) = c.indexes.remove(n) {
            dropped.push(spec);
        }
    }
    for spec in dropped {
        log(
            &mut store,
            term,
            db,
            &ns,
            doc! { "dropIndexes": coll, "index": spec.name.clone() },
            Some(spec.spec),
        );
    }
    drop(store);
    shared.members[member].publish_oplog(shared);
    doc! { "nIndexesWas": was, "ok": 1.0 }
}
