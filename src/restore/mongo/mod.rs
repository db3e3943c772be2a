//! Restore of a version's MongoDB collections through the `mongodb` driver.
//!
//! In order: the version and the selection are checked and the target is connected
//! to (`hello`, which authenticates) before anything is written, so bad input is an
//! `Err` with nothing written. Then each missing collection is created with the
//! options and indexes the store knows ([`schema`]); a collection that is empty at
//! that moment is filled with `insert` (`ordered: false`), any other gets
//! replacement upserts by `_id` ([`write`]). Documents go in the version's order
//! (namespace, then key), in batches, `--parallel` batches in flight, paced by
//! `--rate` / `--rate-mb` ([`rate`]).
//!
//! The checkpoint ([`crate::restore::checkpoint`]) holds the last document of the
//! longest run of acknowledged batches, with the counts and which collections were
//! being inserted into; it is saved after every acknowledged batch, so a restore
//! killed at any moment resumes after its last acknowledged write, and the writes in
//! flight when it died are written again (idempotently). A finished restore clears it.
//!
//! `--overwrite` changes nothing here: MongoDB documents carry no write time to
//! compare, so a restore always replaces what differs.

pub mod client;
pub mod extjson;
pub mod plan;
pub mod progress;
pub mod rate;
pub mod same;
pub mod schema;
pub mod write;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::stream::{FuturesUnordered, StreamExt};
use mongodb::Client;
use serde::{Deserialize, Serialize};
use tidemark_mongo::bson::{doc, Document, RawDocumentBuf};

use super::options::Counts;
use super::{checkpoint, RestoreOptions, RestoreReport};
use crate::snapshot::source::redact;
use crate::store::{Store, StoreOptions};
use crate::version::model::{VersionInfo, VersionRow};
use crate::version::stored;
use plan::Target;
use schema::CollectionSchema;
use write::{Doc, Outcome, Writer};

/// Documents per batch at most.
const BATCH_DOCS: usize = 1000;
/// Payload bytes per batch at most (a command stays far below the 16 MB limit).
const BATCH_BYTES: usize = 4 << 20;
/// Errors the report keeps.
const MAX_ERRORS: usize = 10;

/// Where a restore is; the checkpoint's content (postcard: fields only at the end).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Checkpoint {
    /// The last (version namespace, key) of the acknowledged prefix: every document
    /// up to it, in the version's order, is written.
    position: Option<(String, String)>,
    /// Per target collection: written, skipped, failed, bytes.
    counts: Vec<(String, [u64; 4])>,
    /// Target collections that were empty when the restore began (filled by insert).
    inserting: Vec<String>,
    /// Target collections this restore created (their indexes are its to make).
    created: Vec<String>,
    /// The first errors.
    errors: Vec<String>,
    /// `source=target` of every collection selected: a resume must select the same.
    selection: Vec<String>,
}

impl Checkpoint {
    fn add(&mut self, ns: &str, o: &Outcome) {
        let i = match self.counts.iter().position(|(n, _)| n == ns) {
            Some(i) => i,
            None => {
                self.counts.push((ns.to_string(), [0; 4]));
                self.counts.len() - 1
            }
        };
        let c = &mut self.counts[i].1;
        c[0] += o.written;
        c[1] += o.skipped;
        c[2] += o.failed;
        c[3] += o.bytes;
        for e in &o.errors {
            if self.errors.len() < MAX_ERRORS {
                self.errors.push(e.clone());
            }
        }
    }

    fn done(&self) -> u64 {
        self.counts.iter().map(|(_, c)| c[0] + c[1] + c[2]).sum()
    }

    fn counts(&self, ns: &str) -> Counts {
        let c = self
            .counts
            .iter()
            .find(|(n, _)| n == ns)
            .map_or([0; 4], |(_, c)| *c);
        Counts {
            written: c[0],
            deletions: 0,
            skipped: c[1],
            failed: c[2],
            bytes: c[3],
        }
    }
}

/// Opens the store without its writer lock (a tap may be appending to it).
pub(crate) fn open_store(dir: &std::path::Path) -> Result<Store> {
    Store::open_side(dir, &StoreOptions::default())
        .with_context(|| format!("cannot open the store {}", dir.display()))
}

