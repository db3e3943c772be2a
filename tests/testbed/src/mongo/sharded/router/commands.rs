//! The router's commands: the handshake (`hello` with `msg: "isdbgrid"`),
//! sharding administration (`enableSharding`, `shardCollection`, `split`,
//! `moveChunk`, `balancerStart`/`Stop`/`Status`, `listShards`,
//! `flushRouterConfig`), DDL broadcast to the shards, and reads gathered
//! from the shards that own the data (each shard's answer kept to the
//! documents the chunk map gives it, then filtered, sorted, projected and
//! cut by the testbed's own read code), with router cursors.

use super::conn::RouterConn;
use super::{is_stale, Router};
use crate::mongo::commands::cursor::{int_arg, DEFAULT_FIRST_BATCH};
use crate::mongo::commands::find;
use crate::mongo::errors::error;
use crate::mongo::repl::hello;
use crate::mongo::sharded::chunks::{
    shard_version_doc, unsharded_version_doc, RoutingTable, ShardKey,
};
use crate::mongo::sharded::client::is_ok;
use crate::mongo::sharded::config::first_batch;
use crate::mongo::sharded::migration::move_chunk;
use crate::mongo::storage::store::MemberStore;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tidemark_mongo::bson::spec::BinarySubtype;
use tidemark_mongo::bson::{doc, Binary, Bson, DateTime, Document, Timestamp};

/// Retries after StaleConfig before giving up.
pub const STALE_RETRIES: usize = 10;

pub async fn run(router: &Arc<Router>, st: &mut RouterConn, db: &str, cmd: Document) -> Document {
    let name = cmd.keys().next().cloned().unwrap_or_default();
    let mut reply = match name.as_str() {
        "commitTransaction" => super::txn::commit(router, &cmd).await,
        "abortTransaction" => super::txn::abort(router, &cmd).await,
        _ => dispatch(router, st, db, &name, &cmd).await,
    };
    stamp(&mut reply);
    reply
}

/// `$clusterTime`/`operationTime`: the router's wall clock (unsigned).
fn stamp(reply: &mut Document) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    let ts = Timestamp {
        time: secs,
        increment: 1,
    };
    let hash = Binary {
        subtype: BinarySubtype::Generic,
        bytes: vec![0; 20],
    };
    if !reply.contains_key("$clusterTime") {
        reply.insert(
            "$clusterTime",
            doc! { "clusterTime": ts, "signature": { "hash": hash, "keyId": 0i64 } },
        );
    }
    if !reply.contains_key("operationTime") {
        reply.insert("operationTime", ts);
    }
}

fn hello_reply(st: &RouterConn, legacy: bool) -> Document {
    doc! {
        (if legacy { "ismaster" } else { "isWritablePrimary" }): true,
        "msg": "isdbgrid",
        "maxBsonObjectSize": hello::MAX_BSON_OBJECT_SIZE,
        "maxMessageSizeBytes": hello::MAX_MESSAGE_SIZE_BYTES,
        "maxWriteBatchSize": hello::MAX_WRITE_BATCH_SIZE,
        "localTime": DateTime::now(),
        "logicalSessionTimeoutMinutes": hello::LOGICAL_SESSION_TIMEOUT_MINUTES,
        "connectionId": st.connection_id,
        "minWireVersion": hello::MIN_WIRE_VERSION,
        "maxWireVersion": hello::MAX_WIRE_VERSION,
        "readOnly": false,
        "helloOk": true,
        "ok": 1.0,
    }
}

fn ok_or(r: Result<Document, String>) -> Document {
    r.unwrap_or_else(|e| error(2, "BadValue", &e))
}

