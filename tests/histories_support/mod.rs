//! Randomized histories with faults, Jepsen-style (issue 18). A seed generates a
//! history (`cql_model`, `mongo_model`: rounds of concurrent client writes with faults
//! at their start, `history`); the runner plays it on the in-process testbed while a
//! live tap on `lo` records it (`cql_run`, `mongo_run`); a version is cut with
//! `tidemark version create --at` at every ground-truth dump and compared with the
//! cluster's truth then (`cql_check`, `mongo_check`; MongoDB histories also run
//! through the routers of a sharded cluster with chunk moves, `sharded_run`, checked
//! by the same rules) — joined with a mid-history
//! snapshot when the history took one, whose final version is then restored into a
//! cluster of another size and compared there (`restore_cql`, `restore_mongo`); a
//! failing history is shrunk
//! (`shrink`) and saved as a regression case under `tests/regressions/`. Needs
//! `ready_support` and `require` beside it.
#![allow(dead_code)]

pub mod cql_check;
pub mod cql_model;
pub mod cql_run;
pub mod history;
pub mod mongo_check;
pub mod mongo_model;
pub mod mongo_run;
pub mod proxy_run;
pub mod sharded_run;
pub mod shrink;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};
use tidemark::store::{Store, StoreOptions};
use tidemark::version::model::VersionRow;
use tidemark::version::stored;

use cql_check::{Cut, Divergence};
use cql_model::CqlHistory;
use cql_run::{hex, CellV, Cells, Harness};

/// The testbed's base address, moved to the engineer's own loopback range when
/// `HISTORIES_NET` names one (`HISTORIES_NET=140`: `127.0.9X.Y` becomes
/// `127.0.(140+X).Y`), so runs of these binaries from several worktrees on one
/// machine never share addresses. Unset: `base` as given (what CI runs).
pub fn own_net(base: std::net::Ipv4Addr) -> std::net::Ipv4Addr {
    let Some(net) = std::env::var("HISTORIES_NET")
        .ok()
        .and_then(|v| v.parse::<u8>().ok())
    else {
        return base;
    };
    let o = base.octets();
    std::net::Ipv4Addr::new(o[0], o[1], net.saturating_add(o[2] % 10), o[3])
}

/// A deliberate fault in the checker's input, to prove the checker and the shrinker
/// catch and reduce a divergence (never used on a real run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inject {
    None,
    /// The version "loses" every map element cell.
    DropMapCells,
}

/// The result of one checked history.
#[derive(Debug, Default)]
pub struct Checked {
    pub ops: usize,
    pub faults: usize,
    pub dumps: usize,
    pub in_doubt: usize,
    /// Each with the minimal evidence: moment, key, both sides, why.
    pub divergences: Vec<String>,
    pub stats: cql_check::Stats,
    /// Why the history could not be checked (the tidemark never passed its end).
    pub unchecked: Option<String>,
    /// Versions cut from the mid-history snapshot joined with the log.
    pub snapshot_cuts: usize,
    /// Why the mid-history snapshot could not be taken (a fault may refuse it).
    pub snapshot_failed: Option<String>,
    /// Sharded histories: chunk moves of the history's collection during it.
    pub moves: usize,
    /// Sharded histories: StaleConfig retries of the clients' routers.
    pub stale_retries: u64,
    /// Rows or documents the restore into a cluster of another size compared
    /// directly with the source's truth (0: no restore in this history).
    pub restored: usize,
    /// Of those, the ones equal to the source's truth (the rest: the version's
    /// excused difference, held by the target as the version has it).
    pub restored_as_truth: usize,
    /// Versions refused because a capture gap lies in the history (after a proxy
    /// crash): not checked, so not counted as passing.
    pub refused_gap: usize,
    /// Proxy restarts injected: (crashes, graceful stops).
    pub restarts: (usize, usize),
}

