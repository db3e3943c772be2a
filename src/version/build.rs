//! `version create`: cut a version at time T from the store and keep it there.
//!
//! `version(T) = reconcile(snapshot rows, committed mutations with commit time <= T)`
//! (ARCHITECTURE.md, "Versions and restore"). This reads the log once, in seq order
//! (which is commit-time order), keeps every touched row or document in memory, and
//! writes the version's deletions (the CQL tombstones a restore writes back, so older
//! data in a target stays shadowed), its rows, and then its description. Each refusal
//! and rule is a named function below with its own test.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use anyhow::{bail, Context};
use serde_json::Value;

use super::cql_row::{CqlRow, Marker};
use super::cql_shadow::{KeyLayout, TableShadows};
use super::join::{
    after_cluster_time, choose_snapshots, refuse_other_cluster, row_window, window_rule,
    SnapshotChoice, Window,
};
use super::model::{NamespaceCount, UncertainItem, VersionDeletion, VersionInfo, VersionRow};
use super::mongo_doc::{self, Unapplied};
use super::stored;
use crate::capture::Timestamp;
use crate::decode::cql::schema::Schema;
use crate::decode::cql::stored_schema;
use crate::decode::mongo::tidemark_mongo::bson::Document;
use crate::decode::time::rfc3339;
use crate::snapshot::{self, RowData, SnapshotInfo};
use crate::store::{
    CellKind, CellOp, CqlPayload, Envelope, Gap, MongoOp, MongoOpKind, Mutation, OpTime, Outcome,
    OutcomeKind, Payload, Protocol, Query, Store, WriteOp,
};

/// The moment a version stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The store's tidemark: the latest moment every write is decided.
    Latest,
    /// A time in ns since the epoch.
    Time(u64),
}

/// What `version create` was asked for.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub at: At,
    pub name: Option<String>,
    /// Cut the version across capture gaps, recording them in it.
    pub allow_gaps: bool,
    /// The snapshot to join (default: the newest finished one of each protocol that
    /// ended by T).
    pub snapshot: SnapshotChoice,
}

/// Refuses a time after the tidemark: past it, writes may still be undecided, so no
/// version there could be called consistent.
pub fn refuse_past_tidemark(at: u64, tidemark: u64) -> anyhow::Result<()> {
    if at > tidemark {
        bail!(
            "--at {} is after the tidemark {} (writes after it are not all decided yet); use a time at or before it, or --at latest",
            rfc3339(Timestamp(at)),
            rfc3339(Timestamp(tidemark))
        );
    }
    Ok(())
}

/// The capture gaps that lie (at least partly) between `from` and `at`: writes in
/// them may be missing from the log, so a version across them is not exact.
pub fn gaps_in_window(gaps: &[Gap], from: u64, at: u64) -> Vec<Gap> {
    gaps.iter()
        .filter(|g| g.from <= at && g.to >= from)
        .cloned()
        .collect()
}

/// Refuses a store whose log was dropped after a push (`repo push --drop-pushed`,
/// `--keep-local`): every version needs the whole log up to T, and the repository
/// has it, so the version is cut there.
pub fn refuse_dropped(d: Option<&crate::store::Dropped>) -> anyhow::Result<()> {
    let Some(d) = d else { return Ok(()) };
    bail!(
        "the local log starts at seq {} (seqs up to {} were pushed to {} and dropped here): cut the version from the repository with `tidemark version create --repo {} --store NEWDIR`",
        d.through_seq + 1,
        d.through_seq,
        d.repository,
        d.repository
    )
}

/// Refuses gaps unless the user accepts them; names them.
pub fn refuse_gaps(gaps: &[Gap], allow: bool) -> anyhow::Result<()> {
    if gaps.is_empty() || allow {
        return Ok(());
    }
    let named: Vec<String> = gaps
        .iter()
        .take(3)
        .map(|g| {
            format!(
                "flow {}{} from {} to {} ({} bytes)",
                g.flow,
                g.node.map(|n| format!(" to {n}")).unwrap_or_default(),
                rfc3339(Timestamp(g.from)),
                rfc3339(Timestamp(g.to)),
                g.bytes
            )
        })
        .collect();
    bail!(
        "{} capture gap(s) before the version's time, where writes may be missing: {}{}; accept them with --allow-gaps (they are then recorded in the version)",
        gaps.len(),
        named.join("; "),
        if gaps.len() > 3 { "; ..." } else { "" }
    )
}

