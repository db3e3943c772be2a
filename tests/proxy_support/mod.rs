//! What the `tidemark proxy` tests share: free ports on chosen loopback addresses, a
//! guard that kills a child process by pid when a failing test drops it, starting a
//! proxy and waiting (bounded) for its ready line, stopping it with SIGTERM, and
//! reading its Prometheus endpoint. Written once so that every proxy test starts,
//! waits for and stops the proxy the same way. Also the testbed nodes' own log of
//! the connections they accepted ([`accepted_log`]), which the proxy tests read to
//! see who connected to the nodes.
//!
//! Include it as `mod proxy_support;` beside `mod ready_support;` (it uses
//! [`crate::ready_support::Lines`]).
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::ready_support::Lines;

/// A port free on `ip` now (the kernel's pick; it may be taken again before use,
/// which loopback tests accept).
pub fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port free on every one of `ips` and different from `avoid`: sidecars on one
/// port, as the testbed nodes are (`system.peers` has no port column, so CQL
/// drivers dial the port they first connected to), and not the nodes' port, so
/// that the rewrite has ports to change too.
pub fn common_port(ips: &[Ipv4Addr], avoid: u16) -> u16 {
    for _ in 0..100 {
        let p = free_port(ips[0]);
        if p != avoid && ips.iter().all(|ip| TcpListener::bind((*ip, p)).is_ok()) {
            return p;
        }
    }
    panic!("no port free on all of {ips:?} in 100 tries");
}

/// A child process killed by pid when dropped while still running, so a failing
/// test leaves nothing behind. Only the process it holds is ever signalled.
pub struct Killed(pub Child);

impl Killed {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Sends `signal` (`"INT"`, `"TERM"`) to this child only, then waits for it
    /// (bounded by `within`; past it the child is killed and the test fails).
    pub fn signal_and_wait(&mut self, signal: &str, within: Duration) -> ExitStatus {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} {} failed", self.pid());
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.0.try_wait().expect("wait for the child") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.0.kill();
                let _ = self.0.wait();
                panic!(
                    "pid {} did not exit within {within:?} of SIG{signal}",
                    self.pid()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs `cmd` to its end with its output collected, as `Command::output` does,
/// but bounded: past `within` the child is killed (by pid) and the test fails.
pub fn output_within(cmd: &mut Command, within: Duration) -> std::process::Output {
    let mut child = Killed(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}")),
    );
    let collect = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = collect(child.0.stdout.take().map(|s| Box::new(s) as _));
    let err = collect(child.0.stderr.take().map(|s| Box::new(s) as _));
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.0.kill();
            let _ = child.0.wait();
            let err = String::from_utf8_lossy(&err.join().unwrap()).to_string();
            panic!("{cmd:?} did not end within {within:?}: {err}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// `tidemark proxy --listen LISTEN --upstream UPSTREAM`, for a test to add its
/// options to before [`spawn_ready`].
pub fn proxy_command(listen: SocketAddr, upstream: SocketAddr) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidemark"));
    cmd.args(["proxy", "--listen", &listen.to_string()])
        .args(["--upstream", &upstream.to_string()]);
    cmd
}

/// Spawns `cmd` (a `tidemark proxy` command line; its stderr is piped here, its
/// stdout is the caller's choice) under a [`Killed`] guard, following its stderr.
/// For a test that needs the pid before the proxy is ready; else [`spawn_ready`].
pub fn spawn_proxy(cmd: &mut Command) -> (Killed, Lines) {
    let mut child = cmd
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tidemark proxy");
    let err = Lines::follow(child.stderr.take().unwrap());
    (Killed(child), err)
}

/// Waits, bounded by [`crate::ready_support::READY_WAIT`], for "tidemark: proxy
/// listening" on a proxy's stderr; fails the test with what it said otherwise.
pub fn wait_ready(err: &mut Lines) {
    assert!(
        err.wait_for("tidemark: proxy listening"),
        "the proxy never said it was listening: {:?}",
        err.seen
    );
}

/// [`spawn_proxy`], then [`wait_ready`].
pub fn spawn_ready(cmd: &mut Command) -> (Killed, Lines) {
    let (proxy, mut err) = spawn_proxy(cmd);
    wait_ready(&mut err);
    (proxy, err)
}

/// Starts `tidemark proxy ARGS --store STORE --drain 2 FLAGS` with stdout piped
/// (where a summary goes) and waits for its ready line ([`spawn_ready`]).
pub fn start_proxy_with<S: AsRef<OsStr>>(
    args: &[S],
    store: &Path,
    flags: &[&str],
) -> (Killed, Lines) {
    spawn_ready(
        Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .arg("proxy")
            .args(args)
            .arg("--store")
            .arg(store)
            .args(["--drain", "2"])
            .args(flags)
            .stdout(Stdio::piped()),
    )
}

/// Starts `tidemark proxy ARGS --store STORE --drain 2 --json` (plus `extra`, e.g.
/// `--no-sync`) and waits, bounded by [`crate::ready_support::READY_WAIT`], for
/// "tidemark: proxy listening" on its stderr. Returns the guard and the stderr
/// lines (stdout, where the `--json` summary goes, stays piped in the child).
pub fn start_proxy<S: AsRef<OsStr>>(args: &[S], store: &Path, extra: &[&str]) -> (Killed, Lines) {
    start_proxy_with(args, store, &[&["--json"], extra].concat())
}

/// Stops a proxy as an orchestrator would (SIGTERM: drain, flush the store, exit),
/// bounded by 30 s, and returns its exit status, everything it printed on stdout
/// (piped, as [`start_proxy_with`] leaves it) and the rest of its stderr.
pub fn stop(mut proxy: Killed, err: Lines) -> (ExitStatus, String, Vec<String>) {
    let mut out = String::new();
    let stdout = proxy.0.stdout.take();
    let status = proxy.signal_and_wait("TERM", Duration::from_secs(30));
    if let Some(mut s) = stdout {
        s.read_to_string(&mut out).unwrap();
    }
    (status, out, err.rest())
}

/// [`stop`], failing the test unless the proxy exited cleanly; returns its `--json`
/// summary line (the last on stdout).
pub fn stop_proxy(proxy: Killed, err: Lines) -> serde_json::Value {
    let (status, out, rest) = stop(proxy, err);
    assert!(status.success(), "proxy exit {status}: {out} {rest:?}");
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("summary {out:?}: {e}"))
}

/// GET /metrics, as Prometheus would; the whole HTTP answer (a read waits 10 s at
/// the most).
pub fn scrape(addr: SocketAddr) -> String {
    scrape_within(addr, Duration::from_secs(10))
}

/// [`scrape`], with a read waiting `within` at the most.
pub fn scrape_within(addr: SocketAddr, within: Duration) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(within)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    out
}

