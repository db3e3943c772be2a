//! MongoDB stream rewriting.
//!
//! Client side: each request's header is read; a small OP_MSG/OP_QUERY/
//! OP_COMPRESSED request is read whole to tell whether it is `hello`/`isMaster`,
//! and if so its request id is remembered. Server side: a reply whose `responseTo`
//! is a remembered id is held whole and rewritten (an exhaust reply with
//! moreToCome passes the watch on to the next reply, which answers it); every other
//! message streams through as it arrives, decided from its 16-byte header.

use std::collections::VecDeque;

use bytes::Bytes;

use super::mongo_hello::{self, OP_COMPRESSED, OP_MSG, OP_QUERY, OP_REPLY};
use super::{Ctx, HOLD_MAX};

const HEADER: usize = 16;
/// Client requests at most this large are read to see whether they are a hello.
const REQUEST_MAX: usize = 1 << 20;
/// Handshake ids remembered at most (oldest forgotten first).
const PENDING_MAX: usize = 256;
const MESSAGE_MAX: usize = 48_000_000;

#[derive(Default)]
enum Side {
    #[default]
    Header,
    /// Reading (client) or holding (server) a whole message of this length.
    Whole(usize),
    Skip(usize),
    Off,
}

#[derive(Default)]
pub struct MongoRewriter {
    client: Side,
    cbuf: Vec<u8>,
    server: Side,
    sbuf: Vec<u8>,
    /// Request ids of handshakes whose reply has not come.
    pending: VecDeque<i32>,
}

fn header(b: &[u8]) -> Option<(usize, i32, i32, i32)> {
    let f = |i: usize| i32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    if b.len() < HEADER {
        return None;
    }
    let len = usize::try_from(f(0))
        .ok()
        .filter(|l| (HEADER..=MESSAGE_MAX).contains(l))?;
    Some((len, f(4), f(8), f(12)))
}

impl MongoRewriter {
    fn remember(&mut self, id: i32) {
        if self.pending.len() >= PENDING_MAX {
            self.pending.pop_front();
        }
        self.pending.push_back(id);
    }

    pub fn client(&mut self, mut bytes: &[u8], ctx: &Ctx) {
        for _ in 0..=bytes.len() * 2 + 2 {
            if bytes.is_empty() {
                return;
            }
            match self.client {
                Side::Off => return,
                Side::Skip(left) => {
                    let n = left.min(bytes.len());
                    bytes = &bytes[n..];
                    self.client = if n == left {
                        Side::Header
                    } else {
                        Side::Skip(left - n)
                    };
                }
                Side::Header => {
                    let n = (HEADER - self.cbuf.len()).min(bytes.len());
                    self.cbuf.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    if self.cbuf.len() < HEADER {
                        continue;
                    }
                    match header(&self.cbuf) {
                        None => {
                            ctx.stats.error("mongo", &"client message header");
                            self.cbuf = Vec::new();
                            self.client = Side::Off;
                            return;
                        }
                        Some((len, ..)) if len == HEADER => {
                            self.cbuf.clear();
                            self.client = Side::Header;
                        }
                        Some((len, _, _, op))
                            if matches!(op, OP_MSG | OP_QUERY | OP_COMPRESSED)
                                && len <= REQUEST_MAX =>
                        {
                            self.client = Side::Whole(len);
                        }
                        Some((len, ..)) => {
                            self.cbuf.clear();
                            self.client = Side::Skip(len - HEADER);
                        }
                    }
                }
                Side::Whole(len) => {
                    let n = (len - self.cbuf.len()).min(bytes.len());
                    self.cbuf.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    if self.cbuf.len() == len {
                        let msg = std::mem::take(&mut self.cbuf);
                        if mongo_hello::is_hello_request(&msg) {
                            if let Some((_, id, _, _)) = header(&msg) {
                                self.remember(id);
                            }
                        }
                        self.client = Side::Header;
                    }
                }
            }
        }
    }

    pub fn server(&mut self, data: Bytes, out: &mut Vec<Bytes>, ctx: &Ctx) {
        let pos = self.server_steps(&data, out, ctx);
        if pos < data.len() {
            // Unreachable by construction (every step consumes a byte); should it
            // happen, nothing is dropped: the rest passes and rewriting stops here.
            ctx.stats.error("rewrite", &"no progress");
            self.server_off(out);
            out.push(data.slice(pos..));
        }
    }

    /// Runs the state machine over `data`; returns how much of it was taken.
    fn server_steps(&mut self, data: &Bytes, out: &mut Vec<Bytes>, ctx: &Ctx) -> usize {
        let mut pos = 0;
        for _ in 0..=data.len() * 2 + 2 {
            if pos >= data.len() {
                return pos;
            }
            let rest = &data[pos..];
            match self.server {
                Side::Off => {
                    out.push(data.slice(pos..));
                    return data.len();
                }
                Side::Skip(left) => {
                    let n = left.min(rest.len());
                    out.push(data.slice(pos..pos + n));
                    pos += n;
                    self.server = if n == left {
                        Side::Header
                    } else {
                        Side::Skip(left - n)
                    };
                }
                Side::Header => {
                    let n = (HEADER - self.sbuf.len()).min(rest.len());
                    self.sbuf.extend_from_slice(&rest[..n]);
                    pos += n;
                    if self.sbuf.len() < HEADER {
                        continue;
                    }
                    let Some((len, _, response_to, op)) = header(&self.sbuf) else {
                        ctx.stats.error("mongo", &"server message header");
                        out.push(std::mem::take(&mut self.sbuf).into());
                        self.server = Side::Off;
                        continue;
                    };
                    let awaited = self.pending.iter().position(|&id| id == response_to);
                    if let Some(i) = awaited.filter(|_| {
                        matches!(op, OP_MSG | OP_REPLY | OP_COMPRESSED) && len <= HOLD_MAX
                    }) {
                        self.pending.remove(i);
                        self.server = Side::Whole(len);
                        if len == HEADER {
                            out.push(std::mem::take(&mut self.sbuf).into());
                            self.server = Side::Header;
                        }
                        continue;
                    }
                    out.push(std::mem::take(&mut self.sbuf).into());
                    self.server = if len == HEADER {
                        Side::Header
                    } else {
                        Side::Skip(len - HEADER)
                    };
                }
                Side::Whole(len) => {
                    let n = (len - self.sbuf.len()).min(rest.len());
                    self.sbuf.extend_from_slice(&rest[..n]);
                    pos += n;
                    if self.sbuf.len() == len {
                        let msg = std::mem::take(&mut self.sbuf);
                        self.server = Side::Header;
                        match mongo_hello::rewrite_reply(&msg, &ctx.map) {
                            Ok(r) => {
                                if r.more_to_come {
                                    if let Some((_, id, _, _)) = header(&msg) {
                                        self.remember(id);
                                    }
                                }
                                match r.bytes {
                                    Some(new) => {
                                        ctx.stats.rewrote();
                                        out.push(new.into());
                                    }
                                    None => out.push(msg.into()),
                                }
                            }
                            Err(e) => {
                                ctx.stats.error("mongo", &format_args!("hello reply: {e}"));
                                out.push(msg.into());
                            }
                        }
                    }
                }
            }
        }
        pos
    }

    fn server_off(&mut self, out: &mut Vec<Bytes>) {
        self.server_end(out);
        self.server = Side::Off;
    }

    pub fn server_end(&mut self, out: &mut Vec<Bytes>) {
        if !self.sbuf.is_empty() {
            out.push(std::mem::take(&mut self.sbuf).into());
        }
    }
}
