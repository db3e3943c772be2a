//! Inspect's per-flow bookkeeping: consumes [`StreamEvent`]s, decides each flow's
//! protocol, feeds its decoder, and produces the `flow` and `summary` records.
//!
//! A flow whose protocol is not given by its port has its events held until its
//! first bytes tell (see [`detect`](super::detect)); held events are bounded, and
//! the decision is forced when the bound is reached.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::detect::{sniff, PortMap, Protocol, Sniff, SNIFF_LEN};
use super::records::{ErrorRecord, FlowRecord, Record, SummaryRecord, WriteRecord};
use super::registry::DecoderRegistry;
use super::seam::{FlowDecoder, FlowInfo, StreamPos};
use crate::capture::{CaptureStats, CloseReason, Direction, FlowId, StreamEvent, Timestamp};

/// Bytes of held events after which a flow's protocol is decided with what is known.
const MAX_HELD_BYTES: usize = 64 << 10;

struct Tracked {
    info: FlowInfo,
    /// Set once the protocol is decided.
    decoder: Option<Box<dyn FlowDecoder>>,
    /// First bytes of each direction, for sniffing, and whether that prefix is final
    /// (a gap came, so later bytes are not the stream's start).
    prefix: [Vec<u8>; 2],
    prefix_final: [bool; 2],
    held: Vec<StreamEvent>,
    held_bytes: usize,
    offset: [u64; 2],
    bytes: [u64; 2],
    gaps: u64,
    gap_bytes: u64,
    closed: Option<CloseReason>,
}

