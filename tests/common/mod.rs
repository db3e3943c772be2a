//! Helpers shared by the capture integration tests: build TCP packets in code
//! (etherparse's PacketBuilder for IP/TCP, link headers by hand), run them through a
//! [`Tap`], and collect what came out per flow and direction.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use etherparse::PacketBuilder;
use tidemark::capture::{
    Assembler, AssemblerConfig, CaptureStats, CloseReason, Direction, FlowId, LinkType, RawPacket,
    StreamEvent, Timestamp,
};

/// TCP flags for [`Seg`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    pub syn: bool,
    pub ack: Option<u32>,
    pub fin: bool,
    pub rst: bool,
}

pub const NONE: Flags = Flags {
    syn: false,
    ack: None,
    fin: false,
    rst: false,
};

/// One TCP segment to build.
#[derive(Debug, Clone)]
pub struct Seg {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub flags: Flags,
    pub payload: Vec<u8>,
}

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The IP packet (no link header) for a segment.
pub fn ip_packet(s: &Seg) -> Vec<u8> {
    let b = match (s.src.ip(), s.dst.ip()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => PacketBuilder::ipv4(a.octets(), b.octets(), 64),
        (IpAddr::V6(a), IpAddr::V6(b)) => PacketBuilder::ipv6(a.octets(), b.octets(), 64),
        _ => panic!("mixed address families"),
    };
    let mut t = b.tcp(s.src.port(), s.dst.port(), s.seq, 65535);
    if s.flags.syn {
        t = t.syn();
    }
    if let Some(a) = s.flags.ack {
        t = t.ack(a);
    }
    if s.flags.fin {
        t = t.fin();
    }
    if s.flags.rst {
        t = t.rst();
    }
    let mut v = Vec::new();
    t.write(&mut v, &s.payload).unwrap();
    v
}

fn ether_type_of(ip: &[u8]) -> [u8; 2] {
    if ip[0] >> 4 == 6 {
        [0x86, 0xdd]
    } else {
        [0x08, 0x00]
    }
}

/// Wraps an IP packet in Ethernet with the given VLAN tags (TPID, VID), outermost first.
pub fn ethernet(ip: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    for &(tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ether_type_of(ip));
    f.extend_from_slice(ip);
    f
}

/// BSD loopback header: address family in little- or big-endian order.
pub fn null_link(ip: &[u8], big_endian: bool) -> Vec<u8> {
    let af: u32 = if ip[0] >> 4 == 6 { 30 } else { 2 };
    let mut f = if big_endian {
        af.to_be_bytes().to_vec()
    } else {
        af.to_le_bytes().to_vec()
    };
    f.extend_from_slice(ip);
    f
}

/// Linux cooked v1 header (ARPHRD_LOOPBACK, as `tcpdump -i any` on lo writes it).
pub fn sll(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 0x03, 0x04, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0];
    f.extend_from_slice(&ether_type_of(ip));
    f.extend_from_slice(ip);
    f
}

/// Linux cooked v2 header.
pub fn sll2(ip: &[u8]) -> Vec<u8> {
    let mut f = ether_type_of(ip).to_vec();
    f.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0x03, 0x04, 0, 6]);
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(ip);
    f
}

/// A frame for `link` carrying `ip`.
pub fn frame(link: LinkType, ip: &[u8]) -> Vec<u8> {
    match link {
        LinkType::Ethernet => ethernet(ip, &[]),
        LinkType::Null => null_link(ip, false),
        LinkType::Loop => null_link(ip, true),
        LinkType::LinuxSll => sll(ip),
        LinkType::LinuxSll2 => sll2(ip),
        LinkType::RawIp | LinkType::Ipv4 | LinkType::Ipv6 => ip.to_vec(),
    }
}

/// Splits an IPv4 packet into fragments of `chunk` payload bytes (a multiple of 8).
pub fn fragment_v4(ip: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let ihl = usize::from(ip[0] & 0xf) * 4;
    let (hdr, payload) = ip.split_at(ihl);
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let end = (off + chunk).min(payload.len());
        let mut h = hdr.to_vec();
        let total = (ihl + end - off) as u16;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        let more = if end < payload.len() { 0x2000 } else { 0 };
        h[6..8].copy_from_slice(&(more | (off / 8) as u16).to_be_bytes());
        h[10..12].copy_from_slice(&[0, 0]);
        let mut sum: u32 = h
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        h[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        h.extend_from_slice(&payload[off..end]);
        out.push(h);
        off = end;
    }
    out
}

