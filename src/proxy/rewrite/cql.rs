//! CQL stream rewriting (protocol v3–v5).
//!
//! Client side: only the STARTUP matters (compression for v3/v4 bodies and v5
//! segments, and whether the connection goes to v5 segment framing); after it the
//! client's bytes are not looked at.
//!
//! Server side, legacy framing (v3/v4, and v5 before the switch): each frame header
//! is read; RESULT and EVENT frames may carry addresses and are held until it is
//! known — from the body's first bytes when it travels uncompressed (a Rows result
//! of another table streams on as soon as its metadata says so), from the whole body
//! when compressed. Every other frame streams through as it arrives. After a v5
//! READY or AUTHENTICATE, the server speaks segments: each segment is held until
//! complete (its CRC covers it whole, at most 128 KiB); a self-contained segment's
//! envelopes are rewritten and re-segmented if any changed; a large envelope spread
//! over several segments is held only if its first segment says it may change.

use bytes::Bytes;
use tidemark_cql::frame::segment::{self, SegmentHeader};
use tidemark_cql::frame::{
    decompress, encode_frame, flags, Compression, FrameHeader, Opcode, HEADER_LEN, MAX_FRAME_LEN,
};
use tidemark_cql::message::Envelope;

use super::{cql_rows, Ctx, HOLD_MAX};

/// How much of an uncompressed RESULT body is read at most to decide whether it is
/// a topology table's rows.
const PREFIX_MAX: usize = 64 * 1024;

/// Client frames at most this large are read for their STARTUP.
const STARTUP_MAX: usize = 64 * 1024;

#[derive(Default)]
enum ClientState {
    #[default]
    Header,
    Skip(usize),
    Startup(usize),
    /// STARTUP seen (or the stream could not be followed): nothing more to learn.
    Done,
}

#[derive(Default)]
struct Client {
    state: ClientState,
    buf: Vec<u8>,
}

enum Multi {
    None,
    /// A multi-segment envelope that cannot change: this many payload bytes left.
    Pass(usize),
    /// One that may: its segments as they came, its payload, its total length.
    Hold {
        raw: Vec<u8>,
        payload: Vec<u8>,
        need: usize,
    },
}

#[derive(Default)]
enum ServerState {
    /// Reading a legacy frame header (held in `buf`).
    #[default]
    Header,
    /// Passing `left` body bytes; then segments if the frame switched to v5.
    Stream { left: usize, then_segments: bool },
    /// Holding a RESULT/EVENT frame (header and body so far in `buf`).
    Body { hdr: FrameHeader, decided: bool },
    /// v5 segments (the segment so far in `buf`).
    Segments,
    /// Not followed any more: bytes pass as they come.
    Off,
}

/// One CQL connection's rewriter.
pub struct CqlRewriter {
    client: Client,
    server: ServerState,
    buf: Vec<u8>,
    multi: Multi,
    /// From the client's STARTUP.
    compression: Option<Compression>,
}

impl Default for CqlRewriter {
    fn default() -> Self {
        CqlRewriter {
            client: Client::default(),
            server: ServerState::Header,
            buf: Vec::new(),
            multi: Multi::None,
            compression: None,
        }
    }
}

enum Decision {
    Yes,
    No,
    NeedMore,
}

