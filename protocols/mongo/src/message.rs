//! The decoded form of one wire message: header fields, optional
//! compression wrapper, and a body per opcode.
//!
//! Bodies keep documents as [`Doc`]/[`DocSeq`] slices of the original
//! buffer, so a message costs a handful of reference-counted handles no
//! matter how large its documents are.

use crate::doc::{Doc, DocSeq};

/// Size of the standard message header.
pub const HEADER_LEN: usize = 16;

/// Wire opcodes this crate understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpCode {
    Reply,
    Update,
    Insert,
    Query,
    GetMore,
    Delete,
    KillCursors,
    Command,
    CommandReply,
    Compressed,
    Msg,
}

impl OpCode {
    /// Maps a wire value to an opcode.
    pub fn from_i32(v: i32) -> Option<OpCode> {
        Some(match v {
            1 => OpCode::Reply,
            2001 => OpCode::Update,
            2002 => OpCode::Insert,
            2004 => OpCode::Query,
            2005 => OpCode::GetMore,
            2006 => OpCode::Delete,
            2007 => OpCode::KillCursors,
            2010 => OpCode::Command,
            2011 => OpCode::CommandReply,
            2012 => OpCode::Compressed,
            2013 => OpCode::Msg,
            _ => return None,
        })
    }

    /// The wire value.
    pub fn code(self) -> i32 {
        match self {
            OpCode::Reply => 1,
            OpCode::Update => 2001,
            OpCode::Insert => 2002,
            OpCode::Query => 2004,
            OpCode::GetMore => 2005,
            OpCode::Delete => 2006,
            OpCode::KillCursors => 2007,
            OpCode::Command => 2010,
            OpCode::CommandReply => 2011,
            OpCode::Compressed => 2012,
            OpCode::Msg => 2013,
        }
    }

    /// The name as the wire-protocol reference spells it (used in JSON output).
    pub fn name(self) -> &'static str {
        match self {
            OpCode::Reply => "OP_REPLY",
            OpCode::Update => "OP_UPDATE",
            OpCode::Insert => "OP_INSERT",
            OpCode::Query => "OP_QUERY",
            OpCode::GetMore => "OP_GET_MORE",
            OpCode::Delete => "OP_DELETE",
            OpCode::KillCursors => "OP_KILL_CURSORS",
            OpCode::Command => "OP_COMMAND",
            OpCode::CommandReply => "OP_COMMANDREPLY",
            OpCode::Compressed => "OP_COMPRESSED",
            OpCode::Msg => "OP_MSG",
        }
    }

    /// True for opcodes a server sends.
    pub fn is_reply(self) -> bool {
        matches!(self, OpCode::Reply | OpCode::CommandReply)
    }
}

/// Compressor ids of OP_COMPRESSED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compressor {
    Noop,
    Snappy,
    Zlib,
    Zstd,
}

impl Compressor {
    /// Maps the wire id.
    pub fn from_id(id: u8) -> Option<Compressor> {
        Some(match id {
            0 => Compressor::Noop,
            1 => Compressor::Snappy,
            2 => Compressor::Zlib,
            3 => Compressor::Zstd,
            _ => return None,
        })
    }

    /// The wire id.
    pub fn id(self) -> u8 {
        match self {
            Compressor::Noop => 0,
            Compressor::Snappy => 1,
            Compressor::Zlib => 2,
            Compressor::Zstd => 3,
        }
    }

    /// The name used in `hello.compression` and in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Compressor::Noop => "noop",
            Compressor::Snappy => "snappy",
            Compressor::Zlib => "zlib",
            Compressor::Zstd => "zstd",
        }
    }
}

/// OP_MSG flag bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MsgFlags(pub u32);

impl MsgFlags {
    /// Bit 0: a CRC-32C trails the message.
    pub const CHECKSUM_PRESENT: u32 = 1;
    /// Bit 1: the sender will send another message without waiting.
    pub const MORE_TO_COME: u32 = 1 << 1;
    /// Bit 16: the client accepts exhaust (moreToCome) replies.
    pub const EXHAUST_ALLOWED: u32 = 1 << 16;
    /// Required bits (0..16) this decoder understands; others set are an error.
    pub const KNOWN_REQUIRED: u32 = Self::CHECKSUM_PRESENT | Self::MORE_TO_COME;

    pub fn checksum_present(self) -> bool {
        self.0 & Self::CHECKSUM_PRESENT != 0
    }
    pub fn more_to_come(self) -> bool {
        self.0 & Self::MORE_TO_COME != 0
    }
    pub fn exhaust_allowed(self) -> bool {
        self.0 & Self::EXHAUST_ALLOWED != 0
    }
    /// Required bits that are set but unknown.
    pub fn unknown_required(self) -> u32 {
        self.0 & 0xFFFF & !Self::KNOWN_REQUIRED
    }
}

/// A kind-1 section: a named run of documents standing for a command argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocSequence {
    pub identifier: String,
    pub documents: DocSeq,
}

/// OP_MSG (2013).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpMsg {
    pub flags: MsgFlags,
    /// The kind-0 section.
    pub body: Doc,
    /// Kind-1 sections in wire order.
    pub sequences: Vec<DocSequence>,
    /// How many kind-1 sections precede the body on the wire (sections may
    /// come in any order; kept so encoding reproduces the input).
    pub body_position: usize,
}

impl OpMsg {
    /// A message with just a body.
    pub fn new(body: Doc) -> OpMsg {
        OpMsg {
            flags: MsgFlags(0),
            body,
            sequences: Vec::new(),
            body_position: 0,
        }
    }

