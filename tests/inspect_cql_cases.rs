//! The CQL decoder's named cases, driven through the decoder seam with frames made by
//! tidemark-cql's encoder: prepared statements seen out of order (another flow,
//! Unprepared and re-prepare), per-node scoping, requests left unanswered, stream id
//! reuse, and resynchronization after garbage and gaps.

use std::net::SocketAddr;

use bytes::Bytes;
use serde_json::{json, Value};
use tidemark::capture::{CloseReason, Direction, FlowId, Timestamp};
use tidemark::decode::detect::Protocol;
use tidemark::decode::records::Record;
use tidemark::decode::registry::{default_registry, DecoderRegistry};
use tidemark::decode::seam::{FlowDecoder, FlowInfo, StreamPos};
use tidemark_cql::frame::{encode_message, Compression};
use tidemark_cql::message::{
    error_code, ColumnSpec, ErrorBody, ErrorDetails, Execute, Prepare, Prepared, PreparedMetadata,
    QueryParameters, QueryValues, ResultBody, RowsMetadata,
};
use tidemark_cql::wire::WireValue;
use tidemark_cql::{ColumnType, Message};

const INSERT: &str = "INSERT INTO ks.t (k, v) VALUES (?, ?)";

struct Flow {
    dec: Box<dyn FlowDecoder>,
    info: FlowInfo,
    off: [u64; 2],
}

impl Flow {
    fn new(reg: &DecoderRegistry, id: u64, server: &str) -> Flow {
        let info = FlowInfo {
            flow: FlowId(id),
            client: "10.0.0.1:40000".parse::<SocketAddr>().unwrap(),
            server: server.parse().unwrap(),
            protocol: Protocol::Cql,
            opened: Timestamp(0),
        };
        Flow {
            dec: reg.create(&info),
            info,
            off: [0, 0],
        }
    }

    fn bytes(&mut self, dir: Direction, b: &[u8]) -> Vec<Value> {
        let i = usize::from(dir == Direction::ServerToClient);
        let pos = StreamPos {
            flow: &self.info,
            dir,
            ts: Timestamp(1_700_000_000_000_000_000),
            offset: self.off[i],
        };
        let mut out = Vec::new();
        self.dec.data(&pos, &Bytes::copy_from_slice(b), &mut out);
        self.off[i] += b.len() as u64;
        values(out)
    }

    fn req(&mut self, stream: i16, m: Message) -> Vec<Value> {
        self.bytes(
            Direction::ClientToServer,
            &encode_message(4, stream, m, Compression::None),
        )
    }

    fn resp(&mut self, stream: i16, m: Message) -> Vec<Value> {
        self.bytes(
            Direction::ServerToClient,
            &encode_message(4, stream, m, Compression::None),
        )
    }

    fn close(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        self.dec
            .closed(&self.info, Timestamp(1), CloseReason::Fin, &mut out);
        values(out)
    }
}

fn values(out: Vec<Record>) -> Vec<Value> {
    out.iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect()
}

fn writes(v: &[Value]) -> Vec<&Value> {
    v.iter().filter(|r| r["type"] == "write").collect()
}

fn spec(name: &str, ty: ColumnType) -> ColumnSpec {
    ColumnSpec {
        keyspace: "ks".into(),
        table: "t".into(),
        name: name.into(),
        ty,
    }
}

fn prepared(id: &'static [u8]) -> Message {
    Message::Result(ResultBody::Prepared(Prepared {
        id: Bytes::from_static(id),
        result_metadata_id: None,
        metadata: PreparedMetadata {
            pk_indexes: vec![0],
            global_table_spec: None,
            columns: vec![spec("k", ColumnType::Int), spec("v", ColumnType::Varchar)],
        },
        result_metadata: RowsMetadata::default(),
    }))
}

fn execute(id: &'static [u8], k: i32, v: &str) -> Message {
    Message::Execute(Execute {
        id: Bytes::from_static(id),
        result_metadata_id: None,
        params: QueryParameters {
            values: QueryValues::Positional(vec![
                WireValue::Bytes(Bytes::copy_from_slice(&k.to_be_bytes())),
                WireValue::Bytes(Bytes::copy_from_slice(v.as_bytes())),
            ]),
            timestamp: Some(42),
            ..QueryParameters::default()
        },
    })
}

fn prepare() -> Message {
    Message::Prepare(Prepare {
        query: INSERT.into(),
        keyspace: None,
    })
}

fn void() -> Message {
    Message::Result(ResultBody::Void)
}

