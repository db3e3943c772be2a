//! Member-to-member connections (oplog fetcher, reporter, heartbeats,
//! votes): a small OP_MSG command client over real TCP, bound to the
//! sending member's own loopback address so captures show who talks to
//! whom. Every request is abandoned — and the connection dropped — the
//! moment the link is cut, and a reply that arrives after the cut is
//! discarded: nothing crosses a partition.

use crate::mongo::state::{Shared, TapRecord};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tidemark_mongo::bson::{Document, RawDocumentBuf};
use tidemark_mongo::{encode_message, Body, Decoder, Doc, Limits, Message, OpMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// A command client from member `from` to member `to`.
pub struct PeerClient {
    shared: Arc<Shared>,
    from: usize,
    to: usize,
    purpose: &'static str,
    conn: u64,
    sock: TcpStream,
    dec: Decoder,
    next_id: i32,
    timeout: Duration,
}

impl PeerClient {
    /// Connects (and says hello, as mongod's internal clients do).
    pub async fn connect(
        shared: &Arc<Shared>,
        from: usize,
        to: usize,
        purpose: &'static str,
        timeout: Duration,
    ) -> Result<PeerClient, String> {
        if !shared.link_up(from, to) {
            return Err(format!("no link from member {from} to member {to}"));
        }
        let local = SocketAddr::new(shared.members[from].addr.ip(), 0);
        let addr = shared.members[to].addr;
        let connect = async {
            let s = TcpSocket::new_v4()?;
            s.bind(local)?;
            s.connect(addr).await
        };
        let sock = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| format!("connect to {addr} timed out"))?
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        let _ = sock.set_nodelay(true);
        let mut c = PeerClient {
            shared: shared.clone(),
            from,
            to,
            purpose,
            conn: NEXT_CONN.fetch_add(1, Ordering::Relaxed),
            sock,
            dec: Decoder::new(Limits::default()),
            next_id: 0,
            timeout,
        };
        let hello = tidemark_mongo::bson::doc! {
            "hello": 1,
            "client": { "driver": { "name": "NetworkInterfaceTL", "version": "tidemark-testbed" } },
            "$db": "admin",
        };
        c.command(hello).await?;
        Ok(c)
    }

    /// Sends `cmd` and returns the reply document (`ok: 0` is an error).
    pub async fn command(&mut self, cmd: Document) -> Result<Document, String> {
        let reply = self.command_raw(cmd).await?;
        if reply.get_f64("ok").ok() != Some(1.0) {
            return Err(format!("command failed: {reply}"));
        }
        Ok(reply)
    }

    /// Sends `cmd` and returns the reply document whatever its `ok`.
    pub async fn command_raw(&mut self, cmd: Document) -> Result<Document, String> {
        if !self.shared.link_up(self.from, self.to) {
            return Err("partitioned".into());
        }
        self.next_id += 1;
        let raw = RawDocumentBuf::try_from(&cmd).map_err(|e| e.to_string())?;
        let msg = Message::new(self.next_id, 0, Body::Msg(OpMsg::new(Doc::from(raw))));
        let bytes = encode_message(&msg).map_err(|e| e.to_string())?;
        let shared = self.shared.clone();
        let (from, to, timeout) = (self.from, self.to, self.timeout);
        let reply = tokio::select! {
            r = tokio::time::timeout(timeout, self.round_trip(bytes)) => {
                r.map_err(|_| "request timed out".to_string())?
            }
            _ = shared.link_down(from, to) => Err("partitioned".to_string()),
        }?;
        if !self.shared.link_up(self.from, self.to) {
            return Err("partitioned (reply discarded)".into());
        }
        Ok(reply)
    }

    fn tap(&self, request: bool, bytes: &[u8]) {
        if self.shared.config.tap_replication {
            self.shared
                .tap
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(TapRecord {
                    from: self.from,
                    to: self.to,
                    conn: self.conn,
                    purpose: self.purpose,
                    request,
                    bytes: bytes.to_vec(),
                });
        }
    }

    async fn round_trip(&mut self, bytes: Vec<u8>) -> Result<Document, String> {
        self.sock
            .write_all(&bytes)
            .await
            .map_err(|e| e.to_string())?;
        self.tap(true, &bytes);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Some(m) = self.dec.next().map_err(|e| e.to_string())? {
                let Body::Msg(m) = m.body else {
                    return Err("reply is not OP_MSG".into());
                };
                return Document::try_from(m.body.raw()).map_err(|e| e.to_string());
            }
            let n = self.sock.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!("member {} closed the connection", self.to));
            }
            self.tap(false, &buf[..n]);
            self.dec.feed(&buf[..n]);
        }
    }
}
