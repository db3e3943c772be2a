//! [`CqlFlowDecoder`]: one CQL connection. Bytes go into a tidemark-cql
//! [`Connection`]; every decoded frame becomes a `message` line; requests are paired
//! with their responses by stream id; write requests become `write` lines once their
//! response (or the end of the flow) decides their outcome.

use crate::decode::records::WireOutcome;
use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::Bytes;
use tidemark_cql::message::{ResultBody, Rows};
use tidemark_cql::{Connection, Item, Message};

use super::outcome::decide;
use super::parsed::{ParsedText, TextCache};
use super::request::{self, Pending, PendingKind};
use super::shared::{PreparedStmt, SharedState};
use super::{message, resolve};
use crate::capture::{CloseReason, Direction, Timestamp};
use crate::decode::reason::{Reason, WriteReason};
use crate::decode::records::{BatchPlace, CqlBatchType, ErrorRecord, Record, WriteRecord};
use crate::decode::seam::{FlowDecoder, FlowInfo, StreamPos};

/// The per-flow CQL decoder.
pub struct CqlFlowDecoder {
    conn: Connection,
    flow: u64,
    server: SocketAddr,
    shared: SharedState,
    /// The connection's keyspace (USE / Set_keyspace).
    keyspace: Option<String>,
    /// Requests waiting for their response, by stream id.
    pending: HashMap<i16, Pending>,
    /// Requests seen so far, to report unanswered ones in order.
    seq: u64,
    /// Parsed QUERY texts, so a repeated text is parsed once.
    queries: TextCache,
}

/// QUERY texts whose parse a flow keeps.
const QUERY_CACHE: usize = 256;

fn cql_dir(d: Direction) -> tidemark_cql::Direction {
    match d {
        Direction::ClientToServer => tidemark_cql::Direction::ClientToServer,
        Direction::ServerToClient => tidemark_cql::Direction::ServerToClient,
    }
}

impl CqlFlowDecoder {
    pub fn new(info: &FlowInfo, shared: SharedState) -> Self {
        CqlFlowDecoder {
            conn: Connection::new(),
            flow: info.flow.0,
            server: info.server,
            shared,
            keyspace: None,
            pending: HashMap::new(),
            seq: 0,
            queries: TextCache::new(QUERY_CACHE),
        }
    }

    fn drain(&mut self, ts: Timestamp, out: &mut Vec<Record>) {
        // Every frame completed by one input shares its capture time.
        while let Some(next) = self.conn.next() {
            match next {
                Ok(item) => self.item(item, ts, out),
                Err(e) => out.push(Record::Error(ErrorRecord {
                    flow: Some(self.flow),
                    dir: e.dir.map(|d| d.as_str()),
                    offset: Some(e.offset),
                    message: format!("cql: {}", e.kind),
                })),
            }
        }
    }

    fn item(&mut self, item: Item, ts: Timestamp, out: &mut Vec<Record>) {
        out.push(Record::Message(message::record(self.flow, ts, &item)));
        match item.dir {
            tidemark_cql::Direction::ClientToServer => self.request(item, ts, out),
            tidemark_cql::Direction::ServerToClient => self.response(item, out),
        }
    }

    fn request(&mut self, item: Item, ts: Timestamp, out: &mut Vec<Record>) {
        let stream = item.frame.header.stream;
        let ctx = request::Ctx {
            flow: self.flow,
            ts,
            stream,
            keyspace: self.keyspace.as_deref(),
        };
        let kind = {
            let mut shared = self.shared.lock();
            request::classify(
                item.message(),
                &ctx,
                &mut shared,
                &mut self.queries,
                self.server,
                out,
            )
        };
        let Some(kind) = kind else { return };
        self.seq += 1;
        let p = Pending {
            seq: self.seq,
            kind,
        };
        if let Some(old) = self.pending.insert(stream, p) {
            // The stream id was reused: the earlier request's response never came.
            self.unanswered(old, Reason::NoResponse, out);
        }
    }

    fn response(&mut self, item: Item, out: &mut Vec<Record>) {
        let msg = item.message();
        match msg {
            Message::Result(ResultBody::SetKeyspace(k)) => self.keyspace = Some(k.to_string()),
            Message::Result(ResultBody::Rows(rows)) => self.learn(rows),
            _ => {}
        }
        let stream = item.frame.header.stream;
        if stream < 0 {
            return; // EVENT pushes answer nothing.
        }
        let Some(p) = self.pending.remove(&stream) else {
            return;
        };
        match p.kind {
            PendingKind::Prepare { text, keyspace } => {
                let Message::Result(ResultBody::Prepared(prep)) = msg else {
                    return;
                };
                let stmt =
                    PreparedStmt::new(ParsedText::new(text), keyspace, prep.metadata.clone());
                let mut shared = self.shared.lock();
                let waiting = shared
                    .node(self.server)
                    .insert_prepared(prep.id.clone(), stmt);
                let stmt = shared.node(self.server).prepared(&prep.id);
                if let Some(stmt) = stmt {
                    for u in waiting {
                        resolve::resolved(&u, &stmt, &shared.schema, out);
                    }
                }
            }
            PendingKind::Writes {
                writes,
                lwt,
                unresolved,
            } => {
                let (mut outcome, mut reason) = decide(msg, lwt);
                if outcome == WireOutcome::Rejected
                    && reason.as_ref().map(WriteReason::word) == Some(Reason::Unavailable)
                    && unlogged_across_keys(&writes)
                {
                    // Sent partition by partition: those before the refused one
                    // may be written (see `unlogged_across_keys`).
                    outcome = WireOutcome::InDoubt;
                    reason = Some(WriteReason::new(Reason::Unavailable));
                }
                self.finish(writes, unresolved, outcome, reason, out);
            }
            PendingKind::Use | PendingKind::Other => {}
        }
    }

