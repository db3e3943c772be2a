//! `tidemark tap --interface lo`: a live capture of CQL writes on loopback, ended by
//! SIGTERM, leaves every write it decided in the store (flushed on the signal), the
//! tidemark keeps moving while the interface is quiet, and `log`/`status` read it.
//! Needs live-capture rights (through `require`).
//!
//! Nothing here sleeps a guessed time: the test waits (bounded) for `tap` to say
//! "capturing on lo", for the store to show the writes, and for the tidemark to
//! pass them; what it judges are the capture timestamps the store holds.

mod ready_support;
mod require;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ready_support::{Lines, READY_WAIT};

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

/// Sends `UPDATE ks.live SET v = i WHERE k = i` for i in 0..n on one connection,
/// each with a client timestamp, each waiting for its answer.
fn write_n(port: u16, n: usize) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    for i in 0..n {
        let q = Message::Query(Query {
            query: format!("UPDATE ks.live SET v = {i} WHERE k = {i}").into(),
            params: QueryParameters {
                consistency: Consistency::Quorum,
                timestamp: Some(1_795_478_400_000_000 + i as i64),
                ..QueryParameters::default()
            },
        });
        s.write_all(&encode_message(4, i as i16, q, Compression::None))
            .unwrap();
        // The whole answer (RESULT Void has a 4-byte body): reading only its
        // header would let the client run ahead and close on unanswered writes.
        let mut head = [0u8; 9];
        s.read_exact(&mut head).unwrap();
        let len = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) as usize;
        s.read_exact(&mut vec![0u8; len]).unwrap();
    }
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .output()
        .unwrap()
}

/// `log --json` of the store, as JSON values.
fn log_lines(store: &str) -> Vec<Value> {
    let log = run(&["log", "--store", store, "--json"]);
    assert!(
        log.status.success(),
        "{}",
        String::from_utf8_lossy(&log.stderr)
    );
    String::from_utf8_lossy(&log.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn status(store: &str) -> Value {
    let status = run(&["status", "--store", store, "--json"]);
    assert!(status.status.success());
    serde_json::from_slice(&status.stdout).unwrap()
}

fn ns(rfc3339: &Value) -> u64 {
    tidemark::decode::time::parse_rfc3339(rfc3339.as_str().unwrap())
        .unwrap()
        .0
}

/// Polls `check` (bounded by [`READY_WAIT`]) while the capture runs: the store is
/// read by other processes as `tap` appends to it.
fn poll(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + READY_WAIT;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Writes sent once the tap is capturing.
const WRITES: usize = 50;

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
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidemark"))
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
    let mut err = Lines::follow(child.stderr.take().unwrap());
    if !err.wait_for("tidemark: capturing on lo") {
        let status = child.wait().unwrap();
        let said = err.rest().join("\n");
        panic!("tap never said it is capturing ({status}): {said}");
    }
    write_n(port, WRITES);
    // The live run flushes decided writes as it goes: all of them appear.
    let mut seen = 0;
    let all_logged = poll(|| {
        seen = log_lines(store_s).len();
        seen == WRITES
    });
    // A quiet interface afterwards: the tidemark must still move on with the clock
    // (capture time is the wall clock less 1 s on a quiet interface), past the
    // last write's capture time.
    let mut idle_passed = false;
    if all_logged {
        let last = ns(&log_lines(store_s).last().unwrap()["commit_time"]);
        idle_passed = poll(|| {
            status(store_s)["tidemark"]
                .as_str()
                .is_some_and(|t| ns(&Value::from(t)) >= last + 1_000_000_000)
        });
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait().unwrap();
    let said = err.rest().join("\n");
    assert!(out.success(), "tap failed ({out}): {said}");
    assert!(
        all_logged,
        "{seen} of {WRITES} writes reached the store: {said}"
    );
    assert!(
        idle_passed,
        "the tidemark did not pass the last write while idle"
    );

    // Every write the capture saw is committed, each once, in order.
    let lines = log_lines(store_s);
    let st = status(store_s);
    let keys: Vec<i64> = lines
        .iter()
        .inspect(|l| {
            assert_eq!(l["type"], "mutation");
            assert_eq!(l["outcome"], "committed", "{l}\nstatus: {st}");
            assert_eq!(l["namespace"], "ks.live");
        })
        .map(|l| l["key"]["k"].as_i64().unwrap())
        .collect();
    assert_eq!(keys, (0..WRITES as i64).collect::<Vec<_>>());
    // Commit times are capture timestamps, in capture order.
    let times: Vec<u64> = lines.iter().map(|l| ns(&l["commit_time"])).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    assert_eq!(st["mutations"], WRITES);
    assert!(
        ns(&st["tidemark"]) >= times[WRITES - 1] + 1_000_000_000,
        "tidemark {} not past the last write {} after the idle time",
        st["tidemark"],
        lines[WRITES - 1]["commit_time"]
    );
}
