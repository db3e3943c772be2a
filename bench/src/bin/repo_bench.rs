//! repo-bench: `tidemark repo push` against the `object_store` crate writing the same
//! bytes directly, in the same run (issue #16; aim: push ≥ 90 % of direct).
//!
//! `cargo run --release -p tidemark-bench --bin repo-bench [-- --mutations 300000 --rounds 3]`
//!
//! A store of generated CQL writes (client timestamps, a few text cells of random
//! letters, so zstd has real work) is made once. Each round, on each backend (the
//! local filesystem, and radosgw started by `scripts/radosgw.sh` unless `--no-s3`):
//! the reference seals the log into the very objects a push makes
//! (`tidemark::repo::segment::SegmentWriter`, done before the clock starts) and
//! writes them with `put`/`put_multipart` in 8 MiB parts; tidemark pushes the store
//! to a fresh prefix (reading the log, sealing, compressing, checksumming, uploading,
//! confirming, manifests). Both report MB/s of object bytes; the median round of each
//! is compared.
//!
//! What limits the ratio on a 2-core machine: the push does the sealing the
//! reference was spared (reading the log and zstd, about 250 ms of CPU per 15 MB
//! segment here, on two threads since the push compresses two segments at once),
//! and on radosgw those threads take the cores radosgw itself needs to receive.
//! radosgw's memstore OSD holds 512 MiB (`scripts/radosgw.sh`) and this bench does
//! not delete its rounds' objects: keep mutations × rounds below about 1M × 2.

#[path = "../../../tests/repo_support/mod.rs"]
mod repo_support;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use tidemark::repo::location::Repo;
use tidemark::repo::push::{
    push_store, PushOptions, DEFAULT_SEGMENT_BYTES, DEFAULT_SEGMENT_MUTATIONS,
};
use tidemark::repo::segment::SegmentWriter;
use tidemark::store::{
    Acknowledgement, Cell, CellKind, CellOp, CqlEvidence, CqlPayload, Evidence, EvidenceDetail,
    Mutation, Outcome, Payload, Source, Store, StoreOptions, TxnExtras, WriteOp,
};

#[derive(Parser, Debug)]
#[command(about = "tidemark repo push vs object_store writing the same bytes")]
struct Args {
    /// Mutations in the store.
    #[arg(long, default_value_t = 300_000)]
    mutations: u64,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Skip the radosgw backend.
    #[arg(long)]
    no_s3: bool,
}

const PART: usize = 8 << 20;

/// Opens a backend for a round: the object store and the repository URL to push to.
type Backend = Box<dyn Fn(usize) -> Result<(Arc<dyn ObjectStore>, String)>>;
const T0: u64 = 1_800_000_000_000_000_000;

fn mutation(i: u64, rng: &mut u64) -> Mutation {
    let mut text = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                *rng ^= *rng << 13;
                *rng ^= *rng >> 7;
                *rng ^= *rng << 17;
                b'a' + (*rng % 26) as u8
            })
            .collect()
    };
    let cells = (0..4)
        .map(|c| Cell {
            column: format!("c{c}").into(),
            path: None,
            value: text(48).into(),
            cql_type: "text".into(),
            timestamp: 1_700_000_000_000_000 + i as i64,
            ttl: None,
            local_deletion_time: None,
            kind: CellKind::Live,
            op: CellOp::Set,
        })
        .collect();
    Mutation {
        commit_time: T0 + i * 1_000,
        source: Source {
            node: "10.0.0.1:9042".parse().unwrap(),
            flow: 1 + i % 16,
        },
        namespace: "bench.events".into(),
        key: format!("{{\"id\":{i}}}"),
        op: WriteOp::Insert,
        outcome: Outcome::Committed,
        evidence: Evidence {
            note: "RESULT Void".into(),
            detail: EvidenceDetail::Cql(CqlEvidence::default()),
        },
        write_timestamp: Some(1_700_000_000_000_000 + i as i64),
        ttl: None,
        ack: Acknowledgement::Consistency {
            level: "QUORUM".into(),
            serial: None,
        },
        batch: None,
        payload: Payload::Cql(CqlPayload {
            cells,
            ..CqlPayload::default()
        }),
        line: None,
        line_values: None,
        ddl: None,
    }
}

fn make_store(dir: &std::path::Path, n: u64) -> Result<Store> {
    let store = Store::create(dir, &StoreOptions::default())?;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut i = 1;
    while i <= n {
        let batch: Vec<Mutation> = (i..(i + 10_000).min(n + 1))
            .map(|k| mutation(k, &mut rng))
            .collect();
        let last = i + batch.len() as u64 - 1;
        store.append_batch_with(
            &batch,
            &TxnExtras {
                tidemark: Some(T0 + last * 1_000),
                ..TxnExtras::default()
            },
        )?;
        i = last + 1;
    }
    Ok(store)
}