/// Whether a logged mutation belongs in a version at `at`: committed, and committed
/// by then. Rolled-back, rejected, in-doubt and pending writes never are.
pub fn included(m: &Mutation, at: u64) -> bool {
    m.outcome.kind() == OutcomeKind::Committed && m.commit_time <= at
}

/// The default name of a version: its time.
pub fn default_name(at: u64) -> String {
    rfc3339(Timestamp(at))
}

/// Cuts a version into the store.
pub fn create(store: &Store, opts: &CreateOptions) -> anyhow::Result<VersionInfo> {
    let Some(tidemark) = store.tidemark()? else {
        bail!("the store has no tidemark yet (nothing was tapped into it): no version can be cut");
    };
    let at = match opts.at {
        At::Latest => tidemark,
        At::Time(t) => {
            refuse_past_tidemark(t, tidemark)?;
            t
        }
    };
    refuse_dropped(store.dropped()?.as_ref())?;
    let name = opts.name.clone().unwrap_or_else(|| default_name(at));
    stored::check_name(&name)?;
    if stored::info(store, &name)?.is_some() {
        bail!("version {name:?} exists: choose another --name");
    }
    let snapshots = choose_snapshots(&snapshot::store::list_snapshots(store)?, opts.snapshot, at)?;
    // Gaps matter from the snapshot's start (from the log's start without one).
    let from = snapshots.iter().map(|s| s.started).min().unwrap_or(0);
    let gaps = gaps_in_window(&store.gaps()?, from, at);
    refuse_gaps(&gaps, opts.allow_gaps)?;

    let mut state = State::default();
    // The schema: what the tap stored, the snapshots' CREATE statements, then the
    // log's schema changes as the scan meets them (no separate pass over the log).
    let mut schema = Schema::default();
    stored_schema::learn_stored(&mut schema, store)?;
    for s in snapshots.iter().filter(|s| s.protocol == Protocol::Cql) {
        for ns in &s.namespaces {
            stored_schema::learn_script(&mut schema, &ns.schema, ns.name.split('.').next());
        }
    }
    for s in &snapshots {
        state.seed(store, s, &schema)?;
    }
    // The log in chunks of short read transactions, so a tap appending meanwhile
    // is never held up by one long reader.
    let mut last_seq = 0;
    let mut next = 0u64;
    loop {
        let batch: Vec<Envelope> = {
            let reader = store.reader()?;
            // A drop (`repo push --drop-pushed` beside this) may not cut the scan short.
            refuse_dropped(reader.dropped()?.as_ref())?;
            let q = Query::all().seqs(next..).commit_times(..=at);
            let chunk: Result<Vec<Envelope>, _> = reader.query(&q)?.take(LOG_CHUNK).collect();
            chunk?
        };
        let Some(last) = batch.last() else { break };
        next = last.seq + 1;
        for e in &batch {
            last_seq = e.seq;
            if !included(&e.mutation, at) {
                state.note_in_doubt(e, at, from);
                continue;
            }
            state.note_node(&e.mutation);
            stored_schema::learn_logged(&mut schema, &e.mutation);
            state.mutations += 1;
            state.apply(e)?;
        }
        if batch.len() < LOG_CHUNK {
            break;
        }
    }
    // Key layouts (for partition and range deletions) from the schema at T.
    let namespaces: Vec<String> = state
        .cql
        .keys()
        .chain(state.shadows.keys())
        .cloned()
        .collect();
    for ns in namespaces {
        let (ks, table) = ns.split_once('.').unwrap_or(("", ""));
        if let Some(layout) = KeyLayout::of(&schema, ks, table) {
            state.layouts.insert(ns, layout);
        }
    }
    for s in &snapshots {
        let nodes = match s.protocol {
            Protocol::Cql => &state.cql_nodes,
            Protocol::Mongo => &state.mongo_nodes,
        };
        refuse_other_cluster(s, nodes)?;
    }

    let mutations = state.mutations;
    let (rows, deletions, uncertain) = state.materialize(at)?;
    let mut counts: BTreeMap<String, NamespaceCount> = BTreeMap::new();
    for (ns, _, row) in &rows {
        let c = counts.entry(ns.clone()).or_insert_with(|| NamespaceCount {
            namespace: ns.clone(),
            protocol: match row {
                VersionRow::Cql { .. } => Protocol::Cql,
                VersionRow::Mongo { .. } => Protocol::Mongo,
            },
            rows: 0,
            uncertain: 0,
        });
        c.rows += 1;
    }
    for u in &uncertain {
        if let Some(c) = counts.get_mut(&u.namespace) {
            c.uncertain += 1;
        }
    }
    let info = VersionInfo {
        name: name.clone(),
        at,
        tidemark,
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
        snapshot: snapshots.first().map(|s| s.id),
        last_seq,
        mutations,
        gaps,
        namespaces: counts.into_values().collect(),
        uncertain,
        snapshots: snapshots.iter().map(|s| s.id).collect(),
    };
    stored::clear_rows(store, &name)?;
    stored::write_deletions(store, &name, deletions)
        .with_context(|| format!("write the deletions of version {name:?}"))?;
    stored::write(store, &info, rows).with_context(|| format!("write version {name:?}"))?;
    Ok(info)
}

