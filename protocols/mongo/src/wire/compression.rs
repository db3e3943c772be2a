//! OP_COMPRESSED payload codecs (snappy raw blocks, zlib streams, zstd frames).
//!
//! Decompression never trusts the declared size beyond the configured limit:
//! snappy's own length header is checked first, zlib and zstd are read
//! through a `take` bound, so a small bomb cannot expand past the limit.

use std::io::Read;

use crate::error::ErrorKind;
use crate::message::Compressor;

/// Decompresses `input`, which must expand to exactly `declared` bytes.
#[cfg(test)]
pub(crate) fn decompress(
    compressor: Compressor,
    input: &[u8],
    declared: usize,
    limit: usize,
) -> Result<Vec<u8>, ErrorKind> {
    let mut out = Vec::new();
    decompress_into(compressor, input, declared, limit, &mut out)?;
    Ok(out)
}

/// Decompresses `input`, which must expand to exactly `declared` bytes, appending
/// them to `out`: the caller puts the message header first, so the body is written
/// once, where it stays.
pub(crate) fn decompress_into(
    compressor: Compressor,
    input: &[u8],
    declared: usize,
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), ErrorKind> {
    let fail = |reason: String| ErrorKind::Decompression {
        compressor: compressor.name(),
        reason,
    };
    if declared > limit {
        return Err(fail(format!(
            "declared uncompressed size {declared} exceeds limit {limit}"
        )));
    }
    let start = out.len();
    match compressor {
        Compressor::Noop => out.extend_from_slice(input),
        Compressor::Snappy => {
            let n = snap::raw::decompress_len(input).map_err(|e| fail(e.to_string()))?;
            if n != declared {
                return Err(fail(format!(
                    "snappy block says {n} bytes, header says {declared}"
                )));
            }
            out.resize(start + n, 0);
            let got = snap::raw::Decoder::new()
                .decompress(input, &mut out[start..])
                .map_err(|e| fail(e.to_string()))?;
            out.truncate(start + got);
        }
        Compressor::Zlib => read_bounded(flate2::read::ZlibDecoder::new(input), declared, out)
            .map_err(|e| fail(e.to_string()))?,
        // A frame whose header states the declared size (drivers' frames do) is
        // decompressed in one call into exactly that much room, with a reused
        // context: one that expands further fails ("destination buffer is too
        // small"). Any other input is streamed, the buffer growing with real output.
        Compressor::Zstd => match zstd::zstd_safe::get_frame_content_size(input) {
            Ok(Some(n)) if n == declared as u64 => {
                out.resize(start + declared, 0);
                let got = zstd_into(input, &mut out[start..]).map_err(|e| fail(e.to_string()))?;
                out.truncate(start + got);
            }
            _ => {
                let dec = zstd::stream::read::Decoder::with_buffer(input)
                    .map_err(|e| fail(e.to_string()))?;
                read_bounded(dec, declared, out).map_err(|e| fail(e.to_string()))?
            }
        },
    }
    let produced = out.len() - start;
    if produced != declared {
        return Err(fail(format!(
            "produced {produced} bytes, header says {declared}"
        )));
    }
    Ok(())
}

thread_local! {
    /// One zstd decompression context per thread, reused: creating one per message
    /// (about 100 KB of tables) cost more than decompressing a small message.
    static ZSTD: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompresses the zstd frame(s) of `input` into `dst`; returns the bytes written.
fn zstd_into(input: &[u8], dst: &mut [u8]) -> std::io::Result<usize> {
    ZSTD.with(|slot| {
        let mut slot = slot.borrow_mut();
        let dec = match &mut *slot {
            Some(d) => d,
            None => slot.insert(zstd::bulk::Decompressor::new()?),
        };
        dec.decompress_to_buffer(input, dst)
    })
}

/// Reads at most `declared + 1` bytes onto `out` so an over-long stream is detected
/// without reading it all; the buffer grows only with real output.
fn read_bounded<R: Read>(r: R, declared: usize, out: &mut Vec<u8>) -> std::io::Result<()> {
    out.reserve(declared.min(1 << 20));
    r.take(declared as u64 + 1).read_to_end(out)?;
    Ok(())
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

    /// The reused zstd context decodes message after message, also after a frame
    /// that failed, and a frame without a content size (streamed) decodes the same.
    #[test]
    fn zstd_context_is_reused_and_unsized_frames_stream() {
        let a: Vec<u8> = (0..3000u32).map(|i| (i % 7) as u8).collect();
        let b: Vec<u8> = (0..9000u32).map(|i| (i % 13) as u8).collect();
        let (za, zb) = (
            compress(Compressor::Zstd, &a).unwrap(),
            compress(Compressor::Zstd, &b).unwrap(),
        );
        assert_eq!(
            decompress(Compressor::Zstd, &za, a.len(), 1 << 20).unwrap(),
            a
        );
        let mut cut = zb.clone();
        cut.truncate(zb.len() / 2);
        assert!(decompress(Compressor::Zstd, &cut, b.len(), 1 << 20).is_err());
        assert_eq!(
            decompress(Compressor::Zstd, &zb, b.len(), 1 << 20).unwrap(),
            b
        );

        let mut no_size = Vec::new();
        {
            use std::io::Write;
            let mut enc = zstd::stream::write::Encoder::new(&mut no_size, 3).unwrap();
            enc.include_contentsize(false).unwrap();
            enc.write_all(&b).unwrap();
            enc.finish().unwrap();
        }
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&no_size).ok(),
            Some(None)
        );
        assert_eq!(
            decompress(Compressor::Zstd, &no_size, b.len(), 1 << 20).unwrap(),
            b
        );
        assert!(decompress(Compressor::Zstd, &no_size, b.len() - 1, 1 << 20).is_err());
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
