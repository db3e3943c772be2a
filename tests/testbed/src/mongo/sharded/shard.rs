//! A shard: one of the testbed's replica sets with a [`ShardHook`] in
//! front of its command dispatch. The hook
//! - checks the `shardVersion` a router attaches against the shard's own
//!   version of the collection (from the config servers' catalog) and
//!   answers `StaleConfig` (13388) when the majors or epochs differ (as
//!   write errors for insert/update/delete batches, as mongod does);
//! - makes writes wait while a migration's critical section holds the shard
//!   (then they see the new version and go stale);
//! - keeps updates, deletes and findAndModify off documents the shard does not
//!   own (orphans, chunks still being received), as MongoDB's shard
//!   filtering does;
//! - serves the donor side of a migration: `_migrateClone` (the chunk's
//!   documents, in batches) and `_transferMods` (the documents written since
//!   the migration started).
//!
//! Migration writes on a shard ([`migration_write`]) are logged with
//! `fromMigrate: true`, as MongoDB marks them.

use super::chunks::{RoutingTable, ShardKey};
use super::config::Catalog;
use crate::mongo::errors::error;
use crate::mongo::state::{CommandHook, HookFuture, HookOutcome, Shared};
use crate::mongo::storage::store::OpTime;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tidemark_mongo::bson::{doc, Bson, Document};

/// How long a write waits for a critical section to end.
const CRITICAL_SECTION_WAIT: Duration = Duration::from_secs(15);

/// The donor's record of a running migration.
#[derive(Debug)]
pub struct DonorMigration {
    pub ns: String,
    pub key: ShardKey,
    /// The chunk's key-space bounds.
    pub min: Bson,
    pub max: Bson,
    /// `_id`s the clone still has to send (taken when the migration started).
    pub to_clone: VecDeque<Bson>,
    /// Position in the donor primary's oplog up to which `_transferMods` has
    /// reported changes.
    pub mods_from: usize,
}

impl DonorMigration {
    fn in_range(&self, d: &Document) -> bool {
        let c = super::chunks::Chunk {
            min: self.min.clone(),
            max: self.max.clone(),
            shard: String::new(),
            version: (0, 0),
        };
        c.contains(&self.key.point_of(d))
    }
}

/// The sharding layer of one shard.
#[derive(Debug)]
pub struct ShardHook {
    pub id: String,
    pub catalog: Arc<Mutex<Catalog>>,
    /// Writes hold it shared; a migration's critical section (donor) and
    /// clone batches (recipient) hold it exclusively.
    pub gate: Arc<tokio::sync::RwLock<()>>,
    pub donor: Mutex<Option<DonorMigration>>,
    /// StaleConfig replies sent.
    pub stale_replies: AtomicU64,
    /// Prepared transactions and the coordinator's link to the cluster.
    pub txns: super::txn::ShardTxns,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

const WRITES: [&str; 5] = [
    "insert",
    "update",
    "delete",
    "findAndModify",
    "findandmodify",
];

impl ShardHook {
    pub fn new(id: &str, catalog: Arc<Mutex<Catalog>>) -> ShardHook {
        ShardHook {
            id: id.to_string(),
            catalog,
            gate: Arc::new(tokio::sync::RwLock::new(())),
            donor: Mutex::new(None),
            stale_replies: AtomicU64::new(0),
            txns: Default::default(),
        }
    }

    fn table(&self, ns: &str) -> Option<RoutingTable> {
        lock(&self.catalog).tables.get(ns).cloned()
    }

    /// StaleConfig if the router's `shardVersion` is not this shard's.
    fn check_version(&self, ns: &str, sv: &Document) -> Option<Document> {
        let table = self.table(ns);
        let wanted = table.as_ref().map(|t| (t.epoch, t.shard_version(&self.id)));
        let received_epoch = sv.get_object_id("e").ok();
        let received = sv.get_timestamp("v").ok().map(|t| (t.time, t.increment));
        let fresh = match (&wanted, received_epoch, received) {
            (Some((e, v)), Some(re), Some(rv)) => *e == re && v.0 == rv.0,
            // an unsharded collection: the router must think so too
            (None, Some(re), _) => re == super::chunks::unsharded_epoch(),
            _ => false,
        };
        if fresh {
            return None;
        }
        self.stale_replies.fetch_add(1, Ordering::Relaxed);
        let mut e = error(
            13388,
            "StaleConfig",
            &format!(
                "shard version not ok: version mismatch detected for {ns} on {}",
                self.id
            ),
        );
        e.insert("ns", ns);
        e.insert("vReceived", sv.get("v").cloned().unwrap_or(Bson::Null));
        e.insert(
            "vWanted",
            wanted.map_or(Bson::Null, |(_, v)| {
                Bson::Timestamp(super::chunks::version_ts(v))
            }),
        );
        e.insert("shardId", self.id.clone());
        Some(e)
    }