/// Whether a RESULT/EVENT body (prefix) may be a topology table's rows or an event
/// naming a node.
fn decide(hdr: &FrameHeader, body: &[u8]) -> Decision {
    if hdr.opcode == Opcode::Event {
        return Decision::Yes;
    }
    if hdr.opcode != Opcode::Result {
        return Decision::No;
    }
    if hdr.flags & (flags::TRACING | flags::WARNING | flags::CUSTOM_PAYLOAD) != 0 {
        // Prefixes before the result: not worth parsing here; the frame is held.
        return Decision::Yes;
    }
    let mut c = Cursor { b: body, pos: 0 };
    let r = (|| {
        if c.i32()? != 2 {
            return Some(Decision::No);
        }
        let mflags = c.i32()? as u32;
        c.i32()?;
        if mflags & 0x02 != 0 {
            let n = c.i32()?;
            if n > 0 {
                c.skip(n as usize)?;
            }
        }
        if mflags & 0x08 != 0 {
            let n = c.u16()?;
            c.skip(n as usize)?;
        }
        if mflags & 0x04 != 0 {
            // No metadata: which table is unknown; drivers read topology tables with
            // plain queries, which always carry metadata.
            return Some(Decision::No);
        }
        let ks = c.string()?;
        let table = c.string()?;
        Some(
            if ks == b"system" && matches!(table, b"local" | b"peers" | b"peers_v2") {
                Decision::Yes
            } else {
                Decision::No
            },
        )
    })();
    r.unwrap_or(Decision::NeedMore)
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(n as usize)
    }
}

/// Rewrites one whole frame (header + wire body); `None` when nothing changed or it
/// could not be rewritten exactly.
fn rewrite_frame(
    hdr: &FrameHeader,
    wire_body: &[u8],
    compression: Option<Compression>,
    ctx: &Ctx,
) -> Option<Vec<u8>> {
    let compressed = hdr.has_flag(flags::COMPRESSION) && hdr.version < 5;
    let (body, algo) = if compressed {
        match decompress(compression, wire_body, MAX_FRAME_LEN) {
            Ok((b, a)) => (b, a),
            Err(e) => {
                ctx.stats.error("cql", &format_args!("decompress: {e}"));
                return None;
            }
        }
    } else {
        (wire_body.to_vec(), Compression::None)
    };
    // A compressed body could only be told apart once decompressed: most results are
    // not a topology table's and need no decoding.
    if compressed && matches!(decide(hdr, &body), Decision::No) {
        return None;
    }
    let (mut env, used) = match Envelope::decode_counted(hdr, Bytes::from(body.clone())) {
        Ok(x) => x,
        Err(e) => {
            ctx.stats
                .error("cql", &format_args!("{} body: {e}", hdr.opcode.name()));
            return None;
        }
    };
    // Re-encoding must reproduce the body exactly, or the rewrite would change more
    // than the addresses: then the frame passes as it came.
    let extra = hdr.flags & flags::USE_BETA;
    let (same, _) = env.encode_body(hdr.version, extra);
    if used != body.len() || same != body {
        ctx.stats.error(
            "cql",
            &format_args!("{} body does not re-encode to itself", hdr.opcode.name()),
        );
        return None;
    }
    if cql_rows::rewrite_message(&mut env.message, &ctx.map) == 0 {
        return None;
    }
    ctx.stats.rewrote();
    Some(encode_frame(hdr.version, hdr.stream, &env, algo, extra))
}

impl CqlRewriter {
    pub fn client(&mut self, mut bytes: &[u8], ctx: &Ctx) {
        let c = &mut self.client;
        // Each pass consumes bytes or ends; bounded by the input length.
        for _ in 0..=bytes.len() * 2 + 2 {
            if bytes.is_empty() {
                return;
            }
            match c.state {
                ClientState::Done => return,
                ClientState::Skip(left) => {
                    let n = left.min(bytes.len());
                    bytes = &bytes[n..];
                    c.state = if left == n {
                        ClientState::Header
                    } else {
                        ClientState::Skip(left - n)
                    };
                }
                ClientState::Header => {
                    let n = (HEADER_LEN - c.buf.len()).min(bytes.len());
                    c.buf.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    let Some(h) = c.buf.first_chunk::<HEADER_LEN>() else {
                        continue;
                    };
                    match FrameHeader::parse(h, MAX_FRAME_LEN) {
                        Ok(h)
                            if h.opcode == Opcode::Startup
                                && (h.length as usize) <= STARTUP_MAX =>
                        {
                            c.state = ClientState::Startup(h.length as usize);
                        }
                        Ok(h) => {
                            c.buf.clear();
                            c.state = ClientState::Skip(h.length as usize);
                            if h.length == 0 {
                                c.state = ClientState::Header;
                            }
                        }
                        Err(e) => {
                            ctx.stats
                                .error("cql", &format_args!("client frame header: {e}"));
                            c.buf = Vec::new();
                            c.state = ClientState::Done;
                            return;
                        }
                    }
                    if let ClientState::Startup(0) = c.state {
                        self.startup_done(ctx);
                        return;
                    }
                }
                ClientState::Startup(len) => {
                    let n = (HEADER_LEN + len - c.buf.len()).min(bytes.len());
                    c.buf.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    if c.buf.len() == HEADER_LEN + len {
                        self.startup_done(ctx);
                        return;
                    }
                }
            }
        }
    }

