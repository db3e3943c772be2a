//! `tidemark inspect` end to end through the binary: captures written with the
//! project's pcap writer, bad inputs that must fail with one line and a non-zero exit,
//! and the JSON record contract.

mod common;
mod ready_support;
mod require;
use require::shared_capture as shared;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use serde_json::Value;
use tidemark::capture::pcap_writer::PcapWriter;
use tidemark::capture::{LinkType, Timestamp};

fn tidemark(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .output()
        .expect("run tidemark")
}

fn write_pcap(path: &Path, link: LinkType, frames: &[(u64, Vec<u8>)]) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::new(std::io::BufWriter::new(f), link, 65535).unwrap();
    for (ts, fr) in frames {
        w.write(Timestamp(*ts), fr).unwrap();
    }
    w.finish().unwrap();
}

fn frames_of(segs: &[Seg], start_ts: u64) -> Vec<(u64, Vec<u8>)> {
    segs.iter()
        .enumerate()
        .map(|(i, s)| (start_ts + i as u64 * 1_000, ethernet(&ip_packet(s), &[])))
        .collect()
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Exactly one line on stderr, starting `tidemark: `, and a failing exit code.
fn assert_one_line_failure(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit status {:?}", out.status);
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
    assert!(err.starts_with("tidemark: "), "stderr: {err}");
    assert!(
        err.to_lowercase().contains(needle),
        "stderr {err:?} lacks {needle:?}"
    );
    assert!(!err.contains("panicked"));
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn missing_file_fails_with_one_line() {
    assert_one_line_failure(
        &tidemark(&["inspect", "/nonexistent/x.pcap"]),
        "no such file",
    );
}

#[test]
fn non_capture_files_fail_with_one_line() {
    let d = tmp();
    let text = d.path().join("notes.pcap");
    std::fs::write(&text, "this is not a capture\n".repeat(10)).unwrap();
    assert_one_line_failure(
        &tidemark(&["inspect", text.to_str().unwrap()]),
        "not a pcap",
    );
    let empty = d.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    assert_one_line_failure(
        &tidemark(&["inspect", empty.to_str().unwrap()]),
        "not a pcap",
    );
    assert_one_line_failure(
        &tidemark(&["inspect", d.path().to_str().unwrap()]),
        "directory",
    );
}

#[test]
fn unsupported_link_type_fails_with_one_line() {
    let d = tmp();
    let p = d.path().join("user0.pcap");
    let mut h = Vec::new();
    h.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    h.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&147u32.to_le_bytes()); // LINKTYPE_USER0
    std::fs::write(&p, h).unwrap();
    assert_one_line_failure(
        &tidemark(&["inspect", p.to_str().unwrap()]),
        "unsupported link type 147",
    );
}

#[test]
fn missing_interface_fails_with_one_line() {
    let out = tidemark(&["inspect", "--interface", "no-such-if0", "--duration", "0.1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
    assert!(err.starts_with("tidemark: "), "{err}");
    assert!(err.contains("no-such-if0"), "{err}");
}

/// Builds a capture with: a CQL flow on a custom port (sniffed), a MongoDB flow on a
/// custom port (sniffed), an IPv6 flow on 9042, and Thrift on 9160 (unknown).
fn mixed_capture(path: &Path) {
    let mut frames = Vec::new();
    let mut cql = Conv::new("10.0.0.1:40000", "10.0.0.2:19042", 1, 2);
    let mut segs = cql.handshake();
    segs.push(cql.data(true, &[4, 0, 0, 1, 5, 0, 0, 0, 0])); // OPTIONS
    segs.push(cql.data(false, &[0x84, 0, 0, 1, 6, 0, 0, 0, 2, 0, 0])); // SUPPORTED
    segs.push(cql.fin(true));
    segs.push(cql.fin(false));
    frames.extend(frames_of(&segs, 1_000_000_000));
    let mut mongo = Conv::new("10.0.0.3:40001", "10.0.0.4:5000", 10, 20);
    let mut segs = mongo.handshake();
    let mut msg = Vec::new();
    msg.extend_from_slice(&21i32.to_le_bytes());
    msg.extend_from_slice(&1i32.to_le_bytes());
    msg.extend_from_slice(&0i32.to_le_bytes());
    msg.extend_from_slice(&2013i32.to_le_bytes());
    msg.extend_from_slice(&[0, 0, 0, 0, 0]);
    segs.push(mongo.data(true, &msg));
    frames.extend(frames_of(&segs, 2_000_000_000));
    let mut v6 = Conv::new("[2001:db8::1]:40002", "[2001:db8::2]:9042", 5, 6);
    let mut segs = v6.handshake();
    segs.push(v6.data(true, b"\x04\x00\x00\x00\x05\x00\x00\x00\x00"));
    frames.extend(frames_of(&segs, 3_000_000_000));
    let mut thrift = Conv::new("10.0.0.5:40003", "10.0.0.6:9160", 7, 8);
    let mut segs = thrift.handshake();
    segs.push(thrift.data(
        true,
        &[
            0, 0, 0, 0x2c, 0x80, 1, 0, 1, 0, 0, 0, 0x0c, b's', b'e', b't', b'_', b'k',
        ],
    ));
    segs.push(thrift.rst(false));
    frames.extend(frames_of(&segs, 4_000_000_000));
    write_pcap(path, LinkType::Ethernet, &frames);
}

#[test]
fn json_records_follow_the_contract() {
    let d = tmp();
    let p = d.path().join("mixed.pcap");
    mixed_capture(&p);
    let out = tidemark(&["inspect", "--json", p.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    let flows: Vec<&Value> = lines.iter().filter(|l| l["type"] == "flow").collect();
    assert_eq!(flows.len(), 4);
    let by_server = |s: &str| {
        flows
            .iter()
            .find(|f| f["server"] == s)
            .copied()
            .unwrap_or_else(|| panic!("no flow to {s}"))
    };
    let cql = by_server("10.0.0.2:19042");
    assert_eq!(cql["protocol"], "cql");
    assert_eq!(cql["client"], "10.0.0.1:40000");
    assert_eq!(cql["bytes_c2s"], 9);
    assert_eq!(cql["bytes_s2c"], 11);
    assert_eq!(cql["gaps"], 0);
    assert_eq!(cql["state"], "fin");
    assert_eq!(by_server("10.0.0.4:5000")["protocol"], "mongo");
    let v6 = by_server("[2001:db8::2]:9042");
    assert_eq!(v6["client"], "[2001:db8::1]:40002");
    assert_eq!(v6["protocol"], "cql");
    assert_eq!(v6["state"], "end_of_capture");
    let thrift = by_server("10.0.0.6:9160");
    assert_eq!(thrift["protocol"], "unknown");
    assert_eq!(thrift["state"], "reset");
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "summary");
    assert_eq!(lines.iter().filter(|l| l["type"] == "summary").count(), 1);
    assert_eq!(last["flows"], 4);
    assert_eq!(last["protocols"]["cql"], 2);
    assert_eq!(last["protocols"]["mongo"], 1);
    assert_eq!(last["protocols"]["unknown"], 1);
    assert_eq!(last["capture"]["packets"], 20);
    // The same capture without sniffing help: --cql-port adds to the defaults.
    let out = tidemark(&[
        "inspect",
        "--json",
        "--mongo-port",
        "19042",
        p.to_str().unwrap(),
    ]);
    let lines = json_lines(&out);
    let f = lines
        .iter()
        .find(|l| l["server"] == "10.0.0.2:19042")
        .unwrap();
    assert_eq!(f["protocol"], "mongo", "a configured port beats sniffing");
    let v6 = lines
        .iter()
        .find(|l| l["server"] == "[2001:db8::2]:9042")
        .unwrap();
    assert_eq!(v6["protocol"], "cql", "defaults stay when ports are added");
}

#[test]
fn table_output_lists_flows_and_summary() {
    let d = tmp();
    let p = d.path().join("mixed.pcap");
    mixed_capture(&p);
    let out = tidemark(&["inspect", p.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().next().unwrap().contains("CLIENT"));
    assert!(text.contains("10.0.0.2:19042") && text.contains("cql"));
    assert!(
        text.contains("4 flows (cql 2, mongo 1, unknown 1)"),
        "{text}"
    );
}

#[test]
fn several_files_merge_in_time_order() {
    let d = tmp();
    let mut c = Conv::new("10.0.0.1:40000", "10.0.0.2:9042", 1, 2);
    let mut segs = c.handshake();
    let mut want = Vec::new();
    for i in 0..20u8 {
        let p = pattern(50, i);
        want.extend_from_slice(&p);
        segs.push(c.data(true, &p));
    }
    let frames = frames_of(&segs, 1_000_000_000);
    let (a, b): (Vec<_>, Vec<_>) = frames
        .into_iter()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    let strip = |v: Vec<(usize, (u64, Vec<u8>))>| v.into_iter().map(|(_, f)| f).collect::<Vec<_>>();
    let (pa, pb) = (d.path().join("a.pcap"), d.path().join("b.pcap"));
    write_pcap(&pa, LinkType::Ethernet, &strip(a));
    // The second file in another link type: each file keeps its own.
    let b_frames: Vec<(u64, Vec<u8>)> = strip(b)
        .into_iter()
        .map(|(ts, f)| (ts, null_link(&f[14..], false)))
        .collect();
    write_pcap(&pb, LinkType::Null, &b_frames);
    let out = tidemark(&[
        "inspect",
        "--json",
        pb.to_str().unwrap(),
        pa.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let lines = json_lines(&out);
    let flows: Vec<&Value> = lines.iter().filter(|l| l["type"] == "flow").collect();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0]["bytes_c2s"], want.len());
    assert_eq!(flows[0]["gaps"], 0);
    assert_eq!(lines.last().unwrap()["capture"]["out_of_order_segments"], 0);
}

#[test]
fn pcapng_reads_like_pcap() {
    let d = tmp();
    let p = d.path().join("mixed.pcap");
    mixed_capture(&p);
    let ng = d.path().join("mixed.pcapng");
    if !require::tool("editcap") {
        return;
    }
    let st = Command::new("editcap")
        .args(["-F", "pcapng"])
        .arg(&p)
        .arg(&ng)
        .status()
        .expect("editcap runs");
    assert!(st.success());
    let a = json_lines(&tidemark(&["inspect", "--json", p.to_str().unwrap()]));
    let b = json_lines(&tidemark(&["inspect", "--json", ng.to_str().unwrap()]));
    assert_eq!(a, b);
}

#[test]
fn file_cut_mid_packet_reports_what_it_read_and_exits_1() {
    let d = tmp();
    let p = d.path().join("mixed.pcap");
    mixed_capture(&p);
    let bytes = std::fs::read(&p).unwrap();
    let cut = d.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let out = tidemark(&["inspect", "--json", cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("tidemark: ") && err.lines().count() == 1,
        "{err}"
    );
    let lines = json_lines(&out);
    assert_eq!(lines.iter().filter(|l| l["type"] == "flow").count(), 4);
    // One capture-level error (no flow); decoders may add their own about flows.
    let capture_errors = lines
        .iter()
        .filter(|l| l["type"] == "error" && l.get("flow").is_none())
        .count();
    assert_eq!(capture_errors, 1);
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["capture"]["read_errors"], 1);
    assert!(summary["errors"].as_u64().unwrap() >= 1);
}

#[test]
fn snaplen_cut_packets_show_as_gaps_in_the_flow_line() {
    let d = tmp();
    let p = d.path().join("snap.pcap");
    let mut c = Conv::new("10.0.0.1:40000", "10.0.0.2:9042", 1, 2);
    let mut segs = c.handshake();
    segs.push(c.data(true, &[9u8; 500]));
    segs.push(c.data(true, &[8u8; 100]));
    let f = std::fs::File::create(&p).unwrap();
    let mut w = PcapWriter::new(f, LinkType::Ethernet, 65535).unwrap();
    for (i, s) in segs.iter().enumerate() {
        let fr = ethernet(&ip_packet(s), &[]);
        let keep = if i == 3 { 14 + 20 + 20 + 200 } else { fr.len() };
        w.write_cut(Timestamp(i as u64), &fr, keep).unwrap();
    }
    w.finish().unwrap();
    let lines = json_lines(&tidemark(&["inspect", "--json", p.to_str().unwrap()]));
    let flow = lines.iter().find(|l| l["type"] == "flow").unwrap();
    assert_eq!(flow["bytes_c2s"], 300);
    assert_eq!(flow["gaps"], 1);
    assert_eq!(flow["gap_bytes"], 300);
    let s = &lines.last().unwrap()["capture"];
    assert_eq!(s["truncated"], 1);
    assert_eq!(s["truncated_bytes"], 300);
}

#[test]
fn thrift_on_9160_is_unknown_and_cql_on_9042_is_cql() {
    let (Some(thrift), Some(cql)) = (
        shared("arkime/cassandra1.pcap"),
        shared("ndpi/cassandra.pcap"),
    ) else {
        return;
    };
    let lines = json_lines(&tidemark(&["inspect", "--json", thrift.to_str().unwrap()]));
    let flows: Vec<&Value> = lines.iter().filter(|l| l["type"] == "flow").collect();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0]["protocol"], "unknown");
    assert_eq!(flows[0]["server"], "10.176.171.11:9160");
    let lines = json_lines(&tidemark(&["inspect", "--json", cql.to_str().unwrap()]));
    let protos: Vec<(String, String)> = lines
        .iter()
        .filter(|l| l["type"] == "flow")
        .map(|l| {
            (
                l["server"].as_str().unwrap().to_string(),
                l["protocol"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(protos.contains(&("198.18.0.2:9042".into(), "cql".into())));
    assert!(protos.contains(&("198.18.0.3:7000".into(), "unknown".into())));
}

#[test]
fn mongo_on_unconfigured_ports_is_sniffed() {
    let Some(f) = shared("beats-packetbeat/mongodb_op_msg_opcode.pcap") else {
        return;
    };
    let lines = json_lines(&tidemark(&["inspect", "--json", f.to_str().unwrap()]));
    let flows: Vec<&Value> = lines.iter().filter(|l| l["type"] == "flow").collect();
    assert_eq!(flows.len(), 2);
    assert!(flows
        .iter()
        .all(|f| f["protocol"] == "mongo" && f["server"].as_str().unwrap().ends_with(":9991")));
}

/// A CQL-looking server on an ephemeral loopback port that answers STARTUP with READY.
fn ready_server() -> u16 {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in listener.incoming().flatten() {
            let mut head = [0u8; 9];
            if c.read_exact(&mut head).is_ok() {
                // The whole body too: closing on unread bytes would reset the flow.
                let len = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
                let mut body = vec![0u8; len.min(1 << 16) as usize];
                if c.read_exact(&mut body).is_ok() {
                    let _ = c.write_all(&[0x84, 0, 0, 1, 2, 0, 0, 0, 0]); // READY
                }
            }
        }
    });
    port
}

/// `tidemark inspect --interface lo --json` on `port`, plus any extra arguments.
fn spawn_live(port: u16, extra: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "inspect",
            "--interface",
            "lo",
            "--json",
            "--cql-port",
            &port.to_string(),
        ])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// A live inspection that said it is capturing, its output followed as it comes.
struct Live {
    child: std::process::Child,
    out: ready_support::Lines,
    err: ready_support::Lines,
}

/// Starts `spawn_live` and waits (bounded) for "capturing on lo"; `None` when this
/// machine does not allow live capture (`require` skips, or fails under CI).
fn start_live(port: u16, extra: &[&str]) -> Option<Live> {
    if !require::live_capture() {
        return None;
    }
    let mut child = spawn_live(port, extra);
    let out = ready_support::Lines::follow(child.stdout.take().unwrap());
    let mut err = ready_support::Lines::follow(child.stderr.take().unwrap());
    if err.wait_for("tidemark: capturing on lo") {
        return Some(Live { child, out, err });
    }
    let status = child.wait().unwrap();
    let said = err.rest().join("\n");
    panic!("inspect --interface lo never said it is capturing ({status}): {said}");
}

impl Live {
    /// Ends the capture (SIGTERM, or its `--duration` when `signal` is false) and
    /// returns its exit status and every JSON line it printed.
    fn finish(mut self, signal: bool) -> (std::process::ExitStatus, Vec<Value>, String) {
        if signal {
            let killed = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status()
                .unwrap();
            assert!(killed.success());
        }
        let status = self.child.wait().unwrap();
        let lines = self
            .out
            .rest()
            .iter()
            .map(|l| serde_json::from_str(l).expect("inspect --json prints JSON lines"))
            .collect();
        (status, lines, self.err.rest().join("\n"))
    }
}

/// Nanoseconds since the epoch, the clock pcap stamps loopback packets with.
fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// One connection that sends STARTUP with an empty options map (11 bytes) and reads
/// READY (9 bytes).
fn talk_once(port: u16) {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(&[4, 0, 0, 1, 1, 0, 0, 0, 2, 0, 0]).unwrap(); // STARTUP, {}
    let mut r = [0u8; 9];
    s.read_exact(&mut r).unwrap();
}

/// The flows to `127.0.0.1:port` among a live run's lines, which end with the summary.
fn flows_to(lines: &[Value], port: u16) -> Vec<Value> {
    assert_eq!(
        lines.last().map(|l| l["type"].clone()),
        Some("summary".into())
    );
    let server = format!("127.0.0.1:{port}");
    lines
        .iter()
        .filter(|l| l["type"] == "flow" && l["server"] == server.as_str())
        .cloned()
        .collect()
}

/// Traffic sent once the capture said it is capturing is decoded while it runs
/// (its READY reply shows on stdout before the capture ends), its capture
/// timestamps lie inside the moments the client sent and got it, and SIGTERM (or
/// Ctrl-C) then ends the capture cleanly: exit 0, the flow reported with its bytes,
/// and the summary line last.
#[test]
fn live_capture_on_loopback_sees_a_connection_and_stops_on_sigterm() {
    let port = ready_server();
    let Some(mut live) = start_live(port, &[]) else {
        return;
    };
    let before = now_ns();
    talk_once(port);
    let after = now_ns();
    let is_ready_reply =
        |l: &str| l.contains("\"opcode\":\"READY\"") && l.contains("\"dir\":\"s2c\"");
    let seen = live
        .out
        .wait_until(ready_support::READY_WAIT, is_ready_reply);
    let (status, lines, err) = live.finish(true);
    assert!(seen, "no READY decoded while capturing: {lines:?} {err}");
    assert!(
        status.success(),
        "inspect ended {status} after SIGTERM: {err}"
    );
    let flows = flows_to(&lines, port);
    assert_eq!(flows.len(), 1, "{flows:?}");
    let f = &flows[0];
    assert_eq!(f["protocol"], "cql");
    assert_eq!(
        (f["bytes_c2s"].as_u64(), f["bytes_s2c"].as_u64()),
        (Some(11), Some(9))
    );
    assert_eq!(f["gaps"], 0);
    // The flow's two messages, stamped with the capture's clock inside the client's
    // window: the capture judged the traffic that happened, not something earlier.
    let msgs: Vec<&Value> = lines
        .iter()
        .filter(|l| l["type"] == "message" && l["flow"] == f["flow"])
        .collect();
    let ops: Vec<&str> = msgs.iter().map(|m| m["opcode"].as_str().unwrap()).collect();
    assert_eq!(ops, ["STARTUP", "READY"], "{lines:?}");
    for m in msgs {
        let ts = tidemark::decode::time::parse_rfc3339(m["ts"].as_str().unwrap())
            .unwrap()
            .0;
        // pcap stamps in microseconds: allow the truncation below `before`.
        assert!(
            ts + 1_000 >= before && ts <= after,
            "{m}: captured at {ts}, the client talked in [{before}, {after}]"
        );
    }
}

/// `--duration` ends a live capture by itself: exit 0 and the summary line last,
/// with no traffic and no signal.
#[test]
fn live_capture_ends_after_its_duration() {
    let port = ready_server();
    let Some(live) = start_live(port, &["--duration", "0.5"]) else {
        return;
    };
    let (status, lines, err) = live.finish(false);
    assert!(status.success(), "{err}");
    assert!(flows_to(&lines, port).is_empty(), "{lines:?}");
}
