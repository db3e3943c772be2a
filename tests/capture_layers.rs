//! Link layers, IP versions, fragments and truncation: frames built in code (link
//! headers by hand) must reassemble to the bytes that were sent, and what cannot be
//! decoded is counted, never silently dropped.

mod common;

use common::*;
use tidemark::capture::{AssemblerConfig, LinkType, Timestamp};

const C: &str = "10.0.0.1:40000";
const S: &str = "10.0.0.2:9042";

fn simple_flow() -> Vec<Seg> {
    let mut c = Conv::new(C, S, 1, 2);
    let mut segs = c.handshake();
    segs.push(c.data(true, b"request"));
    segs.push(c.data(false, b"response"));
    segs
}

fn check_simple(r: &Run) {
    let f = r.only();
    assert_eq!(f.c2s.bytes, b"request");
    assert_eq!(f.s2c.bytes, b"response");
    assert_eq!(r.stats.malformed + r.stats.non_ip, 0);
}

#[test]
fn every_link_type() {
    for link in [
        LinkType::Ethernet,
        LinkType::Null,
        LinkType::Loop,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::RawIp,
        LinkType::Ipv4,
    ] {
        check_simple(&run_segs_on(link, &simple_flow()));
    }
}

#[test]
fn vlan_and_qinq() {
    for tags in [
        vec![(0x8100, 10)],
        vec![(0x88a8, 100), (0x8100, 10)],
        vec![(0x9100, 1), (0x8100, 2), (0x8100, 3)],
    ] {
        let frames: Vec<Vec<u8>> = simple_flow()
            .iter()
            .map(|s| ethernet(&ip_packet(s), &tags))
            .collect();
        check_simple(&run_frames_with(
            AssemblerConfig::default(),
            LinkType::Ethernet,
            &frames,
        ));
    }
}

#[test]
fn ipv6_flows() {
    let mut c = Conv::new("[2001:db8::1]:40000", "[2001:db8::2]:27017", 10, 20);
    let mut segs = c.handshake();
    segs.push(c.data(true, b"v6 request"));
    segs.push(c.data(false, b"v6 reply"));
    for link in [
        LinkType::Ethernet,
        LinkType::Null,
        LinkType::LinuxSll2,
        LinkType::Ipv6,
        LinkType::RawIp,
    ] {
        let r = run_segs_on(link, &segs);
        let f = r.only();
        assert_eq!(f.client, Some(addr("[2001:db8::1]:40000")));
        assert_eq!(f.c2s.bytes, b"v6 request");
        assert_eq!(f.s2c.bytes, b"v6 reply");
    }
}

#[test]
fn ipv4_fragments_are_reassembled_in_any_order() {
    let mut c = Conv::new(C, S, 1, 2);
    let mut frames: Vec<Vec<u8>> = c
        .handshake()
        .iter()
        .map(|s| ethernet(&ip_packet(s), &[]))
        .collect();
    let payload = pattern(100, 3);
    let big = ip_packet(&c.data(true, &payload));
    let mut frags = fragment_v4(&big, 48);
    assert_eq!(frags.len(), 3);
    frags.swap(0, 2);
    frames.extend(frags.iter().map(|f| ethernet(f, &[])));
    let r = run_frames_with(AssemblerConfig::default(), LinkType::Ethernet, &frames);
    assert_eq!(r.only().c2s.bytes, payload);
    assert_eq!(r.stats.fragments, 3);
    assert_eq!(r.stats.fragments_reassembled, 1);
}

#[test]
fn ipv6_fragments_are_reassembled() {
    let mut c = Conv::new("[2001:db8::1]:40000", "[2001:db8::2]:9042", 1, 2);
    let mut frames: Vec<Vec<u8>> = c
        .handshake()
        .iter()
        .map(|s| ethernet(&ip_packet(s), &[]))
        .collect();
    let payload = pattern(300, 5);
    let big = ip_packet(&c.data(true, &payload));
    let mut frags = fragment_v6(&big, 104, 0xabcd);
    assert_eq!(frags.len(), 4);
    frags.reverse();
    frames.extend(frags.iter().map(|f| ethernet(f, &[])));
    frames.push(ethernet(&ip_packet(&c.data(true, b"tail")), &[]));
    let r = run_frames_with(AssemblerConfig::default(), LinkType::Ethernet, &frames);
    let mut want = payload.clone();
    want.extend_from_slice(b"tail");
    assert_eq!(r.only().c2s.bytes, want);
    assert_eq!(r.stats.fragments_reassembled, 1);
}

#[test]
fn lost_fragment_becomes_a_gap_not_silence() {
    let mut c = Conv::new(C, S, 1, 2);
    let mut segs: Vec<Vec<u8>> = c
        .handshake()
        .iter()
        .map(|s| ethernet(&ip_packet(s), &[]))
        .collect();
    let big = ip_packet(&c.data(true, &pattern(100, 1)));
    let frags = fragment_v4(&big, 48);
    segs.push(ethernet(&frags[0], &[]));
    segs.push(ethernet(&ip_packet(&c.data(true, b"after")), &[]));
    segs.push(ethernet(&ip_packet(&c.fin(true)), &[]));
    let r = run_frames_with(AssemblerConfig::default(), LinkType::Ethernet, &segs);
    assert_eq!(r.only().c2s.chunks, vec![Err(100), Ok(b"after".to_vec())]);
}

#[test]
fn snaplen_truncated_packet_is_counted_and_missing_bytes_are_a_gap() {
    let mut c = Conv::new(C, S, 1, 2);
    let mut frames: Vec<(Vec<u8>, usize)> = c
        .handshake()
        .iter()
        .map(|s| (ethernet(&ip_packet(s), &[]), usize::MAX))
        .collect();
    let payload = pattern(100, 9);
    let f = ethernet(&ip_packet(&c.data(true, &payload)), &[]);
    let keep = f.len() - 40;
    frames.push((f, keep));
    frames.push((
        ethernet(&ip_packet(&c.data(true, b"next")), &[]),
        usize::MAX,
    ));
    let mut tap = tidemark::capture::Assembler::new(AssemblerConfig::default());
    let mut events = Vec::new();
    for (i, (f, keep)) in frames.iter().enumerate() {
        let data = &f[..(*keep).min(f.len())];
        tap.packet(
            &tidemark::capture::RawPacket {
                link: LinkType::Ethernet,
                ts: Timestamp(i as u64),
                orig_len: f.len() as u32,
                data,
            },
            &mut events,
        );
    }
    tap.finish(&mut events);
    let r = collect(events, tap.stats().clone());
    assert_eq!(
        r.only().c2s.chunks,
        vec![Ok(payload[..60].to_vec()), Err(40), Ok(b"next".to_vec())]
    );
    assert_eq!(r.stats.truncated, 1);
    assert_eq!(r.stats.truncated_bytes, 40);
}

#[test]
fn non_tcp_and_garbage_are_counted() {
    let mut udp = Vec::new();
    etherparse::PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 5)
        .udp(53, 53)
        .write(&mut udp, b"dns")
        .unwrap();
    let mut arp = vec![0u8; 12];
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    let frames = vec![
        ethernet(&udp, &[]),
        arp,
        vec![1, 2, 3],
        ethernet(&[0x45, 0, 0], &[]),
    ];
    let r = run_frames_with(AssemblerConfig::default(), LinkType::Ethernet, &frames);
    assert!(r.flows.is_empty());
    assert_eq!(r.stats.non_tcp, 1);
    assert_eq!(r.stats.non_ip, 1);
    assert_eq!(r.stats.malformed, 2);
}
