//! Sources of traffic: pcap files and live interfaces (through TCP reassembly) and,
//! later, the proxy. Each produces [`StreamEvent`]s; nothing downstream knows which.

pub mod event;

pub use event::{CloseReason, Direction, FlowId, StreamEvent, Timestamp};
