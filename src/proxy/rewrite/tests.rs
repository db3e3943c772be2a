//! The rewrite on frames built with the protocol crates' own encoders: the output
//! is compared byte for byte with the same messages encoded with sidecar addresses
//! (an independent reference), decoded back, and found identical under any split.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use tidemark_cql::frame::segment::{encode_envelopes, encode_envelopes_with};
use tidemark_cql::frame::{encode_frame, Compression};
use tidemark_cql::message::{
    ColumnSpec, Event, ResultBody, Rows, RowsMetadata, SchemaChange, SchemaTarget, Startup,
};
use tidemark_cql::{ColumnType, Direction, Envelope, Message};

use super::*;

const NODES: [&str; 3] = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
const SIDECARS: [&str; 3] = ["127.0.0.101", "127.0.0.102", "127.0.0.103"];

fn ctx() -> Ctx {
    let mut map = AddrMap::default();
    for (n, s) in NODES.iter().zip(SIDECARS) {
        map.add(&format!("{n}:9042"), format!("{s}:19042").parse().unwrap())
            .unwrap();
        map.add(&format!("{n}:27017"), format!("{s}:27018").parse().unwrap())
            .unwrap();
    }
    // CQL lookups by IP alone need one node per IP: the Mongo entries share IPs, so
    // CQL tests use their own map.
    let _ = &map;
    Ctx {
        map: Arc::new(map),
        stats: Arc::default(),
    }
}

fn cql_ctx() -> Ctx {
    let mut map = AddrMap::default();
    for (n, s) in NODES.iter().zip(SIDECARS) {
        map.add(&format!("{n}:9042"), format!("{s}:19042").parse().unwrap())
            .unwrap();
    }
    Ctx {
        map: Arc::new(map),
        stats: Arc::default(),
    }
}

fn ip(s: &str) -> Bytes {
    match s.parse::<IpAddr>().unwrap() {
        IpAddr::V4(v) => Bytes::copy_from_slice(&v.octets()),
        IpAddr::V6(v) => Bytes::copy_from_slice(&v.octets()),
    }
}

fn col(table: &str, name: &str, ty: ColumnType) -> ColumnSpec {
    ColumnSpec {
        keyspace: "system".into(),
        table: table.into(),
        name: name.into(),
        ty,
    }
}

/// `system.peers_v2` rows naming `addrs` (peer, native_address, native_port).
fn peers_v2(addrs: &[&str], port: i32) -> Envelope {
    let columns = vec![
        col("peers_v2", "peer", ColumnType::Inet),
        col("peers_v2", "data_center", ColumnType::Varchar),
        col("peers_v2", "native_address", ColumnType::Inet),
        col("peers_v2", "native_port", ColumnType::Int),
        col(
            "peers_v2",
            "tokens",
            ColumnType::Set(Box::new(ColumnType::Varchar)),
        ),
    ];
    let md = RowsMetadata {
        columns_count: columns.len(),
        global_table_spec: Some(("system".into(), "peers_v2".into())),
        columns,
        ..RowsMetadata::default()
    };
    let rows: Vec<Vec<Option<Bytes>>> = addrs
        .iter()
        .map(|a| {
            vec![
                Some(ip(a)),
                Some(Bytes::from_static(b"dc1")),
                Some(ip(a)),
                Some(Bytes::copy_from_slice(&port.to_be_bytes())),
                Some(Bytes::from_static(b"\0\0\0\x01\0\0\0\x021x")),
            ]
        })
        .collect();
    Envelope::new(Message::Result(ResultBody::Rows(Rows::from_cells(
        md, &rows,
    ))))
}

/// `system.peers` (v1: no port column) rows, with per-column table specs.
fn peers_v1(addrs: &[&str]) -> Envelope {
    let columns = vec![
        col("peers", "peer", ColumnType::Inet),
        col("peers", "rpc_address", ColumnType::Inet),
    ];
    let md = RowsMetadata {
        columns_count: 2,
        columns,
        ..RowsMetadata::default()
    };
    let rows: Vec<Vec<Option<Bytes>>> = addrs
        .iter()
        .map(|a| vec![Some(ip(a)), Some(ip(a))])
        .collect();
    Envelope::new(Message::Result(ResultBody::Rows(Rows::from_cells(
        md, &rows,
    ))))
}

