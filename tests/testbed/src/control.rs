//! A small, generic JSON-over-HTTP/1.1 control endpoint.
//!
//! Tests written in other languages (Python driver tests, shell scripts recording
//! captures) need to stop nodes, slow replicas and so on while their driver is
//! connected. Rather than pull an HTTP framework into the testbed, this module speaks
//! just enough HTTP/1.1 for `curl`, `urllib` and `requests`: a request line, headers,
//! an optional `Content-Length` body holding JSON, and a JSON answer with a proper
//! status and `Content-Length`. Keep-alive is supported; chunked request bodies are not
//! (answered 411). Header block and body are bounded; anything malformed gets a 4xx
//! answer and the connection is closed. Nothing a client sends can panic the server,
//! and a handler that panics answers 500.
//!
//! The server knows nothing about Cassandra or MongoDB: the caller supplies one
//! [`ControlHandler`] that routes on method and path.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// Largest request line plus headers we accept (then 431).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Largest request body we accept (then 413).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Connections served at once; further clients wait in the accept backlog.
const MAX_CONNECTIONS: usize = 64;
/// A client that sends nothing for this long is disconnected, so an idle or stuck
/// peer cannot hold a connection slot forever.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One decoded request. `path` excludes any `?query` part; `body` is `Null` when the
/// request had no body.
#[derive(Debug, Clone)]
pub struct ControlRequest {
    pub method: String,
    pub path: String,
    pub body: Value,
}

/// A handler's refusal: sent as `{"error": message}` with this HTTP status.
#[derive(Debug, Clone)]
pub struct ControlError {
    pub status: u16,
    pub message: String,
}

impl ControlError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ControlError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, message)
    }
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for ControlError {}

pub type ControlFuture = Pin<Box<dyn Future<Output = Result<Value, ControlError>> + Send>>;
pub type ControlHandler = Arc<dyn Fn(ControlRequest) -> ControlFuture + Send + Sync>;

/// A running control endpoint. Dropping it does not stop it; call [`ControlServer::stop`].
pub struct ControlServer {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
}

impl ControlServer {
    /// Binds `addr` (port 0 picks a free port) and serves until [`ControlServer::stop`].
    pub async fn start(
        addr: SocketAddr,
        handler: ControlHandler,
    ) -> std::io::Result<ControlServer> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        tokio::spawn(accept_loop(listener, handler, shutdown_rx));
        tracing::info!(%local_addr, "control endpoint listening");
        Ok(ControlServer {
            local_addr,
            shutdown,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Closes the listener and every open connection (after its current answer).
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }
}

async fn accept_loop(
    listener: TcpListener,
    handler: ControlHandler,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = shutdown.changed() => return,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let handler = handler.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Err(e) = serve_connection(stream, handler, shutdown).await {
                        tracing::debug!(%peer, error = %e, "control connection ended");
                    }
                });
            }
            Err(e) => {
                // Typically EMFILE: back off briefly instead of spinning.
                tracing::warn!(error = %e, "control accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// What went wrong reading one request; each maps to an answer and a closed connection.
#[derive(Debug)]
enum ReadOutcome {
    Request(ParsedRequest),
    /// The client closed cleanly between requests.
    Closed,
    /// A protocol problem to answer with this status, then close.
    Reject(u16, String),
}

#[derive(Debug)]
struct ParsedRequest {
    method: String,
    path: String,
    body: Vec<u8>,
    keep_alive: bool,
}

async fn serve_connection(
    mut stream: TcpStream,
    handler: ControlHandler,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let outcome = tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            outcome = tokio::time::timeout(IDLE_TIMEOUT, read_request(&mut stream, &mut buf)) => match outcome {
                Ok(result) => result?,
                Err(_) => return Ok(()),
            },
        };
        let request = match outcome {
            ReadOutcome::Closed => return Ok(()),
            ReadOutcome::Reject(status, message) => {
                write_response(&mut stream, status, &json!({ "error": message }), false).await?;
                drain_before_close(&mut stream).await;
                return Ok(());
            }
            ReadOutcome::Request(r) => r,
        };
        let keep_alive = request.keep_alive;
        let (status, body) = answer(&handler, request).await;
        write_response(&mut stream, status, &body, keep_alive).await?;
        if !keep_alive {
            return Ok(());
        }
    }
}

/// Reads and discards what the client is still sending (bounded in bytes and time)
/// after a rejection, so closing does not turn into a TCP reset that could destroy
/// the answer before the client has read it.
async fn drain_before_close(stream: &mut TcpStream) {
    let mut sink = [0u8; 8192];
    let mut left = 4 * MAX_HEADER_BYTES;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while left > 0 {
        match tokio::time::timeout_at(deadline, stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => return,
        }
    }
}

