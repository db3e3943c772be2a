//! tap-bench: committed mutations per second of `tidemark tap` from a large capture
//! into a store, against the store's own group-commit rate of the same envelopes,
//! measured in the same run (the machine is noisy: the ratio is what means something).
//!
//! `cargo run --release -p tidemark-bench --bin tap-bench [-- --cql-mb 128 --mongo-mb 64]`
//!
//! For each workload (CQL v4 lz4 prepared EXECUTEs and batches, `cql_workload`;
//! MongoDB zstd `insert_many` and `update` batches, `mongo_workload`) and each
//! durability (fsync per group, the default; no sync), every round:
//!
//! * **tap**: `tidemark::tap::run` of the pcap into a fresh store, in process:
//!   reading, reassembly, decoding, the commit tracker, group commits (`--group`).
//! * **store**: the very mutations that run stored, read back, then appended to
//!   another fresh store with `Store::append_batch` in groups of the same size.
//!
//! `store/tap` is the pipeline's cost over the store alone. Rates are medians of
//! the rounds, per second of wall time and per second of the process's CPU time
//! (`getrusage`, every thread: the tap commits groups on a thread of its own):
//! on a shared machine the wall rate mostly says how much CPU the benchmark got,
//! the CPU rate what the work costs (it leaves out fsync waits, which the wall rate
//! of the fsync runs includes).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use tidemark::commit::TrackerConfig;
use tidemark::decode::mongo::tidemark_mongo::Compressor;
use tidemark::store::{Durability, Mutation, Store, StoreOptions};
use tidemark::tap::{run as tap, TapOptions};
use tidemark_bench::{cql_workload, mongo_workload};

#[derive(Parser, Debug)]
#[command(about = "tap pipeline throughput against the store's group-commit rate")]
struct Args {
    /// TCP payload of the CQL capture, MiB.
    #[arg(long, default_value_t = 128)]
    cql_mb: usize,
    /// Wire bytes of the MongoDB capture, MiB.
    #[arg(long, default_value_t = 64)]
    mongo_mb: u64,
    /// Capture time between two packets of the MongoDB capture, µs. The default
    /// makes the default capture last about a minute of capture time, six
    /// resolution deadlines: its writes (acknowledged, no replication in sight) are
    /// decided at their deadlines while the tap runs, as in any capture longer than
    /// a deadline. A small gap (2) packs the capture into a fraction of a second, so
    /// every write is decided at its end, in one group.
    #[arg(long, default_value_t = 1_000)]
    mongo_packet_gap_us: u64,
    /// Mutations per group commit.
    #[arg(long, default_value_t = 1000)]
    group: usize,
    /// Rounds per measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Only this workload (`cql` or `mongo`).
    #[arg(long)]
    only: Option<String>,
    /// Only no-sync runs (for profiling the pipeline).
    #[arg(long)]
    no_sync_only: bool,
    /// Directory for the captures and the temporary stores (default: the system
    /// temp dir). Use the disk you care about: fsync cost is the point.
    #[arg(long)]
    dir: Option<PathBuf>,
}

const MAP_SIZE: usize = 16 << 30;

