//! `tidemark inspect` on the project's own real-driver (pymongo, Rust `mongodb`) captures (`captures/mongo_*`,
//! see captures/mongo.md) against their ground truth, made by the responder from what
//! it parsed and answered, never by decoding the pcap:
//! - messages by opcode per direction, and the inner opcodes of OP_COMPRESSED;
//! - every `write`, field by field: namespace, op, key, values, write_concern,
//!   outcome and reason, the session fields, matched by request id and position;
//! - the SCRAM capture: neither the password nor any SCRAM payload reaches output.
//!
//! Reasons: the truth words them for people ("acknowledged w:1"); tidemark starts
//! each with a stable token ("awaiting_majority: acknowledged w:1"). [`reason_class`]
//! maps both to the token and the server's text, and those must be equal.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

mod inspect_support;
use inspect_support::{inspect_lines, json_options};

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")
}

/// Every record of `inspect --json` on `file`, and the printed text.
fn run(file: &Path) -> (Vec<Value>, String) {
    let lines = inspect_lines(&json_options(file));
    let recs = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("inspect prints JSON"))
        .collect();
    (recs, lines.join("\n") + "\n")
}

fn truth(name: &str) -> Value {
    let p = captures().join(format!("{name}.truth.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn of_type<'a>(recs: &'a [Value], t: &str) -> Vec<&'a Value> {
    recs.iter().filter(|r| r["type"] == t).collect()
}

/// `(class, detail)`: the same for a truth reason and the tidemark reason it means.
fn reason_class(r: &Value) -> (String, String) {
    let Some(r) = r.as_str() else {
        return (String::new(), String::new());
    };
    let rest = |p: &str| {
        r.strip_prefix(p)
            .unwrap_or("")
            .trim_start_matches(':')
            .trim()
            .to_owned()
    };
    let pairs = [
        (
            "acknowledged with the default write concern",
            "awaiting_majority",
            "default",
        ),
        (
            "awaiting_majority: acknowledged with the default write concern",
            "awaiting_majority",
            "default",
        ),
    ];
    for (p, class, detail) in pairs {
        if r == p {
            return (class.into(), detail.into());
        }
    }
    if let Some(w) = r.strip_prefix("acknowledged w:") {
        return ("awaiting_majority".into(), w.into());
    }
    if let Some(w) = r.strip_prefix("awaiting_majority: acknowledged w:") {
        return ("awaiting_majority".into(), w.into());
    }
    for (truth, ours, class) in [
        (
            "writeConcernError",
            "write_concern_error",
            "write_concern_error",
        ),
        ("writeError", "write_error", "write_error"),
        ("not executed", "not_executed", "not_executed"),
        (
            "transaction committed",
            "transaction_committed",
            "transaction_committed",
        ),
        (
            "transaction aborted",
            "transaction_aborted",
            "transaction_aborted",
        ),
        ("unacknowledged", "unacknowledged", "unacknowledged"),
        ("no_response", "no_response", "no_response"),
    ] {
        if r.starts_with(truth) || r.starts_with(ours) {
            // The server's words are compared for errors; our own explanations are not.
            let detail = match class {
                "write_error" | "write_concern_error" => {
                    if r.starts_with(truth) {
                        rest(truth)
                    } else {
                        rest(ours)
                    }
                }
                _ => String::new(),
            };
            return (class.into(), detail);
        }
    }
    panic!("unclassified reason {r:?}");
}

fn check_counts(name: &str, recs: &[Value], t: &Value) {
    let msgs = of_type(recs, "message");
    let mut outer: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut inner: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for m in &msgs {
        let dir = m["dir"].as_str().unwrap().to_owned();
        let op = m["opcode"].as_str().unwrap().to_owned();
        if m.get("compressor").is_some() {
            *outer
                .entry(dir.clone())
                .or_default()
                .entry("OP_COMPRESSED".into())
                .or_default() += 1;
            *inner.entry(dir).or_default().entry(op).or_default() += 1;
        } else {
            *outer.entry(dir).or_default().entry(op).or_default() += 1;
        }
    }
    let want: BTreeMap<String, BTreeMap<String, u64>> =
        serde_json::from_value(t["messages_by_opcode"].clone()).unwrap();
    assert_eq!(outer, want, "{name}: messages by opcode");
    let want_inner: BTreeMap<String, BTreeMap<String, u64>> =
        serde_json::from_value(t["compressed_inner_by_opcode"].clone()).unwrap();
    let want_inner: BTreeMap<_, _> = want_inner
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    assert_eq!(inner, want_inner, "{name}: inner opcodes of OP_COMPRESSED");
    // The truth's compressor is the one every OP_COMPRESSED names.
    if let Some(c) = t["compressor"].as_str() {
        assert!(msgs
            .iter()
            .filter(|m| m.get("compressor").is_some())
            .all(|m| m["compressor"] == c));
    }
    assert!(
        of_type(recs, "error").is_empty(),
        "{name}: {:?}",
        of_type(recs, "error")
    );
}

fn check_writes(name: &str, recs: &[Value], t: &Value) {
    let ours = of_type(recs, "write");
    let theirs = t["writes"].as_array().unwrap();
    assert_eq!(ours.len(), theirs.len(), "{name}: number of writes");
    let mut by_req: HashMap<i64, Vec<&Value>> = HashMap::new();
    for w in &ours {
        by_req
            .entry(w["request"].as_i64().unwrap())
            .or_default()
            .push(w);
    }
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for tw in theirs {
        let rid = tw["request_id"].as_i64().unwrap();
        let i = seen.entry(rid).or_insert(0);
        let w = by_req
            .get(&rid)
            .and_then(|v| v.get(*i))
            .unwrap_or_else(|| panic!("{name}: no write {i} of request {rid}: {tw}"));
        *i += 1;
        let ctx = format!("{name}: request {rid} statement {}", *i - 1);
        for f in ["namespace", "op", "key", "values", "write_concern"] {
            assert_eq!(w[f], tw[f], "{ctx}: {f}");
        }
        assert_eq!(
            w["outcome"], tw["outcome_as_responded"],
            "{ctx}: outcome ({} / {})",
            w["reason"], tw["reason"]
        );
        assert_eq!(
            reason_class(&w["reason"]),
            reason_class(&tw["reason"]),
            "{ctx}: reason"
        );
        let session = w.get("session").cloned().unwrap_or(json!({}));
        assert_eq!(
            session.get("lsid").is_some(),
            tw["lsid"] == true,
            "{ctx}: lsid"
        );
        for f in ["txnNumber", "autocommit", "startTransaction"] {
            if tw.get(f).is_some() {
                assert_eq!(session.get(f).unwrap_or(&Value::Null), &tw[f], "{ctx}: {f}");
            }
        }
        if let Some(n) = tw.get("statements") {
            assert_eq!(&w["statements"], n, "{ctx}: statements");
        }
    }
}

fn check(name: &str) -> (Vec<Value>, String) {
    let (recs, text) = run(&captures().join(format!("{name}.pcap")));
    let t = truth(name);
    check_counts(name, &recs, &t);
    check_writes(name, &recs, &t);
    (recs, text)
}

#[test]
fn opmsg_matches_truth() {
    check("mongo_opmsg");
}

#[test]
fn zlib_matches_truth() {
    check("mongo_zlib");
}

#[test]
fn zstd_matches_truth() {
    check("mongo_zstd");
}

#[test]
fn snappy_matches_truth() {
    check("mongo_snappy");
}

/// The real Rust `mongodb` crate (captures/tools/rust-driver), no compression.
#[test]
fn rust_driver_matches_truth() {
    check("mongo_rust");
}

/// The real Rust `mongodb` crate offering zlib,zstd,snappy; the responder accepts zlib.
#[test]
fn rust_driver_zlib_matches_truth() {
    check("mongo_rust_zlib");
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            out.push(if i <= c.len() {
                T[(n >> shift) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    out
}

/// Every BSON `payload` binary in the capture's bytes (SASL conversation steps).
fn scram_payloads(pcap: &[u8]) -> Vec<Vec<u8>> {
    let key = b"\x05payload\x00";
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(p) = pcap[at..].windows(key.len()).position(|w| w == key) {
        let start = at + p + key.len();
        let len = i32::from_le_bytes(pcap[start..start + 4].try_into().unwrap()) as usize;
        out.push(pcap[start + 5..start + 5 + len].to_vec());
        at = start;
    }
    out
}

#[test]
fn scram_matches_truth_and_leaks_no_secret() {
    let (recs, text) = check("mongo_scram");
    let t = truth("mongo_scram");
    let password = t["server"]["scram_password"].as_str().unwrap();
    assert!(!text.contains(password), "password in output");
    let pcap = std::fs::read(captures().join("mongo_scram.pcap")).unwrap();
    let payloads = scram_payloads(&pcap);
    assert!(
        payloads.len() >= 4,
        "client-first, server-first, client-final, server-final: {}",
        payloads.len()
    );
    for p in &payloads {
        assert!(
            !text.contains(&base64(p)),
            "SCRAM payload (base64) in output"
        );
        let s = String::from_utf8_lossy(p);
        // Each attribute of the SCRAM message (nonce r=, salt s=, proof p=, signature v=).
        let secret =
            |a: &&str| ["r=", "s=", "p=", "v="].iter().any(|k| a.starts_with(k)) && a.len() > 8;
        for attr in s.split(',').filter(secret) {
            assert!(!text.contains(attr), "SCRAM attribute {attr:?} in output");
            let value = attr.split_once('=').map_or(attr, |(_, v)| v);
            assert!(!text.contains(value), "SCRAM value {value:?} in output");
        }
    }
    let redacted = of_type(&recs, "message")
        .into_iter()
        .filter(|m| m["detail"]["redacted"] == true)
        .count();
    assert!(
        redacted >= 4,
        "speculative saslStart, its reply, saslContinue and its reply"
    );
}

/// The Rust `mongodb` crate with zstd, whose frames carry no content size (the
/// OP_COMPRESSED header's uncompressed size is the only bound).
#[test]
fn rust_driver_zstd_matches_truth() {
    check("mongo_rust_zstd");
}
