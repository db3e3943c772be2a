//! The accounts of a restore's units as they come back (in any order): counts over
//! everything, and the checkpoint's place with the counts up to it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;

use super::first_line;
use super::progress::Progress;
use super::state::{Phase, State, Tally};
use super::units::Unit;
use crate::restore::RestoreReport;

/// Units failing in a row before the restore gives up (the target is gone).
const FAILURES_IN_A_ROW: u32 = 20;

/// What came back of one unit.
pub struct Done {
    pub unit: Unit,
    pub result: Result<()>,
}

/// The accounts of the units written: counts over everything, and the checkpoint's
/// place with the counts up to it (units come back in any order; the place moves
/// only over an unbroken run of acknowledged ones, and stops for good at a failed
/// one, so that `--resume` writes it again).
#[derive(Default)]
pub struct Books {
    pub all: BTreeMap<String, Tally>,
    pub at_mark: BTreeMap<String, Tally>,
    pub mark: Option<(Phase, String, String)>,
    /// Units back but not yet passed by the place (a unit before them is in flight).
    waiting: BTreeMap<u64, (Unit, bool)>,
    next_seq: u64,
    blocked: bool,
    pub since_save: u64,
    failures_in_a_row: u32,
    pub fatal: Option<String>,
}

impl Books {
    /// The books at the start: empty, or the checkpoint's place and counts.
    pub fn from(resume: Option<&State>) -> Books {
        let at_mark: BTreeMap<String, Tally> = resume
            .map(|s| s.counts.iter().cloned().collect())
            .unwrap_or_default();
        Books {
            all: at_mark.clone(),
            at_mark,
            mark: resume.map(|s| (s.phase, s.namespace.clone(), s.key.clone())),
            ..Books::default()
        }
    }

    pub fn done(
        &mut self,
        d: Result<Done, tokio::task::JoinError>,
        report: &mut RestoreReport,
        progress: &mut Progress,
        stop: &AtomicBool,
    ) {
        let d = match d {
            Ok(d) => d,
            Err(e) => {
                // a write task that panicked: its unit is never acknowledged
                tracing::error!("a write task ended abnormally: {e}");
                self.blocked = true;
                return;
            }
        };
        let ok = d.result.is_ok();
        add(
            self.all.entry(d.unit.target.clone()).or_default(),
            &d.unit,
            ok,
        );
        progress.add(d.unit.items, if ok { d.unit.bytes } else { 0 });
        match &d.result {
            Ok(()) => self.failures_in_a_row = 0,
            Err(e) => {
                self.failures_in_a_row += 1;
                let line = first_line(&format!("{e:#}"));
                if report.errors.len() < 10 {
                    report
                        .errors
                        .push(format!("{} {}: {line}", d.unit.target, d.unit.last_key));
                }
                if self.failures_in_a_row >= FAILURES_IN_A_ROW && self.fatal.is_none() {
                    self.fatal = Some(format!("the target keeps failing: {line}"));
                    stop.store(true, Ordering::Relaxed);
                }
            }
        }
        self.waiting.insert(d.unit.seq, (d.unit, ok));
        while let Some((u, ok)) = self.waiting.remove(&self.next_seq) {
            self.next_seq += 1;
            if !ok {
                self.blocked = true;
            }
            if self.blocked {
                continue;
            }
            add(self.at_mark.entry(u.target.clone()).or_default(), &u, true);
            self.since_save += u.items;
            self.mark = Some((u.phase, u.source, u.last_key));
        }
    }
}

/// Adds a unit to a tally: [written rows, deletions, failed, bytes, rows with
/// nothing left to write].
fn add(t: &mut Tally, u: &Unit, ok: bool) {
    let n = u.items - u.empty;
    match (ok, u.phase) {
        (true, Phase::Rows) => t[0] += n,
        (true, Phase::Deletions) => t[1] += n,
        (false, _) => t[2] += n,
    }
    t[4] += u.empty;
    if ok {
        t[3] += u.bytes;
    }
}
