//! Issue #11 (a): decode + extraction of typed writes, no output and no store, on one
//! generated mixed capture, against a bare libpcap read of the same file and tshark,
//! all measured in the same run (the machine is noisy: the ratios mean something).
//!
//! `cargo run --release -p tidemark-bench --bin mixed-bench [-- --size-mb 560]`
//!
//! The capture (`bench/data/mixed.pcap`, gitignored) is four workloads interleaved
//! packet by packet, each about a quarter of the file: CQL v4 plain and CQL v4 lz4
//! (prepared 10-column EXECUTEs, every tenth request a BATCH of five; from
//! `cql_workload`), MongoDB OP_MSG plain and OP_COMPRESSED zstd (inserts of ~1 KB
//! documents, update batches; from `mongo_workload`). Each workload is written to
//! its own file, then merged; the merge moves each workload into its own /24 (third
//! octet of both addresses) so the four never share a flow.
//!
//! Reported, best of `--rounds`:
//! - bare read: the `pcap` crate's `next_packet` loop over the file, bytes summed;
//! - read + reassembly: tidemark's file source and TCP assembler, events dropped;
//! - decode + extraction: `inspect` without output (read, reassembly, protocol
//!   detection, decode, decompression, pairing, write records), writes counted and
//!   checked against what the generators made;
//! - tshark (`-Y "cql || mongo"`, one field) on `mixed_slice.pcap`, the first
//!   `--slice-mb` of the mixed file, and tidemark's decode + extraction on the same
//!   slice.
//!
//! Times are CPU seconds (this thread's, tshark's as a child's), not wall time: the
//! machine's cores are shared with other builds. MB/s are 10^6 bytes per CPU second,
//! of three byte counts: the pcap file
//! (what libpcap reads), the TCP payload (wire bytes as the protocols sent them) and
//! the uncompressed payload (every message as it would be without compression: the
//! work the decoders do). `--reuse` measures an existing `mixed.pcap` again (the
//! generator's counts are kept in `mixed.json` next to it); `--decode-only` runs just
//! decode + extraction once, for `perf record`. It runs on mimalloc, the allocator of
//! the `tidemark` binary; `--no-default-features` runs it on the system allocator.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use clap::Parser;
use serde_json::json;
use tidemark::capture::pcap_writer::PcapWriter;
use tidemark::capture::{Assembler, AssemblerConfig, FileSource, LinkType, Timestamp};
use tidemark::decode::cql::protocol::frame::Compression;
use tidemark::decode::mongo::tidemark_mongo::Compressor;
use tidemark::decode::records::{Record, WireOutcome};
use tidemark::decode::registry::default_registry;
use tidemark::inspect::{inspect, InspectOptions};
use tidemark_bench::{cql_workload, mongo_workload};

#[derive(Parser)]
struct Args {
    /// Approximate size of the mixed capture in MiB (payload of the four workloads).
    #[arg(long, default_value_t = 560)]
    size_mb: u64,
    /// MiB of the mixed capture's beginning that tshark reads.
    #[arg(long, default_value_t = 16)]
    slice_mb: u64,
    /// Rounds per measurement; the best is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    #[arg(long, default_value = "bench/data")]
    dir: PathBuf,
    /// Measure the existing capture again instead of generating it.
    #[arg(long)]
    reuse: bool,
    /// Only decode + extraction, once (for profiling).
    #[arg(long)]
    decode_only: bool,
}

/// What the generators put in the capture.
#[derive(Default, Clone, Copy)]
struct Counts {
    file: u64,
    payload: u64,
    plain: u64,
    writes: u64,
}

/// Writes the four workloads to their own files; returns them with their counts.
fn parts(dir: &Path, size_mb: u64) -> anyhow::Result<(Vec<PathBuf>, Counts)> {
    let quarter = (size_mb << 20) / 4;
    let mut c = Counts::default();
    let mut paths = Vec::new();
    for (i, compression) in [Compression::None, Compression::Lz4]
        .into_iter()
        .enumerate()
    {
        let conns: Vec<cql_workload::Streams> = (0..4)
            .map(|k| cql_workload::connection_with(0x5eed + k, quarter as usize / 4, compression))
            .collect();
        let path = dir.join(format!("mixed_part{i}.pcap"));
        cql_workload::write_pcap(
            BufWriter::with_capacity(1 << 20, File::create(&path)?),
            &conns,
        )?;
        for s in &conns {
            c.payload += (s.c2s.len() + s.s2c.len()) as u64;
            c.plain += s.plain;
            c.writes += s.writes;
        }
        paths.push(path);
    }
    for (i, compressor) in [None, Some(Compressor::Zstd)].into_iter().enumerate() {
        let w = mongo_workload::Workload {
            target_wire_bytes: quarter,
            connections: 8,
            docs_per_insert: 100,
            updates_per_batch: 20,
            mss: 1448,
            compressor,
            seed: 0x5eed + i as u64,
            packet_gap_ns: 2_000,
        };
        let path = dir.join(format!("mixed_part{}.pcap", 2 + i));
        let mut keep = Vec::new();
        let g = mongo_workload::write_pcap(
            BufWriter::with_capacity(1 << 20, File::create(&path)?),
            &w,
            &mut keep,
        )?;
        c.payload += g.wire_bytes;
        c.plain += g.plain_bytes;
        c.writes += g.writes;
        paths.push(path);
    }
    Ok((paths, c))
}

