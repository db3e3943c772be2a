//! Verify of a version's MongoDB collections against a deployment.
//!
//! Two passes per collection (after `--db`/`--collection` and `--rename`, as the
//! restore used them):
//! 1. the version's documents in the version's own order (its key order), in chunks
//!    of [`CHUNK`]; each chunk's `_id`s are read from the target
//!    (`{_id: {$in: …}}`, read concern `majority`) and compared by hash
//!    ([`compare`]), then document by document where the hashes differ: `missing`,
//!    `different` (naming the differing fields);
//! 2. the target's `_id`s (a projection, in chunks of [`CHUNK`]) looked up in the
//!    version: those it lacks are `extra`.
//!
//! Equality is [`crate::restore::mongo::same`]'s: byte equality with `_id` first
//! (field order and BSON types count). `ranges` counts the chunks of both passes.

mod compare;

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::TryStreamExt;
use mongodb::options::ReadConcern;
use mongodb::Client;
use tidemark_mongo::bson::{doc, Bson, Document, RawDocumentBuf};

use crate::restore::mongo::plan::{self, Target};
use crate::restore::mongo::write::{key_of, Doc};
use crate::restore::mongo::{client, open_store, version_info};
use crate::restore::options::Difference;
use crate::restore::{VerifyOptions, VerifyReport};
use crate::snapshot::source::redact;
use crate::store::Store;
use crate::version::model::VersionRow;
use crate::version::stored;

/// Documents per chunk.
pub const CHUNK: usize = 1000;

/// Compares the MongoDB namespaces of `o.version` with the deployment at `uri`.
pub fn verify(o: &VerifyOptions, uri: &str) -> Result<VerifyReport> {
    let started = Instant::now();
    let redacted = redact(uri);
    let store = std::sync::Arc::new(open_store(&o.store)?);
    let info = version_info(&store, &o.store, &o.version)?;
    let targets = plan::targets(&info, &o.dbs, &o.collections, &o.renames)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let client = client::connect(uri, &redacted, "--against").await?;
        let mut report = VerifyReport {
            version: o.version.clone(),
            target: redacted.clone(),
            ..VerifyReport::default()
        };
        let r = run(o, &store, &client, &targets, &mut report).await;
        client.shutdown().await;
        r?;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    })
}

fn note(report: &mut VerifyReport, max: usize, ns: &str, key: String, kind: &str, detail: String) {
    report.different += 1;
    if report.differences.len() < max {
        report.differences.push(Difference {
            namespace: ns.to_string(),
            key,
            kind: kind.to_string(),
            detail,
        });
    }
}

async fn run(
    o: &VerifyOptions,
    store: &std::sync::Arc<Store>,
    client: &Client,
    targets: &[Target],
    report: &mut VerifyReport,
) -> Result<()> {
    // Pass 1: the version's chunks.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, Vec<Doc>)>(o.parallel * 2);
    let producer = {
        let store = std::sync::Arc::clone(store);
        let version = o.version.clone();
        let index: HashMap<String, usize> = targets
            .iter()
            .enumerate()
            .map(|(i, t)| (t.source.clone(), i))
            .collect();
        tokio::task::spawn_blocking(move || chunks(&store, &version, &index, &tx))
    };
    let mut inflight = FuturesUnordered::new();
    let mut reading = true;
    let mut failure: Option<anyhow::Error> = None;
    loop {
        while reading && failure.is_none() && inflight.len() < o.parallel {
            match rx.recv().await {
                None => reading = false,
                Some((i, docs)) => {
                    let t = &targets[i];
                    inflight.push(async move {
                        let held = held(client, t, &docs).await;
                        (i, docs, held)
                    });
                }
            }
        }
        let Some((i, docs, held)) = inflight.next().await else {
            break;
        };
        let held = match held {
            Ok(h) => h,
            Err(e) => {
                failure.get_or_insert(e);
                continue;
            }
        };
        report.rows += docs.len() as u64;
        report.ranges += 1;
        let diff = compare::chunk(&docs, &held);
        if !diff.is_empty() {
            report.ranges_unequal += 1;
        }
        for (key, kind, detail) in diff {
            note(
                report,
                o.max_differences,
                &targets[i].source,
                key,
                kind,
                detail,
            );
        }
    }
    drop(rx);
    producer
        .await
        .map_err(|e| anyhow!("reading the version: {e}"))??;
    if let Some(e) = failure {
        return Err(e);
    }
    // Pass 2: what the target holds beyond the version.
    for t in targets {
        extras(o, store, client, t, report).await?;
    }
    Ok(())
}

