//! A router's client connections: OP_MSG (kind-1 sequences folded into
//! the command) and legacy OP_QUERY commands (pymongo's handshake) in,
//! replies out. No compression is offered; an undecodable message closes
//! the connection.

use super::commands;
use super::Router;
use crate::mongo::errors;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use tidemark_mongo::bson::{Bson, Document, RawDocumentBuf};
use tidemark_mongo::{
    encode_message, Body, Decoder, Doc, DocSeq, Limits, Message, MsgFlags, OpMsg, OpReply,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

static NEXT_REQUEST_ID: AtomicI32 = AtomicI32::new(1);

/// Per-connection state.
pub struct RouterConn {
    pub connection_id: i64,
}

pub async fn serve(router: Arc<Router>, mut sock: TcpStream, mut shutdown: watch::Receiver<bool>) {
    if *shutdown.borrow() {
        return;
    }
    let mut st = RouterConn {
        connection_id: router.next_connection_id(),
    };
    let mut dec = Decoder::new(Limits::default());
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            r = sock.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = shutdown.changed() => return,
        };
        dec.feed(&buf[..n]);
        loop {
            let msg = match dec.next() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("router: undecodable message, closing connection: {e}");
                    return;
                }
            };
            let out = tokio::select! {
                o = handle(&router, &mut st, msg) => o,
                _ = shutdown.changed() => return,
            };
            match out {
                Out::Bytes(b) => {
                    if sock.write_all(&b).await.is_err() {
                        return;
                    }
                }
                Out::None => {}
                Out::Close => return,
            }
        }
    }
}

fn to_doc(d: &Document) -> Doc {
    match RawDocumentBuf::try_from(d) {
        Ok(raw) => Doc::from(raw),
        Err(e) => {
            let fallback = errors::error(1, "InternalError", &e.to_string());
            Doc::from(RawDocumentBuf::try_from(&fallback).unwrap_or_default())
        }
    }
}

fn encode(m: &Message) -> Option<Vec<u8>> {
    encode_message(m)
        .map_err(|e| tracing::warn!("router reply did not encode: {e}"))
        .ok()
}

/// What answering one message produced.
enum Out {
    Bytes(Vec<u8>),
    /// `moreToCome` requests get no reply.
    None,
    /// An opcode a router does not serve, or a reply that did not encode: closed, as mongos does.
    Close,
}

impl From<Option<Vec<u8>>> for Out {
    fn from(b: Option<Vec<u8>>) -> Out {
        b.map_or(Out::Close, Out::Bytes)
    }
}

async fn handle(router: &Arc<Router>, st: &mut RouterConn, msg: Message) -> Out {
    let id = NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed);
    match &msg.body {
        Body::Msg(m) => {
            let reply = match msg_command(m) {
                Ok((db, cmd)) => commands::run(router, st, &db, cmd).await,
                Err(e) => errors::error(9, "FailedToParse", &e),
            };
            if m.flags.more_to_come() {
                return Out::None;
            }
            let mut out = OpMsg::new(to_doc(&reply));
            if m.flags.checksum_present() {
                out.flags = MsgFlags(MsgFlags::CHECKSUM_PRESENT);
            }
            encode(&Message::new(id, msg.request_id, Body::Msg(out))).into()
        }
        Body::Query(q) => {
            let reply = match q.full_collection_name.strip_suffix(".$cmd") {
                None => errors::error(
                    352,
                    "UnsupportedOpQueryCommand",
                    "OP_QUERY is only supported for commands",
                ),
                Some(db) => match Document::try_from(q.query.raw()) {
                    Ok(mut cmd) => {
                        if let Ok(inner) = cmd.get_document("$query") {
                            cmd = inner.clone();
                        }
                        commands::run(router, st, db, cmd).await
                    }
                    Err(e) => errors::error(9, "FailedToParse", &e.to_string()),
                },
            };
            let doc = to_doc(&reply);
            let body = OpReply {
                response_flags: 0,
                cursor_id: 0,
                starting_from: 0,
                documents: DocSeq::from_docs([doc.raw()]),
            };
            encode(&Message::new(id, msg.request_id, Body::Reply(body))).into()
        }
        other => {
            tracing::warn!(opcode = ?other.opcode(), "router: unsupported opcode, closing");
            Out::Close
        }
    }
}

/// The command of an OP_MSG with its sequences folded in, and its `$db`.
fn msg_command(m: &OpMsg) -> Result<(String, Document), String> {
    let mut cmd = Document::try_from(m.body.raw()).map_err(|e| e.to_string())?;
    let db = cmd.get_str("$db").unwrap_or("admin").to_string();
    for s in &m.sequences {
        let mut docs = Vec::with_capacity(s.documents.len());
        for d in s.documents.iter() {
            docs.push(Bson::Document(
                Document::try_from(d).map_err(|e| e.to_string())?,
            ));
        }
        cmd.insert(s.identifier.clone(), docs);
    }
    Ok((db, cmd))
}
