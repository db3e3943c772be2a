//! The output records of `tidemark inspect --json`, one JSON object per line, tagged
//! by `"type"`. Field names are the contract of ARCHITECTURE.md's "Command line"
//! section: other tools parse them, so change them only by adding.
//!
//! Decoders add their own variants here (`Message`, `Write`): one struct per record
//! type, one variant in [`Record`].

use serde::Serialize;

use super::detect::Protocol;
use crate::capture::CaptureStats;

/// One line of inspect output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Flow(FlowRecord),
    Error(ErrorRecord),
    Summary(SummaryRecord),
}

/// A flow, reported when it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowRecord {
    pub flow: u64,
    /// `ip:port`, IPv6 as `[ip]:port`.
    pub client: String,
    pub server: String,
    pub protocol: Protocol,
    pub bytes_c2s: u64,
    pub bytes_s2c: u64,
    /// Gap events over both directions.
    pub gaps: u64,
    /// Bytes given up as gaps over both directions.
    pub gap_bytes: u64,
    /// How the flow ended: `fin`, `reset`, `idle`, `evicted`, `end_of_capture`, `reused`.
    pub state: &'static str,
}

/// Something that could not be decoded. `flow`, `dir` and `offset` (the byte offset
/// in that direction's stream) are absent for errors of the capture itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    pub message: String,
}

/// Flows per detected protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProtocolCounts {
    pub cql: u64,
    pub mongo: u64,
    pub unknown: u64,
}

/// The last line: totals and the capture layer's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SummaryRecord {
    pub flows: u64,
    pub protocols: ProtocolCounts,
    pub bytes_c2s: u64,
    pub bytes_s2c: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub errors: u64,
    pub capture: CaptureStats,
}
