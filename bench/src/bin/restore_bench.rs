//! restore-bench: `tidemark restore` of a version into a 3-node testbed (RF 3,
//! QUORUM) against a plain loader written with the same driver — prepared INSERTs of
//! the same rows at the same concurrency into the same cluster — measured in the same
//! run (issue #14). `--real HOST:PORT` adds the same pair against a running real
//! Cassandra (`bash scripts/cassandra.sh start 3`).
//!
//! `cargo run --release -p tidemark-bench --bin restore-bench [-- --rows 100000 --parallel 32 --real 127.0.0.1:9042]`
//!
//! The version is written straight into a fresh store (schema record, rows of
//! `bench.t (id int PRIMARY KEY, a text, b bigint, c blob)` with their write
//! timestamps), so what is measured is the restore alone: reading the version,
//! binding keys and cells, statements `USING TIMESTAMP`, the checkpoint, the progress.
//! The loader writes the same values to `loader.t`, the restore renames `bench` to
//! `restored`; both tables exist before either side runs. Rounds alternate which side
//! goes first (the restore side renames to a new keyspace each round); the median
//! round of each side is reported with the ratio restore / loader.

use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use futures_util::stream::{self, StreamExt};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::unprepared::Statement;
use scylla::statement::Consistency;
use tidemark::restore::{self, Rename, RestoreOptions};
use tidemark::store::{
    Cell, CellKind, CellOp, Column, NamespaceSchema, Protocol, Replication, Store, StoreOptions,
};
use tidemark::version::model::{NamespaceCount, VersionInfo, VersionRow};
use tidemark::version::stored;
use tidemark_testbed::{ClusterConfig, CqlCluster};

#[derive(Parser, Debug)]
#[command(about = "tidemark restore vs a plain prepared-INSERT loader with the same driver")]
struct Args {
    /// Rows in the version (and for the loader).
    #[arg(long, default_value_t = 50_000)]
    rows: usize,
    /// Requests in flight: the loader's concurrency and restore's --parallel.
    #[arg(long, default_value_t = 32)]
    parallel: usize,
    /// Rounds per side; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Also measure against a real Cassandra at this address (RF = its node count).
    #[arg(long, value_name = "HOST:PORT")]
    real: Option<String>,
    /// Replication factor of the real cluster's keyspaces (its node count).
    #[arg(long, default_value_t = 1)]
    real_rf: usize,
}

/// Bytes of the text and blob values.
const TEXT: usize = 40;
const BLOB: usize = 100;

fn row_values(i: i32) -> (String, i64, Vec<u8>) {
    let a = format!("{i:0>width$}", width = TEXT);
    let c = (0..BLOB).map(|k| (i as usize * 31 + k) as u8).collect();
    (a, i64::from(i) * 7, c)
}

fn payload_bytes(rows: usize) -> f64 {
    (rows * (4 + TEXT + 8 + BLOB)) as f64
}

/// Writes version `bench` of `bench.t` into a new store.
fn write_version(dir: &std::path::Path, rows: usize) -> Result<()> {
    let store = Store::create(dir, &StoreOptions::default())?;
    let col = |name: &str, ty: &str| Column {
        name: name.into(),
        cql_type: ty.into(),
    };
    store.put_schema(
        "bench.t",
        &NamespaceSchema {
            partition_key: vec!["id".into()],
            clustering: vec![],
            columns: vec![
                col("a", "text"),
                col("b", "bigint"),
                col("c", "blob"),
                col("id", "int"),
            ],
            replication: Replication {
                strategy: "SimpleStrategy".into(),
                factor: Some(3),
                per_dc: vec![],
            },
            updated_at: 0,
            user_types: vec![],
        },
    )?;
    let now_us = (tidemark::snapshot::take::now_ns() / 1000) as i64;
    let cell = |column: &str, ty: &str, value: Vec<u8>, ts: i64| Cell {
        column: column.into(),
        path: None,
        value: value.into(),
        cql_type: ty.into(),
        timestamp: ts,
        ttl: None,
        local_deletion_time: None,
        kind: CellKind::Live,
        op: CellOp::Set,
    };
    let mut rows_out: Vec<(String, String, VersionRow)> = (0..rows as i32)
        .map(|i| {
            let (a, b, c) = row_values(i);
            let ts = now_us - 1_000_000 + i64::from(i);
            (
                "bench.t".to_string(),
                format!("{{\"id\":{i}}}"),
                VersionRow::Cql {
                    cells: vec![
                        cell("a", "text", a.into_bytes(), ts),
                        cell("b", "bigint", b.to_be_bytes().to_vec(), ts),
                        cell("c", "blob", c, ts),
                    ],
                },
            )
        })
        .collect();
    rows_out.sort_by(|x, y| x.1.cmp(&y.1));
    let at = tidemark::snapshot::take::now_ns();
    let info = VersionInfo {
        name: "bench".into(),
        at,
        tidemark: at,
        created: at,
        snapshot: None,
        last_seq: 0,
        mutations: rows as u64,
        gaps: vec![],
        namespaces: vec![NamespaceCount {
            namespace: "bench.t".into(),
            protocol: Protocol::Cql,
            rows: rows as u64,
            uncertain: 0,
        }],
        uncertain: vec![],
        snapshots: vec![],
    };
    stored::write(&store, &info, rows_out)?;
    Ok(())
}

