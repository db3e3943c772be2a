//! Chunk migration, as MongoDB's `moveChunk` does it between shards: the
//! donor notes the chunk's documents and its oplog position; the recipient
//! (its primary, over the wire from its own address) pulls the documents
//! with `_migrateClone` batches and then the writes made meanwhile with
//! `_transferMods`, applying both with `fromMigrate: true` and waiting for
//! its majority; the donor enters the critical section (writes to the shard
//! wait), the last changes are transferred, the new chunk map is committed
//! through the config servers (`config.chunks` with `w: "majority"`), the
//! critical section ends (waiting writes now get StaleConfig), and the
//! donor's copies stay as orphans until the range deleter removes them
//! after `range_deleter_delay` (again `fromMigrate: true`).
//!
//! The control messages MongoDB also sends (`moveChunk` to the donor,
//! `_recvChunkStart`/`_recvChunkStatus`/`_recvChunkCommit`) are in-process
//! calls here; the data moves on the wire.

use super::client::{is_ok, WireClient};
use super::shard::{migration_write, MigrationWrite};
use super::state::{ClusterInner, Shard};
use crate::mongo::state::WaitOutcome;
use crate::mongo::storage::store::OpTime;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tidemark_mongo::bson::{doc, Bson, Document};

/// How many `_transferMods` rounds before the critical section at most.
const CATCH_UP_ROUNDS: usize = 50;

/// One finished migration.
#[derive(Debug, Clone)]
pub struct MigrationRecord {
    pub ns: String,
    pub min: Bson,
    pub max: Bson,
    pub from: String,
    pub to: String,
    /// Documents the recipient cloned.
    pub cloned: usize,
    /// Documents reloaded or deleted by `_transferMods`.
    pub transferred: usize,
    /// The config servers' optime of the commit.
    pub commit_optime: OpTime,
    pub started_millis: i64,
    pub committed_millis: i64,
}

/// A range of orphans on a donor, waiting for (or done by) the range deleter.
#[derive(Debug, Clone)]
pub struct RangeDeletion {
    pub ns: String,
    pub shard: String,
    pub min: Bson,
    pub max: Bson,
    pub due_millis: i64,
    /// Documents deleted, once done.
    pub deleted: Option<usize>,
}

pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn primary(s: &Shard) -> Result<usize, String> {
    s.set
        .primary()
        .ok_or_else(|| format!("shard {} has no primary", s.id))
}

async fn wait_majority(
    s: &Shard,
    member: usize,
    at: Option<OpTime>,
    timeout: Duration,
) -> Result<(), String> {
    let Some(at) = at else { return Ok(()) };
    let shared = s.set.shared();
    match shared
        .wait_replicated(member, at, shared.majority(), timeout)
        .await
    {
        WaitOutcome::Satisfied => Ok(()),
        other => Err(format!(
            "shard {}: migration writes not majority-committed: {other:?}",
            s.id
        )),
    }
}

/// Applies a `_transferMods` reply on the recipient; (changes, last optime).
fn apply_mods(s: &Shard, member: usize, ns: &str, r: &Document) -> (usize, Option<OpTime>) {
    let mut writes = Vec::new();
    for d in r
        .get_array("reload")
        .into_iter()
        .flatten()
        .filter_map(Bson::as_document)
    {
        writes.push(MigrationWrite::Upsert(d.clone()));
    }
    for d in r
        .get_array("deleted")
        .into_iter()
        .flatten()
        .filter_map(Bson::as_document)
    {
        if let Some(id) = d.get("_id") {
            writes.push(MigrationWrite::Delete(id.clone()));
        }
    }
    let n = writes.len();
    (n, migration_write(s.set.shared(), member, ns, writes))
}

