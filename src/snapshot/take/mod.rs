//! `tidemark snapshot take`: plan the parts (per protocol, in [`cql`] and
//! [`mongo`]), record the snapshot before reading anything, read the parts
//! `--parallel` at a time, and rewrite the description as each part finishes.
//!
//! A part's rows are written page by page, each page its own short transaction, so
//! a `tap` appending to the same store takes turns with the snapshot at LMDB's one
//! writer (the store is opened with [`Store::open_side`], which takes no writer
//! lock). A part counts as read only once its read end is stored, after its last
//! page; `--resume` first removes the rows of parts that never got there (a row that
//! is gone from the database must not survive from the interrupted attempt), then
//! reads exactly those parts again.

pub mod cql;
pub mod cql_schema;
pub mod mongo;
pub mod mongo_shards;
pub mod shard_key;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context, Result};
use futures_util::stream::{self, StreamExt};

use super::model::{NamespaceInfo, PartInfo, PartRange, SnapshotInfo, SnapshotRow};
use super::progress::Progress;
use super::source::{redact, Source};
use super::store as snapstore;
use crate::store::{Protocol, Store, StoreError, StoreOptions};

/// What `snapshot take` was asked.
#[derive(Debug, Clone, Default)]
pub struct TakeOptions {
    /// `cql://…` or `mongodb://…`.
    pub from: String,
    /// The store directory (created when missing).
    pub store: PathBuf,
    /// `--keyspace` globs (CQL).
    pub keyspaces: Vec<String>,
    /// `--table` globs (CQL): `table` or `keyspace.table`.
    pub tables: Vec<String>,
    /// `--db` globs (MongoDB).
    pub dbs: Vec<String>,
    /// `--collection` globs (MongoDB): `coll` or `db.coll`.
    pub collections: Vec<String>,
    /// Parts read at once.
    pub parallel: usize,
    /// CQL consistency level name.
    pub consistency: String,
    /// Continue the newest unfinished snapshot of the same source.
    pub resume: bool,
    /// JSON progress lines instead of a bar.
    pub json: bool,
    /// Stop (unfinished, resumable) once this many parts finished in this run: an
    /// interruption on demand, for tests and for taking a snapshot in slices.
    pub max_parts: Option<usize>,
    /// MongoDB: read with `majority` even where snapshot reads exist (each chunk then
    /// has its own read window), as against a server without them.
    pub majority_reads: bool,
    /// MongoDB: `--from` is a sharded cluster's router; read each shard's replica
    /// set directly at one cluster time and filter orphans by the chunk map then
    /// ([`mongo_shards`]).
    pub per_shard: bool,
}

/// How a take ended.
#[derive(Debug)]
pub struct TakeReport {
    /// The snapshot as stored.
    pub info: SnapshotInfo,
    /// The error that stopped it early, if one did (what was read stays, resumable).
    pub error: Option<String>,
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

enum Scan {
    Cql(Box<cql::CqlScan>),
    Mongo(mongo::MongoScan),
    MongoShards(Box<mongo_shards::ShardedScan>),
}

impl Scan {
    /// Reads a part: (rows stored, documents left out as orphans).
    async fn scan(
        &self,
        index: u32,
        part: &PartInfo,
        sink: &mut (dyn FnMut(Vec<SnapshotRow>) -> Result<()> + Send),
    ) -> Result<(u64, u64)> {
        match self {
            Scan::Cql(s) => Ok((s.scan(index, part, sink).await?, 0)),
            Scan::Mongo(s) => Ok((s.scan(index, part, sink).await?, 0)),
            Scan::MongoShards(s) => s.scan(index, part, sink).await,
        }
    }

