//! Where reassembly writes its events, and the arena their bytes are copied into.

use bytes::{Bytes, BytesMut};

use crate::capture::stats::CaptureStats;
use crate::capture::{Direction, FlowId, StreamEvent, Timestamp};

/// Copies in-order payload into large shared chunks, so delivering a segment costs a
/// memcpy and a reference count instead of an allocation. A chunk is freed when the
/// last `Bytes` cut from it is dropped; consumers that keep data for long should copy
/// it (out-of-order segments are buffered in their own allocations for that reason).
pub(crate) struct Arena {
    buf: BytesMut,
    chunk: usize,
}

impl Arena {
    pub fn new(chunk: usize) -> Self {
        Arena {
            buf: BytesMut::new(),
            chunk,
        }
    }

    pub fn copy(&mut self, data: &[u8]) -> Bytes {
        if data.len() > self.chunk / 8 {
            return Bytes::copy_from_slice(data);
        }
        if self.buf.capacity() - self.buf.len() < data.len() && !self.buf.try_reclaim(self.chunk) {
            // Reclaiming works when every `Bytes` cut from the chunk was dropped (the
            // usual case: consumers handle events and drop them), which saves both
            // the allocation and the page faults of fresh memory.
            self.buf = BytesMut::with_capacity(self.chunk);
        }
        self.buf.extend_from_slice(data);
        self.buf.split().freeze()
    }
}

/// The reassembler's state every flow's events share: the payload arena, the
/// reorder-buffer total, scratch space.
pub(crate) struct EmitState {
    pub arena: Arena,
    /// Reorder-buffer cost summed over all flows (for the global cap).
    pub buffered_total: usize,
    pub scratch: Vec<(u64, u64)>,
}

impl EmitState {
    pub fn new(arena_chunk: usize) -> Self {
        EmitState {
            arena: Arena::new(arena_chunk),
            buffered_total: 0,
            scratch: Vec::new(),
        }
    }

    /// The emitter of one flow's events at `ts`.
    pub fn emit<'a>(
        &'a mut self,
        stats: &'a mut CaptureStats,
        out: &'a mut Vec<StreamEvent>,
        flow: FlowId,
        ts: Timestamp,
    ) -> Emit<'a> {
        Emit {
            out,
            stats,
            arena: &mut self.arena,
            buffered_total: &mut self.buffered_total,
            scratch: &mut self.scratch,
            flow,
            ts,
        }
    }
}

/// Everything a half-stream needs to report what it did for one packet.
pub(crate) struct Emit<'a> {
    pub out: &'a mut Vec<StreamEvent>,
    pub stats: &'a mut CaptureStats,
    pub arena: &'a mut Arena,
    /// Reorder-buffer cost summed over all flows (for the global cap).
    pub buffered_total: &'a mut usize,
    /// Reused scratch space for overlap computation.
    pub scratch: &'a mut Vec<(u64, u64)>,
    pub flow: FlowId,
    pub ts: Timestamp,
}

impl Emit<'_> {
    pub fn data(&mut self, dir: Direction, bytes: Bytes) {
        self.out.push(StreamEvent::Data {
            flow: self.flow,
            dir,
            ts: self.ts,
            bytes,
        });
    }

    /// Reports a gap; adjacent gaps of one direction merge into one event, so a
    /// missing stretch is always exactly one `Gap`. Returns whether a new event began.
    pub fn gap(&mut self, dir: Direction, len: u64) -> bool {
        if let Some(StreamEvent::Gap {
            flow,
            dir: d,
            len: l,
            ..
        }) = self.out.last_mut()
        {
            if *flow == self.flow && *d == dir {
                *l += len;
                return false;
            }
        }
        self.out.push(StreamEvent::Gap {
            flow: self.flow,
            dir,
            ts: self.ts,
            len,
        });
        true
    }
}
