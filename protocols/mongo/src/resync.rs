//! Recognising a plausible message start after a gap or a mid-stream start.
//!
//! Random bytes rarely look like a MongoDB header: the length must be within
//! limits, the opcode known, and the first body fields consistent (OP_MSG
//! flags with no unknown bits and a section kind of 0 or 1; legacy
//! namespaces printable and dotted; sizes that fit the message). A
//! candidate is then fully decoded before anything is emitted, so a false
//! candidate costs time, never a garbage message.

use crate::limits::Limits;
use crate::message::{MsgFlags, OpCode, HEADER_LEN};

/// Outcome of probing bytes for a message start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// Cannot start a message here.
    No,
    /// Consistent so far; more bytes are needed to decide.
    NeedMore,
    /// Plausible message of this many bytes.
    Yes(usize),
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Probes `b` (which starts at the candidate's first byte).
pub(crate) fn probe(b: &[u8], limits: &Limits) -> Probe {
    let Some(len) = i32_at(b, 0) else {
        return Probe::NeedMore;
    };
    if len < (HEADER_LEN + 4) as i32 || len as u64 > limits.max_message as u64 {
        return Probe::No;
    }
    let len = len as usize;
    let Some(code) = i32_at(b, 12) else {
        return Probe::NeedMore;
    };
    let Some(op) = OpCode::from_i32(code) else {
        return Probe::No;
    };
    // view of the body limited to the candidate's own length
    let body = &b[HEADER_LEN..len.min(b.len())];
    let body_len = len - HEADER_LEN;
    let complete = b.len() >= len;
    let verdict = match op {
        OpCode::Msg => probe_msg(body, body_len),
        OpCode::Compressed => probe_compressed(body, limits),
        OpCode::Reply => match i32_at(body, 16) {
            _ if body_len < 20 => Some(false),
            None => None,
            Some(n) => Some(
                i32_at(body, 0).is_some_and(|f| (0..16).contains(&f))
                    && n >= 0
                    && (n as usize) * 5 <= body_len - 20,
            ),
        },
        OpCode::Query | OpCode::Insert => match i32_at(body, 0) {
            None => None,
            Some(f) if (f as u32) & !0xFF != 0 => Some(false),
            Some(_) => namespace(&body[4..]),
        },
        OpCode::Update | OpCode::Delete | OpCode::GetMore => match i32_at(body, 0) {
            None => None,
            Some(0) => namespace(&body[4..]),
            Some(_) => Some(false),
        },
        OpCode::KillCursors => match (i32_at(body, 0), i32_at(body, 4)) {
            (Some(0), Some(n)) => Some(n >= 0 && 8 + 8 * n as usize == body_len),
            (Some(_), _) => Some(false),
            _ => None,
        },
        OpCode::Command => namespace_like(body, false),
        OpCode::CommandReply => i32_at(body, 0).map(|n| n >= 5 && n as usize <= body_len),
    };
    match verdict {
        Some(true) => Probe::Yes(len),
        Some(false) => Probe::No,
        None if complete => Probe::No,
        None => Probe::NeedMore,
    }
}

/// `None` = undecided for lack of bytes.
fn probe_msg(body: &[u8], body_len: usize) -> Option<bool> {
    let flags = MsgFlags(i32_at(body, 0)? as u32);
    let known = MsgFlags::CHECKSUM_PRESENT | MsgFlags::MORE_TO_COME | MsgFlags::EXHAUST_ALLOWED;
    if flags.0 & !known != 0 {
        return Some(false);
    }
    let kind = *body.get(4)?;
    if kind > 1 {
        return Some(false);
    }
    let size = i32_at(body, 5)?;
    let room = body_len.saturating_sub(5 + if flags.checksum_present() { 4 } else { 0 });
    Some(size >= 5 && size as usize <= room)
}

fn probe_compressed(body: &[u8], limits: &Limits) -> Option<bool> {
    let original = OpCode::from_i32(i32_at(body, 0)?);
    let size = i32_at(body, 4)?;
    let id = *body.get(8)?;
    Some(
        original.is_some_and(|o| o != OpCode::Compressed)
            && size >= 0
            && (size as u64) < limits.max_message as u64
            && id <= 3,
    )
}

/// A legacy `db.collection` C string: printable and dotted.
fn namespace(b: &[u8]) -> Option<bool> {
    namespace_like(b, true)
}

fn namespace_like(b: &[u8], dotted: bool) -> Option<bool> {
    for (i, &c) in b.iter().enumerate() {
        if c == 0 {
            let s = &b[..i];
            return Some(!s.is_empty() && (!dotted || s.contains(&b'.')));
        }
        if c < 0x20 || c == 0x7f {
            return Some(false);
        }
        if i > 512 {
            return Some(false);
        }
    }
    None
}
