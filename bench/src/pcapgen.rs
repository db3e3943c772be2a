//! Generates a large synthetic TCP capture for the reassembly benchmark: many
//! concurrent request/response flows (CQL-like: small requests, multi-segment
//! responses), interleaved at random, with some segments reordered within their
//! direction and some retransmitted, each flow opened and closed with a handshake.
//!
//! Headers are written by hand (checksums left zero: tidemark does not verify them)
//! so generating half a gigabyte takes seconds.

use std::io::{self, Write};

use crate::synth::{tcp_frame, Rng};
use tidemark::capture::pcap_writer::PcapWriter;
use tidemark::capture::{LinkType, Timestamp};

/// Shape of the generated capture.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Stop once this many bytes of frames were written.
    pub target_bytes: u64,
    /// Flows open at once.
    pub concurrent_flows: usize,
    /// Percent of data segments delivered after the next segment of their direction.
    pub reorder_percent: u32,
    /// Percent of data segments sent twice.
    pub duplicate_percent: u32,
    pub seed: u64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            target_bytes: 512 << 20,
            concurrent_flows: 2000,
            reorder_percent: 1,
            duplicate_percent: 1,
            seed: 0x5eed,
        }
    }
}

/// What was generated, for checking the reassembler's output.
#[derive(Debug, Clone, Default)]
pub struct GenStats {
    pub packets: u64,
    pub frame_bytes: u64,
    /// Distinct payload bytes (each byte once, however often sent).
    pub payload_bytes: u64,
    pub flows: u64,
}

const MSS: usize = 1448;

struct Flow {
    client_ip: [u8; 4],
    client_port: u16,
    cseq: u32,
    sseq: u32,
    /// Bytes left before the flow closes.
    budget: u64,
    /// Packets queued for this flow, sent one per turn: (client→server, frame).
    queue: std::collections::VecDeque<(bool, Vec<u8>)>,
    /// A segment held back to be sent after the next one of its direction.
    held: Option<(bool, Vec<u8>)>,
    closing: bool,
}

const SERVER_IP: [u8; 4] = [10, 9, 0, 42];
const SERVER_PORT: u16 = 9042;

