//! TCP reassembly: a bounded table of flows, each turning segments into ordered
//! [`StreamEvent`]s per direction.
//!
//! Bounded in every dimension an attacker or a bad capture controls: the number of
//! flows (oldest evicted in batches), bytes waiting in reorder buffers per direction
//! and in total (holes given up as gaps), and time (idle flows closed, closed flows'
//! tombstones forgotten). Every time a bound bites, a counter in [`CaptureStats`] says
//! so. Time is capture time, never the wall clock, so a file gives the same events
//! however fast it is read.

mod emit;
mod flow;
mod half;
mod table;

use std::net::SocketAddr;

use crate::capture::packet::TcpSegment;
use crate::capture::stats::CaptureStats;
use crate::capture::{CloseReason, FlowId, StreamEvent, Timestamp};

use emit::EmitState;
use flow::{Flow, FlowOutcome};
use half::HalfLimits;
use table::{FlowKey, FlowTable, Slot};

/// Limits and hints for reassembly.
#[derive(Debug, Clone)]
pub struct ReassemblyConfig {
    /// Ports of known servers: on a flow whose handshake was not captured, the side on
    /// one of these ports is the server.
    pub server_ports: Vec<u16>,
    /// Flows (including closed ones lingering as tombstones) held at once.
    pub max_flows: usize,
    /// Out-of-order bytes one direction may buffer before its oldest hole is given up.
    pub max_buffer_per_direction: usize,
    /// Out-of-order bytes all flows together may buffer.
    pub max_buffer_total: usize,
    /// Segments starting further than this past the next expected byte are dropped
    /// (1 GiB is the largest window TCP can advertise).
    pub window: u32,
    /// A flow with no packet for this long (capture time, ns) is closed as idle.
    pub idle_timeout_ns: u64,
    /// How long a closed flow swallows late packets of its address pair.
    pub linger_ns: u64,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            server_ports: vec![9042, 27017],
            max_flows: 100_000,
            max_buffer_per_direction: 4 << 20,
            max_buffer_total: 256 << 20,
            window: 1 << 30,
            idle_timeout_ns: 300_000_000_000,
            linger_ns: 60_000_000_000,
        }
    }
}

/// How often (capture time) idle flows are looked for.
const SWEEP_INTERVAL_NS: u64 = 1_000_000_000;
/// Chunk size of the payload arena.
const ARENA_CHUNK: usize = 1 << 20;

/// Reassembles every TCP flow of a capture.
pub struct Reassembler {
    cfg: ReassemblyConfig,
    limits: HalfLimits,
    server_port: Box<[bool]>,
    flows: FlowTable,
    next_id: u64,
    now: Timestamp,
    last_sweep: Timestamp,
    /// What every flow's events share (a field of its own, so an [`Emit`] can borrow
    /// it while a flow of `flows` is borrowed too).
    shared: EmitState,
}

impl Reassembler {
    pub fn new(cfg: ReassemblyConfig) -> Self {
        let mut server_port = vec![false; 65_536].into_boxed_slice();
        for &p in &cfg.server_ports {
            server_port[usize::from(p)] = true;
        }
        Reassembler {
            limits: HalfLimits {
                max_pending: cfg.max_buffer_per_direction,
                window: cfg.window,
            },
            cfg,
            server_port,
            flows: FlowTable::default(),
            next_id: 0,
            now: Timestamp(0),
            last_sweep: Timestamp(0),
            shared: EmitState::new(ARENA_CHUNK),
        }
    }

    /// Flows held, open or lingering.
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// Out-of-order bytes (plus per-piece overhead) buffered over all flows.
    pub fn buffered(&self) -> usize {
        self.shared.buffered_total
    }

    /// Moves capture time forward, closing flows idle for longer than the timeout.
    pub fn advance(&mut self, ts: Timestamp, stats: &mut CaptureStats, out: &mut Vec<StreamEvent>) {
        if ts > self.now {
            self.now = ts;
        }
        if self.now.0.saturating_sub(self.last_sweep.0) >= SWEEP_INTERVAL_NS {
            self.last_sweep = self.now;
            self.sweep(stats, out);
        }
    }

    /// Applies one TCP segment.
    pub fn segment(
        &mut self,
        seg: &TcpSegment<'_>,
        ts: Timestamp,
        stats: &mut CaptureStats,
        out: &mut Vec<StreamEvent>,
    ) {
        stats.tcp_segments += 1;
        self.advance(ts, stats, out);
        let key = FlowKey::new(seg.src, seg.dst);
        let mut slot = self.flows.find(&key);
        match slot {
            Some(s) if self.flows.get(s).is_some_and(|f| f.closed.is_some()) => {
                // Late packets of a closed connection; only a new handshake reopens.
                if !seg.flags.syn {
                    stats.after_close_packets += 1;
                    return;
                }
                self.flows.remove(s);
                slot = None;
            }
            None if seg.flags.rst => {
                // A reset for a flow never seen carries nothing to deliver.
                stats.after_close_packets += 1;
                return;
            }
            _ => {}
        }
        let slot = match slot {
            Some(s) => s,
            None => self.open(key, seg, ts, stats, out),
        };
        if self.apply(slot, seg, ts, stats, out) == FlowOutcome::NewConnection {
            if let Some(mut old) = self.flows.remove(slot) {
                let mut em = self.shared.emit(stats, out, old.id, ts);
                old.close(CloseReason::Reused, &mut em);
                stats.flows_reused += 1;
            }
            let slot = self.open(key, seg, ts, stats, out);
            self.apply(slot, seg, ts, stats, out);
        }
    }

