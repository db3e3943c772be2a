//! Decoding one complete, framed message.
//!
//! The framing layer ([`crate::Decoder`]) hands over exactly `messageLength`
//! bytes; this module turns them into a [`Message`] or an error. OP_COMPRESSED
//! is unwrapped here: the inner message is rebuilt with its original header
//! so an OP_MSG checksum inside is verified the way mongod does it.

use bytes::Bytes;

use crate::error::{ErrorKind, MongoError};
use crate::limits::Limits;
use crate::message::*;
use crate::wire::compression;
use crate::wire::reader::Reader;
use crate::wire::redact;

/// Reads the four header fields from at least 16 bytes.
pub(crate) fn read_header(b: &[u8]) -> Option<(i32, i32, i32, i32)> {
    let f =
        |i: usize| -> Option<i32> { Some(i32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?)) };
    Some((f(0)?, f(4)?, f(8)?, f(12)?))
}

/// Decodes one whole message (`bytes.len()` must equal its length field).
pub fn decode_message(bytes: Bytes, offset: u64, limits: &Limits) -> Result<Message, MongoError> {
    let err = |kind| MongoError::at(offset, kind);
    let Some((length, request_id, response_to, opcode)) = read_header(&bytes) else {
        return Err(err(ErrorKind::Truncated {
            what: "message header",
            needed: HEADER_LEN,
            available: bytes.len(),
        }));
    };
    if length < HEADER_LEN as i32 || length as u64 > limits.max_message as u64 {
        return Err(err(ErrorKind::InvalidLength {
            length: length as i64,
            max: limits.max_message as u64,
        }));
    }
    if length as usize != bytes.len() {
        return Err(err(ErrorKind::Truncated {
            what: "message",
            needed: length as usize,
            available: bytes.len(),
        })
        .with_request_id(request_id));
    }
    let wire_length = length as u32;
    let Some(op) = OpCode::from_i32(opcode) else {
        return Err(err(ErrorKind::UnknownOpcode {
            opcode,
            length: wire_length,
        })
        .with_request_id(request_id));
    };
    let (compressor, inner) = if op == OpCode::Compressed {
        let (c, inner) =
            unwrap_compressed(&bytes, limits).map_err(|k| err(k).with_request_id(request_id))?;
        (Some(c), inner)
    } else {
        (None, bytes)
    };
    // The checksum is verified here, on the bytes as they were received; the
    // scrubbed copy below is decoded without it (it no longer matches, and it
    // was already proven on the original).
    let body = decode_body(&inner, limits, Checksum::Verify)
        .map_err(|k| err(k).with_request_id(request_id))?;
    let mut msg = Message {
        offset,
        wire_length,
        request_id,
        response_to,
        compressor,
        redacted: false,
        body,
    };
    if let Some(scrubbed) = redact::scrub(&inner, &msg.body) {
        // The scrubbed copy has the same structure, so it decodes; if not,
        // drop the body rather than keep secrets.
        msg.body = decode_body(&scrubbed, limits, Checksum::AlreadyVerified)
            .map_err(|k| err(k).with_request_id(request_id))?;
        msg.redacted = true;
    }
    Ok(msg)
}

/// Decompresses an OP_COMPRESSED message into a standalone inner message.
fn unwrap_compressed(bytes: &Bytes, limits: &Limits) -> Result<(Compressor, Bytes), ErrorKind> {
    let mut r = Reader::new(bytes.slice(HEADER_LEN..), limits);
    let original = r.i32("OP_COMPRESSED originalOpcode")?;
    let size = r.i32("OP_COMPRESSED uncompressedSize")?;
    let id = r.u8("OP_COMPRESSED compressorId")?;
    let compressor = Compressor::from_id(id).ok_or(ErrorKind::UnknownCompressor { id })?;
    match OpCode::from_i32(original) {
        Some(OpCode::Compressed) | None => {
            return Err(ErrorKind::InvalidOriginalOpcode { opcode: original })
        }
        Some(_) => {}
    }
    let limit = (limits.max_message as usize).saturating_sub(HEADER_LEN);
    if size < 0 {
        return Err(ErrorKind::Decompression {
            compressor: compressor.name(),
            reason: format!("negative uncompressed size {size}"),
        });
    }
    let payload = r.bytes(r.remaining(), "OP_COMPRESSED payload")?;
    // The header first, then the body decompressed right after it (no second copy).
    // The length is the declared size, which decompression checks it produced.
    let size = size as usize;
    let mut inner = Vec::with_capacity(HEADER_LEN + size.min(limit));
    inner.extend_from_slice(&((HEADER_LEN + size) as i32).to_le_bytes());
    inner.extend_from_slice(&bytes[4..12]);
    inner.extend_from_slice(&original.to_le_bytes());
    compression::decompress_into(compressor, &payload, size, limit, &mut inner)?;
    Ok((compressor, Bytes::from(inner)))
}

