//! Arbitrary bytes as captured frames of every supported link type, through the whole
//! tap (link, IP, fragments, TCP reassembly) and inspect's session (protocol sniffing,
//! records), with small caps so the limits are exercised too.
//!
//! Input: a mode byte, then records of [len: u8][flags: u8][bytes]. In raw mode the
//! bytes are the frame; in built mode they fill in a well-formed IPv4/TCP header (few
//! distinct ports, so segments collide into the same flows) followed by a payload, so
//! the fuzzer reaches deep reassembly states quickly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidemark::capture::{LinkType, RawPacket, ReassemblyConfig, Assembler, AssemblerConfig, Timestamp};
use tidemark::decode::registry::default_registry;
use tidemark::decode::detect::PortMap;
use tidemark::decode::session::Session;

const LINKS: [LinkType; 8] = [
    LinkType::Ethernet,
    LinkType::Null,
    LinkType::Loop,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
    LinkType::Ipv4,
    LinkType::Ipv6,
];

fn built_frame(b: &[u8]) -> Vec<u8> {
    let get = |i: usize| b.get(i).copied().unwrap_or(0);
    let payload = b.get(8..).unwrap_or(&[]);
    let total = 40 + payload.len();
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0,
        0,
        64,
        6,
        0,
        0,
    ];
    ip.extend_from_slice(&[10, 0, 0, 1 + (get(0) & 1)]);
    ip.extend_from_slice(&[10, 0, 0, 2 - (get(0) & 1)]);
    if get(0) & 0x80 != 0 {
        // Fragment: MF and an offset from the input.
        ip[6] = 0x20 | (get(1) & 0x1f);
        ip[7] = get(2);
    }
    let (sport, dport) = if get(0) & 1 == 0 {
        (40000 + u16::from(get(0) >> 5 & 3), 9042)
    } else {
        (9042, 40000 + u16::from(get(0) >> 5 & 3))
    };
    let mut tcp = Vec::with_capacity(20);
    tcp.extend_from_slice(&sport.to_be_bytes());
    tcp.extend_from_slice(&dport.to_be_bytes());
    // Sequence numbers near each other (and near the wrap) so segments overlap.
    let seq = 0xffff_ff00u32.wrapping_add(u32::from(u16::from_be_bytes([get(3), get(4)])));
    let ack = 0xffff_ff00u32.wrapping_add(u32::from(u16::from_be_bytes([get(5), get(6)])));
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&ack.to_be_bytes());
    tcp.push(0x50);
    tcp.push(get(7) & 0x17); // FIN, SYN, RST, ACK
    tcp.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&tcp);
    f.extend_from_slice(payload);
    f
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let built = mode & 0x80 != 0;
    let link = if built {
        LinkType::Ethernet
    } else {
        LINKS[usize::from(mode) % LINKS.len()]
    };
    let cfg = AssemblerConfig {
        reassembly: ReassemblyConfig {
            max_flows: 8,
            max_buffer_per_direction: 2048,
            max_buffer_total: 8192,
            idle_timeout_ns: 50_000,
            linger_ns: 20_000,
            ..ReassemblyConfig::default()
        },
        ..AssemblerConfig::default()
    };
    let mut tap = Assembler::new(cfg);
    let mut session = Session::new(PortMap::new(&[], &[]), default_registry());
    let mut events = Vec::new();
    let mut records = Vec::new();
    let mut ts = 0u64;
    while rest.len() >= 2 {
        let len = usize::from(rest[0]).min(rest.len() - 2);
        let flags = rest[1];
        let bytes = &rest[2..2 + len];
        rest = &rest[2 + len..];
        ts += u64::from(flags & 0x0f) * 1000;
        let frame = if built {
            built_frame(bytes)
        } else {
            bytes.to_vec()
        };
        // Sometimes claim the frame was longer on the wire (snaplen cut).
        let orig_len = frame.len() as u32
            + if flags & 0x10 != 0 {
                u32::from(flags)
            } else {
                0
            };
        tap.packet(
            &RawPacket {
                link,
                ts: Timestamp(ts),
                orig_len,
                data: &frame,
            },
            &mut events,
        );
        assert!(tap.reassembler().flow_count() <= 8);
        assert!(tap.reassembler().buffered() <= 8192 + 2048 + 512);
        for ev in events.drain(..) {
            session.event(ev, &mut records);
        }
        records.clear();
    }
    tap.finish(&mut events);
    assert_eq!(tap.reassembler().buffered(), 0);
    for ev in events.drain(..) {
        session.event(ev, &mut records);
    }
    session.finish(tap.stats(), Timestamp(ts), &mut records);
});
