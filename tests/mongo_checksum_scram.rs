//! Issue #19: OP_MSG messages that carry a checksum *and* SCRAM payloads.
//!
//! The decoder scrubs SASL payloads out of its copy of a message so credentials never
//! reach any output. It used to verify the OP_MSG checksum on the scrubbed copy, so
//! every checksummed `saslStart`/`saslContinue` and its reply was reported as a
//! checksum mismatch and dropped. Here a real SCRAM-SHA-256 conversation — the
//! testbed's server checks the client proof and signs its answer, so the exchange is
//! genuine — is sent with `checksumPresent` on every OP_MSG (as some drivers and
//! mongod's own internal clients do), recorded byte for byte as it crossed the socket,
//! and run through `tidemark inspect --json` and `tidemark tap`:
//! - every message decodes (no `error` line), the SASL ones marked `redacted`;
//! - the write after the login is decided `committed`;
//! - the password, every SASL payload (raw and base64) and each SCRAM attribute are
//!   in no output line and no store file;
//! - a message whose checksum really is wrong is still reported and dropped.

mod commit_support;
mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tidemark_testbed::mongo::scram::ScramUser;
use tidemark_testbed::mongo::tidemark_mongo::bson::{doc, spec::BinarySubtype, Binary, Bson};
use tidemark_testbed::mongo::tidemark_mongo::bson::{Document, RawDocumentBuf};
use tidemark_testbed::mongo::tidemark_mongo::{
    encode_message, Body, Decoder, Doc, Limits, Message, MsgFlags, OpMsg,
};
use tidemark_testbed::{MongoReplicaSet, ReplSetConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use commit_support::Scenario;

const WAIT: Duration = Duration::from_secs(60);
const USER: &str = "tidemark";
const PASSWORD: &str = "Checksum-Secret-9d2e41";
const CLIENT_NONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";

/// A client that sends every OP_MSG with a CRC-32C checksum and keeps the exact
/// bytes each way, in order, so they can be replayed as a capture.
struct ChecksumClient {
    sock: TcpStream,
    dec: Decoder,
    next_id: i32,
    /// (client to server?, bytes) as they crossed the socket.
    wire: Vec<(bool, Vec<u8>)>,
}

impl ChecksumClient {
    async fn connect(addr: SocketAddr) -> ChecksumClient {
        let sock = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        ChecksumClient {
            sock,
            dec: Decoder::new(Limits::default()),
            next_id: 0,
            wire: Vec::new(),
        }
    }

    /// Sends `cmd` checksummed; returns the reply and whether it carried a checksum.
    async fn command(&mut self, cmd: Document) -> (Document, bool) {
        self.next_id += 1;
        let mut body = OpMsg::new(Doc::from(RawDocumentBuf::try_from(&cmd).unwrap()));
        body.flags = MsgFlags(MsgFlags::CHECKSUM_PRESENT);
        let bytes = encode_message(&Message::new(self.next_id, 0, Body::Msg(body))).unwrap();
        self.sock.write_all(&bytes).await.unwrap();
        self.wire.push((true, bytes));
        let mut buf = vec![0u8; 1 << 16];
        let reply = loop {
            if let Some(r) = self.dec.next().expect("reply decodes") {
                break r;
            }
            let n = tokio::time::timeout(WAIT, self.sock.read(&mut buf))
                .await
                .expect("reply in time")
                .expect("read");
            assert!(n > 0, "server closed");
            self.dec.feed(&buf[..n]);
            self.wire.push((false, buf[..n].to_vec()));
        };
        assert_eq!(reply.response_to, self.next_id);
        let checksummed = reply.msg_flags().is_some_and(|f| f.checksum_present());
        // The decoder scrubs SASL payloads, so the client reads the reply's body
        // from the bytes it received (the one reply sits at `offset`).
        let received: Vec<u8> = self
            .wire
            .iter()
            .filter(|(c2s, _)| !c2s)
            .flat_map(|(_, b)| b.iter().copied())
            .collect();
        let start = reply.offset as usize;
        let raw = &received[start..start + reply.wire_length as usize];
        (op_msg_body(raw), checksummed)
    }
}

/// The kind-0 section of a raw OP_MSG whose body is its first section (as the
/// testbed's replies are): header (16 bytes), flagBits (4), kind byte, document.
fn op_msg_body(raw: &[u8]) -> Document {
    assert_eq!(
        i32::from_le_bytes(raw[12..16].try_into().unwrap()),
        2013,
        "an OP_MSG"
    );
    assert_eq!(raw[20], 0, "the body comes first");
    let len = i32::from_le_bytes(raw[21..25].try_into().unwrap()) as usize;
    let doc = RawDocumentBuf::from_bytes(raw[21..21 + len].to_vec()).unwrap();
    Document::try_from(doc.as_ref()).unwrap()
}

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// The client side of SCRAM-SHA-256 (RFC 5802 / RFC 7677), written for this test:
/// the client-final message and the server signature it must receive.
fn client_final(server_first: &str) -> (String, String) {
    let attr = |k: char| {
        server_first
            .split(',')
            .find_map(|a| a.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("server-first {server_first:?} has no {k}="))
    };
    let salt = B64.decode(attr('s')).unwrap();
    let iterations: u32 = attr('i').parse().unwrap();
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(PASSWORD.as_bytes(), &salt, iterations, &mut salted);
    let client_key = hmac256(&salted, b"Client Key");
    let stored_key = Sha256::digest(&client_key);
    let without_proof = format!("c=biws,r={}", attr('r'));
    let auth_message = format!("n={USER},r={CLIENT_NONCE},{server_first},{without_proof}");
    let signature = hmac256(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let server_signature = hmac256(&hmac256(&salted, b"Server Key"), auth_message.as_bytes());
    (
        format!("{without_proof},p={}", B64.encode(proof)),
        format!("v={}", B64.encode(server_signature)),
    )
}

fn binary(text: &str) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: text.as_bytes().to_vec(),
    })
}

