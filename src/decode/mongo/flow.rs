//! [`MongoFlowDecoder`]: one TCP flow's MongoDB messages and writes.
//!
//! Bytes go to a `tidemark_mongo::Connection`, which frames both directions and pairs
//! replies to requests by `responseTo`. Each message becomes a `message` line; each
//! request that changes data becomes [`Action`] lines waiting for their outcome:
//! - a reply decides them by the outcome rules ([`outcome`]);
//! - moreToCome (w:0) means no reply will come → `in_doubt(unacknowledged)`;
//! - legacy OP_INSERT/OP_UPDATE/OP_DELETE wait for the next request on the flow: a
//!   `getlasterror` decides them with its `w`, anything else means they were
//!   unacknowledged; 2.6–3.2 write commands (OP_QUERY `$cmd`, OP_COMMAND) answered
//!   with success likewise take the `w` of a `getlasterror` that follows them;
//! - `autocommit:false` statements are held by [`Transactions`];
//! - a request still unanswered when the flow ends is `in_doubt(no_response)`, and so
//!   is one whose reply was lost in a capture gap (a connection answers in order, so a
//!   reply to a later request proves the earlier reply will not come).

use crate::decode::records::WireOutcome;
use std::collections::HashMap;

use bytes::Bytes;
use tidemark_mongo::model::{Reply, TransactionOp};
use tidemark_mongo::{
    ConnEvent, Connection, Direction as MDir, Limits, Message, MongoError, Pairing,
};

use super::evidence;
use super::message::{self, At};
use super::outcome::{self, Verdict};
use super::replication::Replication;
use super::statement::{extract, Action, Base, Origin, Stmt};
use super::txn::Transactions;
use crate::capture::{CloseReason, Direction, Timestamp};
use crate::decode::reason::{Reason, WriteReason};
use crate::decode::records::{
    ErrorRecord, Record, ReplicationEvent, ReplicationRecord, WriteRecord,
};
use crate::decode::seam::{FlowDecoder, FlowInfo, StreamPos};

/// Write requests awaiting a reply at once; beyond it the oldest is given up.
const MAX_PENDING: usize = 4096;

struct Pending {
    seq: u64,
    action: Action,
    /// A server-to-client gap came while this request waited: its reply may be lost.
    gap: bool,
    /// For a `getlasterror`: the writes it acknowledges.
    gle_slot: Option<GleSlot>,
}

/// Writes waiting to see whether a `getlasterror` follows them.
struct GleSlot {
    stmts: Vec<Stmt>,
    /// False for legacy opcodes, which have no verdict without getlasterror.
    decided: bool,
}

/// The MongoDB decoder of one flow.
pub struct MongoFlowDecoder {
    flow: u64,
    conn: Connection,
    /// Session stream offset minus decoder stream offset, per direction.
    delta: [u64; 2],
    pending: HashMap<i32, Pending>,
    gap_marked: usize,
    seq: u64,
    gle: Option<GleSlot>,
    txns: Transactions,
    done: Vec<Box<WriteRecord>>,
    ts: Timestamp,
    repl: Replication,
}

fn mdir(d: Direction) -> MDir {
    match d {
        Direction::ClientToServer => MDir::ClientToServer,
        Direction::ServerToClient => MDir::ServerToClient,
    }
}

impl MongoFlowDecoder {
    pub fn new(info: &FlowInfo) -> Self {
        MongoFlowDecoder {
            flow: info.flow.0,
            conn: Connection::new(Limits::default()),
            delta: [0, 0],
            pending: HashMap::new(),
            gap_marked: 0,
            seq: 0,
            gle: None,
            txns: Transactions::default(),
            done: Vec::new(),
            ts: info.opened,
            repl: Replication::default(),
        }
    }

    fn set_ts(&mut self, ts: Timestamp) {
        self.ts = ts;
    }

