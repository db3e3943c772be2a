//! One client connection: connect the upstream, then forward both directions until
//! both have ended, copying each forwarded chunk to the decoders after it is written.
//!
//! Forwarding is byte-for-byte: whatever arrives is written on as it arrived, in the
//! same order, and nothing the decoders think of it changes that. A half-close
//! (FIN) in one direction is passed on as a half-close and the other direction goes
//! on; a reset or an error on either side resets the other (linger 0), as the client
//! would see from the node itself. An upstream that refuses or does not answer in
//! time resets the client. With TLS (`super::tls`) the same holds for the plaintext
//! inside, and a handshake that fails resets the connection. Buffers are one chunk per direction: a slow reader slows
//! its writer through TCP, never memory.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

use super::feed::{Feed, FlowFeed};
use super::metrics::Metrics;
use super::rewrite::Rewriter;
use super::tls::Tls;
use crate::capture::{CloseReason, Direction};

/// Bytes read at most per chunk.
const CHUNK: usize = 64 * 1024;

/// Counts an open connection for as long as it lives.
struct OpenGuard(Arc<Metrics>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one accepted client connection to its end.
// The connection's parts, each from a different owner (route, runtime, options).
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    client: TcpStream,
    peer: SocketAddr,
    upstream: &str,
    feed: Feed,
    metrics: Arc<Metrics>,
    connect_timeout: Duration,
    tls: &Tls,
    rewriter: Option<Rewriter>,
) {
    metrics.connections_total.fetch_add(1, Ordering::Relaxed);
    metrics.connections_open.fetch_add(1, Ordering::Relaxed);
    let _open = OpenGuard(Arc::clone(&metrics));
    let server = match tokio::time::timeout(connect_timeout, TcpStream::connect(upstream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!("upstream {upstream} refused the connection of {peer}: {e}");
            return reset(client, &metrics);
        }
        Err(_) => {
            tracing::warn!(
                "upstream {upstream} did not answer within {connect_timeout:?} for {peer}"
            );
            return reset(client, &metrics);
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let server_addr = server
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let sockets = Sockets([client.as_raw_fd(), server.as_raw_fd()]);
    let Some((client_r, client_w)) = client_side(client, tls, connect_timeout, &metrics).await
    else {
        drop(server);
        return;
    };
    let Some((server_r, server_w)) = server_side(server, tls, connect_timeout, &metrics).await
    else {
        return;
    };
    let flow = Arc::new(Mutex::new(Some(feed.open(peer, server_addr))));
    let rewriter = rewriter.map(|r| Arc::new(Mutex::new(r)));
    let c2s = pump(
        client_r,
        server_w,
        Direction::ClientToServer,
        Arc::clone(&flow),
        Arc::clone(&metrics),
        sockets,
        rewriter.clone(),
    );
    let s2c = pump(
        server_r,
        client_w,
        Direction::ServerToClient,
        Arc::clone(&flow),
        Arc::clone(&metrics),
        sockets,
        rewriter,
    );
    tokio::pin!(c2s, s2c);
    // Both directions run until each has ended; the first failure ends both.
    let reason = tokio::select! {
        r = &mut c2s => match r {
            Ok(()) => finish_other(&mut s2c).await,
            Err(halves) => { halves.reset(); CloseReason::Reset }
        },
        r = &mut s2c => match r {
            Ok(()) => finish_other(&mut c2s).await,
            Err(halves) => { halves.reset(); CloseReason::Reset }
        },
    };
    let flow = flow.lock().ok().and_then(|mut f| f.take());
    if let Some(f) = flow {
        f.close(reason);
    }
}

type ReadEnd = Box<dyn AsyncRead + Unpin + Send>;
type WriteEnd = Box<dyn Forget>;

/// A write half that can be dropped without a FIN of its own (see [`Broken`]).
trait Forget: AsyncWrite + Unpin + Send {
    fn forget(self: Box<Self>);
}

impl Forget for OwnedWriteHalf {
    fn forget(self: Box<Self>) {
        OwnedWriteHalf::forget(*self)
    }
}

impl<T: AsyncRead + AsyncWrite + Send> Forget for tokio::io::WriteHalf<T> {
    fn forget(self: Box<Self>) {}
}

/// The client's halves: plain, or after the TLS handshake (which must finish within
/// the connect timeout).
async fn client_side(
    client: TcpStream,
    tls: &Tls,
    timeout: Duration,
    metrics: &Metrics,
) -> Option<(ReadEnd, WriteEnd)> {
    let Some(acceptor) = &tls.acceptor else {
        let (r, w) = client.into_split();
        return Some((Box::new(r), Box::new(w)));
    };
    match tokio::time::timeout(timeout, acceptor.accept(client)).await {
        Ok(Ok(s)) => {
            let (r, w) = tokio::io::split(s);
            Some((Box::new(r), Box::new(w)))
        }
        Ok(Err(e)) => {
            metrics.tls_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("client TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            metrics.tls_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("client TLS handshake took longer than {timeout:?}");
            None
        }
    }
}

/// The node's halves: plain, or after the TLS handshake with it.
async fn server_side(
    server: TcpStream,
    tls: &Tls,
    timeout: Duration,
    metrics: &Metrics,
) -> Option<(ReadEnd, WriteEnd)> {
    let Some((connector, name)) = &tls.connector else {
        let (r, w) = server.into_split();
        return Some((Box::new(r), Box::new(w)));
    };
    match tokio::time::timeout(timeout, connector.connect(name.clone(), server)).await {
        Ok(Ok(s)) => {
            let (r, w) = tokio::io::split(s);
            Some((Box::new(r), Box::new(w)))
        }
        Ok(Err(e)) => {
            metrics.tls_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("TLS handshake with the node failed: {e}");
            None
        }
        Err(_) => {
            metrics.tls_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("TLS handshake with the node took longer than {timeout:?}");
            None
        }
    }
}

async fn finish_other(
    other: &mut (impl std::future::Future<Output = Result<(), Broken>> + Unpin),
) -> CloseReason {
    match other.await {
        Ok(()) => CloseReason::Fin,
        Err(halves) => {
            halves.reset();
            CloseReason::Reset
        }
    }
}

/// Resets a client whose upstream could not be had.
fn reset(client: TcpStream, metrics: &Metrics) {
    metrics.upstream_failures.fetch_add(1, Ordering::Relaxed);
    Sockets([client.as_raw_fd(), client.as_raw_fd()]).reset();
    drop(client);
}

/// The descriptors of a connection's two sockets, to make their close a reset:
/// SO_LINGER with a zero timeout (a zero linger never blocks; the close discards and
/// sends RST at once). Valid for as long as the connection's halves live.
#[derive(Clone, Copy)]
struct Sockets([RawFd; 2]);

impl Sockets {
    fn reset(self) {
        let l = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        for fd in self.0 {
            // SAFETY: `fd` is an open socket of this connection (its halves are
            // still alive) and `l` is a properly sized linger struct.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&l as *const libc::linger).cast(),
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                );
            }
        }
    }
}

/// A direction that failed, with its two halves, so the connection can be reset on
/// both sides.
struct Broken(ReadEnd, WriteEnd, Sockets);

impl Broken {
    fn reset(self) {
        let Broken(read, write, sockets) = self;
        sockets.reset();
        // Dropping a plain write half sends FIN first (tokio shuts it down on drop),
        // and the peer would read a clean end before the reset: let the socket close
        // as a whole, when the read half goes.
        write.forget();
        drop(read);
    }
}

/// Forwards one direction until its reader ends (then half-closes the writer).
///
/// With a rewriter, the client's bytes are shown to it before they are forwarded
/// (so a request is known before its response can come back), and the server's
/// bytes go through it: what it returns is what is written (the same bytes except
/// in rewritten messages; a message that may be rewritten is held until whole).
async fn pump(
    mut from: ReadEnd,
    mut to: WriteEnd,
    dir: Direction,
    flow: Arc<Mutex<Option<FlowFeed>>>,
    metrics: Arc<Metrics>,
    sockets: Sockets,
    rewriter: Option<Arc<Mutex<Rewriter>>>,
) -> Result<(), Broken> {
    let counter = match dir {
        Direction::ClientToServer => &metrics.bytes_c2s,
        Direction::ServerToClient => &metrics.bytes_s2c,
    };
    let mut buf = BytesMut::with_capacity(CHUNK);
    let mut outs: Vec<Bytes> = Vec::new();
    loop {
        buf.reserve(CHUNK);
        let n = match read_some(&mut from, &mut buf).await {
            Ok(n) => n,
            Err(_) => return Err(Broken(from, to, sockets)),
        };
        let read_at = Instant::now();
        if n == 0 {
            // The server ended: anything held for a rewrite goes out as it came.
            if let (Some(r), Direction::ServerToClient) = (&rewriter, dir) {
                if let Ok(mut r) = r.lock() {
                    r.server_end(&mut outs);
                }
            }
        } else {
            let chunk = buf.split().freeze();
            match (&rewriter, dir) {
                (Some(r), Direction::ClientToServer) => {
                    if let Ok(mut r) = r.lock() {
                        r.client(&chunk);
                    }
                    outs.push(chunk);
                }
                (Some(r), Direction::ServerToClient) => match r.lock() {
                    Ok(mut r) => r.server(chunk, &mut outs),
                    Err(_) => outs.push(chunk),
                },
                (None, _) => outs.push(chunk),
            }
        }
        let wrote = !outs.is_empty();
        for chunk in outs.drain(..) {
            // The decoders get their copy before the bytes go out: a write cut short
            // (the drain's end aborts this task inside `write_all`, a peer resets)
            // may have delivered part of the chunk — whole requests the node then
            // applies — and a copy offered after it would never be. Offered first,
            // the worst case is a request seen that never arrived: in doubt, never
            // silently missing.
            copy(&flow, dir, chunk.clone());
            if to.write_all(&chunk).await.is_err() {
                return Err(Broken(from, to, sockets));
            }
            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        // A TLS writer holds plaintext until flushed.
        if wrote && to.flush().await.is_err() {
            return Err(Broken(from, to, sockets));
        }
        if n == 0 {
            // FIN: pass the half-close on; the other direction goes on.
            let _ = to.shutdown().await;
            return Ok(());
        }
        if wrote {
            metrics.record_latency(read_at.elapsed());
        }
    }
}

/// Offers the decoders a copy of what was just forwarded.
fn copy(flow: &Mutex<Option<FlowFeed>>, dir: Direction, chunk: Bytes) {
    if let Ok(mut f) = flow.lock() {
        if let Some(f) = f.as_mut() {
            f.data(dir, chunk);
        }
    }
}

async fn read_some(from: &mut ReadEnd, buf: &mut BytesMut) -> io::Result<usize> {
    from.read_buf(buf).await
}
