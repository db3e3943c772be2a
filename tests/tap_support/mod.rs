//! Helpers shared by the `tidemark tap` integration tests: a large synthetic capture
//! of CQL and MongoDB writes (frames made with tidemark-cql's and tidemark-mongo's
//! encoders, packets with `tests/common`), and running the `tidemark` binary.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bytes::Bytes;
use tidemark::capture::pcap_writer::PcapWriter;
use tidemark::capture::{LinkType, Timestamp};
use tidemark::decode::mongo::tidemark_mongo::bson::{self, rawdoc, RawDocumentBuf};
use tidemark::decode::mongo::tidemark_mongo::{
    encode_message as encode_mongo, Body, Doc, DocSeq, DocSequence, Message as MongoMessage, OpMsg,
};
use tidemark_cql::frame::{encode_message as encode_cql, Compression};
use tidemark_cql::message::{
    error_code, Batch, BatchQuery, BatchStatement, BatchType, ColumnSpec, ErrorBody, ErrorDetails,
    Execute, Prepare, Prepared, PreparedMetadata, QueryParameters, QueryValues, ResultBody,
    RowsMetadata, Startup,
};
use tidemark_cql::wire::{Consistency, WireValue};
use tidemark_cql::{ColumnType, Message as CqlMessage};

use crate::common::{ethernet, ip_packet, Conv, Seg};

/// The `tidemark` binary under test.
pub fn tidemark() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
}

/// Runs `tidemark ARGS` to completion.
pub fn run<A: AsRef<OsStr>>(args: &[A]) -> Output {
    tidemark()
        .args(args)
        .output()
        .expect("the tidemark binary runs")
}

