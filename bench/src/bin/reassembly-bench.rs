//! Reassembly throughput against a plain libpcap read loop over the same file, both
//! measured in the same run (this machine is noisy, so only the ratio means much).
//!
//! `cargo run --release -p tidemark-bench --bin reassembly-bench [-- --size-mb 512]`
//! generates `bench/data/reassembly.pcap` on first use (gitignored), then reports
//! packets/s and MB/s for each loop and the ratio of their times.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use tidemark::capture::{Assembler, AssemblerConfig, FileSource, StreamEvent};
use tidemark_bench::pcapgen::{generate, GenConfig};

#[derive(Parser)]
struct Args {
    /// Size of the generated capture in MiB.
    #[arg(long, default_value_t = 512)]
    size_mb: u64,
    /// Concurrent flows in the generated capture.
    #[arg(long, default_value_t = 2000)]
    flows: usize,
    /// Where the capture is written (reused if present).
    #[arg(long)]
    file: Option<PathBuf>,
    /// Measurement rounds; the best of each is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

struct Loop {
    time: Duration,
    packets: u64,
    bytes: u64,
}

/// The reference: libpcap's read loop and nothing else.
fn bare_read(path: &PathBuf) -> anyhow::Result<Loop> {
    let start = Instant::now();
    let mut cap = pcap::Capture::from_file(path)?;
    let (mut packets, mut bytes) = (0u64, 0u64);
    while let Ok(p) = cap.next_packet() {
        packets += 1;
        bytes += p.data.len() as u64;
    }
    Ok(Loop {
        time: start.elapsed(),
        packets,
        bytes,
    })
}

/// The same read loop feeding the tap; events are consumed and dropped.
fn reassemble(path: &PathBuf) -> anyhow::Result<(Loop, u64, u64, u64)> {
    let start = Instant::now();
    let mut src = FileSource::open(std::slice::from_ref(path))?;
    let mut tap = Assembler::new(AssemblerConfig::default());
    let mut events = Vec::with_capacity(64);
    let (mut packets, mut bytes, mut delivered) = (0u64, 0u64, 0u64);
    let mut consume = |events: &mut Vec<StreamEvent>| {
        for ev in events.drain(..) {
            if let StreamEvent::Data { bytes, .. } = ev {
                delivered += bytes.len() as u64;
            }
        }
    };
    while let Some(p) = src.next_packet() {
        packets += 1;
        bytes += p.data.len() as u64;
        tap.packet(&p, &mut events);
        consume(&mut events);
    }
    tap.finish(&mut events);
    consume(&mut events);
    let st = tap.stats();
    Ok((
        Loop {
            time: start.elapsed(),
            packets,
            bytes,
        },
        delivered,
        st.gap_bytes,
        st.flows_opened,
    ))
}

fn rate(l: &Loop) -> String {
    let s = l.time.as_secs_f64();
    format!(
        "{:>8.3} s  {:>10.0} packets/s  {:>8.1} MB/s",
        s,
        l.packets as f64 / s,
        l.bytes as f64 / s / 1e6
    )
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let path = args
        .file
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/reassembly.pcap"));
    let target = args.size_mb << 20;
    let fresh = std::fs::metadata(&path)
        .map(|m| m.len() < target)
        .unwrap_or(true);
    let mut expected = None;
    if fresh {
        std::fs::create_dir_all(path.parent().context("file has no parent")?)?;
        eprintln!(
            "generating {} ({} MiB, {} concurrent flows)...",
            path.display(),
            args.size_mb,
            args.flows
        );
        let t = Instant::now();
        let f =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let cfg = GenConfig {
            target_bytes: target,
            concurrent_flows: args.flows,
            ..GenConfig::default()
        };
        let st = generate(std::io::BufWriter::with_capacity(1 << 20, f), &cfg)?;
        eprintln!(
            "generated {} packets, {} flows, {} payload bytes in {:.1} s",
            st.packets,
            st.flows,
            st.payload_bytes,
            t.elapsed().as_secs_f64()
        );
        expected = Some(st.payload_bytes);
    }
    let size = std::fs::metadata(&path)?.len();
    println!("capture: {} ({:.0} MB)", path.display(), size as f64 / 1e6);
    // Warm the page cache so both loops read from memory.
    bare_read(&path)?;
    let mut best_read: Option<Loop> = None;
    let mut best_reasm: Option<(Loop, u64, u64, u64)> = None;
    for _ in 0..args.rounds.max(1) {
        let r = bare_read(&path)?;
        if best_read.as_ref().is_none_or(|b| r.time < b.time) {
            best_read = Some(r);
        }
        let a = reassemble(&path)?;
        if best_reasm.as_ref().is_none_or(|b| a.0.time < b.0.time) {
            best_reasm = Some(a);
        }
    }
    let (read, (reasm, delivered, gap_bytes, flows)) = (best_read.unwrap(), best_reasm.unwrap());
    println!("libpcap read loop : {}", rate(&read));
    println!("read + reassembly : {}", rate(&reasm));
    println!(
        "ratio (reassembly time / read time): {:.2}x   [{} packets, {} flows, {} payload bytes delivered, {} gap bytes]",
        reasm.time.as_secs_f64() / read.time.as_secs_f64(),
        reasm.packets,
        flows,
        delivered,
        gap_bytes
    );
    if let Some(e) = expected {
        anyhow::ensure!(
            delivered == e,
            "delivered {delivered} payload bytes, generated {e}"
        );
    }
    anyhow::ensure!(gap_bytes == 0, "gaps in a loss-free capture");
    Ok(())
}
