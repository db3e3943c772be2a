//! Group commits on a thread of their own: while one group is written and synced
//! (LMDB copies the pages it touches, then an fsync), the run reads, decodes and
//! tracks the next one. Decoding and tracking use one core and the store the
//! other, so a durable tap is bounded by the slower of the two instead of their
//! sum (see `bench/` `tap-bench` in the closing note of issue #11).
//!
//! Nothing about what is stored changes:
//! - groups are committed strictly in the order they were handed over, each in one
//!   transaction with its checkpoint, so a crash leaves the store at a group
//!   boundary exactly as the synchronous writer did;
//! - what the run publishes (the tidemark, counts) is published after its group is
//!   durable, never before;
//! - a failed commit stops the committer: the run learns of it at its next
//!   hand-over (or when it drains) and ends with that error, and no later group is
//!   committed after the failed one.
//!
//! Queue depth is one group: the run prepares at most one more while one is being
//! written, so memory stays at about two groups and a slow disk slows the run down
//! instead of piling groups up.
//!
//! A written group's list goes back to the run, emptied, to hold a later group
//! ([`Committer::take_spare`]). A fresh list of ten thousand mutations is megabytes
//! the allocator takes from the kernel, which faults in and zeroes every page while
//! the run fills it; the committer freeing it returned them. That was a twentieth
//! of a MongoDB tap's decoding thread (`tap-bench`, perf).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::{Scope, ScopedJoinHandle};

use anyhow::{anyhow, Context};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use super::{inject, Published};
use crate::store::{Mutation, Store, StoreError, TxnExtras};

/// One group commit, ready to be written.
pub(super) struct Group {
    /// 1-based, for the crash-injection hooks around each commit.
    pub number: u64,
    pub mutations: Vec<Mutation>,
    pub extras: TxnExtras,
    /// What to make known once the group is durable.
    pub publish: Option<Publish>,
}

/// The run's progress as of a group, published after that group's commit.
pub(super) struct Publish {
    pub tidemark: u64,
    pub appended: u64,
    pub by_outcome: BTreeMap<&'static str, u64>,
}

/// Spare lists waiting for the run: more would only hold memory.
const SPARES: usize = 2;
/// A list longer than this (a capture's end can decide hundreds of thousands at
/// once) is freed, not kept: it would stay that size for the rest of the run.
const MAX_SPARE_CAPACITY: usize = 1 << 16;

/// The run's side of the committer thread.
pub(super) struct Committer<'scope> {
    groups: Option<Sender<Group>>,
    /// Emptied mutation lists of written groups.
    spares: Receiver<Vec<Mutation>>,
    /// One answer per group, in order.
    answers: Receiver<anyhow::Result<()>>,
    thread: Option<ScopedJoinHandle<'scope, ()>>,
    sent: u64,
    answered: u64,
}

impl<'scope> Committer<'scope> {
    /// Starts the thread in `scope`: it lives until [`Committer::finish`] (or until
    /// the run's scope ends, after it committed what it was handed).
    pub fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        store: &'env Store,
        published: Option<Arc<Published>>,
    ) -> Committer<'scope> {
        let (groups, incoming) = bounded::<Group>(1);
        let (answer, answers) = unbounded::<anyhow::Result<()>>();
        let (spare, spares) = bounded::<Vec<Mutation>>(SPARES);
        let thread = std::thread::Builder::new()
            .name("tidemark-commit".into())
            .spawn_scoped(scope, move || {
                commit_loop(store, published.as_deref(), &incoming, &answer, &spare)
            })
            .expect("spawning the store's committer thread");
        Committer {
            groups: Some(groups),
            spares,
            answers,
            thread: Some(thread),
            sent: 0,
            answered: 0,
        }
    }

    /// Hands a group over; fails if an earlier group failed to commit.
    pub fn send(&mut self, group: Group) -> anyhow::Result<()> {
        self.collect()?;
        let Some(groups) = &self.groups else {
            return Err(anyhow!("the store's committer has stopped"));
        };
        if groups.send(group).is_err() {
            // The thread is gone: its answer says why.
            self.drain()?;
            return Err(anyhow!("the store's committer stopped without saying why"));
        }
        self.sent += 1;
        Ok(())
    }

    /// Waits until every group handed over is committed (before the run reads
    /// the store itself).
    pub fn drain(&mut self) -> anyhow::Result<()> {
        while self.answered < self.sent {
            match self.answers.recv() {
                Ok(answer) => {
                    self.answered += 1;
                    answer?;
                }
                Err(_) => {
                    return Err(anyhow!(
                        "the store's committer stopped with {} group(s) uncommitted",
                        self.sent - self.answered
                    ))
                }
            }
        }
        Ok(())
    }

    /// Commits what is left, stops the thread and says whether all went well.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        let drained = self.drain();
        self.groups = None;
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .map_err(|_| anyhow!("the store's committer thread panicked"))?;
        }
        drained
    }

    /// An emptied list of a written group, to fill with a later one; `None` when
    /// none is back yet.
    pub fn take_spare(&self) -> Option<Vec<Mutation>> {
        self.spares.try_recv().ok()
    }

    /// Takes the answers already given, without waiting.
    fn collect(&mut self) -> anyhow::Result<()> {
        while let Ok(answer) = self.answers.try_recv() {
            self.answered += 1;
            answer?;
        }
        Ok(())
    }
}

