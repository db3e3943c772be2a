//! Running the real Python drivers' scripts (`tests/py/*.py`) from the testbed's
//! tests: one bounded run of a script that must print `OK`. Whether a driver is
//! installed is `require::python_modules`.
#![allow(dead_code)]

use std::time::Duration;

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
