//! MongoDB decode + write extraction throughput, against tshark over the same capture,
//! both measured in the same run (this machine is noisy; the ratio is what counts).
//!
//! `cargo run --release -p tidemark-bench --bin mongo_bench [-- --size-mb 256]`
//!
//! Generates `bench/data/mongo_zstd.pcap` and `bench/data/mongo_zlib.pcap` (gitignored)
//! with tidemark-mongo's encoder: OP_MSG `insert` batches of ~1 KB documents in
//! `documents` sequences and `update` batches, all in OP_COMPRESSED. Then, per file:
//! - tidemark direct: each message's bytes, cut in MSS chunks, through
//!   `MongoFlowDecoder` (Connection framing/decompression/pairing + write extraction
//!   + outcome rules + `write` records with relaxed Extended JSON values);
//! - tidemark decode only: the same bytes through `Connection` alone;
//! - tidemark inspect: end to end from the pcap (read, reassembly, decode, extraction,
//!   JSON serialization of every record into a sink);
//! - tshark: `tshark -r F -d tcp.port==27017,mongo -T fields -e mongo.opcode`.
//!   tshark 4.0 cannot decompress zstd (it only dissects the OP_COMPRESSED header
//!   there), so the zlib file is the like-for-like comparison.
//!
//! MB/s are wire bytes (compressed, as captured) per second of one core.

use tidemark_bench::mongo_workload as gen;
mod measure;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tidemark::decode::mongo::tidemark_mongo::Compressor;

#[derive(Parser)]
struct Args {
    /// Wire bytes of MongoDB messages per capture, in MiB.
    #[arg(long, default_value_t = 256)]
    size_mb: u64,
    /// Client connections, interleaved.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// TCP payload per segment.
    #[arg(long, default_value_t = 1448)]
    mss: usize,
    /// Measurement rounds for tidemark; the best is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Run tshark over only the first N MiB of messages (a separate, smaller capture
    /// of the same workload) and scale; 0 = the whole file.
    #[arg(long, default_value_t = 0)]
    tshark_mb: u64,
    /// Only the zstd capture (skip zlib).
    #[arg(long)]
    zstd_only: bool,
    #[arg(long, default_value = "bench/data")]
    dir: PathBuf,
    /// Internal: run `tidemark inspect --json FILE` in this process (the end-to-end
    /// measurement runs this binary as a child so its output can be counted).
    #[arg(long, hide = true)]
    inspect: Option<PathBuf>,
    /// Only the direct measurement (for profiling).
    #[arg(long)]
    direct_only: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(file) = args.inspect {
        let options = tidemark::inspect::InspectOptions {
            files: vec![file],
            json: true,
            ..Default::default()
        };
        tidemark::inspect::run(options)?;
        return Ok(());
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let mut kinds = vec![Compressor::Zstd];
    if !args.zstd_only {
        kinds.push(Compressor::Zlib);
    }
    for c in kinds {
        let w = gen::Workload {
            target_wire_bytes: args.size_mb << 20,
            connections: args.connections,
            docs_per_insert: 100,
            updates_per_batch: 20,
            mss: args.mss,
            compressor: Some(c),
            seed: 0x5eed,
            packet_gap_ns: 2_000,
        };
        measure::run(&args.dir, &w, args.rounds, args.tshark_mb, args.direct_only)?;
    }
    Ok(())
}
