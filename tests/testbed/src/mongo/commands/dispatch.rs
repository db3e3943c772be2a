//! Command dispatch: the authentication gate, the handshake and
//! monitoring commands, reads ([`super::find`]), writes ([`super::write`],
//! [`super::famod`]) with retryable-write and transaction handling
//! ([`super::txn`]), and collection/database commands ([`super::admin`]).
//! Unknown commands get MongoDB's CommandNotFound.

use super::write::WriteCtx;
use super::{admin, admin_index, cursor, famod, find, snapshot_read, txn};
use crate::mongo::errors::{error, not_writable_primary};
use crate::mongo::repl::hello;
use crate::mongo::repl::source as repl;
use crate::mongo::scram;
use crate::mongo::state::Shared;
use crate::mongo::storage::session::Txn;
use crate::mongo::storage::store::MemberStore;
use std::time::Duration;
use tidemark_mongo::bson::spec::BinarySubtype;
use tidemark_mongo::bson::{doc, Binary, Bson, Document, Timestamp};
use tidemark_mongo::Compressor;

/// Per-connection state the handshake sets.
#[derive(Debug)]
pub struct ConnState {
    pub member: usize,
    pub connection_id: i64,
    /// Compressors agreed in the hello `compression` exchange.
    pub compression: Vec<Compressor>,
    /// SCRAM state; commands are refused until it authenticates when the
    /// set has a user (see `commands::run`).
    pub auth: scram::ConnAuth,
}

/// Runs `cmd` (already with any OP_MSG sequences folded in) against `db`,
/// and stamps the reply with `$clusterTime` and `operationTime` as mongod
/// does in a replica set.
pub async fn run(shared: &Shared, st: &mut ConnState, db: &str, mut cmd: Document) -> Document {
    let Some(name) = cmd.keys().next().cloned() else {
        return error(9, "FailedToParse", "empty command");
    };
    tracing::trace!(member = st.member, db, command = %name, "command");
    let mut reply = if shared.config.scram_user.is_some()
        && !st.auth.authenticated
        && !scram::allowed_unauthenticated(&name, db, &cmd)
    {
        error(
            13,
            "Unauthorized",
            &format!("command {name} requires authentication"),
        )
    } else {
        let guard = match &shared.config.command_hook {
            Some(h) => match h.before(shared, st.member, db, &cmd).await {
                crate::mongo::state::HookOutcome::Continue { guard, cmd: new } => {
                    if let Some(new) = new {
                        cmd = new;
                    }
                    guard
                }
                crate::mongo::state::HookOutcome::Reply(mut r) => {
                    stamp_cluster_time(shared, st.member, &mut r);
                    return r;
                }
            },
            None => None,
        };
        let reply = match txn::session_args(&cmd).filter(|a| a.in_txn) {
            Some(args) if !matches!(name.as_str(), "commitTransaction" | "abortTransaction") => {
                in_transaction(shared, st, db, &name, &cmd, &args).await
            }
            _ => dispatch(shared, st, db, &name, &cmd, None).await,
        };
        drop(guard);
        reply
    };
    stamp_cluster_time(shared, st.member, &mut reply);
    reply
}

/// `$clusterTime` (unsigned: keyId 0, zero hash): the member's last oplog
/// timestamp; `operationTime` too unless the command set its own (a write's
/// optime).
fn stamp_cluster_time(shared: &Shared, member: usize, reply: &mut Document) {
    let last = shared.members[member].store().last_op_time();
    let ts = if last.ts == (0, 0) {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        Timestamp {
            time: secs,
            increment: 0,
        }
    } else {
        last.timestamp()
    };
    let hash = Binary {
        subtype: BinarySubtype::Generic,
        bytes: vec![0; 20],
    };
    reply.insert(
        "$clusterTime",
        doc! { "clusterTime": ts, "signature": { "hash": hash, "keyId": 0i64 } },
    );
    if !reply.contains_key("operationTime") {
        reply.insert("operationTime", ts);
    }
}

/// A command of an open transaction (`autocommit: false`): only reads and
/// writes may run there; the writes are collected for the commit.
async fn in_transaction(
    shared: &Shared,
    st: &mut ConnState,
    db: &str,
    name: &str,
    cmd: &Document,
    args: &txn::SessionArgs,
) -> Document {
    let allowed = [
        "find",
        "getMore",
        "insert",
        "update",
        "delete",
        "findAndModify",
        "findandmodify",
        "aggregate",
        "distinct",
        "count",
        "killCursors",
    ];
    if !allowed.contains(&name) {
        return error(
            263,
            "OperationNotSupportedInTransaction",
            &format!("Cannot run '{name}' in a multi-document transaction."),
        );
    }
    if !shared.is_primary(st.member) {
        return not_writable_primary();
    }
    let txn = txn::enter(&mut shared.members[st.member].store(), args);
    let mut txn = match txn {
        Ok(t) => t,
        Err(e) => return e,
    };
    let reply = dispatch(shared, st, db, name, cmd, Some(&mut txn)).await;
    txn::leave(&mut shared.members[st.member].store(), args, txn);
    reply
}

