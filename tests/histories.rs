//! `histories`: randomized CQL and MongoDB histories with faults, each version cut
//! at each ground-truth dump checked against the testbed's own truth (issue 18; the
//! rules are in `histories_support/cql_check.rs` and `mongo_check.rs`).
//!
//! A test binary without libtest's harness, so it takes its own arguments:
//!
//! Every fifth history also takes a snapshot (`tidemark snapshot take`) while one of
//! its rounds writes; the versions cut after it finished join it (and must say so)
//! and are checked like the others; its final version is restored (`tidemark
//! restore`) into a cluster of another size (CQL: 2 nodes; MongoDB: a 1-member set),
//! `tidemark verify` must find it equal, and the target's own state is compared with
//! the version and with the source's truth directly.
//!
//! - no arguments (what `cargo test --test histories` and CI run): seeds `1..=N` per
//!   protocol (`HISTORIES_CQL`, default 50; `HISTORIES_MONGO`, default 30;
//!   `HISTORIES_SHARDED`, default 10: MongoDB histories through the routers of a
//!   sharded cluster with chunk moves, `histories_support/sharded_run.rs`). Every
//!   version must equal the truth up to the checker's named allowances; a failing
//!   history is shrunk (`HISTORIES_SHRINK_RUNS`, default 30 runs; 0 = no shrinking)
//!   and printed as a regression case, and the run fails.
//! - `--soak --minutes M [--seed-base S]`: random seeds for M minutes per protocol;
//!   reports histories/hour, operations checked, faults injected, in-doubt
//!   operations, versions and cells compared, and divergences.
//! - `--protocol cql|mongo|mongo-sharded|all` (default all; `both` is an older name
//!   for all). `HISTORIES_PRINT=1` prints each sharded history as JSON before it runs
//!   (to reduce one by hand).
//!
//! Needs live capture on `lo` (root or CAP_NET_RAW): skipped with a reason locally,
//! failed under CI.

mod histories_support;
mod ready_support;
mod require;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use histories_support::cql_model::CqlHistory;
use histories_support::cql_run::Harness;
use histories_support::mongo_model::{Mode, MongoHistory};
use histories_support::mongo_run::MongoHarness;
use histories_support::sharded_run::{run_checked_sharded, ShardedHarness};
use histories_support::{run_checked, run_checked_mongo, shrink, Checked, Inject};

#[derive(Default)]
struct Totals {
    histories: usize,
    unchecked: usize,
    ops: usize,
    faults: usize,
    dumps: usize,
    in_doubt: usize,
    divergences: usize,
    cells: usize,
    equal: usize,
    server_ts: usize,
    excused: usize,
    uncertain: usize,
    skew: usize,
    failing_seeds: Vec<u64>,
    /// Faults injected, by kind.
    fault_kinds: std::collections::BTreeMap<String, usize>,
    snapshots: usize,
    snapshot_failed: usize,
    snapshot_cuts: usize,
    restores: usize,
    restored: usize,
    restored_as_truth: usize,
    /// Sharded: chunk moves of the histories' collections, and StaleConfig retries
    /// of the clients' routers.
    moves: usize,
    stale_retries: u64,
}

/// Every `SNAPSHOT_EVERY`-th history takes a snapshot mid-history (versions after it
/// join it) and restores its final version into a cluster of another size: the
/// snapshot, restore and verify processes cost time, and CI's budget is bounded.
const SNAPSHOT_EVERY: u64 = 5;

/// The round a history's snapshot is taken in (while its clients write), if any.
fn snapshot_round(seed: u64, rounds: usize) -> Option<usize> {
    seed.is_multiple_of(SNAPSHOT_EVERY).then_some(rounds / 2)
}

