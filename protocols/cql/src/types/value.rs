//! [`Value`]: a typed CQL value (spec section 5/6), decoded from a `[bytes]` given its
//! [`ColumnType`], and encoded back. Blobs, text, varints and unknown custom values are
//! `Bytes` slices of the frame, so decoding copies nothing.

use super::column_type::{ColumnType, MAX_DEPTH};
use crate::error::{ParseError, ParseErrorKind};
use crate::text::Text;
use crate::wire::{Reader, WireValue, Writer};
use bytes::Bytes;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A decoded CQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `[bytes]` with a negative length: no value.
    Null,
    /// `[value]` -2 (protocol v4+): leave the column unchanged.
    Unset,
    /// A zero-length value for a type that is not naturally empty (Cassandra's legacy
    /// "empty" int, uuid, ...), distinct from null.
    Empty,
    Ascii(Text),
    Text(Text),
    Blob(Bytes),
    Boolean(bool),
    BigInt(i64),
    Counter(i64),
    Int(i32),
    SmallInt(i16),
    TinyInt(i8),
    Float(f32),
    Double(f64),
    /// Arbitrary-precision integer, big-endian two's complement as on the wire.
    Varint(Bytes),
    /// `unscaled * 10^-scale`, unscaled as a varint.
    Decimal {
        scale: i32,
        unscaled: Bytes,
    },
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Days with the Unix epoch at 2^31.
    Date(u32),
    /// Nanoseconds since midnight.
    Time(i64),
    Uuid([u8; 16]),
    Timeuuid([u8; 16]),
    Inet(IpAddr),
    Duration {
        months: i32,
        days: i32,
        nanos: i64,
    },
    List(Vec<Value>),
    Set(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Tuple(Vec<Value>),
    /// Field values in the type's field order; may be shorter than the type.
    Udt(Vec<Value>),
    Vector(Vec<Value>),
    /// A custom type this crate does not know: the raw bytes.
    Custom(Bytes),
}

type R<T> = Result<T, ParseError>;

fn sized<const N: usize>(b: &[u8], what: &'static str) -> R<[u8; N]> {
    <[u8; N]>::try_from(b).map_err(|_| ParseError::new(what, 0, ParseErrorKind::WrongSize(b.len())))
}

impl Value {
    /// Decodes a `[value]` from the wire (null, unset or bytes) as `ty`.
    pub fn from_wire(ty: &ColumnType, v: &WireValue) -> R<Value> {
        match v {
            WireValue::Null => Ok(Value::Null),
            WireValue::Unset => Ok(Value::Unset),
            WireValue::Bytes(b) => Value::decode(ty, b),
        }
    }

    /// Decodes an optional `[bytes]` (None = null) as `ty`.
    pub fn from_bytes(ty: &ColumnType, v: Option<&Bytes>) -> R<Value> {
        match v {
            None => Ok(Value::Null),
            Some(b) => Value::decode(ty, b),
        }
    }

    /// Decodes the serialized bytes of a non-null value of type `ty`.
    pub fn decode(ty: &ColumnType, b: &Bytes) -> R<Value> {
        decode_depth(ty, b, 0)
    }

    /// Serializes the value's content (no length prefix). Null, unset and empty write
    /// nothing; use [`Value::encode_value`] for the `[value]` form with its length.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_content(self, out)
    }

    /// Writes the value as a `[value]`: `[int]` length then content; -1 for null, -2
    /// for unset.
    pub fn encode_value(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Value::Unset => out.extend_from_slice(&(-2i32).to_be_bytes()),
            v => {
                let at = out.len();
                out.extend_from_slice(&[0; 4]);
                encode_content(v, out);
                let len = i32::try_from(out.len() - at - 4).unwrap_or(i32::MAX);
                out[at..at + 4].copy_from_slice(&len.to_be_bytes());
            }
        }
    }

    /// The value as a wire `[value]` (allocates the serialized bytes).
    pub fn to_wire(&self) -> WireValue {
        match self {
            Value::Null => WireValue::Null,
            Value::Unset => WireValue::Unset,
            v => {
                let mut out = Vec::new();
                v.encode(&mut out);
                WireValue::Bytes(Bytes::from(out))
            }
        }
    }

    /// True if the serialized size is fixed for this value's type (vector packing).
    fn is_fixed_size(&self) -> bool {
        matches!(
            self,
            Value::Boolean(_)
                | Value::Int(_)
                | Value::Float(_)
                | Value::Date(_)
                | Value::BigInt(_)
                | Value::Counter(_)
                | Value::Double(_)
                | Value::Timestamp(_)
                | Value::Time(_)
                | Value::Uuid(_)
                | Value::Timeuuid(_)
        )
    }
}

