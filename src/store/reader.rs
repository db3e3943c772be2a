//! Reading the log: a consistent snapshot and the queries `tidemark log`, versions
//! and restore need.
//!
//! A [`Reader`] holds one LMDB read transaction, so everything read through it sees
//! the store as of one committed group, however long it iterates. Every query is a
//! [`Query`]: the reader picks an index (key, then namespace, then the log's own seq
//! and time order) to find candidates, then checks every condition on each candidate,
//! so an index only makes a query faster, never changes its answer.

use std::ops::{Bound, RangeBounds};
use std::sync::RwLockReadGuard;

use heed::{RoTxn, WithTls};

use super::codec;
use super::envelope::{Envelope, OutcomeKind};
use super::error::{Result, StoreError};
use super::open::{corrupt, Store};

/// What to read. Every field set narrows the result; results are in seq order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Seqs from (inclusive).
    pub seq_from: u64,
    /// Seqs until (inclusive).
    pub seq_to: u64,
    /// Commit times from (inclusive), ns since the epoch.
    pub time_from: u64,
    /// Commit times until (inclusive), ns since the epoch.
    pub time_to: u64,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this canonical key (needs `namespace`; ignored without it).
    pub key: Option<String>,
    /// Only this outcome.
    pub outcome: Option<OutcomeKind>,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            seq_from: 0,
            seq_to: u64::MAX,
            time_from: 0,
            time_to: u64::MAX,
            namespace: None,
            key: None,
            outcome: None,
        }
    }
}

impl Query {
    /// Everything.
    pub fn all() -> Query {
        Query::default()
    }

    /// Restricts to a seq range.
    pub fn seqs(mut self, range: impl RangeBounds<u64>) -> Query {
        (self.seq_from, self.seq_to) = inclusive(range);
        self
    }

    /// Restricts to a commit time range (ns since the epoch).
    pub fn commit_times(mut self, range: impl RangeBounds<u64>) -> Query {
        (self.time_from, self.time_to) = inclusive(range);
        self
    }

    /// Restricts to a namespace.
    pub fn namespace(mut self, ns: impl Into<String>) -> Query {
        self.namespace = Some(ns.into());
        self
    }

    /// Restricts to one key of a namespace.
    pub fn key(mut self, ns: impl Into<String>, key: impl Into<String>) -> Query {
        self.namespace = Some(ns.into());
        self.key = Some(key.into());
        self
    }

    /// Restricts to an outcome.
    pub fn outcome(mut self, kind: OutcomeKind) -> Query {
        self.outcome = Some(kind);
        self
    }

    /// Whether a decoded header satisfies every condition.
    fn matches(&self, h: &codec::Header<'_>) -> bool {
        (self.seq_from..=self.seq_to).contains(&h.seq)
            && (self.time_from..=self.time_to).contains(&h.commit_time)
            && self.namespace.as_deref().is_none_or(|ns| ns == h.namespace)
            && (self.namespace.is_none() || self.key.as_deref().is_none_or(|k| k == h.key))
            && self.outcome.is_none_or(|o| o == h.outcome_kind())
    }
}

/// An inclusive `(from, to)` pair from any range; an empty range gives `from > to`.
fn inclusive(range: impl RangeBounds<u64>) -> (u64, u64) {
    let from = match range.start_bound() {
        Bound::Included(&x) => x,
        Bound::Excluded(&x) => x.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let to = match range.end_bound() {
        Bound::Included(&x) => x,
        Bound::Excluded(&0) => return (1, 0),
        Bound::Excluded(&x) => x - 1,
        Bound::Unbounded => u64::MAX,
    };
    (from, to)
}

/// Envelopes of a query, in seq order; each item is a decoded envelope or the
/// error that stopped the iteration.
pub type Envelopes<'r> = Box<dyn Iterator<Item = Result<Envelope>> + 'r>;

/// A consistent read view of a store.
pub struct Reader<'s> {
    pub(super) store: &'s Store,
    pub(super) txn: RoTxn<'s, WithTls>,
    /// Declared after `txn`, so it is released after the transaction ends.
    _gate: RwLockReadGuard<'s, ()>,
}

impl Store {
    /// Opens a read view (an LMDB read transaction). Keep it short-lived in a
    /// long-running process: pages it still sees cannot be reused by the writer.
    pub fn reader(&self) -> Result<Reader<'_>> {
        let gate = self.gate();
        let txn = self.env.read_txn().map_err(self.lmdb("begin read"))?;
        Ok(Reader {
            store: self,
            txn,
            _gate: gate,
        })
    }
}

