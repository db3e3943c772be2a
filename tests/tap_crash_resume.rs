//! Crash safety of `tidemark tap --pcap` (issue #5): killed with SIGKILL at random
//! moments of a large capture and resumed each time, the final log is the log of an
//! uninterrupted run — same mutations at the same seqs, none lost, none twice — and
//! so is the rest of the store (`status`: undecided writes, tidemark, counts).
//!
//! The capture (CQL prepared writes and batches on four connections with timed-out
//! writes and their retries, MongoDB w:1, w:majority, retryable and unanswered
//! inserts) spans several resolution deadlines, so resumes cross undecided writes.
//! The stores keep the default fsync per group: that is the setting being proven.
//!
//! The kill moments come from a seeded generator: the seed is printed in every
//! failure message, `TIDEMARK_CRASH_SEED=N` replays it, and under CI (`CI` set) the
//! seed is fixed.

mod common;
mod tap_support;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tap_support::*;
use tidemark::store::{Envelope, Store, StoreError, StoreOptions};

/// Kills per test.
const KILLS: usize = 20;

/// About 20k mutations in ~1.5k packets over ~3 s of capture time: a couple of
/// seconds of `tap` in a debug build.
fn shape() -> Shape {
    Shape {
        cql_connections: 4,
        rounds: 80,
        pipeline: 16,
        batch: 10,
        spacing_ns: 2_000_000,
        timeout_every: 97,
        retry_after_rounds: 1,
        mongo_every: 2,
        unanswered_every: 9,
    }
}

/// The options every run of both stores gets: small groups (many commit points) and
/// a resolution deadline well inside the capture.
fn tap_args(pcap: &Path, store: &Path, resume: bool) -> Vec<String> {
    let mut a: Vec<String> = [
        "tap",
        "--pcap",
        s(pcap),
        "--store",
        s(store),
        "--group",
        "250",
        "--resolve-after",
        "0.3",
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    if resume {
        a.push("--resume".into());
    }
    a
}

/// xorshift64, seeded.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn seed() -> u64 {
    if let Ok(s) = std::env::var("TIDEMARK_CRASH_SEED") {
        return s.parse().expect("TIDEMARK_CRASH_SEED is a number");
    }
    if std::env::var_os("CI").is_some() {
        return 0x71de_0005;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1
}

fn spawn(args: &[String]) -> Child {
    tidemark()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tidemark binary starts")
}

/// Every envelope of a store, in seq order (empty when the store is not there yet).
fn envelopes(store: &Path) -> Vec<Envelope> {
    let s = match Store::open(store, &StoreOptions::default().read_only()) {
        Ok(s) => s,
        Err(StoreError::Missing { .. }) => return Vec::new(),
        Err(e) => panic!("{e}"),
    };
    let r = s.reader().unwrap();
    r.seq_range(..).unwrap().map(|e| e.unwrap()).collect()
}

/// What must hold after every crash: the log is a prefix of the uninterrupted
/// run's, and no write is both logged and still listed as undecided.
fn check_after_crash(reference: &[Envelope], store: &Path, ctx: &str) {
    let got = envelopes(store);
    assert!(
        got.len() <= reference.len(),
        "{ctx}: {} mutations stored, the whole capture has {}",
        got.len(),
        reference.len()
    );
    for (i, (g, r)) in got.iter().zip(reference).enumerate() {
        assert_eq!(g, r, "{ctx}: stored mutation {i} differs");
    }
    if got.is_empty() {
        return;
    }
    let s = Store::open(store, &StoreOptions::default().read_only()).unwrap();
    // One LMDB read transaction per thread at a time: list first, then read.
    let undecided = s.list_undecided().unwrap();
    let reader = s.reader().unwrap();
    for (_, u) in undecided {
        let logged = reader
            .key(&u.mutation.namespace, &u.mutation.key)
            .unwrap()
            .count();
        assert_eq!(
            logged, 0,
            "{ctx}: {} {} is logged and still listed undecided",
            u.mutation.namespace, u.mutation.key
        );
    }
}

/// `status --json` without the store path, which differs between the two stores.
fn status(store: &Path) -> Value {
    let mut v: Value = serde_json::from_str(&run_ok(&["status", "--store", s(store), "--json"]))
        .expect("status --json is JSON");
    v.as_object_mut().unwrap().remove("store");
    v
}

/// The capture and the store of an uninterrupted run of it, shared by the tests.
struct Reference {
    _dir: tempfile::TempDir,
    pcap: PathBuf,
    store: PathBuf,
    envelopes: Vec<Envelope>,
    /// How long the uninterrupted `tap` took.
    took: Duration,
}

fn reference() -> &'static Reference {
    static REF: OnceLock<Reference> = OnceLock::new();
    REF.get_or_init(|| {
        let dir = tempdir();
        let pcap = dir.path().join("large.pcap");
        let generated = write_capture(&pcap, &shape());
        let store = dir.path().join("uninterrupted");
        let started = Instant::now();
        run_ok(&tap_args(&pcap, &store, false));
        let took = started.elapsed();
        let envelopes = envelopes(&store);
        // The capture exercises what resume must carry across: in-doubt writes
        // logged at their deadline, ones resolved by a retry, w:1 writes committed
        // by policy, and writes still undecided at the end.
        assert!(
            envelopes.len() as u64 >= generated.cql_rows,
            "{generated:?}"
        );
        let st = status(&store);
        assert!(st["by_outcome"]["in_doubt"].as_u64() > Some(0), "{st}");
        assert!(!st["undecided"].as_array().unwrap().is_empty(), "{st}");
        let notes: Vec<String> = envelopes
            .iter()
            .map(|e| e.mutation.evidence.note.clone())
            .collect();
        for needle in [
            "resolved by a later copy",
            "unreplicated_policy",
            "no_response",
        ] {
            assert!(
                notes.iter().any(|n| n.contains(needle)),
                "no mutation noted {needle:?}"
            );
        }
        Reference {
            _dir: dir,
            pcap,
            store,
            envelopes,
            took,
        }
    })
}