/// The value of the sample `name` (with its labels, as written) in `text`.
pub fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// The testbed's `tracing` debug output, kept in memory; its `connection` events are
/// the nodes' own record of every connection they accepted (with the peer's
/// address).
#[derive(Clone, Default)]
pub struct Accepted(Arc<Mutex<Vec<u8>>>);

impl Accepted {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).to_string()
    }
}

impl Write for Accepted {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process's one testbed log (`tidemark_testbed=debug`), installed as the
/// global `tracing` subscriber on first use.
pub fn accepted_log() -> &'static Accepted {
    static LOG: OnceLock<Accepted> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Accepted::default();
        let w = log.clone();
        let sub = tracing_subscriber::fmt()
            .with_env_filter("tidemark_testbed=debug")
            .with_ansi(false)
            .with_writer(move || w.clone())
            .finish();
        tracing::subscriber::set_global_default(sub).expect("one subscriber");
        log
    })
}

/// `dumpcap` on `lo`, restricted by its BPF filter to packets between a node's own
/// address and port and an address outside the bed: the proxy→node leg. On `lo`
/// everything else would be captured too — the client→sidecar leg (the same bytes
/// again, rewritten answers included) and the members' replication connections,
/// which the proxy never sees.
pub struct Capture {
    dumpcap: Killed,
    err: Lines,
    file: PathBuf,
}

/// Packets with a node's address and port on one side and a non-node address on
/// the other: exactly what the sidecars forward upstream (on `lo` the
/// driver→sidecar leg would otherwise be captured too, the same bytes again).
pub fn bpf_filter(nodes: &[SocketAddr]) -> String {
    let port = nodes[0].port();
    assert!(nodes.iter().all(|n| n.port() == port));
    let leg: Vec<String> = nodes
        .iter()
        .map(|n| {
            format!(
                "(src host {ip} and src port {port}) or (dst host {ip} and dst port {port})",
                ip = n.ip()
            )
        })
        .collect();
    let inside: Vec<String> = nodes.iter().map(|n| format!("host {}", n.ip())).collect();
    let any_src = inside
        .iter()
        .map(|h| format!("src {h}"))
        .collect::<Vec<_>>()
        .join(" or ");
    let any_dst = inside
        .iter()
        .map(|h| format!("dst {h}"))
        .collect::<Vec<_>>()
        .join(" or ");
    format!(
        "tcp and ({}) and not (({any_src}) and ({any_dst}))",
        leg.join(" or ")
    )
}

pub fn start_capture(nodes: &[SocketAddr], file: &Path) -> Capture {
    let mut child = Command::new("dumpcap")
        .args(["-i", "lo", "-f", &bpf_filter(nodes), "-w"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dumpcap");
    let mut err = Lines::follow(child.stderr.take().unwrap());
    let dumpcap = Killed(child);
    assert!(
        err.wait_for("Capturing on"),
        "dumpcap never started capturing: {:?}",
        err.seen
    );
    Capture {
        dumpcap,
        err,
        file: file.to_path_buf(),
    }
}

/// Stops the capture once it has written everything: the file must stop growing
/// (dumpcap flushes on its update interval), then SIGINT to dumpcap's pid, and its
/// final report must show no packet dropped. Returns the packets captured.
pub fn stop_capture(mut c: Capture) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let size = |f: &Path| std::fs::metadata(f).map_or(0, |m| m.len());
    let (mut last, mut stable_since) = (size(&c.file), Instant::now());
    while stable_since.elapsed() < Duration::from_millis(1500) {
        assert!(
            Instant::now() < deadline,
            "the capture file never stopped growing"
        );
        std::thread::sleep(Duration::from_millis(250));
        let now = size(&c.file);
        if now != last {
            (last, stable_since) = (now, Instant::now());
        }
    }
    let status = c.dumpcap.signal_and_wait("INT", Duration::from_secs(20));
    let lines = c.err.rest();
    assert!(status.success(), "dumpcap: {status} {lines:?}");
    // "Packets received/dropped on interface 'Loopback: lo': 449/0 (pcap:0/...)"
    let report = lines
        .iter()
        .find_map(|l| {
            l.strip_prefix("Packets received/dropped on interface ")?
                .split("': ")
                .nth(1)
        })
        .unwrap_or_else(|| panic!("no dumpcap report in {lines:?}"));
    let counts = report.split_whitespace().next().unwrap();
    let (received, dropped) = counts.split_once('/').unwrap();
    assert_eq!(dropped, "0", "dumpcap dropped packets: {lines:?}");
    received.parse().unwrap()
}
