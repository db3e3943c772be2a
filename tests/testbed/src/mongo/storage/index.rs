//! Secondary indexes of a collection, as far as the testbed needs them:
//! their specifications (for `listIndexes` and the oplog) and, for `unique`
//! ones, the set of keys in use, so a duplicate is refused with E11000 as
//! mongod refuses it. Queries never use them (every query scans). An array
//! value is one key as a whole (mongod's multikey indexes key each element).

use super::store::MemberStore;
use crate::mongo::query::matcher::get_path;
use std::collections::HashMap;
use tidemark_mongo::bson::{doc, Bson, Document};

/// One index besides `_id_`.
#[derive(Debug, Clone)]
pub struct IndexSpec {
    pub name: String,
    pub key: Document,
    pub unique: bool,
    /// The specification as `listIndexes` shows it: `{v: 2, key, name, unique?}`.
    pub spec: Document,
    /// Unique indexes only: key bytes → document position.
    entries: HashMap<Vec<u8>, u64>,
}

/// A duplicate key on a unique index.
#[derive(Debug, Clone, PartialEq)]
pub struct DupKey {
    pub index: String,
    pub key_pattern: Document,
    pub key_value: Document,
}

fn norm(v: &Bson) -> Bson {
    match v {
        Bson::Int32(i) => Bson::Int64(*i as i64),
        Bson::Double(d) if d.fract() == 0.0 && d.abs() < 9.0e15 => Bson::Int64(*d as i64),
        other => other.clone(),
    }
}

/// `{field: value}` of `d` for the index's fields (missing = null).
fn key_value(key: &Document, d: &Document) -> Document {
    let mut out = Document::new();
    for (field, _) in key {
        out.insert(
            field.clone(),
            get_path(d, field).cloned().unwrap_or(Bson::Null),
        );
    }
    out
}

fn key_bytes(value: &Document) -> Vec<u8> {
    let vals: Vec<Bson> = value.values().map(norm).collect();
    doc! { "k": vals }.to_vec().unwrap_or_default()
}

impl IndexSpec {
    /// Parses one entry of `createIndexes.indexes`.
    pub fn parse(d: &Document) -> Result<IndexSpec, String> {
        let key = d
            .get_document("key")
            .map_err(|_| "an index needs a 'key' document".to_string())?
            .clone();
        if key.is_empty() {
            return Err("an index key pattern must not be empty".into());
        }
        let name = d
            .get_str("name")
            .map_err(|_| "an index needs a 'name'".to_string())?
            .to_string();
        let unique = d.get_bool("unique").unwrap_or(false);
        let mut spec = doc! { "v": 2, "key": key.clone(), "name": name.clone() };
        if unique {
            spec.insert("unique", true);
        }
        Ok(IndexSpec {
            name,
            key,
            unique,
            spec,
            entries: HashMap::new(),
        })
    }
}

/// The secondary indexes of one collection.
#[derive(Debug, Clone, Default)]
pub struct Indexes {
    specs: Vec<IndexSpec>,
}

impl Indexes {
    pub fn specs(&self) -> &[IndexSpec] {
        &self.specs
    }

    pub fn get(&self, name: &str) -> Option<&IndexSpec> {
        self.specs.iter().find(|s| s.name == name)
    }

    /// The unique index `d` would violate (ignoring the document at
    /// `except`, the one being replaced), if any.
    pub fn conflict(&self, d: &Document, except: Option<u64>) -> Option<DupKey> {
        for s in self.specs.iter().filter(|s| s.unique) {
            let value = key_value(&s.key, d);
            if let Some(seq) = s.entries.get(&key_bytes(&value)) {
                if Some(*seq) != except {
                    return Some(DupKey {
                        index: s.name.clone(),
                        key_pattern: s.key.clone(),
                        key_value: value,
                    });
                }
            }
        }
        None
    }

    pub fn on_insert(&mut self, seq: u64, d: &Document) {
        for s in self.specs.iter_mut().filter(|s| s.unique) {
            s.entries.insert(key_bytes(&key_value(&s.key, d)), seq);
        }
    }

    pub fn on_remove(&mut self, seq: u64, d: &Document) {
        for s in self.specs.iter_mut().filter(|s| s.unique) {
            let k = key_bytes(&key_value(&s.key, d));
            if s.entries.get(&k) == Some(&seq) {
                s.entries.remove(&k);
            }
        }
    }

