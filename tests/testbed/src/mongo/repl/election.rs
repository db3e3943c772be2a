//! Elections (protocol version 1, simplified): the election timer, votes
//! over the wire (`replSetRequestVotes`, dry run first), stepdown when a
//! primary loses its majority or sees a higher term, and the replication
//! admin commands around them (`replSetStepDown`, `replSetGetRBID`,
//! `replSetGetStatus`).
//!
//! One simplification (README): a secondary does not stand while any
//! member is still primary, so a partitioned primary always steps down
//! (after its election timeout) before the others elect; in MongoDB the two
//! can briefly overlap, the old primary still in the old term.

use super::heartbeat::{STATE_PRIMARY, STATE_SECONDARY};
use super::peer::PeerClient;
use crate::mongo::errors;
use crate::mongo::state::Shared;
use crate::mongo::storage::store::OpTime;
use crate::mongo::storage::truth::{now_millis, Election};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tidemark_mongo::bson::{doc, Bson, DateTime, Document};

/// Spreads election timeouts so members rarely stand at the same moment
/// (MongoDB adds a random 0–15 %; here it is fixed per member).
pub fn election_offset(shared: &Shared, i: usize) -> Duration {
    let n = shared.members.len().max(1) as u32;
    shared.config.election_timeout * 3 / 20 * (i as u32) / n
}

/// Pushes member `me`'s election timer a full timeout (plus its offset) away.
pub fn reset_election_timer(shared: &Shared, me: usize) {
    let due = Instant::now() + shared.config.election_timeout + election_offset(shared, me);
    let mut v = shared.members[me].view();
    if v.election_due < due {
        v.election_due = due;
    }
}

/// Member `me` has seen `term`: a higher one replaces its own, and a
/// primary that sees a higher term steps down.
pub fn adopt_term(shared: &Shared, me: usize, term: i64) {
    let higher = {
        let mut v = shared.members[me].view();
        let higher = term > v.term;
        if higher {
            // a primary we knew was primary in an older term: not any more
            v.term = term;
            v.primary = None;
        }
        higher
    };
    if higher {
        let reason = format!("saw a higher term {term}");
        if !step_down(shared, me, &reason, Duration::ZERO) {
            shared.bump_topology();
        }
    }
}

/// Makes primary `me` a secondary; it will not stand for `hold`. False if
/// it was not primary.
pub fn step_down(shared: &Shared, me: usize, reason: &str, hold: Duration) -> bool {
    if !shared.clear_primary(me) {
        return false;
    }
    {
        let mut v = shared.members[me].view();
        v.primary = None;
        v.primary_since = None;
        v.election_due =
            Instant::now() + shared.config.election_timeout.max(hold) + election_offset(shared, me);
    }
    shared.bump_topology();
    shared.truth().event(me, format!("stepped down: {reason}"));
    true
}

/// Member `me`'s election timer and liveness check, until aborted.
pub async fn run(shared: Arc<Shared>, me: usize) {
    let tick = (shared.config.heartbeat_interval / 2).max(Duration::from_millis(10));
    let timeout = shared.config.election_timeout;
    loop {
        tokio::time::sleep(tick).await;
        let now = Instant::now();
        let view = shared.members[me].view().clone();
        if shared.is_primary(me) {
            let heard = view
                .last_heard
                .iter()
                .enumerate()
                .filter(|(j, h)| *j != me && h.is_some_and(|h| now.duration_since(h) < timeout))
                .count();
            let settled = view
                .primary_since
                .is_none_or(|s| now.duration_since(s) >= timeout);
            if heard + 1 < shared.majority() && settled {
                step_down(
                    &shared,
                    me,
                    "could not see a majority for the election timeout",
                    Duration::ZERO,
                );
            }
            continue;
        }
        // a primary not heard from for the election timeout is DOWN to us:
        // hello stops naming it (as mongod's does)
        if let Some(p) = view.primary.filter(|p| *p != me) {
            let silent = view
                .last_heard
                .get(p)
                .copied()
                .flatten()
                .is_none_or(|h| now.duration_since(h) >= timeout);
            if silent {
                let mut v = shared.members[me].view();
                if v.primary == Some(p) {
                    v.primary = None;
                    drop(v);
                    shared.bump_topology();
                }
            }
        }
        if now < view.election_due || shared.topology().primary.is_some() {
            continue;
        }
        stand(&shared, me).await;
    }
}

