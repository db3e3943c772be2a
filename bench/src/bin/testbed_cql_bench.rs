//! testbed-cql-bench: requests/s and latency of simple prepared INSERTs through the
//! Rust `scylla` driver on a 3-node testbed at RF 3 / QUORUM, against the same driver
//! and workload on a 1-node testbed at RF 1 / ONE, measured in the same run.
//!
//! `cargo run --release -p tidemark-bench --bin testbed-cql-bench [-- --requests 20000]`
//!
//! The reference isolates what the simulated cluster adds for a replicated write
//! (placement, three replica applies, CL arithmetic, token-aware routing over three
//! nodes' connections) from the fixed cost of the protocol and the driver. Both sides
//! run in this process on the same tokio runtime (the testbed is in-process), with
//! the same concurrency, value size and warm-up; rounds alternate the order and the
//! median round is reported, since this machine is shared and noisy. Latencies are
//! recorded in an HDR histogram (microseconds).
//!
//! One run on the shared 2-core machine (defaults: 20 000 requests × 3 rounds,
//! concurrency 32): 3 nodes 17 853 req/s, p99 9.5 ms; 1 node 28 092 req/s, p99 8.9 ms;
//! ratio 0.64× throughput, 1.07× p99. Round-to-round spread was ±25 %, so only the
//! ratio's first digit means much.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use hdrhistogram::Histogram;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::Consistency;
use tidemark_testbed::{ClusterConfig, CqlCluster};

#[derive(Parser, Debug)]
#[command(
    about = "Prepared INSERT rate and p99 through the scylla driver: 3 nodes RF 3 QUORUM vs 1 node RF 1 ONE"
)]
struct Args {
    /// Measured INSERTs per side per round.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Requests in flight at once (one task each).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Un-measured INSERTs before each measurement.
    #[arg(long, default_value_t = 2_000)]
    warmup: usize,
    /// Rounds; the median round (by requests/s) of each side is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Bytes of the text value.
    #[arg(long, default_value_t = 64)]
    value_bytes: usize,
}

/// One side of the comparison: a testbed, a connected driver, a prepared INSERT.
struct Side {
    name: &'static str,
    cluster: CqlCluster,
    session: Arc<Session>,
    insert: PreparedStatement,
}

impl Side {
    async fn start(
        name: &'static str,
        base: Ipv4Addr,
        nodes: usize,
        rf: usize,
        cl: Consistency,
    ) -> Result<Side> {
        let cluster = CqlCluster::start(ClusterConfig {
            nodes,
            base_addr: base,
            port: 0,
            spare_nodes: 0,
            ..ClusterConfig::default()
        })
        .await
        .with_context(|| format!("start the {name} testbed on {base}"))?;
        let session = SessionBuilder::new()
            .known_node(cluster.addresses()[0].to_string())
            .build()
            .await
            .with_context(|| format!("connect the scylla driver to the {name} testbed"))?;
        let seen = session.get_cluster_state().get_nodes_info().len();
        anyhow::ensure!(
            seen == nodes,
            "{name}: the driver sees {seen} nodes, not {nodes}"
        );
        session
            .query_unpaged(
                format!(
                    "CREATE KEYSPACE bench WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {rf}}}"
                ),
                (),
            )
            .await
            .context("create keyspace")?;
        session
            .query_unpaged("CREATE TABLE bench.t (k bigint PRIMARY KEY, v text)", ())
            .await
            .context("create table")?;
        let mut insert = session
            .prepare("INSERT INTO bench.t (k, v) VALUES (?, ?)")
            .await
            .context("prepare")?;
        insert.set_consistency(cl);
        Ok(Side {
            name,
            cluster,
            session: Arc::new(session),
            insert,
        })
    }

