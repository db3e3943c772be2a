//! The cluster's ground truth, for tests and the control endpoint: the
//! logical state (per namespace, the documents the current chunk map gives
//! each shard, read from each shard's primary: no orphans, nothing counted
//! twice), each shard's raw state (orphans and received-but-uncommitted
//! chunks included), the orphans themselves, the chunk-map history (every
//! committed change with its config-server optime), each shard's and the
//! config servers' majority commit point, finished migrations and range
//! deletions, and the routers' refresh counters.

use super::cluster::MongoShardedCluster;
use crate::mongo::query::order::cmp_bson;
use crate::mongo::sharded::config::ChunkMapChange;
use crate::mongo::sharded::migration::{MigrationRecord, RangeDeletion};
use crate::mongo::storage::oplog::apply_entry;
use crate::mongo::storage::store::MemberStore;
use crate::mongo::storage::store::OpTime;
use std::collections::BTreeMap;
use tidemark_mongo::bson::{Bson, Document};

fn sort_by_id(docs: &mut [Document]) {
    docs.sort_by(|a, b| {
        cmp_bson(
            a.get("_id").unwrap_or(&Bson::Null),
            b.get("_id").unwrap_or(&Bson::Null),
        )
    });
}

impl MongoShardedCluster {
    /// Shard `id`'s documents per namespace on its primary (orphans
    /// included), in natural order. Empty for an unknown shard.
    pub fn shard_raw_state(&self, id: &str) -> BTreeMap<String, Vec<Document>> {
        let Ok(s) = self.inner.shard(id) else {
            return BTreeMap::new();
        };
        s.set.primary().map(|p| s.set.data(p)).unwrap_or_default()
    }

    /// The logical state: namespace → documents sorted by `_id`; a sharded
    /// namespace's documents come from the shard owning them under the
    /// current chunk map, an unsharded one's from its database's primary shard.
    pub fn logical_state(&self) -> BTreeMap<String, Vec<Document>> {
        let cat = self.inner.config.catalog();
        let mut out: BTreeMap<String, Vec<Document>> = BTreeMap::new();
        for s in &self.inner.shards {
            for (ns, docs) in self.shard_raw_state(&s.id) {
                let keep: Vec<Document> = match cat.tables.get(&ns) {
                    Some(t) => docs
                        .into_iter()
                        .filter(|d| t.owner_of_doc(d) == Some(s.id.as_str()))
                        .collect(),
                    None => {
                        let db = ns.split('.').next().unwrap_or_default();
                        if cat.primary_shard(db) == s.id {
                            docs
                        } else {
                            Vec::new()
                        }
                    }
                };
                out.entry(ns).or_default().extend(keep);
            }
        }
        for docs in out.values_mut() {
            sort_by_id(docs);
        }
        out
    }

    /// Shard `id`'s documents (orphans included, `config.*` left out) as of
    /// wall-clock time `ms`: its majority-committed oplog entries with
    /// `wall <= ms` replayed. `Err` for an unknown shard, or if `ms` is after
    /// the wall time of the shard's newest majority-committed entry while
    /// newer entries exist (not yet known to be committed).
    pub fn shard_state_at_wall(
        &self,
        id: &str,
        ms: i64,
    ) -> Result<BTreeMap<String, Vec<Document>>, String> {
        let s = self.inner.shard(id)?;
        let committed = s.set.committed_oplog();
        let wall = |e: &Document| e.get_datetime("wall").map_or(0, |w| w.timestamp_millis());
        let newest_wall = committed.last().map_or(0, wall);
        let last_applied_wall = s
            .set
            .primary()
            .and_then(|p| s.set.oplog(p).last().map(wall))
            .unwrap_or(0);
        if ms > newest_wall && last_applied_wall > newest_wall {
            return Err(format!(
                "shard {id}: {ms} is after its newest majority-committed entry ({newest_wall})"
            ));
        }
        let mut store = MemberStore::default();
        for e in committed {
            if wall(&e) > ms {
                break;
            }
            apply_entry(&mut store, &e).map_err(|x| format!("shard {id}: {x}"))?;
            store
                .push_replicated(e)
                .map_err(|x| format!("shard {id}: {x}"))?;
        }
        let mut out = crate::mongo::server::set_truth::collections(&store);
        out.retain(|ns, docs| !ns.starts_with("config.") && !docs.is_empty());
        Ok(out)
    }