/// The resumed store must now equal the uninterrupted one: `log --json` line by
/// line, and `status --json`.
fn assert_same_as_reference(r: &Reference, store: &Path, ctx: &str) {
    let (log_a, log_b) = (
        run_ok(&["log", "--store", s(&r.store), "--json"]),
        run_ok(&["log", "--store", s(store), "--json"]),
    );
    let (lines_a, lines_b): (Vec<&str>, Vec<&str>) =
        (log_a.lines().collect(), log_b.lines().collect());
    for (i, (la, lb)) in lines_a.iter().zip(&lines_b).enumerate() {
        assert_eq!(la, lb, "{ctx}: log line {i} differs");
    }
    assert_eq!(
        lines_a.len(),
        lines_b.len(),
        "{ctx}: uninterrupted {} lines, resumed {}",
        lines_a.len(),
        lines_b.len()
    );
    assert_eq!(lines_a.len(), r.envelopes.len());
    assert_eq!(status(&r.store), status(store), "{ctx}: status differs");
}

#[test]
fn sigkill_at_twenty_random_moments_then_resume_equals_an_uninterrupted_run() {
    let r = reference();
    let dir = tempdir();
    let b = dir.path().join("killed");
    let seed = seed();
    let mut rng = Rng(seed);
    // Kill anywhere from process start to most of a whole run: a resumed run
    // replays the capture from its start, so the kills land in startup, store
    // creation, the replay of what is stored, mid-group and mid-fsync; a run that
    // gets to finish first is simply resumed again.
    let longest = (r.took.as_millis() as u64 * 85 / 100).max(500);
    let mut history = Vec::new();
    for kill in 0..KILLS {
        let after = 50 + rng.below(longest - 50);
        let ctx = format!(
            "seed {seed} (TIDEMARK_CRASH_SEED={seed} replays it), kill {kill} after {after} ms, before: {history:?}"
        );
        let mut child = spawn(&tap_args(&r.pcap, &b, kill > 0));
        std::thread::sleep(Duration::from_millis(after));
        // SIGKILL (std's `Child::kill` on Unix); a run that already ended is reaped
        // with its own status.
        let _ = child.kill();
        let out = child.wait_with_output().expect("waiting for tap");
        let what = match out.status.signal() {
            Some(9) => "killed",
            _ if out.status.success() => "finished",
            _ => panic!(
                "{ctx}: tap failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
        };
        history.push(format!("{after}ms {what}"));
        check_after_crash(&r.envelopes, &b, &ctx);
    }
    let ctx = format!("seed {seed}, kills: {history:?}");
    let out = run(&tap_args(&r.pcap, &b, true));
    assert!(
        out.status.success(),
        "{ctx}: the final resume failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_as_reference(r, &b, &ctx);
    eprintln!(
        "{} mutations, uninterrupted tap {:?}; seed {seed}: {history:?}",
        r.envelopes.len(),
        r.took
    );
}

/// SIGTERM stops a run cleanly at any packet, not at a group boundary: what it
/// flushed must still be a prefix of what the replay decides, and the undecided
/// writes it stored must be reconciled by the resume.
#[test]
fn sigterm_at_random_moments_then_resume_equals_an_uninterrupted_run() {
    let r = reference();
    let dir = tempdir();
    let b = dir.path().join("terminated");
    let seed = seed() ^ 0x5157;
    let mut rng = Rng(seed);
    let longest = (r.took.as_millis() as u64 * 85 / 100).max(500);
    let mut history = Vec::new();
    for stop in 0..4 {
        let after = 200 + rng.below(longest - 200);
        let ctx = format!("seed {seed}, SIGTERM {stop} after {after} ms, before: {history:?}");
        let child = spawn(&tap_args(&r.pcap, &b, stop > 0));
        std::thread::sleep(Duration::from_millis(after));
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        let out = child.wait_with_output().expect("waiting for tap");
        assert!(
            sent.success() && out.status.success(),
            "{ctx}: tap ended {} after SIGTERM: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        history.push(format!("{after}ms"));
        check_after_crash(&r.envelopes, &b, &ctx);
    }
    let ctx = format!("seed {seed}, SIGTERMs: {history:?}");
    let out = run(&tap_args(&r.pcap, &b, true));
    assert!(
        out.status.success(),
        "{ctx}: the final resume failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_as_reference(r, &b, &ctx);
}
