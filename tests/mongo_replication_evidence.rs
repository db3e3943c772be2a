//! `replication` records of the MongoDB flow decoder (src/decode/mongo/replication.rs),
//! on messages made with tidemark-mongo's encoder: hello topology and
//! `lastWrite.majorityOpTime` (a router's `isdbgrid` hello as `Router`), `replSetUpdatePosition` durable optimes, oplog entries
//! of a secondary's `find`/`getMore` (exhaust replies included; `fromMigrate` ones left out) with `$replData` /
//! `$oplogQueryData` commit points; no SASL payload or `lsid.uid` anywhere in the
//! records; and `inspect` leaving them out of its output while `inspect_all` keeps them.

mod common;
mod mongo_flow_support;
mod require;

use common::{ethernet, ip_packet, Conv};
use mongo_flow_support::{exhaust_reply, msg, Flow};
use tidemark::capture::pcap_writer::PcapWriter;
use tidemark::capture::{LinkType, Timestamp};
use tidemark::decode::mongo::tidemark_mongo::bson::oid::ObjectId;
use tidemark::decode::mongo::tidemark_mongo::bson::{
    self, rawdoc, RawDocumentBuf, Timestamp as BsonTs,
};
use tidemark::decode::mongo::tidemark_mongo::{
    encode_message, Body, Doc, Message, MsgFlags, OpMsg,
};
use tidemark::decode::records::{Record, ReplicationEvent};
use tidemark::decode::registry::default_registry;
use tidemark::inspect::{inspect, inspect_all, InspectOptions};
use tidemark::store::envelope::{MongoOp, MongoOpKind, OpTime};

const UUID: [u8; 16] = [9; 16];
const UID: [u8; 32] = [0xCD; 32];

fn ts(time: u32, increment: u32) -> BsonTs {
    BsonTs { time, increment }
}

fn optime(time: u32, increment: u32, t: i64) -> OpTime {
    OpTime {
        ts: (u64::from(time) << 32) | u64::from(increment),
        t,
    }
}

fn date(ms: i64) -> bson::DateTime {
    bson::DateTime::from_millis(ms)
}

fn election_id(term: i64) -> ObjectId {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
    b[4..].copy_from_slice(&term.to_be_bytes());
    ObjectId::from_bytes(b)
}

fn lsid() -> RawDocumentBuf {
    rawdoc! {
        "id": bson::Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: UUID.to_vec() },
        "uid": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: UID.to_vec() },
    }
}

fn commit(time: u32, inc: u32, t: i64, source: &'static str) -> ReplicationEvent {
    ReplicationEvent::CommitPoint {
        optime: optime(time, inc, t),
        source,
    }
}

