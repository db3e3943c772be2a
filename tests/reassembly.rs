//! Synthetic TCP reassembly tests: packets built in code, run through the tap, and
//! the delivered bytes, gaps and lifecycle checked exactly.

mod common;

use common::*;
use tidemark::capture::{CloseReason, LinkType, ReassemblyConfig, TapConfig, Timestamp};

const C: &str = "10.0.0.1:40000";
const S: &str = "10.0.0.2:9042";

#[test]
fn in_order_with_handshake_and_fins() {
    let mut c = Conv::new(C, S, 1000, 5000);
    let mut segs = c.handshake();
    segs.push(c.data(true, b"hello "));
    segs.push(c.data(true, b"world"));
    segs.push(c.data(false, b"reply"));
    segs.push(c.fin(true));
    segs.push(c.fin(false));
    let r = run_segs(&segs);
    let f = r.only();
    assert_eq!(f.client, Some(addr(C)));
    assert_eq!(f.c2s.bytes, b"hello world");
    assert_eq!(f.s2c.bytes, b"reply");
    assert!(f.c2s.gaps.is_empty() && f.s2c.gaps.is_empty());
    assert_eq!(f.closed, Some(CloseReason::Fin));
    assert_eq!(r.stats.flows_closed_fin, 1);
}

#[test]
fn fin_from_server_first() {
    let mut c = Conv::new(C, S, 7, 9);
    let mut segs = c.handshake();
    segs.push(c.data(false, b"bye"));
    segs.push(c.fin(false));
    segs.push(c.data(true, b"ok"));
    segs.push(c.fin(true));
    let r = run_segs(&segs);
    let f = r.only();
    assert_eq!(f.s2c.bytes, b"bye");
    assert_eq!(f.c2s.bytes, b"ok");
    assert_eq!(f.closed, Some(CloseReason::Fin));
}

#[test]
fn out_of_order_segments_are_reordered() {
    let mut c = Conv::new(C, S, 100, 200);
    let mut segs = c.handshake();
    let a = c.data(true, b"AAAA");
    let b = c.data(true, b"BBBB");
    let d = c.data(true, b"CCCC");
    segs.extend([d, a, b]);
    let r = run_segs(&segs);
    assert_eq!(r.only().c2s.bytes, b"AAAABBBBCCCC");
    assert!(r.only().c2s.gaps.is_empty());
    assert_eq!(r.stats.out_of_order_segments, 1);
}

#[test]
fn duplicates_and_retransmissions_are_delivered_once() {
    let mut c = Conv::new(C, S, 100, 200);
    let mut segs = c.handshake();
    let a = c.data(true, b"first-");
    let b = c.data(true, b"second");
    segs.extend([a.clone(), a.clone(), b.clone(), a, b]);
    let r = run_segs(&segs);
    assert_eq!(r.only().c2s.bytes, b"first-second");
    assert_eq!(r.stats.retransmitted_segments, 3);
    assert_eq!(r.stats.duplicate_bytes, 18);
}

#[test]
fn overlapping_segments_first_seen_bytes_win() {
    // In order, then an overlapping retransmission with other content.
    let c = Conv::new(C, S, 0, 0);
    let segs = vec![
        c.at(true, 1000, b"AAAAAAAAAA"),
        c.at(true, 1005, b"BBBBBBBBBB"),
    ];
    let r = run_segs(&segs);
    assert_eq!(r.only().c2s.bytes, b"AAAAAAAAAABBBBB");
    // Buffered out of order first: the later in-order segment must not overwrite it.
    let segs = vec![
        c.at(true, 1000, b"z"),
        c.at(true, 1006, b"XXXXXXXXXX"),
        c.at(true, 1001, b"YYYYYYYYYY"),
    ];
    let r = run_segs(&segs);
    assert_eq!(r.only().c2s.bytes, b"zYYYYYXXXXXXXXXX");
    // A segment covering two buffered pieces and the holes between them.
    let segs = vec![
        c.at(true, 1000, b"0"),
        c.at(true, 1003, b"33"),
        c.at(true, 1007, b"77"),
        c.at(true, 1001, b"abcdefghij"),
    ];
    let r = run_segs(&segs);
    assert_eq!(r.only().c2s.bytes, b"0ab33ef77ij");
    assert!(r.only().c2s.gaps.is_empty());
}

#[test]
fn lost_segment_is_exactly_one_gap_of_its_length() {
    let mut c = Conv::new(C, S, 100, 200);
    let mut segs = c.handshake();
    let a = c.data(true, b"aaaa");
    let _lost = c.data(true, b"LOST-SEVEN!");
    let d = c.data(true, b"dddd");
    let e = c.data(true, b"eeee");
    segs.extend([a, d, e]);
    segs.push(c.fin(true));
    segs.push(c.fin(false));
    let r = run_segs(&segs);
    let f = r.only();
    assert_eq!(
        f.c2s.chunks,
        vec![
            Ok(b"aaaa".to_vec()),
            Err(11),
            Ok(b"dddd".to_vec()),
            Ok(b"eeee".to_vec())
        ]
    );
    assert_eq!(r.stats.gaps, 1);
    assert_eq!(r.stats.gap_bytes, 11);
    assert_eq!(f.closed, Some(CloseReason::Fin));
}

