//! Failures through the wire: a partitioned primary keeps acknowledging
//! w:1 writes, steps down after the election timeout while the others
//! elect a new primary in a higher term, and on rejoining rolls back
//! exactly the entries the majority never had — recorded as ground truth.
//! Also: a stopped member, write-concern timeouts, NotWritablePrimary, and
//! awaitable hellos that answer when the topology changes.

mod common;

use common::Client;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use tidemark_testbed::mongo::state::election_id;
use tidemark_testbed::mongo::tidemark_mongo::bson::{doc, Bson, Document};
use tidemark_testbed::mongo::tidemark_mongo::{Body, MsgFlags, OpMsg};
use tidemark_testbed::mongo::OpTime;
use tidemark_testbed::{MongoReplicaSet, ReplSetConfig};

/// Generous bound for anything that depends on timers on a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

async fn start(base: Ipv4Addr, election_timeout: Duration) -> MongoReplicaSet {
    MongoReplicaSet::start(ReplSetConfig {
        base_addr: base,
        port: 0,
        max_await: Duration::from_secs(30),
        election_timeout,
        heartbeat_interval: election_timeout / 8,
        ..ReplSetConfig::default()
    })
    .await
    .expect("start")
}

/// Polls `f` until it is true or `WAIT` passes.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn insert(c: &mut Client, id: i32, w: Bson) -> Document {
    c.command(
        doc! { "insert": "c", "documents": [{ "_id": id, "v": id }], "writeConcern": { "w": w, "wtimeout": 20000 }, "$db": "t" },
        0,
        None,
    )
    .await
    .1
}

fn ids(docs: &[Document]) -> BTreeSet<i32> {
    docs.iter().filter_map(|d| d.get_i32("_id").ok()).collect()
}

