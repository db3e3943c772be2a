//! `tidemark tap`: capture → reassembly → decoders → commit tracker → store, with
//! group commit and crash-safe resume.
//!
//! # Resume
//!
//! A pcap run records a checkpoint (the input's fingerprint, the log position it
//! started at, whether it completed) in the same transaction as every group. The
//! tracker is deterministic in its input, so `--resume` replays the capture from the
//! start and appends only what the store does not hold yet: the first mutations the
//! replay decides must equal the stored ones (checked, so a changed input or a
//! nondeterminism bug is an error, not a silently doubled log), and the rest are
//! new. Nothing is lost (every decision is re-made) and nothing is doubled (stored
//! decisions are skipped), whatever moment the previous run died at. The cost is
//! re-decoding the part already done, which runs at decode speed with no store writes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::config::TrackerConfig;
use super::tracker::{CommitTracker, Flush, TrackerStats};
use crate::capture::{FileSource, LiveSource, ReassemblyConfig, StreamEvent, Tap, TapConfig};
use crate::inspect::decoder::default_registry;
use crate::inspect::detect::{PortMap, Protocol};
use crate::inspect::session::Session;
use crate::store::{Checkpoint, Durability, Policy, Store, StoreError, StoreOptions, TxnExtras};

/// How long a live capture waits for a packet before doing its timed work.
const IDLE_TICK: Duration = Duration::from_millis(500);

/// How far behind the wall clock a quiet live capture puts capture time: packets
/// still in the kernel's buffer are at most this old.
const IDLE_MARGIN_NS: u64 = 1_000_000_000;

fn wall_clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Decided mutations per group commit (one LMDB transaction, one fsync).
pub const DEFAULT_GROUP: usize = 1000;

/// What `tidemark tap` was asked to do.
#[derive(Debug, Clone)]
pub struct TapOptions {
    pub files: Vec<PathBuf>,
    pub interface: Option<String>,
    pub duration: Option<Duration>,
    pub store: PathBuf,
    pub resume: bool,
    pub cql_ports: Vec<u16>,
    pub mongo_ports: Vec<u16>,
    /// Mutations per group commit.
    pub group: usize,
    pub durability: Durability,
    pub tracker: TrackerConfig,
}

impl Default for TapOptions {
    fn default() -> Self {
        TapOptions {
            files: Vec::new(),
            interface: None,
            duration: None,
            store: PathBuf::new(),
            resume: false,
            cql_ports: Vec::new(),
            mongo_ports: Vec::new(),
            group: DEFAULT_GROUP,
            durability: Durability::SyncPerGroup,
            tracker: TrackerConfig::default(),
        }
    }
}

/// How a tap run went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TapReport {
    pub packets: u64,
    /// Mutations appended by this run.
    pub appended: u64,
    /// Mutations a `--resume` found already stored and skipped.
    pub skipped: u64,
    /// Appended mutations by outcome.
    pub by_outcome: BTreeMap<&'static str, u64>,
    /// Writes still undecided at the end (kept in the store).
    pub undecided: u64,
    /// Group commits.
    pub groups: u64,
    pub tidemark: u64,
    pub tracker: TrackerStats,
    /// The run was stopped by a signal before the input ended.
    pub interrupted: bool,
    /// Errors reading the capture after it opened.
    pub read_errors: Vec<String>,
}

/// A pcap run's resume state, kept in the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ResumeState {
    fingerprint: u128,
    files: Vec<String>,
    /// The log's next seq when the run started.
    base_seq: u64,
    /// Gaps recorded before the run started.
    base_gaps: u64,
    complete: bool,
}

/// The checkpoint's source id of a pcap run (`status` reads it).
const SOURCE_ID: &str = "tap";

/// How the last pcap run into `store` ended: `None` when there was none, else
/// whether it completed (`status` reports it). The checkpoint is read with the same
/// type `tap` writes it with, so the two cannot drift apart.
pub fn last_run_complete(store: &Store) -> anyhow::Result<Option<bool>> {
    let Some(c) = store.checkpoint(SOURCE_ID)? else {
        return Ok(None);
    };
    let state: ResumeState = crate::store::codec::decode(&c.state)
        .map_err(|e| anyhow::anyhow!("the tap checkpoint is unreadable: {e}"))?;
    Ok(Some(state.complete))
}

