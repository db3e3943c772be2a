//! Running the real Python drivers' scripts (`tests/py/*.py`) from the testbed's
//! tests: whether a driver is installed (tests skip with a printed reason when not),
//! and one bounded run of a script that must print `OK`.
#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

/// Whether `python3` can import `module` (`cassandra`, `pymongo`, `bson`).
pub fn python_module_available(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Prints why a test is skipped when `module` is missing; true when it may run.
pub fn require_module(module: &str, package: &str) -> bool {
    let ok = python_module_available(module);
    if !ok {
        eprintln!("SKIPPED: python3 with {package} not available");
    }
    ok
}

/// Runs `tests/py/{script}` with `args` for at most `limit`; panics with the
/// script's output unless it exits 0 and prints `OK`. Returns stdout.
pub async fn run_script(script: &str, args: &[String], limit: Duration) -> String {
    let path = format!("{}/tests/py/{script}", env!("CARGO_MANIFEST_DIR"));
    let child = tokio::process::Command::new("python3")
        .arg(&path)
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(limit, child)
        .await
        .unwrap_or_else(|_| panic!("{script} timed out after {limit:?}"))
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "{script}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}
