//! One client connection: framing through `tidemark-mongo`'s [`Decoder`],
//! OP_MSG (checksummed or not, possibly inside OP_COMPRESSED) and legacy
//! OP_QUERY commands in, replies out. An undecodable message closes the
//! connection (as mongod does); it never takes the member down.

use crate::mongo::commands::dispatch as commands;
use crate::mongo::commands::dispatch::ConnState;
use crate::mongo::errors;
use crate::mongo::repl::{election, heartbeat, hello};
use crate::mongo::scram::RawWindow;
use crate::mongo::state::Shared;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use tidemark_mongo::bson::{Bson, Document, RawDocumentBuf};
use tidemark_mongo::{
    encode_message, Body, Compressor, Decoder, Doc, DocSeq, Limits, Message, MsgFlags, OpMsg,
    OpReply,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

static NEXT_REQUEST_ID: AtomicI32 = AtomicI32::new(1);

fn next_request_id() -> i32 {
    NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed)
}

/// Serves one accepted socket until the peer closes, a message does not
/// decode, or the set shuts down.
pub async fn serve(
    shared: Arc<Shared>,
    member: usize,
    mut sock: TcpStream,
    mut shutdown: watch::Receiver<bool>,
) {
    if *shutdown.borrow() {
        return;
    }
    let mut st = ConnState {
        member,
        connection_id: shared.members[member].next_connection_id(),
        compression: Vec::new(),
        auth: Default::default(),
    };
    let mut dec = Decoder::new(Limits::default());
    let mut buf = vec![0u8; 64 * 1024];
    // The decoder scrubs SASL payloads (tidemark never keeps secrets); the
    // server needs them to authenticate, so it keeps the undecoded bytes.
    let mut window = RawWindow::default();
    loop {
        let n = tokio::select! {
            r = sock.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = shutdown.changed() => return,
        };
        dec.feed(&buf[..n]);
        if shared.config.scram_user.is_some() {
            window.feed(&buf[..n]);
        }
        loop {
            let mut msg = match dec.next() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(member, "undecodable message, closing connection: {e}");
                    return;
                }
            };
            window.unredact(&mut msg);
            let out = tokio::select! {
                o = handle(&shared, &mut st, msg) => o,
                _ = shutdown.changed() => return,
            };
            match out {
                Reply::Bytes(b) => {
                    if sock.write_all(&b).await.is_err() {
                        return;
                    }
                }
                Reply::None => {}
                Reply::Close => return,
                Reply::Exhaust(x) => {
                    stream_hello(&shared, &mut st, &mut sock, x, &mut shutdown).await;
                    return;
                }
            }
        }
    }
}

enum Reply {
    Bytes(Vec<u8>),
    /// `moreToCome` requests (w:0 writes) get no reply.
    None,
    Close,
    /// An awaitable hello with `exhaustAllowed`: the connection becomes a
    /// stream of hello replies (see [`stream_hello`]).
    Exhaust(ExhaustHello),
}

/// What streaming an exhaust hello needs from its request.
struct ExhaustHello {
    db: String,
    cmd: Document,
    request_id: i32,
    checksum: bool,
    compressor: Option<Compressor>,
}

/// Streaming SDAM, as mongod does it: each reply to an awaitable hello sent
/// with `exhaustAllowed` carries `moreToCome`, and the next reply follows —
/// when the topology changes or `maxAwaitTimeMS` passes — without a new
/// request, `responseTo` naming the previous reply. The driver ends the
/// stream by closing the connection; anything it sends ends it too.
async fn stream_hello(
    shared: &Shared,
    st: &mut ConnState,
    sock: &mut TcpStream,
    mut x: ExhaustHello,
    shutdown: &mut watch::Receiver<bool>,
) {
    let mut response_to = x.request_id;
    let mut probe = [0u8; 1];
    loop {
        let reply = tokio::select! {
            d = dispatch(shared, st, &x.db, x.cmd.clone()) => d,
            _ = shutdown.changed() => return,
            _ = sock.read(&mut probe) => return,
        };
        let ok = reply.get_f64("ok").ok() == Some(1.0);
        if let Ok(tv) = reply.get_document("topologyVersion") {
            x.cmd.insert("topologyVersion", tv.clone());
        }
        let mut out = OpMsg::new(to_doc(&reply));
        let mut flags = if ok { MsgFlags::MORE_TO_COME } else { 0 };
        if x.checksum {
            flags |= MsgFlags::CHECKSUM_PRESENT;
        }
        out.flags = MsgFlags(flags);
        let id = next_request_id();
        let mut resp = Message::new(id, response_to, Body::Msg(out));
        if let Some(c) = x.compressor {
            resp = resp.compressed_with(c);
        }
        let Reply::Bytes(b) = encode(&resp) else {
            return;
        };
        if sock.write_all(&b).await.is_err() || !ok {
            return;
        }
        response_to = id;
    }
}