/// The checkpoint's source id of a live run: informational, never resumed.
const LIVE_SOURCE_ID: &str = "tap-live";

/// Identifies an input: each file's path, size and first MiB.
fn fingerprint(files: &[PathBuf]) -> anyhow::Result<u128> {
    let mut h = twox_hash::XxHash3_128::with_seed(0);
    for f in files {
        let mut file =
            File::open(f).with_context(|| format!("cannot open capture {}", f.display()))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        h.write(f.to_string_lossy().as_bytes());
        h.write(&len.to_le_bytes());
        let mut head = Vec::with_capacity(1 << 20);
        file.by_ref()
            .take(1 << 20)
            .read_to_end(&mut head)
            .with_context(|| format!("cannot read capture {}", f.display()))?;
        h.write(&head);
    }
    Ok(h.finish_128())
}

fn open_store(path: &Path, durability: Durability) -> anyhow::Result<Store> {
    let options = StoreOptions {
        durability,
        ..StoreOptions::default()
    };
    let fresh = match std::fs::read_dir(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Ok(mut entries) => entries.next().is_none(),
        Err(_) => false,
    };
    let store = if fresh {
        Store::create(path, &options)
    } else {
        match Store::open(path, &options) {
            // A run killed inside `Store::create` left a directory that is not a
            // store yet; `create` takes it over if that is all it holds.
            Err(e @ StoreError::Corrupt { .. }) => Store::create(path, &options).map_err(|_| e),
            other => other,
        }
    };
    store.map_err(anyhow::Error::from)
}

enum Input {
    Files(FileSource),
    Live(LiveSource),
}

/// Where appends resume: how much of what the replay decides is already stored.
struct Skip {
    /// This run continues an interrupted one.
    resumed: bool,
    mutations: u64,
    gaps: u64,
    next_seq: u64,
}

