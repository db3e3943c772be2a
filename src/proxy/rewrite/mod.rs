//! The address rewrite: the one change the proxy ever makes to bytes.
//!
//! Drivers discover the cluster from the nodes (CQL `system.local`/`system.peers`/
//! `system.peers_v2` and topology events, MongoDB `hello`) and then connect to the
//! addresses they learned — the nodes' own, around the sidecars. A [`Rewriter`]
//! sits on one connection: it watches the client's bytes (to learn compression,
//! framing and which requests are handshakes) and passes the server's bytes on,
//! replacing mapped node addresses ([`map::AddrMap`]) with sidecar addresses in the
//! few messages that carry them, and re-encoding just those messages (checksums,
//! compression, v5 segments).
//!
//! Everything else streams through unchanged and unheld: only a frame that might be
//! rewritten is buffered, and only up to [`HOLD_MAX`]. Anything that does not parse
//! passes through unchanged from there on (fail-open), counted in
//! `tidemark_proxy_rewrite_errors_total`; a message that decodes but would not
//! re-encode to exactly its own bytes is passed as it came, so the rewrite can never
//! change a byte it did not mean to.

pub mod cql;
mod cql_rows;
pub mod map;
pub mod mongo;
mod mongo_hello;
mod sniff;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

pub use map::AddrMap;

/// The largest message held for a possible rewrite; a larger one passes unheld and
/// unchanged (a `system.peers` of a thousand vnode-nodes is a few MB).
pub const HOLD_MAX: usize = 32 << 20;

/// Counters for the metrics endpoint.
#[derive(Debug, Default)]
pub struct RewriteStats {
    /// Messages rewritten.
    pub rewrites: AtomicU64,
    /// Places where the rewriter could not follow and passed bytes on unchanged.
    pub errors: AtomicU64,
}

impl RewriteStats {
    fn error(&self, protocol: &str, what: &dyn std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("{protocol} rewrite: {what}; passing the bytes on unchanged");
    }

    fn rewrote(&self) {
        self.rewrites.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a route carries, for the rewriter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Decided from the client's first bytes.
    Auto,
    Cql,
    Mongo,
}

/// The shared, read-only part: the mapping and the counters.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub map: Arc<AddrMap>,
    pub stats: Arc<RewriteStats>,
}

enum Kind {
    Sniff(Vec<u8>),
    Cql(cql::CqlRewriter),
    Mongo(mongo::MongoRewriter),
    /// Not a protocol we rewrite, or rewriting gave up: bytes pass as they are.
    Off,
}

/// One connection's rewriter.
pub struct Rewriter {
    kind: Kind,
    ctx: Ctx,
}

impl Rewriter {
    pub fn new(protocol: Protocol, ctx: Ctx) -> Rewriter {
        let kind = if ctx.map.is_empty() {
            Kind::Off
        } else {
            match protocol {
                Protocol::Auto => Kind::Sniff(Vec::new()),
                Protocol::Cql => Kind::Cql(cql::CqlRewriter::default()),
                Protocol::Mongo => Kind::Mongo(mongo::MongoRewriter::default()),
            }
        };
        Rewriter { kind, ctx }
    }

    /// Watches bytes the client sent; called before they are forwarded, so the
    /// request is known before its response can come back.
    pub fn client(&mut self, bytes: &[u8]) {
        if let Kind::Sniff(seen) = &mut self.kind {
            // Held only until the first 9-16 bytes decide; then replayed whole.
            seen.extend_from_slice(bytes);
            let seen = match sniff::sniff(seen) {
                sniff::Verdict::NeedMore => return,
                sniff::Verdict::Other => {
                    self.kind = Kind::Off;
                    return;
                }
                sniff::Verdict::Cql => {
                    let seen = std::mem::take(seen);
                    self.kind = Kind::Cql(cql::CqlRewriter::default());
                    seen
                }
                sniff::Verdict::Mongo => {
                    let seen = std::mem::take(seen);
                    self.kind = Kind::Mongo(mongo::MongoRewriter::default());
                    seen
                }
            };
            return self.client(&seen);
        }
        match &mut self.kind {
            Kind::Cql(r) => r.client(bytes, &self.ctx),
            Kind::Mongo(r) => r.client(bytes, &self.ctx),
            Kind::Sniff(_) | Kind::Off => {}
        }
    }

    /// Passes bytes the server sent: appends what to write to the client to `out`
    /// (the same bytes, except in rewritten messages; possibly held back for now).
    pub fn server(&mut self, bytes: Bytes, out: &mut Vec<Bytes>) {
        match &mut self.kind {
            Kind::Cql(r) => r.server(bytes, out, &self.ctx),
            Kind::Mongo(r) => r.server(bytes, out, &self.ctx),
            Kind::Sniff(_) | Kind::Off => out.push(bytes),
        }
    }

    /// The server ended its side: whatever is held goes out as it came.
    pub fn server_end(&mut self, out: &mut Vec<Bytes>) {
        match &mut self.kind {
            Kind::Cql(r) => r.server_end(out),
            Kind::Mongo(r) => r.server_end(out),
            Kind::Sniff(_) | Kind::Off => {}
        }
    }
}

/// Runs `f` over one whole input in pieces (tests): what a stream of reads gives.
#[cfg(test)]
pub(crate) fn run_pieces(
    r: &mut Rewriter,
    client: &[u8],
    server: &[u8],
    cuts: &[usize],
) -> Vec<u8> {
    r.client(client);
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < server.len() {
        let n = cuts
            .get(i % cuts.len().max(1))
            .copied()
            .unwrap_or(server.len())
            .max(1);
        let end = (pos + n).min(server.len());
        r.server(Bytes::copy_from_slice(&server[pos..end]), &mut out);
        pos = end;
        i += 1;
    }
    r.server_end(&mut out);
    out.concat()
}

#[cfg(test)]
mod tests;
