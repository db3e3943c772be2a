//! The assembler: captured frames in, [`StreamEvent`]s out. Link layer, IP (with
//! fragment reassembly), TCP, then reassembly; everything that is not a TCP segment is
//! counted. (It was called `Tap`, which collided with the `tap` command it serves.)

use std::net::IpAddr;

use super::defrag::{DefragConfig, Defragmenter};
use super::link::{network_layer, LinkType, Network};
use super::packet::{parse_ip, parse_tcp, IpPacket};
use super::reassembly::{Reassembler, ReassemblyConfig};
use super::stats::CaptureStats;
use super::{StreamEvent, Timestamp};

/// One captured frame, borrowed from its source.
#[derive(Debug, Clone, Copy)]
pub struct RawPacket<'a> {
    pub link: LinkType,
    pub ts: Timestamp,
    /// Length on the wire; larger than `data.len()` when the snaplen cut it.
    pub orig_len: u32,
    pub data: &'a [u8],
}

/// Configuration of an [`Assembler`].
#[derive(Debug, Clone, Default)]
pub struct AssemblerConfig {
    pub reassembly: ReassemblyConfig,
    pub defrag: DefragConfig,
}

/// Turns frames into stream events.
pub struct Assembler {
    reassembler: Reassembler,
    defrag: Defragmenter,
    stats: CaptureStats,
}

impl Assembler {
    pub fn new(cfg: AssemblerConfig) -> Self {
        Assembler {
            reassembler: Reassembler::new(cfg.reassembly),
            defrag: Defragmenter::new(cfg.defrag),
            stats: CaptureStats::default(),
        }
    }

    pub fn stats(&self) -> &CaptureStats {
        &self.stats
    }

    pub fn stats_mut(&mut self) -> &mut CaptureStats {
        &mut self.stats
    }

    pub fn reassembler(&self) -> &Reassembler {
        &self.reassembler
    }

    /// Processes one frame, appending the events it causes to `out`.
    pub fn packet(&mut self, pkt: &RawPacket<'_>, out: &mut Vec<StreamEvent>) {
        let st = &mut self.stats;
        st.packets += 1;
        st.wire_bytes += u64::from(pkt.orig_len).max(pkt.data.len() as u64);
        if pkt.orig_len as usize > pkt.data.len() {
            st.truncated += 1;
        }
        let ip = match network_layer(pkt.link, pkt.data) {
            Network::Ip(ip) => ip,
            Network::NotIp => {
                st.non_ip += 1;
                self.reassembler.advance(pkt.ts, st, out);
                return;
            }
            Network::Malformed => {
                st.malformed += 1;
                self.reassembler.advance(pkt.ts, st, out);
                return;
            }
        };
        match parse_ip(ip) {
            IpPacket::Tcp {
                src,
                dst,
                transport,
                missing,
            } => self.tcp(src, dst, transport, missing, pkt.ts, out),
            IpPacket::Fragment(f) => {
                self.stats.fragments += 1;
                match self.defrag.add(&f, pkt.ts.0, &mut self.stats) {
                    Some(datagram) => self.tcp(f.key.src, f.key.dst, &datagram, 0, pkt.ts, out),
                    None => self.reassembler.advance(pkt.ts, &mut self.stats, out),
                }
            }
            IpPacket::NotTcp => {
                st.non_tcp += 1;
                self.reassembler.advance(pkt.ts, st, out);
            }
            IpPacket::Malformed => {
                st.malformed += 1;
                self.reassembler.advance(pkt.ts, st, out);
            }
        }
    }

    fn tcp(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        transport: &[u8],
        missing: u32,
        ts: Timestamp,
        out: &mut Vec<StreamEvent>,
    ) {
        match parse_tcp(src, dst, transport, missing) {
            Some(seg) => {
                self.stats.truncated_bytes += u64::from(seg.missing);
                self.reassembler.segment(&seg, ts, &mut self.stats, out);
            }
            None => {
                self.stats.malformed += 1;
                self.reassembler.advance(ts, &mut self.stats, out);
            }
        }
    }

    /// The capture ended: closes every open flow.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        self.reassembler.finish(&mut self.stats, out);
    }
}
