//! `tidemark snapshot take` against the simulated Cassandra cluster: every row and
//! every cell (value, WRITETIME, TTL) equals the ground truth the testbed keeps
//! (`logical_state`: every replica merged, as a read at ALL), with writes going on
//! during the scan, and after an interrupted run resumed (`snapshot_take_cli.rs`
//! has the store shared with a writer, bad input and credentials).

mod snapshot_support;

use std::collections::BTreeMap;
use std::sync::Arc;

use snapshot_support::cql::{
    assert_cells_equal, cluster, fill, pk_columns, q, schema, session, truth,
};
use snapshot_support::{hex, read, snapshot_cells, take, tidemark};
use tidemark::snapshot::PartRange;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_snapshot_equals_the_testbed_state() {
    let cluster = cluster(101, None).await;
    let addr = cluster.addresses()[0];
    let s = session(addr, None).await;
    schema(&s).await;
    fill(&s, 40).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let from = format!("cql://{addr}");
    let summary = take(&from, &store, &["--parallel", "3"]).await;
    assert_eq!(summary["finished"], true);
    // 120 order rows + 20 partition rows with a static value + 1 static-only
    // partition, 40 counters, 40 kv rows.
    assert_eq!(summary["rows"], 221);
    let (infos, rows) = read(&store, 1);
    let info = &infos[0];
    assert_eq!(info.cluster, "tidemark-testbed");
    assert_eq!(info.source, from);
    assert!(info.parts.iter().all(|p| p.read_end.is_some()));
    // Token ranges cover the ring exactly once per table.
    for ns in ["shop.orders", "shop.cnt", "shop.kv"] {
        let mut ranges: Vec<(i64, i64)> = info
            .parts
            .iter()
            .filter(|p| p.namespace == ns)
            .map(|p| match p.range {
                PartRange::Token(a, b) => (a, b),
                _ => panic!("token ranges"),
            })
            .collect();
        ranges.sort();
        assert_eq!(ranges.first().unwrap().0, i64::MIN);
        assert_eq!(ranges.last().unwrap().1, i64::MAX);
        assert!(ranges.windows(2).all(|w| w[0].1 == w[1].0), "contiguous");
    }
    let orders = info
        .namespaces
        .iter()
        .find(|n| n.name == "shop.orders")
        .unwrap();
    assert!(orders.schema.contains("CREATE KEYSPACE IF NOT EXISTS shop WITH replication = {'class': 'org.apache.cassandra.locator.SimpleStrategy', 'replication_factor': '3'};"), "{}", orders.schema);
    assert!(orders.schema.contains("CREATE TABLE IF NOT EXISTS shop.orders (id int, line int, note text static, item text, qty int, tags frozen<set<text>>, PRIMARY KEY (id, line)) WITH CLUSTERING ORDER BY (line ASC)"), "{}", orders.schema);
    assert_eq!(orders.rows, 141);
    // Keys are the log's canonical keys: JSON in primary-key order, no spaces.
    assert!(rows.iter().any(|r| r.key == r#"{"id":7,"line":2}"#));
    assert!(rows.iter().any(|r| r.key == r#"{"id":1000}"#));
    // Static cells sit on the partition's own row only.
    for r in &rows {
        let tidemark::snapshot::RowData::Cql {
            cells,
            static_cells,
        } = &r.data
        else {
            panic!("cql")
        };
        let partition_row = r.namespace == "shop.orders" && !r.key.contains("line");
        assert_eq!(!static_cells.is_empty(), partition_row, "{}", r.key);
        assert!(
            !partition_row || cells.is_empty(),
            "a partition row has no regular cells"
        );
    }
    assert!(rows.iter().any(|r| r.key == r#"{"k":"k3"}"#));
    let snap = snapshot_cells(&rows, &pk_columns());
    assert_cells_equal(&snap, &truth(cluster.shared()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_non_frozen_collections_have_one_cell_per_element() {
    let cluster = cluster(102, None).await;
    let addr = cluster.addresses()[0];
    let s = session(addr, None).await;
    q(&s, "CREATE KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}").await;
    q(
        &s,
        "CREATE TABLE shop.coll (k int PRIMARY KEY, m map<text, int>, st set<int>, l list<text>)",
    )
    .await;
    for k in 0..5 {
        q(&s, &format!("INSERT INTO shop.coll (k, m, st, l) VALUES ({k}, {{'a': 1, 'b': 2}}, {{1, 2}}, ['x', 'y']) USING TIMESTAMP 100")).await;
        q(&s, &format!("UPDATE shop.coll USING TIMESTAMP 200 AND TTL 3600 SET m['c'] = 3, st = st + {{3}} WHERE k = {k}")).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    take(&format!("cql://{addr}"), &store, &[]).await;
    let (_, rows) = read(&store, 1);
    let pk = BTreeMap::from([("coll", vec!["k"])]);
    let snap = snapshot_cells(&rows, &pk);
    // Lists are keyed by timeuuid in the testbed and by index here: compare maps
    // and sets, element by element, and list values in order.
    let truth: BTreeMap<_, _> = truth(cluster.shared())
        .into_iter()
        .filter(|(k, _)| !k.3.starts_with("l["))
        .collect();
    let ours: BTreeMap<_, _> = snap
        .into_iter()
        .filter(|(k, _)| !k.3.starts_with("l["))
        .collect();
    assert_cells_equal(&ours, &truth);
}

/// Writes with unique timestamps while the snapshot runs: every snapshot cell must
/// be one of the writes made (its value is the value written at its timestamp),
/// every row untouched by the workload must equal the state at the end, and rows
/// written before the scan must all be there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_scan_under_concurrent_writes() {
    let cluster = cluster(103, None).await;
    let addr = cluster.addresses()[0];
    let s = Arc::new(session(addr, None).await);
    q(&s, "CREATE KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}").await;
    q(&s, "CREATE TABLE shop.kv (k int PRIMARY KEY, v text)").await;
    for k in 0..200 {
        q(
            &s,
            &format!("INSERT INTO shop.kv (k, v) VALUES ({k}, 'v{k}-0') USING TIMESTAMP 1"),
        )
        .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let from = format!("cql://{addr}");
    let args = [
        "snapshot",
        "take",
        "--from",
        &from,
        "--store",
        store.to_str().unwrap(),
        "--parallel",
        "1",
    ];
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .spawn()
        .unwrap();
    // Rewrites of keys 0..100 and new keys 1000.., each with its own timestamp.
    let mut written: BTreeMap<(i32, i64), String> = BTreeMap::new();
    let mut round = 1i64;
    loop {
        let k = (round % 100) as i32;
        let v = format!("v{k}-{round}");
        q(
            &s,
            &format!(
                "INSERT INTO shop.kv (k, v) VALUES ({k}, '{v}') USING TIMESTAMP {}",
                1 + round
            ),
        )
        .await;
        written.insert((k, 1 + round), v);
        let nk = 1000 + round as i32;
        q(
            &s,
            &format!(
                "INSERT INTO shop.kv (k, v) VALUES ({nk}, 'new') USING TIMESTAMP {}",
                1 + round
            ),
        )
        .await;
        written.insert((nk, 1 + round), "new".into());
        round += 1;
        if child.try_wait().unwrap().is_some() {
            break;
        }
    }
    assert!(child.wait().await.unwrap().success());
    let (_, rows) = read(&store, 1);
    let snap = snapshot_cells(&rows, &BTreeMap::from([("kv", vec!["k"])]));
    let end = truth(cluster.shared());
    let mut seen_before = 0;
    for ((_, pk, _, col), cell) in &snap {
        assert_eq!(col, "v");
        let k = i32::from_be_bytes(u32::from_str_radix(pk, 16).unwrap().to_be_bytes());
        let v = String::from_utf8(cell.value.to_vec()).unwrap();
        if cell.timestamp == 1 {
            assert_eq!(v, format!("v{k}-0"));
            seen_before += 1;
        } else {
            assert_eq!(written.get(&(k, cell.timestamp)), Some(&v), "key {k}");
        }
        if (100..200).contains(&k) {
            let t = &end[&("kv".to_string(), pk.clone(), String::new(), "v".to_string())];
            assert_eq!((hex(&cell.value), cell.timestamp), (t.0.clone(), t.1));
        }
    }
    for k in 0..200i32 {
        let pk = hex(&k.to_be_bytes());
        assert!(
            snap.contains_key(&("kv".into(), pk, String::new(), "v".into())),
            "key {k} present"
        );
    }
    eprintln!("{round} write rounds during the scan; {seen_before} cells from before it");
}

/// A run stopped after 5 parts leaves an unfinished snapshot; `--resume` reads only
/// the other parts (the first five keep their read windows), drops rows of
/// unfinished parts left behind, and ends with every row exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_resume_reads_only_unfinished_parts() {
    let cluster = cluster(104, None).await;
    let addr = cluster.addresses()[0];
    let s = session(addr, None).await;
    schema(&s).await;
    fill(&s, 30).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let from = format!("cql://{addr}");
    let first = take(&from, &store, &["--max-parts", "5", "--parallel", "1"]).await;
    assert_eq!(first["finished"], false);
    assert_eq!(first["parts_done"], 5);
    let (infos, _) = read(&store, 1);
    let before = infos[0].clone();
    assert!(before.finished.is_none());
    // What a killed run leaves behind: a row stored for a part never finished.
    let unfinished = before
        .parts
        .iter()
        .position(|p| p.read_end.is_none())
        .unwrap();
    {
        let st = tidemark::store::Store::open_side(&store, &Default::default()).unwrap();
        let stale = tidemark::snapshot::SnapshotRow {
            namespace: before.parts[unfinished].namespace.clone(),
            key: r#"{"id":424242}"#.into(),
            part: unfinished as u32,
            data: tidemark::snapshot::RowData::Cql {
                cells: vec![],
                static_cells: vec![],
            },
        };
        tidemark::snapshot::store::put_rows(&st, 1, &[stale], None).unwrap();
    }
    let out = tidemark(&[
        "snapshot",
        "take",
        "--from",
        &from,
        "--store",
        store.to_str().unwrap(),
        "--resume",
        "--json",
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let progress = String::from_utf8(out.stdout).unwrap();
    let lines = progress
        .lines()
        .filter(|l| l.contains("\"progress\""))
        .count();
    assert_eq!(
        lines,
        before.parts.len() - 5,
        "only unfinished parts are read"
    );
    let (infos, rows) = read(&store, 1);
    assert_eq!(infos.len(), 1, "resumed, not a new snapshot");
    let after = &infos[0];
    assert!(after.finished.is_some());
    for (b, a) in before.parts.iter().zip(&after.parts) {
        if b.read_end.is_some() {
            assert_eq!(b, a, "a finished part is not read again");
        }
    }
    assert!(
        !rows.iter().any(|r| r.key == r#"{"id":424242}"#),
        "stale row removed"
    );
    let keys: std::collections::BTreeSet<_> = rows.iter().map(|r| (&r.namespace, &r.key)).collect();
    assert_eq!(keys.len(), rows.len());
    assert_eq!(rows.len(), 30 * 3 + 15 + 1 + 30 + 30);
    let parts_rows: u64 = after.parts.iter().map(|p| p.rows).sum();
    assert_eq!(parts_rows, rows.len() as u64);
    let snap = snapshot_cells(&rows, &pk_columns());
    assert_cells_equal(&snap, &truth(cluster.shared()));
}

/// Killed (SIGKILL) once a part is stored, then resumed: the same rows as the state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_resume_after_kill() {
    let cluster = cluster(105, None).await;
    let addr = cluster.addresses()[0];
    let s = session(addr, None).await;
    schema(&s).await;
    fill(&s, 20).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let from = format!("cql://{addr}");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "snapshot",
            "take",
            "--from",
            &from,
            "--store",
            store.to_str().unwrap(),
            "--parallel",
            "1",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill on the first progress line (a part is stored).
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(l) = lines.next_line().await.unwrap() {
        if l.contains("\"progress\"") {
            break;
        }
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let (infos, _) = read(&store, 1);
    let done_before = infos[0].parts_done();
    assert!(done_before >= 1);
    let summary = take(&from, &store, &["--resume"]).await;
    assert_eq!(summary["finished"], true);
    let (infos, rows) = read(&store, 1);
    assert_eq!(infos.len(), 1);
    let snap = snapshot_cells(&rows, &pk_columns());
    assert_cells_equal(&snap, &truth(cluster.shared()));
    eprintln!(
        "{done_before} of {} parts were done when killed",
        infos[0].parts.len()
    );
}
