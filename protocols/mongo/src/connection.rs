//! Both directions of one TCP flow, with requests paired to replies.
//!
//! Feed `(direction, bytes)` and gap notifications, then drain events with
//! [`Connection::poll`] (poll after every feed so a request is seen before
//! its reply). Replies are paired by `responseTo`; requests sent with
//! moreToCome and legacy writes get no reply; exhaust replies (moreToCome on
//! a reply) chain to the same request, since each follow-up's `responseTo`
//! is the previous reply's `requestID`.

use std::collections::{HashMap, VecDeque};

use crate::decoder::Decoder;
use crate::error::MongoError;
use crate::limits::Limits;
use crate::message::{Body, Message, OpCode};
use crate::model::CommandKind;

/// Which way bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

impl Direction {
    /// `c2s` / `s2c`, as in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Direction::ClientToServer => "c2s",
            Direction::ServerToClient => "s2c",
        }
    }

    fn index(self) -> usize {
        match self {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 1,
        }
    }
}

/// What the pairing needs to know about a request, kept until its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSummary {
    pub request_id: i32,
    /// Stream offset of the request in the client-to-server stream.
    pub offset: u64,
    pub opcode: OpCode,
    /// Command name, for command requests.
    pub command: Option<String>,
    /// Database of the command (`$db` or namespace).
    pub db: Option<String>,
    pub kind: Option<CommandKind>,
    pub exhaust_allowed: bool,
}

impl RequestSummary {
    fn of(msg: &Message) -> RequestSummary {
        let cmd = msg.command();
        RequestSummary {
            request_id: msg.request_id,
            offset: msg.offset,
            opcode: msg.opcode(),
            command: cmd.as_ref().map(|c| c.name.to_owned()),
            db: cmd.as_ref().map(|c| c.db.to_owned()),
            kind: msg.classify(),
            exhaust_allowed: msg.msg_flags().is_some_and(|f| f.exhaust_allowed()),
        }
    }
}

/// A reply's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paired {
    pub request: RequestSummary,
    /// The request itself (shares its buffer; cheap to keep).
    pub request_message: Message,
    /// This reply has moreToCome: more replies to the same request follow.
    pub exhaust: bool,
}

/// How a message relates to the others on the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pairing {
    /// A request that expects a reply.
    AwaitsReply,
    /// A request that gets no reply: moreToCome (w:0), legacy writes, killCursors.
    NoReply,
    /// A reply with its request.
    Reply(Box<Paired>),
    /// A reply whose request was not seen (capture started late, gap, eviction).
    Orphan,
}

/// Output of a connection.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnEvent {
    Message {
        dir: Direction,
        message: Message,
        pairing: Pairing,
    },
    Error {
        dir: Direction,
        error: MongoError,
    },
}

struct Pending {
    summary: RequestSummary,
    message: Message,
}

/// One TCP flow.
pub struct Connection {
    decoders: [Decoder; 2],
    pending: HashMap<i32, Pending>,
    order: VecDeque<i32>,
    max_pending: usize,
}

impl Default for Connection {
    fn default() -> Self {
        Connection::new(Limits::default())
    }
}

impl Connection {
    /// Most requests outstanding at once; older ones are forgotten (their
    /// replies then come out as orphans). Drivers pipeline little, so this
    /// only bounds memory against odd traffic.
    pub const DEFAULT_MAX_PENDING: usize = 4096;

    /// A flow observed from its first byte.
    pub fn new(limits: Limits) -> Connection {
        Connection {
            decoders: [Decoder::new(limits), Decoder::new(limits)],
            pending: HashMap::new(),
            order: VecDeque::new(),
            max_pending: Self::DEFAULT_MAX_PENDING,
        }
    }

    /// A flow joined mid-stream: both directions start by resynchronising.
    pub fn mid_stream(limits: Limits) -> Connection {
        let mut c = Connection::new(limits);
        c.decoders = [Decoder::mid_stream(limits), Decoder::mid_stream(limits)];
        c
    }