/// Records one checked history; on a divergence, shrinks it with `rerun` and saves the
/// case (`proto` names it).
fn account<O: Clone, F: Clone + std::fmt::Debug>(
    proto: &str,
    seed: u64,
    h: &histories_support::history::History<O, F>,
    c: Checked,
    totals: &mut Totals,
    mut rerun: impl FnMut(&histories_support::history::History<O, F>) -> Checked,
) where
    histories_support::history::History<O, F>: serde::Serialize,
{
    totals.histories += 1;
    totals.ops += c.ops;
    totals.faults += c.faults;
    for f in h.rounds.iter().flat_map(|r| &r.faults) {
        let name = format!("{f:?}");
        let kind = name.split([' ', '{', '(']).next().unwrap_or("").to_string();
        *totals.fault_kinds.entry(kind).or_default() += 1;
    }
    totals.dumps += c.dumps;
    totals.in_doubt += c.in_doubt;
    totals.cells += c.stats.cells;
    totals.equal += c.stats.equal;
    totals.server_ts += c.stats.server_ts;
    totals.excused += c.stats.excused;
    totals.uncertain += c.stats.uncertain;
    totals.skew += c.stats.skew;
    totals.snapshot_cuts += c.snapshot_cuts;
    totals.moves += c.moves;
    totals.stale_retries += c.stale_retries;
    if let Some(why) = &c.snapshot_failed {
        totals.snapshot_failed += 1;
        eprintln!("histories: {proto} seed {seed}: no snapshot: {why}");
    }
    if c.restored > 0 {
        totals.restores += 1;
        totals.restored += c.restored;
        totals.restored_as_truth += c.restored_as_truth;
    }
    if let Some(why) = &c.unchecked {
        totals.unchecked += 1;
        eprintln!("histories: {proto} seed {seed} not checked: {why}");
        return;
    }
    if c.divergences.is_empty() {
        return;
    }
    totals.divergences += c.divergences.len();
    totals.failing_seeds.push(seed);
    eprintln!(
        "histories: {proto} seed {seed}: {} divergence(s)",
        c.divergences.len()
    );
    for d in c.divergences.iter().take(8) {
        eprintln!("  {d}");
    }
    // HISTORIES_SHRINK_RUNS=0 reports without shrinking (a survey of many seeds).
    let budget = std::env::var("HISTORIES_SHRINK_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    if budget == 0 {
        return;
    }
    let (small, attempts) = shrink::shrink(h, budget, |x| {
        let r = rerun(x);
        r.unchecked.is_none() && !r.divergences.is_empty()
    });
    let again = rerun(&small);
    let note = format!(
        "{proto} seed {seed} shrunk in {attempts} runs to {} client(s), {} op(s), {} fault(s); divergences: {}",
        small.client_count(),
        small.op_count(),
        small.fault_count(),
        again.divergences.join("; ")
    );
    let mut case = serde_json::json!({
        "note": note,
        "known_defect": null,
        "history": small,
    });
    if proto == "mongo-sharded" {
        case["mode"] = serde_json::json!(Mode::Sharded);
    }
    let json = serde_json::to_string_pretty(&case).unwrap();
    let dir = std::env::temp_dir().join("tidemark-histories");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{proto}-seed-{seed}.json"));
    let _ = std::fs::write(&path, &json);
    eprintln!(
        "histories: shrunk case (copy to tests/regressions/): {}\n{json}",
        path.display()
    );
}

fn report(proto: &str, totals: &Totals, elapsed: Duration) {
    let per_hour = totals.histories as f64 / elapsed.as_secs_f64().max(1e-9) * 3600.0;
    eprintln!(
        "histories: {proto}: {} histories ({} unchecked) in {:.1} s ({per_hour:.0}/hour), {} operations checked, {} faults injected, {} in-doubt operations, {} versions compared, {} divergences{}",
        totals.histories,
        totals.unchecked,
        elapsed.as_secs_f64(),
        totals.ops,
        totals.faults,
        totals.in_doubt,
        totals.dumps,
        totals.divergences,
        if totals.failing_seeds.is_empty() {
            String::new()
        } else {
            format!(" (seeds {:?})", totals.failing_seeds)
        }
    );
    eprintln!(
        "histories: {proto}: cells (CQL) or documents (MongoDB) compared {}: equal {}, equal but for a coordinator timestamp {}, different and explained by an ambiguous write {}, in items the version marks uncertain {}, an LWT's cell ordered otherwise under clock skew {}",
        totals.cells, totals.equal, totals.server_ts, totals.excused, totals.uncertain, totals.skew
    );
    eprintln!(
        "histories: {proto}: faults by kind {:?}",
        totals.fault_kinds
    );
    eprintln!(
        "histories: {proto}: snapshots taken mid-history {} ({} refused), versions joined with one {}; restores into another size {}, rows/documents compared with the source {} (equal to its truth {}, the rest as the version's excused difference)",
        totals.snapshots - totals.snapshot_failed,
        totals.snapshot_failed,
        totals.snapshot_cuts,
        totals.restores,
        totals.restored,
        totals.restored_as_truth
    );
    if proto == "mongo-sharded" {
        eprintln!(
            "histories: {proto}: chunk moves of the histories' collections {} (injected moveChunk/stale-router faults and balancer bursts), StaleConfig retries of the clients' routers {}",
            totals.moves, totals.stale_retries
        );
    }
}

struct Plan {
    soak_minutes: Option<u64>,
    seed_base: Option<u64>,
    cql: u64,
    mongo: u64,
    sharded: u64,
}

fn cql(plan: &Plan) -> Totals {
    let mut harness = Harness::start(Ipv4Addr::new(127, 0, 91, 1));
    let mut totals = Totals::default();
    let started = Instant::now();
    let end = plan
        .soak_minutes
        .map(|m| started + Duration::from_secs(m * 60));
    let mut seed = plan.seed_base.unwrap_or(1);
    loop {
        match end {
            Some(end) if Instant::now() >= end => break,
            None if totals.histories as u64 >= plan.cql => break,
            _ => {}
        }
        let h = CqlHistory::generate(seed);
        harness.snapshot_round = snapshot_round(seed, h.rounds.len());
        totals.snapshots += usize::from(harness.snapshot_round.is_some());
        let c = run_checked(&mut harness, &h, Inject::None);
        account("cql", seed, &h, c, &mut totals, |x| {
            run_checked(&mut harness, x, Inject::None)
        });
        seed += 1;
        if end.is_some() && totals.histories % 20 == 0 {
            report("cql", &totals, started.elapsed());
        }
    }
    report("cql", &totals, started.elapsed());
    totals
}

