//! A MongoDB wire client for the cluster's own processes (router → shard,
//! shard → shard during a migration, anyone → config servers): OP_MSG
//! commands over real TCP from the caller's own loopback address, so a
//! capture shows who talks to whom. Every request has a deadline.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tidemark_mongo::bson::{doc, Document, RawDocumentBuf};
use tidemark_mongo::{encode_message, Body, Decoder, Doc, Limits, Message, OpMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// One connection.
pub struct WireClient {
    pub addr: SocketAddr,
    sock: TcpStream,
    dec: Decoder,
    next_id: i32,
    timeout: Duration,
}

impl WireClient {
    /// Connects from `local` (port chosen by the OS) to `addr` and says hello
    /// as mongos's and mongod's internal clients do.
    pub async fn connect(
        local: IpAddr,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<WireClient, String> {
        let connect = async {
            let s = TcpSocket::new_v4()?;
            s.bind(SocketAddr::new(local, 0))?;
            s.connect(addr).await
        };
        let sock = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| format!("connect to {addr} timed out"))?
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        let _ = sock.set_nodelay(true);
        let mut c = WireClient {
            addr,
            sock,
            dec: Decoder::new(Limits::default()),
            next_id: 0,
            timeout,
        };
        c.command(doc! {
            "hello": 1,
            "client": { "driver": { "name": "NetworkInterfaceTL", "version": "tidemark-testbed" } },
            "$db": "admin",
        })
        .await?;
        Ok(c)
    }

    /// Sends `cmd` (which must carry `$db`) and returns the reply, whatever its `ok`.
    pub async fn command(&mut self, cmd: Document) -> Result<Document, String> {
        self.next_id += 1;
        let raw = RawDocumentBuf::try_from(&cmd).map_err(|e| e.to_string())?;
        let msg = Message::new(self.next_id, 0, Body::Msg(OpMsg::new(Doc::from(raw))));
        let bytes = encode_message(&msg).map_err(|e| e.to_string())?;
        tokio::time::timeout(self.timeout, self.round_trip(bytes))
            .await
            .map_err(|_| format!("request to {} timed out", self.addr))?
    }

    async fn round_trip(&mut self, bytes: Vec<u8>) -> Result<Document, String> {
        self.sock
            .write_all(&bytes)
            .await
            .map_err(|e| e.to_string())?;
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
                return Err(format!("{} closed the connection", self.addr));
            }
            self.dec.feed(&buf[..n]);
        }
    }
}

/// `ok: 1`?
pub fn is_ok(reply: &Document) -> bool {
    match reply.get("ok") {
        Some(tidemark_mongo::bson::Bson::Double(d)) => *d == 1.0,
        Some(tidemark_mongo::bson::Bson::Int32(i)) => *i == 1,
        Some(tidemark_mongo::bson::Bson::Int64(i)) => *i == 1,
        _ => false,
    }
}

/// A small pool of connections to one address from one local address.
pub struct Pool {
    local: IpAddr,
    timeout: Duration,
    idle: std::sync::Mutex<std::collections::HashMap<SocketAddr, Vec<WireClient>>>,
}

impl Pool {
    pub fn new(local: IpAddr, timeout: Duration) -> Pool {
        Pool {
            local,
            timeout,
            idle: Default::default(),
        }
    }

    /// Runs one command on a pooled connection to `addr` (a new one if none
    /// is idle); a connection that failed is dropped, not returned.
    pub async fn command(&self, addr: SocketAddr, cmd: Document) -> Result<Document, String> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&addr)
            .and_then(Vec::pop);
        let (c, r) = match pooled {
            Some(mut c) => match c.command(cmd.clone()).await {
                Ok(r) => (c, r),
                // an idle connection the server has since closed (a restarted
                // member): the request never got an answer; once more on a new one
                Err(e)
                    if e.contains("closed the connection")
                        || e.contains("Broken pipe")
                        || e.contains("reset") =>
                {
                    tracing::debug!(%addr, "pooled connection was closed ({e}); reconnecting");
                    let mut c = WireClient::connect(self.local, addr, self.timeout).await?;
                    let r = c.command(cmd).await?;
                    (c, r)
                }
                Err(e) => return Err(e),
            },
            None => {
                let mut c = WireClient::connect(self.local, addr, self.timeout).await?;
                let r = c.command(cmd).await?;
                (c, r)
            }
        };
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let v = idle.entry(addr).or_default();
        if v.len() < 16 {
            v.push(c);
        }

        Ok(r)
    }
}
