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

mod committer;
mod inject;
mod resume;
mod schema;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde::Serialize;

use crate::capture::{
    Assembler, AssemblerConfig, Next, ReassemblyConfig, Source, SourceSpec, StreamEvent,
};
use crate::commit::{CommitTracker, Flush, TrackerConfig, TrackerStats};
use crate::decode::detect::{PortMap, Protocol};
use crate::decode::registry::registry_with_cql_state;
use crate::decode::session::Session;
use crate::store::{Durability, Policy, Store, StoreError, StoreOptions};
use committer::Committer;
pub use resume::last_run_complete;
use resume::{Plan, LIVE_SOURCE_ID, PROXY_SOURCE_ID, SOURCE_ID};
use writer::Writer;

/// How long a live capture waits for a packet before doing its timed work.
const IDLE_TICK: Duration = Duration::from_millis(500);

/// How long a live run keeps what it decided before a group commit stores it.
const LIVE_FLUSH: Duration = Duration::from_millis(200);

/// How far behind the wall clock a quiet live capture puts capture time: packets
/// still in the kernel's buffer are at most this old.
const IDLE_MARGIN_NS: u64 = 1_000_000_000;

/// How much earlier than its last group commit's events a crashed proxy's capture
/// gap starts: a connection task stamps an event a moment before it queues it.
const CRASH_MARGIN_NS: u64 = 50_000_000;

fn wall_clock_ns() -> u64 {
    crate::capture::Timestamp::now().0
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
    /// Say "tidemark: tap ready" (or "capturing on IF") on stderr once the run is
    /// under way: the CLI does, for whoever drives it; library callers (tests that
    /// run many taps in one process) need not.
    pub announce_ready: bool,
    /// Set once the run is under way (store open, the run recorded): for a library
    /// caller that must know before it starts feeding (`crate::proxy`).
    pub ready: Option<Arc<AtomicBool>>,
    /// Where a running tap publishes its tidemark and appended count (the proxy's
    /// metrics read them).
    pub published: Option<Arc<Published>>,
    /// Work that runs beside the run on its store until the run is done (`--repo`:
    /// shipping sealed segments as they come), told by the flag when the run's last
    /// group is committed.
    pub companion: Option<Companion>,
}

/// See [`TapOptions::companion`].
#[derive(Clone)]
pub struct Companion(pub Arc<CompanionFn>);

/// What a companion runs: the run's store, and the flag set when the run is done.
pub type CompanionFn = dyn Fn(&Store, &AtomicBool) -> anyhow::Result<()> + Send + Sync;

impl std::fmt::Debug for Companion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Companion")
    }
}

/// What a running tap makes known as it goes.
#[derive(Debug, Default)]
pub struct Published {
    /// The store's tidemark (ns), 0 before the first.
    pub tidemark: std::sync::atomic::AtomicU64,
    /// Mutations appended by this run.
    pub appended: std::sync::atomic::AtomicU64,
    /// Appended mutations by outcome (`committed`, `in_doubt`, …).
    pub by_outcome: std::sync::Mutex<BTreeMap<&'static str, u64>>,
    /// Messages decoded, by protocol and opcode as the spec spells it.
    pub messages: std::sync::Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Decode errors (a message or stream the decoders could not read).
    pub decode_errors: std::sync::atomic::AtomicU64,
}

