//! Credentials never reach the store or the logs (issue #5): `tidemark tap` of a
//! real CQL PasswordAuthenticator login and a real MongoDB SCRAM-SHA-256 login, with
//! `RUST_LOG=trace` so the logs say everything they can, and then every byte of
//! every file in the store directory, and everything `tap`, `log`, `status` and
//! `inspect` print, is searched for the secrets in every form they travel in.
//!
//! - CQL: the password (`captures/cql.md`: AUTH_RESPONSE carries SASL PLAIN
//!   `\0user\0password`), the PLAIN token, their base64 and hex.
//! - MongoDB: SCRAM never sends the password, so the secrets are the SASL
//!   exchange itself: every `payload` of `saslStart`, `saslContinue`,
//!   `speculativeAuthenticate` and their replies, taken from the capture with
//!   tidemark-mongo's decoder (the whole payload, and each attribute value of it:
//!   nonces, salt, client proof, server signature), plus the password anyway.
//!
//! A control run plants a secret in a copy of the store and checks the scanner
//! finds it, so a silent scanner means no leak rather than a broken scanner.

mod common;
mod tap_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tap_support::*;
use tidemark::capture::{Assembler, AssemblerConfig, Direction, FileSource, StreamEvent};
use tidemark::decode::mongo::tidemark_mongo::bson::{RawBsonRef, RawDocument};

const CQL_USER: &str = "tidemark_writer";
const CQL_PASSWORD: &str = "S3cret-Tide!42";
const MONGO_PASSWORD: &str = "Wire-Secret-7f3a9c";

fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
}

/// A secret and the name it is reported by.
struct Needle {
    what: String,
    bytes: Vec<u8>,
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `secret` as raw bytes, hex, and base64 at each of the three alignments it can
/// have inside a longer base64 string (the characters every alignment fixes).
fn forms(what: &str, secret: &[u8]) -> Vec<Needle> {
    let mut v = vec![
        Needle {
            what: what.to_string(),
            bytes: secret.to_vec(),
        },
        Needle {
            what: format!("{what} (hex)"),
            bytes: secret
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into_bytes(),
        },
    ];
    for shift in 0..3 {
        let mut shifted = vec![0u8; shift];
        shifted.extend_from_slice(secret);
        let enc = base64(&shifted);
        let start = if shift == 0 { 0 } else { 4 };
        let end = enc.len().saturating_sub(4);
        if end > start + 8 {
            v.push(Needle {
                what: format!("{what} (base64, offset {shift})"),
                bytes: enc.as_bytes()[start..end].to_vec(),
            });
        }
    }
    v
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Every needle found in `hay`, as "what in where".
fn leaks(hay: &[u8], place: &str, needles: &[Needle]) -> Vec<String> {
    needles
        .iter()
        .filter(|n| contains(hay, &n.bytes))
        .map(|n| format!("{} in {place}", n.what))
        .collect()
}

/// Every needle found in any file under `dir`.
fn leaks_in_dir(dir: &Path, needles: &[Needle]) -> Vec<String> {
    let mut found = Vec::new();
    let mut files = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("listing the store") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files += 1;
                let bytes = std::fs::read(&path).expect("reading a store file");
                found.extend(leaks(&bytes, &path.display().to_string(), needles));
            }
        }
    }
    assert!(files >= 2, "{}: no store files to scan", dir.display());
    found
}

/// Runs `tidemark ARGS` with `RUST_LOG=trace`; returns stdout and stderr.
fn traced(args: &[&str]) -> Vec<(String, Vec<u8>)> {
    let out = tidemark()
        .env("RUST_LOG", "trace")
        .args(args)
        .output()
        .expect("the tidemark binary runs");
    assert!(
        out.status.success(),
        "tidemark {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    vec![
        (format!("stdout of {args:?}"), out.stdout),
        (format!("stderr of {args:?}"), out.stderr),
    ]
}

