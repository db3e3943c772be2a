//! Encoding messages to wire bytes (testbed, restore, tests).
//!
//! The encoder writes exactly what the decoder reads: section order of
//! OP_MSG is preserved, the checksum is computed when the flag asks for it,
//! and a message with a compressor is wrapped in OP_COMPRESSED.

use crate::error::{ErrorKind, MongoError};
use crate::message::*;
use crate::wire::compression;

/// Encodes `msg` (wrapping it in OP_COMPRESSED when `msg.compressor` is set).
pub fn encode_message(msg: &Message) -> Result<Vec<u8>, MongoError> {
    let err = |kind| MongoError::at(0, kind).with_request_id(msg.request_id);
    let mut inner = Vec::with_capacity(256);
    encode_uncompressed(msg, &mut inner).map_err(err)?;
    let Some(c) = msg.compressor else {
        return Ok(inner);
    };
    let payload = compression::compress(c, &inner[HEADER_LEN..]).map_err(err)?;
    let mut out = Vec::with_capacity(HEADER_LEN + 9 + payload.len());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&msg.request_id.to_le_bytes());
    out.extend_from_slice(&msg.response_to.to_le_bytes());
    out.extend_from_slice(&OpCode::Compressed.code().to_le_bytes());
    out.extend_from_slice(&msg.opcode().code().to_le_bytes());
    out.extend_from_slice(&((inner.len() - HEADER_LEN) as i32).to_le_bytes());
    out.push(c.id());
    out.extend_from_slice(&payload);
    set_length(&mut out).map_err(err)?;
    Ok(out)
}

fn set_length(out: &mut [u8]) -> Result<(), ErrorKind> {
    let len = i32::try_from(out.len()).map_err(|_| ErrorKind::Encode {
        reason: format!("message of {} bytes does not fit an int32", out.len()),
    })?;
    out[..4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

fn cstring(out: &mut Vec<u8>, s: &str) -> Result<(), ErrorKind> {
    if s.as_bytes().contains(&0) {
        return Err(ErrorKind::Encode {
            reason: format!("cstring {s:?} contains NUL"),
        });
    }
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    Ok(())
}

fn i32le(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn encode_uncompressed(msg: &Message, out: &mut Vec<u8>) -> Result<(), ErrorKind> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    i32le(out, msg.request_id);
    i32le(out, msg.response_to);
    i32le(out, msg.opcode().code());
    match &msg.body {
        Body::Msg(m) => {
            out.extend_from_slice(&m.flags.0.to_le_bytes());
            let mut body_written = false;
            for (i, s) in m.sequences.iter().enumerate() {
                if i == m.body_position {
                    out.push(0);
                    out.extend_from_slice(m.body.bytes());
                    body_written = true;
                }
                out.push(1);
                let size_at = out.len();
                out.extend_from_slice(&[0; 4]);
                cstring(out, &s.identifier)?;
                out.extend_from_slice(s.documents.bytes());
                let size = i32::try_from(out.len() - size_at).map_err(|_| ErrorKind::Encode {
                    reason: "document sequence too large".into(),
                })?;
                out[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
            }
            if !body_written {
                out.push(0);
                out.extend_from_slice(m.body.bytes());
            }
            if m.flags.checksum_present() {
                // the checksum covers the header with its final length
                let len = out.len() - start + 4;
                let len = i32::try_from(len).map_err(|_| ErrorKind::Encode {
                    reason: "message too large".into(),
                })?;
                out[start..start + 4].copy_from_slice(&len.to_le_bytes());
                let crc = crc32c::crc32c(&out[start..]);
                out.extend_from_slice(&crc.to_le_bytes());
            }
        }
        Body::Query(q) => {
            out.extend_from_slice(&q.flags.to_le_bytes());
            cstring(out, &q.full_collection_name)?;
            i32le(out, q.number_to_skip);
            i32le(out, q.number_to_return);
            out.extend_from_slice(q.query.bytes());
            if let Some(f) = &q.return_fields_selector {
                out.extend_from_slice(f.bytes());
            }
        }
        Body::Reply(r) => {
            out.extend_from_slice(&r.response_flags.to_le_bytes());
            out.extend_from_slice(&r.cursor_id.to_le_bytes());
            i32le(out, r.starting_from);
            i32le(out, r.documents.len() as i32);
            out.extend_from_slice(r.documents.bytes());
        }
        Body::Insert(i) => {
            out.extend_from_slice(&i.flags.to_le_bytes());
            cstring(out, &i.full_collection_name)?;
            out.extend_from_slice(i.documents.bytes());
        }
        Body::Update(u) => {
            i32le(out, 0);
            cstring(out, &u.full_collection_name)?;
            out.extend_from_slice(&u.flags.to_le_bytes());
            out.extend_from_slice(u.selector.bytes());
            out.extend_from_slice(u.update.bytes());
        }
        Body::Delete(d) => {
            i32le(out, 0);
            cstring(out, &d.full_collection_name)?;
            out.extend_from_slice(&d.flags.to_le_bytes());
            out.extend_from_slice(d.selector.bytes());
        }
        Body::GetMore(g) => {
            i32le(out, 0);
            cstring(out, &g.full_collection_name)?;
            i32le(out, g.number_to_return);
            out.extend_from_slice(&g.cursor_id.to_le_bytes());
        }
        Body::KillCursors(k) => {
            i32le(out, 0);
            i32le(out, k.cursor_ids.len() as i32);
            for id in &k.cursor_ids {
                out.extend_from_slice(&id.to_le_bytes());
            }
        }
        Body::Command(c) => {
            cstring(out, &c.database)?;
            cstring(out, &c.command_name)?;
            out.extend_from_slice(c.command_args.bytes());
            out.extend_from_slice(c.metadata.bytes());
            out.extend_from_slice(c.input_docs.bytes());
        }
        Body::CommandReply(c) => {
            out.extend_from_slice(c.command_reply.bytes());
            out.extend_from_slice(c.metadata.bytes());
            out.extend_from_slice(c.output_docs.bytes());
        }
    }
    set_length(&mut out[start..])
}
