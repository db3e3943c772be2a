//! Bounds-checked little-endian reader over a message body.
//!
//! Every read names the field it is reading so errors say what was cut off.

use bytes::Bytes;

use crate::bsonval;
use crate::doc::{Doc, DocSeq};
use crate::error::ErrorKind;
use crate::limits::Limits;

pub(crate) struct Reader<'l> {
    buf: Bytes,
    pos: usize,
    limits: &'l Limits,
}

impl<'l> Reader<'l> {
    pub fn new(buf: Bytes, limits: &'l Limits) -> Self {
        Reader {
            buf,
            pos: 0,
            limits,
        }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], ErrorKind> {
        if self.remaining() < n {
            return Err(ErrorKind::Truncated {
                what,
                needed: n,
                available: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, ErrorKind> {
        Ok(self.take(1, what)?[0])
    }

    pub fn i32(&mut self, what: &'static str) -> Result<i32, ErrorKind> {
        let b = self.take(4, what)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, ErrorKind> {
        Ok(self.i32(what)? as u32)
    }

    pub fn i64(&mut self, what: &'static str) -> Result<i64, ErrorKind> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }

    /// A NUL-terminated UTF-8 string.
    pub fn cstring(&mut self, what: &'static str) -> Result<String, ErrorKind> {
        let rest = &self.buf[self.pos..];
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(ErrorKind::InvalidCString { what })?;
        let s = std::str::from_utf8(&rest[..nul])
            .map_err(|_| ErrorKind::InvalidCString { what })?
            .to_owned();
        self.pos += nul + 1;
        Ok(s)
    }

    /// One validated document, sliced from the buffer without copying.
    pub fn doc(&mut self, what: &'static str) -> Result<Doc, ErrorKind> {
        let rest = &self.buf[self.pos..];
        if rest.len() < 4 {
            return Err(ErrorKind::Truncated {
                what,
                needed: 4,
                available: rest.len(),
            });
        }
        let declared = i32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if declared > 0 && declared as u64 > self.limits.max_document as u64 {
            return Err(ErrorKind::DocumentTooLarge {
                what,
                size: declared as u64,
                max: self.limits.max_document as u64,
            });
        }
        let len = bsonval::validate_prefix(rest, self.limits).map_err(|reason| {
            ErrorKind::InvalidBson {
                what,
                reason: reason.to_owned(),
            }
        })?;
        let d = Doc::trusted(self.buf.slice(self.pos..self.pos + len));
        self.pos += len;
        Ok(d)
    }

    /// `n` raw bytes as a shared slice.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<Bytes, ErrorKind> {
        self.take(n, what)?;
        Ok(self.buf.slice(self.pos - n..self.pos))
    }

    /// All remaining bytes as a validated document sequence.
    pub fn rest_docs(&mut self, what: &'static str) -> Result<DocSeq, ErrorKind> {
        let n = self.remaining();
        let b = self.bytes(n, what)?;
        DocSeq::new(b, self.limits).map_err(|reason| ErrorKind::InvalidBson {
            what,
            reason: reason.to_owned(),
        })
    }

    /// Fails if anything is left.
    pub fn finish(&self, what: &'static str) -> Result<(), ErrorKind> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(ErrorKind::TrailingBytes { what, count }),
        }
    }
}