#[test]
fn execute_before_its_prepare_is_unresolved_then_resolved_from_another_flow() {
    let reg = default_registry();
    let mut a = Flow::new(&reg, 1, "10.0.0.9:9042");
    let mut b = Flow::new(&reg, 2, "10.0.0.9:9042");
    assert!(writes(&a.req(1, execute(b"\x01\x02", 7, "x"))).is_empty());
    let out = a.resp(1, void());
    let w = writes(&out);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0]["outcome"], "unresolved");
    assert_eq!(w[0]["namespace"], Value::Null);
    assert_eq!(w[0]["values"], json!(["0x00000007", "0x78"]));
    assert_eq!(w[0]["statement_id"], "0x0102");
    assert!(w[0]["reason"].as_str().unwrap().contains("committed"));
    b.req(3, prepare());
    let out = b.resp(3, prepared(b"\x01\x02"));
    let w = writes(&out);
    assert_eq!(w.len(), 1, "the parked write is reported resolved");
    assert_eq!(w[0]["flow"], 1);
    assert_eq!(w[0]["namespace"], "ks.t");
    assert_eq!(w[0]["key"], json!({"k": 7}));
    assert_eq!(w[0]["key_source"], "bind_metadata");
    assert_eq!(w[0]["values"], json!({"v": "x"}));
    assert_eq!(w[0]["outcome"], "committed");
    assert_eq!(w[0]["timestamp"], 42);
}

#[test]
fn prepared_statements_belong_to_their_node() {
    let reg = default_registry();
    let mut a = Flow::new(&reg, 1, "10.0.0.9:9042");
    let mut other = Flow::new(&reg, 2, "10.0.0.10:9042");
    a.req(1, prepare());
    a.resp(1, prepared(b"\x05"));
    other.req(1, execute(b"\x05", 1, "y"));
    let w = other.resp(1, void());
    assert_eq!(
        writes(&w)[0]["outcome"],
        "unresolved",
        "another node never saw the PREPARE"
    );
    a.req(2, execute(b"\x05", 1, "y"));
    let w = a.resp(2, void());
    assert_eq!(writes(&w)[0]["namespace"], "ks.t");
    assert_eq!(writes(&w)[0]["outcome"], "committed");
}

#[test]
fn unprepared_error_then_reprepare_resolves_the_rejected_attempt() {
    let reg = default_registry();
    let mut a = Flow::new(&reg, 1, "10.0.0.9:9042");
    a.req(1, execute(b"\x09", 2, "z"));
    let unprepared = Message::Error(ErrorBody {
        code: error_code::UNPREPARED,
        message: "unknown id".into(),
        details: ErrorDetails::Unprepared {
            id: Bytes::from_static(b"\x09"),
        },
    });
    let w = a.resp(1, unprepared);
    assert_eq!(writes(&w)[0]["outcome"], "unresolved");
    a.req(2, prepare());
    let w = a.resp(2, prepared(b"\x09"));
    let w = writes(&w);
    assert_eq!(w.len(), 1);
    assert_eq!(
        (w[0]["outcome"].as_str(), w[0]["reason"].as_str()),
        (Some("rejected"), Some("unprepared"))
    );
    assert_eq!(w[0]["namespace"], "ks.t");
    a.req(3, execute(b"\x09", 2, "z"));
    let w = a.resp(3, void());
    assert_eq!(writes(&w)[0]["outcome"], "committed");
}

#[test]
fn unanswered_writes_are_in_doubt_at_close_and_on_stream_reuse() {
    let reg = default_registry();
    let mut a = Flow::new(&reg, 1, "10.0.0.9:9042");
    a.req(1, prepare());
    a.resp(1, prepared(b"\x01"));
    a.req(5, execute(b"\x01", 1, "a"));
    // Stream 5 is used again before any response: the first request got none.
    let out = a.req(5, execute(b"\x01", 2, "b"));
    let w = writes(&out);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0]["key"], json!({"k": 1}));
    assert_eq!(
        (w[0]["outcome"].as_str(), w[0]["reason"].as_str()),
        (Some("in_doubt"), Some("no_response"))
    );
    let out = a.close();
    let w = writes(&out);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0]["key"], json!({"k": 2}));
    assert_eq!(w[0]["reason"], "no_response");
}

#[test]
fn garbage_and_gaps_become_errors_and_decoding_resumes() {
    let reg = default_registry();
    let mut a = Flow::new(&reg, 1, "10.0.0.9:9042");
    let out = a.bytes(
        Direction::ClientToServer,
        b"\xff\xfe garbage that is no frame at all",
    );
    let out2 = a.req(1, prepare());
    let all: Vec<Value> = out.into_iter().chain(out2).collect();
    assert!(
        all.iter().any(|r| r["type"] == "error"),
        "garbage is reported: {all:?}"
    );
    assert!(
        all.iter()
            .any(|r| r["type"] == "message" && r["opcode"] == "PREPARE"),
        "then decoding resumes"
    );
    // Half a frame, then a gap covering the rest: the next whole frame still decodes.
    let frame = encode_message(4, 2, execute(b"\x01", 1, "q"), Compression::None);
    a.bytes(Direction::ClientToServer, &frame[..10]);
    let mut out = Vec::new();
    let pos = StreamPos {
        flow: &a.info,
        dir: Direction::ClientToServer,
        ts: Timestamp(2),
        offset: a.off[0],
    };
    a.dec.gap(&pos, (frame.len() - 10) as u64, &mut out);
    a.off[0] += (frame.len() - 10) as u64;
    let out = a.req(3, prepare());
    assert!(out
        .iter()
        .any(|r| r["type"] == "message" && r["opcode"] == "PREPARE" && r["stream"] == 3));
}

