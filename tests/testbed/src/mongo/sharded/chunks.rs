//! The routing table of one sharded collection: its shard key (one field,
//! ranged or `hashed`), its chunks (contiguous ranges of the key space from
//! MinKey to MaxKey, each owned by one shard, each with a version
//! `major|minor` under the collection's epoch), and the `config.chunks` /
//! `config.collections` documents they are stored as.
//!
//! Versions follow MongoDB's rules: a split bumps the minor version of the
//! two halves, a migration bumps the major version of the moved chunk (and
//! of one chunk the donor keeps, so the donor's shard version moves too).
//! A shard's version is the highest version of the chunks it owns.

use super::hash::hash64;
use crate::mongo::query::matcher::get_path;
use crate::mongo::query::order::cmp_bson;
use std::cmp::Ordering;
use tidemark_mongo::bson::oid::ObjectId;
use tidemark_mongo::bson::{doc, Bson, Document, Timestamp};

/// A chunk version: `(major, minor)`, compared in that order.
pub type Version = (u32, u32);

/// The shard key: one field, ranged (`{k: 1}`) or hashed (`{k: "hashed"}`).
#[derive(Debug, Clone, PartialEq)]
pub struct ShardKey {
    pub field: String,
    pub hashed: bool,
}

impl ShardKey {
    /// Parses `shardCollection`'s `key`.
    pub fn parse(key: &Document) -> Result<ShardKey, String> {
        if key.len() != 1 {
            return Err("the testbed supports shard keys of exactly one field".into());
        }
        let (field, kind) = key.iter().next().ok_or("empty shard key")?;
        let hashed = match kind {
            Bson::String(s) if s == "hashed" => true,
            Bson::Int32(1) | Bson::Int64(1) => false,
            Bson::Double(d) if *d == 1.0 => false,
            other => return Err(format!("unsupported shard key kind {other}")),
        };
        Ok(ShardKey {
            field: field.clone(),
            hashed,
        })
    }

    pub fn to_doc(&self) -> Document {
        if self.hashed {
            doc! { self.field.clone(): "hashed" }
        } else {
            doc! { self.field.clone(): 1 }
        }
    }

    /// The point of the key space a shard-key value maps to.
    pub fn point(&self, value: &Bson) -> Bson {
        if self.hashed {
            Bson::Int64(hash64(value))
        } else {
            value.clone()
        }
    }

    /// The key-space point of a document (a missing field is null, as MongoDB
    /// treats it).
    pub fn point_of(&self, d: &Document) -> Bson {
        let v = get_path(d, &self.field).cloned().unwrap_or(Bson::Null);
        self.point(&v)
    }

    /// The key-space point a filter pins by equality on the shard key
    /// (`{k: v}` or `{k: {$eq: v}}`), if any.
    pub fn point_of_filter(&self, filter: &Document) -> Option<Bson> {
        let v = filter.get(&self.field)?;
        let v = match v {
            Bson::Document(d) if d.keys().any(|k| k.starts_with('$')) => {
                if d.len() == 1 {
                    d.get("$eq")?.clone()
                } else {
                    return None;
                }
            }
            Bson::RegularExpression(_) => return None,
            v => v.clone(),
        };
        Some(self.point(&v))
    }
}

/// One chunk: `[min, max)` of the key space.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub min: Bson,
    pub max: Bson,
    pub shard: String,
    pub version: Version,
}

fn cmp_key(a: &Bson, b: &Bson) -> Ordering {
    match (a, b) {
        (Bson::MinKey, Bson::MinKey) | (Bson::MaxKey, Bson::MaxKey) => Ordering::Equal,
        (Bson::MinKey, _) | (_, Bson::MaxKey) => Ordering::Less,
        (_, Bson::MinKey) | (Bson::MaxKey, _) => Ordering::Greater,
        _ => cmp_bson(a, b),
    }
}

impl Chunk {
    pub fn contains(&self, point: &Bson) -> bool {
        cmp_key(&self.min, point) != Ordering::Greater
            && cmp_key(point, &self.max) == Ordering::Less
    }
}

/// A collection's routing table.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingTable {
    pub ns: String,
    pub key: ShardKey,
    pub epoch: ObjectId,
    /// `config.collections.timestamp`: when the collection was sharded.
    pub timestamp: Timestamp,
    /// Sorted by `min`, covering MinKey..MaxKey without gaps.
    pub chunks: Vec<Chunk>,
}

