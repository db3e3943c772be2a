//! Replication, topology and connection-pairing models.

mod support;

use bson::{rawdoc, RawBsonRef, Timestamp};
use support::op_msg;
use tidemark_mongo::model::*;
use tidemark_mongo::repl::*;
use tidemark_mongo::*;

#[test]
fn hello_and_topology() {
    let pid = bson::oid::ObjectId::new();
    let doc = rawdoc! {
        "topologyVersion": {"processId": pid, "counter": 6i64},
        "hosts": ["a:27017", "b:27017"], "arbiters": ["c:27017"],
        "setName": "rs0", "setVersion": 3, "isWritablePrimary": true, "secondary": false,
        "primary": "a:27017", "me": "a:27017", "electionId": pid,
        "lastWrite": {"opTime": {"ts": Timestamp { time: 5, increment: 1 }, "t": 1i64},
                      "lastWriteDate": bson::DateTime::from_millis(5000),
                      "majorityOpTime": {"ts": Timestamp { time: 4, increment: 1 }, "t": 1i64},
                      "majorityWriteDate": bson::DateTime::from_millis(4000)},
        "maxWireVersion": 21, "minWireVersion": 0, "compression": ["zstd", "snappy"], "ok": 1.0,
    };
    let h = HelloReply::parse(&doc).unwrap();
    assert_eq!(h.is_writable_primary, Some(true));
    assert_eq!(h.hosts, ["a:27017", "b:27017"]);
    assert_eq!(h.topology_version.unwrap().counter, 6);
    let lw = h.last_write.unwrap();
    assert!(lw.majority_op_time.unwrap() < lw.op_time.unwrap());
    assert_eq!(h.compression, ["zstd", "snappy"]);
    let d = rawdoc! {"ismaster": false, "secondary": true, "setName": "rs"};
    let legacy = HelloReply::parse(&d).unwrap();
    assert_eq!(legacy.is_writable_primary, Some(false));
}

#[test]
fn heartbeats_and_positions() {
    let req = rawdoc! {"replSetHeartbeat": "rs0", "configVersion": 2, "configTerm": 1i64, "hbv": 1, "from": "b:27017", "fromId": 1, "term": 4i64, "$db": "admin"};
    let m = op_msg(req, vec![]);
    let c = m.command().unwrap();
    assert_eq!(c.kind, CommandKind::Replication);
    let hb = HeartbeatRequest::parse(c.body).unwrap();
    assert_eq!(
        (hb.set_name, hb.from, hb.term),
        ("rs0", Some("b:27017"), Some(4))
    );
    let rep = rawdoc! {"ok": 1.0, "set": "rs0", "term": 4i64, "state": 1, "v": 2, "configTerm": 1i64,
    "electionTime": Timestamp { time: 1, increment: 1 },
    "opTime": {"ts": Timestamp { time: 9, increment: 1 }, "t": 4i64},
    "durableOpTime": {"ts": Timestamp { time: 8, increment: 1 }, "t": 4i64},
    "wallTime": bson::DateTime::from_millis(9), "durableWallTime": bson::DateTime::from_millis(8),
    "electable": true, "primaryId": 0,
    "$replData": {"term": 4i64, "lastOpCommitted": {"ts": Timestamp { time: 7, increment: 0 }, "t": 4i64},
                  "lastOpVisible": {"ts": Timestamp { time: 9, increment: 1 }, "t": 4i64},
                  "configVersion": 2, "replicaSetId": bson::oid::ObjectId::new(), "primaryIndex": 0, "syncSourceIndex": -1}};
    let r = HeartbeatReply::parse(&rep).unwrap();
    assert_eq!(r.state, Some(1));
    assert_eq!(r.durable_op_time, Some(OpTime::new(8, 1, 4)));
    let meta = Reply::parse(&rep).unwrap().repl_data.unwrap();
    assert_eq!(meta.last_op_committed, Some(OpTime::new(7, 0, 4)));
    assert_eq!(meta.sync_source_index, Some(-1));

    let up = rawdoc! {"replSetUpdatePosition": 1, "optimes": [
        {"durableOpTime": {"ts": Timestamp { time: 5, increment: 0 }, "t": 1i64}, "appliedOpTime": {"ts": Timestamp { time: 6, increment: 0 }, "t": 1i64}, "memberId": 0, "cfgver": 2},
        {"durableOpTime": {"ts": Timestamp { time: 3, increment: 0 }, "t": 1i64}, "appliedOpTime": {"ts": Timestamp { time: 3, increment: 0 }, "t": 1i64}, "memberId": 1, "cfgver": 2},
        {"durableOpTime": {"ts": Timestamp { time: 4, increment: 0 }, "t": 1i64}, "appliedOpTime": {"ts": Timestamp { time: 4, increment: 0 }, "t": 1i64}, "memberId": 2, "cfgver": 2},
    ]};
    let p = UpdatePosition::parse(&up).unwrap();
    assert_eq!(p.optimes.len(), 3);
    assert_eq!(p.optimes[0].applied_op_time, Some(OpTime::new(6, 0, 1)));
    assert_eq!(p.majority_durable(2), Some(OpTime::new(4, 0, 1)));
}

