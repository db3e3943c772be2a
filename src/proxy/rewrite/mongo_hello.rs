//! MongoDB message-level rewrite: which requests are handshakes, and the hello
//! reply with its `hosts`, `passives`, `arbiters`, `primary` and `me` mapped.
//!
//! Messages are parsed here from their bytes (not with the crate's decoder, which
//! scrubs SASL payloads — a hello reply may carry `speculativeAuthenticate`, which
//! must reach the client intact). `setName`, `topologyVersion` and every other field
//! keep their bytes.

use bson::{Bson, Document, RawDocument};

use super::map::AddrMap;

pub const OP_REPLY: i32 = 1;
pub const OP_QUERY: i32 = 2004;
pub const OP_COMPRESSED: i32 = 2012;
pub const OP_MSG: i32 = 2013;

const CHECKSUM_PRESENT: u32 = 1;
const MORE_TO_COME: u32 = 1 << 1;

/// Largest decompressed size believed (mongod's message limit).
const MAX_MESSAGE: usize = 48_000_000;

fn le_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The BSON document at the start of `b`, and its length.
fn doc_at(b: &[u8]) -> Option<(&RawDocument, usize)> {
    let len = usize::try_from(le_i32(b, 0)?).ok()?;
    let d = RawDocument::from_bytes(b.get(..len)?).ok()?;
    Some((d, len))
}

fn first_key(d: &RawDocument) -> Option<String> {
    let (k, _) = d.iter().next()?.ok()?;
    Some(k.as_str().to_string())
}

fn is_hello_name(k: &str) -> bool {
    k == "hello" || k.eq_ignore_ascii_case("ismaster")
}

pub fn decompress(id: u8, payload: &[u8], size: usize) -> Option<Vec<u8>> {
    if size > MAX_MESSAGE {
        return None;
    }
    let out = match id {
        0 => payload.to_vec(),
        1 => {
            // The block states its own length: believed only if it is the one declared.
            if snap::raw::decompress_len(payload).ok()? != size {
                return None;
            }
            snap::raw::Decoder::new().decompress_vec(payload).ok()?
        }
        2 => {
            use std::io::Read;
            let mut v = Vec::with_capacity(size);
            flate2::read::ZlibDecoder::new(payload)
                .take(MAX_MESSAGE as u64 + 1)
                .read_to_end(&mut v)
                .ok()?;
            v
        }
        3 => zstd::bulk::decompress(payload, size).ok()?,
        _ => return None,
    };
    (out.len() == size).then_some(out)
}

pub fn compress(id: u8, body: &[u8]) -> Option<Vec<u8>> {
    Some(match id {
        0 => body.to_vec(),
        1 => snap::raw::Encoder::new().compress_vec(body).ok()?,
        2 => {
            use std::io::Write;
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(body).ok()?;
            e.finish().ok()?
        }
        3 => zstd::bulk::compress(body, 0).ok()?,
        _ => return None,
    })
}

/// A whole message with OP_COMPRESSED unwrapped: (opcode, header + body as if sent
/// uncompressed, compressor id if it was compressed).
fn unwrap(msg: &[u8]) -> Option<(i32, Vec<u8>, Option<u8>)> {
    let op = le_i32(msg, 12)?;
    if op != OP_COMPRESSED {
        return Some((op, msg.to_vec(), None));
    }
    let original = le_i32(msg, 16)?;
    let size = usize::try_from(le_i32(msg, 20)?).ok()?;
    let id = *msg.get(24)?;
    let body = decompress(id, msg.get(25..)?, size)?;
    let mut full = Vec::with_capacity(16 + body.len());
    full.extend_from_slice(&i32::try_from(16 + body.len()).ok()?.to_le_bytes());
    full.extend_from_slice(&msg[4..12]);
    full.extend_from_slice(&original.to_le_bytes());
    full.extend_from_slice(&body);
    Some((original, full, Some(id)))
}

/// Whether a whole client message is a `hello`/`isMaster` command.
pub fn is_hello_request(msg: &[u8]) -> bool {
    let Some((op, full, _)) = unwrap(msg) else {
        return false;
    };
    let b = &full[16..];
    let key = match op {
        OP_MSG => {
            // flags, then sections; the body (kind 0) is usually first.
            let mut pos = 4;
            let mut key = None;
            for _ in 0..64 {
                match b.get(pos) {
                    Some(0) => {
                        key = doc_at(&b[pos + 1..]).and_then(|(d, _)| first_key(d));
                        break;
                    }
                    Some(1) => {
                        let Some(n) = le_i32(b, pos + 1).and_then(|n| usize::try_from(n).ok())
                        else {
                            break;
                        };
                        pos += 1 + n;
                    }
                    _ => break,
                }
            }
            key
        }
        OP_QUERY => {
            let Some(nul) = b.get(4..).and_then(|s| s.iter().position(|&c| c == 0)) else {
                return false;
            };
            let coll = &b[4..4 + nul];
            if !coll.ends_with(b".$cmd") {
                return false;
            }
            let Some((d, _)) = b.get(4 + nul + 1 + 8..).and_then(doc_at) else {
                return false;
            };
            match first_key(d) {
                Some(k) if k == "$query" || k == "query" => {
                    d.get_document(&k).ok().and_then(first_key)
                }
                k => k,
            }
        }
        _ => None,
    };
    key.is_some_and(|k| is_hello_name(&k))
}

fn map_host(s: &str, map: &AddrMap) -> Option<String> {
    let m = map.by_host_port(s)?;
    let new = super::map::host_port(m.sidecar);
    (new != s).then_some(new)
}

