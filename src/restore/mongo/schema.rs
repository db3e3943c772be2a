//! What the store knows of a collection besides its documents: its options and
//! indexes, so a restore creates a missing collection as it was.
//!
//! Two sources, in this order: each MongoDB snapshot the version joined (`snapshot
//! take` records `listCollections` options and `listIndexes` per collection, as
//! relaxed Extended JSON), then the logged DDL of the namespace committed up to the
//! version (`create` with its options, `createIndexes`, `dropIndexes`, `drop`), in
//! log order, so a later command wins. A collection that appears in neither gets the
//! server's defaults (only the `_id` index).

use std::collections::BTreeMap;

use anyhow::Result;
use tidemark_mongo::bson::{Bson, Document};

use crate::snapshot::store as snapstore;
use crate::store::{MongoOpKind, Outcome, Payload, Protocol, Store, WriteOp};
use crate::version::model::VersionInfo;

/// A collection's options and indexes as the version's time knew them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectionSchema {
    /// `create` options (`capped`, `size`, `validator`, `collation`, …).
    pub options: Document,
    /// Index specifications other than `_id_`, by name.
    pub indexes: BTreeMap<String, Document>,
    /// Whether any source described the collection.
    pub known: bool,
    /// The source cluster's shard key of the collection and whether it is unique,
    /// when the collection was sharded (its `config.collections` document in the
    /// version: a tap of a sharded cluster logs the config servers' writes).
    pub shard_key: Option<(Document, bool)>,
}

impl CollectionSchema {
    /// The `create` command for collection `coll`.
    pub fn create_command(&self, coll: &str) -> Document {
        let mut cmd = Document::new();
        cmd.insert("create", coll);
        for (k, v) in &self.options {
            cmd.insert(k.clone(), v.clone());
        }
        cmd
    }

    /// The `shardCollection` command (run on `admin`) that shards `db.coll` on the
    /// source's key, if the source collection was sharded.
    pub fn shard_command(&self, db: &str, coll: &str) -> Option<Document> {
        let (key, unique) = self.shard_key.as_ref()?;
        let mut cmd = Document::new();
        cmd.insert("shardCollection", format!("{db}.{coll}"));
        cmd.insert("key", key.clone());
        if *unique {
            cmd.insert("unique", true);
        }
        Some(cmd)
    }

    /// The `createIndexes` command for collection `coll`, if it has indexes to make.
    pub fn indexes_command(&self, coll: &str) -> Option<Document> {
        if self.indexes.is_empty() {
            return None;
        }
        let specs: Vec<Bson> = self
            .indexes
            .values()
            .map(|d| Bson::Document(d.clone()))
            .collect();
        let mut cmd = Document::new();
        cmd.insert("createIndexes", coll);
        cmd.insert("indexes", specs);
        Some(cmd)
    }

    fn add_index(&mut self, spec: &Document) {
        let Ok(name) = spec.get_str("name") else {
            return;
        };
        if name == "_id_" {
            return;
        }
        let mut spec = spec.clone();
        // `v` (format version) and `ns` (pre-4.4) are the server's, not the user's.
        spec.remove("v");
        spec.remove("ns");
        self.indexes.insert(name.to_string(), spec);
        self.known = true;
    }

    fn set_options(&mut self, options: &Document) {
        let mut options = options.clone();
        // the server's own bookkeeping, refused by `create`
        for k in ["uuid", "idIndex", "create"] {
            options.remove(k);
        }
        self.options = options;
        self.known = true;
    }
}

/// The schema of each of `namespaces` (the version's names).
pub fn collect(
    store: &Store,
    info: &VersionInfo,
    namespaces: &[String],
) -> Result<BTreeMap<String, CollectionSchema>> {
    let mut out: BTreeMap<String, CollectionSchema> = namespaces
        .iter()
        .map(|n| (n.clone(), CollectionSchema::default()))
        .collect();
    let mut ids: Vec<u64> = info.snapshots.clone();
    ids.extend(info.snapshot);
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let Some(snap) = snapstore::snapshot(store, id)? else {
            continue;
        };
        if snap.protocol != Protocol::Mongo {
            continue;
        }
        for ns in &snap.namespaces {
            if let Some(s) = out.get_mut(&ns.name) {
                from_snapshot(s, &ns.schema);
            }
        }
    }
    shard_keys(store, info, &mut out)?;
    let reader = store.reader()?;
    for (ns, schema) in out.iter_mut() {
        for e in reader.namespace(ns)? {
            let e = e?;
            let m = &e.mutation;
            if e.seq > info.last_seq || m.commit_time > info.at || m.op != WriteOp::Ddl {
                continue;
            }
            if !matches!(m.outcome, Outcome::Committed) {
                continue;
            }
            let Payload::Mongo(op) = &m.payload else {
                continue;
            };
            if op.op != MongoOpKind::Command {
                continue;
            }
            if let Ok(cmd) = Document::from_reader(&op.o[..]) {
                from_command(schema, &cmd);
            }
        }
    }
    Ok(out)
}