/// Why a version was not cut.
#[derive(Debug)]
pub enum CutErr {
    /// Capture gaps (from, to, ns) overlapping the history: refused, named.
    Gaps(Vec<(u64, u64)>),
    Failed(String),
}

impl std::fmt::Display for CutErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CutErr::Gaps(g) => write!(f, "refused: capture gap(s) {g:?} in the history"),
            CutErr::Failed(e) => f.write_str(e),
        }
    }
}

/// The restart rule, checked after a proxied history: a crash (SIGKILL) must leave
/// a capture gap covering it — what the proxy forwarded after its last group commit
/// may be in no store, and a version across it must not be silently exact-looking —
/// and a graceful stop (SIGTERM: drained, flushed) must not cause one. Returns
/// divergences for what broke it.
fn restart_rule(
    store_dir: &Path,
    restarts: &[proxy_run::Restarted],
    started: u64,
    refused: Option<&Vec<(u64, u64)>>,
) -> Vec<String> {
    let mut out = Vec::new();
    if restarts.is_empty() {
        return out;
    }
    let gaps: Vec<(u64, u64)> = Store::open(store_dir, &StoreOptions::default().read_only())
        .and_then(|s| s.gaps())
        .map(|g| g.iter().map(|g| (g.from, g.to)).collect())
        .unwrap_or_default();
    for r in restarts.iter().filter(|r| r.kill) {
        if !gaps
            .iter()
            .any(|(from, to)| *from <= r.signalled && *to >= r.exited)
        {
            out.push(format!(
                "proxy crash (SIGKILL at {}, exited {}, listening again {}) left no capture gap covering it: what it forwarded after its last group commit may be missing from versions silently (gaps {gaps:?})",
                r.signalled, r.exited, r.listening
            ));
        }
    }
    if !restarts.iter().any(|r| r.kill) {
        if let Some(g) = refused {
            out.push(format!(
                "versions refused for capture gap(s) {g:?} after only graceful proxy restarts ({:?}): no client write could pass the stopped proxy",
                restarts
            ));
        }
        let within: Vec<_> = gaps.iter().filter(|(_, to)| *to >= started).collect();
        if refused.is_none() && !within.is_empty() {
            out.push(format!(
                "capture gap(s) {within:?} recorded after only graceful proxy restarts"
            ));
        }
    }
    out
}

/// What version `name` holds of keyspace `ks`.
pub fn version_cells(store: &Store, name: &str, ks: &str) -> Cells {
    let mut out = Cells::new();
    stored::for_each_row(store, name, |ns, key, row| {
        let Some(table) = ns.strip_prefix(&format!("{ks}.")) else {
            return Ok(true);
        };
        let key: serde_json::Value = serde_json::from_str(key)?;
        let k = (
            table.to_string(),
            key["pk"].as_i64().unwrap_or(-1) as i32,
            key["ck"].as_i64().unwrap_or(-1) as i32,
        );
        let VersionRow::Cql { cells } = row else {
            return Ok(true);
        };
        if cells.is_empty() {
            // A row alive by its primary key alone: the truth lists cells only.
            return Ok(true);
        }
        let entry = out.entry(k).or_default();
        for c in cells {
            let col = match &c.path {
                Some(p) => format!("{}[{}]", c.column, hex(p)),
                None => c.column.to_string(),
            };
            entry.insert(
                col,
                CellV {
                    value: hex(&c.value),
                    ts: c.timestamp,
                    ttl: c.ttl.is_some(),
                },
            );
        }
        Ok(true)
    })
    .unwrap();
    out
}

/// Cuts `tidemark version create --at t` named `name` (joined with `snapshot`, or
/// from the log alone); its moment and uncertain rows.
pub fn cut(
    store_dir: &Path,
    name: &str,
    t: u64,
    ks: &str,
    snapshot: Option<u64>,
) -> Result<Cut, String> {
    cut_in(store_dir, name, t, ks, snapshot, 0).map_err(|e| e.to_string())
}

