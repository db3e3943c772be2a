//! `tidemark inspect` on every third-party MongoDB capture in `../shared/captures`
//! (real servers, see its SOURCES.md): messages by opcode equal tshark's count, and the
//! writes each file is known for come out with the right documents and outcomes.
//!
//! Needs `../shared/captures` and tshark (through `require`: a skip locally, a
//! failure under CI).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use tidemark::inspect::InspectOptions;

mod inspect_support;
mod require;
use inspect_support::{inspect_records, json_options};
use require::shared_capture;

/// Server ports of the shared captures besides 27017 (tshark needs `-d` for each).
const PORTS: [u16; 5] = [27018, 20000, 9991, 3717, 30000];

const FILES: [&str; 13] = [
    "beats-packetbeat/mongodb_inserts.pcap",
    "beats-packetbeat/mongodb_insert_duplicate_key.pcap",
    "beats-packetbeat/mongodb_create_collection.pcap",
    "beats-packetbeat/mongodb_find.pcap",
    "beats-packetbeat/mongodb_use_db.pcap",
    "beats-packetbeat/mongo_one_row.pcap",
    "beats-packetbeat/mongodb_more_rows.pcap",
    "beats-packetbeat/mongodb_reply_request_reply.pcap",
    "beats-packetbeat/mongodb_invalid_opcode_2269.pcap",
    "beats-packetbeat/mongodb_op_msg_opcode.pcap",
    "mongo-tools/op_command_2inserts.pcap",
    "deepflow/mongo-msg.pcap",
    "arkime/mongo.pcap",
];

/// Every record of `tidemark inspect --json` on `file`, with the captures' ports.
fn run(file: &Path) -> Vec<Value> {
    inspect_records(&InspectOptions {
        mongo_ports: PORTS.to_vec(),
        ..json_options(file)
    })
}

fn of_type<'a>(recs: &'a [Value], t: &str) -> Vec<&'a Value> {
    recs.iter().filter(|r| r["type"] == t).collect()
}

/// Wire opcode numbers as tidemark counts them: a message's opcode, 2012 for one that
/// came in OP_COMPRESSED, and the opcode of every unknown-opcode error.
fn tidemark_opcodes(recs: &[Value]) -> BTreeMap<i64, usize> {
    let mut m = BTreeMap::new();
    for r in of_type(recs, "message") {
        let code = if r.get("compressor").is_some() {
            2012
        } else {
            match r["opcode"].as_str().unwrap() {
                "OP_REPLY" => 1,
                "OP_UPDATE" => 2001,
                "OP_INSERT" => 2002,
                "OP_QUERY" => 2004,
                "OP_GET_MORE" => 2005,
                "OP_DELETE" => 2006,
                "OP_KILL_CURSORS" => 2007,
                "OP_COMMAND" => 2010,
                "OP_COMMANDREPLY" => 2011,
                "OP_MSG" => 2013,
                other => panic!("opcode {other}"),
            }
        };
        *m.entry(code).or_insert(0) += 1;
    }
    for e in of_type(recs, "error") {
        let msg = e["message"].as_str().unwrap();
        if let Some(rest) = msg.strip_prefix("mongo: unknown opcode ") {
            let code: i64 = rest.split(' ').next().unwrap().parse().unwrap();
            *m.entry(code).or_insert(0) += 1;
        }
    }
    m
}

/// `mongo.opcode` per PDU as tshark dissects it: a frame with several PDUs prints
/// them comma-separated, OP_COMPRESSED counts once as 2012.
fn tshark_opcodes(file: &Path) -> BTreeMap<i64, usize> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(file)
        .args(["-d", "tcp.port==27017,mongo"]);
    for p in PORTS {
        cmd.args(["-d", &format!("tcp.port=={p},mongo")]);
    }
    let out = cmd
        .args(["-T", "fields", "-e", "mongo.opcode"])
        .output()
        .expect("tshark runs");
    assert!(out.status.success(), "tshark failed on {}", file.display());
    let mut m = BTreeMap::new();
    for v in String::from_utf8_lossy(&out.stdout)
        .lines()
        .flat_map(|l| l.split(','))
    {
        if let Ok(code) = v.trim().parse::<i64>() {
            *m.entry(code).or_insert(0) += 1;
        }
    }
    m
}

#[test]
fn messages_by_opcode_match_tshark() {
    if !require::tool("tshark") {
        return;
    }
    for f in FILES {
        let Some(path) = shared_capture(f) else {
            continue;
        };
        let recs = run(&path);
        let want = tshark_opcodes(&path);
        let got = tidemark_opcodes(&recs);
        assert_eq!(got, want, "{f}: tidemark vs tshark messages by opcode");
        eprintln!("{f}: {got:?} agrees with tshark");
    }
}

#[test]
fn every_capture_decodes_without_decode_errors() {
    for f in FILES {
        let Some(path) = shared_capture(f) else {
            continue;
        };
        let recs = run(&path);
        let errors = of_type(&recs, "error");
        if f.ends_with("invalid_opcode_2269.pcap") {
            continue;
        }
        assert!(errors.is_empty(), "{f}: {errors:?}");
        assert!(!of_type(&recs, "message").is_empty(), "{f}: no messages");
    }
}

#[test]
fn inserts_26_write_commands() {
    let Some(path) = shared_capture("beats-packetbeat/mongodb_inserts.pcap") else {
        return;
    };
    let recs = run(&path);
    let w = of_type(&recs, "write");
    assert_eq!(w.len(), 2);
    let docs: Vec<&Value> = w.iter().map(|w| &w["values"]).collect();
    assert_eq!(
        docs,
        [
            &json!({"_id": {"$oid": "554769b19370af252b761fe4"}, "testKey": "value1"}),
            &json!({"_id": {"$oid": "554769cc9370af252b761fe5"}, "testKey": "value2"}),
        ]
    );
    for w in w {
        assert_eq!(w["namespace"], "testDB.testCollection");
        assert_eq!(w["op"], "insert");
        assert_eq!(w["key"], json!({"_id": w["values"]["_id"]}));
        assert_eq!(w["outcome"], "pending", "2.6 default write concern is w:1");
    }
}

