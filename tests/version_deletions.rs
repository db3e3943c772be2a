//! A version keeps its deletions: row, column, collection, element, partition and
//! clustering-range tombstones, each with its timestamp, as the cluster itself holds
//! them.
//!
//! A 3-node testbed (RF 3) runs a `scylla` driver workload of deletes of every kind
//! while `tidemark tap --interface lo` records it; a version is cut afterwards. Its
//! deletion entries (`stored::for_each_deletion`) must equal the tombstones the
//! replicas store (`CqlCluster::replica_dump`, every replica merged by the highest
//! timestamp), which tidemark never reads. The workload leaves no tombstone that a
//! later write superseded in the version and still kept in the replicas, except where
//! the test says so: a deleted column written again, whose tombstone the replicas
//! replace too.

mod live_tap_support;
mod ready_support;
mod require;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use live_tap_support::LiveTap;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use scylla::statement::unprepared::Statement;
use scylla::statement::Consistency;
use tidemark::store::{CellKind, Store, StoreOptions};
use tidemark::version::stored;
use tidemark_testbed::{ClusterConfig, CqlCluster};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

async fn session(addr: SocketAddr) -> Session {
    tokio::time::timeout(
        Duration::from_secs(60),
        SessionBuilder::new()
            .known_node(addr.to_string())
            .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()))
            .build(),
    )
    .await
    .expect("connect in time")
    .expect("connect")
}

async fn run(session: &Session, cql: &str) {
    let mut s = Statement::new(cql);
    s.set_consistency(Consistency::All);
    session
        .query_unpaged(s, ())
        .await
        .unwrap_or_else(|e| panic!("{cql}: {e}"));
}

const WORKLOAD: &[&str] = &[
    // A row deleted (and gone), another deleted and written again.
    "DELETE FROM vdel.t WHERE pk = 1 AND ck = 1",
    "DELETE FROM vdel.t WHERE pk = 1 AND ck = 3",
    "INSERT INTO vdel.t (pk, ck, v) VALUES (1, 3, 'again')",
    // A simple column deleted; another deleted then written again (superseded).
    "DELETE n FROM vdel.t WHERE pk = 1 AND ck = 2",
    "DELETE v FROM vdel.t WHERE pk = 6 AND ck = 1",
    "UPDATE vdel.t SET v = 'back' WHERE pk = 6 AND ck = 1",
    // A whole-map overwrite (a collection deletion just below it), then an element
    // deleted; a set's element removed; a whole map deleted.
    "UPDATE vdel.t SET m = {'a': 1, 'b': 2, 'c': 3} WHERE pk = 2 AND ck = 1",
    "DELETE m['b'] FROM vdel.t WHERE pk = 2 AND ck = 1",
    "UPDATE vdel.t SET s = s + {'x', 'y'} WHERE pk = 2 AND ck = 2",
    "UPDATE vdel.t SET s = s - {'x'} WHERE pk = 2 AND ck = 2",
    "UPDATE vdel.t SET m['k'] = 9 WHERE pk = 2 AND ck = 3",
    "DELETE m FROM vdel.t WHERE pk = 2 AND ck = 3",
    // A partition, and clustering ranges.
    "DELETE FROM vdel.t WHERE pk = 3",
    "DELETE FROM vdel.t WHERE pk = 4 AND ck > 2",
    "DELETE FROM vdel.t WHERE pk = 5 AND ck >= 2 AND ck < 4",
    // A table without clustering columns.
    "DELETE FROM vdel.kv WHERE k = 1",
];

/// One tombstone, as both sides are reduced to: (what, table, partition key hex,
/// clustering hex, column and path, timestamp).
type Fact = (String, String, String, String, String, i64);

fn int_hex(v: &serde_json::Value) -> String {
    hex(&(v.as_i64().unwrap() as i32).to_be_bytes())
}

/// The replicas' tombstones: every node's dump merged (highest timestamp per place).
fn truth(cluster: &CqlCluster) -> BTreeSet<Fact> {
    let mut best: BTreeMap<(String, String, String, String, String), i64> = BTreeMap::new();
    for node in 0..3 {
        for r in cluster.replica_dump(node) {
            if r.keyspace != "vdel" {
                continue;
            }
            let pk = r.partition_key.join(":");
            let ck = r.clustering.join(":");
            let (what, column) = if r.column == "<partition deletion>" {
                ("partition", String::new())
            } else if r.column == "<row deletion>" {
                ("row", String::new())
            } else if r.column.starts_with("<range deletion") {
                ("range", r.column.clone())
            } else if let Some(c) = r.column.strip_suffix("<collection deletion>") {
                ("column", c.to_string())
            } else if r.cell.is_tombstone() && !r.column.is_empty() {
                if r.column.contains('[') {
                    ("element", r.column.clone())
                } else {
                    ("column", r.column.clone())
                }
            } else {
                continue;
            };
            // A table without clustering has no row apart from its partition.
            let what = if what == "row" && r.table == "kv" {
                "partition"
            } else {
                what
            };
            let e = best
                .entry((what.into(), r.table.clone(), pk, ck, column))
                .or_insert(i64::MIN);
            *e = (*e).max(r.cell.timestamp);
        }
    }
    best.into_iter()
        .map(|((w, t, p, c, col), ts)| (w, t, p, c, col, ts))
        .collect()
}

