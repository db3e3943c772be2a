//! One direction of a TCP connection: turns segments in any order into in-order
//! `Data` and explicit `Gap` events.
//!
//! Sequence numbers are mapped to 64-bit stream offsets relative to the next expected
//! byte with wrapping 32-bit arithmetic, so a stream may cross the 2^32 wrap any number
//! of times. Segments ahead of the next expected byte wait in `pending`, keyed by
//! offset and never overlapping. Overlaps and retransmissions resolve by one rule:
//! **the bytes seen first win**. Bytes already delivered or already buffered are
//! dropped from later segments (counted as duplicates), so every byte is delivered at
//! most once, and a later segment can never rewrite what a decoder has already seen.
//! (Real stacks differ on overlap policy; a passive observer cannot know which copy the
//! receiver kept, and first-seen is what tshark's reassembly does too.)
//!
//! A hole is given up, and becomes a `Gap` of its exact length, when it can no longer
//! be filled: the peer acknowledged bytes past it, the reorder buffer reached its cap,
//! or the flow ended (FIN, RST, idle, eviction, end of capture).

use std::collections::BTreeMap;

use bytes::Bytes;

use super::emit::Emit;
use crate::capture::Direction;

/// Bookkeeping cost charged per buffered piece on top of its bytes, so a flood of tiny
/// out-of-order segments hits the caps as surely as a few big ones.
pub(crate) const PIECE_OVERHEAD: usize = 64;

/// A buffered stretch of the stream.
#[derive(Debug)]
enum Piece {
    Data(Bytes),
    /// Bytes that were on the wire but not captured (snaplen).
    Lost(u64),
}

impl Piece {
    fn len(&self) -> u64 {
        match self {
            Piece::Data(b) => b.len() as u64,
            Piece::Lost(n) => *n,
        }
    }
}

/// Limits a half-stream works within.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HalfLimits {
    /// Bytes (plus per-piece overhead) that may wait for a hole to fill.
    pub max_pending: usize,
    /// How far ahead of the next expected byte a segment may start and still belong.
    pub window: u32,
}

/// What a SYN meant for this direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SynResult {
    /// The first SYN: the stream starts after it.
    Accepted,
    /// The same SYN again.
    Retransmit,
    /// A SYN with another initial sequence number: a new connection.
    Conflict,
}

/// Reassembly state of one direction.
#[derive(Debug, Default)]
pub(crate) struct HalfStream {
    started: bool,
    isn: Option<u32>,
    /// Sequence number of the next byte to deliver.
    next_seq: u32,
    /// Stream offset of `next_seq`: bytes delivered plus bytes given up as gaps.
    offset: u64,
    pending: BTreeMap<u64, Piece>,
    pending_cost: usize,
    /// Stream offset of the FIN, once seen (first FIN wins).
    fin: Option<u64>,
    /// Highest stream offset the peer acknowledged.
    acked: u64,
    /// Payload bytes delivered.
    pub bytes: u64,
    /// Gap events and bytes.
    pub gaps: u64,
    pub gap_bytes: u64,
}

impl HalfStream {
    /// The FIN was seen and every byte before it was delivered or given up.
    pub fn finished(&self) -> bool {
        self.fin.is_some_and(|f| self.offset >= f)
    }

    pub fn fin_seen(&self) -> bool {
        self.fin.is_some()
    }

    /// Bytes delivered or pending: whether this direction carried anything.
    pub fn has_data(&self) -> bool {
        self.offset > 0 || !self.pending.is_empty()
    }

    pub fn pending_cost(&self) -> usize {
        self.pending_cost
    }

    fn start(&mut self, seq: u32) {
        self.started = true;
        self.next_seq = seq;
        self.offset = 0;
    }

    /// Starts the stream at the byte after a SYN's sequence number.
    pub fn syn(&mut self, seq: u32) -> SynResult {
        match self.isn {
            Some(isn) if isn == seq => SynResult::Retransmit,
            Some(_) => SynResult::Conflict,
            None if !self.started => {
                self.isn = Some(seq);
                self.start(seq.wrapping_add(1));
                SynResult::Accepted
            }
            // Data of this direction came before its SYN: the SYN is stale or belongs
            // to another connection; the table decides.
            None if self.has_data() => SynResult::Conflict,
            None => {
                self.isn = Some(seq);
                self.start(seq.wrapping_add(1));
                SynResult::Accepted
            }
        }
    }

    /// Starts a direction whose first byte is known from the peer's SYN-ACK.
    pub fn start_at(&mut self, seq: u32) {
        if !self.started {
            self.start(seq);
        }
    }

    /// Signed distance from the next expected byte to `seq`.
    fn rel(&self, seq: u32) -> i64 {
        i64::from(seq.wrapping_sub(self.next_seq) as i32)
    }