#[test]
fn hello_replies_give_topology_and_the_majority_optime() {
    let mut f = Flow::new();
    f.send(&msg(1, 0, rawdoc! {"hello": 1, "$db": "admin"}, vec![]));
    f.answer(&msg(
        100,
        1,
        rawdoc! {
            "isWritablePrimary": true, "setName": "rs0", "setVersion": 1,
            "hosts": ["a:27017", "b:27017", "c:27017"], "primary": "a:27017", "me": "a:27017",
            "electionId": election_id(3),
            "lastWrite": {
                "opTime": {"ts": ts(400, 2), "t": 3i64}, "lastWriteDate": date(400_000),
                "majorityOpTime": {"ts": ts(400, 1), "t": 3i64}, "majorityWriteDate": date(400_000),
            },
            "maxWireVersion": 17, "ok": 1.0,
        },
        vec![],
    ));
    // a secondary: no electionId, the term is lastWrite.opTime's
    f.send(&msg(2, 0, rawdoc! {"isMaster": 1, "$db": "admin"}, vec![]));
    f.answer(&msg(
        101,
        2,
        rawdoc! {
            "ismaster": false, "secondary": true, "setName": "rs0",
            "hosts": ["a:27017", "b:27017"], "primary": "a:27017",
            "lastWrite": {"opTime": {"ts": ts(401, 0), "t": 5i64}, "majorityOpTime": {"ts": ts(400, 9), "t": 5i64}},
            "ok": 1.0,
        },
        vec![],
    ));
    // a standalone (no setName) says it is one; a non-hello reply is not read
    f.send(&msg(3, 0, rawdoc! {"hello": 1, "$db": "admin"}, vec![]));
    f.answer(&msg(
        102,
        3,
        rawdoc! {"isWritablePrimary": true, "ok": 1.0},
        vec![],
    ));
    f.send(&msg(4, 0, rawdoc! {"ping": 1, "$db": "admin"}, vec![]));
    f.answer(&msg(
        103,
        4,
        rawdoc! {"setName": "x", "hosts": ["q"], "lastWrite": {"majorityOpTime": {"ts": ts(9, 9), "t": 9i64}}, "ok": 1.0},
        vec![],
    ));
    // voting members are hosts + passives + arbiters (an arbiter answering is in
    // `arbiters` too); a router (msg "isdbgrid") and an uninitiated member
    // (`isreplicaset: true`) are no standalone
    f.send(&msg(5, 0, rawdoc! {"hello": 1, "$db": "admin"}, vec![]));
    f.answer(&msg(
        104,
        5,
        rawdoc! {"isWritablePrimary": false, "arbiterOnly": true, "setName": "rs0", "hosts": ["a:27017", "b:27017"], "passives": ["c:27017"], "arbiters": ["d:27017"], "maxWireVersion": 21, "ok": 1.0},
        vec![],
    ));
    f.send(&msg(6, 0, rawdoc! {"hello": 1, "$db": "admin"}, vec![]));
    f.answer(&msg(
        105,
        6,
        rawdoc! {"isWritablePrimary": true, "msg": "isdbgrid", "maxWireVersion": 21, "ok": 1.0},
        vec![],
    ));
    f.send(&msg(7, 0, rawdoc! {"hello": 1, "$db": "admin"}, vec![]));
    f.answer(&msg(
        106,
        7,
        rawdoc! {"isWritablePrimary": false, "secondary": false, "isreplicaset": true, "ok": 1.0},
        vec![],
    ));
    let got: Vec<ReplicationEvent> = f.replication().into_iter().cloned().collect();
    assert_eq!(
        got,
        vec![
            ReplicationEvent::Topology {
                set_name: Some("rs0".into()),
                hosts: vec!["a:27017".into(), "b:27017".into(), "c:27017".into()],
                members: 3,
                primary: Some("a:27017".into()),
                term: Some(3),
                arbiters: 0,
                max_wire_version: Some(17),
            },
            commit(400, 1, 3, "majorityOpTime"),
            ReplicationEvent::Topology {
                set_name: Some("rs0".into()),
                hosts: vec!["a:27017".into(), "b:27017".into()],
                members: 2,
                primary: Some("a:27017".into()),
                term: Some(5),
                arbiters: 0,
                max_wire_version: None,
            },
            commit(400, 9, 5, "majorityOpTime"),
            ReplicationEvent::Standalone {
                max_wire_version: None
            },
            ReplicationEvent::Topology {
                set_name: Some("rs0".into()),
                hosts: vec![
                    "a:27017".into(),
                    "b:27017".into(),
                    "c:27017".into(),
                    "d:27017".into()
                ],
                members: 4,
                primary: None,
                term: None,
                arbiters: 1,
                max_wire_version: Some(21),
            },
            // a sharded cluster's router (its clients' writes cross the wire again
            // on its own connections to the shards)
            ReplicationEvent::Router,
        ]
    );
    // records carry the flow and the capture time
    let Some(Record::Replication(r)) = f
        .records
        .iter()
        .find(|r| matches!(r, Record::Replication(_)))
    else {
        panic!("no replication record");
    };
    assert_eq!(r.flow, 3);
    assert_eq!(
        tidemark::decode::time::rfc3339(r.ts),
        "1970-01-01T00:00:02.000000Z"
    );
}

