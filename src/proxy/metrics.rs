//! The proxy's counters and its Prometheus endpoint (`--metrics ADDR`, text format
//! 0.0.4 on `GET /metrics`). Counters are atomics bumped on the forwarding path; the
//! added-latency histogram (hdrhistogram, microseconds) is behind a mutex taken once
//! per forwarded chunk.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::tap::Published;

/// Everything the endpoint reports.
pub struct Metrics {
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    /// Connections whose upstream could not be reached.
    pub upstream_failures: AtomicU64,
    /// TLS handshakes (either side) that failed or timed out.
    pub tls_failures: AtomicU64,
    pub bytes_c2s: AtomicU64,
    pub bytes_s2c: AtomicU64,
    /// Bytes forwarded but not copied to the decoders (they were behind).
    pub gap_bytes: AtomicU64,
    /// Gaps reported to the decoders.
    pub gaps: AtomicU64,
    /// Openings or closings that had to wait for room in the decoders' queue.
    pub control_waits: AtomicU64,
    /// Time from reading a chunk on one side to having written it on the other, µs.
    pub added_latency: Mutex<Histogram<u64>>,
    /// Events waiting for the decoders (sampled when scraped).
    pub queue_depth: AtomicU64,
    /// The address rewrite's counters (shared with every connection's rewriter).
    pub rewrite: Arc<super::rewrite::RewriteStats>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            connections_open: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            upstream_failures: AtomicU64::new(0),
            tls_failures: AtomicU64::new(0),
            bytes_c2s: AtomicU64::new(0),
            bytes_s2c: AtomicU64::new(0),
            gap_bytes: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            control_waits: AtomicU64::new(0),
            added_latency: Mutex::new(
                Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
            ),
            queue_depth: AtomicU64::new(0),
            rewrite: Arc::default(),
        }
    }
}

