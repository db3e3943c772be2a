//! mongo_repl_bench: inserts/s and latency percentiles through the real Rust
//! `mongodb` driver on a 3-member testbed replica set, at `w:1` and at
//! `w:"majority"`, measured in the same run. The w:majority numbers are
//! reported as ratios against w:1: the cost of waiting for a secondary to
//! fetch, apply and report the write (`replSetUpdatePosition`) over real
//! TCP, which is what moves the commit point.
//!
//! `cargo run --release -p tidemark-bench --bin mongo_repl_bench [-- --ops 2000 --rounds 5]`
//!
//! Rounds alternate w:1 and w:majority so both see the same machine load;
//! the median round is reported (this machine is shared and noisy).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use mongodb::bson::doc;
use mongodb::options::{ClientOptions, CollectionOptions, WriteConcern};
use tidemark_testbed::{MongoReplicaSet, ReplSetConfig};

#[derive(Parser, Debug)]
#[command(about = "Rust-driver insert throughput and p99 at w:1 and w:majority on the testbed")]
struct Args {
    /// Inserts per round and write concern.
    #[arg(long, default_value_t = 2000)]
    ops: usize,
    /// Rounds per write concern; the median is reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Concurrent inserting tasks (each sequential).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Bytes of payload per document.
    #[arg(long, default_value_t = 256)]
    doc_bytes: usize,
    /// First member's address (members use the next addresses).
    #[arg(long, default_value = "127.0.60.1")]
    base_addr: Ipv4Addr,
}

/// One round: throughput and latency percentiles in microseconds.
#[derive(Debug, Clone, Copy)]
struct Round {
    per_sec: f64,
    p50_us: u64,
    p99_us: u64,
}

async fn round(
    coll: &mongodb::Collection<mongodb::bson::Document>,
    args: &Args,
    first_id: i64,
) -> Result<Round> {
    let payload = "x".repeat(args.doc_bytes);
    let per_task = args.ops.div_ceil(args.concurrency);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..args.concurrency {
        let coll = coll.clone();
        let payload = payload.clone();
        let base = first_id + (t * per_task) as i64;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_task);
            for i in 0..per_task as i64 {
                let t0 = Instant::now();
                coll.insert_one(doc! { "_id": base + i, "p": payload.as_str() })
                    .await
                    .with_context(|| format!("insert {}", base + i))?;
                lat.push(t0.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await.context("insert task")??);
    }
    let elapsed = start.elapsed();
    lat.sort_unstable();
    let pct = |p: f64| {
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i].as_micros() as u64
    };
    Ok(Round {
        per_sec: lat.len() as f64 / elapsed.as_secs_f64(),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    })
}

fn median(mut v: Vec<Round>, key: impl Fn(&Round) -> f64) -> f64 {
    v.sort_by(|a, b| key(a).total_cmp(&key(b)));
    key(&v[v.len() / 2])
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.ops > 0 && args.rounds > 0 && args.concurrency > 0,
        "ops, rounds and concurrency must be positive"
    );
    let set = MongoReplicaSet::start(ReplSetConfig {
        base_addr: args.base_addr,
        port: 0,
        max_await: Duration::from_secs(1),
        ..ReplSetConfig::default()
    })
    .await
    .context("start the testbed replica set")?;
    let opts = ClientOptions::parse(set.uri())
        .await
        .context("connection string")?;
    let client = mongodb::Client::with_options(opts).context("driver client")?;
    let db = client.database("bench");
    let with_wc = |name: &str, wc: WriteConcern| {
        db.collection_with_options::<mongodb::bson::Document>(
            name,
            CollectionOptions::builder().write_concern(wc).build(),
        )
    };
    let w1 = with_wc("w1", WriteConcern::nodes(1));
    let wmaj = with_wc("wmajority", WriteConcern::majority());
    // warm-up: discovery, connection pools, collection creation
    round(
        &w1,
        &Args {
            ops: 200,
            ..clone_args(&args)
        },
        -1_000_000,
    )
    .await?;
    round(
        &wmaj,
        &Args {
            ops: 200,
            ..clone_args(&args)
        },
        -1_000_000,
    )
    .await?;

    let (mut r1, mut rmaj) = (Vec::new(), Vec::new());
    for r in 0..args.rounds {
        let first = (r * args.ops * 2) as i64;
        r1.push(round(&w1, &args, first).await?);
        rmaj.push(round(&wmaj, &args, first).await?);
    }
    let w1_rate = median(r1.clone(), |r| r.per_sec);
    let maj_rate = median(rmaj.clone(), |r| r.per_sec);
    let w1_p50 = median(r1.clone(), |r| r.p50_us as f64);
    let maj_p50 = median(rmaj.clone(), |r| r.p50_us as f64);
    let w1_p99 = median(r1, |r| r.p99_us as f64);
    let maj_p99 = median(rmaj, |r| r.p99_us as f64);
    println!(
        "mongo_repl_bench: 3 members, Rust mongodb 3.9.1, {} inserts x {} rounds, {} tasks, {} B payload",
        args.ops, args.rounds, args.concurrency, args.doc_bytes
    );
    println!(
        "{:<12} {:>12} {:>10} {:>10}",
        "write conc.", "inserts/s", "p50 µs", "p99 µs"
    );
    println!(
        "{:<12} {:>12.0} {:>10.0} {:>10.0}",
        "w:1", w1_rate, w1_p50, w1_p99
    );
    println!(
        "{:<12} {:>12.0} {:>10.0} {:>10.0}",
        "w:majority", maj_rate, maj_p50, maj_p99
    );
    println!(
        "w:majority / w:1: throughput x{:.2}, p50 x{:.2}, p99 x{:.2}",
        maj_rate / w1_rate,
        maj_p50 / w1_p50.max(1.0),
        maj_p99 / w1_p99.max(1.0)
    );
    let committed = set.commit_point(set.primary().unwrap_or(0));
    println!("commit point at the end: {committed:?}");
    set.stop();
    Ok(())
}

fn clone_args(a: &Args) -> Args {
    Args {
        ops: a.ops,
        rounds: a.rounds,
        concurrency: a.concurrency,
        doc_bytes: a.doc_bytes,
        base_addr: a.base_addr,
    }
}
