//! Verify of a version's CQL tables against a cluster, by token range.
//!
//! Both sides are bucketed by the target's ring (its token ranges, as `snapshot take`
//! splits them): each version row by the Murmur3 token of its partition key
//! ([`ring`]), each target row by the range it was read from. Per range, both sides
//! sum their row digests ([`digest`]); ranges whose sums agree are equal and are never
//! looked at again. Where they differ, the range is read again and compared row by
//! row against the version's keys of that range ([`detail`] says what differs).
//!
//! Memory stays bounded: the first pass keeps one sum per range; the row-by-row pass
//! keeps the version's keys and digests of a batch of unequal ranges (at most
//! [`BATCH_ROWS`] rows, or one range when a single range holds more) and streams the
//! target's pages. A target that is another topology (another node count, other
//! tokens) splits the ring elsewhere, and the version is bucketed by that split: the
//! comparison does not depend on where the version was cut from.

pub mod detail;
pub mod digest;
pub mod progress;
pub mod ring;

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use futures_util::stream::{self, StreamExt};
use serde_json::{Map, Value as Json};

use self::digest::{digest, expires_by, live_now, settled, RangeSum, Shape};
use self::progress::Progress;
use crate::decode::cql::schema::Schema;
use crate::decode::cql::stored_schema;
use crate::restore::options::Difference;
use crate::restore::{Rename, VerifyOptions, VerifyReport};
use crate::snapshot::model::{PartInfo, PartRange, RowData, SnapshotRow};
use crate::snapshot::source::{glob, is_literal, redact, selected};
use crate::snapshot::take::cql::{self, Plan};
use crate::snapshot::take::cql_schema::Table;
use crate::store::{Cell, Protocol, Store, StoreOptions};
use crate::version::model::VersionRow;
use crate::version::stored;

/// Version rows whose keys the row-by-row pass holds at once.
pub const BATCH_ROWS: u64 = 200_000;

/// Compares the CQL namespaces of `o.version` with the cluster at `hosts`.
pub fn verify(
    o: &VerifyOptions,
    hosts: Vec<String>,
    credentials: Option<(String, String)>,
) -> Result<VerifyReport> {
    let started = Instant::now();
    let consistency = cql::consistency(if o.consistency.is_empty() {
        "QUORUM"
    } else {
        &o.consistency
    })?;
    let store = Store::open(&o.store, &StoreOptions::default().read_only())
        .with_context(|| format!("open store {}", o.store.display()))?;
    let Some(info) = stored::info(&store, &o.version)? else {
        bail!("no version {:?} in {}", o.version, o.store.display());
    };
    let namespaces = select(&info.namespaces, o)?;
    let mut report = VerifyReport {
        version: o.version.clone(),
        target: redact(&o.against),
        ..VerifyReport::default()
    };
    let total_rows = namespaces.iter().map(|(_, rows)| rows).sum();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let plan = cql::connect(&hosts, credentials.as_ref(), consistency, &[], &[]).await?;
        let mut progress = Progress::new(o.json, total_rows);
        let ctx = Ctx {
            o,
            store: &store,
            plan: &plan,
            now_secs: (crate::snapshot::take::now_ns() / 1_000_000_000) as i64,
        };
        for (ns, _) in &namespaces {
            ctx.table(ns, &mut report, &mut progress).await?;
            progress.namespace_done(ns, &report);
        }
        progress.finish();
        anyhow::Ok(())
    })?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The version's CQL namespaces the filters select (with their row counts); a
/// literal `--keyspace` or `--table` that names none of them is bad input.
fn select(
    namespaces: &[crate::version::model::NamespaceCount],
    o: &VerifyOptions,
) -> Result<Vec<(String, u64)>> {
    let cql: Vec<&crate::version::model::NamespaceCount> = namespaces
        .iter()
        .filter(|n| n.protocol == Protocol::Cql)
        .collect();
    for k in o.keyspaces.iter().filter(|k| is_literal(k)) {
        if !cql
            .iter()
            .any(|n| glob(k, n.namespace.split('.').next().unwrap_or("")))
        {
            bail!("version {:?} has no keyspace {k:?}", o.version);
        }
    }
    for t in o.tables.iter().filter(|t| is_literal(t)) {
        let hit = cql.iter().any(|n| {
            if t.contains('.') {
                n.namespace == *t
            } else {
                n.namespace.split_once('.').map(|(_, b)| b) == Some(t.as_str())
            }
        });
        if !hit {
            bail!("version {:?} has no table {t:?}", o.version);
        }
    }
    Ok(cql
        .into_iter()
        .filter(|n| selected(&o.keyspaces, &o.tables, &n.namespace))
        .map(|n| (n.namespace.clone(), n.rows))
        .collect())
}

