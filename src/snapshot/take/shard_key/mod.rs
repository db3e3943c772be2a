//! Which shard owns a document: a sharded collection's key pattern
//! (`config.collections.key`) and its chunk map (`config.chunks`), checked whole.
//!
//! A document's shard key is the pattern's fields in order (dotted paths; a missing
//! field is null, as MongoDB routes it), a `hashed` field replaced by its
//! [`hash::hash64`]; the owner is the shard of the chunk `[min, max)` holding that
//! key in MongoDB's order ([`order::cmp`]). A map with a hole or an overlap, bounds
//! that are not the pattern's fields, or a pattern tidemark does not understand is
//! an error: a per-shard snapshot built on it could lose or double documents.

pub mod hash;
pub mod order;

use std::cmp::Ordering;

use anyhow::{anyhow, bail, Context, Result};
use tidemark_mongo::bson::{Bson, Document};

/// One field of a shard key pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyField {
    /// Dotted path.
    pub path: String,
    /// `"hashed"` rather than `1`.
    pub hashed: bool,
}

/// A shard key pattern: `{a: 1}`, `{a: "hashed"}`, `{a: 1, b: "hashed"}`, ….
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    pub fields: Vec<KeyField>,
}

impl KeyPattern {
    /// Parses `config.collections.key`: ascending (`1`) fields and at most one
    /// `"hashed"` field, as MongoDB allows.
    pub fn parse(key: &Document) -> Result<KeyPattern> {
        let mut fields = Vec::new();
        for (path, kind) in key {
            let hashed = match kind {
                Bson::String(s) if s == "hashed" => true,
                Bson::Int32(1) | Bson::Int64(1) => false,
                Bson::Double(d) if *d == 1.0 => false,
                other => bail!("shard key {key}: field {path:?} is {other}, which tidemark does not understand (1 or \"hashed\")"),
            };
            if path.is_empty() || path.starts_with('$') || path.split('.').any(str::is_empty) {
                bail!("shard key {key}: field {path:?} is not a field path");
            }
            fields.push(KeyField {
                path: path.clone(),
                hashed,
            });
        }
        if fields.is_empty() {
            bail!("empty shard key");
        }
        if fields.iter().filter(|f| f.hashed).count() > 1 {
            bail!("shard key {key}: more than one hashed field");
        }
        Ok(KeyPattern { fields })
    }

    /// The value at a dotted path; missing is null. A path through an array is an
    /// error (MongoDB refuses such shard key values).
    fn value_at(d: &Document, path: &str) -> Result<Bson> {
        let mut cur = d;
        let mut parts = path.split('.').peekable();
        while let Some(p) = parts.next() {
            let Some(v) = cur.get(p) else {
                return Ok(Bson::Null);
            };
            if parts.peek().is_none() {
                if matches!(v, Bson::Array(_)) {
                    bail!("shard key field {path:?} holds an array");
                }
                return Ok(v.clone());
            }
            match v {
                Bson::Document(inner) => cur = inner,
                Bson::Array(_) => bail!("shard key path {path:?} goes through an array"),
                _ => return Ok(Bson::Null),
            }
        }
        Ok(Bson::Null)
    }

    /// A document's shard key: one value per field, hashed fields hashed.
    pub fn key_of(&self, d: &Document) -> Result<Vec<Bson>> {
        self.fields
            .iter()
            .map(|f| {
                let v = Self::value_at(d, &f.path)?;
                if f.hashed {
                    Ok(Bson::Int64(hash::hash64(&v)?))
                } else {
                    Ok(v)
                }
            })
            .collect()
    }

    /// A chunk bound (`{a: …, b: …}`) as key values: exactly the pattern's fields,
    /// in its order.
    fn bound(&self, b: &Document) -> Result<Vec<Bson>> {
        let names: Vec<&str> = b.keys().map(String::as_str).collect();
        let want: Vec<&str> = self.fields.iter().map(|f| f.path.as_str()).collect();
        if names != want {
            bail!("chunk bound {b} does not have the shard key's fields {want:?}");
        }
        Ok(b.values().cloned().collect())
    }
}

/// Two keys, field by field.
fn cmp_keys(a: &[Bson], b: &[Bson]) -> Result<Ordering> {
    for (x, y) in a.iter().zip(b) {
        let o = order::cmp(x, y)?;
        if o != Ordering::Equal {
            return Ok(o);
        }
    }
    Ok(a.len().cmp(&b.len()))
}