/// Runs `tidemark tap`. `stop` ends the run cleanly (SIGINT/SIGTERM): everything
/// decided so far is flushed and the checkpoint says the run is incomplete.
pub fn tap(options: &TapOptions, stop: Arc<AtomicBool>) -> anyhow::Result<TapReport> {
    if options.files.is_empty() && options.interface.is_none() {
        bail!("give --pcap FILE... or --interface IF");
    }
    if options.resume && options.interface.is_some() {
        bail!("--resume continues a pcap run; a live capture cannot be replayed");
    }
    let ports = PortMap::new(&options.cql_ports, &options.mongo_ports);
    // Open the input first: a bad capture must not leave an empty store behind.
    let mut input = match &options.interface {
        Some(name) => Input::Live(LiveSource::open(name, &ports.all(), options.duration)?),
        None => Input::Files(FileSource::open(&options.files)?),
    };
    let store = open_store(&options.store, options.durability)?;
    let reader_gaps = store.gaps()?.len() as u64;
    let live = options.interface.is_some();
    let files: Vec<String> = options
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    let fp = if live {
        0
    } else {
        fingerprint(&options.files)?
    };
    let previous: Option<ResumeState> = store
        .checkpoint(if live { LIVE_SOURCE_ID } else { SOURCE_ID })?
        .and_then(|c| crate::store::codec::decode(&c.state).ok());
    let next_seq = store.next_seq()?;
    let (state, skip) = match previous {
        Some(p) if options.resume && p.fingerprint == fp => {
            if p.complete {
                eprintln!("tidemark: this capture was already tapped completely into the store; nothing to do");
                return Ok(TapReport {
                    tidemark: store.tidemark()?.unwrap_or(0),
                    ..TapReport::default()
                });
            }
            let skip = Skip {
                resumed: true,
                mutations: next_seq - p.base_seq,
                gaps: reader_gaps.saturating_sub(p.base_gaps),
                next_seq: p.base_seq,
            };
            (p, skip)
        }
        Some(p) if options.resume && !p.complete => bail!(
            "--resume: the store's interrupted run was of other input ({}); give the same files in the same order",
            p.files.join(" ")
        ),
        Some(p) if !p.complete && !live && !options.resume => bail!(
            "the store holds an interrupted tap of {}; run again with --resume to continue it",
            p.files.join(" ")
        ),
        _ => (
            ResumeState {
                fingerprint: fp,
                files: files.clone(),
                base_seq: next_seq,
                base_gaps: reader_gaps,
                complete: false,
            },
            Skip {
                resumed: false,
                mutations: 0,
                gaps: 0,
                next_seq,
            },
        ),
    };
    let policy = Policy {
        mongo_unreplicated_committed: options.tracker.mongo_unreplicated_committed,
        in_doubt: options.tracker.in_doubt_policy.as_str().to_string(),
        resolve_after_ns: options.tracker.resolve_after_ns,
    };
    let mut writer = Writer {
        store: &store,
        source_id: if live { LIVE_SOURCE_ID } else { SOURCE_ID },
        state,
        caught_up: !skip.resumed,
        skip,
        stored_tidemark: store.tidemark()?.unwrap_or(0),
        report: TapReport::default(),
        packets: 0,
        last_ts: 0,
    };
    // Record the run (and the policy in force) before anything else, so even a
    // crash before the first group leaves a resumable store.
    writer.commit(Flush::default(), Some(policy), false)?;

    let mut tap = Tap::new(TapConfig {
        reassembly: ReassemblyConfig {
            server_ports: ports.all(),
            ..ReassemblyConfig::default()
        },
        ..TapConfig::default()
    });
    let mut session = Session::new(ports, default_registry());
    let mut tracker = CommitTracker::new(options.tracker.clone());
    let mut events = Vec::new();
    let mut records = Vec::new();
    let mut read_errors = Vec::new();
    let mut last_flush = Instant::now();
    let mut interrupted = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        let mut idle = false;
        let pkt = match &mut input {
            Input::Files(f) => f.next_packet(),
            Input::Live(l) => match l.next_packet_until(Instant::now() + IDLE_TICK) {
                Ok(None) => {
                    idle = true; // or finished: told apart below, once `l` is free
                    None
                }
                Ok(p) => p,
                Err(e) => {
                    read_errors.push(e.to_string());
                    None
                }
            },
        };
        let Some(pkt) = pkt else {
            if idle && matches!(&input, Input::Live(l) if !l.finished()) {
                // A quiet interface: capture time is the wall clock (less a margin
                // for packets still in the kernel's buffer), so deadlines pass and
                // the tidemark advances while nothing happens.
                let quiet = wall_clock_ns().saturating_sub(IDLE_MARGIN_NS);
                tracker.advance(
                    quiet.max(writer.last_ts),
                    session.oldest_pending_write().map(|t| t.0),
                );
                writer.flush(&mut tracker, false, false)?;
                last_flush = Instant::now();
                continue;
            }
            break;
        };
        writer.packets += 1;
        writer.last_ts = writer.last_ts.max(pkt.ts.0);
        tap.packet(&pkt, &mut events);
        feed(&mut session, &mut tracker, &mut events, &mut records);
        let due = tracker.ready_len() >= options.group
            || (live && last_flush.elapsed() >= Duration::from_millis(200));
        if due {
            tracker.advance(writer.last_ts, session.oldest_pending_write().map(|t| t.0));
            writer.flush(&mut tracker, false, false)?;
            last_flush = Instant::now();
        }
    }
    if live && stop.load(Ordering::Relaxed) {
        interrupted = false; // a live capture always ends by a signal or --duration
    }
    if let Input::Files(f) = &mut input {
        read_errors.extend(f.take_errors());
    }
    let complete = !interrupted;
    if !interrupted {
        tap.finish(&mut events);
        feed(&mut session, &mut tracker, &mut events, &mut records);
        if live {
            // A live capture may be continued by another run: nothing is final yet.
            tracker.advance(writer.last_ts, None);
        } else {
            tracker.finish();
        }
    }
    // An interrupted run flushes only what was decided in packet order: advancing
    // here, at a packet that is no group boundary, could decide writes (deadlines,
    // orphan oplog entries) that the resume's replay decides later in another
    // order, and the resume would find the stored log is not its prefix.
    writer.flush(&mut tracker, complete, true)?;
    let mut report = writer.report;
    report.packets = writer.packets;
    report.undecided = tracker.undecided_len() as u64;
    report.tracker = tracker.stats().clone();
    report.tidemark = store.tidemark()?.unwrap_or(0);
    report.interrupted = interrupted;
    report.read_errors = read_errors;
    Ok(report)
}