#[test]
fn update_position_reports_each_members_durable_optime() {
    let mut f = Flow::new();
    let member = |id: i64, durable: u32, applied: u32| {
        rawdoc! {
            "durableOpTime": {"ts": ts(durable, 1), "t": 1i64}, "durableWallTime": date(1),
            "appliedOpTime": {"ts": ts(applied, 1), "t": 1i64}, "appliedWallTime": date(1),
            "memberId": id, "cfgver": 1,
        }
    };
    f.send(&msg(
        5,
        0,
        rawdoc! {
            "replSetUpdatePosition": 1,
            "optimes": [member(0, 50, 51), member(1, 48, 52), member(2, 40, 40)],
            "$replData": 1, "$db": "admin",
        },
        vec![],
    ));
    // the null optime is no commit point
    f.answer(&msg(
        104,
        5,
        rawdoc! {"ok": 1.0, "$replData": {"term": 1i64, "lastOpCommitted": {"ts": ts(0, 0), "t": -1i64}}},
        vec![],
    ));
    let got: Vec<ReplicationEvent> = f.replication().into_iter().cloned().collect();
    assert_eq!(
        got,
        vec![ReplicationEvent::MemberPositions {
            durable: vec![
                (0, optime(50, 1, 1)),
                (1, optime(48, 1, 1)),
                (2, optime(40, 1, 1))
            ],
        }]
    );
    assert!(f.writes().is_empty());
}

/// Oplog entries as a 6.0 primary writes them.
fn entries() -> Vec<RawDocumentBuf> {
    vec![
        rawdoc! {"op": "c", "ns": "d.$cmd", "o": {"create": "c"}, "ts": ts(500, 1), "t": 1i64, "v": 2i64, "wall": date(1_000)},
        rawdoc! {
            "lsid": lsid(), "txnNumber": 4i64, "op": "i", "ns": "d.c", "o": {"_id": 1, "a": 1},
            "o2": {"_id": 1}, "stmtId": 0, "ts": ts(500, 2), "t": 1i64, "v": 2i64, "wall": date(1_001),
        },
        rawdoc! {"op": "u", "ns": "d.c", "o": {"$v": 2, "diff": {"u": {"a": 2}}}, "o2": {"_id": 1}, "ts": ts(500, 3), "t": 1i64, "wall": date(1_002)},
        rawdoc! {"op": "d", "ns": "d.c", "o": {"_id": 1}, "ts": ts(500, 4), "t": 1i64, "wall": date(1_003), "stmtId": [5, 6], "txnNumber": 9i64, "lsid": lsid()},
        rawdoc! {"op": "n", "ns": "", "o": {"msg": "periodic noop"}, "ts": ts(500, 5), "t": 2i64, "wall": date(1_004)},
        rawdoc! {"op": "i", "ns": "d.c", "o": {"_id": 2}, "ts": ts(500, 6), "t": 2i64},
        rawdoc! {"op": "i", "ns": "d.c", "o": {"_id": 3}, "ts": ts(500, 7), "t": 2i64},
    ]
}

/// The event an entry must become, built from the test's own knowledge of it.
fn entry_event(e: &RawDocumentBuf) -> ReplicationEvent {
    let time = e.get_timestamp("ts").unwrap();
    let at = optime(time.time, time.increment, e.get_i64("t").unwrap());
    let kind = match e.get_str("op").unwrap() {
        "i" => MongoOpKind::Insert,
        "u" => MongoOpKind::Update,
        "d" => MongoOpKind::Delete,
        "c" => MongoOpKind::Command,
        _ => MongoOpKind::Noop,
    };
    let session = e.get_document("lsid").is_ok();
    let stmt = match e.get("stmtId").unwrap() {
        Some(bson::RawBsonRef::Int32(i)) => Some(i),
        Some(bson::RawBsonRef::Array(a)) => a.get_i32(0).ok(),
        _ => None,
    };
    ReplicationEvent::OplogEntry {
        optime: at,
        wall: e.get_datetime("wall").ok().map(|d| d.timestamp_millis()),
        op: MongoOp {
            op: kind,
            ns: e.get_str("ns").unwrap().to_owned(),
            o: e.get_document("o").unwrap().as_bytes().to_vec().into(),
            o2: e
                .get_document("o2")
                .ok()
                .map(|d| d.as_bytes().to_vec().into()),
            optime: Some(at),
            lsid: session.then_some(UUID),
            txn_number: e.get_i64("txnNumber").ok(),
            stmt_id: stmt,
        },
    }
}

