//! The demo's steps in order (see the module doc of `super`). The clusters and the
//! drivers run on a runtime of their own; tidemark's commands (snapshot, version,
//! restore, verify) are called between the workload's steps from this thread, as a
//! user would run them beside a live cluster.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::clusters::Clusters;
use super::narrate::Narrator;
use super::tap_child::TapChild;
use super::workload::{self, Drivers};
use super::{DemoOptions, DemoReport};
use crate::restore::{self, RestoreOptions, VerifyOptions};
use crate::snapshot::{self, TakeOptions};
use crate::store::{Store, StoreOptions};
use crate::version::build::{create, At, CreateOptions};
use crate::version::diff::diff;
use crate::version::join::SnapshotChoice;

/// The version cut just before the mistake, and the one after it.
const BEFORE: &str = "before-mistake";
const AFTER: &str = "after-mistake";
/// The pulse stops by itself after this long, whatever happens.
const PULSE_LIMIT: Duration = Duration::from_secs(300);

fn now_ns() -> u64 {
    snapshot::take::now_ns()
}

fn secs(from: Instant) -> f64 {
    (from.elapsed().as_secs_f64() * 100.0).round() / 100.0
}

pub fn run(o: &DemoOptions) -> Result<DemoReport> {
    let say = Narrator::new(o.json);
    let tmp = tempfile::Builder::new()
        .prefix("tidemark-demo")
        .tempdir()
        .context("a temporary directory")?;
    let store = match &o.store {
        Some(dir) => {
            if dir.exists()
                && dir
                    .read_dir()
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(true)
            {
                bail!(
                    "--store {}: the demo needs a new or empty directory",
                    dir.display()
                );
            }
            dir.clone()
        }
        None => tmp.path().join("store"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start a runtime")?;
    let clusters = rt.block_on(Clusters::start())?;
    let result = story(&say, &rt, &clusters, &store);
    clusters.stop();
    drop(rt);
    let mut report = result?;
    report.seconds = say.elapsed();
    say.say(
        "done",
        &format!(
            "{} in {:.1} s; nothing left running{}",
            if report.equal {
                "restored and verified equal"
            } else {
                "restored, but verify found differences"
            },
            report.seconds,
            match &o.store {
                Some(d) => format!("; the store is kept in {}", d.display()),
                None => String::new(),
            }
        ),
        json!({ "equal": report.equal, "total_seconds": report.seconds }),
    );
    Ok(report)
}

fn story(
    say: &Narrator,
    rt: &tokio::runtime::Runtime,
    clusters: &Clusters,
    store: &Path,
) -> Result<DemoReport> {
    let cql_uri = clusters.cql_uri();
    let mongo_uri = clusters.mongo.uri();
    say.say(
        "clusters",
        &format!(
            "started a 3-node Cassandra testbed (RF 3) at {} and a 3-member MongoDB replica set at {}",
            cql_uri.trim_start_matches("cql://"),
            mongo_uri.trim_start_matches("mongodb://")
        ),
        json!({ "cql": cql_uri, "mongodb": mongo_uri }),
    );

    let tap = TapChild::start(store, clusters.cql_port(), clusters.mongo_port())?;
    say.say(
        "tap",
        &format!("tidemark tap is capturing lo into {}", store.display()),
        json!({ "store": store.display().to_string() }),
    );

    let first_node = clusters.cql.addresses()[0].to_string();
    let drivers = rt.block_on(Drivers::connect(&first_node, &mongo_uri))?;
    rt.block_on(drivers.schema())?;
    let stop_pulse = Arc::new(AtomicBool::new(false));
    let pulse = rt.spawn(workload::pulse(
        Arc::clone(&drivers.cql),
        drivers.mongo.clone(),
        Arc::clone(&stop_pulse),
        PULSE_LIMIT,
    ));
    let t0 = Instant::now();
    let (rows, docs) = rt.block_on(drivers.before_snapshot())?;
    say.say(
        "workload",
        &format!(
            "the drivers wrote {rows} rows (demo.accounts, demo.ledger) at QUORUM and {docs} orders (shop.orders) at w:majority in {:.1} s",
            secs(t0)
        ),
        json!({ "rows": rows, "documents": docs, "took": secs(t0) }),
    );

    let t0 = Instant::now();
    let mut snapshots = Vec::new();
    for (from, keyspaces, dbs) in [
        (cql_uri.clone(), vec!["demo".to_string()], vec![]),
        (mongo_uri.clone(), vec![], vec!["shop".to_string()]),
    ] {
        let taken = snapshot::take(
            &TakeOptions {
                from,
                store: store.to_path_buf(),
                keyspaces,
                dbs,
                parallel: 4,
                consistency: "QUORUM".into(),
                ..TakeOptions::default()
            },
            Arc::new(AtomicBool::new(false)),
        )?;
        if let Some(e) = taken.error {
            bail!("snapshot: {e}");
        }
        snapshots.push(taken.info);
    }
    let snap_rows: u64 = snapshots
        .iter()
        .flat_map(|s| s.namespaces.iter().map(|n| n.rows))
        .sum();
    say.say(
        "snapshot",
        &format!(
            "snapshot take: {snap_rows} rows and documents copied through the drivers while the tap runs ({:.1} s)",
            secs(t0)
        ),
        json!({ "snapshots": snapshots.iter().map(|s| s.id).collect::<Vec<_>>(), "rows": snap_rows, "took": secs(t0) }),
    );

    let t0 = Instant::now();
    let (statements, writes) = rt.block_on(drivers.after_snapshot())?;
    say.say(
        "changes",
        &format!(
            "the workload went on: {statements} CQL statements (updates, set adds, 20 rows, a partition and a range deleted, 200 counter increments) and {writes} MongoDB writes ($inc/$push/$set, deletes, new orders) in {:.1} s",
            secs(t0)
        ),
        json!({ "cql_statements": statements, "mongo_writes": writes, "took": secs(t0) }),
    );

    let t0 = Instant::now();
    let node = rt
        .block_on(clusters.cql.add_node())
        .map_err(|e| anyhow::anyhow!("add a node: {e:?}"))?;
    let cql_uri = clusters.cql_uri();
    say.say(
        "node_added",
        &format!(
            "a fourth node joined at {} (the ring now has {} nodes; {:.1} s)",
            clusters
                .cql
                .address(node)
                .map(|a| a.to_string())
                .unwrap_or_default(),
            clusters.cql.addresses().len(),
            secs(t0)
        ),
        json!({ "nodes": clusters.cql.addresses().len(), "took": secs(t0) }),
    );

    let t0 = Instant::now();
    let lost = rt.block_on(drivers.failover(&clusters.mongo))?;
    say.say(
        "failover",
        &format!(
            "MongoDB: the primary was cut off and acknowledged {} w:1 inserts (_id {:?}) no one else got; a new primary was elected, the old one came back and rolled them back ({:.1} s)",
            lost.len(),
            lost,
            secs(t0)
        ),
        json!({ "rolled_back": lost, "took": secs(t0) }),
    );

    let (accounts, ledger, orders) = rt.block_on(drivers.count())?;
    std::thread::sleep(Duration::from_millis(100));
    let moment = now_ns();
    std::thread::sleep(Duration::from_millis(100));
    let gone = rt.block_on(drivers.mistake())?;
    let mistake_end = now_ns();
    say.say(
        "mistake",
        &format!(
            "fat-finger: TRUNCATE demo.accounts ({accounts} rows) and shop.orders.deleteMany({{}}) ({gone} documents)\nthe moment just before it: {}",
            crate::decode::time::rfc3339(crate::capture::Timestamp(moment))
        ),
        json!({ "truncated_rows": accounts, "deleted_documents": gone, "moment_ns": moment }),
    );

    let t0 = Instant::now();
    let tidemark = tap.stop_after(mistake_end)?;
    stop_pulse.store(true, Ordering::SeqCst);
    let _ = rt.block_on(pulse);
    say.say(
        "tidemark",
        &format!(
            "the tidemark passed the mistake ({:.1} s): every write up to it is decided; the tap stopped",
            (tidemark.saturating_sub(mistake_end)) as f64 / 1e9
        ),
        json!({ "tidemark_ns": tidemark, "waited": secs(t0) }),
    );

    let t0 = Instant::now();
    let (version, after) = {
        let s = Store::open_side(store, &StoreOptions::default())?;
        let cut = |at, name: &str| {
            create(
                &s,
                &CreateOptions {
                    at,
                    name: Some(name.into()),
                    allow_gaps: false,
                    snapshot: SnapshotChoice::Auto,
                },
            )
        };
        (cut(At::Time(moment), BEFORE)?, cut(At::Latest, AFTER)?)
    };
    say.say(
        "version",
        &format!(
            "version create --at {}: {} rows and documents from {} snapshots and {} logged mutations ({:.1} s)",
            crate::decode::time::rfc3339(crate::capture::Timestamp(moment)),
            version.rows(),
            version.snapshots.len(),
            version.mutations,
            secs(t0)
        ),
        json!({ "version": BEFORE, "rows": version.rows(), "mutations": version.mutations, "uncertain": version.uncertain.len(), "took": secs(t0) }),
    );
    let changes = {
        let s = Store::open(store, &StoreOptions::default().read_only())?;
        diff(&s, BEFORE, AFTER, |_| Ok(()))?
    };
    let removed: BTreeMap<&String, u64> = changes
        .namespaces
        .iter()
        .filter(|(_, n)| n.removed > 0)
        .map(|(ns, n)| (ns, n.removed))
        .collect();
    say.say(
        "diff",
        &format!(
            "version diff {BEFORE} {AFTER}: the mistake removed {}",
            removed
                .iter()
                .map(|(ns, n)| format!("{n} from {ns}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        json!({ "removed": removed, "rows_after": after.rows() }),
    );

    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let restore_to = |to: &str, keyspaces: Vec<String>, dbs: Vec<String>| {
        restore::run(
            &RestoreOptions {
                store: store.to_path_buf(),
                version: BEFORE.into(),
                to: to.to_string(),
                keyspaces,
                tables: vec![],
                dbs,
                collections: vec![],
                renames: vec![],
                replication: None,
                parallel: 16,
                rate: None,
                rate_mb: None,
                consistency: "QUORUM".into(),
                write_concern: "majority".into(),
                overwrite: false,
                resume: false,
                dry_run: false,
                json: false,
            },
            Arc::clone(&stop),
        )
    };
    let cql_restore = restore_to(&cql_uri, vec!["demo".into()], vec![])?;
    let mongo_restore = restore_to(&mongo_uri, vec![], vec!["shop".into()])?;
    for r in [&cql_restore, &mongo_restore] {
        if let Some(e) = &r.error {
            bail!("restore to {}: {e}", r.target);
        }
    }
    say.say(
        "restore",
        &format!(
            "restore --version {BEFORE}: {} rows into the 4-node cluster (USING TIMESTAMP, remaining TTLs, {} deletions) and {} documents into the replica set after its election ({:.1} s)",
            cql_restore.total.written,
            cql_restore.total.deletions,
            mongo_restore.total.written,
            secs(t0)
        ),
        json!({ "cql": cql_restore.total, "mongodb": mongo_restore.total, "took": secs(t0) }),
    );

    let t0 = Instant::now();
    let verify_against = |against: &str, keyspaces: Vec<String>, dbs: Vec<String>| {
        restore::verify(&VerifyOptions {
            store: store.to_path_buf(),
            version: BEFORE.into(),
            against: against.to_string(),
            keyspaces,
            tables: vec![],
            dbs,
            collections: vec![],
            renames: vec![],
            consistency: "QUORUM".into(),
            // the restore wrote every cell with its own write time: compare those too
            timestamps: true,
            parallel: 4,
            max_differences: 10,
            json: false,
        })
    };
    let cql_verify = verify_against(&cql_uri, vec!["demo".into()], vec![])?;
    let mongo_verify = verify_against(&mongo_uri, vec![], vec!["shop".into()])?;
    let (accounts_now, ledger_now, orders_now) = rt.block_on(drivers.count())?;
    let counts_back = (accounts_now, ledger_now, orders_now) == (accounts, ledger, orders);
    let lost_back = rt.block_on(drivers.orders_present(&lost))?;
    let equal = cql_verify.equal() && mongo_verify.equal() && counts_back && lost_back == 0;
    let differences: Vec<String> = cql_verify
        .differences
        .iter()
        .chain(&mongo_verify.differences)
        .map(|d| format!("{} {} {}: {}", d.kind, d.namespace, d.key, d.detail))
        .collect();
    say.say(
        "verify",
        &format!(
            "verify: Cassandra {} ({} rows, {} token ranges), MongoDB {} ({} documents); the drivers count {accounts_now} accounts, {ledger_now} ledger entries, {orders_now} orders (before the mistake: {accounts}, {ledger}, {orders}); {lost_back} of the rolled-back orders are back ({:.1} s){}",
            if cql_verify.equal() { "equal" } else { "DIFFERENT" },
            cql_verify.rows,
            cql_verify.ranges,
            if mongo_verify.equal() { "equal" } else { "DIFFERENT" },
            mongo_verify.rows,
            secs(t0),
            differences.iter().map(|d| format!("\n{d}")).collect::<String>()
        ),
        json!({
            "cql_equal": cql_verify.equal(),
            "mongodb_equal": mongo_verify.equal(),
            "counts_equal": counts_back,
            "rolled_back_present": lost_back,
            "differences": differences,
            "took": secs(t0),
        }),
    );
    rt.block_on(drivers.close());
    Ok(DemoReport {
        equal,
        seconds: 0.0,
    })
}