/// Whether an OP_MSG checksum is to be checked against the bytes at hand.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Checksum {
    /// The bytes are as received: a wrong checksum is an error.
    Verify,
    /// The bytes were changed after the checksum was verified on the
    /// original (credential scrubbing): the declared value is skipped over.
    AlreadyVerified,
}

/// Decodes the body of an uncompressed message (header included in `msg`).
pub(crate) fn decode_body(
    msg: &Bytes,
    limits: &Limits,
    checksum: Checksum,
) -> Result<Body, ErrorKind> {
    let opcode = read_header(msg).map(|h| h.3).unwrap_or(0);
    let mut r = Reader::new(msg.slice(HEADER_LEN.min(msg.len())..), limits);
    let body = match OpCode::from_i32(opcode) {
        Some(OpCode::Msg) => Body::Msg(decode_op_msg(msg, limits, checksum)?),
        Some(OpCode::Query) => {
            let flags = r.u32("OP_QUERY flags")?;
            let full_collection_name = r.cstring("OP_QUERY fullCollectionName")?;
            let number_to_skip = r.i32("OP_QUERY numberToSkip")?;
            let number_to_return = r.i32("OP_QUERY numberToReturn")?;
            let query = r.doc("OP_QUERY query")?;
            let return_fields_selector = if r.remaining() > 0 {
                Some(r.doc("OP_QUERY returnFieldsSelector")?)
            } else {
                None
            };
            r.finish("OP_QUERY")?;
            Body::Query(OpQuery {
                flags,
                full_collection_name,
                number_to_skip,
                number_to_return,
                query,
                return_fields_selector,
            })
        }
        Some(OpCode::Reply) => {
            let response_flags = r.u32("OP_REPLY responseFlags")?;
            let cursor_id = r.i64("OP_REPLY cursorID")?;
            let starting_from = r.i32("OP_REPLY startingFrom")?;
            let number_returned = r.i32("OP_REPLY numberReturned")?;
            let documents = r.rest_docs("OP_REPLY documents")?;
            if number_returned < 0 || number_returned as usize != documents.len() {
                return Err(ErrorKind::InvalidBson {
                    what: "OP_REPLY documents",
                    reason: format!(
                        "numberReturned {number_returned} but {} documents",
                        documents.len()
                    ),
                });
            }
            Body::Reply(OpReply {
                response_flags,
                cursor_id,
                starting_from,
                documents,
            })
        }
        Some(OpCode::Insert) => {
            let flags = r.u32("OP_INSERT flags")?;
            let full_collection_name = r.cstring("OP_INSERT fullCollectionName")?;
            let documents = r.rest_docs("OP_INSERT documents")?;
            Body::Insert(OpInsert {
                flags,
                full_collection_name,
                documents,
            })
        }
        Some(OpCode::Update) => {
            r.i32("OP_UPDATE ZERO")?;
            let full_collection_name = r.cstring("OP_UPDATE fullCollectionName")?;
            let flags = r.u32("OP_UPDATE flags")?;
            let selector = r.doc("OP_UPDATE selector")?;
            let update = r.doc("OP_UPDATE update")?;
            r.finish("OP_UPDATE")?;
            Body::Update(OpUpdate {
                full_collection_name,
                flags,
                selector,
                update,
            })
        }
        Some(OpCode::Delete) => {
            r.i32("OP_DELETE ZERO")?;
            let full_collection_name = r.cstring("OP_DELETE fullCollectionName")?;
            let flags = r.u32("OP_DELETE flags")?;
            let selector = r.doc("OP_DELETE selector")?;
            r.finish("OP_DELETE")?;
            Body::Delete(OpDelete {
                full_collection_name,
                flags,
                selector,
            })
        }
        Some(OpCode::GetMore) => {
            r.i32("OP_GET_MORE ZERO")?;
            let full_collection_name = r.cstring("OP_GET_MORE fullCollectionName")?;
            let number_to_return = r.i32("OP_GET_MORE numberToReturn")?;
            let cursor_id = r.i64("OP_GET_MORE cursorID")?;
            r.finish("OP_GET_MORE")?;
            Body::GetMore(OpGetMore {
                full_collection_name,
                number_to_return,
                cursor_id,
            })
        }
        Some(OpCode::KillCursors) => {
            r.i32("OP_KILL_CURSORS ZERO")?;
            let n = r.i32("OP_KILL_CURSORS numberOfCursorIDs")?;
            if n < 0 || n as usize * 8 != r.remaining() {
                return Err(ErrorKind::Truncated {
                    what: "OP_KILL_CURSORS cursorIDs",
                    needed: (n.max(0) as usize).saturating_mul(8),
                    available: r.remaining(),
                });
            }
            let mut cursor_ids = Vec::with_capacity(n as usize);
            for _ in 0..n {
                cursor_ids.push(r.i64("OP_KILL_CURSORS cursorID")?);
            }
            Body::KillCursors(OpKillCursors { cursor_ids })
        }
        Some(OpCode::Command) => {
            let database = r.cstring("OP_COMMAND database")?;
            let command_name = r.cstring("OP_COMMAND commandName")?;
            let command_args = r.doc("OP_COMMAND commandArgs")?;
            let metadata = r.doc("OP_COMMAND metadata")?;
            let input_docs = r.rest_docs("OP_COMMAND inputDocs")?;
            Body::Command(OpCommand {
                database,
                command_name,
                command_args,
                metadata,
                input_docs,
            })
        }
        Some(OpCode::CommandReply) => {
            let command_reply = r.doc("OP_COMMANDREPLY commandReply")?;
            let metadata = r.doc("OP_COMMANDREPLY metadata")?;
            let output_docs = r.rest_docs("OP_COMMANDREPLY outputDocs")?;
            Body::CommandReply(OpCommandReply {
                command_reply,
                metadata,
                output_docs,
            })
        }
        Some(OpCode::Compressed) | None => {
            return Err(ErrorKind::InvalidOriginalOpcode { opcode });
        }
    };
    Ok(body)
}