    /// Keeps an update/delete/findAndModify off the documents of `ns` this
    /// shard does not own (orphans, a chunk still being received): adds
    /// `_id: {$nin: [...]}` to each statement's filter. Upserts are left
    /// alone: the router targets them by shard key, to a range this shard owns.
    fn filter_unowned(
        &self,
        shared: &Shared,
        member: usize,
        ns: &str,
        name: &str,
        cmd: &Document,
    ) -> Option<Document> {
        let table = self.table(ns)?;
        let (list, filter_key) = match name {
            "update" => ("updates", "q"),
            "delete" => ("deletes", "q"),
            "findAndModify" | "findandmodify" => ("", "query"),
            _ => return None,
        };
        let unowned: Vec<Bson> = shared.members[member]
            .store()
            .documents(ns)
            .into_iter()
            .filter(|d| table.owner_of_doc(d) != Some(self.id.as_str()))
            .filter_map(|d| d.get("_id").cloned())
            .collect();
        if unowned.is_empty() {
            return None;
        }
        let restrict = |d: &Document| -> Document {
            let mut d = d.clone();
            if d.get_bool("upsert").unwrap_or(false) {
                return d;
            }
            let q = d.get_document(filter_key).cloned().unwrap_or_default();
            d.insert(
                filter_key,
                doc! { "$and": [q, { "_id": { "$nin": unowned.clone() } }] },
            );
            d
        };
        if list.is_empty() {
            return Some(restrict(cmd));
        }
        let stmts = cmd.get_array(list).ok()?;
        let mut out = cmd.clone();
        let new: Vec<Bson> = stmts
            .iter()
            .map(|s| match s.as_document() {
                Some(d) => Bson::Document(restrict(d)),
                None => s.clone(),
            })
            .collect();
        out.insert(list, new);
        Some(out)
    }

    async fn gate_and_check(
        &self,
        shared: &Shared,
        member: usize,
        db: &str,
        name: &str,
        cmd: &Document,
    ) -> HookOutcome {
        let Ok(sv) = cmd.get_document("shardVersion") else {
            return HookOutcome::Continue {
                guard: None,
                cmd: None,
            };
        };
        let ns = format!("{db}.{}", cmd.get_str(name).unwrap_or_default());
        if WRITES.contains(&name) {
            if let Err(e) = self.txns.wait_for_prepared(&ns).await {
                return HookOutcome::Reply(e);
            }
        }
        let guard: Option<Box<dyn Send>> = if WRITES.contains(&name) {
            match tokio::time::timeout(CRITICAL_SECTION_WAIT, self.gate.clone().read_owned()).await
            {
                Ok(g) => Some(Box::new(g)),
                Err(_) => {
                    return HookOutcome::Reply(error(
                        50,
                        "MaxTimeMSExpired",
                        "timed out waiting for a migration's critical section",
                    ))
                }
            }
        } else {
            None
        };
        if let Some(stale) = self.check_version(&ns, sv) {
            return HookOutcome::Reply(match name {
                "insert" | "update" | "delete" => stale_write_errors(name, cmd, &stale),
                _ => stale,
            });
        }
        let mut cmd = cmd.clone();
        cmd.remove("shardVersion");
        let cmd = self
            .filter_unowned(shared, member, &ns, name, &cmd)
            .unwrap_or(cmd);
        HookOutcome::Continue {
            guard,
            cmd: Some(cmd),
        }
    }

    /// `_migrateClone`: the next batch of the chunk's documents.
    fn migrate_clone(&self, shared: &Shared, member: usize, cmd: &Document) -> Document {
        let max = crate::mongo::commands::cursor::int_arg(cmd, "batchSize")
            .filter(|n| *n > 0)
            .map_or(1000, |n| n as usize);
        let mut g = lock(&self.donor);
        let Some(m) = g.as_mut() else {
            return error(2, "BadValue", "no migration is running on this shard");
        };
        let store = shared.members[member].store();
        let mut objects = Vec::new();
        let mut bytes = 0usize;
        while let Some(id) = m.to_clone.pop_front() {
            let Some(c) = store.collection(&m.ns) else {
                break;
            };
            if let Some(d) = c.find_id(&id).and_then(|s| c.get(s)) {
                if m.in_range(d) {
                    bytes += d.to_vec().map_or(0, |v| v.len());
                    objects.push(Bson::Document(d.clone()));
                }
            }
            if objects.len() >= max || bytes > 4 * 1024 * 1024 {
                break;
            }
        }
        doc! { "objects": objects, "ok": 1.0 }
    }

