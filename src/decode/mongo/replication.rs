//! Replication evidence on one MongoDB flow (ARCHITECTURE.md, MongoDB outcome rules):
//! what the commit tracker needs to move `pending` writes to `committed` or
//! `rolled_back`.
//!
//! - replies carrying `$replData` / `$oplogQueryData` give the majority commit point
//!   (`lastOpCommitted`);
//! - hello / isMaster replies give `lastWrite.majorityOpTime` and the topology;
//! - `replSetUpdatePosition` requests give each member's durable optime;
//! - replies to a `find` / `getMore` on `local.oplog.rs` (a secondary's oplog fetcher,
//!   exhaust replies included) give the oplog entries themselves.
//!
//! Only fields named above are read; nothing here looks at authentication payloads.

use std::collections::HashSet;

use tidemark_mongo::bson::RawBsonRef;
use tidemark_mongo::model::{Command, Reply};
use tidemark_mongo::repl::{HelloReply, OpTime, UpdatePosition};
use tidemark_mongo::Message;

use super::evidence::{election_term, oplog_op, optime};
use super::share::Owners;
use crate::decode::records::ReplicationEvent;

/// Oplog cursor ids remembered per flow; beyond it the set starts over (a fetcher
/// has one cursor at a time, so only odd traffic gets there).
const MAX_CURSORS: usize = 1024;

/// Replication state of one flow: the cursors open on `local.oplog.rs`.
#[derive(Debug, Default)]
pub struct Replication {
    oplog_cursors: HashSet<i64>,
}

/// A commit point, unless it is the null optime (`{ts: 0, t: -1}`) a member sends
/// before it knows one (e.g. while its replica set config is invalid).
fn commit_point(at: OpTime, source: &'static str) -> Option<ReplicationEvent> {
    let known = at.ts.time != 0 || at.ts.increment != 0;
    known.then(|| ReplicationEvent::CommitPoint {
        optime: optime(at),
        source,
    })
}

fn is_hello(name: &str) -> bool {
    matches!(name, "hello" | "isMaster" | "ismaster")
}

impl Replication {
    /// Facts a request states: `replSetUpdatePosition`'s durable optimes.
    pub fn request(&mut self, msg: &Message, out: &mut Vec<ReplicationEvent>) {
        let Some(cmd) = msg.command() else { return };
        if cmd.name != "replSetUpdatePosition" {
            return;
        }
        let Ok(up) = UpdatePosition::parse(cmd.body) else {
            return;
        };
        let durable: Vec<(i64, _)> = up
            .optimes
            .iter()
            .filter_map(|m| Some((m.member_id?, optime(m.durable_op_time?))))
            .collect();
        if !durable.is_empty() {
            out.push(ReplicationEvent::MemberPositions { durable });
        }
    }