async fn dispatch(
    router: &Arc<Router>,
    st: &mut RouterConn,
    db: &str,
    name: &str,
    cmd: &Document,
) -> Document {
    let cluster = &router.cluster;
    match name {
        "hello" | "isMaster" | "ismaster" => hello_reply(st, name != "hello"),
        "ping" => doc! { "ok": 1.0 },
        "buildInfo" | "buildinfo" => doc! {
            "version": "6.0.0-tidemark-testbed",
            "versionArray": [6, 0, 0, 0],
            "gitVersion": "tidemark-testbed",
            "bits": 64,
            "maxBsonObjectSize": hello::MAX_BSON_OBJECT_SIZE,
            "ok": 1.0,
        },
        "endSessions" | "refreshSessions" => doc! { "ok": 1.0 },
        "listShards" => {
            let docs: Vec<Bson> = cluster
                .shards
                .iter()
                .map(|s| {
                    let sh = s.set.shared();
                    Bson::Document(doc! { "_id": s.id.clone(), "host": format!("{}/{}", sh.config.set_name, sh.hosts().join(",")), "state": 1 })
                })
                .collect();
            doc! { "shards": docs, "ok": 1.0 }
        }
        // MongoDB's `getShardMap`: every shard's and the config servers'
        // connection strings (`map`), as a backup tool finds the config servers
        "getShardMap" => {
            let conn = |set: &crate::mongo::MongoReplicaSet| {
                let sh = set.shared();
                format!("{}/{}", sh.config.set_name, sh.hosts().join(","))
            };
            let mut map = Document::new();
            let mut hosts = Document::new();
            let mut conn_strings = Document::new();
            let sets = cluster
                .shards
                .iter()
                .map(|s| (s.id.clone(), &s.set))
                .chain(std::iter::once(("config".to_string(), &cluster.config.set)));
            for (id, set) in sets {
                let c = conn(set);
                for h in set.shared().hosts() {
                    hosts.insert(h, id.clone());
                }
                conn_strings.insert(c.clone(), id.clone());
                map.insert(id, c);
            }
            doc! { "map": map, "hosts": hosts, "connStrings": conn_strings, "ok": 1.0 }
        }
        "enableSharding" | "enablesharding" => {
            let target = cmd.get_str(name).unwrap_or_default().to_string();
            ok_or(
                cluster
                    .config
                    .enable_sharding(&target)
                    .await
                    .map(|_| doc! { "ok": 1.0 }),
            )
        }
        "shardCollection" | "shardcollection" => ok_or(shard_collection(router, name, cmd).await),
        "split" => ok_or(split(router, cmd).await),
        "moveChunk" | "movechunk" => ok_or(move_chunk_cmd(router, name, cmd).await),
        "balancerStart" | "balancerStop" => {
            cluster.update_settings(|s| s.balancer = name == "balancerStart");
            doc! { "ok": 1.0 }
        }
        "balancerStatus" => {
            let s = cluster.settings();
            doc! { "mode": if s.balancer { "full" } else { "off" }, "inBalancerRound": false, "numBalancerRounds": cluster.balancer_rounds.load(Ordering::Relaxed) as i64, "ok": 1.0 }
        }
        "flushRouterConfig" => {
            router.flush();
            doc! { "flushed": true, "ok": 1.0 }
        }
        "getMore" => get_more(router, cmd),
        "killCursors" => {
            let ids = cmd.get_array("cursors").cloned().unwrap_or_default();
            let mut cursors = router.cursors.lock().unwrap_or_else(|e| e.into_inner());
            let (killed, not_found): (Vec<Bson>, Vec<Bson>) = ids
                .into_iter()
                .partition(|id| matches!(id, Bson::Int64(i) if cursors.remove(i).is_some()));
            doc! { "cursorsKilled": killed, "cursorsNotFound": not_found, "cursorsAlive": [], "cursorsUnknown": [], "ok": 1.0 }
        }
        "find" | "count" | "distinct" | "aggregate" => ok_or(read(router, db, name, cmd).await),
        "insert" | "update" | "delete" => super::write::write(router, db, name, cmd).await,
        "findAndModify" | "findandmodify" => {
            super::write::find_and_modify(router, db, name, cmd).await
        }
        "listDatabases" => ok_or(list_databases(router, cmd).await),
        "listCollections" | "listIndexes" => {
            let primary = cluster.config.catalog().primary_shard(db);
            ok_or(router.shard_command(&primary, forward(cmd, db)).await)
        }
        "create" | "drop" | "createIndexes" | "dropIndexes" | "deleteIndexes" | "dropDatabase" => {
            ok_or(broadcast(router, db, cmd).await)
        }
        _ => error(59, "CommandNotFound", &format!("no such command: '{name}'")),
    }
}

