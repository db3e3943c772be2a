//! The CQL checker: each version cut at a dump's moment must equal the cluster's
//! ground truth then, cell by cell (value, write timestamp, TTL or not). A cell may
//! differ only where the rules allow it, and every allowance names the operation:
//!
//! - the cell's writer (known from the value, which names its op), or a deletion
//!   covering the cell, was *ambiguous* at that moment: in flight across the dump
//!   (called before, returned after), or in doubt on the client (timeout, lost
//!   connection) — the replicas may hold it while tidemark rightly leaves it out;
//! - a counter row with an ambiguous increment;
//! - a 2-second TTL cell whose expiry second falls within a second of the moment;
//! - a row the version itself lists as uncertain;
//! - under a clock-skew fault, a cell an LWT wrote (truth's or version's): its
//!   timestamp is the skewed coordinator's clock, which tidemark cannot see.
//!
//! Independently of tidemark, the client oracle is checked against the version and
//! the truth: values of rejected writes and of LWTs that did not apply appear
//! nowhere, and an acknowledged INSERT/UPDATE of `v` is in the final version unless
//! a write or deletion with a timestamp at least as high covers it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::cql_model::{CqlHistory, OpKind, Ts, Write};
use super::cql_run::{unhex, CellV, Cells, Outcome, Ran, Record};

/// What the version at one dump holds.
pub struct Cut {
    /// The version's moment (ns).
    pub at: u64,
    pub cells: Cells,
    /// (table, pk, ck) the version marks uncertain.
    pub uncertain: BTreeSet<(String, i32, i32)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    pub dump: usize,
    pub at: u64,
    pub row: (String, i32, i32),
    pub column: String,
    pub truth: Option<CellV>,
    pub version: Option<CellV>,
    pub why: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dump {} at {}: {} pk {} ck {} col {}: truth {:?} version {:?}: {}",
            self.dump,
            self.at,
            self.row.0,
            self.row.1,
            self.row.2,
            self.column,
            self.truth,
            self.version,
            self.why
        )
    }
}

/// Per op id (batch members included): the top-level op, its write, its timestamp.
struct Index<'a> {
    top: BTreeMap<u32, u32>,
    writes: BTreeMap<u32, (&'a Write, Option<i64>)>,
    kinds: BTreeMap<u32, &'a OpKind>,
    /// The largest clock skew a fault gave a node (µs): a coordinator's own time
    /// (an LWT's ballot) is that far from the client's call..return window.
    skew_us: i64,
}

fn index(h: &CqlHistory, base_us: i64) -> Index<'_> {
    let mut ix = Index {
        top: BTreeMap::new(),
        writes: BTreeMap::new(),
        kinds: BTreeMap::new(),
        skew_us: h
            .rounds
            .iter()
            .flat_map(|r| &r.faults)
            .filter_map(|f| match f {
                super::cql_model::FaultAction::Skew { micros, .. } => Some(micros.abs()),
                _ => None,
            })
            .max()
            .unwrap_or(0),
    };
    for op in h.ops() {
        ix.top.insert(op.id, op.id);
        ix.kinds.insert(op.id, &op.kind);
        match &op.kind {
            OpKind::Write { w, ts } => {
                ix.writes.insert(op.id, (w, Some(base_us + ts.offset())));
            }
            OpKind::Batch { members, ts, .. } => {
                for (k, w) in members.iter().enumerate() {
                    let id = op.id + 1 + k as u32;
                    ix.top.insert(id, op.id);
                    ix.writes.insert(id, (w, Some(base_us + ts)));
                }
            }
            _ => {}
        }
    }
    ix
}

/// The op (batch member id or op id) that wrote a cell of table `t`, from its value.
pub fn owner(col: &str, cell: &CellV) -> Option<u32> {
    let text = |b: Vec<u8>| -> Option<u32> {
        let s = String::from_utf8(b).ok()?;
        s.get(1..)?.parse().ok()
    };
    if let Some(path) = col.strip_prefix("s[") {
        return text(unhex(path.trim_end_matches(']')));
    }
    if col == "n" {
        let b: [u8; 4] = unhex(&cell.value).try_into().ok()?;
        return Some(i32::from_be_bytes(b) as u32);
    }
    text(unhex(&cell.value))
}