/// [`cut`] for a history that `started` then: a capture gap that ended before it is
/// accepted (its keyspace did not exist), one overlapping it refuses the version.
pub fn cut_in(
    store_dir: &Path,
    name: &str,
    t: u64,
    ks: &str,
    snapshot: Option<u64>,
    started: u64,
) -> Result<Cut, CutErr> {
    let (at, items) = cut_info(store_dir, name, t, snapshot, started)?;
    let mut uncertain = BTreeSet::new();
    for u in &items {
        let ns = u["namespace"].as_str().unwrap_or("");
        if let Some(table) = ns.strip_prefix(&format!("{ks}.")) {
            let k: serde_json::Value =
                serde_json::from_str(u["key"].as_str().unwrap_or("{}")).unwrap_or_default();
            uncertain.insert((
                table.to_string(),
                k["pk"].as_i64().unwrap_or(-1) as i32,
                k["ck"].as_i64().unwrap_or(-1) as i32,
            ));
        }
    }
    let store = Store::open(store_dir, &StoreOptions::default().read_only())
        .map_err(|e| CutErr::Failed(e.to_string()))?;
    Ok(Cut {
        at,
        cells: version_cells(&store, name, ks),
        uncertain,
    })
}

/// Runs `h`, cuts a version at every dump and checks them.
pub fn run_checked(harness: &mut Harness, h: &CqlHistory, inject: Inject) -> Checked {
    let ran = harness.run(h);
    check_ran(harness, h, ran, inject)
}

/// Cuts a version at every dump of a CQL history that ran and checks them (and, with
/// a snapshot, restores the last one).
pub fn check_ran(
    harness: &mut Harness,
    h: &CqlHistory,
    mut ran: cql_run::Ran,
    inject: Inject,
) -> Checked {
    let mut checked = Checked {
        restarts: (
            ran.restarts.iter().filter(|r| r.kill).count(),
            ran.restarts.iter().filter(|r| !r.kill).count(),
        ),
        ops: h.op_count(),
        faults: h.fault_count(),
        dumps: ran.dumps.len(),
        in_doubt: ran
            .records
            .values()
            .filter(|r| matches!(r.outcome, cql_run::Outcome::InDoubt(_)))
            .count(),
        ..Checked::default()
    };
    let last = ran.dumps.iter().map(|d| d.t1).max().unwrap_or(0);
    if !harness.wait_tidemark(last) {
        checked.unchecked = Some(format!(
            "the tidemark never passed {last} (a capture gap stops it, rightly)"
        ));
        return checked;
    }
    let mut cuts = Vec::new();
    let mut refused = None;
    for (i, d) in ran.dumps.iter().enumerate() {
        let snap = snapshot_for(&ran.snapshot, d.t0, &mut checked);
        match cut_in(
            &harness.store_dir,
            &format!("{}-{i}", ran.keyspace),
            d.t1,
            &ran.keyspace,
            snap,
            ran.started,
        ) {
            Ok(mut c) => {
                if inject == Inject::DropMapCells {
                    for cols in c.cells.values_mut() {
                        cols.retain(|k, _| !k.starts_with("m["));
                    }
                    c.cells.retain(|_, cols| !cols.is_empty());
                }
                cuts.push(c)
            }
            Err(CutErr::Gaps(g)) => {
                refused = Some((i, g));
                break;
            }
            Err(e) => {
                checked.unchecked = Some(format!("version create at dump {i}: {e}"));
                return checked;
            }
        }
    }
    let rule = restart_rule(
        &harness.store_dir,
        &ran.restarts,
        ran.started,
        refused.as_ref().map(|r| &r.1),
    );
    if let Some((i, g)) = &refused {
        // Every later dump is after the gap too: the versions before it are checked.
        checked.refused_gap = ran.dumps.len() - i;
        let first = ran.dumps.first().map_or(0, |d| d.t1);
        ran.dumps.truncate(*i);
        if cuts.is_empty() && rule.is_empty() {
            checked.unchecked = Some(format!(
                "every version refused: capture gap(s) {g:?} (first dump at {first}, restarts {:?})",
                ran.restarts
            ));
            return checked;
        }
    }
    let (divergences, stats) = cql_check::check(h, &ran, &cuts);
    checked.divergences = divergences.iter().map(Divergence::to_string).collect();
    checked.divergences.extend(rule);
    checked.stats = stats;
    if matches!(ran.snapshot, Some(Ok(_))) && inject == Inject::None && !cuts.is_empty() {
        let last = cuts.len() - 1;
        let name = format!("{}-{last}", ran.keyspace);
        let truth = &ran.dumps[last].truth;
        match restore_cql(harness, &name, &ran.keyspace, &cuts[last], truth) {
            Ok((n, same)) => (checked.restored, checked.restored_as_truth) = (n, same),
            Err(e) => checked.divergences.push(format!("restore of {name}: {e}")),
        }
    }
    checked
}

