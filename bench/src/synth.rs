//! Shared pieces of the generated captures: a seeded xorshift generator (no
//! dependency, same sequence everywhere) and Ethernet/IPv4/TCP framing of one segment
//! (checksums zero: tidemark does not verify them, and neither do the references).

/// xorshift64: deterministic for a seed, fast, good enough for workloads.
pub struct Rng(pub u64);

impl Rng {
    /// A generator for `seed` (never the all-zero state xorshift cannot leave).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform-ish in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// One end of a TCP connection.
pub type Endpoint = ([u8; 4], u16);

/// An Ethernet II / IPv4 / TCP frame carrying `payload` from `src` to `dst`.
pub fn tcp_frame(
    src: Endpoint,
    dst: Endpoint,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(54 + payload.len());
    v.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
    v.extend_from_slice(&[0x45, 0]);
    v.extend_from_slice(&((40 + payload.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
    v.extend_from_slice(&src.0);
    v.extend_from_slice(&dst.0);
    v.extend_from_slice(&src.1.to_be_bytes());
    v.extend_from_slice(&dst.1.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ack.to_be_bytes());
    v.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    v.extend_from_slice(payload);
    v
}