    /// Ends the driver's sessions and connections while the runtime still runs (the
    /// mongodb client's own drop does that work on a task that can outlive it).
    async fn close(self) {
        match self {
            Scan::Mongo(s) => s.close().await,
            Scan::MongoShards(s) => s.close().await,
            Scan::Cql(_) => {}
        }
    }
}

/// Opens (or creates) the store for side writes.
fn open_store(dir: &PathBuf) -> Result<Store> {
    match Store::open_side(dir, &StoreOptions::default()) {
        Err(StoreError::Missing { .. }) => {
            drop(Store::create(dir, &StoreOptions::default())?);
            Ok(Store::open_side(dir, &StoreOptions::default())?)
        }
        other => Ok(other?),
    }
}

/// Runs a take; `stop` ends it early (no new part starts; the snapshot stays
/// resumable). Bad input (URI, filters, consistency, nothing to resume, a host that
/// does not answer) is an `Err`; a read failing midway is a report with `error`.
pub fn run(o: &TakeOptions, stop: Arc<AtomicBool>) -> Result<TakeReport> {
    let source = Source::parse(&o.from)?;
    let redacted = redact(&o.from);
    let consistency = cql::consistency(if o.consistency.is_empty() {
        "QUORUM"
    } else {
        &o.consistency
    })?;
    if o.parallel == 0 {
        bail!("invalid --parallel 0: at least 1");
    }
    let store = Arc::new(open_store(&o.store)?);
    let protocol = match source {
        Source::Cql { .. } => Protocol::Cql,
        Source::Mongo { .. } => Protocol::Mongo,
    };
    let resumed = if o.resume {
        let newest = snapstore::list_snapshots(&store)?
            .into_iter()
            .rev()
            .find(|s| s.source == redacted && s.protocol == protocol);
        match newest {
            Some(s) if s.finished.is_none() => Some(s),
            Some(s) => bail!(
                "snapshot {} of {redacted} is finished: nothing to resume",
                s.id
            ),
            None => bail!(
                "no snapshot of {redacted} to resume in {}",
                o.store.display()
            ),
        }
    } else {
        None
    };
    // a per-shard snapshot resumes per shard, whether or not the flag is repeated
    let per_shard = o.per_shard
        || resumed.as_ref().is_some_and(|s| {
            s.parts
                .iter()
                .any(|p| matches!(p.range, PartRange::ShardIdChunk { .. }))
        });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let (scan, cluster, namespaces, parts, cluster_time) = match &source {
            Source::Cql { .. } if per_shard => {
                bail!("--per-shard reads a sharded MongoDB cluster: {redacted} is CQL")
            }
            Source::Mongo { uri } if per_shard => {
                let resume = resumed.as_ref().map(|s| s.cluster_time);
                let p = mongo_shards::connect(
                    uri,
                    &redacted,
                    (&o.dbs, &o.collections),
                    resume,
                    o.majority_reads,
                )
                .await?;
                (
                    Scan::MongoShards(Box::new(p.scan)),
                    "sharded".to_string(),
                    p.namespaces,
                    p.parts,
                    p.cluster_time,
                )
            }
            Source::Cql { hosts, credentials } => {
                let p = cql::connect(
                    hosts,
                    credentials.as_ref(),
                    consistency,
                    &o.keyspaces,
                    &o.tables,
                )
                .await?;
                (Scan::Cql(Box::new(p.scan)), p.cluster, p.namespaces, p.parts, None)
            }
            Source::Mongo { uri } => {
                let resume = resumed.as_ref().map(|s| s.cluster_time);
                let p = mongo::connect(
                    uri,
                    &redacted,
                    (&o.dbs, &o.collections),
                    resume,
                    o.majority_reads,
                )
                .await?;
                (
                    Scan::Mongo(p.scan),
                    p.cluster,
                    p.namespaces,
                    p.parts,
                    p.cluster_time,
                )
            }
        };
        let started = (|| -> Result<SnapshotInfo> {
            Ok(match resumed {
                Some(s) => {
                    if s.cluster != cluster {
                        bail!(
                            "snapshot {} was taken of cluster {:?}, {redacted} is {cluster:?}",
                            s.id,
                            s.cluster
                        );
                    }
                    let mut s = s;
                    if per_shard && s.cluster_time.is_none() {
                        // parts read earlier were filtered by the chunk map of
                        // their time, not of this run's: all are read again
                        unfinish(&store, &mut s)?;
                    }
                    purge_unfinished(&store, &s)?;
                    s
                }
                None => {
                    let mut info = SnapshotInfo {
                        id: 0,
                        source: redacted.clone(),
                        cluster,
                        protocol,
                        started: now_ns(),
                        finished: None,
                        namespaces,
                        parts,
                        cluster_time,
                    };
                    if info.parts.is_empty() {
                        info.finished = Some(now_ns());
                    }
                    info.id = snapstore::insert_info(&store, &info)?;
                    info
                }
            })
        })();
        let info = match started {
            Ok(info) => info,
            Err(e) => {
                scan.close().await;
                return Err(e);
            }
        };
        tracing::info!(snapshot = info.id, source = %info.source, parts = info.parts.len(), "snapshot take");
        let report = scan_parts(o, &store, &scan, info, stop).await;
        scan.close().await;
        report
    })
}

/// Marks every part of a per-shard take without one cluster time unread again
/// (stored): when its chunk map changed before its last part, and when it is
/// resumed (earlier parts were filtered by the map of their run), so `--resume`
/// reads it all again against one map.
fn unfinish(store: &Store, info: &mut SnapshotInfo) -> Result<()> {
    info.finished = None;
    for p in &mut info.parts {
        p.read_end = None;
        p.rows = 0;
    }
    for ns in &mut info.namespaces {
        ns.rows = 0;
        ns.bytes = 0;
    }
    snapstore::put_info(store, info)?;
    Ok(())
}