/// The snapshot a version at a dump taken from `t0` on joins: the history's
/// mid-history snapshot once it had finished, else none (the log alone).
fn snapshot_for(
    snapshot: &Option<Result<(u64, u64), String>>,
    t0: u64,
    checked: &mut Checked,
) -> Option<u64> {
    match snapshot {
        Some(Ok((id, done))) if t0 > *done => {
            checked.snapshot_cuts += 1;
            Some(*id)
        }
        Some(Err(e)) => {
            checked.snapshot_failed = Some(e.clone());
            None
        }
        _ => None,
    }
}

/// Starts `tidemark snapshot take --from uri --store dir --json` on `select`
/// (`--keyspace ks`, `--db db`) while the tap appends to the same store.
pub fn spawn_snapshot(store_dir: &Path, uri: &str, select: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "snapshot",
            "take",
            "--json",
            "--parallel",
            "2",
            "--from",
            uri,
        ])
        .arg("--store")
        .arg(store_dir)
        .args(select)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn tidemark snapshot take")
}

/// Waits (≤ 120 s, then kills it by its pid) for a snapshot take: its id and the
/// moment after it finished, or why it failed.
pub fn finish_snapshot(mut child: std::process::Child) -> Result<(u64, u64), String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("snapshot take did not finish in 120 s".into());
            }
        }
    }
    let done = cql_run::now_ns();
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "snapshot take failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let summary = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "summary")
        .ok_or("no summary line")?;
    if summary["finished"] != true {
        return Err(format!("snapshot not finished: {summary}"));
    }
    let id = summary["snapshot"].as_u64().ok_or("no snapshot id")?;
    Ok((id, done))
}