/// OP_MSG: flags, sections in any order, optional CRC-32C.
fn decode_op_msg(msg: &Bytes, limits: &Limits, checksum: Checksum) -> Result<OpMsg, ErrorKind> {
    let mut r = Reader::new(msg.slice(HEADER_LEN..), limits);
    let flags = MsgFlags(r.u32("OP_MSG flagBits")?);
    if flags.unknown_required() != 0 {
        return Err(ErrorKind::UnknownRequiredFlags { flags: flags.0 });
    }
    let mut sections_end = msg.len();
    if flags.checksum_present() {
        if msg.len() < HEADER_LEN + 4 + 4 {
            return Err(ErrorKind::Truncated {
                what: "OP_MSG checksum",
                needed: 4,
                available: msg.len().saturating_sub(HEADER_LEN + 4),
            });
        }
        sections_end -= 4;
        let declared = u32::from_le_bytes([
            msg[sections_end],
            msg[sections_end + 1],
            msg[sections_end + 2],
            msg[sections_end + 3],
        ]);
        if checksum == Checksum::Verify {
            let computed = crc32c::crc32c(&msg[..sections_end]);
            if declared != computed {
                return Err(ErrorKind::ChecksumMismatch { declared, computed });
            }
        }
    }
    let mut r = Reader::new(msg.slice(HEADER_LEN + 4..sections_end), limits);
    let mut body = None;
    let mut body_count = 0;
    let mut body_position = 0;
    let mut sequences = Vec::new();
    while r.remaining() > 0 {
        match r.u8("OP_MSG section kind")? {
            0 => {
                body_count += 1;
                body_position = sequences.len();
                body = Some(r.doc("OP_MSG body")?);
            }
            1 => {
                let size = r.i32("OP_MSG sequence size")?;
                // size covers itself, the identifier and the documents
                if size < 5 || (size as usize - 4) > r.remaining() {
                    return Err(ErrorKind::Truncated {
                        what: "OP_MSG document sequence",
                        needed: (size.max(4) as usize).saturating_sub(4),
                        available: r.remaining(),
                    });
                }
                let payload = r.bytes(size as usize - 4, "OP_MSG document sequence")?;
                let mut s = Reader::new(payload, limits);
                let identifier = s.cstring("OP_MSG sequence identifier")?;
                let documents = s.rest_docs("OP_MSG sequence documents")?;
                sequences.push(DocSequence {
                    identifier,
                    documents,
                });
            }
            kind => return Err(ErrorKind::UnknownSectionKind { kind }),
        }
    }
    match (body, body_count) {
        (Some(body), 1) => Ok(OpMsg {
            flags,
            body,
            sequences,
            body_position,
        }),
        (_, count) => Err(ErrorKind::BodySectionCount { count }),
    }
}