    /// The kind-1 section with this identifier.
    pub fn sequence(&self, identifier: &str) -> Option<&DocSeq> {
        self.sequences
            .iter()
            .find(|s| s.identifier == identifier)
            .map(|s| &s.documents)
    }
}

/// OP_QUERY (2004): legacy queries, and commands on `db.$cmd` (handshake, 2.6 write commands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpQuery {
    pub flags: u32,
    pub full_collection_name: String,
    pub number_to_skip: i32,
    pub number_to_return: i32,
    pub query: Doc,
    pub return_fields_selector: Option<Doc>,
}

/// OP_REPLY (1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpReply {
    pub response_flags: u32,
    pub cursor_id: i64,
    pub starting_from: i32,
    pub documents: DocSeq,
}

impl OpReply {
    /// Bit 0: the cursor id was not found.
    pub const CURSOR_NOT_FOUND: u32 = 1;
    /// Bit 1: the query failed; the single document is `{$err: ...}`.
    pub const QUERY_FAILURE: u32 = 1 << 1;
    /// Bit 3: the server supports the AwaitData option.
    pub const AWAIT_CAPABLE: u32 = 1 << 3;
}

/// OP_INSERT (2002).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpInsert {
    /// Bit 0: ContinueOnError.
    pub flags: u32,
    pub full_collection_name: String,
    pub documents: DocSeq,
}

/// OP_UPDATE (2001).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpUpdate {
    pub full_collection_name: String,
    /// Bit 0: Upsert, bit 1: MultiUpdate.
    pub flags: u32,
    pub selector: Doc,
    pub update: Doc,
}

/// OP_DELETE (2006).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpDelete {
    pub full_collection_name: String,
    /// Bit 0: SingleRemove.
    pub flags: u32,
    pub selector: Doc,
}

/// OP_GET_MORE (2005).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpGetMore {
    pub full_collection_name: String,
    pub number_to_return: i32,
    pub cursor_id: i64,
}

/// OP_KILL_CURSORS (2007).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpKillCursors {
    pub cursor_ids: Vec<i64>,
}

/// OP_COMMAND (2010), the MongoDB 3.2-era command opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpCommand {
    pub database: String,
    pub command_name: String,
    pub command_args: Doc,
    pub metadata: Doc,
    pub input_docs: DocSeq,
}

/// OP_COMMANDREPLY (2011).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpCommandReply {
    pub command_reply: Doc,
    pub metadata: Doc,
    pub output_docs: DocSeq,
}

/// The opcode-specific part of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Msg(OpMsg),
    Query(OpQuery),
    Reply(OpReply),
    Insert(OpInsert),
    Update(OpUpdate),
    Delete(OpDelete),
    GetMore(OpGetMore),
    KillCursors(OpKillCursors),
    Command(OpCommand),
    CommandReply(OpCommandReply),
}

impl Body {
    /// The opcode of this body (never `Compressed`).
    pub fn opcode(&self) -> OpCode {
        match self {
            Body::Msg(_) => OpCode::Msg,
            Body::Query(_) => OpCode::Query,
            Body::Reply(_) => OpCode::Reply,
            Body::Insert(_) => OpCode::Insert,
            Body::Update(_) => OpCode::Update,
            Body::Delete(_) => OpCode::Delete,
            Body::GetMore(_) => OpCode::GetMore,
            Body::KillCursors(_) => OpCode::KillCursors,
            Body::Command(_) => OpCode::Command,
            Body::CommandReply(_) => OpCode::CommandReply,
        }
    }
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Stream offset of the message's first byte (0 for standalone decoding).
    pub offset: u64,
    /// Bytes the message occupied on the wire (the OP_COMPRESSED size if compressed).
    pub wire_length: u32,
    pub request_id: i32,
    pub response_to: i32,
    /// Set when the message arrived wrapped in OP_COMPRESSED; `body.opcode()`
    /// is then the original opcode.
    pub compressor: Option<Compressor>,
    /// True when secrets (SASL payloads, passwords) were overwritten in the
    /// message bytes at decode time.
    pub redacted: bool,
    pub body: Body,
}

impl Message {
    /// A message for encoding; `offset`, `wire_length` are filled by decoding.
    pub fn new(request_id: i32, response_to: i32, body: Body) -> Message {
        Message {
            offset: 0,
            wire_length: 0,
            request_id,
            response_to,
            compressor: None,
            redacted: false,
            body,
        }
    }

    /// Same message, to be wrapped in OP_COMPRESSED with `compressor` when encoded.
    pub fn compressed_with(mut self, compressor: Compressor) -> Message {
        self.compressor = Some(compressor);
        self
    }

    /// The (original) opcode of the body.
    pub fn opcode(&self) -> OpCode {
        self.body.opcode()
    }

    /// The opcode on the wire: `Compressed` when wrapped.
    pub fn wire_opcode(&self) -> OpCode {
        if self.compressor.is_some() {
            OpCode::Compressed
        } else {
            self.opcode()
        }
    }

    /// OP_MSG flags, if this is an OP_MSG.
    pub fn msg_flags(&self) -> Option<MsgFlags> {
        match &self.body {
            Body::Msg(m) => Some(m.flags),
            _ => None,
        }
    }

    /// True when the sender will not wait for (requests: will not get) a reply.
    pub fn more_to_come(&self) -> bool {
        self.msg_flags().is_some_and(|f| f.more_to_come())
    }
}