/// What every step reads.
struct Ctx<'a> {
    o: &'a VerifyOptions,
    store: &'a Store,
    plan: &'a Plan,
    /// The wall clock when verify started (cells expired since the version are gone).
    now_secs: i64,
}

/// What one range's row-by-row comparison found.
#[derive(Default)]
struct Found {
    count: u64,
    listed: Vec<Difference>,
}

impl Found {
    fn note(&mut self, max: usize, d: impl FnOnce() -> Difference) {
        self.count += 1;
        if self.listed.len() < max {
            self.listed.push(d());
        }
    }
}

fn record(report: &mut VerifyReport, max: usize, found: Found) {
    report.different += found.count;
    let room = max.saturating_sub(report.differences.len());
    report
        .differences
        .extend(found.listed.into_iter().take(room));
}

/// A target row's cells (a partition's static row holds them in `static_cells`).
fn target_cells(row: SnapshotRow) -> (String, Vec<Cell>) {
    match row.data {
        RowData::Cql {
            mut cells,
            static_cells,
        } => {
            cells.extend(static_cells);
            (row.key, cells)
        }
        RowData::Mongo { .. } => (row.key, Vec::new()),
    }
}

fn parse_key(key: &str) -> Map<String, Json> {
    match serde_json::from_str::<Json>(key) {
        Ok(Json::Object(o)) => o,
        _ => Map::new(),
    }
}