fn payload_text(reply: &Document) -> String {
    match reply.get("payload") {
        Some(Bson::Binary(b)) => String::from_utf8(b.bytes.clone()).unwrap(),
        other => panic!("reply without a binary payload: {other:?} in {reply}"),
    }
}

/// What a login and one write left on the wire, plus every secret it carried.
struct Session {
    wire: Vec<(bool, Vec<u8>)>,
    secrets: Vec<(String, Vec<u8>)>,
}

/// Logs in with SCRAM-SHA-256 (every OP_MSG checksummed), inserts one document at
/// `w:"majority"` and reads it back, against a one-member testbed set.
async fn checksummed_session(base: Ipv4Addr) -> Session {
    let set = MongoReplicaSet::start(ReplSetConfig {
        members: 1,
        base_addr: base,
        port: 0,
        compressors: Vec::new(),
        max_await: Duration::from_millis(500),
        scram_user: Some(ScramUser::new(USER, PASSWORD)),
        ..ReplSetConfig::default()
    })
    .await
    .expect("testbed set starts");
    let addr = set.addresses()[0];
    let mut c = ChecksumClient::connect(addr).await;

    let (hello, ck) = c.command(doc! { "hello": 1, "$db": "admin" }).await;
    assert!(
        ck,
        "the server answers a checksummed request with a checksum"
    );
    assert_eq!(hello.get_f64("ok").ok(), Some(1.0), "{hello}");

    let client_first = format!("n,,n={USER},r={CLIENT_NONCE}");
    let (first, ck) = c
        .command(doc! {
            "saslStart": 1, "mechanism": "SCRAM-SHA-256",
            "payload": binary(&client_first),
            "options": { "skipEmptyExchange": true }, "$db": "admin",
        })
        .await;
    assert!(ck);
    let server_first = payload_text(&first);
    let conversation = first
        .get("conversationId")
        .cloned()
        .expect("conversationId");
    let (client_final, expected_signature) = client_final(&server_first);
    let (last, ck) = c
        .command(doc! {
            "saslContinue": 1, "conversationId": conversation,
            "payload": binary(&client_final), "$db": "admin",
        })
        .await;
    assert!(ck);
    assert_eq!(
        last.get_bool("done").ok(),
        Some(true),
        "the server accepted the proof: {last}"
    );
    let server_final = payload_text(&last);
    assert_eq!(server_final, expected_signature, "the server proved itself");

    let (ins, _) = c
        .command(doc! {
            "insert": "c", "documents": [ { "_id": 1, "who": "checksummed" } ],
            "writeConcern": { "w": "majority" }, "$db": "shop",
        })
        .await;
    assert_eq!(ins.get_i32("n").ok(), Some(1), "insert after login: {ins}");
    let (found, _) = c
        .command(doc! { "find": "c", "filter": { "_id": 1 }, "$db": "shop" })
        .await;
    let batch = found
        .get_document("cursor")
        .and_then(|cur| cur.get_array("firstBatch"))
        .expect("firstBatch");
    assert_eq!(batch.len(), 1, "the document is there: {found}");
    drop(c.sock);
    set.stop();

    let mut secrets = vec![("password".to_owned(), PASSWORD.as_bytes().to_vec())];
    for (step, text) in [
        ("client-first", &client_first),
        ("server-first", &server_first),
        ("client-final", &client_final),
        ("server-final", &server_final),
    ] {
        secrets.push((step.to_owned(), text.as_bytes().to_vec()));
        secrets.push((format!("{step} base64"), B64.encode(text).into_bytes()));
        for attr in text.split(',') {
            if let Some((k, v)) = attr.split_once('=') {
                if v.len() >= 12 {
                    secrets.push((format!("{step} attribute {k}"), v.as_bytes().to_vec()));
                }
            }
        }
    }
    Session {
        wire: c.wire,
        secrets,
    }
}

/// Replays the recorded bytes as one TCP flow in a pcap file.
fn write_capture(wire: &[(bool, Vec<u8>)], server: SocketAddr, dir: &Path) -> std::path::PathBuf {
    let mut s = Scenario::new();
    let f = s.flow("127.0.0.9:50123", &server.to_string(), 0);
    for (i, (c2s, bytes)) in wire.iter().enumerate() {
        let ms = 1 + i as u64;
        if *c2s {
            s.send(f, ms, bytes);
        } else {
            s.answer(f, ms, bytes);
        }
    }
    s.close(f, 1 + wire.len() as u64);
    s.write(dir)
}

