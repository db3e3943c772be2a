//! `version create`: cut a version at time T from the store and keep it there.
//!
//! `version(T) = reconcile(snapshot rows, committed mutations with commit time <= T)`
//! (ARCHITECTURE.md, "Versions and restore"). This reads the log once, in seq order
//! (which is commit-time order), keeps every touched row or document in memory, and
//! writes the version's rows and then its description. Each refusal and rule is a
//! named function below with its own test.

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Context};
use serde_json::{Map, Value};

use super::cql_row::{CqlRow, Marker};
use super::cql_shadow::{KeyLayout, TableShadows};
use super::model::{NamespaceCount, UncertainItem, VersionInfo, VersionRow};
use super::mongo_doc::{self, Unapplied};
use super::stored;
use crate::capture::Timestamp;
use crate::decode::mongo::tidemark_mongo::bson::Document;
use crate::decode::time::rfc3339;
use crate::store::{
    CqlPayload, Envelope, Gap, MongoOp, MongoOpKind, Mutation, OutcomeKind, Payload, Protocol,
    Store, WriteOp,
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
    let name = opts.name.clone().unwrap_or_else(|| default_name(at));
    stored::check_name(&name)?;
    if stored::info(store, &name)?.is_some() {
        bail!("version {name:?} exists: choose another --name");
    }
    let gaps = gaps_in_window(&store.gaps()?, 0, at);
    refuse_gaps(&gaps, opts.allow_gaps)?;

    let mut state = State::default();
    // The schema is read before the log (one read transaction per thread at a time).
    let schema = super::schema::from_log(store, u64::MAX)?;
    let reader = store.reader()?;
    let mut last_seq = 0;
    for e in reader.commit_times(..=at)? {
        let e: Envelope = e?;
        last_seq = e.seq;
        if !included(&e.mutation, at) {
            continue;
        }
        if !state.layouts.contains_key(&e.mutation.namespace) {
            let (ks, table) = e.mutation.namespace.split_once('.').unwrap_or(("", ""));
            let layout = KeyLayout::of(&schema, ks, table).unwrap_or_default();
            state.layouts.insert(e.mutation.namespace.clone(), layout);
        }
        state.mutations += 1;
        state.apply(&e)?;
    }
    drop(reader);

    let mutations = state.mutations;
    let (rows, uncertain) = state.materialize(at)?;
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
        snapshot: None,
        last_seq,
        mutations,
        gaps,
        namespaces: counts.into_values().collect(),
        uncertain,
    };
    stored::clear_rows(store, &name)?;
    stored::write(store, &info, rows).with_context(|| format!("write version {name:?}"))?;
    Ok(info)
}

/// A row of a version with its namespace and key.
type NamedRow = (String, String, VersionRow);

/// A MongoDB operation waiting to be applied in optime order.
#[derive(Debug)]
struct PendingOp {
    order: (u64, u64),
    op: MongoOp,
    kind: WriteOp,
}

/// Everything the log said, by row and document.
#[derive(Debug, Default)]
struct State {
    mutations: u64,
    /// Namespace → key → row (nested, so a lookup allocates nothing).
    cql: BTreeMap<String, BTreeMap<String, CqlRow>>,
    shadows: HashMap<String, TableShadows>,
    layouts: HashMap<String, KeyLayout>,
    mongo: BTreeMap<(String, String), Vec<PendingOp>>,
}

impl State {
    fn apply(&mut self, e: &Envelope) -> anyhow::Result<()> {
        let m = &e.mutation;
        match m.op {
            WriteOp::Truncate => {
                self.clear_namespace(&m.namespace);
                return Ok(());
            }
            WriteOp::Ddl => {
                if drops_data(m) {
                    self.clear_namespace(&m.namespace);
                }
                return Ok(());
            }
            _ => {}
        }
        match &m.payload {
            Payload::Cql(p) => self.apply_cql(m, p),
            Payload::Mongo(op) => {
                let order = (op.optime.map_or(u64::MAX, |o| o.ts), e.seq);
                self.mongo
                    .entry((m.namespace.clone(), m.key.clone()))
                    .or_default()
                    .push(PendingOp {
                        order,
                        op: op.clone(),
                        kind: m.op,
                    });
                Ok(())
            }
        }
    }