impl Published {
    fn seen(&self, r: &crate::decode::records::Record) {
        use crate::decode::records::Record;
        match r {
            Record::Message(m) => {
                if let Ok(mut by) = self.messages.lock() {
                    *by.entry((m.proto, m.opcode.as_str())).or_default() += 1;
                }
            }
            Record::Error(_) => {
                self.decode_errors.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
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
            announce_ready: false,
            ready: None,
            published: None,
            companion: None,
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
    /// The companion's failure (`--repo`: what could not be shipped stays in the
    /// store for the next push).
    pub companion_error: Option<String>,
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

/// Runs `tidemark tap`. `stop` ends the run cleanly (SIGINT/SIGTERM): everything
/// decided so far is flushed and the checkpoint says the run is incomplete.
pub fn run(options: &TapOptions, stop: Arc<AtomicBool>) -> anyhow::Result<TapReport> {
    if options.files.is_empty() && options.interface.is_none() {
        bail!("give --pcap FILE... or --interface IF");
    }
    if options.resume && options.interface.is_some() {
        bail!("--resume continues a pcap run; a live capture cannot be replayed");
    }
    let ports = PortMap::new(&options.cql_ports, &options.mongo_ports);
    // Open the input first: a bad capture must not leave an empty store behind.
    let source = Source::open(
        &SourceSpec {
            files: options.files.clone(),
            interface: options.interface.clone(),
            duration: options.duration,
        },
        &ports.all(),
    )?;
    let assembler = Assembler::new(AssemblerConfig {
        reassembly: ReassemblyConfig {
            server_ports: ports.all(),
            ..ReassemblyConfig::default()
        },
        ..AssemblerConfig::default()
    });
    let live = options.interface.is_some();
    run_input(
        options,
        Input::Capture {
            source,
            assembler: Box::new(assembler),
        },
        live,
        if live { LIVE_SOURCE_ID } else { SOURCE_ID },
        stop,
    )
}

/// Runs the decoders, the tracker and the store on the events of connections a
/// proxy forwards (`crate::proxy`): a live run whose input is `events` instead of
/// frames. It ends when every sender is gone (or on `stop`), flushing what was
/// decided; writes still in flight stay undecided in the store, as a live tap's do.
pub fn run_events(
    options: &TapOptions,
    events: Receiver<StreamEvent>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<TapReport> {
    run_input(options, Input::Events(events), true, PROXY_SOURCE_ID, stop)
}

/// Where a run's stream events come from.
enum Input {
    /// Frames of files or an interface, reassembled here.
    Capture {
        source: Source,
        assembler: Box<Assembler>,
    },
    /// Events already in stream form (a proxy's copies of what it forwards).
    Events(Receiver<StreamEvent>),
}

/// What one read of an [`Input`] gave.
enum Step {
    /// One frame or a batch of events, at this capture time (ns).
    Progress(u64),
    Quiet,
    End,
    Failed(String),
}

/// Events taken from a proxy's queue per step at most, so group commits and
/// deadlines keep their pace under a flood.
const EVENTS_PER_STEP: usize = 4096;

impl Input {
    fn next(&mut self, until: Instant, events: &mut Vec<StreamEvent>) -> Step {
        match self {
            Input::Capture { source, assembler } => match source.next_until(until) {
                Next::Packet(p) => {
                    let ts = p.ts.0;
                    assembler.packet(&p, events);
                    Step::Progress(ts)
                }
                Next::Quiet => Step::Quiet,
                Next::End => Step::End,
                Next::Failed(e) => Step::Failed(e),
            },
            Input::Events(rx) => {
                inject::before_events();
                let wait = until.saturating_duration_since(Instant::now());
                let first = match rx.recv_timeout(wait) {
                    Ok(ev) => ev,
                    Err(RecvTimeoutError::Timeout) => return Step::Quiet,
                    Err(RecvTimeoutError::Disconnected) => return Step::End,
                };
                let mut ts = event_ts(&first);
                events.push(first);
                while events.len() < EVENTS_PER_STEP {
                    match rx.try_recv() {
                        Ok(ev) => {
                            ts = ts.max(event_ts(&ev));
                            events.push(ev);
                        }
                        Err(_) => break,
                    }
                }
                Step::Progress(ts)
            }
        }
    }

    fn finish(&mut self, events: &mut Vec<StreamEvent>) {
        if let Input::Capture { assembler, .. } = self {
            assembler.finish(events);
        }
    }

    fn take_errors(&mut self) -> Vec<String> {
        match self {
            Input::Capture { source, .. } => source.take_errors(),
            Input::Events(_) => Vec::new(),
        }
    }
}

fn run_input(
    options: &TapOptions,
    input: Input,
    live: bool,
    source_id: &'static str,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<TapReport> {
    let store = open_store(&options.store, options.durability)?;
    let Some(companion) = &options.companion else {
        return run_opened(options, input, live, source_id, stop, &store);
    };
    // The companion works beside the run on the same store (an LMDB environment is
    // one per process) and is told when the run's last group is committed, so its
    // last round sees everything.
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let beside = scope.spawn(|| (companion.0)(&store, &done));
        let report = run_opened(options, input, live, source_id, stop, &store);
        done.store(true, Ordering::SeqCst);
        let beside = beside
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the companion of the run panicked")));
        match (report, beside) {
            (Ok(r), Ok(())) => Ok(r),
            (Ok(mut r), Err(e)) => {
                r.companion_error = Some(format!("{e:#}"));
                Ok(r)
            }
            (Err(e), _) => Err(e),
        }
    })
}

fn run_opened(
    options: &TapOptions,
    input: Input,
    live: bool,
    source_id: &'static str,
    stop: Arc<AtomicBool>,
    store: &Store,
) -> anyhow::Result<TapReport> {
    std::thread::scope(|scope| {
        let committer = Committer::start(scope, store, options.published.clone());
        run_committing(options, input, live, source_id, stop, store, committer)
    })
}

/// [`run_opened`] with its group committer started.
fn run_committing<'s>(
    options: &TapOptions,
    mut input: Input,
    live: bool,
    source_id: &'static str,
    stop: Arc<AtomicBool>,
    store: &Store,
    committer: Committer<'s>,
) -> anyhow::Result<TapReport> {
    let ports = PortMap::new(&options.cql_ports, &options.mongo_ports);
    let (state, skip) = match resume::plan(store, &options.files, live, options.resume)? {
        Plan::AlreadyComplete => {
            eprintln!("tidemark: this capture was already tapped completely into the store; nothing to do");
            return Ok(TapReport {
                tidemark: store.tidemark()?.unwrap_or(0),
                ..TapReport::default()
            });
        }
        Plan::Run { state, skip } => (state, skip),
    };
    let policy = Policy {
        mongo_unreplicated_committed: options.tracker.mongo_unreplicated_committed,
        in_doubt: options.tracker.in_doubt_policy.as_str().to_string(),
        resolve_after_ns: options.tracker.resolve_after_ns,
    };
    let mut writer = Writer {
        store,
        committer,
        source_id,
        state,
        caught_up: !skip.resumed,
        skip,
        stored_tidemark: store.tidemark()?.unwrap_or(0),
        report: TapReport::default(),
        packets: 0,
        last_ts: 0,
        publishes: options.published.is_some(),
        in_flight_next: None,
        in_flight_stored: Vec::new(),
        quiet_at: 0,
    };
    if live {
        refuse_slim_parked(store)?;
    }
    if source_id == LIVE_SOURCE_ID {
        record_down_time(store, writer.stored_tidemark)?;
    } else if source_id == PROXY_SOURCE_ID {
        if let Some(last_commit) = resume::proxy_run_crashed(store)? {
            record_crash_time(store, writer.stored_tidemark, last_commit)?;
        }
    }
    // Record the run (and the policy in force) before anything else, so even a
    // crash before the first group leaves a resumable store.
    writer.commit(Flush::default(), Some(policy), false)?;
    if live {
        settle_orphans(&mut writer)?;
    }
    if options.announce_ready {
        announce_ready(options.interface.as_deref());
    }
    if let Some(ready) = &options.ready {
        ready.store(true, Ordering::SeqCst);
    }

    let (registry, cql_state) = registry_with_cql_state();
    if live {
        // A live run continuing a store (a tap or proxy restarted on it) starts
        // knowing the tables an earlier run learned: the drivers' connections are
        // new but their tables are not, and a driver need not read `system_schema`
        // again, nor replay its CREATE. Without this, writes after a restart were
        // decoded without key columns or types (found by the proxied histories: rows
        // keyed pk -1 holding quoted text, counters logged 0). A file run is not
        // seeded: its replay must decide exactly what the interrupted run decided.
        crate::decode::cql::stored_schema::learn_stored(&mut cql_state.lock().schema, store)?;
    }
    let mut session = Session::new(ports, registry);
    let mut schema_keeper = schema::SchemaKeeper::default();
    let mut tracker = CommitTracker::new(options.tracker.clone());
    let mut events = Vec::new();
    let mut records = Vec::new();
    let mut read_errors = Vec::new();
    let mut last_flush = Instant::now();
    // Events taken since the last group commit: a live run then wakes no later than
    // LIVE_FLUSH after that commit, not only on the next event or after IDLE_TICK
    // of quiet, so what it saw is stored (and a crash loses, and its gap covers, at
    // most that long: `record_crash_time`).
    let mut unflushed = false;
    let mut interrupted = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        let wait = if live && unflushed {
            LIVE_FLUSH
                .saturating_sub(last_flush.elapsed())
                .max(Duration::from_millis(5))
        } else {
            IDLE_TICK
        };
        let ts = match input.next(Instant::now() + wait, &mut events) {
            Step::Progress(ts) => ts,
            Step::Quiet => {
                if source_id == PROXY_SOURCE_ID {
                    writer.quiet_at = wall_clock_ns();
                }
                // A quiet interface: capture time is the wall clock (less a margin
                // for packets still in the kernel's buffer), so deadlines pass and
                // the tidemark advances while nothing happens.
                let quiet = wall_clock_ns().saturating_sub(IDLE_MARGIN_NS);
                let oldest = session
                    .oldest_pending_write_except_router_copies(|f| tracker.router_flow(f.0))
                    .map(|t| t.0);
                tracker.advance(quiet.max(writer.last_ts), oldest);
                if live {
                    writer.set_in_flight(tracker.in_flight(&session.in_flight_writes()));
                }
                writer.flush(&mut tracker, false, false)?;
                schema_keeper.persist(writer.store, &cql_state, writer.last_ts)?;
                last_flush = Instant::now();
                unflushed = false;
                continue;
            }
            Step::End => break,
            Step::Failed(e) => {
                read_errors.push(e);
                break;
            }
        };
        writer.packets += 1;
        inject::after_packet(writer.packets);
        writer.last_ts = writer.last_ts.max(ts);
        feed(
            &mut session,
            &mut tracker,
            &mut events,
            &mut records,
            options.published.as_deref(),
        );
        let due =
            tracker.ready_len() >= options.group || (live && last_flush.elapsed() >= LIVE_FLUSH);
        if due {
            let oldest = session
                .oldest_pending_write_except_router_copies(|f| tracker.router_flow(f.0))
                .map(|t| t.0);
            tracker.advance(writer.last_ts, oldest);
            if live {
                writer.set_in_flight(tracker.in_flight(&session.in_flight_writes()));
            }
            writer.flush(&mut tracker, false, false)?;
            schema_keeper.persist(writer.store, &cql_state, writer.last_ts)?;
            last_flush = Instant::now();
            unflushed = false;
        } else {
            unflushed = true;
        }
    }
    if live && stop.load(Ordering::Relaxed) {
        interrupted = false; // a live capture always ends by a signal or --duration
    }
    read_errors.extend(input.take_errors());
    let complete = !interrupted;
    if !interrupted {
        input.finish(&mut events);
        feed(
            &mut session,
            &mut tracker,
            &mut events,
            &mut records,
            options.published.as_deref(),
        );
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
    if live {
        writer.set_in_flight(tracker.in_flight(&session.in_flight_writes()));
    }
    writer.flush(&mut tracker, complete, true)?;
    writer.committer.finish()?;
    schema_keeper.persist(writer.store, &cql_state, writer.last_ts)?;
    let mut report = writer.report;
    report.packets = writer.packets;
    report.undecided = tracker.undecided_len() as u64;
    report.tracker = tracker.stats().clone();
    report.tidemark = store.tidemark()?.unwrap_or(0);
    report.interrupted = interrupted;
    report.read_errors = read_errors;
    Ok(report)
}

/// A live tap starting on a store something was tapped into before: nothing watched
/// the wire between the store's tidemark (everything before it was seen and
/// decided) and now, so writes of that window may be missing. It is recorded as a
/// capture gap of the whole capture (flow 0, no node), and versions at a time after
/// the tidemark are refused unless the gap is accepted — instead of silently lacking
/// the writes (found by tests/history_regressions.rs: a version cut after a tap
/// restart listed no gap and lacked the writes made while the tap was down).
///
/// A store whose earlier live run never stored a tidemark (stopped before its first
/// flush) is in the same case from its beginning: the gap starts at 0.
fn record_down_time(store: &Store, stored_tidemark: u64) -> anyhow::Result<()> {
    let earlier_live_run = store.checkpoint(LIVE_SOURCE_ID)?.is_some();
    if stored_tidemark == 0 && !earlier_live_run {
        return Ok(());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    if now <= stored_tidemark {
        return Ok(());
    }
    store.add_gaps(&[crate::store::Gap {
        flow: 0,
        node: None,
        from: stored_tidemark,
        to: now,
        bytes: 0,
    }])?;
    eprintln!(
        "tidemark: the store's live capture stopped at its tidemark and starts again now: the time between is recorded as a capture gap"
    );
    Ok(())
}

/// A proxy starting on a store whose earlier proxy run did not end cleanly (killed,
/// crashed: its checkpoint never said `complete`). That run forwarded requests and
/// responses after its last group commit that no store holds: a write the database
/// applied and the client saw acknowledged in those last milliseconds would be
/// missing from every version. So that time is a capture gap (flow 0, no node), and
/// versions after its start are refused unless it is accepted.
///
/// It starts where the last group commit's events end (`last_commit`, the
/// checkpoint's time: its last event's, or when its input was last found empty,
/// less [`CRASH_MARGIN_NS`]), not at the tidemark: by then every event was decided
/// and logged, or stored undecided (pending, in flight) and is settled in doubt now. The proxy copies bytes to the decoders before it forwards
/// them, so a request the node got was queued before any event after it was stamped.
/// (The tidemark waits seconds for in-doubt writes: a gap from it refused versions
/// the crash could not touch.) A proxy that was stopped
/// gracefully (SIGTERM/SIGINT: drained, then flushed with `complete` set) records no
/// gap: while it was down no client reached the nodes through it, and clients that
/// learned only sidecar addresses (the rewrite) reached them no other way; what was
/// in flight at its end is settled in doubt by [`settle_orphans`]. (Found by the
/// proxied histories: a SIGKILLed proxy restarted on its store left no gap.)
fn record_crash_time(store: &Store, stored_tidemark: u64, last_commit: u64) -> anyhow::Result<()> {
    let now = wall_clock_ns();
    let from = last_commit
        .saturating_sub(CRASH_MARGIN_NS)
        .max(stored_tidemark);
    if now <= from {
        return Ok(());
    }
    store.add_gaps(&[crate::store::Gap {
        flow: 0,
        node: None,
        from,
        to: now,
        bytes: 0,
    }])?;
    eprintln!(
        "tidemark: the store's last proxy run did not stop cleanly: what it forwarded after its last group commit may be missing, so the time from there to now is recorded as a capture gap"
    );
    Ok(())
}

/// A file run that died before its last flush parked its undecided writes without
/// their content (`Parking::Slim`): only its `--resume` can decide them, and a live
/// run settling them ([`settle_orphans`]) would log writes it does not have, and
/// leave that resume a log it is no prefix of. Checked before a live run writes
/// anything.
fn refuse_slim_parked(store: &Store) -> anyhow::Result<()> {
    let slim = store
        .list_undecided()?
        .iter()
        .any(|(_, u)| u.tracker_state == crate::commit::SLIM_PARKED);
    if slim {
        bail!(
            "the store holds the undecided writes of an interrupted tap of a capture file; finish it with `tidemark tap --resume` and the same files before a live run"
        );
    }
    Ok(())
}

/// Decides what an earlier live run (a tap or a proxy that was killed or stopped)
/// left undecided: its connections are gone with it, or at least no longer
/// followed, so neither the retry that would resolve an in-doubt write nor the
/// evidence a pending one waits for will be seen — each is logged in doubt
/// ([`stop_waiting`]), as when a flow closes first. Without this they would stay
/// undecided forever (a live run is never replayed) and `status` would list them
/// for good.
fn settle_orphans(writer: &mut Writer<'_, '_>) -> anyhow::Result<()> {
    writer.committer.drain()?;
    let orphans = writer.store.list_undecided()?;
    if orphans.is_empty() {
        return Ok(());
    }
    // The log is in commit order: an orphan's decision is logged now, so it goes no
    // earlier than what the log holds last (its request time when that is later).
    // (Dropped entries count: after a drop the log may hold none.)
    let last_logged = writer.store.reader()?.last_commit_time()?;
    let mut flush = Flush::default();
    let mut in_flight = 0usize;
    let mut settled = Vec::new();
    for (id, u) in orphans {
        let requested_only = id.starts_with(crate::commit::IN_FLIGHT_ID_PREFIX);
        in_flight += usize::from(requested_only);
        let mut m = u.mutation;
        stop_waiting(&mut m, requested_only);
        m.commit_time = m.commit_time.max(u.first_seen).max(last_logged);
        settled.push((m.commit_time, u.first_seen, id, m));
    }
    settled.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
    for (_, _, id, m) in settled {
        flush.mutations.push(m);
        flush.decided.push(id);
    }
    eprintln!(
        "tidemark: {} writes an earlier live run left undecided ({in_flight} of them requests without a response) are now logged in doubt",
        flush.mutations.len()
    );
    writer.commit(flush, None, false)
}

/// Decides an orphan left undecided by an earlier live run. An in-doubt write
/// keeps its reason (a timeout stays a timeout); one still waiting will never get
/// what it waited for: a request in flight (`requested_only`) its response, an
/// acknowledged MongoDB `w:1` write (pending) the commit point that decides it —
/// the run that watched its set's term is gone. Both are in doubt, each saying why.
fn stop_waiting(m: &mut crate::store::Mutation, requested_only: bool) {
    use crate::decode::reason::Reason;
    use crate::store::{InDoubtReason, Outcome, Payload};
    let acknowledged = !requested_only && matches!(m.payload, Payload::Mongo(_));
    match m.outcome {
        Outcome::InDoubt { .. } => {}
        Outcome::Pending if acknowledged => {
            m.outcome = Outcome::InDoubt {
                reason: InDoubtReason::Other(Reason::Unreplicated.as_str().into()),
            };
            let prior = std::mem::take(&mut m.evidence.note);
            m.evidence.note = format!(
                "{}: the live run that saw it acknowledged ended before a commit point decided it",
                Reason::Unreplicated
            );
            if !prior.is_empty() {
                m.evidence.note.push_str("; ");
                m.evidence.note.push_str(&prior);
            }
        }
        _ => {
            m.outcome = Outcome::InDoubt {
                reason: InDoubtReason::NoResponse,
            };
            m.evidence.note = format!(
                "{}: the live run that saw the request ended before its response",
                Reason::NoResponse
            );
        }
    }
}

/// Says on stderr that the run is under way: the source is open (a live capture is
/// capturing), the store holds the run's record, and the CLI's SIGINT/SIGTERM
/// handlers were installed before [`run`] was called. Whoever drives `tap` (a
/// supervisor, a test) waits for this line instead of guessing a startup time: a
/// signal before it may find no handler yet and kill the process outright.
/// A live capture keeps the words `inspect --interface` prints.
fn announce_ready(interface: Option<&str>) {
    match interface {
        Some(name) => eprintln!("tidemark: capturing on {name}"),
        None => eprintln!("tidemark: tap ready"),
    }
}

/// Events → session (decoders) → tracker. The tracker sees each event first (flow
/// endpoints, gaps), then the records it produced.
fn feed(
    session: &mut Session,
    tracker: &mut CommitTracker,
    events: &mut Vec<StreamEvent>,
    records: &mut Vec<crate::decode::records::Record>,
    published: Option<&Published>,
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
            if let Some(p) = published {
                p.seen(&r);
            }
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