    fn startup_done(&mut self, ctx: &Ctx) {
        let c = &mut self.client;
        let frame = std::mem::take(&mut c.buf);
        c.state = ClientState::Done;
        let Some(h) = frame.first_chunk::<HEADER_LEN>() else {
            return;
        };
        let Ok(h) = FrameHeader::parse(h, MAX_FRAME_LEN) else {
            return;
        };
        match Envelope::decode(&h, Bytes::copy_from_slice(&frame[HEADER_LEN..])) {
            Ok(Envelope {
                message: tidemark_cql::Message::Startup(s),
                ..
            }) => self.compression = Some(s.compression()),
            Ok(_) => {}
            Err(e) => ctx.stats.error("cql", &format_args!("STARTUP: {e}")),
        }
    }

    fn lz4_segments(&self) -> bool {
        self.compression == Some(Compression::Lz4)
    }

    /// Gives up on following the server: what is held goes out, then everything.
    fn off(&mut self, out: &mut Vec<Bytes>) {
        if let Multi::Hold { raw, .. } = std::mem::replace(&mut self.multi, Multi::None) {
            out.push(raw.into());
        }
        if !self.buf.is_empty() {
            out.push(std::mem::take(&mut self.buf).into());
        }
        self.server = ServerState::Off;
    }

    pub fn server(&mut self, data: Bytes, out: &mut Vec<Bytes>, ctx: &Ctx) {
        let pos = self.server_steps(&data, out, ctx);
        if pos < data.len() {
            // Unreachable by construction (every step consumes a byte); should it
            // happen, nothing is dropped: the rest passes and rewriting stops here.
            ctx.stats.error("rewrite", &"no progress");
            self.off(out);
            out.push(data.slice(pos..));
        }
    }

