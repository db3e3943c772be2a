//! IP fragment reassembly, bounded in datagrams, bytes and time.
//!
//! Fragmented TCP is rare (TCP avoids it with MSS and path-MTU discovery) but it does
//! occur behind tunnels and misconfigured MTUs, and without reassembly every
//! fragmented segment would become a gap. etherparse's own pool is documented as not
//! safe against memory exhaustion, so this small one enforces caps: at most
//! `max_datagrams` partial datagrams and `max_bytes` of fragment data, each partial
//! dropped after `timeout_ns` of capture time. Overlapping fragments resolve like TCP
//! segments: the bytes seen first win.

use std::collections::HashMap;
use std::net::IpAddr;

use super::stats::CaptureStats;

/// Limits for fragment reassembly.
#[derive(Debug, Clone)]
pub struct DefragConfig {
    /// Partial datagrams held at once; the oldest is dropped to admit a new one.
    pub max_datagrams: usize,
    /// Bytes of fragment data held at once.
    pub max_bytes: usize,
    /// A partial datagram older than this (capture time, ns) is dropped.
    pub timeout_ns: u64,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            max_datagrams: 1024,
            max_bytes: 16 << 20,
            timeout_ns: 30_000_000_000,
        }
    }
}

/// Identifies the datagram a fragment belongs to (RFC 791 / RFC 8200).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub proto: u8,
}

/// One fragment, as parsed from its IP header.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    pub key: FragKey,
    /// Byte offset of `payload` in the datagram's payload.
    pub offset: u32,
    /// More fragments follow (MF flag).
    pub more: bool,
    pub payload: &'a [u8],
    /// The fragment was cut short by the snaplen; its datagram can never complete.
    pub truncated: bool,
}

/// The largest datagram payload IP can describe with fragment offsets.
const MAX_DATAGRAM: u32 = 65_535;

struct Partial {
    data: Vec<u8>,
    /// Covered byte ranges, sorted, merged, non-overlapping.
    covered: Vec<(u32, u32)>,
    /// Payload length, known once the last fragment (MF=0) arrived.
    total: Option<u32>,
    first_ts: u64,
    fragments: u64,
}

/// Reassembles IP datagrams from fragments.
pub struct Defragmenter {
    cfg: DefragConfig,
    partial: HashMap<FragKey, Partial>,
    bytes: usize,
}

impl Defragmenter {
    pub fn new(cfg: DefragConfig) -> Self {
        Defragmenter {
            cfg,
            partial: HashMap::new(),
            bytes: 0,
        }
    }

    /// Partial datagrams currently held (for tests of the caps).
    pub fn pending(&self) -> usize {
        self.partial.len()
    }

    /// Adds a fragment; returns the datagram payload when it is complete.
    pub fn add(&mut self, f: &Fragment<'_>, ts: u64, stats: &mut CaptureStats) -> Option<Vec<u8>> {
        self.expire(ts, stats);
        let len = f.payload.len() as u32;
        let end = f.offset.checked_add(len).filter(|e| *e <= MAX_DATAGRAM);
        let Some(end) = end else {
            stats.fragments_dropped += 1;
            return None;
        };
        if f.truncated {
            // The missing bytes can never be recovered, so neither can the datagram;
            // the TCP layer will see the hole and report it as a gap.
            self.drop_key(&f.key, stats);
            stats.fragments_dropped += 1;
            return None;
        }
        if !self.partial.contains_key(&f.key) {
            while self.partial.len() >= self.cfg.max_datagrams
                || (self.bytes + len as usize > self.cfg.max_bytes && !self.partial.is_empty())
            {
                self.drop_oldest(stats);
            }
            if len as usize > self.cfg.max_bytes {
                stats.fragments_dropped += 1;
                return None;
            }
            self.partial.insert(
                f.key,
                Partial {
                    data: Vec::new(),
                    covered: Vec::new(),
                    total: None,
                    first_ts: ts,
                    fragments: 0,
                },
            );
        }
        let p = self.partial.get_mut(&f.key)?;
        p.fragments += 1;
        let inconsistent = match (p.total, f.more) {
            (Some(t), _) if end > t => true,
            (Some(t), false) => end != t,
            (Some(_), true) => false,
            (None, false) => p.covered.last().is_some_and(|&(_, e)| e > end),
            (None, true) => false,
        };
        if inconsistent {
            self.drop_key(&f.key, stats);
            return None;
        }
        if !f.more {
            p.total = Some(end);
        }
        let grow = (end as usize).saturating_sub(p.data.len());
        if self.bytes + grow > self.cfg.max_bytes {
            self.drop_key(&f.key, stats);
            return None;
        }
        if grow > 0 {
            p.data.resize(end as usize, 0);
            self.bytes += grow;
        }
        insert_uncovered(p, f.offset, end, f.payload);
        let complete = p.total.is_some_and(|t| p.covered == [(0, t)]);
        if complete {
            let p = self.partial.remove(&f.key)?;
            self.bytes -= p.data.len();
            stats.fragments_reassembled += 1;
            return Some(p.data);
        }
        None
    }

