//! OP_COMPRESSED payload codecs (snappy raw blocks, zlib streams, zstd frames).
//!
//! Decompression never trusts the declared size beyond the configured limit:
//! snappy's own length header is checked first, zlib and zstd are read
//! through a `take` bound, so a small bomb cannot expand past the limit.

use std::io::Read;

use crate::error::ErrorKind;
use crate::message::Compressor;

/// Decompresses `input`, which must expand to exactly `declared` bytes.
pub(crate) fn decompress(
    compressor: Compressor,
    input: &[u8],
    declared: usize,
    limit: usize,
) -> Result<Vec<u8>, ErrorKind> {
    let fail = |reason: String| ErrorKind::Decompression {
        compressor: compressor.name(),
        reason,
    };
    if declared > limit {
        return Err(fail(format!(
            "declared uncompressed size {declared} exceeds limit {limit}"
        )));
    }
    let out = match compressor {
        Compressor::Noop => input.to_vec(),
        Compressor::Snappy => {
            let n = snap::raw::decompress_len(input).map_err(|e| fail(e.to_string()))?;
            if n != declared {
                return Err(fail(format!(
                    "snappy block says {n} bytes, header says {declared}"
                )));
            }
            snap::raw::Decoder::new()
                .decompress_vec(input)
                .map_err(|e| fail(e.to_string()))?
        }
        Compressor::Zlib => read_bounded(flate2::read::ZlibDecoder::new(input), declared)
            .map_err(|e| fail(e.to_string()))?,
        Compressor::Zstd => {
            let dec =
                zstd::stream::read::Decoder::with_buffer(input).map_err(|e| fail(e.to_string()))?;
            read_bounded(dec, declared).map_err(|e| fail(e.to_string()))?
        }
    };
    if out.len() != declared {
        return Err(fail(format!(
            "produced {} bytes, header says {declared}",
            out.len()
        )));
    }
    Ok(out)
}

/// Reads at most `declared + 1` bytes so an over-long stream is detected
/// without reading it all; the buffer grows only with real output.
fn read_bounded<R: Read>(r: R, declared: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(declared.min(1 << 20));
    r.take(declared as u64 + 1).read_to_end(&mut out)?;
    Ok(out)
}

/// Compresses `input` for OP_COMPRESSED.
pub(crate) fn compress(compressor: Compressor, input: &[u8]) -> Result<Vec<u8>, ErrorKind> {
    let fail = |reason: String| ErrorKind::Encode {
        reason: format!("{}: {reason}", compressor.name()),
    };
    match compressor {
        Compressor::Noop => Ok(input.to_vec()),
        Compressor::Snappy => snap::raw::Encoder::new()
            .compress_vec(input)
            .map_err(|e| fail(e.to_string())),
        Compressor::Zlib => {
            use std::io::Write;
            let mut enc =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(input).map_err(|e| fail(e.to_string()))?;
            enc.finish().map_err(|e| fail(e.to_string()))
        }
        Compressor::Zstd => zstd::bulk::compress(input, 3).map_err(|e| fail(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_each() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        for c in [
            Compressor::Noop,
            Compressor::Snappy,
            Compressor::Zlib,
            Compressor::Zstd,
        ] {
            let z = compress(c, &data).unwrap();
            assert_eq!(decompress(c, &z, data.len(), 1 << 20).unwrap(), data);
            assert!(decompress(c, &z, data.len() - 1, 1 << 20).is_err());
            assert!(decompress(c, &z, data.len() + 1, 1 << 20).is_err());
            assert!(decompress(c, &z, data.len(), 100).is_err());
        }
    }

    #[test]
    fn bomb_is_bounded() {
        let data = vec![0u8; 10 << 20];
        for c in [Compressor::Zlib, Compressor::Zstd] {
            let z = compress(c, &data).unwrap();
            // declares small, expands huge: detected after declared+1 bytes
            assert!(decompress(c, &z, 1000, 1 << 20).is_err());
        }
    }
}
