//! Command dispatch: the handshake and monitoring commands, harmless
//! administrative replies, `find`, and the write commands (in
//! [`super::write`]). Unknown commands get MongoDB's CommandNotFound.

use super::conn::ConnState;
use super::hello;
use super::matcher::matches;
use super::repl;
use super::set::Shared;
use std::time::Duration;
use tidemark_mongo::bson::{doc, Bson, Document};

/// An `{ok: 0}` error reply.
pub fn error(code: i32, code_name: &str, msg: &str) -> Document {
    doc! { "ok": 0.0, "errmsg": msg, "code": code, "codeName": code_name }
}

/// What a secondary answers to a write (drivers re-discover the primary on it).
pub fn not_writable_primary() -> Document {
    error(10107, "NotWritablePrimary", "not primary")
}

/// Runs `cmd` (already with any OP_MSG sequences folded in) against `db`.
pub async fn run(shared: &Shared, st: &mut ConnState, db: &str, cmd: Document) -> Document {
    let Some(name) = cmd.keys().next().cloned() else {
        return error(9, "FailedToParse", "empty command");
    };
    tracing::trace!(member = st.member, db, command = %name, "command");
    match name.as_str() {
        "hello" | "isMaster" | "ismaster" => {
            if !cmd.contains_key("topologyVersion") {
                // the handshake: compression is agreed here, once
                st.compression = hello::negotiate(&shared.config.compressors, &cmd);
            } else {
                await_topology_change(shared, &cmd).await;
            }
            hello::reply(
                shared,
                st.member,
                st.connection_id,
                &st.compression,
                name != "hello",
            )
        }
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
        "getLastError" | "getlasterror" => doc! { "n": 0, "err": Bson::Null, "ok": 1.0 },
        "killCursors" => {
            // only oplog cursors stay open; every other result came in one batch
            let ids = cmd.get_array("cursors").cloned().unwrap_or_default();
            let mut open = shared.members[st.member]
                .cursors
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let (killed, not_found): (Vec<Bson>, Vec<Bson>) = ids
                .into_iter()
                .partition(|id| matches!(id, Bson::Int64(i) if open.remove(i).is_some()));
            doc! { "cursorsKilled": killed, "cursorsNotFound": not_found, "cursorsAlive": [], "cursorsUnknown": [], "ok": 1.0 }
        }
        "getMore" => match (cmd.get_i64("getMore"), cmd.get_str("collection")) {
            (Ok(id), Ok("oplog.rs")) if db == "local" => {
                repl::oplog_get_more(shared, st.member, &cmd, id).await
            }
            _ => error(
                43,
                "CursorNotFound",
                "cursor not found (the testbed returns every result in the first batch)",
            ),
        },
        "find" if db == "local" && cmd.get_str("find").ok() == Some("oplog.rs") => {
            repl::oplog_find(shared, st.member, &cmd)
        }
        "find" => find(shared, st.member, db, &cmd),
        "replSetUpdatePosition" => repl::update_position(shared, st.member, &cmd),
        "insert" | "update" | "delete" => {
            if !shared.is_primary(st.member) {
                return not_writable_primary();
            }
            let mut reply = super::write::run(shared, st.member, db, &name, &cmd);
            shared.members[st.member].publish_oplog(shared);
            repl::await_write_concern(shared, st.member, &cmd, &mut reply).await;
            reply
        }
        "listCollections" => list_collections(shared, st.member, db),
        "drop" => drop_collection(shared, st.member, db, &cmd),
        _ => error(59, "CommandNotFound", &format!("no such command: '{name}'")),
    }
}

/// An awaitable hello (streaming SDAM) is answered when the topology
/// changes or `maxAwaitTimeMS` passes (capped by the config). Nothing
/// changes the topology yet, so this is a bounded wait.
async fn await_topology_change(shared: &Shared, cmd: &Document) {
    let ms = match cmd.get("maxAwaitTimeMS") {
        Some(Bson::Int32(i)) => *i as i64,
        Some(Bson::Int64(i)) => *i,
        Some(Bson::Double(d)) => *d as i64,
        _ => return,
    };
    let counter = cmd
        .get_document("topologyVersion")
        .ok()
        .and_then(|t| t.get_i64("counter").ok());
    if counter != Some(shared.topology().counter) {
        return;
    }
    let wait = Duration::from_millis(ms.max(0) as u64).min(shared.config.max_await);
    tokio::time::sleep(wait).await;
}