async fn dispatch(
    shared: &Shared,
    st: &mut ConnState,
    db: &str,
    name: &str,
    cmd: &Document,
    txn: Option<&mut Txn>,
) -> Document {
    let member = st.member;
    match name {
        "hello" | "isMaster" | "ismaster" => {
            if !cmd.contains_key("topologyVersion") {
                // the handshake: compression is agreed here, once
                st.compression = hello::negotiate(&shared.config.compressors, cmd);
            } else {
                await_topology_change(shared, cmd).await;
            }
            let mut reply = hello::reply(
                shared,
                member,
                st.connection_id,
                &st.compression,
                name != "hello",
            );
            if let Some(user) = &shared.config.scram_user {
                handshake_auth(user, st, cmd, &mut reply);
            }
            reply
        }
        "saslStart" | "saslContinue" => match &shared.config.scram_user {
            None => error(
                334,
                "MechanismUnavailable",
                "authentication is not enabled on this testbed",
            ),
            Some(user) if name == "saslStart" => scram::sasl_start(user, &mut st.auth, cmd),
            Some(user) => scram::sasl_continue(user, &mut st.auth, cmd),
        },
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
            let ids = cmd.get_array("cursors").cloned().unwrap_or_default();
            let (killed, not_found) = {
                let mut open = shared.members[member]
                    .cursors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let (killed, rest): (Vec<Bson>, Vec<Bson>) = ids
                    .into_iter()
                    .partition(|id| matches!(id, Bson::Int64(i) if open.remove(i).is_some()));
                (killed, rest)
            };
            let (more_killed, not_found) = cursor::kill(shared, member, not_found);
            let mut killed = killed;
            killed.extend(more_killed);
            doc! { "cursorsKilled": killed, "cursorsNotFound": not_found, "cursorsAlive": [], "cursorsUnknown": [], "ok": 1.0 }
        }
        "getMore" => match (cmd.get_i64("getMore"), cmd.get_str("collection")) {
            (Ok(id), Ok("oplog.rs")) if db == "local" => {
                repl::oplog_get_more(shared, member, cmd, id).await
            }
            (Ok(id), _) => cursor::get_more(shared, member, db, cmd, id),
            _ => error(
                9,
                "FailedToParse",
                "getMore needs a cursor id and a collection",
            ),
        },
        "find" if db == "local" && cmd.get_str("find").ok() == Some("oplog.rs") => {
            repl::oplog_find(shared, member, cmd)
        }
        "find" | "count" | "distinct" | "aggregate" => {
            if !shared.is_primary(member) && !secondary_ok(cmd) && txn.is_none() {
                return error(
                    13435,
                    "NotPrimaryNoSecondaryOk",
                    "not primary and secondaryOk=false",
                );
            }
            let mut at_cluster_time = None;
            let outcome = match txn {
                // a transaction reads its own snapshot
                Some(t) => {
                    let view = MemberStore::with_collections(std::mem::take(&mut t.view));
                    let outcome = find::read(db, name, cmd, &view);
                    t.view = view.collections;
                    outcome
                }
                None => match snapshot_read::requested(cmd) {
                    Some(at) => match snapshot_read::view(shared, member, at).await {
                        Ok((view, at)) => {
                            at_cluster_time = Some(at);
                            find::read(db, name, cmd, &view)
                        }
                        Err(e) => return e,
                    },
                    None => find::read(db, name, cmd, &shared.members[member].store()),
                },
            };
            let mut reply = match outcome {
                find::ReadOutcome::Reply(r) => r,
                find::ReadOutcome::Cursor {
                    ns,
                    docs,
                    batch_size,
                    single_batch,
                } => cursor::open(shared, member, &ns, docs, batch_size, single_batch),
            };
            if let Some(at) = at_cluster_time {
                snapshot_read::stamp(&mut reply, at);
            }
            reply
        }
        "replSetUpdatePosition" => repl::update_position(shared, member, cmd),
        "insert" | "update" | "delete" | "findAndModify" | "findandmodify" => {
            write_command(shared, member, db, name, cmd, txn).await
        }
        "commitTransaction" | "abortTransaction" => {
            if !shared.is_primary(member) {
                return not_writable_primary();
            }
            if db != "admin" {
                return error(
                    13,
                    "Unauthorized",
                    &format!("{name} may only be run against the admin database."),
                );
            }
            if name == "abortTransaction" {
                return txn::abort(shared, member, cmd);
            }
            let mut reply = txn::commit(shared, member, cmd);
            if reply.get_f64("ok").ok() == Some(1.0) {
                repl::await_write_concern(shared, member, cmd, &mut reply).await;
            }
            reply
        }
        "create" => admin::create(shared, member, db, cmd),
        "drop" => admin::drop_collection(shared, member, db, cmd),
        "dropDatabase" => admin::drop_database(shared, member, db),
        "renameCollection" => admin::rename_collection(shared, member, db, cmd),
        "listCollections" => admin::list_collections(shared, member, db, cmd),
        "listDatabases" => admin::list_databases(shared, member, cmd),
        "createIndexes" => admin_index::create_indexes(shared, member, db, cmd),
        "listIndexes" => admin_index::list_indexes(shared, member, db, cmd),
        "dropIndexes" | "deleteIndexes" => admin_index::drop_indexes(shared, member, db, cmd),
        _ => error(59, "CommandNotFound", &format!("no such command: '{name}'")),
    }
}

