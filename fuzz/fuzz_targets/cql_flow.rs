//! The CQL flow decoder (src/decode/cql) on hostile values and statements: pairing,
//! prepared statements, outcome rules and the typed write model (cells as wire bytes
//! plus their CQL type, collection element paths, frozen set/map ordering, literal
//! conversion).
//!
//! Every input starts with a fixed, well-formed preamble on one flow: STARTUP/READY,
//! the PREPARE of an INSERT binding a column of every interesting type and its
//! Prepared result (so EXECUTEs are typed by bind metadata). Then the input is read as
//! records `[kind: u8][len: u8][bytes]`:
//! - kind 0: an EXECUTE of that statement whose values are `bytes` cut into pieces
//!   (each piece's first byte is its length; 0xff means null);
//! - kind 1: a QUERY whose text is `INSERT INTO ks.t (k, c, s, m, l, u, v, d) VALUES (`
//!   + `bytes` (lossy UTF-8) + `)`, so literals of every kind reach the converter;
//! - kind 2: raw bytes on the client stream; kind 3: raw bytes on the server stream;
//! - anything else: a response to the last request (RESULT Void, or an ERROR when odd).
//!
//! Nothing may panic; every typed cell's bytes must decode with its own type when the
//! decoder says it has one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidemark::capture::{CloseReason, Direction, FlowId, Timestamp};
use tidemark::decode::cql::protocol::bytes::Bytes;
use tidemark::decode::cql::protocol::frame::{encode_message, Compression};
use tidemark::decode::cql::protocol::message::{
    ColumnSpec, ErrorBody, ErrorDetails, Execute, Prepare, Prepared, PreparedMetadata, Query,
    QueryParameters, QueryValues, ResultBody, RowsMetadata,
};
use tidemark::decode::cql::protocol::wire::{Consistency, WireValue};
use tidemark::decode::cql::protocol::{ColumnType, Message};
use tidemark::decode::cql::CqlFlowDecoder;
use tidemark::decode::cql::SharedState;
use tidemark::decode::detect::Protocol;
use tidemark::decode::seam::{FlowDecoder, FlowInfo, StreamPos};

const INSERT: &str = "INSERT INTO ks.t (k, c, s, m, l, u, v, d) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
const ID: &[u8] = b"\x01\x02\x03";

fn columns() -> Vec<(&'static str, ColumnType)> {
    use ColumnType as T;
    vec![
        ("k", T::Int),
        ("c", T::Varchar),
        ("s", T::Set(Box::new(T::Int))),
        ("m", T::Map(Box::new(T::Varchar), Box::new(T::Varint))),
        ("l", T::List(Box::new(T::Blob))),
        ("u", T::Tuple(vec![T::Int, T::Varchar, T::Decimal])),
        ("v", T::Varint),
        ("d", T::Decimal),
    ]
}

fn frame(stream: i16, m: Message) -> Vec<u8> {
    encode_message(4, stream, m, Compression::None)
}

/// Splits `bytes` into bound values: a length byte then that many bytes (0xff null).
fn values(mut bytes: &[u8]) -> Vec<WireValue> {
    let mut out = Vec::new();
    while let [len, rest @ ..] = bytes {
        if *len == 0xff {
            out.push(WireValue::Null);
            bytes = rest;
            continue;
        }
        let n = (*len as usize).min(rest.len());
        out.push(WireValue::Bytes(Bytes::copy_from_slice(&rest[..n])));
        bytes = &rest[n..];
    }
    out
}

struct Flow {
    info: FlowInfo,
    dec: CqlFlowDecoder,
    offset: [u64; 2],
    out: Vec<tidemark::decode::records::Record>,
}

impl Flow {
    fn push(&mut self, dir: Direction, bytes: Vec<u8>) {
        let pos = StreamPos {
            flow: &self.info,
            dir,
            ts: Timestamp(1),
            offset: self.offset[dir as usize],
        };
        self.offset[dir as usize] += bytes.len() as u64;
        self.dec.data(&pos, &Bytes::from(bytes), &mut self.out);
    }
}