#[test]
fn peer_ack_past_a_hole_gives_it_up_before_the_flow_ends() {
    let mut c = Conv::new(C, S, 100, 200);
    let mut segs = c.handshake();
    let a = c.data(true, b"aaaa");
    let _lost = c.data(true, b"bbbb");
    let d = c.data(true, b"cccc");
    segs.extend([a, d]);
    let ack_all = c.ack(false, c.cseq);
    let mut tap = tidemark::capture::Tap::new(TapConfig::default());
    let mut events = Vec::new();
    let feed = |tap: &mut tidemark::capture::Tap, s: &Seg, events: &mut Vec<_>| {
        let f = ethernet(&ip_packet(s), &[]);
        let pkt = tidemark::capture::RawPacket {
            link: LinkType::Ethernet,
            ts: Timestamp(1),
            orig_len: f.len() as u32,
            data: &f,
        };
        tap.packet(&pkt, events);
    };
    for s in &segs {
        feed(&mut tap, s, &mut events);
    }
    let is_gap = |e: &tidemark::capture::StreamEvent| {
        matches!(e, tidemark::capture::StreamEvent::Gap { len: 4, .. })
    };
    assert!(!events.iter().any(is_gap), "the hole may still fill");
    // The server acknowledges everything: the hole can never be filled now.
    feed(&mut tap, &ack_all, &mut events);
    assert!(
        events.iter().any(is_gap),
        "gap given up on the ACK, before any close"
    );
    tap.finish(&mut events);
    let r = collect(events, tap.stats().clone());
    let f = r.only();
    assert_eq!(
        f.c2s.chunks,
        vec![Ok(b"aaaa".to_vec()), Err(4), Ok(b"cccc".to_vec())]
    );
    assert_eq!(f.closed, Some(CloseReason::EndOfCapture));
}

#[test]
fn lost_tail_proven_by_ack_becomes_a_gap_at_close() {
    let mut c = Conv::new(C, S, 100, 200);
    let mut segs = c.handshake();
    segs.push(c.data(true, b"head"));
    let _lost = c.data(true, b"tail!");
    segs.push(c.ack(false, c.cseq));
    let r = run_segs(&segs);
    assert_eq!(r.only().c2s.chunks, vec![Ok(b"head".to_vec()), Err(5)]);
}

#[test]
fn mid_stream_start_uses_known_server_port() {
    // The first packet seen goes server → client; no handshake at all.
    let c = Conv::new("10.0.0.1:50000", "10.0.0.2:9042", 0, 0);
    let segs = vec![
        c.at(false, 777, b"response"),
        c.at(true, 4242, b"request"),
        c.at(false, 785, b"more"),
    ];
    let r = run_segs(&segs);
    let f = r.only();
    assert_eq!(f.client, Some(addr("10.0.0.1:50000")));
    assert_eq!(f.server, Some(addr("10.0.0.2:9042")));
    assert_eq!(f.c2s.bytes, b"request");
    assert_eq!(f.s2c.bytes, b"responsemore");
}

#[test]
fn mid_stream_start_without_known_port_takes_lower_port_as_server() {
    let c = Conv::new("10.0.0.1:51000", "10.0.0.2:5555", 0, 0);
    let r = run_segs(&[c.at(false, 1, b"x")]);
    assert_eq!(r.only().server, Some(addr("10.0.0.2:5555")));
}

#[test]
fn rst_closes_and_later_packets_do_not_reopen() {
    let mut c = Conv::new(C, S, 100, 200);
    let mut segs = c.handshake();
    segs.push(c.data(true, b"abc"));
    segs.push(c.rst(false));
    segs.push(c.data(true, b"late"));
    let r = run_segs(&segs);
    let f = r.only();
    assert_eq!(f.closed, Some(CloseReason::Reset));
    assert_eq!(f.c2s.bytes, b"abc");
    assert_eq!(r.stats.after_close_packets, 1);
}

#[test]
fn rst_sequence_number_proves_unseen_bytes_and_blind_resets_are_ignored() {
    let mut c = Conv::new(C, S, 100, 200);
    let mut segs = c.handshake();
    segs.push(c.data(true, b"seen"));
    let _lost = c.data(true, b"unseen!");
    // A reset far outside the window cannot belong to this connection.
    let mut blind = c.rst(true);
    blind.seq = c.cseq.wrapping_add(1 << 31);
    segs.push(blind);
    segs.push(c.rst(true));
    let r = run_segs(&segs);
    let f = r.only();
    assert_eq!(f.c2s.chunks, vec![Ok(b"seen".to_vec()), Err(7)]);
    assert_eq!(f.closed, Some(CloseReason::Reset));
    assert_eq!(r.stats.out_of_window_segments, 1);
}

