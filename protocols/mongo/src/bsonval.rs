//! Structural validation of raw BSON, without building any owned value.
//!
//! The `bson` crate's `RawDocument::from_bytes` checks only the outer length
//! and the trailing NUL; element access then fails lazily. A backup tool must
//! reject a bad document when the message is decoded, not when some later
//! stage touches a field, so every document that enters a [`crate::Doc`] is
//! walked once here. The walk is at least as strict as the crate's accessors
//! (UTF-8 keys and strings, boolean bytes, old-binary inner lengths, code
//! with scope sizes), so a validated document never fails in `bson` later.

use crate::limits::Limits;

/// Why a document is invalid; turned into [`crate::ErrorKind::InvalidBson`] by callers.
pub(crate) type Reason = &'static str;

/// Validates the document that starts at `buf[0]` and returns its length.
/// `buf` may be longer than the document (a sequence of documents).
pub(crate) fn validate_prefix(buf: &[u8], limits: &Limits) -> Result<usize, Reason> {
    let len = read_len(buf).ok_or("document shorter than its length prefix")?;
    if len > limits.max_document as usize {
        return Err("document exceeds the size limit");
    }
    if len > buf.len() {
        return Err("document length runs past the end of its container");
    }
    validate_doc(&buf[..len], 0, limits.max_depth)?;
    Ok(len)
}

/// Validates that `buf` is exactly one document.
pub(crate) fn validate_exact(buf: &[u8], limits: &Limits) -> Result<(), Reason> {
    let len = validate_prefix(buf, limits)?;
    if len != buf.len() {
        return Err("bytes after the end of the document");
    }
    Ok(())
}

/// Reads a BSON length prefix that must be at least 5 (the empty document).
fn read_len(buf: &[u8]) -> Option<usize> {
    let raw = i32::from_le_bytes(buf.get(..4)?.try_into().ok()?);
    if raw < 5 {
        return None;
    }
    Some(raw as usize)
}

fn read_i32(buf: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

/// Returns the index just past the NUL of the cstring starting at `at`, after
/// checking it is UTF-8.
fn cstring_end(buf: &[u8], at: usize) -> Result<usize, Reason> {
    let rest = buf.get(at..).ok_or("cstring out of bounds")?;
    // Keys are short and almost always ASCII: one pass finds the NUL and
    // tells whether the (slower) UTF-8 check is needed at all.
    let mut ascii = true;
    for (i, &b) in rest.iter().enumerate() {
        if b == 0 {
            if !ascii {
                std::str::from_utf8(&rest[..i]).map_err(|_| "cstring is not UTF-8")?;
            }
            return Ok(at + i + 1);
        }
        ascii &= b < 0x80;
    }
    Err("unterminated cstring")
}

/// Validates a length-prefixed string at `at`, returns the end index.
fn string_end(buf: &[u8], at: usize) -> Result<usize, Reason> {
    let n = read_i32(buf, at).ok_or("truncated string length")?;
    if n < 1 {
        return Err("string length below 1");
    }
    let start = at + 4;
    let end = start
        .checked_add(n as usize)
        .filter(|&e| e <= buf.len())
        .ok_or("string runs past the document")?;
    if buf[end - 1] != 0 {
        return Err("string not NUL-terminated");
    }
    let text = &buf[start..end - 1];
    if !text.is_ascii() {
        std::str::from_utf8(text).map_err(|_| "string is not UTF-8")?;
    }
    Ok(end)
}

/// Validates one whole document (`doc` is exactly its bytes).
fn validate_doc(doc: &[u8], depth: u32, max_depth: u32) -> Result<(), Reason> {
    if depth > max_depth {
        return Err("documents nested too deeply");
    }
    let declared = read_len(doc).ok_or("invalid document length")?;
    if declared != doc.len() {
        return Err("document length mismatch");
    }
    if doc[doc.len() - 1] != 0 {
        return Err("document not NUL-terminated");
    }
    let last = doc.len() - 1;
    let mut at = 4;
    while at < last {
        let kind = doc[at];
        at = cstring_end(doc, at + 1)?;
        if at > last {
            return Err("element key runs past the document");
        }
        at = element_end(doc, kind, at, depth, max_depth)?;
        if at > last {
            return Err("element runs past the document");
        }
    }
    Ok(())
}

/// Validates the value of type `kind` at `at` and returns its end.
fn element_end(
    doc: &[u8],
    kind: u8,
    at: usize,
    depth: u32,
    max_depth: u32,
) -> Result<usize, Reason> {
    let fixed = |n: usize| -> Result<usize, Reason> {
        let end = at + n;
        if end > doc.len() {
            Err("fixed-size value runs past the document")
        } else {
            Ok(end)
        }
    };
    match kind {
        0x01 | 0x09 | 0x11 | 0x12 => fixed(8),
        0x10 => fixed(4),
        0x13 => fixed(16),
        0x07 => fixed(12),
        0x06 | 0x0A | 0xFF | 0x7F => Ok(at),
        0x08 => {
            let end = fixed(1)?;
            if doc[at] > 1 {
                return Err("boolean byte is neither 0 nor 1");
            }
            Ok(end)
        }
        0x02 | 0x0D | 0x0E => string_end(doc, at),
        0x03 | 0x04 => {
            let n = read_len(&doc[at..]).ok_or("invalid embedded document length")?;
            let end = at
                .checked_add(n)
                .filter(|&e| e <= doc.len())
                .ok_or("embedded document runs past its parent")?;
            validate_doc(&doc[at..end], depth + 1, max_depth)?;
            Ok(end)
        }
        0x05 => {
            let n = read_i32(doc, at).ok_or("truncated binary length")?;
            if n < 0 {
                return Err("negative binary length");
            }
            let n = n as usize;
            let data = at + 5;
            let end = data
                .checked_add(n)
                .filter(|&e| e <= doc.len())
                .ok_or("binary runs past the document")?;
            if doc[at + 4] == 0x02 {
                let inner = read_i32(doc, data).ok_or("old binary without inner length")?;
                if inner < 0 || inner as usize + 4 != n {
                    return Err("old binary inner length mismatch");
                }
            }
            Ok(end)
        }
        0x0B => {
            let p = cstring_end(doc, at)?;
            cstring_end(doc, p)
        }
        0x0C => {
            let s = string_end(doc, at)?;
            let end = s + 12;
            if end > doc.len() {
                return Err("dbpointer runs past the document");
            }
            Ok(end)
        }
        0x0F => {
            let total = read_i32(doc, at).ok_or("truncated code-with-scope length")?;
            // 4 (total) + 5 (empty string) + 5 (empty scope)
            if total < 14 {
                return Err("code-with-scope too short");
            }
            let end = at
                .checked_add(total as usize)
                .filter(|&e| e <= doc.len())
                .ok_or("code-with-scope runs past the document")?;
            let code_end = string_end(&doc[..end], at + 4)?;
            validate_doc(&doc[code_end..end], depth + 1, max_depth)?;
            Ok(end)
        }
        _ => Err("unknown element type"),
    }
}

/// Where a value lives inside a document: element type and byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub kind: u8,
    pub start: usize,
    pub end: usize,
}