/// One election attempt: a dry run, then the real vote in term + 1.
async fn stand(shared: &Arc<Shared>, me: usize) {
    let _one_at_a_time = shared.election_lock.lock().await;
    if shared.topology().primary.is_some() || !shared.members[me].is_up() {
        return;
    }
    let last = shared.members[me].store().last_op_time();
    let term = shared.term_of(me) + 1;
    let majority = shared.majority();
    reset_election_timer(shared, me);
    if collect_votes(shared, me, term, last, true).await < majority {
        tracing::debug!(member = me, term, "dry-run election lost");
        return;
    }
    {
        let mut v = shared.members[me].view();
        if v.term >= term {
            return;
        }
        v.term = term;
        v.voted = Some((term, me));
    }
    let votes = collect_votes(shared, me, term, last, false).await;
    if votes < majority || shared.term_of(me) != term || !shared.set_primary(me, term) {
        tracing::debug!(member = me, term, votes, "election lost");
        return;
    }
    {
        let mut v = shared.members[me].view();
        let now = Instant::now();
        v.primary = Some(me);
        v.primary_since = Some(now);
        v.last_heard.iter_mut().for_each(|h| *h = Some(now));
    }
    let m = &shared.members[me];
    let noop = m
        .store()
        .append_oplog(term, "n", "", doc! { "msg": "new primary" }, None);
    m.publish_oplog(shared);
    shared.bump_topology();
    let mut truth = shared.truth();
    truth.elections.push(Election {
        wall_millis: now_millis(),
        member: me,
        term,
        votes,
        last_applied: noop,
    });
    truth.event(
        me,
        format!("elected primary in term {term} with {votes} votes"),
    );
}

/// Asks every reachable member for its vote; the count, our own included.
async fn collect_votes(
    shared: &Arc<Shared>,
    me: usize,
    term: i64,
    last: OpTime,
    dry_run: bool,
) -> usize {
    let mut votes = 1;
    for peer in 0..shared.members.len() {
        if peer == me || !shared.link_up(me, peer) {
            continue;
        }
        let timeout = shared.config.election_timeout;
        let Ok(mut c) = PeerClient::connect(shared, me, peer, "votes", timeout).await else {
            continue;
        };
        let req = doc! {
            "replSetRequestVotes": 1,
            "setName": shared.config.set_name.clone(),
            "dryRun": dry_run,
            "term": term,
            "candidateIndex": me as i32,
            "configVersion": shared.topology().set_version,
            "configTerm": shared.topology().term,
            "lastAppliedOpTime": last.to_doc(),
            "$db": "admin",
        };
        match c.command(req).await {
            Ok(r) if r.get_bool("voteGranted").unwrap_or(false) => votes += 1,
            Ok(r) => {
                if let Some(t) = int(&r, "term") {
                    adopt_term(shared, me, t);
                }
            }
            Err(e) => tracing::debug!(member = me, peer, "vote request failed: {e}"),
        }
    }
    votes
}

fn int(d: &Document, key: &str) -> Option<i64> {
    match d.get(key)? {
        Bson::Int32(i) => Some(*i as i64),
        Bson::Int64(i) => Some(*i),
        Bson::Double(f) => Some(*f as i64),
        _ => None,
    }
}

