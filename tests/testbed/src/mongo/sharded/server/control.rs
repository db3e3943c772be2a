//! The sharded cluster's control routes (JSON over HTTP through
//! [`crate::control`]): ground truth, the balancer and range deleter
//! settings, chunk operations, and each replica set's own routes.
//!
//! | method | path | does |
//! |---|---|---|
//! | GET | `/shards` | shard ids, hosts, primaries, commit points |
//! | GET | `/routers` | addresses, config refreshes, StaleConfig retries |
//! | GET | `/chunks` | the current chunk map of every sharded collection |
//! | GET | `/chunk-map-history` | every committed chunk-map change with its config optime |
//! | GET | `/logical-state` | namespace → documents (owned per the current chunk map) |
//! | POST | `/logical-state` | the same as of `{"wall_ms": n}` (majority-committed entries, chunk map then) |
//! | GET | `/shards/{id}/raw-state` | the shard primary's documents, orphans included |
//! | POST | `/shards/{id}/raw-state` | the same as of `{"wall_ms": n}` (majority-committed entries) |
//! | GET | `/orphans` | documents on a shard that does not own them |
//! | GET | `/migrations`, `/range-deletions` | finished migrations, range deletions |
//! | GET | `/commit-points` | each shard's and the config servers' majority commit point |
//! | GET | `/truth` | all of the above in one document |
//! | POST | `/balancer` | `{"enabled": bool, "mode": "even"/"continuous", "interval_ms": n}` |
//! | POST | `/range-deleter` | `{"delay_ms": n}` |
//! | POST | `/migration-pacing` | `{"clone_batch_docs": n, "clone_batch_pause_ms": n}` |
//! | POST | `/move-chunk` | `{"ns", "find": {k: v}, "to"}` (moves the chunk holding the key) |
//! | POST | `/split` | `{"ns", "middle": v}` (a key-space point; hashed keys: the hash) |
//! | any | `/shards/{id}/rs/...`, `/config/rs/...` | that replica set's routes (see `mongo::server::control`) |

use super::cluster::MongoShardedCluster;
use crate::mongo::server::control::{doc_json, handle as set_handle, optime_json, Refusal};
use crate::mongo::sharded::chunks::RoutingTable;
use crate::mongo::sharded::config::ChunkMapChange;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tidemark_mongo::bson::{Bson, Document};

fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

fn bson_json(v: &Bson) -> Value {
    let mut d = Document::new();
    d.insert("v", v.clone());
    doc_json(&d).get("v").cloned().unwrap_or(Value::Null)
}

fn json_bson(v: &Value) -> Result<Bson, Refusal> {
    let d: Value = json!({ "v": v });
    let b = Bson::try_from(d).map_err(|e| refuse(400, format!("not extended JSON: {e}")))?;
    match b {
        Bson::Document(d) => d.get("v").cloned().ok_or_else(|| refuse(400, "no value")),
        _ => Err(refuse(400, "not a document")),
    }
}

pub fn table_json(t: &RoutingTable) -> Value {
    json!({
        "ns": t.ns,
        "key": doc_json(&t.key.to_doc()),
        "epoch": t.epoch.to_hex(),
        "chunks": t.chunks.iter().map(|c| json!({
            "min": bson_json(&c.min), "max": bson_json(&c.max), "shard": c.shard,
            "version": [c.version.0, c.version.1],
        })).collect::<Vec<_>>(),
    })
}

fn change_json(c: &ChunkMapChange) -> Value {
    json!({ "ns": c.ns, "what": c.what, "optime": optime_json(c.optime), "wall_ms": c.wall_millis, "config_wall_ms": c.config_wall_millis, "table": table_json(&c.table) })
}

fn state_json(s: &BTreeMap<String, Vec<Document>>) -> Value {
    Value::Object(
        s.iter()
            .map(|(ns, docs)| {
                (
                    ns.clone(),
                    Value::Array(docs.iter().map(doc_json).collect()),
                )
            })
            .collect(),
    )
}

fn shards_json(c: &MongoShardedCluster) -> Value {
    let points = c.commit_points();
    Value::Array(
        c.shards()
            .iter()
            .zip(points)
            .map(|(s, (_, cp))| {
                json!({
                    "id": s.id, "set_name": s.set.shared().config.set_name,
                    "hosts": s.set.shared().hosts(), "primary": s.set.primary(),
                    "commit_point": optime_json(cp),
                })
            })
            .collect(),
    )
}