/// Finds a top-level field of an already validated document, returning the
/// position of its value. Used to scrub secrets in place.
pub(crate) fn find_field(doc: &[u8], key: &str) -> Option<Span> {
    let last = doc.len().checked_sub(1)?;
    let mut at = 4;
    while at < last {
        let kind = *doc.get(at)?;
        let key_start = at + 1;
        let key_end = cstring_end(doc, key_start).ok()?;
        let start = key_end;
        let end = element_end(doc, kind, start, 0, u32::MAX).ok()?;
        if &doc[key_start..key_end - 1] == key.as_bytes() {
            return Some(Span { kind, start, end });
        }
        at = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::rawdoc;

    #[test]
    fn accepts_every_type() {
        let doc = rawdoc! {
            "d": 1.5, "s": "x", "o": {"a": 1}, "a": [1, "b"],
            "b": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1,2] },
            "oid": bson::oid::ObjectId::new(), "t": true, "dt": bson::DateTime::from_millis(5),
            "n": null, "re": bson::Regex { pattern: "a".try_into().unwrap(), options: "i".try_into().unwrap() }, "i": 3, "ts": bson::Timestamp{time:1, increment:2},
            "l": 5i64, "dec": bson::Decimal128::from_bytes([0;16]), "min": bson::RawBson::MinKey, "max": bson::RawBson::MaxKey,
        };
        validate_exact(doc.as_bytes(), &Limits::default()).unwrap();
    }

    #[test]
    fn rejects_bad_bool_and_truncation() {
        let mut bytes = rawdoc! {"t": true}.into_bytes();
        bytes[7] = 2;
        assert!(validate_exact(&bytes, &Limits::default()).is_err());
        let bytes = rawdoc! {"s": "hello"}.into_bytes();
        for cut in 0..bytes.len() {
            assert!(validate_exact(&bytes[..cut], &Limits::default()).is_err());
        }
    }

    #[test]
    fn rejects_deep_nesting() {
        let limits = Limits {
            max_depth: 3,
            ..Limits::default()
        };
        let doc = rawdoc! {"a": {"a": {"a": {"a": {"a": 1}}}}};
        assert!(validate_exact(doc.as_bytes(), &limits).is_err());
    }

    #[test]
    fn finds_fields() {
        let doc = rawdoc! {"a": 1, "payload": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![9,9,9] }};
        let span = find_field(doc.as_bytes(), "payload").unwrap();
        assert_eq!(span.kind, 5);
        assert_eq!(span.end - span.start, 8);
        assert!(find_field(doc.as_bytes(), "nope").is_none());
    }
}