/// Runs `tidemark args...`; Ok(stdout) on exit 0, else the exit and stderr.
fn tidemark(args: &[&str]) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "tidemark {} exited {:?}: {}{}",
            args.first().unwrap_or(&""),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Restores version `name` (keyspace `ks`) into the 2-node target with `tidemark
/// restore`, requires `tidemark verify` to find it equal, then compares the target's
/// own merged state directly: every cell equals the version's (restore fidelity) and
/// the source's truth at the version's dump — except rows the version marks
/// uncertain, cells the checker excused in the version (then the target must hold the
/// version's), and 2-second TTL cells (they expire in between). Returns the rows
/// compared and how many of them equal the truth.
fn restore_cql(
    harness: &mut Harness,
    name: &str,
    ks: &str,
    version: &Cut,
    truth: &Cells,
) -> Result<(usize, usize), String> {
    let store = harness.store_dir.to_string_lossy().into_owned();
    let to = format!("cql://{}", harness.target().addresses()[0]);
    tidemark(&[
        "restore",
        "--version",
        name,
        "--store",
        &store,
        "--to",
        &to,
        "--keyspace",
        ks,
        "--replication",
        "SimpleStrategy:2",
        "--json",
    ])?;
    tidemark(&[
        "verify",
        "--version",
        name,
        "--store",
        &store,
        "--against",
        &to,
        "--keyspace",
        ks,
        "--json",
    ])?;
    let target = harness.target.as_ref().expect("target");
    let got = cql_run::cells_of(target.logical_state(), ks);
    let keep =
        |cols: &BTreeMap<String, CellV>, table: &str| -> BTreeMap<String, (String, Option<i64>)> {
            cols.iter()
                .filter(|(_, c)| !c.ttl)
                .map(|(k, c)| {
                    // Counter cells carry the server's timestamps: compared by value.
                    let ts = (table == "t").then_some(c.ts);
                    (k.clone(), (c.value.clone(), ts))
                })
                .collect()
        };
    let mut keys: BTreeSet<&(String, i32, i32)> = truth.keys().collect();
    keys.extend(got.keys());
    keys.extend(version.cells.keys());
    let empty = BTreeMap::new();
    let mut problems = Vec::new();
    let (mut compared, mut same_as_truth) = (0, 0);
    for k in keys {
        if version.uncertain.contains(k) {
            continue;
        }
        let g = keep(got.get(k).unwrap_or(&empty), &k.0);
        let v = keep(version.cells.get(k).unwrap_or(&empty), &k.0);
        let t = keep(truth.get(k).unwrap_or(&empty), &k.0);
        compared += 1;
        if g != v {
            problems.push(format!("{k:?}: target {g:?} version {v:?}"));
        } else if g == t {
            same_as_truth += 1;
        }
        // Otherwise the checker excused the version's difference from the truth at
        // this dump (an ambiguous write), and the target rightly holds the version's.
    }
    if problems.is_empty() {
        Ok((compared, same_as_truth))
    } else {
        Err(format!(
            "the restored cluster differs from the version (verify said equal): {}",
            problems.join("; ")
        ))
    }
}

/// What version `name` holds of `db.c`, by `_id`.
fn version_docs(store: &Store, name: &str, ns: &str) -> mongo_run::Docs {
    let mut out = mongo_run::Docs::new();
    stored::for_each_row(store, name, |n, _, row| {
        if n != ns {
            return Ok(true);
        }
        if let VersionRow::Mongo { document } = row {
            let d = mongodb::bson::Document::from_reader(document.as_slice())?;
            let id = d.get("_id").cloned().unwrap_or(mongodb::bson::Bson::Null);
            out.insert(mongo_run::key(&id), d);
        }
        Ok(true)
    })
    .unwrap();
    out
}

