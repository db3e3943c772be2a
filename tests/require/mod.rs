//! What a test needs from outside the project (tshark, editcap, `../shared/captures`,
//! Python driver modules, live-capture rights), asked for in one way everywhere.
//!
//! A test that returns early because something is missing shows as `ok` and proves
//! nothing, and cargo hides what it printed. So a missing dependency is never silent:
//! - under `CI` (set to anything) it fails the test, naming the dependency and how
//!   `scripts/setup.sh` (or the machine) provides it: a gate must not pass on a test
//!   that did not run;
//! - elsewhere the test skips: `SKIP <test>: <dependency>: <reason>` goes to stderr
//!   and one line is appended to the skip ledger, which `scripts/test.sh` counts and
//!   lists at the end. The ledger is `$TIDEMARK_SKIP_LOG` when set (the script sets
//!   it), else `target/test-skips.log` at the workspace root.
//!
//! This file is included by path (`#[path = …] mod require;`) by the root crate's,
//! tidemark-mongo's and the testbed's tests rather than being a dev-only crate: it
//! needs only `std`, so a crate would add a workspace member, a lock-file entry and a
//! build step for ~150 lines, and every includer gets the same text.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Whether the run is a CI gate, where a missing dependency fails.
pub fn under_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Records that `dependency` is missing: panics under CI, otherwise prints the
/// skip and appends it to the ledger. `how` says how to get it.
pub fn missing(dependency: &str, reason: &str, how: &str) {
    let test = test_name();
    if under_ci() {
        panic!("missing dependency {dependency} (required under CI): {reason}; {how}");
    }
    let line = format!("SKIP {test}: {dependency}: {reason}");
    eprintln!("{line}");
    if let Some(log) = ledger() {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
        {
            // One write per line: O_APPEND keeps concurrent test processes' lines whole.
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
}

/// `crate::test` as libtest names the test's thread (`main` when run single-threaded).
fn test_name() -> String {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("?");
    format!("{}::{name}", env!("CARGO_CRATE_NAME"))
}

fn ledger() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TIDEMARK_SKIP_LOG") {
        return Some(PathBuf::from(p));
    }
    let root = workspace_root()?;
    let target = root.join("target");
    std::fs::create_dir_all(&target).ok()?;
    Some(target.join("test-skips.log"))
}

/// The workspace root: the nearest ancestor of the including crate with `Cargo.lock`.
pub fn workspace_root() -> Option<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .map(Path::to_path_buf)
}

const SETUP: &str = "scripts/setup.sh installs it (as root)";

/// Whether the program `name` runs (`name -v`, else `name --version`); tshark's
/// tools and haproxy answer `-v`, prometheus only `--version`.
pub fn tool(name: &str) -> bool {
    let answers = |flag: &str| {
        Command::new(name)
            .arg(flag)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let ok = answers("-v") || answers("--version");
    if !ok {
        let pkg = match name {
            "editcap" => "apt package wireshark-common, which tshark pulls in",
            "tshark" => "apt package tshark",
            "prometheus" => "apt package prometheus",
            "haproxy" => "apt package haproxy",
            _ => "see scripts/setup.sh",
        };
        missing(
            name,
            &format!("`{name} -v` did not run"),
            &format!("{SETUP} ({pkg})"),
        );
    }
    ok
}

/// `p` when it exists; `why` says what it is (for the message).
pub fn path(p: impl AsRef<Path>, why: &str) -> Option<PathBuf> {
    let p = p.as_ref();
    if p.exists() {
        return Some(p.to_path_buf());
    }
    missing(
        why,
        &format!("{} does not exist", p.display()),
        "it comes with the project's workspace, not from scripts/setup.sh",
    );
    None
}

/// The third-party captures directory (`../shared/captures` beside the workspace).
pub fn shared_captures() -> Option<PathBuf> {
    let dir = workspace_root()?.join("../shared/captures");
    if dir.is_dir() {
        return Some(dir);
    }
    missing(
        "../shared/captures",
        &format!("{} is not a directory", dir.display()),
        "the third-party captures (SOURCES.md) sit beside the workspace; scripts/setup.sh \
         does not fetch them",
    );
    None
}

/// One third-party capture, `rel` under `../shared/captures`. In a loop over files a
/// missing one is skipped (or fails under CI) alone; the others still run.
pub fn shared_capture(rel: &str) -> Option<PathBuf> {
    let p = shared_captures()?.join(rel);
    if p.is_file() {
        return Some(p);
    }
    missing(
        &format!("../shared/captures/{rel}"),
        &format!("{} does not exist", p.display()),
        "the third-party captures (SOURCES.md) sit beside the workspace; scripts/setup.sh \
         does not fetch them",
    );
    None
}

/// Whether `python3` imports every module of `modules` (`cassandra`, `pymongo`, `bson`,
/// `snappy`, `zstandard`); all missing ones are named at once.
pub fn python_modules(modules: &[&str]) -> bool {
    let absent: Vec<&str> = modules
        .iter()
        .copied()
        .filter(|m| {
            !Command::new("python3")
                .args(["-c", &format!("import {m}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if absent.is_empty() {
        return true;
    }
    missing(
        &format!("python3 module {}", absent.join(", ")),
        "python3 cannot import it",
        &format!(
            "{SETUP} with pip (cassandra-driver, pymongo (bson), lz4, python-snappy, \
             zstandard, backports.zstd, pyarrow)"
        ),
    );
    false
}

/// Whether this process may capture live traffic (root, or CAP_NET_RAW in its
/// effective set, which a spawned `tidemark` inherits).
pub fn live_capture() -> bool {
    let ok = effective_caps().is_some_and(|caps| caps & (1 << 13) != 0);
    if !ok {
        missing(
            "live capture",
            "this process lacks CAP_NET_RAW (live capture on lo needs it)",
            "run the tests as root, or with CAP_NET_RAW",
        );
    }
    ok
}

/// The `CapEff` mask of /proc/self/status (Linux).
fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}