/// Everything in one document.
pub fn truth_json(c: &MongoShardedCluster) -> Value {
    let tables: Vec<Value> = c
        .inner
        .config
        .catalog()
        .tables
        .values()
        .map(table_json)
        .collect();
    json!({
        "shards": shards_json(c),
        "routers": routers_json(c),
        "chunks": tables,
        "chunk_map_history": c.chunk_map_history().iter().map(change_json).collect::<Vec<_>>(),
        "logical_state": state_json(&c.logical_state()),
        "raw_state": c.shards().iter().map(|s| (s.id.clone(), state_json(&c.shard_raw_state(&s.id)))).collect::<serde_json::Map<_, _>>(),
        "migrations": migrations_json(c),
        "range_deletions": range_deletions_json(c),
        "config_commit_point": optime_json(c.config_commit_point()),
    })
}

fn routers_json(c: &MongoShardedCluster) -> Value {
    Value::Array(
        c.routers
            .iter()
            .zip(c.router_counters())
            .map(|(r, (refreshes, stale))| json!({ "addr": r.addr.to_string(), "refreshes": refreshes, "stale_retries": stale }))
            .collect(),
    )
}

fn migrations_json(c: &MongoShardedCluster) -> Value {
    Value::Array(
        c.migrations()
            .iter()
            .map(|m| {
                json!({
                    "ns": m.ns, "min": bson_json(&m.min), "max": bson_json(&m.max), "from": m.from, "to": m.to,
                    "cloned": m.cloned, "transferred": m.transferred, "commit_optime": optime_json(m.commit_optime),
                    "started_ms": m.started_millis, "committed_ms": m.committed_millis,
                })
            })
            .collect(),
    )
}

fn range_deletions_json(c: &MongoShardedCluster) -> Value {
    Value::Array(
        c.range_deletions()
            .iter()
            .map(|r| json!({ "ns": r.ns, "shard": r.shard, "min": bson_json(&r.min), "max": bson_json(&r.max), "due_ms": r.due_millis, "deleted": r.deleted }))
            .collect(),
    )
}

