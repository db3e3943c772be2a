//! Synthetic TCP reassembly tests: packets built in code, run through the tap, and
//! the delivered bytes, gaps and lifecycle checked exactly.

mod common;

use common::*;
use tidemark::capture::{AssemblerConfig, CloseReason, LinkType, Timestamp};

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
    let mut tap = tidemark::capture::Assembler::new(AssemblerConfig::default());
    let mut events = Vec::new();
    let feed = |tap: &mut tidemark::capture::Assembler, s: &Seg, events: &mut Vec<_>| {
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
