//! The config servers: a replica set (`configRepl`, the testbed's replica
//! set) whose `config.shards`, `config.databases`, `config.collections` and
//! `config.chunks` are real documents, written over the wire with
//! `w: "majority"` like MongoDB's catalog writes (so its oplog, and a tap on
//! its replication, carries every chunk-map change), plus the in-memory
//! [`Catalog`] the shards take their own versions from. Routers read the
//! chunk map back from these documents over the wire ([`fetch_table`]).

use super::chunks::{RoutingTable, ShardKey};
use super::client::{is_ok, Pool};
use crate::mongo::storage::store::OpTime;
use crate::mongo::MongoReplicaSet;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tidemark_mongo::bson::{doc, Bson, Document};

/// One committed change of a collection's chunk map.
#[derive(Debug, Clone)]
pub struct ChunkMapChange {
    pub ns: String,
    /// "shardCollection", "split" or "moveChunk".
    pub what: String,
    /// The table after the change.
    pub table: RoutingTable,
    /// The config servers' optime of the change's last write (majority-committed
    /// when this is recorded).
    pub optime: OpTime,
    /// When the catalog recorded it (after the majority acknowledgement).
    pub wall_millis: i64,
    /// The `wall` of the config servers' oplog entry at `optime`: the moment
    /// the change took effect (ownership at a wall-clock time uses this).
    pub config_wall_millis: i64,
}

/// What the config servers hold, as the cluster's authority.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Shard ids in order (`shard0`, `shard1`, ...).
    pub shards: Vec<String>,
    /// Database → its primary shard (unsharded collections live there).
    pub databases: BTreeMap<String, String>,
    pub tables: BTreeMap<String, RoutingTable>,
    pub history: Vec<ChunkMapChange>,
}

impl Catalog {
    pub fn primary_shard(&self, db: &str) -> String {
        self.databases
            .get(db)
            .cloned()
            .or_else(|| self.shards.first().cloned())
            .unwrap_or_default()
    }
}

