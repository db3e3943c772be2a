//! `tidemark proxy`: the sidecar. It listens in front of a database node, forwards
//! every byte unchanged both ways, and feeds a copy of what it forwarded to the same
//! decoders, commit tracker and store a live tap uses (`crate::tap::run_events`:
//! nothing downstream knows the events came from a proxy rather than a capture).
//!
//! The stages a byte passes: a route's listener accepts ([`route`]), the connection
//! task forwards both directions ([`connection`]) and offers each forwarded chunk
//! to the decoders' bounded queue ([`feed`]), which never makes forwarding wait: a
//! decoder that falls behind gets explicit gaps. The one change ever made to the
//! bytes is [`rewrite`]: node addresses the drivers would discover (and connect to
//! around the sidecars) become sidecar addresses; `--no-rewrite` turns it off.
//! [`metrics`] counts it all for Prometheus. SIGINT/SIGTERM stop accepting, let open connections finish for up to
//! `--drain` seconds, then flush the store.

pub mod config;
pub mod connection;
pub mod feed;
pub mod metrics;
pub mod rewrite;
pub mod route;
pub mod tls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub use route::{Route, RouteProtocol};

use crate::capture::StreamEvent;
use crate::tap::{self, Published, TapOptions, TapReport};
use feed::Feed;
use metrics::Metrics;

/// What `tidemark proxy` was asked.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    pub routes: Vec<Route>,
    pub protocol: RouteProtocol,
    /// `--metrics ADDR`: serve Prometheus text on `GET /metrics`.
    pub metrics: Option<SocketAddr>,
    /// Events the decoders' queue holds at most (each a chunk ≤ 64 KiB).
    pub queue: usize,
    /// How long open connections may go on after a stop signal.
    pub drain: Duration,
    /// How long an upstream may take to accept a connection (and a TLS handshake
    /// to finish).
    pub connect_timeout: Duration,
    /// TLS toward the clients and/or the nodes.
    pub tls: tls::Tls,
    /// The decoding side: store, group commit, durability, tracker policy (files and
    /// interface are not used).
    pub tap: TapOptions,
    /// `--map NODE=SIDECAR`: node addresses drivers learn and what they should learn
    /// instead. Empty: each route's upstream maps to its listen address.
    pub map: Vec<String>,
    /// `--no-rewrite`: leave every byte as the node sent it.
    pub no_rewrite: bool,
}

/// The address map a proxy rewrites with: `--map` entries, else each route's
/// upstream → its listen address (a route listening on an unspecified address
/// gives no entry: clients cannot be told to connect to 0.0.0.0).
pub fn address_map(o: &ProxyOptions) -> Result<rewrite::AddrMap> {
    let mut map = rewrite::AddrMap::default();
    if o.no_rewrite {
        return Ok(map);
    }
    if o.map.is_empty() {
        for r in &o.routes {
            if r.listen.ip().is_unspecified() {
                tracing::warn!(
                    "route {} -> {}: listening on an unspecified address, so no sidecar address to give drivers; use --map",
                    r.listen,
                    r.upstream
                );
                continue;
            }
            map.add(&r.upstream, r.listen)?;
        }
    } else {
        for m in &o.map {
            map.add_arg(m)?;
        }
    }
    Ok(map)
}

/// How a proxy run ended.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyReport {
    pub connections: u64,
    pub bytes_c2s: u64,
    pub bytes_s2c: u64,
    /// Bytes forwarded that the decoders never saw (they were behind).
    pub gap_bytes: u64,
    /// Connections still open when the drain time ran out.
    pub cut_at_drain: u64,
    pub tap: TapReport,
}

/// The file descriptors a proxy wants: two per connection, 10,000 connections and
/// room for the store and listeners.
const WANT_FDS: u64 = 65_536;

