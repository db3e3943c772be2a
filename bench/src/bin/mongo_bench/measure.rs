//! The measurements of one capture: tidemark direct, decode only, inspect end to end,
//! and tshark, printed with their ratios.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tidemark::capture::{Direction, FlowId, Timestamp};
use tidemark::decode::detect::Protocol;
use tidemark::decode::mongo::tidemark_mongo::bytes::Bytes;
use tidemark::decode::mongo::tidemark_mongo::{ConnEvent, Connection, Direction as MDir, Limits};
use tidemark::decode::mongo::MongoFlowDecoder;
use tidemark::decode::records::Record;
use tidemark::decode::seam::{FlowDecoder, FlowInfo, StreamPos};

use tidemark_bench::mongo_workload::{self as gen, Generated, Wire, Workload};

/// A message's bytes cut as TCP would deliver them.
struct Chunk {
    conn: usize,
    dir: Direction,
    bytes: Bytes,
}

fn chunks(msgs: Vec<Wire>, mss: usize) -> Vec<Chunk> {
    let mut out = Vec::new();
    for m in msgs {
        let all = Bytes::from(m.bytes);
        let dir = if m.c2s {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        };
        let mut at = 0;
        while at < all.len() {
            let end = (at + mss).min(all.len());
            out.push(Chunk {
                conn: m.conn,
                dir,
                bytes: all.slice(at..end),
            });
            at = end;
        }
    }
    out
}

fn info(conn: usize) -> FlowInfo {
    FlowInfo {
        flow: FlowId(conn as u64),
        client: format!("10.1.0.{}:{}", 10 + conn, 40_000 + conn)
            .parse()
            .expect("address"),
        server: "10.9.0.1:27017".parse().expect("address"),
        protocol: Protocol::Mongo,
        opened: Timestamp(1_795_478_400_000_000_000),
    }
}

/// Decode + write extraction through the flow decoder; returns (time, writes, committed).
fn direct(chunks: &[Chunk], conns: usize) -> (Duration, u64, u64) {
    let infos: Vec<FlowInfo> = (0..conns).map(info).collect();
    let start = Instant::now();
    let mut decs: Vec<MongoFlowDecoder> = infos.iter().map(MongoFlowDecoder::new).collect();
    let mut offsets = vec![[0u64; 2]; conns];
    let mut out = Vec::with_capacity(256);
    let (mut writes, mut committed) = (0u64, 0u64);
    let mut count = |out: &mut Vec<Record>| {
        for r in out.drain(..) {
            if let Record::Write(w) = r {
                writes += 1;
                committed += u64::from(w.outcome == "committed");
            }
        }
    };
    for c in chunks {
        let i = c.dir as usize;
        let pos = StreamPos {
            flow: &infos[c.conn],
            dir: c.dir,
            ts: Timestamp(1_795_478_400_000_000_000),
            offset: offsets[c.conn][i],
        };
        decs[c.conn].data(&pos, &c.bytes, &mut out);
        offsets[c.conn][i] += c.bytes.len() as u64;
        count(&mut out);
    }
    for (d, inf) in decs.iter_mut().zip(&infos) {
        d.closed(
            inf,
            Timestamp(1_795_478_500_000_000_000),
            tidemark::capture::CloseReason::Fin,
            &mut out,
        );
        count(&mut out);
    }
    (start.elapsed(), writes, committed)
}

/// Framing, decompression, BSON validation and pairing only.
fn decode_only(chunks: &[Chunk], conns: usize) -> (Duration, u64) {
    let start = Instant::now();
    let mut cs: Vec<Connection> = (0..conns)
        .map(|_| Connection::new(Limits::default()))
        .collect();
    let mut messages = 0u64;
    for c in chunks {
        let d = match c.dir {
            Direction::ClientToServer => MDir::ClientToServer,
            Direction::ServerToClient => MDir::ServerToClient,
        };
        let conn = &mut cs[c.conn];
        conn.feed(d, &c.bytes);
        while let Some(ev) = conn.poll() {
            if let ConnEvent::Message { .. } = ev {
                messages += 1;
            }
        }
    }
    (start.elapsed(), messages)
}

/// `tidemark inspect --json FILE`, run as a child (this binary with `--inspect`);
/// returns wall time and the `write` lines counted from its output.
fn inspect_child(path: &Path) -> anyhow::Result<(Duration, u64)> {
    let exe = std::env::current_exe()?;
    let start = Instant::now();
    let mut child = Command::new(exe)
        .arg("--inspect")
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()?;
    let out = child.stdout.take().context("child stdout")?;
    let mut writes = 0u64;
    for line in BufReader::with_capacity(1 << 20, out).lines() {
        writes += u64::from(line?.starts_with("{\"type\":\"write\""));
    }
    let st = child.wait()?;
    let t = start.elapsed();
    if !st.success() {
        bail!("inspect child failed: {st}");
    }
    Ok((t, writes))
}