fn tidemark(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .output()
        .expect("run tidemark");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn assert_no_secret(what: &str, hay: &[u8], secrets: &[(String, Vec<u8>)]) {
    for (name, s) in secrets {
        assert!(!contains(hay, s), "{name} found in {what}");
    }
}

fn run(base: Ipv4Addr) -> (Session, tempfile::TempDir, std::path::PathBuf) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let session = rt.block_on(checksummed_session(base));
    let dir = tempfile::tempdir().unwrap();
    let server = SocketAddr::from((base, 27017));
    let pcap = write_capture(&session.wire, server, dir.path());
    (session, dir, pcap)
}

#[test]
fn checksummed_scram_conversation_decodes_scrubbed_and_leaks_nothing() {
    let (session, dir, pcap) = run(Ipv4Addr::new(127, 0, 79, 1));
    let pcap_bytes = std::fs::read(&pcap).unwrap();
    // The control: the secrets really are in the capture, so finding none in the
    // outputs below means they were scrubbed, not that the search is blind.
    for (name, s) in session
        .secrets
        .iter()
        .filter(|(n, _)| !n.contains("base64"))
    {
        if name != "password" {
            assert!(contains(&pcap_bytes, s), "{name} is not in the capture");
        }
    }

    let (code, out, err) = tidemark(
        &["inspect", "--json", "--mongo-port", "27017"]
            .into_iter()
            .chain([pcap.to_str().unwrap()])
            .collect::<Vec<_>>(),
    );
    assert_eq!(code, 0, "inspect: {err}");
    let recs = lines(&out);
    let errors: Vec<&Value> = recs.iter().filter(|r| r["type"] == "error").collect();
    assert!(errors.is_empty(), "no message is dropped: {errors:?}");
    let messages: Vec<&Value> = recs.iter().filter(|r| r["type"] == "message").collect();
    // hello, saslStart, saslContinue, insert, find: each request and its reply.
    assert_eq!(messages.len(), 10, "{messages:?}");
    let sasl: Vec<&&Value> = messages
        .iter()
        .filter(|m| m["detail"]["redacted"] == true)
        .collect();
    assert_eq!(
        sasl.len(),
        4,
        "saslStart, saslContinue and both replies are decoded and scrubbed: {messages:?}"
    );
    let writes: Vec<&Value> = recs.iter().filter(|r| r["type"] == "write").collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0]["namespace"], "shop.c");
    assert_eq!(writes[0]["outcome"], "committed", "{:?}", writes[0]);
    assert_no_secret("inspect output", out.as_bytes(), &session.secrets);
    assert_no_secret("inspect stderr", err.as_bytes(), &session.secrets);

    let store = dir.path().join("store");
    let store_arg = store.to_str().unwrap();
    let (code, tap_out, tap_err) = tidemark(&[
        "tap",
        "--pcap",
        pcap.to_str().unwrap(),
        "--store",
        store_arg,
    ]);
    assert_eq!(code, 0, "tap: {tap_err}");
    let (code, log, _) = tidemark(&["log", "--store", store_arg, "--json"]);
    assert_eq!(code, 0);
    let logged = lines(&log);
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0]["outcome"], "committed");
    for (what, text) in [
        ("tap output", &tap_out),
        ("tap stderr", &tap_err),
        ("log", &log),
    ] {
        assert_no_secret(what, text.as_bytes(), &session.secrets);
    }
    for entry in std::fs::read_dir(&store).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert_no_secret(&path.display().to_string(), &bytes, &session.secrets);
    }
}

#[test]
fn a_really_wrong_checksum_is_still_reported_and_dropped() {
    let (mut session, dir, _) = run(Ipv4Addr::new(127, 0, 79, 17));
    // Flip one bit of the saslContinue request's checksum (its last byte).
    let continue_at = session
        .wire
        .iter()
        .position(|(c2s, b)| *c2s && contains(b, b"saslContinue"))
        .expect("the saslContinue request");
    let last = session.wire[continue_at].1.len() - 1;
    session.wire[continue_at].1[last] ^= 0x01;
    let server = SocketAddr::from((Ipv4Addr::new(127, 0, 79, 17), 27017));
    let pcap = write_capture(&session.wire, server, dir.path());

    let (code, out, err) = tidemark(&["inspect", "--json", pcap.to_str().unwrap()]);
    assert_eq!(
        code, 0,
        "a bad message is reported, the input was read: {err}"
    );
    let recs = lines(&out);
    let errors: Vec<&Value> = recs.iter().filter(|r| r["type"] == "error").collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let text = errors[0]["message"].as_str().unwrap();
    assert!(text.contains("checksum mismatch"), "{text}");
    let redacted = recs
        .iter()
        .filter(|r| r["type"] == "message" && r["detail"]["redacted"] == true)
        .count();
    assert_eq!(redacted, 3, "only the corrupt request is dropped");
    assert_no_secret("inspect output", out.as_bytes(), &session.secrets);
}