fn decode_depth(ty: &ColumnType, b: &Bytes, depth: usize) -> R<Value> {
    if depth > MAX_DEPTH {
        return Err(ParseError::new("value", 0, ParseErrorKind::TooDeep));
    }
    use ColumnType as T;
    let ty = ty.effective();
    match ty {
        T::Ascii => {
            if !b.is_ascii() {
                return Err(ParseError::new("ascii", 0, ParseErrorKind::InvalidUtf8));
            }
            return Ok(Value::Ascii(text(b, "ascii")?));
        }
        T::Varchar => return Ok(Value::Text(text(b, "text")?)),
        T::Blob => return Ok(Value::Blob(b.clone())),
        T::Custom { .. } => return Ok(Value::Custom(b.clone())),
        _ => {}
    }
    if b.is_empty() && !matches!(ty, T::Vector { .. }) {
        return Ok(Value::Empty);
    }
    Ok(match ty {
        T::Boolean => Value::Boolean(sized::<1>(b, "boolean")?[0] != 0),
        T::BigInt => Value::BigInt(i64::from_be_bytes(sized(b, "bigint")?)),
        T::Counter => Value::Counter(i64::from_be_bytes(sized(b, "counter")?)),
        T::Int => Value::Int(i32::from_be_bytes(sized(b, "int")?)),
        T::SmallInt => Value::SmallInt(i16::from_be_bytes(sized(b, "smallint")?)),
        T::TinyInt => Value::TinyInt(i8::from_be_bytes(sized(b, "tinyint")?)),
        T::Float => Value::Float(f32::from_be_bytes(sized(b, "float")?)),
        T::Double => Value::Double(f64::from_be_bytes(sized(b, "double")?)),
        T::Timestamp => Value::Timestamp(i64::from_be_bytes(sized(b, "timestamp")?)),
        T::Date => Value::Date(u32::from_be_bytes(sized(b, "date")?)),
        T::Time => {
            let t = i64::from_be_bytes(sized(b, "time")?);
            if !(0..86_400_000_000_000).contains(&t) {
                return Err(ParseError::new(
                    "time",
                    0,
                    ParseErrorKind::Invalid("out of range"),
                ));
            }
            Value::Time(t)
        }
        T::Uuid => Value::Uuid(sized(b, "uuid")?),
        T::Timeuuid => Value::Timeuuid(sized(b, "timeuuid")?),
        T::Varint => Value::Varint(b.clone()),
        T::Decimal => {
            let scale = i32::from_be_bytes(sized(b.get(..4).unwrap_or(b), "decimal scale")?);
            let unscaled = b.slice(4..);
            if unscaled.is_empty() {
                return Err(ParseError::new("decimal", 4, ParseErrorKind::WrongSize(0)));
            }
            Value::Decimal { scale, unscaled }
        }
        T::Inet => match b.len() {
            4 => Value::Inet(IpAddr::V4(Ipv4Addr::from(sized::<4>(b, "inet")?))),
            16 => Value::Inet(IpAddr::V6(Ipv6Addr::from(sized::<16>(b, "inet")?))),
            n => return Err(ParseError::new("inet", 0, ParseErrorKind::WrongSize(n))),
        },
        T::Duration => {
            let mut r = Reader::new(b.clone());
            let months = r.vint()?;
            let days = r.vint()?;
            let nanos = r.vint()?;
            let (Ok(months), Ok(days)) = (i32::try_from(months), i32::try_from(days)) else {
                return Err(r.err("duration", ParseErrorKind::Invalid("months/days overflow")));
            };
            finish(&r, "duration")?;
            Value::Duration {
                months,
                days,
                nanos,
            }
        }
        T::List(e) => Value::List(collection(e, b, depth)?),
        T::Set(e) => Value::Set(collection(e, b, depth)?),
        T::Map(k, v) => {
            let mut r = Reader::new(b.clone());
            let n = count(&mut r, "map size")?;
            let mut out = Vec::with_capacity(r.capacity_for(n, 8));
            for _ in 0..n {
                let kb = r.bytes()?;
                let vb = r.bytes()?;
                out.push((element(k, kb, depth)?, element(v, vb, depth)?));
            }
            finish(&r, "map")?;
            Value::Map(out)
        }
        T::Tuple(ts) => {
            let mut r = Reader::new(b.clone());
            let mut out = Vec::with_capacity(ts.len().min(r.remaining() / 4));
            for t in ts {
                if r.is_empty() {
                    break;
                }
                let eb = r.bytes()?;
                out.push(element(t, eb, depth)?);
            }
            finish(&r, "tuple")?;
            Value::Tuple(out)
        }
        T::Udt { fields, .. } => {
            let mut r = Reader::new(b.clone());
            let mut out = Vec::with_capacity(fields.len().min(r.remaining() / 4));
            for (_, t) in fields {
                if r.is_empty() {
                    break;
                }
                let eb = r.bytes()?;
                out.push(element(t, eb, depth)?);
            }
            finish(&r, "udt")?;
            Value::Udt(out)
        }
        T::Vector {
            element: e,
            dimension,
        } => {
            let mut r = Reader::new(b.clone());
            let n = *dimension as usize;
            let fixed = e.fixed_len();
            let mut out = Vec::with_capacity(r.capacity_for(n, fixed.unwrap_or(1)));
            for _ in 0..n {
                let len = match fixed {
                    Some(l) => l,
                    None => {
                        let l = r.unsigned_vint()?;
                        usize::try_from(l).map_err(|_| {
                            r.err("vector element", ParseErrorKind::InvalidLength(-1))
                        })?
                    }
                };
                let eb = r.take("vector element", len)?;
                out.push(decode_depth(e, &eb, depth + 1)?);
            }
            finish(&r, "vector")?;
            Value::Vector(out)
        }
        // Handled above.
        T::Ascii | T::Varchar | T::Blob | T::Custom { .. } => Value::Custom(b.clone()),
    })
}