/// `{id, ns: "local.oplog.rs", firstBatch|nextBatch}`.
fn cursor_doc(cursor: i64, first: bool, batch: &[RawDocumentBuf]) -> RawDocumentBuf {
    let arr: bson::RawArrayBuf = batch.iter().map(|d| d.as_ref()).collect();
    let key = if first { "firstBatch" } else { "nextBatch" };
    let mut c = rawdoc! {"id": cursor, "ns": "local.oplog.rs"};
    c.append(<&bson::raw::CStr>::try_from(key).unwrap(), arr);
    c
}

#[test]
fn oplog_fetching_yields_every_entry_and_the_commit_points() {
    let mut f = Flow::new();
    let e = entries();
    f.send(&msg(
        20,
        0,
        rawdoc! {
            "find": "oplog.rs", "filter": {"ts": {"$gte": ts(0, 0)}}, "tailable": true,
            "awaitData": true, "term": 1i64, "readConcern": {"afterClusterTime": ts(0, 1)},
            "$replData": 1, "$oplogQueryData": 1, "$db": "local",
        },
        vec![],
    ));
    let repl = |c: u32| rawdoc! {"term": 1i64, "lastOpCommitted": {"ts": ts(500, c), "t": 1i64}, "lastCommittedWall": date(1), "configVersion": 1, "replicaSetId": ObjectId::from_bytes([1; 12]), "primaryIndex": 0, "syncSourceIndex": -1};
    let query = |c: u32| rawdoc! {"lastOpCommitted": {"ts": ts(500, c), "t": 1i64}, "lastCommittedWall": date(1), "lastOpApplied": {"ts": ts(500, 3), "t": 1i64}, "rbid": 1, "primaryIndex": 0, "syncSourceIndex": -1};
    f.answer(&msg(
        200,
        20,
        rawdoc! {"cursor": cursor_doc(77, true, &e[..3]), "$replData": repl(1), "$oplogQueryData": query(1), "ok": 1.0},
        vec![],
    ));
    // the same commit point in both metadata documents is said once
    let mut want: Vec<ReplicationEvent> = e[..3].iter().map(entry_event).collect();
    want.push(commit(500, 1, 1, "lastOpCommitted"));
    f.send(&msg(
        21,
        0,
        rawdoc! {"getMore": 77i64, "collection": "oplog.rs", "batchSize": 13981010, "maxTimeMS": 5000i64, "term": 1i64, "lastKnownCommittedOpTime": {"ts": ts(500, 1), "t": 1i64}, "$db": "local"},
        vec![],
    ));
    f.answer(&msg(
        201,
        21,
        rawdoc! {"cursor": cursor_doc(77, false, &e[3..5]), "$replData": repl(2), "$oplogQueryData": query(3), "ok": 1.0},
        vec![],
    ));
    want.extend(e[3..5].iter().map(entry_event));
    want.push(commit(500, 2, 1, "lastOpCommitted"));
    want.push(commit(500, 3, 1, "lastOpCommitted"));
    // exhaust (4.4+ fetchers): one getMore, replies chained by moreToCome
    let mut gm = OpMsg::new(Doc::from(
        rawdoc! {"getMore": 77i64, "collection": "oplog.rs", "$db": "local"},
    ));
    gm.flags = MsgFlags(MsgFlags::EXHAUST_ALLOWED);
    f.send(&Message::new(22, 0, Body::Msg(gm)));
    f.answer(&exhaust_reply(
        202,
        22,
        rawdoc! {"cursor": cursor_doc(77, false, &e[5..6]), "ok": 1.0},
    ));
    // a chunk migration's copy and a range deletion (fromMigrate) are no writes:
    // no event for them
    let migrated = [
        rawdoc! {"op": "i", "ns": "d.c", "o": {"_id": 8}, "fromMigrate": true, "ts": ts(500, 8), "t": 2i64},
        rawdoc! {"op": "d", "ns": "d.c", "o": {"_id": 9}, "fromMigrate": true, "ts": ts(500, 9), "t": 2i64},
    ];
    let batch = [e[6].clone(), migrated[0].clone(), migrated[1].clone()];
    f.answer(&msg(
        203,
        202,
        rawdoc! {"cursor": cursor_doc(77, false, &batch), "$replData": repl(7), "ok": 1.0},
        vec![],
    ));
    want.extend(e[5..7].iter().map(entry_event));
    want.push(commit(500, 7, 1, "lastOpCommitted"));
    // a user collection's documents are not oplog entries, even when they look like them
    f.send(&msg(23, 0, rawdoc! {"find": "c", "$db": "d"}, vec![]));
    let fake = rawdoc! {"id": 0i64, "ns": "d.c", "firstBatch": [e[1].clone()]};
    f.answer(&msg(204, 23, rawdoc! {"cursor": fake, "ok": 1.0}, vec![]));
    let got: Vec<ReplicationEvent> = f.replication().into_iter().cloned().collect();
    assert_eq!(got, want);
    assert!(f.writes().is_empty(), "fetching the oplog writes nothing");
}

