//! Routed writes. Each statement is targeted by its shard key — an insert
//! by its document, an update/delete by an equality on the shard key in its
//! filter; one without it goes to every shard (`multi`), or, a single
//! update/delete, to the shard where the router first finds a matching
//! document it owns (MongoDB 7's "write without shard key"; there a
//! two-phase protocol, here a routed read then the write, not atomic
//! between the two: a write that loses the race matches nothing). Statements are sent in per-shard batches: an ordered
//! command as consecutive runs for the same shard, stopping at the first
//! error; an unordered one grouped by shard. Each batch carries the
//! client's `writeConcern`, `lsid`, `txnNumber`, the statements' own
//! `stmtIds` and the router's `shardVersion`; the shards' `n`,
//! `nModified`, `upserted` and `writeErrors` are merged with indexes mapped
//! back to the client's. A StaleConfig reply makes the router refresh and
//! re-target the batch's statements.

use super::commands::{forward, STALE_RETRIES};
use super::{is_stale, Router};
use crate::mongo::errors::error;
use crate::mongo::sharded::chunks::{shard_version_doc, unsharded_version_doc, RoutingTable};
use crate::mongo::sharded::client::is_ok;
use crate::mongo::storage::session::stmt_id;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tidemark_mongo::bson::{doc, Bson, Document};

/// Where one statement goes.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    One(String),
    /// Every shard; results summed (`multi`).
    All,
    /// The shard owning a matching document, found by a read first.
    FirstMatch,
}

/// Merged counters.
#[derive(Default)]
struct Merged {
    n: i64,
    n_modified: i64,
    upserted: Vec<Bson>,
    errors: Vec<(usize, Document)>,
    wc_error: Option<Bson>,
    /// The shard reply with the greatest `operationTime` (its times are answered).
    last_reply: Option<Document>,
}

fn list_key(name: &str) -> &'static str {
    match name {
        "insert" => "documents",
        "update" => "updates",
        _ => "deletes",
    }
}

fn target(
    table: &Option<RoutingTable>,
    primary: &str,
    name: &str,
    stmt: &Document,
) -> Result<Target, String> {
    let Some(t) = table else {
        return Ok(Target::One(primary.to_string()));
    };
    let point = if name == "insert" {
        Some(t.key.point_of(stmt))
    } else {
        stmt.get_document("q")
            .ok()
            .and_then(|q| t.key.point_of_filter(q))
    };
    if let Some(p) = point {
        return t
            .owner(&p)
            .map(|s| Target::One(s.to_string()))
            .ok_or_else(|| "no chunk holds the key".to_string());
    }
    let multi = match name {
        "update" => stmt.get_bool("multi").unwrap_or(false),
        _ => matches!(
            stmt.get("limit"),
            Some(Bson::Int32(0)) | Some(Bson::Int64(0))
        ),
    };
    if name == "update" && stmt.get_bool("upsert").unwrap_or(false) {
        return Err(format!(
            "Failed to target upsert by query :: could not extract exact shard key from {}",
            stmt.get_document("q").cloned().unwrap_or_default()
        ));
    }
    Ok(if multi {
        Target::All
    } else {
        Target::FirstMatch
    })
}

fn int(d: &Document, k: &str) -> i64 {
    match d.get(k) {
        Some(Bson::Int32(i)) => *i as i64,
        Some(Bson::Int64(i)) => *i,
        Some(Bson::Double(f)) => *f as i64,
        _ => 0,
    }
}

