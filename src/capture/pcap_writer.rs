//! A minimal classic-pcap writer (version 2.4, nanosecond timestamps): used by tests and
//! the benchmark to build captures, and later to record what a tap saw.

use std::io::{self, Write};

use super::link::LinkType;
use super::Timestamp;

/// Magic of a nanosecond-resolution pcap file, written in native (little-endian) order.
const MAGIC_NS: u32 = 0xa1b2_3c4d;

/// Writes packets to a pcap stream.
pub struct PcapWriter<W: Write> {
    out: W,
    snaplen: u32,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W, link: LinkType, snaplen: u32) -> io::Result<Self> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&MAGIC_NS.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay zero.
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&link.linktype().to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out, snaplen })
    }

    /// Writes one packet, cutting it to the snaplen as a capture would.
    pub fn write(&mut self, ts: Timestamp, frame: &[u8]) -> io::Result<()> {
        self.write_cut(ts, frame, frame.len())
    }

    /// Writes a packet of which only the first `caplen` bytes were captured.
    pub fn write_cut(&mut self, ts: Timestamp, frame: &[u8], caplen: usize) -> io::Result<()> {
        let caplen = caplen.min(frame.len()).min(self.snaplen as usize);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((ts.0 / 1_000_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((ts.0 % 1_000_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(caplen as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&frame[..caplen])
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}