/// The config server replica set and the catalog.
pub struct ConfigServer {
    pub set: Arc<MongoReplicaSet>,
    catalog: Arc<Mutex<Catalog>>,
    pool: Pool,
    /// One catalog change at a time (MongoDB serialises them per collection).
    pub commit_lock: tokio::sync::Mutex<()>,
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl ConfigServer {
    pub fn new(set: Arc<MongoReplicaSet>, timeout: Duration) -> ConfigServer {
        let local = set.addresses()[0].ip();
        ConfigServer {
            set,
            catalog: Arc::new(Mutex::new(Catalog::default())),
            pool: Pool::new(local, timeout),
            commit_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn catalog(&self) -> MutexGuard<'_, Catalog> {
        self.catalog.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn catalog_arc(&self) -> Arc<Mutex<Catalog>> {
        self.catalog.clone()
    }

    /// The config primary's address.
    pub fn primary_addr(&self) -> Result<SocketAddr, String> {
        let p = self
            .set
            .primary()
            .ok_or("the config server replica set has no primary")?;
        Ok(self.set.addresses()[p])
    }

    /// Runs one write command on `config` with `w: "majority"`; its optime.
    async fn write(&self, mut cmd: Document) -> Result<OpTime, String> {
        cmd.insert("$db", "config");
        cmd.insert("writeConcern", doc! { "w": "majority", "wtimeout": 10_000 });
        let r = self.pool.command(self.primary_addr()?, cmd.clone()).await?;
        if !is_ok(&r) || r.contains_key("writeErrors") || r.contains_key("writeConcernError") {
            return Err(format!("config write {cmd} failed: {r}"));
        }
        r.get_document("opTime")
            .ok()
            .and_then(OpTime::from_doc)
            .ok_or_else(|| format!("config write reply without opTime: {r}"))
    }

    /// Registers the shards and their connection strings (`config.shards`).
    pub async fn add_shards(&self, shards: &[(String, String)]) -> Result<(), String> {
        let docs: Vec<Bson> = shards
            .iter()
            .map(|(id, host)| {
                Bson::Document(doc! { "_id": id.clone(), "host": host.clone(), "state": 1 })
            })
            .collect();
        self.write(doc! { "insert": "shards", "documents": docs })
            .await?;
        self.catalog().shards = shards.iter().map(|(id, _)| id.clone()).collect();
        Ok(())
    }

    /// `enableSharding`: records the database with its primary shard
    /// (idempotent, as in MongoDB 6).
    pub async fn enable_sharding(&self, db: &str) -> Result<(), String> {
        let _l = self.commit_lock.lock().await;
        let primary = self.catalog().primary_shard(db);
        self.write(doc! {
            "update": "databases",
            "updates": [{ "q": { "_id": db }, "u": { "_id": db, "primary": primary.clone(), "partitioned": true }, "upsert": true }],
        })
        .await?;
        self.catalog().databases.insert(db.to_string(), primary);
        Ok(())
    }

    /// `shardCollection`: the collection's document and its first chunks.
    pub async fn shard_collection(&self, ns: &str, key: ShardKey) -> Result<(), String> {
        let _l = self.commit_lock.lock().await;
        let (shards, primary) = {
            let c = self.catalog();
            if c.tables.contains_key(ns) {
                return Err(format!("{ns} is already sharded"));
            }
            let db = ns.split('.').next().unwrap_or_default();
            (c.shards.clone(), c.primary_shard(db))
        };
        let table = RoutingTable::new(ns, key, &shards, &primary);
        self.write(doc! { "insert": "collections", "documents": [table.collection_doc()] })
            .await?;
        let chunks: Vec<Bson> = table
            .chunks
            .iter()
            .map(|c| Bson::Document(table.chunk_doc(c)))
            .collect();
        let optime = self
            .write(doc! { "insert": "chunks", "documents": chunks })
            .await?;
        self.publish(ns, "shardCollection", table, optime);
        Ok(())
    }

    fn publish(&self, ns: &str, what: &str, table: RoutingTable, optime: OpTime) {
        let config_wall_millis = self
            .set
            .primary()
            .and_then(|p| {
                self.set
                    .oplog(p)
                    .iter()
                    .rev()
                    .find(|e| OpTime::from_doc(e) == Some(optime))
                    .and_then(|e| e.get_datetime("wall").ok().map(|w| w.timestamp_millis()))
            })
            .unwrap_or_else(now_millis);
        let mut c = self.catalog();
        c.tables.insert(ns.to_string(), table.clone());
        c.history.push(ChunkMapChange {
            ns: ns.to_string(),
            what: what.to_string(),
            table,
            optime,
            wall_millis: now_millis(),
            config_wall_millis,
        });
    }

    /// Writes the chunk documents that differ between `old` and `new`
    /// (upserts by `_id`, deletes of chunks that are gone), majority-committed.
    async fn write_chunks(&self, old: &RoutingTable, new: &RoutingTable) -> Result<OpTime, String> {
        let old_docs: Vec<Document> = old.chunks.iter().map(|c| old.chunk_doc(c)).collect();
        let new_docs: Vec<Document> = new.chunks.iter().map(|c| new.chunk_doc(c)).collect();
        let updates: Vec<Bson> = new_docs
            .iter()
            .filter(|d| !old_docs.contains(d))
            .map(|d| {
                Bson::Document(doc! { "q": { "_id": d.get("_id").cloned().unwrap_or(Bson::Null) }, "u": d.clone(), "upsert": true })
            })
            .collect();
        let gone: Vec<Bson> = old_docs
            .iter()
            .filter_map(|d| d.get("_id"))
            .filter(|id| !new_docs.iter().any(|n| n.get("_id") == Some(*id)))
            .map(|id| Bson::Document(doc! { "q": { "_id": id.clone() }, "limit": 1 }))
            .collect();
        let mut optime = None;
        if !gone.is_empty() {
            optime = Some(
                self.write(doc! { "delete": "chunks", "deletes": gone })
                    .await?,
            );
        }
        if !updates.is_empty() {
            optime = Some(
                self.write(doc! { "update": "chunks", "updates": updates })
                    .await?,
            );
        }
        optime.ok_or_else(|| "the chunk map did not change".to_string())
    }

    /// Commits a change of `ns`'s table made by `change` (split or move).
    pub async fn commit<F>(&self, ns: &str, what: &str, change: F) -> Result<RoutingTable, String>
    where
        F: FnOnce(&mut RoutingTable) -> Result<(), String>,
    {
        let _l = self.commit_lock.lock().await;
        let old = self
            .catalog()
            .tables
            .get(ns)
            .cloned()
            .ok_or_else(|| format!("{ns} is not sharded"))?;
        let mut new = old.clone();
        change(&mut new)?;
        let optime = self.write_chunks(&old, &new).await?;
        self.publish(ns, what, new.clone(), optime);
        Ok(new)
    }
}

/// Reads `ns`'s routing table from the config primary over the wire, as a
/// router refreshes: `None` if the collection is not sharded.
pub async fn fetch_table(
    pool: &Pool,
    config: SocketAddr,
    ns: &str,
) -> Result<Option<RoutingTable>, String> {
    let coll = first_batch(
        pool.command(
            config,
            doc! { "find": "collections", "filter": { "_id": ns }, "$db": "config" },
        )
        .await?,
    )?;
    let Some(coll) = coll.into_iter().next() else {
        return Ok(None);
    };
    let mut chunks = Vec::new();
    let mut reply = pool
        .command(
            config,
            doc! { "find": "chunks", "filter": { "ns": ns }, "batchSize": 100_000, "$db": "config" },
        )
        .await?;
    for _ in 0..1000 {
        chunks.extend(first_batch(reply.clone())?);
        let id = reply
            .get_document("cursor")
            .ok()
            .and_then(|c| c.get_i64("id").ok())
            .unwrap_or(0);
        if id == 0 {
            return RoutingTable::from_docs(&coll, &chunks).map(Some);
        }
        reply = pool
            .command(
                config,
                doc! { "getMore": id, "collection": "chunks", "$db": "config" },
            )
            .await?;
    }
    Err("config.chunks cursor did not end".into())
}

/// The documents of a cursor reply's batch.
pub fn first_batch(reply: Document) -> Result<Vec<Document>, String> {
    if !is_ok(&reply) {
        return Err(format!("command failed: {reply}"));
    }
    let c = reply.get_document("cursor").map_err(|e| e.to_string())?;
    let batch = c
        .get_array("firstBatch")
        .or_else(|_| c.get_array("nextBatch"))
        .map_err(|e| e.to_string())?;
    Ok(batch
        .iter()
        .filter_map(|b| b.as_document().cloned())
        .collect())
}
