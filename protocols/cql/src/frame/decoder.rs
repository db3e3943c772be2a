//! [`FrameDecoder`]: one direction of a connection, sans-IO. Feed bytes in any split,
//! pull frames with [`FrameDecoder::next`]. It follows the framing of that direction
//! (v3/v4 frames, unframed v5 handshake, v5 segments), decompresses bodies, and
//! resynchronizes after gaps, invalid headers, or a mid-stream start. Memory is bounded
//! by the frame size cap: nothing is reserved on the strength of a length field.

use super::compression::{decompress, Compression};
use super::header::{flags, FrameHeader, HEADER_LEN, MAX_FRAME_LEN};
use super::scan::{legacy_at, segment_at, Verdict};
use super::segment::{SegmentHeader, HEADER_LEN_LZ4, TRAILER_LEN};
use super::Frame;
use crate::error::{CqlError, Direction, ErrorKind};
use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;

/// Limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Largest frame/envelope body accepted (the spec's 256 MB by default).
    pub max_frame_len: u32,
    /// While resynchronizing, a candidate frame that needs more than this many bytes
    /// to be confirmed is given up, so garbage announcing a huge length cannot make
    /// the decoder wait (and buffer) indefinitely.
    pub resync_window: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            max_frame_len: MAX_FRAME_LEN,
            resync_window: 4 * 1024 * 1024,
        }
    }
}

/// How the bytes of a direction are framed right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Not known yet (mid-stream start): both forms are looked for.
    Unknown,
    /// v3/v4 frames, or v5 envelopes before the handshake completes.
    Legacy,
    /// At the v5 switch point: the next unit is a segment if its header CRC24 checks,
    /// else still a plain frame (a v5-beta server without framing, or a rejected
    /// STARTUP).
    Probe,
    /// v5 segments.
    Segments,
}

/// A large envelope being collected from non-self-contained segments.
struct Large {
    data: Vec<u8>,
    needed: usize,
    offset: u64,
    compressed: bool,
}

/// Incremental decoder for one direction.
pub struct FrameDecoder {
    dir: Direction,
    cfg: DecoderConfig,
    buf: BytesMut,
    /// Stream offset of `buf[0]`.
    base: u64,
    version: Option<u8>,
    /// `None` = not known (a compressed frame is then auto-detected).
    compression: Option<Compression>,
    framing: Framing,
    /// Segment header form; `None` = not known.
    lz4_segments: Option<bool>,
    synced: bool,
    ready: VecDeque<Frame>,
    errors: VecDeque<CqlError>,
    large: Option<Large>,
}

/// How far past a waiting candidate the scanner looks for a confirmed boundary.
const LOOKAHEAD: usize = 64 * 1024;

impl FrameDecoder {
    /// A decoder for a direction observed from its first byte.
    pub fn new(dir: Direction) -> Self {
        Self::with_config(dir, DecoderConfig::default())
    }

    pub fn with_config(dir: Direction, cfg: DecoderConfig) -> Self {
        FrameDecoder {
            dir,
            cfg,
            buf: BytesMut::new(),
            base: 0,
            version: None,
            compression: None,
            framing: Framing::Legacy,
            lz4_segments: None,
            synced: true,
            ready: VecDeque::new(),
            errors: VecDeque::new(),
            large: None,
        }
    }

    /// A decoder for a direction picked up mid-stream: it first looks for a frame
    /// boundary of either framing.
    pub fn mid_stream(dir: Direction, cfg: DecoderConfig) -> Self {
        let mut d = Self::with_config(dir, cfg);
        d.framing = Framing::Unknown;
        d.synced = false;
        d
    }

