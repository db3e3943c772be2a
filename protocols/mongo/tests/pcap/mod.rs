//! Extracts TCP payloads from pcaps with tshark (`follow,tcp,raw`), so tests
//! can run real third-party traffic through the decoder. Returns `None` when
//! tshark or a capture is absent, after `require` recorded the skip (or failed
//! the test under CI).

use std::path::{Path, PathBuf};
use std::process::Command;

use tidemark_mongo::Direction;

/// Server ports of the captures (SOURCES.md).
const SERVER_PORTS: &[u16] = &[27017, 27018, 20000, 9991, 3717, 30000];

pub struct Flow {
    pub chunks: Vec<(Direction, Vec<u8>)>,
}

/// The capture `rel` under `../shared/captures`, when it and tshark are there.
pub fn shared_capture(rel: &str) -> Option<PathBuf> {
    let path = crate::require::shared_capture(rel)?;
    crate::require::tool("tshark").then_some(path)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn port_of(node: &str) -> u16 {
    node.rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0)
}

pub fn flows(file: &Path) -> Vec<Flow> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-T", "fields", "-e", "tcp.stream"])
        .output()
        .expect("tshark runs");
    let mut streams: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    streams.sort_unstable();
    streams.dedup();
    let mut flows = Vec::new();
    for s in streams {
        let out = Command::new("tshark")
            .arg("-r")
            .arg(file)
            .args(["-q", "-z", &format!("follow,tcp,raw,{s}")])
            .output()
            .expect("tshark runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut node0_is_server = false;
        let mut chunks = Vec::new();
        for line in text.lines() {
            if let Some(n) = line.strip_prefix("Node 0: ") {
                node0_is_server = SERVER_PORTS.contains(&port_of(n));
                continue;
            }
            let (from_node1, data) = match line.strip_prefix('\t') {
                Some(d) => (true, d),
                None => (false, line),
            };
            if data.is_empty() || !data.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let from_server = from_node1 != node0_is_server;
            let dir = if from_server {
                Direction::ServerToClient
            } else {
                Direction::ClientToServer
            };
            chunks.push((dir, hex(data)));
        }
        flows.push(Flow { chunks });
    }
    flows
}
