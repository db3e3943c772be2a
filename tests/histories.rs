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
//! - Proxied histories (`histories_support/proxy_run.rs`): the clients go through one
//!   `tidemark proxy` (a route per node, rewriting on; no tap) whose store the
//!   versions are cut from, with the same checkers; about 60% of them restart the
//!   proxy mid-round (SIGKILL or SIGTERM, `ProxyRestart`). The default run adds
//!   seeds `1..=M` per protocol (`HISTORIES_PROXY_CQL`, `HISTORIES_PROXY_MONGO`,
//!   default 8 each: about 100 s) after the tapped ones; `--via tap|proxy|both` (default both)
//!   picks the modes, and a soak alternates them. Sharded histories also run through
//!   a proxy in front of the clients' routers (`HISTORIES_PROXY_SHARDED`, default 4;
//!   no proxy restarts there): the proxy sees no shard and no replication, so a `w:1`
//!   write's fate is unknowable to it and must come out in doubt, never guessed. A crash must leave a capture gap
//!   and a graceful stop must not: the versions the gap refuses are counted
//!   unchecked (not passing), the versions before it are checked.
//!
//! Needs live capture on `lo` (root or CAP_NET_RAW): skipped with a reason locally,
//! failed under CI.

mod histories_support;
mod ready_support;
mod require;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use histories_support::cql_model::{CqlHistory, FaultAction};
use histories_support::cql_run::Harness;
use histories_support::mongo_model::{MFault, Mode, MongoHistory};
use histories_support::mongo_run::MongoHarness;
use histories_support::proxy_run::Via;
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
    /// Versions refused for a capture gap in their history (unchecked).
    refused_versions: usize,
    /// Proxy restarts injected: crashes (SIGKILL), graceful stops (SIGTERM).
    restarts_kill: usize,
    restarts_term: usize,
    /// Time spent on this mode's histories (shrinking included).
    elapsed: Duration,
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
    via: Via,
    seed: u64,
    h: &histories_support::history::History<O, F>,
    c: Checked,
    totals: &mut Totals,
    mut rerun: impl FnMut(&histories_support::history::History<O, F>) -> Checked,
) where
    histories_support::history::History<O, F>: serde::Serialize,
{
    totals.histories += 1;
    totals.refused_versions += c.refused_gap;
    totals.restarts_kill += c.restarts.0;
    totals.restarts_term += c.restarts.1;
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
        println!("histories: {proto} seed {seed} not checked: {why}");
        return;
    }
    if c.divergences.is_empty() {
        return;
    }
    totals.divergences += c.divergences.len();
    totals.failing_seeds.push(seed);
    // Failures go to stdout: CI keeps a part of it, and a flake must be readable there.
    println!(
        "histories: {proto} seed {seed}: {} divergence(s)",
        c.divergences.len()
    );
    for d in c.divergences.iter().take(8) {
        println!("  {d}");
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
        "{proto} ({via:?}) seed {seed} shrunk in {attempts} runs to {} client(s), {} op(s), {} fault(s); divergences: {}",
        small.client_count(),
        small.op_count(),
        small.fault_count(),
        again.divergences.join("; ")
    );
    let mut case = serde_json::json!({
        "note": note,
        "known_defect": null,
        "history": small,
        "via": via,
    });
    if proto == "mongo-sharded" {
        case["mode"] = serde_json::json!(Mode::Sharded);
    }
    let json = serde_json::to_string_pretty(&case).unwrap();
    let dir = std::env::temp_dir().join("tidemark-histories");
    let _ = std::fs::create_dir_all(&dir);
    let mode = if via == Via::Proxy { "proxy-" } else { "" };
    let path = dir.join(format!("{proto}-{mode}seed-{seed}.json"));
    let _ = std::fs::write(&path, &json);
    println!(
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
    if totals.restarts_kill + totals.restarts_term > 0 || proto.contains("proxy") {
        eprintln!(
            "histories: {proto}: proxy restarts injected {} (crashes by SIGKILL {}, graceful stops by SIGTERM {}); versions refused for a capture gap (unchecked) {}",
            totals.restarts_kill + totals.restarts_term,
            totals.restarts_kill,
            totals.restarts_term,
            totals.refused_versions
        );
    }
}

struct Plan {
    soak_minutes: Option<u64>,
    seed_base: Option<u64>,
    cql: u64,
    mongo: u64,
    sharded: u64,
    proxy_cql: u64,
    proxy_mongo: u64,
    proxy_sharded: u64,
    via: String,
}