/// A row of a version with its namespace and key.
type NamedRow = (String, String, VersionRow);

/// A deletion entry of a version with its namespace and key.
type NamedDeletion = (String, String, VersionDeletion);

/// Log envelopes read per read transaction.
const LOG_CHUNK: usize = 50_000;

/// A MongoDB operation waiting to be applied in optime order.
#[derive(Debug)]
struct PendingOp {
    order: (u64, u64),
    commit_time: u64,
    op: MongoOp,
    kind: WriteOp,
}

/// One document: what a snapshot read (with its chunk's read window, or the one
/// cluster time it was read at) and the logged operations on it.
#[derive(Debug, Default)]
struct MongoDoc {
    seed: Option<(Vec<u8>, (u64, u64))>,
    cluster_time: Option<OpTime>,
    ops: Vec<PendingOp>,
}

/// Everything the log said, by row and document.
#[derive(Debug, Default)]
struct State {
    mutations: u64,
    /// Namespace → key → row (nested, so a lookup allocates nothing).
    cql: BTreeMap<String, BTreeMap<String, CqlRow>>,
    shadows: HashMap<String, TableShadows>,
    layouts: HashMap<String, KeyLayout>,
    mongo: BTreeMap<(String, String), MongoDoc>,
    /// MongoDB namespaces read at one cluster time, and that time.
    cluster_times: HashMap<String, OpTime>,
    uncertain: Vec<UncertainItem>,
    /// Keys an in-doubt write touched (the first such write's why), and MongoDB
    /// namespaces an in-doubt write by filter touched ([`State::note_in_doubt`]).
    in_doubt: BTreeMap<(String, String), String>,
    in_doubt_filters: BTreeMap<String, String>,
    cql_nodes: BTreeSet<IpAddr>,
    mongo_nodes: BTreeSet<IpAddr>,
}

impl State {
    /// A write decided in doubt by `at` (after the snapshot's start `from`, which
    /// read whatever it did): the version cannot say whether it happened, so its
    /// row or document is uncertain — not silently as if it had not (found by the
    /// proxied MongoDB histories: a `w:1` upsert acknowledged before a proxy
    /// restart, parked waiting for the commit point, was settled in doubt after it;
    /// the set kept it, and the version lacked the document without a word). A
    /// MongoDB write by filter names no document: every document of its namespace
    /// is uncertain, as for a committed one the version cannot apply.
    fn note_in_doubt(&mut self, e: &Envelope, at: u64, from: u64) {
        let m = &e.mutation;
        let Outcome::InDoubt { reason } = &m.outcome else {
            return;
        };
        if m.commit_time > at || m.commit_time < from || m.op == WriteOp::Ddl {
            return;
        }
        let why = format!(
            "an in-doubt write ({}, seq {}) may or may not have been applied",
            reason.as_str(),
            e.seq
        );
        let by_filter = matches!(m.payload, Payload::Mongo(_)) && !names_one_document(&m.key);
        if by_filter {
            self.in_doubt_filters
                .entry(m.namespace.clone())
                .or_insert_with(|| why.clone());
        }
        self.in_doubt
            .entry((m.namespace.clone(), m.key.clone()))
            .or_insert(why);
    }