/// The version's description, or an error naming it.
pub(crate) fn version_info(
    store: &Store,
    o_store: &std::path::Path,
    name: &str,
) -> Result<VersionInfo> {
    stored::info(store, name)?
        .ok_or_else(|| anyhow!("no version {name:?} in {}", o_store.display()))
}

/// Restores the MongoDB namespaces of `o.version` into the deployment at `uri`.
pub fn restore(o: &RestoreOptions, uri: &str, stop: Arc<AtomicBool>) -> Result<RestoreReport> {
    let started = Instant::now();
    let redacted = redact(uri);
    let store = Arc::new(open_store(&o.store)?);
    let info = version_info(&store, &o.store, &o.version)?;
    let targets = plan::targets(&info, &o.dbs, &o.collections, &o.renames)?;
    let write_concern = client::write_concern(&o.write_concern)?;
    let sources: Vec<String> = targets.iter().map(|t| t.source.clone()).collect();
    let schemas = schema::collect(&store, &info, &sources)?;
    let resume_from: Option<Checkpoint> = if o.resume {
        Some(
            checkpoint::load(&store, &o.version, &redacted)?.ok_or_else(|| {
                anyhow!(
                    "no interrupted restore of version {:?} to {redacted} to resume",
                    o.version
                )
            })?,
        )
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let client = client::connect(uri, &redacted, "--to").await?;
        if let Err(e) = client::check_write_concern(&client, &write_concern).await {
            client.shutdown().await;
            return Err(e);
        }
        let sharded = match client::is_router(&client).await {
            Ok(s) => s,
            Err(e) => {
                client.shutdown().await;
                return Err(e);
            }
        };
        let job = Job {
            o,
            store: Arc::clone(&store),
            targets,
            schemas,
            sharded,
            redacted: redacted.clone(),
            writer: Writer {
                client: client.clone(),
                write_concern,
            },
        };
        let report = job.run(resume_from, stop, started).await;
        client.shutdown().await;
        report
    })
}

/// One restore, connected.
struct Job<'a> {
    o: &'a RestoreOptions,
    store: Arc<Store>,
    targets: Vec<Target>,
    schemas: BTreeMap<String, CollectionSchema>,
    /// The target is a sharded cluster's router: collections sharded in the source
    /// are sharded again on the same key when this restore creates them.
    sharded: bool,
    redacted: String,
    writer: Writer,
}

/// A batch of one collection's documents, numbered in the version's order.
struct Batch {
    seq: u64,
    target: usize,
    docs: Vec<Doc>,
    bytes: usize,
    /// (version namespace, key) of its last document.
    last: (String, String),
}

