//! Dropping the oldest part of the log once a repository holds it (issue #16: "a
//! segment is dropped locally only after the repository confirms it").
//!
//! [`Store::drop_log_through`] removes log entries from the local start up to a
//! seq, with their `by_key` index entries — the only other table keyed by seqs
//! (undecided writes are keyed by write id and hold no seq; checkpoints, schema,
//! prepared statements, gaps, snapshots and versions are not log entries and stay).
//! It records where the local log now starts in `meta` ([`Dropped`]), in the same
//! transaction as each chunk of deletions, so a drop killed midway leaves a store
//! that says exactly what it still holds.
//!
//! What the store keeps about the dropped part:
//! - the seq counter (`next_seq`) is untouched: new appends continue the sequence,
//!   so the repository's chain of segments stays contiguous;
//! - the commit time of the last dropped entry, so a writer reopening a store whose
//!   log was dropped whole still refuses appends that would go back in time, and a
//!   restarted run settles its orphans after it;
//! - the repository it went to (its URL with any credentials removed), so `status`
//!   and a refused `version create` can name it.
//!
//! Whether the repository confirmed the seqs is the caller's proof to bring
//! (`repo push` reads the repository's manifests): the store cannot know it.
//!
//! LMDB never shrinks its data file: the pages freed here go to its free list and
//! later appends reuse them, so the file stops growing once drops keep pace with
//! appends (it does not get smaller).

use serde::{Deserialize, Serialize};

use super::codec;
use super::error::{Result, StoreError};
use super::meta;
use super::open::{corrupt, invalid, Store};

/// Log entries removed per write transaction: short turns beside a tap appending.
const CHUNK: usize = 10_000;

/// Where the local log starts after a drop (`meta` key `dropped`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    /// Every seq up to this one was dropped; the local log starts after it.
    pub through_seq: u64,
    /// Commit time of the last dropped entry (ns since the epoch).
    pub last_commit_time: u64,
    /// The repository that held them, without credentials.
    pub repository: String,
    /// Wall time of the drop (ns since the epoch).
    pub at: u64,
}

/// What one drop removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DropReport {
    /// Log entries removed.
    pub entries: u64,
    /// The first seq the local log now holds (or would hold: the next append's
    /// when everything was dropped).
    pub log_start: u64,
    /// Every seq up to this one is gone locally.
    pub through_seq: u64,
}

impl Store {
    /// Where the log was dropped to, if it ever was.
    pub fn dropped(&self) -> Result<Option<Dropped>> {
        let lmdb = self.lmdb("read meta");
        let _gate = self.gate();
        let txn = self.env.read_txn().map_err(&lmdb)?;
        meta::get(&self.dbs.meta, &txn, meta::DROPPED)
            .map_err(&lmdb)?
            .map_err(|e| corrupt(&self.path, &e))
    }

    /// The first seq the local log can hold: 1, or one past the last dropped seq.
    pub fn log_start(&self) -> Result<u64> {
        Ok(self.dropped()?.map_or(1, |d| d.through_seq + 1))
    }

    /// Removes every log entry with a seq up to `through` (and their index
    /// entries), recording that the log now starts after it and that `repository`
    /// (a URL without credentials) holds them. Seqs past the log's end are refused;
    /// a `through` before the current start removes nothing. Allowed through a side
    /// handle ([`Store::open_side`]) while a run appends: it deletes at the other
    /// end of the log, in transactions of 10 000 entries.
    pub fn drop_log_through(&self, through: u64, repository: &str) -> Result<DropReport> {
        if self.read_only {
            return Err(StoreError::ReadOnly {
                path: self.path.clone(),
            });
        }
        let next_seq = self.next_seq()?;
        if through >= next_seq {
            return Err(invalid(
                &self.path,
                &format!(
                    "cannot drop the log through seq {through}: it ends at {}",
                    next_seq - 1
                ),
            ));
        }
        let mut report = DropReport {
            log_start: self.log_start()?,
            through_seq: self.log_start()? - 1,
            entries: 0,
        };
        while report.through_seq < through {
            let (n, last) = loop {
                match self.drop_chunk(through, repository) {
                    Err(StoreError::MapFull { .. }) if self.grow_map() => continue,
                    other => break other?,
                }
            };
            report.entries += n;
            report.through_seq = last;
            report.log_start = last + 1;
        }
        Ok(report)
    }