    /// The chunk map of `ns` in force at wall-clock time `ms` (the last
    /// change whose config-server oplog entry has `wall <= ms`).
    pub fn table_at_wall(
        &self,
        ns: &str,
        ms: i64,
    ) -> Option<crate::mongo::sharded::chunks::RoutingTable> {
        self.chunk_map_history()
            .into_iter()
            .rev()
            .find(|h| h.ns == ns && h.config_wall_millis <= ms)
            .map(|h| h.table)
    }

    /// The logical state as of wall-clock time `ms` (milliseconds since the
    /// epoch): each shard's state at `ms` ([`Self::shard_state_at_wall`]),
    /// each sharded namespace kept to the documents the chunk map in force
    /// at `ms` ([`Self::table_at_wall`]) gives that shard; unsharded
    /// namespaces from their database's primary shard. One process, one
    /// clock: a migration's recipient writes come before its commit and the
    /// donor writes nothing between its last transfer and the commit, so this
    /// cut is consistent.
    pub fn logical_state_at_wall(
        &self,
        ms: i64,
    ) -> Result<BTreeMap<String, Vec<Document>>, String> {
        let primaries = self.inner.config.catalog().databases.clone();
        let first = self
            .inner
            .shards
            .first()
            .map(|s| s.id.clone())
            .unwrap_or_default();
        let mut out: BTreeMap<String, Vec<Document>> = BTreeMap::new();
        for s in &self.inner.shards {
            for (ns, docs) in self.shard_state_at_wall(&s.id, ms)? {
                let keep: Vec<Document> = match self.table_at_wall(&ns, ms) {
                    Some(t) => docs
                        .into_iter()
                        .filter(|d| t.owner_of_doc(d) == Some(s.id.as_str()))
                        .collect(),
                    None => {
                        let db = ns.split('.').next().unwrap_or_default();
                        if primaries.get(db).unwrap_or(&first) == &s.id {
                            docs
                        } else {
                            Vec::new()
                        }
                    }
                };
                out.entry(ns).or_default().extend(keep);
            }
        }
        for docs in out.values_mut() {
            sort_by_id(docs);
        }
        out.retain(|_, v| !v.is_empty());
        Ok(out)
    }

    /// Shard `id`'s documents (orphans included, `config.*` left out) as of
    /// cluster time `at` (`(secs, increment)`): its majority-committed oplog
    /// entries with `ts <= at` replayed. `Err` for an unknown shard, or while the
    /// shard's commit point is before `at` and newer entries exist (not yet known
    /// to be committed).
    pub fn shard_state_at_time(
        &self,
        id: &str,
        at: (u32, u32),
    ) -> Result<BTreeMap<String, Vec<Document>>, String> {
        let s = self.inner.shard(id)?;
        let committed = s.set.committed_oplog();
        let ts = |e: &Document| OpTime::from_doc(e).map_or((0, 0), |o| o.ts);
        let newest = committed.last().map_or((0, 0), ts);
        let last_applied = s
            .set
            .primary()
            .and_then(|p| s.set.oplog(p).last().map(ts))
            .unwrap_or((0, 0));
        if at > newest && last_applied > newest {
            return Err(format!(
                "shard {id}: {at:?} is after its newest majority-committed entry ({newest:?})"
            ));
        }
        let mut store = MemberStore::default();
        for e in committed {
            if ts(&e) > at {
                break;
            }
            apply_entry(&mut store, &e).map_err(|x| format!("shard {id}: {x}"))?;
            store
                .push_replicated(e)
                .map_err(|x| format!("shard {id}: {x}"))?;
        }
        let mut out = crate::mongo::server::set_truth::collections(&store);
        out.retain(|ns, docs| !ns.starts_with("config.") && !docs.is_empty());
        Ok(out)
    }

