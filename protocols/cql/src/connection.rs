//! [`Connection`]: one TCP flow, both directions. Feed `(direction, bytes)` and gap
//! notices; pull `(direction, frame, message)` items. It carries what one direction
//! teaches the other: the protocol version and compression from the client's STARTUP,
//! and the v5 switch to segment framing (the client's frames after its STARTUP, the
//! server's after its READY or AUTHENTICATE answer, spec v5 section 2.3.1). The body of
//! an AUTH_RESPONSE frame (credentials) is dropped: items never carry it.

use crate::error::{CqlError, Direction};
use crate::frame::{Compression, DecoderConfig, Frame, FrameDecoder, Framing};
use crate::message::{Envelope, Message};

/// A decoded message with its frame and direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub dir: Direction,
    pub frame: Frame,
    pub envelope: Envelope,
}

impl Item {
    pub fn message(&self) -> &Message {
        &self.envelope.message
    }
}

/// Both directions of a CQL connection.
pub struct Connection {
    c2s: FrameDecoder,
    s2c: FrameDecoder,
    version: Option<u8>,
    compression: Option<Compression>,
}

impl Default for Connection {
    fn default() -> Self {
        Self::new()
    }
}

impl Connection {
    /// A connection observed from its first byte.
    pub fn new() -> Self {
        Self::with_config(DecoderConfig::default(), false)
    }

    /// A connection picked up mid-stream (e.g. a capture started after the handshake):
    /// both directions first look for a frame boundary, and compression is detected.
    pub fn mid_stream() -> Self {
        Self::with_config(DecoderConfig::default(), true)
    }

    pub fn with_config(cfg: DecoderConfig, mid_stream: bool) -> Self {
        let make = |d| {
            if mid_stream {
                FrameDecoder::mid_stream(d, cfg)
            } else {
                FrameDecoder::with_config(d, cfg)
            }
        };
        Connection {
            c2s: make(Direction::ClientToServer),
            s2c: make(Direction::ServerToClient),
            version: None,
            compression: None,
        }
    }

    /// Protocol version, from the first frame seen.
    pub fn version(&self) -> Option<u8> {
        self.version
    }

    /// Negotiated (or detected) compression.
    pub fn compression(&self) -> Option<Compression> {
        self.compression
            .or(self.c2s.compression())
            .or(self.s2c.compression())
    }

    /// The framing each direction is using.
    pub fn framing(&self, dir: Direction) -> Framing {
        self.decoder(dir).framing()
    }

    /// For a caller that knows the compression from elsewhere (another capture of the
    /// handshake).
    pub fn set_compression(&mut self, c: Compression) {
        self.compression = Some(c);
        self.c2s.set_compression(c);
        self.s2c.set_compression(c);
    }

    fn decoder(&self, dir: Direction) -> &FrameDecoder {
        match dir {
            Direction::ClientToServer => &self.c2s,
            Direction::ServerToClient => &self.s2c,
        }
    }

    fn decoder_mut(&mut self, dir: Direction) -> &mut FrameDecoder {
        match dir {
            Direction::ClientToServer => &mut self.c2s,
            Direction::ServerToClient => &mut self.s2c,
        }
    }

    /// Appends bytes received in `dir`.
    pub fn feed(&mut self, dir: Direction, bytes: &[u8]) {
        self.decoder_mut(dir).feed(bytes);
    }

    /// Notes `len` bytes missing in `dir`.
    pub fn gap(&mut self, dir: Direction, len: u64) {
        self.decoder_mut(dir).gap(len);
    }

    /// The next item: client-to-server first (requests precede their responses, and
    /// the client's STARTUP configures both directions). `None` when both need more
    /// bytes.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<Item, CqlError>> {
        self.next_in(Direction::ClientToServer)
            .or_else(|| self.next_in(Direction::ServerToClient))
    }

    /// The next item from one direction only.
    pub fn next_in(&mut self, dir: Direction) -> Option<Result<Item, CqlError>> {
        let frame = match self.decoder_mut(dir).next() {
            Ok(Some(f)) => f,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        if self.version.is_none() {
            self.version = Some(frame.header.version);
        }
        match frame.envelope() {
            Ok(envelope) => {
                let mut frame = frame;
                if frame.header.opcode == crate::frame::Opcode::AuthResponse {
                    // The body is the SASL token (credentials): not kept anywhere.
                    frame.body = bytes::Bytes::new();
                }
                self.observe(dir, &frame, &envelope.message);
                Some(Ok(Item {
                    dir,
                    frame,
                    envelope,
                }))
            }
            Err(e) => Some(Err(e)),
        }
    }

    /// Applies what a message teaches about the connection.
    fn observe(&mut self, dir: Direction, frame: &Frame, msg: &Message) {
        let v5 = frame.header.version >= 5 && !frame.segmented;
        match (dir, msg) {
            (Direction::ClientToServer, Message::Startup(s)) if !frame.segmented => {
                self.version = Some(frame.header.version);
                let c = s.compression();
                self.set_compression(c);
                if v5 {
                    self.c2s.expect_segments();
                }
            }
            (Direction::ServerToClient, Message::Ready | Message::Authenticate { .. }) if v5 => {
                self.s2c.expect_segments();
                if self.c2s.framing() == Framing::Legacy {
                    self.c2s.expect_segments();
                }
            }
            _ => {}
        }
    }
}
