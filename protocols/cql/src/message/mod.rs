//! Messages: every request and response body of protocol v3–v5, decoded from a frame
//! (envelope) body and encoded back. [`Envelope`] adds the optional prefixes the header
//! flags announce (tracing id, warnings, custom payload).

mod error;
mod event;
mod params;
mod request;
mod result;

pub use error::{code as error_code, ErrorBody, ErrorDetails, Failures};
pub use event::{Event, SchemaChange, SchemaTarget};
pub use params::{QueryParameters, QueryValues};
pub use request::{
    AuthResponse, Batch, BatchQuery, BatchStatement, BatchType, Execute, Prepare, Query, Register,
    Startup,
};
pub use result::{ColumnSpec, Prepared, PreparedMetadata, ResultBody, RowIter, Rows, RowsMetadata};

use crate::error::{Direction, ParseError};
use crate::frame::{flags, FrameHeader, Opcode};
use crate::text::Text;
use crate::wire::{Reader, Writer};
use bytes::Bytes;

/// A CQL message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Startup(Startup),
    AuthResponse(AuthResponse),
    Options,
    Query(Query),
    Prepare(Prepare),
    Execute(Execute),
    Batch(Batch),
    Register(Register),
    Error(ErrorBody),
    Ready,
    Authenticate { authenticator: Text },
    Supported { options: Vec<(Text, Vec<Text>)> },
    Result(ResultBody),
    Event(Event),
    AuthChallenge { token: Option<Bytes> },
    AuthSuccess { token: Option<Bytes> },
}

impl Message {
    pub fn opcode(&self) -> Opcode {
        match self {
            Message::Startup(_) => Opcode::Startup,
            Message::AuthResponse(_) => Opcode::AuthResponse,
            Message::Options => Opcode::Options,
            Message::Query(_) => Opcode::Query,
            Message::Prepare(_) => Opcode::Prepare,
            Message::Execute(_) => Opcode::Execute,
            Message::Batch(_) => Opcode::Batch,
            Message::Register(_) => Opcode::Register,
            Message::Error(_) => Opcode::Error,
            Message::Ready => Opcode::Ready,
            Message::Authenticate { .. } => Opcode::Authenticate,
            Message::Supported { .. } => Opcode::Supported,
            Message::Result(_) => Opcode::Result,
            Message::Event(_) => Opcode::Event,
            Message::AuthChallenge { .. } => Opcode::AuthChallenge,
            Message::AuthSuccess { .. } => Opcode::AuthSuccess,
        }
    }

    /// Decodes a message body (after any envelope prefixes).
    pub fn decode(opcode: Opcode, version: u8, r: &mut Reader) -> Result<Message, ParseError> {
        Ok(match opcode {
            Opcode::Startup => Message::Startup(Startup {
                options: r.string_map()?,
            }),
            Opcode::AuthResponse => Message::AuthResponse(AuthResponse::read(r)?),
            Opcode::Options => Message::Options,
            Opcode::Query => Message::Query(Query::read(r, version)?),
            Opcode::Prepare => Message::Prepare(Prepare::read(r, version)?),
            Opcode::Execute => Message::Execute(Execute::read(r, version)?),
            Opcode::Batch => Message::Batch(Batch::read(r, version)?),
            Opcode::Register => Message::Register(Register {
                events: r.string_list()?,
            }),
            Opcode::Error => Message::Error(ErrorBody::read(r, version)?),
            Opcode::Ready => Message::Ready,
            Opcode::Authenticate => Message::Authenticate {
                authenticator: r.string()?,
            },
            Opcode::Supported => Message::Supported {
                options: r.string_multimap()?,
            },
            Opcode::Result => Message::Result(ResultBody::read(r, version)?),
            Opcode::Event => Message::Event(Event::read(r)?),
            Opcode::AuthChallenge => Message::AuthChallenge { token: r.bytes()? },
            Opcode::AuthSuccess => Message::AuthSuccess { token: r.bytes()? },
        })
    }