#[test]
fn auth_payloads_and_lsid_uid_never_reach_records() {
    let mut f = Flow::new();
    let secret = |s: &str| bson::Binary {
        subtype: bson::spec::BinarySubtype::Generic,
        bytes: s.as_bytes().to_vec(),
    };
    f.send(&msg(
        30,
        0,
        rawdoc! {"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": secret("n,,n=alice,r=CLIENTSECRETNONCE"), "$db": "admin"},
        vec![],
    ));
    f.answer(&msg(
        300,
        30,
        rawdoc! {"conversationId": 1, "done": false, "payload": secret("r=CLIENTSECRETNONCESERVER,s=SALTSECRET,i=4096"), "ok": 1.0},
        vec![],
    ));
    f.send(&msg(
        31,
        0,
        rawdoc! {"saslContinue": 1, "conversationId": 1, "payload": secret("c=biws,r=x,p=PROOFSECRET"), "$db": "admin"},
        vec![],
    ));
    f.answer(&msg(
        301,
        31,
        rawdoc! {"conversationId": 1, "done": true, "payload": secret("v=SIGNATURESECRET"), "ok": 1.0},
        vec![],
    ));
    f.send(&msg(
        32,
        0,
        rawdoc! {"insert": "c", "documents": [{"_id": 1}], "lsid": lsid(), "txnNumber": 1i64, "$db": "d"},
        vec![],
    ));
    f.answer(&msg(302, 32, rawdoc! {"n": 1, "ok": 1.0}, vec![]));
    f.close();
    let w = f.writes();
    assert_eq!(w.len(), 1, "only the insert is a write");
    let op = w[0].extras.mongo_op.as_ref().unwrap();
    assert_eq!(op.lsid, Some(UUID), "lsid.id only");
    assert!(f.replication().is_empty());
    let needle_in = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|x| x == needle);
    for b in [&op.o[..], op.o2.as_deref().unwrap_or_default()] {
        assert!(!needle_in(b, &UID) && !needle_in(b, b"SECRET"));
    }
    for r in &f.records {
        let text = format!("{r:?}") + &serde_json::to_string(r).unwrap();
        assert!(!text.contains("SECRET"), "{text}");
        assert!(
            !text.contains("205, 205, 205, 205"),
            "lsid.uid bytes: {text}"
        );
    }
}