    /// True when `cmd` reads `local.oplog.rs`: an oplog `find`, or a `getMore` that
    /// names the collection or continues a cursor an oplog `find` opened.
    fn reads_oplog(&self, cmd: &Command<'_>) -> bool {
        match cmd.name {
            "find" => matches!(cmd.oplog_find(), Ok(Some(_))),
            "getMore" => match cmd.get_more() {
                Ok(Some(g)) => {
                    (cmd.db == "local" && g.collection == Some("oplog.rs"))
                        || self.oplog_cursors.contains(&g.cursor_id)
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// Facts a reply states. `request` is the request it answers, when known.
    pub fn reply(
        &mut self,
        request: Option<&Message>,
        reply: &Reply<'_>,
        out: &mut Vec<ReplicationEvent>,
    ) {
        let cmd = request.and_then(Message::command);
        let oplog = match (&cmd, &reply.cursor) {
            (Some(c), Some(_)) => self.reads_oplog(c),
            // The request was not seen: the cursor's namespace says it.
            (None, Some(cur)) => cur.is_oplog(),
            (_, None) => false,
        };
        if oplog {
            self.oplog_entries(reply, out);
        }
        let repl = reply.repl_data.as_ref().and_then(|r| r.last_op_committed);
        out.extend(repl.and_then(|c| commit_point(c, "lastOpCommitted")));
        let query = reply
            .oplog_query_data
            .as_ref()
            .and_then(|q| q.last_op_committed);
        let query = query.filter(|&c| Some(c) != repl);
        out.extend(query.and_then(|c| commit_point(c, "lastOpCommitted")));
        if cmd.as_ref().is_some_and(|c| is_hello(c.name)) {
            hello(reply, out);
        }
        if cmd
            .as_ref()
            .is_some_and(|c| matches!(c.name, "setDefaultRWConcern" | "getDefaultRWConcern"))
        {
            default_rw_concern(reply, out);
        }
    }

    fn oplog_entries(&mut self, reply: &Reply<'_>, out: &mut Vec<ReplicationEvent>) {
        let Some(cur) = &reply.cursor else { return };
        if cur.id != 0 {
            if self.oplog_cursors.len() >= MAX_CURSORS {
                self.oplog_cursors.clear();
            }
            self.oplog_cursors.insert(cur.id);
        }
        for doc in cur.batch.into_iter().filter_map(|v| v.ok()?.as_document()) {
            let Ok(entry) = tidemark_mongo::repl::OplogEntry::parse(doc) else {
                continue;
            };
            // A chunk migration's copy (the recipient's clone and catch-up) or the
            // range deleter's removal of orphans: no client wrote it, and the
            // logical state does not change by it (ARCHITECTURE.md's spirit: the
            // log holds what clients wrote).
            if entry.from_migrate {
                continue;
            }
            // Copied, not shared: an entry may wait in the tracker for its write
            // long after the rest of its batch (up to 16 MB) is decided.
            let (Some(at), Some(op)) = (entry.op_time(), oplog_op(&entry, &Owners::none())) else {
                continue;
            };
            out.push(ReplicationEvent::OplogEntry {
                optime: optime(at),
                wall: entry.wall.map(|w| w.timestamp_millis()),
                op,
            });
        }
    }
}

/// Topology and `lastWrite.majorityOpTime` of a hello reply.
fn hello(reply: &Reply<'_>, out: &mut Vec<ReplicationEvent>) {
    let Ok(h) = HelloReply::parse(reply.doc) else {
        return;
    };
    let last_write = h.last_write.unwrap_or_default();
    if h.set_name.is_some() {
        let term = h
            .election_id
            .as_ref()
            .and_then(election_term)
            .or_else(|| last_write.op_time.map(|o| o.t));
        // An arbiter answering is listed in `arbiters` too; `arbiterOnly` alone
        // still proves the set has one.
        let arbiters = h
            .arbiters
            .len()
            .max(usize::from(h.arbiter_only == Some(true)));
        out.push(ReplicationEvent::Topology {
            set_name: h.set_name.map(str::to_owned),
            hosts: h
                .hosts
                .iter()
                .chain(&h.passives)
                .chain(&h.arbiters)
                .map(|s| s.to_string())
                .collect(),
            members: h.hosts.len() + h.passives.len() + arbiters,
            primary: h.primary.map(str::to_owned),
            term,
            arbiters,
            max_wire_version: h.max_wire_version,
        });
    } else if h.msg == Some("isdbgrid") {
        out.push(ReplicationEvent::Router);
    } else if h.ok != Some(false) && !uninitiated_member(reply) {
        out.push(ReplicationEvent::Standalone {
            max_wire_version: h.max_wire_version,
        });
    }
    out.extend(
        last_write
            .majority_op_time
            .and_then(|m| commit_point(m, "majorityOpTime")),
    );
}

/// `isreplicaset: true` without `setName`: a mongod started as a replica-set member
/// whose set is not initiated yet — not a standalone.
fn uninitiated_member(reply: &Reply<'_>) -> bool {
    matches!(
        reply.doc.get("isreplicaset"),
        Ok(Some(RawBsonRef::Boolean(true)))
    )
}

/// The cluster-wide default write concern a `setDefaultRWConcern` /
/// `getDefaultRWConcern` reply states (both reply with the settings now in force:
/// `defaultWriteConcern`, absent when none is set, and `defaultWriteConcernSource`).
/// A failed command states nothing.
fn default_rw_concern(reply: &Reply<'_>, out: &mut Vec<ReplicationEvent>) {
    if super::outcome::failed(reply) || reply.ok.is_none() {
        return;
    }
    let majority = match reply.doc.get("defaultWriteConcern") {
        Ok(Some(RawBsonRef::Document(wc))) => match wc.get("w") {
            Ok(Some(RawBsonRef::String(w))) => Some(w == "majority"),
            Ok(Some(_)) => Some(false),
            // No `w`: the implicit default's `w` stays in force.
            _ => None,
        },
        _ => None,
    };
    let source = match reply.doc.get("defaultWriteConcernSource") {
        Ok(Some(RawBsonRef::String(s))) => Some(s.to_owned()),
        _ => None,
    };
    out.push(ReplicationEvent::DefaultWriteConcern { majority, source });
}