    /// Runs the state machine over `data`; returns how much of it was taken.
    fn server_steps(&mut self, data: &Bytes, out: &mut Vec<Bytes>, ctx: &Ctx) -> usize {
        let mut pos = 0;
        // Each pass consumes at least one byte or changes state once without consuming
        // (bounded by the passes that do).
        for _ in 0..=data.len() * 2 + 4 {
            if pos >= data.len() {
                return pos;
            }
            let rest = &data[pos..];
            match &mut self.server {
                ServerState::Off => {
                    out.push(data.slice(pos..));
                    return data.len();
                }
                ServerState::Stream {
                    left,
                    then_segments,
                } => {
                    let n = (*left).min(rest.len());
                    out.push(data.slice(pos..pos + n));
                    pos += n;
                    *left -= n;
                    if *left == 0 {
                        self.server = if *then_segments {
                            ServerState::Segments
                        } else {
                            ServerState::Header
                        };
                    }
                }
                ServerState::Header => {
                    let n = (HEADER_LEN - self.buf.len()).min(rest.len());
                    self.buf.extend_from_slice(&rest[..n]);
                    pos += n;
                    let Some(h) = self.buf.first_chunk::<HEADER_LEN>() else {
                        continue;
                    };
                    let h = match FrameHeader::parse(h, MAX_FRAME_LEN) {
                        Ok(h) => h,
                        Err(e) => {
                            ctx.stats
                                .error("cql", &format_args!("server frame header: {e}"));
                            self.off(out);
                            continue;
                        }
                    };
                    let len = h.length as usize;
                    if matches!(h.opcode, Opcode::Result | Opcode::Event) && len <= HOLD_MAX {
                        self.server = ServerState::Body {
                            hdr: h,
                            decided: h.has_flag(flags::COMPRESSION),
                        };
                        if len == 0 {
                            let frame = std::mem::take(&mut self.buf);
                            out.push(frame.into());
                            self.server = ServerState::Header;
                        }
                        continue;
                    }
                    out.push(std::mem::take(&mut self.buf).into());
                    let then_segments =
                        h.version >= 5 && matches!(h.opcode, Opcode::Ready | Opcode::Authenticate);
                    self.server = match (len, then_segments) {
                        (0, true) => ServerState::Segments,
                        (0, false) => ServerState::Header,
                        _ => ServerState::Stream {
                            left: len,
                            then_segments,
                        },
                    };
                }
                ServerState::Body { hdr, decided } => {
                    let hdr = *hdr;
                    let total = HEADER_LEN + hdr.length as usize;
                    let n = (total - self.buf.len()).min(rest.len());
                    self.buf.extend_from_slice(&rest[..n]);
                    pos += n;
                    if !*decided {
                        match decide(&hdr, &self.buf[HEADER_LEN..]) {
                            Decision::Yes => *decided = true,
                            Decision::NeedMore if self.buf.len() - HEADER_LEN < PREFIX_MAX => {}
                            Decision::NeedMore | Decision::No => {
                                let left = total - self.buf.len();
                                out.push(std::mem::take(&mut self.buf).into());
                                self.server = if left == 0 {
                                    ServerState::Header
                                } else {
                                    ServerState::Stream {
                                        left,
                                        then_segments: false,
                                    }
                                };
                                continue;
                            }
                        }
                    }
                    if self.buf.len() == total {
                        let frame = std::mem::take(&mut self.buf);
                        match rewrite_frame(&hdr, &frame[HEADER_LEN..], self.compression, ctx) {
                            Some(new) => out.push(new.into()),
                            None => out.push(frame.into()),
                        }
                        self.server = ServerState::Header;
                    }
                }
                ServerState::Segments => {
                    let lz4 = self.lz4_segments();
                    let hlen = if lz4 {
                        segment::HEADER_LEN_LZ4
                    } else {
                        segment::HEADER_LEN_PLAIN
                    };
                    if self.buf.len() < hlen {
                        let n = (hlen - self.buf.len()).min(rest.len());
                        self.buf.extend_from_slice(&rest[..n]);
                        pos += n;
                        continue;
                    }
                    let sh = match SegmentHeader::parse(&self.buf, lz4) {
                        Ok(Some(sh)) => sh,
                        Ok(None) => continue,
                        Err(e) => {
                            ctx.stats.error("cql", &format_args!("segment header: {e}"));
                            self.off(out);
                            continue;
                        }
                    };
                    let total = sh.total_len();
                    let n = (total - self.buf.len()).min(rest.len());
                    self.buf.extend_from_slice(&rest[..n]);
                    pos += n;
                    if self.buf.len() == total {
                        let seg = std::mem::take(&mut self.buf);
                        self.segment(sh, seg, out, ctx);
                    }
                }
            }
        }
        pos
    }