/// Interleaves the parts into `out` (and its first `slice` bytes into `slice_out`),
/// each part advancing in proportion to its size so all four run to the end together.
fn merge(parts: &[PathBuf], out: &Path, slice_out: &Path, slice: u64) -> anyhow::Result<u64> {
    let sizes: Vec<f64> = parts
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len() as f64))
        .collect::<Result<_, _>>()?;
    let mut srcs: Vec<FileSource> = parts
        .iter()
        .map(|p| FileSource::open(std::slice::from_ref(p)))
        .collect::<Result<_, _>>()?;
    let mut w = PcapWriter::new(
        BufWriter::with_capacity(1 << 20, File::create(out)?),
        LinkType::Ethernet,
        65_535,
    )?;
    let mut sw = Some(PcapWriter::new(
        BufWriter::new(File::create(slice_out)?),
        LinkType::Ethernet,
        65_535,
    )?);
    let mut done = vec![0f64; parts.len()];
    let mut live: Vec<bool> = vec![true; parts.len()];
    let (mut ts, mut bytes) = (1_795_000_000_000_000_000u64, 24u64);
    let mut frame = Vec::with_capacity(65_536);
    while let Some(i) = (0..parts.len())
        .filter(|&i| live[i])
        .min_by(|&a, &b| (done[a] / sizes[a]).total_cmp(&(done[b] / sizes[b])))
    {
        let Some(p) = srcs[i].next_packet() else {
            live[i] = false;
            continue;
        };
        frame.clear();
        frame.extend_from_slice(p.data);
        // Ethernet (14) + IPv4: source address at 26, destination at 30.
        frame[28] = i as u8;
        frame[32] = i as u8;
        ts += 1_000;
        w.write(Timestamp(ts), &frame)?;
        done[i] += frame.len() as f64 + 16.0;
        bytes += frame.len() as u64 + 16;
        if bytes > slice {
            if let Some(s) = sw.take() {
                s.finish()?;
            }
        } else if let Some(s) = sw.as_mut() {
            s.write(Timestamp(ts), &frame)?;
        }
    }
    w.finish()?;
    if let Some(s) = sw {
        s.finish()?;
    }
    Ok(bytes)
}

fn best<T>(
    rounds: usize,
    mut f: impl FnMut() -> anyhow::Result<(Duration, T)>,
) -> anyhow::Result<(Duration, T)> {
    let mut out = f()?;
    for _ in 1..rounds {
        let r = f()?;
        if r.0 < out.0 {
            out = r;
        }
    }
    Ok(out)
}

/// CPU time of this thread (`/proc/thread-self/schedstat`, ns), falling back to
/// wall time: other builds share this machine's two cores, and the time a thread
/// waits for a core is not the code's.
struct Cpu {
    cpu: Option<u64>,
    wall: Instant,
}

fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

impl Cpu {
    fn now() -> Cpu {
        Cpu {
            cpu: thread_cpu_ns(),
            wall: Instant::now(),
        }
    }

    fn elapsed(&self) -> Duration {
        match (self.cpu, thread_cpu_ns()) {
            (Some(a), Some(b)) => Duration::from_nanos(b.saturating_sub(a)),
            _ => self.wall.elapsed(),
        }
    }
}

/// User + system CPU time of waited-for children (`/proc/self/stat` fields 16 and
/// 17, in clock ticks of 10 ms).
fn children_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the `(comm)`, which may contain spaces: field 3 is index 0.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(13).copied().unwrap_or(0) + f.get(14).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn mbs(bytes: u64, t: Duration) -> f64 {
    bytes as f64 / 1e6 / t.as_secs_f64()
}

