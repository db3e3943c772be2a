//! The members' own replication traffic — the raw bytes of every fetcher,
//! reporter and heartbeat connection, as tapped by the testbed — decodes
//! with `tidemark-mongo` into exactly the oplog entries each secondary
//! recorded and the commit points the primary recorded over time.

mod common;

use common::Client;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use tidemark_testbed::mongo::state::TapRecord;
use tidemark_testbed::mongo::tidemark_mongo::bson::{doc, Document, RawDocumentBuf};
use tidemark_testbed::mongo::tidemark_mongo::repl::{
    CursorReply, HeartbeatReply, HeartbeatRequest, OpTime as WireOpTime, ReplData, UpdatePosition,
};
use tidemark_testbed::mongo::tidemark_mongo::{Body, Decoder, Limits};
use tidemark_testbed::mongo::OpTime;
use tidemark_testbed::{MongoReplicaSet, ReplSetConfig};

fn optime(o: WireOpTime) -> OpTime {
    OpTime {
        t: o.t,
        ts: (o.ts.time, o.ts.increment),
    }
}

/// One connection's messages: (purpose, from, to, requests, replies).
type Conn = (
    &'static str,
    usize,
    usize,
    Vec<RawDocumentBuf>,
    Vec<RawDocumentBuf>,
);

fn decode(records: &[TapRecord]) -> Vec<Conn> {
    type Stream = (&'static str, usize, usize, Vec<u8>);
    let mut streams: BTreeMap<(u64, bool), Stream> = BTreeMap::new();
    for r in records {
        streams
            .entry((r.conn, r.request))
            .or_insert((r.purpose, r.from, r.to, Vec::new()))
            .3
            .extend_from_slice(&r.bytes);
    }
    let mut conns: BTreeMap<u64, Conn> = BTreeMap::new();
    for ((conn, request), (purpose, from, to, bytes)) in streams {
        let mut dec = Decoder::new(Limits::default());
        dec.feed(&bytes);
        let mut docs = Vec::new();
        while let Some(m) = dec.next().expect("replication traffic decodes") {
            let Body::Msg(m) = m.body else {
                panic!("member traffic is OP_MSG");
            };
            docs.push(m.body.raw().to_owned());
        }
        let c = conns
            .entry(conn)
            .or_insert((purpose, from, to, Vec::new(), Vec::new()));
        if request {
            c.3 = docs;
        } else {
            c.4 = docs;
        }
    }
    conns.into_values().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_traffic_decodes_into_the_recorded_oplog_and_commit_points() {
    let set = MongoReplicaSet::start(ReplSetConfig {
        base_addr: Ipv4Addr::new(127, 0, 54, 1),
        port: 0,
        max_await: Duration::from_millis(200),
        heartbeat_interval: Duration::from_millis(200),
        tap_replication: true,
        ..ReplSetConfig::default()
    })
    .await
    .expect("start");
    let mut c = Client::connect(set.addresses()[0]).await;
    for i in 0..5 {
        let (_, d) = c
            .command(
                doc! { "insert": "c", "documents": [{ "_id": i, "a": i }], "writeConcern": { "w": "majority" }, "$db": "t" },
                0,
                None,
            )
            .await;
        assert!(!d.contains_key("writeConcernError"), "{d}");
    }
    c.command(
        doc! { "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "$set": { "a": 10 } } }], "writeConcern": { "w": 3 }, "$db": "t" },
        0,
        None,
    )
    .await;
    c.command(
        doc! { "delete": "c", "deletes": [{ "q": { "_id": 2 }, "limit": 1 }], "writeConcern": { "w": 3 }, "$db": "t" },
        0,
        None,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(1..3).all(|i| {
        set.commit_point(i) == set.last_applied(0) && set.commit_point(0) == set.last_applied(0)
    }) {
        assert!(
            Instant::now() < deadline,
            "secondaries never learned the commit point"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // let at least one heartbeat round happen
    tokio::time::sleep(Duration::from_millis(500)).await;
    let records = set.shared().tap.lock().expect("tap").clone();
    let history: BTreeSet<OpTime> = set
        .commit_point_history()
        .iter()
        .map(|c| c.commit_point)
        .collect();
    let conns = decode(&records);

    for member in 1..3 {
        let mut fetched: Vec<Document> = Vec::new();
        let mut commits: Vec<OpTime> = Vec::new();
        let mut reported: Vec<OpTime> = Vec::new();
        for (purpose, from, to, requests, replies) in &conns {
            if *from != member {
                continue;
            }
            if *purpose == "fetcher" || *purpose == "reporter" {
                assert_eq!(*to, 0, "secondaries sync from the primary");
            }
            for r in replies {
                if let Ok(rd) = r.get_document("$replData") {
                    let rd = ReplData::parse(rd).expect("$replData decodes");
                    if let Some(c) = rd.last_op_committed.map(optime) {
                        commits.push(c);
                    }
                }
            }
            match *purpose {
                "fetcher" => {
                    for r in replies.iter().filter(|r| r.get_document("cursor").is_ok()) {
                        let cursor = CursorReply::parse(r.get_document("cursor").expect("cursor"))
                            .expect("cursor decodes");
                        assert!(cursor.is_oplog());
                        for e in cursor.oplog_entries().expect("entries decode") {
                            let d = Document::try_from(e.raw).expect("entry");
                            if !fetched.contains(&d) {
                                fetched.push(d);
                            }
                        }
                    }
                }
                "reporter" => {
                    for r in requests
                        .iter()
                        .filter(|r| r.get("replSetUpdatePosition").ok().flatten().is_some())
                    {
                        let up = UpdatePosition::parse(r).expect("update position decodes");
                        reported.extend(
                            up.optimes
                                .iter()
                                .filter_map(|p| p.durable_op_time.map(optime)),
                        );
                    }
                }
                "heartbeat" => {
                    for r in requests
                        .iter()
                        .filter(|r| r.get("replSetHeartbeat").ok().flatten().is_some())
                    {
                        let hb = HeartbeatRequest::parse(r).expect("heartbeat decodes");
                        assert_eq!(hb.from_id, Some(member as i64));
                    }
                    for r in replies {
                        let hb = HeartbeatReply::parse(r).expect("heartbeat reply decodes");
                        let primary = if *to == 0 { 1 } else { 2 };
                        if hb.set.is_some() {
                            assert_eq!(hb.state, Some(primary), "member {to}'s state");
                        }
                    }
                }
                _ => {}
            }
        }
        assert_eq!(
            fetched,
            set.oplog(member),
            "member {member}: fetched = recorded oplog"
        );
        assert_eq!(fetched, set.oplog(0));
        assert_eq!(reported.last().copied(), set.last_applied(member));
        assert!(reported.windows(2).all(|w| w[0] <= w[1]));
        let nonzero: Vec<OpTime> = commits.into_iter().filter(|c| c.t > 0).collect();
        assert!(
            nonzero.iter().all(|c| history.contains(c)),
            "every commit point on the wire was the primary's"
        );
        assert_eq!(nonzero.iter().max().copied(), set.commit_point(member));
    }
    let heartbeats = conns.iter().filter(|c| c.0 == "heartbeat").count();
    assert!(
        heartbeats >= 6,
        "every ordered pair has a heartbeat connection"
    );
    set.stop();
}