/// The handshake's authentication parts: `saslSupportedMechs` for the
/// named user, and a `speculativeAuthenticate` saslStart answered inline.
fn handshake_auth(
    user: &scram::ScramUser,
    st: &mut ConnState,
    cmd: &Document,
    reply: &mut Document,
) {
    if let Ok(who) = cmd.get_str("saslSupportedMechs") {
        if who == format!("admin.{}", user.name) {
            reply.insert(
                "saslSupportedMechs",
                vec![Bson::String(scram::MECHANISM.into())],
            );
        }
    }
    if let Ok(spec) = cmd.get_document("speculativeAuthenticate") {
        if spec.contains_key("saslStart") {
            let r = scram::sasl_start(user, &mut st.auth, spec);
            if r.get_f64("ok").ok() == Some(1.0) {
                let mut r = r;
                r.remove("ok");
                reply.insert("speculativeAuthenticate", r);
            }
        }
    }
}

/// A write command on the primary: retryable-write bookkeeping (outside
/// transactions), the write itself, then the write-concern wait.
async fn write_command(
    shared: &Shared,
    member: usize,
    db: &str,
    name: &str,
    cmd: &Document,
    txn: Option<&mut Txn>,
) -> Document {
    if !shared.is_primary(member) {
        return not_writable_primary();
    }
    if let Some(t) = txn {
        // a transaction writes into its snapshot and logs into its ops
        let mut view = MemberStore::with_collections(std::mem::take(&mut t.view));
        let mut ctx = WriteCtx {
            store: &mut view,
            term: shared.topology().term,
            retry: None,
            txn: Some(&mut t.log),
            stmt_id: 0,
            last_logged: None,
            retry_image: None,
        };
        let reply = match name {
            "insert" | "update" | "delete" => super::write::run(&mut ctx, db, name, cmd),
            _ => famod::run(&mut ctx, db, cmd),
        };
        t.view = view.collections;
        if let Some(e) = txn::conflict_reply(&shared.members[member].store(), t) {
            t.doomed = true;
            return e;
        }
        return reply;
    }
    let term = shared.topology().term;
    let mut reply = {
        let mut store = shared.members[member].store();
        let mut retry = None;
        if let (Some(args), Ok(n)) = (txn::session_args(cmd), cmd.get_i64("txnNumber")) {
            if let Err(e) = txn::check_retryable(&mut store, &args.lsid, n) {
                return e;
            }
            retry = Some((args.lsid, n));
        }
        let mut ctx = WriteCtx {
            store: &mut store,
            term,
            retry,
            txn: None,
            stmt_id: 0,
            last_logged: None,
            retry_image: None,
        };
        let mut reply = match name {
            "insert" | "update" | "delete" => super::write::run(&mut ctx, db, name, cmd),
            _ => famod::run(&mut ctx, db, cmd),
        };
        // the write's own optime (a write that logged nothing: the latest),
        // as mongod reports it to the client
        let op_time = ctx.last_logged.unwrap_or_else(|| ctx.store.last_op_time());
        if name != "findAndModify" && reply.get_f64("ok").ok() == Some(1.0) {
            reply.insert("opTime", op_time.to_doc());
            reply.insert("electionId", shared.topology().election_id);
        }
        reply.insert("operationTime", op_time.timestamp());
        reply
    };
    shared.members[member].publish_oplog(shared);
    repl::await_write_concern(shared, member, cmd, &mut reply).await;
    reply
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