/// Runs a MongoDB history, cuts a version at every dump and checks them.
pub fn run_checked_mongo(
    harness: &mut mongo_run::MongoHarness,
    h: &mongo_model::MongoHistory,
) -> Checked {
    let mut ran = harness.run(h);
    let mut checked = Checked {
        restarts: (
            ran.restarts.iter().filter(|r| r.kill).count(),
            ran.restarts.iter().filter(|r| !r.kill).count(),
        ),
        ops: h.op_count(),
        faults: h.fault_count(),
        dumps: ran.dumps.len(),
        in_doubt: ran
            .records
            .values()
            .filter(|r| matches!(r.outcome, cql_run::Outcome::InDoubt(_)))
            .count(),
        ..Checked::default()
    };
    let last = ran.dumps.iter().map(|d| d.t1).max().unwrap_or(0);
    if !cql_run::wait_tidemark(&harness.store_dir, last) {
        checked.unchecked = Some(format!(
            "the tidemark never passed {last} (a capture gap stops it, rightly)"
        ));
        return checked;
    }
    let ns = format!("{}.c", ran.db);
    let mut cuts = Vec::new();
    let mut refused = None;
    for (i, d) in ran.dumps.iter().enumerate() {
        let name = format!("{}-{i}", ran.db);
        let snap = snapshot_for(&ran.snapshot, d.t0, &mut checked);
        let info = match cut_info(&harness.store_dir, &name, d.t1, snap, ran.started) {
            Ok(x) => x,
            Err(CutErr::Gaps(g)) => {
                refused = Some((i, g));
                break;
            }
            Err(e) => {
                checked.unchecked = Some(format!("version create at dump {i}: {e}"));
                return checked;
            }
        };
        cuts.push(mongo_cut(&harness.store_dir, &name, &ns, info));
    }
    let rule = restart_rule(
        &harness.store_dir,
        &ran.restarts,
        ran.started,
        refused.as_ref().map(|r| &r.1),
    );
    if let Some((i, g)) = &refused {
        // Every later dump is after the gap too: the versions before it are checked.
        checked.refused_gap = ran.dumps.len() - i;
        let first = ran.dumps.first().map_or(0, |d| d.t1);
        ran.dumps.truncate(*i);
        if cuts.is_empty() && rule.is_empty() {
            checked.unchecked = Some(format!(
                "every version refused: capture gap(s) {g:?} (first dump at {first}, restarts {:?})",
                ran.restarts
            ));
            return checked;
        }
    }
    checked.divergences.extend(rule);
    let (divergences, stats) = mongo_check::check(h, &ran, &cuts);
    let rolled_back = if divergences.is_empty() {
        Vec::new()
    } else {
        rolled_back_writes(&harness.store_dir, &ns)
    };
    for d in divergences {
        // Was a known defect (fixed: tests/regressions/mongo-false-rollback.json);
        // still named, as a divergence, when it shows again.
        if let Some(why) = false_rollback(&d, &rolled_back) {
            checked.divergences.push(format!("{d} [{why}]"));
        } else {
            checked.divergences.push(d.to_string());
        }
    }
    if matches!(ran.snapshot, Some(Ok(_))) && !cuts.is_empty() {
        let last = cuts.len() - 1;
        let name = format!("{}-{last}", ran.db);
        match restore_mongo(harness, &name, &ran.db, &cuts[last], &ran.dumps[last].truth) {
            Ok((n, same)) => (checked.restored, checked.restored_as_truth) = (n, same),
            Err(e) => checked.divergences.push(format!("restore of {name}: {e}")),
        }
    }
    checked.stats = cql_check::Stats {
        cells: stats.docs,
        equal: stats.equal,
        server_ts: 0,
        excused: stats.excused,
        uncertain: stats.uncertain,
        skew: 0,
    };
    checked
}

/// Restores version `name` (database `db`) into the 1-member target set, requires
/// `tidemark verify` to find it equal, then compares the target's committed documents
/// directly: each equals the version's, and the source's committed state at the
/// version's dump unless the version marks it uncertain or the checker excused the
/// version's difference (then the target holds the version's). Returns the documents
/// compared and how many of them equal the truth.
fn restore_mongo(
    harness: &mut mongo_run::MongoHarness,
    name: &str,
    db: &str,
    version: &mongo_check::MCut,
    truth: &mongo_run::Docs,
) -> Result<(usize, usize), String> {
    let store = harness.store_dir.to_string_lossy().into_owned();
    let to = harness.target().uri();
    tidemark(&[
        "restore",
        "--version",
        name,
        "--store",
        &store,
        "--to",
        &to,
        "--db",
        db,
        "--json",
    ])?;
    tidemark(&[
        "verify",
        "--version",
        name,
        "--store",
        &store,
        "--against",
        &to,
        "--db",
        db,
        "--json",
    ])?;
    let ns = format!("{db}.c");
    let got = mongo_run::MongoHarness::docs_of(harness.target.as_ref().expect("target"), &ns);
    let mut ids: BTreeSet<&String> = truth.keys().collect();
    ids.extend(got.keys());
    ids.extend(version.docs.keys());
    let mut problems = Vec::new();
    let (mut compared, mut same_as_truth) = (0, 0);
    for id in ids {
        if version.uncertain.contains(id) {
            continue;
        }
        compared += 1;
        let (g, v, t) = (got.get(id), version.docs.get(id), truth.get(id));
        if g != v {
            problems.push(format!("_id {id}: target {g:?} version {v:?}"));
        } else if g == t {
            same_as_truth += 1;
        }
        // Otherwise the checker excused the version's difference from the truth.
    }
    if problems.is_empty() {
        Ok((compared, same_as_truth))
    } else {
        Err(format!(
            "the restored set differs from the version (verify said equal): {}",
            problems.join("; ")
        ))
    }
}

