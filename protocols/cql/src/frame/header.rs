//! The 9-byte frame header of protocol v3–v4 (an "envelope" header in v5): version
//! with direction bit, flags, stream, opcode, body length. The plausibility check here
//! is what the resynchronizing decoder uses to recognize a frame start in arbitrary
//! bytes, so it is strict: known version, direction bit matching the side, only defined
//! flags, an opcode that side may send, a length under the cap.

use crate::error::{Direction, ErrorKind};

/// Size of a frame (envelope) header.
pub const HEADER_LEN: usize = 9;

/// The spec's maximum body length (256 MB).
pub const MAX_FRAME_LEN: u32 = 256 * 1024 * 1024;

/// Header flags (spec section 2.2 / 2.4.1.2).
pub mod flags {
    /// Body compressed with the STARTUP-negotiated algorithm (v3/v4 only).
    pub const COMPRESSION: u8 = 0x01;
    /// Request: trace it. Response: the body starts with a tracing id.
    pub const TRACING: u8 = 0x02;
    /// A `[bytes map]` custom payload precedes the message.
    pub const CUSTOM_PAYLOAD: u8 = 0x04;
    /// Response: a `[string list]` of warnings precedes the message.
    pub const WARNING: u8 = 0x08;
    /// The client opts in to a beta protocol version.
    pub const USE_BETA: u8 = 0x10;
    /// All defined flags.
    pub const ALL: u8 = 0x1f;
}

/// Message opcodes (spec section 2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opcode {
    Error = 0x00,
    Startup = 0x01,
    Ready = 0x02,
    Authenticate = 0x03,
    Options = 0x05,
    Supported = 0x06,
    Query = 0x07,
    Result = 0x08,
    Prepare = 0x09,
    Execute = 0x0A,
    Register = 0x0B,
    Event = 0x0C,
    Batch = 0x0D,
    AuthChallenge = 0x0E,
    AuthResponse = 0x0F,
    AuthSuccess = 0x10,
}

impl Opcode {
    pub fn from_u8(b: u8) -> Option<Opcode> {
        use Opcode::*;
        Some(match b {
            0x00 => Error,
            0x01 => Startup,
            0x02 => Ready,
            0x03 => Authenticate,
            0x05 => Options,
            0x06 => Supported,
            0x07 => Query,
            0x08 => Result,
            0x09 => Prepare,
            0x0A => Execute,
            0x0B => Register,
            0x0C => Event,
            0x0D => Batch,
            0x0E => AuthChallenge,
            0x0F => AuthResponse,
            0x10 => AuthSuccess,
            _ => return None,
        })
    }

    /// The name as the spec spells it (`AUTH_RESPONSE`), used in JSON output.
    pub fn name(self) -> &'static str {
        use Opcode::*;
        match self {
            Error => "ERROR",
            Startup => "STARTUP",
            Ready => "READY",
            Authenticate => "AUTHENTICATE",
            Options => "OPTIONS",
            Supported => "SUPPORTED",
            Query => "QUERY",
            Result => "RESULT",
            Prepare => "PREPARE",
            Execute => "EXECUTE",
            Register => "REGISTER",
            Event => "EVENT",
            Batch => "BATCH",
            AuthChallenge => "AUTH_CHALLENGE",
            AuthResponse => "AUTH_RESPONSE",
            AuthSuccess => "AUTH_SUCCESS",
        }
    }

    /// Which side sends this opcode.
    pub fn direction(self) -> Direction {
        use Opcode::*;
        match self {
            Startup | Options | Query | Prepare | Execute | Register | Batch | AuthResponse => {
                Direction::ClientToServer
            }
            _ => Direction::ServerToClient,
        }
    }
}

/// A decoded frame (envelope) header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// Protocol version, 3 to 5 (without the direction bit).
    pub version: u8,
    pub direction: Direction,
    pub flags: u8,
    pub stream: i16,
    pub opcode: Opcode,
    /// Body length as on the wire (compressed length if the compression flag is set).
    pub length: u32,
}

impl FrameHeader {
    /// Parses and checks a header. `max_len` caps the body length.
    pub fn parse(b: &[u8; HEADER_LEN], max_len: u32) -> Result<FrameHeader, ErrorKind> {
        let version = b[0] & 0x7f;
        if !(3..=5).contains(&version) {
            return Err(ErrorKind::UnsupportedVersion(b[0]));
        }
        let direction = if b[0] & 0x80 != 0 {
            Direction::ServerToClient
        } else {
            Direction::ClientToServer
        };
        let flags = b[1];
        if flags & !flags::ALL != 0 {
            return Err(ErrorKind::BadHeader("undefined flag bits"));
        }
        let stream = i16::from_be_bytes([b[2], b[3]]);
        let opcode = Opcode::from_u8(b[4]).ok_or(ErrorKind::BadHeader("unknown opcode"))?;
        if opcode.direction() != direction {
            return Err(ErrorKind::BadHeader("opcode sent by the wrong side"));
        }
        if direction == Direction::ClientToServer && stream < 0 {
            return Err(ErrorKind::BadHeader("negative stream id in a request"));
        }
        let length = u32::from_be_bytes([b[5], b[6], b[7], b[8]]);
        if length > max_len {
            return Err(ErrorKind::FrameTooLarge {
                len: length.into(),
                limit: max_len.into(),
            });
        }
        Ok(FrameHeader {
            version,
            direction,
            flags,
            stream,
            opcode,
            length,
        })
    }

    /// The 9 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = self.version
            | if self.direction == Direction::ServerToClient {
                0x80
            } else {
                0
            };
        b[1] = self.flags;
        b[2..4].copy_from_slice(&self.stream.to_be_bytes());
        b[4] = self.opcode as u8;
        b[5..9].copy_from_slice(&self.length.to_be_bytes());
        b
    }

    pub fn has_flag(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}
