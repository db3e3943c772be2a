//! Crash safety of `tidemark tap --pcap` (issue #5): crashed at seeded group commits
//! of a large capture and resumed each time, the final log is the log of an
//! uninterrupted run — same mutations at the same seqs, none lost, none twice — and
//! so is the rest of the store (`status`: undecided writes, tidemark, counts).
//!
//! The capture (CQL prepared writes and batches on four connections with timed-out
//! writes and their retries, MongoDB w:1, w:majority, retryable and unanswered
//! inserts) spans several resolution deadlines, so resumes cross undecided writes.
//! The stores keep the default fsync per group: that is the setting being proven.
//!
//! Crashes are injected by event, not by time (issue #20): the debug build of `tap`
//! aborts right before or right after its Nth group commit
//! (`TIDEMARK_TEST_ABORT_BEFORE_GROUP`, `TIDEMARK_TEST_ABORT_AFTER_GROUPS`) and
//! raises SIGTERM after its Nth packet (`TIDEMARK_TEST_SIGTERM_AFTER_PACKETS`), see
//! `src/tap/inject.rs`. The points come from a seeded generator: the seed is printed
//! (and in every failure message), `TIDEMARK_CRASH_SEED=N` replays it exactly, and
//! under CI (`CI` set) the seed is fixed. An external SIGTERM is sent only after
//! `tap` said it is ready.

mod common;
mod ready_support;
mod tap_support;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use ready_support::Lines;
use serde_json::Value;
use tap_support::*;
use tidemark::store::{Envelope, Store, StoreError, StoreOptions};

/// Crashes per test.
const KILLS: u64 = 20;