/// A user table's rows holding a node address (must never change).
fn user_rows() -> Envelope {
    let columns = vec![ColumnSpec {
        keyspace: "ks".into(),
        table: "peers".into(),
        name: "rpc_address".into(),
        ty: ColumnType::Inet,
    }];
    let md = RowsMetadata {
        columns_count: 1,
        global_table_spec: Some(("ks".into(), "peers".into())),
        columns,
        ..RowsMetadata::default()
    };
    Envelope::new(Message::Result(ResultBody::Rows(Rows::from_cells(
        md,
        &[vec![Some(ip("10.0.0.1"))]],
    ))))
}

fn event(a: &str, port: u16) -> Envelope {
    Envelope::new(Message::Event(Event::StatusChange {
        change: "UP".into(),
        node: SocketAddr::new(a.parse().unwrap(), port),
    }))
}

fn schema_event() -> Envelope {
    Envelope::new(Message::Event(Event::SchemaChange(SchemaChange {
        change_type: "CREATED".into(),
        target: SchemaTarget::Keyspace {
            keyspace: "ks".into(),
        },
    })))
}

fn startup(version: u8, compression: Option<&str>) -> Vec<u8> {
    let mut options = vec![("CQL_VERSION".into(), "3.0.0".into())];
    if let Some(c) = compression {
        options.push(("COMPRESSION".into(), c.into()));
    }
    encode_frame(
        version,
        0,
        &Envelope::new(Message::Startup(Startup { options })),
        Compression::None,
        0,
    )
}

/// Runs the server bytes through a fresh rewriter in pieces of `cuts`.
fn through(ctx: &Ctx, client: &[u8], server: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut r = Rewriter::new(Protocol::Auto, ctx.clone());
    run_pieces(&mut r, client, server, cuts)
}

/// The same output for the whole input, 1-byte pieces and uneven pieces.
fn all_splits(ctx: &Ctx, client: &[u8], server: &[u8]) -> Vec<u8> {
    let whole = through(ctx, client, server, &[usize::MAX]);
    for cuts in [&[1usize][..], &[2], &[7, 1, 300], &[9], &[4096, 3]] {
        assert_eq!(through(ctx, client, server, cuts), whole, "cuts {cuts:?}");
    }
    // Pseudo-random pieces, reproducible.
    let mut x = 0x9e37_79b9_u32;
    let cuts: Vec<usize> = (0..64)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % 97) as usize + 1
        })
        .collect();
    assert_eq!(through(ctx, client, server, &cuts), whole);
    whole
}

fn decode_s2c(client: &[u8], server: &[u8]) -> Vec<Message> {
    let mut c = tidemark_cql::Connection::new();
    c.feed(Direction::ClientToServer, client);
    let mut out = Vec::new();
    while let Some(i) = c.next() {
        let _ = i.unwrap();
    }
    c.feed(Direction::ServerToClient, server);
    for _ in 0..1000 {
        match c.next() {
            Some(i) => out.push(i.unwrap().envelope.message),
            None => break,
        }
    }
    out
}

fn legacy_case(version: u8, compression: Option<&str>) {
    let ctx = cql_ctx();
    let algo = compression.map_or(Compression::None, Compression::from_name);
    let client = startup(version, compression);
    let f = |stream: i16, env: &Envelope| encode_frame(version, stream, env, algo, 0);
    let ready = encode_frame(
        version,
        0,
        &Envelope::new(Message::Ready),
        Compression::None,
        0,
    );
    let parts_in = [
        ready.clone(),
        f(1, &user_rows()),
        f(2, &peers_v2(&NODES[1..], 9042)),
        f(-1, &event("10.0.0.2", 9042)),
        f(-1, &schema_event()),
        f(3, &peers_v1(&["10.0.0.3", "10.9.9.9"])),
    ];
    let parts_want = [
        ready,
        f(1, &user_rows()),
        f(2, &peers_v2(&SIDECARS[1..], 19042)),
        f(-1, &event("127.0.0.102", 19042)),
        f(-1, &schema_event()),
        f(3, &peers_v1(&["127.0.0.103", "10.9.9.9"])),
    ];
    let input = parts_in.concat();
    let out = all_splits(&ctx, &client, &input);
    assert_eq!(out, parts_want.concat(), "v{version} {compression:?}");
    assert_eq!(ctx.stats.rewrites.load(Ordering::Relaxed) % 3, 0);
    assert!(ctx.stats.rewrites.load(Ordering::Relaxed) > 0);
    assert_eq!(ctx.stats.errors.load(Ordering::Relaxed), 0);
    // Decoded by the protocol crate: the peers now name the sidecars.
    let msgs = decode_s2c(&client, &out);
    assert_eq!(msgs.len(), 6);
    let Message::Result(ResultBody::Rows(rows)) = &msgs[2] else {
        panic!("{:?}", msgs[2]);
    };
    let cells: Vec<Vec<Option<Bytes>>> = rows.rows().map(|r| r.unwrap()).collect();
    assert_eq!(cells[0][2], Some(ip("127.0.0.102")));
    assert_eq!(cells[1][0], Some(ip("127.0.0.103")));
    assert_eq!(
        cells[1][3],
        Some(Bytes::copy_from_slice(&19042i32.to_be_bytes()))
    );
}