/// The reference floor: libpcap handing out every packet, nothing else.
fn bare_read(path: &Path) -> anyhow::Result<(Duration, u64)> {
    let start = Cpu::now();
    let mut cap = pcap::Capture::from_file(path)?;
    // The file header, then a 16-byte record header per packet.
    let mut bytes = 24u64;
    loop {
        match cap.next_packet() {
            Ok(p) => bytes += u64::from(p.header.caplen) + 16,
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok((start.elapsed(), bytes))
}

/// tidemark's file source and TCP reassembly, stream events dropped.
fn reassemble(path: &Path) -> anyhow::Result<(Duration, u64)> {
    let start = Cpu::now();
    let mut src = FileSource::open(&[path.to_path_buf()])?;
    let mut asm = Assembler::new(AssemblerConfig::default());
    let mut events = Vec::new();
    let mut n = 0u64;
    while let Some(p) = src.next_packet() {
        asm.packet(&p, &mut events);
        n += events.len() as u64;
        events.clear();
    }
    asm.finish(&mut events);
    Ok((start.elapsed(), n + events.len() as u64))
}

/// Decode + extraction: every record made and dropped; (writes, errors) counted.
fn decode(path: &Path) -> anyhow::Result<(Duration, (u64, u64))> {
    let opts = InspectOptions {
        files: vec![path.to_path_buf()],
        ..InspectOptions::default()
    };
    let start = Cpu::now();
    let (mut writes, mut errors) = (0u64, 0u64);
    inspect(&opts, default_registry(), |r| {
        match r {
            Record::Write(w) if w.outcome != WireOutcome::Unresolved => writes += 1,
            Record::Error(_) => errors += 1,
            _ => {}
        }
        Ok(())
    })?;
    Ok((start.elapsed(), (writes, errors)))
}

fn tshark(path: &Path) -> anyhow::Result<Option<(Duration, u64)>> {
    let start = children_cpu();
    let Ok(out) = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-Y", "cql || mongo", "-T", "fields", "-e", "frame.number"])
        .output()
    else {
        return Ok(None);
    };
    let t = children_cpu().saturating_sub(start);
    ensure!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(Some((
        t,
        out.stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count() as u64,
    )))
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let (mixed, slice, meta) = (
        a.dir.join("mixed.pcap"),
        a.dir.join("mixed_slice.pcap"),
        a.dir.join("mixed.json"),
    );
    let c = if a.reuse || a.decode_only {
        let v: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&meta).with_context(|| format!("reading {}", meta.display()))?,
        )?;
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        Counts {
            file: n("file"),
            payload: n("payload"),
            plain: n("plain"),
            writes: n("writes"),
        }
    } else {
        let t0 = Instant::now();
        let (paths, mut c) = parts(&a.dir, a.size_mb)?;
        c.file = merge(&paths, &mixed, &slice, a.slice_mb << 20)?;
        for p in &paths {
            std::fs::remove_file(p)?;
        }
        let v = json!({"file": c.file, "payload": c.payload, "plain": c.plain, "writes": c.writes});
        std::fs::write(&meta, v.to_string())?;
        println!("generated {} in {:.1?}", mixed.display(), t0.elapsed());
        c
    };
    println!(
        "capture: {:.0} MB pcap, {:.0} MB TCP payload, {:.0} MB uncompressed, {} writes",
        c.file as f64 / 1e6,
        c.payload as f64 / 1e6,
        c.plain as f64 / 1e6,
        c.writes
    );
    if a.decode_only {
        let (t, (w, e)) = decode(&mixed)?;
        println!("decode + extraction {:.2?}: {w} writes, {e} errors", t);
        return Ok(());
    }
    let (t_read, bytes) = best(a.rounds, || bare_read(&mixed))?;
    ensure!(
        bytes == c.file,
        "libpcap read {bytes} bytes, the generator wrote {}",
        c.file
    );
    let (t_asm, _) = best(a.rounds, || reassemble(&mixed))?;
    let (t_dec, (w, e)) = best(a.rounds, || decode(&mixed))?;
    ensure!(
        w == c.writes && e == 0,
        "decode saw {w} writes and {e} errors, the generators made {} writes",
        c.writes
    );
    let line = |name: &str, t: Duration| {
        println!(
            "{name:22} {:>8.2?}  {:8.1} MB/s pcap  {:8.1} MB/s payload  {:8.1} MB/s uncompressed  {:6.2}x bare read time",
            t,
            mbs(c.file, t),
            mbs(c.payload, t),
            mbs(c.plain, t),
            t.as_secs_f64() / t_read.as_secs_f64()
        )
    };
    line("bare libpcap read", t_read);
    line("read + reassembly", t_asm);
    line("decode + extraction", t_dec);
    println!(
        "                       {:.0} writes/s",
        w as f64 / t_dec.as_secs_f64()
    );
    let slice_bytes = std::fs::metadata(&slice)?.len();
    let (t_ts_dec, (sw, _)) = best(a.rounds, || decode(&slice))?;
    match tshark(&slice)? {
        Some((t, pkts)) => {
            println!(
                "tshark on the {:.1} MB slice: {:.2?} = {:.2} MB/s pcap ({pkts} packets with CQL or MongoDB)",
                slice_bytes as f64 / 1e6,
                t,
                mbs(slice_bytes, t)
            );
            println!(
                "tidemark decode + extraction on the slice: {:.2?} = {:.1} MB/s pcap ({sw} writes): {:.1}x tshark",
                t_ts_dec,
                mbs(slice_bytes, t_ts_dec),
                t.as_secs_f64() / t_ts_dec.as_secs_f64()
            );
        }
        None => println!("tshark not installed: no comparison"),
    }
    Ok(())
}