    fn sync_delta(&mut self, dir: Direction, session_offset: u64) {
        let i = mdir(dir) as usize;
        let ours = self.conn.decoder(mdir(dir)).stream_offset();
        self.delta[i] = session_offset.saturating_sub(ours);
    }

    /// Handles every event the connection has ready.
    fn drain(&mut self, out: &mut Vec<Record>) {
        while let Some(ev) = self.conn.poll() {
            match ev {
                ConnEvent::Message {
                    dir,
                    message,
                    pairing,
                } => self.on_message(dir, &message, pairing, out),
                ConnEvent::Error { dir, error } => out.push(self.error(dir, &error)),
            }
            out.extend(self.done.drain(..).map(Record::Write));
        }
    }

    fn error(&self, dir: MDir, e: &MongoError) -> Record {
        Record::Error(ErrorRecord {
            flow: Some(self.flow),
            dir: Some(dir.name()),
            offset: Some(e.offset + self.delta[dir as usize]),
            message: format!("mongo: {}", e.kind),
        })
    }

    fn at(&self, dir: MDir) -> At {
        At {
            flow: self.flow,
            dir: dir.name(),
            ts: self.ts,
            delta: self.delta[dir as usize],
        }
    }

    fn on_message(&mut self, dir: MDir, msg: &Message, pairing: Pairing, out: &mut Vec<Record>) {
        match (dir, pairing) {
            (MDir::ServerToClient, Pairing::Reply(p)) => {
                let reply = msg.reply();
                let parsed = reply.as_ref().and_then(|r| r.as_ref().ok());
                let rec =
                    message::record(&self.at(dir), msg, p.request.command.clone(), parsed, false);
                out.push(Record::Message(rec));
                if let Some(Err(e)) = &reply {
                    out.push(self.model_error(dir, msg, &e.to_string()));
                }
                if let Some(r) = parsed {
                    let mut events = Vec::new();
                    self.repl.reply(Some(&p.request_message), r, &mut events);
                    self.replication(events, out);
                }
                self.on_reply(p.request.request_id, parsed);
            }
            (MDir::ServerToClient, _) => {
                let reply = msg.reply();
                let parsed = reply.as_ref().and_then(|r| r.as_ref().ok());
                let rec = message::record(&self.at(dir), msg, None, parsed, false);
                out.push(Record::Message(rec));
                if let Some(r) = parsed {
                    let mut events = Vec::new();
                    self.repl.reply(None, r, &mut events);
                    self.replication(events, out);
                }
            }
            (MDir::ClientToServer, pairing) => {
                let command = msg.command().map(|c| c.name.to_owned());
                out.push(Record::Message(message::record(
                    &self.at(dir),
                    msg,
                    command,
                    None,
                    true,
                )));
                let mut events = Vec::new();
                self.repl.request(msg, &mut events);
                self.replication(events, out);
                self.on_request(msg, pairing, out);
            }
        }
    }

    /// `replication` lines for what the message said about the replica set.
    fn replication(&self, events: Vec<ReplicationEvent>, out: &mut Vec<Record>) {
        out.extend(events.into_iter().map(|event| {
            Record::Replication(ReplicationRecord {
                flow: self.flow,
                ts: self.ts,
                event,
            })
        }));
    }

    fn model_error(&self, dir: MDir, msg: &Message, what: &str) -> Record {
        Record::Error(ErrorRecord {
            flow: Some(self.flow),
            dir: Some(dir.name()),
            offset: Some(msg.offset + self.delta[dir as usize]),
            message: format!("mongo: request {}: {what}", msg.request_id),
        })
    }

    fn on_request(&mut self, msg: &Message, pairing: Pairing, out: &mut Vec<Record>) {
        let base = Base {
            flow: self.flow,
            ts: self.ts,
        };
        let action = match extract(msg, &base) {
            Ok(a) => a,
            Err(e) => {
                out.push(self.model_error(MDir::ClientToServer, msg, &e.to_string()));
                None
            }
        };
        let is_gle = matches!(action, Some(Action::GetLastError { .. }));
        let slot = if is_gle { self.gle.take() } else { None };
        if !is_gle {
            self.flush_gle(&WriteReason::with(
                Reason::Unacknowledged,
                ": no getlasterror followed the legacy write",
            ));
        }
        let Some(action) = action else { return };
        match pairing {
            Pairing::AwaitsReply => self.await_reply(msg.request_id, action, slot),
            _ => {
                self.gle = slot;
                self.no_reply(action);
            }
        }
    }

