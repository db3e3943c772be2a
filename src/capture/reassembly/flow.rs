//! One TCP connection: its two half-streams and its lifecycle (SYN, FIN, RST).

use std::net::SocketAddr;

use super::emit::Emit;
use super::half::{HalfLimits, HalfStream, SynResult};
use crate::capture::packet::TcpSegment;
use crate::capture::{CloseReason, Direction, FlowId, StreamEvent, Timestamp};

/// What a segment did to its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlowOutcome {
    Open,
    Closed,
    /// A SYN that starts a different connection on the same address pair.
    NewConnection,
}

pub(crate) struct Flow {
    pub id: FlowId,
    pub client: SocketAddr,
    /// Indexed by [`Flow::idx`]: client→server, server→client.
    pub halves: [HalfStream; 2],
    pub last_seen: Timestamp,
    /// Set once closed; the entry then lingers as a tombstone that swallows late
    /// packets (final ACKs, retransmitted FINs) instead of opening a bogus new flow.
    pub closed: Option<CloseReason>,
}

fn idx(dir: Direction) -> usize {
    match dir {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

impl Flow {
    pub fn new(id: FlowId, client: SocketAddr, ts: Timestamp) -> Self {
        Flow {
            id,
            client,
            halves: Default::default(),
            last_seen: ts,
            closed: None,
        }
    }

    pub fn dir_of(&self, src: &SocketAddr) -> Direction {
        if *src == self.client {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        }
    }

    pub fn has_data(&self) -> bool {
        self.halves.iter().any(HalfStream::has_data)
    }

    pub fn pending_cost(&self) -> usize {
        self.halves.iter().map(HalfStream::pending_cost).sum()
    }

    /// Applies one segment.
    pub fn segment(
        &mut self,
        seg: &TcpSegment<'_>,
        lim: &HalfLimits,
        em: &mut Emit<'_>,
    ) -> FlowOutcome {
        self.last_seen = em.ts;
        let dir = self.dir_of(&seg.src);
        if seg.flags.rst {
            let half = &mut self.halves[idx(dir)];
            if !half.in_window(seg.seq, lim) {
                em.stats.out_of_window_segments += 1;
                return FlowOutcome::Open;
            }
            half.sent_until(seg.seq, lim);
            self.close(CloseReason::Reset, em);
            em.stats.flows_closed_reset += 1;
            return FlowOutcome::Closed;
        }
        let mut seq = seg.seq;
        if seg.flags.syn {
            if !seg.flags.ack && dir == Direction::ServerToClient && !self.has_data() {
                // The side we took for the server opens the connection: it is a new
                // connection in the other orientation.
                return FlowOutcome::NewConnection;
            }
            match self.halves[idx(dir)].syn(seg.seq) {
                SynResult::Conflict => return FlowOutcome::NewConnection,
                SynResult::Accepted | SynResult::Retransmit => {}
            }
            if seg.flags.ack {
                // A SYN-ACK tells where the client's stream starts.
                self.halves[idx(dir.reverse())].start_at(seg.ack);
            }
            seq = seq.wrapping_add(1);
        }
        let half = &mut self.halves[idx(dir)];
        if !seg.payload.is_empty() || seg.missing > 0 || seg.flags.fin {
            half.segment(seq, seg.payload, seg.missing, seg.flags.fin, lim, em, dir);
        }
        if seg.flags.ack {
            self.halves[idx(dir.reverse())].ack(seg.ack, lim, em, dir.reverse());
        }
        if self.halves.iter().all(HalfStream::finished) {
            self.close(CloseReason::Fin, em);
            em.stats.flows_closed_fin += 1;
            return FlowOutcome::Closed;
        }
        FlowOutcome::Open
    }

    /// The reason to give when the flow ends for an outside cause: a connection that
    /// exchanged both FINs still ended by FIN even if a hole kept it open.
    pub fn end_reason(&self, otherwise: CloseReason) -> CloseReason {
        if self.halves.iter().all(HalfStream::fin_seen) {
            CloseReason::Fin
        } else {
            otherwise
        }
    }

    /// Gives up every hole, emits `Closed`, and frees the buffers.
    pub fn close(&mut self, reason: CloseReason, em: &mut Emit<'_>) {
        if self.closed.is_some() {
            return;
        }
        for dir in [Direction::ClientToServer, Direction::ServerToClient] {
            self.halves[idx(dir)].flush(em, dir);
        }
        for h in &mut self.halves {
            *em.buffered_total -= h.clear();
        }
        em.out.push(StreamEvent::Closed {
            flow: self.id,
            ts: em.ts,
            reason,
        });
        self.closed = Some(reason);
    }

    /// Gives up every hole now (global memory cap) without closing.
    pub fn release(&mut self, em: &mut Emit<'_>) {
        for dir in [Direction::ClientToServer, Direction::ServerToClient] {
            self.halves[idx(dir)].flush_pending(em, dir);
        }
    }
}
