//! Randomized histories with faults, Jepsen-style (issue 18). A seed generates a
//! history (`cql_model`, `mongo_model`: rounds of concurrent client writes with faults
//! at their start, `history`); the runner plays it on the in-process testbed while a
//! live tap on `lo` records it (`cql_run`, `mongo_run`); a version is cut with
//! `tidemark version create --at` at every ground-truth dump and compared with the
//! cluster's truth then (`cql_check`, `mongo_check`); a failing history is shrunk
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
pub mod shrink;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};
use tidemark::store::{Store, StoreOptions};
use tidemark::version::model::VersionRow;
use tidemark::version::stored;

use cql_check::{Cut, Divergence};
use cql_model::CqlHistory;
use cql_run::{hex, CellV, Cells, Harness};

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
}

/// What version `name` holds of keyspace `ks`.
fn version_cells(store: &Store, name: &str, ks: &str) -> Cells {
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
                None => c.column.clone(),
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

/// Cuts `tidemark version create --at t` named `name`; its moment and uncertain rows.
fn cut(store_dir: &Path, name: &str, t: u64, ks: &str) -> Result<Cut, String> {
    let (at, items) = cut_info(store_dir, name, t)?;
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
    let store =
        Store::open(store_dir, &StoreOptions::default().read_only()).map_err(|e| e.to_string())?;
    Ok(Cut {
        at,
        cells: version_cells(&store, name, ks),
        uncertain,
    })
}

/// Runs `h`, cuts a version at every dump and checks them.
pub fn run_checked(harness: &mut Harness, h: &CqlHistory, inject: Inject) -> Checked {
    let ran = harness.run(h);
    let mut checked = Checked {
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
    for (i, d) in ran.dumps.iter().enumerate() {
        match cut(
            &harness.store_dir,
            &format!("{}-{i}", ran.keyspace),
            d.t1,
            &ran.keyspace,
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
            Err(e) => {
                checked.unchecked = Some(format!("version create at dump {i}: {e}"));
                return checked;
            }
        }
    }
    let (divergences, stats) = cql_check::check(h, &ran, &cuts);
    checked.divergences = divergences.iter().map(Divergence::to_string).collect();
    checked.stats = stats;
    checked
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
    let ran = harness.run(h);
    let mut checked = Checked {
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
    for (i, d) in ran.dumps.iter().enumerate() {
        let name = format!("{}-{i}", ran.db);
        let info = match cut_info(&harness.store_dir, &name, d.t1) {
            Ok(x) => x,
            Err(e) => {
                checked.unchecked = Some(format!("version create at dump {i}: {e}"));
                return checked;
            }
        };
        let store = Store::open(&harness.store_dir, &StoreOptions::default().read_only())
            .expect("open store");
        let uncertain = info
            .1
            .iter()
            .filter(|u| u["namespace"] == ns.as_str())
            .filter_map(|u| uncertain_id(u["key"].as_str().unwrap_or("")))
            .collect();
        cuts.push(mongo_check::MCut {
            at: info.0,
            docs: version_docs(&store, &name, &ns),
            uncertain,
        });
    }
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
    checked.stats = cql_check::Stats {
        cells: stats.docs,
        equal: stats.equal,
        server_ts: 0,
        excused: stats.excused,
        uncertain: stats.uncertain,
    };
    checked
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

/// `tidemark version create --at t --json`: the version's moment and uncertain items.
fn cut_info(store_dir: &Path, name: &str, t: u64) -> Result<(u64, Vec<serde_json::Value>), String> {
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["version", "create", "--store"])
        .arg(store_dir)
        .args(["--name", name, "--json", "--at"])
        .arg(format!("{:.6}", t as f64 / 1e9))
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let info: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("version JSON: {e}"))?;
    let at = tidemark::report::parse_time(info["at"].as_str().unwrap_or(""))
        .map_err(|e| format!("version at: {e}"))?;
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
}

/// A saved MongoDB history (`tests/regressions/mongo-*.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MongoRegression {
    pub note: String,
    pub known_defect: Option<String>,
    pub history: mongo_model::MongoHistory,
}
