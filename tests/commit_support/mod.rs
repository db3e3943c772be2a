//! Scenario harness for the commit tracker: build a capture from protocol messages
//! (encoded with the protocol crates) on TCP flows with chosen timestamps, write it
//! as a pcap, run `tidemark::tap::run` into a fresh store — the same path a
//! capture takes — and read back the log and the undecided writes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde_json::Value;
use tempfile::TempDir;
use tidemark::capture::pcap_writer::PcapWriter;
use tidemark::capture::{LinkType, Timestamp};
use tidemark::commit::TrackerConfig;
use tidemark::store::{Durability, Envelope, Query, Store, StoreOptions, Undecided};
use tidemark::tap::{TapOptions, TapReport};

use crate::common::{ethernet, ip_packet, Conv, Seg};

/// Seconds since the epoch of the scenarios' first packet (2026-11-24T00:00:00Z).
pub const T0: u64 = 1_795_478_400;

/// A capture under construction: flows and their timed segments.
pub struct Scenario {
    frames: Vec<(u64, Vec<u8>)>,
    flows: Vec<Conv>,
}

/// A flow handle returned by [`Scenario::flow`].
#[derive(Debug, Clone, Copy)]
pub struct FlowRef(usize);

impl Default for Scenario {
    fn default() -> Self {
        Self::new()
    }
}

impl Scenario {
    pub fn new() -> Scenario {
        Scenario {
            frames: Vec::new(),
            flows: Vec::new(),
        }
    }

    fn push(&mut self, ms: u64, seg: &Seg) {
        let ns = T0 * 1_000_000_000 + ms * 1_000_000;
        self.frames.push((ns, ethernet(&ip_packet(seg), &[])));
    }

    /// Opens a flow from `client` to `server` with a handshake at `ms` ms.
    pub fn flow(&mut self, client: &str, server: &str, ms: u64) -> FlowRef {
        let n = self.flows.len() as u32;
        let mut conv = Conv::new(client, server, 1000 + n * 100_000, 5000 + n * 100_000);
        for s in conv.handshake() {
            self.push(ms, &s);
        }
        self.flows.push(conv);
        FlowRef(self.flows.len() - 1)
    }

    /// Client-to-server bytes at `ms` ms.
    pub fn send(&mut self, f: FlowRef, ms: u64, bytes: &[u8]) {
        let s = self.flows[f.0].data(true, bytes);
        self.push(ms, &s);
    }

    /// Server-to-client bytes at `ms` ms.
    pub fn answer(&mut self, f: FlowRef, ms: u64, bytes: &[u8]) {
        let s = self.flows[f.0].data(false, bytes);
        self.push(ms, &s);
    }

    /// Loses `n` server-to-client bytes (a capture gap): the sequence space moves
    /// on without a packet, and a later ACK from the client proves the bytes went by.
    pub fn lose_answer(&mut self, f: FlowRef, ms: u64, n: u32) {
        let conv = &mut self.flows[f.0];
        conv.sseq = conv.sseq.wrapping_add(n);
        let ack = conv.ack(true, conv.sseq);
        self.push(ms, &ack);
    }

    /// Both sides close at `ms` ms.
    pub fn close(&mut self, f: FlowRef, ms: u64) {
        let a = self.flows[f.0].fin(true);
        let b = self.flows[f.0].fin(false);
        self.push(ms, &a);
        self.push(ms, &b);
    }

    /// Writes the capture (in time order) as a pcap file in `dir`.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("scenario.pcap");
        let mut frames = self.frames.clone();
        frames.sort_by_key(|(t, _)| *t);
        let mut w = PcapWriter::new(
            std::fs::File::create(&path).unwrap(),
            LinkType::Ethernet,
            65535,
        )
        .unwrap();
        for (t, f) in &frames {
            w.write(Timestamp(*t), f).unwrap();
        }
        w.finish().unwrap();
        path
    }
}

/// What a tap run left in its store.
pub struct Outcome {
    pub dir: TempDir,
    pub report: TapReport,
    pub log: Vec<Envelope>,
    pub undecided: Vec<Undecided>,
    pub tidemark: Option<u64>,
}

impl Outcome {
    /// `(namespace, key, outcome, note)` of each logged mutation, in seq order.
    pub fn summary(&self) -> Vec<(String, String, &'static str, String)> {
        self.log
            .iter()
            .map(|e| {
                (
                    e.mutation.namespace.clone(),
                    e.mutation.key.clone(),
                    e.mutation.outcome.kind().as_str(),
                    e.mutation.evidence.note.clone(),
                )
            })
            .collect()
    }

    /// The stored write lines (as JSON, values kept as bytes rendered), in seq order.
    pub fn lines(&self) -> Vec<Value> {
        self.log
            .iter()
            .map(|e| Value::Object(tidemark::commit::write_line(&e.mutation).unwrap_or_default()))
            .collect()
    }
}

/// Runs `tap` on the scenario with tracker settings `cfg`.
pub fn tap(s: &Scenario, cfg: TrackerConfig) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let pcap = s.write(dir.path());
    tap_into(dir, &pcap, cfg)
}

/// Runs `tap` on a capture file with tracker settings `cfg`.
pub fn tap_file(file: &Path, cfg: TrackerConfig) -> Outcome {
    tap_into(tempfile::tempdir().unwrap(), file, cfg)
}

/// `tap` of `file` into a fresh store in `dir`, and what the store then holds.
fn tap_into(dir: TempDir, file: &Path, cfg: TrackerConfig) -> Outcome {
    let store_dir = dir.path().join("store");
    let options = TapOptions {
        files: vec![file.to_path_buf()],
        store: store_dir.clone(),
        durability: Durability::NoSync,
        tracker: cfg,
        ..TapOptions::default()
    };
    let report = tidemark::tap::run(&options, Arc::new(AtomicBool::new(false)))
        .unwrap_or_else(|e| panic!("{}: {e:#}", file.display()));
    let store = Store::open(&store_dir, &StoreOptions::for_tests().read_only()).unwrap();
    let log = {
        let r = store.reader().unwrap();
        r.query(&Query::all())
            .unwrap()
            .map(|e| e.unwrap())
            .collect()
    };
    let undecided = store
        .list_undecided()
        .unwrap()
        .into_iter()
        .map(|(_, u)| u)
        .collect();
    let tidemark = store.tidemark().unwrap();
    Outcome {
        dir,
        report,
        log,
        undecided,
        tidemark,
    }
}

/// Capture time of `ms` ms into a scenario, in ns.
pub fn at(ms: u64) -> u64 {
    T0 * 1_000_000_000 + ms * 1_000_000
}