/// Splits an IPv6 packet (no extension headers) into fragments of `chunk` payload
/// bytes (a multiple of 8), each with a Fragment header.
pub fn fragment_v6(ip: &[u8], chunk: usize, id: u32) -> Vec<Vec<u8>> {
    let (hdr, payload) = ip.split_at(40);
    let next = hdr[6];
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let end = (off + chunk).min(payload.len());
        let mut h = hdr.to_vec();
        h[6] = 44;
        h[4..6].copy_from_slice(&((8 + end - off) as u16).to_be_bytes());
        let more = u16::from(end < payload.len());
        h.extend_from_slice(&[next, 0]);
        h.extend_from_slice(&(((off / 8) as u16) << 3 | more).to_be_bytes());
        h.extend_from_slice(&id.to_be_bytes());
        h.extend_from_slice(&payload[off..end]);
        out.push(h);
        off = end;
    }
    out
}

/// A two-sided conversation builder that tracks sequence numbers.
pub struct Conv {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub cseq: u32,
    pub sseq: u32,
}

impl Conv {
    pub fn new(client: &str, server: &str, cisn: u32, sisn: u32) -> Self {
        Conv {
            client: addr(client),
            server: addr(server),
            cseq: cisn,
            sseq: sisn,
        }
    }

    fn seg(&self, c2s: bool, seq: u32, flags: Flags, payload: &[u8]) -> Seg {
        let (src, dst) = if c2s {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        Seg {
            src,
            dst,
            seq,
            flags,
            payload: payload.to_vec(),
        }
    }

    /// SYN, SYN-ACK, ACK. Afterwards `cseq`/`sseq` are the first data bytes' numbers.
    pub fn handshake(&mut self) -> Vec<Seg> {
        let syn = self.seg(true, self.cseq, Flags { syn: true, ..NONE }, b"");
        let synack = self.seg(
            false,
            self.sseq,
            Flags {
                syn: true,
                ack: Some(self.cseq.wrapping_add(1)),
                ..NONE
            },
            b"",
        );
        self.cseq = self.cseq.wrapping_add(1);
        self.sseq = self.sseq.wrapping_add(1);
        let ack = self.seg(
            true,
            self.cseq,
            Flags {
                ack: Some(self.sseq),
                ..NONE
            },
            b"",
        );
        vec![syn, synack, ack]
    }

    /// A data segment in one direction, advancing that side's sequence number.
    pub fn data(&mut self, c2s: bool, payload: &[u8]) -> Seg {
        let (seq, ack) = if c2s {
            (self.cseq, self.sseq)
        } else {
            (self.sseq, self.cseq)
        };
        let s = self.seg(
            c2s,
            seq,
            Flags {
                ack: Some(ack),
                ..NONE
            },
            payload,
        );
        if c2s {
            self.cseq = self.cseq.wrapping_add(payload.len() as u32);
        } else {
            self.sseq = self.sseq.wrapping_add(payload.len() as u32);
        }
        s
    }

    /// A segment at an explicit sequence number, not advancing anything.
    pub fn at(&self, c2s: bool, seq: u32, payload: &[u8]) -> Seg {
        self.seg(c2s, seq, NONE, payload)
    }

    /// A FIN (with ACK) from one side.
    pub fn fin(&mut self, c2s: bool) -> Seg {
        let (seq, ack) = if c2s {
            (self.cseq, self.sseq)
        } else {
            (self.sseq, self.cseq)
        };
        let s = self.seg(
            c2s,
            seq,
            Flags {
                fin: true,
                ack: Some(ack),
                ..NONE
            },
            b"",
        );
        if c2s {
            self.cseq = self.cseq.wrapping_add(1);
        } else {
            self.sseq = self.sseq.wrapping_add(1);
        }
        s
    }

    /// A bare ACK from one side acknowledging `ack`.
    pub fn ack(&self, c2s: bool, ack: u32) -> Seg {
        let seq = if c2s { self.cseq } else { self.sseq };
        self.seg(
            c2s,
            seq,
            Flags {
                ack: Some(ack),
                ..NONE
            },
            b"",
        )
    }

    pub fn rst(&self, c2s: bool) -> Seg {
        let seq = if c2s { self.cseq } else { self.sseq };
        self.seg(c2s, seq, Flags { rst: true, ..NONE }, b"")
    }
}

/// What one direction of a flow delivered.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dir {
    pub bytes: Vec<u8>,
    /// Gap lengths, in order.
    pub gaps: Vec<u64>,
    /// Data and gaps in order: `Ok(bytes)` or `Err(gap length)`.
    pub chunks: Vec<Result<Vec<u8>, u64>>,
}

