//! A raw MongoDB wire client for the testbed's tests, built on
//! `tidemark-mongo`, with bounded waits everywhere.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tidemark_testbed::mongo::tidemark_mongo::bson::{Document, RawDocumentBuf};
use tidemark_testbed::mongo::tidemark_mongo::{
    encode_message, Body, Compressor, Decoder, Doc, Limits, Message, MsgFlags, OpMsg,
};
use tidemark_testbed::{MongoReplicaSet, ReplSetConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const T: Duration = Duration::from_secs(10);

pub struct Client {
    pub sock: TcpStream,
    dec: Decoder,
    next_id: i32,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let sock = tokio::time::timeout(T, TcpStream::connect(addr))
            .await
            .expect("connect timeout")
            .expect("connect");
        Client {
            sock,
            dec: Decoder::new(Limits::default()),
            next_id: 1,
        }
    }

    pub async fn send(&mut self, body: Body, compressor: Option<Compressor>) -> i32 {
        self.next_id += 1;
        let mut m = Message::new(self.next_id, 0, body);
        if let Some(c) = compressor {
            m = m.compressed_with(c);
        }
        let bytes = encode_message(&m).expect("encode");
        self.sock.write_all(&bytes).await.expect("write");
        self.next_id
    }

    /// The next reply, or `None` when the server closed the connection.
    pub async fn recv(&mut self) -> Option<Message> {
        let mut buf = [0u8; 65536];
        loop {
            if let Some(m) = self.dec.next().expect("reply decodes") {
                return Some(m);
            }
            let n = tokio::time::timeout(T, self.sock.read(&mut buf))
                .await
                .expect("reply timeout")
                .ok()?;
            if n == 0 {
                return None;
            }
            self.dec.feed(&buf[..n]);
        }
    }

    pub async fn command(
        &mut self,
        cmd: Document,
        flags: u32,
        c: Option<Compressor>,
    ) -> (Message, Document) {
        let mut msg = OpMsg::new(raw(&cmd));
        msg.flags = MsgFlags(flags);
        let id = self.send(Body::Msg(msg), c).await;
        let reply = self.recv().await.expect("reply");
        assert_eq!(reply.response_to, id);
        let Body::Msg(m) = &reply.body else {
            panic!("expected OP_MSG, got {:?}", reply.opcode());
        };
        let d = Document::try_from(m.body.raw()).expect("reply document");
        (reply, d)
    }
}

pub fn raw(d: &Document) -> Doc {
    Doc::from(RawDocumentBuf::try_from(d).expect("raw document"))
}

pub async fn start(base: Ipv4Addr) -> MongoReplicaSet {
    let cfg = ReplSetConfig {
        base_addr: base,
        port: 0,
        max_await: Duration::from_millis(200),
        ..ReplSetConfig::default()
    };
    MongoReplicaSet::start(cfg).await.expect("start")
}
