//! CQL decode and write-extraction throughput, against tshark's CQL dissector on the
//! same kind of traffic, measured in the same run (the machine is noisy: the ratio is
//! what means something).
//!
//! `cargo run --release -p tidemark-bench --bin cql_bench [-- --size-mb 256]`
//!
//! Generates `bench/data/cql_v4_lz4.pcap` (prepared 10-column EXECUTEs and batches,
//! v4 lz4; gitignored) and a small slice of the same workload for tshark, then reports:
//! (a) tidemark-cql `Connection` decode alone, (b) decode + pairing + write extraction
//! through the CQL flow decoder, (c) end-to-end `inspect` of the pcap (records counted,
//! and serialized as JSON lines into a sink), (d) `tshark -Y cql -T fields -e
//! cql.opcode` on the slice, with tidemark's end-to-end time on the same slice.

use tidemark_bench::cql_workload as gen;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use tidemark::capture::{Direction, FlowId, Timestamp};
use tidemark::decode::cql::protocol as cql;
use tidemark::decode::cql::protocol::bytes::Bytes;
use tidemark::decode::detect::Protocol;
use tidemark::decode::records::Record;
use tidemark::decode::registry::default_registry;
use tidemark::decode::seam::{FlowInfo, StreamPos};
use tidemark::inspect::{inspect, InspectOptions};

#[derive(Parser)]
struct Args {
    /// Size of the generated capture's TCP payload in MiB.
    #[arg(long, default_value_t = 256)]
    size_mb: usize,
    /// Connections in the capture.
    #[arg(long, default_value_t = 4)]
    conns: usize,
    /// Payload MiB of the slice given to tshark (it is far slower).
    #[arg(long, default_value_t = 8)]
    tshark_mb: usize,
    /// Rounds per measurement; the best is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    #[arg(long, default_value = "bench/data")]
    dir: PathBuf,
}

const CHUNK: usize = 64 << 10;

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

fn mbps(bytes: u64, t: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / t.as_secs_f64()
}

/// (a) Frames and messages only.
fn decode_only(conns: &[gen::Streams]) -> (Duration, u64) {
    let start = Instant::now();
    let mut frames = 0u64;
    for s in conns {
        let mut c = cql::Connection::new();
        for (dir, data) in [
            (cql::Direction::ClientToServer, &s.c2s),
            (cql::Direction::ServerToClient, &s.s2c),
        ] {
            for chunk in data.chunks(CHUNK) {
                c.feed(dir, chunk);
                while let Some(Ok(_)) = c.next() {
                    frames += 1;
                }
            }
        }
    }
    (start.elapsed(), frames)
}

/// Write lines, not counting `unresolved` ones (reported again once resolved).
fn count_writes(out: &[Record]) -> u64 {
    out.iter()
        .filter(|r| matches!(r, Record::Write(w) if w.outcome != "unresolved"))
        .count() as u64
}

/// (b) The CQL flow decoder: messages, pairing, outcomes, write lines.
fn decode_extract(conns: &[gen::Streams]) -> (Duration, u64) {
    let reg = default_registry();
    let start = Instant::now();
    let mut writes = 0u64;
    let mut out: Vec<Record> = Vec::with_capacity(4096);
    for (i, s) in conns.iter().enumerate() {
        let info = FlowInfo {
            flow: FlowId(i as u64),
            client: "10.1.0.1:40000".parse().expect("addr"),
            server: "10.9.0.42:9042".parse().expect("addr"),
            protocol: Protocol::Cql,
            opened: Timestamp(0),
        };
        let mut dec = reg.create(&info);
        let (c2s, s2c) = (
            Bytes::copy_from_slice(&s.c2s),
            Bytes::copy_from_slice(&s.s2c),
        );
        let (mut co, mut so) = (0usize, 0usize);
        while co < c2s.len() {
            let end = (co + CHUNK).min(c2s.len());
            let pos = StreamPos {
                flow: &info,
                dir: Direction::ClientToServer,
                ts: Timestamp(1),
                offset: co as u64,
            };
            dec.data(&pos, &c2s.slice(co..end), &mut out);
            co = end;
            // Responses in proportion; their requests are all in by now or pair later.
            let send = ((s2c.len() as u128 * co as u128) / c2s.len() as u128) as usize;
            let send = send.saturating_sub(64).max(so);
            if send > so {
                let pos = StreamPos {
                    flow: &info,
                    dir: Direction::ServerToClient,
                    ts: Timestamp(1),
                    offset: so as u64,
                };
                dec.data(&pos, &s2c.slice(so..send), &mut out);
                so = send;
            }
            writes += count_writes(&out);
            out.clear();
        }
        let pos = StreamPos {
            flow: &info,
            dir: Direction::ServerToClient,
            ts: Timestamp(1),
            offset: so as u64,
        };
        dec.data(&pos, &s2c.slice(so..), &mut out);
        dec.closed(
            &info,
            Timestamp(2),
            tidemark::capture::CloseReason::Fin,
            &mut out,
        );
        writes += count_writes(&out);
        out.clear();
    }
    (start.elapsed(), writes)
}