/// Runs `tidemark ARGS`, which must succeed; returns stdout.
pub fn run_ok<A: AsRef<OsStr>>(args: &[A]) -> String {
    let out = run(args);
    let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
    assert!(
        out.status.success(),
        "tidemark {shown:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// A path as the `&str` a command line takes.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// What the generated capture holds, to check the tap's log against.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    pub packets: u64,
    /// CQL rows written (each a distinct mutation).
    pub cql_rows: u64,
    /// CQL writes answered by a WriteTimeout (in doubt).
    pub cql_timeouts: u64,
    /// Of those, the ones retried later with the same timestamp and committed.
    pub cql_retried: u64,
    /// MongoDB inserts acknowledged (w:1 or w:majority).
    pub mongo_acked: u64,
    /// MongoDB inserts sent on a connection that closed before the reply.
    pub mongo_unanswered: u64,
}

/// Shape of the generated capture.
#[derive(Debug, Clone)]
pub struct Shape {
    /// CQL connections (pool connections of one driver to two nodes).
    pub cql_connections: usize,
    /// Request rounds per CQL connection.
    pub rounds: usize,
    /// Requests pipelined per round (one TCP segment each way).
    pub pipeline: usize,
    /// Statements in every BATCH (every third request is one).
    pub batch: usize,
    /// Capture time between packets, ns.
    pub spacing_ns: u64,
    /// Every this many CQL requests one is answered by a WriteTimeout (in doubt).
    pub timeout_every: u64,
    /// Rounds after which half of the timed-out writes are retried.
    pub retry_after_rounds: usize,
    /// Every this many rounds a MongoDB insert on the long connection.
    pub mongo_every: usize,
    /// Every this many rounds a MongoDB insert whose connection closes unanswered.
    pub unanswered_every: usize,
}

const CQL_INSERT: &str = "INSERT INTO crash.events (k, c, v) VALUES (?, ?, ?)";
const PREPARED_ID: &[u8] = b"\x5c\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f";
const T0: u64 = 1_795_478_400_000_000_000;

fn spec(name: &str, ty: ColumnType) -> ColumnSpec {
    ColumnSpec {
        keyspace: "crash".into(),
        table: "events".into(),
        name: name.into(),
        ty,
    }
}

fn prepared() -> CqlMessage {
    CqlMessage::Result(ResultBody::Prepared(Prepared {
        id: Bytes::from_static(PREPARED_ID),
        result_metadata_id: None,
        metadata: PreparedMetadata {
            pk_indexes: vec![0],
            global_table_spec: None,
            columns: vec![
                spec("k", ColumnType::BigInt),
                spec("c", ColumnType::Int),
                spec("v", ColumnType::Varchar),
            ],
        },
        result_metadata: RowsMetadata::default(),
    }))
}

fn row(k: u64) -> QueryValues {
    QueryValues::Positional(vec![
        WireValue::Bytes(Bytes::copy_from_slice(&(k as i64).to_be_bytes())),
        WireValue::Bytes(Bytes::copy_from_slice(&((k % 97) as i32).to_be_bytes())),
        WireValue::Bytes(Bytes::from(format!("row-{k}"))),
    ])
}

/// A CQL write request carrying rows `first..first + n` with client timestamp `ts`.
fn cql_write(first: u64, n: usize, ts: i64) -> CqlMessage {
    if n == 1 {
        return CqlMessage::Execute(Execute {
            id: Bytes::from_static(PREPARED_ID),
            result_metadata_id: None,
            params: QueryParameters {
                consistency: Consistency::LocalQuorum,
                values: row(first),
                timestamp: Some(ts),
                ..QueryParameters::default()
            },
        });
    }
    CqlMessage::Batch(Batch {
        batch_type: BatchType::Unlogged,
        statements: (0..n as u64)
            .map(|i| BatchStatement {
                query: BatchQuery::Prepared(Bytes::from_static(PREPARED_ID)),
                values: row(first + i),
            })
            .collect(),
        consistency: Consistency::LocalQuorum,
        serial_consistency: None,
        timestamp: Some(ts),
        keyspace: None,
        now_in_seconds: None,
    })
}

fn write_timeout() -> CqlMessage {
    CqlMessage::Error(ErrorBody {
        code: error_code::WRITE_TIMEOUT,
        message: "Operation timed out - received only 0 responses.".into(),
        details: ErrorDetails::WriteTimeout {
            consistency: Consistency::LocalQuorum,
            received: 0,
            block_for: 2,
            write_type: "SIMPLE".into(),
            contentions: None,
        },
    })
}

/// An OP_MSG insert of one document; `retry` is `(lsid byte, txnNumber)` for a
/// retryable write.
fn mongo_insert(id: i32, doc: RawDocumentBuf, w: &str, retry: Option<(u8, i64)>) -> Vec<u8> {
    let wc = if w == "majority" {
        rawdoc! {"w": "majority"}
    } else {
        rawdoc! {"w": 1}
    };
    let body = match retry {
        Some((l, txn)) => {
            let lsid = bson::Binary {
                subtype: bson::spec::BinarySubtype::Uuid,
                bytes: vec![l; 16],
            };
            rawdoc! {"insert": "orders", "ordered": true, "writeConcern": wc, "lsid": {"id": lsid}, "txnNumber": txn, "$db": "shop"}
        }
        None => rawdoc! {"insert": "orders", "ordered": true, "writeConcern": wc, "$db": "shop"},
    };
    let mut m = OpMsg::new(Doc::from(body));
    m.sequences.push(DocSequence {
        identifier: "documents".to_owned(),
        documents: DocSeq::from_docs([doc.as_ref()]),
    });
    encode_mongo(&MongoMessage::new(id, 0, Body::Msg(m))).expect("encodable insert")
}

fn mongo_ok(id: i32, to: i32) -> Vec<u8> {
    let m = OpMsg::new(Doc::from(rawdoc! {"n": 1, "ok": 1.0}));
    encode_mongo(&MongoMessage::new(id, to, Body::Msg(m))).expect("encodable reply")
}

fn order(n: u64) -> RawDocumentBuf {
    rawdoc! {"_id": n as i64, "status": "new", "total": (n % 1000) as f64 / 4.0, "note": format!("order {n}")}
}

/// Writes packets with increasing capture times.
struct Out {
    w: PcapWriter<BufWriter<File>>,
    ts: u64,
    spacing: u64,
    packets: u64,
}

impl Out {
    fn put(&mut self, segs: impl IntoIterator<Item = Seg>) {
        for s in segs {
            self.ts += self.spacing;
            self.w
                .write(Timestamp(self.ts), &ethernet(&ip_packet(&s), &[]))
                .expect("writing the capture");
            self.packets += 1;
        }
    }
}

/// Writes the capture to `path`: `shape.cql_connections` CQL connections (STARTUP,
/// PREPARE, then rounds of pipelined EXECUTEs and unlogged BATCHes answered Void;
/// now and then a WriteTimeout, half of them retried later on another connection
/// with the same timestamp), and one long MongoDB connection inserting one document
/// every few rounds (w:1 — pending until the deadline, as no replication traffic is
/// in sight — and w:majority, some as retryable writes sent twice), plus short
/// MongoDB connections that close before their insert is answered (in doubt).
pub fn write_capture(path: &Path, shape: &Shape) -> Generated {
    let file = BufWriter::new(File::create(path).expect("creating the capture"));
    let mut out = Out {
        w: PcapWriter::new(file, LinkType::Ethernet, 65_535).expect("pcap header"),
        ts: T0,
        spacing: shape.spacing_ns,
        packets: 0,
    };
    let mut g = Generated::default();
    let mut cql: Vec<Conv> = (0..shape.cql_connections)
        .map(|i| {
            Conv::new(
                &format!("10.1.0.{}:{}", 10 + i, 41_000 + i),
                &format!("10.0.0.{}:9042", 1 + i % 2),
                1000 + i as u32 * 7919,
                5000 + i as u32 * 104_729,
            )
        })
        .collect();
    for c in &mut cql {
        let hs = c.handshake();
        out.put(hs);
        let startup = CqlMessage::Startup(Startup {
            options: vec![("CQL_VERSION".into(), "3.0.0".into())],
        });
        let seg = c.data(true, &encode_cql(4, 0, startup, Compression::None));
        out.put([seg]);
        let seg = c.data(
            false,
            &encode_cql(4, 0, CqlMessage::Ready, Compression::None),
        );
        out.put([seg]);
        let prep = CqlMessage::Prepare(Prepare {
            query: CQL_INSERT.into(),
            keyspace: None,
        });
        let seg = c.data(true, &encode_cql(4, 1, prep, Compression::None));
        out.put([seg]);
        let seg = c.data(false, &encode_cql(4, 1, prepared(), Compression::None));
        out.put([seg]);
    }
    let mut mongo = Conv::new("10.1.1.1:45000", "10.0.0.7:27017", 77, 99_000);
    let hs = mongo.handshake();
    out.put(hs);

    let mut next_row = 0u64;
    let mut next_doc = 0u64;
    let mut mongo_id = 1i32;
    let mut short_port = 46_000u16;
    // Timed-out writes waiting for their retry: (due round, first row, rows, ts).
    let mut retries: Vec<(usize, u64, usize, i64)> = Vec::new();
    let mut request = 0u64;
    for round in 0..shape.rounds {
        for (ci, c) in cql.iter_mut().enumerate() {
            let mut reqs = Vec::new();
            let mut resps = Vec::new();
            for slot in 0..shape.pipeline {
                let stream = 2 + slot as i16;
                request += 1;
                let due = retries
                    .iter()
                    .position(|r| r.0 <= round)
                    .filter(|_| slot == 0 && ci == 0);
                let (first, n, ts, timeout) = match due {
                    Some(i) => {
                        let (_, first, n, ts) = retries.swap_remove(i);
                        g.cql_retried += n as u64;
                        (first, n, ts, false)
                    }
                    None => {
                        let n = if request.is_multiple_of(3) {
                            shape.batch
                        } else {
                            1
                        };
                        let first = next_row;
                        next_row += n as u64;
                        g.cql_rows += n as u64;
                        let ts = (T0 / 1000) as i64 + request as i64;
                        (first, n, ts, request.is_multiple_of(shape.timeout_every))
                    }
                };
                reqs.extend(encode_cql(
                    4,
                    stream,
                    cql_write(first, n, ts),
                    Compression::None,
                ));
                let answer = if timeout {
                    g.cql_timeouts += n as u64;
                    if request.is_multiple_of(2) {
                        retries.push((round + shape.retry_after_rounds, first, n, ts));
                    }
                    write_timeout()
                } else {
                    CqlMessage::Result(ResultBody::Void)
                };
                resps.extend(encode_cql(4, stream, answer, Compression::None));
            }
            // Pipelined requests go out as the driver coalesces them, in MSS chunks.
            for chunk in reqs.chunks(1448) {
                let seg = c.data(true, chunk);
                out.put([seg]);
            }
            for chunk in resps.chunks(1448) {
                let seg = c.data(false, chunk);
                out.put([seg]);
            }
        }
        if round.is_multiple_of(shape.mongo_every) {
            next_doc += 1;
            let majority = round.is_multiple_of(3);
            // Only w:majority writes are retried: the two copies of a w:1 write
            // would each wait for their own deadline.
            let retry = (majority && round.is_multiple_of(5)).then_some((9u8, round as i64));
            let w = if majority { "majority" } else { "1" };
            // A retryable write sent twice (the first reply lost to the driver):
            // the same (lsid, txnNumber, stmtId) is one mutation.
            let times = if retry.is_some() { 2 } else { 1 };
            for _ in 0..times {
                let req = mongo_insert(mongo_id, order(next_doc), w, retry);
                let seg = mongo.data(true, &req);
                out.put([seg]);
                let seg = mongo.data(false, &mongo_ok(1_000_000 + mongo_id, mongo_id));
                out.put([seg]);
                mongo_id += 1;
            }
            g.mongo_acked += 1;
        }
        if round.is_multiple_of(shape.unanswered_every) {
            // A client gives up: the insert is never answered before the close.
            next_doc += 1;
            let mut short = Conv::new(
                &format!("10.1.2.1:{short_port}"),
                "10.0.0.7:27017",
                500,
                600,
            );
            short_port += 1;
            let mut segs = short.handshake();
            segs.push(short.data(true, &mongo_insert(7, order(next_doc), "majority", None)));
            segs.push(short.fin(true));
            segs.push(short.fin(false));
            out.put(segs);
            g.mongo_unanswered += 1;
        }
    }
    for c in cql.iter_mut().chain([&mut mongo]) {
        let a = c.fin(true);
        let b = c.fin(false);
        out.put([a, b]);
    }
    out.w.finish().expect("flushing the capture");
    g.packets = out.packets;
    g
}

/// A fresh temp directory for one test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("tidemark-tap-")
        .tempdir()
        .expect("a temp dir")
}

/// `DIR/NAME` as a `PathBuf`.
pub fn child(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
