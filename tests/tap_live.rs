//! `tidemark tap --interface lo`: a live capture of CQL writes on loopback, ended by
//! SIGTERM, leaves every write it decided in the store (flushed on the signal), the
//! tidemark keeps moving while the interface is quiet, and `log`/`status` read it.
//! Needs live-capture rights (through `require`).

mod require;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tidemark_cql::frame::{encode_message, Compression};
use tidemark_cql::message::{Query, QueryParameters, ResultBody};
use tidemark_cql::wire::Consistency;
use tidemark_cql::Message;

/// A CQL-speaking server on an ephemeral loopback port: answers every frame with
/// RESULT Void on the same stream.
fn void_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in listener.incoming().flatten() {
            std::thread::spawn(move || loop {
                let mut head = [0u8; 9];
                if c.read_exact(&mut head).is_err() {
                    return;
                }
                let len = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) as usize;
                let mut body = vec![0u8; len.min(1 << 20)];
                if c.read_exact(&mut body).is_err() {
                    return;
                }
                let stream = i16::from_be_bytes([head[2], head[3]]);
                let reply = encode_message(
                    4,
                    stream,
                    Message::Result(ResultBody::Void),
                    Compression::None,
                );
                if c.write_all(&reply).is_err() {
                    return;
                }
            });
        }
    });
    port
}

/// Sends `UPDATE ks.live SET v = i WHERE k = i` for i = 0.. on one connection,
/// each with a client timestamp, for `ms` milliseconds; returns how many were
/// answered.
fn write_for(port: u16, ms: u64) -> usize {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let deadline = Instant::now() + Duration::from_millis(ms);
    let mut i = 0usize;
    while Instant::now() < deadline {
        let q = Message::Query(Query {
            query: format!("UPDATE ks.live SET v = {i} WHERE k = {i}").into(),
            params: QueryParameters {
                consistency: Consistency::Quorum,
                timestamp: Some(1_795_478_400_000_000 + i as i64),
                ..QueryParameters::default()
            },
        });
        s.write_all(&encode_message(4, (i % 1000) as i16, q, Compression::None))
            .unwrap();
        let mut head = [0u8; 9];
        s.read_exact(&mut head).unwrap();
        i += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    i
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn live_tap_flushes_decided_writes_on_sigterm() {
    if !require::live_capture() {
        return;
    }
    let port = void_server();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store_s = store.to_str().unwrap();
    let port_s = port.to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "tap",
            "--interface",
            "lo",
            "--cql-port",
            &port_s,
            "--store",
            store_s,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let the capture start (it opens before the store; bounded wait for the store).
    let start = Instant::now();
    while !store.join("data.mdb").exists() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let sent = write_for(port, 1500);
    // A quiet interface afterwards: the tidemark must still move on with the clock.
    std::thread::sleep(Duration::from_millis(3000));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tap failed: {err}");

    let log = run(&["log", "--store", store_s, "--json"]);
    assert!(
        log.status.success(),
        "{}",
        String::from_utf8_lossy(&log.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&log.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(sent > 10, "only {sent} writes sent");
    // Every write the capture saw whole is committed, each once, in order.
    let keys: Vec<i64> = lines
        .iter()
        .inspect(|l| {
            assert_eq!(l["type"], "mutation");
            assert_eq!(l["outcome"], "committed");
            assert_eq!(l["namespace"], "ks.live");
        })
        .map(|l| l["key"]["k"].as_i64().unwrap())
        .collect();
    assert!(
        keys.len() + 2 >= sent,
        "{} of {sent} writes in the log",
        keys.len()
    );
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");

    let status = run(&["status", "--store", store_s, "--json"]);
    assert!(status.status.success());
    let st: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(st["mutations"], keys.len());
    // While nothing happened for 3 s the tidemark advanced past the last write
    // (capture time follows the wall clock, less 1 s, on a quiet interface).
    let tidemark = tidemark::decode::time::parse_rfc3339(st["tidemark"].as_str().unwrap())
        .unwrap()
        .0;
    let last = lines.last().unwrap()["commit_time"].as_str().unwrap();
    let last = tidemark::decode::time::parse_rfc3339(last).unwrap().0;
    assert!(
        tidemark >= last + 1_000_000_000,
        "tidemark {} not past the last write {} while idle",
        st["tidemark"],
        lines.last().unwrap()["commit_time"]
    );
}
