//! `snapshot take --per-shard`: a sharded MongoDB cluster read shard by shard,
//! each shard's orphans filtered out by the chunk map at the snapshot's time.
//!
//! Through the router (`--from` must be a `mongos`), `getShardMap` names the config
//! servers' replica set. A `readConcern: snapshot` read there picks the cluster
//! time T (its majority commit point); `config.shards`, `config.databases`,
//! `config.collections` and `config.chunks` are read at T, and then every shard's
//! replica set (its primary, through the driver) at the same `atClusterTime` T. A
//! shard may hold documents it does not own at T — a migrated chunk's leftovers the
//! range deleter has not removed yet, a chunk it is still receiving — and the same
//! `_id` then exists on two shards. Each document is kept only where the chunk map
//! at T names the shard it was read from (its shard key, hashed for a hashed field,
//! in MongoDB's order: [`super::shard_key`]); an unsharded collection is read from
//! its database's primary shard only. What is left out is counted per part
//! ([`PartRange::ShardIdChunk`]`::orphans`) and reported per namespace.
//!
//! Without snapshot reads (config servers older than 5.0, or `--majority-reads`)
//! there is no one time for the chunk map and the shards' reads to agree on: the
//! catalog is read with `majority` before the shards and again after the last part,
//! and the snapshot is kept only if it did not change in between — then every
//! document was owned by the shard it was kept from during the whole read, and each
//! part's read window bounds what it may hold, as on a replica set. A change in
//! between (a chunk moved) fails the take: its parts are read again on `--resume`.
//! Every replica set is reached with the router URI's options and credentials,
//! hosts and set name replaced.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use mongodb::options::{ClientOptions, ServerAddress};
use mongodb::Client;
use tidemark_mongo::bson::{doc, Bson, Document, Timestamp};

use super::mongo::{command, discover, snapshot_time, MongoScan};
use super::shard_key::{ChunkMap, KeyPattern};
use crate::snapshot::model::{NamespaceInfo, PartInfo, PartRange, SnapshotRow};
use crate::snapshot::source::scrub;
use crate::store::OpTime;

/// Who owns a collection's documents at T.
enum Owner {
    /// Sharded: the chunk map.
    Sharded(ChunkMap),
    /// Unsharded: its database's primary shard holds all of it.
    Unsharded(String),
}

/// A connected sharded cluster and how to read it shard by shard.
pub struct ShardedScan {
    router: Client,
    config: MongoScan,
    /// Shard id → its replica set, read at T.
    shards: BTreeMap<String, MongoScan>,
    /// Namespace → owner at T.
    owners: BTreeMap<String, Owner>,
    /// Without one cluster time: the catalog as read before the shards, to be
    /// found unchanged after them ([`ShardedScan::check_catalog`]).
    catalog: Option<Vec<Vec<Document>>>,
}

/// The catalog collections ownership depends on.
const CATALOG: [&str; 3] = ["databases", "collections", "chunks"];

/// What [`connect`] found.
pub struct Plan {
    pub scan: ShardedScan,
    pub namespaces: Vec<NamespaceInfo>,
    pub parts: Vec<PartInfo>,
    /// `None` without snapshot reads.
    pub cluster_time: Option<OpTime>,
}

/// `setName/host1,host2` (or a bare host list) as driver options cloned from `base`.
fn set_options(base: &ClientOptions, conn: &str) -> Result<ClientOptions> {
    let (set, hosts) = match conn.split_once('/') {
        Some((set, hosts)) => (Some(set.to_string()), hosts),
        None => (None, conn),
    };
    let hosts = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| ServerAddress::parse(h).map_err(|e| anyhow!("bad host {h:?} in {conn:?}: {e}")))
        .collect::<Result<Vec<_>>>()?;
    if hosts.is_empty() {
        bail!("no hosts in {conn:?}");
    }
    let mut o = base.clone();
    o.hosts = hosts;
    o.repl_set_name = set;
    o.direct_connection = None;
    o.load_balanced = None;
    o.srv_service_name = None;
    o.srv_max_hosts = None;
    Ok(o)
}