/// `cmd` as sent on to a shard: without the client-only fields.
pub fn forward(cmd: &Document, db: &str) -> Document {
    let mut out = cmd.clone();
    for k in [
        "$db",
        "$clusterTime",
        "$readPreference",
        "readConcern",
        "lsid",
        "txnNumber",
        "$query",
    ] {
        out.remove(k);
    }
    out.insert("$db", db);
    out
}

/// Sends a DDL command to every shard; the first failure, else the first reply.
async fn broadcast(router: &Router, db: &str, cmd: &Document) -> Result<Document, String> {
    let mut first = None;
    for s in &router.cluster.shards {
        let r = router.shard_command(&s.id, forward(cmd, db)).await?;
        let ignorable = r.get_i32("code").ok() == Some(26); // NamespaceNotFound on a shard without it
        if !is_ok(&r) && !ignorable {
            return Ok(r);
        }
        first.get_or_insert(r);
    }
    Ok(first.unwrap_or_else(|| doc! { "ok": 1.0 }))
}

async fn list_databases(router: &Router, cmd: &Document) -> Result<Document, String> {
    let mut names: Vec<String> = Vec::new();
    for s in &router.cluster.shards {
        let r = router.shard_command(&s.id, forward(cmd, "admin")).await?;
        for d in r
            .get_array("databases")
            .into_iter()
            .flatten()
            .filter_map(Bson::as_document)
        {
            if let Ok(n) = d.get_str("name") {
                if !names.iter().any(|x| x == n) {
                    names.push(n.to_string());
                }
            }
        }
    }
    let dbs: Vec<Bson> = names
        .into_iter()
        .map(|n| Bson::Document(doc! { "name": n, "sizeOnDisk": 0i64, "empty": false }))
        .collect();
    Ok(doc! { "databases": dbs, "totalSize": 0i64, "ok": 1.0 })
}

async fn shard_collection(router: &Router, name: &str, cmd: &Document) -> Result<Document, String> {
    let ns = cmd
        .get_str(name)
        .map_err(|_| "shardCollection needs a namespace")?;
    let key = ShardKey::parse(
        cmd.get_document("key")
            .map_err(|_| "shardCollection needs a key")?,
    )?;
    let db = ns.split('.').next().unwrap_or_default();
    if !router.cluster.config.catalog().databases.contains_key(db) {
        router.cluster.config.enable_sharding(db).await?;
    }
    router.cluster.config.shard_collection(ns, key).await?;
    // the collection exists on every shard that owns a chunk of it
    let (coll_db, coll) = ns.split_once('.').unwrap_or((ns, ""));
    if let Some(t) = router.refresh(ns).await? {
        for s in t.shards() {
            let r = router
                .shard_command(&s, doc! { "create": coll, "$db": coll_db })
                .await?;
            if !is_ok(&r) && r.get_i32("code").ok() != Some(48) {
                return Err(format!("creating {ns} on {s}: {r}"));
            }
        }
    }
    Ok(doc! { "collectionsharded": ns, "ok": 1.0 })
}

fn table_of(router: &Router, ns: &str) -> Result<RoutingTable, String> {
    router
        .cluster
        .config
        .catalog()
        .tables
        .get(ns)
        .cloned()
        .ok_or_else(|| format!("{ns} is not sharded"))
}

