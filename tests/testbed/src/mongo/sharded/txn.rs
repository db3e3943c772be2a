//! Cross-shard transactions on the shards: two-phase commit as MongoDB does
//! it. The router sends `coordinateCommitTransaction` (with the participant
//! list) to the first participant, the coordinator; it records itself in
//! `config.transaction_coordinators`, sends `prepareTransaction` to every
//! participant over the wire (itself included), takes the highest
//! `prepareTimestamp` as the `commitTimestamp`, records the decision,
//! sends `commitTransaction {commitTimestamp}` to every participant, and
//! deletes its record. A participant's prepare logs its writes as one
//! `applyOps` entry with `prepare: true` (not applied yet) and waits for its
//! majority; its commit applies them and logs `{commitTransaction: 1,
//! commitTimestamp}` whose `prevOpTime` is the prepare entry, as mongod's
//! oplog has them. Secondaries apply the pair through
//! [`crate::mongo::storage::oplog::apply_entry`].

use super::client::{is_ok, Pool};
use super::shard::ShardHook;
use super::state::ClusterInner;
use crate::mongo::commands::txn::{conflict_reply, session_args};
use crate::mongo::errors::error;
use crate::mongo::state::{Shared, WaitOutcome};
use crate::mongo::storage::oplog::apply_entry;
use crate::mongo::storage::session::TxnState;
use crate::mongo::storage::store::OpTime;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tidemark_mongo::bson::{doc, Bson, Document, Timestamp};

/// A participant's prepared transaction.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub ops: Vec<Document>,
    pub prepare_optime: OpTime,
    /// None while prepared; Some(true) committed, Some(false) aborted.
    pub decided: Option<bool>,
}

/// The shard side of cross-shard transactions.
#[derive(Debug, Default)]
pub struct ShardTxns {
    pub prepared: Mutex<HashMap<(Vec<u8>, i64), Prepared>>,
    /// Wakes writes waiting for a prepared transaction's decision.
    decided: tokio::sync::Notify,
    /// The cluster, for the coordinator to find the participants' primaries.
    pub cluster: std::sync::OnceLock<Weak<ClusterInner>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn key(cmd: &Document) -> Option<(Vec<u8>, i64)> {
    let args = session_args(cmd)?;
    Some((args.lsid.to_vec().ok()?, args.txn_number?))
}

async fn wait_majority(shared: &Shared, member: usize, at: OpTime) -> Result<(), Document> {
    match shared
        .wait_replicated(member, at, shared.majority(), Duration::from_secs(15))
        .await
    {
        WaitOutcome::Satisfied => Ok(()),
        other => Err(error(
            64,
            "WriteConcernFailed",
            &format!("not majority-committed: {other:?}"),
        )),
    }
}

/// How long a write waits for a prepared transaction on its namespace.
const PREPARE_CONFLICT_WAIT: Duration = Duration::from_secs(15);

impl ShardTxns {
    fn undecided_on(&self, ns: &str) -> bool {
        lock(&self.prepared).values().any(|p| {
            p.decided.is_none() && p.ops.iter().any(|op| op.get_str("ns").ok() == Some(ns))
        })
    }

    /// A write to `ns` waits while a prepared, undecided transaction wrote
    /// there (MongoDB's prepare conflict, per namespace here instead of per
    /// document); an error reply after [`PREPARE_CONFLICT_WAIT`].
    pub async fn wait_for_prepared(&self, ns: &str) -> Result<(), Document> {
        let deadline = tokio::time::Instant::now() + PREPARE_CONFLICT_WAIT;
        loop {
            let notified = self.decided.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.undecided_on(ns) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(error(
                    50,
                    "MaxTimeMSExpired",
                    &format!("a prepared transaction on {ns} was not decided in time"),
                ));
            }
        }
    }

    /// Whether `cmd`'s transaction is prepared (or was, and is decided) here.
    pub fn knows(&self, cmd: &Document) -> bool {
        key(cmd).is_some_and(|k| lock(&self.prepared).contains_key(&k))
    }

