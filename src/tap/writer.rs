//! The store side of a tap run: group commits with the checkpoint in the same
//! transaction (written by the [`Committer`] thread), and the resume rule that a
//! replay's first mutations must equal what the store already holds.

use anyhow::bail;

use super::committer::{Committer, Group, Publish};
use super::resume::{ResumeState, Skip};
use super::TapReport;
use crate::commit::{CommitTracker, Flush, Parking};
use crate::store::{Checkpoint, Policy, Store, TxnExtras, Undecided};

/// Appends flushes to the store, skipping what a resumed run already stored.
pub(super) struct Writer<'a, 's> {
    pub(super) store: &'a Store,
    /// Writes the groups, in order, on its own thread.
    pub(super) committer: Committer<'s>,
    pub(super) source_id: &'static str,
    pub(super) state: ResumeState,
    pub(super) skip: Skip,
    /// The tidemark of the last group handed to the committer (the store's once
    /// that group is written): a group carries a tidemark only when it is newer.
    pub(super) stored_tidemark: u64,
    /// The replay has caught up with what the store holds (always, for a run that
    /// is not resumed). Until then nothing is written: the replay's undecided-write
    /// changes are relative to its own earlier flushes, which were not written, and
    /// writing them would list writes the store already logged as undecided.
    pub(super) caught_up: bool,
    pub(super) report: TapReport,
    pub(super) packets: u64,
    pub(super) last_ts: u64,
    /// Someone asked for the run's progress (the committer publishes it).
    pub(super) publishes: bool,
    /// A live run's requests in flight, to store with the next commit
    /// ([`Writer::set_in_flight`]).
    pub(super) in_flight_next: Option<Vec<(Vec<u8>, Undecided)>>,
    /// The in-flight set the store holds now (replaced as a whole).
    pub(super) in_flight_stored: Vec<(Vec<u8>, Undecided)>,
    /// A proxy's run: the wall-clock time its input was last found empty (every
    /// event stamped before it, less a moment, was taken). The checkpoint's time is
    /// the later of it and the last event's, so a crash's gap starts no earlier than
    /// needed (`record_crash_time`). 0 for other runs: a live capture's packets may
    /// wait in the kernel's buffer, and a file's time is its packets'.
    pub(super) quiet_at: u64,
}

impl Writer<'_, '_> {
    /// The requests a live run's decoders hold now: the next commit stores them in
    /// place of the set stored before (nothing is written when it did not change).
    pub(super) fn set_in_flight(&mut self, now: Vec<(Vec<u8>, Undecided)>) {
        self.in_flight_next = Some(now);
    }

    /// Takes the tracker's flush and commits it. Where a resumed run's replay
    /// catches up with the store (its flush reaches past the stored mutations, or
    /// is the last one), the flush carries the whole undecided state, so the
    /// store's undecided writes become the replay's whatever moment the
    /// interrupted run stopped at.
    pub(super) fn flush(
        &mut self,
        tracker: &mut CommitTracker,
        complete: bool,
        last: bool,
    ) -> anyhow::Result<()> {
        let ready = tracker.ready_len() as u64;
        let catches_up = !self.caught_up
            && (ready > self.skip.mutations || (last && ready == self.skip.mutations));
        // A file run parks undecided writes slim until its last flush, which parks
        // in full whatever is undecided then (see `Parking`); a live run's input
        // cannot be replayed, so it parks in full throughout.
        let parking = if self.source_id == super::resume::SOURCE_ID && !last {
            Parking::Slim
        } else {
            Parking::Full
        };
        if last && self.source_id == super::resume::SOURCE_ID {
            tracker.repark_all();
        }
        let flush = if catches_up {
            self.committer.drain()?;
            let stored: Vec<Vec<u8>> = self
                .store
                .list_undecided()?
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            self.caught_up = true;
            tracker.take_full_flush(&stored, parking)
        } else {
            tracker.take_flush(parking)
        };
        if let Some(list) = self.committer.take_spare() {
            tracker.reuse_ready_list(list);
        }
        self.commit(flush, None, complete)
    }

    pub(super) fn commit(
        &mut self,
        mut flush: Flush,
        policy: Option<Policy>,
        complete: bool,
    ) -> anyhow::Result<()> {
        // Mutations the store already has (a resumed run): check and drop.
        let already = (self.skip.mutations as usize).min(flush.mutations.len());
        if already > 0 {
            self.committer.drain()?;
        }
        for m in flush.mutations.drain(..already) {
            let seq = self.skip.next_seq;
            let reader = self.store.reader()?;
            let stored = match reader.get(seq)? {
                Some(stored) => Some(stored),
                // Pushed and dropped after the repository confirmed it: nothing
                // left here to compare with.
                None if seq < reader.log_start()? => None,
                None => bail!("resume: seq {seq} is missing from the store"),
            };
            drop(reader);
            if stored.is_some_and(|stored| stored.mutation != m) {
                bail!(
                    "resume: the replay decided a different mutation at seq {seq} than the store holds; the input changed or the store belongs to another run"
                );
            }
            self.skip.next_seq += 1;
            self.skip.mutations -= 1;
            self.report.skipped += 1;
        }
        let gaps_already = (self.skip.gaps as usize).min(flush.gaps.len());
        flush.gaps.drain(..gaps_already);
        self.skip.gaps -= gaps_already as u64;
        if !self.caught_up {
            if complete {
                bail!(
                    "resume: the store holds {} more mutations than the replay of the capture decides; the input changed or the store belongs to another run",
                    self.skip.mutations
                );
            }
            return Ok(());
        }

        self.state.complete = complete;
        let in_flight = self
            .in_flight_next
            .take()
            .filter(|now| *now != self.in_flight_stored);
        if let Some(now) = &in_flight {
            // Removals apply before insertions: ids reused by the new set are fine.
            flush
                .decided
                .extend(self.in_flight_stored.iter().map(|(id, _)| id.clone()));
            flush.undecided.extend(now.iter().cloned());
        }
        let tidemark = (flush.tidemark > self.stored_tidemark).then_some(flush.tidemark);
        let extras = TxnExtras {
            checkpoints: vec![(
                self.source_id.to_string(),
                Checkpoint {
                    offset: self.packets,
                    state: crate::store::codec::encode(&self.state)
                        .map_err(|e| anyhow::anyhow!("encoding the checkpoint: {e}"))?,
                    at: self.last_ts.max(self.quiet_at),
                },
            )],
            decided: flush.decided,
            undecided: flush.undecided,
            gaps: flush.gaps,
            tidemark,
            policy,
        };
        if let Some(t) = tidemark {
            self.stored_tidemark = t;
        }
        if let Some(now) = in_flight {
            self.in_flight_stored = now;
        }
        self.report.groups += 1;
        self.report.appended += flush.mutations.len() as u64;
        for m in &flush.mutations {
            *self
                .report
                .by_outcome
                .entry(m.outcome.kind().as_str())
                .or_default() += 1;
        }
        let publish = self.publishes.then(|| Publish {
            tidemark: self.stored_tidemark,
            appended: self.report.appended,
            by_outcome: self.report.by_outcome.clone(),
        });
        self.committer.send(Group {
            number: self.report.groups,
            mutations: flush.mutations,
            extras,
            publish,
        })
    }
}