    fn apply(&mut self, e: &Envelope) -> anyhow::Result<()> {
        let m = &e.mutation;
        match m.op {
            WriteOp::Truncate => {
                self.clear_namespace(&m.namespace, m.commit_time);
                return Ok(());
            }
            WriteOp::Ddl => {
                if drops_data(m) {
                    self.clear_namespace(&m.namespace, m.commit_time);
                }
                return Ok(());
            }
            _ => {}
        }
        match &m.payload {
            Payload::Cql(p) => self.apply_cql(m, p),
            Payload::Mongo(op) => {
                let order = (op.optime.map_or(u64::MAX, |o| o.ts), e.seq);
                let cluster_time = self.cluster_times.get(&m.namespace).copied();
                let doc = self
                    .mongo
                    .entry((m.namespace.clone(), m.key.clone()))
                    .or_default();
                doc.cluster_time = doc.cluster_time.or(cluster_time);
                doc.ops.push(PendingOp {
                    order,
                    commit_time: m.commit_time,
                    op: op.clone(),
                    kind: m.op,
                });
                Ok(())
            }
        }
    }

    /// Records the node a logged write went to (for [`refuse_other_cluster`]).
    fn note_node(&mut self, m: &Mutation) {
        let ip = m.source.node.ip();
        match m.payload {
            Payload::Cql(_) => self.cql_nodes.insert(ip),
            Payload::Mongo(_) => self.mongo_nodes.insert(ip),
        };
    }

    /// Seeds the state with a snapshot's rows.
    fn seed(&mut self, store: &Store, s: &SnapshotInfo, schema: &Schema) -> anyhow::Result<()> {
        if let Some(ct) = s.cluster_time {
            for ns in &s.namespaces {
                self.cluster_times.insert(ns.name.clone(), ct);
            }
        }
        for row in snapshot::store::rows(store, s.id, None) {
            let row = row?;
            let window = row_window(s, &row);
            match row.data {
                RowData::Cql {
                    cells,
                    static_cells,
                } => {
                    if !self.layouts.contains_key(&row.namespace) {
                        let (ks, table) = row.namespace.split_once('.').unwrap_or(("", ""));
                        let layout = KeyLayout::of(schema, ks, table).unwrap_or_default();
                        self.layouts.insert(row.namespace.clone(), layout);
                    }
                    if !static_cells.is_empty() {
                        // Static cells belong to the partition: the row of its key.
                        let pk = match serde_json::from_str::<Value>(&row.key) {
                            Ok(Value::Object(o)) => self.layouts[&row.namespace].partition_of(&o),
                            _ => row.key.clone(),
                        };
                        let table = self.cql.entry(row.namespace.clone()).or_default();
                        let prow = table.entry(pk).or_default();
                        for c in &static_cells {
                            prow.apply(c);
                        }
                    }
                    let table = self.cql.entry(row.namespace.clone()).or_default();
                    table
                        .entry(row.key)
                        .or_default()
                        .seed_from_snapshot(&cells, window);
                }
                RowData::Mongo { document } => {
                    let doc = self
                        .mongo
                        .entry((row.namespace.clone(), row.key))
                        .or_default();
                    doc.seed = Some((document, window));
                    doc.cluster_time = s.cluster_time;
                }
            }
        }
        Ok(())
    }