    /// Drops partial datagrams that are older than the timeout.
    pub fn expire(&mut self, now: u64, stats: &mut CaptureStats) {
        if self.partial.is_empty() {
            return;
        }
        let timeout = self.cfg.timeout_ns;
        let old: Vec<FragKey> = self
            .partial
            .iter()
            .filter(|(_, p)| now.saturating_sub(p.first_ts) > timeout)
            .map(|(k, _)| *k)
            .collect();
        for k in old {
            self.drop_key(&k, stats);
        }
    }

    fn drop_oldest(&mut self, stats: &mut CaptureStats) {
        let oldest = self
            .partial
            .iter()
            .min_by_key(|(_, p)| p.first_ts)
            .map(|(k, _)| *k);
        if let Some(k) = oldest {
            self.drop_key(&k, stats);
        }
    }

    fn drop_key(&mut self, key: &FragKey, stats: &mut CaptureStats) {
        if let Some(p) = self.partial.remove(key) {
            self.bytes -= p.data.len();
            stats.fragments_dropped += p.fragments;
        }
    }
}

/// Copies the parts of `[start, end)` not yet covered (first-seen bytes win) and merges
/// the coverage list.
fn insert_uncovered(p: &mut Partial, start: u32, end: u32, payload: &[u8]) {
    let mut cur = start;
    for &(s, e) in &p.covered {
        if e <= cur {
            continue;
        }
        if s >= end {
            break;
        }
        if s > cur {
            let (a, b) = (cur as usize, s as usize);
            p.data[a..b].copy_from_slice(&payload[a - start as usize..b - start as usize]);
        }
        cur = cur.max(e);
        if cur >= end {
            break;
        }
    }
    if cur < end {
        let (a, b) = (cur as usize, end as usize);
        p.data[a..b].copy_from_slice(&payload[a - start as usize..b - start as usize]);
    }
    p.covered.push((start, end));
    p.covered.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(p.covered.len());
    for &(s, e) in &p.covered {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    p.covered = merged;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(id: u32) -> FragKey {
        FragKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            id,
            proto: 6,
        }
    }

    fn frag(id: u32, offset: u32, more: bool, payload: &[u8]) -> Fragment<'_> {
        Fragment {
            key: key(id),
            offset,
            more,
            payload,
            truncated: false,
        }
    }

    #[test]
    fn reassembles_out_of_order_with_overlap_first_seen_wins() {
        let mut d = Defragmenter::new(DefragConfig::default());
        let mut st = CaptureStats::default();
        assert!(d.add(&frag(1, 16, false, b"QRSTUV"), 0, &mut st).is_none());
        assert!(d.add(&frag(1, 8, true, b"IJKLMNOP"), 0, &mut st).is_none());
        // Overlaps both earlier fragments; only bytes 0..8 are new.
        let done = d.add(&frag(1, 0, true, b"abcdefghXXXXXXXXXXXX"), 0, &mut st);
        assert_eq!(done.as_deref(), Some(&b"abcdefghIJKLMNOPQRSTUV"[..]));
        assert_eq!(st.fragments_reassembled, 1);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn caps_and_timeouts_drop_and_count() {
        let cfg = DefragConfig {
            max_datagrams: 2,
            max_bytes: 64,
            timeout_ns: 10,
        };
        let mut d = Defragmenter::new(cfg);
        let mut st = CaptureStats::default();
        for id in 0..5 {
            d.add(&frag(id, 0, true, &[0; 8]), 0, &mut st);
        }
        assert_eq!(d.pending(), 2);
        assert_eq!(st.fragments_dropped, 3);
        d.expire(100, &mut st);
        assert_eq!(d.pending(), 0);
        assert_eq!(st.fragments_dropped, 5);
        // A fragment past the largest datagram is refused.
        d.add(&frag(9, 65_530, false, &[0; 8]), 100, &mut st);
        assert_eq!(d.pending(), 0);
        assert_eq!(st.fragments_dropped, 6);
    }

    #[test]
    fn inconsistent_end_drops_the_datagram() {
        let mut d = Defragmenter::new(DefragConfig::default());
        let mut st = CaptureStats::default();
        d.add(&frag(1, 8, false, &[1; 8]), 0, &mut st);
        assert_eq!(d.pending(), 1);
        assert!(d.add(&frag(1, 0, false, &[1; 4]), 0, &mut st).is_none());
        assert_eq!(d.pending(), 0);
    }
}