impl RoutingTable {
    /// A new collection's table. A ranged key starts with one chunk on
    /// `primary`; a hashed one with one chunk per shard (MongoDB's
    /// `numInitialChunks` default for an empty collection: two per shard;
    /// one is enough for routing to spread).
    pub fn new(ns: &str, key: ShardKey, shards: &[String], primary: &str) -> RoutingTable {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        let mut chunks = Vec::new();
        if key.hashed && shards.len() > 1 {
            let n = shards.len() as i128;
            let span = (i64::MAX as i128 - i64::MIN as i128) / n;
            let mut min = Bson::MinKey;
            for (i, s) in shards.iter().enumerate() {
                let max = if i + 1 == shards.len() {
                    Bson::MaxKey
                } else {
                    Bson::Int64((i64::MIN as i128 + span * (i as i128 + 1)) as i64)
                };
                chunks.push(Chunk {
                    min: min.clone(),
                    max: max.clone(),
                    shard: s.clone(),
                    version: (1, i as u32),
                });
                min = max;
            }
        } else {
            chunks.push(Chunk {
                min: Bson::MinKey,
                max: Bson::MaxKey,
                shard: primary.to_string(),
                version: (1, 0),
            });
        }
        RoutingTable {
            ns: ns.to_string(),
            key,
            epoch: ObjectId::new(),
            timestamp: Timestamp {
                time: now,
                increment: 1,
            },
            chunks,
        }
    }

    /// The chunk holding `point`.
    pub fn chunk_for(&self, point: &Bson) -> Option<&Chunk> {
        self.chunks.iter().find(|c| c.contains(point))
    }

    /// The shard owning `point`.
    pub fn owner(&self, point: &Bson) -> Option<&str> {
        self.chunk_for(point).map(|c| c.shard.as_str())
    }

    /// The shard owning document `d`.
    pub fn owner_of_doc(&self, d: &Document) -> Option<&str> {
        self.owner(&self.key.point_of(d))
    }

    /// The collection version: the highest chunk version.
    pub fn collection_version(&self) -> Version {
        self.chunks
            .iter()
            .map(|c| c.version)
            .max()
            .unwrap_or((0, 0))
    }

    /// A shard's version: its highest chunk version, `(0, 0)` if it owns none.
    pub fn shard_version(&self, shard: &str) -> Version {
        self.chunks
            .iter()
            .filter(|c| c.shard == shard)
            .map(|c| c.version)
            .max()
            .unwrap_or((0, 0))
    }

    /// The shards owning at least one chunk, in chunk order, deduplicated.
    pub fn shards(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in &self.chunks {
            if !out.contains(&c.shard) {
                out.push(c.shard.clone());
            }
        }
        out
    }

    /// Splits the chunk holding `at` (a key-space point) at `at`; the two
    /// halves get the next minor versions.
    pub fn split(&mut self, at: &Bson) -> Result<(), String> {
        let cv = self.collection_version();
        let i = self
            .chunks
            .iter()
            .position(|c| c.contains(at))
            .ok_or("no chunk holds the split point")?;
        if cmp_key(&self.chunks[i].min, at) == Ordering::Equal {
            return Err(format!("{at} is already a chunk boundary"));
        }
        let mut right = self.chunks[i].clone();
        right.min = at.clone();
        right.version = (cv.0, cv.1 + 2);
        self.chunks[i].max = at.clone();
        self.chunks[i].version = (cv.0, cv.1 + 1);
        self.chunks.insert(i + 1, right);
        Ok(())
    }

    /// Moves the chunk starting at `min` to `to`: it gets version
    /// `(major+1, 0)`; the donor's highest remaining chunk `(major+1, 1)`.
    pub fn move_chunk(&mut self, min: &Bson, to: &str) -> Result<String, String> {
        let cv = self.collection_version();
        let i = self
            .chunks
            .iter()
            .position(|c| cmp_key(&c.min, min) == Ordering::Equal)
            .ok_or_else(|| format!("no chunk starts at {min}"))?;
        let from = self.chunks[i].shard.clone();
        if from == to {
            return Err(format!("the chunk is already on {to}"));
        }
        self.chunks[i].shard = to.to_string();
        self.chunks[i].version = (cv.0 + 1, 0);
        if let Some(j) = (0..self.chunks.len())
            .filter(|j| self.chunks[*j].shard == from)
            .max_by_key(|j| self.chunks[*j].version)
        {
            self.chunks[j].version = (cv.0 + 1, 1);
        }
        Ok(from)
    }

    /// The `config.collections` document.
    pub fn collection_doc(&self) -> Document {
        doc! {
            "_id": self.ns.clone(),
            "lastmodEpoch": self.epoch,
            "lastmod": tidemark_mongo::bson::DateTime::now(),
            "timestamp": self.timestamp,
            "key": self.key.to_doc(),
            "unique": false,
            "noBalance": false,
        }
    }

    /// The `_id` of a chunk's `config.chunks` document (MongoDB 4.x form: ns and min).
    pub fn chunk_id(&self, c: &Chunk) -> String {
        format!("{}-{}_{}", self.ns, self.key.field, c.min)
    }

