//! Two writes of one cell with equal write timestamps, through the real pipeline:
//! tidemark-cql's encoder makes a PREPARE, its Prepared result and two EXECUTEs
//! with the same client timestamp; `tap` decodes, decides and stores them; the two
//! stored cells go through `tidemark::version::reconcile`.
//!
//! Cassandra breaks a timestamp tie between two live cells by the greater value in
//! unsigned byte order (`Cells.reconcile` → `compareValues`), the reason the store
//! keeps bytes (issue #11). The captures in `captures/` hold no such tie (their only
//! same-row, same-column writes are LWTs, timestamped by Paxos ballots), so the
//! case is built here. For ints 1 and -1 the bytes `ff ff ff ff` win: Cassandra
//! keeps -1, which neither the numbers nor their JSON text (`"1"` > `"-1"`) give.

mod commit_support;
mod common;

use bytes::Bytes;
use commit_support::{tap, Scenario};
use tidemark::commit::TrackerConfig;
use tidemark::store::envelope::Payload;
use tidemark::store::{CellKind, CellOp};
use tidemark::version::{reconcile, Cell};
use tidemark_cql::frame::{encode_message, Compression};
use tidemark_cql::message::{
    ColumnSpec, Execute, Prepare, Prepared, PreparedMetadata, QueryParameters, QueryValues,
    ResultBody, RowsMetadata,
};
use tidemark_cql::wire::{Consistency, WireValue};
use tidemark_cql::{ColumnType, Message, Value};

const INSERT: &str = "INSERT INTO ks.t (k, v) VALUES (?, ?)";
const ID: &[u8] = b"\x0a\x0b";
const TS: i64 = 1_700_000_000_000_000;

fn frame(stream: i16, m: Message) -> Vec<u8> {
    encode_message(4, stream, m, Compression::None)
}

fn spec(name: &str) -> ColumnSpec {
    ColumnSpec {
        keyspace: "ks".into(),
        table: "t".into(),
        name: name.into(),
        ty: ColumnType::Int,
    }
}

fn int(i: i32) -> WireValue {
    WireValue::Bytes(Bytes::copy_from_slice(&i.to_be_bytes()))
}

fn execute(k: i32, v: i32) -> Message {
    Message::Execute(Execute {
        id: Bytes::from_static(ID),
        result_metadata_id: None,
        params: QueryParameters {
            consistency: Consistency::Quorum,
            values: QueryValues::Positional(vec![int(k), int(v)]),
            timestamp: Some(TS),
            ..QueryParameters::default()
        },
    })
}

#[test]
fn equal_timestamps_reconcile_by_the_stored_bytes() {
    let mut s = Scenario::new();
    let f = s.flow("10.9.0.1:40001", "10.1.0.1:9042", 0);
    s.send(
        f,
        1,
        &frame(
            1,
            Message::Prepare(Prepare {
                query: INSERT.into(),
                keyspace: None,
            }),
        ),
    );
    s.answer(
        f,
        2,
        &frame(
            1,
            Message::Result(ResultBody::Prepared(Prepared {
                id: Bytes::from_static(ID),
                result_metadata_id: None,
                metadata: PreparedMetadata {
                    pk_indexes: vec![0],
                    global_table_spec: None,
                    columns: vec![spec("k"), spec("v")],
                },
                result_metadata: RowsMetadata::default(),
            })),
        ),
    );
    s.send(f, 3, &frame(2, execute(7, 1)));
    s.answer(f, 4, &frame(2, Message::Result(ResultBody::Void)));
    s.send(f, 5, &frame(3, execute(7, -1)));
    s.answer(f, 6, &frame(3, Message::Result(ResultBody::Void)));
    s.close(f, 7);
    let out = tap(&s, TrackerConfig::default());

    let stored: Vec<_> = out
        .log
        .iter()
        .flat_map(|e| match &e.mutation.payload {
            Payload::Cql(p) => p.cells.clone(),
            Payload::Mongo(_) => Vec::new(),
        })
        .collect();
    assert_eq!(stored.len(), 2, "{stored:?}");
    let mut one = Vec::new();
    Value::Int(1).encode(&mut one);
    let mut minus_one = Vec::new();
    Value::Int(-1).encode(&mut minus_one);
    for (c, want) in stored.iter().zip([&one, &minus_one]) {
        assert_eq!((&*c.column, &*c.cql_type, c.timestamp), ("v", "int", TS));
        assert_eq!(
            (c.kind, c.op, &c.value.to_vec()),
            (CellKind::Live, CellOp::Set, want)
        );
    }

    let cell = |i: usize| Cell::live(stored[i].timestamp, stored[i].value.clone());
    let winner = reconcile(&cell(0), &cell(1)).unwrap();
    assert_eq!(winner, reconcile(&cell(1), &cell(0)).unwrap(), "order-free");
    assert_eq!(winner, Cell::live(TS, Bytes::from(minus_one)));
    // JSON text would have picked the other write.
    assert!("1".as_bytes() > "-1".as_bytes());
}