    /// Changes the bound on outstanding requests.
    pub fn set_max_pending(&mut self, n: usize) {
        self.max_pending = n.max(1);
    }

    /// Bytes received in one direction.
    pub fn feed(&mut self, dir: Direction, data: &[u8]) {
        self.decoders[dir.index()].feed(data);
    }

    /// `len` bytes lost in one direction.
    pub fn gap(&mut self, dir: Direction, len: u64) {
        self.decoders[dir.index()].gap(len);
    }

    /// The decoder of one direction (offsets, skipped bytes).
    pub fn decoder(&self, dir: Direction) -> &Decoder {
        &self.decoders[dir.index()]
    }

    /// Requests still waiting for a reply.
    pub fn pending_requests(&self) -> impl Iterator<Item = &RequestSummary> {
        self.pending.values().map(|p| &p.summary)
    }

    /// Says both directions have ended, so a resynchronising decoder can move past
    /// a false candidate that claims bytes that will never come; poll again
    /// afterwards for any message that recovers.
    pub fn finish(&mut self) {
        for d in &mut self.decoders {
            d.finish();
        }
    }

    /// Ends the flow: returns the requests that never got a reply
    /// (`in_doubt(no_response)` for writes), oldest first.
    pub fn close(&mut self) -> Vec<RequestSummary> {
        let mut out = Vec::new();
        while let Some(id) = self.order.pop_front() {
            if let Some(p) = self.pending.remove(&id) {
                out.push(p.summary);
            }
        }
        out.extend(self.pending.drain().map(|(_, p)| p.summary));
        out
    }

    /// The next event, client-to-server first.
    pub fn poll(&mut self) -> Option<ConnEvent> {
        for dir in [Direction::ClientToServer, Direction::ServerToClient] {
            match self.decoders[dir.index()].next() {
                Ok(Some(message)) => {
                    let pairing = match dir {
                        Direction::ClientToServer => self.on_request(&message),
                        Direction::ServerToClient => self.on_reply(&message),
                    };
                    return Some(ConnEvent::Message {
                        dir,
                        message,
                        pairing,
                    });
                }
                Ok(None) => {}
                Err(error) => return Some(ConnEvent::Error { dir, error }),
            }
        }
        None
    }

    fn on_request(&mut self, msg: &Message) -> Pairing {
        let expects_reply = match &msg.body {
            Body::Msg(m) => !m.flags.more_to_come(),
            Body::Query(_) | Body::GetMore(_) | Body::Command(_) => true,
            // replies seen in the client direction (odd, but keep going)
            Body::Reply(_) | Body::CommandReply(_) => false,
            Body::Insert(_) | Body::Update(_) | Body::Delete(_) | Body::KillCursors(_) => false,
        };
        if !expects_reply {
            return Pairing::NoReply;
        }
        self.remember(msg.request_id, RequestSummary::of(msg), msg.clone());
        Pairing::AwaitsReply
    }

    fn remember(&mut self, id: i32, summary: RequestSummary, message: Message) {
        while self.pending.len() >= self.max_pending {
            match self.order.pop_front() {
                Some(old) => {
                    self.pending.remove(&old);
                }
                None => {
                    self.pending.clear();
                }
            }
        }
        if self
            .pending
            .insert(id, Pending { summary, message })
            .is_none()
        {
            self.order.push_back(id);
        }
    }

    fn on_reply(&mut self, msg: &Message) -> Pairing {
        let Some(p) = self.pending.remove(&msg.response_to) else {
            return Pairing::Orphan;
        };
        // `order` keeps stale ids until eviction; compact it when it grows.
        if self.order.len() > 2 * self.max_pending {
            let pending = &self.pending;
            self.order.retain(|id| pending.contains_key(id));
        }
        let exhaust = msg.more_to_come();
        if exhaust {
            // the next reply in the exhaust stream answers this reply's id
            self.remember(msg.request_id, p.summary.clone(), p.message.clone());
        }
        Pairing::Reply(Box::new(Paired {
            request: p.summary,
            request_message: p.message,
            exhaust,
        }))
    }
}
