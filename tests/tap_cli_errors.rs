//! `tidemark tap`, `log` and `status` refuse what they cannot do with one line on
//! stderr and a failing exit: an interrupted run continued without `--resume`, a
//! resume of other files, a missing store, a store another writer holds, a file
//! that is not a capture (leaving no store behind).

mod common;
mod tap_support;

use std::path::Path;
use std::process::Output;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tap_support::*;
use tidemark::store::{Store, StoreOptions};
use tidemark::tap::{run as tap, TapOptions};

fn one_line_failure(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit {:?}, stderr {err}", out.status);
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
    assert!(err.starts_with("tidemark: "), "stderr: {err}");
    assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
    assert!(!err.contains("panicked"), "{err}");
}

fn small_capture(path: &Path) {
    write_capture(
        path,
        &Shape {
            cql_connections: 2,
            rounds: 4,
            pipeline: 4,
            batch: 3,
            spacing_ns: 1_000_000,
            timeout_every: 7,
            retry_after_rounds: 1,
            mongo_every: 2,
            unanswered_every: 3,
        },
    );
}

/// A store holding a run stopped (as by SIGTERM) before its first packet.
fn interrupted_store(pcap: &Path, store: &Path) {
    let report = tap(
        &TapOptions {
            files: vec![pcap.to_path_buf()],
            store: store.to_path_buf(),
            ..TapOptions::default()
        },
        Arc::new(AtomicBool::new(true)),
    )
    .expect("an interrupted tap");
    assert!(report.interrupted);
}