fuzz_target!(|data: &[u8]| {
    let info = FlowInfo {
        flow: FlowId(1),
        client: "10.0.0.1:40000".parse().unwrap(),
        server: "10.0.0.2:9042".parse().unwrap(),
        protocol: Protocol::Cql,
        opened: Timestamp(0),
    };
    let dec = CqlFlowDecoder::new(&info, SharedState::default());
    let mut f = Flow {
        info,
        dec,
        offset: [0, 0],
        out: Vec::new(),
    };
    let c2s = Direction::ClientToServer;
    let s2c = Direction::ServerToClient;
    f.push(c2s, frame(0, Message::Startup(Default::default())));
    f.push(s2c, frame(0, Message::Ready));
    f.push(
        c2s,
        frame(
            1,
            Message::Prepare(Prepare {
                query: INSERT.into(),
                keyspace: None,
            }),
        ),
    );
    let specs = columns()
        .into_iter()
        .map(|(name, ty)| ColumnSpec {
            keyspace: "ks".into(),
            table: "t".into(),
            name: name.into(),
            ty,
        })
        .collect();
    f.push(
        s2c,
        frame(
            1,
            Message::Result(ResultBody::Prepared(Prepared {
                id: Bytes::from_static(ID),
                result_metadata_id: None,
                metadata: PreparedMetadata {
                    pk_indexes: vec![0],
                    global_table_spec: None,
                    columns: specs,
                },
                result_metadata: RowsMetadata::default(),
            })),
        ),
    );

    let mut stream: i16 = 2;
    let mut rest = data;
    while let [kind, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (bytes, next) = tail.split_at(n);
        rest = next;
        match kind % 5 {
            0 => {
                stream = stream.wrapping_add(1) & 0x7fff;
                let m = Message::Execute(Execute {
                    id: Bytes::from_static(ID),
                    result_metadata_id: None,
                    params: QueryParameters {
                        consistency: Consistency::Quorum,
                        values: QueryValues::Positional(values(bytes)),
                        timestamp: Some(1_700_000_000_000_000),
                        ..QueryParameters::default()
                    },
                });
                f.push(c2s, frame(stream, m));
            }
            1 => {
                stream = stream.wrapping_add(1) & 0x7fff;
                let text = format!(
                    "INSERT INTO ks.t (k, c, s, m, l, u, v, d) VALUES ({})",
                    String::from_utf8_lossy(bytes)
                );
                let m = Message::Query(Query {
                    query: text.as_str().into(),
                    params: QueryParameters {
                        consistency: Consistency::One,
                        ..QueryParameters::default()
                    },
                });
                f.push(c2s, frame(stream, m));
            }
            2 => f.push(c2s, bytes.to_vec()),
            3 => f.push(s2c, bytes.to_vec()),
            _ => {
                let m = if kind & 0x10 != 0 {
                    Message::Error(ErrorBody {
                        code: 0x1100,
                        message: "timeout".into(),
                        details: ErrorDetails::None,
                    })
                } else {
                    Message::Result(ResultBody::Void)
                };
                f.push(s2c, frame(stream, m));
            }
        }
    }
    let Flow {
        info,
        mut dec,
        mut out,
        ..
    } = f;
    dec.closed(&info, Timestamp(2), CloseReason::Fin, &mut out);
    for r in &out {
        if let tidemark::decode::records::Record::Write(w) = r {
            if let Some(typed) = &w.extras.cql {
                // Touch everything the store would keep, so lazy paths run too.
                let _ = format!("{typed:?}");
            }
            // Values kept as frame bytes render when printed, and the same as when
            // read (the printed line and the tracker's view must agree).
            let printed = serde_json::to_value(&w.values).expect("values serialize");
            assert_eq!(printed, *w.values);
            // The store keeps the kept form instead, and `log --json` renders it back
            // to the same values.
            if let Some((form, bytes)) = w.values.kept() {
                let stored = tidemark::decode::records::without_raw_values(|| {
                    serde_json::to_value(&w.values).expect("values serialize")
                });
                assert!(stored.is_null());
                assert_eq!(tidemark::decode::registry::render_kept(bytes, form), printed);
            }
        }
    }
});
