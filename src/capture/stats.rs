//! Counters the capture layer keeps about what it saw and what it had to give up on.
//!
//! Every place where the tap cannot deliver bytes as they were sent (truncation, a
//! buffer cap, an eviction, a packet it could not parse) bumps a counter here, so the
//! summary can say exactly how much of the capture was not decoded and why.

use serde::Serialize;

/// Capture-layer counters, reported in the `summary` record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CaptureStats {
    /// Packets read from the sources.
    pub packets: u64,
    /// Bytes of packets as they were on the wire (original length).
    pub wire_bytes: u64,
    /// Packets whose link layer carried something other than IPv4/IPv6 (ARP, LLDP, …).
    pub non_ip: u64,
    /// IP packets carrying something other than TCP.
    pub non_tcp: u64,
    /// Packets whose link, IP or TCP header could not be parsed.
    pub malformed: u64,
    /// Packets captured shorter than they were on the wire (snaplen).
    pub truncated: u64,
    /// TCP payload bytes missing from truncated packets (delivered as gaps).
    pub truncated_bytes: u64,
    /// IP fragments seen.
    pub fragments: u64,
    /// Datagrams rebuilt from fragments.
    pub fragments_reassembled: u64,
    /// Fragments dropped: timed out, over the memory cap, or inconsistent.
    pub fragments_dropped: u64,
    /// TCP segments processed.
    pub tcp_segments: u64,
    /// Flows opened (each gets a new flow id).
    pub flows_opened: u64,
    /// Flows closed by FIN in both directions.
    pub flows_closed_fin: u64,
    /// Flows closed by RST.
    pub flows_closed_reset: u64,
    /// Flows closed because no packet arrived within the idle timeout.
    pub idle_evictions: u64,
    /// Flows evicted to keep the flow table within `max_flows`.
    pub table_evictions: u64,
    /// Flows closed because a new handshake reused their address pair.
    pub flows_reused: u64,
    /// Segments that arrived ahead of the next expected byte and were buffered.
    pub out_of_order_segments: u64,
    /// Segments that carried only bytes already delivered or buffered (retransmits).
    pub retransmitted_segments: u64,
    /// Bytes dropped because they had been seen before (first-seen bytes win).
    pub duplicate_bytes: u64,
    /// Segments too far ahead of the stream to belong to it (dropped, counted).
    pub out_of_window_segments: u64,
    /// Packets for a flow that had already closed (late ACKs, retransmitted FINs).
    pub after_close_packets: u64,
    /// Times a per-direction reorder buffer reached its cap and a hole was given up.
    pub buffer_cap_hits: u64,
    /// Times the global reorder-buffer cap forced the largest buffer to be given up.
    pub global_buffer_cap_hits: u64,
    /// Gaps delivered (holes that will never be filled).
    pub gaps: u64,
    /// Bytes covered by gaps.
    pub gap_bytes: u64,
    /// Payload bytes delivered in order.
    pub delivered_bytes: u64,
    /// Errors while reading a source after it was opened (e.g. a cut-off file).
    pub read_errors: u64,
}