    /// The logical state as of cluster time `at` (`(secs, increment)`, as a
    /// `readConcern: snapshot` read's `atClusterTime`): each shard's state then
    /// ([`Self::shard_state_at_time`]), a sharded namespace kept to what the chunk
    /// map in force then (the last change whose config optime is `<= at`) gives
    /// each shard, an unsharded one from its database's primary shard. Same cut
    /// as [`Self::logical_state_at_wall`], by the one clock's timestamps.
    pub fn logical_state_at_time(
        &self,
        at: (u32, u32),
    ) -> Result<BTreeMap<String, Vec<Document>>, String> {
        let primaries = self.inner.config.catalog().databases.clone();
        let history = self.chunk_map_history();
        let first = self
            .inner
            .shards
            .first()
            .map(|s| s.id.clone())
            .unwrap_or_default();
        let mut out: BTreeMap<String, Vec<Document>> = BTreeMap::new();
        for s in &self.inner.shards {
            for (ns, docs) in self.shard_state_at_time(&s.id, at)? {
                let table = history
                    .iter()
                    .rev()
                    .find(|h| h.ns == ns && h.optime.ts <= at)
                    .map(|h| &h.table);
                let keep: Vec<Document> = match table {
                    Some(t) => docs
                        .into_iter()
                        .filter(|d| t.owner_of_doc(d) == Some(s.id.as_str()))
                        .collect(),
                    None => {
                        let db = ns.split('.').next().unwrap_or_default();
                        if primaries.get(db).unwrap_or(&first) == &s.id {
                            docs
                        } else {
                            Vec::new()
                        }
                    }
                };
                out.entry(ns).or_default().extend(keep);
            }
        }
        for docs in out.values_mut() {
            sort_by_id(docs);
        }
        out.retain(|_, v| !v.is_empty());
        Ok(out)
    }

    /// Documents of `ns` on a shard that does not own them: (shard, document).
    pub fn orphans(&self, ns: &str) -> Vec<(String, Document)> {
        let Some(t) = self.inner.config.catalog().tables.get(ns).cloned() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for s in &self.inner.shards {
            for d in self.shard_raw_state(&s.id).remove(ns).unwrap_or_default() {
                if t.owner_of_doc(&d) != Some(s.id.as_str()) {
                    out.push((s.id.clone(), d));
                }
            }
        }
        out
    }

    /// Every committed chunk-map change, oldest first.
    pub fn chunk_map_history(&self) -> Vec<ChunkMapChange> {
        self.inner.config.catalog().history.clone()
    }

    /// The shard owning `doc` of `ns` under the chunk map in force at the
    /// config-server optime `at` (the last change at or before it).
    pub fn owner_at(&self, ns: &str, doc: &Document, at: OpTime) -> Option<String> {
        self.chunk_map_history()
            .into_iter()
            .rev()
            .find(|c| c.ns == ns && c.optime <= at)
            .and_then(|c| c.table.owner_of_doc(doc).map(str::to_string))
    }

    /// Each shard's majority commit point (the newest any of its members knows).
    pub fn commit_points(&self) -> Vec<(String, OpTime)> {
        self.inner
            .shards
            .iter()
            .map(|s| (s.id.clone(), s.set.newest_commit_point()))
            .collect()
    }

    /// The config servers' majority commit point.
    pub fn config_commit_point(&self) -> OpTime {
        self.inner.config.set.newest_commit_point()
    }

    pub fn migrations(&self) -> Vec<MigrationRecord> {
        self.inner.lock_migrations().clone()
    }

    pub fn range_deletions(&self) -> Vec<RangeDeletion> {
        self.inner.lock_range_deletions().clone()
    }

    /// Per router: (config refreshes, StaleConfig retries).
    pub fn router_counters(&self) -> Vec<(u64, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        self.routers
            .iter()
            .map(|r| (r.refreshes.load(Relaxed), r.stale_retries.load(Relaxed)))
            .collect()
    }

    /// StaleConfig replies each shard sent.
    pub fn stale_replies(&self) -> Vec<(String, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        self.inner
            .shards
            .iter()
            .map(|s| (s.id.clone(), s.hook.stale_replies.load(Relaxed)))
            .collect()
    }

    /// Waits (bounded) until every scheduled range deletion has run; false on timeout.
    pub async fn wait_range_deletions(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.range_deletions().iter().all(|r| r.deleted.is_some()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