    fn await_reply(&mut self, id: i32, action: Action, gle_slot: Option<GleSlot>) {
        if self.pending.len() >= MAX_PENDING {
            if let Some(old) = self
                .pending
                .iter()
                .min_by_key(|(_, p)| p.seq)
                .map(|(k, _)| *k)
            {
                self.unanswered(
                    old,
                    &WriteReason::with(
                        Reason::NoResponse,
                        ": too many requests outstanding on the flow",
                    ),
                );
            }
        }
        self.seq += 1;
        let p = Pending {
            seq: self.seq,
            action,
            gap: false,
            gle_slot,
        };
        if let Some(prev) = self.pending.insert(id, p) {
            if prev.gap {
                self.gap_marked = self.gap_marked.saturating_sub(1);
            }
            // The same requestID reused before its reply: the earlier one's is lost.
            self.give_up(
                prev,
                &WriteReason::with(Reason::NoResponse, ": requestID reused before a reply"),
            );
        }
    }

    /// A request that gets no reply: moreToCome, or a legacy write opcode.
    fn no_reply(&mut self, action: Action) {
        let why = WriteReason::with(Reason::Unacknowledged, ": moreToCome (w:0), no reply");
        match action {
            Action::Writes {
                stmts,
                origin: Origin::LegacyOpcode,
                ..
            } => {
                self.gle = Some(GleSlot {
                    stmts,
                    decided: false,
                })
            }
            Action::Writes { stmts, .. } => {
                self.emit_all(stmts, &Verdict::new(WireOutcome::InDoubt, why))
            }
            Action::Txn { mut rec, .. } => {
                rec.outcome = WireOutcome::InDoubt;
                rec.reason = Some(why);
                self.done.push(rec);
            }
            Action::GetLastError { .. } => {}
        }
    }

    fn emit_all(&mut self, stmts: Vec<Stmt>, v: &Verdict) {
        for mut s in stmts {
            v.apply(&mut s);
            self.done.push(s.rec);
        }
    }

    /// Emits the writes waiting for a getlasterror that did not come.
    fn flush_gle(&mut self, why: &WriteReason) {
        if let Some(slot) = self.gle.take() {
            if slot.decided {
                self.done.extend(slot.stmts.into_iter().map(|s| s.rec));
            } else {
                self.emit_all(slot.stmts, &Verdict::new(WireOutcome::InDoubt, why.clone()));
            }
        }
    }