    /// TRUNCATE, DROP TABLE / KEYSPACE, Mongo drop / dropDatabase committed at
    /// `commit_time`: everything of the namespace (or of every namespace inside a
    /// keyspace or database) written before is gone. A row a snapshot read after it
    /// goes back to what the snapshot read; one read while it happened is uncertain.
    fn clear_namespace(&mut self, ns: &str, commit_time: u64) {
        let inside = |n: &str| n == ns || n.strip_prefix(ns).is_some_and(|r| r.starts_with('.'));
        let uncertain = &mut self.uncertain;
        for (n, rows) in self.cql.iter_mut().filter(|(n, _)| inside(n)) {
            rows.retain(|key, row| match row.window {
                Some((start, _)) if start > commit_time => {
                    row.reset_to_seed();
                    true
                }
                Some((_, end)) if end >= commit_time => {
                    uncertain.push(UncertainItem {
                        namespace: n.clone(),
                        key: key.clone(),
                        why: "a TRUNCATE or DROP committed while the snapshot read this row".into(),
                    });
                    false
                }
                _ => false,
            });
        }
        for ((n, key), doc) in self.mongo.iter_mut().filter(|((n, _), _)| inside(n)) {
            doc.ops.clear();
            match doc.seed {
                Some((_, (start, _))) if start > commit_time => {}
                Some((_, (_, end))) if end >= commit_time => {
                    uncertain.push(UncertainItem {
                        namespace: n.clone(),
                        key: key.clone(),
                        why: "a drop committed while the snapshot read this document".into(),
                    });
                    doc.seed = None;
                }
                _ => doc.seed = None,
            }
        }
        self.mongo
            .retain(|_, d| d.seed.is_some() || !d.ops.is_empty());
        self.shadows.retain(|n, _| !inside(n));
    }

    fn apply_cql(&mut self, m: &Mutation, p: &CqlPayload) -> anyhow::Result<()> {
        if let Some(d) = p.partition_deletion {
            self.shadows
                .entry(m.namespace.clone())
                .or_default()
                .delete_partition(&m.key, d);
        }
        for r in &p.range_deletions {
            self.shadows
                .entry(m.namespace.clone())
                .or_default()
                .delete_range(&m.key, r.clone());
        }
        if p.partition_deletion.is_some() || !p.range_deletions.is_empty() {
            return Ok(());
        }
        let uncertain = &mut self.uncertain;
        let table = match self.cql.get_mut(&m.namespace) {
            Some(t) => t,
            None => self.cql.entry(m.namespace.clone()).or_default(),
        };
        let row = match table.get_mut(&m.key) {
            Some(r) => r,
            None => table.entry(m.key.clone()).or_default(),
        };
        if let Some(d) = p.row_deletion {
            row.delete_row(d);
        }
        if m.op == WriteOp::Insert {
            row.mark_live(insert_marker(m, p));
        }
        for c in &p.cells {
            let non_idempotent = c.op == CellOp::Increment
                || c.kind == CellKind::CounterShard
                || (matches!(c.op, CellOp::Append | CellOp::Prepend) && c.path.is_none());
            match row.window {
                Some((start, end)) if non_idempotent => match window_rule(m.commit_time, start, end) {
                    Window::InSnapshot => {}
                    Window::After => row.apply(c),
                    Window::During => uncertain.push(UncertainItem {
                        namespace: m.namespace.clone(),
                        key: m.key.clone(),
                        why: format!(
                            "{} of {} committed while the snapshot read this row: it may be counted in the snapshot or not",
                            if c.op == CellOp::Increment { "an increment" } else { "a list append" },
                            c.column
                        ),
                    }),
                },
                _ => row.apply(c),
            }
        }
        Ok(())
    }

