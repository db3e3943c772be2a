//! Undecided MongoDB writes indexed by what replication facts can decide them, so a
//! fetched oplog entry or a moved commit point looks at the writes it can concern
//! instead of every undecided write (which made a busy `w:1` workload with its
//! replication in sight quadratic).
//!
//! The index may hold more than it should (a write decided or re-timed since it
//! was noted): callers re-check each candidate against the write itself, so the
//! index only has to be a superset, which it is as long as every change of a
//! write's optime is noted.

use std::collections::BTreeSet;

use crate::store::OpTime;

#[derive(Debug, Default)]
pub(super) struct PendingIndex {
    /// (optime timestamp, write id) of writes with an optime.
    by_ts: BTreeSet<(u64, u64)>,
    /// (optime term, write id) of writes with an optime.
    by_term: BTreeSet<(i64, u64)>,
    /// Writes whose reply carried no optime.
    without_optime: BTreeSet<u64>,
}

impl PendingIndex {
    /// Notes write `wid` with its current optime.
    pub(super) fn note(&mut self, wid: u64, optime: Option<OpTime>) {
        match optime {
            Some(o) => {
                self.by_ts.insert((o.ts, wid));
                self.by_term.insert((o.t, wid));
            }
            None => {
                self.without_optime.insert(wid);
            }
        }
    }

    /// Forgets write `wid` as noted with `optime`.
    pub(super) fn forget(&mut self, wid: u64, optime: Option<OpTime>) {
        match optime {
            Some(o) => {
                self.by_ts.remove(&(o.ts, wid));
                self.by_term.remove(&(o.t, wid));
            }
            None => {
                self.without_optime.remove(&wid);
            }
        }
    }

    /// Writes an oplog entry at `ts` may be: those with that optime, and those
    /// without one. In write-id order, as a scan of every write would find them.
    pub(super) fn for_entry(&self, ts: u64) -> BTreeSet<u64> {
        let mut out: BTreeSet<u64> = self
            .by_ts
            .range((ts, 0)..=(ts, u64::MAX))
            .map(|(_, wid)| *wid)
            .collect();
        out.extend(self.without_optime.iter().copied());
        out
    }

    /// Writes a commit point `cp` can decide: those it covers (at or before its
    /// timestamp, or of an older term — see `replication::covers`) and those without
    /// an optime (a new term can roll them back). In write-id order.
    pub(super) fn for_commit_point(&self, cp: OpTime) -> BTreeSet<u64> {
        let mut out: BTreeSet<u64> = self
            .by_ts
            .range(..=(cp.ts, u64::MAX))
            .map(|(_, wid)| *wid)
            .collect();
        out.extend(self.by_term.range(..(cp.t, 0)).map(|(_, wid)| *wid));
        out.extend(self.without_optime.iter().copied());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit::replication::covers;

    fn ot(ts: u64, t: i64) -> OpTime {
        OpTime { ts, t }
    }

    /// Every write a commit point covers is a candidate, whatever the terms: the
    /// index is a superset of what a scan with `covers` finds.
    #[test]
    fn commit_point_candidates_include_every_covered_write() {
        let writes: Vec<(u64, Option<OpTime>)> = (0..60u64)
            .map(|i| {
                let o = match i % 4 {
                    0 => None,
                    1 => Some(ot(i * 7 % 50, 1)),
                    2 => Some(ot(i * 3 % 50, 2)),
                    _ => Some(ot(i % 50, -1)),
                };
                (i, o)
            })
            .collect();
        let mut idx = PendingIndex::default();
        for (wid, o) in &writes {
            idx.note(*wid, *o);
        }
        for cp in [ot(10, 1), ot(25, 2), ot(3, 3), ot(40, -1), ot(0, 1)] {
            let got = idx.for_commit_point(cp);
            for (wid, o) in &writes {
                let needed = o.is_none_or(|o| covers(cp, o));
                assert!(!needed || got.contains(wid), "cp {cp:?} missed {wid} {o:?}");
            }
        }
    }

    #[test]
    fn entry_candidates_are_its_optime_and_the_unknown() {
        let mut idx = PendingIndex::default();
        idx.note(1, Some(ot(5, 1)));
        idx.note(2, Some(ot(6, 1)));
        idx.note(3, None);
        idx.note(4, Some(ot(5, 2)));
        assert_eq!(idx.for_entry(5), BTreeSet::from([1, 3, 4]));
        idx.forget(4, Some(ot(5, 2)));
        idx.forget(3, None);
        assert_eq!(idx.for_entry(5), BTreeSet::from([1]));
        assert_eq!(idx.for_entry(6), BTreeSet::from([2]));
    }
}