    fn on_reply(&mut self, request_id: i32, reply: Option<&Reply<'_>>) {
        let Some(p) = self.pending.remove(&request_id) else {
            return;
        };
        if p.gap {
            self.gap_marked = self.gap_marked.saturating_sub(1);
        }
        if self.gap_marked > 0 {
            self.expire_before(p.seq);
        }
        let Some(reply) = reply else {
            self.give_up(
                p,
                &WriteReason::with(Reason::NoResponse, ": the reply could not be read"),
            );
            return;
        };
        match p.action {
            Action::Writes {
                mut stmts,
                ordered,
                wc,
                txn,
                origin,
                bulk_write,
                ..
            } => {
                outcome::decide(&mut stmts, ordered, &wc, reply, bulk_write);
                let at = evidence::reply_optime(reply);
                for s in &mut stmts {
                    s.rec.extras.optime = at;
                    s.rec.extras.error_code = evidence::error_code(reply, s.index);
                    let applied = s.rec.outcome.applied();
                    if applied && !bulk_write && evidence::changed_nothing(reply, &s.rec.op) {
                        let x = &mut s.rec.extras;
                        x.changed_nothing = true;
                        x.optime = None;
                        if let Some(op) = x.mongo_op.as_mut() {
                            op.op = crate::store::MongoOpKind::Noop;
                        }
                    }
                }
                if txn.is_none() && origin != Origin::LegacyCommand {
                    // Nothing is held: the lines move straight into `done` (a line is
                    // about 1 KB, and each move of it through a local is a copy).
                    self.done.extend(stmts.into_iter().map(|s| s.rec));
                    return;
                }
                let mut slot = Vec::new();
                for s in stmts {
                    let applied = s.rec.outcome.applied();
                    match &txn {
                        Some(key) if applied => self.txns.hold(key.clone(), s, &mut self.done),
                        _ if applied && origin == Origin::LegacyCommand => slot.push(s),
                        _ => self.done.push(s.rec),
                    }
                }
                if !slot.is_empty() {
                    self.gle = Some(GleSlot {
                        stmts: slot,
                        decided: true,
                    });
                }
            }
            Action::Txn {
                op,
                key,
                mut rec,
                wc,
            } => {
                let released = self.done.len();
                let (v, n) = match op {
                    TransactionOp::Commit => self.txns.commit(&key, &wc, reply, &mut self.done),
                    TransactionOp::Abort => {
                        let n = self.txns.abort(&key, &mut self.done);
                        (
                            Verdict::new(WireOutcome::Rejected, Reason::TransactionAborted),
                            n,
                        )
                    }
                };
                rec.outcome = v.outcome;
                rec.reason = v.reason;
                rec.statements = Some(n);
                // A transaction's statements take effect at its commit's optime.
                let at = evidence::reply_optime(reply);
                rec.extras.optime = at;
                rec.extras.error_code = evidence::error_code(reply, 0);
                if op == TransactionOp::Commit {
                    for r in &mut self.done[released..] {
                        r.extras.optime = at;
                    }
                }
                self.done.push(rec);
            }
            Action::GetLastError { wc, sent } => {
                let Some(mut slot) = p.gle_slot else { return };
                let mut redo: Vec<Stmt> = Vec::new();
                for s in slot.stmts.drain(..) {
                    if !slot.decided || s.rec.outcome.applied() {
                        redo.push(s);
                    } else {
                        self.done.push(s.rec);
                    }
                }
                outcome::decide_by_gle(&mut redo, &wc, reply);
                let at = evidence::reply_optime(reply);
                for mut s in redo {
                    let x = &mut s.rec.extras;
                    x.optime = at.or(x.optime);
                    x.error_code = evidence::error_code(reply, s.index).or(x.error_code);
                    s.rec.write_concern = Some(sent.clone());
                    self.done.push(s.rec);
                }
            }
        }
    }

    /// Requests sent before `seq` whose replies may have been lost in a gap: the
    /// connection answered a later one, so theirs will not come.
    fn expire_before(&mut self, seq: u64) {
        let lost: Vec<i32> = self
            .pending
            .iter()
            .filter(|(_, p)| p.gap && p.seq < seq)
            .map(|(k, _)| *k)
            .collect();
        for id in lost {
            self.unanswered(
                id,
                &WriteReason::with(Reason::NoResponse, ": the reply was lost in a capture gap"),
            );
        }
    }

    fn unanswered(&mut self, id: i32, why: &WriteReason) {
        if let Some(p) = self.pending.remove(&id) {
            if p.gap {
                self.gap_marked = self.gap_marked.saturating_sub(1);
            }
            self.give_up(p, why);
        }
    }

    /// Decides a request that will never get its reply.
    fn give_up(&mut self, p: Pending, why: &WriteReason) {
        let v = Verdict::new(WireOutcome::InDoubt, why.clone());
        match p.action {
            Action::Writes { stmts, .. } => self.emit_all(stmts, &v),
            Action::Txn { key, mut rec, .. } => {
                let n = self.txns.commit_unanswered(&key, why, &mut self.done);
                rec.statements = Some(n);
                v.apply_record(&mut rec);
                self.done.push(rec);
            }
            Action::GetLastError { .. } => {
                if let Some(slot) = p.gle_slot {
                    if slot.decided {
                        self.done.extend(slot.stmts.into_iter().map(|s| s.rec));
                    } else {
                        self.emit_all(slot.stmts, &v);
                    }
                }
            }
        }
    }
}