/// Mutations per group commit in every run (many commit points).
const GROUP: u64 = 250;

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
    let group = GROUP.to_string();
    let mut a: Vec<String> = [
        "tap",
        "--pcap",
        s(pcap),
        "--store",
        s(store),
        "--group",
        &group,
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

/// Runs `tap` to its end with one injected fault (`VAR=N`).
fn run_injected(args: &[String], var: &str, n: u64) -> Output {
    tidemark()
        .args(args)
        .env(var, n.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("the tidemark binary runs")
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
    _dir: PathBuf,
    pcap: PathBuf,
    store: PathBuf,
    envelopes: Vec<Envelope>,
    /// Group commits and packets of the uninterrupted run (its `--json` report).
    groups: u64,
    packets: u64,
}

fn reference() -> &'static Reference {
    static REF: OnceLock<Reference> = OnceLock::new();
    REF.get_or_init(|| {
        // A fixed directory under cargo's per-target temp dir, emptied first: the
        // reference lives in a static, which is never dropped, so a `TempDir` here
        // left 19 MB behind in /tmp on every run.
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tap_crash_resume_reference");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("reference dir");
        let pcap = dir.join("large.pcap");
        let generated = write_capture(&pcap, &shape());
        let store = dir.join("uninterrupted");
        let mut args = tap_args(&pcap, &store, false);
        args.push("--json".into());
        let report: Value =
            serde_json::from_str(run_ok(&args).trim()).expect("tap --json prints its report");
        let groups = report["groups"].as_u64().expect("report.groups");
        let packets = report["packets"].as_u64().expect("report.packets");
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
        // what holds the tidemark back is named: the oldest undecided write
        let oldest = st["undecided"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|u| u["first_seen"].as_str())
            .min()
            .unwrap()
            .to_string();
        let held = st["held_by"].as_str().unwrap_or_default();
        assert!(
            held.contains(&format!("since {oldest}"))
                || st["gaps"].as_array().is_some_and(|g| !g.is_empty()),
            "{st}"
        );
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
            groups,
            packets,
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

/// How a run with an injected fault ended: aborted (SIGABRT) where it was told to,
/// or finished first (the point lay beyond its last group). Anything else fails.
fn ended(out: &Output, ctx: &str) -> &'static str {
    match out.status.signal() {
        Some(6) => "aborted",
        _ if out.status.success() => "finished",
        _ => panic!(
            "{ctx}: tap failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The final resume, then the comparison with the uninterrupted run.
fn resume_to_the_end(r: &Reference, store: &Path, ctx: &str) {
    let out = run(&tap_args(&r.pcap, store, true));
    assert!(
        out.status.success(),
        "{ctx}: the final resume failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_as_reference(r, store, ctx);
}

/// A crash at twenty seeded group commits, each either right before the commit
/// (the group's mutations decided, never written) or right after it (written with
/// its checkpoint, nothing after), resumed each time. Each run's point is drawn
/// over the groups it still has to write, so the crashes spread over the whole
/// capture, and the first lands before the run's own record (group 1).
#[test]
fn abort_at_seeded_group_commits_then_resume_equals_an_uninterrupted_run() {
    let r = reference();
    let dir = tempdir();
    let b = dir.path().join("aborted");
    let seed = seed();
    eprintln!("crash seed {seed} (TIDEMARK_CRASH_SEED={seed} replays it)");
    let mut rng = Rng(seed);
    let mut history = Vec::new();
    let mut aborted = 0;
    for kill in 0..KILLS {
        let stored = envelopes(&b).len() as u64;
        // Groups the next run writes: its record, then the rest of the capture.
        let left = 1 + r.groups.saturating_sub(stored / GROUP);
        let spread = (2 * left / (KILLS - kill)).max(2);
        let n = if kill == 0 { 1 } else { 1 + rng.below(spread) };
        let (var, when) = if kill == 0 || rng.below(2) == 0 {
            ("TIDEMARK_TEST_ABORT_BEFORE_GROUP", "before")
        } else {
            ("TIDEMARK_TEST_ABORT_AFTER_GROUPS", "after")
        };
        let ctx = format!(
            "seed {seed} (TIDEMARK_CRASH_SEED={seed} replays it), crash {kill} {when} group {n}, before: {history:?}"
        );
        let out = run_injected(&tap_args(&r.pcap, &b, kill > 0), var, n);
        let what = ended(&out, &ctx);
        aborted += u64::from(what == "aborted");
        history.push(format!("{when} {n}: {what}"));
        check_after_crash(&r.envelopes, &b, &ctx);
    }
    // The points are drawn so most runs crash; a seed where they did not would
    // prove little.
    assert!(
        aborted >= KILLS / 2,
        "only {aborted} of {KILLS} runs crashed: {history:?}"
    );
    resume_to_the_end(r, &b, &format!("seed {seed}, crashes: {history:?}"));
    eprintln!(
        "{} mutations in {} groups; seed {seed}: {aborted} crashes: {history:?}",
        r.envelopes.len(),
        r.groups
    );
}

/// SIGTERM stops a run cleanly at any packet, not at a group boundary: what it
/// flushed must still be a prefix of what the replay decides, and the undecided
/// writes it stored must be reconciled by the resume. The signal is raised inside
/// `tap` after a seeded packet (through the installed handler), so the stop point
/// replays; a last stop is a real external SIGTERM sent once `tap` said it is
/// ready, which proves the handler is in place by then.
#[test]
fn sigterm_at_seeded_packets_then_resume_equals_an_uninterrupted_run() {
    let r = reference();
    let dir = tempdir();
    let b = dir.path().join("terminated");
    let seed = seed() ^ 0x5157;
    eprintln!("SIGTERM seed {seed}");
    let mut rng = Rng(seed);
    let mut history = Vec::new();
    for stop in 0..4u64 {
        // A resumed run replays from the first packet: any packet may be the one.
        let n = 1 + rng.below(r.packets - 1);
        let ctx = format!("seed {seed}, SIGTERM {stop} after packet {n}, before: {history:?}");
        let out = run_injected(
            &tap_args(&r.pcap, &b, stop > 0),
            "TIDEMARK_TEST_SIGTERM_AFTER_PACKETS",
            n,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{ctx}: tap ended {}: {err}",
            out.status
        );
        // Every run replays from the first packet, so each one reaches its packet
        // and must say it was interrupted.
        assert!(err.contains("interrupted"), "{ctx}: not stopped: {err}");
        history.push(n);
        check_after_crash(&r.envelopes, &b, &ctx);
    }

    // An external SIGTERM right after the ready line: a clean stop (exit 0), never
    // a death by the signal's default action.
    let ctx = format!("seed {seed}, external SIGTERM after {history:?}");
    let mut child = tidemark()
        .args(tap_args(&r.pcap, &b, true))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tidemark binary starts");
    let mut err = Lines::follow(child.stderr.take().unwrap());
    let ready = err.wait_for("tidemark: tap ready");
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    let status = child.wait().expect("waiting for tap");
    let said = err.rest().join("\n");
    assert!(ready, "{ctx}: tap never said it is ready: {said}");
    assert!(
        sent.success() && status.success(),
        "{ctx}: tap ended {status} after SIGTERM: {said}"
    );
    check_after_crash(&r.envelopes, &b, &ctx);
    resume_to_the_end(r, &b, &ctx);
}

/// A file run parks its undecided writes slim until its last flush (the write id
/// and what `status` lists, not the content: a resume replays the capture). After a
/// crash mid-capture the store holds exactly such records, `status` lists them, a
/// live run refuses the store without writing to it (it could not log writes whose
/// content it lacks), and the resume parks in full what is still undecided at its
/// end: the store equals the uninterrupted one, whose records are full.
#[test]
fn a_crash_leaves_slim_parked_writes_that_only_the_resume_completes() {
    let r = reference();
    let dir = tempdir();
    let b = dir.path().join("slim");
    let half = (r.groups / 2).max(2);
    let out = run_injected(
        &tap_args(&r.pcap, &b, false),
        "TIDEMARK_TEST_ABORT_AFTER_GROUPS",
        half,
    );
    assert_eq!(ended(&out, "crash mid-capture"), "aborted");
    check_after_crash(&r.envelopes, &b, "crash mid-capture");
    let parked = {
        let st = Store::open(&b, &StoreOptions::default().read_only()).unwrap();
        st.list_undecided().unwrap()
    };
    assert!(!parked.is_empty(), "no write undecided at group {half}");
    for (id, u) in &parked {
        assert_eq!(
            u.tracker_state,
            tidemark::commit::SLIM_PARKED,
            "write {id:?} parked in full before the last flush"
        );
        assert!(u.mutation.line.is_none(), "{u:?}");
        assert!(!u.mutation.namespace.is_empty() && !u.mutation.key.is_empty());
    }
    let before = status(&b);
    assert_eq!(
        before["undecided"].as_array().map(Vec::len),
        Some(parked.len()),
        "{before}"
    );

    let live = run(&[
        "tap",
        "--interface",
        "lo",
        "--duration",
        "1",
        "--store",
        s(&b),
    ]);
    let err = String::from_utf8_lossy(&live.stderr);
    assert!(!live.status.success(), "a live run took the store: {err}");
    assert!(err.contains("--resume"), "{err}");
    assert_eq!(status(&b), before, "the refused live run changed the store");

    resume_to_the_end(r, &b, "resume after a crash mid-capture");
    let st = Store::open(&b, &StoreOptions::default().read_only()).unwrap();
    for (id, u) in st.list_undecided().unwrap() {
        assert!(
            u.tracker_state.is_empty() && u.mutation.line.is_some(),
            "write {id:?} still parked slim after the run completed: {u:?}"
        );
    }
}