    /// Adds `spec`, keying the existing documents; `Ok(false)` when an
    /// identical index exists; `Err` on a conflicting name or, for a unique
    /// index, duplicates among the documents (nothing is added then).
    pub fn add<'a>(
        &mut self,
        mut spec: IndexSpec,
        docs: impl Iterator<Item = (u64, &'a Document)>,
    ) -> Result<bool, IndexError> {
        if spec.name == "_id_" {
            return Ok(false);
        }
        if let Some(old) = self.get(&spec.name) {
            return if old.key == spec.key && old.unique == spec.unique {
                Ok(false)
            } else {
                Err(IndexError::Conflict(format!(
                    "An existing index has the same name as the requested index: {}",
                    spec.name
                )))
            };
        }
        if self.specs.iter().any(|s| s.key == spec.key) {
            return Ok(false);
        }
        if spec.unique {
            for (seq, d) in docs {
                let value = key_value(&spec.key, d);
                if spec.entries.insert(key_bytes(&value), seq).is_some() {
                    return Err(IndexError::Duplicate(Box::new(DupKey {
                        index: spec.name.clone(),
                        key_pattern: spec.key.clone(),
                        key_value: value,
                    })));
                }
            }
        }
        self.specs.push(spec);
        Ok(true)
    }

    pub fn remove(&mut self, name: &str) -> Option<IndexSpec> {
        let i = self.specs.iter().position(|s| s.name == name)?;
        Some(self.specs.remove(i))
    }
}

/// Why an index could not be built.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexError {
    /// The same name with another key (IndexKeySpecsConflict / IndexOptionsConflict).
    Conflict(String),
    /// Existing documents violate the new unique index.
    Duplicate(Box<DupKey>),
}

/// Applies an index entry on a secondary (`createIndexes`,
/// `commitIndexBuild`, `dropIndexes`; `startIndexBuild`/`abortIndexBuild`
/// change nothing until the commit). `None` if `o` is not an index entry.
pub fn apply_entry(store: &mut MemberStore, db: &str, o: &Document) -> Option<Result<(), String>> {
    let add = |store: &mut MemberStore, coll: &str, spec: &Document| -> Result<(), String> {
        let c = store.collection_mut(&format!("{db}.{coll}"));
        let spec = IndexSpec::parse(spec)?;
        let docs: Vec<(u64, Document)> = c.iter().map(|(s, d)| (s, d.clone())).collect();
        c.indexes
            .add(spec, docs.iter().map(|(s, d)| (*s, d)))
            .map(|_| ())
            .map_err(|e| format!("index entry does not apply: {e:?}"))
    };
    if let Ok(coll) = o.get_str("createIndexes") {
        let mut spec = o.clone();
        spec.remove("createIndexes");
        return Some(add(store, coll, &spec));
    }
    if let Ok(coll) = o.get_str("commitIndexBuild") {
        let specs = o.get_array("indexes").cloned().unwrap_or_default();
        for s in specs {
            if let Bson::Document(s) = s {
                if let Err(e) = add(store, coll, &s) {
                    return Some(Err(e));
                }
            }
        }
        return Some(Ok(()));
    }
    if o.contains_key("startIndexBuild") || o.contains_key("abortIndexBuild") {
        return Some(Ok(()));
    }
    if let (Ok(coll), Ok(name)) = (o.get_str("dropIndexes"), o.get_str("index")) {
        store
            .collection_mut(&format!("{db}.{coll}"))
            .indexes
            .remove(name);
        return Some(Ok(()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_keys_are_tracked_through_changes() {
        let mut ix = Indexes::default();
        let spec =
            IndexSpec::parse(&doc! { "key": { "email": 1 }, "name": "email_1", "unique": true })
                .unwrap();
        let a = doc! { "_id": 1, "email": "a" };
        let b = doc! { "_id": 2, "email": "b" };
        assert_eq!(
            ix.add(spec.clone(), [(1, &a), (2, &b)].into_iter()),
            Ok(true)
        );
        assert_eq!(
            ix.add(spec, std::iter::empty()),
            Ok(false),
            "same index again"
        );
        let dup = doc! { "_id": 3, "email": "a" };
        assert_eq!(
            ix.conflict(&dup, None).unwrap().key_value,
            doc! { "email": "a" }
        );
        assert!(
            ix.conflict(&a, Some(1)).is_none(),
            "a document does not conflict with itself"
        );
        ix.on_remove(1, &a);
        assert!(ix.conflict(&dup, None).is_none());
        // numbers are one key across types; missing fields are null keys
        ix.on_insert(5, &doc! { "_id": 5, "email": 7 });
        assert!(ix.conflict(&doc! { "email": 7.0 }, None).is_some());
        ix.on_insert(6, &doc! { "_id": 6 });
        assert!(ix
            .conflict(&doc! { "_id": 8, "email": null }, None)
            .is_some());
        let other = IndexSpec::parse(&doc! { "key": { "x": 1 }, "name": "email_1" }).unwrap();
        assert!(matches!(
            ix.add(other, std::iter::empty()),
            Err(IndexError::Conflict(_))
        ));
        let dups =
            IndexSpec::parse(&doc! { "key": { "k": 1 }, "name": "k_1", "unique": true }).unwrap();
        let (x, y) = (doc! { "k": 1 }, doc! { "k": 1 });
        assert!(matches!(
            ix.add(dups, [(1, &x), (2, &y)].into_iter()),
            Err(IndexError::Duplicate(_))
        ));
        assert!(ix.get("k_1").is_none());
        assert!(IndexSpec::parse(&doc! { "key": {}, "name": "n" }).is_err());
    }
}