/// `split` with `middle: {k: point}` (for a hashed key, the hashed value).
async fn split(router: &Router, cmd: &Document) -> Result<Document, String> {
    let ns = cmd
        .get_str("split")
        .map_err(|_| "split needs a namespace")?;
    let table = table_of(router, ns)?;
    let middle = cmd
        .get_document("middle")
        .map_err(|_| "the testbed's split needs middle")?
        .get(&table.key.field)
        .cloned()
        .ok_or("middle lacks the shard key")?;
    router
        .cluster
        .config
        .commit(ns, "split", |t| t.split(&middle))
        .await?;
    router.refresh(ns).await?;
    Ok(doc! { "ok": 1.0 })
}

/// `moveChunk` with `find: {k: v}` (a shard-key value) or `bounds: [{k: min}, {k: max}]`.
async fn move_chunk_cmd(router: &Router, name: &str, cmd: &Document) -> Result<Document, String> {
    let ns = cmd
        .get_str(name)
        .map_err(|_| "moveChunk needs a namespace")?;
    let to = cmd.get_str("to").map_err(|_| "moveChunk needs to")?;
    let table = table_of(router, ns)?;
    let point = if let Ok(f) = cmd.get_document("find") {
        table.key.point_of(f)
    } else if let Ok(b) = cmd.get_array("bounds") {
        b.first()
            .and_then(Bson::as_document)
            .and_then(|d| d.get(&table.key.field))
            .cloned()
            .ok_or("bounds lack the shard key")?
    } else {
        return Err("moveChunk needs find or bounds".into());
    };
    let r = move_chunk(&router.cluster, ns, &point, to).await?;
    router.refresh(ns).await?;
    Ok(doc! { "millis": r.committed_millis - r.started_millis, "ok": 1.0 })
}

/// Every document of `ns` on shard `id`, with the router's `shardVersion`.
async fn shard_docs(
    router: &Router,
    id: &str,
    db: &str,
    coll: &str,
    filter: &Document,
    sv: Document,
    client: &Document,
) -> Result<Result<Vec<Document>, Document>, String> {
    let mut find = doc! { "find": coll, "filter": filter.clone(), "batchSize": i32::MAX, "shardVersion": sv, "$db": db };
    find.extend(router.txn_fields(client, id));
    let mut reply = router.shard_command(id, find).await?;
    let mut out = Vec::new();
    for _ in 0..100_000 {
        if !is_ok(&reply) {
            return Ok(Err(reply));
        }
        out.extend(first_batch(reply.clone())?);
        let id_ = reply
            .get_document("cursor")
            .ok()
            .and_then(|c| c.get_i64("id").ok())
            .unwrap_or(0);
        if id_ == 0 {
            return Ok(Ok(out));
        }
        reply = router
            .shard_command(id, doc! { "getMore": id_, "collection": coll, "$db": db })
            .await?;
    }
    Err("shard cursor did not end".into())
}

/// The filter a read command restricts documents by, for targeting.
fn read_filter(name: &str, cmd: &Document) -> Document {
    match name {
        "find" => cmd.get_document("filter").cloned().unwrap_or_default(),
        "count" | "distinct" => cmd.get_document("query").cloned().unwrap_or_default(),
        _ => cmd
            .get_array("pipeline")
            .ok()
            .and_then(|p| p.first())
            .and_then(Bson::as_document)
            .and_then(|s| s.get_document("$match").ok())
            .cloned()
            .unwrap_or_default(),
    }
}