    /// `_transferMods`: documents of the chunk written since the last call,
    /// as `reload` (their current version) and `deleted` (`{_id}`).
    fn transfer_mods(&self, shared: &Shared, member: usize) -> Document {
        let mut g = lock(&self.donor);
        let Some(m) = g.as_mut() else {
            return error(2, "BadValue", "no migration is running on this shard");
        };
        let store = shared.members[member].store();
        let oplog = store.oplog();
        let mut ids: Vec<Bson> = Vec::new();
        let mut seen = HashSet::new();
        let mut note = |e: &Document| {
            if e.get_str("ns").ok() != Some(m.ns.as_str())
                || e.get_bool("fromMigrate").unwrap_or(false)
            {
                return;
            }
            let id = match e.get_str("op") {
                Ok("i") | Ok("d") => e.get_document("o").ok().and_then(|o| o.get("_id")).cloned(),
                Ok("u") => e
                    .get_document("o2")
                    .ok()
                    .and_then(|o| o.get("_id"))
                    .cloned(),
                _ => None,
            };
            if let Some(id) = id {
                if seen.insert(crate::mongo::storage::store::id_key(&id)) {
                    ids.push(id);
                }
            }
        };
        for e in oplog.iter().skip(m.mods_from) {
            let o = e.get_document("o").ok();
            if let Some(ops) = o.and_then(|o| o.get_array("applyOps").ok()) {
                for op in ops.iter().filter_map(Bson::as_document) {
                    note(op);
                }
            } else if o.is_some_and(|o| o.contains_key("commitTransaction")) {
                // a prepared transaction's writes take effect here: they are in
                // its prepare entry, which `prevOpTime` names (maybe before `mods_from`)
                let prev = e
                    .get_document("prevOpTime")
                    .ok()
                    .and_then(|p| p.get_timestamp("ts").ok());
                let prepare = oplog
                    .iter()
                    .rev()
                    .find(|p| p.get_timestamp("ts").ok() == prev);
                let ops = prepare
                    .and_then(|p| p.get_document("o").ok())
                    .and_then(|o| o.get_array("applyOps").ok());
                for op in ops.into_iter().flatten().filter_map(Bson::as_document) {
                    note(op);
                }
            } else {
                note(e);
            }
        }
        m.mods_from = oplog.len();
        let (mut reload, mut deleted) = (Vec::new(), Vec::new());
        let coll = store.collection(&m.ns);
        for id in ids {
            match coll.and_then(|c| c.find_id(&id).and_then(|s| c.get(s))) {
                Some(d) if m.in_range(d) => reload.push(Bson::Document(d.clone())),
                Some(_) => {}
                None => deleted.push(Bson::Document(doc! { "_id": id })),
            }
        }
        doc! { "reload": reload, "deleted": deleted, "ok": 1.0 }
    }

    /// Starts the donor side of a migration of `[min, max)` of `ns`: the
    /// `_id`s to clone and the oplog position changes are reported from,
    /// both taken under the store lock so nothing falls between them.
    pub fn start_donating(
        &self,
        shared: &Shared,
        member: usize,
        table: &RoutingTable,
        min: &Bson,
        max: &Bson,
    ) {
        let store = shared.members[member].store();
        let mut m = DonorMigration {
            ns: table.ns.clone(),
            key: table.key.clone(),
            min: min.clone(),
            max: max.clone(),
            to_clone: VecDeque::new(),
            mods_from: store.oplog().len(),
        };
        m.to_clone = store
            .documents(&table.ns)
            .into_iter()
            .filter(|d| m.in_range(d))
            .filter_map(|d| d.get("_id").cloned())
            .collect();
        drop(store);
        *lock(&self.donor) = Some(m);
    }