fn text(b: &Bytes, what: &'static str) -> R<Text> {
    Text::from_utf8(b.clone()).map_err(|_| ParseError::new(what, 0, ParseErrorKind::InvalidUtf8))
}

fn finish(r: &Reader, what: &'static str) -> R<()> {
    if r.is_empty() {
        Ok(())
    } else {
        Err(r.err(what, ParseErrorKind::Invalid("trailing bytes")))
    }
}

fn count(r: &mut Reader, what: &'static str) -> R<usize> {
    let n = r.i32(what)?;
    usize::try_from(n).map_err(|_| r.err(what, ParseErrorKind::InvalidLength(n.into())))
}

fn element(ty: &ColumnType, b: Option<Bytes>, depth: usize) -> R<Value> {
    match b {
        None => Ok(Value::Null),
        Some(b) => decode_depth(ty, &b, depth + 1),
    }
}

fn collection(e: &ColumnType, b: &Bytes, depth: usize) -> R<Vec<Value>> {
    let mut r = Reader::new(b.clone());
    let n = count(&mut r, "collection size")?;
    let mut out = Vec::with_capacity(r.capacity_for(n, 4));
    for _ in 0..n {
        let eb = r.bytes()?;
        out.push(element(e, eb, depth)?);
    }
    finish(&r, "collection")?;
    Ok(out)
}

/// Writes `[bytes]` for a collection/tuple/UDT element.
fn encode_element(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null | Value::Unset => out.extend_from_slice(&(-1i32).to_be_bytes()),
        v => v.encode_value(out),
    }
}

fn len_i32(n: usize) -> [u8; 4] {
    i32::try_from(n).unwrap_or(i32::MAX).to_be_bytes()
}

fn encode_content(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null | Value::Unset | Value::Empty => {}
        Value::Ascii(t) | Value::Text(t) => out.extend_from_slice(t.as_bytes()),
        Value::Blob(b) | Value::Varint(b) | Value::Custom(b) => out.extend_from_slice(b),
        Value::Boolean(x) => out.push(u8::from(*x)),
        Value::BigInt(x) | Value::Counter(x) | Value::Timestamp(x) | Value::Time(x) => {
            out.extend_from_slice(&x.to_be_bytes())
        }
        Value::Int(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::SmallInt(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::TinyInt(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::Float(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::Double(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::Date(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::Decimal { scale, unscaled } => {
            out.extend_from_slice(&scale.to_be_bytes());
            out.extend_from_slice(unscaled);
        }
        Value::Uuid(u) | Value::Timeuuid(u) => out.extend_from_slice(u),
        Value::Inet(IpAddr::V4(a)) => out.extend_from_slice(&a.octets()),
        Value::Inet(IpAddr::V6(a)) => out.extend_from_slice(&a.octets()),
        Value::Duration {
            months,
            days,
            nanos,
        } => {
            let mut w = Writer::new(out);
            w.vint((*months).into());
            w.vint((*days).into());
            w.vint(*nanos);
        }
        Value::List(items) | Value::Set(items) => {
            out.extend_from_slice(&len_i32(items.len()));
            for i in items {
                encode_element(i, out);
            }
        }
        Value::Map(entries) => {
            out.extend_from_slice(&len_i32(entries.len()));
            for (k, v) in entries {
                encode_element(k, out);
                encode_element(v, out);
            }
        }
        Value::Tuple(items) | Value::Udt(items) => {
            for i in items {
                encode_element(i, out);
            }
        }
        Value::Vector(items) => {
            for i in items {
                if i.is_fixed_size() {
                    i.encode(out);
                } else {
                    let mut tmp = Vec::new();
                    i.encode(&mut tmp);
                    Writer::new(out).unsigned_vint(tmp.len() as u64);
                    out.extend_from_slice(&tmp);
                }
            }
        }
    }
}
