//! Incremental, sans-IO framing for one direction of a connection.
//!
//! Bytes go in with [`Decoder::feed`] in any split; whole messages come out
//! of [`Decoder::next`]. The decoder only buffers bytes it has received (a
//! lying length never causes a large allocation by itself), skips unknown
//! opcodes by their length without buffering them, and after a capture gap
//! or a start in mid-stream scans for a plausible header, emitting nothing
//! until a candidate decodes completely.

use bytes::{Buf, BytesMut};

use crate::error::{ErrorKind, MongoError};
use crate::limits::Limits;
use crate::message::{Message, OpCode, HEADER_LEN};
use crate::resync::{probe, Probe};
use crate::wire::decode::decode_message;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The next buffered byte is a message start.
    Synced,
    /// Boundary unknown: scanning for a plausible header.
    Resync,
}

/// Per-direction message decoder.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    /// Stream offset of `buf[0]`.
    base: u64,
    limits: Limits,
    mode: Mode,
    /// Bytes of a skipped (unknown-opcode) message still to drop on arrival.
    discard: u64,
    skipped: u64,
    /// The stream has ended ([`Decoder::finish`]): no byte will come after the
    /// buffer, so a resync candidate that needs more bytes is a false one.
    ended: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(Limits::default())
    }
}

impl Decoder {
    /// A decoder that expects a message boundary at the first byte.
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            buf: BytesMut::new(),
            base: 0,
            limits,
            mode: Mode::Synced,
            discard: 0,
            skipped: 0,
            ended: false,
        }
    }

    /// A decoder for a stream joined in the middle: it scans for a header first.
    pub fn mid_stream(limits: Limits) -> Decoder {
        let mut d = Decoder::new(limits);
        d.mode = Mode::Resync;
        d
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Appends received bytes.
    pub fn feed(&mut self, mut data: &[u8]) {
        if self.discard > 0 {
            let n = (self.discard as usize).min(data.len());
            self.discard -= n as u64;
            self.base += n as u64;
            self.skipped += n as u64;
            data = &data[n..];
        }
        self.buf.extend_from_slice(data);
    }

    /// Says the stream has ended. While resynchronising, a candidate header
    /// that claims more bytes than arrived can then only be a false one, so the
    /// scan moves past it and any complete message behind it is still found by
    /// the following [`Decoder::next`] calls (a false candidate can otherwise hide
    /// the rest of a flow that was joined mid-stream or lost bytes to a gap).
    pub fn finish(&mut self) {
        self.ended = true;
    }

    /// Records that `len` bytes were lost (capture gap). Buffered partial
    /// data is dropped and the decoder resynchronises, unless the gap falls
    /// entirely inside a message being skipped anyway.
    pub fn gap(&mut self, len: u64) {
        if self.buf.is_empty() && self.discard >= len {
            self.discard -= len;
            self.base += len;
            self.skipped += len;
            return;
        }
        let lost = self.buf.len() as u64 + self.discard;
        self.skipped += lost;
        self.base += lost + len;
        self.buf.clear();
        self.discard = 0;
        self.mode = Mode::Resync;
    }

    /// Stream offset of the next byte to be fed.
    pub fn stream_offset(&self) -> u64 {
        self.base + self.buf.len() as u64 + self.discard
    }

    /// Bytes buffered but not yet part of an emitted message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes dropped so far (resync scanning, skipped messages, gaps' partial data).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// True while scanning for a message boundary.
    pub fn is_resyncing(&self) -> bool {
        self.mode == Mode::Resync
    }

    fn drop_front(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.advance(n);
        self.base += n as u64;
        self.skipped += n as u64;
    }

    /// The next message, `Ok(None)` when more bytes are needed, or an error
    /// value (decoding continues on the next call).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Message>, MongoError> {
        match self.mode {
            Mode::Synced => self.next_synced(),
            Mode::Resync => Ok(self.next_resync()),
        }
    }

    fn next_synced(&mut self) -> Result<Option<Message>, MongoError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = i32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        if len < HEADER_LEN as i32 || len as u64 > self.limits.max_message as u64 {
            let offset = self.base;
            self.mode = Mode::Resync;
            self.drop_front(1);
            return Err(MongoError::at(
                offset,
                ErrorKind::InvalidLength {
                    length: len as i64,
                    max: self.limits.max_message as u64,
                },
            ));
        }
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = len as usize;
        let opcode = i32::from_le_bytes([self.buf[12], self.buf[13], self.buf[14], self.buf[15]]);
        if OpCode::from_i32(opcode).is_none() {
            let request_id =
                i32::from_le_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]);
            let offset = self.base;
            let have = self.buf.len().min(len);
            self.drop_front(have);
            self.discard = (len - have) as u64;
            return Err(MongoError::at(
                offset,
                ErrorKind::UnknownOpcode {
                    opcode,
                    length: len as u32,
                },
            )
            .with_request_id(request_id));
        }
        if self.buf.len() < len {
            self.buf.reserve(len - self.buf.len());
            return Ok(None);
        }
        let offset = self.base;
        let bytes = self.buf.split_to(len).freeze();
        self.base += len as u64;
        decode_message(bytes, offset, &self.limits).map(Some)
    }

    fn next_resync(&mut self) -> Option<Message> {
        loop {
            let mut i = 0;
            let found = loop {
                if i >= self.buf.len() {
                    break None;
                }
                match probe(&self.buf[i..], &self.limits) {
                    Probe::No => i += 1,
                    Probe::NeedMore if self.ended => i += 1,
                    Probe::NeedMore => break None,
                    Probe::Yes(len) if self.ended && self.buf.len() - i < len => i += 1,
                    Probe::Yes(len) => break Some(len),
                }
            };
            self.drop_front(i);
            let len = found?;
            if self.buf.len() < len {
                return None;
            }
            // copy only the candidate: on failure the buffer must stay intact
            let bytes = bytes::Bytes::copy_from_slice(&self.buf[..len]);
            match decode_message(bytes, self.base, &self.limits) {
                Ok(msg) => {
                    self.buf.advance(len);
                    self.base += len as u64;
                    self.mode = Mode::Synced;
                    return Some(msg);
                }
                Err(_) => self.drop_front(1),
            }
        }
    }
}
