//! The MongoDB checker: each version cut at a dump's moment must hold exactly the
//! set's majority-committed documents then (whole BSON documents, field order
//! included). A document may differ only when an op touching its `_id` was
//! ambiguous at that moment: in flight across the dump, in doubt on the client
//! (network error, timeout, unknown commit result), or a w:0/w:1 write returned less
//! than `W1_WINDOW` before it (its majority commit may land on either side of the
//! moment as tidemark and the set see it). A w:1 write a partitioned primary
//! acknowledged and a rollback removed is absent from the truth, so any version
//! after the window that holds it diverges. Independently, the values of aborted
//! transactions and rejected writes appear in no document of truth or version.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use mongodb::bson::{Bson, Document};

use super::cql_run::{Outcome, Record};
use super::mongo_model::{MongoHistory, W};
use super::mongo_run::{key, Docs, MRan};

/// How long after its return a w:0/w:1 write stays ambiguous (ns): the set's
/// heartbeat and replication round trips (250 ms, 500 ms awaits) several times.
pub const W1_WINDOW: u64 = 2_500_000_000;

pub struct MCut {
    pub at: u64,
    pub docs: Docs,
    pub uncertain: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct MDivergence {
    pub dump: usize,
    pub at: u64,
    pub id: String,
    pub truth: Option<Document>,
    pub version: Option<Document>,
    pub why: String,
}

impl fmt::Display for MDivergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dump {} at {}: _id {}: truth {:?} version {:?}: {}",
            self.dump, self.at, self.id, self.truth, self.version, self.why
        )
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct MStats {
    pub docs: usize,
    pub equal: usize,
    pub excused: usize,
    pub uncertain: usize,
}

/// Op ids a document's values name (`v`, `f`, `tags`).
pub fn named_ops(d: &Document) -> Vec<u32> {
    let mut out = Vec::new();
    for k in ["v", "f"] {
        if let Some(Bson::Int32(v)) = d.get(k) {
            out.push(*v as u32);
        }
    }
    if let Some(Bson::Array(a)) = d.get("tags") {
        out.extend(a.iter().filter_map(|b| b.as_i32()).map(|v| v as u32));
    }
    out
}

pub fn check(h: &MongoHistory, ran: &MRan, cuts: &[MCut]) -> (Vec<MDivergence>, MStats) {
    let mut stats = MStats::default();
    let mut out = Vec::new();
    let ops: BTreeMap<u32, _> = h.ops().map(|o| (o.id, o)).collect();
    let rec = |id: u32| -> Option<&Record> { ran.records.get(&id) };
    for (d, (dump, cut)) in ran.dumps.iter().zip(cuts).enumerate() {
        let lo = dump.t0.min(cut.at);
        let hi = dump.t1.max(cut.at);
        let ambiguous = |id: u32| -> bool {
            let (Some(op), Some(r)) = (ops.get(&id), rec(id)) else {
                return false;
            };
            if r.call >= hi {
                return false;
            }
            matches!(r.outcome, Outcome::InDoubt(_))
                || r.ret > lo
                || (op.w != W::Majority && r.ret + W1_WINDOW > lo)
        };
        let ids: BTreeSet<&String> = dump.truth.keys().chain(cut.docs.keys()).collect();
        for id in ids {
            stats.docs += 1;
            let (t, v) = (dump.truth.get(id), cut.docs.get(id));
            if t == v {
                stats.equal += 1;
                continue;
            }
            if cut.uncertain.contains(id) {
                stats.uncertain += 1;
                continue;
            }
            let excused = ops.values().any(|op| {
                op.ids().iter().any(|i| key(&Bson::Int32(*i)) == *id) && ambiguous(op.id)
            });
            if excused {
                stats.excused += 1;
            } else {
                // The evidence: every op on this `_id`, timed against the moment.
                let evidence: Vec<String> = ops
                    .values()
                    .filter(|op| op.ids().iter().any(|i| key(&Bson::Int32(*i)) == *id))
                    .map(|op| match rec(op.id) {
                        Some(r) => format!(
                            "op {} {:?} w:{:?} call {:+} ms ret {:+} ms {:?}",
                            op.id,
                            op.kind,
                            op.w,
                            (r.call as i64 - cut.at as i64) / 1_000_000,
                            (r.ret as i64 - cut.at as i64) / 1_000_000,
                            r.outcome
                        ),
                        None => format!("op {} not run", op.id),
                    })
                    .collect();
                out.push(MDivergence {
                    dump: d,
                    at: cut.at,
                    id: id.clone(),
                    truth: t.cloned(),
                    version: v.cloned(),
                    why: format!(
                        "version differs from the set's committed state and no ambiguous write explains it; ops on it: [{}]",
                        evidence.join("; ")
                    ),
                });
            }
        }
        for (source, docs) in [("truth", &dump.truth), ("version", &cut.docs)] {
            for (id, doc) in docs {
                for op in named_ops(doc) {
                    if let Some(r) = rec(op) {
                        if matches!(r.outcome, Outcome::Rejected(_) | Outcome::NotApplied) {
                            out.push(MDivergence {
                                dump: d,
                                at: cut.at,
                                id: id.clone(),
                                truth: dump.truth.get(id).cloned(),
                                version: cut.docs.get(id).cloned(),
                                why: format!(
                                    "op {op} was {:?} yet its value is in the {source}",
                                    r.outcome
                                ),
                            });
                        }
                    }
                }
            }
        }
    }
    (out, stats)
}