fn is_awaitable_hello(cmd: &Document) -> bool {
    matches!(
        cmd.keys().next().map(String::as_str),
        Some("hello" | "isMaster" | "ismaster")
    ) && cmd.contains_key("topologyVersion")
        && cmd.contains_key("maxAwaitTimeMS")
}

async fn handle(shared: &Shared, st: &mut ConnState, msg: Message) -> Reply {
    if let Some(c) = msg.compressor {
        shared.members[st.member].count_compressed(c);
    }
    match &msg.body {
        Body::Msg(m) => {
            let reply = match msg_command(m) {
                Ok((db, cmd)) if m.flags.exhaust_allowed() && is_awaitable_hello(&cmd) => {
                    return Reply::Exhaust(ExhaustHello {
                        db,
                        cmd,
                        request_id: msg.request_id,
                        checksum: m.flags.checksum_present(),
                        compressor: msg.compressor.filter(|c| st.compression.contains(c)),
                    });
                }
                Ok((db, cmd)) => dispatch(shared, st, &db, cmd).await,
                Err(e) => errors::error(9, "FailedToParse", &e),
            };
            if m.flags.more_to_come() {
                return Reply::None;
            }
            let mut out = OpMsg::new(to_doc(&reply));
            if m.flags.checksum_present() {
                out.flags = MsgFlags(MsgFlags::CHECKSUM_PRESENT);
            }
            let mut resp = Message::new(next_request_id(), msg.request_id, Body::Msg(out));
            if let Some(c) = msg.compressor.filter(|c| st.compression.contains(c)) {
                resp = resp.compressed_with(c);
            }
            encode(&resp)
        }
        Body::Query(q) => {
            let Some(db) = q.full_collection_name.strip_suffix(".$cmd") else {
                let d = tidemark_mongo::bson::doc! {
                    "$err": "OP_QUERY is only supported for commands",
                    "code": 352,
                };
                return encode(&op_reply(msg.request_id, OpReply::QUERY_FAILURE, &d));
            };
            let reply = match Document::try_from(q.query.raw()) {
                Ok(mut cmd) => {
                    // drivers wrap the command when they add a read preference
                    if let Ok(inner) = cmd.get_document("$query") {
                        cmd = inner.clone();
                    }
                    dispatch(shared, st, db, cmd).await
                }
                Err(e) => errors::error(9, "FailedToParse", &e.to_string()),
            };
            encode(&op_reply(msg.request_id, 0, &reply))
        }
        other => {
            tracing::warn!(member = st.member, opcode = ?other.opcode(), "unsupported opcode, closing");
            Reply::Close
        }
    }
}

/// Routes a command: replication-internal ones (heartbeats, votes,
/// stepdown, rollback id, status) to the election modules; an awaitable
/// hello first waits for a topology change; everything else to
/// [`commands::run`] (which refuses writes on a non-primary).
async fn dispatch(shared: &Shared, st: &mut ConnState, db: &str, cmd: Document) -> Document {
    let name = cmd.keys().next().cloned().unwrap_or_default();
    let me = st.member;
    match name.as_str() {
        "replSetHeartbeat" => heartbeat::handle(shared, me, &cmd),
        "replSetRequestVotes" => election::handle_request_votes(shared, me, &cmd),
        "replSetStepDown" => election::handle_step_down(shared, me, &cmd),
        "replSetGetRBID" => election::handle_get_rbid(shared, me),
        "replSetGetStatus" => election::handle_get_status(shared, me),
        "hello" | "isMaster" | "ismaster" if cmd.contains_key("topologyVersion") => {
            let cmd = hello::await_topology_change(shared, me, cmd).await;
            commands::run(shared, st, db, cmd).await
        }
        _ => commands::run(shared, st, db, cmd).await,
    }
}

/// The command of an OP_MSG: the body with each kind-1 sequence folded in
/// as an array field (so `insert` with a `documents` sequence looks the same
/// as one with a `documents` array), and its `$db`.
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

fn to_doc(d: &Document) -> Doc {
    match RawDocumentBuf::try_from(d) {
        Ok(raw) => Doc::from(raw),
        Err(e) => {
            let fallback = errors::error(1, "InternalError", &e.to_string());
            Doc::from(RawDocumentBuf::try_from(&fallback).unwrap_or_default())
        }
    }
}

fn op_reply(response_to: i32, flags: u32, d: &Document) -> Message {
    let doc = to_doc(d);
    let body = OpReply {
        response_flags: flags,
        cursor_id: 0,
        starting_from: 0,
        documents: DocSeq::from_docs([doc.raw()]),
    };
    Message::new(next_request_id(), response_to, Body::Reply(body))
}

fn encode(m: &Message) -> Reply {
    match encode_message(m) {
        Ok(b) => Reply::Bytes(b),
        Err(e) => {
            tracing::warn!("reply did not encode, closing: {e}");
            Reply::Close
        }
    }
}