/// (c) End to end from the pcap; with `json`, every record is serialized as a line.
fn end_to_end(path: &Path, json: bool) -> anyhow::Result<(Duration, (u64, u64))> {
    let opts = InspectOptions {
        files: vec![path.to_path_buf()],
        json,
        ..InspectOptions::default()
    };
    let start = Instant::now();
    let (mut writes, mut errors) = (0u64, 0u64);
    let mut sink = BufWriter::new(io::sink());
    inspect(&opts, default_registry(), |r| {
        match r {
            Record::Write(w) if w.outcome != "unresolved" => writes += 1,
            Record::Error(_) => errors += 1,
            _ => {}
        }
        if json {
            cql::serde_json::to_writer(&mut sink, r).map_err(io::Error::from)?;
            sink.write_all(b"\n")?;
        }
        Ok(())
    })?;
    Ok((start.elapsed(), (writes, errors)))
}

fn tshark(path: &Path) -> anyhow::Result<Option<(Duration, u64)>> {
    let start = Instant::now();
    let out = match Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-Y", "cql", "-T", "fields", "-e", "cql.opcode"])
        .output()
    {
        Ok(o) => o,
        Err(_) => return Ok(None),
    };
    let t = start.elapsed();
    anyhow::ensure!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let msgs = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split(',').filter(|f| !f.is_empty()).count() as u64)
        .sum();
    Ok(Some((t, msgs)))
}

fn make(path: &Path, conns: usize, mb: usize) -> anyhow::Result<(Vec<gen::Streams>, u64)> {
    let per = (mb << 20) / conns.max(1);
    let streams: Vec<gen::Streams> = (0..conns.max(1))
        .map(|i| gen::connection(0x5eed + i as u64, per))
        .collect();
    let f = BufWriter::with_capacity(
        1 << 20,
        File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    let bytes =
        gen::write_pcap(f, &streams).with_context(|| format!("writing {}", path.display()))?;
    Ok((streams, bytes))
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let big = a.dir.join("cql_v4_lz4.pcap");
    let slice = a.dir.join("cql_v4_lz4_slice.pcap");
    let t0 = Instant::now();
    let (streams, file_bytes) = make(&big, a.conns, a.size_mb)?;
    let (slice_streams, slice_bytes) = make(&slice, a.conns, a.tshark_mb)?;
    let payload: u64 = streams
        .iter()
        .map(|s| (s.c2s.len() + s.s2c.len()) as u64)
        .sum();
    let expect: u64 = streams.iter().map(|s| s.writes).sum();
    println!(
        "generated {} ({:.0} MiB pcap, {:.0} MiB CQL payload, {} writes) and a {:.1} MiB slice in {:.1?}",
        big.display(),
        file_bytes as f64 / 1048576.0,
        payload as f64 / 1048576.0,
        expect,
        slice_bytes as f64 / 1048576.0,
        t0.elapsed()
    );

    let (t, frames) = best(a.rounds, || Ok(decode_only(&streams)))?;
    println!(
        "(a) decode (Connection)        {:8.1} MiB/s  {:10.0} frames/s",
        mbps(payload, t),
        frames as f64 / t.as_secs_f64()
    );
    let (t, writes) = best(a.rounds, || Ok(decode_extract(&streams)))?;
    anyhow::ensure!(
        writes == expect,
        "decode+extract saw {writes} writes, expected {expect}"
    );
    println!(
        "(b) decode + write extraction  {:8.1} MiB/s  {:10.0} writes/s",
        mbps(payload, t),
        writes as f64 / t.as_secs_f64()
    );
    let (t, (w, errors)) = best(a.rounds, || end_to_end(&big, false))?;
    anyhow::ensure!(
        w == expect && errors == 0,
        "inspect saw {w} writes and {errors} errors, expected {expect} and 0"
    );
    println!(
        "(c) inspect pcap (records)     {:8.1} MiB/s  {:10.0} writes/s (pcap bytes)",
        mbps(file_bytes, t),
        w as f64 / t.as_secs_f64()
    );
    let (t, _) = best(a.rounds, || end_to_end(&big, true))?;
    println!(
        "(c) inspect pcap --json        {:8.1} MiB/s  {:10.0} writes/s",
        mbps(file_bytes, t),
        w as f64 / t.as_secs_f64()
    );

    let (ts_t, (sw, _)) = best(a.rounds, || end_to_end(&slice, false))?;
    let slice_payload: u64 = slice_streams
        .iter()
        .map(|s| (s.c2s.len() + s.s2c.len()) as u64)
        .sum();
    match tshark(&slice)? {
        Some((t, msgs)) => {
            println!(
                "(d) tshark -Y cql -e cql.opcode on the {:.1} MiB slice: {:.2?} = {:.2} MiB/s, {} messages",
                slice_bytes as f64 / 1048576.0,
                t,
                mbps(slice_bytes, t),
                msgs
            );
            println!(
                "    tidemark inspect on the same slice: {:.2?} = {:.1} MiB/s ({} writes, {} payload bytes)",
                ts_t,
                mbps(slice_bytes, ts_t),
                sw,
                slice_payload
            );
            println!(
                "    ratio tshark/tidemark time: {:.0}x",
                t.as_secs_f64() / ts_t.as_secs_f64()
            );
        }
        None => println!("(d) tshark not installed: no comparison"),
    }
    Ok(())
}