fn mongo(plan: &Plan) -> Totals {
    let mut harness = MongoHarness::start(Ipv4Addr::new(127, 0, 94, 1));
    let mut totals = Totals::default();
    let started = Instant::now();
    let end = plan
        .soak_minutes
        .map(|m| started + Duration::from_secs(m * 60));
    let mut seed = plan.seed_base.unwrap_or(1);
    loop {
        match end {
            Some(end) if Instant::now() >= end => break,
            None if totals.histories as u64 >= plan.mongo => break,
            _ => {}
        }
        let h = MongoHistory::generate(seed);
        harness.snapshot_round = snapshot_round(seed, h.rounds.len());
        totals.snapshots += usize::from(harness.snapshot_round.is_some());
        let c = run_checked_mongo(&mut harness, &h);
        account("mongo", seed, &h, c, &mut totals, |x| {
            run_checked_mongo(&mut harness, x)
        });
        seed += 1;
        if end.is_some() && totals.histories % 20 == 0 {
            report("mongo", &totals, started.elapsed());
        }
    }
    report("mongo", &totals, started.elapsed());
    totals
}

fn sharded(plan: &Plan) -> Totals {
    let mut harness = ShardedHarness::start(Ipv4Addr::new(127, 0, 162, 1), 21621);
    let mut totals = Totals::default();
    let started = Instant::now();
    let end = plan
        .soak_minutes
        .map(|m| started + Duration::from_secs(m * 60));
    let mut seed = plan.seed_base.unwrap_or(1);
    loop {
        match end {
            Some(end) if Instant::now() >= end => break,
            None if totals.histories as u64 >= plan.sharded => break,
            _ => {}
        }
        let h = MongoHistory::generate_for(seed, Mode::Sharded);
        if std::env::var_os("HISTORIES_PRINT").is_some() {
            eprintln!("{}", serde_json::to_string(&h).unwrap());
        }
        let c = run_checked_sharded(&mut harness, &h);
        account("mongo-sharded", seed, &h, c, &mut totals, |x| {
            run_checked_sharded(&mut harness, x)
        });
        seed += 1;
        if end.is_some() && totals.histories % 20 == 0 {
            report("mongo-sharded", &totals, started.elapsed());
        }
    }
    report("mongo-sharded", &totals, started.elapsed());
    totals
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        // `cargo test -- --list`: one logical test.
        println!("histories: test");
        return;
    }
    let value = |flag: &str| -> Option<u64> {
        let i = args.iter().position(|a| a == flag)?;
        Some(
            args.get(i + 1)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{flag} needs a number")),
        )
    };
    let protocol = args
        .iter()
        .position(|a| a == "--protocol")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| "all".into());
    assert!(
        ["cql", "mongo", "mongo-sharded", "both", "all"].contains(&protocol.as_str()),
        "--protocol is cql, mongo, mongo-sharded or all"
    );
    let runs = |p: &str| protocol == p || protocol == "all" || protocol == "both";
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let soak = args.iter().any(|a| a == "--soak");
    let plan = Plan {
        soak_minutes: soak.then(|| value("--minutes").unwrap_or(10)),
        seed_base: value("--seed-base").or_else(|| {
            soak.then(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
                    << 20
            })
        }),
        cql: env("HISTORIES_CQL", 50),
        mongo: env("HISTORIES_MONGO", 30),
        sharded: env("HISTORIES_SHARDED", 10),
    };
    if !require::live_capture() {
        return;
    }
    if let Some(m) = plan.soak_minutes {
        eprintln!(
            "histories: soak, {m} min per protocol, from seed {}",
            plan.seed_base.unwrap_or(1)
        );
    }
    let mut all = Vec::new();
    if runs("cql") {
        all.push(("cql", cql(&plan)));
    }
    if runs("mongo") {
        all.push(("mongo", mongo(&plan)));
    }
    if runs("mongo-sharded") {
        all.push(("mongo-sharded", sharded(&plan)));
    }
    let mut failed = false;
    for (proto, t) in &all {
        if t.divergences > 0 {
            eprintln!(
                "histories: {proto}: divergences in seeds {:?} (shrunk cases printed above)",
                t.failing_seeds
            );
            failed = true;
        }
        // A run that checked nothing proves nothing: most histories must be checked.
        if t.unchecked * 5 > t.histories.max(1) {
            eprintln!(
                "histories: {proto}: {} of {} histories could not be checked",
                t.unchecked, t.histories
            );
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
}