/// Taps `pcap` into a fresh store and collects what every command prints about it.
fn tap_and_print(pcap: &Path, store: &Path) -> Vec<(String, Vec<u8>)> {
    let (p, st) = (s(pcap), s(store));
    let mut printed = traced(&["tap", "--pcap", p, "--store", st, "--json"]);
    let report: serde_json::Value =
        serde_json::from_slice(&printed[0].1).expect("tap --json prints its report");
    // The writes after the login are in the store, logged or still undecided.
    let stored =
        report["appended"].as_u64().unwrap_or(0) + report["undecided"].as_u64().unwrap_or(0);
    assert!(
        stored > 0,
        "{}: the login's writes were not stored: {report}",
        pcap.display()
    );
    for args in [
        &["log", "--store", st, "--json"][..],
        &["log", "--store", st][..],
        &["status", "--store", st, "--json"][..],
        &["status", "--store", st][..],
        &["inspect", p, "--json"][..],
        &["inspect", p][..],
    ] {
        printed.extend(traced(args));
    }
    printed
}

fn assert_no_leaks(store: &Path, printed: &[(String, Vec<u8>)], needles: &[Needle]) {
    let mut found = leaks_in_dir(store, needles);
    for (place, bytes) in printed {
        found.extend(leaks(bytes, place, needles));
    }
    assert!(found.is_empty(), "credentials leaked: {found:#?}");
}

/// The control: the scanner finds a secret planted in a copy of the store, and in
/// printed output.
fn assert_scanner_finds_a_plant(store: &Path, copy: &Path, secret: &Needle, needles: &[Needle]) {
    std::fs::create_dir(copy).unwrap();
    for entry in std::fs::read_dir(store).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
    }
    assert!(leaks_in_dir(copy, needles).is_empty());
    let mut data = std::fs::read(copy.join(tidemark::store::DATA_FILE)).unwrap();
    let at = data.len() / 2;
    data.splice(at..at, secret.bytes.iter().copied());
    std::fs::write(copy.join(tidemark::store::DATA_FILE), data).unwrap();
    let found = leaks_in_dir(copy, needles);
    assert!(
        found.iter().any(|f| f.starts_with(&secret.what)),
        "the scanner missed {} planted in data.mdb: {found:?}",
        secret.what
    );
    let line = [b"{\"note\":\"".as_slice(), &secret.bytes, b"\"}"].concat();
    assert!(!leaks(&line, "a planted line", needles).is_empty());
}

#[test]
fn cql_password_authenticator_login_leaves_no_password_anywhere() {
    let pcap = capture("cql_v4_auth.pcap");
    let token = format!("\0{CQL_USER}\0{CQL_PASSWORD}");
    let raw = std::fs::read(&pcap).unwrap();
    assert!(
        contains(&raw, token.as_bytes()),
        "the capture no longer carries the PLAIN token: the test would prove nothing"
    );
    let mut needles = forms("password", CQL_PASSWORD.as_bytes());
    needles.extend(forms("SASL PLAIN token", token.as_bytes()));

    let dir = tempdir();
    let store = dir.path().join("store");
    let printed = tap_and_print(&pcap, &store);
    assert_no_leaks(&store, &printed, &needles);
    // The password itself, and the token's base64 as AUTH_RESPONSE bytes would
    // show in a JSON rendering of them.
    let token_base64 = needles
        .iter()
        .position(|n| n.what == "SASL PLAIN token (base64, offset 0)")
        .expect("the token's base64 is a needle");
    for planted in [0, token_base64] {
        let copy = dir.path().join(format!("copy{planted}"));
        assert_scanner_finds_a_plant(&store, &copy, &needles[planted], &needles);
    }
}

/// The `payload` of every SASL message (saslStart, saslContinue,
/// speculativeAuthenticate, and the server's replies) in a MongoDB capture.
fn sasl_payloads(pcap: &Path) -> Vec<Vec<u8>> {
    let mut src = FileSource::open(&[pcap.to_path_buf()]).expect("the capture opens");
    let mut tap = Assembler::new(AssemblerConfig::default());
    let mut events = Vec::new();
    while let Some(p) = src.next_packet() {
        tap.packet(&p, &mut events);
    }
    tap.finish(&mut events);
    let mut streams: BTreeMap<(u64, bool), Vec<u8>> = BTreeMap::new();
    for ev in events {
        if let StreamEvent::Data {
            flow, dir, bytes, ..
        } = ev
        {
            streams
                .entry((flow.0, dir == Direction::ClientToServer))
                .or_default()
                .extend_from_slice(&bytes);
        }
    }
    let mut payloads = Vec::new();
    for stream in streams.values() {
        let mut rest = &stream[..];
        while rest.len() >= 16 {
            let len = i32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
            assert!((16..=rest.len()).contains(&len), "a whole message");
            for doc in documents(&rest[..len]) {
                collect_payloads(doc, &mut payloads);
            }
            rest = &rest[len..];
        }
    }
    payloads
}

