//! Helpers for the `realdb` tests: real servers (Apache Cassandra, FerretDB) started
//! once per test binary by the project's scripts and stopped at process exit, a live
//! `tidemark tap` on loopback, and the real Python drivers as workloads.
//!
//! Under the `CI` environment variable a server that cannot start fails the test (the
//! point of these tests is the real server); elsewhere the test skips with the reason.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod cql_check;
pub mod mongo_check;

#[path = "../ready_support/mod.rs"]
mod ready_support;
#[path = "../require/mod.rs"]
mod require;
use ready_support::Lines;

/// The repository root (scripts and workloads are found from here).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Scripts whose servers this process started, stopped by [`stop_started`] at exit.
static STARTED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// Runs at process exit (also after failed tests: the harness exits through libc's
/// `exit`), so no JVM or FerretDB outlives the test binary that started it.
extern "C" fn stop_started() {
    let scripts = STARTED.lock().map(|s| s.clone()).unwrap_or_default();
    for script in scripts {
        let _ = Command::new("bash")
            .arg(root().join("scripts").join(script))
            .arg("stop")
            .status();
    }
}

/// Starts a server with `scripts/SCRIPT start ARGS...` once per process and returns
/// what the script printed (contact points or URI); `None` means skip (not under CI).
pub fn server(
    cell: &'static OnceLock<Result<String, String>>,
    script: &'static str,
    args: &[&str],
) -> Option<String> {
    let result = cell.get_or_init(|| {
        let started = Instant::now();
        let out = Command::new("bash")
            .arg(root().join("scripts").join(script))
            .arg("start")
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run {script}: {e}"))?;
        // Registered before checking success: a half-started cluster is stopped too.
        let mut list = STARTED.lock().unwrap();
        if list.is_empty() {
            // SAFETY: registers a plain extern "C" function with no captured state.
            unsafe { libc::atexit(stop_started) };
        }
        list.push(script);
        if !out.status.success() {
            return Err(format!("{script} start {args:?} failed ({})", out.status));
        }
        eprintln!(
            "realdb: {script} start {args:?} ready in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    match result {
        Ok(s) => Some(s.clone()),
        Err(e) => {
            // Fails under CI, else a counted skip (tests/require).
            require::missing(
                script,
                e,
                "the script fetches Cassandra/FerretDB itself; it needs JDK 17, Maven and Go",
            );
            None
        }
    }
}

/// A live `tidemark tap --interface lo` on one port, writing to its own store.
pub struct Tap {
    child: Option<Child>,
    err: Option<Lines>,
    dir: tempfile::TempDir,
}

/// Capture time now (loopback packets are stamped with the wall clock), ns.
fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

impl Tap {
    /// Starts the tap (`port_flag` is `--cql-port` or `--mongo-port`) and waits
    /// (bounded) until it says it is capturing, so the workload that follows is seen.
    pub fn start(port_flag: &str, port: u16) -> Tap {
        Tap::start_with(port_flag, port, &[])
    }

    /// [`Tap::start`] with more `tidemark tap` options.
    pub fn start_with(port_flag: &str, port: u16, extra: &[&str]) -> Tap {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(["tap", "--interface", "lo", port_flag, &port.to_string()])
            .args(extra)
            .arg("--store")
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tidemark tap starts");
        let mut err = Lines::follow(child.stderr.take().unwrap());
        if !err.wait_for("tidemark: capturing on lo") {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tap never said it is capturing: {}", err.rest().join("\n"));
        }
        Tap {
            child: Some(child),
            err: Some(err),
            dir,
        }
    }

    /// Waits (bounded) until the store's tidemark passes the moment of this call —
    /// every write requested before it is decided and stored — then ends the tap with
    /// SIGTERM and returns the store's `tidemark log --json` lines.
    pub fn finish(mut self) -> Vec<Value> {
        let until = now_ns();
        let store = self.dir.path().join("store");
        let deadline = Instant::now() + Duration::from_secs(90);
        let passed = loop {
            let st = Command::new(env!("CARGO_BIN_EXE_tidemark"))
                .args(["status", "--json", "--store"])
                .arg(&store)
                .output()
                .unwrap();
            let tidemark = serde_json::from_slice::<Value>(&st.stdout)
                .ok()
                .and_then(|v| v["tidemark"].as_str().map(str::to_string))
                .and_then(|t| tidemark::decode::time::parse_rfc3339(&t))
                .map_or(0, |t| t.0);
            if tidemark >= until {
                break true;
            }
            if Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let child = self.child.take().unwrap();
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let out = child.wait_with_output().unwrap();
        let err = self
            .err
            .take()
            .map(Lines::rest)
            .unwrap_or_default()
            .join("\n");
        assert!(
            passed,
            "the tidemark never passed the end of the workload: {err}"
        );
        assert!(out.status.success(), "tap failed: {err}");
        eprintln!("realdb: tap: {}", err.trim());
        let log = Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(["log", "--json", "--store"])
            .arg(&store)
            .output()
            .unwrap();
        assert!(
            log.status.success(),
            "{}",
            String::from_utf8_lossy(&log.stderr)
        );
        json_lines(&log.stdout)
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Parses JSON lines.
pub fn json_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `tidemark tap --pcap FILE` (with `args`, e.g. the port) into a fresh store; returns
/// the store's `tidemark log --json` lines.
pub fn tap_pcap(file: &Path, args: &[&str]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .arg("tap")
        .arg("--pcap")
        .arg(file)
        .args(args)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tap {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let log = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["log", "--json", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(log.status.success());
    json_lines(&log.stdout)
}

/// A workload script of this folder.
pub fn workload(name: &str) -> PathBuf {
    root().join("tests").join("realdb_support").join(name)
}

/// Runs `python3 SCRIPT ARGS` with `stdin` fed in, which must succeed; returns its
/// JSON lines.
pub fn python(script: &Path, args: &[&str], stdin: &str) -> Vec<Value> {
    let mut child = Command::new("python3")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&out.stdout)
}

/// Counts `(namespace, key, op, outcome)` tuples: the multiset the driver's writes and
/// tidemark's log must agree on.
pub type Tally = BTreeMap<(String, String, String, String), usize>;

/// Adds one write to a tally.
pub fn count(t: &mut Tally, ns: &str, key: &Value, op: &str, outcome: &str) {
    *t.entry((ns.into(), key.to_string(), op.into(), outcome.into()))
        .or_default() += 1;
}

/// The writes a driver made (its `ns`, `key`, `op` and whether it `applied`), as the
/// outcomes it saw: applied → committed, else rejected.
pub fn driver_tally(driver: &[Value]) -> Tally {
    let mut want = Tally::new();
    for d in driver {
        let outcome = if d["applied"] == true {
            "committed"
        } else {
            "rejected"
        };
        count(
            &mut want,
            d["ns"].as_str().unwrap(),
            &d["key"],
            d["op"].as_str().unwrap(),
            outcome,
        );
    }
    want
}

/// The same tally of `log --json` mutation lines.
pub fn log_tally<'a>(lines: impl IntoIterator<Item = &'a Value>) -> Tally {
    let mut got = Tally::new();
    for l in lines {
        count(
            &mut got,
            l["namespace"].as_str().unwrap(),
            &l["key"],
            l["op"].as_str().unwrap(),
            l["outcome"].as_str().unwrap(),
        );
    }
    got
}