impl<'s> Reader<'s> {
    /// The envelope at `seq`, if any.
    pub fn get(&self, seq: u64) -> Result<Option<Envelope>> {
        let bytes = self
            .store
            .dbs
            .log
            .get(&self.txn, &seq)
            .map_err(self.store.lmdb("read log"))?;
        bytes.map(|b| self.decode(seq, b)).transpose()
    }

    /// Highest seq in the log (0 when empty).
    pub fn last_seq(&self) -> Result<u64> {
        let last = self
            .store
            .dbs
            .log
            .last(&self.txn)
            .map_err(self.store.lmdb("read log"))?;
        Ok(last.map_or(0, |(seq, _)| seq))
    }

    /// Number of envelopes in the log.
    pub fn len(&self) -> Result<u64> {
        self.store
            .dbs
            .log
            .len(&self.txn)
            .map_err(self.store.lmdb("read log"))
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Envelopes with seqs in `range`.
    pub fn seq_range(&self, range: impl RangeBounds<u64>) -> Result<Envelopes<'_>> {
        self.query(&Query::all().seqs(range))
    }

    /// Envelopes of a namespace.
    pub fn namespace(&self, ns: &str) -> Result<Envelopes<'_>> {
        self.query(&Query::all().namespace(ns))
    }

    /// Envelopes of one key of a namespace.
    pub fn key(&self, ns: &str, key: &str) -> Result<Envelopes<'_>> {
        self.query(&Query::all().key(ns, key))
    }

    /// Envelopes with commit times in `range` (ns since the epoch).
    pub fn commit_times(&self, range: impl RangeBounds<u64>) -> Result<Envelopes<'_>> {
        self.query(&Query::all().commit_times(range))
    }

    /// Envelopes with an outcome.
    pub fn outcome(&self, kind: OutcomeKind) -> Result<Envelopes<'_>> {
        self.query(&Query::all().outcome(kind))
    }

    /// Envelopes matching `query`, in seq order.
    pub fn query(&self, query: &Query) -> Result<Envelopes<'_>> {
        let (from, to) = self.seq_bounds(query)?;
        if from > to {
            return Ok(Box::new(std::iter::empty()));
        }
        let query = query.clone();
        match query.namespace.as_deref() {
            Some(ns) => {
                let seqs = self.index_seqs(ns, query.key.as_deref(), from, to)?;
                let iter = seqs.into_iter().filter_map(move |seq| {
                    match self.store.dbs.log.get(&self.txn, &seq) {
                        Ok(Some(bytes)) => self.filter(&query, seq, bytes),
                        Ok(None) => Some(Err(corrupt(
                            &self.store.path,
                            &format!("by_key names seq {seq}, which the log lacks"),
                        ))),
                        Err(e) => Some(Err(self.store.lmdb("read log")(e))),
                    }
                });
                Ok(Box::new(iter))
            }
            None => {
                let range = self
                    .store
                    .dbs
                    .log
                    .range(&self.txn, &(from..=to))
                    .map_err(self.store.lmdb("read log"))?;
                let iter = range.filter_map(move |item| match item {
                    Ok((seq, bytes)) => self.filter(&query, seq, bytes),
                    Err(e) => Some(Err(self.store.lmdb("read log")(e))),
                });
                Ok(Box::new(iter))
            }
        }
    }

    /// Decodes `bytes` if its header matches `query`.
    fn filter(&self, query: &Query, seq: u64, bytes: &[u8]) -> Option<Result<Envelope>> {
        match codec::decode_header(bytes) {
            Ok(h) if h.seq != seq => Some(Err(self.bad(seq, "seq differs from its key"))),
            Ok(h) if !query.matches(&h) => None,
            Ok(_) => Some(self.decode(seq, bytes)),
            Err(e) => Some(Err(self.bad(seq, &e))),
        }
    }

    /// The log's stored bytes for seqs `first..=last` in seq order, each with its
    /// commit time, handed to `each` until it answers `false`: for copying the log
    /// elsewhere (the repository's segments) without decoding and re-encoding every
    /// mutation. The bytes are in the store's format ([`Store::format`]).
    pub fn for_each_raw(
        &self,
        first: u64,
        last: u64,
        mut each: impl FnMut(u64, u64, &[u8]) -> bool,
    ) -> Result<()> {
        let lmdb = self.store.lmdb("read log");
        for item in self
            .store
            .dbs
            .log
            .range(&self.txn, &(first..=last))
            .map_err(&lmdb)?
        {
            let (seq, bytes) = item.map_err(&lmdb)?;
            let t = super::codec::decode_commit_time(bytes).map_err(|e| self.bad(seq, &e))?;
            if !each(seq, t, bytes) {
                break;
            }
        }
        Ok(())
    }

    fn decode(&self, seq: u64, bytes: &[u8]) -> Result<Envelope> {
        super::upgrade::decode_envelope(self.store.format, bytes).map_err(|e| self.bad(seq, &e))
    }

    fn bad(&self, seq: u64, e: &str) -> StoreError {
        corrupt(&self.store.path, &format!("log entry {seq}: {e}"))
    }

    /// The query's seq bounds narrowed by its commit time bounds. The log is in
    /// commit-time order (appends enforce it), so each time bound is a binary search.
    fn seq_bounds(&self, q: &Query) -> Result<(u64, u64)> {
        let mut from = q.seq_from;
        let mut to = q.seq_to;
        if q.time_from > 0 {
            from = from.max(self.first_seq_at_or_after(q.time_from)?);
        }
        if q.time_to < u64::MAX {
            // Last seq with commit_time <= time_to = first seq after it, minus one.
            let after = self.first_seq_at_or_after(q.time_to + 1)?;
            match after.checked_sub(1) {
                Some(last) => to = to.min(last),
                None => return Ok((1, 0)),
            }
        }
        Ok((from, to))
    }

    /// The first seq whose commit time is at or after `t`; one past the last seq
    /// when there is none.
    fn first_seq_at_or_after(&self, t: u64) -> Result<u64> {
        let log = &self.store.dbs.log;
        let lmdb = self.store.lmdb("read log");
        let Some((first, _)) = log.first(&self.txn).map_err(&lmdb)? else {
            return Ok(1);
        };
        let Some((last, _)) = log.last(&self.txn).map_err(&lmdb)? else {
            return Ok(1);
        };
        // Invariant: every seq < lo has time < t; every seq >= hi has time >= t.
        let (mut lo, mut hi) = (first, last + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let Some((seq, bytes)) = log
                .get_greater_than_or_equal_to(&self.txn, &mid)
                .map_err(&lmdb)?
            else {
                hi = mid;
                continue;
            };
            let time = codec::decode_commit_time(bytes).map_err(|e| self.bad(seq, &e))?;
            if time < t {
                lo = seq + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Seqs in `[from, to]` from the `by_key` index, for a namespace or one key,
    /// in seq order.
    fn index_seqs(&self, ns: &str, key: Option<&str>, from: u64, to: u64) -> Result<Vec<u64>> {
        let lmdb = self.store.lmdb("read by_key");
        let mut prefix = Vec::new();
        match key {
            Some(key) => codec::key_prefix(ns, key, self.store.env.max_key_size(), &mut prefix),
            None => codec::ns_prefix(ns, &mut prefix),
        }
        let mut seqs = Vec::new();
        if key.is_some() {
            // One key's entries are `prefix | seq`: a range scan, already in seq order.
            let mut lo = prefix.clone();
            codec::push_seq(&mut lo, from);
            let mut hi = prefix;
            codec::push_seq(&mut hi, to);
            let range = (
                Bound::Included(lo.as_slice()),
                Bound::Included(hi.as_slice()),
            );
            for item in self
                .store
                .dbs
                .by_key
                .range(&self.txn, &range)
                .map_err(&lmdb)?
            {
                let (entry, ()) = item.map_err(&lmdb)?;
                seqs.extend(codec::seq_of_entry(entry));
            }
        } else {
            for item in self
                .store
                .dbs
                .by_key
                .prefix_iter(&self.txn, &prefix)
                .map_err(&lmdb)?
            {
                let (entry, ()) = item.map_err(&lmdb)?;
                seqs.extend(codec::seq_of_entry(entry).filter(|s| (from..=to).contains(s)));
            }
            seqs.sort_unstable();
        }
        Ok(seqs)
    }
}

#[cfg(test)]
mod tests {
    use super::inclusive;

    #[test]
    fn ranges_become_inclusive_pairs() {
        assert_eq!(inclusive(..), (0, u64::MAX));
        assert_eq!(inclusive(3..7), (3, 6));
        assert_eq!(inclusive(3..=7), (3, 7));
        assert_eq!(inclusive(..0), (1, 0));
        assert_eq!(inclusive(5..), (5, u64::MAX));
        let (from, to) = inclusive(4..4);
        assert!(from > to);
    }
}
