//! Byte vectors written by hand from the native protocol specs (v4 and v5), decoded and
//! re-encoded byte for byte.

use bytes::Bytes;
use tidemark_cql::frame::crc::crc24;
use tidemark_cql::frame::segment::encode_segment;
use tidemark_cql::frame::{encode_frame, Compression, FrameDecoder};
use tidemark_cql::message::*;
use tidemark_cql::{Consistency, Direction, Envelope, Message, Text, WireValue};

fn decode_one(dir: Direction, bytes: &[u8]) -> (tidemark_cql::Frame, Envelope) {
    let mut d = FrameDecoder::new(dir);
    d.feed(bytes);
    let f = d.next().unwrap().unwrap();
    assert!(d.next().unwrap().is_none());
    let e = f.envelope().unwrap();
    (f, e)
}

fn roundtrip(dir: Direction, bytes: &[u8], want: Message) {
    let (f, e) = decode_one(dir, bytes);
    assert_eq!(e.message, want);
    let again = encode_frame(
        f.header.version,
        f.header.stream,
        &e,
        Compression::None,
        f.header.flags,
    );
    assert_eq!(again, bytes);
}

#[test]
fn startup_v4() {
    let mut b = vec![
        0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x16, 0x00, 0x01, 0x00, 0x0b,
    ];
    b.extend_from_slice(b"CQL_VERSION");
    b.extend_from_slice(&[0x00, 0x05]);
    b.extend_from_slice(b"3.0.0");
    roundtrip(
        Direction::ClientToServer,
        &b,
        Message::Startup(Startup {
            options: vec![(Text::from("CQL_VERSION"), Text::from("3.0.0"))],
        }),
    );
}

#[test]
fn ready_and_void_v4() {
    roundtrip(
        Direction::ServerToClient,
        &[0x84, 0, 0, 0, 0x02, 0, 0, 0, 0],
        Message::Ready,
    );
    roundtrip(
        Direction::ServerToClient,
        &[0x84, 0, 0, 1, 0x08, 0, 0, 0, 4, 0, 0, 0, 1],
        Message::Result(ResultBody::Void),
    );
}

#[test]
fn query_v4() {
    let mut b = vec![
        0x04, 0x00, 0x00, 0x05, 0x07, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00, 0x0f,
    ];
    b.extend_from_slice(b"SELECT * FROM t");
    b.extend_from_slice(&[0x00, 0x01, 0x00]);
    roundtrip(
        Direction::ClientToServer,
        &b,
        Message::Query(Query {
            query: Text::from("SELECT * FROM t"),
            params: QueryParameters {
                consistency: Consistency::One,
                ..Default::default()
            },
        }),
    );
}

#[test]
fn unavailable_error_v4() {
    let b = [
        0x84, 0, 0, 2, 0x00, 0, 0, 0, 17, //
        0x00, 0x00, 0x10, 0x00, // Unavailable
        0x00, 0x01, b'x', // message
        0x00, 0x04, // QUORUM
        0, 0, 0, 2, // required
        0, 0, 0, 1, // alive
    ];
    roundtrip(
        Direction::ServerToClient,
        &b,
        Message::Error(ErrorBody {
            code: 0x1000,
            message: Text::from("x"),
            details: ErrorDetails::Unavailable {
                consistency: Consistency::Quorum,
                required: 2,
                alive: 1,
            },
        }),
    );
}

#[test]
fn execute_v5_with_result_metadata_id() {
    let b = [
        0x05, 0, 0, 9, 0x0a, 0, 0, 0, 23, //
        0x00, 0x02, 0xab, 0xcd, // id
        0x00, 0x01, 0xef, // result_metadata_id
        0x00, 0x06, // LOCAL_QUORUM
        0x00, 0x00, 0x00, 0x01, // flags: values ([int] in v5)
        0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x2a,
    ];
    roundtrip(
        Direction::ClientToServer,
        &b,
        Message::Execute(Execute {
            id: Bytes::from_static(&[0xab, 0xcd]),
            result_metadata_id: Some(Bytes::from_static(&[0xef])),
            params: QueryParameters {
                consistency: Consistency::LocalQuorum,
                values: QueryValues::Positional(vec![WireValue::Bytes(Bytes::from_static(&[
                    0, 0, 0, 42,
                ]))]),
                ..Default::default()
            },
        }),
    );
}