    /// TRUNCATE, DROP TABLE / KEYSPACE, Mongo drop / dropDatabase: everything of the
    /// namespace (or of every namespace inside a keyspace or database) written before
    /// is gone.
    fn clear_namespace(&mut self, ns: &str) {
        let inside = |n: &str| n == ns || n.strip_prefix(ns).is_some_and(|r| r.starts_with('.'));
        self.cql.retain(|n, _| !inside(n));
        self.mongo.retain(|(n, _), _| !inside(n));
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
            row.apply(c);
        }
        Ok(())
    }

    fn materialize(self, at: u64) -> anyhow::Result<(Vec<NamedRow>, Vec<UncertainItem>)> {
        let at_secs = (at / 1_000_000_000) as i64;
        let mut rows = Vec::new();
        let mut uncertain = Vec::new();
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
            if let Some(cells) = row.read(at_secs, covering) {
                rows.push((ns, key, VersionRow::Cql { cells }));
            }
        }
        for ((ns, key), mut ops) in self.mongo {
            ops.sort_by_key(|o| o.order);
            match replay_document(&ops) {
                Ok(Some(doc)) => rows.push((
                    ns,
                    key,
                    VersionRow::Mongo {
                        document: mongo_doc::encode(&doc).map_err(anyhow::Error::msg)?,
                    },
                )),
                Ok(None) => {}
                Err((doc, why)) => {
                    uncertain.push(UncertainItem {
                        namespace: ns.clone(),
                        key: key.clone(),
                        why: why.0,
                    });
                    if let Some(doc) = doc {
                        rows.push((
                            ns,
                            key,
                            VersionRow::Mongo {
                                document: mongo_doc::encode(&doc).map_err(anyhow::Error::msg)?,
                            },
                        ));
                    }
                }
            }
        }
        Ok((rows, uncertain))
    }
}

/// Whether a schema change removes data: DROP TABLE / KEYSPACE, Mongo `drop` and
/// `dropDatabase` (the statement's op as the write line names it).
fn drops_data(m: &Mutation) -> bool {
    let op = m
        .write_json
        .as_deref()
        .and_then(|s| serde_json::from_str::<Map<String, Value>>(s).ok())
        .and_then(|o| o.get("op").and_then(Value::as_str).map(str::to_owned));
    matches!(
        op.as_deref(),
        Some("drop_table" | "drop_keyspace" | "drop" | "dropDatabase")
    )
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

/// Replays one document's operations in optime order. An operation that cannot be
/// applied exactly stops the replay: the document as it stood then and why.
#[allow(clippy::result_large_err)]
fn replay_document(ops: &[PendingOp]) -> Result<Option<Document>, (Option<Document>, Unapplied)> {
    let mut doc: Option<Document> = None;
    let mut known = false;
    for p in ops {
        let op = &p.op;
        match op.op {
            MongoOpKind::Insert => {
                doc = Some(mongo_doc::parse(&op.o).map_err(|e| (doc.clone(), e))?);
                known = true;
            }
            MongoOpKind::Delete => {
                doc = None;
                known = true;
            }
            MongoOpKind::Update => {
                let update = mongo_doc::parse(&op.o).map_err(|e| (doc.clone(), e))?;
                let filter = match &op.o2 {
                    Some(b) => mongo_doc::parse(b).map_err(|e| (doc.clone(), e))?,
                    None => Document::new(),
                };
                if doc.is_none() && p.kind != WriteOp::Upsert {
                    if known {
                        // An update of a document deleted before it matched nothing.
                        continue;
                    }
                    if mongo_doc::is_replacement(&update) {
                        // A replacement carries the whole document: exact either way.
                        doc = Some(
                            mongo_doc::apply_update(None, &update, &filter)
                                .map_err(|e| (None, e))?,
                        );
                        known = true;
                        continue;
                    }
                    return Err((
                        None,
                        Unapplied(
                            "updated a document the version has no copy of (written before the log began, and no snapshot)"
                                .into(),
                        ),
                    ));
                }
                let seed = mongo_doc::upsert_seed(&filter);
                let next = mongo_doc::apply_update(doc.as_ref(), &update, &seed)
                    .map_err(|e| (doc.clone(), e))?;
                doc = Some(next);
                known = true;
            }
            MongoOpKind::Command | MongoOpKind::Noop => {}
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

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
