//! Bounds-checked cursor over a message body. Every read checks the remaining length
//! first, so hostile length fields produce [`ParseError`]s, never panics, and slices
//! share the input buffer (`Bytes`) instead of copying.

use super::Consistency;
use crate::error::{ParseError, ParseErrorKind};
use crate::text::Text;
use bytes::Bytes;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A `[value]`: bytes, null (-1) or not set (-2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WireValue {
    Bytes(Bytes),
    Null,
    Unset,
}

impl WireValue {
    /// The bytes, if this is neither null nor unset.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            WireValue::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

/// Cursor over a shared buffer.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
    pos: usize,
}

type R<T> = Result<T, ParseError>;

impl Reader {
    pub fn new(buf: Bytes) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Everything not read yet, consuming it.
    pub fn rest(&mut self) -> Bytes {
        let out = self.buf.slice(self.pos.min(self.buf.len())..);
        self.pos = self.buf.len();
        out
    }

    pub fn err(&self, what: &'static str, kind: ParseErrorKind) -> ParseError {
        ParseError::new(what, self.pos, kind)
    }

    fn need(&self, what: &'static str, n: usize) -> R<()> {
        if self.remaining() < n {
            Err(self.err(
                what,
                ParseErrorKind::Truncated {
                    needed: n as u64,
                    available: self.remaining() as u64,
                },
            ))
        } else {
            Ok(())
        }
    }

    /// Takes `n` bytes as a shared slice.
    pub fn take(&mut self, what: &'static str, n: usize) -> R<Bytes> {
        self.need(what, n)?;
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> R<[u8; N]> {
        self.need(what, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.pos..self.pos + N]);
        self.pos += N;
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> R<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> R<u16> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub fn i16(&mut self, what: &'static str) -> R<i16> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    pub fn i32(&mut self, what: &'static str) -> R<i32> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &'static str) -> R<u32> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub fn i64(&mut self, what: &'static str) -> R<i64> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    /// `[uuid]`: 16 raw bytes.
    pub fn uuid(&mut self) -> R<[u8; 16]> {
        self.array("[uuid]")
    }

    fn utf8(&self, what: &'static str, b: Bytes, start: usize) -> R<Text> {
        Text::from_utf8(b).map_err(|_| ParseError::new(what, start, ParseErrorKind::InvalidUtf8))
    }

    /// `[string]`: `[short]` length then UTF-8.
    pub fn string(&mut self) -> R<Text> {
        let start = self.pos;
        let n = self.u16("[string]")? as usize;
        let b = self.take("[string]", n)?;
        self.utf8("[string]", b, start)
    }

    /// `[long string]`: `[int]` length then UTF-8.
    pub fn long_string(&mut self) -> R<Text> {
        let start = self.pos;
        let n = self.i32("[long string]")?;
        if n < 0 {
            return Err(ParseError::new(
                "[long string]",
                start,
                ParseErrorKind::InvalidLength(n.into()),
            ));
        }
        let b = self.take("[long string]", n as usize)?;
        self.utf8("[long string]", b, start)
    }

    /// `[bytes]`: `[int]` length, negative = null.
    pub fn bytes(&mut self) -> R<Option<Bytes>> {
        let n = self.i32("[bytes]")?;
        if n < 0 {
            return Ok(None);
        }
        Ok(Some(self.take("[bytes]", n as usize)?))
    }

    /// `[value]`: like `[bytes]`, with -1 null, -2 not set, anything lower invalid.
    pub fn value(&mut self) -> R<WireValue> {
        let start = self.pos;
        let n = self.i32("[value]")?;
        match n {
            -1 => Ok(WireValue::Null),
            -2 => Ok(WireValue::Unset),
            n if n < 0 => Err(ParseError::new(
                "[value]",
                start,
                ParseErrorKind::InvalidLength(n.into()),
            )),
            n => Ok(WireValue::Bytes(self.take("[value]", n as usize)?)),
        }
    }

    /// `[short bytes]`: `[short]` length then bytes.
    pub fn short_bytes(&mut self) -> R<Bytes> {
        let n = self.u16("[short bytes]")? as usize;
        self.take("[short bytes]", n)
    }

    /// A count for `n` elements each at least `min_size` bytes long, checked against
    /// the remaining input so a lying count cannot make us reserve a huge vector.
    pub fn capacity_for(&self, n: usize, min_size: usize) -> usize {
        n.min(self.remaining() / min_size.max(1))
    }

    /// `[string list]`.
    pub fn string_list(&mut self) -> R<Vec<Text>> {
        let n = self.u16("[string list]")? as usize;
        let mut out = Vec::with_capacity(self.capacity_for(n, 2));
        for _ in 0..n {
            out.push(self.string()?);
        }
        Ok(out)
    }

    /// `[string map]`, order preserved.
    pub fn string_map(&mut self) -> R<Vec<(Text, Text)>> {
        let n = self.u16("[string map]")? as usize;
        let mut out = Vec::with_capacity(self.capacity_for(n, 4));
        for _ in 0..n {
            let k = self.string()?;
            let v = self.string()?;
            out.push((k, v));
        }
        Ok(out)
    }

    /// `[string multimap]`, order preserved.
    pub fn string_multimap(&mut self) -> R<Vec<(Text, Vec<Text>)>> {
        let n = self.u16("[string multimap]")? as usize;
        let mut out = Vec::with_capacity(self.capacity_for(n, 4));
        for _ in 0..n {
            let k = self.string()?;
            let v = self.string_list()?;
            out.push((k, v));
        }
        Ok(out)
    }

    /// `[bytes map]`, order preserved.
    pub fn bytes_map(&mut self) -> R<Vec<(Text, Option<Bytes>)>> {
        let n = self.u16("[bytes map]")? as usize;
        let mut out = Vec::with_capacity(self.capacity_for(n, 6));
        for _ in 0..n {
            let k = self.string()?;
            let v = self.bytes()?;
            out.push((k, v));
        }
        Ok(out)
    }

    /// `[inetaddr]`: `[byte]` size (4 or 16) then the address.
    pub fn inetaddr(&mut self) -> R<IpAddr> {
        let start = self.pos;
        match self.u8("[inetaddr]")? {
            4 => Ok(IpAddr::V4(Ipv4Addr::from(self.array::<4>("[inetaddr]")?))),
            16 => Ok(IpAddr::V6(Ipv6Addr::from(self.array::<16>("[inetaddr]")?))),
            n => Err(ParseError::new(
                "[inetaddr]",
                start,
                ParseErrorKind::WrongSize(n.into()),
            )),
        }
    }

    /// `[inet]`: `[inetaddr]` then an `[int]` port.
    pub fn inet(&mut self) -> R<SocketAddr> {
        let start = self.pos;
        let ip = self.inetaddr()?;
        let port = self.i32("[inet] port")?;
        let port = u16::try_from(port).map_err(|_| {
            ParseError::new(
                "[inet] port",
                start,
                ParseErrorKind::InvalidLength(port.into()),
            )
        })?;
        Ok(SocketAddr::new(ip, port))
    }

    pub fn consistency(&mut self) -> R<Consistency> {
        Ok(Consistency::from_u16(self.u16("[consistency]")?))
    }

    /// `[unsigned vint]`: leading one-bits of the first byte count the extra bytes.
    pub fn unsigned_vint(&mut self) -> R<u64> {
        let start = self.pos;
        let first = self.u8("[unsigned vint]")?;
        let extra = first.leading_ones() as usize;
        if extra == 0 {
            return Ok(first.into());
        }
        let b = self.take("[unsigned vint]", extra)?;
        // The first byte keeps 8 - extra - 1 value bits (none when extra is 8).
        let mut v: u64 = if extra >= 7 {
            0
        } else {
            u64::from(first & (0xffu8 >> (extra + 1)))
        };
        for byte in b.iter() {
            v = (v << 8) | u64::from(*byte);
        }
        let _ = start;
        Ok(v)
    }

    /// `[vint]`: zig-zag over `[unsigned vint]`.
    pub fn vint(&mut self) -> R<i64> {
        let u = self.unsigned_vint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
}