    /// Runs `seg` through the flow in `slot`; enforces the global buffer cap.
    fn apply(
        &mut self,
        slot: Slot,
        seg: &TcpSegment<'_>,
        ts: Timestamp,
        stats: &mut CaptureStats,
        out: &mut Vec<StreamEvent>,
    ) -> FlowOutcome {
        let Some(flow) = self.flows.get_mut(slot) else {
            return FlowOutcome::Closed;
        };
        let mut em = self.shared.emit(stats, out, flow.id, ts);
        let outcome = flow.segment(seg, &self.limits, &mut em);
        if self.shared.buffered_total > self.cfg.max_buffer_total {
            self.relieve(stats, out, ts);
        }
        outcome
    }

    /// Creates the flow for a segment of an unknown address pair.
    fn open(
        &mut self,
        key: FlowKey,
        seg: &TcpSegment<'_>,
        ts: Timestamp,
        stats: &mut CaptureStats,
        out: &mut Vec<StreamEvent>,
    ) -> Slot {
        if self.flows.len() >= self.cfg.max_flows {
            self.evict(stats, out);
        }
        let (client, server) = self.orient(seg);
        let id = FlowId(self.next_id);
        self.next_id += 1;
        stats.flows_opened += 1;
        out.push(StreamEvent::Opened {
            flow: id,
            client,
            server,
            ts,
        });
        self.flows.insert(key, Flow::new(id, client, ts))
    }

    /// Picks (client, server): the SYN's sender is the client, the SYN-ACK's sender
    /// the server; without a handshake, the side on a known server port is the server,
    /// else the lower port (servers listen on low, clients get ephemeral high ports),
    /// else the destination of the first packet seen.
    fn orient(&self, seg: &TcpSegment<'_>) -> (SocketAddr, SocketAddr) {
        let (s, d) = (seg.src, seg.dst);
        if seg.flags.syn {
            return if seg.flags.ack { (d, s) } else { (s, d) };
        }
        let known = |a: &SocketAddr| self.server_port[usize::from(a.port())];
        match (known(&s), known(&d)) {
            (false, true) => (s, d),
            (true, false) => (d, s),
            _ if s.port() < d.port() => (d, s),
            _ => (s, d),
        }
    }

    /// Closes idle flows and forgets old tombstones.
    fn sweep(&mut self, stats: &mut CaptureStats, out: &mut Vec<StreamEvent>) {
        let now = self.now.0;
        let (idle, linger) = (self.cfg.idle_timeout_ns, self.cfg.linger_ns);
        let mut expired: Vec<(FlowId, Slot)> = self
            .flows
            .iter()
            .filter(|(_, f)| {
                let age = now.saturating_sub(f.last_seen.0);
                if f.closed.is_some() {
                    age > linger
                } else {
                    age > idle
                }
            })
            .map(|(slot, f)| (f.id, slot))
            .collect();
        expired.sort_unstable_by_key(|(id, _)| *id);
        for (_, slot) in expired {
            if let Some(mut flow) = self.flows.remove(slot) {
                if flow.closed.is_none() {
                    let reason = flow.end_reason(CloseReason::Idle);
                    let mut em = self.shared.emit(stats, out, flow.id, self.now);
                    flow.close(reason, &mut em);
                    stats.idle_evictions += 1;
                }
            }
        }
    }

    /// Makes room in a full table: first idle flows, then the least recently seen
    /// sixteenth of the table (batched so a flood costs amortized O(1) per new flow).
    fn evict(&mut self, stats: &mut CaptureStats, out: &mut Vec<StreamEvent>) {
        self.sweep(stats, out);
        if self.flows.len() < self.cfg.max_flows {
            return;
        }
        let n = (self.flows.len() / 16).max(1);
        let mut by_age: Vec<(Timestamp, FlowId, Slot)> = self
            .flows
            .iter()
            .map(|(slot, f)| (f.last_seen, f.id, slot))
            .collect();
        by_age.select_nth_unstable_by_key(n - 1, |e| (e.0, e.1));
        by_age.truncate(n);
        by_age.sort_unstable_by_key(|(_, id, _)| *id);
        for (_, _, slot) in by_age {
            if let Some(mut flow) = self.flows.remove(slot) {
                if flow.closed.is_none() {
                    let mut em = self.shared.emit(stats, out, flow.id, self.now);
                    flow.close(CloseReason::Evicted, &mut em);
                    stats.table_evictions += 1;
                }
            }
        }
    }

    /// Over the global buffer cap: give up the holes of the flows buffering most.
    fn relieve(&mut self, stats: &mut CaptureStats, out: &mut Vec<StreamEvent>, ts: Timestamp) {
        while self.shared.buffered_total > self.cfg.max_buffer_total {
            let Some((_, flow)) = self
                .flows
                .iter_mut()
                .filter(|(_, f)| f.pending_cost() > 0)
                .max_by_key(|(_, f)| (f.pending_cost(), std::cmp::Reverse(f.id)))
            else {
                return;
            };
            stats.global_buffer_cap_hits += 1;
            let mut em = self.shared.emit(stats, out, flow.id, ts);
            flow.release(&mut em);
        }
    }

    /// The capture ended: every open flow gives up its holes and closes.
    pub fn finish(&mut self, stats: &mut CaptureStats, out: &mut Vec<StreamEvent>) {
        let mut open: Vec<(FlowId, Slot)> = self
            .flows
            .iter()
            .filter(|(_, f)| f.closed.is_none())
            .map(|(slot, f)| (f.id, slot))
            .collect();
        open.sort_unstable_by_key(|(id, _)| *id);
        for (_, slot) in open {
            if let Some(flow) = self.flows.get_mut(slot) {
                let reason = flow.end_reason(CloseReason::EndOfCapture);
                let mut em = self.shared.emit(stats, out, flow.id, self.now);
                flow.close(reason, &mut em);
            }
        }
        self.flows.clear();
    }
}