#[test]
fn duplicate_key_insert_is_rejected() {
    let Some(path) = shared_capture("beats-packetbeat/mongodb_insert_duplicate_key.pcap") else {
        return;
    };
    let recs = run(&path);
    let w = of_type(&recs, "write");
    // The client's insert to mongos (27018) and mongos' insert to the shard (27017).
    assert_eq!(w.len(), 2);
    for w in &w {
        assert_eq!(w["namespace"], "test.restaurants");
        assert_eq!(w["outcome"], "rejected");
        assert!(
            w["reason"]
                .as_str()
                .unwrap()
                .starts_with("write_error 11000: E11000 duplicate key"),
            "{w}"
        );
    }
    let replies: Vec<_> = of_type(&recs, "message")
        .into_iter()
        .filter(|m| m["command"] == "insert" && m["dir"] == "s2c")
        .collect();
    assert_eq!(replies.len(), 2);
    for r in replies {
        assert_eq!(r["detail"]["n"], 0);
        assert_eq!(
            r["detail"]["writeErrors"],
            json!([{"index": 0, "code": 11000}])
        );
    }
}

#[test]
fn op_command_inserts_take_the_getlasterror_w() {
    let Some(path) = shared_capture("mongo-tools/op_command_2inserts.pcap") else {
        return;
    };
    let recs = run(&path);
    let w = of_type(&recs, "write");
    assert_eq!(w.len(), 2);
    for (i, w) in w.iter().enumerate() {
        assert_eq!(w["namespace"], "mongotape.test");
        assert_eq!(w["values"]["op_command_test"], json!(i as f64 + 1.0));
        assert_eq!(
            w["write_concern"],
            json!({"w": 1.0}),
            "the getlasterror's w"
        );
        assert_eq!(w["outcome"], "pending");
        assert_eq!(
            w["reason"],
            "awaiting_majority: acknowledged w:1 (getlasterror)"
        );
    }
    let m = of_type(&recs, "message");
    let gle: Vec<_> = m
        .iter()
        .filter(|m| m["command"] == "getlasterror")
        .collect();
    assert_eq!(gle.len(), 4, "two getlasterror requests and their replies");
    // Each insert is followed on the wire by its getlasterror.
    let c2s: Vec<&str> = m
        .iter()
        .filter(|m| m["dir"] == "c2s")
        .map(|m| m["command"].as_str().unwrap())
        .collect();
    let at: Vec<usize> = c2s
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == "insert")
        .map(|(i, _)| i)
        .collect();
    assert!(at.iter().all(|&i| c2s[i + 1] == "getlasterror"), "{c2s:?}");
}

#[test]
fn op_msg_replica_heartbeats() {
    let Some(path) = shared_capture("beats-packetbeat/mongodb_op_msg_opcode.pcap") else {
        return;
    };
    let recs = run(&path);
    let m = of_type(&recs, "message");
    assert_eq!(m.len(), 202);
    let count = |dir: &str, cmd: &str| {
        m.iter()
            .filter(|m| m["dir"] == dir && m["command"] == cmd)
            .count()
    };
    // 78 heartbeat exchanges: each request paired with its reply by responseTo.
    assert_eq!(count("c2s", "replSetHeartbeat"), 78);
    assert_eq!(count("s2c", "replSetHeartbeat"), 78);
    assert_eq!(count("c2s", "ismaster"), 23);
    assert_eq!(count("s2c", "ismaster"), 23);
    // The heartbeat target is not yet in a valid config: every heartbeat is answered
    // `ok:0, code 93 InvalidReplicaSetConfig` (tshark shows the same 78 codeNames).
    for r in m.iter().filter(|m| m["dir"] == "s2c") {
        if r["command"] == "replSetHeartbeat" {
            assert_eq!(
                (&r["detail"]["ok"], &r["detail"]["code"]),
                (&json!(false), &json!(93)),
                "{r}"
            );
        } else {
            assert_eq!(r["detail"]["ok"], true, "{r}");
        }
    }
    assert!(
        of_type(&recs, "write").is_empty(),
        "cluster-internal traffic writes nothing"
    );
}

#[test]
fn invalid_opcode_2269_is_an_error_record() {
    let Some(path) = shared_capture("beats-packetbeat/mongodb_invalid_opcode_2269.pcap") else {
        return;
    };
    let recs = run(&path);
    let errors = of_type(&recs, "error");
    assert_eq!(errors.len(), 3, "one per connection: {errors:?}");
    for e in errors {
        assert_eq!(e["dir"], "c2s");
        assert_eq!(e["offset"], 0);
        assert!(e["message"]
            .as_str()
            .unwrap()
            .contains("unknown opcode 2269"));
    }
    assert_eq!(of_type(&recs, "flow").len(), 3);
    assert_eq!(of_type(&recs, "summary").len(), 1);
}

#[test]
fn ddl_of_the_26_shell() {
    let Some(path) = shared_capture("beats-packetbeat/mongodb_create_collection.pcap") else {
        return;
    };
    let recs = run(&path);
    let w = of_type(&recs, "write");
    assert_eq!(w.len(), 1);
    assert_eq!(w[0]["op"], "create");
    assert_eq!(w[0]["namespace"], "testDB.testCollection");
    assert_eq!(w[0]["values"], json!({"create": "testCollection"}));
    assert_eq!(w[0]["key"], Value::Null);
}