/// Connects to a replica set of the cluster and checks it answers.
async fn connect_set(base: &ClientOptions, conn: &str, what: &str, uri: &str) -> Result<Client> {
    let client = Client::with_options(set_options(base, conn).with_context(|| what.to_string())?)
        .map_err(|e| anyhow!("{what} ({conn}): {}", scrub(e.to_string(), uri)))?;
    command(&client, "admin", doc! {"ping": 1})
        .await
        .map_err(|e| {
            anyhow!(
                "{what} ({conn}) cannot be reached: {}",
                scrub(format!("{e:#}"), uri)
            )
        })?;
    Ok(client)
}

/// Every document of a `config` collection at the scan's time (by `_id`, so two
/// reads compare).
async fn config_docs(config: &MongoScan, coll: &str) -> Result<Vec<Document>> {
    let mut out = Vec::new();
    let find = doc! {"find": coll, "filter": {}, "batchSize": 10_000};
    config
        .find_all("config", coll, find, &mut |batch| {
            out.extend(batch);
            Ok(())
        })
        .await
        .with_context(|| format!("reading config.{coll} on the config servers"))?;
    out.sort_by_key(|d| d.get("_id").map(ToString::to_string).unwrap_or_default());
    Ok(out)
}

fn ts_optime(t: Timestamp) -> OpTime {
    OpTime {
        ts: (u64::from(t.time) << 32) | u64::from(t.increment),
        t: -1,
    }
}

/// The owner of every selected namespace at T, from the config documents.
fn owners(
    found: &[(String, String, String)],
    databases: &[Document],
    collections: &[Document],
    chunks: &[Document],
) -> Result<BTreeMap<String, Owner>> {
    let mut out = BTreeMap::new();
    for (db, coll, _) in found {
        let ns = format!("{db}.{coll}");
        let entry = collections.iter().find(|c| {
            c.get_str("_id").ok() == Some(ns.as_str()) && !c.get_bool("dropped").unwrap_or(false)
        });
        let owner = match entry {
            Some(c) => {
                let key = c
                    .get_document("key")
                    .map_err(|_| anyhow!("config.collections {ns} has no key pattern"))?;
                let pattern = KeyPattern::parse(key).with_context(|| ns.clone())?;
                // 4.x keeps a chunk's namespace in `ns`, 5.0+ the collection's `uuid`
                let uuid = c.get("uuid");
                let mine: Vec<Document> = chunks
                    .iter()
                    .filter(|d| {
                        d.get_str("ns").ok() == Some(ns.as_str())
                            || (uuid.is_some() && d.get("uuid") == uuid)
                    })
                    .cloned()
                    .collect();
                Owner::Sharded(ChunkMap::new(&ns, pattern, &mine)?)
            }
            None => {
                let primary = databases
                    .iter()
                    .find(|d| d.get_str("_id").ok() == Some(db.as_str()))
                    .and_then(|d| d.get_str("primary").ok())
                    .ok_or_else(|| {
                        anyhow!("{ns} is unsharded but config.databases names no primary shard for {db}")
                    })?;
                Owner::Unsharded(primary.to_string())
            }
        };
        out.insert(ns, owner);
    }
    Ok(out)
}