impl Plan {
    /// The mode of the `k`-th history (0-based) of a protocol whose default run
    /// has `tapped` then `proxied` histories, or None when the run is over. A soak
    /// alternates the modes `--via` allows until its time is up.
    fn mode(&self, k: u64, tapped: u64, proxied: u64, end: Option<Instant>) -> Option<Via> {
        let (tap, proxy) = (self.via != "proxy", self.via != "tap");
        match end {
            Some(end) if Instant::now() >= end => None,
            Some(_) if tap && proxy => Some(if k.is_multiple_of(2) {
                Via::Tap
            } else {
                Via::Proxy
            }),
            Some(_) => Some(if tap { Via::Tap } else { Via::Proxy }),
            None => {
                let tapped = if tap { tapped } else { 0 };
                let proxied = if proxy { proxied } else { 0 };
                if k < tapped {
                    Some(Via::Tap)
                } else if k < tapped + proxied {
                    Some(Via::Proxy)
                } else {
                    None
                }
            }
        }
    }

    /// The seed of a history: in the default run each mode counts its own from 1.
    fn seed(&self, k: u64, tapped: u64, via: Via) -> u64 {
        match (self.seed_base, self.soak_minutes) {
            (Some(b), _) => b + k,
            (None, Some(_)) => 1 + k,
            (None, None) if via == Via::Proxy && self.via != "proxy" => 1 + k - tapped,
            (None, None) => 1 + k,
        }
    }
}

/// The loopback bases of each protocol's harnesses: the tapped ones keep theirs;
/// the proxied ones (nodes at .1.., restore target at .11.., sidecars at .101..).
const CQL_TAP: Ipv4Addr = Ipv4Addr::new(127, 0, 91, 1);
const CQL_PROXY: Ipv4Addr = Ipv4Addr::new(127, 0, 150, 1);
const MONGO_TAP: Ipv4Addr = Ipv4Addr::new(127, 0, 94, 1);
const MONGO_PROXY: Ipv4Addr = Ipv4Addr::new(127, 0, 151, 1);

fn label(proto: &str, via: Via) -> String {
    match via {
        Via::Tap => proto.to_string(),
        Via::Proxy => format!("{proto} via proxy"),
    }
}

/// Each mode's harness and totals, started on first use.
struct Modes<H> {
    harness: [Option<H>; 2],
    totals: [Totals; 2],
}

fn ix(via: Via) -> usize {
    usize::from(via == Via::Proxy)
}

fn cql(plan: &Plan) -> Vec<(String, Totals)> {
    let mut m = Modes::<Harness> {
        harness: [None, None],
        totals: [Totals::default(), Totals::default()],
    };
    let started = Instant::now();
    let end = plan
        .soak_minutes
        .map(|m| started + Duration::from_secs(m * 60));
    let mut k = 0;
    while let Some(via) = plan.mode(k, plan.cql, plan.proxy_cql, end) {
        let seed = plan.seed(k, plan.cql, via);
        k += 1;
        let harness = m.harness[ix(via)].get_or_insert_with(|| match via {
            Via::Tap => Harness::start(CQL_TAP),
            Via::Proxy => Harness::start_via(CQL_PROXY, Via::Proxy),
        });
        let mut h = CqlHistory::generate(seed);
        if via == Via::Proxy {
            h = h.with_proxy_restarts(FaultAction::ProxyRestart);
        }
        harness.snapshot_round = snapshot_round(seed, h.rounds.len());
        let totals = &mut m.totals[ix(via)];
        totals.snapshots += usize::from(harness.snapshot_round.is_some());
        let t = Instant::now();
        let c = run_checked(harness, &h, Inject::None);
        slow("cql", via, seed, t);
        account("cql", via, seed, &h, c, totals, |x| {
            run_checked(harness, x, Inject::None)
        });
        totals.elapsed += t.elapsed();
        if end.is_some() && k.is_multiple_of(20) {
            for via in [Via::Tap, Via::Proxy]
                .into_iter()
                .filter(|v| m.harness[ix(*v)].is_some())
            {
                let t = &m.totals[ix(via)];
                report(&label("cql", via), t, t.elapsed);
            }
        }
    }
    finish("cql", m)
}

/// Names a history that took long (CI's time budget is the sum of them).
fn slow(proto: &str, via: Via, seed: u64, started: Instant) {
    let took = started.elapsed();
    if took > Duration::from_secs(15) {
        eprintln!(
            "histories: {} seed {seed} took {:.1} s",
            label(proto, via),
            took.as_secs_f64()
        );
    }
}

/// Reports each mode that ran, and hands the totals back.
fn finish<H>(proto: &str, m: Modes<H>) -> Vec<(String, Totals)> {
    let mut out = Vec::new();
    for (i, t) in m.totals.into_iter().enumerate() {
        let via = if i == 0 { Via::Tap } else { Via::Proxy };
        if m.harness[i].is_some() {
            report(&label(proto, via), &t, t.elapsed);
            out.push((label(proto, via), t));
        }
    }
    out
}

