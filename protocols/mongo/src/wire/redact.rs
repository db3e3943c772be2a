//! Scrubbing of credentials at decode time.
//!
//! SASL/SCRAM conversation payloads, MONGODB-CR keys and user passwords must
//! never be stored or logged (ARCHITECTURE.md, "Store"). Instead of relying on
//! every consumer to skip them, the decoder overwrites them in a private copy
//! of the message bytes: binary payloads become zeros, strings become `*`,
//! lengths are kept so the documents stay valid BSON. Messages carrying
//! secrets are rare (the handshake), so the copy costs nothing in bulk.

use bytes::Bytes;

use crate::bsonval::{find_field, Span};
use crate::doc::Doc;
use crate::message::Body;

/// Commands whose `payload` is a SASL message.
const SASL_COMMANDS: &[&str] = &["saslStart", "saslContinue", "copydbsaslstart"];
/// Commands carrying a cleartext password in `pwd`.
const PASSWORD_COMMANDS: &[&str] = &["createUser", "updateUser"];

/// Returns a scrubbed copy of `inner` when `body` holds secrets.
pub(crate) fn scrub(inner: &Bytes, body: &Body) -> Option<Bytes> {
    let mut spans = Vec::new();
    for doc in candidate_docs(body) {
        let Some(base) = offset_in(inner, doc) else {
            continue;
        };
        for s in secret_spans(doc.bytes()) {
            spans.push(Span {
                kind: s.kind,
                start: base + s.start,
                end: base + s.end,
            });
        }
    }
    if spans.is_empty() {
        return None;
    }
    let mut copy = inner.to_vec();
    for s in spans {
        blank(&mut copy, s);
    }
    Some(Bytes::from(copy))
}

/// The documents that may carry credentials: the command or reply document.
fn candidate_docs(body: &Body) -> Vec<&Doc> {
    match body {
        Body::Msg(m) => vec![&m.body],
        Body::Query(q) => vec![&q.query],
        Body::Command(c) => vec![&c.command_args],
        Body::CommandReply(c) => vec![&c.command_reply],
        Body::Reply(_) => Vec::new(),
        _ => Vec::new(),
    }
}

/// Position of `doc` inside `inner` (docs are slices of the same buffer).
fn offset_in(inner: &Bytes, doc: &Doc) -> Option<usize> {
    let base = inner.as_ptr() as usize;
    let p = doc.bytes().as_ptr() as usize;
    let off = p.checked_sub(base)?;
    (off + doc.len() <= inner.len()).then_some(off)
}

/// Spans (relative to `doc`) of secret values.
pub(crate) fn secret_spans(doc: &[u8]) -> Vec<Span> {
    let mut out = Vec::new();
    let first = crate::doc::view(doc)
        .iter_elements()
        .next()
        .and_then(|e| e.ok())
        .map(|e| e.key().as_str().to_owned())
        .unwrap_or_default();
    let is_conversation = find_field(doc, "conversationId").is_some();
    if SASL_COMMANDS.contains(&first.as_str()) || is_conversation {
        out.extend(find_field(doc, "payload"));
    }
    if first == "authenticate" {
        out.extend(find_field(doc, "key"));
    }
    if PASSWORD_COMMANDS.contains(&first.as_str()) {
        out.extend(find_field(doc, "pwd"));
    }
    if let Some(spec) = find_field(doc, "speculativeAuthenticate").filter(|s| s.kind == 0x03) {
        let inner = &doc[spec.start..spec.end];
        for key in ["payload", "key"] {
            if let Some(s) = find_field(inner, key) {
                out.push(Span {
                    kind: s.kind,
                    start: spec.start + s.start,
                    end: spec.start + s.end,
                });
            }
        }
    }
    // An OP_QUERY command may be wrapped as {$query: {...}}.
    if let Some(q) = find_field(doc, "$query").filter(|s| s.kind == 0x03) {
        for s in secret_spans(&doc[q.start..q.end]) {
            out.push(Span {
                kind: s.kind,
                start: q.start + s.start,
                end: q.start + s.end,
            });
        }
    }
    out
}

/// Overwrites the value bytes of a span, keeping the framing intact.
fn blank(buf: &mut [u8], s: Span) {
    let range = match s.kind {
        // binary: int32 length, subtype, data (old subtype 2 has an inner length)
        0x05 => {
            let subtype = buf.get(s.start + 4).copied().unwrap_or(0);
            let data = if subtype == 2 {
                s.start + 9
            } else {
                s.start + 5
            };
            (data, s.end, 0u8)
        }
        // string: int32 length, bytes, NUL
        0x02 => (s.start + 4, s.end.saturating_sub(1), b'*'),
        _ => return,
    };
    if let Some(slice) = buf.get_mut(range.0..range.1) {
        slice.fill(range.2);
    }
}