#[test]
fn an_interrupted_run_is_continued_only_with_resume_of_the_same_files() {
    let dir = tempdir();
    let (pcap, other, store) = (
        dir.path().join("a.pcap"),
        dir.path().join("b.pcap"),
        dir.path().join("store"),
    );
    small_capture(&pcap);
    small_capture(&other);
    interrupted_store(&pcap, &store);
    let status = run_ok(&["status", "--store", s(&store), "--json"]);
    assert!(status.contains(r#""last_run":"interrupted""#), "{status}");

    one_line_failure(
        &run(&["tap", "--pcap", s(&pcap), "--store", s(&store)]),
        "--resume",
    );
    one_line_failure(
        &run(&["tap", "--pcap", s(&other), "--store", s(&store), "--resume"]),
        "other input",
    );
    // Nothing of that reached the store; the right resume completes it.
    run_ok(&["tap", "--pcap", s(&pcap), "--store", s(&store), "--resume"]);
    let status = run_ok(&["status", "--store", s(&store), "--json"]);
    assert!(status.contains(r#""last_run":"complete""#), "{status}");
}

/// `tidemark log --json | head` is normal use: a reader that stops reading ends
/// the output quietly (exit 0, nothing on stderr), as the table output does.
#[test]
fn log_into_a_pipe_closed_early_ends_quietly() {
    let dir = tempdir();
    let (pcap, store) = (dir.path().join("a.pcap"), dir.path().join("store"));
    write_capture(
        &pcap,
        &Shape {
            cql_connections: 2,
            rounds: 40,
            pipeline: 8,
            batch: 10,
            spacing_ns: 1_000_000,
            timeout_every: 1000,
            retry_after_rounds: 1,
            mongo_every: 5,
            unanswered_every: 1000,
        },
    );
    run_ok(&["tap", "--pcap", s(&pcap), "--store", s(&store)]);
    for json in [true, false] {
        let mut args = vec!["log", "--store", s(&store)];
        if json {
            args.push("--json");
        }
        let full = run_ok(&args);
        // More than a pipe buffer, so the writer is still writing when it closes.
        assert!(full.len() > 256 << 10, "{} bytes of log", full.len());
        let mut child = tidemark()
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{args:?} into a closed pipe: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn log_and_status_of_a_missing_store_fail_with_one_line() {
    let dir = tempdir();
    let missing = dir.path().join("nothing-here");
    for cmd in ["log", "status"] {
        one_line_failure(&run(&[cmd, "--store", s(&missing)]), "nothing-here");
        one_line_failure(
            &run(&[cmd, "--store", s(&missing), "--json"]),
            "nothing-here",
        );
        assert!(!missing.exists(), "{cmd} created the store");
    }
}

#[test]
fn a_store_another_writer_holds_is_refused_with_one_line() {
    let dir = tempdir();
    let (pcap, store) = (dir.path().join("a.pcap"), dir.path().join("store"));
    small_capture(&pcap);
    run_ok(&["tap", "--pcap", s(&pcap), "--store", s(&store)]);
    let before = run_ok(&["log", "--store", s(&store), "--json"]);
    let writer = Store::open(&store, &StoreOptions::default()).expect("the test holds the store");
    for extra in [&[][..], &["--resume"][..]] {
        let mut args = vec!["tap", "--pcap", s(&pcap), "--store", s(&store)];
        args.extend_from_slice(extra);
        one_line_failure(&run(&args), "lock");
    }
    // Readers are not writers: log and status still work, and saw nothing change.
    assert_eq!(run_ok(&["log", "--store", s(&store), "--json"]), before);
    run_ok(&["status", "--store", s(&store)]);
    drop(writer);
}

#[test]
fn a_file_that_is_not_a_capture_fails_with_one_line_and_leaves_no_store() {
    let dir = tempdir();
    let (junk, store) = (dir.path().join("notes.txt"), dir.path().join("store"));
    std::fs::write(&junk, b"this is not a capture file, just some text\n").unwrap();
    one_line_failure(
        &run(&["tap", "--pcap", s(&junk), "--store", s(&store)]),
        "notes.txt",
    );
    assert!(!store.exists(), "a failed tap left a store behind");
    let missing = dir.path().join("absent.pcap");
    one_line_failure(
        &run(&["tap", "--pcap", s(&missing), "--store", s(&store)]),
        "absent.pcap",
    );
    assert!(!store.exists(), "a failed tap left a store behind");
}

/// A run killed inside `Store::create`, before its first commit, leaves the
/// directory with the writer lock (and maybe an LMDB environment without
/// tidemark's databases). Nothing was stored, so `tap` — with or without
/// `--resume` — starts the store afresh instead of refusing it forever; a
/// directory holding anything else is still refused.
#[test]
fn a_store_killed_while_being_created_is_created_again() {
    let dir = tempdir();
    let pcap = dir.path().join("a.pcap");
    small_capture(&pcap);
    for (name, with_env, resume) in [("lock-only", false, true), ("empty-env", true, false)] {
        let store = dir.path().join(name);
        std::fs::create_dir(&store).unwrap();
        std::fs::write(store.join(tidemark::store::LOCK_FILE), b"").unwrap();
        if with_env {
            // SAFETY: a fresh environment nothing else opens.
            let env = unsafe {
                heed::EnvOpenOptions::new()
                    .map_size(1 << 20)
                    .open(&store)
                    .unwrap()
            };
            drop(env);
            assert!(store.join(tidemark::store::DATA_FILE).exists());
        }
        let mut args = vec!["tap", "--pcap", s(&pcap), "--store", s(&store)];
        if resume {
            args.push("--resume");
        }
        run_ok(&args);
        let status = run_ok(&["status", "--store", s(&store), "--json"]);
        assert!(
            status.contains(r#""last_run":"complete""#),
            "{name}: {status}"
        );
    }
    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join(tidemark::store::LOCK_FILE), b"").unwrap();
    std::fs::write(foreign.join("precious.txt"), b"keep me").unwrap();
    one_line_failure(
        &run(&["tap", "--pcap", s(&pcap), "--store", s(&foreign)]),
        "foreign",
    );
    assert_eq!(
        std::fs::read(foreign.join("precious.txt")).unwrap(),
        b"keep me"
    );
}
