//! Encoding side of the spec notations. Writes into a plain `Vec<u8>` the caller owns,
//! so an encoder can build a whole frame (header placeholder included) in one buffer.

use super::{Consistency, WireValue};
use std::net::{IpAddr, SocketAddr};

/// Appends protocol notations to a byte vector. Lengths that cannot be represented
/// (a `[string]` over 65535 bytes, a `[bytes]` over 2 GiB) are clamped by truncating
/// the count, which is the caller's bug to avoid; the encoder never panics.
pub struct Writer<'a> {
    pub buf: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        Writer { buf }
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    fn short_len(len: usize) -> u16 {
        u16::try_from(len).unwrap_or(u16::MAX)
    }

    fn int_len(len: usize) -> i32 {
        i32::try_from(len).unwrap_or(i32::MAX)
    }

    pub fn string(&mut self, s: &str) {
        let n = Self::short_len(s.len());
        self.u16(n);
        self.raw(&s.as_bytes()[..n as usize]);
    }

    pub fn long_string(&mut self, s: &str) {
        let n = Self::int_len(s.len());
        self.i32(n);
        self.raw(&s.as_bytes()[..n as usize]);
    }

    pub fn bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.i32(-1),
            Some(b) => {
                let n = Self::int_len(b.len());
                self.i32(n);
                self.raw(&b[..n as usize]);
            }
        }
    }

    pub fn value(&mut self, v: &WireValue) {
        match v {
            WireValue::Null => self.i32(-1),
            WireValue::Unset => self.i32(-2),
            WireValue::Bytes(b) => self.bytes(Some(b)),
        }
    }

    pub fn short_bytes(&mut self, b: &[u8]) {
        let n = Self::short_len(b.len());
        self.u16(n);
        self.raw(&b[..n as usize]);
    }

    pub fn string_list<S: AsRef<str>>(&mut self, l: &[S]) {
        let n = Self::short_len(l.len());
        self.u16(n);
        for s in l.iter().take(n as usize) {
            self.string(s.as_ref());
        }
    }

    pub fn string_map<K: AsRef<str>, V: AsRef<str>>(&mut self, m: &[(K, V)]) {
        let n = Self::short_len(m.len());
        self.u16(n);
        for (k, v) in m.iter().take(n as usize) {
            self.string(k.as_ref());
            self.string(v.as_ref());
        }
    }

    pub fn string_multimap<K: AsRef<str>, V: AsRef<str>>(&mut self, m: &[(K, Vec<V>)]) {
        let n = Self::short_len(m.len());
        self.u16(n);
        for (k, v) in m.iter().take(n as usize) {
            self.string(k.as_ref());
            self.string_list(v);
        }
    }

    pub fn bytes_map<K: AsRef<str>, B: AsRef<[u8]>>(&mut self, m: &[(K, Option<B>)]) {
        let n = Self::short_len(m.len());
        self.u16(n);
        for (k, v) in m.iter().take(n as usize) {
            self.string(k.as_ref());
            self.bytes(v.as_ref().map(|b| b.as_ref()));
        }
    }

    pub fn inetaddr(&mut self, ip: &IpAddr) {
        match ip {
            IpAddr::V4(a) => {
                self.u8(4);
                self.raw(&a.octets());
            }
            IpAddr::V6(a) => {
                self.u8(16);
                self.raw(&a.octets());
            }
        }
    }

    pub fn inet(&mut self, a: &SocketAddr) {
        self.inetaddr(&a.ip());
        self.i32(a.port().into());
    }

    pub fn consistency(&mut self, c: Consistency) {
        self.u16(c.to_u16());
    }

    /// `[unsigned vint]`, shortest form.
    pub fn unsigned_vint(&mut self, v: u64) {
        // Number of significant bits decides the extra byte count: each extra byte adds
        // 8 bits but costs one bit of the first byte.
        let bits = 64 - v.leading_zeros() as usize;
        // With e extra bytes the value has 7 * (e + 1) bits (e <= 7), or 64 when e = 8.
        let extra = (0..8usize).find(|e| bits <= 7 * (e + 1)).unwrap_or(8);
        if extra == 0 {
            self.u8(v as u8);
            return;
        }
        let mut out = [0u8; 9];
        let mut rest = v;
        for i in (1..=extra).rev() {
            out[i] = rest as u8;
            rest >>= 8;
        }
        let prefix = (0xff00u16 >> extra) as u8;
        out[0] = prefix | (rest as u8);
        self.raw(&out[..=extra]);
    }

    /// `[vint]`: zig-zag then `[unsigned vint]`.
    pub fn vint(&mut self, v: i64) {
        self.unsigned_vint(((v << 1) ^ (v >> 63)) as u64);
    }
}