/// Sends statements `idx` (indexes into `stmts`) to `shard` as one batch and
/// merges the reply; `Err(true)` if the shard said StaleConfig, `Err(false)` if
/// the batch failed as a whole (recorded as write errors); `Ok(n)` the batch's n.
#[allow(clippy::too_many_arguments)]
async fn send_batch(
    router: &Router,
    db: &str,
    name: &str,
    cmd: &Document,
    stmts: &[Bson],
    idx: &[usize],
    shard: &str,
    table: &Option<RoutingTable>,
    out: &mut Merged,
) -> Result<i64, bool> {
    let mut c = forward(cmd, db);
    for k in ["lsid", "txnNumber"] {
        if let Some(v) = cmd.get(k) {
            c.insert(k, v.clone());
        }
    }
    c.extend(router.txn_fields(cmd, shard));
    c.insert(
        list_key(name),
        idx.iter().map(|i| stmts[*i].clone()).collect::<Vec<_>>(),
    );
    c.remove("stmtId");
    if cmd.contains_key("txnNumber") {
        c.insert(
            "stmtIds",
            idx.iter()
                .map(|i| Bson::Int32(stmt_id(cmd, *i)))
                .collect::<Vec<_>>(),
        );
    }
    c.insert(
        "shardVersion",
        table
            .as_ref()
            .map_or_else(unsharded_version_doc, |t| shard_version_doc(t, shard)),
    );
    let reply = match router.shard_command(shard, c).await {
        Ok(r) => r,
        Err(e) => {
            for i in idx {
                out.errors.push((
                    *i,
                    doc! { "code": 6, "codeName": "HostUnreachable", "errmsg": e.clone() },
                ));
            }
            return Err(false);
        }
    };
    if is_stale(&reply) {
        return Err(true);
    }
    if !is_ok(&reply) {
        let mut e = doc! {};
        for k in ["code", "codeName", "errmsg", "errorLabels"] {
            if let Some(v) = reply.get(k) {
                e.insert(k, v.clone());
            }
        }
        for i in idx {
            out.errors.push((*i, e.clone()));
        }
        return Err(false);
    }
    let n = int(&reply, "n");
    out.n += n;
    out.n_modified += int(&reply, "nModified");
    for u in reply
        .get_array("upserted")
        .into_iter()
        .flatten()
        .filter_map(Bson::as_document)
    {
        let local = int(u, "index") as usize;
        let mut u = u.clone();
        u.insert("index", idx.get(local).copied().unwrap_or(0) as i32);
        out.upserted.push(Bson::Document(u));
    }
    for e in reply
        .get_array("writeErrors")
        .into_iter()
        .flatten()
        .filter_map(Bson::as_document)
    {
        let local = int(e, "index") as usize;
        let mut e = e.clone();
        e.remove("index");
        out.errors.push((idx.get(local).copied().unwrap_or(0), e));
    }
    if let Some(w) = reply.get("writeConcernError") {
        out.wc_error.get_or_insert(w.clone());
    }
    // mongos answers the greatest `operationTime` of the shards it asked (its
    // OperationTimeTracker), so a write that touched several shards answers a time
    // at or after every oplog entry it made, whichever shard replied last. (Taking
    // the last reply's gave a broadcast updateMany/deleteMany the time of a shard
    // that changed nothing, before the other shard's entries: found by the sharded
    // histories, tests/regressions/mongo-sharded-delete-many-across-shards.json.)
    let later = match (
        out.last_reply
            .as_ref()
            .and_then(|r| r.get_timestamp("operationTime").ok()),
        reply.get_timestamp("operationTime").ok(),
    ) {
        (Some(kept), Some(new)) => new >= kept,
        (Some(_), None) => false,
        (None, _) => true,
    };
    if later {
        out.last_reply = Some(reply);
    }
    Ok(n)
}