async fn hello(c: &mut Client) -> Document {
    c.command(doc! { "hello": 1, "$db": "admin" }, 0, None)
        .await
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_primary_steps_down_and_rolls_back_unreplicated_writes() {
    let set = start(Ipv4Addr::new(127, 0, 50, 1), Duration::from_secs(3)).await;
    let addrs = set.addresses();
    let mut c0 = Client::connect(addrs[0]).await;
    for i in 1..=3 {
        let d = insert(&mut c0, i, "majority".into()).await;
        assert!(!d.contains_key("writeConcernError"), "{d}");
    }
    let committed_before = set.commit_point(0).expect("member 0");
    let counter_before = hello(&mut c0)
        .await
        .get_document("topologyVersion")
        .and_then(|t| t.get_i64("counter"))
        .expect("counter");

    set.partition(0).expect("partition");
    // the partitioned primary still acknowledges w:1 writes...
    for i in 10..=12 {
        let d = insert(&mut c0, i, 1.into()).await;
        assert_eq!(d.get_i32("n").ok(), Some(1), "w:1 acknowledged: {d}");
    }
    // a w:"majority" write there is applied but can only end with the stepdown
    let d = insert(&mut c0, 15, "majority".into()).await;
    assert_eq!(d.get_i32("n").ok(), Some(1), "{d}");
    let wce = d
        .get_document("writeConcernError")
        .expect("no majority behind a partition");
    assert_eq!(
        wce.get_i32("code").ok(),
        Some(189),
        "PrimarySteppedDown: {d}"
    );
    // ...it has stepped down; the others elect a new primary in term 2
    until("a new primary", || set.primary().is_some_and(|p| p != 0)).await;
    let p = set.primary().expect("primary");
    let elections = set.elections();
    assert_eq!(elections.last().map(|e| (e.member, e.term)), Some((p, 2)));
    let h0 = hello(&mut c0).await;
    assert_eq!(h0.get_bool("isWritablePrimary").ok(), Some(false), "{h0}");
    assert!(
        h0.get_document("topologyVersion")
            .and_then(|t| t.get_i64("counter"))
            .expect("counter")
            > counter_before
    );
    let d = insert(&mut c0, 13, 1.into()).await;
    assert_eq!(
        d.get_i32("code").ok(),
        Some(10107),
        "NotWritablePrimary: {d}"
    );

    let mut cp = Client::connect(addrs[p]).await;
    let hp = hello(&mut cp).await;
    assert_eq!(hp.get_bool("isWritablePrimary").ok(), Some(true));
    assert_eq!(hp.get_object_id("electionId").ok(), Some(election_id(2)));
    let d = insert(&mut cp, 20, "majority".into()).await;
    assert!(!d.contains_key("writeConcernError"), "{d}");

    set.heal(0).expect("heal");
    until("member 0 to roll back and catch up", || {
        !set.rollbacks().is_empty() && set.oplog(0) == set.oplog(p)
    })
    .await;
    let rb = set.rollbacks();
    assert_eq!(rb.len(), 1, "one rollback: {rb:?}");
    let rb = &rb[0];
    assert_eq!((rb.member, rb.sync_source), (0, p));
    assert!(rb.common_point >= committed_before);
    let undone: BTreeSet<i32> = rb
        .entries
        .iter()
        .filter(|e| e.get_str("op").ok() == Some("i"))
        .filter_map(|e| e.get_document("o").ok()?.get_i32("_id").ok())
        .collect();
    assert_eq!(undone, BTreeSet::from([10, 11, 12, 15]));
    assert!(rb.entries.iter().all(|e| e.get_i64("t").ok() == Some(1)));
    let before: BTreeSet<i32> = rb
        .documents
        .iter()
        .filter(|(ns, _, d)| ns == "t.c" && d.is_some())
        .filter_map(|(_, id, _)| id.as_i32())
        .collect();
    assert_eq!(before, undone, "rollback files hold the undone documents");
    assert_eq!(
        set.shared().members[0]
            .rbid
            .load(std::sync::atomic::Ordering::SeqCst),
        rb.rbid
    );

    // ground truth: the lost w:1 writes are exactly the rolled-back ones
    let final_ids = ids(&set.documents(p, "t.c"));
    assert_eq!(final_ids, BTreeSet::from([1, 2, 3, 20]));
    assert_eq!(set.documents(0, "t.c"), set.documents(p, "t.c"));
    until("the commit point to cover the new primary's writes", || {
        set.commit_point(p) == set.last_applied(p)
    })
    .await;
    let state = set
        .committed_state_at(set.newest_commit_point())
        .expect("committed");
    assert_eq!(ids(&state["t.c"]), final_ids);
    let at_before = set.committed_state_at(committed_before).expect("old");
    assert_eq!(ids(&at_before["t.c"]), BTreeSet::from([1, 2, 3]));
    assert!(set
        .committed_state_at(OpTime { t: 99, ts: (0, 0) })
        .is_err());

    // entries of the new term carry t: 2, the first one the new primary's no-op;
    // the commit history never passed the common point in term 1
    let oplog = set.oplog(p);
    let new_term: Vec<&Document> = oplog
        .iter()
        .filter(|e| e.get_i64("t").ok() == Some(2))
        .collect();
    assert_eq!(
        new_term.first().and_then(|e| e.get_str("op").ok()),
        Some("n")
    );
    let history = set.commit_point_history();
    assert!(history
        .windows(2)
        .all(|w| w[0].commit_point < w[1].commit_point));
    assert!(history
        .iter()
        .filter(|c| c.term == 1)
        .all(|c| c.commit_point <= rb.common_point));
    assert!(history.iter().all(|c| c.commit_point.t == c.term));
    set.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_member_times_out_w3_and_catches_up_after_restart() {
    // default (10 s) election timeout: nothing elects during this test
    let set = start(Ipv4Addr::new(127, 0, 51, 1), Duration::from_secs(10)).await;
    let addrs = set.addresses();
    let mut c0 = Client::connect(addrs[0]).await;
    let mut c2 = Client::connect(addrs[2]).await;
    let pid_before = hello(&mut c2)
        .await
        .get_document("topologyVersion")
        .and_then(|t| t.get_object_id("processId"))
        .expect("processId");
    set.stop_member(2).expect("stop");
    assert!(
        c2.recv().await.is_none(),
        "stopping closes client connections"
    );
    let d = c0
        .command(
            doc! { "insert": "c", "documents": [{ "_id": 1 }], "writeConcern": { "w": 3, "wtimeout": 300 }, "$db": "t" },
            0,
            None,
        )
        .await
        .1;
    let wce = d
        .get_document("writeConcernError")
        .expect("w:3 with a member down");
    assert_eq!(wce.get_i32("code").ok(), Some(64));
    let d = insert(&mut c0, 2, "majority".into()).await;
    assert!(
        !d.contains_key("writeConcernError"),
        "2 of 3 is a majority: {d}"
    );
    assert!(set.documents(2, "t.c").is_empty());

    set.start_member(2).await.expect("restart");
    until("member 2 to catch up", || set.oplog(2) == set.oplog(0)).await;
    let mut c2 = Client::connect(addrs[2]).await;
    let h = hello(&mut c2).await;
    assert_ne!(
        h.get_document("topologyVersion")
            .and_then(|t| t.get_object_id("processId"))
            .ok(),
        Some(pid_before),
        "a restarted member is a new process"
    );
    assert_eq!(h.get_bool("secondary").ok(), Some(true));
    assert_eq!(ids(&set.documents(2, "t.c")), BTreeSet::from([1, 2]));
    set.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awaitable_hello_answers_when_the_primary_steps_down() {
    let set = start(Ipv4Addr::new(127, 0, 52, 1), Duration::from_secs(3)).await;
    let addrs = set.addresses();
    let mut c = Client::connect(addrs[0]).await;
    let first = hello(&mut c).await;
    let tv = first.get_document("topologyVersion").expect("tv").clone();
    let mut waiting = Client::connect(addrs[0]).await;
    // max_await is 30 s and the client waits at most 10 s for a reply: only
    // the topology change can answer this hello in time
    let id = waiting
        .send(
            Body::Msg(OpMsg::new(common::raw(
                &doc! { "hello": 1, "topologyVersion": tv.clone(), "maxAwaitTimeMS": 60000, "$db": "admin" },
            ))),
            None,
        )
        .await;
    // streaming (exhaust) hello on member 1: one request, then a reply per change
    let mut stream = Client::connect(addrs[1]).await;
    let tv1 = hello(&mut stream)
        .await
        .get_document("topologyVersion")
        .expect("tv")
        .clone();
    let mut exhaust = OpMsg::new(common::raw(
        &doc! { "hello": 1, "topologyVersion": tv1, "maxAwaitTimeMS": 60000, "$db": "admin" },
    ));
    exhaust.flags = MsgFlags(MsgFlags::EXHAUST_ALLOWED);
    let mut expect_response_to = stream.send(Body::Msg(exhaust), None).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    set.step_down(0, Duration::from_secs(60))
        .expect("step down");
    let reply = waiting.recv().await.expect("reply");
    assert_eq!(reply.response_to, id);
    let Body::Msg(m) = &reply.body else {
        panic!("OP_MSG expected");
    };
    let d = Document::try_from(m.body.raw()).expect("doc");
    assert_eq!(d.get_bool("isWritablePrimary").ok(), Some(false), "{d}");
    assert!(
        d.get_document("topologyVersion")
            .and_then(|t| t.get_i64("counter"))
            .expect("counter")
            > tv.get_i64("counter").expect("counter")
    );
    // a write to the stepped-down member is refused
    let d = insert(&mut c, 1, 1.into()).await;
    assert_eq!(d.get_str("codeName").ok(), Some("NotWritablePrimary"));
    // a secondary takes over (member 0 holds off for its 60 s stepdown period)
    until("a new primary", || set.primary().is_some_and(|p| p != 0)).await;
    let new_host = addrs[set.primary().expect("primary")].to_string();
    // member 1's stream reports the changes without further requests, until it names the new primary
    let mut streamed = 0;
    loop {
        let m = stream.recv().await.expect("a streamed hello");
        assert_eq!(
            m.response_to, expect_response_to,
            "each reply answers the previous one"
        );
        assert!(m.more_to_come(), "streamed replies carry moreToCome");
        expect_response_to = m.request_id;
        streamed += 1;
        let Body::Msg(msg) = &m.body else {
            panic!("OP_MSG expected");
        };
        let d = Document::try_from(msg.body.raw()).expect("doc");
        if d.get_str("primary").ok() == Some(new_host.as_str()) {
            break;
        }
    }
    assert!(streamed >= 2, "stepdown and election each answered");
    set.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_primary_restarts_as_secondary_and_rolls_back() {
    let set = start(Ipv4Addr::new(127, 0, 58, 1), Duration::from_secs(3)).await;
    let addrs = set.addresses();
    let mut c0 = Client::connect(addrs[0]).await;
    let d = insert(&mut c0, 1, "majority".into()).await;
    assert!(!d.contains_key("writeConcernError"), "{d}");
    // cut replication, take a w:1 write, then crash before anything else happens
    set.partition(0).expect("partition");
    let d = insert(&mut c0, 2, 1.into()).await;
    assert_eq!(d.get_i32("n").ok(), Some(1), "{d}");
    set.stop_member(0).expect("stop");
    assert_eq!(set.primary(), None, "a crashed primary is no primary");
    set.heal(0).expect("links back (the member is still down)");
    until("a new primary", || set.primary().is_some_and(|p| p != 0)).await;
    let p = set.primary().expect("primary");
    set.start_member(0).await.expect("restart");
    until("member 0 to roll back and catch up", || {
        !set.rollbacks().is_empty() && set.oplog(0) == set.oplog(p)
    })
    .await;
    assert_eq!(
        set.primary(),
        Some(p),
        "the restarted member did not take over"
    );
    let rb = &set.rollbacks()[0];
    assert_eq!(rb.member, 0);
    assert_eq!(rb.entries.len(), 1);
    assert_eq!(
        rb.entries[0].get_document("o").ok(),
        Some(&doc! { "_id": 2, "v": 2 })
    );
    assert_eq!(ids(&set.documents(0, "t.c")), BTreeSet::from([1]));
    let mut c0 = Client::connect(addrs[0]).await;
    let h = hello(&mut c0).await;
    assert_eq!(h.get_bool("secondary").ok(), Some(true), "{h}");
    assert_eq!(
        h.get_str("primary").ok(),
        Some(addrs[p].to_string().as_str())
    );
    set.stop();
}