/// The version's selected documents, sent in chunks of one collection each.
fn chunks(
    store: &Store,
    version: &str,
    index: &HashMap<String, usize>,
    tx: &tokio::sync::mpsc::Sender<(usize, Vec<Doc>)>,
) -> Result<()> {
    let mut current: Option<(usize, Vec<Doc>)> = None;
    let mut open = true;
    stored::for_each_row(store, version, |ns, key, row| {
        let Some(&i) = index.get(ns) else {
            return Ok(true);
        };
        let VersionRow::Mongo { document } = row else {
            return Ok(true);
        };
        if current
            .as_ref()
            .is_some_and(|(j, d)| *j != i || d.len() >= CHUNK)
        {
            if let Some(c) = current.take() {
                if tx.blocking_send(c).is_err() {
                    open = false;
                    return Ok(false);
                }
            }
        }
        current.get_or_insert_with(|| (i, Vec::new())).1.push(Doc {
            key: key.to_string(),
            bytes: document,
        });
        Ok(true)
    })?;
    if open {
        if let Some(c) = current.take() {
            let _ = tx.blocking_send(c);
        }
    }
    Ok(())
}

/// The target's documents with the chunk's `_id`s, by key.
async fn held(client: &Client, t: &Target, docs: &[Doc]) -> Result<HashMap<String, Vec<u8>>> {
    let ids: Vec<Bson> = docs
        .iter()
        .filter_map(|d| {
            Document::from_reader(d.bytes.as_slice())
                .ok()?
                .get("_id")
                .cloned()
        })
        .collect();
    let c = client.database(&t.db).collection::<RawDocumentBuf>(&t.coll);
    let read = |e: mongodb::error::Error| anyhow!("reading {}: {}", t.name(), client::one_line(&e));
    let mut cursor = c
        .find(doc! {"_id": {"$in": ids}})
        .read_concern(ReadConcern::majority())
        .await
        .map_err(read)?;
    let mut out = HashMap::with_capacity(docs.len());
    while let Some(d) = cursor.try_next().await.map_err(read)? {
        if let Some(k) = key_of(&d) {
            out.insert(k, d.into_bytes());
        }
    }
    Ok(out)
}

/// Pass 2 for one collection: target `_id`s the version lacks.
async fn extras(
    o: &VerifyOptions,
    store: &Store,
    client: &Client,
    t: &Target,
    report: &mut VerifyReport,
) -> Result<()> {
    let read = |e: mongodb::error::Error| anyhow!("reading {}: {}", t.name(), client::one_line(&e));
    let mut cursor = client
        .database(&t.db)
        .collection::<RawDocumentBuf>(&t.coll)
        .find(doc! {})
        .projection(doc! {"_id": 1})
        .batch_size(CHUNK as u32)
        .read_concern(ReadConcern::majority())
        .await
        .map_err(read)?;
    let mut in_chunk = 0usize;
    let mut unequal = false;
    while let Some(d) = cursor.try_next().await.map_err(read)? {
        let Some(key) = key_of(&d) else { continue };
        let row = stored::row_key(&o.version, &t.source, &key);
        if tokio::task::block_in_place(|| store.version_entry(&row))?.is_none() {
            unequal = true;
            note(
                report,
                o.max_differences,
                &t.source,
                key,
                "extra",
                format!("in {} only", t.name()),
            );
        }
        in_chunk += 1;
        if in_chunk == CHUNK {
            report.ranges += 1;
            report.ranges_unequal += u64::from(unequal);
            (in_chunk, unequal) = (0, false);
        }
    }
    if in_chunk > 0 {
        report.ranges += 1;
        report.ranges_unequal += u64::from(unequal);
    }
    Ok(())
}
