//! The one event type that crosses the boundary between sources and decoders.

use std::net::SocketAddr;

use bytes::Bytes;

/// Identifies one TCP connection for the lifetime of a run. Never reused, even when
/// the same address pair connects again after a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub u64);

/// Which way bytes travel on a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// From the side that opened the connection (the client) to the server.
    ClientToServer,
    /// From the server back to the client.
    ServerToClient,
}

impl Direction {
    /// The spelling used in JSON output: `c2s` or `s2c`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ClientToServer => "c2s",
            Direction::ServerToClient => "s2c",
        }
    }

    /// The opposite direction.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::ClientToServer => Direction::ServerToClient,
            Direction::ServerToClient => Direction::ClientToServer,
        }
    }
}

/// Capture time in nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The wall clock now (0 on a clock before the epoch): what live runs and the
    /// repository stamp when no packet gives a time.
    pub fn now() -> Timestamp {
        Timestamp(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        )
    }
}

/// Why a flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Both sides sent FIN.
    Fin,
    /// A side sent RST.
    Reset,
    /// No packet for longer than the idle timeout.
    Idle,
    /// Evicted to keep the flow table within its memory cap.
    Evicted,
    /// The capture ended while the flow was still open.
    EndOfCapture,
    /// A new handshake (SYN with another initial sequence number) took over the
    /// address pair before this flow was seen to end.
    Reused,
}

impl CloseReason {
    /// The spelling used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Fin => "fin",
            CloseReason::Reset => "reset",
            CloseReason::Idle => "idle",
            CloseReason::Evicted => "evicted",
            CloseReason::EndOfCapture => "end_of_capture",
            CloseReason::Reused => "reused",
        }
    }
}

/// What a source reports about a TCP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// A flow was seen for the first time. `client` is the side that sent the SYN, or
    /// the best guess (the side not on a known server port, else the lower-numbered
    /// ephemeral-looking port) when the handshake was not captured.
    Opened {
        flow: FlowId,
        client: SocketAddr,
        server: SocketAddr,
        ts: Timestamp,
    },
    /// The next bytes of one direction, exactly in order, never repeated.
    Data {
        flow: FlowId,
        dir: Direction,
        ts: Timestamp,
        bytes: Bytes,
    },
    /// `len` bytes of one direction were never seen and never will be; the next `Data`
    /// continues after them.
    Gap {
        flow: FlowId,
        dir: Direction,
        ts: Timestamp,
        len: u64,
    },
    /// The flow ended; no further events for it.
    Closed {
        flow: FlowId,
        ts: Timestamp,
        reason: CloseReason,
    },
}

impl StreamEvent {
    /// The flow this event belongs to.
    pub fn flow(&self) -> FlowId {
        match self {
            StreamEvent::Opened { flow, .. }
            | StreamEvent::Data { flow, .. }
            | StreamEvent::Gap { flow, .. }
            | StreamEvent::Closed { flow, .. } => *flow,
        }
    }
}
