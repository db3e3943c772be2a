//! Appending to the log: group commit of mutations and of the state that must move
//! with them.
//!
//! One call is one LMDB write transaction, so one fsync under
//! [`Durability::SyncPerGroup`](super::Durability): the caller (the commit tracker)
//! decides how many decisions make a group. Everything in a call is all or nothing:
//! the mutations, their index entries, the next seq, and the [`TxnExtras`] (flow
//! checkpoints, undecided writes taken or parked, gaps, tidemark), so after a crash
//! the capture resumes exactly after the last committed group.

use std::ops::Range;

use heed::PutFlags;

use super::codec;
use super::envelope::Mutation;
use super::error::{Result, StoreError};
use super::meta;
use super::open::{invalid, Store, WriterState};
use super::records::{Checkpoint, Gap, Policy, Undecided};

/// State to commit in the same transaction as a batch of mutations.
#[derive(Debug, Clone, Default)]
pub struct TxnExtras {
    /// Capture checkpoints, by source id (replacing earlier ones).
    pub checkpoints: Vec<(String, Checkpoint)>,
    /// Write ids of undecided writes this batch decides: removed from `writes`.
    /// Removals apply before `undecided` insertions.
    pub decided: Vec<Vec<u8>>,
    /// Writes seen but not decided yet: stored in `writes` by write id.
    pub undecided: Vec<(Vec<u8>, Undecided)>,
    /// Capture gaps to record.
    pub gaps: Vec<Gap>,
    /// New tidemark (ns since the epoch); must not be below the current one.
    pub tidemark: Option<u64>,
    /// New policy.
    pub policy: Option<Policy>,
}

impl Store {
    /// Appends `mutations` in order in one transaction and returns their seqs: a
    /// contiguous range, in the order given.
    ///
    /// Refuses the whole batch (writing nothing) if a commit time goes below the
    /// previous one, or a namespace is empty or longer than
    /// [`codec::MAX_NAMESPACE_LEN`]: the log is in commit order and time queries rely
    /// on it.
    pub fn append_batch(&self, mutations: &[Mutation]) -> Result<Range<u64>> {
        self.append_batch_with(mutations, &TxnExtras::default())
    }

    /// [`Store::append_batch`] plus `extras`, all in one transaction. With no
    /// mutations it commits just the extras (e.g. a checkpoint or tidemark advance).
    pub fn append_batch_with(
        &self,
        mutations: &[Mutation],
        extras: &TxnExtras,
    ) -> Result<Range<u64>> {
        let mut guard = self.writer()?;
        let w = &mut *guard;
        self.validate(w, mutations, extras)?;
        self.encode_batch(w, mutations)?;

        self.index_keys(w, mutations);

        let first = w.next_seq;
        let end = first + mutations.len() as u64;
        // A full map aborts the transaction (nothing written); the map grows and the
        // same group is written again, so a long capture never stops for it.
        let next_gap = loop {
            match self.write_group(w, extras) {
                Err(StoreError::MapFull { .. }) if self.grow_map() => continue,
                other => break other?,
            }
        };

        // Only now that it is durable does the writer's view move on.
        w.next_seq = end;
        if let Some(last) = mutations.last() {
            w.last_commit_time = last.commit_time;
        }
        if extras.tidemark.is_some() {
            w.tidemark = extras.tidemark;
        }
        w.next_gap = next_gap;
        Ok(first..end)
    }

    /// Builds the batch's `by_key` entries (namespace and key prefix, then seq) in
    /// the writer's scratch, sorted: inserting them in key order touches each B-tree
    /// page once per run of neighbours instead of once per mutation.
    fn index_keys(&self, w: &mut WriterState, mutations: &[Mutation]) {
        let max_key = self.env.max_key_size();
        w.index_bytes.clear();
        w.index_spans.clear();
        for (i, m) in mutations.iter().enumerate() {
            codec::key_prefix(&m.namespace, &m.key, max_key, &mut w.key);
            codec::push_seq(&mut w.key, w.next_seq + i as u64);
            let start = w.index_bytes.len();
            w.index_bytes.extend_from_slice(&w.key);
            w.index_spans.push((start, w.index_bytes.len()));
        }
        let bytes = &w.index_bytes;
        w.index_spans
            .sort_unstable_by(|a, b| bytes[a.0..a.1].cmp(&bytes[b.0..b.1]));
    }

