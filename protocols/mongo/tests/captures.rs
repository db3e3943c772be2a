//! Real third-party captures through the decoder and models.
//! Needs tshark and ../shared/captures (through `require`).

mod pcap;
#[path = "../../../tests/require/mod.rs"]
mod require;

use pcap::{flows, shared_capture};
use tidemark_mongo::model::{CommandKind, Reply, StatementOp, WriteKind, W};
use tidemark_mongo::repl::{HeartbeatReply, HeartbeatRequest, HelloReply, OpTime};
use tidemark_mongo::{ConnEvent, Connection, Direction, ErrorKind, Limits, Message, Pairing};

struct Run {
    messages: Vec<(Direction, Message, Pairing)>,
    errors: Vec<ErrorKind>,
}

fn run(rel: &str) -> Option<Run> {
    let path = shared_capture(rel)?;
    let mut messages = Vec::new();
    let mut errors = Vec::new();
    for flow in flows(&path) {
        let mut conn = Connection::new(Limits::default());
        for (d, bytes) in flow.chunks {
            conn.feed(d, &bytes);
            while let Some(ev) = conn.poll() {
                match ev {
                    ConnEvent::Message {
                        dir,
                        message,
                        pairing,
                    } => messages.push((dir, message, pairing)),
                    ConnEvent::Error { error, .. } => errors.push(error.kind),
                }
            }
        }
    }
    Some(Run { messages, errors })
}

fn paired_reply(p: &Pairing) -> Option<&tidemark_mongo::connection::Paired> {
    match p {
        Pairing::Reply(b) => Some(b),
        _ => None,
    }
}

#[test]
fn inserts_26_write_commands() {
    let Some(r) = run("beats-packetbeat/mongodb_inserts.pcap") else {
        return;
    };
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let inserts: Vec<_> = r
        .messages
        .iter()
        .filter_map(|(_, m, _)| m.write().unwrap())
        .filter(|w| w.kind == WriteKind::Insert)
        .map(|w| (w.statements.len(), w.statements[0].ns.to_string()))
        .collect();
    assert_eq!(inserts.len(), 2, "{inserts:?}");
    assert!(inserts
        .iter()
        .all(|(n, ns)| *n == 1 && ns == "testDB.testCollection"));
    // each insert is answered ok:1 n:1
    let acks = r
        .messages
        .iter()
        .filter_map(|(_, m, p)| {
            let pr = paired_reply(p)?;
            (pr.request.command.as_deref() == Some("insert")).then(|| m.reply().unwrap().unwrap().n)
        })
        .collect::<Vec<_>>();
    assert_eq!(acks, vec![Some(1), Some(1)]);
}

#[test]
fn duplicate_key_write_error() {
    let Some(r) = run("beats-packetbeat/mongodb_insert_duplicate_key.pcap") else {
        return;
    };
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let replies: Vec<Reply> = r
        .messages
        .iter()
        .filter(|(d, _, _)| *d == Direction::ServerToClient)
        .filter_map(|(_, m, _)| m.reply())
        .map(|x| x.unwrap())
        .filter(|x| !x.write_errors.is_empty())
        .collect();
    // one reply on the client->mongos flow, one on mongos->shard
    assert_eq!(replies.len(), 2);
    for rep in &replies {
        assert_eq!(rep.n, Some(0));
        assert_eq!(rep.write_errors[0].code, 11000);
        assert_eq!(rep.write_errors[0].index, 0);
        assert!(rep.write_errors[0].errmsg.unwrap().contains("E11000"));
        assert_eq!(rep.ok, Some(true));
    }
}

#[test]
fn op_command_inserts_with_getlasterror() {
    let Some(r) = run("mongo-tools/op_command_2inserts.pcap") else {
        return;
    };
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let mut seq = Vec::new();
    for (_, m, _) in &r.messages {
        if let Some(c) = m.command() {
            if let Some(w) = c.write().unwrap() {
                assert_eq!(w.kind, WriteKind::Insert);
                assert_eq!(w.statements.len(), 1);
                assert!(matches!(w.statements[0].op, StatementOp::Insert { .. }));
                seq.push("insert".to_string());
            } else if let Some(gle) = c.get_last_error().unwrap() {
                assert_eq!(gle.write_concern.w, Some(W::Nodes(1)));
                seq.push("getlasterror".to_string());
            }
        }
    }
    assert_eq!(seq, ["insert", "getlasterror", "insert", "getlasterror"]);
    // every OP_COMMAND got its OP_COMMANDREPLY
    let paired = r
        .messages
        .iter()
        .filter(|(_, _, p)| paired_reply(p).is_some())
        .count();
    assert_eq!(paired, 12);
    // getlasterror replies: n:1, err:null
    for (_, m, p) in &r.messages {
        if let Some(pr) = paired_reply(p) {
            if pr.request.command.as_deref() == Some("getlasterror") {
                let rep = m.reply().unwrap().unwrap();
                assert_eq!(rep.n, Some(1));
                assert_eq!(rep.err, None);
                assert_eq!(rep.ok, Some(true));
            }
        }
    }
}