/// Connects through the router at `uri`, fixes T, reads the catalog at T, connects
/// to every shard and plans one part per `_id` chunk of each shard's copy of each
/// collection. `resume`: the cluster time of the snapshot being resumed (its parts
/// stand; the catalog is read again at its time).
pub async fn connect(
    uri: &str,
    redacted: &str,
    (dbs, collections): (&[String], &[String]),
    resume: Option<Option<OpTime>>,
    majority: bool,
) -> Result<Plan> {
    let (router, hello, options) = super::mongo::connect_and_hello(uri, redacted).await?;
    if hello.get_str("msg").ok() != Some("isdbgrid") {
        bail!("--per-shard needs a sharded cluster's router (mongos): {redacted} is not one");
    }
    let map = command(&router, "admin", doc! {"getShardMap": 1})
        .await
        .context("asking the router for the config servers (getShardMap)")?;
    let config_conn = map
        .get_document("map")
        .ok()
        .and_then(|m| m.get_str("config").ok())
        .ok_or_else(|| anyhow!("getShardMap names no config servers: {map}"))?
        .to_string();
    let config_client = connect_set(&options, &config_conn, "the config servers", uri).await?;
    let at = match resume {
        Some(Some(t)) => Some(Timestamp {
            time: (t.ts >> 32) as u32,
            increment: t.ts as u32,
        }),
        Some(None) => None,
        None if majority => None,
        None => snapshot_time(&config_client, "config", "shards").await,
    };
    // the config servers' `$clusterTime` (at or past T), gossiped to the shards
    let gossip = match at {
        Some(_) => command(&config_client, "admin", doc! {"ping": 1})
            .await
            .ok()
            .and_then(|r| r.get_document("$clusterTime").ok().cloned())
            .and_then(|d| {
                tidemark_mongo::bson::deserialize_from_document::<mongodb::ClusterTime>(d).ok()
            }),
        None => None,
    };
    tracing::debug!(?at, ?gossip, "per-shard snapshot time");
    let config = MongoScan::new(config_client, at, None);
    let shard_docs = config_docs(&config, "shards").await?;
    let mut catalog = Vec::new();
    for coll in CATALOG {
        catalog.push(config_docs(&config, coll).await?);
    }
    let (databases, colls, chunks) = (&catalog[0], &catalog[1], &catalog[2]);
    // every shard first: one that cannot be reached is named as such
    let mut shards = BTreeMap::new();
    for s in &shard_docs {
        let (Ok(id), Ok(host)) = (s.get_str("_id"), s.get_str("host")) else {
            bail!("config.shards holds a shard without _id or host: {s}");
        };
        let client = connect_set(&options, host, &format!("shard {id}"), uri).await?;
        shards.insert(id.to_string(), MongoScan::new(client, at, gossip.clone()));
    }
    let found = discover(&router, dbs, collections).await?;
    let owners = owners(&found, databases, colls, chunks)?;
    for (ns, o) in &owners {
        let named: Vec<String> = match o {
            Owner::Sharded(m) => m.shards(),
            Owner::Unsharded(p) => vec![p.clone()],
        };
        if let Some(s) = named.iter().find(|s| !shards.contains_key(*s)) {
            bail!("{ns}: the chunk map names shard {s}, which config.shards does not list");
        }
    }
    let scan = ShardedScan {
        router,
        config,
        shards,
        owners,
        catalog: at.is_none().then_some(catalog),
    };

    let mut namespaces = Vec::new();
    let mut parts = Vec::new();
    for (db, coll, schema) in found {
        let ns = format!("{db}.{coll}");
        let (readers, schema): (Vec<String>, String) = match scan.owners.get(&ns) {
            // orphans may be on any shard, owned chunks or not: every shard is read
            Some(Owner::Sharded(m)) => {
                let mut v: serde_json::Value = serde_json::from_str(&schema)?;
                let key: Vec<serde_json::Value> = m
                    .pattern
                    .fields
                    .iter()
                    .map(|f| serde_json::json!({&f.path: if f.hashed { serde_json::json!("hashed") } else { serde_json::json!(1) }}))
                    .collect();
                v["shard_key"] = serde_json::Value::Array(key);
                (scan.shards.keys().cloned().collect(), v.to_string())
            }
            Some(Owner::Unsharded(p)) => (vec![p.clone()], schema),
            None => bail!("{ns}: no owner planned"),
        };
        if resume.is_none() {
            for shard in readers {
                let reader = &scan.shards[&shard];
                let ranges = reader
                    .chunks(&db, &coll)
                    .await
                    .with_context(|| format!("planning {ns} on shard {shard}"))?;
                for r in ranges {
                    let PartRange::IdChunk { from, to } = r else {
                        continue;
                    };
                    parts.push(PartInfo {
                        namespace: ns.clone(),
                        range: PartRange::ShardIdChunk {
                            shard: shard.clone(),
                            from,
                            to,
                            orphans: 0,
                        },
                        read_start: 0,
                        read_end: None,
                        rows: 0,
                    });
                }
            }
        }
        namespaces.push(NamespaceInfo {
            name: ns,
            schema,
            rows: 0,
            bytes: 0,
        });
    }
    Ok(Plan {
        scan,
        namespaces,
        parts,
        cluster_time: at.map(ts_optime),
    })
}