#[test]
fn status_change_event() {
    let mut b = vec![0x84, 0x00, 0xff, 0xff, 0x0c, 0, 0, 0, 28, 0x00, 0x0d];
    b.extend_from_slice(b"STATUS_CHANGE");
    b.extend_from_slice(&[
        0x00, 0x02, b'U', b'P', 0x04, 127, 0, 0, 1, 0x00, 0x00, 0x23, 0x52,
    ]);
    let (f, _) = decode_one(Direction::ServerToClient, &b);
    assert_eq!(f.header.stream, -1);
    roundtrip(
        Direction::ServerToClient,
        &b,
        Message::Event(Event::StatusChange {
            change: Text::from("UP"),
            node: "127.0.0.1:9042".parse().unwrap(),
        }),
    );
}

#[test]
fn v5_segment_header() {
    // 50-byte self-contained payload: length 0x32 with bit 17 set, little-endian, then
    // the CRC24 of those three bytes.
    let mut out = Vec::new();
    encode_segment(&mut out, &[0u8; 50], true, false);
    assert_eq!(out[..6], [0x32, 0x00, 0x02, 0xa5, 0xff, 0xee]);
    assert_eq!(out.len(), 6 + 50 + 4);
    assert_eq!(crc24(&[0x32, 0x00, 0x02]), 0xeeffa5);
}

#[test]
fn wrong_direction_is_rejected() {
    // A response header on the request side.
    let mut d = FrameDecoder::new(Direction::ClientToServer);
    d.feed(&[0x84, 0, 0, 0, 0x02, 0, 0, 0, 0]);
    assert!(d.next().is_err());
}

#[test]
fn execute_values_typed_by_prepared_metadata() {
    use tidemark_cql::{ColumnType, Value};
    let col = |name: &str, ty| ColumnSpec {
        keyspace: Text::from("ks"),
        table: Text::from("t"),
        name: Text::from(name),
        ty,
    };
    let prepared = PreparedMetadata {
        pk_indexes: vec![0],
        global_table_spec: Some((Text::from("ks"), Text::from("t"))),
        columns: vec![col("k", ColumnType::Int), col("v", ColumnType::Varchar)],
    };
    let values = QueryValues::Positional(vec![
        WireValue::Bytes(Bytes::from_static(&[0, 0, 0, 7])),
        WireValue::Unset,
    ]);
    assert_eq!(
        values.typed(&prepared.columns).unwrap(),
        vec![Value::Int(7), Value::Unset]
    );
}

/// RESULT Rows of an EXECUTE that skipped the metadata, as Cassandra 5.0.9 sends it
/// (the differential test `tests/realdb_fidelity.rs` sees flags 0x0005): No_metadata
/// (0x0004) with Global_tables_spec (0x0001) and, as spec 4.2.5.2 says for
/// No_metadata, "no <global_table_spec> nor <col_spec_i>" after the column count.
#[test]
fn rows_without_metadata_keep_the_global_tables_spec_flag_v4() {
    let body: &[u8] = &[
        0, 0, 0, 2, // kind Rows
        0, 0, 0, 5, // flags: Global_tables_spec | No_metadata
        0, 0, 0, 2, // columns_count
        0, 0, 0, 1, // rows_count
        0, 0, 0, 1, b'v', // cell 1
        0xff, 0xff, 0xff, 0xff, // cell 2: null
    ];
    let mut b = vec![0x84, 0, 0, 3, 0x08, 0, 0, 0, body.len() as u8];
    b.extend_from_slice(body);
    let (_, e) = decode_one(Direction::ServerToClient, &b);
    let Message::Result(ResultBody::Rows(rows)) = &e.message else {
        panic!("not rows: {:?}", e.message);
    };
    assert!(rows.metadata.no_metadata);
    assert!(rows.metadata.global_flag_without_spec);
    assert_eq!(rows.metadata.global_table_spec, None);
    assert_eq!(rows.metadata.columns_count, 2);
    assert_eq!(rows.rows_count, 1);
    roundtrip(Direction::ServerToClient, &b, e.message.clone());
    // A prepared non-SELECT's empty result metadata has No_metadata alone (0x0004).
    let mut void_meta = b.clone();
    void_meta[9 + 7] = 4;
    let (_, e) = decode_one(Direction::ServerToClient, &void_meta);
    let Message::Result(ResultBody::Rows(rows)) = &e.message else {
        panic!("not rows");
    };
    assert!(!rows.metadata.global_flag_without_spec);
    roundtrip(Direction::ServerToClient, &void_meta, e.message.clone());
}