impl Ctx<'_> {
    /// Compares one namespace of the version with its (renamed) table in the target.
    async fn table(
        &self,
        ns: &str,
        report: &mut VerifyReport,
        progress: &mut Progress,
    ) -> Result<()> {
        let o = self.o;
        let target_ns = Rename::apply(&o.renames, ns);
        let ranges = &self.plan.ranges;
        report.ranges += ranges.len() as u64;
        let Some(table) = self
            .plan
            .scan
            .tables()
            .iter()
            .find(|t| t.namespace() == target_ns)
            .cloned()
        else {
            return self.table_missing(ns, &target_ns, report, progress);
        };
        let shape = Shape::of(Some(&table), o.timestamps);
        let mut schema = Schema::default();
        stored_schema::learn_script(&mut schema, &table.schema, Some(&table.keyspace));

        // 1. The version's side: a sum per range.
        let mut version_sums = vec![RangeSum::default(); ranges.len()];
        let mut unplaced = Found::default();
        stored::for_each_row_of(self.store, &o.version, ns, |key, row| {
            report.rows += 1;
            let VersionRow::Cql { cells } = row else {
                return Ok(true);
            };
            let Some(cells) = live_now(cells, self.now_secs) else {
                return Ok(true);
            };
            match ring::token(&table, &parse_key(key)) {
                Ok(t) => {
                    version_sums[ring::range_of(ranges, t)].add(digest(key, &shape.columns(&cells)))
                }
                Err(e) => unplaced.note(o.max_differences, || Difference {
                    namespace: ns.to_string(),
                    key: key.to_string(),
                    kind: "missing".into(),
                    detail: format!("its key has no place on the ring: {e}"),
                }),
            }
            Ok(true)
        })?;
        record(report, o.max_differences, unplaced);

        // 2. The target's side, ranges read in parallel.
        let target_sums = self.target_sums(&table, &shape, progress).await?;
        let unequal: Vec<usize> = (0..ranges.len())
            .filter(|&i| version_sums[i] != target_sums[i])
            .collect();
        report.ranges_unequal += unequal.len() as u64;
        tracing::debug!(
            namespace = ns,
            ranges = ranges.len(),
            unequal = unequal.len(),
            "range sums compared"
        );

        // 3. Row by row where the sums differ, a batch of ranges at a time.
        for batch in batches(&unequal, &version_sums, BATCH_ROWS) {
            let wanted: HashSet<usize> = batch.iter().copied().collect();
            let mut keys: HashMap<usize, HashMap<String, u128>> = HashMap::new();
            stored::for_each_row_of(self.store, &o.version, ns, |key, row| {
                let VersionRow::Cql { cells } = row else {
                    return Ok(true);
                };
                let Some(cells) = live_now(cells, self.now_secs) else {
                    return Ok(true);
                };
                if let Ok(t) = ring::token(&table, &parse_key(key)) {
                    let r = ring::range_of(ranges, t);
                    if wanted.contains(&r) {
                        keys.entry(r)
                            .or_default()
                            .insert(key.to_string(), digest(key, &shape.columns(&cells)));
                    }
                }
                Ok(true)
            })?;
            let empty = HashMap::new();
            let results: Vec<Result<Found>> = stream::iter(batch.iter().copied())
                .map(|r| {
                    let version_keys = keys.get(&r).unwrap_or(&empty);
                    self.compare_range(ns, &target_ns, &shape, &schema, r, version_keys)
                })
                .buffered(o.parallel)
                .collect()
                .await;
            for f in results {
                record(report, o.max_differences, f?);
            }
        }
        Ok(())
    }

    /// Every version row of `ns` is missing: the target has no table `target_ns`.
    fn table_missing(
        &self,
        ns: &str,
        target_ns: &str,
        report: &mut VerifyReport,
        progress: &mut Progress,
    ) -> Result<()> {
        let o = self.o;
        let schema = Schema::default();
        let mut found = Found::default();
        stored::for_each_row_of(self.store, &o.version, ns, |key, row| {
            report.rows += 1;
            let VersionRow::Cql { cells } = row else {
                return Ok(true);
            };
            let Some(cells) = live_now(cells, self.now_secs) else {
                return Ok(true);
            };
            found.note(o.max_differences, || Difference {
                namespace: ns.to_string(),
                key: key.to_string(),
                kind: "missing".into(),
                detail: format!(
                    "no table {target_ns} in the target; {}",
                    detail::row(ns, key, &cells, &schema)
                ),
            });
            Ok(true)
        })?;
        if found.count > 0 {
            report.ranges_unequal += self.plan.ranges.len() as u64;
        }
        progress.rows(found.count);
        record(report, o.max_differences, found);
        Ok(())
    }

    fn part(&self, target_ns: &str, r: usize) -> PartInfo {
        let (a, b) = self.plan.ranges[r];
        PartInfo {
            namespace: target_ns.to_string(),
            range: PartRange::Token(a, b),
            read_start: 0,
            read_end: None,
            rows: 0,
        }
    }

    /// Each range's sum of the target's row digests.
    async fn target_sums(
        &self,
        table: &Table,
        shape: &Shape,
        progress: &mut Progress,
    ) -> Result<Vec<RangeSum>> {
        let target_ns = table.namespace();
        let mut sums = vec![RangeSum::default(); self.plan.ranges.len()];
        let mut results = stream::iter(0..self.plan.ranges.len())
            .map(|r| {
                let part = self.part(&target_ns, r);
                async move {
                    let mut sum = RangeSum::default();
                    let mut sink = |page: Vec<SnapshotRow>| -> Result<()> {
                        for row in page {
                            let (key, cells) = target_cells(row);
                            sum.add(digest(&key, &shape.columns(&cells)));
                        }
                        Ok(())
                    };
                    self.plan.scan.scan(r as u32, &part, &mut sink).await?;
                    anyhow::Ok((r, sum))
                }
            })
            .buffer_unordered(self.o.parallel);
        while let Some(done) = results.next().await {
            let (r, sum) = done?;
            progress.rows(sum.rows);
            sums[r] = sum;
        }
        Ok(sums)
    }

    /// Range `r` read again and compared row by row with `version_keys` (the
    /// version's keys in it and their digests).
    async fn compare_range(
        &self,
        ns: &str,
        target_ns: &str,
        shape: &Shape,
        schema: &Schema,
        r: usize,
        version_keys: &HashMap<String, u128>,
    ) -> Result<Found> {
        let o = self.o;
        let max = o.max_differences;
        let part = self.part(target_ns, r);
        let mut found = Found::default();
        let mut seen: HashSet<String> = HashSet::new();
        let mut failed: Option<anyhow::Error> = None;
        {
            let mut sink = |page: Vec<SnapshotRow>| -> Result<()> {
                for row in page {
                    let (key, cells) = target_cells(row);
                    let columns = shape.columns(&cells);
                    let Some(&want) = version_keys.get(&key) else {
                        // Expired in the version's reckoning at the start, still
                        // in the target for the second its TTL was rounded up.
                        if expires_by(&cells, moment()) {
                            continue;
                        }
                        found.note(max, || Difference {
                            namespace: ns.to_string(),
                            key: key.clone(),
                            kind: "extra".into(),
                            detail: detail::row(target_ns, &key, &cells, schema),
                        });
                        continue;
                    };
                    seen.insert(key.clone());
                    if want == digest(&key, &columns) {
                        continue;
                    }
                    let version_cells = match stored::row(self.store, &o.version, ns, &key) {
                        Ok(Some(VersionRow::Cql { cells })) => {
                            live_now(cells, self.now_secs).unwrap_or_default()
                        }
                        Ok(_) => Vec::new(),
                        Err(e) => {
                            failed.get_or_insert(e);
                            Vec::new()
                        }
                    };
                    // Equal but for cells whose TTL ran out while this verify read.
                    let until = moment();
                    let (v, t) = (settled(&version_cells, until), settled(&cells, until));
                    if digest(&key, &shape.columns(&v)) == digest(&key, &shape.columns(&t)) {
                        continue;
                    }
                    let version_columns = shape.columns(&version_cells);
                    found.note(max, || Difference {
                        namespace: ns.to_string(),
                        key: key.clone(),
                        kind: "different".into(),
                        detail: detail::different(
                            target_ns,
                            &key,
                            (&version_cells, &version_columns),
                            (&cells, &columns),
                            schema,
                        ),
                    });
                }
                Ok(())
            };
            self.plan.scan.scan(r as u32, &part, &mut sink).await?;
        }
        if let Some(e) = failed {
            return Err(e);
        }
        let mut missing: Vec<&String> = version_keys
            .keys()
            .filter(|k| !seen.contains(k.as_str()))
            .collect();
        missing.sort_unstable();
        for key in missing {
            let version_cells = match stored::row(self.store, &o.version, ns, key)? {
                Some(VersionRow::Cql { cells }) => Some(cells),
                _ => None,
            };
            // A row whose every cell expired while this verify read it.
            if version_cells
                .as_ref()
                .is_some_and(|cells| expires_by(cells, moment()))
            {
                continue;
            }
            let rendered = match &version_cells {
                Some(cells) if found.listed.len() < max => {
                    detail::row(target_ns, key, cells, schema)
                }
                _ => String::new(),
            };
            found.note(max, || Difference {
                namespace: ns.to_string(),
                key: key.clone(),
                kind: "missing".into(),
                detail: rendered,
            });
        }
        Ok(found)
    }
}

/// The second up to which a cell's expiry counts as happening now: the wall clock
/// plus one (TTLs are whole seconds; see [`settled`]).
fn moment() -> i64 {
    (crate::snapshot::take::now_ns() / 1_000_000_000) as i64 + 1
}

/// Unequal ranges grouped so each group's version rows stay within `budget` (a
/// range bigger than that goes alone).
fn batches(unequal: &[usize], sums: &[RangeSum], budget: u64) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut rows = 0u64;
    for &r in unequal {
        let n = sums[r].rows;
        match out.last_mut() {
            Some(b) if rows + n <= budget => {
                b.push(r);
                rows += n;
            }
            _ => {
                out.push(vec![r]);
                rows = n;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_to_the_budget_and_a_big_range_goes_alone() {
        let sums: Vec<RangeSum> = [5u64, 5, 20, 1, 1]
            .iter()
            .map(|&rows| RangeSum { rows, sum: 0 })
            .collect();
        assert_eq!(
            batches(&[0, 1, 2, 3, 4], &sums, 10),
            vec![vec![0, 1], vec![2], vec![3, 4]]
        );
        assert!(batches(&[], &sums, 10).is_empty());
    }
}
