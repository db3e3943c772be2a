//! Restore of a version's CQL tables through the `scylla` driver.
//!
//! In order: the version and the store's schema are read and the plan made
//! ([`plan`]); the target is connected and its schema read; a target table with
//! another key or other column types stops everything here, before any write. Then
//! the missing keyspaces, types and tables are created, every row of the version is
//! written ([`statements`], [`writer`]) a partition's rows in one unlogged batch,
//! `--parallel` batches in flight and `--rate`/`--rate-mb` ([`rate`]) holding them
//! back, and then the version's deletions as tombstones. A checkpoint ([`state`])
//! follows the acknowledged writes, so `--resume` continues where a killed or
//! interrupted restore stopped.
//!
//! Assumption: nothing else writes to the target's tables during a restore. The
//! timestamped writes would still be right with concurrent writers, but counters,
//! which are read and then brought to the version's total, would not.

pub mod plan;
pub mod progress;
pub mod rate;
pub mod state;
pub mod statements;
pub mod writer;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::options::Counts;
use super::{checkpoint, RestoreOptions, RestoreReport};
use crate::decode::cql::stored_schema;
use crate::snapshot::source::redact;
use crate::snapshot::take::{cql as take_cql, cql_schema};
use crate::store::{Store, StoreError, StoreOptions};
use crate::version::model::{VersionInfo, VersionRow};
use crate::version::stored;
use plan::Plan;
use state::{Phase, State, Tally};
use statements::{Clock, Op};

/// A unit carries at most this many payload bytes (besides [`writer::BATCH_STATEMENTS`]).
const UNIT_BYTES: usize = 16 * 1024;
/// A checkpoint is saved after this many rows or this long, whichever comes first.
const CHECKPOINT_ROWS: u64 = 500;
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// Units failing in a row before the restore gives up (the target is gone).
const FAILURES_IN_A_ROW: u32 = 20;

/// One write unit: the operations of consecutive rows (or deletions) of one
/// partition, written as one batch.
struct Unit {
    seq: u64,
    phase: Phase,
    source: String,
    target: String,
    /// The last key of the unit (the checkpoint's place once it is acknowledged).
    last_key: String,
    /// Rows (or deletion entries) the unit writes.
    items: u64,
    /// Of them, rows with nothing to write (every cell expired).
    empty: u64,
    bytes: u64,
    ops: Vec<Op>,
}