    /// The version's rows, its deletions (see [`VersionDeletion`]: a row's own
    /// deletion and cell tombstones, also of rows no longer there, and every
    /// partition and range deletion) and what it cannot vouch for.
    fn materialize(
        self,
        at: u64,
    ) -> anyhow::Result<(Vec<NamedRow>, Vec<NamedDeletion>, Vec<UncertainItem>)> {
        let at_secs = (at / 1_000_000_000) as i64;
        let mut rows = Vec::new();
        // Keyed so a partition's entry and a row's of the same key (a table without
        // clustering columns) are one.
        let mut deletions: BTreeMap<(String, String), VersionDeletion> = BTreeMap::new();
        let mut uncertain = self.uncertain;
        let empty = TableShadows::default();
        let no_layout = KeyLayout::default();
        for (ns, key, row) in self
            .cql
            .into_iter()
            .flat_map(|(ns, rows)| rows.into_iter().map(move |(k, r)| (ns.clone(), k, r)))
        {
            let shadows = self.shadows.get(&ns).unwrap_or(&empty);
            let covering = if shadows.is_empty() {
                None
            } else {
                match serde_json::from_str::<Value>(&key) {
                    Ok(Value::Object(obj)) => {
                        shadows.covering(self.layouts.get(&ns).unwrap_or(&no_layout), &obj)
                    }
                    _ => None,
                }
            };
            if row.has_deletions() {
                let (row_deletion, cells) = row.deletions(covering);
                if row_deletion.is_some() || !cells.is_empty() {
                    let d = deletions.entry((ns.clone(), key.clone())).or_default();
                    d.row = row_deletion;
                    d.cells = cells;
                }
            }
            if let Some(cells) = row.read(at_secs, covering) {
                rows.push((ns, key, VersionRow::Cql { cells }));
            }
        }
        for (ns, shadows) in &self.shadows {
            for (pk, d) in shadows.partitions() {
                deletions
                    .entry((ns.clone(), pk.to_string()))
                    .or_default()
                    .partition = Some(d);
            }
            for (pk, ranges) in shadows.ranges() {
                deletions
                    .entry((ns.clone(), pk.to_string()))
                    .or_default()
                    .ranges
                    .extend_from_slice(ranges);
            }
        }
        let deletions = deletions
            .into_iter()
            .map(|((ns, key), d)| (ns, key, d))
            .collect();
        let unresolved = unresolved_filter_writes(&self.mongo);
        for ((ns, key), mut doc) in self.mongo {
            doc.ops.sort_by_key(|o| o.order);
            let (state, notes) = replay_document(&doc);
            for why in notes {
                uncertain.push(UncertainItem {
                    namespace: ns.clone(),
                    key: key.clone(),
                    why,
                });
            }
            if let Some(filter) = unresolved.get(&ns) {
                uncertain.push(UncertainItem {
                    namespace: ns.clone(),
                    key: key.clone(),
                    why: format!(
                        "a write by filter {filter} may have changed it: its documents are not named in the log (a transaction's statement, or a write seen without its oplog entries)"
                    ),
                });
            }
            if let Some(why) = self.in_doubt_filters.get(&ns) {
                if names_one_document(&key)
                    && !self.in_doubt.contains_key(&(ns.clone(), key.clone()))
                {
                    uncertain.push(UncertainItem {
                        namespace: ns.clone(),
                        key: key.clone(),
                        why: format!("{why} (by filter: it may have changed this document)"),
                    });
                }
            }
            if let Some(d) = state {
                rows.push((
                    ns,
                    key,
                    VersionRow::Mongo {
                        document: mongo_doc::encode(&d).map_err(anyhow::Error::msg)?,
                    },
                ));
            }
        }
        uncertain.extend(
            self.in_doubt
                .into_iter()
                .map(|((namespace, key), why)| UncertainItem {
                    namespace,
                    key,
                    why,
                }),
        );
        Ok((rows, deletions, uncertain))
    }
}

/// Whether a schema change removes data: DROP TABLE / KEYSPACE, Mongo `drop` and
/// `dropDatabase` (the statement's op as the write line names it).
fn drops_data(m: &Mutation) -> bool {
    m.ddl.as_ref().is_some_and(|d| d.drops_data())
}

/// The row liveness an INSERT gives its row: at the statement's write timestamp,
/// expiring with the statement's TTL.
pub fn insert_marker(m: &Mutation, p: &CqlPayload) -> Marker {
    let timestamp = m
        .write_timestamp
        .or_else(|| p.cells.first().map(|c| c.timestamp))
        .unwrap_or((m.commit_time / 1_000) as i64);
    let expires = m.ttl.filter(|&t| t > 0).map(|ttl| {
        p.cells
            .iter()
            .find_map(|c| c.local_deletion_time.filter(|_| c.ttl.is_some()))
            .unwrap_or((m.commit_time / 1_000_000_000) as i64 + ttl as i64)
    });
    Marker { timestamp, expires }
}

/// Whether an operation gives the same document applied once or twice: inserts,
/// deletes, replacements and `$set`/`$unset`-only updates.
fn idempotent(op: &MongoOp) -> bool {
    match op.op {
        MongoOpKind::Insert | MongoOpKind::Delete | MongoOpKind::Noop | MongoOpKind::Command => {
            true
        }
        MongoOpKind::Update => mongo_doc::parse(&op.o).is_ok_and(|u| {
            mongo_doc::is_replacement(&u) || u.keys().all(|k| k == "$set" || k == "$unset")
        }),
    }
}