/// Runs statements `todo` in order (or grouped, unordered); statements whose
/// batch went stale are returned to be re-targeted after a refresh.
#[allow(clippy::too_many_arguments)]
async fn run_round(
    router: &Router,
    db: &str,
    name: &str,
    cmd: &Document,
    stmts: &[Bson],
    todo: &[usize],
    table: &Option<RoutingTable>,
    ordered: bool,
    out: &mut Merged,
) -> Result<(Vec<usize>, bool), String> {
    let primary = router.cluster.config.catalog().primary_shard(db);
    let shards: Vec<String> = router.cluster.shards.iter().map(|s| s.id.clone()).collect();
    let mut targets = Vec::new();
    for i in todo {
        let stmt = stmts[*i].as_document().cloned().unwrap_or_default();
        match target(table, &primary, name, &stmt) {
            Ok(t) => targets.push((*i, t)),
            Err(e) => {
                out.errors.push((
                    *i,
                    doc! { "code": 61, "codeName": "ShardKeyNotFound", "errmsg": e },
                ));
                if ordered {
                    return Ok((Vec::new(), true));
                }
            }
        }
    }
    // a single update/delete without the shard key: find the shard owning a
    // matching document first (MongoDB 7's write without shard key), so the
    // write (and its retryable-write record) reaches one shard only
    let mut located = Vec::new();
    for (i, t) in targets {
        if t != Target::FirstMatch {
            located.push((i, t));
            continue;
        }
        let q = stmts[i]
            .as_document()
            .and_then(|d| d.get_document("q").ok())
            .cloned()
            .unwrap_or_default();
        if let Some(owner) =
            locate(router, db, cmd.get_str(name).unwrap_or_default(), &q, cmd).await?
        {
            located.push((i, Target::One(owner)));
        } // else: it matches nothing anywhere; n = 0, nothing sent
    }
    // batches: (shard or broadcast, statement indexes)
    let mut batches: Vec<(Target, Vec<usize>)> = Vec::new();
    for (i, t) in located {
        let joinable = match (&t, batches.last()) {
            (Target::One(s), Some((Target::One(last), _))) if ordered => s == last,
            _ => false,
        };
        if joinable {
            if let Some(b) = batches.last_mut() {
                b.1.push(i);
            }
        } else if let (Target::One(s), false) = (&t, ordered) {
            match batches
                .iter_mut()
                .find(|(bt, _)| bt == &Target::One(s.clone()))
            {
                Some(b) => b.1.push(i),
                None => batches.push((t, vec![i])),
            }
        } else {
            batches.push((t, vec![i]));
        }
    }
    let mut stale = Vec::new();
    let mut batches = batches.into_iter();
    while let Some((t, idx)) = batches.next() {
        let errors_before = out.errors.len();
        let r = match &t {
            Target::One(s) => send_batch(router, db, name, cmd, stmts, &idx, s, table, out)
                .await
                .map(|_| ()),
            Target::All | Target::FirstMatch => {
                // (FirstMatch was located above; only All reaches here)
                let mut r = Ok(());
                for s in &shards {
                    match send_batch(router, db, name, cmd, stmts, &idx, s, table, out).await {
                        Ok(_) => {}
                        Err(e) => {
                            r = Err(e);
                            break;
                        }
                    }
                }
                r
            }
        };
        match r {
            Err(true) => {
                stale.extend(idx);
                if ordered {
                    // The later batches were not sent: they are re-targeted too,
                    // after this one (dropping them answered `n` short of the
                    // statements with no error: found by the sharded histories).
                    stale.extend(batches.flat_map(|(_, rest)| rest));
                    return Ok((stale, false));
                }
            }
            _ if ordered && out.errors.len() > errors_before => return Ok((Vec::new(), true)),
            _ => {}
        }
    }
    Ok((stale, false))
}

/// The shard owning a document of `db.coll` that matches `filter`, if any
/// (read through the shards with their versions, orphans filtered).
async fn locate(
    router: &Router,
    db: &str,
    coll: &str,
    filter: &Document,
    client: &Document,
) -> Result<Option<String>, String> {
    let docs = match super::commands::gather(router, db, coll, filter, client).await? {
        Ok(d) => d,
        Err(reply) => return Err(format!("locating the document failed: {reply}")),
    };
    let Some(d) = docs.first() else {
        return Ok(None);
    };
    let table = router.table(&format!("{db}.{coll}")).await?;
    Ok(match table {
        Some(t) => t.owner_of_doc(d).map(str::to_string),
        None => Some(router.cluster.config.catalog().primary_shard(db)),
    })
}