/// Answers `replSetRequestVotes` on member `me`: yes unless the candidate's
/// term is older, we voted for someone else in that term, or our oplog is
/// newer than the candidate's.
pub fn handle_request_votes(shared: &Shared, me: usize, cmd: &Document) -> Document {
    let (Some(term), Some(candidate)) = (int(cmd, "term"), int(cmd, "candidateIndex")) else {
        return errors::error(
            9,
            "FailedToParse",
            "replSetRequestVotes needs term and candidateIndex",
        );
    };
    let dry_run = cmd.get_bool("dryRun").unwrap_or(false);
    let their_last = cmd
        .get_document("lastAppliedOpTime")
        .ok()
        .and_then(OpTime::from_doc)
        .unwrap_or_default();
    let my_last = shared.members[me].store().last_op_time();
    let candidate = candidate.max(0) as usize;
    let (granted, reason, my_term) = {
        let mut v = shared.members[me].view();
        let (granted, reason) = if term < v.term {
            (false, "candidate's term is lower than mine")
        } else if !dry_run && v.voted.is_some_and(|(t, c)| t == term && c != candidate) {
            (false, "already voted for another candidate in this term")
        } else if their_last < my_last {
            (false, "candidate's data is staler than mine")
        } else {
            (true, "")
        };
        if !dry_run && granted {
            v.voted = Some((term, candidate));
        }
        (granted, reason, v.term)
    };
    if !dry_run {
        adopt_term(shared, me, term);
        if granted {
            reset_election_timer(shared, me);
        }
    }
    doc! {
        "term": my_term.max(if dry_run { 0 } else { term }),
        "voteGranted": granted,
        "reason": reason,
        "ok": 1.0,
    }
}

/// `replSetStepDown` (`stepDownSecs`, default 60): the primary steps down
/// and will not stand again for that long.
pub fn handle_step_down(shared: &Shared, me: usize, cmd: &Document) -> Document {
    let secs = int(cmd, "replSetStepDown").filter(|s| *s > 0).unwrap_or(60);
    if step_down(
        shared,
        me,
        "replSetStepDown",
        Duration::from_secs(secs as u64),
    ) {
        doc! { "ok": 1.0 }
    } else {
        errors::not_writable_primary()
    }
}

/// `replSetGetRBID`.
pub fn handle_get_rbid(shared: &Shared, me: usize) -> Document {
    let rbid = shared.members[me]
        .rbid
        .load(std::sync::atomic::Ordering::SeqCst);
    doc! { "rbid": rbid, "ok": 1.0 }
}

/// `replSetGetStatus`: each member's state and optime as `me` sees them.
pub fn handle_get_status(shared: &Shared, me: usize) -> Document {
    let topo = shared.topology();
    let view = shared.members[me].view().clone();
    let members: Vec<Bson> = shared
        .members
        .iter()
        .map(|m| {
            let reachable = m.index == me || shared.link_up(me, m.index);
            let state = if !reachable {
                8 // DOWN
            } else if topo.primary == Some(m.index) {
                STATE_PRIMARY
            } else {
                STATE_SECONDARY
            };
            let state_str = match state {
                STATE_PRIMARY => "PRIMARY",
                STATE_SECONDARY => "SECONDARY",
                _ => "(not reachable/healthy)",
            };
            Bson::Document(doc! {
                "_id": m.index as i32,
                "name": m.host.clone(),
                "health": if reachable { 1.0 } else { 0.0 },
                "state": state,
                "stateStr": state_str,
                "optime": m.store().last_op_time().to_doc(),
                "self": m.index == me,
            })
        })
        .collect();
    doc! {
        "set": shared.config.set_name.clone(),
        "date": DateTime::now(),
        "myState": if topo.primary == Some(me) { STATE_PRIMARY } else { STATE_SECONDARY },
        "term": view.term,
        "optimes": { "lastCommittedOpTime": shared.members[me].commit_point().to_doc() },
        "members": members,
        "ok": 1.0,
    }
}