/// Whether a logged operation is already in the document the snapshot read
/// (`Some(true)`: skip it), is after it (`Some(false)`: apply it), or might be either
/// (`None`).
fn in_snapshot(doc: &MongoDoc, p: &PendingOp) -> Option<bool> {
    if let Some(ct) = doc.cluster_time {
        if let Some(after) = after_cluster_time(p.op.optime, ct) {
            return Some(!after);
        }
    }
    match doc.seed {
        Some((_, (start, end))) => match window_rule(p.commit_time, start, end) {
            Window::InSnapshot => Some(true),
            Window::After => Some(false),
            Window::During => None,
        },
        None => Some(false),
    }
}

/// Replays one document: the snapshot's copy (if any), then the operations that are
/// not in it, in optime order. Returns the document (or its absence) and why it is
/// uncertain, if it is: an operation that cannot be applied exactly (the replay
/// stops there), or a non-idempotent one committed while the snapshot read it.
fn replay_document(d: &MongoDoc) -> (Option<Document>, Vec<String>) {
    let mut notes = Vec::new();
    let mut doc: Option<Document> = None;
    let mut known = false;
    if let Some((bytes, _)) = &d.seed {
        match mongo_doc::parse(bytes) {
            Ok(x) => doc = Some(x),
            Err(e) => notes.push(format!("the snapshot's copy: {e}")),
        }
        known = true;
    }
    for p in &d.ops {
        match in_snapshot(d, p) {
            Some(true) => continue,
            Some(false) => {}
            None if idempotent(&p.op) => {}
            None => {
                notes.push(format!(
                    "a non-idempotent {} committed while the snapshot read this document: it may be in the snapshot or not",
                    p.op.op.as_str()
                ));
                continue;
            }
        }
        match apply_op(doc.take(), known, p) {
            Ok((next, now_known)) => {
                doc = next;
                known = now_known;
            }
            Err((before, why)) => {
                notes.push(why.0);
                return (before, notes);
            }
        }
    }
    (doc, notes)
}

/// Namespaces (with one of the filters) where a committed write was logged by filter
/// rather than by `_id`. A transaction's statements are logged in the client's form,
/// and so is every write a tap or proxy saw without its oplog entries (a proxy sees
/// only the clients' side): such a write (deleteMany, updateMany, deleteOne by
/// filter) names no document — the log does not even say how many it may change —
/// and the version cannot apply it. Where the oplog was seen, its per-document
/// entries are logged instead. Every document of such a namespace is then uncertain,
/// rather than silently as if the write had not happened (found by the randomized
/// histories: `tests/regressions/mongo-txn-filter-delete.json` in a transaction,
/// `mongo-proxy-*.json` through a proxy).
fn unresolved_filter_writes(
    docs: &BTreeMap<(String, String), MongoDoc>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for ((ns, key), doc) in docs {
        let writes = doc
            .ops
            .iter()
            .any(|p| matches!(p.op.op, MongoOpKind::Update | MongoOpKind::Delete));
        if writes && !names_one_document(key) {
            out.entry(ns.clone()).or_insert_with(|| key.clone());
        }
    }
    out
}

/// Extended JSON's type wrappers: a `$` key that is a value, not a query operator.
const EXTENDED_JSON_TYPES: &[&str] = &[
    "$oid",
    "$date",
    "$numberLong",
    "$numberInt",
    "$numberDouble",
    "$numberDecimal",
    "$binary",
    "$uuid",
    "$timestamp",
    "$regularExpression",
    "$symbol",
    "$code",
    "$scope",
    "$minKey",
    "$maxKey",
    "$dbPointer",
    "$undefined",
];

/// Whether a MongoDB key names one document: `{"_id": v}` with `v` a value (an
/// ObjectId's `{"$oid": …}` is one), not an operator expression (`{"_id": {"$in":
/// […]}}` is a filter).
fn names_one_document(key: &str) -> bool {
    match serde_json::from_str::<Value>(key) {
        Ok(Value::Object(o)) if o.len() == 1 => match o.get("_id") {
            Some(Value::Object(v)) => !v
                .keys()
                .any(|k| k.starts_with('$') && !EXTENDED_JSON_TYPES.contains(&k.as_str())),
            Some(_) => true,
            None => false,
        },
        _ => false,
    }
}

