//! One client connection: v4 frames or v5 segments (after READY), lz4/snappy,
//! OPTIONS/STARTUP/REGISTER, and QUERY/PREPARE/EXECUTE dispatched to the executor.
//! A frame that cannot be decoded gets a protocol ERROR, never a crash.

use crate::cql::cluster::coordinator;
use crate::cql::cluster::state::Shared;
use crate::cql::errors::error;
use crate::cql::exec::ctx::{Bound, Ctx};
use crate::cql::exec::dispatch::{execute, prepare};
use crate::cql::exec::modify;
use crate::cql::exec::modify::parse_members;
use crate::cql::exec::project::Page;
use crate::cql::exec::result_metadata;
use crate::cql::exec::system;
use crate::cql::exec::values;
use crate::cql::exec::warnings;
use std::sync::{Arc, Mutex};
use tidemark_cql::frame::segment::encode_envelopes;
use tidemark_cql::frame::{encode_frame, Compression};
use tidemark_cql::message::{
    error_code as code, ErrorBody, ErrorDetails, Event, QueryParameters, QueryValues, ResultBody,
};
use tidemark_cql::message::{BatchQuery, BatchType};
use tidemark_cql::statement::BatchKind;
use tidemark_cql::wire::WireValue;
use tidemark_cql::{Direction, Envelope, FrameDecoder, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// How responses are framed once the handshake is done.
#[derive(Debug, Clone, Copy)]
struct Out {
    version: u8,
    compression: Compression,
    segments: bool,
}

impl Out {
    fn encode(&self, stream: i16, msg: Message) -> Vec<u8> {
        self.encode_warned(stream, msg, Vec::new())
    }

    /// A response with the client warnings its request raised (the frame's warning
    /// flag and string list exist from protocol v4 on).
    fn encode_warned(&self, stream: i16, msg: Message, warnings: Vec<String>) -> Vec<u8> {
        let mut env = Envelope::new(super::type_options::for_version(msg, self.version));
        if self.version >= 4 {
            env.warnings = warnings.into_iter().map(Into::into).collect();
        }
        if self.segments {
            let frame = encode_frame(self.version, stream, &env, Compression::None, 0);
            encode_envelopes(&[frame], self.compression == Compression::Lz4)
        } else {
            encode_frame(self.version, stream, &env, self.compression, 0)
        }
    }
}

fn protocol_error(msg: impl Into<String>) -> Message {
    Message::Error(error(code::PROTOCOL_ERROR, msg))
}

pub async fn serve(shared: Arc<Shared>, me: usize, sock: TcpStream) {
    let _ = sock.set_nodelay(true);
    let (mut rd, mut wr) = sock.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    });
    let mut dec = FrameDecoder::new(Direction::ClientToServer);
    let mut out: Option<Out> = None;
    let keyspace = Arc::new(Mutex::new(None::<String>));
    let mut buf = vec![0u8; 64 * 1024];
    // Set by STARTUP without authenticator, or by a good AUTH_RESPONSE.
    let mut authenticated = false;
    // Stopping the node closes its connections; event forwarders end with them.
    let mut running = shared.nodes[me].running.subscribe();
    let mut forwarders: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    let mut node_stopped = false;
    'conn: loop {
        let read = tokio::select! {
            r = rd.read(&mut buf) => r,
            _ = running.wait_for(|up| !*up) => {
                node_stopped = true;
                break;
            }
        };
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if out.is_none() && dec.version().is_none() {
            let v = buf[0] & 0x7f;
            if !(4..=5).contains(&v) {
                let stream = if n >= 4 {
                    i16::from_be_bytes([buf[2], buf[3]])
                } else {
                    0
                };
                let o = Out {
                    version: 4,
                    compression: Compression::None,
                    segments: false,
                };
                let msg = format!("Invalid or unsupported protocol version ({v}); supported versions are (4/v4, 5/v5)");
                let _ = tx.send(o.encode(stream, protocol_error(msg)));
                break;
            }
        }
        dec.feed(&buf[..n]);
        loop {
            let frame = match dec.next() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    let o = out.unwrap_or(Out {
                        version: 4,
                        compression: Compression::None,
                        segments: false,
                    });
                    let _ = tx.send(o.encode(0, protocol_error(e.to_string())));
                    break 'conn;
                }
            };
            let stream = frame.header.stream;
            let version = frame.header.version;
            let cur = out.unwrap_or(Out {
                version,
                compression: Compression::None,
                segments: false,
            });
            let env = match frame.envelope() {
                Ok(e) => e,
                Err(e) => {
                    let _ = tx.send(cur.encode(stream, protocol_error(e.to_string())));
                    continue;
                }
            };
            let needs_auth = matches!(
                env.message,
                Message::Query(_)
                    | Message::Prepare(_)
                    | Message::Execute(_)
                    | Message::Batch(_)
                    | Message::Register(_)
            );
            if needs_auth && !authenticated {
                let msg = "Unexpected message, expecting AUTH_RESPONSE (authentication required)";
                let _ = tx.send(cur.encode(stream, protocol_error(msg)));
                continue;
            }
            match env.message {
                Message::AuthResponse(_) => {
                    // The decoder drops SASL tokens by design; read it from the body.
                    let token = super::auth::token_from_body(&frame.body);
                    let reply = match super::auth::check(&shared.config, token.as_ref()) {
                        Ok(()) => {
                            authenticated = true;
                            Message::AuthSuccess { token: None }
                        }
                        Err(e) => Message::Error(e),
                    };
                    let _ = tx.send(cur.encode(stream, reply));
                }
                Message::Options => {
                    let opts = vec![
                        ("CQL_VERSION".into(), vec![system::CQL_VERSION.into()]),
                        ("COMPRESSION".into(), vec!["lz4".into(), "snappy".into()]),
                        (
                            "PROTOCOL_VERSIONS".into(),
                            vec!["4/v4".into(), "5/v5".into()],
                        ),
                    ];
                    let _ = tx.send(cur.encode(stream, Message::Supported { options: opts }));
                }
                Message::Startup(s) => {
                    let c = s.compression();
                    if version >= 5 && c == Compression::Snappy {
                        let _ = tx.send(cur.encode(
                            stream,
                            protocol_error("snappy is not supported with protocol v5"),
                        ));
                        continue;
                    }
                    dec.set_compression(c);
                    let reply = if shared.config.credentials.is_some() {
                        Message::Authenticate {
                            authenticator: super::auth::AUTHENTICATOR.into(),
                        }
                    } else {
                        authenticated = true;
                        Message::Ready
                    };
                    let _ = tx.send(cur.encode(stream, reply));
                    let segments = version >= 5;
                    if segments {
                        dec.expect_segments();
                    }
                    out = Some(Out {
                        version,
                        compression: c,
                        segments,
                    });
                }
                Message::Register(r) => {
                    let kinds: Vec<String> = r.events.iter().map(|e| e.to_string()).collect();
                    let _ = tx.send(cur.encode(stream, Message::Ready));
                    let mut events = shared.events.subscribe();
                    let tx = tx.clone();
                    forwarders.push(tokio::spawn(async move {
                        while let Ok(ev) = events.recv().await {
                            let kind = match &ev {
                                Event::SchemaChange(_) => "SCHEMA_CHANGE",
                                Event::TopologyChange { .. } => "TOPOLOGY_CHANGE",
                                Event::StatusChange { .. } => "STATUS_CHANGE",
                            };
                            if kinds.iter().any(|k| k == kind)
                                && tx.send(cur.encode(-1, Message::Event(ev))).is_err()
                            {
                                break;
                            }
                        }
                    }));
                }
                Message::Query(q) => {
                    let shared = shared.clone();
                    let (tx, ks) = (tx.clone(), keyspace.clone());
                    tokio::spawn(async move {
                        let bound = bound_of(&q.params, None);
                        let (reply, warned) =
                            warnings::collect(|| match values::check_query(&q.query, &bound) {
                                Ok(()) => run(&shared, me, &ks, &q.query, &q.params, bound),
                                Err(e) => Message::Error(e),
                            });
                        wait_reply_delay().await;
                        let _ = tx.send(cur.encode_warned(stream, reply, warned));
                    });
                }
                Message::Prepare(p) => {
                    let ks = p
                        .keyspace
                        .as_ref()
                        .map(|k| k.to_string())
                        .or_else(|| lock(&keyspace).clone());
                    let ctx = Ctx {
                        shared: &shared,
                        me,
                        keyspace: ks,
                        consistency: tidemark_cql::Consistency::One,
                        timestamp: None,
                        serial: None,
                        page: Page::default(),
                    };
                    let reply = match prepare(&ctx, &p.query) {
                        Ok((prepared, stmt)) => {
                            lock(&shared.nodes[me].prepared)
                                .insert(prepared.id.clone(), Arc::new(stmt));
                            Message::Result(ResultBody::Prepared(prepared))
                        }
                        Err(e) => Message::Error(e),
                    };
                    let _ = tx.send(cur.encode(stream, reply));
                }
                Message::Execute(e) => {
                    let stmt = lock(&shared.nodes[me].prepared).get(&e.id).cloned();
                    let Some(stmt) = stmt else {
                        let body = unprepared(&e.id);
                        let _ = tx.send(cur.encode(stream, Message::Error(body)));
                        continue;
                    };
                    let shared = shared.clone();
                    let tx = tx.clone();
                    let ks = Arc::new(Mutex::new(stmt.keyspace.clone()));
                    tokio::spawn(async move {
                        let bound = bound_of(&e.params, Some(&stmt.bind.columns));
                        let (reply, warned) = warnings::collect(|| {
                            match values::check_execute(&stmt.bind.columns, &bound) {
                                Ok(()) => run(&shared, me, &ks, &stmt.query, &e.params, bound),
                                Err(e) => Message::Error(e),
                            }
                        });
                        let reply = result_metadata::for_execute(
                            reply,
                            &stmt,
                            cur.version,
                            e.params.skip_metadata,
                            e.result_metadata_id.as_ref(),
                        );
                        wait_reply_delay().await;
                        let _ = tx.send(cur.encode_warned(stream, reply, warned));
                    });
                }
                Message::Batch(b) => {
                    let ks = b
                        .keyspace
                        .as_ref()
                        .map(|k| k.to_string())
                        .or_else(|| lock(&keyspace).clone());
                    let shared = shared.clone();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let (reply, warned) = warnings::collect(|| run_batch(&shared, me, ks, &b));
                        wait_reply_delay().await;
                        let _ = tx.send(cur.encode_warned(stream, reply, warned));
                    });
                }
                other => {
                    let msg = format!("unexpected message {:?} from a client", other.opcode());
                    let _ = tx.send(cur.encode(stream, protocol_error(msg)));
                }
            }
        }
    }
    // The event forwarders hold senders: stop them so the writer ends and the socket
    // closes when the client closes (as Cassandra does).
    for f in &forwarders {
        f.abort();
    }
    drop(tx);
    if node_stopped {
        writer.abort();
    } else {
        let _ = writer.await;
    }
}