/// Raises the soft open-files limit toward [`WANT_FDS`] (within the hard limit).
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid, initialized struct.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < WANT_FDS {
            l.rlim_cur = WANT_FDS.min(l.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

/// Runs the proxy until `stop`; bad input (addresses, a store another writer holds)
/// is an `Err` before anything listens.
pub fn run(o: &ProxyOptions, stop: Arc<AtomicBool>) -> Result<ProxyReport> {
    if o.routes.is_empty() {
        bail!("give --listen ADDR --upstream ADDR, or --route LISTEN=UPSTREAM");
    }
    if o.queue < 2048 {
        bail!("invalid --queue {}: at least 2048 events", o.queue);
    }
    let map = Arc::new(address_map(o)?);
    raise_fd_limit();
    let mut tap_options = o.tap.clone();
    for r in &o.routes {
        match o.protocol {
            RouteProtocol::Cql => tap_options.cql_ports.push(r.upstream_port()),
            RouteProtocol::Mongo => tap_options.mongo_ports.push(r.upstream_port()),
            RouteProtocol::Auto => {}
        }
    }
    let ready = Arc::new(AtomicBool::new(false));
    let published = Arc::new(Published::default());
    tap_options.ready = Some(Arc::clone(&ready));
    tap_options.published = Some(Arc::clone(&published));
    tap_options.announce_ready = false;
    let (tx, rx) = crossbeam_channel::bounded::<StreamEvent>(o.queue);
    // The decoders' own stop is never raised: they end when every sender is gone,
    // after the last forwarded byte was offered, and flush then.
    let decoders = std::thread::Builder::new()
        .name("tidemark-decode".into())
        .spawn(move || tap::run_events(&tap_options, rx, Arc::new(AtomicBool::new(false))))
        .context("start the decoding thread")?;
    while !ready.load(Ordering::SeqCst) {
        if decoders.is_finished() {
            let r = decoders
                .join()
                .map_err(|_| anyhow!("the decoding thread panicked"))?;
            return Err(r
                .err()
                .unwrap_or_else(|| anyhow!("the decoders ended before starting")));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let metrics = Arc::new(Metrics::default());
    let feed = Feed::new(tx, o.queue, Arc::clone(&metrics));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tidemark-proxy")
        .build()
        .context("start the proxy runtime")?;
    let served = runtime.block_on(serve(o, feed, Arc::clone(&metrics), published, stop, map));
    drop(runtime);
    let cut_at_drain = served?;
    let tap = decoders
        .join()
        .map_err(|_| anyhow!("the decoding thread panicked"))??;
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    Ok(ProxyReport {
        connections: g(&metrics.connections_total),
        bytes_c2s: g(&metrics.bytes_c2s),
        bytes_s2c: g(&metrics.bytes_s2c),
        gap_bytes: g(&metrics.gap_bytes),
        cut_at_drain,
        tap,
    })
}

/// Listens on every route until `stop`, then drains; returns how many connections
/// were still open when the drain time ran out.
async fn serve(
    o: &ProxyOptions,
    feed: Feed,
    metrics: Arc<Metrics>,
    published: Arc<Published>,
    stop: Arc<AtomicBool>,
    map: Arc<rewrite::AddrMap>,
) -> Result<u64> {
    let mut listeners = Vec::new();
    for r in &o.routes {
        let l = TcpListener::bind(r.listen)
            .await
            .map_err(|e| anyhow!("cannot listen on {}: {e}", r.listen))?;
        listeners.push((l, r.upstream.clone()));
    }
    let mut background = JoinSet::new();
    if let Some(addr) = o.metrics {
        let l = metrics::bind(addr).await?;
        let depth_feed = feed.clone();
        background.spawn(metrics::serve(
            l,
            Arc::clone(&metrics),
            Arc::clone(&published),
            move || depth_feed.depth(),
        ));
    }
    let routes: Vec<String> = o
        .routes
        .iter()
        .map(|r| format!("{} -> {}", r.listen, r.upstream))
        .collect();
    eprintln!("tidemark: proxy listening: {}", routes.join(", "));
    let connections = Arc::new(tokio::sync::Mutex::new(JoinSet::new()));
    let mut acceptors = JoinSet::new();
    let rewrite_protocol = match o.protocol {
        RouteProtocol::Auto => rewrite::Protocol::Auto,
        RouteProtocol::Cql => rewrite::Protocol::Cql,
        RouteProtocol::Mongo => rewrite::Protocol::Mongo,
    };
    let ctx = rewrite::Ctx {
        map,
        stats: Arc::clone(&metrics.rewrite),
    };
    for (listener, upstream) in listeners {
        let ctx = ctx.clone();
        let feed = feed.clone();
        let metrics = Arc::clone(&metrics);
        let connections = Arc::clone(&connections);
        let timeout = o.connect_timeout;
        let tls = o.tls.clone();
        let upstream: Arc<str> = upstream.into();
        acceptors.spawn(async move {
            loop {
                let (client, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors or similar: wait a little, go on.
                        tracing::warn!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (feed, metrics, upstream, tls) = (
                    feed.clone(),
                    Arc::clone(&metrics),
                    Arc::clone(&upstream),
                    tls.clone(),
                );
                let rewriter = (!ctx.map.is_empty())
                    .then(|| rewrite::Rewriter::new(rewrite_protocol, ctx.clone()));
                connections.lock().await.spawn(async move {
                    connection::serve(
                        client, peer, &upstream, feed, metrics, timeout, &tls, rewriter,
                    )
                    .await
                });
            }
        });
    }
    drop(feed);
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Reap finished connection tasks so the set stays the size of what is open.
        let mut set = connections.lock().await;
        while set.try_join_next().is_some() {}
    }
    acceptors.abort_all();
    while acceptors.join_next().await.is_some() {}
    let deadline = Instant::now() + o.drain;
    let mut set = std::mem::take(&mut *connections.lock().await);
    while !set.is_empty() && Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = tokio::time::timeout(left, set.join_next()).await;
    }
    let cut = set.len() as u64;
    if cut > 0 {
        tracing::warn!("{cut} connections still open after the drain time: closing them");
    }
    set.abort_all();
    while set.join_next().await.is_some() {}
    background.abort_all();
    while background.join_next().await.is_some() {}
    Ok(cut)
}