fn main() -> Result<()> {
    let args = Args::parse();
    let work = match &args.dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .context("temporary directory")?;

    let cql = work.path().join("cql.pcap");
    let conns: Vec<_> = (0..4)
        .map(|i| cql_workload::connection(0x5eed + i, (args.cql_mb << 20) / 4))
        .collect();
    cql_workload::write_pcap(BufWriter::new(File::create(&cql)?), &conns)?;
    drop(conns);
    let mongo = work.path().join("mongo.pcap");
    let workload = mongo_workload::Workload {
        target_wire_bytes: args.mongo_mb << 20,
        connections: 8,
        docs_per_insert: 100,
        updates_per_batch: 20,
        mss: 1448,
        compressor: Some(Compressor::Zstd),
        seed: 0x5eed,
        packet_gap_ns: args.mongo_packet_gap_us.saturating_mul(1_000),
    };
    let generated = mongo_workload::write_pcap(
        BufWriter::new(File::create(&mongo)?),
        &workload,
        &mut Vec::new(),
    )?;

    println!(
        "tap-bench: groups of {}, median of {} rounds; the MongoDB capture spans {:.1} s of capture time",
        args.group,
        args.rounds,
        generated.packets as f64 * workload.packet_gap_ns as f64 / 1e9
    );
    println!(
        "{:<12} {:<16} {:>9} {:>5} {:>11} {:>11} {:>9} {:>11} {:>11} {:>9}",
        "workload",
        "durability",
        "mutations",
        "MiB",
        "tap mut/s",
        "store mut/s",
        "store/tap",
        "tap /cpu-s",
        "store /cpu-s",
        "store/tap"
    );
    for (name, pcap) in [("cql lz4", &cql), ("mongo zstd", &mongo)] {
        if args.only.as_deref().is_some_and(|o| !name.starts_with(o)) {
            continue;
        }
        let mib = std::fs::metadata(pcap)?.len() as f64 / f64::from(1 << 20);
        for durability in [Durability::SyncPerGroup, Durability::NoSync] {
            if args.no_sync_only && durability == Durability::SyncPerGroup {
                continue;
            }
            let (mut taps, mut stores) = (Rates::default(), Rates::default());
            let mut count = 0;
            for _ in 0..args.rounds {
                let stored = taps.measure(|| run_tap(&args, work.path(), pcap, durability))?;
                let mutations = read_back(&stored.path().join("store"))?;
                drop(stored);
                stores.measure(|| run_store(&args, work.path(), &mutations, durability))?;
                count = mutations.len();
            }
            let (tw, sw) = (median(&mut taps.wall), median(&mut stores.wall));
            let (tc, sc) = (median(&mut taps.cpu), median(&mut stores.cpu));
            println!(
                "{name:<12} {:<16} {count:>9} {mib:>5.0} {tw:>11.0} {sw:>11.0} {:>9.2} {tc:>11.0} {sc:>11.0} {:>9.2}",
                match durability {
                    Durability::SyncPerGroup => "fsync per group",
                    Durability::NoSync => "no sync",
                },
                sw / tw,
                sc / tc
            );
        }
    }
    Ok(())
}

/// Mutations per wall second and per CPU second of each round.
#[derive(Default)]
struct Rates {
    wall: Vec<f64>,
    cpu: Vec<f64>,
}

impl Rates {
    /// Runs `f` (which returns how many mutations it committed, and a result)
    /// and records its rates.
    fn measure<T>(&mut self, f: impl FnOnce() -> Result<(usize, T)>) -> Result<T> {
        let (cpu, wall) = (process_cpu_ns(), Instant::now());
        let (n, out) = f()?;
        let n = n as f64;
        self.wall.push(n / wall.elapsed().as_secs_f64());
        self.cpu
            .push(n / ((process_cpu_ns() - cpu).max(1) as f64 / 1e9));
        Ok(out)
    }
}

/// CPU time (user + system) of the whole process so far, threads that ended
/// included, ns.
fn process_cpu_ns() -> u64 {
    // SAFETY: `getrusage` fills the zeroed struct it is given and reads nothing else.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    ns(usage.ru_utime) + ns(usage.ru_stime)
}

fn median(rates: &mut [f64]) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// `tap` into a fresh store (`DIR/store`); returns how many mutations it
/// committed, and the directory.
fn run_tap(
    args: &Args,
    dir: &Path,
    pcap: &Path,
    durability: Durability,
) -> Result<(usize, tempfile::TempDir)> {
    let store_dir = tempfile::tempdir_in(dir)?;
    let options = TapOptions {
        files: vec![pcap.to_path_buf()],
        store: store_dir.path().join("store"),
        group: args.group,
        durability,
        tracker: TrackerConfig::default(),
        ..TapOptions::default()
    };
    let report = tap(&options, Arc::new(AtomicBool::new(false)))?;
    anyhow::ensure!(
        report.read_errors.is_empty(),
        "reading {}: {:?}",
        pcap.display(),
        report.read_errors
    );
    anyhow::ensure!(report.appended > 0, "{}: nothing committed", pcap.display());
    Ok((report.appended as usize, store_dir))
}

/// Every mutation of the store at `path`, in seq order.
fn read_back(path: &Path) -> Result<Vec<Mutation>> {
    let store = Store::open(path, &StoreOptions::default().read_only())?;
    let reader = store.reader()?;
    let mutations = reader
        .seq_range(..)?
        .map(|e| e.map(|e| e.mutation))
        .collect::<tidemark::store::Result<Vec<_>>>()?;
    Ok(mutations)
}

/// `Store::append_batch` of `mutations` in groups into a fresh store.
fn run_store(
    args: &Args,
    dir: &Path,
    mutations: &[Mutation],
    durability: Durability,
) -> Result<(usize, ())> {
    let store_dir = tempfile::tempdir_in(dir)?;
    let options = StoreOptions {
        map_size: MAP_SIZE,
        durability,
        read_only: false,
    };
    let store = Store::create(store_dir.path().join("store"), &options)?;
    for group in mutations.chunks(args.group) {
        store.append_batch(group)?;
    }
    Ok((mutations.len(), ()))
}