impl FlowDecoder for MongoFlowDecoder {
    fn data(&mut self, pos: &StreamPos<'_>, bytes: &Bytes, out: &mut Vec<Record>) {
        self.set_ts(pos.ts);
        self.sync_delta(pos.dir, pos.offset);
        self.conn.feed(mdir(pos.dir), bytes);
        self.drain(out);
    }

    fn gap(&mut self, pos: &StreamPos<'_>, len: u64, out: &mut Vec<Record>) {
        self.set_ts(pos.ts);
        self.sync_delta(pos.dir, pos.offset);
        self.conn.gap(mdir(pos.dir), len);
        match pos.dir {
            Direction::ServerToClient => {
                for p in self.pending.values_mut().filter(|p| !p.gap) {
                    p.gap = true;
                    self.gap_marked += 1;
                }
            }
            // A getlasterror may have been lost with the client's bytes.
            Direction::ClientToServer => self.flush_gle(&WriteReason::with(
                Reason::NoResponse,
                ": acknowledgement lost in a capture gap",
            )),
        }
        self.drain(out);
        out.extend(self.done.drain(..).map(Record::Write));
    }

    fn closed(
        &mut self,
        _flow: &FlowInfo,
        ts: Timestamp,
        _reason: CloseReason,
        out: &mut Vec<Record>,
    ) {
        self.set_ts(ts);
        self.drain(out);
        // Nothing follows: a resync candidate still waiting for bytes was false.
        self.conn.finish();
        self.drain(out);
        let mut left: Vec<(u64, i32)> = self.pending.iter().map(|(k, p)| (p.seq, *k)).collect();
        left.sort_unstable();
        for (_, id) in left {
            let why = if self.pending.get(&id).is_some_and(|p| p.gap) {
                ": the reply was lost in a capture gap"
            } else {
                ": the flow ended before the reply"
            };
            self.unanswered(id, &WriteReason::with(Reason::NoResponse, why));
        }
        self.flush_gle(&WriteReason::with(
            Reason::Unacknowledged,
            ": no getlasterror followed the legacy write",
        ));
        self.txns.close(&mut self.done);
        self.conn.close();
        out.extend(self.done.drain(..).map(Record::Write));
    }

    fn in_flight(&self, out: &mut Vec<WriteRecord>) {
        // Requests waiting for their reply, in the order they were sent; a pending
        // commitTransaction's statements are among the held ones below.
        let mut waiting: Vec<&Pending> = self.pending.values().collect();
        waiting.sort_by_key(|p| p.seq);
        for p in waiting {
            if let Action::Writes { stmts, .. } = &p.action {
                out.extend(stmts.iter().map(|s| (*s.rec).clone()));
            }
        }
        // Writes held for a getlasterror that may still follow them.
        if let Some(g) = &self.gle {
            out.extend(g.stmts.iter().map(|s| (*s.rec).clone()));
        }
        // Acknowledged statements of transactions not ended yet.
        out.extend(self.txns.held_lines().cloned());
    }

    fn oldest_pending_write(&self) -> Option<Timestamp> {
        let waiting = self.pending.values().filter_map(|p| match &p.action {
            Action::Writes { stmts, .. } => stmts.first().map(|s| &*s.rec),
            Action::Txn { rec, .. } => Some(&**rec),
            Action::GetLastError { .. } => None,
        });
        let gle = self
            .gle
            .iter()
            .filter_map(|g| g.stmts.first().map(|s| &*s.rec));
        crate::decode::seam::earliest_line(waiting.chain(gle).chain(self.txns.first_lines()))
    }
}