/// Routes one request.
pub async fn handle(
    c: Arc<MongoShardedCluster>,
    method: &str,
    path: &str,
    body: Value,
) -> Result<Value, Refusal> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["shards"]) => Ok(shards_json(&c)),
        ("GET", ["routers"]) => Ok(routers_json(&c)),
        ("GET", ["chunks"]) => Ok(Value::Array(
            c.inner
                .config
                .catalog()
                .tables
                .values()
                .map(table_json)
                .collect(),
        )),
        ("GET", ["chunk-map-history"]) => Ok(Value::Array(
            c.chunk_map_history().iter().map(change_json).collect(),
        )),
        ("GET", ["logical-state"]) => Ok(state_json(&c.logical_state())),
        ("POST", ["shards", id, "raw-state"]) => {
            let ms = body
                .get("wall_ms")
                .and_then(Value::as_i64)
                .ok_or_else(|| refuse(400, "body must be {\"wall_ms\": n}"))?;
            c.inner.shard(id).map_err(|e| refuse(404, e))?;
            c.shard_state_at_wall(id, ms)
                .map(|s| state_json(&s))
                .map_err(|e| refuse(409, e))
        }
        ("GET", ["shards", id, "raw-state"]) => {
            c.inner.shard(id).map_err(|e| refuse(404, e))?;
            Ok(state_json(&c.shard_raw_state(id)))
        }
        ("GET", ["orphans"]) => {
            let nss: Vec<String> = c.inner.config.catalog().tables.keys().cloned().collect();
            Ok(Value::Array(
                nss.iter()
                    .flat_map(|ns| {
                        c.orphans(ns)
                            .into_iter()
                            .map(move |(s, d)| json!({ "ns": ns, "shard": s, "doc": doc_json(&d) }))
                    })
                    .collect(),
            ))
        }
        ("GET", ["migrations"]) => Ok(migrations_json(&c)),
        ("GET", ["range-deletions"]) => Ok(range_deletions_json(&c)),
        ("GET", ["commit-points"]) => Ok(json!({
            "shards": c.commit_points().iter().map(|(s, t)| json!({ "shard": s, "commit_point": optime_json(*t) })).collect::<Vec<_>>(),
            "config": optime_json(c.config_commit_point()),
        })),
        ("GET", ["truth"]) => Ok(truth_json(&c)),
        ("POST", ["logical-state"]) => {
            let ms = body
                .get("wall_ms")
                .and_then(Value::as_i64)
                .ok_or_else(|| refuse(400, "body must be {\"wall_ms\": n}"))?;
            c.logical_state_at_wall(ms)
                .map(|s| state_json(&s))
                .map_err(|e| refuse(409, e))
        }
        ("POST", ["balancer"]) => {
            let mode = match body.get("mode").and_then(Value::as_str) {
                None => None,
                Some(m) => Some(
                    crate::mongo::sharded::balancer::BalancerMode::parse(m).ok_or_else(|| {
                        refuse(400, format!("no balancer mode {m:?} (even, continuous)"))
                    })?,
                ),
            };
            let on = body.get("enabled").and_then(Value::as_bool).unwrap_or(true);
            let interval = body
                .get("interval_ms")
                .and_then(Value::as_u64)
                .map(Duration::from_millis);
            c.set_balancer(on, mode, interval);
            let s = c.inner.settings();
            Ok(
                json!({ "enabled": s.balancer, "mode": s.balancer_mode.name(), "interval_ms": s.balancer_interval.as_millis() as u64 }),
            )
        }
        ("POST", ["range-deleter"]) => {
            let ms = body
                .get("delay_ms")
                .and_then(Value::as_u64)
                .ok_or_else(|| refuse(400, "body must be {\"delay_ms\": n}"))?;
            c.set_range_deleter_delay(Duration::from_millis(ms));
            Ok(json!({ "delay_ms": ms }))
        }
        ("POST", ["migration-pacing"]) => {
            let docs = body
                .get("clone_batch_docs")
                .and_then(Value::as_u64)
                .unwrap_or(1000);
            let pause = body
                .get("clone_batch_pause_ms")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            c.set_clone_pacing(docs as usize, Duration::from_millis(pause));
            Ok(json!({ "clone_batch_docs": docs, "clone_batch_pause_ms": pause }))
        }
        ("POST", ["move-chunk"]) => {
            let ns = body
                .get("ns")
                .and_then(Value::as_str)
                .ok_or_else(|| refuse(400, "needs ns"))?;
            let to = body
                .get("to")
                .and_then(Value::as_str)
                .ok_or_else(|| refuse(400, "needs to"))?;
            let find = body.get("find").ok_or_else(|| refuse(400, "needs find"))?;
            let Bson::Document(find) = json_bson(find)? else {
                return Err(refuse(400, "find must be an object"));
            };
            let table = c
                .inner
                .config
                .catalog()
                .tables
                .get(ns)
                .cloned()
                .ok_or_else(|| refuse(404, format!("{ns} is not sharded")))?;
            let point = table.key.point_of(&find);
            let r = crate::mongo::sharded::migration::move_chunk(&c.inner, ns, &point, to)
                .await
                .map_err(|e| refuse(409, e))?;
            Ok(
                json!({ "from": r.from, "to": r.to, "cloned": r.cloned, "transferred": r.transferred, "commit_optime": optime_json(r.commit_optime) }),
            )
        }
        ("POST", ["split"]) => {
            let ns = body
                .get("ns")
                .and_then(Value::as_str)
                .ok_or_else(|| refuse(400, "needs ns"))?;
            let middle = json_bson(
                body.get("middle")
                    .ok_or_else(|| refuse(400, "needs middle"))?,
            )?;
            c.inner
                .config
                .commit(ns, "split", |t| t.split(&middle))
                .await
                .map_err(|e| refuse(409, e))?;
            Ok(json!({ "ok": true }))
        }
        (_, ["shards", id, "rs", rest @ ..]) => {
            let set = c.inner.shard(id).map_err(|e| refuse(404, e))?.set.clone();
            set_handle(set, method, &rest.join("/"), body).await
        }
        (_, ["config", "rs", rest @ ..]) => {
            set_handle(c.inner.config.set.clone(), method, &rest.join("/"), body).await
        }
        _ => Err(refuse(404, format!("no route {method} {path}"))),
    }
}

/// The routes as a [`crate::control::ControlHandler`].
pub fn handler(c: Arc<MongoShardedCluster>) -> crate::control::ControlHandler {
    Arc::new(move |req: crate::control::ControlRequest| {
        let c = c.clone();
        Box::pin(async move {
            handle(c, &req.method, &req.path, req.body)
                .await
                .map_err(|r| crate::control::ControlError::new(r.status, r.message))
        })
    })
}
