//! One source of captured frames, whichever kind: pcap/pcapng files (merged in time
//! order) or a live interface. Every command that reads traffic (`inspect`, `tap`)
//! opens a [`Source`] from the same [`SourceSpec`] and reads it the same way, so
//! nothing after this point knows where the frames came from. (The proxy feeds
//! [`StreamEvent`](super::StreamEvent)s directly and so needs no frames.)

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{CaptureError, FileSource, LiveSource, RawPacket};

/// What to read: files, or an interface (with an optional duration).
#[derive(Debug, Clone, Default)]
pub struct SourceSpec {
    pub files: Vec<PathBuf>,
    pub interface: Option<String>,
    pub duration: Option<Duration>,
}

impl SourceSpec {
    /// Whether this is a live capture.
    pub fn is_live(&self) -> bool {
        self.interface.is_some()
    }
}

/// An open source of frames.
pub enum Source {
    Files(FileSource),
    Live(LiveSource),
}

/// What [`Source::next_until`] found.
pub enum Next<'a> {
    Packet(RawPacket<'a>),
    /// A live interface was quiet until the deadline; the capture goes on.
    Quiet,
    /// Nothing more will come (files exhausted, signal, `--duration`).
    End,
    /// Reading failed after the source opened; nothing more will come.
    Failed(String),
}

impl Source {
    /// Opens `spec`; a live capture passes only TCP traffic of `ports`.
    pub fn open(spec: &SourceSpec, ports: &[u16]) -> Result<Source, CaptureError> {
        match &spec.interface {
            Some(name) => Ok(Source::Live(LiveSource::open(name, ports, spec.duration)?)),
            None if spec.files.is_empty() => Err(CaptureError::NoInput),
            None => Ok(Source::Files(FileSource::open(&spec.files)?)),
        }
    }

    /// The next frame, waiting on a live interface no later than `until`.
    pub fn next_until(&mut self, until: Instant) -> Next<'_> {
        match self {
            Source::Files(f) => match f.next_packet() {
                Some(p) => Next::Packet(p),
                None => Next::End,
            },
            Source::Live(l) => {
                // The packet borrows `l`; whether a quiet read means the end is
                // asked of a handle that does not.
                let end = l.end_watch();
                match l.next_packet_until(until) {
                    Ok(Some(p)) => Next::Packet(p),
                    Ok(None) if end.ended() => Next::End,
                    Ok(None) => Next::Quiet,
                    Err(e) => Next::Failed(e.to_string()),
                }
            }
        }
    }

    /// Errors met reading files after they opened (a file cut short), each once.
    pub fn take_errors(&mut self) -> Vec<String> {
        match self {
            Source::Files(f) => f.take_errors(),
            Source::Live(_) => Vec::new(),
        }
    }
}
