//! Live capture from a network interface through libpcap.
//!
//! The kernel buffer is made large (64 MiB) because a passive tap cannot ask the
//! sender to slow down: whatever the buffer cannot hold is lost and becomes gaps. The
//! BPF filter keeps everything but the configured ports (and IP fragments, which carry
//! no ports) in the kernel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pcap::{Active, Capture};
use signal_hook::consts::{SIGINT, SIGTERM};

use super::assembler::RawPacket;
use super::error::CaptureError;
use super::link::LinkType;
use super::Timestamp;

/// Kernel capture buffer size.
///
/// Not in immediate mode: there libpcap on Linux falls back to a TPACKET_V2 ring whose
/// every slot is a whole snapshot length (256 KiB here), so 64 MiB held only 256
/// packets and a busy moment on a loaded machine dropped packets (capture gaps that
/// stop the tidemark). TPACKET_V3 packs packets into blocks by their real size, so the
/// buffer holds 64 MiB of traffic; delivery waits at most the read timeout.
pub const LIVE_BUFFER_BYTES: i32 = 64 << 20;
/// Snapshot length: whole packets (large enough for TSO/GRO super-packets).
pub const LIVE_SNAPLEN: i32 = 262_144;
/// Read timeout handed to libpcap (batching in the kernel ring).
const READ_TIMEOUT_MS: i32 = 100;
/// Pause when no packet is waiting. The capture is non-blocking because libpcap on
/// Linux may block in poll() indefinitely, and `--duration` must end the capture even
/// on an idle interface.
const IDLE_SLEEP: Duration = Duration::from_millis(5);

/// The BPF filter for the given server ports: their TCP traffic, with or without one
/// or more VLAN tags, and IP fragments (only the first fragment has ports).
pub fn bpf_filter(ports: &[u16]) -> String {
    if ports.is_empty() {
        return "tcp or (ip[6:2] & 0x3fff != 0) or (ip6[6] == 44) or (vlan and tcp)".into();
    }
    let ports = ports
        .iter()
        .map(|p| format!("port {p}"))
        .collect::<Vec<_>>()
        .join(" or ");
    format!("(tcp and ({ports})) or (ip[6:2] & 0x3fff != 0) or (ip6[6] == 44) or (vlan and tcp and ({ports}))")
}

/// The same filter without the VLAN part, for link types where `vlan` is invalid.
fn bpf_filter_plain(ports: &[u16]) -> String {
    if ports.is_empty() {
        return "tcp or (ip[6:2] & 0x3fff != 0) or (ip6[6] == 44)".into();
    }
    let ports = ports
        .iter()
        .map(|p| format!("port {p}"))
        .collect::<Vec<_>>()
        .join(" or ");
    format!("(tcp and ({ports})) or (ip[6:2] & 0x3fff != 0) or (ip6[6] == 44)")
}

/// A live interface.
pub struct LiveSource {
    cap: Capture<Active>,
    link: LinkType,
    name: String,
    deadline: Option<Instant>,
    /// Set by SIGINT or SIGTERM: the capture ends like a reached `--duration`, so
    /// everything seen so far is still decoded and reported.
    stop: Arc<AtomicBool>,
    buf: Vec<u8>,
    ts: Timestamp,
    orig_len: u32,
}

fn classify(name: &str, e: pcap::Error) -> CaptureError {
    let reason = e.to_string();
    let lower = reason.to_lowercase();
    if lower.contains("permission") || lower.contains("not permitted") {
        CaptureError::Permission {
            name: name.into(),
            reason,
        }
    } else if lower.contains("no such device") || lower.contains("doesn't exist") {
        CaptureError::NoSuchInterface { name: name.into() }
    } else {
        CaptureError::Live {
            name: name.into(),
            reason,
        }
    }
}

/// See [`LiveSource::end_watch`].
#[derive(Debug, Clone)]
pub struct EndWatch {
    stop: Arc<AtomicBool>,
    deadline: Option<Instant>,
}