/// The BSON documents of one wire message, read straight from its bytes (not
/// with tidemark-mongo, whose decoder scrubs SASL payloads): OP_MSG kind-0
/// sections, the OP_QUERY query, OP_REPLY documents. SASL is never compressed.
fn documents(msg: &[u8]) -> Vec<&RawDocument> {
    let opcode = i32::from_le_bytes(msg[12..16].try_into().unwrap());
    let doc_at = |at: usize| -> Option<(&RawDocument, usize)> {
        let len = i32::from_le_bytes(msg.get(at..at + 4)?.try_into().ok()?) as usize;
        let d = RawDocument::from_bytes(msg.get(at..at + len)?).ok()?;
        Some((d, at + len))
    };
    let mut out = Vec::new();
    match opcode {
        2013 => {
            let mut at = 20;
            while at < msg.len() {
                let kind = msg[at];
                at += 1;
                if kind == 0 {
                    let Some((d, next)) = doc_at(at) else { break };
                    out.push(d);
                    at = next;
                } else {
                    at += i32::from_le_bytes(msg[at..at + 4].try_into().unwrap()) as usize;
                }
            }
        }
        2004 => {
            let name_end = 20 + msg[20..].iter().position(|&b| b == 0).unwrap();
            out.extend(doc_at(name_end + 9).map(|(d, _)| d));
        }
        1 => {
            let mut at = 36;
            while let Some((d, next)) = doc_at(at) {
                out.push(d);
                at = next;
            }
        }
        _ => {}
    }
    out
}

/// The `payload` of `doc` when it is a SASL message (a command naming a
/// `mechanism`, or one of a `conversationId`), and of the documents inside it.
fn collect_payloads(doc: &RawDocument, out: &mut Vec<Vec<u8>>) {
    let sasl = ["mechanism", "conversationId"]
        .iter()
        .any(|k| doc.get(k).ok().flatten().is_some());
    for el in doc.iter().map_while(Result::ok) {
        match el {
            (k, RawBsonRef::Binary(b)) if sasl && k.as_str() == "payload" => {
                out.push(b.bytes.to_vec())
            }
            (_, RawBsonRef::Document(d)) => collect_payloads(d, out),
            _ => {}
        }
    }
}

#[test]
fn mongo_scram_login_leaves_no_sasl_payload_anywhere() {
    let pcap = capture("mongo_scram.pcap");
    let payloads = sasl_payloads(&pcap);
    // client-first, server-first (salt), client-final (proof), server-final.
    let texts: Vec<String> = payloads
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    for (step, mark) in [
        ("client-first", "n,,n="),
        ("server-first", ",s="),
        ("client-final", ",p="),
        ("server-final", "v="),
    ] {
        assert!(
            texts.iter().any(|t| t.contains(mark)),
            "no {step} message among {texts:?}"
        );
    }
    let mut needles = forms("password", MONGO_PASSWORD.as_bytes());
    for (i, p) in payloads.iter().enumerate() {
        let text = String::from_utf8_lossy(p).into_owned();
        assert!(
            text.contains("r=") || text.starts_with("v="),
            "payload {i} is not a SCRAM message: {text:?}"
        );
        needles.extend(forms(&format!("SASL payload {i}"), p));
        // Each attribute on its own: a leak of just the proof or a nonce counts.
        for attr in text.split(',') {
            if let Some((k, v)) = attr.split_once('=') {
                if v.len() >= 12 {
                    needles.extend(forms(
                        &format!("SASL payload {i} attribute {k}"),
                        v.as_bytes(),
                    ));
                }
            }
        }
    }

    let dir = tempdir();
    let store = dir.path().join("store");
    let printed = tap_and_print(&pcap, &store);
    assert_no_leaks(&store, &printed, &needles);
    let proof = needles
        .iter()
        .find(|n| n.what.ends_with("attribute p"))
        .expect("the client proof is among the needles");
    assert_scanner_finds_a_plant(&store, &dir.path().join("copy"), proof, &needles);
}
