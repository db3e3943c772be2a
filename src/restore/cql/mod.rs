//! Restore of a version's CQL tables through the `scylla` driver.
//!
//! In order: the version and the store's schema are read and the plan made
//! ([`plan`]); the target is connected and its schema read; a target table with
//! another key or other column types stops everything here, before any write. Then
//! the missing keyspaces, types and tables are created, every row of the version is
//! read into units of one partition (`units`, [`statements`]) and written
//! ([`writer`]) as unlogged batches, `--parallel` batches in flight and `--rate`/`--rate-mb` ([`rate`]) holding them
//! back, and then the version's deletions as tombstones. A checkpoint ([`state`],
//! kept by `books`) follows the acknowledged writes, so `--resume` continues where a killed or
//! interrupted restore stopped.
//!
//! Assumption: nothing else writes to the target's tables during a restore. The
//! timestamped writes would still be right with concurrent writers, but counters,
//! which are read and then brought to the version's total, would not.

mod books;
pub mod plan;
pub mod progress;
pub mod rate;
pub mod state;
pub mod statements;
mod units;
pub mod writer;

use std::collections::BTreeSet;
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
use crate::version::model::VersionInfo;
use crate::version::stored;
use books::{Books, Done};
use plan::Plan;
use state::State;
use statements::Clock;
use units::{read_units, Unit};

/// A checkpoint is saved after this many rows or this long, whichever comes first.
/// Each save is a synced store transaction on the dispatching task; every 500 rows it
/// held the writes in flight back (restore at 0.74 of a plain loader), and what a
/// resume writes again is idempotent (counters are set, not added), so the cost of a
/// larger step is only some rows written twice after a crash.
const CHECKPOINT_ROWS: u64 = 20_000;
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

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

pub(crate) fn first_line(s: &str) -> String {
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
        let mut books = Books::from(resume.as_ref());
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