#[test]
fn lwt_not_applied_is_rejected_and_batch_log_timeouts_are_in_doubt() {
    use tidemark_cql::message::Rows;
    let reg = default_registry();
    let mut a = Flow::new(&reg, 1, "10.0.0.9:9042");
    let q = |text: &str| {
        Message::Query(tidemark_cql::message::Query {
            query: text.into(),
            params: QueryParameters::default(),
        })
    };
    a.req(1, q("UPDATE ks.t SET v = 'n' WHERE k = 1 IF v = 'o'"));
    let meta = RowsMetadata {
        columns_count: 1,
        columns: vec![spec("[applied]", ColumnType::Boolean)],
        ..RowsMetadata::default()
    };
    let rows = Rows::from_cells(meta, &[vec![Some(Bytes::from_static(b"\x00"))]]);
    let w = a.resp(1, Message::Result(ResultBody::Rows(rows)));
    let w = writes(&w);
    assert_eq!(
        (w[0]["outcome"].as_str(), w[0]["reason"].as_str()),
        (Some("rejected"), Some("not_applied"))
    );
    assert_eq!(w[0]["lwt"], "if");
    assert_eq!(w[0]["condition"], json!({"v": {"=": "o"}}));
    assert_eq!(w[0]["timestamp_source"], "paxos_ballot");
    a.req(2, q("BEGIN BATCH INSERT INTO ks.t (k, v) VALUES (1, 'a'); DELETE FROM ks.t WHERE k = 2; APPLY BATCH"));
    let wto = Message::Error(ErrorBody {
        code: error_code::WRITE_TIMEOUT,
        message: "timeout".into(),
        details: ErrorDetails::WriteTimeout {
            consistency: tidemark_cql::wire::Consistency::Quorum,
            received: 0,
            block_for: 2,
            write_type: "BATCH_LOG".into(),
            contentions: None,
        },
    });
    let w = a.resp(2, wto);
    let w = writes(&w);
    assert_eq!(w.len(), 2);
    for (i, m) in w.iter().enumerate() {
        assert_eq!(
            (m["outcome"].as_str(), m["reason"].as_str()),
            (Some("in_doubt"), Some("batchlog"))
        );
        assert_eq!(
            m["batch"],
            json!({"id": "1:2", "type": "logged", "index": i, "size": 2})
        );
    }
    assert_eq!(w[1]["op"], "delete");
}

#[test]
fn a_batch_member_waiting_for_its_prepare_keeps_its_place_among_resolved_members() {
    use tidemark_cql::message::{Batch, BatchQuery, BatchStatement, BatchType};
    use tidemark_cql::Consistency;
    let reg = default_registry();
    let mut a = Flow::new(&reg, 1, "10.0.0.9:9042");
    a.req(1, prepare());
    a.resp(1, prepared(b"\x0a"));
    let member = |id: &'static [u8], k: i32| {
        let Message::Execute(e) = execute(id, k, "m") else {
            unreachable!()
        };
        BatchStatement {
            query: BatchQuery::Prepared(Bytes::from_static(id)),
            values: e.params.values,
        }
    };
    let batch = Message::Batch(Batch {
        batch_type: BatchType::Logged,
        // Known, never prepared here, known, never prepared, known.
        statements: vec![
            member(b"\x0a", 1),
            member(b"\x0b", 2),
            member(b"\x0a", 3),
            member(b"\x0b", 4),
            member(b"\x0a", 5),
        ],
        consistency: Consistency::Quorum,
        serial_consistency: None,
        timestamp: Some(42),
        keyspace: None,
        now_in_seconds: None,
    });
    a.req(2, batch);
    let out = a.resp(2, void());
    let w = writes(&out);
    let seen: Vec<(&str, Value)> = w
        .iter()
        .map(|w| (w["outcome"].as_str().unwrap(), w["batch"]["index"].clone()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("committed", json!(0)),
            ("unresolved", json!(1)),
            ("committed", json!(2)),
            ("unresolved", json!(3)),
            ("committed", json!(4)),
        ]
    );
    assert_eq!(w[2]["key"], json!({"k": 3}));
    // Both waiting members resolve, in order, when their PREPARE shows up.
    a.req(3, prepare());
    let out = a.resp(3, prepared(b"\x0b"));
    let w = writes(&out);
    let keys: Vec<&Value> = w.iter().map(|w| &w["key"]).collect();
    assert_eq!(keys, vec![&json!({"k": 2}), &json!({"k": 4})]);
    assert!(w.iter().all(|w| w["outcome"] == "committed"));
}