#[test]
fn inspect_leaves_replication_records_out_and_inspect_all_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hello.pcap");
    let mut c = Conv::new("10.0.0.1:40000", "10.0.0.2:27017", 1, 2);
    let mut segs = c.handshake();
    let hello = msg(1, 0, rawdoc! {"hello": 1, "$db": "admin"}, vec![]);
    let reply = msg(
        9,
        1,
        rawdoc! {
            "isWritablePrimary": true, "setName": "rs0", "hosts": ["a:1", "b:1", "c:1"], "primary": "a:1",
            "electionId": election_id(4), "lastWrite": {"opTime": {"ts": ts(9, 2), "t": 4i64}, "majorityOpTime": {"ts": ts(9, 1), "t": 4i64}},
            "ok": 1.0,
        },
        vec![],
    );
    segs.push(c.data(true, &encode_message(&hello).unwrap()));
    segs.push(c.data(false, &encode_message(&reply).unwrap()));
    segs.push(c.fin(true));
    segs.push(c.fin(false));
    let f = std::fs::File::create(&path).unwrap();
    let mut w = PcapWriter::new(std::io::BufWriter::new(f), LinkType::Ethernet, 65535).unwrap();
    for (i, s) in segs.iter().enumerate() {
        w.write(Timestamp(i as u64 * 1_000), &ethernet(&ip_packet(s), &[]))
            .unwrap();
    }
    w.finish().unwrap();
    let options = InspectOptions {
        files: vec![path],
        json: true,
        ..InspectOptions::default()
    };
    let mut printed = Vec::new();
    inspect(&options, default_registry(), |r| {
        printed.push(serde_json::to_value(r).unwrap());
        Ok(())
    })
    .unwrap();
    let mut all = Vec::new();
    inspect_all(&options, default_registry(), |r| {
        all.push(r.clone());
        Ok(())
    })
    .unwrap();
    assert!(printed.iter().all(|l| l["type"] != "replication"));
    let types: Vec<&str> = printed
        .iter()
        .map(|l| l["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["message", "message", "flow", "summary"]);
    let repl: Vec<&ReplicationEvent> = all
        .iter()
        .filter_map(|r| match r {
            Record::Replication(x) => Some(&x.event),
            _ => None,
        })
        .collect();
    assert_eq!(
        repl,
        [
            &ReplicationEvent::Topology {
                set_name: Some("rs0".into()),
                hosts: vec!["a:1".into(), "b:1".into(), "c:1".into()],
                members: 3,
                primary: Some("a:1".into()),
                term: Some(4),
                arbiters: 0,
                max_wire_version: None,
            },
            &commit(9, 1, 4, "majorityOpTime"),
        ]
    );
    assert_eq!(all.len(), printed.len() + 2);
}

/// beats-packetbeat/mongodb_op_msg_opcode.pcap: a 4.0 member (port 9991) without a
/// valid config answering `isMaster` ×23 with `setName: "beats"` and three `hosts`,
/// no `primary`, no `electionId`, no `lastWrite`, and `replSetHeartbeat` ×78 with
/// `$replData.lastOpCommitted` = the null optime `{ts: 0, t: -1}` (as tshark's
/// MongoDB dissector shows them). Null optimes are no commit point.
#[test]
fn shared_capture_cluster_internal_hello_and_heartbeats() {
    let rel = "beats-packetbeat/mongodb_op_msg_opcode.pcap";
    let Some(path) = require::shared_capture(rel) else {
        return;
    };
    let options = InspectOptions {
        files: vec![path],
        mongo_ports: vec![9991],
        json: true,
        ..InspectOptions::default()
    };
    let mut all = Vec::new();
    inspect_all(&options, default_registry(), |r| {
        all.push(r.clone());
        Ok(())
    })
    .unwrap();
    let hello_replies = all
        .iter()
        .filter(|r| {
            matches!(r, Record::Message(m) if m.dir == "s2c" && m.command.as_deref() == Some("ismaster"))
        })
        .count();
    assert_eq!(hello_replies, 23);
    let repl: Vec<&ReplicationEvent> = all
        .iter()
        .filter_map(|r| match r {
            Record::Replication(x) => Some(&x.event),
            _ => None,
        })
        .collect();
    // The capture's three members, as its hello replies list them.
    let hosts = match repl.first() {
        Some(ReplicationEvent::Topology { hosts, .. }) => hosts.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(hosts.len(), 3, "{hosts:?}");
    let beats = ReplicationEvent::Topology {
        set_name: Some("beats".into()),
        hosts,
        members: 3,
        primary: None,
        term: None,
        arbiters: 0,
        max_wire_version: Some(7),
    };
    assert_eq!(repl.len(), 23, "{repl:?}");
    assert!(repl.iter().all(|e| **e == beats), "{repl:?}");
    let mut printed = 0;
    inspect(&options, default_registry(), |r| {
        assert!(!matches!(r, Record::Replication(_)));
        printed += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(printed + 23, all.len());
}
