//! The version read into write units: the statements of consecutive rows (or
//! deletion entries) of one partition, bounded in statements and bytes, in the
//! version's own order and numbered, after the checkpoint's place.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use tokio::sync::mpsc;

use super::plan::{self, Plan};
use super::state::{Phase, State};
use super::statements::{self, Clock, Op};
use super::writer;
use crate::store::Store;
use crate::version::model::VersionRow;
use crate::version::stored;

/// A unit carries at most this many payload bytes (besides [`writer::BATCH_STATEMENTS`]).
const UNIT_BYTES: usize = 16 * 1024;

/// One write unit: the operations of consecutive rows (or deletions) of one
/// partition, written as one batch.
pub struct Unit {
    pub seq: u64,
    pub phase: Phase,
    pub source: String,
    pub target: String,
    /// The last key of the unit (the checkpoint's place once it is acknowledged).
    pub last_key: String,
    /// Rows (or deletion entries) the unit writes.
    pub items: u64,
    /// Of them, rows with nothing to write (every cell expired).
    pub empty: u64,
    pub bytes: u64,
    pub ops: Vec<Op>,
}

/// Reads the version (rows, then deletions) into units of one partition each, after
/// the checkpoint's place; ends early when `stop` is set or the writer side is gone.
/// Returns notes for the report (cells left out as expired, tombstones CQL cannot
/// state).
pub fn read_units(
    store: &Store,
    name: &str,
    plan: &Plan,
    resume: Option<State>,
    clock: Clock,
    stop: &AtomicBool,
    tx: mpsc::Sender<Unit>,
) -> Result<Vec<String>> {
    let tables: BTreeMap<&str, &plan::Table> =
        plan.tables.iter().map(|t| (t.source.as_str(), t)).collect();
    let mut seq = 0u64;
    let mut cur: Option<(Vec<u8>, Unit)> = None;
    let mut expired = 0u64;
    let mut unwritable = 0u64;
    let mut gone = false;
    let send = |u: Unit, gone: &mut bool| {
        if tx.blocking_send(u).is_err() {
            *gone = true;
        }
    };
    let mut push = |phase: Phase,
                    t: &plan::Table,
                    key: &str,
                    partition: Vec<u8>,
                    ops: Vec<Op>,
                    cur: &mut Option<(Vec<u8>, Unit)>,
                    gone: &mut bool| {
        let bytes: usize = ops.iter().map(Op::bytes).sum();
        let fits = cur.as_ref().is_some_and(|(p, u)| {
            u.phase == phase
                && u.source == t.source
                && *p == partition
                && u.ops.len() + ops.len() <= writer::BATCH_STATEMENTS
                && u.bytes as usize + bytes <= UNIT_BYTES
        });
        if !fits {
            if let Some((_, u)) = cur.take() {
                send(u, gone);
            }
            *cur = Some((
                partition,
                Unit {
                    seq,
                    phase,
                    source: t.source.clone(),
                    target: t.target(),
                    last_key: String::new(),
                    items: 0,
                    empty: 0,
                    bytes: 0,
                    ops: Vec::new(),
                },
            ));
            seq += 1;
        }
        let (_, u) = cur.as_mut().expect("a unit");
        u.items += 1;
        u.empty += u64::from(ops.is_empty());
        u.bytes += bytes as u64;
        u.last_key = key.to_string();
        u.ops.extend(ops);
    };
    let skip = |phase: Phase, ns: &str, key: &str| {
        resume.as_ref().is_some_and(|s| s.covers(phase, ns, key))
    };
    stored::for_each_row(store, name, |ns, key, row| {
        if stop.load(Ordering::Relaxed) || gone {
            return Ok(false);
        }
        let Some(t) = tables.get(ns) else {
            return Ok(true);
        };
        if skip(Phase::Rows, ns, key) {
            return Ok(true);
        }
        let VersionRow::Cql { cells } = row else {
            return Ok(true);
        };
        let k = statements::key(t, key)?;
        let (ops, e) = statements::row(t, key, &cells, clock)?;
        expired += e;
        push(Phase::Rows, t, key, k.partition, ops, &mut cur, &mut gone);
        Ok(true)
    })?;
    stored::for_each_deletion(store, name, |ns, key, d| {
        if stop.load(Ordering::Relaxed) || gone {
            return Ok(false);
        }
        let Some(t) = tables.get(ns) else {
            return Ok(true);
        };
        if skip(Phase::Deletions, ns, key) || t.is_counter_table() {
            return Ok(true);
        }
        let k = statements::key(t, key)?;
        let (stmts, u) = statements::deletion(t, key, &d, clock)?;
        unwritable += u;
        let ops = stmts.into_iter().map(Op::Write).collect();
        push(
            Phase::Deletions,
            t,
            key,
            k.partition,
            ops,
            &mut cur,
            &mut gone,
        );
        Ok(true)
    })?;
    if let Some((_, u)) = cur.take() {
        if !stop.load(Ordering::Relaxed) {
            send(u, &mut gone);
        }
    }
    let mut notes = Vec::new();
    if expired > 0 {
        notes.push(format!(
            "{expired} cells expired since the version and were not written"
        ));
    }
    if unwritable > 0 {
        notes.push(format!(
            "{unwritable} list element tombstones were not written (list paths are the server's)"
        ));
    }
    Ok(notes)
}