impl Metrics {
    pub fn record_latency(&self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, 60_000_000);
        if let Ok(mut h) = self.added_latency.lock() {
            let _ = h.record(us);
        }
    }

    /// The Prometheus text exposition of every metric: the forwarding side's and
    /// what the decoding side published.
    pub fn render(&self, decoding: &Published, now_ns: u64) -> String {
        let mut out = String::new();
        let g = |o: &AtomicU64| o.load(Ordering::Relaxed);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        metric(
            "tidemark_proxy_connections_open",
            "gauge",
            "Client connections open now.",
            &[("", g(&self.connections_open) as f64)],
        );
        metric(
            "tidemark_proxy_connections_total",
            "counter",
            "Client connections accepted.",
            &[("", g(&self.connections_total) as f64)],
        );
        metric(
            "tidemark_proxy_upstream_failures_total",
            "counter",
            "Connections whose upstream could not be reached.",
            &[("", g(&self.upstream_failures) as f64)],
        );
        metric(
            "tidemark_proxy_tls_failures_total",
            "counter",
            "TLS handshakes (client or node side) that failed or timed out.",
            &[("", g(&self.tls_failures) as f64)],
        );
        metric(
            "tidemark_proxy_bytes_total",
            "counter",
            "Bytes forwarded, by direction.",
            &[
                ("{direction=\"c2s\"}", g(&self.bytes_c2s) as f64),
                ("{direction=\"s2c\"}", g(&self.bytes_s2c) as f64),
            ],
        );
        metric(
            "tidemark_proxy_gap_bytes_total",
            "counter",
            "Bytes forwarded but not decoded because the decoders were behind.",
            &[("", g(&self.gap_bytes) as f64)],
        );
        metric(
            "tidemark_proxy_gaps_total",
            "counter",
            "Gaps reported to the decoders.",
            &[("", g(&self.gaps) as f64)],
        );
        metric(
            "tidemark_proxy_decode_queue_depth",
            "gauge",
            "Stream events waiting for the decoders.",
            &[("", g(&self.queue_depth) as f64)],
        );
        metric(
            "tidemark_proxy_appended_total",
            "counter",
            "Decided mutations appended to the store.",
            &[("", g(&decoding.appended) as f64)],
        );
        metric(
            "tidemark_proxy_rewrites_total",
            "counter",
            "Messages whose node addresses were rewritten to sidecar addresses.",
            &[("", g(&self.rewrite.rewrites) as f64)],
        );
        metric(
            "tidemark_proxy_rewrite_errors_total",
            "counter",
            "Places the rewriter could not follow and passed bytes on unchanged.",
            &[("", g(&self.rewrite.errors) as f64)],
        );
        let by_outcome: Vec<(String, f64)> = decoding
            .by_outcome
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(o, n)| (format!("{{outcome=\"{o}\"}}"), *n as f64))
                    .collect()
            })
            .unwrap_or_default();
        let samples: Vec<(&str, f64)> = by_outcome.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        metric(
            "tidemark_proxy_writes_total",
            "counter",
            "Decided writes appended to the store, by outcome.",
            &samples,
        );
        let messages: Vec<(String, f64)> = decoding
            .messages
            .lock()
            .map(|m| {
                m.iter()
                    .map(|((p, op), n)| {
                        (
                            format!("{{protocol=\"{p}\",opcode=\"{}\"}}", label(op)),
                            *n as f64,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let samples: Vec<(&str, f64)> = messages.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        metric(
            "tidemark_proxy_messages_total",
            "counter",
            "Messages decoded, by protocol and opcode.",
            &samples,
        );
        metric(
            "tidemark_proxy_decode_errors_total",
            "counter",
            "Messages or streams the decoders could not read (forwarding is never affected).",
            &[("", g(&decoding.decode_errors) as f64)],
        );
        let tidemark = g(&decoding.tidemark);
        let lag = if tidemark == 0 {
            f64::NAN
        } else {
            now_ns.saturating_sub(tidemark) as f64 / 1e9
        };
        metric(
            "tidemark_proxy_tidemark_lag_seconds",
            "gauge",
            "How far the store's tidemark is behind now (NaN before the first).",
            &[("", lag)],
        );
        let quantiles: Vec<(String, f64)> = match self.added_latency.lock() {
            Ok(h) => [0.5, 0.99, 0.999]
                .iter()
                .map(|q| {
                    (
                        format!("{{quantile=\"{q}\"}}"),
                        h.value_at_quantile(*q) as f64 / 1e6,
                    )
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        let samples: Vec<(&str, f64)> = quantiles.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        metric(
            "tidemark_proxy_added_latency_seconds",
            "summary",
            "Time from reading a chunk on one side to having written it on the other.",
            &samples,
        );
        out
    }
}

/// A label value with `\` and `"` escaped (opcode names are plain, but a label must
/// never break the exposition).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', " ")
}

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    decoding: Arc<Published>,
    depth: impl Fn() -> usize + Send + Sync + 'static,
) {
    let depth = Arc::new(depth);
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        let metrics = Arc::clone(&metrics);
        let depth = Arc::clone(&depth);
        let decoding = Arc::clone(&decoding);
        tokio::spawn(async move {
            // A request head, bounded in size and time: a scraper sends a few hundred
            // bytes at once.
            let mut head = Vec::with_capacity(1024);
            let mut buf = [0u8; 1024];
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return false,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                true
            })
            .await;
            if !matches!(read, Ok(true)) {
                return;
            }
            let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
            let ok = line.starts_with(b"GET /metrics ") || line.starts_with(b"GET /metrics?");
            let (status, body) = if ok {
                metrics.queue_depth.store(depth() as u64, Ordering::Relaxed);
                ("200 OK", metrics.render(&decoding, super::feed::now_ts().0))
            } else {
                ("404 Not Found", "not found: try /metrics\n".to_string())
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(reply.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}

/// Binds the metrics address (an error names it).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {addr}: {e}"))
}