/// `insert`/`update`/`delete` through the router.
pub async fn write(router: &Arc<Router>, db: &str, name: &str, cmd: &Document) -> Document {
    let coll = match cmd.get_str(name) {
        Ok(c) if !c.is_empty() => c.to_string(),
        _ => {
            return error(
                73,
                "InvalidNamespace",
                "write command needs a collection name",
            )
        }
    };
    let ns = format!("{db}.{coll}");
    let Ok(stmts) = cmd.get_array(list_key(name)) else {
        return error(
            9,
            "FailedToParse",
            &format!("{name} needs an array '{}'", list_key(name)),
        );
    };
    let ordered = cmd.get_bool("ordered").unwrap_or(true);
    let mut out = Merged::default();
    let mut todo: Vec<usize> = (0..stmts.len()).collect();
    let mut attempts = 0;
    while !todo.is_empty() {
        let table = match router.table(&ns).await {
            Ok(t) => t,
            Err(e) => return error(6, "HostUnreachable", &e),
        };
        match run_round(
            router, db, name, cmd, stmts, &todo, &table, ordered, &mut out,
        )
        .await
        {
            Ok((stale, stopped)) => {
                if stopped || stale.is_empty() {
                    break;
                }
                if super::txn::in_txn(cmd) {
                    // refreshed, so the driver's retry of the transaction is routed anew
                    let _ = router.refresh(&ns).await;
                    return super::txn::stale_in_txn();
                }
                attempts += 1;
                router.stale_retries.fetch_add(1, Ordering::Relaxed);
                if attempts > STALE_RETRIES {
                    for i in stale {
                        out.errors.push((i, doc! { "code": 13388, "codeName": "StaleConfig", "errmsg": "still stale after refreshes" }));
                    }
                    break;
                }
                if let Err(e) = router.refresh(&ns).await {
                    return error(6, "HostUnreachable", &e);
                }
                todo = stale;
                todo.sort_unstable();
            }
            Err(e) => return error(1, "InternalError", &e),
        }
    }
    out.errors.sort_by_key(|(i, _)| *i);
    let mut reply = doc! { "n": out.n as i32 };
    if name == "update" {
        reply.insert("nModified", out.n_modified as i32);
        if !out.upserted.is_empty() {
            out.upserted
                .sort_by_key(|u| u.as_document().map_or(0, |d| int(d, "index")));
            reply.insert("upserted", out.upserted);
        }
    }
    if !out.errors.is_empty() {
        let errs: Vec<Bson> = out
            .errors
            .into_iter()
            .map(|(i, e)| {
                let mut d = doc! { "index": i as i32 };
                d.extend(e);
                Bson::Document(d)
            })
            .collect();
        reply.insert("writeErrors", errs);
    }
    if let Some(w) = out.wc_error {
        reply.insert("writeConcernError", w);
    }
    if let Some(r) = out.last_reply {
        for k in ["opTime", "electionId", "operationTime", "$clusterTime"] {
            if let Some(v) = r.get(k) {
                if k == "opTime" || k == "electionId" {
                    continue; // mongos does not report a shard's optime
                }
                reply.insert(k, v.clone());
            }
        }
    }
    reply.insert("ok", 1.0);
    reply
}

/// `findAndModify` through the router: to the owning shard, or the shards
/// in turn until one matches.
pub async fn find_and_modify(
    router: &Arc<Router>,
    db: &str,
    name: &str,
    cmd: &Document,
) -> Document {
    let coll = cmd.get_str(name).unwrap_or_default().to_string();
    let ns = format!("{db}.{coll}");
    let query = cmd.get_document("query").cloned().unwrap_or_default();
    for _ in 0..STALE_RETRIES {
        let table = match router.table(&ns).await {
            Ok(t) => t,
            Err(e) => return error(6, "HostUnreachable", &e),
        };
        let targets: Vec<String> = match &table {
            None => vec![router.cluster.config.catalog().primary_shard(db)],
            Some(t) => {
                match t
                    .key
                    .point_of_filter(&query)
                    .and_then(|p| t.owner(&p).map(str::to_string))
                {
                    Some(s) => vec![s],
                    None if cmd.get_bool("upsert").unwrap_or(false) => {
                        return error(61, "ShardKeyNotFound", "Query for sharded findAndModify with upsert must contain the shard key");
                    }
                    None => match locate(router, db, &coll, &query, cmd).await {
                        Ok(Some(owner)) => vec![owner],
                        Ok(None) => {
                            return doc! { "lastErrorObject": { "n": 0, "updatedExisting": false }, "value": Bson::Null, "ok": 1.0 };
                        }
                        Err(e) => return error(6, "HostUnreachable", &e),
                    },
                }
            }
        };
        let mut stale = false;
        let mut last = None;
        for s in &targets {
            let mut c = forward(cmd, db);
            for k in ["lsid", "txnNumber"] {
                if let Some(v) = cmd.get(k) {
                    c.insert(k, v.clone());
                }
            }
            c.extend(router.txn_fields(cmd, s));
            c.insert(
                "shardVersion",
                table
                    .as_ref()
                    .map_or_else(unsharded_version_doc, |t| shard_version_doc(t, s)),
            );
            let r = match router.shard_command(s, c).await {
                Ok(r) => r,
                Err(e) => return error(6, "HostUnreachable", &e),
            };
            if is_stale(&r) {
                stale = true;
                break;
            }
            let matched = r
                .get_document("lastErrorObject")
                .map(|l| int(l, "n") > 0)
                .unwrap_or(false);
            if !is_ok(&r) || matched {
                return r;
            }
            last = Some(r);
        }
        if !stale {
            return last
                .unwrap_or_else(|| error(1, "InternalError", "no shard to send findAndModify to"));
        }
        if super::txn::in_txn(cmd) {
            let _ = router.refresh(&ns).await;
            return super::txn::stale_in_txn();
        }
        router.stale_retries.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = router.refresh(&ns).await {
            return error(6, "HostUnreachable", &e);
        }
    }
    error(13388, "StaleConfig", "still stale after refreshes")
}