    /// One transaction: the encoded envelopes (in seq order, appended), their sorted
    /// index entries, the next seq and the extras. Returns the next gap number.
    fn write_group(&self, w: &WriterState, extras: &TxnExtras) -> Result<u64> {
        let lmdb = self.lmdb("append");
        let _gate = self.gate();
        let mut txn = self.env.write_txn().map_err(&lmdb)?;
        let first = w.next_seq;
        let mut start = 0;
        for (i, end) in w.ends.iter().enumerate() {
            let seq = first + i as u64;
            let value = &w.values[start..*end];
            start = *end;
            // Seqs only grow, so APPEND skips the B-tree search and fills pages fully.
            self.dbs
                .log
                .put_with_flags(&mut txn, PutFlags::APPEND, &seq, value)
                .map_err(&lmdb)?;
        }
        for &(from, to) in &w.index_spans {
            let key = &w.index_bytes[from..to];
            self.dbs.by_key.put(&mut txn, key, &()).map_err(&lmdb)?;
        }
        let end = first + w.ends.len() as u64;
        if end != first {
            meta::put(&self.dbs.meta, &mut txn, meta::NEXT_SEQ, &end).map_err(&lmdb)?;
        }
        let next_gap = self.write_extras(&mut txn, w, extras)?;
        txn.commit().map_err(&lmdb)?;
        Ok(next_gap)
    }

    fn validate(&self, w: &WriterState, mutations: &[Mutation], extras: &TxnExtras) -> Result<()> {
        let mut last = w.last_commit_time;
        for (i, m) in mutations.iter().enumerate() {
            codec::check_namespace(&m.namespace)
                .map_err(|e| invalid(&self.path, &format!("mutation {i}: {e}")))?;
            if m.commit_time < last {
                return Err(invalid(
                    &self.path,
                    &format!(
                        "mutation {i}: commit time {} is before the log's last {last}",
                        m.commit_time
                    ),
                ));
            }
            last = m.commit_time;
        }
        for id in extras
            .decided
            .iter()
            .chain(extras.undecided.iter().map(|(id, _)| id))
        {
            codec::check_id(id).map_err(|e| invalid(&self.path, &format!("write id: {e}")))?;
        }
        for (source, _) in &extras.checkpoints {
            if source.is_empty() || source.len() > codec::MAX_ID_LEN {
                return Err(invalid(&self.path, "checkpoint source id of bad length"));
            }
        }
        if let (Some(new), Some(old)) = (extras.tidemark, w.tidemark) {
            if new < old {
                return Err(invalid(
                    &self.path,
                    &format!("tidemark {new} is before the current {old}"),
                ));
            }
        }
        Ok(())
    }

    /// Encodes every envelope into the writer's buffer before the transaction
    /// starts, so the write lock is held for puts only.
    fn encode_batch(&self, w: &mut WriterState, mutations: &[Mutation]) -> Result<()> {
        let mut values = std::mem::take(&mut w.values);
        values.clear();
        w.ends.clear();
        for (i, m) in mutations.iter().enumerate() {
            values = codec::encode_envelope_into(w.next_seq + i as u64, m, values)
                .map_err(|e| invalid(&self.path, &format!("mutation {i}: encode: {e}")))?;
            w.ends.push(values.len());
        }
        w.values = values;
        Ok(())
    }

    /// Writes the extras; returns the next gap number.
    fn write_extras(
        &self,
        txn: &mut heed::RwTxn<'_>,
        w: &WriterState,
        extras: &TxnExtras,
    ) -> Result<u64> {
        let lmdb = self.lmdb("append extras");
        let encode_err =
            |what: &str, e: String| invalid(&self.path, &format!("{what}: encode: {e}"));
        for (source, checkpoint) in &extras.checkpoints {
            let bytes = codec::encode(checkpoint).map_err(|e| encode_err("checkpoint", e))?;
            self.dbs.flows.put(txn, source, &bytes).map_err(&lmdb)?;
        }
        for id in &extras.decided {
            self.dbs.writes.delete(txn, id).map_err(&lmdb)?;
        }
        for (id, undecided) in &extras.undecided {
            let bytes = codec::encode(undecided).map_err(|e| encode_err("undecided write", e))?;
            self.dbs.writes.put(txn, id, &bytes).map_err(&lmdb)?;
        }
        let mut next_gap = w.next_gap;
        for gap in &extras.gaps {
            let bytes = codec::encode(gap).map_err(|e| encode_err("gap", e))?;
            self.dbs
                .meta
                .put(txn, &meta::gap_key(next_gap), &bytes)
                .map_err(&lmdb)?;
            next_gap += 1;
        }
        if next_gap != w.next_gap {
            meta::put(&self.dbs.meta, txn, meta::NEXT_GAP, &next_gap).map_err(&lmdb)?;
        }
        if let Some(tidemark) = extras.tidemark {
            meta::put(&self.dbs.meta, txn, meta::TIDEMARK, &tidemark).map_err(&lmdb)?;
        }
        if let Some(policy) = &extras.policy {
            meta::put(&self.dbs.meta, txn, meta::POLICY, policy).map_err(&lmdb)?;
        }
        Ok(next_gap)
    }
}