/// Runs the handler for one well-formed request; a panic inside it becomes a 500.
async fn answer(handler: &ControlHandler, request: ParsedRequest) -> (u16, Value) {
    let body = if request.body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice::<Value>(&request.body) {
            Ok(v) => v,
            Err(e) => return (400, json!({ "error": format!("body is not JSON: {e}") })),
        }
    };
    let control_request = ControlRequest {
        method: request.method,
        path: request.path,
        body,
    };
    let future = handler(control_request);
    match tokio::spawn(future).await {
        Ok(Ok(value)) => (200, value),
        Ok(Err(e)) => {
            let status = if (400..=599).contains(&e.status) {
                e.status
            } else {
                500
            };
            (status, json!({ "error": e.message }))
        }
        Err(join) => {
            tracing::error!(error = %join, "control handler panicked");
            (500, json!({ "error": "handler failed" }))
        }
    }
}

/// Reads one request from `stream`, keeping any bytes of the next one in `buf`.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<ReadOutcome> {
    let header_end = loop {
        if let Some(end) = find_header_end(buf) {
            break end;
        }
        if buf.len() > MAX_HEADER_BYTES {
            return Ok(ReadOutcome::Reject(431, "request headers too large".into()));
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(if buf.iter().all(u8::is_ascii_whitespace) {
                ReadOutcome::Closed
            } else {
                ReadOutcome::Reject(400, "connection closed inside a request".into())
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if header_end > MAX_HEADER_BYTES {
        return Ok(ReadOutcome::Reject(431, "request headers too large".into()));
    }
    let head = match parse_head(&buf[..header_end]) {
        Ok(h) => h,
        Err((status, message)) => return Ok(ReadOutcome::Reject(status, message)),
    };
    if head.content_length > MAX_BODY_BYTES {
        return Ok(ReadOutcome::Reject(
            413,
            format!(
                "body of {} bytes exceeds {MAX_BODY_BYTES}",
                head.content_length
            ),
        ));
    }
    let total = header_end + head.content_length;
    while buf.len() < total {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(ReadOutcome::Reject(
                400,
                "connection closed inside the body".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[header_end..total].to_vec();
    buf.drain(..total);
    Ok(ReadOutcome::Request(ParsedRequest {
        method: head.method,
        path: head.path,
        body,
        keep_alive: head.keep_alive,
    }))
}

/// Index just past the blank line ending the header block (CRLF CRLF, or LF LF from
/// lenient clients), if it has arrived.
fn find_header_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

struct Head {
    method: String,
    path: String,
    content_length: usize,
    keep_alive: bool,
}

fn parse_head(raw: &[u8]) -> Result<Head, (u16, String)> {
    let text = std::str::from_utf8(raw).map_err(|_| (400, "headers are not UTF-8".to_string()))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    // Tolerate blank lines before the request line (RFC 9112 §2.2).
    let request_line = lines
        .by_ref()
        .find(|l| !l.is_empty())
        .ok_or((400, "empty request".to_string()))?;
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) => (m, t, v),
        _ => return Err((400, format!("malformed request line {request_line:?}"))),
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err((400, format!("malformed method {method:?}")));
    }
    if !target.starts_with('/') {
        return Err((
            400,
            format!("request target {target:?} is not an absolute path"),
        ));
    }
    let mut keep_alive = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err((505, format!("unsupported version {version:?}"))),
    };
    let mut content_length: Option<usize> = None;
    for line in lines {
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or((400, format!("malformed header line {line:?}")))?;
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err((400, format!("malformed header name {name:?}")));
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .parse()
                .map_err(|_| (400, format!("bad Content-Length {value:?}")))?;
            if content_length.is_some_and(|old| old != n) {
                return Err((400, "conflicting Content-Length headers".into()));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err((
                411,
                "chunked bodies are not supported; send Content-Length".into(),
            ));
        } else if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            if v.split(',').any(|t| t.trim() == "close") {
                keep_alive = false;
            } else if v.split(',').any(|t| t.trim() == "keep-alive") {
                keep_alive = true;
            }
        }
    }
    let path = target.split('?').next().unwrap_or(target).to_string();
    Ok(Head {
        method: method.to_string(),
        path,
        content_length: content_length.unwrap_or(0),
        keep_alive,
    })
}

async fn write_response(
    stream: &mut TcpStream,
    status: u16,
    body: &Value,
    keep_alive: bool,
) -> std::io::Result<()> {
    let mut payload = serde_json::to_vec(body).unwrap_or_else(|_| b"null".to_vec());
    payload.push(b'\n');
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        reason_phrase(status),
        payload.len(),
        if keep_alive { "keep-alive" } else { "close" },
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&payload).await?;
    stream.flush().await?;
    if !keep_alive {
        let _ = stream.shutdown().await;
    }
    Ok(())
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_handler() -> ControlHandler {
        Arc::new(|req: ControlRequest| {
            Box::pin(async move {
                match (req.method.as_str(), req.path.as_str()) {
                    ("GET", "/ping") => Ok(json!({"pong": true})),
                    ("POST", "/echo") => Ok(json!({"got": req.body})),
                    ("POST", "/panic") => panic!("handler panic on purpose"),
                    ("GET", "/teapot") => Err(ControlError::new(999, "bad status")),
                    _ => Err(ControlError::not_found(format!(
                        "no route {} {}",
                        req.method, req.path
                    ))),
                }
            }) as ControlFuture
        })
    }

    async fn start() -> ControlServer {
        ControlServer::start("127.0.0.1:0".parse().unwrap(), echo_handler())
            .await
            .unwrap()
    }

    /// Sends raw bytes, half-closes, and reads everything the server answers.
    async fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(raw).await.unwrap();
        s.shutdown().await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
            .await
            .expect("server answered and closed")
            .unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    fn status_of(response: &str) -> u16 {
        response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    fn body_of(response: &str) -> Value {
        let (_, body) = response.split_once("\r\n\r\n").expect("header end");
        serde_json::from_str(body.trim()).expect("json body")
    }

    #[tokio::test]
    async fn get_and_post_with_json_body() {
        let server = start().await;
        let r = exchange(
            server.local_addr(),
            b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(status_of(&r), 200, "{r}");
        assert_eq!(body_of(&r), json!({"pong": true}));
        let body = br#"{"delay_ms": 250}"#;
        let raw = format!(
            "POST /echo?x=1 HTTP/1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            body.len(),
            std::str::from_utf8(body).unwrap()
        );
        let r = exchange(server.local_addr(), raw.as_bytes()).await;
        assert_eq!(status_of(&r), 200, "{r}");
        assert_eq!(body_of(&r), json!({"got": {"delay_ms": 250}}));
        let content_length: usize = r
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(content_length, r.split_once("\r\n\r\n").unwrap().1.len());
        server.stop();
    }

    #[tokio::test]
    async fn keep_alive_serves_pipelined_requests_in_order() {
        let server = start().await;
        let raw = b"GET /ping HTTP/1.1\r\n\r\nPOST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\n[]GET /nope HTTP/1.1\r\n\r\n";
        let r = exchange(server.local_addr(), raw).await;
        let statuses: Vec<&str> = r.matches("HTTP/1.1 ").collect();
        assert_eq!(statuses.len(), 3, "{r}");
        let idx_200 = r.find("HTTP/1.1 200").unwrap();
        let idx_404 = r.find("HTTP/1.1 404").unwrap();
        assert!(idx_200 < idx_404);
        assert!(r.contains(r#"{"got":[]}"#), "{r}");
        assert!(r.contains("no route GET /nope"), "{r}");
        server.stop();
    }

    #[tokio::test]
    async fn garbage_and_limits_get_4xx_not_panics() {
        let server = start().await;
        let addr = server.local_addr();
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (b"\x00\xff\xfe garbage\r\n\r\n".to_vec(), 400),
            (b"GET\r\n\r\n".to_vec(), 400),
            (b"get /ping HTTP/1.1\r\n\r\n".to_vec(), 400),
            (b"GET ping HTTP/1.1\r\n\r\n".to_vec(), 400),
            (b"GET /ping HTTP/2.0\r\n\r\n".to_vec(), 505),
            (b"GET /ping HTTP/1.1\r\nno colon here\r\n\r\n".to_vec(), 400),
            (
                b"POST /echo HTTP/1.1\r\nContent-Length: abc\r\n\r\n".to_vec(),
                400,
            ),
            (
                b"POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_vec(),
                400,
            ),
            (
                b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
                411,
            ),
            (
                b"POST /echo HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n".to_vec(),
                413,
            ),
            (
                b"POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\n{nope".to_vec(),
                400,
            ),
            (
                b"POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\n{}".to_vec(),
                400,
            ),
            (b"GET /ping HTTP/1.1\r\nHost: x".to_vec(), 400),
            (b"POST /panic HTTP/1.1\r\n\r\n".to_vec(), 500),
            (b"GET /teapot HTTP/1.1\r\n\r\n".to_vec(), 500),
        ];
        for (raw, want) in cases {
            let r = exchange(addr, &raw).await;
            assert_eq!(
                status_of(&r),
                want,
                "for {:?}: {r}",
                String::from_utf8_lossy(&raw)
            );
            assert!(body_of(&r).get("error").is_some(), "{r}");
        }
        let mut huge = b"GET /ping HTTP/1.1\r\nX-Fill: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_HEADER_BYTES + 10));
        huge.extend_from_slice(b"\r\n\r\n");
        let r = exchange(addr, &huge).await;
        assert_eq!(status_of(&r), 431, "{r}");
        // Still serving after all that.
        let r = exchange(addr, b"GET /ping HTTP/1.0\r\n\r\n").await;
        assert_eq!(status_of(&r), 200, "{r}");
        server.stop();
    }

    #[tokio::test]
    async fn stop_closes_the_listener() {
        let server = start().await;
        let addr = server.local_addr();
        server.stop();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(addr).await.is_err() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "listener still open after stop"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