    /// One transaction: up to [`CHUNK`] entries from the start, their index
    /// entries, and the new start. Returns how many went and the new last dropped
    /// seq.
    fn drop_chunk(&self, through: u64, repository: &str) -> Result<(u64, u64)> {
        let lmdb = self.lmdb("drop log");
        let max_key = self.env.max_key_size();
        let _gate = self.gate();
        let mut txn = self.env.write_txn().map_err(&lmdb)?;
        let before: Option<Dropped> = meta::get(&self.dbs.meta, &txn, meta::DROPPED)
            .map_err(&lmdb)?
            .map_err(|e| corrupt(&self.path, &e))?;
        let start = before.as_ref().map_or(1, |d| d.through_seq + 1);
        let mut index = Vec::new();
        let mut last = (start - 1, before.as_ref().map_or(0, |d| d.last_commit_time));
        let mut n = 0u64;
        for item in self
            .dbs
            .log
            .range(&txn, &(start..=through))
            .map_err(&lmdb)?
            .take(CHUNK)
        {
            let (seq, bytes) = item.map_err(&lmdb)?;
            let h = codec::decode_header(bytes)
                .map_err(|e| corrupt(&self.path, &format!("log entry {seq}: {e}")))?;
            let mut key = Vec::new();
            codec::key_prefix(h.namespace, h.key, max_key, &mut key);
            codec::push_seq(&mut key, seq);
            index.push(key);
            last = (seq, h.commit_time);
            n += 1;
        }
        // No entry left in the range (a stretch with no mutations, e.g. all of it
        // dropped already): the start moves to `through` all the same.
        if n < CHUNK as u64 {
            last.0 = through;
        }
        for key in &index {
            self.dbs.by_key.delete(&mut txn, key).map_err(&lmdb)?;
        }
        self.dbs
            .log
            .delete_range(&mut txn, &(start..=last.0))
            .map_err(&lmdb)?;
        let now = crate::capture::Timestamp::now().0;
        let dropped = Dropped {
            through_seq: last.0,
            last_commit_time: last.1,
            repository: repository.to_string(),
            at: now,
        };
        meta::put(&self.dbs.meta, &mut txn, meta::DROPPED, &dropped).map_err(&lmdb)?;
        txn.commit().map_err(&lmdb)?;
        Ok((n, last.0))
    }
}

impl super::Reader<'_> {
    /// [`Store::dropped`] as of this read view.
    pub fn dropped(&self) -> Result<Option<Dropped>> {
        meta::get(&self.store.dbs.meta, &self.txn, meta::DROPPED)
            .map_err(self.store.lmdb("read meta"))?
            .map_err(|e| corrupt(&self.store.path, &e))
    }

    /// The first seq the local log can hold (1 unless a drop removed a prefix),
    /// as of this read view.
    pub fn log_start(&self) -> Result<u64> {
        Ok(self.dropped()?.map_or(1, |d| d.through_seq + 1))
    }

    /// The last seq the log held, dropped or not (0 when nothing was ever
    /// appended): where a push continues from.
    pub fn end_seq(&self) -> Result<u64> {
        Ok(self.last_seq()?.max(self.log_start()? - 1))
    }

    /// Commit time of the last entry the log held, dropped or not (0: none).
    pub fn last_commit_time(&self) -> Result<u64> {
        let last = self.last_seq()?;
        let dropped = self.dropped()?.map_or(0, |d| d.last_commit_time);
        if last == 0 {
            return Ok(dropped);
        }
        Ok(self
            .get(last)?
            .map_or(dropped, |e| e.mutation.commit_time.max(dropped)))
    }
}