    pub fn stop_donating(&self) {
        *lock(&self.donor) = None;
    }
}

/// A write batch refused for its shard version, as mongod answers it:
/// `ok: 1`, nothing written, a StaleConfig write error (with the versions in
/// `errInfo`) for the first statement of an ordered batch, for every
/// statement of an unordered one.
fn stale_write_errors(name: &str, cmd: &Document, stale: &Document) -> Document {
    let list = match name {
        "insert" => "documents",
        "update" => "updates",
        _ => "deletes",
    };
    let n = cmd.get_array(list).map_or(0, Vec::len);
    let ordered = cmd.get_bool("ordered").unwrap_or(true);
    let mut info = Document::new();
    for k in ["ns", "vReceived", "vWanted", "shardId"] {
        if let Some(v) = stale.get(k) {
            info.insert(k, v.clone());
        }
    }
    let errmsg = stale.get_str("errmsg").unwrap_or("StaleConfig").to_string();
    let errors: Vec<Bson> = (0..if ordered { n.min(1) } else { n })
        .map(|i| {
            Bson::Document(doc! {
                "index": i as i32, "code": 13388, "codeName": "StaleConfig",
                "errmsg": errmsg.clone(), "errInfo": info.clone(),
            })
        })
        .collect();
    let mut r = doc! { "n": 0 };
    if name == "update" {
        r.insert("nModified", 0);
    }
    r.insert("writeErrors", errors);
    r.insert("ok", 1.0);
    r
}

impl CommandHook for ShardHook {
    fn before<'a>(
        &'a self,
        shared: &'a Shared,
        member: usize,
        db: &'a str,
        cmd: &'a Document,
    ) -> HookFuture<'a> {
        Box::pin(async move {
            let name = cmd.keys().next().cloned().unwrap_or_default();
            match name.as_str() {
                "_migrateClone" => HookOutcome::Reply(self.migrate_clone(shared, member, cmd)),
                "_transferMods" => HookOutcome::Reply(self.transfer_mods(shared, member)),
                "prepareTransaction" => {
                    HookOutcome::Reply(self.txns.prepare(shared, member, cmd).await)
                }
                "coordinateCommitTransaction" => {
                    HookOutcome::Reply(self.txns.coordinate(self, shared, member, cmd).await)
                }
                "commitTransaction" | "abortTransaction" if self.txns.knows(cmd) => {
                    let commit = name == "commitTransaction";
                    HookOutcome::Reply(self.txns.decide(shared, member, cmd, commit).await)
                }
                _ => self.gate_and_check(shared, member, db, &name, cmd).await,
            }
        })
    }
}

/// Creates `ns` (with `uuid`, else a fresh one) and logs the `create`
/// entry, marked `fromMigrate` (the migration, not a client, made it).
fn create_logged(
    store: &mut crate::mongo::storage::store::MemberStore,
    term: i64,
    ns: &str,
    uuid: Option<tidemark_mongo::bson::Binary>,
) -> OpTime {
    let (db, coll) = ns.split_once('.').unwrap_or((ns, ""));
    store.create_collection(ns, uuid);
    let ui = store.uuid(ns).map(Bson::Binary).unwrap_or(Bson::Null);
    store.append_oplog_with(
        term,
        "c",
        &format!("{db}.$cmd"),
        doc! { "create": coll },
        None,
        doc! { "ui": ui, "fromMigrate": true },
    )
}

/// A recipient creates the collection it receives a chunk of with the
/// donor's UUID, as MongoDB's recipient does (nothing if it has it).
pub fn ensure_collection(
    shared: &Shared,
    member: usize,
    ns: &str,
    uuid: Option<tidemark_mongo::bson::Binary>,
) {
    let term = shared.topology().term;
    {
        let mut store = shared.members[member].store();
        if store.collection(ns).is_some() {
            return;
        }
        create_logged(&mut store, term, ns, uuid);
    }
    shared.members[member].publish_oplog(shared);
}

/// One migration write on a shard's primary, logged with `fromMigrate:
/// true`: `Insert` (or replace, when the `_id` is there), `Delete` by `_id`.
pub enum MigrationWrite {
    Upsert(Document),
    Delete(Bson),
}

/// Applies `writes` to `ns` on `member` (the primary) and logs them; the
/// optime of the last entry, `None` if nothing changed.
pub fn migration_write(
    shared: &Shared,
    member: usize,
    ns: &str,
    writes: Vec<MigrationWrite>,
) -> Option<OpTime> {
    let term = shared.topology().term;
    let mut last = None;
    {
        let mut store = shared.members[member].store();
        if store.collection(ns).is_none() {
            last = Some(create_logged(&mut store, term, ns, None));
        }
        let ui = store.uuid(ns).map(Bson::Binary).unwrap_or(Bson::Null);
        for w in writes {
            match w {
                MigrationWrite::Upsert(d) => {
                    let id = d.get("_id").cloned().unwrap_or(Bson::Null);
                    let c = store.collection_mut(ns);
                    let (op, o2) = match c.find_id(&id) {
                        Some(seq) if c.get(seq) == Some(&d) => continue,
                        Some(seq) => {
                            c.replace(seq, d.clone());
                            ("u", Some(doc! { "_id": id }))
                        }
                        None => {
                            let _ = c.insert(d.clone());
                            ("i", None)
                        }
                    };
                    last = Some(store.append_oplog_with(
                        term,
                        op,
                        ns,
                        d,
                        o2,
                        doc! { "ui": ui.clone(), "fromMigrate": true },
                    ));
                }
                MigrationWrite::Delete(id) => {
                    let c = store.collection_mut(ns);
                    let Some(seq) = c.find_id(&id) else { continue };
                    c.remove(seq);
                    last = Some(store.append_oplog_with(
                        term,
                        "d",
                        ns,
                        doc! { "_id": id },
                        None,
                        doc! { "ui": ui.clone(), "fromMigrate": true },
                    ));
                }
            }
        }
    }
    shared.members[member].publish_oplog(shared);
    last
}