    /// `prepareTransaction`: the writes logged as a prepared `applyOps`, majority-committed.
    pub async fn prepare(&self, shared: &Shared, member: usize, cmd: &Document) -> Document {
        let (Some(args), Some(k)) = (session_args(cmd), key(cmd)) else {
            return error(
                72,
                "InvalidOptions",
                "prepareTransaction needs lsid and txnNumber",
            );
        };
        if let Some(p) = lock(&self.prepared).get(&k) {
            return doc! { "prepareTimestamp": p.prepare_optime.timestamp(), "ok": 1.0 };
        }
        let n = args.txn_number.unwrap_or_default();
        let term = shared.topology().term;
        let optime = {
            let mut store = shared.members[member].store();
            let rec = store.sessions.get_mut(&args.lsid);
            if rec.txn_number != n {
                return error(
                    251,
                    "NoSuchTransaction",
                    &format!("transaction {n} is not open here"),
                );
            }
            let txn = match rec.txn.take() {
                Some(TxnState::InProgress(t)) if !t.busy => t,
                other => {
                    rec.txn = other;
                    return error(
                        251,
                        "NoSuchTransaction",
                        &format!("transaction {n} cannot be prepared"),
                    );
                }
            };
            if let Some(e) = conflict_reply(&store, &txn) {
                store.sessions.get_mut(&args.lsid).txn = Some(TxnState::Aborted);
                return e;
            }
            // the session refuses further commands of this transaction
            store.sessions.get_mut(&args.lsid).txn = Some(TxnState::Aborted);
            let ops: Vec<Bson> = txn.log.ops.iter().cloned().map(Bson::Document).collect();
            let prev = OpTime { t: -1, ts: (0, 0) };
            let t = store.append_oplog_with(
                term,
                "c",
                "admin.$cmd",
                doc! { "applyOps": ops, "prepare": true },
                None,
                doc! { "lsid": args.lsid.clone(), "txnNumber": n, "prevOpTime": prev.to_doc() },
            );
            lock(&self.prepared).insert(
                k,
                Prepared {
                    ops: txn.log.ops,
                    prepare_optime: t,
                    decided: None,
                },
            );
            t
        };
        shared.members[member].publish_oplog(shared);
        if let Err(e) = wait_majority(shared, member, optime).await {
            return e;
        }
        doc! { "prepareTimestamp": optime.timestamp(), "ok": 1.0 }
    }

    /// `commitTransaction` (with `commitTimestamp`) or `abortTransaction` of a
    /// prepared transaction.
    pub async fn decide(
        &self,
        shared: &Shared,
        member: usize,
        cmd: &Document,
        commit: bool,
    ) -> Document {
        let (Some(args), Some(k)) = (session_args(cmd), key(cmd)) else {
            return error(72, "InvalidOptions", "needs lsid and txnNumber");
        };
        let n = args.txn_number.unwrap_or_default();
        let term = shared.topology().term;
        let optime = {
            let mut store = shared.members[member].store();
            let mut prepared = lock(&self.prepared);
            let Some(p) = prepared.get_mut(&k) else {
                return error(251, "NoSuchTransaction", "not prepared here");
            };
            match p.decided {
                Some(c) if c == commit => return doc! { "ok": 1.0 },
                Some(_) => return error(251, "NoSuchTransaction", "already decided the other way"),
                None => {}
            }
            p.decided = Some(commit);
            let o = if commit {
                for op in &p.ops {
                    if let Err(e) = apply_entry(&mut store, op) {
                        tracing::error!("prepared write did not apply at commit: {e}");
                    }
                }
                let ts = cmd
                    .get_timestamp("commitTimestamp")
                    .unwrap_or(p.prepare_optime.timestamp());
                doc! { "commitTransaction": 1, "commitTimestamp": ts }
            } else {
                doc! { "abortTransaction": 1 }
            };
            let t = store.append_oplog_with(
                term,
                "c",
                "admin.$cmd",
                o,
                None,
                doc! { "lsid": args.lsid.clone(), "txnNumber": n, "prevOpTime": p.prepare_optime.to_doc() },
            );
            store.sessions.get_mut(&args.lsid).txn = Some(if commit {
                TxnState::Committed
            } else {
                TxnState::Aborted
            });
            t
        };
        self.decided.notify_waiters();
        shared.members[member].publish_oplog(shared);
        if let Err(e) = wait_majority(shared, member, optime).await {
            return e;
        }
        doc! { "ok": 1.0 }
    }

