//! Capture files (pcap and pcapng, through libpcap), several merged into one capture
//! in timestamp order.
//!
//! Merging matters because a capture is often split (tcpdump `-C`/`-G` rotation, or
//! one file per mirror port): a flow's segments can sit in different files, and
//! reassembly needs them in time order. A single file is read without copying.

use std::path::{Path, PathBuf};

use pcap::{Capture, Offline, Precision};

use super::assembler::RawPacket;
use super::error::CaptureError;
use super::link::LinkType;
use super::Timestamp;

struct Head {
    ts: Timestamp,
    orig_len: u32,
    data: Vec<u8>,
}

struct OpenFile {
    name: String,
    cap: Capture<Offline>,
    link: LinkType,
    head: Option<Head>,
    done: bool,
}

/// Reads one or more capture files as one time-ordered capture.
pub struct FileSource {
    files: Vec<OpenFile>,
    /// Index of the file whose head was handed out last and must be refilled.
    consumed: Option<usize>,
    primed: bool,
    errors: Vec<String>,
}

fn ts_of(h: &pcap::PacketHeader) -> Timestamp {
    // Opened with nanosecond precision: tv_usec holds nanoseconds.
    let sec = u64::try_from(h.ts.tv_sec).unwrap_or(0);
    let frac = u64::try_from(h.ts.tv_usec).unwrap_or(0);
    Timestamp(sec.saturating_mul(1_000_000_000).saturating_add(frac))
}

/// Opens one capture file, with an error that says what is wrong with it.
fn open_one(path: &Path) -> Result<OpenFile, CaptureError> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => CaptureError::NotFound {
            path: path.to_path_buf(),
        },
        _ => CaptureError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    })?;
    if meta.is_dir() {
        return Err(CaptureError::Open {
            path: path.to_path_buf(),
            reason: "is a directory".into(),
        });
    }
    // Check readability first so "permission denied" is not reported as a bad format.
    std::fs::File::open(path).map_err(|e| CaptureError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let cap = Capture::from_file_with_precision(path, Precision::Nano).map_err(|e| {
        CaptureError::NotACapture {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    })?;
    let dlt = cap.get_datalink();
    let name = path.display().to_string();
    let link = LinkType::from_dlt(dlt.0).ok_or_else(|| CaptureError::UnsupportedLinkType {
        source_name: name.clone(),
        dlt: dlt.0,
        name: dlt.get_name().unwrap_or_else(|_| "unknown".into()),
    })?;
    Ok(OpenFile {
        name,
        cap,
        link,
        head: None,
        done: false,
    })
}

impl FileSource {
    /// Opens every file; fails on the first that cannot be read as a capture.
    pub fn open(paths: &[PathBuf]) -> Result<Self, CaptureError> {
        let files = paths
            .iter()
            .map(|p| open_one(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FileSource {
            files,
            consumed: None,
            primed: false,
            errors: Vec::new(),
        })
    }

    /// Errors met while reading (a file cut off mid-packet, …), one line each. The
    /// file's packets before the error were delivered.
    pub fn take_errors(&mut self) -> Vec<String> {
        std::mem::take(&mut self.errors)
    }

    /// The next packet in time order; `None` when every file is exhausted.
    pub fn next_packet(&mut self) -> Option<RawPacket<'_>> {
        if self.files.len() == 1 {
            return self.next_single();
        }
        if !self.primed {
            self.primed = true;
            for i in 0..self.files.len() {
                self.refill(i);
            }
        }
        if let Some(i) = self.consumed.take() {
            self.refill(i);
        }
        let i = (0..self.files.len())
            .filter_map(|i| self.files[i].head.as_ref().map(|h| (h.ts, i)))
            .min()?
            .1;
        self.consumed = Some(i);
        let f = &self.files[i];
        let h = f.head.as_ref()?;
        Some(RawPacket {
            link: f.link,
            ts: h.ts,
            orig_len: h.orig_len,
            data: &h.data,
        })
    }

    fn next_single(&mut self) -> Option<RawPacket<'_>> {
        let f = &mut self.files[0];
        if f.done {
            return None;
        }
        match f.cap.next_packet() {
            Ok(p) => Some(RawPacket {
                link: f.link,
                ts: ts_of(p.header),
                orig_len: p.header.len,
                data: p.data,
            }),
            Err(e) => {
                f.done = true;
                if !matches!(e, pcap::Error::NoMorePackets) {
                    self.errors.push(format!("{}: {e}", f.name));
                }
                None
            }
        }
    }

    fn refill(&mut self, i: usize) {
        let f = &mut self.files[i];
        if f.done {
            f.head = None;
            return;
        }
        match f.cap.next_packet() {
            Ok(p) => {
                let mut head = f.head.take().unwrap_or(Head {
                    ts: Timestamp(0),
                    orig_len: 0,
                    data: Vec::new(),
                });
                head.ts = ts_of(p.header);
                head.orig_len = p.header.len;
                head.data.clear();
                head.data.extend_from_slice(p.data);
                f.head = Some(head);
            }
            Err(e) => {
                f.done = true;
                f.head = None;
                if !matches!(e, pcap::Error::NoMorePackets) {
                    self.errors.push(format!("{}: {e}", f.name));
                }
            }
        }
    }
}
