//! Sources of traffic: pcap files and live interfaces (through TCP reassembly) and,
//! later, the proxy. Each produces [`StreamEvent`]s; nothing downstream knows which.
//!
//! The path of a packet: a source ([`file`], [`live`]) yields [`RawPacket`]s; the
//! [`Assembler`] strips the link layer ([`link`]), parses IP and TCP ([`packet`]),
//! reassembles IP fragments ([`defrag`]) and hands segments to the [`reassembly`]
//! table, which emits events. [`CaptureStats`] counts everything along the way.

pub mod assembler;
pub mod defrag;
pub mod error;
pub mod event;
pub mod file;
pub mod link;
pub mod live;
pub mod packet;
pub mod pcap_writer;
pub mod reassembly;
pub mod source;
pub mod stats;

pub use assembler::{Assembler, AssemblerConfig, RawPacket};
pub use error::CaptureError;
pub use event::{CloseReason, Direction, FlowId, StreamEvent, Timestamp};
pub use file::FileSource;
pub use link::LinkType;
pub use live::LiveSource;
pub use reassembly::{Reassembler, ReassemblyConfig};
pub use source::{Next, Source, SourceSpec};
pub use stats::CaptureStats;