/// Every mutation of `ns` tidemark logged `rolled_back`: (`_id` in the checker's
/// form, op, the op ids its values name), from `tidemark log --outcome rolled_back`.
fn rolled_back_writes(store_dir: &Path, ns: &str) -> Vec<(String, String, Vec<i64>)> {
    let Ok(out) = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "log",
            "--json",
            "--outcome",
            "rolled_back",
            "--ns",
            ns,
            "--store",
        ])
        .arg(store_dir)
        .output()
    else {
        return Vec::new();
    };
    fn ints(v: &serde_json::Value, out: &mut Vec<i64>) {
        match v {
            serde_json::Value::Number(n) => out.extend(n.as_i64()),
            serde_json::Value::Array(a) => a.iter().for_each(|x| ints(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| ints(x, out)),
            _ => {}
        }
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|m| {
            let id = uncertain_id(&m["key"].to_string())?;
            let mut named = Vec::new();
            ints(&m["values"], &mut named);
            Some((id, m["op"].as_str().unwrap_or("").to_string(), named))
        })
        .collect()
}

/// Whether a divergence is a false rollback (the defect the replay
/// `writes_that_survive_a_failover_are_not_rolled_back` guards): the set's committed
/// document carries the value of a write tidemark logged `rolled_back` (or the set
/// deleted a document by a delete tidemark logged `rolled_back`).
fn false_rollback(
    d: &mongo_check::MDivergence,
    rolled_back: &[(String, String, Vec<i64>)],
) -> Option<String> {
    let on_id = rolled_back.iter().filter(|(id, _, _)| *id == d.id);
    match &d.truth {
        Some(doc) => {
            let named = mongo_check::named_ops(doc);
            on_id
                .filter(|(_, op, vals)| op != "delete" && vals.iter().any(|v| named.contains(&(*v as u32))))
                .map(|(_, op, vals)| format!("false rollback: tidemark logged this {op} (values {vals:?}) rolled_back, the set committed it"))
                .next()
        }
        None => on_id
            .filter(|(_, op, _)| op == "delete")
            .map(|_| {
                "false rollback: tidemark logged this delete rolled_back, the set committed it"
                    .to_string()
            })
            .next(),
    }
}

/// The `_id` of an uncertain item's key (`{"_id": 5}`) in the checker's form.
fn uncertain_id(key: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(key).ok()?;
    let id = match &v["_id"] {
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) if i32::try_from(i).is_ok() => mongodb::bson::Bson::Int32(i as i32),
            Some(i) => mongodb::bson::Bson::Int64(i),
            None => return Some(key.to_string()),
        },
        serde_json::Value::String(s) => mongodb::bson::Bson::String(s.clone()),
        _ => return Some(key.to_string()),
    };
    Some(mongo_run::key(&id))
}

/// Version `name` of namespace `ns` as the MongoDB checker compares it: the moment
/// and uncertain items [`cut_info`] returned, and the documents the store holds.
pub fn mongo_cut(
    store_dir: &Path,
    name: &str,
    ns: &str,
    (at, items): (u64, Vec<serde_json::Value>),
) -> mongo_check::MCut {
    let store = Store::open(store_dir, &StoreOptions::default().read_only()).expect("open store");
    let uncertain = items
        .iter()
        .filter(|u| u["namespace"] == ns)
        .filter_map(|u| uncertain_id(u["key"].as_str().unwrap_or("")))
        .collect();
    mongo_check::MCut {
        at,
        docs: version_docs(&store, name, ns),
        uncertain,
    }
}