/// Documents of `ns` matching `filter`, from the shards that own them
/// (inside the client's transaction when `client`, its command, is part of one).
pub async fn gather(
    router: &Router,
    db: &str,
    coll: &str,
    filter: &Document,
    client: &Document,
) -> Result<Result<Vec<Document>, Document>, String> {
    let ns = format!("{db}.{coll}");
    for _ in 0..STALE_RETRIES {
        let table = router.table(&ns).await?;
        let targets: Vec<String> = match &table {
            None => vec![router.cluster.config.catalog().primary_shard(db)],
            Some(t) => match t
                .key
                .point_of_filter(filter)
                .and_then(|p| t.owner(&p).map(str::to_string))
            {
                Some(owner) => vec![owner],
                None => router.cluster.shards.iter().map(|s| s.id.clone()).collect(),
            },
        };
        let mut docs = Vec::new();
        let mut stale = false;
        for id in &targets {
            let sv = table
                .as_ref()
                .map_or_else(unsharded_version_doc, |t| shard_version_doc(t, id));
            match shard_docs(router, id, db, coll, filter, sv, client).await? {
                Ok(d) => docs.extend(d.into_iter().filter(|d| {
                    table
                        .as_ref()
                        .is_none_or(|t| t.owner_of_doc(d) == Some(id.as_str()))
                })),
                Err(r) if is_stale(&r) => {
                    stale = true;
                    break;
                }
                Err(r) => return Ok(Err(r)),
            }
        }
        if !stale {
            return Ok(Ok(docs));
        }
        if super::txn::in_txn(client) {
            router.refresh(&ns).await?;
            return Ok(Err(super::txn::stale_in_txn()));
        }
        router.stale_retries.fetch_add(1, Ordering::Relaxed);
        router.refresh(&ns).await?;
    }
    Err(format!("{ns}: still stale after {STALE_RETRIES} refreshes"))
}

async fn read(router: &Router, db: &str, name: &str, cmd: &Document) -> Result<Document, String> {
    let coll = match cmd.get(name) {
        Some(Bson::String(c)) => c.clone(),
        _ => {
            return Ok(error(
                73,
                "InvalidNamespace",
                "read needs a collection name",
            ))
        }
    };
    let filter = read_filter(name, cmd);
    let docs = match gather(router, db, &coll, &filter, cmd).await? {
        Ok(d) => d,
        Err(reply) => return Ok(reply),
    };
    let ns = format!("{db}.{coll}");
    let mut view = MemberStore::default();
    let c = view.collection_mut(&ns);
    for d in docs {
        let _ = c.insert(d);
    }
    Ok(match find::read(db, name, cmd, &view) {
        find::ReadOutcome::Reply(r) => r,
        find::ReadOutcome::Cursor {
            ns,
            docs,
            batch_size,
            single_batch,
        } => open_cursor(router, &ns, docs, batch_size, single_batch),
    })
}

fn open_cursor(
    router: &Router,
    ns: &str,
    docs: Vec<Document>,
    batch_size: Option<i64>,
    single_batch: bool,
) -> Document {
    let mut rest: VecDeque<Document> = docs.into();
    let n = batch_size.map_or(DEFAULT_FIRST_BATCH, |n| n.max(0) as usize);
    let first: Vec<Bson> = (0..n)
        .map_while(|_| rest.pop_front().map(Bson::Document))
        .collect();
    let id = if rest.is_empty() || single_batch {
        0
    } else {
        let id = router.next_cursor_id();
        router
            .cursors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                id,
                super::RouterCursor {
                    ns: ns.to_string(),
                    rest,
                },
            );
        id
    };
    doc! { "cursor": { "firstBatch": first, "id": id, "ns": ns }, "ok": 1.0 }
}

fn get_more(router: &Router, cmd: &Document) -> Document {
    let Ok(id) = cmd.get_i64("getMore") else {
        return error(9, "FailedToParse", "getMore needs a cursor id");
    };
    let n = int_arg(cmd, "batchSize")
        .filter(|n| *n > 0)
        .map_or(usize::MAX, |n| n as usize);
    let mut cursors = router.cursors.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = cursors.get_mut(&id) else {
        return error(43, "CursorNotFound", &format!("cursor id {id} not found"));
    };
    let batch: Vec<Bson> = (0..n)
        .map_while(|_| c.rest.pop_front().map(Bson::Document))
        .collect();
    let ns = c.ns.clone();
    let next = if c.rest.is_empty() {
        cursors.remove(&id);
        0
    } else {
        id
    };
    doc! { "cursor": { "nextBatch": batch, "id": next, "ns": ns }, "ok": 1.0 }
}