    pub fn direction(&self) -> Direction {
        self.dir
    }
    pub fn version(&self) -> Option<u8> {
        self.version
    }
    pub fn framing(&self) -> Framing {
        self.framing
    }
    pub fn compression(&self) -> Option<Compression> {
        self.compression
    }
    /// Stream offset of the first byte not yet consumed.
    pub fn offset(&self) -> u64 {
        self.base
    }
    /// Bytes buffered, waiting for the rest of a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.large.as_ref().map_or(0, |l| l.data.len())
    }

    /// Sets the negotiated compression (from STARTUP). For v5 it also fixes the
    /// segment header form.
    pub fn set_compression(&mut self, c: Compression) {
        self.compression = Some(c);
        self.lz4_segments = Some(c == Compression::Lz4);
    }

    /// Switches to v5 framing at the current position: segments if the next bytes carry
    /// a valid segment header, plain frames otherwise.
    pub fn expect_segments(&mut self) {
        if self.framing != Framing::Segments {
            self.framing = Framing::Probe;
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Notes `len` missing bytes: whatever was buffered is incomplete and dropped, and
    /// the decoder resynchronizes on the bytes that follow.
    pub fn gap(&mut self, len: u64) {
        let dropped = self.buf.len() as u64 + self.large.take().map_or(0, |l| l.data.len() as u64);
        if dropped > 0 {
            self.errors
                .push_back(self.err(self.base, ErrorKind::Skipped { len: dropped }));
        }
        self.base += self.buf.len() as u64 + len;
        self.buf.clear();
        self.synced = false;
    }

    fn err(&self, offset: u64, kind: ErrorKind) -> CqlError {
        CqlError::new(Some(self.dir), offset, kind)
    }

    /// The next frame, `Ok(None)` if more bytes are needed, or an error (after which
    /// decoding continues: call again).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Frame>, CqlError> {
        loop {
            if let Some(e) = self.errors.pop_front() {
                return Err(e);
            }
            if let Some(f) = self.ready.pop_front() {
                return Ok(Some(f));
            }
            if !self.synced {
                if self.resync() {
                    continue;
                }
                return match self.errors.pop_front() {
                    Some(e) => Err(e),
                    None => Ok(None),
                };
            }
            match self.framing {
                Framing::Unknown | Framing::Legacy => return self.next_legacy(),
                Framing::Probe => {
                    let forms: &[bool] = match self.lz4_segments {
                        Some(true) => &[true],
                        Some(false) => &[false],
                        None => &[false, true],
                    };
                    let need = if forms.contains(&true) {
                        HEADER_LEN_LZ4
                    } else {
                        6
                    };
                    if self.buf.len() < need {
                        return Ok(None);
                    }
                    if let Some(lz4) = forms
                        .iter()
                        .copied()
                        .find(|lz4| matches!(SegmentHeader::parse(&self.buf, *lz4), Ok(Some(_))))
                    {
                        self.framing = Framing::Segments;
                        self.lz4_segments = Some(lz4);
                        continue;
                    }
                    return self.next_legacy();
                }
                Framing::Segments => {
                    if !self.next_segment()? {
                        return Ok(None);
                    }
                }
            }
        }
    }

    fn header_ok(&self, b: &[u8]) -> Result<FrameHeader, ErrorKind> {
        let arr = b
            .first_chunk::<HEADER_LEN>()
            .ok_or(ErrorKind::BadHeader("truncated header"))?;
        let h = FrameHeader::parse(arr, self.cfg.max_frame_len)?;
        if h.direction != self.dir {
            return Err(ErrorKind::BadHeader(
                "direction bit does not match the stream",
            ));
        }
        Ok(h)
    }

    fn next_legacy(&mut self) -> Result<Option<Frame>, CqlError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let h = match self.header_ok(&self.buf) {
            Ok(h) => h,
            Err(kind) => {
                self.synced = false;
                return Err(self.err(self.base, kind));
            }
        };
        let total = HEADER_LEN + h.length as usize;
        if self.buf.len() < total {
            return Ok(None);
        }
        let offset = self.base;
        self.base += total as u64;
        self.version = Some(h.version);
        self.framing = match self.framing {
            Framing::Unknown => Framing::Legacy,
            f => f,
        };
        let compressed = h.has_flag(flags::COMPRESSION);
        let body = if compressed {
            // Decompressed straight from the buffer: the compressed bytes are not kept,
            // so they need not be split off into a shared `Bytes`.
            let r = decompress(
                self.compression,
                &self.buf[HEADER_LEN..total],
                self.cfg.max_frame_len,
            );
            self.buf.advance(total);
            match r {
                Ok((b, algo)) => {
                    if self.compression.is_none() {
                        self.compression = Some(algo);
                    }
                    Bytes::from(b)
                }
                Err(kind) => return Err(self.err(offset, kind)),
            }
        } else {
            self.buf.split_to(total).freeze().slice(HEADER_LEN..)
        };
        Ok(Some(Frame {
            header: h,
            body,
            offset,
            compressed,
            segmented: false,
        }))
    }

    /// Consumes one segment if complete; `Ok(false)` = need more bytes.
    fn next_segment(&mut self) -> Result<bool, CqlError> {
        let lz4 = self.lz4_segments.unwrap_or(false);
        let h = match SegmentHeader::parse(&self.buf, lz4) {
            Ok(None) => return Ok(false),
            Ok(Some(h)) => h,
            Err(kind) => {
                self.synced = false;
                self.large = None;
                return Err(self.err(self.base, kind));
            }
        };
        let total = h.total_len();
        if self.buf.len() < total {
            return Ok(false);
        }
        let offset = self.base;
        let seg = self.buf.split_to(total).freeze();
        self.base += total as u64;
        match segment_payload(&h, &seg) {
            Ok(p) => self.absorb(&h, p, offset),
            Err(kind) => {
                // The header checked out, so the boundary is right: only this
                // segment (and any envelope it belonged to) is lost.
                self.large = None;
                self.errors.push_back(self.err(offset, kind));
            }
        }
        Ok(true)
    }

    /// Turns a verified segment payload into envelopes.
    fn absorb(&mut self, h: &SegmentHeader, payload: Bytes, offset: u64) {
        let compressed = h.lz4 && h.uncompressed_len > 0;
        if h.self_contained {
            if self.large.take().is_some() {
                self.errors.push_back(self.err(
                    offset,
                    ErrorKind::SegmentSequence("large envelope interrupted"),
                ));
            }
            let mut p = 0usize;
            while p < payload.len() {
                let hdr = match self.header_ok(payload.get(p..).unwrap_or_default()) {
                    Ok(hdr) => hdr,
                    Err(kind) => {
                        self.errors.push_back(self.err(offset, kind));
                        return;
                    }
                };
                let end = p + HEADER_LEN + hdr.length as usize;
                if end > payload.len() {
                    self.errors.push_back(self.err(
                        offset,
                        ErrorKind::SegmentSequence("envelope overruns its self-contained segment"),
                    ));
                    return;
                }
                self.version = Some(hdr.version);
                self.ready.push_back(Frame {
                    header: hdr,
                    body: payload.slice(p + HEADER_LEN..end),
                    offset,
                    compressed,
                    segmented: true,
                });
                p = end;
            }
            return;
        }
        match self.large.as_mut() {
            Some(l) => l.data.extend_from_slice(&payload),
            None => match self.header_ok(&payload) {
                Ok(hdr) if HEADER_LEN + hdr.length as usize >= payload.len() => {
                    self.large = Some(Large {
                        data: payload.to_vec(),
                        needed: HEADER_LEN + hdr.length as usize,
                        offset,
                        compressed,
                    });
                }
                _ => {
                    // The middle of an envelope whose start we did not see.
                    self.errors.push_back(self.err(
                        offset,
                        ErrorKind::Skipped {
                            len: h.total_len() as u64,
                        },
                    ));
                    return;
                }
            },
        }
        let done = self
            .large
            .as_ref()
            .is_some_and(|l| l.data.len() >= l.needed);
        if let Some(l) = self.large.take_if(|_| done) {
            if l.data.len() > l.needed {
                self.errors.push_back(self.err(
                    l.offset,
                    ErrorKind::SegmentSequence("bytes after a multi-segment envelope"),
                ));
                return;
            }
            let data = Bytes::from(l.data);
            match self.header_ok(&data) {
                Ok(hdr) => {
                    self.version = Some(hdr.version);
                    self.ready.push_back(Frame {
                        header: hdr,
                        body: data.slice(HEADER_LEN..),
                        offset: l.offset,
                        compressed: l.compressed || compressed,
                        segmented: true,
                    });
                }
                Err(kind) => self.errors.push_back(self.err(l.offset, kind)),
            }
        }
    }

    /// What a position looks like under the current framing knowledge; for a
    /// confirmed segment also which header form matched.
    fn verdict(&self, b: &[u8]) -> (Verdict, Option<Option<bool>>) {
        let max = self.cfg.max_frame_len;
        let seg_forms: &[bool] = match (self.framing, self.lz4_segments) {
            (Framing::Legacy, _) => &[],
            (_, Some(true)) => &[true],
            (_, Some(false)) => &[false],
            (_, None) => &[false, true],
        };
        let mut best = Verdict::No;
        for lz4 in seg_forms {
            match segment_at(b, *lz4) {
                Verdict::Yes => return (Verdict::Yes, Some(Some(*lz4))),
                Verdict::Maybe => best = Verdict::Maybe,
                Verdict::No => {}
            }
        }
        if self.framing != Framing::Segments {
            match legacy_at(b, self.dir, self.version, max) {
                Verdict::Yes => return (Verdict::Yes, Some(None)),
                Verdict::Maybe => best = Verdict::Maybe,
                Verdict::No => {}
            }
        }
        (best, None)
    }

    /// Looks for a frame boundary; drops the bytes before it (reporting them). Returns
    /// true once synchronized.
    fn resync(&mut self) -> bool {
        let mut waiting: Option<usize> = None;
        // Position and, for a segment, its header form (`Some(lz4)`).
        let mut found: Option<(usize, Option<bool>)> = None;
        let len = self.buf.len();
        let mut p = 0;
        while p < len {
            if let Some(w) = waiting {
                if p > w + LOOKAHEAD {
                    break;
                }
            }
            let (v, form) = self.verdict(self.buf.get(p..).unwrap_or_default());
            match v {
                Verdict::Yes => {
                    found = Some((p, form.flatten()));
                    break;
                }
                Verdict::Maybe if waiting.is_none() && len - p <= self.cfg.resync_window => {
                    waiting = Some(p);
                }
                _ => {}
            }
            p += 1;
        }
        let (cut, synced) = match (found, waiting) {
            (Some((q, form)), _) => {
                let is_segment = form.is_some();
                if is_segment {
                    self.framing = Framing::Segments;
                    self.lz4_segments = form;
                } else if self.framing == Framing::Unknown {
                    self.framing = Framing::Legacy;
                }
                (q, true)
            }
            (None, Some(w)) => (w, false),
            (None, None) => (len, false),
        };
        if cut > 0 {
            let offset = self.base;
            let _ = self.buf.split_to(cut);
            self.base += cut as u64;
            self.errors
                .push_back(self.err(offset, ErrorKind::Skipped { len: cut as u64 }));
        }
        self.synced = synced;
        synced
    }
}

/// Verifies the payload CRC and returns the (decompressed) payload, sharing the
/// segment's buffer when it was not compressed.
fn segment_payload(h: &SegmentHeader, seg: &Bytes) -> Result<Bytes, ErrorKind> {
    let start = h.header_len();
    let end = start + h.payload_len;
    if seg.len() < end + TRAILER_LEN {
        return Err(ErrorKind::SegmentSequence(
            "segment shorter than its header says",
        ));
    }
    if h.lz4 && h.uncompressed_len > 0 {
        return h.payload(seg).map(Bytes::from);
    }
    let trailer = seg
        .get(end..end + TRAILER_LEN)
        .and_then(|t| t.first_chunk::<4>())
        .copied()
        .unwrap_or_default();
    if super::crc::crc32(&seg[start..end]) != u32::from_le_bytes(trailer) {
        return Err(ErrorKind::SegmentPayloadCrc);
    }
    Ok(seg.slice(start..end))
}