/// `tidemark version create --at t --json` joined with `snapshot` (or `--snapshot
/// none`: the store holds other histories' snapshots): the version's moment and
/// uncertain items. A version that did not join the snapshot asked for is an error.
///
/// Refused for capture gaps, it is cut again with `--allow-gaps`: gaps that all
/// ended before the history `started` are accepted (its keyspace or database did
/// not exist yet, so they hide none of its writes — an earlier history's proxy
/// crash); any other refuses it ([`CutErr::Gaps`], named).
fn cut_info(
    store_dir: &Path,
    name: &str,
    t: u64,
    snapshot: Option<u64>,
    started: u64,
) -> Result<(u64, Vec<serde_json::Value>), CutErr> {
    let create = |allow_gaps: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidemark"));
        cmd.args(["version", "create", "--store"])
            .arg(store_dir)
            .args(["--name", name, "--json", "--snapshot"])
            .arg(snapshot.map_or("none".to_string(), |id| id.to_string()))
            .arg("--at")
            .arg(format!("{:.6}", t as f64 / 1e9));
        if allow_gaps {
            cmd.arg("--allow-gaps");
        }
        cmd.output().map_err(|e| CutErr::Failed(e.to_string()))
    };
    let mut out = create(false)?;
    if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("capture gap") {
        out = create(true)?;
        if out.status.success() {
            let info: serde_json::Value = serde_json::from_slice(&out.stdout)
                .map_err(|e| CutErr::Failed(format!("version JSON: {e}")))?;
            let time = |v: &serde_json::Value| {
                tidemark::report::parse_time(v.as_str().unwrap_or("")).unwrap_or(0)
            };
            let gaps: Vec<(u64, u64)> = info["gaps"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| (time(&g["from"]), time(&g["to"])))
                .collect();
            let within: Vec<(u64, u64)> = gaps
                .iter()
                .copied()
                .filter(|(_, to)| *to >= started)
                .collect();
            if !within.is_empty() || gaps.is_empty() {
                return Err(CutErr::Gaps(within));
            }
        }
    }
    if !out.status.success() {
        return Err(CutErr::Failed(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    let info: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| CutErr::Failed(format!("version JSON: {e}")))?;
    let at = tidemark::report::parse_time(info["at"].as_str().unwrap_or(""))
        .map_err(|e| CutErr::Failed(format!("version at: {e}")))?;
    if info["snapshot"].as_u64() != snapshot {
        return Err(CutErr::Failed(format!(
            "version {name} joined snapshot {} instead of {snapshot:?}",
            info["snapshot"]
        )));
    }
    Ok((
        at,
        info["uncertain"].as_array().cloned().unwrap_or_default(),
    ))
}

/// A saved failing history: replayed by `tests/history_regressions.rs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Regression {
    /// Why it was saved, and what it showed.
    pub note: String,
    /// `Some(reason)`: a known, not yet fixed defect; the replay is ignored.
    pub known_defect: Option<String>,
    pub history: CqlHistory,
    /// What recorded it: the tap (files saved before the proxied mode say nothing,
    /// and were all tapped) or the proxy.
    #[serde(default)]
    pub via: proxy_run::Via,
}

/// A saved MongoDB history (`tests/regressions/mongo-*.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MongoRegression {
    pub note: String,
    pub known_defect: Option<String>,
    /// Where it replays (cases saved before sharded histories have none: the set).
    #[serde(default)]
    pub mode: mongo_model::Mode,
    pub history: mongo_model::MongoHistory,
    /// What recorded it (absent in older files: the tap).
    #[serde(default)]
    pub via: proxy_run::Via,
}