/// Moves the chunk of `ns` holding key-space point `point` to shard `to`.
pub async fn move_chunk(
    c: &Arc<ClusterInner>,
    ns: &str,
    point: &Bson,
    to: &str,
) -> Result<MigrationRecord, String> {
    let _one = tokio::time::timeout(c.timeout * 6, c.migration_lock.lock())
        .await
        .map_err(|_| "another migration did not finish in time".to_string())?;
    let started_millis = now_millis();
    let table = c
        .config
        .catalog()
        .tables
        .get(ns)
        .cloned()
        .ok_or_else(|| format!("{ns} is not sharded"))?;
    let chunk = table
        .chunk_for(point)
        .cloned()
        .ok_or_else(|| format!("no chunk of {ns} holds {point}"))?;
    if chunk.shard == to {
        return Err(format!("the chunk is already on {to}"));
    }
    let donor = c.shard(&chunk.shard)?;
    let recipient = c.shard(to)?;
    let (dp, rp) = (primary(donor)?, primary(recipient)?);
    let uuid = donor.set.shared().members[dp].store().uuid(ns);
    super::shard::ensure_collection(recipient.set.shared(), rp, ns, uuid);
    // the recipient first clears leftovers of the range (orphans of an earlier
    // migration away from it), as MongoDB waits for such range deletions
    let leftovers: Vec<MigrationWrite> = recipient
        .set
        .documents(rp, ns)
        .into_iter()
        .filter(|d| chunk.contains(&table.key.point_of(d)))
        .filter_map(|d| d.get("_id").cloned().map(MigrationWrite::Delete))
        .collect();
    migration_write(recipient.set.shared(), rp, ns, leftovers);
    donor
        .hook
        .start_donating(donor.set.shared(), dp, &table, &chunk.min, &chunk.max);
    let result = async {
        let local = recipient.set.addresses()[rp].ip();
        let mut wire = WireClient::connect(local, donor.set.addresses()[dp], c.timeout).await?;
        let mut cloned = 0;
        let mut last = None;
        for _ in 0..1_000_000 {
            let settings = c.settings();
            let r = wire
                .command(doc! { "_migrateClone": ns, "batchSize": settings.clone_batch_docs as i64, "$db": "admin" })
                .await?;
            if !is_ok(&r) {
                return Err(format!("_migrateClone failed: {r}"));
            }
            let objects: Vec<MigrationWrite> = r
                .get_array("objects")
                .into_iter()
                .flatten()
                .filter_map(Bson::as_document)
                .map(|d| MigrationWrite::Upsert(d.clone()))
                .collect();
            if objects.is_empty() {
                break;
            }
            cloned += objects.len();
            let _g = recipient.hook.gate.write().await;
            if let Some(t) = migration_write(recipient.set.shared(), rp, ns, objects) {
                last = Some(t);
            }
            drop(_g);
            tokio::time::sleep(settings.clone_batch_pause).await;
        }
        let mut transferred = 0;
        for _ in 0..CATCH_UP_ROUNDS {
            let r = wire
                .command(doc! { "_transferMods": ns, "$db": "admin" })
                .await?;
            if !is_ok(&r) {
                return Err(format!("_transferMods failed: {r}"));
            }
            let _g = recipient.hook.gate.write().await;
            let (n, t) = apply_mods(recipient, rp, ns, &r);
            transferred += n;
            last = t.or(last);
            if n == 0 {
                break;
            }
        }
        wait_majority(recipient, rp, last, c.timeout).await?;
        // the critical section: no write reaches the donor until the commit is done
        let critical = tokio::time::timeout(c.timeout, donor.hook.gate.clone().write_owned())
            .await
            .map_err(|_| "could not enter the critical section in time".to_string())?;
        let r = wire
            .command(doc! { "_transferMods": ns, "$db": "admin" })
            .await?;
        if !is_ok(&r) {
            return Err(format!("_transferMods failed: {r}"));
        }
        let (n, t) = apply_mods(recipient, rp, ns, &r);
        transferred += n;
        wait_majority(recipient, rp, t, c.timeout).await?;
        let to = to.to_string();
        let min = chunk.min.clone();
        c.config
            .commit(ns, "moveChunk", move |t| {
                t.move_chunk(&min, &to).map(|_| ())
            })
            .await?;
        drop(critical);
        Ok((cloned, transferred))
    }
    .await;
    donor.hook.stop_donating();
    let (cloned, transferred) = match result {
        Ok(x) => x,
        Err(e) => {
            // abandon: the recipient drops what it received
            let received: Vec<MigrationWrite> = recipient
                .set
                .documents(rp, ns)
                .into_iter()
                .filter(|d| chunk.contains(&table.key.point_of(d)))
                .filter_map(|d| d.get("_id").cloned().map(MigrationWrite::Delete))
                .collect();
            migration_write(recipient.set.shared(), rp, ns, received);
            return Err(e);
        }
    };
    let commit_optime = c
        .config
        .catalog()
        .history
        .last()
        .map(|h| h.optime)
        .unwrap_or_default();
    let record = MigrationRecord {
        ns: ns.to_string(),
        min: chunk.min.clone(),
        max: chunk.max.clone(),
        from: chunk.shard.clone(),
        to: to.to_string(),
        cloned,
        transferred,
        commit_optime,
        started_millis,
        committed_millis: now_millis(),
    };
    c.lock_migrations().push(record.clone());
    schedule_range_deletion(c, ns, &chunk.shard, chunk.min, chunk.max);
    Ok(record)
}