/// Reads from a secondary need a read preference that allows them.
fn secondary_ok(cmd: &Document) -> bool {
    cmd.get_document("$readPreference")
        .ok()
        .and_then(|r| r.get_str("mode").ok())
        .is_some_and(|m| m != "primary")
}

fn collection_name<'a>(cmd: &'a Document, name: &str) -> Result<&'a str, Document> {
    match cmd.get_str(name) {
        Ok(c) if !c.is_empty() => Ok(c),
        _ => Err(error(
            73,
            "InvalidNamespace",
            &format!("{name} needs a collection name"),
        )),
    }
}

fn int_arg(cmd: &Document, key: &str) -> Option<i64> {
    match cmd.get(key)? {
        Bson::Int32(i) => Some(*i as i64),
        Bson::Int64(i) => Some(*i),
        Bson::Double(d) => Some(*d as i64),
        _ => None,
    }
}

/// `find` with a filter, `skip` and `limit`; every result in the first
/// batch (cursor id 0). Sorting and projection are not done yet.
fn find(shared: &Shared, member: usize, db: &str, cmd: &Document) -> Document {
    if !shared.is_primary(member) && !secondary_ok(cmd) {
        return error(
            13435,
            "NotPrimaryNoSecondaryOk",
            "not primary and secondaryOk=false",
        );
    }
    let coll = match collection_name(cmd, "find") {
        Ok(c) => c,
        Err(e) => return e,
    };
    let ns = format!("{db}.{coll}");
    let filter = cmd.get_document("filter").cloned().unwrap_or_default();
    let skip = int_arg(cmd, "skip").unwrap_or(0).max(0) as usize;
    let limit = int_arg(cmd, "limit").unwrap_or(0).unsigned_abs() as usize;
    let store = shared.members[member].store();
    let mut out = Vec::new();
    if let Some(c) = store.collection(&ns) {
        // an `_id` equality uses the unique index, as MongoDB's IDHACK does
        let by_id = match filter.get("_id") {
            Some(v) if !matches!(v, Bson::Document(d) if d.keys().any(|k| k.starts_with('$'))) => {
                Some(c.find_id(v))
            }
            _ => None,
        };
        let candidates: Vec<&Document> = match by_id {
            Some(seq) => seq.and_then(|s| c.get(s)).into_iter().collect(),
            None => c.iter().map(|(_, d)| d).collect(),
        };
        for d in candidates {
            match matches(d, &filter) {
                Ok(true) => out.push(Bson::Document(d.clone())),
                Ok(false) => {}
                Err(e) => return error(2, "BadValue", &e),
            }
        }
    }
    let out: Vec<Bson> = out
        .into_iter()
        .skip(skip)
        .take(if limit == 0 { usize::MAX } else { limit })
        .collect();
    doc! { "cursor": { "firstBatch": out, "id": 0i64, "ns": ns }, "ok": 1.0 }
}

fn list_collections(shared: &Shared, member: usize, db: &str) -> Document {
    let prefix = format!("{db}.");
    let store = shared.members[member].store();
    let batch: Vec<Bson> = store
        .collections
        .keys()
        .filter_map(|ns| ns.strip_prefix(&prefix))
        .map(|name| Bson::Document(doc! { "name": name, "type": "collection", "options": {}, "info": { "readOnly": false } }))
        .collect();
    doc! { "cursor": { "firstBatch": batch, "id": 0i64, "ns": format!("{db}.$cmd.listCollections") }, "ok": 1.0 }
}

fn drop_collection(shared: &Shared, member: usize, db: &str, cmd: &Document) -> Document {
    if !shared.is_primary(member) {
        return not_writable_primary();
    }
    let coll = match collection_name(cmd, "drop") {
        Ok(c) => c,
        Err(e) => return e,
    };
    let ns = format!("{db}.{coll}");
    let mut store = shared.members[member].store();
    if store.collections.remove(&ns).is_none() {
        return error(26, "NamespaceNotFound", "ns not found");
    }
    let term = shared.topology().term;
    store.append_oplog(
        term,
        "c",
        &format!("{db}.$cmd"),
        doc! { "drop": coll },
        None,
    );
    drop(store);
    shared.members[member].publish_oplog(shared);
    doc! { "ns": ns, "nIndexesWas": 1, "ok": 1.0 }
}