/// One operation on the document as it stands.
#[allow(clippy::result_large_err)]
fn apply_op(
    doc: Option<Document>,
    known: bool,
    p: &PendingOp,
) -> Result<(Option<Document>, bool), (Option<Document>, Unapplied)> {
    let op = &p.op;
    match op.op {
        MongoOpKind::Insert => match mongo_doc::parse(&op.o) {
            Ok(d) => Ok((Some(d), true)),
            Err(e) => Err((doc, e)),
        },
        MongoOpKind::Delete => Ok((None, true)),
        MongoOpKind::Command | MongoOpKind::Noop => Ok((doc, known)),
        MongoOpKind::Update => {
            let update = match mongo_doc::parse(&op.o) {
                Ok(u) => u,
                Err(e) => return Err((doc, e)),
            };
            let filter = match op.o2.as_deref().map(mongo_doc::parse).transpose() {
                Ok(f) => f.unwrap_or_default(),
                Err(e) => return Err((doc, e)),
            };
            // An upsert onto a document known to be absent inserts it from the filter;
            // onto one the version has no copy of it is as unsure as an update (the
            // document may have existed before the log began).
            if doc.is_none() && !(p.kind == WriteOp::Upsert && known) {
                if known {
                    // An update of a document that is not there matched nothing.
                    return Ok((None, true));
                }
                if mongo_doc::is_replacement(&update) {
                    // A replacement carries the whole document: exact either way.
                    return match mongo_doc::apply_update(None, &update, &filter) {
                        Ok(d) => Ok((Some(d), true)),
                        Err(e) => Err((None, e)),
                    };
                }
                return Err((
                    None,
                    Unapplied(
                        "updated a document the version has no copy of (written before the log began, and no snapshot has it)"
                            .into(),
                    ),
                ));
            }
            let seed = mongo_doc::upsert_seed(&filter);
            match mongo_doc::apply_update(doc.as_ref(), &update, &seed) {
                Ok(d) => Ok((Some(d), true)),
                Err(e) => Err((doc, e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_one_document_only_by_a_plain_id() {
        assert!(names_one_document(r#"{"_id":5}"#));
        assert!(names_one_document(
            r#"{"_id":{"$oid":"65a1b2c3d4e5f60718293a4b"}}"#
        ));
        assert!(names_one_document(r#"{"_id":{"a":1}}"#));
        assert!(!names_one_document(r#"{"_id":{"$in":[1,2]}}"#));
        assert!(!names_one_document(r#"{"age":{"$gt":3}}"#));
        assert!(!names_one_document(r#"{"_id":1,"v":2}"#));
        assert!(!names_one_document("{}"));
    }

    fn gap(from: u64, to: u64) -> Gap {
        Gap {
            flow: 1,
            node: None,
            from,
            to,
            bytes: 10,
        }
    }

    #[test]
    fn refuse_past_tidemark_allows_up_to_and_including_it() {
        assert!(refuse_past_tidemark(100, 100).is_ok());
        assert!(refuse_past_tidemark(99, 100).is_ok());
        let e = refuse_past_tidemark(101, 100).unwrap_err().to_string();
        assert!(e.contains("after the tidemark"), "{e}");
    }

    #[test]
    fn gaps_in_window_keeps_gaps_overlapping_from_to_at() {
        let gaps = [gap(0, 5), gap(10, 20), gap(30, 40)];
        assert_eq!(gaps_in_window(&gaps, 6, 25), vec![gap(10, 20)]);
        assert_eq!(
            gaps_in_window(&gaps, 0, 10).len(),
            2,
            "touching at its start counts"
        );
        assert!(gaps_in_window(&gaps, 41, 50).is_empty());
    }

    #[test]
    fn refuse_gaps_names_them_unless_allowed() {
        let g = [gap(10, 20)];
        assert!(refuse_gaps(&g, true).is_ok());
        assert!(refuse_gaps(&[], false).is_ok());
        let e = refuse_gaps(&g, false).unwrap_err().to_string();
        assert!(e.contains("flow 1") && e.contains("--allow-gaps"), "{e}");
    }
}