    /// One whole segment.
    fn segment(&mut self, sh: SegmentHeader, seg: Vec<u8>, out: &mut Vec<Bytes>, ctx: &Ctx) {
        let lz4 = sh.lz4;
        let payload = match sh.payload(&seg) {
            Ok(p) => p,
            Err(e) => {
                ctx.stats
                    .error("cql", &format_args!("segment payload: {e}"));
                out.push(seg.into());
                self.off(out);
                return;
            }
        };
        if sh.self_contained {
            if !matches!(self.multi, Multi::None) {
                ctx.stats
                    .error("cql", &"self-contained segment inside an envelope");
                self.out_multi(out);
            }
            match rewrite_envelopes(&payload, self.compression, ctx) {
                Some(envs) => out.push(segment::encode_envelopes(&envs, lz4).into()),
                None => out.push(seg.into()),
            }
            return;
        }
        match &mut self.multi {
            Multi::None => {
                let hdr = payload
                    .first_chunk::<HEADER_LEN>()
                    .and_then(|h| FrameHeader::parse(h, MAX_FRAME_LEN).ok());
                let Some(hdr) = hdr else {
                    ctx.stats.error("cql", &"envelope header in a segment");
                    out.push(seg.into());
                    self.off(out);
                    return;
                };
                let need = HEADER_LEN + hdr.length as usize;
                let hold = matches!(hdr.opcode, Opcode::Result | Opcode::Event)
                    && need <= HOLD_MAX
                    && !matches!(decide(&hdr, &payload[HEADER_LEN..]), Decision::No);
                if hold && payload.len() < need {
                    self.multi = Multi::Hold {
                        raw: seg,
                        payload,
                        need,
                    };
                } else {
                    out.push(seg.into());
                    if payload.len() < need {
                        self.multi = Multi::Pass(need - payload.len());
                    }
                }
            }
            Multi::Pass(left) => {
                out.push(seg.into());
                *left = left.saturating_sub(payload.len());
                if *left == 0 {
                    self.multi = Multi::None;
                }
            }
            Multi::Hold {
                raw,
                payload: p,
                need,
            } => {
                raw.extend_from_slice(&seg);
                p.extend_from_slice(&payload);
                if p.len() >= *need {
                    let Multi::Hold { raw, payload, need } =
                        std::mem::replace(&mut self.multi, Multi::None)
                    else {
                        return;
                    };
                    if payload.len() != need {
                        ctx.stats
                            .error("cql", &"segments longer than their envelope");
                        out.push(raw.into());
                        return;
                    }
                    match rewrite_envelopes(&payload, self.compression, ctx) {
                        Some(envs) => out.push(segment::encode_envelopes(&envs, lz4).into()),
                        None => out.push(raw.into()),
                    }
                }
            }
        }
    }

    fn out_multi(&mut self, out: &mut Vec<Bytes>) {
        if let Multi::Hold { raw, .. } = std::mem::replace(&mut self.multi, Multi::None) {
            out.push(raw.into());
        }
    }

    pub fn server_end(&mut self, out: &mut Vec<Bytes>) {
        self.out_multi(out);
        if !self.buf.is_empty() {
            out.push(std::mem::take(&mut self.buf).into());
        }
    }
}

/// The envelopes of a segment payload with any rewritten; `None` when none changed
/// (or the payload is not whole envelopes).
fn rewrite_envelopes(
    payload: &[u8],
    compression: Option<Compression>,
    ctx: &Ctx,
) -> Option<Vec<Vec<u8>>> {
    let mut envs: Vec<Vec<u8>> = Vec::new();
    let mut changed = false;
    let mut pos = 0;
    while pos < payload.len() {
        let hdr = payload[pos..]
            .first_chunk::<HEADER_LEN>()
            .and_then(|h| FrameHeader::parse(h, MAX_FRAME_LEN).ok());
        let Some(hdr) = hdr else {
            ctx.stats.error("cql", &"envelope header in a segment");
            return None;
        };
        let end = pos + HEADER_LEN + hdr.length as usize;
        let Some(env) = payload.get(pos..end) else {
            ctx.stats.error("cql", &"envelope longer than its segment");
            return None;
        };
        let new = if matches!(hdr.opcode, Opcode::Result | Opcode::Event)
            && !matches!(decide(&hdr, &env[HEADER_LEN..]), Decision::No)
        {
            rewrite_frame(&hdr, &env[HEADER_LEN..], compression, ctx)
        } else {
            None
        };
        changed |= new.is_some();
        envs.push(new.unwrap_or_else(|| env.to_vec()));
        pos = end;
    }
    changed.then_some(envs)
}