/// One chunk: `[min, max)` and its shard.
#[derive(Debug, Clone)]
struct Chunk {
    min: Vec<Bson>,
    max: Vec<Bson>,
    shard: String,
}

/// A sharded collection's chunks, covering the key space from MinKey to MaxKey
/// without a hole or an overlap (checked by [`ChunkMap::new`]).
#[derive(Debug, Clone)]
pub struct ChunkMap {
    pub ns: String,
    pub pattern: KeyPattern,
    /// Sorted by `min`.
    chunks: Vec<Chunk>,
}

fn show(k: &[Bson]) -> String {
    let parts: Vec<String> = k.iter().map(ToString::to_string).collect();
    format!("{{{}}}", parts.join(", "))
}

impl ChunkMap {
    /// The map of `ns` from its `config.chunks` documents (`min`, `max`, `shard`).
    pub fn new(ns: &str, pattern: KeyPattern, docs: &[Document]) -> Result<ChunkMap> {
        let mut chunks = Vec::with_capacity(docs.len());
        for d in docs {
            let field = |k: &str| {
                d.get_document(k).map_err(|_| {
                    anyhow!(
                        "{ns}: chunk {} has no {k} document",
                        d.get("_id").map_or("?".into(), ToString::to_string)
                    )
                })
            };
            chunks.push(Chunk {
                min: pattern
                    .bound(field("min")?)
                    .with_context(|| ns.to_string())?,
                max: pattern
                    .bound(field("max")?)
                    .with_context(|| ns.to_string())?,
                shard: d
                    .get_str("shard")
                    .map_err(|_| anyhow!("{ns}: a chunk without a shard"))?
                    .to_string(),
            });
        }
        let mut err = None;
        chunks.sort_by(|a, b| {
            cmp_keys(&a.min, &b.min).unwrap_or_else(|e| {
                err.get_or_insert(e);
                Ordering::Equal
            })
        });
        if let Some(e) = err {
            return Err(e.context(format!("{ns}: ordering its chunks")));
        }
        let (Some(first), Some(last)) = (chunks.first(), chunks.last()) else {
            bail!("{ns} is sharded but config.chunks holds no chunk of it");
        };
        if !first.min.iter().all(|v| matches!(v, Bson::MinKey)) {
            bail!(
                "{ns}: the chunk map has a hole below its first chunk {}",
                show(&first.min)
            );
        }
        if !last.max.iter().all(|v| matches!(v, Bson::MaxKey)) {
            bail!(
                "{ns}: the chunk map has a hole above its last chunk {}",
                show(&last.max)
            );
        }
        for c in &chunks {
            if cmp_keys(&c.min, &c.max)? != Ordering::Less {
                bail!(
                    "{ns}: chunk [{}, {}) is empty or inverted",
                    show(&c.min),
                    show(&c.max)
                );
            }
        }
        for w in chunks.windows(2) {
            match cmp_keys(&w[0].max, &w[1].min)? {
                Ordering::Equal => {}
                Ordering::Less => bail!(
                    "{ns}: the chunk map has a hole: [{}, {}) is owned by no chunk",
                    show(&w[0].max),
                    show(&w[1].min)
                ),
                Ordering::Greater => bail!(
                    "{ns}: the chunk map has an overlap: chunks [{}, {}) on {} and [{}, {}) on {}",
                    show(&w[0].min),
                    show(&w[0].max),
                    w[0].shard,
                    show(&w[1].min),
                    show(&w[1].max),
                    w[1].shard
                ),
            }
        }
        Ok(ChunkMap {
            ns: ns.to_string(),
            pattern,
            chunks,
        })
    }