async fn run(session: &Session, cql: &str) -> Result<()> {
    let mut s = Statement::new(cql);
    s.set_consistency(Consistency::All);
    session
        .query_unpaged(s, ())
        .await
        .with_context(|| cql.to_string())?;
    Ok(())
}

async fn create_table(session: &Session, ks: &str, rf: usize) -> Result<()> {
    run(
        session,
        &format!("CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {rf}}}"),
    )
    .await?;
    run(
        session,
        &format!(
            "CREATE TABLE IF NOT EXISTS {ks}.t (id int PRIMARY KEY, a text, b bigint, c blob)"
        ),
    )
    .await
}

/// The plain loader: prepared INSERTs of the same rows, `parallel` in flight.
async fn load(session: &Session, ks: &str, rows: usize, parallel: usize) -> Result<Duration> {
    let mut insert = session
        .prepare(format!(
            "INSERT INTO {ks}.t (id, a, b, c) VALUES (?, ?, ?, ?)"
        ))
        .await?;
    insert.set_consistency(Consistency::Quorum);
    let started = Instant::now();
    let mut results = stream::iter(0..rows as i32)
        .map(|i| {
            let insert = &insert;
            async move {
                let (a, b, c) = row_values(i);
                session.execute_unpaged(insert, (i, a, b, c)).await
            }
        })
        .buffer_unordered(parallel);
    while let Some(r) = results.next().await {
        r?;
    }
    Ok(started.elapsed())
}

fn restore_into(store: &std::path::Path, to: &str, ks: &str, parallel: usize) -> Result<Duration> {
    let started = Instant::now();
    let report = restore::run(
        &RestoreOptions {
            store: store.to_path_buf(),
            version: "bench".into(),
            to: to.into(),
            keyspaces: vec![],
            tables: vec![],
            dbs: vec![],
            collections: vec![],
            renames: vec![Rename::parse(&format!("bench={ks}"))?],
            replication: None,
            parallel,
            rate: None,
            rate_mb: None,
            consistency: "QUORUM".into(),
            write_concern: "majority".into(),
            overwrite: false,
            resume: false,
            dry_run: false,
            json: true,
        },
        Arc::new(AtomicBool::new(false)),
    )?;
    if let Some(e) = report.error {
        bail!("restore: {e}");
    }
    if report.total.failed > 0 {
        bail!(
            "restore: {} rows failed: {:?}",
            report.total.failed,
            report.errors
        );
    }
    Ok(started.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Measures both sides against the cluster at `nodes` (all contact points).
fn measure(
    rt: &tokio::runtime::Runtime,
    label: &str,
    nodes: &[String],
    rf: usize,
    store: &std::path::Path,
    a: &Args,
) -> Result<()> {
    let session = rt.block_on(async {
        let mut b = SessionBuilder::new();
        for n in nodes {
            b = b.known_node(n);
        }
        b.build().await
    })?;
    let uri = format!("cql://{}", nodes.join(","));
    let (mut loader, mut restored) = (Vec::new(), Vec::new());
    for round in 0..a.rounds {
        let (lks, rks) = (format!("loader{round}"), format!("restored{round}"));
        rt.block_on(create_table(&session, &lks, rf))?;
        rt.block_on(create_table(&session, &rks, rf))?;
        let restore_side = || restore_into(store, &uri, &rks, a.parallel);
        if round % 2 == 0 {
            loader.push(rt.block_on(load(&session, &lks, a.rows, a.parallel))?);
            restored.push(restore_side()?);
        } else {
            restored.push(restore_side()?);
            loader.push(rt.block_on(load(&session, &lks, a.rows, a.parallel))?);
        }
        eprintln!(
            "{label} round {round}: loader {:.2} s, restore {:.2} s",
            loader[round].as_secs_f64(),
            restored[round].as_secs_f64()
        );
    }
    let (l, r) = (median(loader).as_secs_f64(), median(restored).as_secs_f64());
    let rows = a.rows as f64;
    let mb = payload_bytes(a.rows) / 1e6;
    println!(
        "{label}: loader {:.0} rows/s {:.1} MB/s; restore {:.0} rows/s {:.1} MB/s; restore / loader = {:.2}",
        rows / l,
        mb / l,
        rows / r,
        mb / r,
        l / r
    );
    Ok(())
}

fn main() -> Result<()> {
    let a = Args::parse();
    let dir = tempfile::tempdir()?;
    let store = dir.path().join("store");
    write_version(&store, a.rows)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let cluster = rt.block_on(CqlCluster::start(ClusterConfig {
        nodes: 3,
        base_addr: Ipv4Addr::new(127, 0, 91, 1),
        port: 0,
        ..ClusterConfig::default()
    }))?;
    let nodes: Vec<String> = cluster.addresses().iter().map(|a| a.to_string()).collect();
    measure(&rt, "3-node testbed RF 3 QUORUM", &nodes, 3, &store, &a)?;
    cluster.stop();
    if let Some(real) = &a.real {
        measure(
            &rt,
            &format!("real Cassandra at {real}"),
            std::slice::from_ref(real),
            a.real_rf,
            &store,
            &a,
        )?;
    }
    Ok(())
}
