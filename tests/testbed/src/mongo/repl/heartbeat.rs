//! Heartbeats: every member sends `replSetHeartbeat` to every other member
//! every `heartbeat_interval`, over real TCP (one connection per pair, as
//! mongod keeps), and learns from the replies who is alive, who is primary
//! and which term the set is in. A cut link or a stopped member simply
//! stops answering; [`super::election`] acts on the silence.

use super::election::{adopt_term, reset_election_timer};
use super::peer::PeerClient;
use crate::mongo::errors;
use crate::mongo::state::Shared;
use crate::mongo::storage::store::OpTime;
use std::sync::Arc;
use std::time::Instant;
use tidemark_mongo::bson::{doc, Bson, DateTime, Document};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

/// MongoDB's member states, as `state` in heartbeat replies.
pub const STATE_PRIMARY: i32 = 1;
pub const STATE_SECONDARY: i32 = 2;

/// Runs member `me`'s heartbeats to every other member until aborted
/// (dropping the join set ends the per-peer loops too).
pub async fn run(shared: Arc<Shared>, me: usize) {
    let mut peers = JoinSet::new();
    for peer in 0..shared.members.len() {
        if peer != me {
            peers.spawn(beat(shared.clone(), me, peer));
        }
    }
    while peers.join_next().await.is_some() {}
}

async fn beat(shared: Arc<Shared>, me: usize, peer: usize) {
    let mut client: Option<PeerClient> = None;
    let mut tick = tokio::time::interval(shared.config.heartbeat_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !shared.link_up(me, peer) {
            client = None;
            continue;
        }
        if client.is_none() {
            let timeout = shared.config.election_timeout;
            match PeerClient::connect(&shared, me, peer, "heartbeat", timeout).await {
                Ok(c) => client = Some(c),
                Err(e) => {
                    tracing::debug!(member = me, peer, "heartbeat connect failed: {e}");
                    continue;
                }
            }
        }
        let Some(c) = client.as_mut() else { continue };
        match c.command(request(&shared, me)).await {
            Ok(reply) => on_reply(&shared, me, peer, &reply),
            Err(e) => {
                tracing::debug!(member = me, peer, "heartbeat failed: {e}");
                client = None;
            }
        }
    }
}

fn request(shared: &Shared, me: usize) -> Document {
    let topo = shared.topology();
    doc! {
        "replSetHeartbeat": shared.config.set_name.clone(),
        "configVersion": topo.set_version,
        "configTerm": topo.term,
        "hbv": 1,
        "from": shared.members[me].host.clone(),
        "fromId": me as i32,
        "term": shared.term_of(me),
        "$db": "admin",
    }
}

fn int(d: &Document, key: &str) -> Option<i64> {
    match d.get(key)? {
        Bson::Int32(i) => Some(*i as i64),
        Bson::Int64(i) => Some(*i),
        Bson::Double(f) => Some(*f as i64),
        _ => None,
    }
}

/// What a heartbeat reply teaches: the peer is alive; its term; whether
/// it is primary.
fn on_reply(shared: &Shared, me: usize, peer: usize, reply: &Document) {
    let term = int(reply, "term").unwrap_or(0);
    let peer_primary = int(reply, "state") == Some(STATE_PRIMARY as i64);
    adopt_term(shared, me, term);
    let changed = {
        let mut v = shared.members[me].view();
        if let Some(h) = v.last_heard.get_mut(peer) {
            *h = Some(Instant::now());
        }
        let before = v.primary;
        if peer_primary && term >= v.term {
            v.primary = Some(peer);
        } else if !peer_primary && v.primary == Some(peer) {
            v.primary = None;
        }
        before != v.primary
    };
    if peer_primary {
        reset_election_timer(shared, me);
    }
    if changed {
        shared.bump_topology();
    }
}

/// Answers a `replSetHeartbeat` sent to member `me`.
pub fn handle(shared: &Shared, me: usize, cmd: &Document) -> Document {
    let set = cmd.get_str("replSetHeartbeat").unwrap_or_default();
    if set != shared.config.set_name {
        return errors::error(
            93,
            "InvalidReplicaSetConfig",
            &format!(
                "our replica set name is {}, not {set}",
                shared.config.set_name
            ),
        );
    }
    if let Some(t) = int(cmd, "term") {
        adopt_term(shared, me, t);
    }
    let topo = shared.topology();
    let m = &shared.members[me];
    let (last, wall) = {
        let s = m.store();
        (s.last_op_time(), s.last_write_millis())
    };
    let view = m.view().clone();
    let primary = topo.primary == Some(me);
    let mut d = doc! {
        "ok": 1.0,
        "set": shared.config.set_name.clone(),
        "term": view.term,
        "state": if primary { STATE_PRIMARY } else { STATE_SECONDARY },
        "v": topo.set_version,
        "configTerm": topo.term,
        "hbmsg": "",
        "opTime": last.to_doc(),
        "wallTime": DateTime::from_millis(wall),
        "durableOpTime": last.to_doc(),
        "durableWallTime": DateTime::from_millis(wall),
        "electable": true,
    };
    if primary {
        d.insert("electionTime", election_time(shared, me));
    }
    if let Some(p) = view.primary {
        d.insert("primaryId", p as i32);
        if p != me {
            d.insert("syncingTo", shared.members[p].host.clone());
        }
    }
    d
}

/// The timestamp of the primary's "new primary" entry (MongoDB's
/// `electionTime`), or its first entry when it never won an election.
fn election_time(shared: &Shared, me: usize) -> tidemark_mongo::bson::Timestamp {
    let elected = shared
        .truth()
        .elections
        .iter()
        .rev()
        .find(|e| e.member == me)
        .map(|e| e.last_applied);
    elected.unwrap_or(OpTime::default()).timestamp()
}