    /// The shard owning a shard key.
    pub fn owner_of_key(&self, key: &[Bson]) -> Result<&str> {
        // the last chunk whose min is <= key (the first chunk's min is all MinKey)
        let mut lo = 0;
        let mut hi = self.chunks.len();
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if cmp_keys(&self.chunks[mid].min, key)? == Ordering::Greater {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Ok(&self.chunks[lo].shard)
    }

    /// The shard owning a document.
    pub fn owner(&self, d: &Document) -> Result<&str> {
        self.owner_of_key(&self.pattern.key_of(d)?)
    }

    /// The shards owning at least one chunk.
    pub fn shards(&self) -> Vec<String> {
        let mut out: Vec<String> = self.chunks.iter().map(|c| c.shard.clone()).collect();
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_mongo::bson::doc;

    fn chunk(min: Document, max: Document, shard: &str) -> Document {
        doc! { "min": min, "max": max, "shard": shard }
    }

    #[test]
    fn ranged_and_compound_keys_find_their_chunk() {
        let p = KeyPattern::parse(&doc! { "a": 1, "b.c": 1 }).unwrap();
        let docs = vec![
            chunk(
                doc! {"a": Bson::MinKey, "b.c": Bson::MinKey},
                doc! {"a": 10, "b.c": Bson::MinKey},
                "s0",
            ),
            chunk(
                doc! {"a": 10, "b.c": Bson::MinKey},
                doc! {"a": 10, "b.c": "m"},
                "s1",
            ),
            chunk(
                doc! {"a": 10, "b.c": "m"},
                doc! {"a": Bson::MaxKey, "b.c": Bson::MaxKey},
                "s2",
            ),
        ];
        let m = ChunkMap::new("d.c", p, &docs).unwrap();
        let own = |d: Document| m.owner(&d).unwrap().to_string();
        assert_eq!(own(doc! {"a": 9.5, "b": {"c": "z"}}), "s0");
        assert_eq!(own(doc! {"a": 10i64, "b": {"c": "a"}}), "s1");
        assert_eq!(own(doc! {"a": 10, "b": {"c": "m"}}), "s2");
        assert_eq!(own(doc! {"a": "text"}), "s2");
        // missing fields are null, below every number
        assert_eq!(own(doc! {"x": 1}), "s0");
        assert_eq!(own(doc! {"a": 10}), "s1");
        assert!(m.owner(&doc! {"a": [1, 2]}).is_err());
    }

    #[test]
    fn hashed_keys_route_by_the_hash_and_missing_keys_hash_as_null() {
        let p = KeyPattern::parse(&doc! { "k": "hashed" }).unwrap();
        let docs = vec![
            chunk(doc! {"k": Bson::MinKey}, doc! {"k": 0i64}, "s0"),
            chunk(doc! {"k": 0i64}, doc! {"k": Bson::MaxKey}, "s1"),
        ];
        let m = ChunkMap::new("d.h", p, &docs).unwrap();
        // hash64(42) < 0, hash64(1) > 0, hash64(null) > 0 (MongoDB's vectors)
        assert_eq!(m.owner(&doc! {"k": 42}).unwrap(), "s0");
        assert_eq!(m.owner(&doc! {"k": 1.9}).unwrap(), "s1");
        assert_eq!(m.owner(&doc! {"_id": 1}).unwrap(), "s1");
    }

    #[test]
    fn holes_overlaps_and_strange_patterns_are_errors() {
        let p = || KeyPattern::parse(&doc! { "k": 1 }).unwrap();
        let min = || doc! {"k": Bson::MinKey};
        let max = || doc! {"k": Bson::MaxKey};
        let hole = vec![
            chunk(min(), doc! {"k": 5}, "s0"),
            chunk(doc! {"k": 6}, max(), "s1"),
        ];
        let e = ChunkMap::new("d.c", p(), &hole).unwrap_err().to_string();
        assert!(e.contains("hole"), "{e}");
        let overlap = vec![
            chunk(min(), doc! {"k": 7}, "s0"),
            chunk(doc! {"k": 6}, max(), "s1"),
        ];
        let e = ChunkMap::new("d.c", p(), &overlap).unwrap_err().to_string();
        assert!(e.contains("overlap"), "{e}");
        let short = vec![chunk(min(), doc! {"k": 7}, "s0")];
        assert!(ChunkMap::new("d.c", p(), &short)
            .unwrap_err()
            .to_string()
            .contains("hole"));
        assert!(ChunkMap::new("d.c", p(), &[]).is_err());
        let wrong_field = vec![chunk(doc! {"j": Bson::MinKey}, max(), "s0")];
        assert!(ChunkMap::new("d.c", p(), &wrong_field).is_err());
        for bad in [
            doc! {"k": -1},
            doc! {"k": "2d"},
            doc! {"a": "hashed", "b": "hashed"},
            doc! {},
        ] {
            assert!(KeyPattern::parse(&bad).is_err(), "{bad}");
        }
        let whole = vec![
            chunk(min(), doc! {"k": 5}, "s0"),
            chunk(doc! {"k": 5}, max(), "s1"),
        ];
        assert_eq!(
            ChunkMap::new("d.c", p(), &whole).unwrap().shards(),
            ["s0", "s1"]
        );
    }
}
