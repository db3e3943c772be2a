//! The per-flow seam: the trait every protocol's flow decoder implements.
//!
//! Each flow gets one [`FlowDecoder`], made by the factory registered for its detected
//! protocol in a [`DecoderRegistry`](super::registry::DecoderRegistry). The decoder
//! sees exactly what the capture layer
//! knows about the flow, in order: each direction's bytes (`data`), the stretches
//! that will never arrive (`gap`), and the end (`closed`). It answers with
//! [`Record`]s (`message`, `write`, `error` lines). Decoders are sans-IO and must
//! never panic on any input; a protocol error is an `error` record and resync.
//!
//! To plug in a protocol, register a factory in
//! [`default_registry`](super::registry::default_registry), which sits above the
//! protocol decoders (they implement this trait and know nothing of the registry).

use std::net::SocketAddr;

use bytes::Bytes;

use super::detect::Protocol;
use super::records::Record;
use crate::capture::{CloseReason, Direction, FlowId, Timestamp};

/// What is known about a flow when its decoder is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowInfo {
    pub flow: FlowId,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub protocol: Protocol,
    /// When the flow was first seen.
    pub opened: Timestamp,
}

/// Where in a flow an input belongs.
#[derive(Debug, Clone, Copy)]
pub struct StreamPos<'a> {
    pub flow: &'a FlowInfo,
    pub dir: Direction,
    /// Capture time of the packet that completed this input.
    pub ts: Timestamp,
    /// Offset of the first byte in this direction's stream, counting gap bytes, so
    /// error records can say where.
    pub offset: u64,
}

/// A per-flow protocol decoder.
pub trait FlowDecoder: Send {
    /// The next bytes of `pos.dir`, contiguous with what came before unless a `gap`
    /// came between.
    fn data(&mut self, pos: &StreamPos<'_>, bytes: &Bytes, out: &mut Vec<Record>);

    /// `len` bytes of `pos.dir` at `pos.offset` were lost: whatever message spans
    /// them is incomplete, and the decoder must find the next message boundary.
    fn gap(&mut self, pos: &StreamPos<'_>, len: u64, out: &mut Vec<Record>);

    /// The flow ended; nothing follows. Report anything left half-decoded.
    fn closed(
        &mut self,
        flow: &FlowInfo,
        ts: Timestamp,
        reason: CloseReason,
        out: &mut Vec<Record>,
    );

    /// Capture time of the oldest write request this decoder still holds without a
    /// decision (waiting for its response, or for its transaction to end). The commit
    /// tracker keeps the tidemark before it: that write is not decided yet. Decoders
    /// that hold no writes answer `None`.
    fn oldest_pending_write(&self) -> Option<Timestamp> {
        None
    }

    /// Copies of the write lines this decoder holds without a decision (a request
    /// waiting for its response, a statement waiting for its transaction to end),
    /// oldest first, leaving them held. A live run persists them at each group
    /// commit, so a crash before their responses leaves a record that they were
    /// sent: without it a write the database may have applied would be missing from
    /// the log, not even in doubt. Their outcome fields are whatever the decoder has
    /// so far; the caller decides what to store. Decoders that hold no writes add
    /// nothing.
    fn in_flight(&self, _out: &mut Vec<super::records::WriteRecord>) {}
}

/// The earliest request time among `lines` (their `ts`), for
/// [`FlowDecoder::oldest_pending_write`].
pub fn earliest_line<'a>(
    lines: impl IntoIterator<Item = &'a super::records::WriteRecord>,
) -> Option<Timestamp> {
    lines.into_iter().map(|w| w.ts).min()
}

/// A decoder that decodes nothing: for `unknown` flows and protocols whose decoder
/// is not registered (yet).
#[derive(Debug, Default)]
pub struct NoopDecoder;

impl FlowDecoder for NoopDecoder {
    fn data(&mut self, _: &StreamPos<'_>, _: &Bytes, _: &mut Vec<Record>) {}
    fn gap(&mut self, _: &StreamPos<'_>, _: u64, _: &mut Vec<Record>) {}
    fn closed(&mut self, _: &FlowInfo, _: Timestamp, _: CloseReason, _: &mut Vec<Record>) {}
}
