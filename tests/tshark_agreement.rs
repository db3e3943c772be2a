//! For every third-party capture in ../shared/captures, the bytes tidemark reassembles
//! per flow and direction equal, byte for byte, what tshark reassembles
//! (`-z follow,tcp,raw,N`).
//! Needs tshark and the captures (through `require`: a skip locally, a failure
//! under CI).

mod common;
mod require;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use tidemark::capture::{Assembler, AssemblerConfig, FileSource};

fn pcaps(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(pcaps(&p));
        } else if matches!(
            p.extension().and_then(|x| x.to_str()),
            Some("pcap" | "pcapng")
        ) {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// (endpoint A, endpoint B) → bytes A→B, bytes B→A, per stream, in stream order.
type Conversations = BTreeMap<(String, String), Vec<(Vec<u8>, Vec<u8>)>>;

fn normalize(
    a: String,
    b: String,
    ab: Vec<u8>,
    ba: Vec<u8>,
) -> ((String, String), (Vec<u8>, Vec<u8>)) {
    if a <= b {
        ((a, b), (ab, ba))
    } else {
        ((b, a), (ba, ab))
    }
}

fn tshark_streams(file: &Path) -> Conversations {
    let ids = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-T", "fields", "-e", "tcp.stream"])
        .output()
        .expect("tshark runs");
    let mut streams: Vec<u64> = String::from_utf8_lossy(&ids.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    streams.sort_unstable();
    streams.dedup();
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file).arg("-q");
    for s in &streams {
        cmd.arg("-z").arg(format!("follow,tcp,raw,{s}"));
    }
    let out = cmd.output().expect("tshark runs");
    assert!(out.status.success(), "tshark failed on {}", file.display());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut convs = Conversations::new();
    let mut node0 = String::new();
    let mut node1 = String::new();
    let (mut b0, mut b1) = (Vec::new(), Vec::new());
    let mut in_block = false;
    for line in text.lines() {
        if line.starts_with("=====") {
            if in_block && !node0.is_empty() {
                let (k, v) = normalize(
                    node0.clone(),
                    node1.clone(),
                    std::mem::take(&mut b0),
                    std::mem::take(&mut b1),
                );
                convs.entry(k).or_default().push(v);
            }
            node0.clear();
            node1.clear();
            b0.clear();
            b1.clear();
            in_block = true;
            continue;
        }
        if let Some(n) = line.strip_prefix("Node 0: ") {
            node0 = n.trim().to_string();
        } else if let Some(n) = line.strip_prefix("Node 1: ") {
            node1 = n.trim().to_string();
        } else if line.starts_with("Follow:")
            || line.starts_with("Filter:")
            || line.trim().is_empty()
        {
        } else if let Some(hex) = line.strip_prefix('\t') {
            b1.extend(unhex(hex.trim()));
        } else {
            b0.extend(unhex(line.trim()));
        }
    }
    convs
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// The same from tidemark, straight from the tap's events.
fn tidemark_streams(file: &Path) -> Conversations {
    let mut src = FileSource::open(&[file.to_path_buf()]).unwrap();
    let mut tap = Assembler::new(AssemblerConfig::default());
    let mut events = Vec::new();
    while let Some(p) = src.next_packet() {
        tap.packet(&p, &mut events);
    }
    tap.finish(&mut events);
    assert!(src.take_errors().is_empty());
    let run = common::collect(events, tap.stats().clone());
    assert_eq!(
        run.stats.gaps,
        0,
        "{}: tidemark reported gaps in a loss-free capture",
        file.display()
    );
    let mut convs = Conversations::new();
    for f in run.flows.values() {
        let (c, s) = (f.client.unwrap().to_string(), f.server.unwrap().to_string());
        let (k, v) = normalize(c, s, f.c2s.bytes.clone(), f.s2c.bytes.clone());
        convs.entry(k).or_default().push(v);
    }
    convs
}

#[test]
fn bytes_per_flow_and_direction_match_tshark() {
    let Some(dir) = require::shared_captures() else {
        return;
    };
    if !require::tool("tshark") {
        return;
    }
    let files = pcaps(&dir);
    // SOURCES.md lists 24 captures; a directory that lost some must not pass quietly.
    assert_eq!(files.len(), 24, "captures in {}", dir.display());
    for file in &files {
        let mut want = tshark_streams(file);
        let mut got = tidemark_streams(file);
        // Flows that carried no payload either way are a matter of taste (tshark
        // lists a lone SYN as a stream); compare flows with payload.
        for m in [&mut want, &mut got] {
            for v in m.values_mut() {
                v.retain(|(a, b)| !a.is_empty() || !b.is_empty());
            }
            m.retain(|_, v| !v.is_empty());
        }
        if got != want {
            let sizes = |m: &Conversations| -> Vec<(String, String, usize, usize)> {
                m.iter()
                    .flat_map(|(k, v)| {
                        v.iter()
                            .map(|(a, b)| (k.0.clone(), k.1.clone(), a.len(), b.len()))
                    })
                    .collect()
            };
            panic!(
                "{}: tidemark {:?} != tshark {:?}",
                file.display(),
                sizes(&got),
                sizes(&want)
            );
        }
        let total: usize = got.values().flatten().map(|(a, b)| a.len() + b.len()).sum();
        eprintln!(
            "{}: {} flows, {} bytes agree with tshark",
            file.display(),
            got.values().map(Vec::len).sum::<usize>(),
            total
        );
    }
}