    /// `coordinateCommitTransaction` on the coordinator shard's primary.
    pub async fn coordinate(
        &self,
        hook: &ShardHook,
        shared: &Shared,
        member: usize,
        cmd: &Document,
    ) -> Document {
        let Some(args) = session_args(cmd) else {
            return error(
                72,
                "InvalidOptions",
                "coordinateCommitTransaction needs a session",
            );
        };
        let Some(cluster) = self.cluster.get().and_then(Weak::upgrade) else {
            return error(6, "HostUnreachable", "the cluster is gone");
        };
        let participants: Vec<String> = cmd
            .get_array("participants")
            .into_iter()
            .flatten()
            .filter_map(Bson::as_document)
            .filter_map(|p| p.get_str("shardId").ok().map(str::to_string))
            .collect();
        let n = args.txn_number.unwrap_or_default();
        let id = doc! { "lsid": args.lsid.clone(), "txnNumber": n };
        let pool = Pool::new(shared.members[member].addr.ip(), cluster.timeout);
        let session = doc! { "lsid": args.lsid.clone(), "txnNumber": n, "autocommit": false };
        let coord_ns = "config.transaction_coordinators";
        let record = |decision: Option<Document>| {
            let mut d = doc! { "_id": id.clone(), "participants": participants.clone() };
            if let Some(dec) = decision {
                d.insert("decision", dec);
            }
            d
        };
        if let Err(e) = coordinator_write(shared, member, coord_ns, Some(record(None)), &id).await {
            return e;
        }
        // phase one: prepare everywhere
        let mut commit_ts: Option<Timestamp> = None;
        let mut failed = None;
        for p in &participants {
            let mut c = doc! { "prepareTransaction": 1, "$db": "admin", "writeConcern": { "w": "majority" } };
            c.extend(session.clone());
            let r = match cluster.shard_primary_addr(p) {
                Ok(addr) => pool.command(addr, c).await,
                Err(e) => Err(e),
            };
            match r {
                Ok(r) if is_ok(&r) => {
                    if let Ok(ts) = r.get_timestamp("prepareTimestamp") {
                        if commit_ts.is_none_or(|c| (ts.time, ts.increment) > (c.time, c.increment))
                        {
                            commit_ts = Some(ts);
                        }
                    }
                }
                Ok(r) => {
                    failed = Some(format!("{p} refused to prepare: {r}"));
                    break;
                }
                Err(e) => {
                    failed = Some(format!("{p}: {e}"));
                    break;
                }
            }
        }
        let commit = failed.is_none();
        let decision = match (commit, commit_ts) {
            (true, Some(ts)) => doc! { "decision": "commit", "commitTimestamp": ts },
            (true, None) => doc! { "decision": "commit" },
            _ => doc! { "decision": "abort" },
        };
        if let Err(e) =
            coordinator_write(shared, member, coord_ns, Some(record(Some(decision))), &id).await
        {
            return e;
        }
        // phase two: the decision everywhere
        for p in &participants {
            let mut c = if commit {
                let mut c = doc! { "commitTransaction": 1 };
                if let Some(ts) = commit_ts {
                    c.insert("commitTimestamp", ts);
                }
                c
            } else {
                doc! { "abortTransaction": 1 }
            };
            c.insert("$db", "admin");
            c.insert("writeConcern", doc! { "w": "majority" });
            c.extend(session.clone());
            let r = match cluster.shard_primary_addr(p) {
                Ok(addr) => pool.command(addr, c).await,
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                tracing::warn!("participant {p} did not take the decision: {e}");
            }
        }
        if let Err(e) = coordinator_write(shared, member, coord_ns, None, &id).await {
            return e;
        }
        let _ = hook;
        match failed {
            None => doc! { "ok": 1.0 },
            Some(why) => {
                let mut e = error(
                    251,
                    "NoSuchTransaction",
                    &format!("transaction aborted: {why}"),
                );
                e.insert(
                    "errorLabels",
                    vec![Bson::String("TransientTransactionError".into())],
                );
                e
            }
        }
    }
}

/// Upserts (`Some`) or deletes (`None`) the coordinator's record on its own
/// shard, logged and majority-committed.
async fn coordinator_write(
    shared: &Shared,
    member: usize,
    ns: &str,
    doc: Option<Document>,
    id: &Document,
) -> Result<(), Document> {
    let term = shared.topology().term;
    let t = {
        let mut store = shared.members[member].store();
        let c = store.collection_mut(ns);
        let existing = c.find_id(&Bson::Document(id.clone()));
        if let Some(seq) = existing {
            c.remove(seq);
        }
        let (op, o) = match doc {
            Some(d) => {
                let _ = store.collection_mut(ns).insert(d.clone());
                if existing.is_some() {
                    ("u", d)
                } else {
                    ("i", d)
                }
            }
            None => ("d", doc! { "_id": id.clone() }),
        };
        let o2 = (op == "u").then(|| doc! { "_id": id.clone() });
        store.append_oplog(term, op, ns, o, o2)
    };
    shared.members[member].publish_oplog(shared);
    wait_majority(shared, member, t).await
}

/// Links the shards' transaction state to the cluster once it exists.
pub fn attach(cluster: &Arc<ClusterInner>) {
    for s in &cluster.shards {
        let _ = s.hook.txns.cluster.set(Arc::downgrade(cluster));
    }
}