    /// Whether `seq` is plausibly part of this direction: unknown directions accept
    /// anything; known ones accept a window either side of the next expected byte.
    /// Used to ignore resets that cannot belong to the connection (blind injection).
    pub fn in_window(&self, seq: u32, lim: &HalfLimits) -> bool {
        !self.started || self.rel(seq).unsigned_abs() <= u64::from(lim.window)
    }

    /// A RST carries the sender's next sequence number: bytes before it were sent,
    /// so if they were not seen they become a gap when the flow closes.
    pub fn sent_until(&mut self, seq: u32, lim: &HalfLimits) {
        if !self.started {
            return;
        }
        let rel = self.rel(seq);
        if rel > 0 && rel <= i64::from(lim.window) {
            self.acked = self.acked.max(self.offset + rel as u64);
        }
    }

    /// The peer acknowledged everything before `ack`. Bytes it acknowledged that were
    /// never captured will never be retransmitted, so holes below it are given up now.
    pub fn ack(&mut self, ack: u32, lim: &HalfLimits, em: &mut Emit<'_>, dir: Direction) {
        if !self.started {
            return;
        }
        let rel = self.rel(ack);
        if rel <= 0 || rel > i64::from(lim.window) {
            return;
        }
        self.acked = self.acked.max(self.offset + rel as u64);
        while let Some((&first, _)) = self.pending.first_key_value() {
            if self.acked < first {
                break;
            }
            self.skip_to_pending(em, dir);
        }
    }

    /// Handles the payload (and FIN) of one segment.
    #[allow(clippy::too_many_arguments)]
    pub fn segment(
        &mut self,
        seq: u32,
        payload: &[u8],
        missing: u32,
        fin: bool,
        lim: &HalfLimits,
        em: &mut Emit<'_>,
        dir: Direction,
    ) {
        if !self.started {
            self.start(seq);
        }
        let rel = self.rel(seq);
        if rel > i64::from(lim.window) {
            em.stats.out_of_window_segments += 1;
            return;
        }
        let len = payload.len() as u64 + u64::from(missing);
        let seg_start = self.offset as i64 + rel;
        let mut seg_end = seg_start + len as i64;
        if fin && self.fin.is_none() && seg_end >= self.offset as i64 {
            self.fin = Some(seg_end as u64);
        }
        if let Some(f) = self.fin {
            // Nothing follows a FIN; bytes past it are not part of the stream.
            seg_end = seg_end.min(f as i64);
        }
        if len == 0 {
            return;
        }
        let from = seg_start.max(self.offset as i64);
        if seg_end <= from {
            em.stats.retransmitted_segments += 1;
            em.stats.duplicate_bytes += len;
            return;
        }
        let (from, to) = (from as u64, seg_end as u64);
        em.stats.duplicate_bytes += (from as i64 - seg_start) as u64;
        if from > self.offset {
            em.stats.out_of_order_segments += 1;
        }
        let seg = Seg {
            start: seg_start,
            payload,
        };
        if self.pending.is_empty() && from == self.offset {
            self.deliver(&seg, from, to, em, dir);
            return;
        }
        let cost = (to - from) as usize + PIECE_OVERHEAD;
        if self.pending_cost + cost > lim.max_pending {
            em.stats.buffer_cap_hits += 1;
            while self.pending_cost + cost > lim.max_pending && !self.pending.is_empty() {
                self.skip_to_pending(em, dir);
            }
            if self.pending.is_empty()
                && from >= self.offset
                && self.pending_cost + cost > lim.max_pending
            {
                // Even alone this segment does not fit: give up the hole before it.
                let hole = from - self.offset;
                self.gap(hole, em, dir);
                self.deliver(&seg, from, to, em, dir);
                return;
            }
        }
        self.insert(&seg, from.max(self.offset), to, em);
        self.drain(em, dir);
    }

    /// Buffers the parts of `[from, to)` not already pending (first seen wins).
    fn insert(&mut self, seg: &Seg<'_>, from: u64, to: u64, em: &mut Emit<'_>) {
        if from >= to {
            return;
        }
        let mut cur = from;
        if let Some((&ps, p)) = self.pending.range(..cur).next_back() {
            cur = cur.max(ps + p.len());
        }
        em.scratch.clear();
        let covered_from = cur.min(to);
        for (&ps, p) in self.pending.range(covered_from..to) {
            if ps > cur {
                em.scratch.push((cur, ps));
            }
            cur = cur.max(ps + p.len());
        }
        if cur < to {
            em.scratch.push((cur, to));
        }
        let mut fresh = 0;
        for i in 0..em.scratch.len() {
            let (a, b) = em.scratch[i];
            fresh += b - a;
            let (data, lost) = seg.split(a, b);
            let data_len = data.len() as u64;
            if !data.is_empty() {
                *em.buffered_total += data.len() + PIECE_OVERHEAD;
                self.pending_cost += data.len() + PIECE_OVERHEAD;
                self.pending
                    .insert(a, Piece::Data(Bytes::copy_from_slice(data)));
            }
            if lost > 0 {
                *em.buffered_total += PIECE_OVERHEAD;
                self.pending_cost += PIECE_OVERHEAD;
                self.pending.insert(a + data_len, Piece::Lost(lost));
            }
        }
        em.stats.duplicate_bytes += (to - from) - fresh;
    }