/// Deletes the donor's orphans of `[min, max)` after the configured delay.
fn schedule_range_deletion(c: &Arc<ClusterInner>, ns: &str, shard: &str, min: Bson, max: Bson) {
    let delay = c.settings().range_deleter_delay;
    let index = {
        let mut v = c.lock_range_deletions();
        v.push(RangeDeletion {
            ns: ns.to_string(),
            shard: shard.to_string(),
            min,
            max,
            due_millis: now_millis() + delay.as_millis() as i64,
            deleted: None,
        });
        v.len() - 1
    };
    let weak: Weak<ClusterInner> = Arc::downgrade(c);
    let task = tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        for _ in 0..100 {
            let Some(c) = weak.upgrade() else { return };
            // never while a migration runs: a chunk moving back to this shard
            // would lose the documents it is receiving
            let r = match tokio::time::timeout(c.timeout * 6, c.migration_lock.lock()).await {
                Ok(guard) => {
                    let r = delete_range(&c, index);
                    drop(guard);
                    r
                }
                Err(_) => Err("a migration held the lock too long".into()),
            };
            match r {
                Ok(()) => return,
                Err(e) => tracing::warn!("range deletion waits: {e}"),
            }
            drop(c);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    c.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(task);
}

/// Runs range deletion `index` now: the shard's documents in the range that
/// it does not own under the current chunk map.
fn delete_range(c: &Arc<ClusterInner>, index: usize) -> Result<(), String> {
    let d = c
        .lock_range_deletions()
        .get(index)
        .cloned()
        .ok_or("no such range deletion")?;
    let shard = c.shard(&d.shard)?;
    let p = primary(shard)?;
    let table = c
        .config
        .catalog()
        .tables
        .get(&d.ns)
        .cloned()
        .ok_or("collection no longer sharded")?;
    let range = super::chunks::Chunk {
        min: d.min.clone(),
        max: d.max.clone(),
        shard: String::new(),
        version: (0, 0),
    };
    let orphans: Vec<MigrationWrite> = shard
        .set
        .documents(p, &d.ns)
        .into_iter()
        .filter(|doc| {
            let point = table.key.point_of(doc);
            range.contains(&point) && table.owner(&point) != Some(d.shard.as_str())
        })
        .filter_map(|doc| doc.get("_id").cloned().map(MigrationWrite::Delete))
        .collect();
    let n = orphans.len();
    migration_write(shard.set.shared(), p, &d.ns, orphans);
    if let Some(r) = c.lock_range_deletions().get_mut(index) {
        r.deleted = Some(n);
    }
    Ok(())
}