#[test]
fn port_reuse_after_close_gets_a_new_flow_id() {
    let mut c = Conv::new(C, S, 100, 200);
    let mut segs = c.handshake();
    segs.push(c.data(true, b"one"));
    segs.push(c.fin(true));
    segs.push(c.fin(false));
    segs.push(c.ack(true, c.sseq));
    let mut c2 = Conv::new(C, S, 90_000, 80_000);
    segs.extend(c2.handshake());
    segs.push(c2.data(true, b"two"));
    let r = run_segs(&segs);
    assert_eq!(r.flows.len(), 2);
    let v: Vec<_> = r.flows.values().collect();
    assert_eq!(v[0].c2s.bytes, b"one");
    assert_eq!(v[0].closed, Some(CloseReason::Fin));
    assert_eq!(v[1].c2s.bytes, b"two");
    assert_eq!(v[1].closed, Some(CloseReason::EndOfCapture));
}

#[test]
fn new_syn_on_an_open_flow_starts_a_new_one() {
    let mut c = Conv::new(C, S, 100, 200);
    let mut segs = c.handshake();
    segs.push(c.data(true, b"old"));
    let mut c2 = Conv::new(C, S, 5_000_000, 6_000_000);
    segs.extend(c2.handshake());
    segs.push(c2.data(true, b"new"));
    let r = run_segs(&segs);
    let v: Vec<_> = r.flows.values().collect();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].closed, Some(CloseReason::Reused));
    assert_eq!(v[1].c2s.bytes, b"new");
    assert_eq!(r.stats.flows_reused, 1);
}

#[test]
fn syn_retransmissions_stay_one_flow() {
    let mut c = Conv::new(C, S, 100, 200);
    let hs = c.handshake();
    let segs = vec![
        hs[0].clone(),
        hs[0].clone(),
        hs[1].clone(),
        hs[1].clone(),
        hs[2].clone(),
        c.data(true, b"q"),
    ];
    let r = run_segs(&segs);
    assert_eq!(r.only().c2s.bytes, b"q");
}

#[test]
fn sequence_numbers_wrap_around() {
    let mut c = Conv::new(C, S, u32::MAX - 5, u32::MAX - 1);
    let mut segs = c.handshake();
    let a = c.data(true, b"0123");
    let b = c.data(true, b"4567"); // crosses 2^32
    let d = c.data(true, b"89ab");
    let e = c.data(false, b"server crosses too");
    segs.extend([d, b, a, e]);
    segs.push(c.fin(true));
    segs.push(c.fin(false));
    let r = run_segs(&segs);
    let f = r.only();
    assert_eq!(f.c2s.bytes, b"0123456789ab");
    assert_eq!(f.s2c.bytes, b"server crosses too");
    assert_eq!(f.closed, Some(CloseReason::Fin));
}

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
            TapConfig::default(),
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
    let r = run_frames_with(TapConfig::default(), LinkType::Ethernet, &frames);
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
    let r = run_frames_with(TapConfig::default(), LinkType::Ethernet, &frames);
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
    let r = run_frames_with(TapConfig::default(), LinkType::Ethernet, &segs);
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
    let mut tap = tidemark::capture::Tap::new(TapConfig::default());
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
fn idle_flows_are_closed_and_a_later_packet_opens_a_new_flow() {
    let mut c = Conv::new(C, S, 1, 2);
    let hs = c.handshake();
    let d1 = c.data(true, b"early");
    let d2 = c.data(true, b"late");
    let cfg = TapConfig {
        reassembly: ReassemblyConfig {
            idle_timeout_ns: 10_000_000_000,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut frames: Vec<(Timestamp, Vec<u8>)> = hs
        .iter()
        .chain([&d1])
        .map(|s| (Timestamp(1_000_000_000), ethernet(&ip_packet(s), &[])))
        .collect();
    frames.push((Timestamp(100_000_000_000), ethernet(&ip_packet(&d2), &[])));
    let r = run_timed(cfg, LinkType::Ethernet, frames);
    let v: Vec<_> = r.flows.values().collect();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].closed, Some(CloseReason::Idle));
    assert_eq!(v[0].c2s.bytes, b"early");
    assert_eq!(v[1].c2s.bytes, b"late");
    assert_eq!(r.stats.idle_evictions, 1);
}