fn idx(dir: Direction) -> usize {
    match dir {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

/// Formats an address as `ip:port`, IPv6 as `[ip]:port` (what `SocketAddr` does).
pub fn endpoint(a: &SocketAddr) -> String {
    a.to_string()
}

/// Turns stream events into inspect records.
pub struct Session {
    ports: PortMap,
    registry: DecoderRegistry,
    flows: HashMap<FlowId, Tracked>,
    summary: SummaryRecord,
}

impl Session {
    pub fn new(ports: PortMap, registry: DecoderRegistry) -> Self {
        Session {
            ports,
            registry,
            flows: HashMap::new(),
            summary: SummaryRecord::default(),
        }
    }

    /// Capture time of the oldest write any live flow's decoder still holds
    /// undecided (see [`FlowDecoder::oldest_pending_write`]).
    pub fn oldest_pending_write(&self) -> Option<Timestamp> {
        self.flows
            .values()
            .filter_map(|t| t.decoder.as_ref()?.oldest_pending_write())
            .min()
    }

    /// [`Self::oldest_pending_write`], but a flow `router_flow` names (a sharded
    /// cluster router's own connection to a shard) holds it only by its `config.*`
    /// writes: its other writes are copies of client writes to the router, never
    /// logged (the commit tracker's `router_copy`), and decided on the client's
    /// flow. A copy that is a statement of a transaction committed by two-phase
    /// commit is never decided on the router's flow at all (the coordinator shard
    /// commits it over its own connection), so it would hold the tidemark as long
    /// as the router keeps that connection open (found by the sharded histories,
    /// tests/histories_support/sharded_run.rs).
    pub fn oldest_pending_write_except_router_copies(
        &self,
        router_flow: impl Fn(FlowId) -> bool,
    ) -> Option<Timestamp> {
        self.flows
            .iter()
            .filter_map(|(id, t)| {
                let d = t.decoder.as_ref()?;
                if !router_flow(*id) {
                    return d.oldest_pending_write();
                }
                let mut lines = Vec::new();
                d.in_flight(&mut lines);
                crate::decode::seam::earliest_line(
                    lines
                        .iter()
                        .filter(|l| crate::commit::is_cluster_metadata(l)),
                )
            })
            .min()
    }

    /// Copies of the write lines every live flow's decoder holds without a decision
    /// (see [`FlowDecoder::in_flight`]), flow by flow in flow order.
    pub fn in_flight_writes(&self) -> Vec<WriteRecord> {
        let mut flows: Vec<(&FlowId, &Tracked)> = self.flows.iter().collect();
        flows.sort_by_key(|(f, _)| f.0);
        let mut out = Vec::new();
        for (_, t) in flows {
            if let Some(d) = t.decoder.as_ref() {
                d.in_flight(&mut out);
            }
        }
        out
    }

    /// The protocol decided for a live flow (`None` while it is still being sniffed
    /// or after it ended).
    pub fn protocol(&self, flow: FlowId) -> Option<Protocol> {
        let t = self.flows.get(&flow)?;
        t.decoder.as_ref().map(|_| t.info.protocol)
    }

    /// Whether the flow's server port is one of the configured database ports (so
    /// it can carry writes even before its protocol is decided).
    pub fn is_database_port(&self, port: u16) -> bool {
        self.ports.all().contains(&port)
    }

    /// Handles one event, appending the records it produces.
    pub fn event(&mut self, ev: StreamEvent, out: &mut Vec<Record>) {
        let first_new = out.len();
        self.apply(ev, out);
        self.summary.errors += out[first_new..]
            .iter()
            .filter(|r| matches!(r, Record::Error(_)))
            .count() as u64;
    }

    fn apply(&mut self, ev: StreamEvent, out: &mut Vec<Record>) {
        let id = ev.flow();
        if let StreamEvent::Opened {
            flow,
            client,
            server,
            ts,
        } = ev
        {
            let by_port = self.ports.by_port(server.port());
            let mut t = Tracked {
                info: FlowInfo {
                    flow,
                    client,
                    server,
                    protocol: by_port.unwrap_or(Protocol::Unknown),
                    opened: ts,
                },
                decoder: None,
                prefix: [Vec::new(), Vec::new()],
                prefix_final: [false, false],
                held: Vec::new(),
                held_bytes: 0,
                offset: [0, 0],
                bytes: [0, 0],
                gaps: 0,
                gap_bytes: 0,
                closed: None,
            };
            if by_port.is_some() {
                t.decoder = Some(self.registry.create(&t.info));
            }
            self.flows.insert(flow, t);
            return;
        }
        let Some(t) = self.flows.get_mut(&id) else {
            return;
        };
        match &ev {
            StreamEvent::Data { dir, bytes, .. } => {
                let i = idx(*dir);
                if !t.prefix_final[i] && t.prefix[i].len() < SNIFF_LEN {
                    let take = (SNIFF_LEN - t.prefix[i].len()).min(bytes.len());
                    t.prefix[i].extend_from_slice(&bytes[..take]);
                }
            }
            StreamEvent::Gap { dir, .. } => t.prefix_final[idx(*dir)] = true,
            _ => {}
        }
        if t.decoder.is_some() {
            Self::feed(t, ev, out);
        } else {
            if let StreamEvent::Data { bytes, .. } = &ev {
                t.held_bytes += bytes.len();
            }
            let forced = matches!(ev, StreamEvent::Closed { .. }) || t.held_bytes > MAX_HELD_BYTES;
            t.held.push(ev);
            if let Some(p) = Self::try_sniff(t, forced) {
                t.info.protocol = p;
                t.decoder = Some(self.registry.create(&t.info));
                for ev in std::mem::take(&mut t.held) {
                    Self::feed(t, ev, out);
                }
                t.held_bytes = 0;
            }
        }
        if let Some(reason) = t.closed {
            if let Some(t) = self.flows.remove(&id) {
                self.flow_record(&t, reason, out);
            }
        }
    }

    /// Decides from the prefixes; `None` while more bytes could still change the answer.
    fn try_sniff(t: &Tracked, forced: bool) -> Option<Protocol> {
        let c2s = &t.prefix[0];
        let s2c_seen = !t.prefix[1].is_empty();
        // The client's first message is complete once the server answers or a gap cut it.
        let c2s_complete = forced || s2c_seen || t.prefix_final[0];
        if !c2s.is_empty() {
            match sniff(c2s, false, c2s_complete) {
                Sniff::Is(Protocol::Unknown) if forced && s2c_seen => {}
                Sniff::Is(p) => return Some(p),
                Sniff::NeedMore => return None,
            }
        }
        if !forced {
            return None;
        }
        // No usable client bytes (a capture that starts with an orphan reply, or a
        // one-sided capture): the server's first bytes are the next best evidence.
        match sniff(&t.prefix[1], true, true) {
            Sniff::Is(p) => Some(p),
            Sniff::NeedMore => Some(Protocol::Unknown),
        }
    }

    fn feed(t: &mut Tracked, ev: StreamEvent, out: &mut Vec<Record>) {
        let Some(dec) = t.decoder.as_mut() else {
            return;
        };
        match ev {
            StreamEvent::Data { dir, ts, bytes, .. } => {
                let i = idx(dir);
                let pos = StreamPos {
                    flow: &t.info,
                    dir,
                    ts,
                    offset: t.offset[i],
                };
                dec.data(&pos, &bytes, out);
                t.offset[i] += bytes.len() as u64;
                t.bytes[i] += bytes.len() as u64;
            }
            StreamEvent::Gap { dir, ts, len, .. } => {
                let i = idx(dir);
                let pos = StreamPos {
                    flow: &t.info,
                    dir,
                    ts,
                    offset: t.offset[i],
                };
                dec.gap(&pos, len, out);
                t.offset[i] += len;
                t.gaps += 1;
                t.gap_bytes += len;
            }
            StreamEvent::Closed { ts, reason, .. } => {
                dec.closed(&t.info, ts, reason, out);
                t.closed = Some(reason);
            }
            StreamEvent::Opened { .. } => {}
        }
    }

    fn flow_record(&mut self, t: &Tracked, reason: CloseReason, out: &mut Vec<Record>) {
        let s = &mut self.summary;
        s.flows += 1;
        match t.info.protocol {
            Protocol::Cql => s.protocols.cql += 1,
            Protocol::Mongo => s.protocols.mongo += 1,
            Protocol::Unknown => s.protocols.unknown += 1,
        }
        s.bytes_c2s += t.bytes[0];
        s.bytes_s2c += t.bytes[1];
        s.gaps += t.gaps;
        s.gap_bytes += t.gap_bytes;
        out.push(Record::Flow(FlowRecord {
            flow: t.info.flow.0,
            client: endpoint(&t.info.client),
            server: endpoint(&t.info.server),
            protocol: t.info.protocol,
            bytes_c2s: t.bytes[0],
            bytes_s2c: t.bytes[1],
            gaps: t.gaps,
            gap_bytes: t.gap_bytes,
            state: reason.as_str(),
        }));
    }

    /// An error of the capture itself (not of a flow).
    pub fn capture_error(&mut self, message: String) -> Record {
        self.summary.errors += 1;
        Record::Error(ErrorRecord {
            flow: None,
            dir: None,
            offset: None,
            message,
        })
    }

    /// Ends the session: flows still open (a source without `finish`) are reported
    /// as ended with the capture, then the summary.
    pub fn finish(mut self, stats: &CaptureStats, ts: Timestamp, out: &mut Vec<Record>) {
        let mut ids: Vec<FlowId> = self.flows.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.event(
                StreamEvent::Closed {
                    flow: id,
                    ts,
                    reason: CloseReason::EndOfCapture,
                },
                out,
            );
        }
        let mut summary = self.summary;
        summary.capture = stats.clone();
        out.push(Record::Summary(summary));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;

    use super::*;
    use crate::decode::seam::FlowDecoder;

    type Log = Arc<Mutex<Vec<String>>>;

    /// Records every call it gets, to check what the session hands decoders.
    struct Spy(Log);

    impl FlowDecoder for Spy {
        fn data(&mut self, pos: &StreamPos<'_>, bytes: &Bytes, _: &mut Vec<Record>) {
            let s = format!("data {} @{} {}", pos.dir.as_str(), pos.offset, bytes.len());
            self.0.lock().unwrap().push(s);
        }
        fn gap(&mut self, pos: &StreamPos<'_>, len: u64, _: &mut Vec<Record>) {
            let s = format!("gap {} @{} {len}", pos.dir.as_str(), pos.offset);
            self.0.lock().unwrap().push(s);
        }
        fn closed(&mut self, f: &FlowInfo, _: Timestamp, r: CloseReason, _: &mut Vec<Record>) {
            let s = format!("closed {} {}", f.protocol.as_str(), r.as_str());
            self.0.lock().unwrap().push(s);
        }
    }

    fn session(log: &Log) -> Session {
        let mut reg = DecoderRegistry::new();
        for p in [Protocol::Cql, Protocol::Mongo, Protocol::Unknown] {
            let log = log.clone();
            reg.register(p, move |_| Box::new(Spy(log.clone())));
        }
        Session::new(PortMap::new(&[], &[]), reg)
    }

    fn opened(server_port: u16) -> StreamEvent {
        StreamEvent::Opened {
            flow: FlowId(1),
            client: "10.0.0.1:40000".parse().unwrap(),
            server: SocketAddr::from(([10, 0, 0, 2], server_port)),
            ts: Timestamp(1),
        }
    }

    fn data(dir: Direction, b: &[u8]) -> StreamEvent {
        StreamEvent::Data {
            flow: FlowId(1),
            dir,
            ts: Timestamp(2),
            bytes: Bytes::copy_from_slice(b),
        }
    }

    fn closed() -> StreamEvent {
        StreamEvent::Closed {
            flow: FlowId(1),
            ts: Timestamp(3),
            reason: CloseReason::Fin,
        }
    }

    fn mongo_header(opcode: i32) -> Vec<u8> {
        let mut h = Vec::new();
        for v in [16i32, 1, 0, opcode] {
            h.extend_from_slice(&v.to_le_bytes());
        }
        h
    }

    /// Holds one write undecided for good (as a router's copy of a two-phase-commit
    /// transaction's statement is): flow 1 on `s.c` from 10, flow 2 on
    /// `config.chunks` from 20, flow 3 on `s.c` from 30.
    struct Holding(WriteRecord);

    impl FlowDecoder for Holding {
        fn data(&mut self, _: &StreamPos<'_>, _: &Bytes, _: &mut Vec<Record>) {}
        fn gap(&mut self, _: &StreamPos<'_>, _: u64, _: &mut Vec<Record>) {}
        fn closed(&mut self, _: &FlowInfo, _: Timestamp, _: CloseReason, _: &mut Vec<Record>) {}
        fn oldest_pending_write(&self) -> Option<Timestamp> {
            Some(self.0.ts)
        }
        fn in_flight(&self, out: &mut Vec<WriteRecord>) {
            out.push(self.0.clone());
        }
    }

    #[test]
    fn a_routers_copies_hold_no_tidemark_but_its_config_writes_do() {
        let mut reg = DecoderRegistry::new();
        reg.register(Protocol::Mongo, |f| {
            let (ns, ts) = match f.flow.0 {
                1 => ("s.c", 10),
                2 => ("config.chunks", 20),
                _ => ("s.c", 30),
            };
            Box::new(Holding(WriteRecord {
                flow: f.flow.0,
                ts: Timestamp(ts),
                proto: "mongo",
                namespace: Some(ns.to_string()),
                op: "update".into(),
                ..WriteRecord::default()
            }))
        });
        let mut s = Session::new(PortMap::new(&[], &[]), reg);
        let mut out = Vec::new();
        for flow in 1..=3u64 {
            s.event(
                StreamEvent::Opened {
                    flow: FlowId(flow),
                    client: SocketAddr::from(([10, 0, 0, 1], 40000 + flow as u16)),
                    server: SocketAddr::from(([10, 0, 0, 2], 27017)),
                    ts: Timestamp(1),
                },
                &mut out,
            );
            let mut msg = mongo_header(2013);
            msg[0] = 16;
            s.event(
                StreamEvent::Data {
                    flow: FlowId(flow),
                    dir: Direction::ClientToServer,
                    ts: Timestamp(2),
                    bytes: Bytes::from(msg),
                },
                &mut out,
            );
        }
        assert_eq!(s.oldest_pending_write(), Some(Timestamp(10)));
        // Flows 1 and 2 are a router's own: its copy on flow 1 holds nothing, its
        // config write on flow 2 does; flow 3 (a client's) holds as before.
        let router = |f: FlowId| f.0 <= 2;
        assert_eq!(
            s.oldest_pending_write_except_router_copies(router),
            Some(Timestamp(20))
        );
        assert_eq!(
            s.oldest_pending_write_except_router_copies(|f| f.0 == 1),
            Some(Timestamp(20))
        );
        assert_eq!(
            s.oldest_pending_write_except_router_copies(|_| false),
            Some(Timestamp(10))
        );
    }

    #[test]
    fn decoder_gets_ordered_data_gaps_and_offsets_then_one_flow_record() {
        let log = Log::default();
        let mut s = session(&log);
        let mut out = Vec::new();
        let c2s = Direction::ClientToServer;
        s.event(opened(9042), &mut out);
        s.event(data(c2s, b"abcde"), &mut out);
        s.event(
            StreamEvent::Gap {
                flow: FlowId(1),
                dir: c2s,
                ts: Timestamp(2),
                len: 3,
            },
            &mut out,
        );
        s.event(data(c2s, b"xy"), &mut out);
        s.event(data(Direction::ServerToClient, b"r"), &mut out);
        s.event(closed(), &mut out);
        assert_eq!(
            *log.lock().unwrap(),
            vec![
                "data c2s @0 5",
                "gap c2s @5 3",
                "data c2s @8 2",
                "data s2c @0 1",
                "closed cql fin"
            ]
        );
        let [Record::Flow(f)] = &out[..] else {
            panic!("expected one flow record, got {out:?}");
        };
        assert_eq!(
            (f.bytes_c2s, f.bytes_s2c, f.gaps, f.gap_bytes),
            (7, 1, 1, 3)
        );
        assert_eq!(f.state, "fin");
    }

    #[test]
    fn orphan_reply_first_then_request_is_sniffed_from_the_request() {
        let log = Log::default();
        let mut s = session(&log);
        let mut out = Vec::new();
        s.event(opened(5000), &mut out);
        s.event(data(Direction::ServerToClient, &mongo_header(1)), &mut out);
        // The server answered before any client byte: still waiting for the client.
        assert!(log.lock().unwrap().is_empty());
        s.event(
            data(Direction::ClientToServer, &mongo_header(2004)),
            &mut out,
        );
        s.event(closed(), &mut out);
        let l = log.lock().unwrap();
        assert_eq!(l[0], "data s2c @0 16", "held events are replayed in order");
        assert_eq!(l.last().unwrap(), "closed mongo fin");
    }

    #[test]
    fn one_sided_server_traffic_is_sniffed_from_the_server_at_close() {
        let log = Log::default();
        let mut s = session(&log);
        let mut out = Vec::new();
        s.event(opened(5001), &mut out);
        s.event(
            data(Direction::ServerToClient, &[0x84, 0, 0, 1, 2, 0, 0, 0, 0]),
            &mut out,
        );
        s.event(closed(), &mut out);
        assert_eq!(log.lock().unwrap().last().unwrap(), "closed cql fin");
    }

    #[test]
    fn held_bytes_are_bounded() {
        let log = Log::default();
        let mut s = session(&log);
        let mut out = Vec::new();
        s.event(opened(5002), &mut out);
        for _ in 0..100 {
            s.event(data(Direction::ServerToClient, &[b'x'; 1000]), &mut out);
        }
        // Decided (unknown) once the bound was passed, without waiting for the close.
        assert!(log.lock().unwrap().len() >= 64);
        assert!(s.flows[&FlowId(1)].held.is_empty());
        assert_eq!(s.flows[&FlowId(1)].info.protocol, Protocol::Unknown);
    }
}
