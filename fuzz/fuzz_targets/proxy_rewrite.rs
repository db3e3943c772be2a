//! The proxy's address rewrite on arbitrary traffic: client and server bytes in
//! arbitrary pieces, CQL, MongoDB or sniffed. It never panics, and whenever it
//! rewrote nothing, what it passes on is exactly what the server sent (the proxy's
//! byte identity).
#![no_main]

use std::sync::Arc;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tidemark::proxy::rewrite::{AddrMap, Ctx, Protocol, RewriteStats, Rewriter};

fuzz_target!(|data: &[u8]| {
    let Some((&head, mut rest)) = data.split_first() else {
        return;
    };
    let protocol = match head % 3 {
        0 => Protocol::Cql,
        1 => Protocol::Mongo,
        _ => Protocol::Auto,
    };
    let mut map = AddrMap::default();
    if map.add("10.0.0.1:9042", "127.0.0.1:19042".parse().unwrap()).is_err()
        || map.add("10.0.0.1:27017", "127.0.0.1:37017".parse().unwrap()).is_err()
    {
        return;
    }
    let stats = Arc::new(RewriteStats::default());
    let ctx = Ctx {
        map: Arc::new(map),
        stats: Arc::clone(&stats),
    };
    let mut r = Rewriter::new(protocol, ctx);
    let mut sent = Vec::new();
    let mut passed = Vec::new();
    let mut out = Vec::new();
    // Pieces: a byte says who speaks (low bit) and how long (the rest).
    while let Some((&tag, more)) = rest.split_first() {
        let n = ((tag >> 1) as usize + 1).min(more.len());
        let (piece, after) = more.split_at(n);
        rest = after;
        if tag & 1 == 0 {
            r.client(piece);
        } else {
            sent.extend_from_slice(piece);
            r.server(Bytes::copy_from_slice(piece), &mut out);
        }
    }
    r.server_end(&mut out);
    for b in out {
        passed.extend_from_slice(&b);
    }
    if stats.rewrites.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert_eq!(passed, sent, "bytes changed without a rewrite");
    }
});