impl Job<'_> {
    fn client(&self) -> &Client {
        &self.writer.client
    }

    async fn run(
        &self,
        resume_from: Option<Checkpoint>,
        stop: Arc<AtomicBool>,
        started: Instant,
    ) -> Result<RestoreReport> {
        let o = self.o;
        let resumed = resume_from.is_some();
        let selection: Vec<String> = self
            .targets
            .iter()
            .map(|t| format!("{}={}", t.source, t.name()))
            .collect();
        let mut cp = resume_from.unwrap_or_default();
        if resumed && cp.selection != selection {
            bail!(
                "--resume continues the restore of {}; these flags select {}",
                cp.selection.join(", "),
                selection.join(", ")
            );
        }
        cp.selection = selection;
        let existing = self.existing().await?;
        let missing: Vec<bool> = self
            .targets
            .iter()
            .map(|t| !existing.get(&t.db).is_some_and(|c| c.contains(&t.coll)))
            .collect();
        let mut schema_lines = Vec::new();
        for (t, &missing) in self.targets.iter().zip(&missing) {
            if missing {
                schema_lines.extend(self.schema_lines(t));
            }
        }
        let mut report = RestoreReport {
            version: o.version.clone(),
            target: self.redacted.clone(),
            dry_run: o.dry_run,
            resumed,
            ..RestoreReport::default()
        };
        if o.dry_run {
            report.schema = schema_lines;
            for t in &self.targets {
                report.namespaces.push((
                    t.name(),
                    Counts {
                        written: t.rows,
                        ..Counts::default()
                    },
                ));
            }
            report.total.written = self.targets.iter().map(|t| t.rows).sum();
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(report);
        }
        if !resumed {
            // a new restore replaces whatever an earlier interrupted one left
            checkpoint::clear(&self.store, &o.version, &self.redacted)?;
        }
        for (t, &missing) in self.targets.iter().zip(&missing) {
            let name = t.name();
            if missing && !cp.created.contains(&name) {
                self.create(t).await?;
                cp.created.push(name.clone());
            }
            if cp.created.contains(&name) {
                if let Err(e) = self.shard(t).await {
                    if cp.errors.len() < MAX_ERRORS {
                        cp.errors.push(format!("sharding {name}: {e:#}"));
                    }
                }
                if let Some(cmd) = self.schema(t).indexes_command(&t.coll) {
                    if let Err(e) = self.command(&t.db, cmd).await {
                        if cp.errors.len() < MAX_ERRORS {
                            cp.errors.push(format!("indexes of {name}: {e:#}"));
                        }
                    }
                }
            }
            if !resumed && self.is_empty(t).await? {
                cp.inserting.push(name);
            }
        }
        report.schema = schema_lines;
        self.save(&cp)?;
        let mut error = self.stream(&mut cp, &stop).await;
        if error.is_none() {
            if let Err(e) = self.recheck_indexes(&cp).await {
                error = Some(format!("{e:#}"));
            }
        }
        report.error = error;
        if report.error.is_none() {
            checkpoint::clear(&self.store, &o.version, &self.redacted)?;
        }
        for t in &self.targets {
            let c = cp.counts(&t.name());
            report.total.written += c.written;
            report.total.skipped += c.skipped;
            report.total.failed += c.failed;
            report.total.bytes += c.bytes;
            report.namespaces.push((t.name(), c));
        }
        report.errors = cp.errors.clone();
        report.seconds = started.elapsed().as_secs_f64();
        tracing::info!(version = %o.version, target = %self.redacted, written = report.total.written, skipped = report.total.skipped, failed = report.total.failed, "restore");
        Ok(report)
    }

    fn save(&self, cp: &Checkpoint) -> Result<()> {
        tokio::task::block_in_place(|| {
            checkpoint::save(&self.store, &self.o.version, &self.redacted, cp)
        })
    }

    fn schema(&self, t: &Target) -> CollectionSchema {
        self.schemas.get(&t.source).cloned().unwrap_or_default()
    }

    /// The schema commands a missing collection gets, one line each.
    fn schema_lines(&self, t: &Target) -> Vec<String> {
        let s = self.schema(t);
        let json = |d: Document| extjson::doc_text(&d);
        let mut out = vec![format!("db {}: {}", t.db, json(s.create_command(&t.coll)))];
        if let Some(cmd) = s.shard_command(&t.db, &t.coll).filter(|_| self.sharded) {
            out.push(format!("db admin: {}", json(cmd)));
        }
        if let Some(cmd) = s.indexes_command(&t.coll) {
            out.push(format!("db {}: {}", t.db, json(cmd)));
        }
        out
    }

    /// Shards a collection this restore created on the source's shard key, when the
    /// target is a sharded cluster and the source collection was sharded: the
    /// documents are then spread by the target's own chunk map, as the source's
    /// were, instead of all landing on the database's primary shard. Run while the
    /// collection is still empty (the shard key's index is made then), and again on
    /// a resumed restore (sharding a collection on the key it has is accepted).
    async fn shard(&self, t: &Target) -> Result<()> {
        if !self.sharded {
            return Ok(());
        }
        let Some(cmd) = self.schema(t).shard_command(&t.db, &t.coll) else {
            return Ok(());
        };
        // Needed before 6.0, accepted after; "already enabled" is no error.
        let _ = self
            .client()
            .database("admin")
            .run_command(doc! {"enableSharding": t.db.clone()})
            .await;
        self.client()
            .database("admin")
            .run_command(cmd)
            .await
            .map_err(|e| anyhow!("{}", client::one_line(&e)))?;
        Ok(())
    }

    /// The target's collections in each database restored into.
    async fn existing(&self) -> Result<HashMap<String, HashSet<String>>> {
        let mut out = HashMap::new();
        for t in &self.targets {
            if out.contains_key(&t.db) {
                continue;
            }
            let names = self
                .client()
                .database(&t.db)
                .list_collection_names()
                .await
                .map_err(|e| {
                    anyhow!(
                        "listing the collections of {}: {}",
                        t.db,
                        client::one_line(&e)
                    )
                })?;
            out.insert(t.db.clone(), names.into_iter().collect::<HashSet<_>>());
        }
        Ok(out)
    }

    async fn is_empty(&self, t: &Target) -> Result<bool> {
        let one = self
            .client()
            .database(&t.db)
            .collection::<RawDocumentBuf>(&t.coll)
            .find_one(doc! {})
            .await
            .map_err(|e| anyhow!("reading {}: {}", t.name(), client::one_line(&e)))?;
        Ok(one.is_none())
    }

    /// Runs a schema command with the write concern, retrying like writes do: a
    /// `writeConcernError` is a failure too (a primary that steps down before the
    /// majority has the command may lose it in a rollback).
    async fn command(&self, db: &str, mut cmd: Document) -> Result<()> {
        cmd.insert("writeConcern", self.writer.write_concern.clone());
        let what = format!("{} in {db}", cmd.keys().next().cloned().unwrap_or_default());
        write::retry(&what, || write::run_write(self.client(), db, &cmd)).await?;
        Ok(())
    }

    /// Makes again the indexes of the collections this restore created that the
    /// target no longer lists: a failover during the restore can roll back a schema
    /// command a primary acknowledged before a majority had it.
    async fn recheck_indexes(&self, cp: &Checkpoint) -> Result<()> {
        for t in &self.targets {
            if !cp.created.contains(&t.name()) {
                continue;
            }
            let s = self.schema(t);
            let Some(cmd) = s.indexes_command(&t.coll) else {
                continue;
            };
            let listed = self
                .client()
                .database(&t.db)
                .collection::<Document>(&t.coll)
                .list_index_names()
                .await
                .map_err(|e| {
                    anyhow!(
                        "listing the indexes of {}: {}",
                        t.name(),
                        client::one_line(&e)
                    )
                })?;
            if s.indexes.keys().any(|n| !listed.contains(n)) {
                tracing::warn!(collection = %t.name(), "indexes lost during the restore: making them again");
                self.command(&t.db, cmd).await?;
            }
        }
        Ok(())
    }

    /// Creates a missing collection with its options (one that appeared meanwhile
    /// is fine).
    async fn create(&self, t: &Target) -> Result<()> {
        match self
            .command(&t.db, self.schema(t).create_command(&t.coll))
            .await
        {
            Err(e) if e.to_string().contains("(48)") => Ok(()),
            other => other,
        }
    }

    /// Reads the version and writes it; the error that stopped it early, if any.
    async fn stream(&self, cp: &mut Checkpoint, stop: &AtomicBool) -> Option<String> {
        let o = self.o;
        let mut limiter = rate::Limiter::new(o.rate, o.rate_mb);
        let batch_docs = limiter
            .batch_docs()
            .map_or(BATCH_DOCS, |n| n.min(BATCH_DOCS));
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Batch, String>>(o.parallel * 2);
        let producer = {
            let store = Arc::clone(&self.store);
            let version = o.version.clone();
            let index: HashMap<String, usize> = self
                .targets
                .iter()
                .enumerate()
                .map(|(i, t)| (t.source.clone(), i))
                .collect();
            let position = cp.position.clone();
            tokio::task::spawn_blocking(move || {
                produce(&store, &version, &index, position, batch_docs, &tx)
            })
        };
        let total: u64 = self.targets.iter().map(|t| t.rows).sum();
        let mut progress = progress::Progress::new(o.json, &o.version, total, cp.done());
        let mut bytes_this_run = 0u64;
        let mut inflight = FuturesUnordered::new();
        let mut acked: BTreeMap<u64, (usize, (String, String), Outcome)> = BTreeMap::new();
        let mut next_ack = 0u64;
        let mut error: Option<String> = None;
        let mut reading = true;
        // Bounded: each round either dispatches a batch, finishes one, or ends.
        loop {
            while reading && error.is_none() && inflight.len() < o.parallel {
                if stop.load(Ordering::SeqCst) {
                    error = Some("interrupted by a signal".into());
                    break;
                }
                match rx.recv().await {
                    None => reading = false,
                    Some(Err(e)) => error = Some(e),
                    Some(Ok(b)) => {
                        limiter.wait(b.docs.len(), b.bytes).await;
                        let t = &self.targets[b.target];
                        let insert = cp.inserting.contains(&t.name());
                        let writer = &self.writer;
                        inflight.push(async move {
                            let r = writer.write(&t.db, &t.coll, &b.docs, insert).await;
                            (b.seq, b.target, b.last, r)
                        });
                    }
                }
            }
            let Some((seq, target, last, r)) = inflight.next().await else {
                break;
            };
            match r {
                Ok(out) => {
                    bytes_this_run += out.bytes;
                    acked.insert(seq, (target, last, out));
                    let mut moved = false;
                    while let Some((target, last, out)) = acked.remove(&next_ack) {
                        cp.add(&self.targets[target].name(), &out);
                        cp.position = Some(last);
                        next_ack += 1;
                        moved = true;
                    }
                    if moved {
                        if let Err(e) = self.save(cp) {
                            error.get_or_insert(format!("saving the checkpoint: {e:#}"));
                        }
                    }
                    progress.update(
                        cp.done()
                            + acked
                                .values()
                                .map(|(_, _, o)| o.written + o.skipped + o.failed)
                                .sum::<u64>(),
                        bytes_this_run,
                    );
                }
                Err(e) => {
                    error.get_or_insert(format!("{e:#}"));
                }
            }
        }
        drop(rx);
        progress.finish();
        match producer.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                error.get_or_insert(format!("{e:#}"));
            }
            Err(e) => {
                error.get_or_insert(format!("reading the version: {e}"));
            }
        }
        if stop.load(Ordering::SeqCst) && error.is_none() && reading {
            error = Some("interrupted by a signal".into());
        }
        error
    }
}

