//! The testbed's wire protocol seen from a raw TCP client built on
//! `tidemark-mongo`: legacy OP_QUERY isMaster handshake, compression
//! negotiation and OP_COMPRESSED (snappy, zlib, zstd) replies, OP_MSG with
//! a checksum, hello fields drivers' SDAM needs, NotWritablePrimary on a
//! secondary, and a malformed message closing only its own connection.

mod common;

use common::{raw, start, Client};
use std::net::Ipv4Addr;
use tidemark_testbed::mongo::tidemark_mongo::bson::{doc, Bson, Document};
use tidemark_testbed::mongo::tidemark_mongo::{Body, Compressor, MsgFlags, OpQuery};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn legacy_handshake_then_compressed_commands() {
    let set = start(Ipv4Addr::new(127, 0, 30, 1)).await;
    let addrs = set.addresses();
    let mut c = Client::connect(addrs[0]).await;
    let q = OpQuery {
        flags: 0,
        full_collection_name: "admin.$cmd".into(),
        number_to_skip: 0,
        number_to_return: -1,
        query: raw(
            &doc! { "isMaster": 1, "helloOk": true, "compression": ["zstd", "snappy", "zlib"] },
        ),
        return_fields_selector: None,
    };
    c.send(Body::Query(q), None).await;
    let reply = c.recv().await.expect("OP_REPLY");
    let Body::Reply(r) = &reply.body else {
        panic!("expected OP_REPLY");
    };
    let hello = Document::try_from(r.documents.get(0).expect("one doc").raw()).expect("doc");
    assert_eq!(hello.get_bool("ismaster").ok(), Some(true));
    assert_eq!(hello.get_str("setName").ok(), Some("rs0"));
    assert_eq!(hello.get_array("hosts").map(|h| h.len()).ok(), Some(3));
    assert_eq!(hello.get_str("me").ok(), hello.get_str("primary").ok());
    assert!(hello.get_i32("maxWireVersion").is_ok_and(|v| v >= 17));
    assert!(hello.get_object_id("electionId").is_ok());
    assert!(hello.get_document("topologyVersion").is_ok());
    assert!(hello
        .get_document("lastWrite")
        .is_ok_and(|l| l.contains_key("majorityOpTime")));
    assert_eq!(
        hello.get_array("compression").ok().cloned(),
        Some(vec![
            Bson::from("zstd"),
            Bson::from("snappy"),
            Bson::from("zlib")
        ])
    );

    for comp in [Compressor::Zstd, Compressor::Snappy, Compressor::Zlib] {
        let (m, d) = c
            .command(doc! { "ping": 1, "$db": "admin" }, 0, Some(comp))
            .await;
        assert_eq!(
            m.compressor,
            Some(comp),
            "reply uses the request's compressor"
        );
        assert_eq!(d.get_f64("ok").ok(), Some(1.0));
    }
    // a checksummed OP_MSG is verified and answered with a checksum
    let (m, d) = c
        .command(
            doc! { "insert": "c", "documents": [{ "_id": 1 }], "$db": "t" },
            MsgFlags::CHECKSUM_PRESENT,
            None,
        )
        .await;
    assert!(m.msg_flags().is_some_and(|f| f.checksum_present()));
    assert_eq!(d.get_i32("n").ok(), Some(1));
    let (_, d) = c
        .command(doc! { "bogusCommand": 1, "$db": "t" }, 0, None)
        .await;
    assert_eq!(d.get_i32("code").ok(), Some(59));
    set.stop();
}

#[tokio::test]
async fn secondary_refuses_writes_and_primary_reads() {
    let set = start(Ipv4Addr::new(127, 0, 31, 1)).await;
    let mut c = Client::connect(set.addresses()[1]).await;
    let (_, hello) = c
        .command(doc! { "hello": 1, "$db": "admin" }, 0, None)
        .await;
    assert_eq!(hello.get_bool("isWritablePrimary").ok(), Some(false));
    assert_eq!(hello.get_bool("secondary").ok(), Some(true));
    assert!(!hello.contains_key("electionId"));
    let (_, d) = c
        .command(
            doc! { "insert": "c", "documents": [{ "_id": 1 }], "$db": "t" },
            0,
            None,
        )
        .await;
    assert_eq!(d.get_i32("code").ok(), Some(10107));
    assert_eq!(d.get_str("codeName").ok(), Some("NotWritablePrimary"));
    let (_, d) = c.command(doc! { "find": "c", "$db": "t" }, 0, None).await;
    assert_eq!(d.get_i32("code").ok(), Some(13435));
    let (_, d) = c
        .command(
            doc! { "find": "c", "$db": "t", "$readPreference": { "mode": "secondary" } },
            0,
            None,
        )
        .await;
    assert_eq!(d.get_f64("ok").ok(), Some(1.0));
    set.stop();
}

#[tokio::test]
async fn garbage_closes_only_that_connection() {
    let set = start(Ipv4Addr::new(127, 0, 32, 1)).await;
    let addr = set.addresses()[0];
    let mut bad = Client::connect(addr).await;
    // a header claiming an OP_MSG with an impossible body
    let mut junk = Vec::new();
    junk.extend_from_slice(&26i32.to_le_bytes());
    junk.extend_from_slice(&1i32.to_le_bytes());
    junk.extend_from_slice(&0i32.to_le_bytes());
    junk.extend_from_slice(&2013i32.to_le_bytes());
    junk.extend_from_slice(&[0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff]);
    bad.sock.write_all(&junk).await.expect("write");
    assert!(bad.recv().await.is_none(), "connection closed");
    let mut good = Client::connect(addr).await;
    let (_, d) = good
        .command(doc! { "ping": 1, "$db": "admin" }, 0, None)
        .await;
    assert_eq!(d.get_f64("ok").ok(), Some(1.0));
    set.stop();
}

#[tokio::test]
async fn awaitable_hello_returns_within_the_bound() {
    let set = start(Ipv4Addr::new(127, 0, 33, 1)).await;
    let mut c = Client::connect(set.addresses()[2]).await;
    let (_, first) = c
        .command(doc! { "hello": 1, "$db": "admin" }, 0, None)
        .await;
    let tv = first.get_document("topologyVersion").expect("tv").clone();
    let (_, d) = c
        .command(
            doc! { "hello": 1, "$db": "admin", "topologyVersion": tv, "maxAwaitTimeMS": 60_000 },
            MsgFlags::EXHAUST_ALLOWED,
            None,
        )
        .await;
    assert_eq!(d.get_f64("ok").ok(), Some(1.0));
    set.stop();
}