impl EndWatch {
    /// Whether a signal arrived or the duration passed.
    pub fn ended(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

impl LiveSource {
    /// Opens `name`, capturing the given server ports (all TCP when empty), for
    /// `duration` if given.
    pub fn open(
        name: &str,
        ports: &[u16],
        duration: Option<Duration>,
    ) -> Result<Self, CaptureError> {
        let devices = pcap::Device::list().map_err(|e| classify(name, e))?;
        if !devices.iter().any(|d| d.name == name) {
            return Err(CaptureError::NoSuchInterface { name: name.into() });
        }
        let mut cap = Capture::from_device(name)
            .map_err(|e| classify(name, e))?
            .buffer_size(LIVE_BUFFER_BYTES)
            .snaplen(LIVE_SNAPLEN)
            .promisc(true)
            .timeout(READ_TIMEOUT_MS)
            .open()
            .map_err(|e| classify(name, e))?;
        let dlt = cap.get_datalink();
        let link = LinkType::from_dlt(dlt.0).ok_or_else(|| CaptureError::UnsupportedLinkType {
            source_name: format!("interface {name}"),
            dlt: dlt.0,
            name: dlt.get_name().unwrap_or_else(|_| "unknown".into()),
        })?;
        if cap.filter(&bpf_filter(ports), true).is_err() {
            cap.filter(&bpf_filter_plain(ports), true)
                .map_err(|e| classify(name, e))?;
        }
        let cap = cap.setnonblock().map_err(|e| classify(name, e))?;
        let stop = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM] {
            signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(|e| {
                CaptureError::Live {
                    name: name.into(),
                    reason: format!("cannot handle signal {signal}: {e}"),
                }
            })?;
        }
        Ok(LiveSource {
            cap,
            link,
            name: name.into(),
            deadline: duration.map(|d| Instant::now() + d),
            stop,
            buf: Vec::new(),
            ts: Timestamp(0),
            orig_len: 0,
        })
    }

    /// The next packet; `None` once the duration has passed or a SIGINT/SIGTERM
    /// arrived.
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        self.read(None)
    }

    /// Like [`LiveSource::next_packet`], but also answers `None` when nothing arrived
    /// by `until`, so a caller can do timed work on a quiet interface; [`finished`]
    /// tells that apart from the end of the capture.
    ///
    /// [`finished`]: LiveSource::finished
    pub fn next_packet_until(
        &mut self,
        until: Instant,
    ) -> Result<Option<RawPacket<'_>>, CaptureError> {
        self.read(Some(until))
    }

    /// Whether the capture has ended (signal or `--duration`).
    pub fn finished(&self) -> bool {
        self.end_watch().ended()
    }

    /// A handle that tells whether the capture has ended without borrowing the
    /// source (which a packet being read may hold).
    pub fn end_watch(&self) -> EndWatch {
        EndWatch {
            stop: Arc::clone(&self.stop),
            deadline: self.deadline,
        }
    }

    fn read(&mut self, until: Option<Instant>) -> Result<Option<RawPacket<'_>>, CaptureError> {
        loop {
            if self.finished() || until.is_some_and(|u| Instant::now() >= u) {
                return Ok(None);
            }
            match self.cap.next_packet() {
                Ok(p) => {
                    // Copied so the borrow of the capture ends here (a returned borrow
                    // inside a retry loop is beyond today's borrow checker).
                    let sec = u64::try_from(p.header.ts.tv_sec).unwrap_or(0);
                    let usec = u64::try_from(p.header.ts.tv_usec).unwrap_or(0);
                    self.ts = Timestamp(sec * 1_000_000_000 + usec * 1_000);
                    self.orig_len = p.header.len;
                    self.buf.clear();
                    self.buf.extend_from_slice(p.data);
                    break;
                }
                // Non-blocking: nothing to read right now.
                Err(pcap::Error::TimeoutExpired) => std::thread::sleep(IDLE_SLEEP),
                Err(pcap::Error::NoMorePackets) => return Ok(None),
                Err(e) => {
                    return Err(CaptureError::Read {
                        source_name: format!("interface {}", self.name),
                        reason: e.to_string(),
                    })
                }
            }
        }
        Ok(Some(RawPacket {
            link: self.link,
            ts: self.ts,
            orig_len: self.orig_len,
            data: &self.buf,
        }))
    }
}