    /// Delivers `[from, to)` of `seg`, which starts at the next expected byte.
    fn deliver(&mut self, seg: &Seg<'_>, from: u64, to: u64, em: &mut Emit<'_>, dir: Direction) {
        let (data, lost) = seg.split(from, to);
        if !data.is_empty() {
            let bytes = em.arena.copy(data);
            self.data(bytes, em, dir);
        }
        self.gap(lost, em, dir);
    }

    /// Delivers pending pieces that now continue the stream.
    fn drain(&mut self, em: &mut Emit<'_>, dir: Direction) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > self.offset {
                break;
            }
            let (start, piece) = entry.remove_entry();
            let cost = match &piece {
                Piece::Data(b) => b.len() + PIECE_OVERHEAD,
                Piece::Lost(_) => PIECE_OVERHEAD,
            };
            self.pending_cost -= cost;
            *em.buffered_total -= cost;
            // Pieces never start before the stream position (insert trims them), but a
            // piece that did would only have its fresh tail delivered.
            let skip = self.offset - start;
            match piece {
                Piece::Data(b) if (skip as usize) < b.len() => {
                    self.data(b.slice(skip as usize..), em, dir)
                }
                Piece::Data(_) => {}
                Piece::Lost(n) => self.gap(n.saturating_sub(skip), em, dir),
            }
        }
    }

    /// Gives up the hole before the first pending piece and delivers what follows it.
    fn skip_to_pending(&mut self, em: &mut Emit<'_>, dir: Direction) {
        if let Some((&first, _)) = self.pending.first_key_value() {
            let hole = first.saturating_sub(self.offset);
            self.gap(hole, em, dir);
            self.drain(em, dir);
        }
    }

    /// Gives up every hole: pending pieces are delivered with gaps between them, and a
    /// tail that the FIN or the peer's acknowledgments prove was sent becomes a gap.
    pub fn flush(&mut self, em: &mut Emit<'_>, dir: Direction) {
        self.flush_pending(em, dir);
        if self.started {
            let tail = self.fin.unwrap_or(self.acked);
            if tail > self.offset {
                self.gap(tail - self.offset, em, dir);
            }
        }
    }

    /// Gives up the holes before every pending piece (memory pressure).
    pub fn flush_pending(&mut self, em: &mut Emit<'_>, dir: Direction) {
        while !self.pending.is_empty() {
            self.skip_to_pending(em, dir);
        }
    }

    /// Forgets buffered data (the flow is gone); returns the cost released.
    pub fn clear(&mut self) -> usize {
        self.pending.clear();
        std::mem::take(&mut self.pending_cost)
    }

    fn advance(&mut self, n: u64) {
        self.offset += n;
        self.next_seq = self.next_seq.wrapping_add(n as u32);
    }

    fn data(&mut self, bytes: Bytes, em: &mut Emit<'_>, dir: Direction) {
        let n = bytes.len() as u64;
        self.advance(n);
        self.bytes += n;
        em.stats.delivered_bytes += n;
        em.data(dir, bytes);
    }

    fn gap(&mut self, len: u64, em: &mut Emit<'_>, dir: Direction) {
        if len == 0 {
            return;
        }
        self.advance(len);
        self.gap_bytes += len;
        em.stats.gap_bytes += len;
        if em.gap(dir, len) {
            self.gaps += 1;
            em.stats.gaps += 1;
        }
    }
}

/// A segment's bytes placed in the stream: captured payload from `start`, followed by
/// bytes that were not captured.
struct Seg<'a> {
    start: i64,
    payload: &'a [u8],
}

impl Seg<'_> {
    /// The captured bytes and the count of uncaptured bytes within `[a, b)`.
    fn split(&self, a: u64, b: u64) -> (&[u8], u64) {
        let data_end = self.start + self.payload.len() as i64;
        let (a, b) = (a as i64, b as i64);
        let d0 = a.min(data_end);
        let d1 = b.min(data_end);
        let data = if d1 > d0 {
            &self.payload[(d0 - self.start) as usize..(d1 - self.start) as usize]
        } else {
            &[][..]
        };
        let lost = (b - a.max(data_end)).max(0) as u64;
        (data, lost)
    }
}