/// The objects a push of the whole log makes (same segmenting, same compression).
fn sealed_objects(store: &Store) -> Result<Vec<(String, Vec<u8>)>> {
    let reader = store.reader()?;
    let mut out = Vec::new();
    let mut w = SegmentWriter::default();
    let last = reader.last_seq()?;
    let mut failed = None;
    reader.for_each_raw(1, last, |seq, t, bytes| {
        if let Err(e) = w.push_raw(seq, t, bytes) {
            failed = Some(e);
            return false;
        }
        if w.mutations() >= DEFAULT_SEGMENT_MUTATIONS || w.raw_len() >= DEFAULT_SEGMENT_BYTES {
            match std::mem::take(&mut w).seal() {
                Ok(Some(s)) => out.push((
                    format!("{}-{}.seg", s.first_seq, s.last_seq),
                    s.object.to_vec(),
                )),
                Ok(None) => {}
                Err(e) => {
                    failed = Some(e);
                    return false;
                }
            }
        }
        true
    })?;
    if let Some(e) = failed {
        anyhow::bail!(e);
    }
    if let Some(s) = w.seal().map_err(anyhow::Error::msg)? {
        out.push((
            format!("{}-{}.seg", s.first_seq, s.last_seq),
            s.object.to_vec(),
        ));
    }
    Ok(out)
}

async fn direct(
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
    objects: &[(String, Vec<u8>)],
) -> Result<f64> {
    let started = Instant::now();
    for (name, bytes) in objects {
        let path = ObjectPath::from(format!("{prefix}/{name}"));
        if bytes.len() > PART {
            let up = store.put_multipart(&path).await?;
            let mut w = WriteMultipart::new_with_chunk_size(up, PART);
            for part in bytes.chunks(PART) {
                w.wait_for_capacity(2).await?;
                w.write(part);
            }
            w.finish().await?;
        } else {
            store.put(&path, PutPayload::from(bytes.clone())).await?;
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let t = Instant::now();
    let store = make_store(&tmp.path().join("store"), args.mutations)?;
    let made = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let objects = sealed_objects(&store)?;
    let sealing = t.elapsed().as_secs_f64();
    let bytes: usize = objects.iter().map(|(_, b)| b.len()).sum();
    eprintln!(
        "store: {} mutations, {} segments, {:.1} MB of objects (store made in {made:.1} s; sealing alone {sealing:.2} s = {:.1} MB/s of objects)",
        args.mutations,
        objects.len(),
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / sealing
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let mut backends: Vec<(&str, Backend)> = Vec::new();
    let files = tmp.path().join("repo");
    std::fs::create_dir_all(&files)?;
    let files_url = format!("file://{}", files.display());
    backends.push((
        "local files",
        Box::new(move |round| {
            let repo = tidemark::repo::location::open(&files_url)?;
            Ok((repo.store, format!("{files_url}/r{round}")))
        }),
    ));
    let bucket;
    if !args.no_s3 {
        match repo_support::server() {
            Some(s3) => {
                for (k, v) in s3.child_env() {
                    // SAFETY: set before any other thread reads the environment.
                    unsafe { std::env::set_var(k, v) };
                }
                bucket = format!("repo-bench-{}", std::process::id());
                s3.create_bucket(&bucket).map_err(anyhow::Error::msg)?;
                let b = bucket.clone();
                backends.push((
                    "radosgw (S3)",
                    Box::new(move |round| {
                        let repo = tidemark::repo::location::open(&format!("s3://{b}"))?;
                        Ok((repo.store, format!("s3://{b}/r{round}")))
                    }),
                ));
            }
            None => eprintln!("radosgw not available: local files only"),
        }
    }

    println!("| backend | object_store direct MB/s | tidemark push MB/s | push / direct |");
    println!("|---|---|---|---|");
    for (name, open) in &backends {
        let mut d = Vec::new();
        let mut p = Vec::new();
        for round in 0..args.rounds {
            let (os, _) = open(round)?;
            let secs = rt.block_on(direct(&os, &format!("direct-{round}"), &objects))?;
            d.push(bytes as f64 / 1e6 / secs);
            let (_, url) = open(round)?;
            let repo: Repo = tidemark::repo::location::open(&url)?;
            let o = PushOptions {
                store: Default::default(),
                repo: url.clone(),
                source: Some("bench".into()),
                segment_mutations: DEFAULT_SEGMENT_MUTATIONS,
                segment_bytes: DEFAULT_SEGMENT_BYTES,
                rate_mb: None,
                json: false,
                progress: false,
                key: None,
                drop: None,
            };
            let started = Instant::now();
            let r = push_store(&o, &repo, &store, &AtomicBool::new(false))?;
            let secs = started.elapsed().as_secs_f64();
            anyhow::ensure!(r.error.is_none(), "push failed: {:?}", r.error);
            anyhow::ensure!(
                r.bytes as usize == bytes,
                "push sent {} bytes, direct {bytes}",
                r.bytes
            );
            p.push(bytes as f64 / 1e6 / secs);
        }
        let (dm, pm) = (median(d), median(p));
        println!("| {name} | {dm:.1} | {pm:.1} | {:.2} |", pm / dm);
    }
    Ok(())
}