/// `<range deletion (00000002..*>` as the testbed names a range of one clustering
/// column.
fn range_name(r: &tidemark::store::RangeDeletion) -> String {
    let lower = match r.start.prefix.last() {
        Some(v) if r.start.inclusive => format!("[{}", hex(v)),
        Some(v) => format!("({}", hex(v)),
        None => "*".into(),
    };
    let upper = match r.end.prefix.last() {
        Some(v) if r.end.inclusive => format!("{}]", hex(v)),
        Some(v) => format!("{})", hex(v)),
        None => "*".into(),
    };
    format!("<range deletion {lower}..{upper}>")
}

/// The version's deletion entries, reduced the same way.
fn version_facts(store: &Store, name: &str) -> BTreeSet<Fact> {
    let mut out = BTreeSet::new();
    stored::for_each_deletion(store, name, |ns, key, d| {
        let table = ns.strip_prefix("vdel.").expect("keyspace vdel").to_string();
        let key: serde_json::Value = serde_json::from_str(key)?;
        let pk_col = if table == "kv" { "k" } else { "pk" };
        let pk = int_hex(&key[pk_col]);
        let ck = key.get("ck").map(int_hex).unwrap_or_default();
        if let Some(r) = d.row {
            let what = if table == "kv" { "partition" } else { "row" };
            out.insert((
                what.into(),
                table.clone(),
                pk.clone(),
                ck.clone(),
                String::new(),
                r.timestamp,
            ));
        }
        if let Some(p) = d.partition {
            out.insert((
                "partition".into(),
                table.clone(),
                pk.clone(),
                String::new(),
                String::new(),
                p.timestamp,
            ));
        }
        for r in &d.ranges {
            // The prefix before the bounded column (none here: one clustering column).
            out.insert((
                "range".into(),
                table.clone(),
                pk.clone(),
                String::new(),
                range_name(r),
                r.deletion.timestamp,
            ));
        }
        for c in &d.cells {
            assert_eq!(c.kind, CellKind::Tombstone, "{c:?}");
            let (what, column) = match &c.path {
                None => ("column", c.column.to_string()),
                Some(p) => ("element", format!("{}[{}]", c.column, hex(p))),
            };
            out.insert((
                what.into(),
                table.clone(),
                pk.clone(),
                ck.clone(),
                column,
                c.timestamp,
            ));
        }
        Ok(true)
    })
    .unwrap();
    out
}

#[test]
fn a_versions_deletions_are_the_tombstones_the_replicas_hold() {
    if !require::live_capture() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cluster = rt
        .block_on(CqlCluster::start(ClusterConfig {
            base_addr: Ipv4Addr::new(127, 0, 173, 1),
            port: 0,
            ..ClusterConfig::default()
        }))
        .expect("start testbed");
    let port = cluster.addresses()[0].port();
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let tap = LiveTap::start("--cql-port", port, &store_dir);
    let last = rt.block_on(async {
        let s = session(cluster.addresses()[0]).await;
        run(&s, "CREATE KEYSPACE vdel WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}").await;
        run(&s, "CREATE TABLE vdel.t (pk int, ck int, v text, n int, m map<text, int>, s set<text>, PRIMARY KEY (pk, ck))").await;
        run(&s, "CREATE TABLE vdel.kv (k int PRIMARY KEY, v text)").await;
        for pk in 1..=6 {
            for ck in 1..=4 {
                run(&s, &format!("INSERT INTO vdel.t (pk, ck, v, n) VALUES ({pk}, {ck}, 'v{pk}{ck}', {ck})")).await;
            }
            run(&s, &format!("INSERT INTO vdel.kv (k, v) VALUES ({pk}, 'kv{pk}')")).await;
        }
        for cql in WORKLOAD {
            run(&s, cql).await;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        now_ns()
    });
    tap.stop_after(last);
    let want = truth(&cluster);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "version",
            "create",
            "--store",
            store_dir.to_str().unwrap(),
            "--name",
            "d",
            "--at",
        ])
        .arg(format!("{}", last as f64 / 1e9))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open(&store_dir, &StoreOptions::default().read_only()).unwrap();
    let got = version_facts(&store, "d");
    assert_eq!(
        got, want,
        "version (left) against the replicas' tombstones (right)"
    );

    // Every kind is there, and the superseded column tombstone is not.
    let kinds: BTreeSet<&str> = got.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        kinds,
        ["column", "element", "partition", "range", "row"].into()
    );
    assert_eq!(got.iter().filter(|f| f.0 == "range").count(), 2);
    assert_eq!(
        got.iter().filter(|f| f.0 == "element").count(),
        2,
        "m['b'] and s{{'x'}}"
    );
    assert!(
        !got.iter()
            .any(|f| f.1 == "t" && f.2 == hex(&6i32.to_be_bytes())),
        "v of (6, 1) was written again"
    );
    // The deleted row is gone from the rows, yet has its entry.
    let mut row_1_1 = false;
    stored::for_each_row(&store, "d", |ns, key, _| {
        row_1_1 |= ns == "vdel.t" && key == r#"{"pk":1,"ck":1}"#;
        Ok(true)
    })
    .unwrap();
    assert!(!row_1_1);
    let one = hex(&1i32.to_be_bytes());
    assert!(
        got.iter()
            .any(|f| f.0 == "row" && f.1 == "t" && f.2 == one && f.3 == one),
        "the deletion of (1, 1) is kept: {got:?}"
    );
    cluster.stop();
}