/// Restores the CQL namespaces of `o.version` into the cluster at `hosts`.
pub fn restore(
    o: &RestoreOptions,
    hosts: Vec<String>,
    credentials: Option<(String, String)>,
    stop: Arc<AtomicBool>,
) -> Result<RestoreReport> {
    let started = Instant::now();
    let target = redact(&o.to);
    let consistency = take_cql::consistency(if o.consistency.is_empty() {
        "QUORUM"
    } else {
        &o.consistency
    })?;
    let replication = o
        .replication
        .as_deref()
        .map(plan::parse_replication)
        .transpose()?;
    let store = Arc::new(match Store::open_side(&o.store, &StoreOptions::default()) {
        Err(StoreError::Missing { .. }) => bail!("no store at {}", o.store.display()),
        other => other?,
    });
    let info = stored::info(&store, &o.version)?
        .ok_or_else(|| anyhow!("no version {:?} in {}", o.version, o.store.display()))?;
    let scripts = scripts(&store, &info)?;
    let schema = schema_of(&store, &scripts)?;
    let plan = plan::build(
        &info.namespaces,
        &schema,
        &scripts,
        &o.keyspaces,
        &o.tables,
        &o.renames,
    )?;
    if plan.tables.is_empty() {
        bail!("version {:?} has no CQL table to restore", o.version);
    }
    let fingerprint = format!(
        "{:?} {:?} {:?} {}",
        o.keyspaces, o.tables, o.renames, o.overwrite
    );
    let kept: Option<State> = checkpoint::load(&store, &o.version, &target)?;
    let resume_from = match (o.resume, kept) {
        (true, Some(s)) if s.options != fingerprint => bail!(
            "the interrupted restore of {:?} to {target} used other --keyspace/--table/--rename/--overwrite: give the same ones, or start over without --resume",
            o.version
        ),
        (true, Some(s)) => Some(s),
        (true, None) => {
            eprintln!("tidemark: note: no interrupted restore of {:?} to {target}: starting from the beginning", o.version);
            None
        }
        (false, Some(_)) if !o.dry_run => {
            eprintln!("tidemark: note: an interrupted restore of {:?} to {target} was kept; starting over (--resume continues it)", o.version);
            None
        }
        (false, _) => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let mut report = RestoreReport {
        version: o.version.clone(),
        target: target.clone(),
        dry_run: o.dry_run,
        resumed: resume_from.is_some(),
        ..RestoreReport::default()
    };
    runtime.block_on(async {
        let session = connect(&hosts, credentials.as_ref()).await?;
        let nodes = session.get_cluster_state().get_nodes_info().len();
        let (found, keyspaces, types) = target_schema(&session, &plan).await?;
        report.schema = plan::schema_statements(
            &plan,
            &found,
            &keyspaces,
            &types,
            replication.as_deref(),
            nodes,
        )?;
        if o.dry_run {
            for t in &plan.tables {
                report.namespaces.push((
                    t.target(),
                    Counts {
                        written: t.rows,
                        ..Counts::default()
                    },
                ));
                report.total.written += t.rows;
            }
            return Ok(());
        }
        for s in &report.schema {
            session
                .query_unpaged(s.as_str(), ())
                .await
                .map_err(|e| anyhow!("{s}: {e}"))?;
        }
        if !report.schema.is_empty() {
            session
                .await_schema_agreement()
                .await
                .map_err(|e| anyhow!("schema agreement after creating tables: {e}"))?;
        }
        let run = Run {
            o,
            store: Arc::clone(&store),
            plan: Arc::new(plan),
            info: &info,
            target: &target,
            fingerprint,
            stop: Arc::clone(&stop),
            writer: Arc::new(writer::Writer::new(session, consistency, Arc::clone(&stop))),
        };
        run.write(resume_from, &mut report).await
    })?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The CREATE scripts the version's snapshots recorded, per namespace.
fn scripts(store: &Store, info: &VersionInfo) -> Result<plan::Scripts> {
    let mut out = plan::Scripts::new();
    for id in info.snapshots.iter().chain(info.snapshot.iter()) {
        if let Some(s) = crate::snapshot::store::snapshot(store, *id)? {
            for n in s.namespaces {
                out.entry(n.name).or_insert(n.schema);
            }
        }
    }
    Ok(out)
}

/// The schema the store describes (`stored_schema::from_store`), with the CREATE
/// scripts of the version's snapshots learned before the log's own schema changes
/// (a snapshot-only version has no other source of its tables).
fn schema_of(store: &Store, scripts: &plan::Scripts) -> Result<crate::decode::cql::schema::Schema> {
    let mut schema = crate::decode::cql::schema::Schema::default();
    stored_schema::learn_stored(&mut schema, store)?;
    for script in scripts.values() {
        stored_schema::learn_script(&mut schema, script, None);
    }
    let reader = store.reader()?;
    for e in reader.seq_range(..)? {
        stored_schema::learn_logged(&mut schema, &e?.mutation);
    }
    Ok(schema)
}

async fn connect(hosts: &[String], credentials: Option<&(String, String)>) -> Result<Session> {
    let mut builder = SessionBuilder::new()
        .known_nodes(hosts)
        .connection_timeout(Duration::from_secs(5));
    if let Some((user, pass)) = credentials {
        builder = builder.user(user, pass);
    }
    let hosts = hosts.join(",");
    tokio::time::timeout(Duration::from_secs(20), builder.build())
        .await
        .map_err(|_| anyhow!("cannot connect to {hosts}: timed out"))?
        .map_err(|e| anyhow!("cannot connect to {hosts}: {}", first_line(&e.to_string())))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(300).collect()
}

/// The target's tables (of the plan's keyspaces), keyspaces and user types.
async fn target_schema(
    session: &Session,
    plan: &Plan,
) -> Result<(
    Vec<cql_schema::Table>,
    BTreeSet<String>,
    BTreeSet<(String, String)>,
)> {
    let wanted: BTreeSet<(String, String)> = plan
        .tables
        .iter()
        .map(|t| (t.keyspace.clone(), t.name.clone()))
        .collect();
    let found = cql_schema::read(session, |ks, t| {
        wanted.contains(&(ks.to_string(), t.to_string()))
    })
    .await?;
    let ks_rows = session
        .query_unpaged("SELECT keyspace_name FROM system_schema.keyspaces", ())
        .await
        .context("reading the target's keyspaces")?
        .into_rows_result()?;
    let mut keyspaces = BTreeSet::new();
    for r in ks_rows.rows::<(String,)>()? {
        keyspaces.insert(r?.0);
    }
    let type_rows = session
        .query_unpaged(
            "SELECT keyspace_name, type_name FROM system_schema.types",
            (),
        )
        .await
        .context("reading the target's user types")?
        .into_rows_result()?;
    let mut types = BTreeSet::new();
    for r in type_rows.rows::<(String, String)>()? {
        types.insert(r?);
    }
    Ok((found, keyspaces, types))
}

/// One restore's writing half.
struct Run<'a> {
    o: &'a RestoreOptions,
    store: Arc<Store>,
    plan: Arc<Plan>,
    info: &'a VersionInfo,
    target: &'a str,
    fingerprint: String,
    stop: Arc<AtomicBool>,
    writer: Arc<writer::Writer>,
}

/// What came back of one unit.
struct Done {
    unit: Unit,
    result: Result<()>,
}

impl Run<'_> {
    async fn write(&self, resume: Option<State>, report: &mut RestoreReport) -> Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let clock = Clock {
            now_secs: now.as_secs() as i64,
            at_us: (self.info.at / 1000) as i64,
            overwrite_us: self.o.overwrite.then_some(now.as_micros() as i64),
        };
        let mut books = Books {
            at_mark: resume
                .as_ref()
                .map(|s| s.counts.iter().cloned().collect())
                .unwrap_or_default(),
            mark: resume
                .as_ref()
                .map(|s| (s.phase, s.namespace.clone(), s.key.clone())),
            ..Books::default()
        };
        books.all = books.at_mark.clone();
        let total_rows: u64 = self.plan.tables.iter().map(|t| t.rows).sum();
        let done_rows: u64 = books.at_mark.values().map(|t| t[0] + t[2] + t[4]).sum();
        let mut progress = progress::Progress::new(self.o.json, total_rows, done_rows);
        let (tx, mut rx) = mpsc::channel::<Unit>(self.o.parallel * 2 + 4);
        let reader = {
            let store = Arc::clone(&self.store);
            let plan = Arc::clone(&self.plan);
            let name = self.o.version.clone();
            let resume = resume.clone();
            let stop = Arc::clone(&self.stop);
            tokio::task::spawn_blocking(move || {
                read_units(&store, &name, &plan, resume, clock, &stop, tx)
            })
        };
        let limiter = rate::Limiter::new(self.o.rate, self.o.rate_mb);
        let mut in_flight: JoinSet<Done> = JoinSet::new();
        let mut last_save = Instant::now();
        loop {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            if in_flight.len() >= self.o.parallel {
                if let Some(d) = in_flight.join_next().await {
                    books.done(d, report, &mut progress, &self.stop);
                }
                continue;
            }
            let unit = tokio::select! {
                u = rx.recv() => match u {
                    Some(u) => Some(u),
                    None => break,
                },
                Some(d) = in_flight.join_next(), if !in_flight.is_empty() => {
                    books.done(d, report, &mut progress, &self.stop);
                    None
                }
            };
            if let Some(unit) = unit {
                limiter.acquire(unit.items, unit.bytes, &self.stop).await;
                let writer = Arc::clone(&self.writer);
                in_flight.spawn(async move {
                    let result = writer.write(&unit.ops).await;
                    Done { unit, result }
                });
            }
            if books.since_save >= CHECKPOINT_ROWS || last_save.elapsed() >= CHECKPOINT_EVERY {
                self.save(&books)?;
                books.since_save = 0;
                last_save = Instant::now();
            }
        }
        // a stop lets the units in flight finish (acknowledged or not)
        while let Some(d) = in_flight.join_next().await {
            books.done(d, report, &mut progress, &self.stop);
        }
        drop(rx);
        let read = reader
            .await
            .map_err(|e| anyhow!("reading the version: {e}"))?;
        progress.finish();
        for t in &self.plan.tables {
            let c = books.all.get(&t.target()).copied().unwrap_or_default();
            let counts = Counts {
                written: c[0],
                deletions: c[1],
                skipped: 0,
                failed: c[2],
                bytes: c[3],
            };
            report.total.written += counts.written;
            report.total.deletions += counts.deletions;
            report.total.failed += counts.failed;
            report.total.bytes += counts.bytes;
            report.namespaces.push((t.target(), counts));
        }
        let stopped = self.stop.load(Ordering::Relaxed);
        let fatal = books.fatal.take();
        match read {
            Err(e) if !stopped => {
                self.save(&books)?;
                report.error = Some(format!("{e:#}"));
            }
            _ if fatal.is_some() => {
                self.save(&books)?;
                report.error = fatal;
            }
            _ if stopped => {
                self.save(&books)?;
                report.error = Some("interrupted".into());
            }
            _ if report.total.failed > 0 => {
                self.save(&books)?;
                report.error = Some(format!(
                    "{} writes failed after retries",
                    report.total.failed
                ));
            }
            Ok(notes) => {
                for n in notes {
                    eprintln!("tidemark: note: {n}");
                }
                checkpoint::clear(&self.store, &self.o.version, self.target)?;
            }
            Err(e) => report.error = Some(format!("{e:#}")),
        }
        Ok(())
    }

    fn save(&self, books: &Books) -> Result<()> {
        let Some((phase, ns, key)) = &books.mark else {
            return Ok(());
        };
        let state = State {
            options: self.fingerprint.clone(),
            phase: *phase,
            namespace: ns.clone(),
            key: key.clone(),
            counts: books.at_mark.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        };
        checkpoint::save(&self.store, &self.o.version, self.target, &state)
    }
}

/// The accounts of the units written: counts over everything, and the checkpoint's
/// place with the counts up to it (units come back in any order; the place moves
/// only over an unbroken run of acknowledged ones, and stops for good at a failed
/// one, so that `--resume` writes it again).
#[derive(Default)]
struct Books {
    all: BTreeMap<String, Tally>,
    at_mark: BTreeMap<String, Tally>,
    mark: Option<(Phase, String, String)>,
    /// Units back but not yet passed by the place (a unit before them is in flight).
    waiting: BTreeMap<u64, (Unit, bool)>,
    next_seq: u64,
    blocked: bool,
    since_save: u64,
    failures_in_a_row: u32,
    fatal: Option<String>,
}

impl Books {
    fn done(
        &mut self,
        d: Result<Done, tokio::task::JoinError>,
        report: &mut RestoreReport,
        progress: &mut progress::Progress,
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

/// Reads the version (rows, then deletions) into units of one partition each, after
/// the checkpoint's place; ends early when `stop` is set or the writer side is gone.
/// Returns notes for the report (cells left out as expired, tombstones CQL cannot
/// state).
fn read_units(
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