#[test]
fn oplog_fetching() {
    let find = op_msg(
        rawdoc! {"find": "oplog.rs", "filter": {"ts": {"$gte": Timestamp { time: 3, increment: 0 }}}, "tailable": true, "awaitData": true, "term": 2i64, "$db": "local"},
        vec![],
    );
    let c = find.command().unwrap();
    assert_eq!(c.kind, CommandKind::Replication);
    let f = c.oplog_find().unwrap().unwrap();
    assert_eq!(
        f.from_ts,
        Some(Timestamp {
            time: 3,
            increment: 0
        })
    );
    assert!(f.tailable && f.await_data);
    let gm = op_msg(
        rawdoc! {"getMore": 77i64, "collection": "oplog.rs", "maxTimeMS": 5000, "term": 2i64, "lastKnownCommittedOpTime": {"ts": Timestamp { time: 2, increment: 0 }, "t": 2i64}, "$db": "local"},
        vec![],
    );
    let c = gm.command().unwrap();
    assert_eq!(c.kind, CommandKind::Replication);
    let g = c.get_more().unwrap().unwrap();
    assert_eq!(g.cursor_id, 77);
    assert_eq!(g.last_known_committed_op_time, Some(OpTime::new(2, 0, 2)));
    let reply = rawdoc! {
        "cursor": {"nextBatch": [
            {"ts": Timestamp { time: 4, increment: 1 }, "t": 2i64, "op": "i", "ns": "d.c", "o": {"_id": 1}, "wall": bson::DateTime::from_millis(1)},
            {"ts": Timestamp { time: 4, increment: 2 }, "t": 2i64, "op": "n", "ns": "", "o": {"msg": "periodic noop"}},
        ], "id": 77i64, "ns": "local.oplog.rs"},
        "ok": 1.0,
        "$replData": {"term": 2i64, "lastOpCommitted": {"ts": Timestamp { time: 4, increment: 1 }, "t": 2i64}},
        "$oplogQueryData": {"lastOpCommitted": {"ts": Timestamp { time: 4, increment: 1 }, "t": 2i64}, "lastOpApplied": {"ts": Timestamp { time: 4, increment: 2 }, "t": 2i64}, "rbid": 1, "primaryIndex": 0, "syncSourceIndex": -1},
    };
    let r = Reply::parse(&reply).unwrap();
    let cur = r.cursor.as_ref().unwrap();
    assert!(cur.is_oplog() && !cur.first);
    let entries = cur.oplog_entries().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].document_id(), Some(RawBsonRef::Int32(1)));
    assert_eq!(entries[1].op, OpType::Noop);
    assert_eq!(
        r.oplog_query_data.unwrap().last_op_applied,
        Some(OpTime::new(4, 2, 2))
    );
}

#[test]
fn connection_pairing() {
    let mut conn = Connection::default();
    let req = |id: i32, flags: u32, body: bson::RawDocumentBuf| {
        let mut m = OpMsg::new(Doc::from(body));
        m.flags = MsgFlags(flags);
        encode_message(&Message::new(id, 0, Body::Msg(m))).unwrap()
    };
    let rep = |id: i32, to: i32, flags: u32| {
        let mut m = OpMsg::new(Doc::from(rawdoc! {"ok": 1}));
        m.flags = MsgFlags(flags);
        encode_message(&Message::new(id, to, Body::Msg(m))).unwrap()
    };
    let mut events = Vec::new();
    let mut feed = |conn: &mut Connection, d, b: Vec<u8>| {
        conn.feed(d, &b);
        while let Some(e) = conn.poll() {
            events.push(e);
        }
    };
    use Direction::*;
    feed(
        &mut conn,
        ClientToServer,
        req(1, 0, rawdoc! {"insert": "c", "$db": "d", "documents": [{}]}),
    );
    feed(
        &mut conn,
        ClientToServer,
        req(
            2,
            MsgFlags::MORE_TO_COME,
            rawdoc! {"insert": "c", "$db": "d", "writeConcern": {"w": 0}},
        ),
    );
    feed(&mut conn, ServerToClient, rep(100, 1, 0));
    feed(
        &mut conn,
        ClientToServer,
        req(
            3,
            MsgFlags::EXHAUST_ALLOWED,
            rawdoc! {"hello": 1, "$db": "admin"},
        ),
    );
    feed(
        &mut conn,
        ServerToClient,
        rep(101, 3, MsgFlags::MORE_TO_COME),
    );
    feed(
        &mut conn,
        ServerToClient,
        rep(102, 101, MsgFlags::MORE_TO_COME),
    );
    feed(&mut conn, ServerToClient, rep(103, 102, 0));
    feed(&mut conn, ServerToClient, rep(104, 999, 0));
    feed(
        &mut conn,
        ClientToServer,
        req(4, 0, rawdoc! {"find": "c", "$db": "d"}),
    );
    let pairings: Vec<String> = events
        .iter()
        .map(|e| match e {
            ConnEvent::Message { pairing, .. } => match pairing {
                Pairing::AwaitsReply => "awaits".into(),
                Pairing::NoReply => "noreply".into(),
                Pairing::Reply(p) => format!("reply:{}:{}", p.request.request_id, p.exhaust),
                Pairing::Orphan => "orphan".into(),
            },
            ConnEvent::Error { error, .. } => format!("error {error}"),
        })
        .collect();
    assert_eq!(
        pairings,
        [
            "awaits",
            "noreply",
            "reply:1:false",
            "awaits",
            "reply:3:true",
            "reply:3:true",
            "reply:3:false",
            "orphan",
            "awaits"
        ]
    );
    let left = conn.close();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].command.as_deref(), Some("find"));
}