#[test]
fn per_direction_buffer_cap_gives_up_holes_with_exact_lengths() {
    let cfg = TapConfig {
        reassembly: ReassemblyConfig {
            max_buffer_per_direction: 4096,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut c = Conv::new(C, S, 1, 2);
    let mut segs = c.handshake();
    let mut expected = Vec::new();
    let mut lost = 0u64;
    for i in 0..200u32 {
        let p = pattern(100, i as u8);
        let s = c.data(true, &p);
        if i % 50 == 0 {
            lost += 100;
            continue;
        }
        expected.push((i, p));
        segs.push(s);
    }
    let frames: Vec<Vec<u8>> = segs.iter().map(|s| ethernet(&ip_packet(s), &[])).collect();
    let mut tap = tidemark::capture::Tap::new(cfg.clone());
    let mut events = Vec::new();
    let mut max_buffered = 0;
    for f in &frames {
        tap.packet(
            &tidemark::capture::RawPacket {
                link: LinkType::Ethernet,
                ts: Timestamp(0),
                orig_len: f.len() as u32,
                data: f,
            },
            &mut events,
        );
        max_buffered = max_buffered.max(tap.reassembler().buffered());
    }
    tap.finish(&mut events);
    let r = collect(events, tap.stats().clone());
    let f = r.only();
    assert!(max_buffered <= 4096, "buffered {max_buffered}");
    assert!(r.stats.buffer_cap_hits > 0);
    let all: Vec<u8> = expected.iter().flat_map(|(_, p)| p.clone()).collect();
    assert_eq!(f.c2s.bytes, all);
    assert_eq!(f.c2s.gaps.iter().sum::<u64>(), lost);
    assert!(f.c2s.gaps.iter().all(|g| *g == 100));
}

#[test]
fn global_buffer_cap_releases_the_biggest_buffer() {
    let cfg = TapConfig {
        reassembly: ReassemblyConfig {
            max_buffer_per_direction: 1 << 20,
            max_buffer_total: 8192,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut frames = Vec::new();
    for flow in 0..10u16 {
        let mut c = Conv::new(&format!("10.0.0.1:{}", 40000 + flow), S, 1, 2);
        frames.extend(c.handshake().iter().map(|s| ethernet(&ip_packet(s), &[])));
        let _lost = c.data(true, b"x");
        for _ in 0..20 {
            frames.push(ethernet(&ip_packet(&c.data(true, &[7u8; 100])), &[]));
        }
    }
    let r = run_frames_with(cfg, LinkType::Ethernet, &frames);
    assert!(r.stats.global_buffer_cap_hits > 0);
    for f in r.flows.values() {
        assert_eq!(f.c2s.bytes.len(), 2000);
        assert_eq!(f.c2s.gaps, vec![1]);
    }
}

#[test]
fn flow_table_stays_bounded_under_a_syn_flood_and_random_segments() {
    let cfg = TapConfig {
        reassembly: ReassemblyConfig {
            max_flows: 64,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut tap = tidemark::capture::Tap::new(cfg);
    let mut events = Vec::new();
    let mut x: u64 = 0x1234_5678;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..20_000u64 {
        let r = next();
        let src = format!(
            "10.{}.{}.{}:{}",
            (r >> 8) as u8,
            (r >> 16) as u8,
            (r >> 24) as u8,
            1024 + (r >> 32) as u16 % 60000
        );
        let seg = Seg {
            src: addr(&src),
            dst: addr(S),
            seq: (r >> 3) as u32,
            flags: Flags {
                syn: i % 2 == 0,
                ack: (i % 3 == 0).then_some(r as u32),
                ..NONE
            },
            payload: if i % 2 == 0 { Vec::new() } else { vec![1; 50] },
        };
        let f = ethernet(&ip_packet(&seg), &[]);
        tap.packet(
            &tidemark::capture::RawPacket {
                link: LinkType::Ethernet,
                ts: Timestamp(i),
                orig_len: f.len() as u32,
                data: &f,
            },
            &mut events,
        );
        assert!(tap.reassembler().flow_count() <= 64);
        events.clear();
    }
    assert!(tap.stats().table_evictions > 10_000);
}

#[test]
fn far_out_of_window_segment_is_dropped_and_counted() {
    let mut c = Conv::new(C, S, 1, 2);
    let mut segs = c.handshake();
    segs.push(c.data(true, b"ok"));
    segs.push(c.at(
        true,
        c.cseq.wrapping_add(1 << 31).wrapping_sub(10),
        b"garbage",
    ));
    segs.push(c.data(true, b"fine"));
    let r = run_segs(&segs);
    assert_eq!(r.only().c2s.bytes, b"okfine");
    assert_eq!(r.stats.out_of_window_segments, 1);
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
    let r = run_frames_with(TapConfig::default(), LinkType::Ethernet, &frames);
    assert!(r.flows.is_empty());
    assert_eq!(r.stats.non_tcp, 1);
    assert_eq!(r.stats.non_ip, 1);
    assert_eq!(r.stats.malformed, 2);
}