/// Cells whose write timestamp the coordinator chose: counters (Cassandra refuses
/// `WRITETIME` of a counter; its value is what counts) and LWTs (the Paxos ballot's
/// time; tidemark takes the request's capture time, ARCHITECTURE "server-side
/// timestamps"). Equal when value and TTL agree and, for an LWT, the version's
/// timestamp falls inside the op's call..return window and the truth's inside it
/// widened by the history's clock skew.
fn same_but_server_timestamp<'r>(
    row: &(String, i32, i32),
    col: &str,
    a: &CellV,
    b: &CellV,
    ix: &Index<'_>,
    rec: &dyn Fn(u32) -> Option<&'r Record>,
) -> bool {
    if a.value != b.value || a.ttl != b.ttl {
        return false;
    }
    if row.0 == "c" {
        return true;
    }
    let Some(id) = owner(col, a) else {
        return false;
    };
    if !matches!(ix.kinds.get(&id), Some(OpKind::Lwt { .. })) {
        return false;
    }
    let Some(r) = rec(id) else { return false };
    let window = (r.call / 1000) as i64 - 1..=(r.ret / 1000) as i64 + 1;
    // Cassandra's coordinator reads its clock in milliseconds for a Paxos ballot
    // (`ClientState.getTimestampForPaxos`: `currentTimeMillis() * 1000`, or the last
    // timestamp + 1), so the ballot may be up to 999 µs before the client's call in
    // microseconds: the window starts at the call's millisecond. (A real-Cassandra
    // history failed on exactly that: ballot ...449001, call after it in the same ms.)
    let call_ms_us = (r.call / 1_000_000 * 1000) as i64;
    let skewed = call_ms_us - 1 - ix.skew_us..=(r.ret / 1000) as i64 + 1 + ix.skew_us;
    // tidemark takes the capture time; the cluster, its (perhaps skewed) clock.
    skewed.contains(&a.ts) && window.contains(&b.ts)
}

/// Whether op `top` was ambiguous for a moment observed over `[lo, hi]`.
fn ambiguous(r: Option<&Record>, lo: u64, hi: u64) -> bool {
    let Some(r) = r else { return false };
    if r.call >= hi {
        return false;
    }
    matches!(r.outcome, Outcome::InDoubt(_)) || r.ret > lo
}

/// How the cells of all versions compared: evidence that a clean run checked something.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// (row, column) pairs present in the truth or the version, over all dumps.
    pub cells: usize,
    /// Of those, equal in value, timestamp and TTL.
    pub equal: usize,
    /// Equal but for a coordinator-chosen timestamp (counters, LWTs).
    pub server_ts: usize,
    /// Different, explained by an ambiguous write or a TTL expiring at the moment.
    pub excused: usize,
    /// In rows the version marks uncertain.
    pub uncertain: usize,
    /// Different, explained by clock skew: an LWT's cell (its timestamp is the
    /// coordinator's clock, which tidemark cannot see: it takes the capture time)
    /// ordered against another write otherwise than in the cluster.
    pub skew: usize,
}

