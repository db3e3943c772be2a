//! Transactions through the router, as mongos runs them: the router
//! remembers each transaction's participants (the shards its statements
//! reached, in order; the first one coordinates), sends `startTransaction`
//! with the first statement each participant sees, and commits a
//! one-shard transaction with `commitTransaction` on that shard, a
//! multi-shard one with `coordinateCommitTransaction` to the coordinator
//! (two-phase commit, [`crate::mongo::sharded::txn`]). `abortTransaction`
//! goes to every participant.

use super::Router;
use crate::mongo::commands::txn::session_args;
use crate::mongo::errors::error;
use crate::mongo::sharded::client::is_ok;
use tidemark_mongo::bson::{doc, Bson, Document};

fn key(cmd: &Document) -> Option<(Vec<u8>, i64)> {
    let a = session_args(cmd)?;
    Some((a.lsid.to_vec().ok()?, a.txn_number?))
}

impl Router {
    /// The session fields a command sent to `shard` carries when the
    /// client's command is part of a transaction (registering `shard` as a
    /// participant); empty otherwise.
    pub(crate) fn txn_fields(&self, cmd: &Document, shard: &str) -> Document {
        let Some(args) = session_args(cmd).filter(|a| a.in_txn) else {
            return Document::new();
        };
        let Some(k) = key(cmd) else {
            return Document::new();
        };
        let mut d = doc! { "lsid": args.lsid.clone(), "txnNumber": args.txn_number.unwrap_or_default(), "autocommit": false };
        let mut txns = self.txns.lock().unwrap_or_else(|e| e.into_inner());
        let parts = txns.entry(k).or_default();
        if !parts.iter().any(|p| p == shard) {
            parts.push(shard.to_string());
            d.insert("startTransaction", true);
            if let Ok(rc) = cmd.get_document("readConcern") {
                d.insert("readConcern", rc.clone());
            }
        }
        d
    }

    /// A transaction's participants so far.
    pub fn participants(&self, cmd: &Document) -> Vec<String> {
        key(cmd)
            .and_then(|k| {
                self.txns
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&k)
                    .cloned()
            })
            .unwrap_or_default()
    }

    fn forget(&self, cmd: &Document) {
        if let Some(k) = key(cmd) {
            self.txns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&k);
        }
    }
}

fn session(cmd: &Document) -> Document {
    let mut d = Document::new();
    for k in ["lsid", "txnNumber", "autocommit", "writeConcern"] {
        if let Some(v) = cmd.get(k) {
            d.insert(k, v.clone());
        }
    }
    d
}

/// `commitTransaction` through the router.
pub async fn commit(router: &Router, cmd: &Document) -> Document {
    let parts = router.participants(cmd);
    let reply = match parts.as_slice() {
        [] => doc! { "ok": 1.0 },
        [only] => {
            let mut c = doc! { "commitTransaction": 1, "$db": "admin" };
            c.extend(session(cmd));
            router
                .shard_command(only, c)
                .await
                .unwrap_or_else(|e| error(6, "HostUnreachable", &e))
        }
        [coordinator, ..] => {
            let list: Vec<Bson> = parts
                .iter()
                .map(|p| Bson::Document(doc! { "shardId": p.clone() }))
                .collect();
            let mut c =
                doc! { "coordinateCommitTransaction": 1, "participants": list, "$db": "admin" };
            c.extend(session(cmd));
            router
                .shard_command(coordinator, c)
                .await
                .unwrap_or_else(|e| error(6, "HostUnreachable", &e))
        }
    };
    if is_ok(&reply) || reply.get_i32("code").ok() == Some(251) {
        router.forget(cmd);
    }
    reply
}

/// `abortTransaction` through the router: to every participant.
pub async fn abort(router: &Router, cmd: &Document) -> Document {
    let parts = router.participants(cmd);
    let mut first_error = None;
    for p in &parts {
        let mut c = doc! { "abortTransaction": 1, "$db": "admin" };
        c.extend(session(cmd));
        match router.shard_command(p, c).await {
            Ok(r) if is_ok(&r) || r.get_i32("code").ok() == Some(251) => {}
            Ok(r) => {
                first_error.get_or_insert(r);
            }
            Err(e) => {
                first_error.get_or_insert(error(6, "HostUnreachable", &e));
            }
        }
    }
    router.forget(cmd);
    first_error.unwrap_or_else(|| doc! { "ok": 1.0 })
}

/// Whether `cmd` is a statement of a transaction.
pub fn in_txn(cmd: &Document) -> bool {
    session_args(cmd).is_some_and(|a| a.in_txn)
}

/// What a router answers when a shard's version went stale under a
/// transaction: mongos does not retry a statement inside a transaction; the
/// error is transient, so the driver's transaction retry starts over.
pub fn stale_in_txn() -> Document {
    let mut e = error(
        13388,
        "StaleConfig",
        "the chunk map changed during the transaction; it must be retried",
    );
    e.insert(
        "errorLabels",
        vec![Bson::String("TransientTransactionError".into())],
    );
    e
}