/// Events → session (decoders) → tracker. The tracker sees each event first (flow
/// endpoints, gaps), then the records it produced.
fn feed(
    session: &mut Session,
    tracker: &mut CommitTracker,
    events: &mut Vec<StreamEvent>,
    records: &mut Vec<crate::inspect::records::Record>,
) {
    for ev in events.drain(..) {
        let ts = event_ts(&ev);
        let flow = ev.flow();
        let db = match &ev {
            StreamEvent::Gap { .. } => {
                matches!(
                    session.protocol(flow),
                    Some(Protocol::Cql | Protocol::Mongo)
                )
            }
            StreamEvent::Opened { server, .. } => session.is_database_port(server.port()),
            _ => false,
        };
        tracker.observe(&ev, db);
        let closed = matches!(ev, StreamEvent::Closed { .. });
        session.event(ev, records);
        for r in records.drain(..) {
            tracker.record(r, ts);
        }
        if closed {
            tracker.forget(flow);
        }
    }
}

fn event_ts(ev: &StreamEvent) -> u64 {
    match ev {
        StreamEvent::Opened { ts, .. }
        | StreamEvent::Data { ts, .. }
        | StreamEvent::Gap { ts, .. }
        | StreamEvent::Closed { ts, .. } => ts.0,
    }
}

/// Appends flushes to the store, skipping what a resumed run already stored.
struct Writer<'a> {
    store: &'a Store,
    source_id: &'static str,
    state: ResumeState,
    skip: Skip,
    stored_tidemark: u64,
    /// The replay has caught up with what the store holds (always, for a run that
    /// is not resumed). Until then nothing is written: the replay's undecided-write
    /// changes are relative to its own earlier flushes, which were not written, and
    /// writing them would list writes the store already logged as undecided.
    caught_up: bool,
    report: TapReport,
    packets: u64,
    last_ts: u64,
}

impl Writer<'_> {
    /// Takes the tracker's flush and commits it. Where a resumed run's replay
    /// catches up with the store (its flush reaches past the stored mutations, or
    /// is the last one), the flush carries the whole undecided state, so the
    /// store's undecided writes become the replay's whatever moment the
    /// interrupted run stopped at.
    fn flush(
        &mut self,
        tracker: &mut CommitTracker,
        complete: bool,
        last: bool,
    ) -> anyhow::Result<()> {
        let ready = tracker.ready_len() as u64;
        let catches_up = !self.caught_up
            && (ready > self.skip.mutations || (last && ready == self.skip.mutations));
        let flush = if catches_up {
            let stored: Vec<Vec<u8>> = self
                .store
                .list_undecided()?
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            self.caught_up = true;
            tracker.take_full_flush(&stored)
        } else {
            tracker.take_flush()
        };
        self.commit(flush, None, complete)
    }

    fn commit(
        &mut self,
        mut flush: Flush,
        policy: Option<Policy>,
        complete: bool,
    ) -> anyhow::Result<()> {
        // Mutations the store already has (a resumed run): check and drop.
        let already = (self.skip.mutations as usize).min(flush.mutations.len());
        for m in flush.mutations.drain(..already) {
            let seq = self.skip.next_seq;
            let stored = self
                .store
                .reader()?
                .get(seq)?
                .with_context(|| format!("resume: seq {seq} is missing from the store"))?;
            if stored.mutation != m {
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
        let tidemark = (flush.tidemark > self.stored_tidemark).then_some(flush.tidemark);
        let extras = TxnExtras {
            checkpoints: vec![(
                self.source_id.to_string(),
                Checkpoint {
                    offset: self.packets,
                    state: crate::store::codec::encode(&self.state)
                        .map_err(|e| anyhow::anyhow!("encoding the checkpoint: {e}"))?,
                    at: self.last_ts,
                },
            )],
            decided: flush.decided,
            undecided: flush.undecided,
            gaps: flush.gaps,
            tidemark,
            policy,
        };
        self.store
            .append_batch_with(&flush.mutations, &extras)
            .map_err(|e: StoreError| anyhow::Error::from(e))
            .context("appending to the store")?;
        if let Some(t) = tidemark {
            self.stored_tidemark = t;
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
        Ok(())
    }
}