/// Waits as long as the coordinator said the answer of the statement just run
/// takes (slow replica acks, or the write timeout before WriteTimeout).
async fn wait_reply_delay() {
    let delay = coordinator::take_reply_delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

/// Executes a BATCH message on node `me`.
fn run_batch(
    shared: &Shared,
    me: usize,
    keyspace: Option<String>,
    b: &tidemark_cql::message::Batch,
) -> Message {
    let texts = match batch_members(shared, me, b) {
        Ok(t) => t,
        Err(e) => return Message::Error(e),
    };
    let ctx = Ctx {
        shared,
        me,
        keyspace,
        consistency: b.consistency,
        timestamp: b.timestamp,
        serial: b.serial_consistency,
        page: Page::default(),
    };
    let kind = match b.batch_type {
        BatchType::Logged => BatchKind::Logged,
        BatchType::Unlogged => BatchKind::Unlogged,
        BatchType::Counter => BatchKind::Counter,
    };
    match parse_members(&texts).and_then(|m| modify::batch(&ctx, kind, None, &m)) {
        Ok(r) => Message::Result(r),
        Err(e) => Message::Error(e),
    }
}

/// Each BATCH member as query text with its values (prepared members by their id on
/// this node; UNPREPARED if unknown, as Cassandra answers).
fn batch_members(
    shared: &Shared,
    me: usize,
    b: &tidemark_cql::message::Batch,
) -> Result<Vec<(String, Bound)>, ErrorBody> {
    let mut out = Vec::new();
    for s in &b.statements {
        match &s.query {
            BatchQuery::Query(q) => out.push((q.to_string(), bound_of_values(&s.values, None))),
            BatchQuery::Prepared(id) => {
                let stmt = lock(&shared.nodes[me].prepared).get(id).cloned();
                let Some(stmt) = stmt else {
                    return Err(unprepared(id));
                };
                let bound = bound_of_values(&s.values, Some(&stmt.bind.columns));
                out.push((stmt.query.clone(), bound));
            }
        }
    }
    Ok(out)
}

/// Unprepared for an id this node does not know, with the text of Cassandra 5.0's
/// `PreparedQueryNotFoundException` (drivers log it when they prepare again).
fn unprepared(id: &bytes::Bytes) -> ErrorBody {
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    ErrorBody {
        code: code::UNPREPARED,
        message: format!(
            "Prepared query with ID {hex} not found (either the query was not prepared on \
             this host (maybe the host has been restarted?) or you have prepared too many \
             queries and it has been evicted from the internal cache)"
        )
        .into(),
        details: ErrorDetails::Unprepared { id: id.clone() },
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Values by marker index; named values are placed by the prepared metadata's names.
fn bound_of(p: &QueryParameters, cols: Option<&[tidemark_cql::message::ColumnSpec]>) -> Bound {
    bound_of_values(&p.values, cols)
}

fn bound_of_values(
    values: &QueryValues,
    cols: Option<&[tidemark_cql::message::ColumnSpec]>,
) -> Bound {
    match (values, cols) {
        (QueryValues::Named(v), Some(cols)) => Bound(
            cols.iter()
                .map(|c| {
                    v.iter()
                        .find(|(n, _)| n == c.name.as_str())
                        .map(|(_, x)| x.clone())
                        .unwrap_or(WireValue::Unset)
                })
                .collect(),
        ),
        (v, _) => Bound(v.values().into_iter().cloned().collect()),
    }
}

fn run(
    shared: &Shared,
    me: usize,
    ks: &Mutex<Option<String>>,
    query: &str,
    p: &QueryParameters,
    bound: Bound,
) -> Message {
    // A delay left by a statement whose connection did not collect it is stale.
    coordinator::take_reply_delay();
    let keyspace = p
        .keyspace
        .as_ref()
        .map(|k| k.to_string())
        .or_else(|| lock(ks).clone());
    let ctx = Ctx {
        shared,
        me,
        keyspace,
        consistency: p.consistency,
        timestamp: p.timestamp,
        serial: p.serial_consistency,
        page: Page {
            size: p.page_size,
            state: p.paging_state.clone().flatten(),
        },
    };
    match execute(&ctx, query, &bound) {
        Ok(ResultBody::SetKeyspace(k)) => {
            *lock(ks) = Some(k.to_string());
            Message::Result(ResultBody::SetKeyspace(k))
        }
        Ok(r) => Message::Result(r),
        Err(e) => Message::Error(e),
    }
}