#[test]
fn cql_v4_plain_lz4_snappy_and_v3() {
    legacy_case(4, None);
    legacy_case(4, Some("lz4"));
    legacy_case(4, Some("snappy"));
    legacy_case(3, Some("lz4"));
}

fn v5_case(lz4: bool) {
    let ctx = cql_ctx();
    let client = startup(5, lz4.then_some("lz4"));
    let ready = encode_frame(5, 0, &Envelope::new(Message::Ready), Compression::None, 0);
    let e = |stream: i16, env: &Envelope| encode_frame(5, stream, env, Compression::None, 0);
    // A self-contained segment with three envelopes, then a peers result spread over
    // non-self-contained segments, then a user result spread the same way.
    let input = [
        ready.clone(),
        encode_envelopes(
            &[
                e(1, &user_rows()),
                e(2, &peers_v2(&NODES, 9042)),
                e(-1, &event("10.0.0.1", 9042)),
            ],
            lz4,
        ),
        encode_envelopes_with(&[e(3, &peers_v2(&NODES[..2], 9042))], lz4, 40),
        encode_envelopes_with(&[e(4, &user_rows())], lz4, 20),
    ]
    .concat();
    let want = [
        ready,
        encode_envelopes(
            &[
                e(1, &user_rows()),
                e(2, &peers_v2(&SIDECARS, 19042)),
                e(-1, &event("127.0.0.101", 19042)),
            ],
            lz4,
        ),
        encode_envelopes(&[e(3, &peers_v2(&SIDECARS[..2], 19042))], lz4),
        encode_envelopes_with(&[e(4, &user_rows())], lz4, 20),
    ]
    .concat();
    let out = all_splits(&ctx, &client, &input);
    assert_eq!(out, want, "v5 lz4={lz4}");
    assert_eq!(ctx.stats.errors.load(Ordering::Relaxed), 0);
    let msgs = decode_s2c(&client, &out);
    assert_eq!(msgs.len(), 6, "{msgs:?}");
    assert_eq!(msgs[3], event("127.0.0.101", 19042).message);
}

#[test]
fn cql_v5_plain_and_lz4_segments() {
    v5_case(false);
    v5_case(true);
}