    fn learn(&mut self, rows: &Rows) {
        if rows
            .metadata
            .columns
            .first()
            .is_some_and(|c| c.keyspace.as_str() == "system_schema")
        {
            self.shared.lock().schema.learn_rows(rows);
        }
    }

    fn finish(
        &mut self,
        writes: Vec<Box<WriteRecord>>,
        unresolved: Vec<Option<request::Waiting>>,
        outcome: WireOutcome,
        reason: Option<WriteReason>,
        out: &mut Vec<Record>,
    ) {
        // `unresolved` ends at the last write that waits (see `PendingKind::Writes`).
        let waits = unresolved
            .into_iter()
            .chain(std::iter::repeat_with(|| None));
        for (mut w, u) in writes.into_iter().zip(waits) {
            w.outcome = outcome;
            w.reason = reason.clone();
            match u {
                None => out.push(Record::Write(w)),
                Some(wait) => {
                    let mut shared = self.shared.lock();
                    let id = wait.id.clone();
                    let u = wait.into_unresolved(*w);
                    // The PREPARE may have been answered between this request and its
                    // response (a pipelining client): then it resolves at once.
                    if let Some(stmt) = shared.node(self.server).prepared(&id) {
                        resolve::resolved(&u, &stmt, &shared.schema, out);
                        continue;
                    }
                    let reported = resolve::unresolved_line(&u.record, outcome, reason.as_deref());
                    out.push(Record::Write(Box::new(reported)));
                    shared.node(self.server).wait(id, u);
                }
            }
        }
    }

    fn unanswered(&mut self, p: Pending, reason: Reason, out: &mut Vec<Record>) {
        if let PendingKind::Writes {
            writes, unresolved, ..
        } = p.kind
        {
            self.finish(
                writes,
                unresolved,
                WireOutcome::InDoubt,
                Some(WriteReason::new(reason)),
                out,
            );
        }
    }
}

impl FlowDecoder for CqlFlowDecoder {
    fn data(&mut self, pos: &StreamPos<'_>, bytes: &Bytes, out: &mut Vec<Record>) {
        self.conn.feed(cql_dir(pos.dir), bytes);
        self.drain(pos.ts, out);
    }

    fn gap(&mut self, pos: &StreamPos<'_>, len: u64, out: &mut Vec<Record>) {
        // Responses lost in an s2c gap leave their requests pending: they are decided
        // `in_doubt(no_response)` when the flow ends or the stream id is reused.
        self.conn.gap(cql_dir(pos.dir), len);
        self.drain(pos.ts, out);
    }

    fn closed(
        &mut self,
        _flow: &FlowInfo,
        ts: Timestamp,
        _reason: CloseReason,
        out: &mut Vec<Record>,
    ) {
        self.drain(ts, out);
        let mut left: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        left.sort_by_key(|p| p.seq);
        for p in left {
            self.unanswered(p, Reason::NoResponse, out);
        }
    }

    fn in_flight(&self, out: &mut Vec<WriteRecord>) {
        let mut held: Vec<&Pending> = self.pending.values().collect();
        held.sort_by_key(|p| p.seq);
        for p in held {
            if let PendingKind::Writes { writes, .. } = &p.kind {
                out.extend(writes.iter().map(|w| (**w).clone()));
            }
        }
    }

    fn oldest_pending_write(&self) -> Option<Timestamp> {
        crate::decode::seam::earliest_line(self.pending.values().flat_map(|p| match &p.kind {
            PendingKind::Writes { writes, .. } => writes.first().map(|w| &**w),
            _ => None,
        }))
    }
}

/// A request id of a prepared statement, as hex, for messages.
pub fn id_hex(id: &Bytes) -> String {
    tidemark_cql::types::format::blob(id)
}

/// Whether `writes` are the members of an UNLOGGED batch that name more than one
/// key. Cassandra's coordinator (`StorageProxy.mutate`) checks each partition's live
/// replicas as it sends that partition's mutation, so an Unavailable for one
/// partition can come after others were sent: the batch is then in doubt, not
/// refused. (A logged batch checks every partition before writing anything; a
/// batch of one partition is one mutation.) Rows of one partition with different
/// clustering keys count as different keys here: in doubt then too, which a later
/// read or policy settles, rather than a write silently missing.
fn unlogged_across_keys(writes: &[Box<WriteRecord>]) -> bool {
    let unlogged = writes
        .iter()
        .any(|w| w.batch.as_ref().and_then(BatchPlace::cql_kind) == Some(CqlBatchType::Unlogged));
    unlogged
        && writes
            .iter()
            .any(|w| w.namespace != writes[0].namespace || w.key != writes[0].key)
}