pub fn check(h: &CqlHistory, ran: &Ran, cuts: &[Cut]) -> (Vec<Divergence>, Stats) {
    let mut stats = Stats::default();
    let ix = index(h, ran.base_us);
    let rec = |id: u32| ix.top.get(&id).and_then(|t| ran.records.get(t));
    let mut out = Vec::new();
    for (d, (dump, cut)) in ran.dumps.iter().zip(cuts).enumerate() {
        let lo = dump.t0.min(cut.at);
        let hi = dump.t1.max(cut.at);
        let amb = |id: u32| ambiguous(rec(id), lo, hi);
        let at_secs = cut.at as f64 / 1e9;
        let near_expiry = |id: u32| -> bool {
            let (Some((w, _)), Some(r)) = (ix.writes.get(&id), rec(id)) else {
                return false;
            };
            let ttl = match w {
                Write::Insert { ttl, .. } | Write::Update { ttl, .. } => *ttl,
                _ => None,
            };
            ttl.is_some_and(|t| {
                let t = t as f64;
                at_secs >= r.call as f64 / 1e9 + t - 1.0 && at_secs <= r.ret as f64 / 1e9 + t + 1.0
            })
        };
        let rows: BTreeSet<&(String, i32, i32)> =
            dump.truth.keys().chain(cut.cells.keys()).collect();
        for row in rows {
            let empty = BTreeMap::new();
            let t = dump.truth.get(row).unwrap_or(&empty);
            let v = cut.cells.get(row).unwrap_or(&empty);
            let cols: BTreeSet<&String> = t.keys().chain(v.keys()).collect();
            for col in cols {
                let (tc, vc) = (t.get(col), v.get(col));
                stats.cells += 1;
                if tc == vc {
                    stats.equal += 1;
                    continue;
                }
                if cut.uncertain.contains(row) {
                    stats.uncertain += 1;
                    continue;
                }
                if let (Some(a), Some(b)) = (tc, vc) {
                    if same_but_server_timestamp(row, col, a, b, &ix, &rec) {
                        stats.server_ts += 1;
                        continue;
                    }
                }
                let (table, pk, ck) = (row.0.as_str(), row.1, row.2);
                let excused = if table == "c" {
                    ix.kinds.iter().any(|(id, k)| {
                        matches!(k, OpKind::Counter { pk: p, ck: c, .. } if *p == pk && *c == ck)
                            && amb(*id)
                    })
                } else {
                    let by_owner = [tc, vc]
                        .into_iter()
                        .flatten()
                        .filter_map(|c| owner(col, c))
                        .any(|id| amb(id) || near_expiry(id));
                    let by_deletion = ix
                        .writes
                        .iter()
                        .any(|(id, (w, _))| w.is_deletion() && w.covers(pk, ck, col) && amb(*id));
                    by_owner || by_deletion
                };
                // Under clock skew an LWT's ballot time is the skewed coordinator's
                // clock; tidemark stamps the LWT with its capture time (ARCHITECTURE,
                // server-side timestamps), so it may order it otherwise against a
                // client-timestamped write or deletion (seen in the soak: a range
                // deletion shadowed an LWT insert in the version, not in the cluster).
                let by_skew = table != "c"
                    && ix.skew_us > 0
                    && [tc, vc]
                        .into_iter()
                        .flatten()
                        .filter_map(|c| owner(col, c))
                        .any(|id| matches!(ix.kinds.get(&id), Some(OpKind::Lwt { .. })));
                if excused {
                    stats.excused += 1;
                } else if by_skew {
                    stats.skew += 1;
                } else {
                    out.push(Divergence {
                        dump: d,
                        at: cut.at,
                        row: row.clone(),
                        column: col.clone(),
                        truth: tc.cloned(),
                        version: vc.cloned(),
                        why: "version differs from the cluster's truth and no ambiguous write explains it".into(),
                    });
                }
            }
        }
        // Rejected writes and LWTs that did not apply are nowhere.
        for (source, cells) in [("truth", &dump.truth), ("version", &cut.cells)] {
            for (row, cols) in cells {
                if row.0 == "c" {
                    continue;
                }
                for (col, c) in cols {
                    let Some(id) = owner(col, c) else { continue };
                    if let Some(r) = rec(id) {
                        if matches!(r.outcome, Outcome::Rejected(_) | Outcome::NotApplied) {
                            out.push(Divergence {
                                dump: d,
                                at: cut.at,
                                row: row.clone(),
                                column: col.clone(),
                                truth: dump.truth.get(row).and_then(|x| x.get(col)).cloned(),
                                version: cut.cells.get(row).and_then(|x| x.get(col)).cloned(),
                                why: format!(
                                    "op {id} was {:?} yet its value is in the {source}",
                                    r.outcome
                                ),
                            });
                        }
                    }
                }
            }
        }
    }
    // The client oracle against the final version: acknowledged writes of `v`.
    if let (Some(last), Some(dump)) = (cuts.last(), ran.dumps.last()) {
        let d = cuts.len() - 1;
        for (id, (w, ts)) in &ix.writes {
            let (Write::Insert { pk, ck, ttl: None } | Write::Update { pk, ck, ttl: None }) = w
            else {
                continue;
            };
            let (Some(ts), Some(r)) = (ts, rec(*id)) else {
                continue;
            };
            // Acknowledged after the last version's dump began: not owed to it (the
            // dumps after a proxy crash's gap are not checked, so the last version
            // checked may be mid-history).
            if r.outcome != Outcome::Ok || r.ret > dump.t0 {
                continue;
            }
            let covered_later = ix.writes.iter().any(|(o, (w2, ts2))| {
                o != id && w2.covers(*pk, *ck, "v") && ts2.is_some_and(|t2| t2 >= *ts)
            });
            let lwt_on_row = ix
                .kinds
                .values()
                .any(|k| matches!(k, OpKind::Lwt { pk: p, ck: c, .. } if p == pk && c == ck));
            if covered_later || lwt_on_row {
                continue;
            }
            let row = ("t".to_string(), *pk, *ck);
            let got = last.cells.get(&row).and_then(|c| c.get("v"));
            if got.is_none_or(|c| c.ts < *ts) {
                out.push(Divergence {
                    dump: d,
                    at: last.at,
                    row,
                    column: "v".into(),
                    truth: dump.truth.get(&("t".to_string(), *pk, *ck)).and_then(|c| c.get("v")).cloned(),
                    version: got.cloned(),
                    why: format!("op {id} (ts {ts}) was acknowledged and nothing newer covers it, yet the final version lacks it"),
                });
            }
        }
    }
    (out, stats)
}

/// Whether a history uses `USING TIMESTAMP` anywhere (for reports).
#[allow(dead_code)]
pub fn uses_using(h: &CqlHistory) -> bool {
    h.ops().any(|o| {
        matches!(
            o.kind,
            OpKind::Write {
                ts: Ts::Using(_),
                ..
            }
        )
    })
}