#[test]
fn cql_garbage_and_unmapped_pass_unchanged() {
    let ctx = cql_ctx();
    let client = startup(4, Some("lz4"));
    let mut x = 12345u32;
    let garbage: Vec<u8> = (0..5000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    assert_eq!(all_splits(&ctx, &client, &garbage), garbage);
    assert_eq!(all_splits(&ctx, &garbage, &garbage), garbage);
    // A valid frame, then garbage: the frame is rewritten, the rest passes.
    let peers = encode_frame(4, 1, &peers_v2(&NODES, 9042), Compression::Lz4, 0);
    let want = encode_frame(4, 1, &peers_v2(&SIDECARS, 19042), Compression::Lz4, 0);
    let out = all_splits(&ctx, &client, &[&peers[..], &garbage].concat());
    assert_eq!(out, [&want[..], &garbage].concat());
    // Unmapped addresses: nothing changes.
    let other = encode_frame(4, 1, &peers_v2(&["10.1.1.1"], 9042), Compression::Lz4, 0);
    assert_eq!(all_splits(&ctx, &client, &other), other);
    // A compressed body that does not decompress: passes, counted.
    let mut bad = peers.clone();
    let n = bad.len();
    bad[n - 3] ^= 0xff;
    bad[12] ^= 0x55;
    let before = ctx.stats.errors.load(Ordering::Relaxed);
    let out = through(&ctx, &client, &bad, &[usize::MAX]);
    assert_eq!(out, bad);
    assert!(ctx.stats.errors.load(Ordering::Relaxed) > before);
}

// ---- MongoDB ----

use tidemark_mongo::bson::{doc, Document};
use tidemark_mongo::{
    decode_message, encode_message, Body, Compressor, Doc, Limits, Message as MMsg, MsgFlags,
    OpMsg, OpQuery, OpReply,
};

fn mdoc(d: &Document) -> Doc {
    Doc::new(Bytes::from(d.to_vec().unwrap()), &Limits::default()).unwrap()
}

fn hello_reply(hosts: &[&str], me: &str) -> Document {
    doc! {
        "isWritablePrimary": true,
        "topologyVersion": { "processId": "x", "counter": 0i64 },
        "hosts": hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
        "passives": [hosts[0]],
        "setName": "rs0",
        "setVersion": 1,
        "primary": hosts[0],
        "me": me,
        "maxWireVersion": 21,
        "ok": 1.0,
    }
}

fn msg(id: i32, to: i32, d: &Document, flags: u32, c: Option<Compressor>) -> Vec<u8> {
    let mut m = OpMsg::new(mdoc(d));
    m.flags = MsgFlags(flags);
    let mut msg = MMsg::new(id, to, Body::Msg(m));
    if let Some(c) = c {
        msg = msg.compressed_with(c);
    }
    encode_message(&msg).unwrap()
}

const MNODES: [&str; 3] = ["10.0.0.1:27017", "10.0.0.2:27017", "10.0.0.3:27017"];
const MSIDE: [&str; 3] = [
    "127.0.0.101:27018",
    "127.0.0.102:27018",
    "127.0.0.103:27018",
];

fn body_of(b: &[u8]) -> Document {
    let m = decode_message(Bytes::copy_from_slice(b), 0, &Limits::default()).unwrap();
    match m.body {
        Body::Msg(m) => Document::try_from(m.body.raw()).unwrap(),
        Body::Reply(r) => Document::try_from(r.documents.iter().next().unwrap()).unwrap(),
        b => panic!("{b:?}"),
    }
}

#[test]
fn mongo_hello_replies_rewritten_others_not() {
    let ctx = ctx();
    let hello = msg(7, 0, &doc! {"hello": 1, "$db": "admin"}, 0, None);
    let find = msg(8, 0, &doc! {"find": "c", "$db": "d"}, 0, None);
    let reply_in = hello_reply(&MNODES, MNODES[1]);
    let reply_want = hello_reply(&MSIDE, MSIDE[1]);
    // A reply to the find with the same content must not change; the hello reply
    // (with checksum, then moreToCome exhaust replies) must.
    let server = [
        msg(100, 8, &reply_in, 0, None),
        msg(101, 7, &reply_in, 1 | 2, None),
        msg(102, 101, &reply_in, 0, None),
        msg(103, 102, &reply_in, 0, None),
    ]
    .concat();
    let want = [
        msg(100, 8, &reply_in, 0, None),
        msg(101, 7, &reply_want, 1 | 2, None),
        msg(102, 101, &reply_want, 0, None),
        msg(103, 102, &reply_in, 0, None),
    ]
    .concat();
    let client = [hello, find].concat();
    let out = all_splits(&ctx, &client, &server);
    assert_eq!(out, want);
    assert_eq!(ctx.stats.errors.load(Ordering::Relaxed), 0);
    // The checksummed one still verifies when decoded (decode_message checks it).
    let first = 0;
    let len = i32::from_le_bytes(out[first..4].try_into().unwrap()) as usize;
    let len2 = i32::from_le_bytes(out[len..len + 4].try_into().unwrap()) as usize;
    let second = &out[len..len + len2];
    assert_eq!(body_of(second).get_str("me").unwrap(), MSIDE[1]);
    assert_eq!(body_of(second).get_str("setName").unwrap(), "rs0");
}

#[test]
fn mongo_compressed_and_legacy_handshakes() {
    let ctx = ctx();
    let reply_in = hello_reply(&MNODES, MNODES[0]);
    for c in [Compressor::Snappy, Compressor::Zlib, Compressor::Zstd] {
        let client = msg(1, 0, &doc! {"isMaster": 1, "$db": "admin"}, 0, Some(c));
        let server = msg(2, 1, &reply_in, 1, Some(c));
        let out = all_splits(&ctx, &client, &server);
        let m = decode_message(Bytes::from(out.clone()), 0, &Limits::default()).unwrap();
        assert_eq!(m.compressor, Some(c));
        assert_eq!(body_of(&out), hello_reply(&MSIDE, MSIDE[0]), "{c:?}");
    }
    // Legacy: OP_QUERY on admin.$cmd, OP_REPLY.
    let q = MMsg::new(
        5,
        0,
        Body::Query(OpQuery {
            flags: 0,
            full_collection_name: "admin.$cmd".into(),
            number_to_skip: 0,
            number_to_return: -1,
            query: mdoc(&doc! {"ismaster": 1, "client": {"driver": "x"}}),
            return_fields_selector: None,
        }),
    );
    let reply = |d: &Document| {
        let raw = d.to_vec().unwrap();
        encode_message(&MMsg::new(
            6,
            5,
            Body::Reply(OpReply {
                response_flags: 8,
                cursor_id: 0,
                starting_from: 0,
                documents: tidemark_mongo::DocSeq::new(Bytes::from(raw), &Limits::default())
                    .unwrap(),
            }),
        ))
        .unwrap()
    };
    let out = all_splits(&ctx, &encode_message(&q).unwrap(), &reply(&reply_in));
    assert_eq!(out, reply(&hello_reply(&MSIDE, MSIDE[0])));
    // Garbage after a handshake passes unchanged.
    let garbage: Vec<u8> = (0..3000u32).map(|i| (i * 7919 % 251) as u8).collect();
    assert_eq!(all_splits(&ctx, &garbage, &garbage), garbage);
}

/// Not a check: prints what a rewrite costs per frame against a frame that only
/// streams through (`cargo test --lib proxy::rewrite::tests::cost -- --ignored
/// --nocapture`).
#[test]
#[ignore]
fn cost() {
    let cctx = cql_ctx();
    let client = startup(4, Some("lz4"));
    let peers = encode_frame(4, 1, &peers_v2(&NODES[1..], 9042), Compression::Lz4, 0);
    let other = encode_frame(4, 1, &user_rows(), Compression::Lz4, 0);
    let mut r = Rewriter::new(Protocol::Cql, cctx);
    r.client(&client);
    let n = 20_000u32;
    for (name, frame) in [("system.peers_v2 lz4", &peers), ("user rows lz4", &other)] {
        let start = std::time::Instant::now();
        let mut out = Vec::new();
        for _ in 0..n {
            r.server(Bytes::copy_from_slice(frame), &mut out);
            out.clear();
        }
        println!("{name}: {:?} per frame", start.elapsed() / n);
    }
    let hello = msg(7, 0, &doc! {"hello": 1, "$db": "admin"}, 0, None);
    let reply = msg(8, 7, &hello_reply(&MNODES, MNODES[0]), 1, None);
    let mctx = ctx();
    let start = std::time::Instant::now();
    for _ in 0..n {
        let mut r = Rewriter::new(Protocol::Mongo, mctx.clone());
        r.client(&hello);
        let mut out = Vec::new();
        r.server(Bytes::copy_from_slice(&reply), &mut out);
    }
    println!(
        "mongo hello reply (checksummed): {:?} per reply",
        start.elapsed() / n
    );
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Arbitrary bytes, either side, any protocol, any split: nothing panics,
        /// nothing is lost, nothing changes.
        #[test]
        fn arbitrary_bytes_pass_unchanged(
            client in proptest::collection::vec(any::<u8>(), 0..200),
            server in proptest::collection::vec(any::<u8>(), 0..2000),
            cuts in proptest::collection::vec(1usize..300, 1..8),
            which in 0u8..3,
        ) {
            let protocol = [Protocol::Auto, Protocol::Cql, Protocol::Mongo][which as usize];
            let mut r = Rewriter::new(protocol, ctx());
            prop_assert_eq!(run_pieces(&mut r, &client, &server, &cuts), server.clone());
            // After a real opening, too.
            let mut r = Rewriter::new(protocol, ctx());
            let opening = [startup(4, Some("lz4")), client].concat();
            prop_assert_eq!(run_pieces(&mut r, &opening, &server, &cuts), server);
        }
    }
}