    /// Runs `requests` INSERTs with `concurrency` tasks starting at key `first`;
    /// returns (requests/s, latency histogram in µs).
    async fn run(
        &self,
        first: i64,
        requests: usize,
        concurrency: usize,
        value: &Arc<String>,
    ) -> Result<(f64, Histogram<u64>)> {
        let per_task = requests.div_ceil(concurrency.max(1));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..concurrency.max(1) {
            let session = self.session.clone();
            let insert = self.insert.clone();
            let value = value.clone();
            let from = first + (t * per_task) as i64;
            tasks.push(tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
                for k in from..from + per_task as i64 {
                    let t0 = Instant::now();
                    session
                        .execute_unpaged(&insert, (k, value.as_str()))
                        .await
                        .context("INSERT failed")?;
                    hist.saturating_record(t0.elapsed().as_micros() as u64);
                }
                anyhow::Ok(hist)
            }));
        }
        let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        for t in tasks {
            total.add(t.await.context("bench task panicked")??)?;
        }
        let secs = started.elapsed().as_secs_f64();
        Ok((total.len() as f64 / secs, total))
    }
}

struct RoundResult {
    rate: f64,
    p50_us: u64,
    p99_us: u64,
}

fn median(mut v: Vec<RoundResult>) -> RoundResult {
    v.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let mid = v.len() / 2;
    v.swap_remove(mid)
}

fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.rounds > 0 && args.requests > 0,
        "--rounds and --requests must be positive"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(bench(args))
}

async fn bench(args: Args) -> Result<()> {
    let subject = Side::start(
        "3 nodes RF 3 QUORUM",
        Ipv4Addr::new(127, 0, 30, 1),
        3,
        3,
        Consistency::Quorum,
    )
    .await?;
    let reference = Side::start(
        "1 node RF 1 ONE",
        Ipv4Addr::new(127, 0, 31, 1),
        1,
        1,
        Consistency::One,
    )
    .await?;
    let value = Arc::new("x".repeat(args.value_bytes));
    println!(
        "testbed-cql-bench: prepared INSERT (bigint key, {}-byte text) via scylla, {} requests x {} rounds, concurrency {}",
        args.value_bytes, args.requests, args.rounds, args.concurrency
    );
    let mut results: [Vec<RoundResult>; 2] = [Vec::new(), Vec::new()];
    let mut next_key = 0i64;
    for round in 0..args.rounds {
        // Alternate which side goes first so drift on a shared machine cancels out.
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let side = if which == 0 { &subject } else { &reference };
            side.run(next_key, args.warmup, args.concurrency, &value)
                .await?;
            next_key += args.warmup as i64 + args.concurrency as i64;
            let (rate, hist) = side
                .run(next_key, args.requests, args.concurrency, &value)
                .await?;
            next_key += args.requests as i64 + args.concurrency as i64;
            println!(
                "  round {round} {:<22} {:>10.0} req/s  p50 {:>6} µs  p99 {:>6} µs",
                side.name,
                rate,
                hist.value_at_quantile(0.5),
                hist.value_at_quantile(0.99)
            );
            results[which].push(RoundResult {
                rate,
                p50_us: hist.value_at_quantile(0.5),
                p99_us: hist.value_at_quantile(0.99),
            });
        }
    }
    let [s, r] = results.map(median);
    println!();
    println!(
        "{:<24} {:>12} {:>10} {:>10}",
        "side (median round)", "req/s", "p50 µs", "p99 µs"
    );
    for (name, m) in [(subject.name, &s), (reference.name, &r)] {
        println!(
            "{:<24} {:>12.0} {:>10} {:>10}",
            name, m.rate, m.p50_us, m.p99_us
        );
    }
    println!(
        "ratio 3-node/1-node: throughput {:.2}x, p99 latency {:.2}x",
        s.rate / r.rate,
        s.p99_us as f64 / r.p99_us.max(1) as f64
    );
    // Sanity: the subject's writes really are on all three replicas.
    let rows = |node: usize| {
        subject
            .cluster
            .replica_dump(node)
            .iter()
            .filter(|c| c.table == "t" && c.column == "v")
            .count()
    };
    let per_node: Vec<usize> = (0..3).map(rows).collect();
    println!("subject rows per replica: {per_node:?}");
    tokio::time::sleep(Duration::from_millis(10)).await;
    subject.cluster.stop();
    reference.cluster.stop();
    Ok(())
}