/// The namespace a sharded cluster's config servers describe sharded collections in.
const COLLECTIONS_NS: &str = "config.collections";

/// The shard key of each sharded collection among `out`: the version's
/// `config.collections` document of the namespace (`_id` the namespace, `key`, and
/// `unique`), unless it marks the collection dropped (as servers before 5.0 did).
fn shard_keys(
    store: &Store,
    info: &VersionInfo,
    out: &mut BTreeMap<String, CollectionSchema>,
) -> Result<()> {
    if !info
        .namespaces
        .iter()
        .any(|n| n.namespace == COLLECTIONS_NS)
    {
        return Ok(());
    }
    crate::version::stored::for_each_row_of(store, &info.name, COLLECTIONS_NS, |_, row| {
        let crate::version::model::VersionRow::Mongo { document } = row else {
            return Ok(true);
        };
        let Ok(d) = Document::from_reader(document.as_slice()) else {
            return Ok(true);
        };
        if let (Ok(ns), Ok(key)) = (d.get_str("_id"), d.get_document("key")) {
            if let Some(s) = out.get_mut(ns) {
                if !d.get_bool("dropped").unwrap_or(false) && !key.is_empty() {
                    s.shard_key = Some((key.clone(), d.get_bool("unique").unwrap_or(false)));
                }
            }
        }
        Ok(true)
    })
}

/// A snapshot's `{"options": …, "indexes": […]}` (relaxed Extended JSON).
fn from_snapshot(s: &mut CollectionSchema, schema: &str) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(schema) else {
        return;
    };
    if let Some(Bson::Document(options)) = v.get("options").map(super::extjson::from_json) {
        s.set_options(&options);
    }
    if let Some(serde_json::Value::Array(indexes)) = v.get("indexes") {
        for i in indexes {
            if let Bson::Document(spec) = super::extjson::from_json(i) {
                s.add_index(&spec);
            }
        }
    }
}

/// One logged DDL command.
fn from_command(s: &mut CollectionSchema, cmd: &Document) {
    let Some((name, _)) = cmd.iter().next() else {
        return;
    };
    match name.as_str() {
        "create" => {
            *s = CollectionSchema::default();
            s.set_options(cmd);
        }
        "drop" => *s = CollectionSchema::default(),
        "createIndexes" => {
            if let Ok(specs) = cmd.get_array("indexes") {
                for spec in specs.iter().filter_map(Bson::as_document) {
                    s.add_index(spec);
                }
            }
        }
        "dropIndexes" | "deleteIndexes" => match cmd.get("index") {
            Some(Bson::String(n)) if n == "*" => s.indexes.clear(),
            Some(Bson::String(n)) => {
                s.indexes.remove(n);
            }
            Some(Bson::Array(names)) => {
                for n in names.iter().filter_map(Bson::as_str) {
                    s.indexes.remove(n);
                }
            }
            Some(Bson::Document(key)) => s
                .indexes
                .retain(|_, spec| spec.get_document("key").ok() != Some(key)),
            _ => {}
        },
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_mongo::bson::doc;

    #[test]
    fn logged_ddl_builds_options_and_indexes() {
        let mut s = CollectionSchema::default();
        from_snapshot(
            &mut s,
            r#"{"options":{"capped":true,"size":4096},"indexes":[{"v":2,"key":{"_id":1},"name":"_id_"},{"v":2,"key":{"a":1},"name":"a_1","unique":true}]}"#,
        );
        assert_eq!(s.options, doc! {"capped": true, "size": 4096});
        assert_eq!(
            s.indexes["a_1"],
            doc! {"key": {"a": 1}, "name": "a_1", "unique": true}
        );
        from_command(
            &mut s,
            &doc! {"createIndexes": "c", "indexes": [{"key": {"b": -1}, "name": "b_-1"}]},
        );
        from_command(&mut s, &doc! {"dropIndexes": "c", "index": "a_1"});
        assert_eq!(s.indexes.keys().collect::<Vec<_>>(), ["b_-1"]);
        assert_eq!(
            s.indexes_command("c2").unwrap(),
            doc! {"createIndexes": "c2", "indexes": [{"key": {"b": -1}, "name": "b_-1"}]}
        );
        from_command(&mut s, &doc! {"drop": "c"});
        from_command(&mut s, &doc! {"create": "c", "capped": false});
        assert_eq!(s.create_command("x"), doc! {"create": "x", "capped": false});
        assert!(s.indexes.is_empty());
    }
}