/// What one flow delivered.
#[derive(Debug, Default, Clone)]
pub struct FlowOut {
    pub client: Option<SocketAddr>,
    pub server: Option<SocketAddr>,
    pub c2s: Dir,
    pub s2c: Dir,
    pub closed: Option<CloseReason>,
    pub events_after_close: usize,
}

/// Everything a run produced.
pub struct Run {
    pub flows: BTreeMap<FlowId, FlowOut>,
    pub stats: CaptureStats,
    pub events: Vec<StreamEvent>,
}

impl Run {
    pub fn only(&self) -> &FlowOut {
        assert_eq!(
            self.flows.len(),
            1,
            "expected one flow, got {:?}",
            self.flows.keys()
        );
        self.flows.values().next().unwrap()
    }
}

/// Collects events per flow, checking the event-order contract on the way.
pub fn collect(events: Vec<StreamEvent>, stats: CaptureStats) -> Run {
    let mut flows: BTreeMap<FlowId, FlowOut> = BTreeMap::new();
    for ev in &events {
        match ev {
            StreamEvent::Opened {
                flow,
                client,
                server,
                ..
            } => {
                assert!(!flows.contains_key(flow), "flow {flow:?} opened twice");
                flows.insert(
                    *flow,
                    FlowOut {
                        client: Some(*client),
                        server: Some(*server),
                        ..Default::default()
                    },
                );
            }
            other => {
                let f = flows.get_mut(&other.flow()).expect("event before Opened");
                if f.closed.is_some() {
                    f.events_after_close += 1;
                }
                match other {
                    StreamEvent::Data { dir, bytes, .. } => {
                        assert!(!bytes.is_empty(), "empty Data event");
                        let d = if *dir == Direction::ClientToServer {
                            &mut f.c2s
                        } else {
                            &mut f.s2c
                        };
                        d.bytes.extend_from_slice(bytes);
                        d.chunks.push(Ok(bytes.to_vec()));
                    }
                    StreamEvent::Gap { dir, len, .. } => {
                        assert!(*len > 0, "empty Gap event");
                        let d = if *dir == Direction::ClientToServer {
                            &mut f.c2s
                        } else {
                            &mut f.s2c
                        };
                        d.gaps.push(*len);
                        d.chunks.push(Err(*len));
                    }
                    StreamEvent::Closed { reason, .. } => f.closed = Some(*reason),
                    StreamEvent::Opened { .. } => unreachable!(),
                }
            }
        }
    }
    for (id, f) in &flows {
        assert_eq!(
            f.events_after_close, 0,
            "flow {id:?} had events after Closed"
        );
    }
    Run {
        flows,
        stats,
        events,
    }
}

/// Runs frames through a tap with the given config; one millisecond between packets.
pub fn run_frames_with(cfg: AssemblerConfig, link: LinkType, frames: &[Vec<u8>]) -> Run {
    run_timed(
        cfg,
        link,
        frames
            .iter()
            .enumerate()
            .map(|(i, f)| (Timestamp(1_000_000_000 + i as u64 * 1_000_000), f.clone())),
    )
}

/// Runs (timestamp, frame) pairs through a tap.
pub fn run_timed(
    cfg: AssemblerConfig,
    link: LinkType,
    frames: impl IntoIterator<Item = (Timestamp, Vec<u8>)>,
) -> Run {
    let mut tap = Assembler::new(cfg);
    let mut events = Vec::new();
    for (ts, f) in frames {
        tap.packet(
            &RawPacket {
                link,
                ts,
                orig_len: f.len() as u32,
                data: &f,
            },
            &mut events,
        );
    }
    tap.finish(&mut events);
    collect(events, tap.stats().clone())
}

/// Runs segments as Ethernet frames through a default tap.
pub fn run_segs(segs: &[Seg]) -> Run {
    run_segs_on(LinkType::Ethernet, segs)
}

pub fn run_segs_on(link: LinkType, segs: &[Seg]) -> Run {
    let frames: Vec<Vec<u8>> = segs.iter().map(|s| frame(link, &ip_packet(s))).collect();
    run_frames_with(AssemblerConfig::default(), link, &frames)
}

/// Deterministic pseudo-random bytes.
pub fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}