/// Reads the version in its order and sends its selected documents after
/// `position` as batches of one collection each; stops when the receiver is gone.
fn produce(
    store: &Store,
    version: &str,
    index: &HashMap<String, usize>,
    position: Option<(String, String)>,
    batch_docs: usize,
    tx: &tokio::sync::mpsc::Sender<Result<Batch, String>>,
) -> Result<()> {
    let mut seq = 0u64;
    let mut current: Option<Batch> = None;
    let mut open = true;
    let send = |b: Batch| -> bool { tx.blocking_send(Ok(b)).is_ok() };
    stored::for_each_row(store, version, |ns, key, row| {
        let Some(&target) = index.get(ns) else {
            return Ok(true);
        };
        if let Some((pns, pkey)) = &position {
            if (ns, key) <= (pns.as_str(), pkey.as_str()) {
                return Ok(true);
            }
        }
        let VersionRow::Mongo { document } = row else {
            return Ok(true);
        };
        let full = current.as_ref().is_some_and(|b| {
            b.target != target
                || b.docs.len() >= batch_docs
                || b.bytes + document.len() > BATCH_BYTES
        });
        if full {
            if let Some(b) = current.take() {
                if !send(b) {
                    open = false;
                    return Ok(false);
                }
            }
        }
        let b = current.get_or_insert_with(|| {
            seq += 1;
            Batch {
                seq: seq - 1,
                target,
                docs: Vec::new(),
                bytes: 0,
                last: (String::new(), String::new()),
            }
        });
        b.bytes += document.len();
        b.last = (ns.to_string(), key.to_string());
        b.docs.push(Doc {
            key: key.to_string(),
            bytes: document,
        });
        Ok(true)
    })?;
    if open {
        if let Some(b) = current.take() {
            send(b);
        }
    }
    Ok(())
}