/// The thread: commit each group in order, publish, answer; stop at the first
/// failure (answering it), so nothing is committed after a group that was not.
fn commit_loop(
    store: &Store,
    published: Option<&Published>,
    groups: &Receiver<Group>,
    answer: &Sender<anyhow::Result<()>>,
    spare: &Sender<Vec<Mutation>>,
) {
    for mut group in groups {
        inject::before_group(group.number);
        let result = store
            .append_batch_with(&group.mutations, &group.extras)
            .map(|_| ())
            .map_err(|e: StoreError| anyhow::Error::from(e))
            .context("appending to the store");
        let failed = result.is_err();
        if !failed {
            inject::after_group(group.number);
            if let (Some(p), Some(to)) = (group.publish, published) {
                publish(to, p);
            }
        }
        // The run may have ended with an error and dropped its side: nobody to tell.
        let _ = answer.send(result);
        if failed {
            return;
        }
        // The mutations (often tens of thousands) are freed here, on this thread,
        // not on the run's; their list goes back for reuse unless it is outsized
        // or the run has enough (then it is freed too).
        let mut list = std::mem::take(&mut group.mutations);
        list.clear();
        if list.capacity() <= MAX_SPARE_CAPACITY {
            let _ = spare.try_send(list);
        }
    }
}

fn publish(to: &Published, p: Publish) {
    to.tidemark.store(p.tidemark, Relaxed);
    to.appended.store(p.appended, Relaxed);
    if let Ok(mut by) = to.by_outcome.lock() {
        *by = p.by_outcome;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    fn group(number: u64, tidemark: u64) -> Group {
        Group {
            number,
            mutations: Vec::new(),
            extras: TxnExtras {
                tidemark: Some(tidemark),
                ..TxnExtras::default()
            },
            publish: Some(Publish {
                tidemark,
                appended: number,
                by_outcome: BTreeMap::new(),
            }),
        }
    }

    /// Groups land in the order handed over, and what is published is what is
    /// durable.
    #[test]
    fn groups_commit_in_order_and_publish_once_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path().join("s"), &StoreOptions::default()).unwrap();
        let published = Arc::new(Published::default());
        std::thread::scope(|scope| {
            let mut c = Committer::start(scope, &store, Some(published.clone()));
            for (n, t) in [(1, 10), (2, 20), (3, 30)] {
                c.send(group(n, t)).unwrap();
            }
            c.finish().unwrap();
        });
        assert_eq!(store.tidemark().unwrap(), Some(30));
        assert_eq!(published.tidemark.load(Relaxed), 30);
        assert_eq!(published.appended.load(Relaxed), 3);
    }

    /// A written group's list comes back empty, its room kept, for a later group;
    /// an outsized one is freed instead.
    #[test]
    fn a_written_groups_list_comes_back_empty_for_reuse() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path().join("s"), &StoreOptions::default()).unwrap();
        std::thread::scope(|scope| {
            let mut c = Committer::start(scope, &store, None);
            let mut g = group(1, 10);
            g.mutations = Vec::with_capacity(1000);
            c.send(g).unwrap();
            let mut big = group(2, 20);
            big.mutations = Vec::with_capacity(MAX_SPARE_CAPACITY + 1);
            c.send(big).unwrap();
            // Once the thread is done, what it gave back is all there is to take.
            c.finish().unwrap();
            let spare = c.take_spare().expect("the first group's list");
            assert!(spare.is_empty() && spare.capacity() >= 1000);
            assert!(c.take_spare().is_none(), "the outsized list was freed");
        });
    }

    /// A group the store refuses (here a tidemark going back) stops the committer:
    /// the run is told, and no later group is written after it.
    #[test]
    fn a_failed_group_stops_the_committer_and_nothing_after_it_lands() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path().join("s"), &StoreOptions::default()).unwrap();
        let published = Arc::new(Published::default());
        let outcome = std::thread::scope(|scope| {
            let mut c = Committer::start(scope, &store, Some(published.clone()));
            c.send(group(1, 100)).unwrap();
            c.send(group(2, 50)).unwrap();
            // The failure surfaces at a later hand-over or at the end, never lost.
            let later = c.send(group(3, 200));
            let end = c.finish();
            later.and(end)
        });
        let err = format!("{:#}", outcome.unwrap_err());
        assert!(
            err.contains("tidemark 50 is before the current 100"),
            "{err}"
        );
        assert_eq!(store.tidemark().unwrap(), Some(100));
        assert_eq!(published.tidemark.load(Relaxed), 100);
    }
}