    /// The `config.chunks` document of one chunk.
    pub fn chunk_doc(&self, c: &Chunk) -> Document {
        doc! {
            "_id": self.chunk_id(c),
            "ns": self.ns.clone(),
            "min": { self.key.field.clone(): c.min.clone() },
            "max": { self.key.field.clone(): c.max.clone() },
            "shard": c.shard.clone(),
            "lastmod": version_ts(c.version),
            "lastmodEpoch": self.epoch,
        }
    }

    /// Rebuilds a table from its `config.collections` document and its
    /// `config.chunks` documents (as a router reads them).
    pub fn from_docs(coll: &Document, chunks: &[Document]) -> Result<RoutingTable, String> {
        let ns = coll.get_str("_id").map_err(|e| e.to_string())?.to_string();
        let key = ShardKey::parse(coll.get_document("key").map_err(|e| e.to_string())?)?;
        let epoch = coll
            .get_object_id("lastmodEpoch")
            .map_err(|e| e.to_string())?;
        let timestamp = coll.get_timestamp("timestamp").map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for c in chunks {
            let bound = |k: &str| -> Result<Bson, String> {
                c.get_document(k)
                    .map_err(|e| e.to_string())?
                    .get(&key.field)
                    .cloned()
                    .ok_or_else(|| format!("chunk {k} lacks the shard key"))
            };
            let v = c.get_timestamp("lastmod").map_err(|e| e.to_string())?;
            out.push(Chunk {
                min: bound("min")?,
                max: bound("max")?,
                shard: c.get_str("shard").map_err(|e| e.to_string())?.to_string(),
                version: (v.time, v.increment),
            });
        }
        out.sort_by(|a, b| cmp_key(&a.min, &b.min));
        Ok(RoutingTable {
            ns,
            key,
            epoch,
            timestamp,
            chunks: out,
        })
    }
}

/// A version as `config.chunks.lastmod` stores it: Timestamp(major, minor).
pub fn version_ts(v: Version) -> Timestamp {
    Timestamp {
        time: v.0,
        increment: v.1,
    }
}

/// The epoch of `ChunkVersion::UNSHARDED`: all zeros.
pub fn unsharded_epoch() -> ObjectId {
    ObjectId::from_bytes([0; 12])
}

/// The `shardVersion` a router attaches for a collection it believes unsharded.
pub fn unsharded_version_doc() -> Document {
    let zero = Timestamp {
        time: 0,
        increment: 0,
    };
    doc! { "e": unsharded_epoch(), "t": zero, "v": zero }
}

/// The `shardVersion` a router attaches to a request for `shard`
/// (MongoDB 5+ form: `{e: epoch, t: timestamp, v: Timestamp(major, minor)}`).
pub fn shard_version_doc(t: &RoutingTable, shard: &str) -> Document {
    doc! { "e": t.epoch, "t": t.timestamp, "v": version_ts(t.shard_version(shard)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RoutingTable {
        let key = ShardKey::parse(&doc! { "k": 1 }).unwrap();
        RoutingTable::new("d.c", key, &["s0".into(), "s1".into()], "s0")
    }

    #[test]
    fn splits_and_moves_bump_versions_and_route_by_range() {
        let mut t = table();
        t.split(&Bson::Int32(10)).unwrap();
        assert!(t.split(&Bson::Int32(10)).is_err(), "already a boundary");
        assert_eq!(t.chunks.len(), 2);
        assert_eq!(t.owner(&Bson::Int32(50)), Some("s0"));
        let v0 = t.shard_version("s0");
        assert_eq!(t.move_chunk(&Bson::Int32(10), "s1").unwrap(), "s0");
        assert_eq!(t.owner(&Bson::Int32(50)), Some("s1"));
        assert_eq!(t.owner(&Bson::Int32(5)), Some("s0"));
        assert!(t.shard_version("s0").0 > v0.0, "the donor's major moved");
        assert_eq!(t.shard_version("s1"), (2, 0));
        let docs: Vec<Document> = t.chunks.iter().map(|c| t.chunk_doc(c)).collect();
        let back = RoutingTable::from_docs(&t.collection_doc(), &docs).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn hashed_tables_start_with_a_chunk_per_shard() {
        let key = ShardKey::parse(&doc! { "k": "hashed" }).unwrap();
        let t = RoutingTable::new("d.c", key, &["s0".into(), "s1".into()], "s0");
        assert_eq!(t.shards(), vec!["s0".to_string(), "s1".to_string()]);
        let owners: std::collections::HashSet<_> = (0..100)
            .map(|i| t.owner_of_doc(&doc! { "k": i }).unwrap().to_string())
            .collect();
        assert_eq!(owners.len(), 2);
    }
}
