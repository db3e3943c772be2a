//! Frame-body compression of protocol v3/v4 (negotiated in STARTUP, applied per frame
//! when the header's compression flag is set): `lz4` is a 4-byte big-endian
//! uncompressed length followed by an LZ4 block; `snappy` is a raw Snappy block. The
//! declared uncompressed size is checked against the cap before anything is allocated.

use crate::error::ErrorKind;

/// A compression algorithm as named in STARTUP's `COMPRESSION` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    #[default]
    None,
    Lz4,
    Snappy,
}

impl Compression {
    /// From the STARTUP option value (case-insensitive); unknown names give `None`.
    pub fn from_name(name: &str) -> Compression {
        if name.eq_ignore_ascii_case("lz4") {
            Compression::Lz4
        } else if name.eq_ignore_ascii_case("snappy") {
            Compression::Snappy
        } else {
            Compression::None
        }
    }

    pub fn name(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Lz4 => Some("lz4"),
            Compression::Snappy => Some("snappy"),
        }
    }
}

/// Decompresses a v3/v4 LZ4 body (`[int]` length + block).
pub fn lz4_decompress(body: &[u8], max_len: u32) -> Result<Vec<u8>, ErrorKind> {
    let err = |m| ErrorKind::Decompress("lz4", m);
    let (len, block) = body
        .split_first_chunk::<4>()
        .ok_or(err("missing length prefix"))?;
    let len = u32::from_be_bytes(*len);
    if len > max_len {
        return Err(ErrorKind::FrameTooLarge {
            len: len.into(),
            limit: max_len.into(),
        });
    }
    // An LZ4 block expands at most ~255:1; a larger claim is a lie, refused before
    // allocating for it.
    if u64::from(len) > (block.len() as u64) * 255 + 16 {
        return Err(err("declared length impossible for the block size"));
    }
    lz4_block(block, len as usize)
}

/// Decompresses a raw LZ4 block whose decompressed size is known exactly.
pub fn lz4_block(block: &[u8], len: usize) -> Result<Vec<u8>, ErrorKind> {
    let mut out = vec![0u8; len];
    match lz4_flex::block::decompress_into(block, &mut out) {
        Ok(n) if n == len => Ok(out),
        Ok(_) => Err(ErrorKind::Decompress("lz4", "length mismatch")),
        Err(_) => Err(ErrorKind::Decompress("lz4", "corrupt block")),
    }
}

/// Compresses a v3/v4 LZ4 body.
pub fn lz4_compress(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + lz4_flex::block::get_maximum_output_size(body.len()));
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&lz4_flex::block::compress(body));
    out
}

/// Decompresses a Snappy body.
pub fn snappy_decompress(body: &[u8], max_len: u32) -> Result<Vec<u8>, ErrorKind> {
    let len = snap::raw::decompress_len(body)
        .map_err(|_| ErrorKind::Decompress("snappy", "bad length header"))?;
    if len > max_len as usize {
        return Err(ErrorKind::FrameTooLarge {
            len: len as u64,
            limit: max_len.into(),
        });
    }
    // Snappy expands at most ~22:1 (a 3-byte copy yields 64 bytes).
    if len as u64 > (body.len() as u64) * 32 + 64 {
        return Err(ErrorKind::Decompress(
            "snappy",
            "declared length impossible for the block size",
        ));
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|_| ErrorKind::Decompress("snappy", "corrupt block"))
}

/// Compresses a Snappy body.
pub fn snappy_compress(body: &[u8]) -> Vec<u8> {
    // Only fails for inputs over ~4 GB, which are beyond the frame limit anyway.
    snap::raw::Encoder::new()
        .compress_vec(body)
        .unwrap_or_default()
}

/// Decompresses a compressed v3/v4 body. With an unknown algorithm (a flow picked up
/// after its STARTUP) both are tried, LZ4 first: its exact length prefix makes a false
/// success unlikely.
pub fn decompress(
    algo: Option<Compression>,
    body: &[u8],
    max_len: u32,
) -> Result<(Vec<u8>, Compression), ErrorKind> {
    match algo {
        Some(Compression::Lz4) => Ok((lz4_decompress(body, max_len)?, Compression::Lz4)),
        Some(Compression::Snappy) => Ok((snappy_decompress(body, max_len)?, Compression::Snappy)),
        Some(Compression::None) => Err(ErrorKind::Decompress(
            "none",
            "compressed frame but no compression was negotiated",
        )),
        None => match lz4_decompress(body, max_len) {
            Ok(b) => Ok((b, Compression::Lz4)),
            Err(_) => Ok((snappy_decompress(body, max_len)?, Compression::Snappy)),
        },
    }
}

/// Compresses a body with `algo` (identity for `None`).
pub fn compress(algo: Compression, body: &[u8]) -> Vec<u8> {
    match algo {
        Compression::None => body.to_vec(),
        Compression::Lz4 => lz4_compress(body),
        Compression::Snappy => snappy_compress(body),
    }
}