fn frame(f: &Flow, c2s: bool, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let (client, server) = ((f.client_ip, f.client_port), (SERVER_IP, SERVER_PORT));
    let (src, dst) = if c2s {
        (client, server)
    } else {
        (server, client)
    };
    tcp_frame(src, dst, seq, ack, flags, payload)
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

impl Flow {
    fn new(rng: &mut Rng, n: u64) -> Flow {
        let mut f = Flow {
            client_ip: [10, 1, (n >> 8) as u8, n as u8],
            client_port: 10_000 + (n % 50_000) as u16,
            cseq: rng.next_u64() as u32,
            sseq: rng.next_u64() as u32,
            budget: 50_000 + rng.below(1_500_000),
            queue: Default::default(),
            held: None,
            closing: false,
        };
        let syn = frame(&f, true, f.cseq, 0, SYN, &[]);
        let synack = frame(&f, false, f.sseq, f.cseq.wrapping_add(1), SYN | ACK, &[]);
        f.cseq = f.cseq.wrapping_add(1);
        f.sseq = f.sseq.wrapping_add(1);
        let ack = frame(&f, true, f.cseq, f.sseq, ACK, &[]);
        f.queue.extend([(true, syn), (false, synack), (true, ack)]);
        f
    }

    /// Queues one request and its response; returns the payload bytes queued.
    fn exchange(&mut self, rng: &mut Rng, data: &[u8], cfg: &GenConfig) -> u64 {
        let req = 60 + rng.below(500) as usize;
        let resp = 200 + rng.below(40 * MSS as u64) as usize;
        let mut total = 0;
        for (c2s, len) in [(true, req), (false, resp)] {
            let mut left = len;
            while left > 0 {
                let n = left.min(MSS);
                let start = rng.below((data.len() - n) as u64) as usize;
                let payload = &data[start..start + n];
                let (seq, ack) = if c2s {
                    (self.cseq, self.sseq)
                } else {
                    (self.sseq, self.cseq)
                };
                let fr = frame(self, c2s, seq, ack, ACK | PSH, payload);
                if rng.below(100) < u64::from(cfg.duplicate_percent) {
                    self.queue.push_back((c2s, fr.clone()));
                }
                self.queue.push_back((c2s, fr));
                if c2s {
                    self.cseq = self.cseq.wrapping_add(n as u32);
                } else {
                    self.sseq = self.sseq.wrapping_add(n as u32);
                }
                left -= n;
                total += n as u64;
            }
        }
        total
    }

    fn close(&mut self) {
        let fin1 = frame(self, true, self.cseq, self.sseq, FIN | ACK, &[]);
        self.cseq = self.cseq.wrapping_add(1);
        let fin2 = frame(self, false, self.sseq, self.cseq, FIN | ACK, &[]);
        self.sseq = self.sseq.wrapping_add(1);
        let last = frame(self, true, self.cseq, self.sseq, ACK, &[]);
        self.queue
            .extend([(true, fin1), (false, fin2), (true, last)]);
        self.closing = true;
    }
}

/// Writes the capture; returns what was in it.
pub fn generate<W: Write>(out: W, cfg: &GenConfig) -> io::Result<GenStats> {
    let mut rng = Rng::new(cfg.seed);
    let data: Vec<u8> = (0..(1 << 20)).map(|_| rng.next_u64() as u8).collect();
    let mut w = PcapWriter::new(out, LinkType::Ethernet, 65535)?;
    let mut st = GenStats::default();
    let mut flows: Vec<Flow> = Vec::with_capacity(cfg.concurrent_flows);
    let mut next_flow = 0u64;
    let mut ts = 1_700_000_000_000_000_000u64;
    while st.frame_bytes < cfg.target_bytes || !flows.is_empty() {
        let winding_down = st.frame_bytes >= cfg.target_bytes;
        while !winding_down && flows.len() < cfg.concurrent_flows {
            flows.push(Flow::new(&mut rng, next_flow));
            next_flow += 1;
            st.flows += 1;
        }
        let i = rng.below(flows.len() as u64) as usize;
        let f = &mut flows[i];
        if f.queue.is_empty() && f.held.is_none() {
            if f.closing {
                flows.swap_remove(i);
                continue;
            }
            if f.budget == 0 || winding_down {
                f.close();
            } else {
                let n = f.exchange(&mut rng, &data, cfg);
                st.payload_bytes += n;
                f.budget = f.budget.saturating_sub(n);
            }
            continue;
        }
        let mut send: Vec<Vec<u8>> = Vec::with_capacity(2);
        match f.queue.pop_front() {
            Some((c2s, fr)) => {
                // A held segment goes out after the next of its direction, and before
                // anything from the other side (whose ACK would cover it).
                if let Some((hdir, h)) = f.held.take() {
                    if hdir == c2s {
                        send.push(fr);
                        send.push(h);
                    } else {
                        send.push(h);
                        send.push(fr);
                    }
                } else if fr.len() > 54
                    && rng.below(100) < u64::from(cfg.reorder_percent)
                    && f.queue.front().is_some_and(|(d, _)| *d == c2s)
                {
                    f.held = Some((c2s, fr));
                } else {
                    send.push(fr);
                }
            }
            None => send.extend(f.held.take().map(|(_, h)| h)),
        }
        for fr in send {
            ts += 1_000 + rng.below(5_000);
            w.write(Timestamp(ts), &fr)?;
            st.packets += 1;
            st.frame_bytes += fr.len() as u64 + 16;
        }
    }
    w.finish()?;
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark::capture::{Assembler, AssemblerConfig, FileSource};

    /// The generated capture is what the benchmark claims: reordered and duplicated
    /// segments that reassemble to exactly the generated payload, without gaps.
    #[test]
    fn small_capture_reassembles_exactly() {
        let path =
            std::env::temp_dir().join(format!("tidemark-pcapgen-{}.pcap", std::process::id()));
        let cfg = GenConfig {
            target_bytes: 4 << 20,
            concurrent_flows: 50,
            reorder_percent: 5,
            duplicate_percent: 5,
            seed: 7,
        };
        let st = generate(std::fs::File::create(&path).unwrap(), &cfg).unwrap();
        let mut src = FileSource::open(std::slice::from_ref(&path)).unwrap();
        let mut tap = Assembler::new(AssemblerConfig::default());
        let mut events = Vec::new();
        let mut delivered = 0u64;
        while let Some(p) = src.next_packet() {
            tap.packet(&p, &mut events);
            for ev in events.drain(..) {
                if let tidemark::capture::StreamEvent::Data { bytes, .. } = ev {
                    delivered += bytes.len() as u64;
                }
            }
        }
        tap.finish(&mut events);
        std::fs::remove_file(&path).unwrap();
        let s = tap.stats();
        assert_eq!(delivered, st.payload_bytes);
        assert_eq!(s.gaps, 0);
        assert_eq!(s.packets, st.packets);
        assert_eq!(s.flows_opened, st.flows);
        assert_eq!(s.flows_closed_fin, st.flows);
        assert!(s.out_of_order_segments > 0 && s.retransmitted_segments > 0);
    }
}