/// Deletes the rows of the parts of `info` that have no read end.
fn purge_unfinished(store: &Store, info: &SnapshotInfo) -> Result<()> {
    let unfinished: Vec<bool> = info.parts.iter().map(|p| p.read_end.is_none()).collect();
    let mut doomed: Vec<(String, String)> = Vec::new();
    for row in snapstore::rows(store, info.id, None) {
        let row = row?;
        if unfinished.get(row.part as usize).copied().unwrap_or(true) {
            doomed.push((row.namespace, row.key));
        }
    }
    for chunk in doomed.chunks(1000) {
        let keys: Vec<(&str, &str)> = chunk
            .iter()
            .map(|(n, k)| (n.as_str(), k.as_str()))
            .collect();
        store.snapshot_delete_raw(info.id, &keys)?;
    }
    Ok(())
}

async fn scan_parts(
    o: &TakeOptions,
    store: &Arc<Store>,
    scan: &Scan,
    info: SnapshotInfo,
    stop: Arc<AtomicBool>,
) -> Result<TakeReport> {
    let todo: Vec<usize> = (0..info.parts.len())
        .filter(|&i| info.parts[i].read_end.is_none())
        .collect();
    let progress = Arc::new(Mutex::new(Progress::new(
        o.json,
        info.parts.len(),
        info.parts_done(),
    )));
    let shared = Arc::new(Mutex::new(info));
    let finished_now = AtomicUsize::new(0);
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    stream::iter(todo)
        .for_each_concurrent(o.parallel, |i| {
            let store = Arc::clone(store);
            let shared = Arc::clone(&shared);
            let progress = Arc::clone(&progress);
            let stop = &stop;
            let finished_now = &finished_now;
            let errors = &errors;
            async move {
                let over = o
                    .max_parts
                    .is_some_and(|m| finished_now.load(Ordering::SeqCst) >= m);
                if over
                    || stop.load(Ordering::SeqCst)
                    || !errors.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
                {
                    return;
                }
                match read_part(&store, &shared, scan, i).await {
                    Ok(rows) => {
                        finished_now.fetch_add(1, Ordering::SeqCst);
                        let info = shared.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        progress
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .part_done(&info, rows);
                    }
                    Err(e) => errors
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(format!("{e:#}")),
                }
            }
        })
        .await;
    let mut info = shared.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Scan::MongoShards(s) = scan {
        let clean = errors.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
        if clean && info.finished.is_some() {
            if let Err(e) = s.check_catalog().await {
                unfinish(store, &mut info)?;
                errors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("{e:#}"));
            }
        }
    }
    progress
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .finish(&info);
    let error = errors
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .next();
    Ok(TakeReport { info, error })
}

/// Reads part `i`: rows page by page, then its read window and counts, together
/// with the snapshot's description, in one transaction.
async fn read_part(
    store: &Store,
    shared: &Mutex<SnapshotInfo>,
    scan: &Scan,
    i: usize,
) -> Result<u64> {
    let (id, part) = {
        let info = shared.lock().unwrap_or_else(|e| e.into_inner());
        (info.id, info.parts[i].clone())
    };
    let start = now_ns();
    let mut bytes = 0u64;
    let mut sink = |rows: Vec<SnapshotRow>| -> Result<()> {
        bytes += rows.iter().map(|r| r.data.value_bytes()).sum::<u64>();
        tokio::task::block_in_place(|| snapstore::put_rows(store, id, &rows, None))?;
        Ok(())
    };
    let index = u32::try_from(i).map_err(|_| anyhow!("too many parts"))?;
    let (rows, left_out) = scan.scan(index, &part, &mut sink).await?;
    let end = now_ns();
    let mut info = shared.lock().unwrap_or_else(|e| e.into_inner());
    let p = &mut info.parts[i];
    p.read_start = start;
    p.read_end = Some(end);
    p.rows = rows;
    if let PartRange::ShardIdChunk { orphans, .. } = &mut p.range {
        *orphans = left_out;
    }
    if let Some(ns) = info
        .namespaces
        .iter_mut()
        .find(|n| n.name == part.namespace)
    {
        add(ns, rows, bytes);
    }
    if info.parts.iter().all(|p| p.read_end.is_some()) {
        info.finished = Some(end);
    }
    tokio::task::block_in_place(|| snapstore::put_info(store, &info))?;
    Ok(rows)
}

fn add(ns: &mut NamespaceInfo, rows: u64, bytes: u64) {
    ns.rows += rows;
    ns.bytes += bytes;
}