fn mongo(plan: &Plan) -> Vec<(String, Totals)> {
    let mut m = Modes::<MongoHarness> {
        harness: [None, None],
        totals: [Totals::default(), Totals::default()],
    };
    let started = Instant::now();
    let end = plan
        .soak_minutes
        .map(|m| started + Duration::from_secs(m * 60));
    let mut k = 0;
    while let Some(via) = plan.mode(k, plan.mongo, plan.proxy_mongo, end) {
        let seed = plan.seed(k, plan.mongo, via);
        k += 1;
        let harness = m.harness[ix(via)].get_or_insert_with(|| match via {
            Via::Tap => MongoHarness::start(MONGO_TAP),
            Via::Proxy => MongoHarness::start_via(MONGO_PROXY, Via::Proxy),
        });
        let mut h = MongoHistory::generate(seed);
        if via == Via::Proxy {
            h = h.with_proxy_restarts(MFault::ProxyRestart);
        }
        harness.snapshot_round = snapshot_round(seed, h.rounds.len());
        let totals = &mut m.totals[ix(via)];
        totals.snapshots += usize::from(harness.snapshot_round.is_some());
        let t = Instant::now();
        let c = run_checked_mongo(harness, &h);
        slow("mongo", via, seed, t);
        account("mongo", via, seed, &h, c, totals, |x| {
            run_checked_mongo(harness, x)
        });
        totals.elapsed += t.elapsed();
        if end.is_some() && k.is_multiple_of(20) {
            for via in [Via::Tap, Via::Proxy]
                .into_iter()
                .filter(|v| m.harness[ix(*v)].is_some())
            {
                let t = &m.totals[ix(via)];
                report(&label("mongo", via), t, t.elapsed);
            }
        }
    }
    finish("mongo", m)
}

/// Sharded histories: tapped (`HISTORIES_SHARDED`), then through a proxy in front
/// of the routers (`HISTORIES_PROXY_SHARDED`), as `--via` allows; a soak splits its
/// time between the two.
fn sharded(plan: &Plan) -> Vec<(String, Totals)> {
    let mut out = Vec::new();
    let soak_half = plan.soak_minutes.map(|m| m.div_ceil(2));
    if plan.via != "proxy" {
        let h = ShardedHarness::start(Ipv4Addr::new(127, 0, 162, 1), 21621);
        out.push((
            "mongo-sharded".to_string(),
            sharded_via(plan, h, plan.sharded, soak_half),
        ));
    }
    if plan.via != "tap" {
        let h = ShardedHarness::start_via(Ipv4Addr::new(127, 0, 164, 1), 21631, Via::Proxy);
        out.push((
            "mongo-sharded via proxy".to_string(),
            sharded_via(plan, h, plan.proxy_sharded, soak_half),
        ));
    }
    out
}

fn sharded_via(
    plan: &Plan,
    mut harness: ShardedHarness,
    count: u64,
    soak_minutes: Option<u64>,
) -> Totals {
    let via = harness.via;
    let name = label("mongo-sharded", via);
    let mut totals = Totals::default();
    let started = Instant::now();
    let end = soak_minutes.map(|m| started + Duration::from_secs(m * 60));
    let mut seed = plan.seed_base.unwrap_or(1);
    loop {
        match end {
            Some(end) if Instant::now() >= end => break,
            None if totals.histories as u64 >= count => break,
            _ => {}
        }
        let h = MongoHistory::generate_for(seed, Mode::Sharded);
        if std::env::var_os("HISTORIES_PRINT").is_some() {
            eprintln!("{}", serde_json::to_string(&h).unwrap());
        }
        let c = run_checked_sharded(&mut harness, &h);
        account("mongo-sharded", via, seed, &h, c, &mut totals, |x| {
            run_checked_sharded(&mut harness, x)
        });
        seed += 1;
        if end.is_some() && totals.histories % 20 == 0 {
            report(&name, &totals, started.elapsed());
        }
    }
    report(&name, &totals, started.elapsed());
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
        proxy_cql: env("HISTORIES_PROXY_CQL", 8),
        proxy_mongo: env("HISTORIES_PROXY_MONGO", 8),
        proxy_sharded: env("HISTORIES_PROXY_SHARDED", 4),
        via: args
            .iter()
            .position(|a| a == "--via")
            .and_then(|i| args.get(i + 1).cloned())
            .unwrap_or_else(|| "both".into()),
    };
    assert!(
        ["tap", "proxy", "both"].contains(&plan.via.as_str()),
        "--via is tap, proxy or both"
    );
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
        all.extend(cql(&plan));
    }
    if runs("mongo") {
        all.extend(mongo(&plan));
    }
    if runs("mongo-sharded") {
        all.extend(sharded(&plan));
    }
    let mut failed = false;
    for (proto, t) in &all {
        if t.divergences > 0 {
            println!(
                "histories: {proto}: divergences in seeds {:?} (shrunk cases printed above)",
                t.failing_seeds
            );
            failed = true;
        }
        // A run that checked nothing proves nothing: most histories must be checked.
        if t.unchecked * 5 > t.histories.max(1) {
            println!(
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