/// Maps the topology fields of a hello reply document; `None` if nothing changed or
/// the document would not re-encode to its own bytes.
fn rewrite_doc(raw: &RawDocument, map: &AddrMap) -> Option<Vec<u8>> {
    let mut doc = Document::try_from(raw).ok()?;
    if doc.to_vec().ok()? != raw.as_bytes() {
        return None;
    }
    let mut changed = 0;
    for key in ["hosts", "passives", "arbiters"] {
        if let Some(Bson::Array(a)) = doc.get_mut(key) {
            for v in a.iter_mut() {
                if let Bson::String(s) = v {
                    if let Some(new) = map_host(s, map) {
                        *s = new;
                        changed += 1;
                    }
                }
            }
        }
    }
    for key in ["primary", "me"] {
        if let Some(Bson::String(s)) = doc.get_mut(key) {
            if let Some(new) = map_host(s, map) {
                *s = new;
                changed += 1;
            }
        }
    }
    if changed == 0 {
        return None;
    }
    doc.to_vec().ok()
}

/// What became of a reply.
pub struct Reply {
    /// The new message bytes, if rewritten.
    pub bytes: Option<Vec<u8>>,
    /// An OP_MSG with moreToCome: the next reply (exhaust) answers this one's id.
    pub more_to_come: bool,
}

/// Rewrites a whole reply to a hello (`Err` when it does not parse).
pub fn rewrite_reply(msg: &[u8], map: &AddrMap) -> Result<Reply, &'static str> {
    let (op, full, compressor) = unwrap(msg).ok_or("OP_COMPRESSED that does not decompress")?;
    let b = full.get(16..).ok_or("short message")?;
    let (new_body, more_to_come) = match op {
        OP_MSG => {
            let flags = le_i32(b, 0).ok_or("OP_MSG flags")? as u32;
            let end = if flags & CHECKSUM_PRESENT != 0 {
                b.len().checked_sub(4).ok_or("OP_MSG checksum")?
            } else {
                b.len()
            };
            let mut out = b[..4].to_vec();
            let mut pos = 4;
            let mut changed = false;
            for _ in 0..1024 {
                if pos >= end {
                    break;
                }
                match b[pos] {
                    0 => {
                        let (d, len) = doc_at(&b[pos + 1..end]).ok_or("OP_MSG body")?;
                        out.push(0);
                        match rewrite_doc(d, map) {
                            Some(new) => {
                                out.extend_from_slice(&new);
                                changed = true;
                            }
                            None => out.extend_from_slice(d.as_bytes()),
                        }
                        pos += 1 + len;
                    }
                    1 => {
                        let n = le_i32(b, pos + 1)
                            .and_then(|n| usize::try_from(n).ok())
                            .ok_or("OP_MSG sequence")?;
                        let s = b.get(pos..pos + 1 + n).ok_or("OP_MSG sequence")?;
                        out.extend_from_slice(s);
                        pos += 1 + n;
                    }
                    _ => return Err("OP_MSG section kind"),
                }
            }
            if pos != end {
                return Err("OP_MSG sections");
            }
            let more = flags & MORE_TO_COME != 0;
            (
                changed.then_some((out, flags & CHECKSUM_PRESENT != 0)),
                more,
            )
        }
        OP_REPLY => {
            if le_i32(b, 16) != Some(1) {
                // A hello reply has one document.
                return Ok(Reply {
                    bytes: None,
                    more_to_come: false,
                });
            }
            let (d, len) = doc_at(b.get(20..).ok_or("OP_REPLY")?).ok_or("OP_REPLY document")?;
            if 20 + len != b.len() {
                return Err("OP_REPLY length");
            }
            let new = rewrite_doc(d, map).map(|new| {
                let mut out = b[..20].to_vec();
                out.extend_from_slice(&new);
                (out, false)
            });
            (new, false)
        }
        _ => {
            return Ok(Reply {
                bytes: None,
                more_to_come: false,
            })
        }
    };
    let Some((body, checksum)) = new_body else {
        return Ok(Reply {
            bytes: None,
            more_to_come,
        });
    };
    // The uncompressed message: header with the new length, body, checksum.
    let mut full_new = Vec::with_capacity(16 + body.len() + 4);
    let len = 16 + body.len() + if checksum { 4 } else { 0 };
    full_new.extend_from_slice(&i32::try_from(len).map_err(|_| "too long")?.to_le_bytes());
    full_new.extend_from_slice(&full[4..16]);
    full_new.extend_from_slice(&body);
    if checksum {
        let crc = crc32c::crc32c(&full_new);
        full_new.extend_from_slice(&crc.to_le_bytes());
    }
    let bytes = match compressor {
        None => full_new,
        Some(id) => {
            let inner = &full_new[16..];
            let payload = compress(id, inner).ok_or("recompress")?;
            let mut m = Vec::with_capacity(25 + payload.len());
            m.extend_from_slice(
                &i32::try_from(25 + payload.len())
                    .map_err(|_| "too long")?
                    .to_le_bytes(),
            );
            m.extend_from_slice(&msg[4..12]);
            m.extend_from_slice(&OP_COMPRESSED.to_le_bytes());
            m.extend_from_slice(&op.to_le_bytes());
            m.extend_from_slice(
                &i32::try_from(inner.len())
                    .map_err(|_| "too long")?
                    .to_le_bytes(),
            );
            m.push(id);
            m.extend_from_slice(&payload);
            m
        }
    };
    Ok(Reply {
        bytes: Some(bytes),
        more_to_come,
    })
}
