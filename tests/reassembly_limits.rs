//! The bounds of reassembly: idle timeout, per-direction and global reorder-buffer
//! caps, flow-table size under floods, and the reorder window. Each limit, when it
//! bites, gives up holes as exact gaps and bumps its counter.

mod common;

use common::*;
use tidemark::capture::{AssemblerConfig, CloseReason, LinkType, ReassemblyConfig, Timestamp};

const C: &str = "10.0.0.1:40000";
const S: &str = "10.0.0.2:9042";

#[test]
fn idle_flows_are_closed_and_a_later_packet_opens_a_new_flow() {
    let mut c = Conv::new(C, S, 1, 2);
    let hs = c.handshake();
    let d1 = c.data(true, b"early");
    let d2 = c.data(true, b"late");
    let cfg = AssemblerConfig {
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
    let cfg = AssemblerConfig {
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
    let mut tap = tidemark::capture::Assembler::new(cfg.clone());
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
    let cfg = AssemblerConfig {
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
    let cfg = AssemblerConfig {
        reassembly: ReassemblyConfig {
            max_flows: 64,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut tap = tidemark::capture::Assembler::new(cfg);
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