#[test]
fn op_msg_heartbeats() {
    let Some(r) = run("beats-packetbeat/mongodb_op_msg_opcode.pcap") else {
        return;
    };
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.messages.len(), 202);
    let mut requests = 0;
    let mut replies = 0;
    for (_, m, p) in &r.messages {
        let Some(c) = m.command() else { continue };
        if c.name == "replSetHeartbeat" {
            assert_eq!(c.kind, CommandKind::Replication);
            let hb = HeartbeatRequest::parse(c.body).unwrap();
            assert!(!hb.set_name.is_empty());
            requests += 1;
        }
        if let Some(pr) = paired_reply(p) {
            if pr.request.command.as_deref() == Some("replSetHeartbeat") {
                let rep = HeartbeatReply::parse(m.reply_document().unwrap()).unwrap();
                // this cluster's members answer with InvalidReplicaSetConfig (93)
                let generic = m.reply().unwrap().unwrap();
                assert_eq!(rep.ok, Some(false));
                assert_eq!(generic.code, Some(93));
                assert_eq!(generic.code_name, Some("InvalidReplicaSetConfig"));
                let meta = generic.repl_data.expect("$replData on heartbeat replies");
                assert_eq!(meta.last_op_committed, Some(OpTime::new(0, 0, -1)));
                assert_eq!(meta.term, Some(0));
                replies += 1;
            }
            if matches!(pr.request.command.as_deref(), Some("ismaster" | "isMaster")) {
                HelloReply::parse(m.reply_document().unwrap()).unwrap();
            }
        }
    }
    assert_eq!(requests, 78);
    assert_eq!(replies, 78);
}

#[test]
fn invalid_opcode_is_an_error_value() {
    let Some(r) = run("beats-packetbeat/mongodb_invalid_opcode_2269.pcap") else {
        return;
    };
    let unknown = r
        .errors
        .iter()
        .filter(|e| matches!(e, ErrorKind::UnknownOpcode { opcode: 2269, .. }))
        .count();
    assert_eq!(unknown, 3, "{:?}", r.errors);
    assert_eq!(r.errors.len(), 3);
}

#[test]
fn every_mongo_capture_decodes() {
    let files = [
        "beats-packetbeat/mongodb_create_collection.pcap",
        "beats-packetbeat/mongodb_find.pcap",
        "beats-packetbeat/mongodb_use_db.pcap",
        "beats-packetbeat/mongo_one_row.pcap",
        "beats-packetbeat/mongodb_more_rows.pcap",
        "beats-packetbeat/mongodb_reply_request_reply.pcap",
        "deepflow/mongo-msg.pcap",
        "arkime/mongo.pcap",
    ];
    for f in files {
        let Some(r) = run(f) else { continue };
        assert!(r.errors.is_empty(), "{f}: {:?}", r.errors);
        assert!(!r.messages.is_empty(), "{f}");
        for (_, m, _) in &r.messages {
            if let Some(rep) = m.reply() {
                rep.unwrap_or_else(|e| panic!("{f}: {e}"));
            }
        }
    }
    // 101 documents in one OP_REPLY split over two segments
    if let Some(r) = run("beats-packetbeat/mongodb_more_rows.pcap") {
        let n = r
            .messages
            .iter()
            .find_map(|(_, m, _)| match &m.body {
                tidemark_mongo::Body::Reply(rep) => Some(rep.documents.len()),
                _ => None,
            })
            .unwrap();
        assert_eq!(n, 101);
    }
    // the orphan reply at the start of the capture
    if let Some(r) = run("beats-packetbeat/mongodb_reply_request_reply.pcap") {
        assert!(matches!(r.messages[0].2, Pairing::Orphan));
    }
    // DDL
    if let Some(r) = run("beats-packetbeat/mongodb_create_collection.pcap") {
        let ddl = r
            .messages
            .iter()
            .filter_map(|(_, m, _)| m.command())
            .filter_map(|c| c.ddl().unwrap())
            .count();
        assert_eq!(ddl, 1);
    }
    // handshakes in arkime are isMaster over OP_QUERY
    if let Some(r) = run("arkime/mongo.pcap") {
        assert!(r
            .messages
            .iter()
            .all(|(_, m, _)| m.classify() == Some(CommandKind::Handshake)));
    }
}