    /// Encodes the message body for protocol `version`.
    pub fn encode(&self, version: u8, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        match self {
            Message::Startup(s) => w.string_map(&s.options),
            Message::AuthResponse(a) => a.write(&mut w),
            Message::Options | Message::Ready => {}
            Message::Query(q) => q.write(&mut w, version),
            Message::Prepare(p) => p.write(&mut w, version),
            Message::Execute(e) => e.write(&mut w, version),
            Message::Batch(b) => b.write(&mut w, version),
            Message::Register(r) => w.string_list(&r.events),
            Message::Error(e) => e.write(&mut w),
            Message::Authenticate { authenticator } => w.string(authenticator),
            Message::Supported { options } => w.string_multimap(options),
            Message::Result(r) => r.write(&mut w, version),
            Message::Event(e) => e.write(&mut w),
            Message::AuthChallenge { token } | Message::AuthSuccess { token } => {
                w.bytes(token.as_deref())
            }
        }
    }
}

/// A decoded frame body: the message with the optional prefixes its header flags
/// announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Responses with the tracing flag start with the tracing session id.
    pub tracing_id: Option<[u8; 16]>,
    /// Server warnings (responses with the warning flag).
    pub warnings: Vec<Text>,
    /// Custom payload (custom-payload flag).
    pub custom_payload: Option<Vec<(Text, Option<Bytes>)>>,
    pub message: Message,
}

impl Envelope {
    /// An envelope with no prefixes.
    pub fn new(message: Message) -> Self {
        Envelope {
            tracing_id: None,
            warnings: Vec::new(),
            custom_payload: None,
            message,
        }
    }

    /// Decodes a (decompressed) frame body described by `header`. Bytes after the
    /// message are ignored, as the spec asks of clients for forward compatibility.
    pub fn decode(header: &FrameHeader, body: Bytes) -> Result<Envelope, ParseError> {
        Self::decode_counted(header, body).map(|(e, _)| e)
    }

    /// [`Envelope::decode`], also returning how many body bytes the message used (the
    /// resynchronizer wants bodies that parse exactly).
    pub fn decode_counted(
        header: &FrameHeader,
        body: Bytes,
    ) -> Result<(Envelope, usize), ParseError> {
        let mut r = Reader::new(body);
        let tracing_id =
            if header.direction == Direction::ServerToClient && header.has_flag(flags::TRACING) {
                Some(r.uuid()?)
            } else {
                None
            };
        let warnings = if header.has_flag(flags::WARNING) {
            r.string_list()?
        } else {
            Vec::new()
        };
        let custom_payload = if header.has_flag(flags::CUSTOM_PAYLOAD) {
            Some(r.bytes_map()?)
        } else {
            None
        };
        let message = Message::decode(header.opcode, header.version, &mut r)?;
        let env = Envelope {
            tracing_id,
            warnings,
            custom_payload,
            message,
        };
        Ok((env, r.position()))
    }

    /// The header flags the prefixes require (tracing for responses with an id;
    /// requests ask for tracing with [`flags::TRACING`] passed to [`Envelope::encode`]).
    pub fn prefix_flags(&self) -> u8 {
        let mut f = 0;
        if self.tracing_id.is_some() {
            f |= flags::TRACING;
        }
        if !self.warnings.is_empty() {
            f |= flags::WARNING;
        }
        if self.custom_payload.is_some() {
            f |= flags::CUSTOM_PAYLOAD;
        }
        f
    }

    /// Encodes prefixes and message body for `version`; returns the body and the flags
    /// to put in the header (`extra_flags` are added, e.g. tracing on a request or beta).
    pub fn encode_body(&self, version: u8, extra_flags: u8) -> (Vec<u8>, u8) {
        let mut body = Vec::new();
        let mut w = Writer::new(&mut body);
        if let Some(t) = &self.tracing_id {
            w.raw(t);
        }
        if !self.warnings.is_empty() {
            w.string_list(&self.warnings);
        }
        if let Some(p) = &self.custom_payload {
            w.bytes_map(p);
        }
        self.message.encode(version, &mut body);
        (
            body,
            self.prefix_flags() | (extra_flags & !flags::COMPRESSION),
        )
    }
}