impl ShardedScan {
    /// Ends every client's sessions and connections.
    pub async fn close(self) {
        self.router.shutdown().await;
        self.config.close().await;
        for (_, s) in self.shards {
            s.close().await;
        }
    }

    /// Without one cluster time: `Err` if the catalog changed since it was read
    /// before the shards (a chunk moved while they were read, so a document may
    /// have been kept on two shards or on none). With one, nothing to check.
    pub async fn check_catalog(&self) -> Result<()> {
        let Some(before) = &self.catalog else {
            return Ok(());
        };
        for (coll, then) in CATALOG.iter().zip(before) {
            if config_docs(&self.config, coll).await? != *then {
                bail!("config.{coll} changed while the shards were read without one cluster time (no snapshot reads): a chunk moved, so a document may have been read on two shards or none; the parts are read again with --resume (stop the balancer, or use servers with snapshot reads)");
            }
        }
        Ok(())
    }

    /// Reads part `index` from its shard, keeping what the shard owns at T;
    /// (kept, orphans left out).
    pub async fn scan(
        &self,
        index: u32,
        part: &PartInfo,
        sink: &mut (dyn FnMut(Vec<SnapshotRow>) -> Result<()> + Send),
    ) -> Result<(u64, u64)> {
        let PartRange::ShardIdChunk {
            shard, from, to, ..
        } = &part.range
        else {
            bail!("part {index} is not a shard's _id chunk");
        };
        let ns = &part.namespace;
        let reader = self
            .shards
            .get(shard)
            .ok_or_else(|| anyhow!("part {index}: shard {shard} is not in config.shards"))?;
        let owner = self
            .owners
            .get(ns)
            .ok_or_else(|| anyhow!("part {index}: {ns} is not in the plan"))?;
        let keep = |d: &Document| -> Result<bool> {
            match owner {
                Owner::Sharded(m) => Ok(m.owner(d).with_context(|| {
                    format!(
                        "{ns}: the shard key of _id {}",
                        d.get("_id").unwrap_or(&Bson::Null)
                    )
                })? == shard),
                Owner::Unsharded(p) => Ok(p == shard),
            }
        };
        reader
            .scan_range(index, ns, (from, to), &keep, sink)
            .await
            .with_context(|| format!("reading {ns} on shard {shard}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn set_options_take_the_set_name_and_hosts() {
        let base = ClientOptions::parse("mongodb://u:p@router:27017/?tls=false")
            .await
            .unwrap();
        let o = set_options(&base, "rs0/a:1,b:2").unwrap();
        assert_eq!(o.repl_set_name.as_deref(), Some("rs0"));
        assert_eq!(o.hosts.len(), 2);
        assert_eq!(o.credential, base.credential);
        assert!(set_options(&base, "rs0/").is_err());
    }

    #[test]
    fn unsharded_collections_need_their_primary_shard() {
        let found = vec![("d".into(), "u".into(), "{}".into())];
        let e = owners(&found, &[], &[], &[]).err().unwrap().to_string();
        assert!(e.contains("primary shard"), "{e}");
        let dbs = vec![doc! {"_id": "d", "primary": "shard1"}];
        let o = owners(&found, &dbs, &[], &[]).unwrap();
        assert!(matches!(o.get("d.u"), Some(Owner::Unsharded(p)) if p == "shard1"));
    }
}