/// tshark's opcode count over the file: wall time and PDUs counted.
fn tshark(path: &Path) -> anyhow::Result<Option<(Duration, u64)>> {
    let start = Instant::now();
    let out = match Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args([
            "-d",
            "tcp.port==27017,mongo",
            "-T",
            "fields",
            "-e",
            "mongo.opcode",
        ])
        .stderr(Stdio::null())
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            println!("  tshark: not run ({e})");
            return Ok(None);
        }
    };
    let t = start.elapsed();
    let pdus = String::from_utf8_lossy(&out.stdout)
        .lines()
        .flat_map(|l| l.split(','))
        .filter(|v| !v.trim().is_empty())
        .count() as u64;
    Ok(Some((t, pdus)))
}

fn mbps(bytes: u64, t: Duration) -> f64 {
    bytes as f64 / 1e6 / t.as_secs_f64()
}

fn generate(path: &PathBuf, w: &Workload) -> anyhow::Result<(Generated, Vec<Wire>)> {
    let start = Instant::now();
    let mut keep = Vec::new();
    let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let g = gen::write_pcap(BufWriter::with_capacity(1 << 20, f), w, &mut keep)
        .with_context(|| format!("writing {}", path.display()))?;
    println!(
        "  generated {} in {:.1?}: {} messages, {:.1} MB on the wire ({:.1} MB uncompressed, ratio {:.2}), {} writes, {} packets",
        path.display(),
        start.elapsed(),
        g.messages,
        g.wire_bytes as f64 / 1e6,
        g.plain_bytes as f64 / 1e6,
        g.plain_bytes as f64 / g.wire_bytes as f64,
        g.writes,
        g.packets
    );
    Ok((g, keep))
}

/// Generates one capture and measures everything on it.
pub fn run(
    dir: &Path,
    w: &Workload,
    rounds: usize,
    tshark_mb: u64,
    direct_only: bool,
) -> anyhow::Result<()> {
    let name = w.compressor.map_or("plain", |c| c.name());
    println!(
        "== {name}: OP_MSG inserts of {} x ~1 KB documents + updates, OP_COMPRESSED {name}",
        w.docs_per_insert
    );
    let path = dir.join(format!("mongo_{name}.pcap"));
    let (g, keep) = generate(&path, w)?;
    let chunks = chunks(keep, w.mss);

    let mut best = (Duration::MAX, 0, 0);
    for _ in 0..rounds.max(1) {
        let r = direct(&chunks, w.connections);
        if r.0 < best.0 {
            best = r;
        }
    }
    let (t_direct, writes, committed) = best;
    if writes != g.writes {
        bail!("direct: {writes} writes, generated {}", g.writes);
    }
    println!(
        "  tidemark direct (decode+extract): {:>8.1} MB/s wire, {:>8.1} MB/s uncompressed, {:>10.0} writes/s ({writes} writes, {committed} committed) in {:.2?}",
        mbps(g.wire_bytes, t_direct),
        mbps(g.plain_bytes, t_direct),
        writes as f64 / t_direct.as_secs_f64(),
        t_direct
    );
    if direct_only {
        return Ok(());
    }
    let mut t_dec = Duration::MAX;
    for _ in 0..rounds.max(1) {
        let (t, n) = decode_only(&chunks, w.connections);
        if n != g.messages {
            bail!("decode only: {n} messages, generated {}", g.messages);
        }
        t_dec = t_dec.min(t);
    }
    println!(
        "  tidemark decode only:             {:>8.1} MB/s wire, {:>8.1} MB/s uncompressed in {:.2?}",
        mbps(g.wire_bytes, t_dec),
        mbps(g.plain_bytes, t_dec),
        t_dec
    );
    drop(chunks);
    let (t_insp, insp_writes) = inspect_child(&path)?;
    if insp_writes != g.writes {
        bail!("inspect: {insp_writes} write lines, generated {}", g.writes);
    }
    println!(
        "  tidemark inspect --json (e2e):    {:>8.1} MB/s wire, {:>10.0} writes/s in {:.2?}",
        mbps(g.wire_bytes, t_insp),
        insp_writes as f64 / t_insp.as_secs_f64(),
        t_insp
    );

    let (ts_path, ts_bytes, ts_msgs, scaled) = if tshark_mb > 0 && tshark_mb << 20 < g.wire_bytes {
        let small = Workload {
            target_wire_bytes: tshark_mb << 20,
            ..w.clone()
        };
        let p = dir.join(format!("mongo_{name}_slice.pcap"));
        let (gs, _) = generate(&p, &small)?;
        (p, gs.wire_bytes, gs.messages, true)
    } else {
        (path.clone(), g.wire_bytes, g.messages, false)
    };
    if let Some((t, pdus)) = tshark(&ts_path)? {
        let note = if scaled {
            " (on the slice, scaled by MB/s)"
        } else {
            ""
        };
        let ts_mbps = mbps(ts_bytes, t);
        println!(
            "  tshark -T fields -e mongo.opcode: {:>8.1} MB/s wire, {pdus} PDUs (generated {ts_msgs}) in {:.2?}{note}",
            ts_mbps, t
        );
        println!(
            "  ratio tidemark/tshark: direct {:.2}x, inspect end-to-end {:.2}x",
            mbps(g.wire_bytes, t_direct) / ts_mbps,
            mbps(g.wire_bytes, t_insp) / ts_mbps
        );
    }
    Ok(())
}
